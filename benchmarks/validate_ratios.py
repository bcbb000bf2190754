"""Quality bar of rooml's density-ratio networks against the exact truths of rooml.data.

1. NSBI classifier ratio r_S = p_S / p_SBI on ``offshell4l`` (8 observables):
   Pearson correlation of log r with the truth (bar > 0.95) and the median
   |r/r_true - 1| over the central 90 % of log r_true (bar < 10 %), E_SBI[r],
   the reliability curve and the closure chi2, plus the exported model
   checked in the compiled core against torch float64 and onnxruntime.
2. HH -> 4b exponential-loss reweighter 2b -> 4b trained in the control
   region, retrained K times: the same figures for the ensemble and each
   member, the members' spread, and the 4b yield predicted from the 2b events
   in the CR, VR and SR (the reweighter extrapolates into VR/SR) against the
   4b count and the exact-truth prediction.

Figures (calibration plots) go to ``--out``.  Default run: < 5 min on 2 cores.

    .venv/bin/python benchmarks/validate_ratios.py [--events 500000] [--members 4] [--out DIR]

(default DIR: rooml_output/ratio_validation)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import rooml  # noqa: E402
from rooml.data import hh4b, offshell4l  # noqa: E402
from rooml.export import export_ratio  # noqa: E402
from rooml.models import (  # noqa: E402
    RatioConfig,
    calibration_report,
    plot_calibration,
    train_ratio,
    train_reweighter,
)

HH_FEATURES = ["m_h1", "m_h2", "pt_h1", "pt_h2", "eta_h1", "eta_h2", "dphi_hh", "x_wt", "year"]
HH_PRE = {"pt_h1": "log", "pt_h2": "log", "x_wt": "log", "dphi_hh": "log_pi_minus"}


def figures(log_true: np.ndarray, log_pred: np.ndarray) -> dict:
    """Correlations (log r and r) and median relative error in the bulk (central 90 % of log r_true)."""
    lo, hi = np.percentile(log_true, [5, 95])
    bulk = (log_true > lo) & (log_true < hi)
    rel = np.abs(np.expm1(log_pred - log_true))
    return {
        "corr_log": float(np.corrcoef(log_true, log_pred)[0, 1]),
        "corr_r": float(np.corrcoef(np.exp(log_true), np.exp(log_pred))[0, 1]),
        "median_rel_bulk": float(np.median(rel[bulk])),
        "median_rel_all": float(np.median(rel)),
    }


def line(name: str, f: dict) -> str:
    """One printed line of figures."""
    return (f"{name:<28} corr(log r) {f['corr_log']:.4f}  corr(r) {f['corr_r']:.4f}  "
            f"median |dr/r| bulk {100 * f['median_rel_bulk']:.2f} %  (all {100 * f['median_rel_all']:.2f} %)")


def matrix(sample, names) -> np.ndarray:
    """Columns of a Sample as an (N, D) array."""
    return np.column_stack([sample[k] for k in names])


def nsbi(args, out: Path) -> bool:
    """Classifier ratio S / SBI on offshell4l; returns whether the bars pass."""
    print(f"== NSBI classifier ratio p_S/p_SBI, {args.events} + {args.events} training events")
    t0 = time.time()
    num = offshell4l.generate("S", args.events, seed=1)
    den = offshell4l.generate("SBI", args.events, seed=2)
    model = train_ratio(num, den, preprocessing={"m4l": "log", "pt4l": "log1p"}, config=RatioConfig((64, 64)),
                        epochs=args.epochs, lr=2e-3, batch_size=2048, seed=args.seed, progress=False)
    print(f"trained in {time.time() - t0:.0f} s (best epoch {model.best_epoch})")
    test = offshell4l.generate("SBI", 200_000, seed=9)
    truth = np.log(offshell4l.truth.ratio("S", test, reference="SBI"))
    f = figures(truth, model.log_ratio(test))
    print(line("S/SBI vs truth", f))
    report = calibration_report(model, offshell4l.generate("S", 100_000, seed=11),
                                offshell4l.generate("SBI", 100_000, seed=12))
    print(report.summary())
    plot_calibration(report, out / "nsbi_S_over_SBI_calibration.png",
                     features=["m4l", "phi", "pt4l", "cos_theta1"])

    path = export_ratio(model, Path(tempfile.mkdtemp()) / "rS.onnx")
    core = rooml.load(path)
    x = matrix(test, model.features)
    t1 = time.perf_counter()
    got = core.log_ratio(x)
    dt = time.perf_counter() - t1
    d64 = float(np.max(np.abs(got - model.log_ratio(x))))
    x32 = x[:50_000].astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    d_ort = float(np.max(np.abs(core.log_ratio(x32.astype(np.float64)) - session.run(None, {"x": x32})[0])))
    print(f"core vs torch float64: max |d log r| = {d64:.2e};  core vs onnxruntime: {d_ort:.2e};  "
          f"core throughput {len(x) / dt / 1e6:.2f} M events/s")
    ok = f["corr_log"] > 0.95 and f["median_rel_bulk"] < 0.10
    print(f"bars corr > 0.95 and median error < 10 %: {'PASS' if ok else 'FAIL'}\n")
    return ok


def reweighter(args, out: Path) -> None:
    """2b -> 4b reweighter in the control region; figures and yields per region."""
    print(f"== HH->4b reweighter 2b -> 4b in the CR, {args.members} members")
    d4 = hh4b.generate("4b", args.hh_events, seed=1)
    d2 = hh4b.generate("2b", 2 * args.hh_events, seed=2)
    cr4, cr2 = (d.select(hh4b.region_mask(d, "CR")) for d in (d4, d2))
    print(f"CR training events: {len(cr4)} 4b, {len(cr2)} 2b")
    t0 = time.time()
    ens = train_reweighter(cr4, cr2, features=HH_FEATURES, preprocessing=HH_PRE, n_retrain=args.members,
                           config=RatioConfig((64, 64)), epochs=60, lr=1e-3, batch_size=2048, seed=args.seed,
                           progress=False)  # fmt: skip
    print(f"trained in {time.time() - t0:.0f} s (best epochs {[m.best_epoch for m in ens.members]})")
    t2 = hh4b.generate("2b", 1_000_000, seed=3)
    t4 = hh4b.generate("4b", 500_000, seed=4)
    test = t2.select(hh4b.region_mask(t2, "CR"))
    truth = hh4b.truth.ratio(test, "4b", "2b")
    norm_cr = truth.mean()  # P_4b(CR) / P_2b(CR): the CR-restricted ratio is truth / norm_cr
    log_truth = np.log(truth / norm_cr)
    print(line("ensemble vs truth (CR)", figures(log_truth, ens.log_ratio(test))))
    for k, m in enumerate(ens.members):
        print(line(f"  member {k}", figures(log_truth, m.log_ratio(test))))
    spread = ens.spread(test) / ens.ratio(test)
    print(f"relative member spread of w: median {100 * np.median(spread):.2f} %")
    report = calibration_report(ens, t4.select(hh4b.region_mask(t4, "CR")), test)
    print(report.summary())
    plot_calibration(report, out / "hh4b_reweighter_calibration.png",
                     features=["m_h1", "m_h2", "pt_h1", "x_wt"])

    # yields as in the analysis: w = c exp(Q), c fixed by the training CR (sum of w over 2b = N_4b there),
    # applied to independent 2b events of each region and scaled to the size of the 4b test sample
    c = len(cr4) / np.exp(ens.member_log_ratios(cr2)).sum(axis=1)  # one normalization per member
    scale = (len(t4) / len(d4)) * (len(d2) / len(t2))
    print(f"4b yield predicted from 2b events (test samples: {len(t2)} 2b, {len(t4)} 4b):")
    for region in ("CR", "VR", "SR"):
        sel2 = t2.select(hh4b.region_mask(t2, region))
        n4 = int(hh4b.region_mask(t4, region).sum())
        pred = np.exp(ens.member_log_ratios(sel2)).sum(axis=1) * c * scale
        exact = float(np.sum(hh4b.truth.ratio(sel2, "4b", "2b")) * len(t4) / len(t2))
        print(f"  {region}: observed {n4} +- {np.sqrt(n4):.0f}; exact-truth prediction {exact:.0f}; "
              f"reweighter {pred.mean():.0f} +- {pred.std(ddof=1) if len(pred) > 1 else 0:.0f} (members)")


def main() -> None:
    """Run both validations and print their figures."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--events", type=int, default=500_000, help="S and SBI training events each")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--hh-events", type=int, default=400_000, help="generated 4b events (2x as many 2b)")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("rooml_output/ratio_validation"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ok = nsbi(args, args.out)
    reweighter(args, args.out)
    print(f"\nNSBI bars {'PASS' if ok else 'FAIL'}; figures in {args.out}/; total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
