"""Interpolation codes: rooml's kernels against RooFit's own classes, continuity, edge values, bad input."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
import rooml  # noqa: F401  (before ROOT, as everywhere in rooml)
from rooml import _core
from rooml import interpolation as interp

ROOFIT_CODES = [0, 1, 2, 4, 5, 6]
ALL_CODES = ROOFIT_CODES + [100]
RTOL = 1e-12

# nu: the branch points exactly and a hair either side of them, plus random values in [-3, 3].
NU_FIXED = [-3.0, -2.0, -1.0 - 1e-12, -1.0, -1.0 + 1e-12, -0.6, -1e-12, 0.0, 1e-12, 0.4,
            1.0 - 1e-12, 1.0, 1.0 + 1e-12, 2.0, 3.0]
NU_GRID = np.concatenate([NU_FIXED, np.random.default_rng(7).uniform(-3, 3, 12)])


def make_events(n, k=1, seed=0):
    """Nominal > 0 spanning decades; low and high around it on either side (ratios in [0.4, 2])."""
    rng = np.random.default_rng(seed)
    nominal = np.exp(rng.uniform(-4, 4, n))
    low = nominal * rng.uniform(0.4, 1.2, (k, n))
    high = nominal * rng.uniform(0.8, 2.0, (k, n))
    return nominal, low, high


def asymmetric_events(n, seed=1):
    """Make clearly asymmetric variations (H = N(1+u), L = N(1-v), u - v >= 0.1), so kinks are visible."""
    rng = np.random.default_rng(seed)
    nominal = np.exp(rng.uniform(-2, 2, n))
    return nominal, nominal * (1 - rng.uniform(0.05, 0.2, n)), nominal * (1 + rng.uniform(0.3, 0.6, n))


def rel_dev(a, b, scale):
    """Return max |a - b| / max(|b|, |scale|): additive codes can cancel to ~0, the nominal sets the scale."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.abs(scale)))) if len(a) else 0.0


def value(code, low, high, nominal, nu, boundary=1.0):
    """Return the interpolated value of one variation, nominal + Delta or nominal * f."""
    f = interp.single(code, low, high, nominal, nu, boundary)
    return nominal * f if interp.is_multiplicative(code) else nominal + f


# --------------------------------------------------------------------------- RooFit

_HELPERS = r"""
#include <RooArgList.h>
#include <RooFit/Evaluator.h>
#include <RooRealVar.h>
#include <RooStats/HistFactory/FlexibleInterpVar.h>
namespace rooml_interp_test {
// getVal() (RooAbsReal::evaluate) event by event: set nominal and the K low/high variables, read f.
void scalar_loop(RooAbsReal& f, RooRealVar& nom, RooArgList& lows, RooArgList& highs, const double* nomv,
                 const double* lowv, const double* highv, std::size_t K, std::size_t n, double* out) {
  for (std::size_t e = 0; e < n; ++e) {
    nom.setVal(nomv[e]);
    for (std::size_t k = 0; k < K; ++k) {
      static_cast<RooRealVar&>(lows[k]).setVal(lowv[k * n + e]);
      static_cast<RooRealVar&>(highs[k]).setVal(highv[k * n + e]);
    }
    out[e] = f.getVal();
  }
}
void flexible_loop(RooStats::HistFactory::FlexibleInterpVar& f, RooArgList& params, const double* nomv,
                   const double* lowv, const double* highv, std::size_t K, std::size_t n, double* out) {
  for (std::size_t e = 0; e < n; ++e) {
    f.setNominal(nomv[e]);
    for (std::size_t k = 0; k < K; ++k) {
      f.setLow(static_cast<RooAbsReal&>(params[k]), lowv[k * n + e]);
      f.setHigh(static_cast<RooAbsReal&>(params[k]), highv[k * n + e]);
    }
    out[e] = f.getVal();
  }
}
// The vectorized path (doEval) through RooFit's Evaluator, with the observables names[j] fed from the
// columns cols[j * n, (j + 1) * n).  The Evaluator lives only inside this call: its destructor writes into
// every node of f, so one kept alive in Python could outlive f (a use after free: heap corruption).
void run(RooAbsReal& f, const std::vector<std::string>& names, const double* cols, std::size_t n,
         double* out) {
  RooFit::Evaluator ev(f);
  for (std::size_t j = 0; j < names.size(); ++j) ev.setInput(names[j], {cols + j * n, n}, false);
  auto r = ev.run();
  if (r.size() != n) throw std::runtime_error("Evaluator returned " + std::to_string(r.size()) + " values");
  for (std::size_t i = 0; i < n; ++i) out[i] = r[i];
}
}
"""


@pytest.fixture(scope="module")
def ROOT():
    """ROOT with the comparison helpers declared and RooFit quiet below ERROR (restored afterwards)."""
    root = pytest.importorskip("ROOT")
    msg = root.RooMsgService.instance()
    old = msg.globalKillBelow()
    msg.setGlobalKillBelow(root.RooFit.ERROR)  # FlexibleInterpVar::setNominal warns on every call
    assert root.gInterpreter.Declare(_HELPERS)
    yield root
    msg.setGlobalKillBelow(old)


class Piecewise:
    """A PiecewiseInterpolation over RooRealVars nominal, low_k, high_k, nu_k."""

    def __init__(self, ROOT, codes, positive_definite=False):
        big = 1e300
        self.ROOT = ROOT
        self.K = len(codes)
        self.nom = ROOT.RooRealVar("nom", "", 1.0, -big, big)
        self.lows = ROOT.RooArgList()
        self.highs = ROOT.RooArgList()
        self.nus = ROOT.RooArgList()
        self._keep = []
        for k in range(self.K):
            for lst, name, lim in ((self.lows, f"lo{k}", big), (self.highs, f"hi{k}", big),
                                   (self.nus, f"nu{k}", 10)):
                v = ROOT.RooRealVar(name, "", 0.0, -lim, lim)
                self._keep.append(v)
                lst.add(v)
        self.f = ROOT.PiecewiseInterpolation("pi", "", self.nom, self.lows, self.highs, self.nus)
        for k, c in enumerate(codes):
            self.f.setInterpCode(self.nus[k], int(c))
        assert list(self.f.interpolationCodes()) == [int(c) for c in codes]
        self.f.setPositiveDefinite(positive_definite)

    def set_nu(self, nu):
        """Set the nuisance parameters."""
        for k, x in enumerate(nu):
            self.nus[k].setVal(float(x))

    def get_val(self, nominal, low, high):
        """Return getVal() event by event (RooAbsReal::evaluate)."""
        out = np.empty(len(nominal))
        self.ROOT.rooml_interp_test.scalar_loop(self.f, self.nom, self.lows, self.highs, nominal,
                                                np.ascontiguousarray(low), np.ascontiguousarray(high),
                                                self.K, len(nominal), out)
        return out

    def evaluator(self, nominal, low, high):
        """Return a function running an Evaluator (the doEval path) on the event columns."""
        names = ["nom"] + [f"{side}{k}" for k in range(self.K) for side in ("lo", "hi")]
        cols = np.vstack([nominal] + [arr for k in range(self.K) for arr in (low[k], high[k])]).ravel()

        def run():
            out = np.empty(len(nominal))
            self.ROOT.rooml_interp_test.run(self.f, names, cols, len(nominal), out)
            return out

        return run


@pytest.mark.parametrize("code", ROOFIT_CODES)
def test_single_code_matches_piecewise_interpolation(ROOT, code):
    """Value of every code == PiecewiseInterpolation's, both getVal() and the vectorized doEval()."""
    nominal, low, high = make_events(1500, seed=code)
    pi = Piecewise(ROOT, [code])
    run = pi.evaluator(nominal, low, high)
    worst = 0.0
    for x in NU_GRID:
        pi.set_nu([x])
        ours = interp.interpolate(nominal, low, high, [x], [code])
        # combine (v += v (f - 1), as RooFit) == nominal * f or nominal + Delta, to rounding
        assert rel_dev(ours, value(code, low[0], high[0], nominal, x), nominal) < 1e-15
        worst = max(worst, rel_dev(ours, pi.get_val(nominal, low, high), nominal),
                    rel_dev(ours, run(), nominal))
    assert worst <= RTOL, f"code {code}: max relative deviation from RooFit {worst:.3g}"


@pytest.mark.parametrize("codes", [(4, 5, 0), (1, 6, 2), (5, 5, 5), (0, 2, 4), (6, 1, 4), (2, 0, 1)])
def test_three_parameters_mixed_codes_match_piecewise_interpolation(ROOT, codes):
    """K = 3 with mixed additive and multiplicative codes: same order-dependent combination as RooFit."""
    nominal, low, high = make_events(800, k=3, seed=sum(codes))
    pi = Piecewise(ROOT, codes)
    run = pi.evaluator(nominal, low, high)
    rng = np.random.default_rng(11)
    nus = [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [-3.0, 2.5, 1.0]] + list(rng.uniform(-3, 3, (12, 3)))
    worst = 0.0
    for nu in nus:
        pi.set_nu(nu)
        ours = interp.interpolate(nominal, low, high, nu, list(codes))
        worst = max(worst, rel_dev(ours, pi.get_val(nominal, low, high), nominal),
                    rel_dev(ours, run(), nominal))
    assert worst <= RTOL


def test_mixed_order_matters_as_in_roofit(ROOT):
    """Additive-then-multiplicative != multiplicative-then-additive, and RooFit agrees with each order."""
    nominal, low, high = make_events(200, k=2, seed=3)
    nu = [1.7, -0.4]
    a = interp.interpolate(nominal, low, high, nu, [0, 5])
    b = interp.interpolate(nominal, low[::-1], high[::-1], nu[::-1], [5, 0])
    assert np.max(np.abs(a - b) / nominal) > 1e-3
    for codes, lo, hi, x, ours in (([0, 5], low, high, nu, a), ([5, 0], low[::-1], high[::-1], nu[::-1], b)):
        pi = Piecewise(ROOT, codes)
        pi.set_nu(x)
        assert rel_dev(ours, pi.get_val(nominal, lo, hi), nominal) <= RTOL


def test_positive_definite_floor(ROOT):
    """setPositiveDefinite(true) == floor='zero'; the test sees negative values without it."""
    nominal, low, high = make_events(500, k=2, seed=5)
    pi = Piecewise(ROOT, [0, 4], positive_definite=True)
    for nu in ([-3.0, -2.0], [2.0, -3.0], [0.5, 0.5]):
        pi.set_nu(nu)
        ours = interp.interpolate(nominal, low, high, nu, [0, 4], floor="zero")
        assert rel_dev(ours, pi.get_val(nominal, low, high), nominal) <= RTOL
        assert np.all(ours >= 0)
    assert np.any(interp.interpolate(nominal, low, high, [-3.0, -2.0], [0, 4]) < 0)


@pytest.mark.parametrize("boundary", [1.0, 0.6])
@pytest.mark.parametrize("codes", [[0], [1], [2], [4], [5], [4, 1, 0], [2, 5, 4]])
def test_flexible_interp_var(ROOT, codes, boundary):
    """FlexibleInterpVar numbering (4 -> 5), its global boundary and its DBL_MIN floor."""
    K = len(codes)
    nominal, low, high = make_events(300, k=K, seed=K + 17)
    nus = ROOT.RooArgList()
    keep = [ROOT.RooRealVar(f"a{k}", "", 0.0, -10, 10) for k in range(K)]
    for v in keep:
        nus.add(v)
    fiv = ROOT.RooStats.HistFactory.FlexibleInterpVar("fiv", "", nus, 1.0, [0.9] * K, [1.1] * K, codes)
    fiv.setGlobalBoundary(boundary)
    floored = 0
    for x in NU_GRID[::2]:
        nu = [x] + list(np.random.default_rng(int(1e3 * abs(x))).uniform(-3, 3, K - 1))
        for v, xv in zip(keep, nu):
            v.setVal(xv)
        theirs = np.empty(len(nominal))
        ROOT.rooml_interp_test.flexible_loop(fiv, nus, nominal, low, high, K, len(nominal), theirs)
        ours = interp.interpolate(nominal, low, high, nu, codes, convention="flexible", boundary=boundary)
        assert rel_dev(ours, theirs, nominal) <= RTOL
        floored += int(np.sum(ours == np.finfo(float).tiny))
    if codes[0] in (0, 2):  # linear extrapolation to nu = -3 goes negative for low/nominal < 2/3
        assert floored > 0


def test_flexible_code_4_is_piecewise_code_5(ROOT):
    """Show RooFit's numbering surprise with RooFit alone: FlexibleInterpVar 4 == PiecewiseInterpolation 5."""
    nu = ROOT.RooRealVar("a", "", 0.0, -10, 10)
    fiv = ROOT.RooStats.HistFactory.FlexibleInterpVar("fiv", "", ROOT.RooArgList(nu), 1.0, [0.7], [1.4], [4])
    pi5, pi4 = Piecewise(ROOT, [5]), Piecewise(ROOT, [4])
    for p in (pi5, pi4):
        p.nom.setVal(1.0)
        p.lows[0].setVal(0.7)
        p.highs[0].setVal(1.4)
    diff4 = 0.0
    for x in (-2.5, -1.0, -0.3, 0.6, 1.0, 2.2):
        nu.setVal(x)
        pi5.set_nu([x])
        pi4.set_nu([x])
        assert fiv.getVal() == pytest.approx(pi5.f.getVal(), rel=1e-14)
        diff4 = max(diff4, abs(fiv.getVal() - pi4.f.getVal()))
    assert diff4 > 1e-3
    assert interp.from_flexible_code(4) == 5 and interp.from_flexible_code(5) == 5


# --------------------------------------------------------------------------- independent references


def _poly6_reference(p0, vp, dp, sp, vm, dm, sm, b, x):
    """Solve the 6x6 system for sum_{i=1..6} a_i x^i matching value/slope/curvature at +-b (numpy)."""
    rows, rhs = [], []
    for s, v, d, c in ((1.0, vp, dp, sp), (-1.0, vm, dm, sm)):
        xb = s * b
        rows.append([xb**i for i in range(1, 7)])
        rows.append([i * xb ** (i - 1) for i in range(1, 7)])
        rows.append([i * (i - 1) * xb ** (i - 2) if i >= 2 else 0.0 for i in range(1, 7)])
        rhs += [v - p0, d, c]
    a = np.linalg.solve(np.array(rows), np.array(rhs))
    return p0 + sum(a[i] * x ** (i + 1) for i in range(6))


@pytest.mark.parametrize("boundary", [1.0, 0.7, 1.5])
def test_polynomials_against_linear_algebra(boundary):
    """Codes 4 and 5 inside |nu| < b == the C2-matching polynomial from an independent numpy solve."""
    nominal, low, high = make_events(40, seed=21)
    xs = np.linspace(-boundary, boundary, 9)[1:-1]
    for n_, l_, h_ in zip(nominal, low[0], high[0]):
        rp, rm = h_ / n_, l_ / n_
        ref5 = _poly6_reference(1.0, rp**boundary, rp**boundary * np.log(rp), rp**boundary * np.log(rp) ** 2,
                                rm**boundary, -(rm**boundary) * np.log(rm), rm**boundary * np.log(rm) ** 2,
                                boundary, xs)
        ref4 = _poly6_reference(0.0, boundary * (h_ - n_), h_ - n_, 0.0, -boundary * (n_ - l_), n_ - l_, 0.0,
                                boundary, xs)
        np.testing.assert_allclose(interp.single(5, l_, h_, n_, xs, boundary), ref5, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(interp.single(4, l_, h_, n_, xs, boundary), ref4,
                                   rtol=1e-11, atol=1e-11 * n_)


@pytest.mark.parametrize("boundary", [1.0, 0.5])
def test_code_100_quadratic(boundary):
    """Code 100 = 1 + c1 nu + c2 nu^2 (value-matched at +-b) inside, exponential outside; numpy reference."""
    nominal, low, high = make_events(500, seed=8)
    rp, rm = high[0] / nominal, low[0] / nominal
    c1 = (rp**boundary - rm**boundary) / (2 * boundary)
    c2 = ((rp**boundary + rm**boundary) / 2 - 1) / boundary**2
    for x in NU_GRID:
        if x >= boundary:
            ref = rp**x
        elif x <= -boundary:
            ref = rm ** (-x)
        else:
            ref = 1 + c1 * x + c2 * x * x
        np.testing.assert_allclose(interp.single(100, low[0], high[0], nominal, x, boundary), ref, rtol=1e-13)
    # For b = 1 the inside is code 2's quadratic written as a factor.
    inside = np.linspace(-1, 1, 11)
    for x in inside:
        np.testing.assert_allclose(nominal * interp.single(100, low[0], high[0], nominal, x),
                                   nominal + interp.single(2, low[0], high[0], nominal, x), rtol=1e-13)


# --------------------------------------------------------------------------- continuity

# (code, nu where a branch changes, highest derivative order promised continuous there,
#  lowest derivative order that jumps there for asymmetric variations, or None)
BRANCHES = [
    (0, 0.0, 0, 1), (0, 1.0, 2, None), (0, -1.0, 2, None),
    (1, 0.0, 0, 1), (1, 1.0, 2, None), (1, -1.0, 2, None),
    (2, 1.0, 1, 2), (2, -1.0, 1, 2), (2, 0.0, 2, None),
    (4, "b", 2, None), (4, "-b", 2, None), (4, 0.0, 2, None),
    (5, "b", 2, None), (5, "-b", 2, None), (5, 0.0, 2, None),
    (6, "b", 2, None), (6, "-b", 2, None), (6, 0.0, 2, None),
    (100, "b", 0, 1), (100, "-b", 0, 1), (100, 0.0, 2, None),
]


# codes 0, 1, 2 ignore the boundary; the others are also checked with boundary 0.7 (FlexibleInterpVar)
CONTINUITY_CASES = [(*br, b) for br in BRANCHES for b in (1.0, 0.7) if b == 1.0 or br[0] in (4, 5, 6, 100)]


@pytest.mark.parametrize("code,point,promised,broken,boundary", CONTINUITY_CASES)
def test_continuity(code, point, promised, broken, boundary):
    """Check value, slope and curvature either side of each branch point.

    Continuous up to the promised order (analytic derivatives and one-sided finite
    differences), and a real jump at the first broken order (so the test has power).
    """
    p = {"b": boundary, "-b": -boundary}.get(point, point)
    nominal, low, high = asymmetric_events(400)
    scale = 1.0 if interp.is_multiplicative(code) else nominal
    h = 1e-7

    def jump(order, eps=h):
        left = interp.derivative(code, low, high, nominal, p - eps, order, boundary)
        right = interp.derivative(code, low, high, nominal, p + eps, order, boundary)
        return np.abs(right - left) / scale

    for order in range(3):
        if order <= promised:
            assert np.max(jump(order)) < 1e-5, f"order {order} jumps at nu = {p}"
        elif order == broken:
            assert np.min(jump(order)) > 1e-3, f"order {order} should jump at nu = {p}"

    # One-sided finite differences of the value (first derivative) tell the same story.
    fd_h = 1e-6
    f = lambda x: interp.single(code, low, high, nominal, x, boundary)  # noqa: E731
    slope_left = (f(p) - f(p - fd_h)) / fd_h / scale
    slope_right = (f(p + fd_h) - f(p)) / fd_h / scale
    if promised >= 1:
        assert np.max(np.abs(slope_right - slope_left)) < 1e-4
        assert np.max(np.abs(f(p + fd_h) - f(p - fd_h)) / scale) < 1e-5
    elif broken == 1:
        assert np.min(np.abs(slope_right - slope_left)) > 1e-3
        assert np.max(np.abs(f(p + 1e-12) - f(p - 1e-12)) / scale) < 1e-10  # but the value is continuous
    # and second differences for the curvature.
    c_h = 1e-4
    curv_left = (f(p) - 2 * f(p - c_h) + f(p - 2 * c_h)) / c_h**2 / scale
    curv_right = (f(p + 2 * c_h) - 2 * f(p + c_h) + f(p)) / c_h**2 / scale
    if promised >= 2:
        assert np.max(np.abs(curv_right - curv_left)) < 1e-2
    elif broken == 2:
        assert np.min(np.abs(curv_right - curv_left)) > 5e-2


@pytest.mark.parametrize("code", ALL_CODES)
def test_analytic_derivatives_match_finite_differences(code):
    """d_single and d2_single against central differences away from the branch points."""
    nominal, low, high = make_events(300, seed=4)
    rng = np.random.default_rng(5)
    xs = rng.uniform(-3, 3, 40)
    xs = xs[np.min(np.abs(xs[:, None] - np.array([-1.0, 0.0, 1.0])[None, :]), axis=1) > 1e-2]
    scale = 1.0 if interp.is_multiplicative(code) else nominal
    h = 1e-5
    for x in xs:
        f = lambda t: interp.derivative(code, low[0], high[0], nominal, t, 0)  # noqa: E731
        d1 = interp.derivative(code, low[0], high[0], nominal, x, 1)
        d1p = interp.derivative(code, low[0], high[0], nominal, x + h, 1)
        d1m = interp.derivative(code, low[0], high[0], nominal, x - h, 1)
        d2 = interp.derivative(code, low[0], high[0], nominal, x, 2)
        np.testing.assert_allclose((f(x + h) - f(x - h)) / (2 * h) / scale, d1 / scale, atol=1e-7)
        np.testing.assert_allclose((d1p - d1m) / (2 * h) / scale, d2 / scale, atol=1e-6)


# --------------------------------------------------------------------------- edge values


@pytest.mark.parametrize("code", ALL_CODES)
def test_nominal_and_variations_reproduced(code):
    """Check that nu = 0 gives the nominal exactly and nu = +1 / -1 give high / low (to rounding)."""
    nominal, low, high = make_events(2000, seed=9)
    neutral = 1.0 if interp.is_multiplicative(code) else 0.0
    assert np.all(interp.single(code, low[0], high[0], nominal, 0.0) == neutral)
    np.testing.assert_array_equal(interp.interpolate(nominal, low, high, [0.0], [code]), nominal)
    at_plus = interp.interpolate(nominal, low, high, [1.0], [code])
    at_minus = interp.interpolate(nominal, low, high, [-1.0], [code])
    np.testing.assert_allclose(at_plus, high[0], rtol=4e-15, atol=0)
    np.testing.assert_allclose(at_minus, low[0], rtol=4e-15, atol=0)
    if code in (1, 5, 100):  # the factor at +-1 is the ratio itself
        assert np.array_equal(interp.single(code, low[0], high[0], nominal, 1.0), high[0] / nominal)
        assert np.array_equal(interp.single(code, low[0], high[0], nominal, -1.0), low[0] / nominal)


def test_broadcasting_and_scalars():
    """Numpy broadcasting in single(), floats for scalars, scalar nominal and K = 0 in interpolate()."""
    nominal, low, high = make_events(5, seed=2)
    out = interp.single(5, low[0][:, None], high[0][:, None], nominal[:, None], np.array([-2.0, 0.3, 1.5]))
    assert out.shape == (5, 3)
    assert out[2, 1] == interp.single(5, low[0][2], high[0][2], nominal[2], 0.3)
    assert isinstance(interp.single(0, 0.9, 1.1, 1.0, 0.5), float)
    assert interp.interpolate(2.0, [0.5], [3.0], [0.5], [1]).shape == (1,)
    empty = np.zeros((0, 5))
    assert interp.interpolate(nominal, empty, empty, [], []).tolist() == nominal.tolist()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [3, 7, -1, 99, 101])
def test_unknown_code_is_named(bad):
    """Every entry point names the unknown code."""
    with pytest.raises(ValueError, match=f"unknown interpolation code {bad}"):
        interp.single(bad, 0.9, 1.1, 1.0, 0.5)
    with pytest.raises(ValueError, match=f"unknown interpolation code {bad}"):
        interp.derivative(bad, 0.9, 1.1, 1.0, 0.5, 1)
    with pytest.raises(ValueError, match=f"unknown interpolation code {bad}"):
        interp.interpolate([1.0], [[0.9]], [[1.1]], [0.5], [bad])
    with pytest.raises(ValueError, match=f"unknown interpolation code {bad}"):
        interp.is_multiplicative(bad)


def test_code_3_points_to_code_2():
    """RooFit's deprecated code 3 is refused with a pointer to 2; the translators map it as RooFit does."""
    with pytest.raises(ValueError, match="code 2"):
        interp.single(3, 0.9, 1.1, 1.0, 0.5)
    assert interp.from_piecewise_code(3) == 2 and interp.from_flexible_code(3) == 2
    with pytest.raises(ValueError, match="FlexibleInterpVar has no interpolation code 6"):
        interp.from_flexible_code(6)


@pytest.mark.parametrize("code", ALL_CODES)
@pytest.mark.parametrize("where", ["low", "high", "nominal", "nu"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_rejected(code, where, bad):
    """NaN and inf anywhere give a ValueError naming the input (and the parameter and event in combine)."""
    args = {"low": np.array([0.9, 0.8]), "high": np.array([1.1, 1.3]), "nominal": np.array([1.0, 1.0]),
            "nu": 0.5}
    args[where] = np.array([1.0, bad]) if where != "nu" else bad
    with pytest.raises(ValueError, match=f"non-finite input {where}"):
        interp.single(code, args["low"], args["high"], args["nominal"], args["nu"])
    nu = [args["nu"]]
    with pytest.raises(ValueError, match=f"non-finite input {where}.*nuisance parameter 0, event"):
        interp.interpolate(args["nominal"], [args["low"]], [args["high"]], nu, [code])


def test_other_bad_input():
    """Zero nominal, negative ratios, bad boundary/order/types/shapes/convention."""
    with pytest.raises(ValueError, match="non-zero nominal"):
        interp.single(5, 0.9, 1.1, 0.0, 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        interp.single(1, -0.2, 1.1, 1.0, -0.5)
    assert np.isfinite(interp.single(6, -0.2, 1.1, 1.0, -0.5))  # code 6 is linear in the ratios
    with pytest.raises(ValueError, match="boundary"):
        interp.single(4, 0.9, 1.1, 1.0, 0.5, boundary=0.0)
    with pytest.raises(ValueError, match="order"):
        interp.derivative(4, 0.9, 1.1, 1.0, 0.5, order=3)
    with pytest.raises(TypeError):
        interp.single(4.0, 0.9, 1.1, 1.0, 0.5)
    with pytest.raises(TypeError, match="integers"):
        interp.interpolate([1.0], [[0.9]], [[1.1]], [0.5], [4.5])
    with pytest.raises(ValueError, match="codes has 2 entries"):
        _core.interp_combine(np.ones(3), np.ones((1, 3)), np.ones((1, 3)), [0.1], [0, 4])
    with pytest.raises(ValueError, match="columns"):
        _core.interp_combine(np.ones(3), np.ones((1, 4)), np.ones((1, 3)), [0.1], [0])
    with pytest.raises(ValueError, match="convention"):
        interp.interpolate([1.0], [[0.9]], [[1.1]], [0.5], [4], convention="pyhf")


# --------------------------------------------------------------------------- API


def test_registry_and_api():
    """The registry matches the core, and the public API changes only on purpose."""
    assert sorted(interp.CODES) == _core.interp_codes() == ALL_CODES
    for c, d in interp.CODES.items():
        assert d.code == c
        assert (d.kind == "multiplicative") == interp.is_multiplicative(c)
    assert sorted(interp.__all__) == ["CODES", "InterpCode", "derivative", "from_flexible_code",
                                      "from_piecewise_code", "interpolate", "is_multiplicative", "single"]


def test_docstring_examples():
    """The >>> examples in rooml.interpolation run (on the installed module)."""
    result = doctest.testmod(interp, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0
