"""HI-SIGMA vs the mass-only fit, a classifier cut + mass fit and a binned score fit on bbyy mock data.

    nice .venv/bin/python benchmarks/compare_baselines.py -o baselines_output            # defaults below
    nice .venv/bin/python benchmarks/compare_baselines.py --datasets 2 --no-flows        # quick

For each of ``--datasets`` independent mock datasets (``--background`` + ``--signal``
events) the four methods of :mod:`rooml.validation.baselines` give sigma(mu); with
flows (default) the demo's HI-SIGMA RooFit model (bootstrap flow ensembles, shape
systematic, :mod:`rooml.demo`) is fitted too, and its bootstrap envelope is compared
with the all-member profile interval.  Writes ``baselines.json`` and
``baselines.png``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rooml.data import bbyy
from rooml.validation.baselines import METHODS, compare_on_dataset, train_classifiers
from tqdm.auto import tqdm


def flow_fits(mocks: list, args, out: Path) -> list[dict]:
    """Fit each mock dataset with the demo's flow model: sigma(mu) of all members, the envelope's width."""
    import ROOT
    from rooml.demo import model as demo_model
    from rooml.demo.train import train_models
    from rooml.infer import envelope, fit, profile_scan

    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    (out / "models").mkdir(exist_ok=True)
    trained = train_models(
        out / "models",
        signal_events=args.train_events // 3,
        background_events=args.train_events,
        epochs=args.epochs,
        bootstraps=args.bootstraps,
        members=1,
        seed=args.seed,
    )
    rows = []
    for i, mock in enumerate(tqdm(mocks, desc="flow fits")):
        demo = demo_model.build_workspace(
            trained.paths, mock, s_expected=args.signal, seed=args.seed + 200 + i
        )
        mu = demo.var("mu")
        hesse = fit(demo.model, demo.data, extended=True)["mu"]
        grid = np.linspace(hesse.value - 3 * hesse.error, hesse.value + 3 * hesse.error, 13)
        full = profile_scan(demo.model, demo.data, mu, grid, extended=True, progress=False)
        scans = []
        for d in range(args.bootstraps):
            demo.use_bootstrap(d)
            scans.append(profile_scan(demo.model, demo.data, mu, grid, extended=True, progress=False))
        env = envelope(scans)
        rows.append(
            {
                "mu_hat": full.mu_hat,
                "sigma": full.sigma,
                "envelope": list(env.interval),
                "envelope_half_width": 0.5 * (env.interval[1] - env.interval[0]),
                "bootstrap_mu_hats": env.mu_hats.tolist(),
                "bootstrap_sigmas": env.sigmas.tolist(),
            }
        )
    return rows


def plot(table: dict, path: Path) -> None:
    """Bar chart of the mean sigma(mu) per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    names = list(table)
    means = [table[n]["mean_sigma"] for n in names]
    errors = [table[n]["error"] for n in names]
    fig, ax = plt.subplots(figsize=(10, 6))
    ax.bar(range(len(names)), means, yerr=errors, color="tab:blue", alpha=0.7)
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=13)
    ax.set_ylabel(r"mean $\sigma(\mu)$")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    """Run the comparison and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="baselines_output")
    parser.add_argument("--datasets", type=int, default=5)
    parser.add_argument("--background", type=float, default=40_000)
    parser.add_argument("--signal", type=float, default=200)
    parser.add_argument("--classifier-events", type=int, default=50_000, help="SR events per class")
    parser.add_argument("--templates", type=int, default=400_000, help="simulated events per process")
    parser.add_argument("--no-flows", action="store_true", help="skip the flow-based HI-SIGMA fits")
    parser.add_argument("--train-events", type=int, default=200_000, help="background events for the flows")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--bootstraps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    classifiers = train_classifiers(
        args.classifier_events,
        s_expected=args.signal,
        b_expected=args.background,
        n_templates=args.templates,
        seed=args.seed,
    )
    mocks = [
        bbyy.make_mock(args.background, args.signal, seed=args.seed + 1000 + i) for i in range(args.datasets)
    ]
    per_dataset = [
        compare_on_dataset(m, classifiers, s_expected=args.signal) for m in tqdm(mocks, desc="baseline fits")
    ]
    sigmas = {name: [r[name].sigma for r in per_dataset] for name in METHODS}
    mu_hats = {name: [r[name].mu_hat for r in per_dataset] for name in METHODS}
    flows = None if args.no_flows else flow_fits(mocks, args, out)
    if flows:
        sigmas["hisigma_flows"] = [r["sigma"] for r in flows]
        mu_hats["hisigma_flows"] = [r["mu_hat"] for r in flows]
        sigmas["hisigma_flows_envelope"] = [r["envelope_half_width"] for r in flows]
        mu_hats["hisigma_flows_envelope"] = [0.5 * sum(r["envelope"]) for r in flows]

    table = {}
    reference = np.mean(sigmas["hisigma"])
    for name, values in sigmas.items():
        table[name] = {
            "mean_sigma": float(np.mean(values)),
            "error": float(np.std(values) / np.sqrt(len(values))),
            "ratio_to_hisigma_truth": float(np.mean(values) / reference),
            "mean_mu_hat": float(np.mean(mu_hats[name])),
            "sigmas": values,
        }
    result = {
        "table": table,
        "cut": classifiers.cut,
        "cut_efficiency": classifiers.efficiency,
        "flows": flows,
        "options": vars(args),
        "seconds": time.time() - t0,
    }
    (out / "baselines.json").write_text(json.dumps(result, indent=2))
    plot(table, out / "baselines.png")
    print(f"\n{'method':26s} {'mean sigma(mu)':>15s} {'/ hisigma':>10s} {'mean mu_hat':>12s}")
    for name, row in table.items():
        print(
            f"{name:26s} {row['mean_sigma']:9.3f} ± {row['error']:.3f} {row['ratio_to_hisigma_truth']:10.2f} "
            f"{row['mean_mu_hat']:12.3f}"
        )
    print(f"\nwrote {out / 'baselines.json'}, {out / 'baselines.png'} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
