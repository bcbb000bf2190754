"""Gaussian-process model of the blinded HH -> 4b mass plane (``rooml.models.gp``).

The data-driven background of method 3 in DESIGN.md: a 2-D histogram of
``(m_H1, m_H2)`` in a box around the signal region (SR) is fitted with a
Gaussian process (GP) whose kernel is a constant times an anisotropic RBF
(one length scale per axis). The SR bins are blinded: left out of the fit. The
GP then predicts the SR bin yields with an uncertainty, the prediction is
sampled (inverse CDF over the bins, uniform inside each bin, so the sampled
masses are continuous) to feed the conditional kinematics flow, and the SR
normalization is ``n_SR = n_obs(not SR) * n_samp(SR) / n_samp(not SR)``.

Choices (see ``docs/gp_massplane.md``):

* Targets are ``(counts - mu(m1, m2)) / scale``: ``scale`` is the mean count
  of the fitted bins and ``mu`` a mean function fitted first to the same bins
  by Poisson likelihood, by default ``exp(c0 + c1 m1 + c2 m2)`` times a
  logistic turn-on per axis. Far from the data the GP relaxes to ``mu``. With
  a constant mean instead, the RBF has to bend around the turn-on at low mass
  and the ringing this leaves puts 1.3 to 2 % too many events in the hh4b SR
  (about one GP standard deviation); the turn-on mean removes that bias (see
  ``docs/gp_massplane.md``).
* Poisson errors enter as per-bin noise ``alpha_i = var_i / scale^2``. The fit
  runs twice: first with the observed variances (``sum w^2``, floored at one
  event), then with variances taken from the first pass's prediction, which
  removes the downward bias that observed-count weights give (a low fluctuation
  gets a smaller error and pulls the fit down).
* A bin is blinded if any part of it overlaps the SR, so no SR event enters
  the fit; "SR bins" below means these blinded bins.
* Pulls outside the SR are leave-one-out by default: the GP's closed-form
  leave-one-out mean (Rasmussen & Williams, eq. 5.12, hyper-parameters fixed)
  predicts each fitted bin from all the others, so the pull is as honest as in
  the SR. ``method="fit"`` uses the posterior mean of all fitted bins instead
  (narrower than unit width, since each bin helped make its own prediction).

References: C. E. Rasmussen, C. K. I. Williams, Gaussian Processes for Machine
Learning (MIT Press 2006), ch. 2 and 5; A. Frate et al., Modeling smooth
backgrounds and generic localized signals with Gaussian processes,
arXiv:1709.05681; ATLAS HH -> 4b (resolved) with a GP mass-plane background.

Examples
--------
>>> import numpy as np
>>> from rooml.data import hh4b
>>> from rooml.models.gp import fit_mass_plane
>>> s = hh4b.generate("4b", 60_000, seed=1, year=2017)
>>> gp = fit_mass_plane(s["m_h1"], s["m_h2"], year=2017, seed=0)
>>> mean, std = gp.predict("SR")          # one entry per blinded bin
>>> bool(np.all(std < 0.2 * mean))
True
>>> m1, m2 = gp.sample(1000, region="SR", rng=1)
>>> bool(np.all((m1 >= 80) & (m1 <= 180)))
True
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from scipy.linalg import cho_solve
from scipy.optimize import minimize
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel
from threadpoolctl import threadpool_limits

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_BOX",
    "MEAN_FUNCTIONS",
    "MassPlaneGP",
    "fit_histogram",
    "fit_mass_plane",
    "fit_per_year",
    "plot_mass_plane",
]

DEFAULT_BOX = ((80.0, 180.0), (70.0, 170.0))
"""Default fit box in GeV: about 30 GeV of sideband on every side of the hh4b SR."""
DEFAULT_BINS = (20, 20)
"""Default binning: 5 GeV bins."""
MIN_BINS_PER_AXIS = 5
MIN_FITTED_BINS = 25
_SUBGRID = 10  # points per bin side used to find which bins touch the blinded region

Blind = Union[Callable[[np.ndarray, np.ndarray], np.ndarray], np.ndarray]
Region = Union[str, np.ndarray, None]


def _default_blind(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    from rooml.data.hh4b import in_signal_region

    return in_signal_region(m1, m2)


@dataclass(eq=False)
class MassPlaneGP:
    """A GP fitted to one blinded ``(m_H1, m_H2)`` histogram (made by :func:`fit_mass_plane`).

    Attributes
    ----------
    edges_m1, edges_m2 : numpy.ndarray
        Bin edges in GeV.
    year : int or None
        The data-taking year the fit belongs to (bookkeeping only).
    length_scales : tuple of float
        Fitted RBF length scales ``(l_m1, l_m2)`` in GeV.
    amplitude : float
        Fitted kernel amplitude (standard deviation of the GP prior) in units
        of the mean bin count.
    scale : float
        Mean count of the fitted bins; targets are ``(counts - mu) / scale``.
    mean_function : str
        ``"turn_on"``, ``"exponential"`` or ``"constant"`` (see :func:`fit_histogram`).
    mean_coefficients : tuple of float
        Fitted mean-function parameters (see :meth:`mean_counts`).
    blinded : numpy.ndarray of bool
        ``(n1, n2)``; bins left out of the fit (those touching the SR).
    counts : numpy.ndarray
        ``(n1, n2)`` observed (weighted) counts of the fitted bins, NaN in the
        blinded bins (the fit never saw them).
    variances : numpy.ndarray
        ``(n1, n2)`` per-bin count variances used as the GP noise (second pass),
        NaN in the blinded bins.
    n_obs_not_sr : float
        Observed (weighted) events in the box and outside the blinded region
        (event level), the default ``n_obs(not SR)`` of :meth:`sr_normalization`.
    log_marginal_likelihood : float
        Of the final fit.
    regressor : sklearn.gaussian_process.GaussianProcessRegressor
        The fitted regressor (inputs: bin centres in GeV; targets as above).
    blind : callable or numpy.ndarray of bool
        The blinding definition the fit used.
    """

    edges_m1: np.ndarray
    edges_m2: np.ndarray
    year: int | None
    length_scales: tuple[float, float]
    amplitude: float
    scale: float
    mean_function: str
    mean_coefficients: tuple[float, ...]
    blinded: np.ndarray
    counts: np.ndarray
    variances: np.ndarray
    n_obs_not_sr: float
    log_marginal_likelihood: float
    regressor: GaussianProcessRegressor = field(repr=False)
    blind: Blind = field(repr=False)

    # ------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        """Number of bins ``(n1, n2)``."""
        return (len(self.edges_m1) - 1, len(self.edges_m2) - 1)

    @property
    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Bin centres ``(c1, c2)`` in GeV."""
        return 0.5 * (self.edges_m1[1:] + self.edges_m1[:-1]), 0.5 * (self.edges_m2[1:] + self.edges_m2[:-1])

    @property
    def box(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The fit box ``((lo1, hi1), (lo2, hi2))`` in GeV."""
        return (
            (float(self.edges_m1[0]), float(self.edges_m1[-1])),
            (float(self.edges_m2[0]), float(self.edges_m2[-1])),
        )

    def _points(self, mask: np.ndarray | None = None) -> np.ndarray:
        c1, c2 = self.centres
        g1, g2 = np.meshgrid(c1, c2, indexing="ij")
        pts = np.column_stack([g1.ravel(), g2.ravel()])
        return pts if mask is None else pts[mask.ravel()]

    def mean_counts(self, points: np.ndarray) -> np.ndarray:
        """Evaluate the fitted mean function (counts per bin) at ``(k, 2)`` points ``(m1, m2)`` in GeV.

        Parameters
        ----------
        points : numpy.ndarray
            ``(k, 2)`` masses in GeV.

        Returns
        -------
        numpy.ndarray
            ``mu = exp(c0 + c1 (m1 - x1)/100 + c2 (m2 - x2)/100) [* sigmoid((m1 - a1)/w1)
            * sigmoid((m2 - a2)/w2)]`` with :attr:`mean_coefficients` ``= (x1, x2, c0, c1,
            c2[, a1, log w1, a2, log w2])``, or :attr:`scale` for the constant mean.
        """
        points = np.asarray(points, float)
        return _mean_function(self.mean_function, self.mean_coefficients, self.scale, points)

    def _to_counts(self, points: np.ndarray, f: np.ndarray) -> np.ndarray:
        return self.mean_counts(points) + self.scale * f

    def region_mask(self, region: Region = None) -> np.ndarray:
        """Boolean ``(n1, n2)`` bin mask of a region.

        Parameters
        ----------
        region : {"SR", "not_SR", "all"}, numpy.ndarray of bool or None
            ``"SR"`` are the blinded bins, ``"not_SR"`` the fitted ones,
            ``None``/``"all"`` the whole box; an array is checked and returned.

        Returns
        -------
        numpy.ndarray of bool
        """
        if region is None or (isinstance(region, str) and region == "all"):
            return np.ones(self.shape, bool)
        if isinstance(region, str):
            if region == "SR":
                return self.blinded.copy()
            if region == "not_SR":
                return ~self.blinded
            raise ValueError(f"unknown region {region!r}; use 'SR', 'not_SR', 'all' or a bin mask")
        mask = np.asarray(region)
        if mask.dtype != bool or mask.shape != self.shape:
            raise ValueError(f"a region mask must be a bool array of shape {self.shape}, got {mask.dtype} "
                             f"{mask.shape}")
        return mask

    def in_blinded_region(self, m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
        """Event-level blinding: the ``blind`` callable, or the bin mask looked up per event."""
        m1, m2 = np.asarray(m1, float), np.asarray(m2, float)
        if callable(self.blind):
            return np.asarray(self.blind(m1, m2), bool)
        i, j, inside = _bin_index(self.edges_m1, self.edges_m2, m1, m2)
        out = np.zeros(m1.shape, bool)
        out[inside] = self.blinded[i[inside], j[inside]]
        return out

    @property
    def sr_fraction(self) -> np.ndarray:
        """``(n1, n2)`` fraction of each bin's area inside the blinded region (midpoint sub-grid)."""
        if not callable(self.blind):
            return self.blinded.astype(float)
        return _bin_fraction(self.edges_m1, self.edges_m2, self.blind, 20)

    @property
    def sr_half_widths(self) -> tuple[float, float]:
        """Half extent of the blinded region along ``m1`` and ``m2`` (GeV): the "SR radius" per axis."""
        if callable(self.blind):
            inside = _bin_fraction(self.edges_m1, self.edges_m2, self.blind, 20, reduce=False)
            g1, g2 = _subgrid(self.edges_m1, self.edges_m2, 20, midpoints=True)
            sel = inside.ravel()
            return (float(np.ptp(g1.ravel()[sel])) / 2, float(np.ptp(g2.ravel()[sel])) / 2)
        rows = np.flatnonzero(self.blinded.any(axis=1))
        cols = np.flatnonzero(self.blinded.any(axis=0))
        return (
            float(self.edges_m1[rows[-1] + 1] - self.edges_m1[rows[0]]) / 2,
            float(self.edges_m2[cols[-1] + 1] - self.edges_m2[cols[0]]) / 2,
        )

    def histogram(self, m1: np.ndarray, m2: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Bin events with the model's binning (events outside the box are dropped).

        Parameters
        ----------
        m1, m2 : numpy.ndarray
            Masses in GeV.
        weights : numpy.ndarray, optional

        Returns
        -------
        numpy.ndarray
            ``(n1, n2)`` (weighted) counts, including the blinded bins.
        """
        m1, m2, weights = _check_events(m1, m2, weights)
        return np.histogram2d(m1, m2, bins=(self.edges_m1, self.edges_m2), weights=weights)[0]

    # ------------------------------------------------------------ prediction
    def predict(self, region: Region = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean counts and their GP standard deviation.

        Parameters
        ----------
        region : see :meth:`region_mask`
            ``None`` gives ``(n1, n2)`` arrays over the whole box; a region
            gives 1-D arrays over its bins (C order, as ``array[mask]``).

        Returns
        -------
        mean_counts, std_counts : numpy.ndarray
            The std is that of the predicted mean (the latent function), not
            of a new observation: add the Poisson variance for that.
        """
        mask = None if region is None else self.region_mask(region)
        pts = self._points(mask)
        f, std = self.regressor.predict(pts, return_std=True)
        mean, std = self._to_counts(pts, f), std * self.scale
        if mask is None:
            return mean.reshape(self.shape), std.reshape(self.shape)
        return mean, std

    def predict_points(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted counts per bin and their GP standard deviation at arbitrary points.

        Parameters
        ----------
        points : numpy.ndarray
            ``(k, 2)`` masses ``(m1, m2)`` in GeV (bin centres reproduce :meth:`predict`).

        Returns
        -------
        mean_counts, std_counts : numpy.ndarray
            ``(k,)`` each; the smooth function whose values at the bin centres
            :meth:`predict` returns (this is what :func:`rooml.export.export_gp_massplane` exports).
        """
        points = np.asarray(points, float).reshape(-1, 2)
        f, std = self.regressor.predict(points, return_std=True)
        return self._to_counts(points, f), std * self.scale

    def predicted_yield(self, region: Region = "SR") -> tuple[float, float]:
        """Predicted total count in a region and its GP uncertainty (full bin-to-bin covariance).

        Parameters
        ----------
        region : see :meth:`region_mask`

        Returns
        -------
        total, sigma : float
        """
        mask = self.region_mask(region)
        pts = self._points(mask)
        f, cov = self.regressor.predict(pts, return_cov=True)
        return float(self._to_counts(pts, f).sum()), float(np.sqrt(max(cov.sum(), 0.0)) * self.scale)

    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form leave-one-out prediction of every fitted bin (hyper-parameters fixed).

        Returns
        -------
        mean_counts, std_counts : numpy.ndarray
            ``(n1, n2)``, NaN in the blinded bins; ``std`` includes the left-out
            bin's own noise (it is the predictive std of a new count minus
            nothing else: ``sqrt(1 / [K^-1]_ii)``).
        """
        gpr = self.regressor
        kinv = cho_solve((gpr.L_, True), np.eye(gpr.L_.shape[0]))
        d = np.diag(kinv)
        y = gpr.y_train_.ravel()
        loo = y - gpr.alpha_.ravel() / d
        mean = np.full(self.shape, np.nan)
        std = np.full(self.shape, np.nan)
        fit = ~self.blinded
        mean[fit] = self._to_counts(self._points(fit), loo)
        std[fit] = np.sqrt(1.0 / d) * self.scale
        return mean, std

    def pulls(self, observed: np.ndarray, region: str = "SR", *, method: str = "loo") -> np.ndarray:
        """Return the pulls ``(prediction - observed) / sqrt(observed)`` per bin of a region.

        Parameters
        ----------
        observed : numpy.ndarray
            ``(n1, n2)`` counts, e.g. from :meth:`histogram`; ``sqrt`` is taken
            of ``max(observed, 1)`` so empty bins stay finite.
        region : {"SR", "not_SR"} or bool mask
            Bins to return (C order).
        method : {"loo", "fit"}
            Prediction used in fitted bins: leave-one-out (default) or the
            posterior mean given all fitted bins. Blinded bins always use the
            posterior mean (they were never fitted).

        Returns
        -------
        numpy.ndarray
        """
        observed = np.asarray(observed, float)
        if observed.shape != self.shape:
            raise ValueError(f"observed counts have shape {observed.shape}, expected {self.shape}")
        if method not in ("loo", "fit"):
            raise ValueError(f"method must be 'loo' or 'fit', not {method!r}")
        mask = self.region_mask(region)
        pred, _ = self.predict()
        if method == "loo":
            loo, _ = self.leave_one_out()
            pred = np.where(self.blinded, pred, loo)
        return ((pred - observed) / np.sqrt(np.maximum(observed, 1.0)))[mask]

    # ------------------------------------------------------------ sampling
    def sample(
        self, n: int, region: Region = None, rng: int | np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw continuous ``(m1, m2)`` from the GP prediction.

        A bin is chosen by inverse CDF of the predicted counts (negative
        predictions clipped to zero) over the region's bins, then a point
        uniformly inside it.

        Parameters
        ----------
        n : int
            Number of draws.
        region : see :meth:`region_mask`
            Bins to sample from; ``"SR"`` are the blinded bins (which also
            cover parts of the sidebands: filter with :meth:`in_blinded_region`
            for events strictly in the SR). Default: the whole box.
        rng : int, numpy.random.Generator or None
            Seed or generator.

        Returns
        -------
        m1, m2 : numpy.ndarray
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(rng)
        mask = self.region_mask(region)
        mean, _ = self.predict()
        p = np.where(mask, np.clip(mean, 0.0, None), 0.0).ravel()
        cdf = np.cumsum(p)
        if cdf[-1] <= 0:
            raise ValueError("the prediction is zero everywhere in the requested region")
        idx = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
        idx = np.minimum(idx, p.size - 1)
        i, j = np.unravel_index(idx, self.shape)
        u = rng.random((2, n))
        e1, e2 = self.edges_m1, self.edges_m2
        return e1[i] + u[0] * (e1[i + 1] - e1[i]), e2[j] + u[1] * (e2[j + 1] - e2[j])

    def sr_normalization(
        self,
        n_obs_not_sr: float | None = None,
        n_samples: int | None = 1_000_000,
        rng: int | np.random.Generator | None = 0,
    ) -> float:
        """SR yield ``n_obs(not SR) * n_samp(SR) / n_samp(not SR)``.

        Samples are drawn from the GP prediction over the whole box and
        classified event by event with the blinding region.

        Parameters
        ----------
        n_obs_not_sr : float, optional
            Observed events in the box outside the SR; default
            :attr:`n_obs_not_sr` from the fit.
        n_samples : int or None
            Number of draws; ``None`` gives the infinite-sample limit
            (the sampled density integrated exactly, bin by bin).
        rng : int, numpy.random.Generator or None

        Returns
        -------
        float
        """
        n_obs = self.n_obs_not_sr if n_obs_not_sr is None else float(n_obs_not_sr)
        if not np.isfinite(n_obs):
            raise ValueError("n_obs_not_sr is unknown (the fit was given a histogram): pass it")
        if n_samples is None:
            mean, _ = self.predict()
            p = np.clip(mean, 0.0, None)
            f = self.sr_fraction
            n_sr, n_out = float((p * f).sum()), float((p * (1.0 - f)).sum())
        else:
            m1, m2 = self.sample(n_samples, None, rng)
            sr = self.in_blinded_region(m1, m2)
            n_sr, n_out = float(sr.sum()), float((~sr).sum())
        if n_out <= 0:
            raise ValueError("no sampled events outside the SR")
        return n_obs * n_sr / n_out


# ---------------------------------------------------------------- helpers
def _check_events(m1, m2, weights):
    m1 = np.asarray(m1, float).ravel()
    m2 = np.asarray(m2, float).ravel()
    if m1.shape != m2.shape:
        raise ValueError(f"m1 and m2 differ in length: {m1.size} vs {m2.size}")
    bad = ~(np.isfinite(m1) & np.isfinite(m2))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} events have a NaN or infinite mass")
    if weights is not None:
        weights = np.asarray(weights, float).ravel()
        if weights.shape != m1.shape:
            raise ValueError(f"weights have {weights.size} entries, expected {m1.size}")
        if not np.all(np.isfinite(weights)):
            raise ValueError("weights contain NaN or infinite values")
    return m1, m2, weights


def _bin_index(e1, e2, m1, m2):
    i = np.searchsorted(e1, m1, side="right") - 1
    j = np.searchsorted(e2, m2, side="right") - 1
    # the upper edge belongs to the last bin, as in numpy.histogram2d
    i = np.where(m1 == e1[-1], len(e1) - 2, i)
    j = np.where(m2 == e2[-1], len(e2) - 2, j)
    inside = (i >= 0) & (i < len(e1) - 1) & (j >= 0) & (j < len(e2) - 1)
    return np.clip(i, 0, len(e1) - 2), np.clip(j, 0, len(e2) - 2), inside


def _subgrid(e1, e2, k, midpoints):
    """Points of a ``k x k`` (midpoints) or ``(k+1) x (k+1)`` (edges included) grid in every bin."""
    t = (np.arange(k) + 0.5) / k if midpoints else np.linspace(0.0, 1.0, k + 1)
    g1 = (e1[:-1, None] + np.diff(e1)[:, None] * t[None, :]).ravel()
    g2 = (e2[:-1, None] + np.diff(e2)[:, None] * t[None, :]).ravel()
    return np.meshgrid(g1, g2, indexing="ij")


def _bin_fraction(e1, e2, blind, k, reduce=True):
    g1, g2 = _subgrid(e1, e2, k, midpoints=True)
    inside = np.asarray(blind(g1, g2), bool)
    if not reduce:
        return inside
    return inside.reshape(len(e1) - 1, k, len(e2) - 1, k).mean(axis=(1, 3))


def _blinded_bins(e1, e2, blind: Blind) -> np.ndarray:
    shape = (len(e1) - 1, len(e2) - 1)
    if callable(blind):
        k = _SUBGRID
        g1, g2 = _subgrid(e1, e2, k, midpoints=False)
        inside = np.asarray(blind(g1, g2), bool)
        if inside.shape != g1.shape:
            raise ValueError(f"blind(m1, m2) returned shape {inside.shape}, expected {g1.shape}")
        return inside.reshape(shape[0], k + 1, shape[1], k + 1).any(axis=(1, 3))
    mask = np.asarray(blind)
    if mask.dtype != bool or mask.shape != shape:
        raise ValueError(f"a blind mask must be a bool array of shape {shape}, got {mask.dtype} {mask.shape}")
    return mask.copy()


def _make_edges(box, bins) -> tuple[np.ndarray, np.ndarray]:
    try:
        (lo1, hi1), (lo2, hi2) = box
        n1, n2 = (int(b) for b in bins)
    except (TypeError, ValueError):
        raise ValueError(f"box must be ((lo1, hi1), (lo2, hi2)) and bins (n1, n2); got {box!r}, {bins!r}") \
            from None
    for lo, hi in ((lo1, hi1), (lo2, hi2)):
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"box edges must be finite with hi > lo, got {box!r}")
    if min(n1, n2) < MIN_BINS_PER_AXIS:
        raise ValueError(f"too few bins {bins!r}: need at least {MIN_BINS_PER_AXIS} per axis")
    return np.linspace(lo1, hi1, n1 + 1), np.linspace(lo2, hi2, n2 + 1)


MEAN_FUNCTIONS = ("constant", "exponential", "turn_on")
"""Mean functions of :func:`fit_histogram` (see its ``mean`` parameter)."""


def _log_mean_terms(p: np.ndarray, points: np.ndarray, centre) -> tuple[np.ndarray, list[np.ndarray]]:
    """``log mu`` of the exponential(-times-turn-on) mean and its gradient with respect to ``p``."""
    u = (points[:, 0] - centre[0]) / 100.0
    v = (points[:, 1] - centre[1]) / 100.0
    log_mu = p[0] + p[1] * u + p[2] * v
    grad = [np.ones_like(u), u, v]
    if len(p) == 7:
        for axis, (a, log_w) in enumerate(((p[3], p[4]), (p[5], p[6]))):
            t = (points[:, axis] - a) / np.exp(log_w)
            log_mu = log_mu - np.logaddexp(0.0, -t)  # log of the logistic turn-on
            d = np.exp(-np.logaddexp(0.0, t))  # d log(sigmoid(t)) / dt = sigmoid(-t)
            grad += [-d / np.exp(log_w), -d * t]
    return log_mu, grad


def _mean_function(kind: str, coef: tuple[float, ...], scale: float, points: np.ndarray) -> np.ndarray:
    if kind == "constant":
        return np.full(len(points), scale)
    return np.exp(_log_mean_terms(np.asarray(coef[2:]), points, coef[:2])[0])


def _fit_mean(kind: str, x: np.ndarray, counts: np.ndarray, edges) -> tuple[float, ...]:
    """Poisson maximum-likelihood fit of the mean function to the fitted bins.

    Returns ``(x1, x2, c0, c1, c2[, a1, log w1, a2, log w2])``: the reference
    point in GeV, then ``log mu = c0 + c1 (m1 - x1)/100 + c2 (m2 - x2)/100``
    (``+ log sigmoid((m - a)/w)`` per axis for ``"turn_on"``).
    """
    if kind == "constant":
        return ()
    e1, e2 = edges
    centre = (0.5 * (e1[0] + e1[-1]), 0.5 * (e2[0] + e2[-1]))
    total = float(counts.sum())

    def nll(p):
        log_mu, grad = _log_mean_terms(p, x, centre)
        mu = np.exp(log_mu)
        r = (mu - counts) / total
        return float(np.sum(mu - counts * log_mu) / total), np.array([r @ g for g in grad])

    # exponential plane by Newton steps (concave problem), then the turn-ons from two starts
    a = np.column_stack([np.ones(len(x)), (x[:, 0] - centre[0]) / 100.0, (x[:, 1] - centre[1]) / 100.0])
    beta = np.array([np.log(counts.mean()), 0.0, 0.0])
    for _ in range(100):
        mu = np.exp(a @ beta)
        step = np.clip(np.linalg.solve(a.T @ (mu[:, None] * a), a.T @ (counts - mu)), -1.0, 1.0)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    if kind == "exponential":
        return (*centre, *(float(b) for b in beta))
    width = max(e1[-1] - e1[0], e2[-1] - e2[0])
    bounds = [(None, None)] * 3 + [(e1[0] - width, e1[-1]), (0.0, np.log(width)),
                                   (e2[0] - width, e2[-1]), (0.0, np.log(width))]
    best = None
    for shift in (0.0, 0.3 * width):
        p0 = np.concatenate([beta, [e1[0] - shift, np.log(10.0), e2[0] - shift, np.log(10.0)]])
        res = minimize(nll, p0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    return (*centre, *(float(b) for b in best.x))


def _fit_gpr(x, y, noise, kernel, seed, restarts):
    gpr = GaussianProcessRegressor(
        kernel=kernel, alpha=noise, normalize_y=False, n_restarts_optimizer=restarts, random_state=seed
    )
    return gpr.fit(x, y)


# ---------------------------------------------------------------- fitting
def fit_mass_plane(
    m1: np.ndarray,
    m2: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    box: tuple[tuple[float, float], tuple[float, float]] = DEFAULT_BOX,
    bins: tuple[int, int] = DEFAULT_BINS,
    blind: Blind | None = None,
    year: int | None = None,
    seed: int = 0,
    **options: Any,
) -> MassPlaneGP:
    """Fit a GP to the blinded ``(m_H1, m_H2)`` histogram of events.

    Parameters
    ----------
    m1, m2 : numpy.ndarray
        Leading and subleading Higgs-candidate masses in GeV (events outside
        the box are ignored).
    weights : numpy.ndarray, optional
        Event weights; the per-bin variance is ``sum w^2``.
    box : ((lo1, hi1), (lo2, hi2))
        Fit range in GeV; must contain the blinded region with at least one
        fitted bin on every side. Default :data:`DEFAULT_BOX`.
    bins : (n1, n2)
        Number of equal-width bins per axis (at least 5 each). Default
        :data:`DEFAULT_BINS` (5 GeV).
    blind : callable or numpy.ndarray of bool, optional
        ``blind(m1, m2) -> bool`` event-level region (a bin is blinded if any
        part of it is inside), or a ``(n1, n2)`` bin mask. Default: the
        :mod:`rooml.data.hh4b` SR, ``X_HH < 1.6``.
    year : int, optional
        Recorded on the result.
    seed : int
        Random state of the hyper-parameter optimizer restarts.
    **options
        ``restarts``, ``length_scale_bounds``, ``mean``: see
        :func:`fit_histogram`.

    Returns
    -------
    MassPlaneGP

    Raises
    ------
    ValueError
        NaN masses, bad box or binning, too few bins, an empty blinded region,
        a blinded region touching the box boundary, too few fitted bins or no
        events in them.
    """
    m1, m2, weights = _check_events(m1, m2, weights)
    e1, e2 = _make_edges(box, bins)
    blind = _default_blind if blind is None else blind
    blinded = _blinded_bins(e1, e2, blind)  # validated here, before any histogramming
    w = np.ones_like(m1) if weights is None else weights
    counts = np.histogram2d(m1, m2, bins=(e1, e2), weights=w)[0]
    sumw2 = np.histogram2d(m1, m2, bins=(e1, e2), weights=w * w)[0]
    in_box = (m1 >= e1[0]) & (m1 <= e1[-1]) & (m2 >= e2[0]) & (m2 <= e2[-1])
    sr_event = np.zeros_like(in_box)
    if callable(blind):
        sr_event[in_box] = np.asarray(blind(m1[in_box], m2[in_box]), bool)
    else:
        i, j, inside = _bin_index(e1, e2, m1, m2)
        sr_event = inside & blinded[i, j]
    n_obs_not_sr = float(w[in_box & ~sr_event].sum())
    # the blinded bins' counts never reach the fit: hand over NaN there
    counts[blinded] = np.nan
    sumw2[blinded] = np.nan
    return fit_histogram(
        counts, (e1, e2), variances=sumw2, blind=blind, year=year, seed=seed, n_obs_not_sr=n_obs_not_sr,
        **options,
    )


def fit_histogram(
    counts: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray],
    *,
    variances: np.ndarray | None = None,
    blind: Blind | None = None,
    year: int | None = None,
    seed: int = 0,
    n_obs_not_sr: float | None = None,
    restarts: int = 3,
    length_scale_bounds: tuple[float, float] | None = None,
    mean: str = "turn_on",
) -> MassPlaneGP:
    """Fit a GP to an already binned ``(m_H1, m_H2)`` histogram (blinded bins ignored).

    Parameters
    ----------
    counts : numpy.ndarray
        ``(n1, n2)`` (weighted) counts; values in blinded bins are ignored
        (they may be NaN).
    edges : (numpy.ndarray, numpy.ndarray)
        Bin edges along ``m1`` and ``m2`` in GeV (increasing; at least 5 bins each).
    variances : numpy.ndarray, optional
        ``(n1, n2)`` count variances (``sum w^2``); default ``counts`` (Poisson).
    blind, year, seed
        As in :func:`fit_mass_plane`.
    n_obs_not_sr : float, optional
        Observed events in the box outside the SR (event level), stored for
        :meth:`MassPlaneGP.sr_normalization`; default NaN (then it must be
        passed there).
    restarts : int
        Extra optimizer starts (log-uniform in the bounds) of the first pass.
    length_scale_bounds : (float, float), optional
        RBF length-scale bounds in GeV; default (one bin width, 10 box widths).
    mean : {"turn_on", "exponential", "constant"}
        Mean function ``mu(m1, m2)``, fitted to the fitted bins by Poisson
        likelihood before the GP: ``exp(c0 + c1 m1 + c2 m2)`` times a logistic
        turn-on ``1 / (1 + exp(-(m - a) / w))`` per axis (default), the
        exponential alone, or the mean bin count. The GP models
        ``(counts - mu) / scale``, ``scale`` = mean count of the fitted bins.

    Returns
    -------
    MassPlaneGP
    """
    e1, e2 = (np.asarray(e, float) for e in edges)
    if e1.ndim != 1 or e2.ndim != 1 or not (np.all(np.diff(e1) > 0) and np.all(np.diff(e2) > 0)):
        raise ValueError("edges must be two increasing 1-D arrays")
    if min(len(e1), len(e2)) - 1 < MIN_BINS_PER_AXIS:
        n = (len(e1) - 1, len(e2) - 1)
        raise ValueError(f"too few bins {n}: need at least {MIN_BINS_PER_AXIS} per axis")
    shape = (len(e1) - 1, len(e2) - 1)
    counts = np.asarray(counts, float)
    if counts.shape != shape:
        raise ValueError(f"counts have shape {counts.shape}, expected {shape} from the edges")
    if mean not in MEAN_FUNCTIONS:
        raise ValueError(f"mean must be one of {MEAN_FUNCTIONS}, not {mean!r}")
    blind = _default_blind if blind is None else blind
    blinded = _blinded_bins(e1, e2, blind)
    if not blinded.any():
        raise ValueError("the blinded (SR) region is empty: no bin of the box overlaps it")
    if blinded[0].any() or blinded[-1].any() or blinded[:, 0].any() or blinded[:, -1].any():
        raise ValueError(
            f"the box [{e1[0]:g}, {e1[-1]:g}] x [{e2[0]:g}, {e2[-1]:g}] does not contain the SR: "
            "blinded bins touch its boundary"
        )
    fit = ~blinded
    if fit.sum() < MIN_FITTED_BINS:
        raise ValueError(f"too few fitted bins ({int(fit.sum())}); need at least {MIN_FITTED_BINS}")
    c = counts[fit]
    v = c if variances is None else np.asarray(variances, float)[fit]
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(v))):
        raise ValueError("counts or variances of fitted bins are NaN or infinite")
    if np.any(v < 0):
        raise ValueError("negative variances in fitted bins")
    scale = float(c.mean())
    if not scale > 0:
        raise ValueError("no events in the fitted (not-SR) bins of the box")
    w_eff = float(v.sum() / max(c.sum(), 1e-300))  # mean weight: a count's variance is count * ratio
    ratio = np.where(c > 0, v / np.where(c > 0, c, 1.0), w_eff)
    var_obs = np.maximum(v, w_eff)  # at least one event's worth of variance

    g1, g2 = np.meshgrid(0.5 * (e1[1:] + e1[:-1]), 0.5 * (e2[1:] + e2[:-1]), indexing="ij")
    x = np.column_stack([g1.ravel(), g2.ravel()])[fit.ravel()]
    coef = _fit_mean(mean, x, c, (e1, e2))
    mu = _mean_function(mean, coef, scale, x)
    y = (c - mu) / scale
    width = max(e1[-1] - e1[0], e2[-1] - e2[0])
    lbounds = length_scale_bounds or (float(min(np.diff(e1).min(), np.diff(e2).min())), 10.0 * width)
    start = float(np.clip(0.3 * width, *lbounds))
    kernel = ConstantKernel(0.1, (1e-6, 1e3)) * RBF([start, start], lbounds)

    with threadpool_limits(1):  # a few hundred points: one thread is fastest and immune to oversubscription
        gpr = _fit_gpr(x, y, var_obs / scale**2, kernel, seed, restarts)
        # second pass: Poisson variance from the smooth first-pass prediction (no low-fluctuation bias)
        var = np.maximum(mu + scale * gpr.predict(x), 0.5 * w_eff) * ratio
        gpr = _fit_gpr(x, y, var / scale**2, gpr.kernel_, seed, 0)

    variances_out = np.full(shape, np.nan)
    variances_out[fit] = var
    k = gpr.kernel_
    return MassPlaneGP(
        edges_m1=e1,
        edges_m2=e2,
        year=None if year is None else int(year),
        length_scales=tuple(float(val) for val in np.atleast_1d(k.k2.length_scale)),
        amplitude=float(np.sqrt(k.k1.constant_value)),
        scale=scale,
        mean_function=mean,
        mean_coefficients=coef,
        blinded=blinded,
        counts=np.where(fit, counts, np.nan),
        variances=variances_out,
        n_obs_not_sr=np.nan if n_obs_not_sr is None else float(n_obs_not_sr),
        log_marginal_likelihood=float(gpr.log_marginal_likelihood_value_),
        regressor=gpr,
        blind=blind,
    )


def fit_per_year(
    sample: Any, *, years: tuple[int, ...] | None = None, **kwargs: Any
) -> dict[int, MassPlaneGP]:
    """Fit one :class:`MassPlaneGP` per data-taking year.

    Parameters
    ----------
    sample : rooml.data.Sample or mapping of str to numpy.ndarray
        Needs ``m_h1``, ``m_h2`` and ``year``; a ``Sample``'s weights are used
        unless they are all one (or ``weights`` is passed in ``kwargs``, as an
        array over the whole sample).
    years : tuple of int, optional
        Years to fit (default: every year present).
    **kwargs
        Passed to :func:`fit_mass_plane` (``box``, ``bins``, ``blind``, ``seed`` ...).

    Returns
    -------
    dict of int to MassPlaneGP
    """
    year = np.asarray(sample["year"])
    weights = kwargs.pop("weights", None)
    if weights is None:
        w = getattr(sample, "weight", None)
        weights = None if w is None or np.all(w == 1.0) else np.asarray(w, float)
    present = tuple(int(y) for y in np.unique(year))
    years = present if years is None else tuple(int(y) for y in years)
    if not years:
        raise ValueError("the sample has no events")
    out = {}
    for y in years:
        sel = year == y
        if not sel.any():
            raise ValueError(f"no events of year {y}; years present: {present}")
        out[y] = fit_mass_plane(
            np.asarray(sample["m_h1"])[sel],
            np.asarray(sample["m_h2"])[sel],
            weights=None if weights is None else weights[sel],
            year=y,
            **kwargs,
        )
    return out


# ---------------------------------------------------------------- plotting
def plot_mass_plane(
    gp: MassPlaneGP,
    observed: np.ndarray,
    path: str | Path,
    *,
    show_sr_data: bool = True,
    title: str | None = None,
) -> Path:
    """Plot observed counts, the GP prediction and the pulls, with the SR contour.

    Parameters
    ----------
    gp : MassPlaneGP
    observed : numpy.ndarray
        ``(n1, n2)`` counts (e.g. ``gp.histogram(m1, m2)``).
    path : str or pathlib.Path
        Output file (format from the suffix); parent folders are created.
    show_sr_data : bool
        Draw the observed SR bins (False keeps the plot blinded; SR pulls are
        then not drawn either).
    title : str, optional
        Figure title (default: the year).

    Returns
    -------
    pathlib.Path
    """
    import matplotlib.pyplot as plt
    import mplhep as hep

    observed = np.asarray(observed, float)
    if observed.shape != gp.shape:
        raise ValueError(f"observed counts have shape {observed.shape}, expected {gp.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pred, _ = gp.predict()
    pulls = np.full(gp.shape, np.nan)
    pulls[~gp.blinded] = gp.pulls(observed, "not_SR")
    if show_sr_data:
        pulls[gp.blinded] = gp.pulls(observed, "SR")
    obs = observed if show_sr_data else np.where(gp.blinded, np.nan, observed)
    e1, e2 = gp.edges_m1, gp.edges_m2
    vmax = float(np.nanmax([np.nanmax(obs), np.nanmax(pred)]))

    with _style_context(hep):
        fig, axes = plt.subplots(1, 3, figsize=(23, 6.5), gridspec_kw={"wspace": 0.5})
        art = [
            hep.hist2dplot(obs, e1, e2, ax=axes[0], cmin=0, cmax=vmax),
            hep.hist2dplot(pred, e1, e2, ax=axes[1], cmin=0, cmax=vmax),
            hep.hist2dplot(pulls, e1, e2, ax=axes[2], cmap="RdBu_r", cmin=-3, cmax=3),
        ]
        titles = ("observed", "GP prediction", "pull")
        cbar_labels = ("events / bin", "predicted events / bin", "(pred - obs) / sqrt(obs)")
        fine1, fine2 = np.linspace(e1[0], e1[-1], 401), np.linspace(e2[0], e2[-1], 401)
        g1, g2 = np.meshgrid(fine1, fine2, indexing="ij")
        inside = gp.in_blinded_region(g1, g2).astype(float)
        i, j, _ = _bin_index(e1, e2, g1, g2)
        blinded = gp.blinded[i, j].astype(float)
        for ax, a, label, cbar_label in zip(axes, art, titles, cbar_labels):
            ax.contour(g1, g2, inside, levels=[0.5], colors="k", linewidths=1.8)
            ax.contour(g1, g2, blinded, levels=[0.5], colors="k", linewidths=0.8, linestyles="dashed")
            ax.set_xlabel(r"$m_{H1}$ [GeV]")
            ax.set_ylabel(r"$m_{H2}$ [GeV]")
            ax.set_title(label, fontsize=15, loc="left")
            a.cbar.set_label(cbar_label)
            a.cbar.ax.yaxis.set_label_position("right")
        l1, l2 = gp.length_scales
        text = f"$\\ell_1$ = {l1:.0f} GeV, $\\ell_2$ = {l2:.0f} GeV\nmean: {gp.mean_function}"
        axes[1].text(0.97, 0.96, text, transform=axes[1].transAxes, va="top", ha="right", fontsize=12,
                     color="w")
        axes[2].text(0.97, 0.96, "solid: SR, dashed: blinded bins", transform=axes[2].transAxes, va="top",
                     ha="right", fontsize=11)
        fig.suptitle(title if title is not None else f"GP mass plane, year {gp.year}", fontsize=17, y=1.04)
        try:
            fig.savefig(path, bbox_inches="tight", dpi=90)
        finally:
            plt.close(fig)
    return path


def _style_context(hep: Any):
    import matplotlib

    return matplotlib.rc_context(_flatten_style(hep.style.ATLAS))


def _flatten_style(style: Any) -> dict[str, Any]:
    if isinstance(style, Mapping):
        return dict(style)
    out: dict[str, Any] = {}
    for s in style:
        out.update(_flatten_style(s))
    return out
