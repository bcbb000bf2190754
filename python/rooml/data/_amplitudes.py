"""Building blocks of the off-shell 4l toy: angular amplitudes and mass line shapes.

Angular amplitudes are low-order polynomials in ``cos theta`` on [-1, 1] or
cosine series in ``phi`` on [-pi, pi]; products of two amplitudes integrate
exactly (polynomial integrals, orthogonality of cosines). Densities are squares
of amplitudes, sampled by rejection from a uniform proposal under the rigorous
bound ``(sum |a_n|)^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P
from numpy.polynomial.chebyshev import chebval

__all__ = ["AngularAmplitude", "ANGLES"]

ANGLES = ("cos_theta_star", "phi1", "cos_theta1", "cos_theta2", "phi")
_KIND = {"cos_theta_star": "cos", "phi1": "phi", "cos_theta1": "cos", "cos_theta2": "cos", "phi": "phi"}


@dataclass(frozen=True)
class AngularAmplitude:
    """Real amplitude of one angle.

    Parameters
    ----------
    kind : {"cos", "phi"}
        ``"cos"``: ``sum a_n c^n`` for ``c`` in [-1, 1]; ``"phi"``:
        ``sum a_n cos(n phi)`` for ``phi`` in [-pi, pi].
    coeffs : tuple of float
    """

    kind: str
    coeffs: tuple[float, ...]

    @property
    def support(self) -> tuple[float, float]:
        """The variable's range."""
        return (-1.0, 1.0) if self.kind == "cos" else (-np.pi, np.pi)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """Evaluate the amplitude (zero outside the support)."""
        v = np.asarray(v, dtype=float)
        if self.kind == "cos":
            out = P.polyval(v, np.asarray(self.coeffs))
        else:
            out = chebval(np.cos(v), np.asarray(self.coeffs))  # cos(n phi) = T_n(cos phi)
        lo, hi = self.support
        return np.where((v >= lo) & (v <= hi), out, 0.0)

    def overlap(self, other: AngularAmplitude) -> float:
        """Exact ``∫ self(v) other(v) dv`` over the support."""
        if self.kind != other.kind:
            raise ValueError("amplitudes of different variables")
        if self.kind == "cos":
            prod = P.polyint(P.polymul(self.coeffs, other.coeffs))
            return float(P.polyval(1.0, prod) - P.polyval(-1.0, prod))
        a = np.zeros(max(len(self.coeffs), len(other.coeffs)))
        b = np.zeros_like(a)
        a[: len(self.coeffs)] = self.coeffs
        b[: len(other.coeffs)] = other.coeffs
        return float(2 * np.pi * a[0] * b[0] + np.pi * np.dot(a[1:], b[1:]))

    def sample_squared(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Exact sample from the density ``self(v)^2 / overlap(self, self)``."""
        lo, hi = self.support
        bound = float(np.sum(np.abs(self.coeffs))) ** 2
        out = np.empty(n)
        filled = 0
        while filled < n:
            k = int(3 * (n - filled)) + 64
            v = rng.uniform(lo, hi, k)
            keep = v[rng.random(k) * bound < self(v) ** 2]
            take = min(keep.size, n - filled)
            out[filled : filled + take] = keep[:take]
            filled += take
        return out


def amplitudes(spec: dict[str, tuple[float, ...]]) -> dict[str, AngularAmplitude]:
    """Build the five angular amplitudes of one component from their coefficients."""
    return {name: AngularAmplitude(_KIND[name], tuple(spec[name])) for name in ANGLES}
