"""Plots of the demonstration: data vs fitted model, templates sampled from the flows."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["projections"]


def projections(xy: np.ndarray, paths: dict, fit, path: Path, seed: int = 1, bins: int = 50) -> Path:
    """1-D projections of data vs the fitted flow model (flow templates from the exact sampler)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    import rooml

    plt.style.use(mplhep.style.ROOT)
    n_template = 200_000
    templates = {p: rooml.load(f).sample(n_template, seed=seed) for p, f in paths.items()}
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    for i, (ax, name) in enumerate(zip(axes, ("x", "y"))):
        lo, hi = np.percentile(xy[:, i], [0.2, 99.8])
        edges = np.linspace(lo, hi, bins + 1)
        counts, _ = np.histogram(xy[:, i], edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        sig = np.histogram(templates["signal"][:, i], edges)[0] * fit.n_s / n_template
        bkg = np.histogram(templates["background"][:, i], edges)[0] * fit.n_b / n_template
        mplhep.histplot([bkg, sig], edges, stack=True, histtype="fill", label=["background flow", "signal flow"],
                        ax=ax, alpha=0.6)
        ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="ko", ms=4, label="data")
        ax.set_xlabel(name)
        ax.set_ylabel("events / bin")
        ax.legend()
    fig.suptitle(f"fitted n_s = {fit.n_s:.1f} ± {fit.n_s_err:.1f}, n_b = {fit.n_b:.1f} ± {fit.n_b_err:.1f}",
                 fontsize=16)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
