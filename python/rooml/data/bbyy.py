"""HI-SIGMA-like di-Higgs -> bbyy toy: a diphoton-mass resonance with four features.

Each process factorizes as ``P(x'|m) P(m)`` with ``m = m_yy`` in [90, 180] GeV:

* ``P_s(m)``: double-sided Crystal Ball at 125 GeV (sigma 1.7 GeV), truncated
  and normalized on [90, 180] (analytic normalization).
* ``P_b(m) ∝ exp(-p1 u + p2 u^2)`` with ``u = (m - 90)/90`` (p1 = 3, p2 = 0.5;
  closed-form normalization with Dawson's function).
* ``P(x'|m)`` for ``x' = (pt_bb, pt_yy_over_m_yy, dr_bb, dr_yy)`` is an
  autoregressive product of closed-form conditionals (see
  :meth:`BbyyModel.log_prob_factors`): gamma distributions for the transverse
  momenta, normal distributions truncated to [0.4, 6] for the Delta R's, so the
  hard edge ``Delta R >= 0.4`` carries finite density. The background
  parameters move smoothly with ``m`` (sideband-to-signal-region interpolation
  is non-trivial); the signal ones differ and depend weakly on ``m``.
* Shape systematic ``nu``: ``pt_bb -> (1 + 0.1 nu) pt_bb`` for both processes;
  the density at any ``nu`` includes the Jacobian ``1/(1 + 0.1 nu)``.

Regions: signal region ``115 <= m < 135``; sidebands ``90 <= m < 115`` and
``135 <= m <= 180``.

Examples
--------
>>> import numpy as np
>>> from rooml.data import bbyy
>>> sample = bbyy.generate("background", 1000, seed=1)
>>> sorted(sample.keys())
['dr_bb', 'dr_yy', 'm_yy', 'pt_bb', 'pt_yy_over_m_yy']
>>> bool(np.all(sample["dr_bb"] >= 0.4))
True
>>> bbyy.truth.log_prob(sample, "background").shape
(1000,)
>>> mock = bbyy.make_mock(n_bkg=40_000, n_sig=200, seed=7)
>>> len(mock), int(mock["is_signal"].sum())
(40200, 200)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rooml.data._distributions import (
    DoubleSidedCrystalBall,
    ExpQuadratic,
    gamma_logpdf,
    gauss_legendre,
    truncnorm_logpdf,
    truncnorm_sample,
)
from rooml.data._sample import Sample, as_rng, concatenate

__all__ = [
    "BbyyModel",
    "FEATURES",
    "MASS",
    "MASS_RANGE",
    "PROCESSES",
    "SIGNAL_REGION",
    "generate",
    "in_sideband",
    "in_signal_region",
    "make_mock",
    "truth",
]

MASS = "m_yy"
FEATURES = ("pt_bb", "pt_yy_over_m_yy", "dr_bb", "dr_yy")
PROCESSES = ("background", "signal")
MASS_RANGE = (90.0, 180.0)
SIGNAL_REGION = (115.0, 135.0)
DR_RANGE = (0.4, 6.0)

Columns = Mapping[str, np.ndarray]


def in_signal_region(m: np.ndarray) -> np.ndarray:
    """Return ``115 <= m < 135`` (the signal region, half-open so SR and SB partition the range)."""
    m = np.asarray(m)
    return (m >= SIGNAL_REGION[0]) & (m < SIGNAL_REGION[1])


def in_sideband(m: np.ndarray) -> np.ndarray:
    """Return ``90 <= m < 115`` or ``135 <= m <= 180`` (the sidebands)."""
    m = np.asarray(m)
    inside = (m >= MASS_RANGE[0]) & (m <= MASS_RANGE[1])
    return inside & ~in_signal_region(m)


def _check_process(process: str) -> None:
    if process not in PROCESSES:
        raise ValueError(f"unknown bbyy process {process!r}; choose one of {PROCESSES}")


@dataclass(frozen=True)
class BbyyModel:
    """Parameters and exact densities of the bbyy toy.

    Parameters
    ----------
    p1, p2 : float
        Background mass shape ``exp(-p1 u + p2 u^2)``, ``u = (m - 90)/90``.
    mu, sigma, alpha_l, n_l, alpha_r, n_r : float
        Signal double-sided Crystal Ball.
    syst_scale : float
        ``pt_bb`` is scaled by ``1 + syst_scale * nu``.
    """

    p1: float = 3.0
    p2: float = 0.5
    mu: float = 125.0
    sigma: float = 1.7
    alpha_l: float = 1.4
    n_l: float = 6.0
    alpha_r: float = 1.6
    n_r: float = 9.0
    syst_scale: float = 0.1

    # ----------------------------------------------------------------- masses
    @cached_property
    def _signal_mass(self) -> DoubleSidedCrystalBall:
        return DoubleSidedCrystalBall(
            self.mu, self.sigma, self.alpha_l, self.n_l, self.alpha_r, self.n_r, *MASS_RANGE
        )

    @cached_property
    def _background_mass(self) -> ExpQuadratic:
        return ExpQuadratic(self.p1, self.p2)

    def log_prob_m(self, m: np.ndarray, process: str) -> np.ndarray:
        """Return the normalized log-density of ``m_yy`` on [90, 180].

        Parameters
        ----------
        m : numpy.ndarray
            Diphoton masses in GeV.
        process : {"background", "signal"}

        Returns
        -------
        numpy.ndarray
            ``log P(m)``; ``-inf`` outside the range.
        """
        _check_process(process)
        if process == "signal":
            return self._signal_mass.logpdf(m)
        width = MASS_RANGE[1] - MASS_RANGE[0]
        return self._background_mass.logpdf((np.asarray(m, float) - MASS_RANGE[0]) / width) - np.log(width)

    def mass_fraction(self, process: str, lo: float, hi: float) -> float:
        """Probability that ``lo <= m < hi`` (Gauss-Legendre quadrature, ~1e-15).

        Parameters
        ----------
        process : {"background", "signal"}
        lo, hi : float
            Mass window in GeV, clipped to [90, 180].

        Returns
        -------
        float
        """
        lo, hi = max(lo, MASS_RANGE[0]), min(hi, MASS_RANGE[1])
        if hi <= lo:
            return 0.0
        # break at the Crystal Ball junctions so every panel is smooth
        cuts = [self.mu - self.alpha_l * self.sigma, self.mu + self.alpha_r * self.sigma]
        edges = [lo, *sorted(c for c in cuts if lo < c < hi), hi]
        total = 0.0
        for a, b in zip(edges[:-1], edges[1:]):
            x, w = gauss_legendre(a, b, 64, 16)
            total += float(np.sum(w * np.exp(self.log_prob_m(x, process))))
        return total

    # --------------------------------------------------------------- features
    def _feature_params(self, process: str, m: np.ndarray, pt: np.ndarray, r: np.ndarray) -> dict:
        """Parameters of the four conditionals (``pt`` and ``r`` at nu = 0)."""
        if process == "background":
            u = (m - MASS_RANGE[0]) / (MASS_RANGE[1] - MASS_RANGE[0])
            return {
                "pt_k": 2.0 + 0.6 * u,
                "pt_theta": 28.0 + 30.0 * u,
                "r_k": 1.6,
                "r_theta": (0.18 + 0.06 * u) * (1.0 + pt / 150.0),
                "drbb_mu": 0.4 + (220.0 - 60.0 * u) / (pt + 60.0),
                "drbb_sigma": 0.85 + 0.15 * u,
                "dryy_mu": 0.4 + (1.5 - 0.3 * u) / (r + 0.35),
                "dryy_sigma": 0.75,
            }
        v = (m - 125.0) / 125.0
        return {
            "pt_k": 5.0,
            "pt_theta": 26.0 * (1.0 + 0.4 * v),
            "r_k": 3.5,
            "r_theta": 0.13 * (1.0 + pt / 300.0),
            "drbb_mu": 0.4 + 250.0 / (pt + 40.0),
            "drbb_sigma": 0.45,
            "dryy_mu": 0.4 + 1.1 / (r + 0.25),
            "dryy_sigma": 0.4,
        }

    def log_prob_factors(self, x: Columns, process: str, nu: float = 0.0) -> dict[str, np.ndarray]:
        """Log-densities of each variable given its parents (the autoregressive chain).

        The chain is ``m_yy``; ``pt_bb | m``; ``pt_yy_over_m_yy | pt_bb, m``;
        ``dr_bb | pt_bb, m``; ``dr_yy | pt_yy_over_m_yy, m``. With ``s = 1 + 0.1 nu``
        and ``pt0 = pt_bb / s``:

        * ``pt0 ~ Gamma(k, theta)``; the ``pt_bb`` factor is ``Gamma(pt0)/s``.
        * ``r = pt_yy_over_m_yy ~ Gamma(k_r, theta_r(pt0, m))``.
        * ``dr_bb ~ N(mu(pt0, m), sigma(m))`` truncated to [0.4, 6].
        * ``dr_yy ~ N(mu(r, m), sigma)`` truncated to [0.4, 6].

        Parameters
        ----------
        x : mapping of str to numpy.ndarray
            Columns ``m_yy`` and the four features (a :class:`Sample` works).
        process : {"background", "signal"}
        nu : float
            Shape-systematic parameter (``|nu| < 10``).

        Returns
        -------
        dict of str to numpy.ndarray
            One entry per column, keyed by column name.
        """
        _check_process(process)
        scale = 1.0 + self.syst_scale * nu
        if scale <= 0:
            raise ValueError(f"nu={nu} makes the pt_bb scale non-positive")
        m = np.asarray(x[MASS], float)
        pt0 = np.asarray(x["pt_bb"], float) / scale
        r = np.asarray(x["pt_yy_over_m_yy"], float)
        p = self._feature_params(process, m, np.maximum(pt0, 0.0), np.maximum(r, 0.0))
        return {
            MASS: self.log_prob_m(m, process),
            "pt_bb": gamma_logpdf(pt0, p["pt_k"], p["pt_theta"]) - np.log(scale),
            "pt_yy_over_m_yy": gamma_logpdf(r, p["r_k"], p["r_theta"]),
            "dr_bb": truncnorm_logpdf(x["dr_bb"], p["drbb_mu"], p["drbb_sigma"], *DR_RANGE),
            "dr_yy": truncnorm_logpdf(x["dr_yy"], p["dryy_mu"], p["dryy_sigma"], *DR_RANGE),
        }

    def log_prob_features(self, x: Columns, process: str, nu: float = 0.0) -> np.ndarray:
        """Conditional log-density ``log P(x'|m)`` of the four features (normalized over x').

        Parameters
        ----------
        x : mapping of str to numpy.ndarray
            Columns ``m_yy`` and the four features.
        process : {"background", "signal"}
        nu : float
            Shape-systematic parameter.

        Returns
        -------
        numpy.ndarray
        """
        f = self.log_prob_factors(x, process, nu)
        return f["pt_bb"] + f["pt_yy_over_m_yy"] + f["dr_bb"] + f["dr_yy"]

    def log_prob(self, x: Columns, process: str, nu: float = 0.0) -> np.ndarray:
        """Joint log-density ``log P(x'|m) + log P(m)`` (normalized over all five columns).

        Parameters
        ----------
        x : mapping of str to numpy.ndarray
        process : {"background", "signal"}
        nu : float

        Returns
        -------
        numpy.ndarray
        """
        f = self.log_prob_factors(x, process, nu)
        return sum(f.values())

    def log_prob_mixture(self, x: Columns, n_sig: float, n_bkg: float, nu: float = 0.0) -> np.ndarray:
        """Log of ``(s P_s + b P_b)/(s + b)``, the per-event term of the extended likelihood.

        Parameters
        ----------
        x : mapping of str to numpy.ndarray
        n_sig, n_bkg : float
            Expected signal and background yields ``s`` and ``b``.
        nu : float

        Returns
        -------
        numpy.ndarray
        """
        ls = self.log_prob(x, "signal", nu)
        lb = self.log_prob(x, "background", nu)
        total = n_sig + n_bkg
        with np.errstate(divide="ignore"):
            return np.logaddexp(ls + np.log(n_sig / total), lb + np.log(n_bkg / total))

    # --------------------------------------------------------------- sampling
    def sample(
        self, process: str, n_events: int, rng: np.random.Generator, nu: float = 0.0
    ) -> dict[str, np.ndarray]:
        """Draw ``n_events`` exactly from the joint density (columns as a dict).

        Parameters
        ----------
        process : {"background", "signal"}
        n_events : int
        rng : numpy.random.Generator
        nu : float

        Returns
        -------
        dict of str to numpy.ndarray
        """
        _check_process(process)
        n = int(n_events)
        if process == "signal":
            m = self._signal_mass.sample(rng, n)
        else:
            width = MASS_RANGE[1] - MASS_RANGE[0]
            m = MASS_RANGE[0] + width * self._background_mass.sample(rng, n)
        p = self._feature_params(process, m, np.zeros(n), np.zeros(n))
        pt0 = rng.gamma(p["pt_k"], p["pt_theta"], size=n)
        p = self._feature_params(process, m, pt0, np.zeros(n))
        r = rng.gamma(p["r_k"], p["r_theta"], size=n)
        p = self._feature_params(process, m, pt0, r)
        dr_bb = truncnorm_sample(rng, p["drbb_mu"], p["drbb_sigma"] * np.ones(n), *DR_RANGE)
        dr_yy = truncnorm_sample(rng, p["dryy_mu"], p["dryy_sigma"] * np.ones(n), *DR_RANGE)
        return {
            MASS: m,
            "pt_bb": pt0 * (1.0 + self.syst_scale * nu),
            "pt_yy_over_m_yy": r,
            "dr_bb": dr_bb,
            "dr_yy": dr_yy,
        }


truth = BbyyModel()
"""The default :class:`BbyyModel`, used by :func:`generate` and :func:`make_mock`."""


def generate(
    process: str,
    n_events: int,
    seed: int | np.random.Generator | None = 0,
    *,
    nu: float = 0.0,
    model: BbyyModel = truth,
) -> Sample:
    """Generate an unweighted bbyy sample.

    Parameters
    ----------
    process : {"background", "signal"}
    n_events : int
        Number of events (the paper trains on ~1e6 background, ~2e5 signal).
    seed : int or numpy.random.Generator
        Seed for ``np.random.default_rng`` (or a generator to draw from).
    nu : float
        Shape systematic: ``pt_bb`` scaled by ``1 + 0.1 nu``.
    model : BbyyModel
        Parameters (default :data:`truth`).

    Returns
    -------
    Sample
        Columns ``m_yy, pt_bb, pt_yy_over_m_yy, dr_bb, dr_yy``; unit weights.
    """
    rng = as_rng(seed)
    cols = model.sample(process, n_events, rng, nu)
    attrs = {"generator": "bbyy", "process": process, "nu": float(nu)}
    if not isinstance(seed, np.random.Generator):
        attrs["seed"] = seed
    return Sample(cols, None, attrs)


def make_mock(
    n_bkg: float = 40_000,
    n_sig: float = 0,
    seed: int | np.random.Generator | None = 0,
    *,
    nu: float = 0.0,
    poisson: bool = False,
    model: BbyyModel = truth,
) -> Sample:
    """Make a mock observed dataset: background plus injected signal, shuffled.

    Parameters
    ----------
    n_bkg, n_sig : float
        Background and signal yields (numbers of events, or Poisson means).
    seed : int or numpy.random.Generator
    nu : float
        Shape systematic applied to both processes.
    poisson : bool
        Draw the numbers of events from Poisson distributions with means
        ``n_bkg`` and ``n_sig`` instead of using them as fixed counts.
    model : BbyyModel

    Returns
    -------
    Sample
        The bbyy columns plus ``is_signal`` (1 for injected signal, 0 otherwise);
        unit weights. ``attrs`` records the expected yields.
    """
    rng = as_rng(seed)
    nb = int(rng.poisson(n_bkg)) if poisson else int(round(n_bkg))
    ns = int(rng.poisson(n_sig)) if poisson else int(round(n_sig))
    parts = []
    for process, n, label in (("background", nb, 0.0), ("signal", ns, 1.0)):
        cols = model.sample(process, n, rng, nu)
        cols["is_signal"] = np.full(n, label)
        parts.append(Sample(cols))
    attrs = {
        "generator": "bbyy",
        "process": "mock",
        "nu": float(nu),
        "n_bkg": n_bkg,
        "n_sig": n_sig,
        "poisson": poisson,
    }
    if not isinstance(seed, np.random.Generator):
        attrs["seed"] = seed
    mock = concatenate(parts, attrs)
    return mock.select(rng.permutation(len(mock)))
