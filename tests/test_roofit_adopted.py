"""Adopted foreign ONNX models in RooFit: RooRatioFunction, NSBI fit, workspaces, C++ macro, RooFlowPdf."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import rooml
import torch
from rooml.export import adopt_onnx
from rooml.roofit import dataset_with_index, index_variable, nsbi_model, ratio_function
from test_roofit_ratio import MACRO_POINTS, _values, macro_ratios, values_in_new_process
from torch import nn

FEATURES = ["x0", "x1", "x2"]
LIMIT = 6.0
STEPS = [{"kind": "affine", "features": [0, 1, 2], "shift": [0.2, -0.1, 0.0], "scale": [1.3, 0.8, 1.1]}]


def _classifier_file(folder, seed: int, scale: float):
    """Write a torch MLP classifier (SiLU layers, sigmoid score) with plain torch.onnx.export and adopt it."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(3, 16), nn.SiLU(), nn.Linear(16, 16), nn.SiLU(), nn.Linear(16, 1), nn.Sigmoid()
    )
    with torch.no_grad():
        net[4].weight.mul_(scale)
    buffer = io.BytesIO()
    torch.onnx.export(
        net.eval(),
        (torch.randn(2, 3),),
        buffer,
        input_names=["input"],
        output_names=["score"],
        dynamic_axes={"input": {0: "batch"}, "score": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    source = folder / f"foreign_{seed}.onnx"
    source.write_bytes(buffer.getvalue())
    return adopt_onnx(
        source,
        folder / f"adopted_{seed}.onnx",
        kind="ratio",
        features=FEATURES,
        output="probability",
        preprocessing=STEPS,
        support=[(-8.0, 8.0)] * 3,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adopted")
    return {
        k: _classifier_file(folder, seed, scale)
        for k, seed, scale in (("S", 1, 2.0), ("B", 2, 1.0), ("S_lo", 3, 0.1), ("S_hi", 4, 0.1))
    }


def _variables(ROOT):
    return [ROOT.RooRealVar(n, n, 0.0, -LIMIT, LIMIT) for n in FEATURES]


def _events(n: int, seed: int = 3) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).normal(0, 2, (n, 3)), -LIMIT, LIMIT)


def test_values_match_core(files, roofit):
    xs = _variables(roofit)
    r = ratio_function("r", files["S"], xs)
    x = _events(400)
    np.testing.assert_allclose(_values(r, x), rooml.load(files["S"]).ratio(x), rtol=1e-12)


def _nsbi(idx, ratios, shape):
    return nsbi_model("nsbi", idx, yields={"S": 60.0, "B": 1000.0}, coefficients={"S": "mu", "B": "1"},
                      ratios=ratios, poi=[("mu", 1.0, 0.0, 10.0)], nps=["a1"],
                      norm={("S", "a1"): (0.95, 1.06)}, shape={("S", "a1"): shape})  # fmt: skip


def test_nsbi_fit_equals_precomputed_columns(files, roofit):
    """The adopted classifiers as RooRatioFunctions give the fit of precomputed ratio columns."""
    ROOT = roofit
    xs = _variables(ROOT)
    x = _events(1500, seed=11)
    idx = index_variable()
    weights = np.random.default_rng(2).poisson(1.0, len(x)).astype(float)
    data = dataset_with_index(
        {n: x[:, i] for i, n in enumerate(FEATURES)}, idx, variables=xs, weights=weights
    )
    funcs = {k: ratio_function(f"r_{k}", files[k], xs) for k in files}
    net = _nsbi(idx, {"S": funcs["S"], "B": funcs["B"]}, (funcs["S_lo"], funcs["S_hi"]))
    cols = {k: rooml.load(files[k]).ratio(x) for k in files}
    col = _nsbi(index_variable(), {"S": cols["S"], "B": cols["B"]}, (cols["S_lo"], cols["S_hi"]))
    fits = []
    for m in (net, col):
        glob = ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(*m["global_observables"]))
        res = m["pdf"].fitTo(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.PrintLevel(-1),
                             ROOT.RooFit.Save(),
                             ROOT.RooFit.SumW2Error(False), glob)  # fmt: skip
        assert res.status() == 0
        fits.append((res.minNll(), m["poi"][0].getVal(), m["nuisance_parameters"][0].getVal()))
    assert fits[0][0] == pytest.approx(fits[1][0], rel=1e-9)
    assert fits[0][1:] == pytest.approx(fits[1][1:], abs=1e-6)


def test_workspace_round_trip_in_new_process(files, roofit, tmp_path):
    ROOT = roofit
    xs = _variables(ROOT)
    r = ratio_function("r", files["S"], xs)
    x = _events(100, seed=9)
    data = ROOT.RooDataSet.from_numpy(
        {n: x[:, i] for i, n in enumerate(FEATURES)}, ROOT.RooArgSet(*xs), name="data"
    )
    ws = ROOT.RooWorkspace("w", "w")
    ws.Import(r, ROOT.RooFit.Silence())
    ws.Import(data, ROOT.RooFit.Silence())
    path = tmp_path / "ws.root"
    ws.writeToFile(str(path))
    cols = data.to_numpy()
    here = _values(r, np.column_stack([cols[n] for n in FEATURES])).tolist()
    assert values_in_new_process(path, ["r"])["r"] == here  # bit for bit


def test_cpp_macro_bit_identical(files, tmp_path):
    assert macro_ratios(files["S"], tmp_path) == rooml.load(files["S"]).ratio(MACRO_POINTS).tolist()


class _Gauss(nn.Module):
    """log N(y; m, 1); the normalization as a float64 buffer (torch writes Python scalars as float32)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("log_norm", torch.tensor(0.5 * math.log(2 * math.pi), dtype=torch.float64))

    def forward(self, x, c):
        z = x - c
        return -0.5 * (z * z).sum(dim=1) - self.log_norm


def test_flow_pdf_from_adopted_graph(roofit, tmp_path):
    """RooFlowPdf of a conditional log-density graph: values and normalization over the observable."""
    from rooml.roofit import flow_pdf

    buffer = io.BytesIO()
    double = (
        torch.randn(2, 1, dtype=torch.float64),
        torch.randn(2, 1, dtype=torch.float64),
    )  # exact constants
    torch.onnx.export(_Gauss(), double, buffer, input_names=["x", "c"],
                      output_names=["log_prob"], opset_version=17, dynamo=False,
                      dynamic_axes={"x": {0: "b"}, "c": {0: "b"}, "log_prob": {0: "b"}})  # fmt: skip
    source = tmp_path / "gauss.onnx"
    source.write_bytes(buffer.getvalue())
    path = adopt_onnx(source, tmp_path / "flow.onnx", kind="flow", features=["y"], context=["m"])
    ROOT = roofit
    y, m = ROOT.RooRealVar("y", "y", 0.0, -10, 10), ROOT.RooRealVar("m", "m", 0.5, -1, 1)
    pdf = flow_pdf("p", path, [y], context=[m])
    for value in (-1.0, 0.3, 2.0):
        y.setVal(value)
        want = math.exp(-0.5 * (value - 0.5) ** 2) / math.sqrt(2 * math.pi)
        assert pdf.getVal(ROOT.RooArgSet(y)) == pytest.approx(want, rel=1e-12)
