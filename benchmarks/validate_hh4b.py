"""Validate the HH -> 4b background methods in every validation region against data and truth.

Runs the GP + flow interpolation (:mod:`rooml.hh4b.interpolation`) and, when
:mod:`rooml.hh4b.reweighting` is importable, the 2b -> 4b reweighting in the
nominal SR, the four shifted SRs, the 3b-like region and the reversed-Delta-eta
region; prints the yields table and the chi2/(bins - 1) tables (against the
observed data with stat + prediction errors, with stat errors only, and against
the exact truth) and writes ``mhh_<region>.png`` plots.

Usage (moderate size; with these defaults about 7 minutes per region for the GP + flow method
on 2 busy cores, ``--epochs 20 --max-train-events 20000 --hidden 32`` takes about 2)::

    nice python benchmarks/validate_hh4b.py --events 200000 --plot-dir hh4b_plots
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rooml.hh4b import validation as V
from rooml.hh4b.interpolation import InterpolationConfig


def main() -> None:
    """Run the validation and print the tables."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--events", type=int, default=200_000, help="observed events per dataset")
    parser.add_argument("--truth-events", type=int, default=2_000_000, help="truth sample per dataset")
    parser.add_argument("--members", type=int, default=3, help="K trainings of each method")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--max-train-events", type=int, default=60_000)
    parser.add_argument("--hidden", type=int, default=64, help="flow conditioner width")
    parser.add_argument("--regions", nargs="+", default=None)
    parser.add_argument("--no-reweighting", action="store_true", help="run only the GP + flow method")
    parser.add_argument("--workers", type=int, default=0, help="Dask workers for the trainings (0: serial)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot-dir", type=Path, default=Path("hh4b_validation"))
    args = parser.parse_args()

    client = cluster = None
    if args.workers > 0:
        import logging

        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None,
                               silence_logs=logging.ERROR)  # fmt: skip
        client = Client(cluster)
    config = InterpolationConfig(members=args.members, epochs=args.epochs,
                                 max_train_events=args.max_train_events, hidden=args.hidden, layers=4,
                                 blocks=1, lr=4e-3, batch_size=256, patience=5,
                                 samples_per_replica=40_000, seed=args.seed)  # fmt: skip
    methods = {"gp+flow": V.gp_flow_method(config, client=client, seed=args.seed)}
    if not args.no_reweighting:
        try:
            import rooml.hh4b.reweighting  # noqa: F401
        except ImportError as err:
            print(f"reweighting method not available ({err}); running GP + flow only")
        else:
            methods["reweighting"] = V.reweighting_validation_method(
                replicas=args.members, seed=args.seed, client=client, parallel=client is not None,
                progress=False,
            )  # fmt: skip
    data = V.ValidationData(args.events, args.seed, truth_events=args.truth_events)
    start = time.perf_counter()
    results = V.run_validation(methods, data, args.regions, plot_dir=args.plot_dir)
    print(f"\n{len(data.dataset('4b'))} observed 4b events per dataset, {args.truth_events} truth events, "
          f"K = {args.members}; {time.perf_counter() - start:.0f} s\n")  # fmt: skip
    print("## Yields (after the X_Wt cut)\n")
    print(V.format_yield_table(results))
    for key, title in (("obs", "against the observed data, stat + prediction errors"),
                       ("obs_stat", "against the observed data, stat errors only"),
                       ("truth", "against the true shape (prediction + truth-MC errors)")):  # fmt: skip
        print(f"\n## chi2/(bins - 1) {title}\n")
        print(V.format_chi2_table(results, key))
    print(f"\nplots: {args.plot_dir}/mhh_<region>.png")
    if client is not None:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
