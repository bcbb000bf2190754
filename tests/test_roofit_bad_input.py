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
