"""Validate the GP mass-plane background (rooml.models.gp) on hh4b against the exact truth.

For each year (2016, 2017, 2018) of one 4b sample it prints the SR and not-SR
pulls (mean, width; not-SR pulls are leave-one-out), the fitted RBF length
scales against the SR radius (half extent of the SR along each axis), the
predicted SR-bin yield against the truth-integrated expectation (in units of
the GP's predicted sigma), and the SR normalization
``n_obs(not SR) * n_samp(SR) / n_samp(not SR)`` against the truth fraction and
the observed SR count; then the same numbers over ``--realizations``
independent samples (how often each year meets the floors |pull mean| < 0.3,
pull width in [0.7, 1.3], length scales > SR radius). Writes one plot per year
(observed, prediction, pulls, SR contour). Takes about a minute on 2 cores.

    .venv/bin/python benchmarks/validate_gp_massplane.py [--events 180000] [--seed 14]
        [--process 4b] [--realizations 10] [--mean turn_on] [--plot-dir .]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rooml.data import hh4b
from rooml.models.gp import MassPlaneGP, fit_per_year, plot_mass_plane


def truth_bins(gp: MassPlaneGP, year: int, process: str, k: int = 10) -> np.ndarray:
    """Exact bin probabilities of the truth mass plane (k x k midpoint rule per bin)."""
    e1, e2 = gp.edges_m1, gp.edges_m2
    t = (np.arange(k) + 0.5) / k
    g1 = (e1[:-1, None] + np.diff(e1)[:, None] * t).ravel()
    g2 = (e2[:-1, None] + np.diff(e2)[:, None] * t).ravel()
    p = np.exp(hh4b.truth.log_prob_mass(g1[:, None], g2[None, :], year, process))
    area = np.outer(np.repeat(np.diff(e1), k), np.repeat(np.diff(e2), k)) / k**2
    return (p * area).reshape(len(e1) - 1, k, len(e2) - 1, k).sum(axis=(1, 3))


def truth_sr_ratio(gp: MassPlaneGP, year: int, process: str, step: float = 0.25) -> float:
    """Exact P(SR) / P(box and not SR)."""
    (lo1, hi1), (lo2, hi2) = gp.box
    g1, g2 = np.arange(lo1 + step / 2, hi1, step), np.arange(lo2 + step / 2, hi2, step)
    m1, m2 = np.meshgrid(g1, g2, indexing="ij")
    p = np.exp(hh4b.truth.log_prob_mass(m1, m2, year, process))
    sr = hh4b.in_signal_region(m1, m2)
    return float(p[sr].sum() / p[~sr].sum())


def evaluate(sample, fits: dict[int, MassPlaneGP], process: str, n_samples: int | None) -> dict[int, dict]:
    """Per-year validation numbers of one sample."""
    out = {}
    for year, gp in fits.items():
        sel = sample["year"] == year
        m1, m2 = sample["m_h1"][sel], sample["m_h2"][sel]
        observed = gp.histogram(m1, m2)
        p_sr, p_out = gp.pulls(observed, "SR"), gp.pulls(observed, "not_SR")
        total, sigma = gp.predicted_yield("SR")
        expected = sel.sum() * truth_bins(gp, year, process)[gp.blinded].sum()
        row = {
            "events": int(sel.sum()),
            "sr_bins": (observed[gp.blinded].min(), observed[gp.blinded].max()),
            "pull_sr": (p_sr.mean(), p_sr.std()),
            "pull_out": (p_out.mean(), p_out.std()),
            "pull_out_fit": (lambda p: (p.mean(), p.std()))(gp.pulls(observed, "not_SR", method="fit")),
            "lengths": gp.length_scales,
            "radius": gp.sr_half_widths,
            "pred": (total, sigma),
            "true": expected,
            "z": (total - expected) / sigma,
        }
        if n_samples:
            in_box = (m1 >= gp.box[0][0]) & (m1 <= gp.box[0][1]) & (m2 >= gp.box[1][0]) & (m2 <= gp.box[1][1])
            row["n_sr"] = gp.sr_normalization(n_samples=n_samples, rng=0)
            row["n_sr_true"] = gp.n_obs_not_sr * truth_sr_ratio(gp, year, process)
            row["n_sr_obs"] = int(np.sum(in_box & hh4b.in_signal_region(m1, m2)))
            row["n_sr_sigma"] = sigma / total * row["n_sr"]
        row["ok"] = (
            abs(row["pull_sr"][0]) < 0.3
            and 0.7 <= row["pull_sr"][1] <= 1.3
            and all(ell > r for ell, r in zip(row["lengths"], row["radius"]))
        )
        out[year] = row
    return out


def main() -> None:
    """Run the validation and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=180_000, help="events of the sample (all years)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--process", default="4b", choices=("4b", "3b", "2b"))
    parser.add_argument("--realizations", type=int, default=10, help="extra samples for the pass rates")
    parser.add_argument("--mean", default="turn_on", choices=("turn_on", "exponential", "constant"))
    parser.add_argument("--plot-dir", type=Path, default=Path("."))
    args = parser.parse_args()

    t0 = time.perf_counter()
    sample = hh4b.generate(args.process, args.events, seed=args.seed)
    fits = fit_per_year(sample, seed=0, mean=args.mean)
    rows = evaluate(sample, fits, args.process, n_samples=1_000_000)
    print(f"hh4b {args.process}, {args.events} events, seed {args.seed}, mean function {args.mean!r}, "
          f"box {fits[2016].box} GeV, {fits[2016].shape} bins")
    print(f"{'year':>5} {'events':>7} {'SR bins':>9} | {'SR pull':>12} | {'out (LOO)':>12} "
          f"{'out (fit)':>12} | {'l1, l2 [GeV]':>12} {'SR radius':>10} | {'pred SR-bin yield':>17} "
          f"{'truth':>7} {'z':>5} | "
          f"{'n_SR formula':>14} {'truth':>7} {'observed':>8}")
    for year, r in rows.items():
        print(f"{year:>5} {r['events']:>7} {r['sr_bins'][0]:>4.0f}-{r['sr_bins'][1]:<4.0f} | "
              f"{r['pull_sr'][0]:+5.2f} / {r['pull_sr'][1]:4.2f} | "
              f"{r['pull_out'][0]:+5.2f} / {r['pull_out'][1]:4.2f} {r['pull_out_fit'][0]:+5.2f} / "
              f"{r['pull_out_fit'][1]:4.2f} | {r['lengths'][0]:5.1f}, {r['lengths'][1]:5.1f} "
              f"{r['radius'][0]:4.1f}, {r['radius'][1]:4.1f} | {r['pred'][0]:8.0f} ± {r['pred'][1]:5.0f} "
              f"{r['true']:7.0f} {r['z']:+5.2f} | {r['n_sr']:7.0f} ± {r['n_sr_sigma']:4.0f} "
              f"{r['n_sr_true']:7.0f} {r['n_sr_obs']:8d}")
        sel = sample["year"] == year
        path = plot_mass_plane(fits[year], fits[year].histogram(sample["m_h1"][sel], sample["m_h2"][sel]),
                               args.plot_dir / f"gp_massplane_{args.process}_{year}.png")
        print(f"      plot: {path}")
    print("(pull = (prediction - observed)/sqrt(observed); 'out' = outside the blinded bins; "
          "z = (pred - truth)/sigma_GP; n_SR truth = n_obs(not SR) x exact P(SR)/P(box, not SR))")

    if args.realizations:
        stats: dict[int, list] = {y: [] for y in hh4b.YEARS}
        for k in range(args.realizations):
            s = hh4b.generate(args.process, args.events, seed=[args.seed, 1000 + k])
            for year, r in evaluate(s, fit_per_year(s, seed=0, mean=args.mean), args.process, None).items():
                stats[year].append([*r["pull_sr"], *r["pull_out"], r["z"], min(r["lengths"]), r["ok"]])
        print(f"\nover {args.realizations} further samples (mean ± std):")
        print(f"{'year':>5} | {'SR pull mean':>14} {'SR pull width':>14} | {'out mean':>12} "
              f"{'out width':>12} | {'z':>12} | {'min l':>6} | floors met")
        for year, v in stats.items():
            a = np.array(v, float)
            m, sd = a.mean(axis=0), a.std(axis=0)
            print(f"{year:>5} | {m[0]:+6.2f} ± {sd[0]:4.2f}  {m[1]:6.2f} ± {sd[1]:4.2f} | "
                  f"{m[2]:+5.2f} ± {sd[2]:4.2f} {m[3]:5.2f} ± {sd[3]:4.2f} | {m[4]:+5.2f} ± {sd[4]:4.2f} | "
                  f"{a[:, 5].min():6.1f} | {int(a[:, 6].sum())}/{len(a)}")
    print(f"\ntotal time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
