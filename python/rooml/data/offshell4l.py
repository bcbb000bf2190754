"""ATLAS-NSBI-like off-shell H -> ZZ -> 4l toy with signal-background interference.

Observables (8): ``m4l`` in [220, 2000] GeV, ``cos_theta_star``, ``phi1``,
``cos_theta1``, ``cos_theta2``, ``phi`` (the four-lepton decay angles),
``pt4l`` and ``y4l``.

Amplitudes: the gg-initiated signal (S) and continuum (gg -> ZZ) amplitudes are
``A_S = sqrt(C_S) a_S(m) prod_k alpha_S,k`` and ``A_g = sqrt(C_g) a_g(m) prod_k
alpha_g,k``, times the common production density ``sqrt(p_gg(pt4l, y4l | m))``;
``a_S`` carries the Higgs propagator and a top-loop phase that rises above
2 m_t, so the interference is destructive at low mass and changes sign above.
The qq -> ZZ background is incoherent. Densities (in events per unit phase
space, integrating to the yields)::

    S = |A_S|^2,  B = |A_g|^2 + B_qq,  I = 2 Re(A_S A_g*)  (signed),
    p(x | mu) ∝ |sqrt(mu) A_S + A_g|^2 + B_qq = mu S + sqrt(mu) I + B >= 0,

so with ``SBI = S + B + I`` and ``f_S = mu - sqrt(mu)``, ``f_SBI = sqrt(mu)``,
``f_B = 1 - sqrt(mu)``: ``nu(mu) p(x|mu) = sum_j f_j(mu) nu_j p_j(x)``. Every
normalization is exact: angular integrals are polynomial / Fourier integrals,
the production densities are normalized closed forms, and the one-dimensional
``m4l`` integrals use composite Gauss-Legendre quadrature (converged to ~1e-14).

Systematic ``alpha`` (shape and normalization): the gg luminosity is multiplied
by ``exp(alpha (0.06 + 0.20 log(m/400)))`` and the qq one by
``exp(alpha (0.03 - 0.15 log(m/400)))``; ``G_j(alpha) = nu_j(alpha)/nu_j(0)``.

Samples: S, B and SBI are unweighted draws with weights ``nu_j(alpha)/N`` (sum
= expected yield); the I sample is drawn from ``(S + B_gg)`` and carries signed
weights ``nu_I p_I(x)/q(x)/N``.

Examples
--------
>>> from rooml.data import offshell4l
>>> y = offshell4l.truth.yields()
>>> round(y["SBI"] - (y["S"] + y["B"] + y["I"]), 9)
0.0
>>> s = offshell4l.generate("I", 5000, seed=2)
>>> bool((s.weight < 0).any() and (s.weight > 0).any())
True
>>> r = offshell4l.truth.ratio("S", s, reference="SBI")
>>> r.shape
(5000,)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from rooml.data._amplitudes import ANGLES, amplitudes
from rooml.data._distributions import gamma_logpdf, gauss_legendre, normal_logpdf
from rooml.data._sample import Sample, as_rng

__all__ = [
    "M_RANGE",
    "OBSERVABLES",
    "OffshellModel",
    "PROCESSES",
    "coefficients",
    "generate",
    "make_pseudodata",
    "truth",
]

OBSERVABLES = ("m4l", "cos_theta_star", "phi1", "cos_theta1", "cos_theta2", "phi", "pt4l", "y4l")
PROCESSES = ("S", "B", "I", "SBI")
M_RANGE = (220.0, 2000.0)
_M_H, _GAMMA_H, _M_REF = 125.0, 0.0041, 400.0
_ANGULAR = {
    "S": {"cos_theta_star": (1.0,), "phi1": (1.0,), "cos_theta1": (1.0, 0.0, -0.6),
          "cos_theta2": (1.0, 0.0, -0.6), "phi": (1.0, 0.2, 0.15)},
    "Bgg": {"cos_theta_star": (1.0, 0.0, 0.35), "phi1": (1.0, 0.25), "cos_theta1": (1.0, 0.0, 0.3),
            "cos_theta2": (1.0, 0.0, 0.3), "phi": (1.0, 0.0, -0.1)},
    "Bqq": {"cos_theta_star": (1.0, 0.0, 0.8), "phi1": (1.0, 0.0, 0.15), "cos_theta1": (1.0, 0.0, 0.4),
            "cos_theta2": (1.0, 0.0, 0.4), "phi": (1.0, 0.1)},
}  # fmt: skip

Columns = Mapping[str, np.ndarray]


def coefficients(mu: float) -> dict[str, float]:
    """Return ``f_S = mu - sqrt(mu)``, ``f_SBI = sqrt(mu)``, ``f_B = 1 - sqrt(mu)``."""
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    r = float(np.sqrt(mu))
    return {"S": mu - r, "SBI": r, "B": 1.0 - r}


def _mass_shapes(
    m: np.ndarray, alpha: float, keys: tuple[str, ...] = ("s", "g", "i", "q")
) -> dict[str, np.ndarray]:
    """Unnormalized m4l line shapes ``s = |a_S|^2``, ``g = |a_g|^2``, ``i = 2 Re(a_S a_g*)``, ``q``.

    ``a_S = sqrt(L) m^2 / (m^2 - m_H^2 + i m_H Gamma_H) exp(i phi_t(m))`` with the
    top-loop phase ``phi_t = (2 pi/3) / (1 + exp(-(m - 350)/40))``;
    ``a_g = -sqrt(L) (m/220)^-0.3``; ``L`` the gg luminosity shape.
    """
    m = np.asarray(m, dtype=float)
    inside = (m >= M_RANGE[0]) & (m <= M_RANGE[1])
    lm = np.log(m / _M_REF)
    out = {}
    if {"s", "g", "i"} & set(keys):
        lum = (m / 220.0) ** -3.2 * np.exp(-(m - 220.0) / 900.0 + alpha * (0.06 + 0.20 * lm))
        d = m * m - _M_H**2
        width = _M_H * _GAMMA_H
        den = d * d + width * width
        if "s" in keys:
            out["s"] = lum * m**4 / den
        if "g" in keys or "i" in keys:
            r = (m / 220.0) ** -0.3
            if "g" in keys:
                out["g"] = lum * r * r
            if "i" in keys:
                phi_t = (2.0 * np.pi / 3.0) / (1.0 + np.exp(-(m - 350.0) / 40.0))
                re_prop_phase = m * m * (d * np.cos(phi_t) + width * np.sin(phi_t)) / den
                out["i"] = -2.0 * lum * r * re_prop_phase
    if "q" in keys:
        out["q"] = (m / 220.0) ** -3.6 * np.exp(-(m - 220.0) / 700.0 + alpha * (0.03 - 0.15 * lm))
    return {k: np.where(inside, out[k], 0.0) for k in keys}


@lru_cache(maxsize=128)
def _mass_integrals(alpha: float) -> dict[str, float]:
    """Integrals of the line shapes over [220, 2000] (Gauss-Legendre in log m)."""
    t, w = gauss_legendre(np.log(M_RANGE[0]), np.log(M_RANGE[1]), 64, 16)
    m = np.exp(t)
    shapes = _mass_shapes(m, alpha)
    return {k: float(np.sum(w * m * v)) for k, v in shapes.items()}


def _production_logpdf(kind: str, pt: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``log p(pt4l, y4l | m4l)``: gamma in pt4l, normal in y4l (gg or qq initial state)."""
    lm = np.log(np.maximum(m, 1.0) / 220.0)
    if kind == "gg":
        return gamma_logpdf(pt, 1.4, 14.0 + 0.02 * m) + normal_logpdf(y, 0.0, 1.0 - 0.2 * lm)
    return gamma_logpdf(pt, 1.2, 18.0 + 0.03 * m) + normal_logpdf(y, 0.0, 1.3 - 0.2 * lm)


def _production_sample(kind: str, m: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lm = np.log(m / 220.0)
    if kind == "gg":
        return rng.gamma(1.4, 14.0 + 0.02 * m), rng.normal(0.0, 1.0 - 0.2 * lm)
    return rng.gamma(1.2, 18.0 + 0.03 * m), rng.normal(0.0, 1.3 - 0.2 * lm)


@dataclass(frozen=True)
class OffshellModel:
    """Exact densities, yields and samplers of the off-shell 4l toy.

    Parameters
    ----------
    nu_S, nu_Bgg, nu_Bqq : float
        Expected yields at ``alpha = 0`` of the signal, the gg -> ZZ continuum
        and the qq -> ZZ background (``nu_B = nu_Bgg + nu_Bqq``; ``nu_I``
        follows from the amplitudes).
    """

    nu_S: float = 40.0
    nu_Bgg: float = 200.0
    nu_Bqq: float = 1200.0

    @cached_property
    def _amps(self) -> dict:
        return {c: amplitudes(spec) for c, spec in _ANGULAR.items()}

    @cached_property
    def _consts(self) -> dict[str, float]:
        """Angular integrals and amplitude normalizations ``C`` fixing the alpha = 0 yields."""
        amp = self._amps
        ang = {c: float(np.prod([amp[c][k].overlap(amp[c][k]) for k in ANGLES])) for c in amp}
        ang["I"] = float(np.prod([amp["S"][k].overlap(amp["Bgg"][k]) for k in ANGLES]))
        mi = _mass_integrals(0.0)
        c_s = self.nu_S / (mi["s"] * ang["S"])
        c_g = self.nu_Bgg / (mi["g"] * ang["Bgg"])
        c_q = self.nu_Bqq / (mi["q"] * ang["Bqq"])
        return {"S": c_s, "Bgg": c_g, "Bqq": c_q, "I": float(np.sqrt(c_s * c_g)),
                **{f"ang_{k}": v for k, v in ang.items()}}  # fmt: skip

    def yields(self, alpha: float = 0.0) -> dict[str, float]:
        """Return the expected yields ``nu_j(alpha)`` of S, B, I, SBI (and the parts Bgg, Bqq).

        Parameters
        ----------
        alpha : float
            Systematic nuisance parameter.

        Returns
        -------
        dict of str to float
            ``nu(mu, alpha) = sum_j f_j(mu) nu_j(alpha)`` over S, SBI, B.
        """
        c, mi = self._consts, _mass_integrals(float(alpha))
        out = {
            "S": c["S"] * mi["s"] * c["ang_S"],
            "Bgg": c["Bgg"] * mi["g"] * c["ang_Bgg"],
            "Bqq": c["Bqq"] * mi["q"] * c["ang_Bqq"],
            "I": c["I"] * mi["i"] * c["ang_I"],
        }
        out["B"] = out["Bgg"] + out["Bqq"]
        out["SBI"] = out["S"] + out["B"] + out["I"]
        return out

    def nu(self, mu: float, alpha: float = 0.0) -> float:
        """Total expected yield ``nu(mu, alpha) = mu nu_S + sqrt(mu) nu_I + nu_B``."""
        y = self.yields(alpha)
        return float(sum(f * y[j] for j, f in coefficients(mu).items()))

    def G(self, process: str, alpha: float) -> float:
        """Return the normalization factor ``G_j(alpha) = nu_j(alpha) / nu_j(0)``."""
        _check(process, extra=("Bgg", "Bqq"))
        return self.yields(alpha)[process] / self.yields(0.0)[process]

    def _components(self, x: Columns, alpha: float) -> dict[str, np.ndarray]:
        """Unnormalized densities (events per unit phase space) of S, Bgg, Bqq and I."""
        m = np.asarray(x["m4l"], dtype=float)
        amp, c = self._amps, self._consts
        shapes = _mass_shapes(m, float(alpha))
        a = {comp: [amp[comp][k](x[k]) for k in ANGLES] for comp in amp}
        ang_s = np.prod(np.square(a["S"]), axis=0)
        ang_g = np.prod(np.square(a["Bgg"]), axis=0)
        ang_q = np.prod(np.square(a["Bqq"]), axis=0)
        ang_i = np.prod(np.multiply(a["S"], a["Bgg"]), axis=0)
        with np.errstate(under="ignore"):
            prod_gg = np.exp(_production_logpdf("gg", x["pt4l"], x["y4l"], m))
            prod_qq = np.exp(_production_logpdf("qq", x["pt4l"], x["y4l"], m))
        return {
            "S": c["S"] * shapes["s"] * ang_s * prod_gg,
            "Bgg": c["Bgg"] * shapes["g"] * ang_g * prod_gg,
            "Bqq": c["Bqq"] * shapes["q"] * ang_q * prod_qq,
            "I": c["I"] * shapes["i"] * ang_i * prod_gg,
        }

    def density(self, process: str, x: Columns, alpha: float = 0.0) -> np.ndarray:
        """Unit-normalized density ``p_j(x | alpha)``; signed for ``"I"``.

        Parameters
        ----------
        process : {"S", "B", "I", "SBI", "Bgg", "Bqq"}
        x : mapping of str to numpy.ndarray
            The eight :data:`OBSERVABLES`.
        alpha : float

        Returns
        -------
        numpy.ndarray
            ``p_I = I(x)/nu_I`` integrates to one but changes sign.
        """
        _check(process, extra=("Bgg", "Bqq"))
        comp = self._components(x, alpha)
        comp["B"] = comp["Bgg"] + comp["Bqq"]
        comp["SBI"] = comp["S"] + comp["B"] + comp["I"]
        return comp[process] / self.yields(alpha)[process]

    def log_prob(self, process: str, x: Columns, alpha: float = 0.0) -> np.ndarray:
        """Log of :meth:`density` for the positive processes S, B, SBI (and Bgg, Bqq)."""
        if process == "I":
            raise ValueError("the interference density is signed; use density('I', ...)")
        with np.errstate(divide="ignore"):
            return np.log(self.density(process, x, alpha))

    def ratio(self, process: str, x: Columns, reference: str = "SBI", alpha: float = 0.0) -> np.ndarray:
        """Exact ratio ``p_j(x | alpha) / p_ref(x)`` (reference at ``alpha = 0``).

        Parameters
        ----------
        process : {"S", "B", "I", "SBI", "Bgg", "Bqq"}
        x : mapping of str to numpy.ndarray
        reference : str
            Reference process (default ``"SBI"``).
        alpha : float
            Systematic for the numerator.

        Returns
        -------
        numpy.ndarray
        """
        return self.density(process, x, alpha) / self.density(reference, x, 0.0)

    def g(self, process: str, x: Columns, alpha: float) -> np.ndarray:
        """Per-event systematic ratio ``g_j(x, alpha) = p_j(x | alpha) / p_j(x | 0)``."""
        return self.density(process, x, alpha) / self.density(process, x, 0.0)

    def log_prob_mu(self, x: Columns, mu: float, alpha: float = 0.0) -> np.ndarray:
        """Log-density of the full model ``p(x | mu, alpha)`` (normalized, >= 0 for mu >= 0)."""
        comp = self._components(x, alpha)
        dens = mu * comp["S"] + np.sqrt(mu) * comp["I"] + comp["Bgg"] + comp["Bqq"]
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(dens, 0.0)) - np.log(self.nu(mu, alpha))

    def mixture_ratio(self, x: Columns, mu: float, alpha: float = 0.0, reference: str = "SBI") -> np.ndarray:
        """``p(x | mu, alpha) / p_ref(x)`` = ``(1/nu) sum_j f_j(mu) nu_j(alpha) p_j(x|alpha)/p_ref(x)``."""
        return np.exp(self.log_prob_mu(x, mu, alpha)) / self.density(reference, x, 0.0)

    # ---------------------------------------------------------------- sampling
    @lru_cache(maxsize=32)  # noqa: B019 - frozen instance, a few alpha values
    def _mass_bound(self, shape: str, alpha: float) -> float:
        m = np.geomspace(*M_RANGE, 4001)
        return 1.02 * float(np.max(_mass_shapes(m, alpha, (shape,))[shape] * m**3))

    def _sample_mass(self, shape: str, n: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
        """Exact rejection sample from a line shape with an ``m^-3`` proposal."""
        a, b = M_RANGE[0] ** -2, M_RANGE[1] ** -2
        bound = self._mass_bound(shape, float(alpha))
        out, filled = [], 0
        while filled < n:
            k = int(3 * (n - filled)) + 64
            m = (a - rng.random(k) * (a - b)) ** -0.5
            keep = rng.random(k) * bound < _mass_shapes(m, alpha, (shape,))[shape] * m**3
            out.append(m[keep])
            filled += int(keep.sum())
        return np.concatenate(out)[:n]

    def _sample_component(
        self, comp: str, n: int, alpha: float, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        shape = {"S": "s", "Bgg": "g", "Bqq": "q"}[comp]
        m = self._sample_mass(shape, n, alpha, rng)
        pt, y = _production_sample("qq" if comp == "Bqq" else "gg", m, rng)
        cols = {"m4l": m}
        for k in ANGLES:
            cols[k] = self._amps[comp][k].sample_squared(rng, n)
        cols["pt4l"], cols["y4l"] = pt, y
        return {k: cols[k] for k in OBSERVABLES}

    def _sample_mixture(
        self, weights: dict[str, float], n: int, alpha: float, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Exact sample of ``sum_c w_c p_c`` (components S, Bgg, Bqq), rows shuffled."""
        names = [c for c, w in weights.items() if w > 0 and n > 0]
        p = np.array([weights[c] for c in names])
        counts = rng.multinomial(n, p / p.sum()) if names else []
        parts = [self._sample_component(c, int(k), alpha, rng) for c, k in zip(names, counts)]
        if not parts:
            return {k: np.empty(0) for k in OBSERVABLES}
        order = rng.permutation(n)
        return {k: np.concatenate([part[k] for part in parts])[order] for k in OBSERVABLES}

    def sample_mu(self, n: int, mu: float, alpha: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw exactly from ``p(x | mu, alpha)``: envelope ``2 mu S + 2 B_gg + B_qq``, accept p/envelope."""
        y = self.yields(alpha)
        env = {"S": 2 * mu * y["S"], "Bgg": 2 * y["Bgg"], "Bqq": y["Bqq"]}
        acceptance = self.nu(mu, alpha) / sum(env.values())
        chunks, filled = [], 0
        while filled < n:
            k = int(1.1 * (n - filled) / acceptance) + 64
            x = self._sample_mixture(env, k, alpha, rng)
            c = self._components(x, alpha)
            target = mu * c["S"] + np.sqrt(mu) * c["I"] + c["Bgg"] + c["Bqq"]
            envelope = 2 * mu * c["S"] + 2 * c["Bgg"] + c["Bqq"]
            keep = rng.random(k) * envelope < target
            chunks.append({key: v[keep] for key, v in x.items()})
            filled += int(keep.sum())
        return {key: np.concatenate([ch[key] for ch in chunks])[:n] for key in OBSERVABLES}


def _check(process: str, extra: tuple[str, ...] = ()) -> None:
    if process not in PROCESSES + extra:
        raise ValueError(f"unknown offshell4l process {process!r}; choose one of {PROCESSES + extra}")


truth = OffshellModel()
"""The default :class:`OffshellModel`."""


def generate(
    process: str,
    n_events: int,
    seed: int | np.random.Generator | None = 0,
    *,
    alpha: float = 0.0,
    model: OffshellModel = truth,
) -> Sample:
    """Generate a weighted sample of one process.

    Parameters
    ----------
    process : {"S", "B", "SBI", "I"}
        ``"I"`` is drawn from ``S + B_gg`` with signed weights.
    n_events : int
    seed : int or numpy.random.Generator
    alpha : float
        Systematic; ``alpha = +-1`` give the +-1 sigma samples.
    model : OffshellModel

    Returns
    -------
    Sample
        The eight :data:`OBSERVABLES`; weights sum (in expectation, exactly for
        S, B, SBI) to ``nu_j(alpha)``.
    """
    _check(process)
    rng = as_rng(seed)
    n = int(n_events)
    alpha = float(alpha)
    y = model.yields(alpha)
    if process == "S":
        cols = model._sample_mixture({"S": 1.0}, n, alpha, rng)
    elif process == "B":
        cols = model._sample_mixture({"Bgg": y["Bgg"], "Bqq": y["Bqq"]}, n, alpha, rng)
    elif process == "SBI":
        cols = model.sample_mu(n, 1.0, alpha, rng)
    else:
        cols = model._sample_mixture({"S": y["S"], "Bgg": y["Bgg"]}, n, alpha, rng)
    if process == "I":
        c = model._components(cols, alpha)
        weight = (y["S"] + y["Bgg"]) * c["I"] / (c["S"] + c["Bgg"]) / max(n, 1)
    else:
        weight = np.full(n, y[process] / max(n, 1))
    attrs = {"generator": "offshell4l", "process": process, "alpha": alpha, "yield": y[process]}
    if not isinstance(seed, np.random.Generator):
        attrs["seed"] = seed
    return Sample(cols, weight, attrs)


def make_pseudodata(
    mu: float = 1.0,
    alpha: float = 0.0,
    seed: int | np.random.Generator | None = 0,
    *,
    poisson: bool = True,
    lumi_scale: float = 1.0,
    model: OffshellModel = truth,
) -> Sample:
    """Make an observed dataset from ``p(x | mu, alpha)``.

    Parameters
    ----------
    mu : float
        Signal strength (>= 0).
    alpha : float
        Systematic nuisance parameter.
    seed : int or numpy.random.Generator
    poisson : bool
        Draw the number of events from ``Pois(lumi_scale * nu(mu, alpha))``;
        otherwise use its rounded mean.
    lumi_scale : float
        Scales every yield.
    model : OffshellModel

    Returns
    -------
    Sample
        Unit weights.
    """
    rng = as_rng(seed)
    mean = lumi_scale * model.nu(mu, alpha)
    n = int(rng.poisson(mean)) if poisson else int(round(mean))
    cols = model.sample_mu(n, mu, float(alpha), rng)
    attrs = {
        "generator": "offshell4l",
        "process": "pseudodata",
        "mu": mu,
        "alpha": float(alpha),
        "expected": mean,
    }
    if not isinstance(seed, np.random.Generator):
        attrs["seed"] = seed
    return Sample(cols, None, attrs)
