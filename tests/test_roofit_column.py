"""RooEventColumn: values from outside RooFit, index datasets, errors, workspaces, evaluation count."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from rooml.roofit import add_index_column, dataset_with_index, event_column, index_variable, set_column_values


def _nll(ROOT, pdf, data, **kw):
    return pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu"), **kw).getVal()


_HELPERS = r"""
#include <RooFit/Evaluator.h>
namespace rooml_column_test {
// Run RooFit's vectorized Evaluator (doEval) on `f` with the observable `name` fed from a column.
void batch(RooAbsReal &f, const char *name, const double *col, std::size_t n, double *out) {
  RooFit::Evaluator ev(f);
  ev.setInput(name, {col, n}, false);
  auto r = ev.run();
  for (std::size_t i = 0; i < n; ++i) out[i] = r[r.size() == 1 ? 0 : i];
}
}
"""


def batch_values(ROOT, func, index_values, index_name="event_index"):
    """Return ``func`` on every event through RooFit's vectorized evaluator (doEval)."""
    if not hasattr(ROOT, "rooml_column_test"):
        assert ROOT.gInterpreter.Declare(_HELPERS)
    col = np.ascontiguousarray(index_values, dtype=np.float64)
    out = np.empty(len(col))
    ROOT.rooml_column_test.batch(func, index_name, col, len(col), out)
    return out


def _index_column(data, name="event_index"):
    return np.asarray([data.get(i).getRealValue(name) for i in range(data.numEntries())])


def _values(ROOT, func, data, idx):
    """Per-event values through the vectorized evaluator (doEval) and through getVal() row by row."""
    index = _index_column(data, idx.GetName())
    batch = batch_values(ROOT, func, index, idx.GetName())
    scalar = []
    for i in index:
        idx.setVal(i)
        scalar.append(func.getVal())
    return batch, np.asarray(scalar)


@pytest.fixture()
def idx(roofit):
    return index_variable()


@pytest.mark.parametrize("log", [False, True])
def test_values_match_numpy(roofit, idx, log):
    ROOT = roofit
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.01, 5.0, 300)
    col = event_column("c", np.log(truth) if log else truth, idx, log=log)
    data = dataset_with_index({}, idx, n=300)
    # shuffle the rows: the index, not the row, picks the value
    order = rng.permutation(300)
    shuffled = dataset_with_index({}, idx, n=300)
    shuffled.reset()
    for i in order:
        idx.setVal(float(i))
        shuffled.add(ROOT.RooArgSet(idx))
    batch, scalar = _values(ROOT, col, shuffled, idx)
    np.testing.assert_allclose(batch, truth[order], rtol=1e-15)
    np.testing.assert_array_equal(batch, scalar)
    assert col.size() == 300 and col.logValues() == log
    assert list(col.values()) == pytest.approx(list(np.log(truth) if log else truth), rel=0, abs=0)
    assert data.numEntries() == 300


def test_log_density_column_nll_matches_numpy_weighted(roofit, idx):
    """RooWrapperPdf over a log-density column: NLL = -sum_i w_i log p_i (the index is never integrated)."""
    ROOT = roofit
    rng = np.random.default_rng(5)
    logp = rng.normal(-3.0, 1.0, 1000)
    w = rng.poisson(1.0, 1000).astype(float)
    col = event_column("logp", logp, idx, log=True)
    pdf = ROOT.RooWrapperPdf("p", "p", col)
    data = dataset_with_index({}, idx, weights=w)
    assert data.isWeighted() and data.sumEntries() == pytest.approx(w.sum())
    want = -np.sum(w * logp)
    assert _nll(ROOT, pdf, data) == pytest.approx(want, rel=1e-12)
    assert pdf.getNorm(ROOT.RooArgSet(idx)) == 1.0


def test_evaluated_once_per_dataset(roofit, idx):
    """In a fit the columns (which depend only on the index) are looked up once per dataset, not per step."""
    ROOT = roofit
    rng = np.random.default_rng(9)
    n = 2000
    x = np.where(rng.random(n) < 0.3, rng.normal(1, 0.3, n), rng.exponential(1.0, n))
    ps = np.exp(-0.5 * ((x - 1) / 0.3) ** 2) / (0.3 * np.sqrt(2 * np.pi))
    pb = np.exp(-x)
    cs, cb = event_column("ps", ps, idx), event_column("pb", pb, idx)
    s, b = ROOT.RooWrapperPdf("s", "s", cs), ROOT.RooWrapperPdf("b", "b", cb)
    f = ROOT.RooRealVar("f", "f", 0.5, 0.0, 1.0)
    model = ROOT.RooAddPdf("m", "m", ROOT.RooArgList(s, b), ROOT.RooArgList(f))
    data = dataset_with_index({}, idx, n=n)
    before = cs.evaluations()
    res = model.fitTo(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.PrintLevel(-1), ROOT.RooFit.Save())
    assert res.status() == 0
    assert cs.evaluations() - before == n and cb.evaluations() - before == n
    # the fitted fraction is the numpy maximum-likelihood one
    from scipy.optimize import minimize_scalar

    best = minimize_scalar(
        lambda q: -np.sum(np.log(q * ps + (1 - q) * pb)),
        bounds=(0, 1),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert f.getVal() == pytest.approx(best.x, abs=1e-4)


def test_add_index_column_keeps_columns_and_weights(roofit, idx):
    ROOT = roofit
    x = ROOT.RooRealVar("x", "x", 0, -10, 10)
    w = ROOT.RooRealVar("w", "w", 1.0)
    rng = np.random.default_rng(1)
    arr = {"x": rng.normal(size=50), "w": rng.uniform(0.5, 2, 50)}
    data = ROOT.RooDataSet.from_numpy(arr, ROOT.RooArgSet(x, w), weight_name="w")
    out = add_index_column(data, idx)
    got = {(k.decode() if isinstance(k, bytes) else k): v for k, v in out.to_numpy().items()}
    np.testing.assert_array_equal(got["x"], arr["x"])
    np.testing.assert_array_equal(got[idx.GetName()], np.arange(50.0))
    assert out.isWeighted() and out.sumEntries() == pytest.approx(arr["w"].sum(), rel=1e-14)


def test_set_values_for_next_toy(roofit, idx):
    ROOT = roofit
    col = event_column("c", [1.0, 2.0], idx)
    set_column_values(col, [3.0, 4.0, 5.0])
    data = dataset_with_index({}, idx, n=3)
    np.testing.assert_array_equal(batch_values(ROOT, col, _index_column(data)), [3.0, 4.0, 5.0])


def test_errors_name_the_event(roofit, idx):
    ROOT = roofit
    with pytest.raises(ValueError, match=r"value of event 2 is nan"):
        event_column("c", [1.0, 2.0, np.nan], idx)
    with pytest.raises(ValueError, match=r"log-value of event 0 is -inf .*density of 0"):
        event_column("c", [-np.inf, 0.0], idx, log=True)
    with pytest.raises(ValueError, match="1-d"):
        event_column("c", np.ones((2, 2)), idx)
    with pytest.raises(Exception):  # the C++ constructor refuses too (message through RooFit's coutE)
        ROOT.RooEventColumn("c", "c", idx, [1.0, float("inf")], False)

    col = event_column("short", [0.5, 0.5, 0.5], idx)
    pdf = ROOT.RooWrapperPdf("p", "p", col)
    data = dataset_with_index({}, idx, n=5)  # two more events than values
    with pytest.raises(Exception, match=r"dataset row 3: index 3 of 'event_index' is outside \[0, 2\]"):
        _nll(ROOT, pdf, data)
    with pytest.raises(Exception, match="event 4 out of range"):
        col.valueAt(4)
    frac = ROOT.RooDataSet("frac", "frac", ROOT.RooArgSet(idx))
    idx.setVal(1.5)
    frac.add(ROOT.RooArgSet(idx))
    with pytest.raises(Exception, match="index 1.5 of 'event_index' is not an integer"):
        _nll(ROOT, pdf, frac)


def test_error_messages_through_roofit(roofit, idx, capfd):
    """The C++ error text (row, index value, size) reaches RooFit's message stream."""
    ROOT = roofit
    col = event_column("short", [0.5, 0.5, 0.5], idx)
    data = dataset_with_index({}, idx, n=5)
    with pytest.raises(Exception):
        batch_values(ROOT, col, _index_column(data))
    err = capfd.readouterr()
    assert (
        "RooEventColumn 'short': dataset row 3: index 3 of 'event_index' is outside [0, 2]"
        in err.out + err.err
    )
    frac = ROOT.RooDataSet("frac", "frac", ROOT.RooArgSet(idx))
    for v in (0.0, 1.25):
        idx.setVal(v)
        frac.add(ROOT.RooArgSet(idx))
    with pytest.raises(Exception):
        batch_values(ROOT, col, _index_column(frac))
    err = capfd.readouterr()
    assert "dataset row 1: index 1.25 of 'event_index' is not an integer" in err.out + err.err


def test_workspace_round_trip_in_new_process(roofit, idx, tmp_path):
    ROOT = roofit
    rng = np.random.default_rng(2)
    logp = rng.normal(-2, 1, 200)
    col = event_column("logp", logp, idx, log=True)
    pdf = ROOT.RooWrapperPdf("pdf", "pdf", col)
    w = rng.poisson(1.0, 200).astype(float)
    data = dataset_with_index({}, idx, weights=w, name="data")
    ws = ROOT.RooWorkspace("w")
    ws.Import(pdf, ROOT.RooFit.Silence())
    ws.Import(data, ROOT.RooFit.Silence())
    path = tmp_path / "ws.root"
    ws.writeToFile(str(path))
    here = [_nll(ROOT, pdf, data)]
    for i in range(20):
        idx.setVal(data.get(i).getRealValue("event_index"))
        here.append(col.getVal())
    script = (
        "import json, ROOT\n"
        "import rooml\n"
        "from rooml.roofit import load_library\n"
        "ROOT = load_library()\n"
        f"f = ROOT.TFile.Open({str(path)!r}); w = f.Get('w')\n"
        "pdf, data, col = w.pdf('pdf'), w.data('data'), w.function('logp')\n"
        "out = [pdf.createNLL(data, ROOT.RooFit.EvalBackend('cpu')).getVal()]\n"
        "idx = w.var('event_index')\n"
        "for i in range(20):\n"
        "    idx.setVal(data.get(i).getRealValue('event_index')); out.append(col.getVal())\n"
        "print(json.dumps([type(col).__name__, col.logValues(), out]))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    kind, log, there = json.loads(res.stdout.strip().splitlines()[-1])
    assert kind == "RooEventColumn" and log is True
    assert there == here
