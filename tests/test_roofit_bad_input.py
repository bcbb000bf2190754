"""Bad input to the per-event RooFit classes gives a clear error that names the problem.

Complements the error tests of test_roofit_nsbi.py, test_roofit_interp.py and
test_roofit_column.py: mismatched list lengths not covered there, non-finite
shape ratios (event, process and parameter in the message) and datasets
without the observable the per-event inputs depend on (RooFit would otherwise
use the variable's current value for every event, or float it).
"""
from __future__ import annotations

import numpy as np
import pytest
from rooml.roofit import dataset_with_index, event_column, index_variable, interpolated_density, nsbi_model

YIELDS = {"S": 5.0, "B": 20.0}
COEFFICIENTS = {"S": "mu", "B": "1 + 0*mu"}


@pytest.fixture
def idx(roofit):
    """Make a fresh index observable."""
    return index_variable()


def ratios(n=10):
    """Per-event ratios of two processes."""
    rng = np.random.default_rng(4)
    return {"S": rng.uniform(0.5, 2, n), "B": rng.uniform(0.5, 2, n)}


def test_mismatched_counts(roofit, idx):
    """Lists of the wrong length: processes, codes, normalization ratios."""
    ROOT = roofit
    mu = ROOT.RooRealVar("mu", "mu", 1, 0, 10)
    a = ROOT.RooRealVar("a", "a", 0, -5, 5)
    r = [event_column(f"r{j}", v, idx) for j, v in enumerate(ratios().values())]
    args = (ROOT.RooArgList(mu, mu), [1.0, 2.0])
    with pytest.raises(Exception, match="got 1 per-event ratios r_j for 2 processes"):
        ROOT.RooNSBIPdf("p", "p", *args, ROOT.RooArgList(r[0]), ROOT.RooArgList(), [], [],
                        ROOT.RooArgList(), ROOT.RooArgList())
    with pytest.raises(Exception, match=r"needs J \* K = 2 \* 1 = 2 normalization ratios .* got 1 and 2"):
        ROOT.RooNSBIPdf("p", "p", *args, ROOT.RooArgList(*r), ROOT.RooArgList(a), [1.0], [1.0, 1.0],
                        ROOT.RooArgList(r[0], r[1]), ROOT.RooArgList(r[0], r[1]))
    with pytest.raises(Exception, match="needs J \\* K = 2 shape codes .* got 3"):
        ROOT.RooNSBIPdf("p", "p", *args, ROOT.RooArgList(*r), ROOT.RooArgList(a), [1.0, 1.0], [1.0, 1.0],
                        ROOT.RooArgList(r[0], r[1]), ROOT.RooArgList(r[0], r[1]), [5], [5, 5, 5])
    with pytest.raises(Exception, match="yield nu_1 = -2 must be finite and > 0"):
        ROOT.RooNSBIYield("y", "y", ROOT.RooArgList(mu, mu), [1.0, -2.0], ROOT.RooArgList(), [], [], [])
    with pytest.raises(Exception, match="normalization ratios of process 0 for parameter 'a' are 0 "):
        ROOT.RooNSBIYield("y", "y", ROOT.RooArgList(mu, mu), [1.0, 2.0], ROOT.RooArgList(a),
                          [0.0, 1.0], [1.0, 1.0], [5, 5])
    with pytest.raises(ValueError, match="1 codes for 2 parameters"):
        interpolated_density("d", r[0], [r[1], r[1]], [r[0], r[0]], ["n1", "n2"], codes=[5])
    with pytest.raises(ValueError, match="variation key .* is not a \\(process, nuisance parameter\\) pair"):
        nsbi_model("m", idx, yields=YIELDS, coefficients=COEFFICIENTS, ratios=ratios(), nps=["a"],
                   norm={("X", "a"): (0.9, 1.1)})


def test_nuisance_parameters_without_variations(roofit, idx):
    """A parameter with no +-1 sigma model is refused (NSBI and the interpolated density)."""
    with pytest.raises(ValueError, match="'b' has no \\+-1 sigma inputs"):
        nsbi_model("m", idx, yields=YIELDS, coefficients=COEFFICIENTS, ratios=ratios(), nps=["a", "b"],
                   norm={("S", "a"): (0.9, 1.1)})
    nom = event_column("nom", np.ones(3), idx)
    with pytest.raises(ValueError, match="2 parameters, 1 low, 1 high"):
        interpolated_density("d", nom, [nom], [nom], ["n1", "n2"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0, 0.0])
def test_bad_shape_ratio_names_event_process_parameter(roofit, idx, bad):
    """Python refuses bad arrays up front; C++ names event, process and parameter of a bad input."""
    ROOT = roofit
    n = 12
    lo = np.full(n, 0.9)
    hi = np.where(np.arange(n) == 7, bad, 1.1)
    kw = dict(yields=YIELDS, coefficients=COEFFICIENTS, ratios=ratios(n), nps=["a"])
    with pytest.raises(ValueError, match=r"\+1 sigma ratio of B for a of event 7 is"):
        nsbi_model("m", idx, shape={("B", "a"): (lo, hi)}, **kw)
    if not np.isfinite(bad):  # a RooEventColumn holds finite values only
        return
    col = event_column("hi_bad", hi, idx)
    m = nsbi_model("m", idx, shape={("B", "a"): (lo, col)}, **kw)
    data = dataset_with_index({}, idx, n=n)
    want = r"event 7: per-event \+1 sigma shape ratio of process 1 for parameter 'a' \('hi_bad'\) is"
    with pytest.raises(Exception, match=want):
        m["pdf"].createNLL(data, ROOT.RooFit.EvalBackend("cpu")).getVal()


def test_dataset_without_the_index(roofit, idx):
    """A dataset without the index column is refused by name instead of using one index for all events."""
    ROOT = roofit
    m = nsbi_model("m", idx, yields=YIELDS, coefficients=COEFFICIENTS, ratios=ratios())
    x = ROOT.RooRealVar("x", "x", 0, 1)
    data = ROOT.RooDataSet.from_numpy({"x": np.linspace(0, 1, 10)}, ROOT.RooArgSet(x))
    want = "per-event ratio r_0 \\('m_r_S'\\) depends on none of the dataset's observables.*'event_index'"
    with pytest.raises(Exception, match=want):
        m["pdf"].createNLL(data, ROOT.RooFit.EvalBackend("cpu"))
    with pytest.raises(Exception, match=want):
        m["pdf"].fitTo(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.PrintLevel(-1))
    # the same model fits a dataset with the index
    good = dataset_with_index({}, idx, n=10)
    assert np.isfinite(m["pdf"].createNLL(good, ROOT.RooFit.EvalBackend("cpu")).getVal())

    nom = event_column("nom", np.full(10, 0.1), idx)
    pdf = interpolated_density("d", nom, [event_column("lo", np.full(10, 0.09), idx)],
                               [event_column("hi", np.full(10, 0.11), idx)], ["nu"])
    with pytest.raises(Exception, match="the nominal density \\('nom'\\) depends on none of the dataset's"):
        pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu"))
    assert np.isfinite(pdf.createNLL(good, ROOT.RooFit.EvalBackend("cpu")).getVal())


def test_flow_dataset_without_a_feature(roofit, tmp_path):
    """A RooFlowPdf fitted to data without one of its features is refused by name (no silent conditional)."""
    from flow_factory import random_flow
    from rooml.export import export_flow

    ROOT = roofit
    rng = np.random.default_rng(5)
    path = export_flow(random_flow("coupling", features=2), tmp_path / "f.onnx", features=["a", "b"],
                       reference_inputs=(rng.normal(size=(32, 2)), None))
    a, b = ROOT.RooRealVar("a", "a", 0, -5, 5), ROOT.RooRealVar("b", "b", 0, -5, 5)
    pdf = ROOT.RooFlowPdf("flow", "flow", ROOT.RooArgList(a, b), ROOT.RooArgList(), str(path))
    values = rng.normal(size=(50, 2))
    only_a = ROOT.RooDataSet.from_numpy({"a": values[:, 0]}, ROOT.RooArgSet(a))
    want = "RooFlowPdf 'flow': feature 1 \\('b'\\) is not an observable of the dataset"
    with pytest.raises(Exception, match=want):
        pdf.createNLL(only_a, ROOT.RooFit.EvalBackend("cpu"))
    with pytest.raises(Exception, match=want):
        pdf.fitTo(only_a, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.PrintLevel(-1))
    # with both features the NLL is the flow's: -sum log p(a, b)
    both = ROOT.RooDataSet.from_numpy({"a": values[:, 0], "b": values[:, 1]}, ROOT.RooArgSet(a, b))
    import rooml

    want_nll = -np.sum(rooml.load(path).log_prob(values, None))
    assert pdf.createNLL(both, ROOT.RooFit.EvalBackend("cpu")).getVal() == pytest.approx(want_nll, rel=1e-10)


def _dataset_with_values(ROOT, variables, values):
    """Fill a RooDataSet row by row (RooDataSet.add keeps NaN, unlike from_numpy)."""
    data = ROOT.RooDataSet("d", "d", ROOT.RooArgSet(*variables))
    for row in values:
        for var, v in zip(variables, row):
            var.setVal(float(v))
        data.add(ROOT.RooArgSet(*variables))
    return data


@pytest.mark.parametrize("bad, why", [(np.nan, "value nan is not finite"),
                                      (np.inf, "value inf is not finite"),
                                      (-0.5, r"value -0.5 is outside the flow's support \[0, 5\]")])
def test_flow_fit_with_a_bad_event_raises_naming_it(roofit, tmp_path, bad, why):
    """A NaN/inf or out-of-support event stops fitTo and createNLL naming the event, variable and value."""
    from flow_factory import random_flow
    from rooml.export import export_flow

    ROOT = roofit
    rng = np.random.default_rng(6)
    path = export_flow(random_flow("coupling", features=2), tmp_path / "f.onnx", features=["a", "b"],
                       support=[(-5.0, 5.0), (0.0, 5.0)],
                       reference_inputs=(np.abs(rng.normal(size=(32, 2))), None))
    a, b = ROOT.RooRealVar("a", "a", 0, -5, 5), ROOT.RooRealVar("b", "b", 1, -1, ROOT.RooNumber.infinity())
    pdf = ROOT.RooFlowPdf("flow", "flow", ROOT.RooArgList(a, b), ROOT.RooArgList(), str(path))
    values = np.abs(rng.normal(size=(40, 2)))
    values[13, 1] = bad
    values[20, 1] = np.nan  # a later bad event is not the one reported
    data = _dataset_with_values(ROOT, [a, b], values)
    frac = ROOT.RooRealVar("frac", "frac", 0.5, 0, 1)
    uniform = ROOT.RooUniform("u", "u", ROOT.RooArgSet(a, b))
    model = ROOT.RooAddPdf("model", "model", ROOT.RooArgList(pdf, uniform), ROOT.RooArgList(frac))
    want = rf"RooFlowPdf 'flow': event 13, variable 'b': {why}"
    with pytest.raises(Exception, match=want):
        model.fitTo(data, ROOT.RooFit.PrintLevel(-1), ROOT.RooFit.EvalBackend("cpu"))
    with pytest.raises(Exception, match=want):
        pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu")).getVal()
    from rooml.infer import fit

    with pytest.raises(Exception, match=want):
        fit(model, data)


def test_nsbi_fit_with_a_nan_feature_raises_naming_it(roofit, idx, tmp_path):
    """A NaN feature of a RooRatioFunction input stops the NSBI fit (RooNSBINLL and RooFit's NLL) by name."""
    import torch
    from rooml.export import export_ratio
    from rooml.infer import fit
    from rooml.models import Preprocessing, RatioConfig, TrainedRatio
    from rooml.models.ratio import RatioNet
    from rooml.roofit import ratio_function

    ROOT = roofit
    names = ["x0", "x1"]
    files = {}
    for k, seed in (("S", 1), ("B", 2)):
        torch.manual_seed(seed)
        config = RatioConfig(hidden=(8,))
        net = TrainedRatio(net=RatioNet(2, config), config=config, preprocessing=Preprocessing([], names),
                           features=names, support=[(-8.0, 8.0)] * 2, log_correction=0.0, seed=seed)
        files[k] = export_ratio(net, tmp_path / f"{k}.onnx",
                                reference_inputs=np.random.default_rng(0).uniform(-3, 3, (64, 2)))
    xs = [ROOT.RooRealVar(n, n, 0.0, -6, 6) for n in names]
    x = np.random.default_rng(3).normal(size=(30, 2))
    x[13, 1] = np.nan
    data = _dataset_with_values(ROOT, xs, x)
    funcs = {k: ratio_function(f"r_{k}", files[k], xs) for k in files}
    m = nsbi_model("m", idx, yields=YIELDS, coefficients=COEFFICIENTS, ratios=funcs)
    want = r"event 13, variable 'x1': value is not finite \(nan\)"
    with pytest.raises(Exception, match=want):
        fit(m["pdf"], data)
    with pytest.raises(Exception, match=want):
        m["pdf"].fitTo(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.PrintLevel(-1))
