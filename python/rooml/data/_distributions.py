"""Closed-form one-dimensional densities used as building blocks by the generators.

Every density here is exactly normalized on its support (special functions from
``scipy.special``), vectorized over its parameters, and has an exact sampler
(numpy's own samplers or an analytic inverse CDF).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special

__all__ = [
    "DoubleSidedCrystalBall",
    "ExpQuadratic",
    "beta_logpdf",
    "gamma_logpdf",
    "gauss_legendre",
    "lognormal_logpdf",
    "normal_logpdf",
    "trunc_expon_logpdf",
    "trunc_expon_sample",
    "truncnorm_logpdf",
    "truncnorm_sample",
    "normal_tails_logpdf",
    "normal_tails_sample",
]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def gauss_legendre(a: float, b: float, n_panels: int = 64, order: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on ``[a, b]``.

    Parameters
    ----------
    a, b : float
        Interval.
    n_panels : int
        Number of equal panels.
    order : int
        Nodes per panel.

    Returns
    -------
    nodes, weights : numpy.ndarray
    """
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(a, b, n_panels + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weights = (half[:, None] * w[None, :]).ravel()
    return nodes, weights


def normal_logpdf(x: np.ndarray, mu: np.ndarray | float, sigma: np.ndarray | float) -> np.ndarray:
    """Log-density of the normal distribution."""
    z = (x - mu) / sigma
    return -0.5 * z * z - np.log(sigma) - _LOG_SQRT_2PI


def gamma_logpdf(x: np.ndarray, k: np.ndarray | float, theta: np.ndarray | float) -> np.ndarray:
    """Log-density of the gamma distribution (shape ``k``, scale ``theta``) on x > 0."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x > 0, x, 1.0)
    out = special.xlogy(k - 1.0, safe) - safe / theta - special.gammaln(k) - k * np.log(theta)
    return np.where(x > 0, out, -np.inf)


def beta_logpdf(u: np.ndarray, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Log-density of the beta distribution on 0 < u < 1."""
    u = np.asarray(u, dtype=float)
    inside = (u > 0) & (u < 1)
    safe = np.where(inside, u, 0.5)
    out = special.xlogy(a - 1.0, safe) + special.xlog1py(b - 1.0, -safe) - special.betaln(a, b)
    return np.where(inside, out, -np.inf)


def lognormal_logpdf(x: np.ndarray, mu: np.ndarray | float, sigma: np.ndarray | float) -> np.ndarray:
    """Log-density of the log-normal distribution (``log x ~ N(mu, sigma)``) on x > 0."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x > 0, x, 1.0)
    lx = np.log(safe)
    out = normal_logpdf(lx, mu, sigma) - lx
    return np.where(x > 0, out, -np.inf)


def _log_mass(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """log(Phi(beta) - Phi(alpha)) for alpha < beta, stable in both tails."""
    alpha, beta = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(beta, float))
    mirror = alpha > 0
    lo = np.where(mirror, -beta, alpha)
    hi = np.where(mirror, -alpha, beta)
    lhi = special.log_ndtr(hi)
    llo = special.log_ndtr(lo)
    return lhi + np.log1p(-np.exp(llo - lhi))


def truncnorm_logpdf(x: np.ndarray, mu, sigma, lo, hi) -> np.ndarray:
    """Log-density of N(mu, sigma) truncated to ``[lo, hi]`` (bounds may be infinite)."""
    x = np.asarray(x, dtype=float)
    out = normal_logpdf(x, mu, sigma) - _log_mass((lo - mu) / sigma, (hi - mu) / sigma)
    return np.where((x >= lo) & (x <= hi), out, -np.inf)


def truncnorm_sample(rng: np.random.Generator, mu, sigma, lo, hi, size: int | None = None) -> np.ndarray:
    """Exact inverse-CDF sample of N(mu, sigma) truncated to ``[lo, hi]``."""
    mu, sigma, lo, hi = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (mu, sigma, lo, hi)))
    shape = mu.shape if size is None else (size,)
    alpha = (lo - mu) / sigma
    beta = (hi - mu) / sigma
    mirror = alpha > 0  # sample -Z on [-beta, -alpha] to stay in the accurate lower tail
    a = np.where(mirror, -beta, alpha)
    b = np.where(mirror, -alpha, beta)
    pa = special.ndtr(a)
    pb = special.ndtr(b)
    u = rng.random(shape)
    z = special.ndtri(pa + u * (pb - pa))
    z = np.clip(z, a, b)
    z = np.where(mirror, -z, z)
    return mu + sigma * z


def normal_tails_logpdf(x: np.ndarray, sigma, cut: float) -> np.ndarray:
    """Log-density of N(0, sigma) restricted to ``|x| >= cut``."""
    x = np.asarray(x, dtype=float)
    out = normal_logpdf(x, 0.0, sigma) - np.log(2.0) - special.log_ndtr(-cut / np.asarray(sigma))
    return np.where(np.abs(x) >= cut, out, -np.inf)


def normal_tails_sample(rng: np.random.Generator, sigma, cut: float, size: int | None = None) -> np.ndarray:
    """Exact inverse-CDF sample of N(0, sigma) restricted to ``|x| >= cut``."""
    sigma = np.asarray(sigma, dtype=float)
    shape = sigma.shape if size is None else (size,)
    p = special.ndtr(-cut / sigma)
    u = rng.random(shape)
    z = -special.ndtri(u * p)
    mag = np.maximum(sigma * z, cut)
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return sign * mag


def trunc_expon_logpdf(y: np.ndarray, rate, upper: float) -> np.ndarray:
    """Log-density of an exponential with ``rate`` truncated to ``[0, upper]``."""
    y = np.asarray(y, dtype=float)
    out = np.log(rate) - rate * y - np.log(-np.expm1(-rate * upper))
    return np.where((y >= 0) & (y <= upper), out, -np.inf)


def trunc_expon_sample(rng: np.random.Generator, rate, upper: float, size: int | None = None) -> np.ndarray:
    """Exact inverse-CDF sample of an exponential truncated to ``[0, upper]``."""
    rate = np.asarray(rate, dtype=float)
    shape = rate.shape if size is None else (size,)
    u = rng.random(shape)
    y = -np.log1p(u * np.expm1(-rate * upper)) / rate
    return np.clip(y, 0.0, upper)


@dataclass(frozen=True)
class DoubleSidedCrystalBall:
    """Double-sided Crystal Ball density truncated and normalized on ``[lo, hi]``.

    Gaussian core ``exp(-t^2/2)`` for ``-alpha_l <= t <= alpha_r`` with
    ``t = (x - mu)/sigma`` and power-law tails ``A (B -+ t)^-n`` joined with
    continuous value and derivative. The normalization is analytic (error
    function for the core, closed-form power-law integrals for the tails) and
    the sampler is the exact piecewise inverse CDF.
    """

    mu: float
    sigma: float
    alpha_l: float
    n_l: float
    alpha_r: float
    n_r: float
    lo: float
    hi: float

    def _tail(self, alpha: float, n: float) -> tuple[float, float]:
        a = (n / alpha) ** n * np.exp(-0.5 * alpha * alpha)
        b = n / alpha - alpha
        return a, b

    @cached_property
    def _pieces(self) -> tuple[float, float, float]:
        """Integrals (in t) of the left tail, the core and the right tail inside the range."""
        tlo = (self.lo - self.mu) / self.sigma
        thi = (self.hi - self.mu) / self.sigma
        al, ar = self.alpha_l, self.alpha_r
        a_l, b_l = self._tail(al, self.n_l)
        a_r, b_r = self._tail(ar, self.n_r)
        left = 0.0
        if tlo < -al:
            e = 1.0 - self.n_l
            left = a_l / (self.n_l - 1.0) * ((b_l - min(thi, -al)) ** e - (b_l - tlo) ** e)
        right = 0.0
        if thi > ar:
            e = 1.0 - self.n_r
            right = a_r / (self.n_r - 1.0) * ((b_r + max(tlo, ar)) ** e - (b_r + thi) ** e)
        c0, c1 = max(tlo, -al), min(thi, ar)
        core = np.sqrt(2 * np.pi) * (special.ndtr(c1) - special.ndtr(c0)) if c1 > c0 else 0.0
        return float(left), float(core), float(right)

    @property
    def log_norm(self) -> float:
        """Log of the integral of the unnormalized density over ``[lo, hi]`` in x."""
        return float(np.log(sum(self._pieces) * self.sigma))

    def log_unnormalized(self, x: np.ndarray) -> np.ndarray:
        """Return the log of the unnormalized density (1 at the peak)."""
        t = (np.asarray(x, dtype=float) - self.mu) / self.sigma
        a_l, b_l = self._tail(self.alpha_l, self.n_l)
        a_r, b_r = self._tail(self.alpha_r, self.n_r)
        core = -0.5 * t * t
        left = np.log(a_l) - self.n_l * np.log(np.maximum(b_l - t, 1e-300))
        right = np.log(a_r) - self.n_r * np.log(np.maximum(b_r + t, 1e-300))
        return np.where(t < -self.alpha_l, left, np.where(t > self.alpha_r, right, core))

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Return the normalized log-density (``-inf`` outside ``[lo, hi]``)."""
        x = np.asarray(x, dtype=float)
        out = self.log_unnormalized(x) - self.log_norm
        return np.where((x >= self.lo) & (x <= self.hi), out, -np.inf)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw an exact sample by the piecewise analytic inverse CDF."""
        left, core, right = self._pieces
        total = left + core + right
        tlo = (self.lo - self.mu) / self.sigma
        a_l, b_l = self._tail(self.alpha_l, self.n_l)
        a_r, b_r = self._tail(self.alpha_r, self.n_r)
        v = rng.random(size) * total
        t = np.empty(size)
        in_left = v < left
        in_core = (~in_left) & (v < left + core)
        in_right = ~(in_left | in_core)
        # left tail: F(t) = a/(n-1) [(b - t)^(1-n) - (b - tlo)^(1-n)]
        e = 1.0 - self.n_l
        f = v[in_left]
        t[in_left] = b_l - (f * (self.n_l - 1.0) / a_l + (b_l - tlo) ** e) ** (1.0 / e)
        # core: Gaussian inverse CDF
        c0 = max(tlo, -self.alpha_l)
        f = v[in_core] - left
        t[in_core] = special.ndtri(special.ndtr(c0) + f / np.sqrt(2 * np.pi))
        # right tail: F(t) = a/(n-1) [(b + t0)^(1-n) - (b + t)^(1-n)]
        e = 1.0 - self.n_r
        t0 = max(tlo, self.alpha_r)
        f = v[in_right] - left - core
        t[in_right] = ((b_r + t0) ** e - f * (self.n_r - 1.0) / a_r) ** (1.0 / e) - b_r
        return np.clip(self.mu + self.sigma * t, self.lo, self.hi)


@dataclass(frozen=True)
class ExpQuadratic:
    """Density proportional to ``exp(-p1 u + p2 u^2)`` for ``u`` in ``[0, 1]``.

    The normalization is closed form: Dawson's function for ``p2 > 0``, the
    scaled complementary error function for ``p2 < 0``, elementary for
    ``p2 = 0`` (``p1 >= 0`` is assumed for the latter two).
    """

    p1: float
    p2: float

    @cached_property
    def log_norm(self) -> float:
        """Log of the integral of ``exp(-p1 u + p2 u^2)`` over ``[0, 1]``."""
        p1, p2 = float(self.p1), float(self.p2)
        if p2 > 0:
            c = p1 / (2 * p2)
            s = np.sqrt(p2)
            z = (np.exp(-p1 + p2) * special.dawsn(s * (1 - c)) - special.dawsn(-s * c)) / s
        elif p2 < 0:
            q = -p2
            s = np.sqrt(q)
            c = p1 / (2 * q)
            z = (
                np.sqrt(np.pi)
                / (2 * s)
                * (special.erfcx(s * c) - special.erfcx(s * (1 + c)) * np.exp(-p1 - q))
            )
        elif p1 != 0:
            z = -np.expm1(-p1) / p1
        else:
            z = 1.0
        return float(np.log(z))

    def logpdf(self, u: np.ndarray) -> np.ndarray:
        """Return the normalized log-density in ``u`` (``-inf`` outside ``[0, 1]``)."""
        u = np.asarray(u, dtype=float)
        out = -self.p1 * u + self.p2 * u * u - self.log_norm
        return np.where((u >= 0) & (u <= 1), out, -np.inf)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw an exact sample: truncated-exponential proposal, accept ``exp(p2 (u^2 - max))``."""
        out = np.empty(size)
        filled = 0
        bound = max(self.p2, 0.0)
        while filled < size:
            n = int(1.3 * (size - filled) * np.exp(bound)) + 64
            if self.p1 > 0:
                u = trunc_expon_sample(rng, self.p1, 1.0, size=n)
            else:
                u = rng.random(n)
                # flat proposal; fold the linear term into the acceptance
            log_acc = self.p2 * u * u - bound
            if self.p1 <= 0:
                log_acc = log_acc - self.p1 * u - max(-self.p1, 0.0)
            keep = u[np.log(rng.random(n)) < log_acc]
            take = min(keep.size, size - filled)
            out[filled : filled + take] = keep[:take]
            filled += take
        return out
