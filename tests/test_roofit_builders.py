"""The PyROOT builders as a newcomer calls them: names, renamed variables, no free parameters."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import rooml
from flow_factory import random_flow
from rooml.export import export_flow
from rooml.infer import create_nll, fit
from rooml.roofit import flow_pdf, flow_variables

SUPPORT = [(-6.0, 6.0), (-5.0, 7.0)]


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory):
    flow = random_flow("coupling", features=2)
    path = tmp_path_factory.mktemp("builders") / "f.onnx"
    return export_flow(flow, path, features=["x", "y"], support=SUPPORT)


def test_names_create_variables_over_the_support(flow_file, roofit):
    ROOT = roofit
    pdf = flow_pdf("p", flow_file, ["x", "y"])
    variables = {v.GetName(): v for v in pdf.getVariables()}
    assert sorted(variables) == ["x", "y"]
    assert [(variables[n].getMin(), variables[n].getMax()) for n in ("x", "y")] == SUPPORT
    variables["x"].setVal(0.4), variables["y"].setVal(-0.3)
    want = np.exp(rooml.load(flow_file).log_prob(np.array([[0.4, -0.3]]))[0])
    assert pdf.getVal(ROOT.RooArgSet(variables["x"], variables["y"])) == pytest.approx(want, rel=1e-12)
    made, _ = flow_variables(flow_file)
    assert [(v.getMin(), v.getMax()) for v in made] == SUPPORT


def test_bad_items_are_clear_errors(flow_file, roofit):
    with pytest.raises(TypeError, match="not the single string 'xy'"):
        flow_pdf("p", flow_file, "xy")
    with pytest.raises(TypeError, match="RooRealVars .* or variable names, got float"):
        flow_pdf("p", flow_file, [1.0, 2.0])


def test_renamed_variables_warn_by_name(flow_file, roofit):
    ROOT = roofit
    a, b = ROOT.RooRealVar("a", "a", 0.0, -6, 6), ROOT.RooRealVar("b", "b", 0.0, -5, 7)
    with pytest.warns(UserWarning, match=r"matched by position: 'a' for 'x', 'b' for 'y'"):
        flow_pdf("p", flow_file, [a, b])
    x, y = ROOT.RooRealVar("x", "x", 0.0, -6, 6), ROOT.RooRealVar("y", "y", 0.0, -5, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flow_pdf("p", flow_file, [x, y])  # the model's own names: silent
    with pytest.raises(ValueError, match="wrong order"):
        flow_pdf("p", flow_file, [y, x])


def test_fit_without_free_parameters_is_a_clear_error(flow_file, roofit):
    ROOT = roofit
    pdf = flow_pdf("p", flow_file, ["x", "y"])
    observables = ROOT.RooArgSet(pdf.getVariables())
    data = pdf.generate(observables, 200)
    with pytest.raises(ValueError, match="'p' has no free parameters, so there is nothing to fit"):
        fit(pdf, data)
    columns = data.to_numpy()
    want = -rooml.load(flow_file).log_prob(np.c_[columns["x"], columns["y"]]).sum()
    assert create_nll(pdf, data, offset=False).getVal() == pytest.approx(want, rel=1e-10)
    # with a yield to fit, the same pdf fits: n = N +- sqrt(N)
    n = ROOT.RooRealVar("n", "n", 150, 0, 1000)
    extended = ROOT.RooExtendPdf("ext", "ext", pdf, n)
    result = fit(extended, data)
    assert result["n"].value == pytest.approx(200, rel=1e-3)
    assert result["n"].error == pytest.approx(np.sqrt(200), rel=0.02)
