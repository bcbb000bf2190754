"""RooInterpolatedDensity: PiecewiseInterpolation, numpy NLL, normalization, continuity, workspaces, bbyy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from interp_reference import code5 as code5_factor
from roofit_batch import Batch
from rooml.data import bbyy
from rooml.roofit import (
    dataset_with_index,
    event_column,
    index_variable,
    interpolated_density,
    variation_integrals,
    variation_ratios,
)

RTOL = 1e-12
NU_GRID = [
    -3.0,
    -2.0,
    -1.0 - 1e-12,
    -1.0,
    -1.0 + 1e-12,
    -0.6,
    -1e-12,
    0.0,
    1e-12,
    0.4,
    1.0 - 1e-12,
    1.0,
    1.0 + 1e-12,
    1.7,
    3.0,
]

def scalar_values(func, idx, n):
    """getVal() event by event (the scalar evaluate() path)."""
    out = np.empty(n)
    for i in range(n):
        idx.setVal(i)
        out[i] = func.getVal()
    return out


def make_inputs(n, k, seed):
    """Make nominals > 0 over decades and variations with ratios in [0.4, 2] (as test_interpolation.py)."""
    rng = np.random.default_rng(seed)
    nominal = np.exp(rng.uniform(-4, 4, n))
    low = nominal * rng.uniform(0.4, 1.2, (k, n))
    high = nominal * rng.uniform(0.8, 2.0, (k, n))
    return nominal, low, high


@pytest.fixture()
def idx(roofit):
    return index_variable()


class Setup:
    """Columns nominal/low/high, and a PiecewiseInterpolation and a RooInterpolatedDensity on them."""

    def __init__(self, ROOT, idx, codes, n=400, seed=0, floor="none"):
        self.nominal, self.low, self.high = make_inputs(n, len(codes), seed)
        self.nom = event_column("nom", self.nominal, idx)
        self.lo = [event_column(f"lo{k}", self.low[k], idx) for k in range(len(codes))]
        self.hi = [event_column(f"hi{k}", self.high[k], idx) for k in range(len(codes))]
        self.nus = [ROOT.RooRealVar(f"nu{k}", f"nu{k}", 0.0, -5, 5) for k in range(len(codes))]
        args = [ROOT.RooArgList() for _ in range(3)]
        for lst, items in zip(args, (self.lo, self.hi, self.nus)):
            for it in items:
                lst.add(it)
        self._lists = args
        self.pi = ROOT.PiecewiseInterpolation("pi", "pi", self.nom, *args)
        for nu, c in zip(self.nus, codes):
            self.pi.setInterpCode(nu, int(c))
        self.pi.setPositiveDefinite(floor == "zero")
        self.pdf = interpolated_density("pdf", self.nom, self.lo, self.hi, self.nus, list(codes), floor=floor)
        self.n = n

    def set_nu(self, values):
        """Set the nuisance parameters."""
        for v, x in zip(self.nus, values):
            v.setVal(float(x))


def _worst(ours, ref, nominal):
    return float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), np.abs(nominal))))


@pytest.mark.parametrize(
    "codes", [(0,), (1,), (2,), (4,), (5,), (6,), (4, 5, 0), (1, 6, 2), (5, 5, 5), (6, 1, 4)]
)
def test_matches_piecewise_interpolation(roofit, idx, codes):
    """Same inputs, same codes: RooInterpolatedDensity == PiecewiseInterpolation (doEval and getVal)."""
    ROOT = roofit
    s = Setup(ROOT, idx, codes, seed=sum(codes) + len(codes))
    ours_b, ref_b = Batch(ROOT, s.pdf, s.n), Batch(ROOT, s.pi, s.n)
    rng = np.random.default_rng(len(codes))
    grid = [[x] * len(codes) for x in NU_GRID] + [list(v) for v in rng.uniform(-3, 3, (6, len(codes)))]
    worst = 0.0
    for nu in grid:
        s.set_nu(nu)
        ours, ref = ours_b(), ref_b()
        worst = max(worst, _worst(ours, ref, s.nominal))
        if nu in grid[::5]:  # the scalar path on a subset (it is slower)
            worst = max(
                worst, _worst(scalar_values(s.pdf, idx, 60), scalar_values(s.pi, idx, 60), s.nominal[:60])
            )
    print(f"codes {codes}: max relative deviation from PiecewiseInterpolation {worst:.2e}")
    assert worst <= RTOL


def test_positive_definite_floor_matches(roofit, idx):
    ROOT = roofit
    s = Setup(ROOT, idx, (4, 0), seed=7, floor="zero")
    s.set_nu([-3.0, -3.0])  # additive codes extrapolated far: many negative values before the floor
    ours, ref = Batch(ROOT, s.pdf, s.n)(), Batch(ROOT, s.pi, s.n)()
    assert (ref == 0).sum() > 10
    np.testing.assert_array_equal(ours == 0, ref == 0)
    assert _worst(ours, ref, s.nominal) <= RTOL


@pytest.mark.parametrize("mode", ["none", "nodes", "samples"])
def test_nll_matches_numpy(roofit, idx, mode):
    """createNLL(EvalBackend('cpu')) == -sum_i w_i log(P0 f5(nu) / N(nu)) with an independent numpy code 5."""
    ROOT = roofit
    rng = np.random.default_rng(11)
    n = 1500
    p0 = np.exp(rng.normal(-2, 1, n))
    r_lo, r_hi = rng.uniform(0.6, 1.1, n), rng.uniform(0.9, 1.6, n)
    w = rng.poisson(1.0, n).astype(float)
    nom = event_column("p0", np.log(p0), idx, log=True)
    lo, hi = (
        event_column("pm", np.log(p0 * r_lo), idx, log=True),
        event_column("pp", np.log(p0 * r_hi), idx, log=True),
    )
    nu = ROOT.RooRealVar("nu", "nu", 0.0, -5, 5)
    s_lo, s_hi = rng.uniform(0.6, 1.1, 3000), rng.uniform(0.9, 1.6, 3000)
    s_w = rng.uniform(0.5, 1.5, 3000)
    kw = {
        "none": {},
        "nodes": {"integrals": ([np.average(s_lo, weights=s_w)], [np.average(s_hi, weights=s_w)])},
        "samples": {"normalization_samples": (s_lo[None], s_hi[None], s_w)},
    }[mode]
    pdf = interpolated_density("p", nom, [lo], [hi], [nu], 5, **kw)
    data = dataset_with_index({}, idx, weights=w)
    nll = pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu"))
    worst = 0.0
    for x in (-2.3, -1.0, -0.4, 0.0, 0.35, 1.0, 1.8):
        nu.setVal(x)
        if mode == "none":
            norm = 1.0
        elif mode == "nodes":
            norm = float(code5_factor(kw["integrals"][0][0], kw["integrals"][1][0], x))
        else:
            norm = np.average(code5_factor(s_lo, s_hi, x), weights=s_w)
        assert pdf.normalizationFactor() == pytest.approx(norm, rel=1e-13)
        want = -np.sum(w * np.log(p0 * code5_factor(r_lo, r_hi, x) / norm))
        worst = max(worst, abs(nll.getVal() / want - 1))
    print(f"{mode}: max relative deviation of the RooFit NLL from numpy {worst:.2e}")
    assert worst < 1e-10


def test_normalization_with_pdf_inputs(roofit):
    """Gaussian nominal and variations over x: normalizations.

    The declared integral is analytic (1); samples mode makes the
    interpolated density integrate to 1 at every nu, while without normalization it does not.
    """
    ROOT = roofit
    x = ROOT.RooRealVar("x", "x", 0.0, -10, 10)
    mk = lambda name, m, s: ROOT.RooGaussian(name, name, x, ROOT.RooFit.RooConst(m), ROOT.RooFit.RooConst(s))  # noqa: E731
    g0, gp, gm = mk("g0", 0.0, 1.0), mk("gp", 0.5, 1.2), mk("gm", -0.4, 0.9)
    nu = ROOT.RooRealVar("nu", "nu", 0.0, -5, 5)

    def logn(v, m, s):
        return -0.5 * ((v - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))

    rng = np.random.default_rng(4)
    xs = rng.normal(size=400_000)
    r_lo, r_hi = variation_ratios(logn(xs, 0, 1), [logn(xs, -0.4, 0.9)], [logn(xs, 0.5, 1.2)])
    plain = interpolated_density("plain", g0, [gm], [gp], [nu], 5)
    normed = interpolated_density("normed", g0, [gm], [gp], [nu], 5, normalization_samples=(r_lo, r_hi))
    grid = np.linspace(-10, 10, 4001)
    norm_set = ROOT.RooArgSet(x)

    def integral(pdf):
        vals = []
        for v in grid:
            x.setVal(v)
            vals.append(pdf.getVal(norm_set))
        return np.trapezoid(vals, grid)

    assert plain.getNorm(norm_set) == 1.0 and normed.getNorm(norm_set) == 1.0  # analytic, never numeric
    nu.setVal(0.5)
    exact = np.trapezoid(
        np.exp(logn(grid, 0, 1))
        * code5_factor(
            np.exp(logn(grid, -0.4, 0.9) - logn(grid, 0, 1)),
            np.exp(logn(grid, 0.5, 1.2) - logn(grid, 0, 1)),
            0.5,
        ),
        grid,
    )
    assert integral(plain) == pytest.approx(exact, rel=1e-9)
    assert abs(exact - 1) > 5e-3  # vertical interpolation of normalized densities is not normalized
    assert integral(normed) == pytest.approx(1.0, abs=2e-3)
    assert normed.normalizationFactor() == pytest.approx(exact, abs=2e-3)
    # NLL on a dataset of x: the vectorized backend (pdf inputs wrapped as normalized pdfs) and the legacy one
    # agree with numpy; RooFit never integrates the density numerically.
    xd = rng.normal(size=500)
    data = ROOT.RooDataSet.from_numpy({"x": xd}, ROOT.RooArgSet(x))
    nu.setVal(0.3)
    p0 = np.exp(logn(xd, 0, 1))
    f = code5_factor(np.exp(logn(xd, -0.4, 0.9)) / p0, np.exp(logn(xd, 0.5, 1.2)) / p0, 0.3)
    for pdf, norm in ((plain, 1.0), (normed, normed.normalizationFactor())):
        want = -np.sum(np.log(p0 * f / norm))
        for backend in ("cpu", "legacy"):
            assert pdf.createNLL(data, ROOT.RooFit.EvalBackend(backend)).getVal() == pytest.approx(
                want, rel=1e-10
            )
    # nodes mode: normalized variations have I = 1, so N(nu) = 1 for code 5 (it cannot see the deficit)
    i_lo, i_hi = variation_integrals(logn(xs, 0, 1), [logn(xs, -0.4, 0.9)], [logn(xs, 0.5, 1.2)])
    nodes = interpolated_density("nodes", g0, [gm], [gp], [nu], 5, integrals=(i_lo, i_hi))
    assert nodes.normalizationFactor() == pytest.approx(1.0, abs=3e-3)


def test_flow_inputs_are_normalized_analytically(roofit, tmp_path):
    """RooFlowPdf inputs, the production case.

    Both RooFit backends give the numpy NLL, and the integral is declared analytically: each network
    evaluates each event once, nothing is integrated numerically.
    """
    ROOT = roofit
    import rooml
    from flow_factory import random_flow
    from rooml.export import export_flow
    from rooml.roofit import flow_pdf

    rng = np.random.default_rng(0)
    ref = (rng.normal(size=(32, 2)), None)
    paths = [
        export_flow(
            random_flow("coupling", features=2, seed=s),
            tmp_path / f"f{s}.onnx",
            features=["a", "b"],
            reference_inputs=ref,
        )
        for s in (1, 2, 3)
    ]
    a, b = ROOT.RooRealVar("a", "a", 0, -20, 20), ROOT.RooRealVar("b", "b", 0, -20, 20)
    p0, pm, pp = (flow_pdf(f"flow{i}", path, [a, b]) for i, path in enumerate(paths))
    nu = ROOT.RooRealVar("nu", "nu", 0.4, -5, 5)
    pdf = interpolated_density("p", p0, [pm], [pp], [nu], 5)
    xy = rng.normal(size=(400, 2))
    data = ROOT.RooDataSet.from_numpy({"a": xy[:, 0], "b": xy[:, 1]}, ROOT.RooArgSet(a, b))
    lp = [rooml.load(path).log_prob(xy) for path in paths]
    want = -np.sum(lp[0] + np.log(code5_factor(np.exp(lp[1] - lp[0]), np.exp(lp[2] - lp[0]), 0.4)))
    assert pdf.getNorm(ROOT.RooArgSet(a, b)) == 1.0
    before = p0.networkEvaluations()
    assert pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu")).getVal() == pytest.approx(want, rel=1e-10)
    assert p0.networkEvaluations() - before == len(xy)
    assert pdf.createNLL(data, ROOT.RooFit.EvalBackend("legacy")).getVal() == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("code,smooth", [(5, True), (4, True), (6, True), (100, False)])
def test_continuity_at_the_boundary(roofit, idx, code, smooth):
    """Continuity at nu = +-1 through RooFit.

    Value and first derivative (finite differences) are continuous for codes
    4, 5, 6; code 100 is value-continuous only, and the same test sees its slope jump.
    """
    ROOT = roofit
    n = 300
    nominal, low, high = make_inputs(n, 1, 21)
    nom = event_column("nom", nominal, idx)
    lo, hi = event_column("lo", low[0], idx), event_column("hi", high[0], idx)
    nu = ROOT.RooRealVar("nu", "nu", 0.0, -5, 5)
    pdf = interpolated_density("p", nom, [lo], [hi], [nu], code)
    run = Batch(ROOT, pdf, n)
    h = 1e-5
    for b in (1.0, -1.0):
        v = {}
        for dx in (-2 * h, -h, 0.0, h, 2 * h):
            nu.setVal(b + dx)
            v[dx] = run() / nominal
        value_jump = np.max(np.abs(v[h] - v[-h]))
        left = (v[-h] - v[-2 * h]) / h  # slopes at 1 - 1.5 h and 1 + 1.5 h
        right = (v[2 * h] - v[h]) / h
        slope_jump = np.max(np.abs(right - left))
        assert value_jump < 1e-4
        if smooth:
            assert slope_jump < 1e-3, f"code {code} at nu = {b}: slope jump {slope_jump:.2e}"
        else:
            assert slope_jump > 1e-2


def test_workspace_round_trip_in_new_process(roofit, idx, tmp_path):
    ROOT = roofit
    rng = np.random.default_rng(8)
    n = 500
    p0 = np.exp(rng.normal(-2, 1, n))
    nom = event_column("p0", np.log(p0), idx, log=True)
    lo = event_column("pm", np.log(p0 * rng.uniform(0.6, 1.1, n)), idx, log=True)
    hi = event_column("pp", np.log(p0 * rng.uniform(0.9, 1.6, n)), idx, log=True)
    nu = ROOT.RooRealVar("nu", "nu", 0.7, -5, 5)
    samples = (rng.uniform(0.6, 1.1, (1, 2000)), rng.uniform(0.9, 1.6, (1, 2000)))
    pdf = interpolated_density("pdf", nom, [lo], [hi], [nu], 5, normalization_samples=samples)
    data = dataset_with_index({}, idx, weights=rng.poisson(1.0, n).astype(float), name="data")
    ws = ROOT.RooWorkspace("w")
    ws.Import(pdf, ROOT.RooFit.Silence())
    ws.Import(data, ROOT.RooFit.Silence())
    path = tmp_path / "ws.root"
    ws.writeToFile(str(path))
    here = [pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu")).getVal(), pdf.normalizationFactor()]
    script = (
        "import json\n"
        "from rooml.roofit import load_library\n"
        "ROOT = load_library()\n"
        f"f = ROOT.TFile.Open({str(path)!r}); w = f.Get('w')\n"
        "pdf, data = w.pdf('pdf'), w.data('data')\n"
        "out = [pdf.createNLL(data, ROOT.RooFit.EvalBackend('cpu')).getVal(), pdf.normalizationFactor()]\n"
        "print(json.dumps([type(pdf).__name__, pdf.normalizationMode(), list(pdf.codes()), out]))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    kind, mode, codes, there = json.loads(res.stdout.strip().splitlines()[-1])
    assert (kind, mode, codes) == ("RooInterpolatedDensity", 2, [5])
    assert there == here


def test_errors(roofit, idx):
    ROOT = roofit
    nom = event_column("nom", [1.0, 2.0], idx)
    lo, hi = event_column("lo", [0.9, 1.8], idx), event_column("hi", [1.1, 2.2], idx)
    nu, nu2 = ROOT.RooRealVar("nu", "nu", 0, -5, 5), ROOT.RooRealVar("nu2", "nu2", 0, -5, 5)
    with pytest.raises(ValueError, match="2 parameters, 1 low, 1 high"):
        interpolated_density("p", nom, [lo], [hi], [nu, nu2])
    with pytest.raises(Exception, match="unknown interpolation code 3 .*use 2"):
        interpolated_density("p", nom, [lo], [hi], [nu], 3)
    with pytest.raises(ValueError, match="unknown floor"):
        interpolated_density("p", nom, [lo], [hi], [nu], floor="negative")
    with pytest.raises(Exception, match="must be > 0"):
        interpolated_density("p", nom, [lo], [hi], [nu], integrals=([0.0], [1.0]))
    with pytest.raises(ValueError, match=r"\(K, n\) arrays with K = 1"):
        interpolated_density(
            "p", nom, [lo], [hi], [nu], normalization_samples=(np.ones((2, 5)), np.ones((2, 5)))
        )
    # C++ constructor: mismatched lists
    args = [ROOT.RooArgList(lo), ROOT.RooArgList(hi, lo), ROOT.RooArgList(nu)]
    with pytest.raises(Exception, match="1 parameters, 1 low and 2 high"):
        ROOT.RooInterpolatedDensity("p", "p", nom, *args, [5])


def test_bbyy_shape_systematic_closure(roofit):
    """Closure with bbyy's shape systematic.

    Truth P(x|nu) at nu = 0, +-1 as inputs (code 5, samples normalization): toys at nu = 0.5 give an
    unbiased nu-hat; without the normalization one large toy shows the bias of unnormalized vertical
    interpolation.
    """
    ROOT = roofit
    t = bbyy.truth
    idx = index_variable()
    nu = ROOT.RooRealVar("nu", "nu", 0.0, -3, 3)
    nominal = bbyy.generate("background", 200_000, seed=100)
    logp = {v: t.log_prob(nominal, "background", v) for v in (0.0, -1.0, 1.0)}
    samples = variation_ratios(logp[0.0], [logp[-1.0]], [logp[1.0]])

    def columns(d):
        return [
            event_column(f"p{v:+.0f}", t.log_prob(d, "background", v), idx, log=True)
            for v in (0.0, -1.0, 1.0)
        ]

    def fit(d, norm):
        p0, pm, pp = columns(d)
        pdf = interpolated_density(
            "p", p0, [pm], [pp], [nu], 5, **({"normalization_samples": samples} if norm else {})
        )
        data = dataset_with_index({}, idx, n=len(d))
        nu.setVal(0.0)
        res = pdf.fitTo(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.PrintLevel(-1), ROOT.RooFit.Save())
        assert res.status() == 0
        return nu.getVal(), nu.getError()

    n_toys = 20
    fits = np.array(
        [fit(bbyy.generate("background", 2000, seed=200 + i, nu=0.5), True) for i in range(n_toys)]
    )
    spread = fits[:, 1].mean()
    bias = fits[:, 0].mean() - 0.5
    print(
        f"bbyy nu = 0.5, {n_toys} toys of 2000 events: mean nu-hat - 0.5 = {bias:+.4f}, "
        f"mean error {spread:.4f}, pull mean {np.mean((fits[:, 0] - 0.5) / fits[:, 1]):+.3f}"
    )
    assert abs(bias) < 3 * spread / np.sqrt(n_toys)

    big = bbyy.generate("background", 40_000, seed=300, nu=0.5)
    (plain, err), (normed, err_n) = fit(big, False), fit(big, True)
    print(
        f"40k events at nu = 0.5: unnormalized nu-hat {plain:.4f} +- {err:.4f}, samples-normalized "
        f"{normed:.4f} +- {err_n:.4f}"
    )
    assert plain < 0.5 - 4 * err  # the paper-style interpolation without normalization is biased low
    assert abs(normed - 0.5) < 3 * err_n
