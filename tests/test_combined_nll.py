"""RooCombinedNLL: an NSBI channel's analytic derivatives plus numerical ones of the HistFactory channels.

References: RooFit's own NLL of the same combined ``RooSimultaneous`` (values, and derivatives by central
differences of it), and fits through it with a tight tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from rooml.combine import combine
from rooml.data.histfactory import hf001_workspace
from rooml.infer import FitResult, create_nll, fit, minimize
from rooml.roofit.combined import combined_nll
from test_combine import _histfactory_workspace, _random_points, _set, _unbinned_workspace


@pytest.fixture(scope="module")
def combined(roofit, tmp_path_factory):
    """hf001-like HistFactory model (two channels) + offshell4l NSBI channel (shares alpha_syst1, Lumi)."""
    tmp = tmp_path_factory.mktemp("combined_nll")
    hf = _histfactory_workspace(roofit, tmp, channels=("channel1", "channel2"))
    return combine(hf, _unbinned_workspace(roofit), rename={"mu": "SigXsecOverSM"})


def _roofit_nll(ROOT, ws, offset="off"):
    mc = ws.obj("ModelConfig")
    backend = ROOT.RooFit.EvalBackend("cpu")
    return mc.GetPdf().createNLL(ws.data("obsData"), backend, ROOT.RooFit.Offset(offset))


def _floating(ROOT, nll):
    params = ROOT.RooArgSet()
    nll.getParameters(ROOT.nullptr, params)
    params = list(params)
    return params, [i for i, p in enumerate(params) if not p.isConstant()]


def _numeric_derivatives(f, var, h=1e-4):
    """Gradient and Hessian of f() in the variables ``var`` by central differences."""
    x0 = np.array([v.getVal() for v in var])

    def at(x):
        for v, value in zip(var, x):
            v.setVal(float(value))
        return f()

    n = len(var)
    grad, hess = np.zeros(n), np.zeros((n, n))
    for i in range(n):
        e = np.eye(n)[i] * h
        grad[i] = (at(x0 + e) - at(x0 - e)) / (2 * h)
        for j in range(i, n):
            d = np.eye(n)[j] * h
            hess[i, j] = hess[j, i] = (at(x0 + e + d) - at(x0 + e - d) - at(x0 - e + d) + at(x0 - e - d)) / (
                4 * h * h
            )
    at(x0)
    return grad, hess


def test_value_equals_roofit_nll_of_the_simultaneous(roofit, combined):
    """Three channels (ln 3 term), shared constraint once: equal to RooFit's NLL to 1e-12 at random points."""
    ROOT = roofit
    pdf, data = combined.obj("ModelConfig").GetPdf(), combined.data("obsData")
    nll = create_nll(pdf, data, offset=False)
    assert nll.ClassName() == "RooCombinedNLL"
    assert [t.ClassName() for t in nll.terms()][0] == "RooNSBINLL"
    reference = _roofit_nll(ROOT, combined)
    worst = 0.0
    for point in _random_points(6, seed=21):
        _set(combined, point)
        worst = max(worst, abs(nll.getVal() / reference.getVal() - 1.0))
    print(f"RooCombinedNLL vs RooFit's NLL: worst relative difference {worst:.1e}")
    assert worst < 1e-12
    offsetting = create_nll(pdf, data)  # what Minuit sees (RooMinimizer unhides offsets): differences
    ROOT.RooAbsReal.setHideOffset(False)
    try:
        assert offsetting.getVal() == 0.0
        first = nll.getVal()
        _set(combined, next(_random_points(1, seed=4)))
        assert offsetting.getVal() != 0.0
        assert offsetting.getVal() == pytest.approx(nll.getVal() - first, rel=1e-9)
    finally:
        ROOT.RooAbsReal.setHideOffset(True)
    assert offsetting.getVal() == pytest.approx(nll.getVal(), rel=1e-15)


def test_gradient_and_hessian_equal_those_of_roofits_nll(roofit, combined):
    """Analytic (NSBI) + numerical (binned) derivatives = central differences of RooFit's NLL (1e-5)."""
    ROOT = roofit
    pdf, data = combined.obj("ModelConfig").GetPdf(), combined.data("obsData")
    _set(combined, next(_random_points(1, seed=8)))
    nll = create_nll(pdf, data, offset=False)
    params, floating = _floating(ROOT, nll)
    assert {"SigXsecOverSM", "alpha_unb", "alpha_syst4", "gamma_stat_channel2_bin_1"} <= {
        params[i].GetName() for i in floating
    }
    n = len(params)
    grad, hess = np.zeros(n), np.zeros(n * n)
    nll.gradient(grad)
    nll.hessian(hess)
    grad, hess = grad[floating], hess.reshape(n, n)[np.ix_(floating, floating)]
    reference = _roofit_nll(ROOT, combined)
    g_ref, h_ref = _numeric_derivatives(reference.getVal, [params[i] for i in floating])
    np.testing.assert_allclose(grad, g_ref, rtol=1e-5, atol=1e-5 * np.abs(g_ref).max())
    np.testing.assert_allclose(hess, h_ref, rtol=1e-4, atol=1e-5 * np.abs(h_ref).max())
    assert nll.numericEvaluations() > 0


def test_derivatives_at_parameter_limits_stay_in_range(roofit, combined):
    """Stencils at a limit step inwards (RooFit refuses values outside a range): finite, near the FD slope."""
    ROOT = roofit
    pdf, data = combined.obj("ModelConfig").GetPdf(), combined.data("obsData")
    _set(combined, next(_random_points(1, seed=8)))
    poi = combined.var("SigXsecOverSM")
    nll = create_nll(pdf, data, offset=False)
    params, floating = _floating(ROOT, nll)
    n = len(params)
    for value in (poi.getMin(), poi.getMax(), poi.getMax() - 1e-6):
        poi.setVal(value)
        hess = np.zeros(n * n)
        nll.hessian(hess)
        assert np.all(np.isfinite(hess))
        assert poi.getVal() == value


def test_fit_equals_fit_through_roofits_nll(roofit, combined):
    """Tight fits through both NLLs: values within 1e-4 sigma; errors = inverse Hessian of RooFit's NLL."""
    ROOT = roofit
    pdf, data = combined.obj("ModelConfig").GetPdf(), combined.data("obsData")
    start = {p.GetName(): p.getVal() for p in pdf.getParameters(data)}

    def tight_fit(native):
        for p in pdf.getParameters(data):
            p.setVal(start[p.GetName()])
        return FitResult.from_roofit(minimize(create_nll(pdf, data, native=native), tolerance=1e-6))

    _set(combined, next(_random_points(1, seed=2)))
    start = {p.GetName(): p.getVal() for p in pdf.getParameters(data)}
    fast, ref = tight_fit(True), tight_fit(False)
    assert fast.status == ref.status == 0
    shifts = {n: abs(fast[n].value - ref[n].value) / ref[n].error for n in ref.parameters}
    print("largest shift of a fitted value:", max(shifts.values()), "sigma")
    assert max(shifts.values()) < 1e-4, shifts
    for n, p in fast.parameters.items():
        combined.var(n).setVal(p.value)
    reference = _roofit_nll(ROOT, combined)
    names = list(fast.parameters)
    _, h_ref = _numeric_derivatives(reference.getVal, [combined.var(n) for n in names], h=1e-3)
    errors = np.sqrt(np.diag(np.linalg.inv(h_ref)))
    np.testing.assert_allclose([fast[n].error for n in names], errors, rtol=1e-4)


def test_errors_are_the_inverse_hessian_for_parameters_with_limits(roofit):
    """Minuit's Hesse in bounded internal coordinates is off by ~1 % here; rooml reports inverse H exactly."""
    ROOT = roofit
    ws = _unbinned_workspace(ROOT, lumi=False)
    mc = ws.obj("ModelConfig")
    pdf, data = mc.GetPdf(), ws.data("data")
    for name, (low, high) in {"mu": (0.0, 3.0), "alpha_syst1": (-1.5, 1.5), "alpha_unb": (-2.0, 2.0)}.items():
        ws.var(name).setRange(low, high)  # tight ranges: Minuit's transformation is far from linear
    result = fit(pdf, data)
    names = list(result.parameters)
    nll = create_nll(pdf, data, offset=False)
    _, hess = _numeric_derivatives(nll.getVal, [ws.var(n) for n in names], h=1e-3)
    expected = np.sqrt(np.diag(np.linalg.inv(hess)))
    np.testing.assert_allclose([result[n].error for n in names], expected, rtol=1e-4)
    corr = np.linalg.inv(hess) / np.outer(expected, expected)
    np.testing.assert_allclose(result.correlation, corr, atol=1e-4)


@pytest.fixture(scope="module")
def hisigma_workspace(roofit, tmp_path_factory):
    """Build a HI-SIGMA model (random-weight flows, bbyy mock data) in a workspace with a ModelConfig."""
    from flow_factory import random_flow
    from rooml.data import bbyy
    from rooml.data.io import to_roodataset
    from rooml.export import export_flow
    from rooml.roofit.hisigma import hisigma_model
    from rooml.validation import bbyy_feature_preprocessing
    from rooml.validation.bbyy_sideband import DR_RANGE

    tmp = tmp_path_factory.mktemp("hisigma_combined")
    mock = bbyy.make_mock(n_bkg=2000, n_sig=100, seed=4)
    x = np.column_stack([mock[f] for f in bbyy.FEATURES])
    support = [(0.0, np.inf), (0.0, np.inf), DR_RANGE, DR_RANGE]
    flows = {p: export_flow(random_flow("coupling", features=4, context=1, layers=2, seed=i),
                            tmp / f"{p}.onnx",
                            features=list(bbyy.FEATURES), context=["m_yy"],
                            preprocessing=bbyy_feature_preprocessing(x), support=support)
             for i, p in enumerate(("signal", "background"))}
    h = hisigma_model(flows["signal"], flows["background"], s_expected=100.0, n_bkg_start=2000.0)
    return h.to_workspace(to_roodataset(mock, h.observables()))


def test_hisigma_channel_is_its_own_term_with_roofits_value_and_fit(roofit, combined, hisigma_workspace):
    """HistFactory + NSBI + HI-SIGMA: HI-SIGMA is a RooFit NLL term of its own; value and fit = RooFit's."""
    ROOT = roofit
    ws = combine(combined, hisigma_workspace, rename={"mu": "SigXsecOverSM"}, channel_name="hisigma")
    pdf, data = ws.obj("ModelConfig").GetPdf(), ws.data("obsData")
    nll = create_nll(pdf, data, offset=False)
    assert nll.ClassName() == "RooCombinedNLL"
    # terms: NSBI, HI-SIGMA, binned
    assert [t.ClassName() == "RooNSBINLL" for t in nll.terms()] == [True, False, False]
    reference = _roofit_nll(ROOT, ws)
    rng = np.random.default_rng(5)
    for point in _random_points(3, seed=5):
        _set(ws, point | {"n_bkg": rng.uniform(1800, 2200), "p1": rng.uniform(2, 4), "p2": rng.uniform(0, 1)})
        assert nll.getVal() == pytest.approx(reference.getVal(), rel=1e-12)
    _set(ws, next(_random_points(1, seed=6)))
    start = {p.GetName(): p.getVal() for p in pdf.getParameters(data)}

    def tight_fit(native):
        for p in pdf.getParameters(data):
            p.setVal(start[p.GetName()])
        return FitResult.from_roofit(minimize(create_nll(pdf, data, native=native), tolerance=1e-6))

    fast, ref = tight_fit(True), tight_fit(False)
    assert fast.status == ref.status == 0
    assert {"SigXsecOverSM", "n_bkg", "p1", "alpha_syst1", "alpha_unb"} <= set(fast.parameters)
    shifts = {n: abs(fast[n].value - ref[n].value) / ref[n].error for n in ref.parameters}
    assert max(shifts.values()) < 1e-3, shifts
    for name in fast.parameters:
        # (Minuit's Hesse works in bounded coordinates)
        assert fast[name].error == pytest.approx(ref[name].error, rel=0.02)


def test_not_for_models_without_nsbi_channels(roofit, tmp_path, hisigma_workspace):
    """HistFactory alone or with HI-SIGMA keeps RooFit's NLL; hf001 builds from ROOT's tutorial files."""
    ROOT = roofit
    hf = hf001_workspace(tmp_path)
    pdf, data = hf.obj("ModelConfig").GetPdf(), hf.data("obsData")
    assert combined_nll(pdf, data) is None
    assert create_nll(pdf, data).ClassName() != "RooCombinedNLL"
    assert hf.var("Lumi").isConstant() and hf.var("alpha_syst1").isConstant()  # as the tutorial sets them
    assert {n for n, _ in hf.cat("channelCat")} == {"channel1"}
    hisigma = combine(hf, hisigma_workspace, rename={"mu": "SigXsecOverSM"})
    assert combined_nll(hisigma.obj("ModelConfig").GetPdf(), hisigma.data("obsData")) is None
    assert combined_nll(ROOT.RooGaussian("g", "", ROOT.RooRealVar("x", "", 0), ROOT.RooFit.RooConst(0),
                                         ROOT.RooFit.RooConst(1)), data) is None
