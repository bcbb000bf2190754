"""Training-to-training spread of the toy2d flow fit against the fit with the exact densities.

The test ``tests/test_roofit_flow.py::test_flow_fit_agrees_with_exact_densities`` compares the extended
fit ``n_s * flow_s + n_b * flow_b`` with the same fit using the true toy2d pdfs, on one dataset
(300 + 3000 events, seed 101), with flows trained as in ``tests/conftest.py`` (20 000 events, 40 epochs).
How far the two fits may differ is set by how much a flow's shape varies from one training to the next:
another seed, another training sample, or another CPU (whose float kernels change the training
trajectory like another seed does).  This script retrains the flows with several seeds and prints, per
seed, the differences in units of the truth fit's errors, then their mean and standard deviation:

    .venv/bin/python benchmarks/validate_training_spread.py [--seeds 1 2 3 4 5 6 7 8]

and, for comparison, the same differences for a *wrong* signal density (the truth with its signal
width scaled by ``--wrong-scale``), which the test's floor must reject.

``--flow-quality`` instead retrains the two quality-bar trainings of ``tests/test_flows.py`` (a correlated
Gaussian, a conditional Gaussian) with each seed and prints the spread of their held-out log-likelihood
gaps to the truth (bar: 0.05 nats).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rooml.demo import slice as demo_slice


def _deltas(fit, truth) -> tuple[float, float, float, float]:
    """(n_s - n_s_true) / sigma_s, the same for n_b, and the two error ratios."""
    return ((fit.n_s - truth.n_s) / truth.n_s_err, (fit.n_b - truth.n_b) / truth.n_b_err,
            fit.n_s_err / truth.n_s_err, fit.n_b_err / truth.n_b_err)


def _flow_quality(seeds: list[int]) -> None:
    """Held-out mean log-likelihood gap to the truth of the test_flows trainings, per seed."""
    import math

    from rooml.models import FlowConfig, train_flow

    gaps = []
    for seed in seeds:
        rng = np.random.default_rng(11)
        mean, cov = np.array([1.0, -2.0]), np.array([[1.0, 0.8], [0.8, 1.0]])
        x = rng.multivariate_normal(mean, cov, size=12000)
        d = x[10000:] - mean
        truth = np.mean(-0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
                        - math.log(2 * math.pi) - 0.5 * math.log(np.linalg.det(cov)))
        model = train_flow(FlowConfig(features=2, layers=3, hidden=16, seed=seed), x[:10000], epochs=15,
                           batch_size=512, patience=5, progress=False, seed=seed)
        gauss = model.log_prob(x[10000:]).mean() - truth
        rng = np.random.default_rng(12)
        m = rng.uniform(100, 200, size=(8000, 1))
        xc = rng.standard_normal((8000, 2)) + 0.02 * (m - 150)
        cfg = FlowConfig(features=2, context=1, layers=2, hidden=16, seed=seed)
        model = train_flow(cfg, xc[:6000], m[:6000],
                           epochs=15, patience=5, progress=False, context_names=["m"], seed=seed)
        dc = xc[6000:] - 0.02 * (m[6000:] - 150)
        truth_c = np.mean(-0.5 * (dc**2).sum(1) - math.log(2 * math.pi))
        cond = model.log_prob(xc[6000:], m[6000:]).mean() - truth_c
        shift = np.mean(model.sample(2000, [190.0], seed=1)[:, 0]) - 0.8
        gaps.append((gauss, cond, shift))
        print(f"seed {seed}: gaussian gap {gauss:+.4f}  conditional gap {cond:+.4f}  "
              f"conditional mean shift {shift:+.4f}", flush=True)
    table = np.array(gaps)
    for name, col in zip(("gaussian gap", "conditional gap", "mean shift"), table.T):
        print(f"{name:>16}: mean {col.mean():+.4f}  std {col.std(ddof=1):.4f}  "
              f"max |.| {np.abs(col).max():.4f}")


def main() -> None:
    """Retrain with each seed, fit, and print the spread of the flow-vs-truth differences."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 9)), help="training seeds")
    parser.add_argument("--events", type=int, default=20000, help="training events per flow (as the test)")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs (as the test)")
    parser.add_argument("--wrong-scale", type=float, default=1.15,
                        help="signal width scale of the wrong density the floor must reject")
    parser.add_argument("--flow-quality", action="store_true",
                        help="measure the spread of the test_flows quality bars instead")
    args = parser.parse_args()
    if args.flow_quality:
        _flow_quality(args.seeds)
        return

    from rooml.roofit import load_library

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.WARNING)
    xy = demo_slice.make_dataset(300, 3000, seed=101)
    truth = demo_slice.fit_yields(*demo_slice.build_truth_model(xy))
    print(f"truth fit: n_s = {truth.n_s:.2f} +- {truth.n_s_err:.2f}, "
          f"n_b = {truth.n_b:.2f} +- {truth.n_b_err:.2f}")
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            paths = demo_slice.train_and_export(Path(tmp), args.events, args.epochs, seed, progress=False)
            fit = demo_slice.fit_yields(*demo_slice.build_flow_model(paths, xy))
        rows.append(_deltas(fit, truth))
        print(f"seed {seed}: dn_s/sigma = {rows[-1][0]:+.4f}  dn_b/sigma = {rows[-1][1]:+.4f}  "
              f"err ratios {rows[-1][2]:.4f} {rows[-1][3]:.4f}  status {fit.status}", flush=True)
    table = np.array(rows)
    for name, col in zip(("dn_s/sigma_s", "dn_b/sigma_b", "err_s ratio", "err_b ratio"), table.T):
        print(f"{name:>13}: mean {col.mean():+.4f}  std {col.std(ddof=1):.4f}  "
              f"max |.| {np.abs(col).max():.4f}")
    wrong = demo_slice.fit_yields(*demo_slice.build_truth_model(xy, signal_scale=args.wrong_scale))
    print(f"wrong signal density (width x {args.wrong_scale}): dn_s/sigma = "
          f"{(wrong.n_s - truth.n_s) / truth.n_s_err:+.4f}")


if __name__ == "__main__":
    main()
