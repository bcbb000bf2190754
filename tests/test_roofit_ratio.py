"""RooRatioFunction: values against the core and torch, ensembles, errors, workspaces, C++ and an NSBI fit."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rooml
import torch
from rooml.export import ModelFileError, export_ratio
from rooml.models import Preprocessing, RatioConfig, RatioEnsemble, TrainedRatio
from rooml.models.ratio import RatioNet
from rooml.roofit import dataset_with_index, index_variable, nsbi_model, ratio_function, ratio_variables
from root_macro import run_root_macro

FEATURES = ["x0", "x1", "x2"]
LIMIT = 6.0  # the variables' range; the models' support is wider
SUPPORT = [(-8.0, 8.0)] * 3
STEPS = [{"kind": "affine", "features": [0, 1, 2], "shift": [0.2, -0.1, 0.0], "scale": [1.3, 0.8, 1.1]}]


def _net(seed: int, out_scale: float, correction: float = 0.0, activation: str = "silu") -> TrainedRatio:
    """Make an untrained ratio net with random weights; ``out_scale`` sets the size of log r."""
    config = RatioConfig(hidden=(16, 16), activation=activation)
    torch.manual_seed(seed)
    net = RatioNet(len(FEATURES), config)
    with torch.no_grad():
        net.layers[-1].weight.mul_(out_scale)
        net.layers[-1].bias.mul_(out_scale)
    pre = Preprocessing(STEPS, FEATURES)
    return TrainedRatio(net=net, config=config, preprocessing=pre, features=FEATURES, support=SUPPORT,
                        log_correction=correction, seed=seed)  # fmt: skip


def _export(model, path: Path) -> Path:
    x = np.random.default_rng(0).uniform(-LIMIT, LIMIT, (256, 3))
    return export_ratio(model, path, reference_inputs=x)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Export the models: a single net, a 3-member "mean" ensemble and the NSBI inputs."""
    d = tmp_path_factory.mktemp("ratios")
    ensemble = RatioEnsemble([_net(10 + k, 3.0, 0.1 * k) for k in range(3)], "mean")
    single = _net(1, 3.0, correction=-0.4, activation="relu")
    nsbi = {"S": _net(20, 2.0), "B": _net(21, 1.0), "S_lo": _net(22, 0.1), "S_hi": _net(23, 0.1)}
    files = {"single": _export(single, d / "single.onnx"), "ensemble": _export(ensemble, d / "ensemble.onnx")}
    files.update({k: _export(m, d / f"{k}.onnx") for k, m in nsbi.items()})
    return {"files": files, "single": single, "ensemble": ensemble}


def _variables(ROOT):
    return [ROOT.RooRealVar(n, n, 0.0, -LIMIT, LIMIT) for n in FEATURES]


def _events(n: int, seed: int = 3) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).normal(0, 2, (n, 3)), -LIMIT, LIMIT)


def _dataset(ROOT, xs, x, **kw):
    return ROOT.RooDataSet.from_numpy({n: x[:, i] for i, n in enumerate(FEATURES)}, ROOT.RooArgSet(*xs), **kw)


def _columns(data) -> np.ndarray:
    cols = data.to_numpy()
    return np.column_stack([cols[n] for n in FEATURES])


_HELPER = r"""
#include <RooFit/Evaluator.h>
namespace rooml_ratio_test {
// The function on n events (columns: one block of n values per name) through RooFit's vectorized evaluator.
std::vector<double> values(RooAbsReal &f, const std::vector<std::string> &names,
                           const std::vector<double> &columns, std::size_t n) {
  RooFit::Evaluator ev(f);
  for (std::size_t i = 0; i < names.size(); ++i) ev.setInput(names[i], {columns.data() + i * n, n}, false);
  auto r = ev.run();
  return {r.begin(), r.end()};
}
}
"""


def values_in_new_process(path, functions, extra: str = "") -> dict:
    """``{name: values}`` of the workspace ``w``'s functions on its dataset ``data``, read in a new process.

    ``extra`` (Python, with ``w`` and ``out`` in scope) can add entries to the returned dictionary.
    """
    script = (
        "import json, numpy as np, ROOT, rooml\n"
        f"ROOT.gInterpreter.Declare({_HELPER!r})\n"
        f"f = ROOT.TFile.Open({str(path)!r}); w = f.Get('w')\n"
        f"cols = w.data('data').to_numpy(); names = {list(FEATURES)!r}\n"
        "flat = np.concatenate([cols[n] for n in names])\n"
        "out = {n: list(ROOT.rooml_ratio_test.values(w.function(n), names, flat, len(cols['x0'])))\n"
        f"       for n in {list(functions)!r}}}\n"
        f"{extra}\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


MACRO_POINTS = np.array([[0.1, -0.2, 0.3], [1.5, 2.5, -3.0], [-4.0, 0.0, 5.5]])


def macro_ratios(model_file, folder) -> list[float]:
    """Run a ROOT C++ macro building a RooRatioFunction of ``model_file``; its ratios at MACRO_POINTS."""
    macro = folder / "ratio_macro.C"
    macro.write_text(_MACRO)
    out = run_root_macro(macro, model_file)
    got = [float(v) for v in re.findall(r"ROOML_RATIO (\S+)", out.stdout)]
    assert len(got) == len(MACRO_POINTS), out.stdout + out.stderr
    return got


def _values(func, x, names=FEATURES) -> np.ndarray:
    """Evaluate ``func`` on the rows of ``x`` (events x features) through RooFit's doEval."""
    import ROOT

    if not hasattr(ROOT, "rooml_ratio_test"):
        assert ROOT.gInterpreter.Declare(_HELPER)
    columns = np.ascontiguousarray(np.asarray(x, dtype=np.float64).T).ravel()
    return np.array(ROOT.rooml_ratio_test.values(func, names, columns, len(x)))


@pytest.mark.parametrize("kind", ["single", "ensemble"])
def test_values_match_core_and_torch(models, roofit, kind):
    """Batch and scalar values equal the core's (1e-12) and torch float64 (1e-9)."""
    ROOT = roofit
    xs = _variables(ROOT)
    path, model = models["files"][kind], models[kind]
    r = ratio_function("r", path, xs)
    log_r = ratio_function("log_r", path, xs, log=True)
    x = _events(400)
    core = rooml.load(path).log_ratio(x)
    torch64 = model.log_ratio(x)
    batch, batch_log = _values(r, x), _values(log_r, x)
    assert np.max(np.abs(batch_log / core - 1)) < 1e-12
    assert np.max(np.abs(batch_log - torch64) / (1 + np.abs(torch64))) < 1e-9
    assert np.max(np.abs(batch / np.exp(torch64) - 1)) < 1e-9
    for i in range(0, 400, 37):  # the scalar evaluate() path
        for v, value in zip(xs, x[i]):
            v.setVal(value)
        assert r.getVal() == pytest.approx(np.exp(core[i]), rel=1e-12)
        assert log_r.getVal() == pytest.approx(core[i], rel=1e-12, abs=1e-14)
    assert r.networkEvaluations() == 400 + len(range(0, 400, 37))


def test_ensemble_members(models, roofit):
    """Each member alone, and the combination rule of the file ("mean": log of the mean ratio)."""
    ROOT = roofit
    xs = _variables(ROOT)
    path, ensemble = models["files"]["ensemble"], models["ensemble"]
    x = _events(200, seed=5)
    members = ensemble.member_log_ratios(x)
    combined = ratio_function("r", path, xs, log=True)
    assert combined.nMembers() == 3 and str(combined.combination()) == "mean"
    for k in range(3):
        only = ratio_function(f"r{k}", path, xs, log=True, member=k)
        assert only.member() == k
        got = _values(only, x)
        assert np.max(np.abs(got - members[k]) / (1 + np.abs(members[k]))) < 1e-9
    mean = np.log(np.exp(members).mean(axis=0))
    assert np.max(np.abs(_values(combined, x) - mean) / (1 + np.abs(mean))) < 1e-9
    with pytest.raises(ValueError, match="member index 3 out of range"):
        ratio_function("bad", path, xs, member=3)
    with pytest.raises(Exception, match="member index -2 out of range"):
        combined.setMember(-2)


def test_wrong_features(models, roofit):
    """Wrong count or order of variables, a missing or non-ratio file: errors that say so."""
    ROOT = roofit
    path = models["files"]["single"]
    x0, x1, x2 = _variables(ROOT)
    with pytest.raises(ValueError, match=r"model has 3 features \(x0, x1, x2\) but 2 variables were given"):
        ratio_function("r", path, [x0, x1])
    with pytest.raises(ValueError, match="'x2' is given at position 1 but is the model's feature number 2"):
        ratio_function("r", path, [x0, x2, x1])
    # the C++ constructor makes the same checks (for C++ users and macros)
    with pytest.raises(Exception, match="but 2 variables were given"):
        ROOT.RooRatioFunction("r", "r", ROOT.RooArgList(x0, x1), str(path))
    with pytest.raises(Exception, match="wrong order"):
        ROOT.RooRatioFunction("r", "r", ROOT.RooArgList(x1, x0, x2), str(path))
    with pytest.raises(Exception, match="cannot open model file"):
        ROOT.RooRatioFunction("r", "r", ROOT.RooArgList(x0, x1, x2), str(path) + ".missing")
    with pytest.raises(ModelFileError, match="not 'ratio'"):
        ratio_function("r", _flow_file(path.parent), [x0, x1, x2])
    # variables named differently from the model's features are accepted in the model's order, with a warning
    a, b, c = (ROOT.RooRealVar(n, n, 0.5, -LIMIT, LIMIT) for n in "abc")
    with pytest.warns(UserWarning, match="'a' for 'x0', 'b' for 'x1', 'c' for 'x2'"):
        same = ratio_function("r", path, [a, b, c])
    assert same.getVal() == pytest.approx(float(rooml.load(path).ratio(np.full((1, 3), 0.5))[0]), rel=1e-12)


def _flow_file(folder: Path) -> Path:
    from flow_factory import random_flow
    from rooml.export import export_flow

    path = folder / "flow.onnx"
    if not path.exists():
        export_flow(random_flow("coupling", features=3), path, features=FEATURES)
    return path


def test_bad_input_names_the_event(models, roofit):
    """NaN or out-of-support inputs stop the evaluation with an error naming the event and variable."""
    ROOT = roofit
    xs = _variables(ROOT)
    r = ratio_function("r_bad", models["files"]["single"], xs)
    x = _events(50)
    x[17, 1] = np.nan
    with pytest.raises(Exception, match=r"RooRatioFunction 'r_bad': event 17, variable 'x1': value is not"):
        _values(r, x)
    # a variable whose range reaches outside the support: events there are errors too
    wide = [ROOT.RooRealVar(n, n, 0.0, -20, 20) for n in FEATURES]
    r_wide = ratio_function("r_wide", models["files"]["single"], wide)
    x = _events(30)
    x[4, 2] = 9.0
    with pytest.raises(Exception, match=r"event 4, variable 'x2': value 9 is outside the ratio model's supp"):
        _values(r_wide, x)


def test_workspace_round_trip_in_new_process(models, roofit, tmp_path):
    """A workspace read in a new process gives the same values, member choice and log option."""
    ROOT = roofit
    xs = _variables(ROOT)
    r = ratio_function("r", models["files"]["ensemble"], xs, member=1)
    log_r = ratio_function("log_r", models["files"]["single"], xs, log=True)
    data = _dataset(ROOT, xs, _events(100, seed=9), name="data")
    ws = ROOT.RooWorkspace("w", "w")
    ws.Import(r, ROOT.RooFit.Silence())
    ws.Import(log_r, ROOT.RooFit.Silence())
    ws.Import(data, ROOT.RooFit.Silence())
    path = tmp_path / "ws.root"
    ws.writeToFile(str(path))
    here = {name: _values(f, _columns(data)).tolist() for name, f in (("r", r), ("log_r", log_r))}
    there = values_in_new_process(path, ["r", "log_r"], extra="out['member'] = w.function('r').member(); "
                                  "out['log'] = bool(w.function('log_r').logRatio())")
    assert there.pop("member") == 1 and there.pop("log") is True
    assert there == here  # bit for bit


_MACRO = r"""
#include <RooArgList.h>
#include <RooRealVar.h>
#include <TSystem.h>
#include <cstdio>

void ratio_macro(const char *modelFile)
{
   if (gSystem->Load("libRooML") < 0) { std::printf("cannot load libRooML\n"); return; }
   RooRealVar x0("x0", "x0", 0, -6, 6), x1("x1", "x1", 0, -6, 6), x2("x2", "x2", 0, -6, 6);
   RooRatioFunction r("r", "r", RooArgList(x0, x1, x2), modelFile);
   const double points[3][3] = {{0.1, -0.2, 0.3}, {1.5, 2.5, -3.0}, {-4.0, 0.0, 5.5}};
   for (auto &p : points) {
      x0.setVal(p[0]); x1.setVal(p[1]); x2.setVal(p[2]);
      std::printf("ROOML_RATIO %.17g\n", r.getVal());
   }
}
"""


def test_cpp_macro(models, tmp_path):
    """A ROOT C++ macro builds a RooRatioFunction from the file and gets the core's values."""
    path = models["files"]["single"]
    assert macro_ratios(path, tmp_path) == pytest.approx(rooml.load(path).ratio(MACRO_POINTS), rel=1e-14)


def _nsbi(idx, ratios, shape):
    return nsbi_model("nsbi", idx, yields={"S": 60.0, "B": 1000.0}, coefficients={"S": "mu", "B": "1"},
                      ratios=ratios, poi=[("mu", 1.0, 0.0, 10.0)], nps=["a1"],
                      norm={("S", "a1"): (0.95, 1.06)}, shape={("S", "a1"): shape})  # fmt: skip


def test_nsbi_fit_with_ratio_functions(models, roofit):
    """RooRatioFunction r_j, g_j in a RooNSBIPdf: the NLL of precomputed columns (1e-9), one evaluation."""
    ROOT = roofit
    files = models["files"]
    xs = _variables(ROOT)
    x = _events(1500, seed=11)
    idx = index_variable()
    weights = np.random.default_rng(2).poisson(1.0, len(x)).astype(float)
    columns = {n: x[:, i] for i, n in enumerate(FEATURES)}
    data = dataset_with_index(columns, idx, variables=xs, weights=weights)
    funcs = {k: ratio_function(f"r_{k}", files[k], xs) for k in ("S", "B", "S_lo", "S_hi")}
    net = _nsbi(idx, {"S": funcs["S"], "B": funcs["B"]}, (funcs["S_lo"], funcs["S_hi"]))
    cols = {k: rooml.load(files[k]).ratio(x) for k in funcs}
    col = _nsbi(index_variable(), {"S": cols["S"], "B": cols["B"]}, (cols["S_lo"], cols["S_hi"]))
    glob = ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(*net["global_observables"]))
    glob_col = ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(*col["global_observables"]))
    nll_net = net["pdf"].createNLL(data, ROOT.RooFit.EvalBackend("cpu"), glob)
    nll_col = col["pdf"].createNLL(data, ROOT.RooFit.EvalBackend("cpu"), glob_col)
    worst = 0.0
    for mu, a in [(1.0, 0.0), (0.3, 0.7), (2.5, -1.4), (4.0, 2.2)]:
        for m in (net, col):
            m["poi"][0].setVal(mu)
            m["nuisance_parameters"][0].setVal(a)
        worst = max(worst, abs(nll_net.getVal() / nll_col.getVal() - 1))
    assert worst < 1e-9
    counts = {k: f.networkEvaluations() for k, f in funcs.items()}
    fits = []
    for m, g in ((net, glob), (col, glob_col)):
        m["poi"][0].setVal(1.0)
        m["nuisance_parameters"][0].setVal(0.0)
        res = m["pdf"].fitTo(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.PrintLevel(-1),
                             ROOT.RooFit.Save(), ROOT.RooFit.SumW2Error(False), g)  # fmt: skip
        assert res.status() == 0
        fits.append((res.minNll(), m["poi"][0].getVal(), m["nuisance_parameters"][0].getVal()))
    assert fits[0][0] == pytest.approx(fits[1][0], rel=1e-9)
    assert fits[0][1:] == pytest.approx(fits[1][1:], abs=1e-6)
    # the networks ran once per event for the whole fit (features are observables: RooFit caches them);
    # RooFit drops the events of weight zero
    once = int((weights > 0).sum())
    assert {k: f.networkEvaluations() - counts[k] for k, f in funcs.items()} == dict.fromkeys(funcs, once)


def test_ratio_variables(models, roofit):
    """Variables made from the metadata: names, support ranges, user ranges."""
    features = ratio_variables(models["files"]["single"], ranges={"x1": (-2.0, 3.0)})
    assert [v.GetName() for v in features] == FEATURES
    assert (features[0].getMin(), features[0].getMax()) == (-8.0, 8.0)  # the model's support
    assert (features[1].getMin(), features[1].getMax()) == (-2.0, 3.0)
    r = ratio_function("r", models["files"]["single"])  # variables from the metadata
    assert [v.GetName() for v in r.features()] == FEATURES
