"""HH -> 4b toy: a (m_H1, m_H2) mass plane, six candidate kinematics, b-tag categories.

Processes: background in the ``"4b"``, ``"3b"`` and ``"2b"`` b-tag categories
and an HH ``"signal"`` (4b), each for the years 2016, 2017, 2018 (drawn in
proportion to 36.2, 44.3, 58.5 fb^-1 unless a year is given). All densities
below are conditional on the year and exactly normalized.

Mass plane on ``[50, 250]^2`` GeV (background)::

    P(m1, m2 | year) ∝ exp(-(m1-50)/l1 - (m2-50)/l2 - k ((m1 - m2 - 10)/100)^2)
                       * T(m1; a1_y, w_y) * T(m2; a2_y, w_y),   T = logistic turn-on

with per-year turn-ons (a1, a2, w) = (85, 75, 12), (92, 82, 14), (88, 78, 10)
GeV, shifted by 0 / -2 / -4 GeV and with slopes (l1, l2) = (60, 50) / (63, 52)
/ (66, 55) GeV for 4b / 3b / 2b (k = 0.8). The normalization is a tensor
Gauss-Legendre quadrature (480 x 480 nodes, converged to ~1e-15), computed once
per (category, year) and cached. Signal: independent normals N(124, 12) and
N(117, 11) truncated to the plane (analytic normalization).

Kinematics ``x = (pt_h1, pt_h2, eta_h1, eta_h2, dphi_hh, x_wt)`` given
``(m1, m2, year)`` form an autoregressive chain of closed forms (see
:meth:`HH4bModel.log_prob_factors`): ``pt_h1`` gamma; ``pt_h2 = u pt_h1`` with
``u`` beta (so ``pt_h2 <= pt_h1``); ``eta_h1 - eta_h2`` a normal truncated to
the preselection ``|Delta eta| < 1.5`` (or to ``|Delta eta| >= 1.5`` for the
reversed-Delta-eta validation sample) and ``(eta_h1 + eta_h2)/2`` normal;
``pi - dphi_hh`` a truncated exponential on ``[0, pi]``; ``x_wt`` log-normal. The
categories differ in every parameter, so ``p_4b/p_2b`` is an exactly known,
kinematics-dependent ratio (:meth:`HH4bModel.ratio`).

``phi_h1`` is uniform and ``phi_h2 = phi_h1 ± dphi_hh``; ``m_hh``, ``pt_hh``,
``deta_hh`` and ``x_hh`` are computed from the candidate four-vectors. Each
candidate is decayed isotropically into two massless jets, giving per-hemisphere
jet summaries (``h1_jet_pt_lead``, ``h1_jet_pt_sublead``, ``h1_dr_jj``,
``h1_nbtag``, same for ``h2``); these auxiliary columns are not part of the truth
density. Regions (SR, VR, CR, shifted SRs): see :mod:`rooml.data._hh4b_regions`.

Examples
--------
>>> import numpy as np
>>> from rooml.data import hh4b
>>> s = hh4b.generate("4b", 2000, seed=3)
>>> bool(np.all(np.abs(s["eta_h1"] - s["eta_h2"]) < 1.5) and np.all(s["dphi_hh"] <= np.pi))
True
>>> sr = hh4b.region_mask(s, "SR")
>>> w = hh4b.truth.ratio(s, "4b", "2b")  # exact p_4b / p_2b per event
>>> w.shape
(2000,)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rooml.data._distributions import (
    beta_logpdf,
    gamma_logpdf,
    gauss_legendre,
    lognormal_logpdf,
    normal_logpdf,
    normal_tails_logpdf,
    normal_tails_sample,
    trunc_expon_logpdf,
    trunc_expon_sample,
    truncnorm_logpdf,
    truncnorm_sample,
)
from rooml.data._fourvec import pair_quantities, two_body_jets, wrap_phi
from rooml.data._hh4b_regions import (
    REGIONS,
    SHIFTED_CENTRES,
    in_control_region,
    in_shifted_signal_region,
    in_signal_region,
    in_validation_region,
    region_mask,
    x_hh,
)
from rooml.data._sample import Sample, as_rng, concatenate

__all__ = [
    "DETA_CUT",
    "HH4bModel",
    "KINEMATICS",
    "LUMI",
    "MASSES",
    "MASS_RANGE",
    "PROCESSES",
    "REGIONS",
    "SHIFTED_CENTRES",
    "YEARS",
    "generate",
    "in_control_region",
    "in_shifted_signal_region",
    "in_signal_region",
    "in_validation_region",
    "join_hemispheres",
    "region_mask",
    "split_hemispheres",
    "truth",
    "x_hh",
]

MASSES = ("m_h1", "m_h2")
KINEMATICS = ("pt_h1", "pt_h2", "eta_h1", "eta_h2", "dphi_hh", "x_wt")
PROCESSES = ("4b", "3b", "2b", "signal")
YEARS = (2016, 2017, 2018)
LUMI = {2016: 36.2, 2017: 44.3, 2018: 58.5}
MASS_RANGE = (50.0, 250.0)
DETA_CUT = 1.5
HEMISPHERE_COLUMNS = ("pt", "eta", "phi", "m", "jet_pt_lead", "jet_pt_sublead", "dr_jj", "nbtag")

# mass plane: per-year turn-on (a1, a2, w); per-category (l1, l2, turn-on shift)
_TURN_ON = np.array([[85.0, 75.0, 12.0], [92.0, 82.0, 14.0], [88.0, 78.0, 10.0]])
_MASS_SHAPE = {"4b": (60.0, 50.0, 0.0), "3b": (63.0, 52.0, -2.0), "2b": (66.0, 55.0, -4.0)}
_KAPPA, _DELTA = 0.8, 10.0
_SIGNAL_MASS = ((124.0, 12.0), (117.0, 11.0))
# kinematics: per-year pt scale; per-category (pt scale, deta, eta, dphi, x_wt) factors
_YEAR_PT = np.array([1.0, 1.03, 1.05])
_CAT = {
    "4b": (1.00, 1.00, 1.00, 1.00, 1.00),
    "3b": (0.97, 1.03, 1.02, 0.95, 0.93),
    "2b": (0.93, 1.07, 1.05, 0.90, 0.85),
}
_NBTAG = {
    "4b": ((2, 2, 1.0),),
    "3b": ((2, 1, 0.5), (1, 2, 0.5)),
    "2b": ((1, 1, 0.5), (2, 0, 0.25), (0, 2, 0.25)),
}

Columns = Mapping[str, np.ndarray]


def _check(process: str, preselection: str = "pass") -> None:
    if process not in PROCESSES:
        raise ValueError(f"unknown hh4b process {process!r}; choose one of {PROCESSES}")
    if preselection not in ("pass", "reversed"):
        raise ValueError(f"preselection must be 'pass' or 'reversed', not {preselection!r}")


def _year_index(year: np.ndarray) -> np.ndarray:
    year = np.asarray(year)
    idx = np.searchsorted(YEARS, year)
    idx = np.clip(idx, 0, len(YEARS) - 1)
    bad = np.asarray(YEARS)[idx] != year
    if np.any(bad):
        raise ValueError(f"{int(np.sum(bad))} events have a year not in {YEARS}")
    return idx


@dataclass(frozen=True)
class HH4bModel:
    """Exact densities and samplers of the HH -> 4b toy (parameters in the module docstring)."""

    # ------------------------------------------------------------ mass plane
    def _mass_log_unnorm(self, m1, m2, process: str, yidx) -> np.ndarray:
        l1, l2, shift = _MASS_SHAPE[process]
        a1, a2, w = (_TURN_ON[yidx, k] for k in range(3))
        z = (m1 - m2 - _DELTA) / 100.0
        return (
            -(m1 - MASS_RANGE[0]) / l1
            - (m2 - MASS_RANGE[0]) / l2
            - _KAPPA * z * z
            - np.logaddexp(0.0, -(m1 - a1 - shift) / w)
            - np.logaddexp(0.0, -(m2 - a2 - shift) / w)
        )

    @cached_property
    def _mass_log_norm(self) -> dict[tuple[str, int], float]:
        x, w = gauss_legendre(*MASS_RANGE, 40, 12)
        out = {}
        for process in ("4b", "3b", "2b"):
            for yidx in range(len(YEARS)):
                f = np.exp(self._mass_log_unnorm(x[:, None], x[None, :], process, yidx))
                out[process, yidx] = float(np.log(w @ f @ w))
        return out

    def log_prob_mass(
        self, m1: np.ndarray, m2: np.ndarray, year: np.ndarray | int, process: str
    ) -> np.ndarray:
        """Return the normalized log-density of the mass plane ``log P(m_h1, m_h2 | year)``.

        Parameters
        ----------
        m1, m2 : numpy.ndarray
            Candidate masses in GeV.
        year : int or numpy.ndarray
            2016, 2017 or 2018 (per event or one for all).
        process : {"4b", "3b", "2b", "signal"}

        Returns
        -------
        numpy.ndarray
            ``-inf`` outside ``[50, 250]^2``.
        """
        _check(process)
        m1, m2 = np.broadcast_arrays(np.asarray(m1, float), np.asarray(m2, float))
        inside = (m1 >= MASS_RANGE[0]) & (m1 <= MASS_RANGE[1]) & (m2 >= MASS_RANGE[0]) & (m2 <= MASS_RANGE[1])
        if process == "signal":
            (c1, s1), (c2, s2) = _SIGNAL_MASS
            out = truncnorm_logpdf(m1, c1, s1, *MASS_RANGE) + truncnorm_logpdf(m2, c2, s2, *MASS_RANGE)
        else:
            yidx = np.broadcast_to(_year_index(year), m1.shape)
            norms = np.array([self._mass_log_norm[process, k] for k in range(len(YEARS))])
            out = self._mass_log_unnorm(m1, m2, process, yidx) - norms[yidx]
        return np.where(inside, out, -np.inf)

    def _sample_mass(
        self, process: str, yidx: int, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        if process == "signal":
            (c1, s1), (c2, s2) = _SIGNAL_MASS
            ones = np.ones(n)
            return truncnorm_sample(rng, c1 * ones, s1, *MASS_RANGE), truncnorm_sample(
                rng, c2 * ones, s2, *MASS_RANGE
            )
        l1, l2, _ = _MASS_SHAPE[process]
        width = MASS_RANGE[1] - MASS_RANGE[0]
        m1s, m2s, filled = [], [], 0
        while filled < n:
            k = int(4 * (n - filled)) + 100
            # proposal: the two exponential slopes; acceptance = turn-ons x correlation term <= 1
            m1 = MASS_RANGE[0] + trunc_expon_sample(rng, 1.0 / l1, width, size=k)
            m2 = MASS_RANGE[0] + trunc_expon_sample(rng, 1.0 / l2, width, size=k)
            log_acc = (
                self._mass_log_unnorm(m1, m2, process, yidx)
                + (m1 - MASS_RANGE[0]) / l1
                + (m2 - MASS_RANGE[0]) / l2
            )
            keep = np.log(rng.random(k)) < log_acc
            m1s.append(m1[keep])
            m2s.append(m2[keep])
            filled += int(keep.sum())
        return np.concatenate(m1s)[:n], np.concatenate(m2s)[:n]

    # ------------------------------------------------------------ kinematics
    def _kin_params(self, process: str, m1, m2, yidx, pt1, u) -> dict[str, np.ndarray]:
        ys = _YEAR_PT[yidx]
        if process == "signal":
            a1, a2 = (m1 - 124.0) / 124.0, (m2 - 117.0) / 117.0
            return {
                "pt_k": 6.0,
                "pt_theta": ys * 235.0 * (1.0 + 0.3 * a1 + 0.2 * a2) / 6.0,
                "u_a": 6.0,
                "u_b": 1.5,
                "deta_sigma": 0.45 + 40.0 / (pt1 + 100.0),
                "eta_sigma": 0.8,
                "dphi_rate": 2.0 + 6.0 * u,
                "xwt_mu": np.log(3.5) - 0.15 * np.log(np.maximum(pt1, 1e-300) / 235.0),
                "xwt_sigma": 0.5,
            }
        c_pt, c_deta, c_eta, c_dphi, c_xwt = _CAT[process]
        a1, a2 = (m1 - 120.0) / 100.0, (m2 - 110.0) / 100.0
        return {
            "pt_k": 5.0,
            "pt_theta": ys * c_pt * (170.0 + 90.0 * a1 + 60.0 * a2) / 5.0,
            "u_a": 3.5 + 1.0 * a2 + 0.5 * a1,
            "u_b": 1.6,
            "deta_sigma": c_deta * (0.55 + 50.0 / (pt1 + 100.0)),
            "eta_sigma": 0.9 * c_eta,
            "dphi_rate": c_dphi * (0.8 + 5.0 * u),
            "xwt_mu": np.log(2.2 * c_xwt) + 0.35 * a1 - 0.25 * np.log(np.maximum(pt1, 1e-300) / 170.0),
            "xwt_sigma": 0.55,
        }

    def log_prob_factors(
        self, x: Columns, process: str, *, year: int | None = None, preselection: str = "pass"
    ) -> dict[str, np.ndarray]:
        """Log-densities of the chain factors, each given its parents.

        Keys: ``mass_plane`` (``m_h1, m_h2 | year``); ``pt_h1 | m, year``
        (gamma); ``pt_h2 | pt_h1, m`` (beta in ``u = pt_h2/pt_h1``, with the
        Jacobian ``1/pt_h1``); ``deta | pt_h1`` (``eta_h1 - eta_h2``, truncated
        normal); ``eta_centre`` (``(eta_h1 + eta_h2)/2``, normal; the map
        ``(eta_h1, eta_h2) -> (centre, deta)`` has unit Jacobian);
        ``dphi_hh | u`` (truncated exponential in ``pi - dphi_hh``);
        ``x_wt | pt_h1, m`` (log-normal).

        Parameters
        ----------
        x : mapping of str to numpy.ndarray
            ``m_h1, m_h2``, the six kinematic columns and ``year`` (unless
            ``year`` is given).
        process : {"4b", "3b", "2b", "signal"}
        year : int, optional
            Use this year for every event instead of the ``year`` column.
        preselection : {"pass", "reversed"}
            ``|Delta eta| < 1.5`` (default) or the reversed-Delta-eta region.

        Returns
        -------
        dict of str to numpy.ndarray
        """
        _check(process, preselection)
        m1 = np.asarray(x["m_h1"], float)
        m2 = np.asarray(x["m_h2"], float)
        yr = np.full(m1.shape, year) if year is not None else np.asarray(x["year"])
        yidx = _year_index(yr)
        pt1 = np.asarray(x["pt_h1"], float)
        pt2 = np.asarray(x["pt_h2"], float)
        eta1 = np.asarray(x["eta_h1"], float)
        eta2 = np.asarray(x["eta_h2"], float)
        ok = pt1 > 0
        safe_pt1 = np.where(ok, pt1, 1.0)
        u = pt2 / safe_pt1
        p = self._kin_params(process, m1, m2, yidx, safe_pt1, np.clip(u, 0.0, 1.0))
        deta = eta1 - eta2
        if preselection == "pass":
            l_deta = truncnorm_logpdf(deta, 0.0, p["deta_sigma"], -DETA_CUT, DETA_CUT)
        else:
            l_deta = normal_tails_logpdf(deta, p["deta_sigma"], DETA_CUT)
        return {
            "mass_plane": self.log_prob_mass(m1, m2, yr, process),
            "pt_h1": gamma_logpdf(pt1, p["pt_k"], p["pt_theta"]),
            "pt_h2": np.where(ok, beta_logpdf(u, p["u_a"], p["u_b"]) - np.log(safe_pt1), -np.inf),
            "deta": l_deta,
            "eta_centre": normal_logpdf(0.5 * (eta1 + eta2), 0.0, p["eta_sigma"]),
            "dphi_hh": trunc_expon_logpdf(np.pi - np.asarray(x["dphi_hh"], float), p["dphi_rate"], np.pi),
            "x_wt": lognormal_logpdf(x["x_wt"], p["xwt_mu"], p["xwt_sigma"]),
        }

    def log_prob_kinematics(
        self, x: Columns, process: str, *, year: int | None = None, preselection: str = "pass"
    ) -> np.ndarray:
        """Conditional log-density ``log p(x | m_h1, m_h2, year)`` of the six kinematic columns.

        Parameters are those of :meth:`log_prob_factors`.

        Returns
        -------
        numpy.ndarray
        """
        f = self.log_prob_factors(x, process, year=year, preselection=preselection)
        del f["mass_plane"]
        return sum(f.values())

    def log_prob(
        self, x: Columns, process: str, *, year: int | None = None, preselection: str = "pass"
    ) -> np.ndarray:
        """Joint log-density of ``(m_h1, m_h2, x)`` given the year.

        Parameters are those of :meth:`log_prob_factors`.

        Returns
        -------
        numpy.ndarray
        """
        return sum(self.log_prob_factors(x, process, year=year, preselection=preselection).values())

    def ratio(
        self, x: Columns, numerator: str = "4b", denominator: str = "2b", *, preselection: str = "pass"
    ) -> np.ndarray:
        """Exact density ratio ``p_num(m, x | year) / p_den(m, x | year)``.

        Both densities are unit-normalized; the weight that maps a 2b sample of
        ``N_2b`` events onto a 4b yield ``N_4b`` is ``(N_4b / N_2b) * ratio``.

        Parameters
        ----------
        x : mapping of str to numpy.ndarray
        numerator, denominator : str
            Processes, default ``"4b"`` over ``"2b"``.
        preselection : {"pass", "reversed"}

        Returns
        -------
        numpy.ndarray
        """
        lp = self.log_prob(x, numerator, preselection=preselection)
        lq = self.log_prob(x, denominator, preselection=preselection)
        return np.exp(lp - lq)

    def sample(
        self,
        process: str,
        n_events: int,
        rng: np.random.Generator,
        *,
        year: int | None = None,
        preselection: str = "pass",
    ) -> dict[str, np.ndarray]:
        """Draw ``n_events`` exactly (columns as a dict, see :func:`generate`)."""
        _check(process, preselection)
        n = int(n_events)
        if year is None:
            frac = np.array([LUMI[y] for y in YEARS])
            yidx = rng.choice(len(YEARS), size=n, p=frac / frac.sum())
        else:
            yidx = np.full(n, _year_index(np.array([year]))[0])
        m1, m2 = np.empty(n), np.empty(n)
        for k in range(len(YEARS)):
            sel = yidx == k
            if sel.any():
                m1[sel], m2[sel] = self._sample_mass(process, k, int(sel.sum()), rng)
        zeros = np.zeros(n)
        p = self._kin_params(process, m1, m2, yidx, zeros, zeros)
        pt1 = rng.gamma(p["pt_k"], p["pt_theta"] * np.ones(n))
        u = rng.beta(p["u_a"] * np.ones(n), p["u_b"] * np.ones(n))
        p = self._kin_params(process, m1, m2, yidx, pt1, u)
        if preselection == "pass":
            deta = truncnorm_sample(rng, zeros, p["deta_sigma"], -DETA_CUT, DETA_CUT)
        else:
            deta = normal_tails_sample(rng, p["deta_sigma"], DETA_CUT)
        centre = rng.normal(0.0, p["eta_sigma"] * np.ones(n))
        dphi = np.pi - trunc_expon_sample(rng, p["dphi_rate"], np.pi)
        x_wt = rng.lognormal(p["xwt_mu"], p["xwt_sigma"] * np.ones(n))
        phi1 = rng.uniform(-np.pi, np.pi, n)
        phi2 = wrap_phi(phi1 + np.where(rng.random(n) < 0.5, -dphi, dphi))
        cols = {
            "m_h1": m1,
            "m_h2": m2,
            "pt_h1": pt1,
            "pt_h2": u * pt1,
            "eta_h1": centre + 0.5 * deta,
            "eta_h2": centre - 0.5 * deta,
            "dphi_hh": dphi,
            "x_wt": x_wt,
            "phi_h1": phi1,
            "phi_h2": phi2,
            "year": np.asarray(YEARS, float)[yidx],
            "ntag": np.full(n, 4.0 if process == "signal" else float(process[0])),
        }
        _add_derived(cols)
        _add_jets(cols, rng, "4b" if process == "signal" else process)
        return cols


def _add_derived(cols: dict[str, np.ndarray]) -> None:
    d = pair_quantities(
        cols["pt_h1"], cols["eta_h1"], cols["phi_h1"], cols["m_h1"],
        cols["pt_h2"], cols["eta_h2"], cols["phi_h2"], cols["m_h2"],
    )  # fmt: skip
    cols["m_hh"], cols["pt_hh"], cols["deta_hh"] = d["m_hh"], d["pt_hh"], d["deta_hh"]
    cols["x_hh"] = x_hh(cols["m_h1"], cols["m_h2"])


def _add_jets(cols: dict[str, np.ndarray], rng: np.random.Generator, category: str) -> None:
    n = cols["m_h1"].shape[0]
    for h in ("h1", "h2"):
        jets = two_body_jets(rng, cols[f"pt_{h}"], cols[f"eta_{h}"], cols[f"phi_{h}"], cols[f"m_{h}"])
        for key, value in jets.items():
            cols[f"{h}_{key}"] = value
    options = _NBTAG[category]
    pick = rng.choice(len(options), size=n, p=[o[2] for o in options])
    cols["h1_nbtag"] = np.array([o[0] for o in options], float)[pick]
    cols["h2_nbtag"] = np.array([o[1] for o in options], float)[pick]


truth = HH4bModel()
"""The default :class:`HH4bModel`."""


def generate(
    process: str,
    n_events: int,
    seed: int | np.random.Generator | None = 0,
    *,
    year: int | None = None,
    preselection: str = "pass",
    model: HH4bModel = truth,
) -> Sample:
    """Generate an unweighted HH -> 4b sample.

    Parameters
    ----------
    process : {"4b", "3b", "2b", "signal"}
        Background b-tag category, or the HH signal (4b-tagged).
    n_events : int
    seed : int or numpy.random.Generator
    year : int, optional
        2016, 2017 or 2018; default: years drawn in proportion to :data:`LUMI`.
    preselection : {"pass", "reversed"}
        ``|eta_h1 - eta_h2| < 1.5`` (default) or the reversed-Delta-eta sample.
    model : HH4bModel

    Returns
    -------
    Sample
        Columns: ``m_h1, m_h2``, :data:`KINEMATICS`, ``phi_h1, phi_h2, year,
        ntag, m_hh, pt_hh, deta_hh, x_hh`` and the hemisphere jet summaries;
        unit weights.
    """
    rng = as_rng(seed)
    cols = model.sample(process, n_events, rng, year=year, preselection=preselection)
    attrs = {"generator": "hh4b", "process": process, "year": year, "preselection": preselection}
    if not isinstance(seed, np.random.Generator):
        attrs["seed"] = seed
    return Sample(cols, None, attrs)


def split_hemispheres(sample: Sample) -> Sample:
    """Split every event into its two hemispheres (one per Higgs candidate).

    Parameters
    ----------
    sample : Sample
        An hh4b sample.

    Returns
    -------
    Sample
        ``2 N`` rows with ``event`` (row index in ``sample``), ``hemisphere``
        (1 or 2), ``year`` and ``pt, eta, phi, m, jet_pt_lead, jet_pt_sublead,
        dr_jj, nbtag``; weights repeated.
    """
    n = len(sample)
    parts = []
    for k in (1, 2):
        cols = {
            "event": np.arange(n, dtype=float),
            "hemisphere": np.full(n, float(k)),
            "year": sample["year"],
        }
        for c in HEMISPHERE_COLUMNS:
            name = f"{c}_h{k}" if c in ("pt", "eta", "phi", "m") else f"h{k}_{c}"
            cols[c] = sample[name]
        parts.append(Sample(cols, sample.weight))
    return concatenate(parts, {**sample.attrs, "hemispheres": True})


def join_hemispheres(first: Sample, second: Sample) -> Sample:
    """Build events from two hemisphere tables, row by row (for event mixing).

    The higher-pT hemisphere becomes H1. ``dphi_hh``, ``m_hh``, ``pt_hh``,
    ``deta_hh``, ``x_hh`` and ``ntag`` (sum of ``nbtag``) are recomputed;
    ``year`` and the weight come from ``first``. ``x_wt`` is an event-level
    quantity and is not reconstructed.

    Parameters
    ----------
    first, second : Sample
        Equal-length hemisphere tables as made by :func:`split_hemispheres`.

    Returns
    -------
    Sample
    """
    if len(first) != len(second):
        raise ValueError(f"hemisphere tables differ in length: {len(first)} vs {len(second)}")
    lead = first["pt"] >= second["pt"]
    cols: dict[str, np.ndarray] = {}
    for k, (a, b) in ((1, (first, second)), (2, (second, first))):
        for c in HEMISPHERE_COLUMNS:
            name = f"{c}_h{k}" if c in ("pt", "eta", "phi", "m") else f"h{k}_{c}"
            cols[name] = np.where(lead, a[c], b[c])
    cols["dphi_hh"] = np.abs(wrap_phi(cols["phi_h1"] - cols["phi_h2"]))
    cols["year"] = first["year"]
    cols["ntag"] = cols["h1_nbtag"] + cols["h2_nbtag"]
    _add_derived(cols)
    return Sample(cols, first.weight, {"generator": "hh4b", "process": "mixed"})
