"""Profile-likelihood scans t(mu) = -2 ln lambda(mu), intervals, discovery significance, bootstrap envelopes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rooml.infer.fit import create_nll, minimize

__all__ = ["Envelope", "ScanResult", "discovery_significance", "envelope", "profile_scan"]


@dataclass
class ScanResult:
    """A profile-likelihood curve of one parameter: t = 2 (NLL(mu) - NLL(mu_hat))."""

    poi: str
    values: np.ndarray
    t: np.ndarray
    mu_hat: float
    nll_min: float

    def interval(self, level: float = 1.0) -> tuple[float, float]:
        """Where t crosses ``level`` (1: 68.3 % CL, 4: 95.4 % CL), by linear interpolation; ±inf if not crossed."""
        return _crossings(self.values, self.t, self.mu_hat, level)

    @property
    def sigma(self) -> float:
        """Half the width of the 1-sigma interval."""
        lo, hi = self.interval(1.0)
        return 0.5 * (hi - lo)


def _crossings(values, t, centre, level):
    """Crossings of t = level, interpolating the signed root sign(mu - mu_hat) sqrt(t).

    The signed root is linear for a parabolic t, so this is exact in the
    Gaussian limit and much better than interpolating t itself.
    """
    root = np.sign(values - centre) * np.sqrt(np.maximum(t, 0.0))
    order = np.argsort(values)
    values, root = values[order], root[order]
    target = np.sqrt(level)
    out = []
    for goal in (-target, target):
        idx = np.nonzero((root[:-1] - goal) * (root[1:] - goal) <= 0)[0]
        idx = [i for i in idx if root[i + 1] != root[i]]
        if not idx:
            out.append(-np.inf if goal < 0 else np.inf)
            continue
        i = idx[0] if goal < 0 else idx[-1]
        out.append(float(values[i] + (goal - root[i]) * (values[i + 1] - values[i]) / (root[i + 1] - root[i])))
    return out[0], out[1]


def profile_scan(model, data, poi, values, *, constraints=None, extended: bool | None = None,
                 progress: bool = True) -> ScanResult:
    """Profile-likelihood scan of ``poi`` (a RooRealVar) over ``values``, all other parameters profiled.

    The global minimum is refitted first; the scan then fixes ``poi`` at each
    value (in order of distance from the minimum, each fit starting from its
    neighbour's result) and minimizes the rest.  The parameters are restored
    afterwards.
    """
    from tqdm.auto import tqdm

    params = model.getParameters(data)
    snapshot = params.snapshot()
    was_constant = poi.isConstant()
    nll = create_nll(model, data, constraints=constraints, extended=extended, offset=False)
    try:
        poi.setConstant(False)
        minimize(nll, hesse=False)
        mu_hat, nll_min = poi.getVal(), nll.getVal()
        values = np.asarray(values, dtype=float)
        t = np.empty_like(values)
        best = params.snapshot()
        order = np.argsort(np.abs(values - mu_hat))
        for i in tqdm(order, desc=f"scan {poi.GetName()}", disable=not progress, leave=False):
            params.assign(best)  # (also restores the constant flags)
            poi.setVal(values[i])
            poi.setConstant(True)
            minimize(nll, hesse=False)
            t[i] = 2.0 * (nll.getVal() - nll_min)
        t = np.maximum(t, 0.0) if np.min(t) > -1e-3 else t  # tiny negatives are minimizer tolerance
        return ScanResult(poi.GetName(), values, t, mu_hat, nll_min)
    finally:
        params.assign(snapshot)
        poi.setConstant(was_constant)


def discovery_significance(model, data, poi, *, null: float = 0.0, constraints=None,
                           extended: bool | None = None) -> float:
    """Z0 = sqrt(q0): q0 = t(null) when mu_hat > null, else 0 (one-sided discovery test)."""
    scan = profile_scan(model, data, poi, [null], constraints=constraints, extended=extended, progress=False)
    return float(np.sqrt(max(scan.t[0], 0.0))) if scan.mu_hat > null else 0.0


@dataclass
class Envelope:
    """The HI-SIGMA envelope of bootstrap models' profile curves."""

    values: np.ndarray
    t: np.ndarray  # min over bootstraps of each minimum-subtracted curve
    best_fit: float  # mean of the bootstraps' mu_hat
    interval: tuple[float, float]  # [min_d(mu_hat_d - N sigma_d), max_d(mu_hat_d + N sigma_d)]
    mu_hats: np.ndarray
    sigmas: np.ndarray


def envelope(scans: list[ScanResult], n_sigma: float = 1.0) -> Envelope:
    """Combine the profile curves of D bootstrap models as in the HI-SIGMA paper.

    Each curve is already minimum-subtracted; the envelope is their pointwise
    minimum on the common grid, the best fit the mean of the mu_hat_d, and the
    interval [min_d(mu_hat_d - N sigma_d), max_d(mu_hat_d + N sigma_d)].
    """
    if not scans:
        raise ValueError("envelope of no scans")
    values = scans[0].values
    if any(not np.array_equal(s.values, values) for s in scans):
        raise ValueError("all scans must use the same grid of parameter values")
    mu_hats = np.array([s.mu_hat for s in scans])
    sigmas = np.array([s.sigma for s in scans])
    t = np.min(np.stack([s.t for s in scans]), axis=0)
    interval = (float(np.min(mu_hats - n_sigma * sigmas)), float(np.max(mu_hats + n_sigma * sigmas)))
    return Envelope(values, t, float(np.mean(mu_hats)), interval, mu_hats, sigmas)
