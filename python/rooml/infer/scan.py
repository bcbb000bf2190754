"""Profile-likelihood scans t(mu) = -2 ln lambda(mu), intervals, discovery significance, bootstrap envelopes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rooml.infer.fit import create_nll, minimize

__all__ = ["Envelope", "ScanResult", "discovery_significance", "envelope", "profile_scan", "scan_range"]


@dataclass
class ScanResult:
    """A profile-likelihood curve of one parameter: t = 2 (NLL(mu) - NLL(mu_hat)).

    ``low`` and ``high`` are the parameter's limits (infinite when it has none).
    """

    poi: str
    values: np.ndarray
    t: np.ndarray
    mu_hat: float
    nll_min: float
    low: float = -np.inf
    high: float = np.inf

    def interval(self, level: float = 1.0) -> tuple[float, float]:
        """Where t crosses ``level`` (1: 68.3 % CL, 4: 95.4 % CL), by linear interpolation of sqrt(t).

        A side where t stays below ``level`` up to the parameter's limit ends at that limit (a one-sided
        interval); a side where the scan stops short of both a crossing and a limit is ±inf.
        """
        lo, hi = _crossings(self.values, self.t, self.mu_hat, level)
        if np.isneginf(lo) and self._reaches(self.low):
            lo = float(self.low)
        if np.isposinf(hi) and self._reaches(self.high):
            hi = float(self.high)
        return lo, hi

    def _reaches(self, limit: float) -> bool:
        if not np.isfinite(limit) or not len(self.values):
            return False
        span = max(float(np.ptp(self.values)), abs(limit), 1e-300)
        return bool(np.min(np.abs(self.values - limit)) <= 1e-9 * span)

    def describe_interval(self, level: float = 1.0) -> str:
        """Describe the interval as text, saying which end is the parameter's limit.

        E.g. ``"[0, 0.83] (lower end at the parameter's boundary)"``.
        """
        lo, hi = self.interval(level)
        notes = []
        if np.isfinite(self.low) and lo == self.low:
            notes.append("lower end at the parameter's boundary")
        if np.isfinite(self.high) and hi == self.high:
            notes.append("upper end at the parameter's boundary")
        if np.isinf(lo) or np.isinf(hi):
            notes.append("not crossed within the scanned range: scan wider")
        text = f"[{lo:.4g}, {hi:.4g}]"
        return text + (f" ({'; '.join(notes)})" if notes else "")

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
        return ScanResult(poi.GetName(), values, t, mu_hat, nll_min, *_limits(poi))
    finally:
        params.assign(snapshot)
        poi.setConstant(was_constant)


def _limits(poi) -> tuple[float, float]:
    """Return the POI's limits, with RooFit's infinity (1e30) as numpy's."""
    import ROOT

    lo, hi = poi.getMin(), poi.getMax()
    return (-np.inf if ROOT.RooNumber.isInfinite(lo) else lo, np.inf if ROOT.RooNumber.isInfinite(hi) else hi)


def scan_range(model, data, poi, *, n_sigma: float = 2.5, constraints=None, extended: bool | None = None,
               max_steps: int = 40) -> tuple[float, float]:
    """Find the range of ``poi`` where t(mu) <= n_sigma**2 from the profile likelihood itself.

    Hesse's error of a parameter fitted at (or near) one of its limits says little about the curve on the
    allowed side (e.g. mu = 1e-12 +- 1e-4 at mu >= 0): each side is searched by profile fits instead,
    starting from Hesse's estimate and stepping with the signed root sqrt(t), which is linear in mu in
    the Gaussian limit, until t reaches ``n_sigma**2`` within a factor 1.5 in sqrt(t), or the limit.
    A side that ends at the parameter's limit returns the limit.  The parameters are restored.

    Returns
    -------
    (low, high)
        The range to scan; a side cut by a limit is that limit.
    """
    from rooml.infer._profile import ProfiledNLL

    low, high = _limits(poi)
    profile = ProfiledNLL(model, data, poi, constraints=constraints, extended=extended)
    try:
        mu_hat, sigma, nll_hat = profile.global_fit()
        width = high - low if np.isfinite(high - low) else max(abs(mu_hat), 1.0)
        if not (np.isfinite(sigma) and sigma > 0):
            sigma = 1e-3 * width
        ends = []
        for direction, limit in ((-1.0, low), (1.0, high)):
            step = n_sigma * sigma
            end = limit
            for _ in range(max_steps):
                mu = mu_hat + direction * step
                if (mu - limit) * direction >= 0:  # at or beyond the limit: the side ends there if t is low
                    mu = limit
                    if not np.isfinite(mu):
                        break
                root = np.sqrt(max(2.0 * (profile.at(mu) - nll_hat), 0.0))
                if root >= n_sigma and root <= 1.5 * n_sigma:
                    end = mu
                    break
                if mu == limit and root < n_sigma:
                    end = limit
                    break
                # sqrt(t) ~ linear: rescale the step towards sqrt(t) = n_sigma (at most 10x per step)
                distance = abs(mu - mu_hat)
                factor = n_sigma / root if root > 0 else 10.0
                step = distance * min(max(factor, 0.1), 10.0)
                end = mu
            ends.append(float(end))
        return ends[0], ends[1]
    finally:
        profile.restore()


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
