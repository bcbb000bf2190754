"""``rooml hh4b``: the HH -> 4b background workflow from the command line.

Usage::

    rooml hh4b data -n 10000000 -o hh4b.root                  # stream 4b and 2b trees to a file
    rooml hh4b train hh4b.root -o model/                      # GPs + flow ensemble (streams the file)
    rooml hh4b predict model/ --region SR -o sr.root --export flow.onnx
    rooml hh4b validate -o validation/                        # both tables, m_HH plots

``data`` writes chunk by chunk, ``train`` reads chunk by chunk
(:func:`rooml.data.io.iterate_root`), so 1e7 events need bounded memory.
Nothing existing is overwritten without ``--force``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from rooml._files import atomic_output

__all__ = ["add_parser", "stream_dataset"]

_TRAIN_COLUMNS = ("m_h1", "m_h2", "year", "pt_h1", "pt_h2", "eta_h1", "eta_h2", "dphi_hh", "x_wt")


def stream_dataset(
    output: str | os.PathLike,
    n_events: int,
    *,
    processes=("4b", "2b"),
    preselection: str = "pass",
    seed: int = 0,
    chunk_size: int = 500_000,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Generate hh4b trees chunk by chunk into a ROOT file (atomically; memory bounded by ``chunk_size``).

    Parameters
    ----------
    output : str or os.PathLike
    n_events : int
        Events per process (one TTree per process, named after it, with a ``weight`` branch).
    processes : sequence of str
    preselection : {"pass", "reversed"}
    seed : int
        Process ``k`` of :data:`rooml.data.hh4b.PROCESSES` draws from ``default_rng([seed, k])``.
    chunk_size : int
    force : bool
        Replace an existing file.
    progress : bool

    Returns
    -------
    pathlib.Path
    """
    import uproot
    from tqdm.auto import tqdm

    from rooml.data import hh4b

    path = Path(output)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; use --force to replace it")
    if n_events < 1 or chunk_size < 1:
        raise ValueError(f"--events and --chunk-size must be positive, got {n_events}, {chunk_size}")
    unknown = [p for p in processes if p not in hh4b.PROCESSES]
    if unknown:
        raise ValueError(f"unknown hh4b process(es) {unknown}; choose from {list(hh4b.PROCESSES)}")
    with atomic_output(path, overwrite=force) as tmp:
        with uproot.recreate(tmp, compression=uproot.ZSTD(1)) as f:
            for process in processes:
                rng = np.random.default_rng([seed, hh4b.PROCESSES.index(process)])
                tree = None
                starts = range(0, n_events, chunk_size)
                for start in tqdm(starts, desc=f"hh4b {process}", disable=not progress):
                    n = min(chunk_size, n_events - start)
                    data = hh4b.generate(process, n, rng, preselection=preselection).as_dict("weight")
                    if tree is None:
                        tree = f.mktree(process, {k: v.dtype for k, v in data.items()}, title="hh4b")
                    tree.extend(data)
    return path


def _client(workers: int):
    if workers <= 0:
        return None, None
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)  # fmt: skip
    return Client(cluster, set_as_default=False), cluster


def _config(args: argparse.Namespace):
    from rooml.hh4b.interpolation import InterpolationConfig

    return InterpolationConfig(
        members=args.members, epochs=args.epochs, max_train_events=args.max_train_events,
        samples_per_replica=args.samples, seed=args.seed, hidden=args.hidden, layers=args.layers,
        gp_restarts=args.gp_restarts,
    )  # fmt: skip


def _run_data(args: argparse.Namespace) -> int:
    path = stream_dataset(args.output, args.events, processes=args.process or ("4b", "2b"),
                          preselection=args.preselection, seed=args.seed, chunk_size=args.chunk_size,
                          force=args.force, progress=not args.quiet)  # fmt: skip
    print(f"wrote {path}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from rooml.data.io import iterate_root
    from rooml.hh4b.interpolation import train

    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise FileExistsError(f"{out} exists and is not empty; use --force to replace it")
    if not Path(args.input).exists():
        raise FileNotFoundError(f"no input file {args.input}")
    try:
        chunks = iterate_root(args.input, args.tree, columns=list(_TRAIN_COLUMNS), step_size=args.chunk_size)
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}: not an hh4b file (write one with 'rooml hh4b data')") from None
    client, cluster = _client(args.workers)
    try:
        model = train(chunks, args.region, preselection=args.preselection, config=_config(args),
                      client=client, progress=not args.quiet)  # fmt: skip
    finally:
        if client is not None:
            client.close()
            cluster.close()
    model.save(out, overwrite=args.force)
    for year, gp in sorted(model.gps.items()):
        print(f"year {year}: GP length scales {gp.length_scales[0]:.1f}, {gp.length_scales[1]:.1f} GeV, "
              f"n_obs(not blinded) = {gp.n_obs_not_sr:.0f}")  # fmt: skip
    print(f"trained {model.n_replicas} flows on {model.n_train} events; saved to {out}")
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from rooml.data import Sample
    from rooml.data.io import write_root
    from rooml.hh4b.interpolation import InterpolationModel

    for output in (args.output, args.export):  # refuse before the (long) prediction
        if output and Path(output).exists() and not args.force:
            raise FileExistsError(f"{output} exists; use --force to replace it")
    model = InterpolationModel.load(args.model)
    pred = model.predict(args.region, seed=args.seed, n_samples=args.samples)
    value, error = pred.yield_and_error()
    print(f"{args.region}: predicted {value:.1f} ± {error:.1f} events "
          f"(after the X_Wt cut; {pred.n_replicas} replicas)")
    if args.output:
        columns = {**pred.events, "replica": pred.replica.astype(float)}
        write_root(args.output, Sample(columns, pred.weights, {"method": pred.method, "region": pred.region}),
                   tree="prediction", overwrite=args.force)  # fmt: skip
        print(f"wrote {args.output}")
    if args.export:
        path = model.export(args.export, overwrite=args.force)
        print(f"wrote {path} (RooFlowPdf: rooml.roofit.flow_pdf or InterpolationModel.roofit_pdf)")
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    from rooml.hh4b import validation as V

    out = Path(args.output)
    tables = out / "tables.md"
    if tables.exists() and not args.force:
        raise FileExistsError(f"{tables} exists; use --force to replace it")
    data = V.ValidationData(args.events, args.seed, truth_events=args.truth_events,
                            source_factor=args.source_factor)  # fmt: skip
    client, cluster = _client(args.workers)
    try:
        methods = {}
        if "gp+flow" in args.methods:
            methods["gp+flow"] = V.gp_flow_method(_config(args), client=client, seed=args.seed)
        if "reweighting" in args.methods:
            methods["reweighting"] = V.reweighting_validation_method(
                replicas=args.members, epochs=args.epochs, client=client, parallel=client is not None,
                progress=False, seed=args.seed,
            )  # fmt: skip
        if not methods:
            raise ValueError("--methods names no known method (gp+flow, reweighting)")
        results = V.run_validation(methods, data, args.regions, n_bins=args.bins, plot_dir=out,
                                   progress=not args.quiet)  # fmt: skip
    finally:
        if client is not None:
            client.close()
            cluster.close()
    text = (f"## Yields\n\n{V.format_yield_table(results)}\n\n"
            f"## chi2/(bins-1) against the observed data (stat + prediction errors)\n\n"
            f"{V.format_chi2_table(results)}\n\n"
            f"## chi2/(bins-1) against the true shape\n\n"
            f"{V.format_chi2_table(results, 'truth')}\n")  # fmt: skip
    print(text)
    with atomic_output(tables) as tmp:
        tmp.write_text(text)
    print(f"wrote {tables} and the m_HH plots to {out}")
    return 0


def _training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--members", type=int, default=2, help="K trainings per method (the error bar; default 2)")
    p.add_argument("--epochs", type=int, default=15, help="maximum epochs per training (default 15)")
    p.add_argument("--max-train-events", type=int, default=20_000, help="flow training events")
    p.add_argument("--hidden", type=int, default=32, help="flow conditioner width (default 32)")
    p.add_argument("--layers", type=int, default=4, help="flow spline layers (default 4)")
    p.add_argument("--samples", type=int, default=20_000, help="mass points per replica, year")
    p.add_argument("--workers", type=int, default=0, help="Dask workers (0: serial)")
    p.add_argument("--gp-restarts", type=int, default=2, help="extra optimizer starts per GP fit")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``rooml hh4b`` (``data``, ``train``, ``predict``, ``validate``).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``rooml`` command's sub-parsers.
    """
    from rooml.data._hh4b_regions import REGIONS  # not rooml.data.hh4b: scipy would slow down --help

    top = subparsers.add_parser("hh4b", help="HH -> 4b data-driven background (GP + flow, validation)")
    sub = top.add_subparsers(dest="hh4b_command", required=True)

    p = sub.add_parser("data", help="stream hh4b trees to a ROOT file in chunks")
    p.add_argument("-n", "--events", type=int, required=True, help="events per process")
    p.add_argument("-o", "--output", required=True, help="output .root file")
    p.add_argument("--process", action="append", default=None, help="process (repeatable; default 4b and 2b)")
    p.add_argument("--preselection", choices=("pass", "reversed"), default="pass",
                   help="|Delta eta_HH| < 1.5 (pass, default) or reversed")
    p.add_argument("--chunk-size", type=int, default=500_000, help="events generated at a time")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_data)

    p = sub.add_parser("train", help="fit the per-year GPs and train the conditional flows")
    p.add_argument("input", help="ROOT file (e.g. from 'rooml hh4b data')")
    p.add_argument("-o", "--output", required=True, help="model directory")
    p.add_argument("--tree", default="4b", help="tree holding the observed events (default 4b)")
    p.add_argument("--region", default="SR", choices=REGIONS, help="region to blind and predict")
    p.add_argument("--preselection", choices=("pass", "reversed"), default="pass",
                   help="|Delta eta_HH| < 1.5 (pass, default) or reversed")
    p.add_argument("--chunk-size", type=int, default=500_000, help="events read at a time")
    p.add_argument("--force", action="store_true", help="replace an existing model directory")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _training_options(p)
    p.set_defaults(func=_run_train)

    p = sub.add_parser("predict", help="predict a region's background with a trained model")
    p.add_argument("model", help="model directory from 'rooml hh4b train'")
    p.add_argument("--region", default="SR", choices=REGIONS, help="region to predict (default SR)")
    p.add_argument("-o", "--output", default=None, help="write the predicted events (tree 'prediction')")
    p.add_argument("--export", default=None, help="export the flows to this .onnx file (for RooFlowPdf)")
    p.add_argument("--samples", type=int, default=None, help="mass points per replica and year")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=_run_predict)

    p = sub.add_parser("validate", help="run the methods in the validation regions: tables and m_HH plots")
    p.add_argument("-o", "--output", default="hh4b_validation", help="directory for tables.md and plots")
    p.add_argument("-n", "--events", type=int, default=100_000, help="observed events per dataset")
    p.add_argument("--truth-events", type=int, default=1_000_000, help="truth sample per dataset")
    p.add_argument("--source-factor", type=float, default=1.0, help="2b events / 4b events")
    p.add_argument("--regions", nargs="+", default=None, help="validation regions (default: all)")
    p.add_argument("--methods", nargs="+", default=["gp+flow", "reweighting"], help="methods to run")
    p.add_argument("--bins", type=int, default=12, help="bins per variable in the chi2 table")
    p.add_argument("--force", action="store_true", help="replace an existing tables.md")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _training_options(p)
    p.set_defaults(func=_run_validate)


if __name__ == "__main__":  # pragma: no cover
    from rooml.cli import main

    sys.exit(main(["hh4b", *sys.argv[1:]]))
