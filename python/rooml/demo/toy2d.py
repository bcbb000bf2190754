"""Two analytically known 2-D densities (signal-like and background-like) on a box.

Signal: a correlated Gaussian.  Background: a two-component Gaussian mixture.
Both are also built as RooFit pdfs, so a fit with trained flows can be compared
with the same fit using the exact densities.  The box is wide enough that the
mass outside it is below 1e-6 for both, so densities normalized on the plane
(flows) and on the box (RooFit) agree.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import multivariate_normal

__all__ = ["BOX", "FEATURES", "SIGNAL", "BACKGROUND", "log_density", "sample", "roofit_truth"]

FEATURES = ("x", "y")
BOX = (-10.0, 10.0)

# (weight, mean, covariance) per Gaussian component
SIGNAL = [(1.0, (1.0, 1.0), ((0.36, 0.216), (0.216, 0.36)))]
BACKGROUND = [
    (0.6, (-1.0, 0.0), ((4.0, 0.9), (0.9, 2.25))),
    (0.4, (2.0, 1.0), ((2.25, -1.2), (-1.2, 4.0))),
]


def _components(process: str):
    if process not in ("signal", "background"):
        raise ValueError(f"unknown process {process!r}: use 'signal' or 'background'")
    return SIGNAL if process == "signal" else BACKGROUND


def log_density(process: str, xy: np.ndarray) -> np.ndarray:
    """Exact log-density of ``process`` at points ``xy`` (shape (N, 2))."""
    terms = [np.log(w) + multivariate_normal(m, c).logpdf(xy) for w, m, c in _components(process)]
    return np.logaddexp.reduce(np.stack(terms), axis=0) if len(terms) > 1 else terms[0]


def sample(process: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` events (shape (n, 2)) of ``process``."""
    comps = _components(process)
    counts = rng.multinomial(n, [w for w, _, _ in comps])
    parts = [rng.multivariate_normal(m, c, size=k) for (w, m, c), k in zip(comps, counts)]
    out = np.concatenate(parts)
    return out[rng.permutation(n)]


def roofit_truth(x, y, process: str, keep: list, width_scale: float = 1.0):
    """Build the exact density of ``process`` in ``x``, ``y`` (RooMultiVarGaussian mixture).

    ``width_scale`` != 1 scales every component's widths (a deliberately wrong density, for tests
    that a comparison has the power to reject one).
    """
    import ROOT

    pdfs, fracs = ROOT.RooArgList(), ROOT.RooArgList()
    comps = _components(process)
    for i, (w, m, c) in enumerate(comps):
        mu = ROOT.TVectorD(2)
        cov = ROOT.TMatrixDSym(2)
        for a in range(2):
            mu[a] = m[a]
            for b in range(2):
                cov[a][b] = c[a][b] * width_scale**2
        g = ROOT.RooMultiVarGaussian(f"true_{process}_{i}", "", ROOT.RooArgList(x, y), mu, cov)
        keep.append(g)
        pdfs.add(g)
        if i < len(comps) - 1:
            f = ROOT.RooConstVar(f"true_{process}_f{i}", "", w)
            keep.append(f)
            fracs.add(f)
    if len(comps) == 1:
        return pdfs[0]
    pdf = ROOT.RooAddPdf(f"true_{process}", "", pdfs, fracs)
    keep.append(pdf)
    return pdf
