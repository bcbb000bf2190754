"""Vertical interpolation of systematic variations, per event, with RooFit's codes.

A systematic uncertainty is given as a nominal value ``N`` (a density or a
yield, per event) and its variations ``L`` (nuisance parameter ``nu = -1``) and
``H`` (``nu = +1``).  An *interpolation code* says what the value is at any
``nu``.  rooml numbers and defines the codes exactly as RooFit's HistFactory
(ROOT 6.40, ``RooFit::Detail::MathFuncs::flexibleInterpSingle``) and adds its
own code 100; the arithmetic lives in the C++ core
(``cpp/include/rooml/interpolation.h``) and is the same in rooml's RooFit
classes.  The table of codes and what the NSBI and HI-SIGMA papers use is in
``docs/interpolation.md``.

Numbering: rooml's codes are PiecewiseInterpolation's (for shapes/densities).
A FlexibleInterpVar (normalisations) code is translated with
:func:`from_flexible_code`: its 4 is rooml's 5.

>>> import numpy as np
>>> from rooml import interpolation as interp
>>> interp.single(5, low=0.8, high=1.3, nominal=1.0, nu=1.0)   # multiplicative: a factor
1.3
>>> float(interp.interpolate(2.0, low=[[1.6]], high=[[2.6]], nu=[-1.0], codes=[4])[0])
1.6
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rooml import _core

__all__ = [
    "CODES",
    "InterpCode",
    "derivative",
    "from_flexible_code",
    "from_piecewise_code",
    "interpolate",
    "is_multiplicative",
    "single",
]


@dataclass(frozen=True)
class InterpCode:
    """Description of one interpolation code (documentation only; the core computes)."""

    code: int
    name: str
    kind: str  # "additive" (value = N + Delta) or "multiplicative" (value = N * f)
    inside: str
    outside: str
    continuity: str
    roofit: str

    def __str__(self) -> str:
        return f"code {self.code} ({self.name}, {self.kind}): inside {self.inside}; outside {self.outside}"


#: Registry {code: description} of the codes the core implements, pyhf style.
#: Entries describe the compiled kernels; adding an entry does not add a kernel.
CODES: dict[int, InterpCode] = {
    c.code: c
    for c in [
        InterpCode(0, "piecewise linear", "additive",
                   "nu (H - N) for nu > 0, nu (N - L) for nu <= 0", "same lines",
                   "C0 (kink at nu = 0 unless H - N = N - L)",
                   "PiecewiseInterpolation 0, FlexibleInterpVar 0"),
        InterpCode(1, "piecewise exponential", "multiplicative",
                   "(H/N)^nu for nu >= 0, (L/N)^-nu for nu < 0", "same exponentials",
                   "C0 (kink at nu = 0 unless H L = N^2)",
                   "PiecewiseInterpolation 1, FlexibleInterpVar 1"),
        InterpCode(2, "quadratic inside, linear outside", "additive",
                   "a nu^2 + c nu, a = (H + L)/2 - N, c = (H - L)/2 (|nu| <= 1)",
                   "tangent lines at nu = +-1", "C1 at |nu| = 1",
                   "PiecewiseInterpolation 2 (and 3), FlexibleInterpVar 2 (and 3)"),
        InterpCode(4, "6th-order polynomial inside, linear outside", "additive",
                   "odd/even 6th-order polynomial through 0 (|nu| < b)",
                   "nu (H - N) for nu >= b, nu (N - L) for nu <= -b", "C2 at |nu| = b",
                   "PiecewiseInterpolation 4 (HistFactory's shape default)"),
        InterpCode(5, "6th-order polynomial inside, exponential outside", "multiplicative",
                   "1 + sum_{i=1..6} a_i nu^i (|nu| < b)",
                   "(H/N)^nu for nu >= b, (L/N)^-nu for nu <= -b", "C2 at |nu| = b",
                   "PiecewiseInterpolation 5 = FlexibleInterpVar 4 and 5 = pyhf code4; NSBI and HI-SIGMA"),
        InterpCode(6, "code 4 on the ratios, multiplicative", "multiplicative",
                   "1 + code-4 polynomial of (L/N, 1, H/N) (|nu| < b)",
                   "1 + nu (H/N - 1) for nu >= b, 1 + nu (1 - L/N) for nu <= -b", "C2 at |nu| = b",
                   "PiecewiseInterpolation 6"),
        InterpCode(100, "quadratic inside, exponential outside", "multiplicative",
                   "1 + c1 nu + c2 nu^2, value matched at +-b (code 2's quadratic as a factor for b = 1)",
                   "(H/N)^nu for nu >= b, (L/N)^-nu for nu <= -b",
                   "C0 only (slope jumps at |nu| = b)", "rooml only"),
    ]
}

_FLOORS = {"none": _core.InterpFloor.none, "zero": _core.InterpFloor.zero, "tiny": _core.InterpFloor.tiny}


def _code(code) -> int:
    try:
        return int(code.__index__())
    except AttributeError:
        raise TypeError(f"interpolation code must be an integer, got {code!r}") from None


def is_multiplicative(code: int) -> bool:
    """Return True for codes whose single value is a factor (1, 5, 6, 100).

    >>> is_multiplicative(4), is_multiplicative(5)
    (False, True)
    """
    return _core.interp_is_multiplicative(_code(code))


def from_flexible_code(code: int) -> int:
    """Translate a FlexibleInterpVar code into rooml's numbering (4 -> 5, 3 -> 2).

    >>> from_flexible_code(4)
    5
    """
    return _core.interp_from_flexible_code(_code(code))


def from_piecewise_code(code: int) -> int:
    """Translate a PiecewiseInterpolation code into rooml's numbering (identity, except 3 -> 2).

    >>> from_piecewise_code(3)
    2
    """
    return _core.interp_from_piecewise_code(_code(code))


def single(code: int, low, high, nominal, nu, boundary: float = 1.0):
    """One variation, elementwise with numpy broadcasting.

    Parameters
    ----------
    code : int
        rooml (= PiecewiseInterpolation) code: 0, 1, 2, 4, 5, 6 or 100.
    low, high, nominal : array_like
        The -1 sigma, +1 sigma and nominal values (per event).
    nu : array_like
        Nuisance parameter value(s).
    boundary : float
        Where codes 4, 5, 6, 100 switch from the polynomial to the extrapolation.

    Returns
    -------
    float or numpy.ndarray
        The shift ``Delta`` (value = nominal + Delta) for additive codes 0, 2, 4;
        the factor ``f`` (value = nominal * f) for multiplicative codes 1, 5, 6, 100.

    Raises
    ------
    ValueError
        Unknown code (named in the message), non-finite inputs, a zero nominal
        for a multiplicative code, negative ratios for codes 1, 5, 100.

    Examples
    --------
    >>> single(0, low=0.9, high=1.2, nominal=1.0, nu=[-1.0, 0.0, 2.0]).round(12)
    array([-0.1,  0. ,  0.4])
    """
    return _core.interp_single(_code(code), low, high, nominal, nu, float(boundary))


def derivative(code: int, low, high, nominal, nu, order: int = 1, boundary: float = 1.0):
    """Analytic ``d^order single / d nu^order`` (order 0, 1 or 2), elementwise.

    At a kink the derivative of the branch that :func:`single` evaluates is returned.

    >>> round(derivative(1, low=0.5, high=2.0, nominal=1.0, nu=0.0), 12)  # log(2)
    0.69314718056
    """
    return _core.interp_derivative(_code(code), low, high, nominal, nu, int(order), float(boundary))


def interpolate(nominal, low, high, nu, codes, *, convention: str = "piecewise", floor: str | None = None,
                boundary: float = 1.0) -> np.ndarray:
    """Combine K nuisance parameters on n events as RooFit does.

    Starting from ``v = nominal``, for k = 0..K-1 in order: ``v += Delta_k``
    (additive codes) or ``v *= f_k`` (multiplicative codes).  All-additive lists
    give ``nominal + sum Delta``, all-multiplicative ones ``nominal * prod f``;
    mixed lists depend on the order, exactly as in PiecewiseInterpolation.

    Parameters
    ----------
    nominal : array_like, shape (n,) or scalar
    low, high : array_like, shape (K, n) (or (K,) for a scalar nominal)
    nu : array_like, shape (K,)
    codes : int or sequence of int, shape (K,)
        In the numbering of ``convention``.
    convention : {"piecewise", "flexible"}
        ``"piecewise"``: codes are rooml's = PiecewiseInterpolation's (shapes).
        ``"flexible"``: codes are FlexibleInterpVar's (normalisations; 4 means 5).
    floor : {"none", "zero", "tiny"}, optional
        Treatment of non-positive results; default ``"none"`` for
        ``"piecewise"`` (PiecewiseInterpolation without setPositiveDefinite) and
        ``"tiny"`` (v <= 0 -> DBL_MIN) for ``"flexible"``, as FlexibleInterpVar.
    boundary : float
        Polynomial/extrapolation boundary (PiecewiseInterpolation uses 1;
        FlexibleInterpVar::setGlobalBoundary sets it there).

    Returns
    -------
    numpy.ndarray, shape (n,)

    Examples
    --------
    >>> interpolate([1.0, 2.0], low=[[0.9, 1.8], [0.8, 1.9]], high=[[1.1, 2.4], [1.3, 2.1]],
    ...             nu=[1.0, -1.0], codes=[0, 5])
    array([0.88, 2.28])
    """
    if convention not in ("piecewise", "flexible"):
        raise ValueError(f"convention must be 'piecewise' or 'flexible', got {convention!r}")
    codes_arr = np.atleast_1d(np.asarray(codes))
    if codes_arr.size and codes_arr.dtype.kind not in "iu":
        raise TypeError(f"codes must be integers, got {codes!r}")
    if convention == "flexible":
        codes_arr = np.array([from_flexible_code(int(c)) for c in codes_arr], dtype=np.int64)
    if floor is None:
        floor = "tiny" if convention == "flexible" else "none"
    if floor not in _FLOORS:
        raise ValueError(f"floor must be one of {sorted(_FLOORS)}, got {floor!r}")
    nominal = np.asarray(nominal, dtype=np.float64)
    scalar = nominal.ndim == 0
    nom = np.atleast_1d(nominal)
    k = codes_arr.size

    def rows(a):
        a = np.asarray(a, dtype=np.float64)
        return a.reshape(k, 1) if scalar and a.ndim <= 1 else a

    out = _core.interp_combine(nom, rows(low), rows(high), np.atleast_1d(np.asarray(nu, dtype=np.float64)),
                               codes_arr.astype(np.int64), _FLOORS[floor], float(boundary))
    return out
