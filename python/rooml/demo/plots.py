"""Plots of the HI-SIGMA demo: data vs the fitted model, the mu scans with their envelope, pulls."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rooml.data import bbyy

__all__ = ["projections", "pulls", "scans"]

_LABELS = {
    "m_yy": r"$m_{\gamma\gamma}$ [GeV]",
    "pt_bb": r"$p_T^{bb}$ [GeV]",
    "pt_yy_over_m_yy": r"$p_T^{\gamma\gamma}/m_{\gamma\gamma}$",
    "dr_bb": r"$\Delta R_{bb}$",
    "dr_yy": r"$\Delta R_{\gamma\gamma}$",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    return plt, mplhep


def projections(data: dict, templates: dict, yields: dict, path: str | Path, bins: int = 40) -> Path:
    """1-D projections of the data and the stacked fitted templates, one panel per column.

    Parameters
    ----------
    data
        Observed columns (``m_yy`` and the bbyy features).
    templates
        ``{process: (columns, weights)}``: events sampled from the fitted model of each process.
    yields
        ``{process: fitted yield}``; each template is scaled to it.
    path
        Output image.
    """
    plt, mplhep = _pyplot()
    names = [bbyy.MASS, *bbyy.FEATURES]
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 5.5))
    for ax, name in zip(axes, names):
        lo, hi = np.percentile(data[name], [0.1, 99.5])
        edges = np.linspace(lo, hi, bins + 1)
        stack, labels = [], []
        for process in ("background", "signal"):
            columns, weights = templates[process]
            counts = np.histogram(columns[name], edges, weights=weights)[0]
            stack.append(counts * yields[process] / weights.sum())
            labels.append(f"{process} (fit)")
        observed = np.histogram(data[name], edges)[0]
        mplhep.histplot(stack, edges, stack=True, histtype="fill", label=labels, ax=ax, alpha=0.6)
        ax.errorbar(
            0.5 * (edges[1:] + edges[:-1]), observed, yerr=np.sqrt(observed), fmt="ko", ms=3, label="data"
        )
        ax.set_xlabel(_LABELS.get(name, name))
        ax.set_ylabel("events / bin")
        ax.set_yscale("log")
        ax.legend(fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return Path(path)


def scans(nominal, bootstrap_scans: list, envelope, injected: float, path: str | Path) -> Path:
    """Plot the mu scans: each bootstrap model, their envelope and its interval, the all-member model."""
    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 6))
    for d, scan in enumerate(bootstrap_scans):
        ax.plot(
            scan.values,
            scan.t,
            color="tab:blue",
            alpha=0.4,
            lw=1,
            label="bootstrap models" if d == 0 else None,
        )
    ax.plot(envelope.values, envelope.t, color="tab:blue", lw=2.5, label="envelope")
    if nominal is not None:
        ax.plot(nominal.values, nominal.t, "k--", lw=1.5, label="all members")
    lo, hi = envelope.interval
    ax.axvspan(lo, hi, color="tab:blue", alpha=0.12, label=f"envelope interval [{lo:.2f}, {hi:.2f}]")
    ax.axhline(1.0, color="gray", lw=1)
    ax.axvline(injected, color="tab:red", lw=1, label=f"injected mu = {injected:g}")
    ax.set_xlabel(r"$\mu$")
    ax.set_ylabel(r"$-2\,\Delta\ln L$")
    ax.set_ylim(0, max(4.0, 1.1 * float(np.min([np.max(s.t) for s in bootstrap_scans]))))
    ax.legend(fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def pulls(entries: list[tuple[str, float, float]], path: str | Path) -> Path:
    """Horizontal pull plot: ``(label, pull, error)`` per parameter, with the +-1 and +-2 bands."""
    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.7 * len(entries)))
    y = np.arange(len(entries))[::-1]
    ax.axvspan(-2, 2, color="yellow", alpha=0.5)
    ax.axvspan(-1, 1, color="limegreen", alpha=0.5)
    ax.errorbar([e[1] for e in entries], y, xerr=[e[2] for e in entries], fmt="ko")
    ax.set_yticks(y, [e[0] for e in entries], fontsize=13)
    ax.set_xlim(-3, 3)
    ax.set_xlabel(r"$(\hat\theta - \theta_0)/\sigma_0$")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
