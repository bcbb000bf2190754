"""The recipes of docs/own_models.md, run as written (a foreign classifier + pickled scaler, a BDT)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import onnxruntime as ort
import pytest
import rooml
import torch
from foreign_models import fixture
from rooml.export import adopt_onnx
from rooml.roofit import ratio_function
from sklearn.preprocessing import StandardScaler
from torch import nn

FEATURES = ["pt", "eta", "mjj", "dphi"]
SUPPORT = [(0, 1e4), (-5, 5), (0, 1e4), (0, 3.15)]


def _events(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.exponential(80, n) + 20, rng.uniform(-2.5, 2.5, n),
                            rng.exponential(300, n) + 200,
                            rng.uniform(0, 3.14, n)])  # fmt: skip


def test_foreign_onnx_plus_pickled_scaler(tmp_path, roofit):
    x_train = _events(2000)
    with open(tmp_path / "scaler.pkl", "wb") as f:
        pickle.dump(StandardScaler().fit(x_train), f)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 1), nn.Sigmoid()
    )
    buffer = io.BytesIO()
    torch.onnx.export(
        net.eval(),
        (torch.randn(2, 4),),
        buffer,
        input_names=["x"],
        output_names=["score"],
        dynamic_axes={"x": {0: "batch"}, "score": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    (tmp_path / "classifier.onnx").write_bytes(buffer.getvalue())

    # --- the recipe ---
    scaler = pickle.load(open(tmp_path / "scaler.pkl", "rb"))
    adopt_onnx(
        tmp_path / "classifier.onnx",
        tmp_path / "ratio_S.onnx",
        kind="ratio",
        features=FEATURES,
        output="probability",
        preprocessing=scaler,
        support=SUPPORT,
    )
    x = _events(300, seed=1)
    r = rooml.load(tmp_path / "ratio_S.onnx").ratio(x)
    ROOT = roofit
    variables = [ROOT.RooRealVar(n, n, lo + 1e-9, lo, hi) for n, (lo, hi) in zip(FEATURES, SUPPORT)]
    r_S = ratio_function("r_S", tmp_path / "ratio_S.onnx", variables)

    session = ort.InferenceSession(str(tmp_path / "classifier.onnx"), providers=["CPUExecutionProvider"])
    s = session.run(None, {"x": scaler.transform(x).astype(np.float32)})[0][:, 0].astype(np.float64)
    np.testing.assert_allclose(r, s / (1 - s), rtol=2e-5)
    for i in range(0, 300, 61):
        for v, value in zip(variables, x[i]):
            v.setVal(value)
        assert r_S.getVal() == pytest.approx(r[i], rel=1e-12)


def test_bdt(tmp_path, roofit):
    source, ref = fixture("xgboost_classifier")  # onnxmltools.convert_xgboost(..., target_opset=15)
    adopt_onnx(
        source,
        tmp_path / "ratio_bdt.onnx",
        kind="ratio",
        features=FEATURES,
        output={"kind": "probability", "tensor": "probabilities", "class": 1},
    )
    x = ref["x"]
    s = ref["out:probabilities"][:, 1]
    log_r = np.log(s) - np.log1p(-s)
    got = rooml.load(tmp_path / "ratio_bdt.onnx").log_ratio(x)
    assert np.max(np.abs(got - log_r) / (1 + np.abs(log_r))) < 1e-5
    ROOT = roofit
    variables = [ROOT.RooRealVar(n, n, 0.0, -10, 10) for n in FEATURES]
    r_bdt = ratio_function("r_bdt", tmp_path / "ratio_bdt.onnx", variables, log=True)
    for i in range(0, len(x), 97):
        for v, value in zip(variables, x[i]):
            v.setVal(value)
        assert r_bdt.getVal() == pytest.approx(got[i], rel=1e-12, abs=1e-14)
