"""Statistical checks of samples against truth densities (used by the test suite).

The central tool is :func:`conditional_bin_probabilities`: for a variable ``v``
drawn from ``p(v | parents)``, the expected histogram of ``v`` over a set of
events is the sum over those events of ``∫_bin p(v | parents_i) dv``. This tests
a conditional density directly against the sampler, in any slice of the
parents, with no fitted parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy import stats

__all__ = ["chi2_test", "conditional_bin_probabilities", "quantile_edges"]


def quantile_edges(x: np.ndarray, n_bins: int, lo: float, hi: float) -> np.ndarray:
    """Bin edges at the sample quantiles, with the outer edges at the support bounds."""
    inner = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.concatenate([[lo], np.unique(inner), [hi]])


def chi2_test(
    observed: np.ndarray, expected: np.ndarray, var_expected: np.ndarray | None = None
) -> tuple[float, int, float]:
    """Pearson chi2 of counts against expected counts (no fitted parameters).

    Parameters
    ----------
    observed, expected : numpy.ndarray
        Counts (or sums of weights) per bin; the totals need not be equal
        (``ndf = nbins``) unless ``var_expected`` is None, in which case the
        observed total is taken as fixed and ``ndf = nbins - 1``.
    var_expected : numpy.ndarray, optional
        Variance of the observed sum of weights in each bin (weighted events).

    Returns
    -------
    chi2, ndf, p_value
    """
    observed = np.asarray(observed, float)
    expected = np.asarray(expected, float)
    if var_expected is None:
        chi2 = float(np.sum((observed - expected) ** 2 / expected))
        ndf = observed.size - 1
    else:
        chi2 = float(np.sum((observed - expected) ** 2 / var_expected))
        ndf = observed.size
    return chi2, ndf, float(stats.chi2.sf(chi2, ndf))


def conditional_bin_probabilities(
    x: Mapping[str, np.ndarray],
    edges: np.ndarray,
    logpdf: Callable[[dict[str, np.ndarray]], np.ndarray],
    setter: Callable[[dict[str, np.ndarray], np.ndarray], None],
    *,
    nodes: int = 4,
    chunk: int = 2000,
) -> np.ndarray:
    """Per-event probabilities of each bin under a conditional density.

    Parameters
    ----------
    x : mapping of str to numpy.ndarray
        Events (their parent values are used).
    edges : numpy.ndarray
        Bin edges; the last may be ``inf`` (that bin gets ``1 - sum(others)``).
    logpdf : callable
        ``logpdf(columns) -> log p(v | parents)`` on 2-D columns.
    setter : callable
        ``setter(columns, values)`` writes trial values of ``v`` into the
        (2-D) columns, e.g. ``columns["pt_bb"] = values``.
    nodes : int
        Gauss-Legendre nodes per bin.
    chunk : int
        Events per evaluation block (bounds memory).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_events, n_bins)``.
    """
    edges = np.asarray(edges, float)
    finite_hi = np.isfinite(edges[-1])
    n_int = len(edges) - 1 if finite_hi else len(edges) - 2
    t, w = np.polynomial.legendre.leggauss(nodes)
    widths = np.diff(edges[: n_int + 1])
    # wide bins (tails) are split into panels no wider than the median bin
    panels = np.clip(np.ceil(widths / np.median(widths)), 1, 24).astype(int)
    pts_list, wts_list, owner = [], [], []
    for j in range(n_int):
        sub = np.linspace(edges[j], edges[j + 1], panels[j] + 1)
        half = 0.5 * np.diff(sub)
        pts_list.append(((0.5 * (sub[1:] + sub[:-1]))[:, None] + half[:, None] * t[None, :]).ravel())
        wts_list.append((half[:, None] * w[None, :]).ravel())
        owner.append(np.full(panels[j] * nodes, j))
    pts, wts, owner = np.concatenate(pts_list), np.concatenate(wts_list), np.concatenate(owner)
    starts = np.searchsorted(owner, np.arange(n_int))  # first node of each bin (owner is sorted)
    n = len(next(iter(x.values())))
    out = np.empty((n, len(edges) - 1))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        cols = {
            k: np.broadcast_to(np.asarray(v)[start:stop, None], (stop - start, pts.size))
            for k, v in x.items()
        }
        setter(cols, np.broadcast_to(pts[None, :], (stop - start, pts.size)))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dens = np.exp(logpdf(cols))
        probs = np.add.reduceat(dens * wts[None, :], starts, axis=1)
        out[start:stop, :n_int] = probs
        if not finite_hi:
            out[start:stop, -1] = 1.0 - probs.sum(axis=1)
    return out
