"""RooFlowPdf normalized over its features' ranges and named ranges, as RooFit pdfs are.

References are independent of the box-mass code: a Simpson grid of the core's density
(``rooml.load(...).log_prob``), scipy's adaptive quadrature in one dimension, and the fraction of the
core's exact samples inside the box (binomial errors).  Floors are 4 standard errors of the compared
difference (two-sided false-alarm rate 6e-5 per comparison).
"""
from __future__ import annotations

import numpy as np
import pytest
import rooml
from flow_factory import random_flow
from rooml.export import export_flow
from scipy.integrate import quad, simpson

N_SIGMA = 4.0


@pytest.fixture(scope="module")
def flow2d(tmp_path_factory):
    flow = random_flow("coupling", features=2, context=0, lu=True, seed=3)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("ranges") / "f2.onnx"
    return export_flow(flow, path, features=["x", "y"], reference_inputs=(rng.normal(size=(64, 2)), None))


@pytest.fixture(scope="module")
def flow2d_conditional(tmp_path_factory):
    flow = random_flow("coupling", features=2, context=1, lu=True, seed=4)
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("ranges") / "f2c.onnx"
    return export_flow(flow, path, features=["x", "y"], context=["m"],
                       reference_inputs=(rng.normal(size=(64, 2)), rng.normal(size=(64, 1))))


@pytest.fixture(scope="module")
def flow1d(tmp_path_factory):
    flow = random_flow("autoregressive", features=1, context=0, seed=5)
    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("ranges") / "f1.onnx"
    return export_flow(flow, path, features=["x"], reference_inputs=(rng.normal(size=(64, 1)), None))


def _grid_mass(core, xlo, xhi, ylo, yhi, context=None, points=801):
    """Simpson integral of the core's density over a box (independent of RooFlowPdf's box mass)."""
    gx, gy = np.linspace(xlo, xhi, points), np.linspace(ylo, yhi, points)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    pts = np.c_[X.ravel(), Y.ravel()]
    ctx = None if context is None else np.full((len(pts), 1), context)
    density = np.exp(core.log_prob(pts, ctx)).reshape(X.shape)
    return simpson(simpson(density, x=gy), x=gx)


def _pdf(ROOT, path, box, context=()):
    x, y = (ROOT.RooRealVar(n, n, 0.0, lo, hi) for n, (lo, hi) in zip(("x", "y"), box))
    ctx = [ROOT.RooRealVar(n, n, v, -10, 10) for n, v in context]
    pdf = ROOT.RooFlowPdf("f", "f", ROOT.RooArgList(x, y), ROOT.RooArgList(*ctx), str(path))
    pdf._keep = (x, y, ctx)
    return pdf, x, y, ctx


def test_box_mass_matches_grid_and_samples(flow2d, roofit):
    ROOT = roofit
    core = rooml.load(flow2d)
    pdf, x, y, _ = _pdf(ROOT, flow2d, [(-1.5, 1.0), (-1.0, 2.0)])
    mass = pdf.createIntegral(ROOT.RooArgSet(x, y)).getVal()
    error = pdf.boxMassRelativeError() * mass
    assert 0.02 < mass < 0.98, "the test needs a box that cuts the support"
    assert pdf.boxMassRelativeError() <= pdf.integralPrecision() == 1e-3
    grid = _grid_mass(core, -1.5, 1.0, -1.0, 2.0)
    assert abs(mass - grid) < N_SIGMA * error + 1e-6
    samples = core.sample(400_000, seed=11)
    inside = np.mean((samples[:, 0] >= -1.5) & (samples[:, 0] <= 1.0)
                     & (samples[:, 1] >= -1.0) & (samples[:, 1] <= 2.0))
    binomial = np.sqrt(inside * (1 - inside) / len(samples))
    assert abs(mass - inside) < N_SIGMA * np.hypot(binomial, error)
    # the default precision meets the 1 % requirement against the exact sampler's fraction
    assert abs(mass / inside - 1) < 0.01


def test_normalized_value_is_density_over_box_mass(flow2d, roofit):
    ROOT = roofit
    core = rooml.load(flow2d)
    pdf, x, y, _ = _pdf(ROOT, flow2d, [(-1.0, 1.0), (-1.0, 1.0)])
    norm = ROOT.RooArgSet(x, y)
    mass = pdf.boxMass()
    for xv, yv in [(0.3, -0.2), (-0.9, 0.8), (0.0, 0.0)]:
        x.setVal(xv), y.setVal(yv)
        raw = np.exp(core.log_prob(np.array([[xv, yv]])))[0]
        assert pdf.getVal(norm) == pytest.approx(raw / mass, rel=1e-12)
        assert pdf.getVal() == pytest.approx(raw, rel=1e-12)


def test_named_ranges_and_cache_invalidation(flow2d, roofit):
    ROOT = roofit
    core = rooml.load(flow2d)
    pdf, x, y, _ = _pdf(ROOT, flow2d, [(-3.0, 3.0), (-3.0, 3.0)])
    norm = ROOT.RooArgSet(x, y)
    x.setRange("left", -3.0, 0.0)
    left = pdf.createIntegral(norm, ROOT.RooFit.Range("left")).getVal()
    full = pdf.createIntegral(norm).getVal()
    floor = N_SIGMA * pdf.boxMassRelativeError("left") * left + 1e-6
    assert abs(left - _grid_mass(core, -3, 0, -3, 3)) < floor
    assert abs(full - _grid_mass(core, -3, 3, -3, 3)) < N_SIGMA * pdf.boxMassRelativeError() * full + 1e-6
    assert left < full
    # changing a range gives the new range's mass, not the cached one
    x.setRange("left", -3.0, -1.0)
    narrower = pdf.createIntegral(norm, ROOT.RooFit.Range("left")).getVal()
    floor = N_SIGMA * pdf.boxMassRelativeError("left") * narrower + 1e-6
    assert abs(narrower - _grid_mass(core, -3, -1, -3, 3)) < floor
    assert narrower < left
    x.setRange(-1.0, 1.0)
    x.setVal(0.1), y.setVal(0.2)
    raw = np.exp(core.log_prob(np.array([[0.1, 0.2]])))[0]
    assert pdf.getVal(norm) == pytest.approx(raw / pdf.boxMass(), rel=1e-12)
    grid = _grid_mass(core, -1, 1, -3, 3)
    assert pdf.boxMass() == pytest.approx(grid, rel=N_SIGMA * pdf.boxMassRelativeError())


def test_support_containing_range_is_exactly_one(flow2d, roofit):
    ROOT = roofit
    inf = ROOT.RooNumber.infinity()
    pdf, x, y, _ = _pdf(ROOT, flow2d, [(-inf, inf), (-inf, inf)])
    assert pdf.createIntegral(ROOT.RooArgSet(x, y)).getVal() == 1.0
    assert pdf.boxMassRelativeError() == 0.0
    # 1e30 (RooFit's infinity before ROOT 6.30, rooml's builders' "no limit") is unbounded too
    wide, x, y, _ = _pdf(ROOT, flow2d, [(-1e30, 1e30), (-1e30, 1e30)])
    assert wide.boxMass() == 1.0
    assert wide.boxMassRelativeError() == 0.0


def test_one_dimensional_flow_uses_exact_cdf(flow1d, roofit):
    ROOT = roofit
    core = rooml.load(flow1d)
    x = ROOT.RooRealVar("x", "x", 0.0, -0.7, 1.3)
    pdf = ROOT.RooFlowPdf("f1", "f1", ROOT.RooArgList(x), ROOT.RooArgList(), str(flow1d))

    def density(v):
        return float(np.exp(core.log_prob(np.array([[v]])))[0])

    for lo, hi in [(-0.7, 1.3), (-5.0, -1.0), (0.2, 8.0)]:
        x.setRange("r", lo, hi)
        want, err = quad(density, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=400)
        assert err < 1e-11
        integral = pdf.createIntegral(ROOT.RooArgSet(x), ROOT.RooFit.Range("r"))
        assert integral.getVal() == pytest.approx(want, abs=1e-9)
        assert pdf.boxMassRelativeError("r") == 0.0


def test_conditional_flow_normalized_per_context_value(flow2d_conditional, roofit):
    ROOT = roofit
    core = rooml.load(flow2d_conditional)
    pdf, x, y, (m,) = _pdf(ROOT, flow2d_conditional, [(-1.0, 1.5), (-1.2, 1.0)], context=[("m", 0.0)])
    norm = ROOT.RooArgSet(x, y)
    masses = {}
    for value in (-1.0, 0.0, 1.5):
        m.setVal(value)
        mass = pdf.createIntegral(norm).getVal()
        grid = _grid_mass(core, -1.0, 1.5, -1.2, 1.0, context=value)
        assert abs(mass - grid) < N_SIGMA * pdf.boxMassRelativeError() * mass + 1e-6
        masses[value] = mass
    assert len({round(v, 4) for v in masses.values()}) == 3, "the mass depends on the context"


def test_context_per_event_is_normalized_per_event(flow2d_conditional, roofit):
    """With the context an observable of the dataset (a conditional fit), each event gets its own box mass."""
    ROOT = roofit
    core = rooml.load(flow2d_conditional)
    pdf, x, y, (m,) = _pdf(ROOT, flow2d_conditional, [(-2.0, 2.0), (-2.0, 2.0)], context=[("m", 0.0)])
    rng = np.random.default_rng(8)
    events = np.c_[rng.uniform(-1.5, 1.5, (8, 2)), rng.normal(size=8)]
    data = ROOT.RooDataSet.from_numpy({"x": events[:, 0], "y": events[:, 1], "m": events[:, 2]},
                                      ROOT.RooArgSet(x, y, m))
    conditional = ROOT.RooFit.ConditionalObservables(ROOT.RooArgSet(m))
    nll = pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu"), conditional)
    got = nll.getVal()
    masses = []
    for value in events[:, 2]:
        m.setVal(value)
        masses.append(pdf.boxMass())
    log_p = core.log_prob(events[:, :2], events[:, 2:])
    assert got == pytest.approx(-np.sum(log_p - np.log(masses)), rel=1e-12)
    assert np.ptp(masses) > 10 * max(pdf.boxMassRelativeError(), 1e-6)  # the masses do differ per event


def test_precision_is_settable_and_checked(flow2d, roofit):
    ROOT = roofit
    pdf, x, y, _ = _pdf(ROOT, flow2d, [(-1.0, 1.0), (-1.0, 1.0)])
    coarse_default = pdf.boxMassRelativeError()
    pdf.setIntegralPrecision(3e-4)
    assert pdf.integralPrecision() == 3e-4
    assert pdf.boxMassRelativeError() <= 3e-4 < coarse_default
    with pytest.raises(Exception, match="precision"):
        pdf.setIntegralPrecision(0.0)
    pdf.setRangeCutWarning(0.5)
    assert pdf.rangeCutWarning() == 0.5


def test_range_cut_warning(flow2d, roofit):
    ROOT = roofit
    pdf, x, y, _ = _pdf(ROOT, flow2d, [(-0.5, 0.5), (-0.5, 0.5)])
    hijack = ROOT.RooHelpers.HijackMessageStream(ROOT.RooFit.WARNING, ROOT.RooFit.Integration)
    pdf.boxMass()
    text = hijack.str()
    del hijack
    assert "keep" in text and "of the flow's mass" in text


def _generate_inside(core, box, n, seed):
    """N exact samples of the flow truncated to the box (the core's sampler, not RooFit's generator)."""
    out, drawn = [], 0
    rng_seed = seed
    while drawn < n:
        s = core.sample(200_000, seed=rng_seed)
        rng_seed += 1
        keep = np.all((s >= box[:, 0]) & (s <= box[:, 1]), axis=1)
        out.append(s[keep])
        drawn += keep.sum()
    return np.concatenate(out)[:n]


def _fit_fraction(ROOT, pdf, x, y, events):
    uniform = ROOT.RooUniform("u", "u", ROOT.RooArgSet(x, y))
    frac = ROOT.RooRealVar("frac", "frac", 0.5, 0.0, 1.0)
    model = ROOT.RooAddPdf("model", "model", ROOT.RooArgList(pdf, uniform), ROOT.RooArgList(frac))
    data = ROOT.RooDataSet("d", "d", ROOT.RooArgSet(x, y))
    for xv, yv in events:
        x.setVal(xv), y.setVal(yv)
        data.add(ROOT.RooArgSet(x, y))
    result = model.fitTo(data, ROOT.RooFit.Save(), ROOT.RooFit.PrintLevel(-1), ROOT.RooFit.EvalBackend("cpu"))
    assert result.status() == 0
    return frac.getVal(), frac.getError()


def test_fit_flow_plus_uniform_inside_a_cut_box(flow2d, roofit):
    ROOT = roofit
    core = rooml.load(flow2d)
    box = np.array([[-1.0, 1.0], [-1.0, 1.0]])
    pdf, x, y, _ = _pdf(ROOT, flow2d, box)
    assert pdf.boxMass() < 0.5, "the box must cut the support for this test to mean anything"
    # pure flow events: the fitted flow fraction is compatible with 1 (one-sided: 1 is the boundary)
    events = _generate_inside(core, box, 3000, seed=21)
    frac, error = _fit_fraction(ROOT, pdf, x, y, events)
    assert frac + 3.0 * error >= 1.0
    # a 70/30 mixture with uniform events: the fraction is within 3 sigma of 0.7
    rng = np.random.default_rng(5)
    n_flow = rng.binomial(3000, 0.7)
    mixed = np.concatenate([_generate_inside(core, box, n_flow, seed=41),
                            rng.uniform(box[:, 0], box[:, 1], size=(3000 - n_flow, 2))])
    frac, error = _fit_fraction(ROOT, pdf, x, y, mixed)
    assert abs(frac - 0.7) < 3.0 * error
