"""The reweighting baseline's variance and bias on K hemisphere-mixed 4b datasets.

Generates 4b and 2b events, builds a 4b hemisphere library, makes K mixed 4b
datasets (random half-libraries), trains the 2b -> 4b reweighter (R replicas)
on each in the control region and compares its SR prediction with the mixed
data's SR yield.  Also prints the prediction on the original 4b data against
the exact expectation ``N_4b * P_4b(SR)``.

    nice .venv/bin/python benchmarks/validate_hh4b_mixing.py --events-4b 150000 --datasets 6
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from rooml.data import hh4b
from rooml.hh4b.mixing import build_library, mix, study_method
from rooml.hh4b.reweighting import reweighting_method, train_reweighting
from rooml.models import RatioConfig


def region_probability(process: str, region: str, step: float = 0.2) -> float:
    """Exact P(region) of the mass plane (midpoint rule, years weighted by luminosity)."""
    centres = np.arange(hh4b.MASS_RANGE[0] + step / 2, hh4b.MASS_RANGE[1], step)
    m1, m2 = np.meshgrid(centres, centres, indexing="ij")
    inside = hh4b.region_mask({"m_h1": m1, "m_h2": m2}, region)
    lumi = sum(hh4b.LUMI.values())
    density = sum(hh4b.LUMI[y] / lumi * np.exp(hh4b.truth.log_prob_mass(m1[inside], m2[inside], y, process))
                  for y in hh4b.YEARS)  # fmt: skip
    return float(density.sum() * step**2)


def main() -> None:
    """Run the study and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-4b", type=int, default=150_000)
    parser.add_argument("--ratio-2b", type=float, default=2.0, help="2b events per 4b event")
    parser.add_argument("--datasets", type=int, default=6, help="K mixed datasets")
    parser.add_argument("--replicas", type=int, default=3, help="reweighter retrainings per dataset")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    n4 = args.events_4b
    d4 = hh4b.generate("4b", n4, seed=args.seed + 1)
    d2 = hh4b.generate("2b", int(args.ratio_2b * n4), seed=args.seed + 2)
    train = {"replicas": args.replicas, "config": RatioConfig((32, 32)), "epochs": args.epochs, "patience": 5,
             "lr": 1e-3, "seed": args.seed}  # fmt: skip
    expected = n4 * region_probability("4b", "SR")

    t0 = time.perf_counter()
    library = build_library(d4)
    one = mix(d4, library)
    t_mix = time.perf_counter() - t0
    print(f"{n4} 4b events, {len(d2)} 2b events; library of {len(library)} hemispheres; "
          f"one mixing {t_mix:.2f} s ({n4 / t_mix / 1e3:.0f}k events/s)")  # fmt: skip
    print(f"SR yield: exact expectation {expected:.1f}, 4b data {hh4b.region_mask(d4, 'SR').sum()}, "
          f"mixed 4b data {hh4b.region_mask(one, 'SR').sum()}")  # fmt: skip

    t0 = time.perf_counter()
    nominal = train_reweighting(d4, d2, n_workers=args.workers, progress=False, **train).predict(d2, "SR")
    value, spread = nominal.yield_and_error()
    stat = np.sqrt(np.sum(nominal.weights[nominal.replica == 0] ** 2))
    sigma = np.hypot(spread, stat)
    print(f"reweighting on the 4b data ({time.perf_counter() - t0:.0f} s): SR {value:.1f} +- {spread:.1f} "
          f"(replicas) +- {stat:.1f} (2b stat); vs exact {100 * (value / expected - 1):+.2f} % "
          f"= {(value - expected) / sigma:+.2f} sigma")  # fmt: skip

    t0 = time.perf_counter()
    method = reweighting_method(d2, "SR", **train)
    edges = np.linspace(250.0, 1050.0, 9)
    study = study_method(method, d4, library, args.datasets, column="m_hh", edges=edges,
                         n_workers=args.workers, seed=args.seed)  # fmt: skip
    print(f"mixed-data study ({time.perf_counter() - t0:.0f} s):")
    print(study.summary())
    print("  per dataset: observed " + " ".join(f"{v:.0f}" for v in study.observed))
    print("               predicted " + " ".join(f"{v:.0f}" for v in study.predicted))
    template = np.exp(-0.5 * ((0.5 * (edges[1:] + edges[:-1]) - 450.0) / 60.0) ** 2)
    s, s_err = study.spurious_signal(template / template.sum())
    print(f"  spurious signal (Gaussian m_hh template at 450 GeV, in events): mean {s.mean():+.1f}, "
          f"spread {s.std(ddof=1):.1f}, typical fit error {s_err.mean():.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
