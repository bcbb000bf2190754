"""rooml.export.adopt_onnx: foreign ONNX files as rooml ratio models and flows (core vs onnxruntime)."""

from __future__ import annotations

import io
import math

import numpy as np
import onnxruntime as ort
import pytest
import rooml
import torch
from foreign_models import fixture
from rooml.export import adopt_onnx
from torch import nn


def _torch_file(tmp_path, module, name, n_features=4, output="score"):
    buffer = io.BytesIO()
    torch.onnx.export(
        module.eval(),
        (torch.randn(3, n_features),),
        buffer,
        input_names=["x"],
        output_names=[output],
        dynamic_axes={"x": {0: "batch"}, output: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(buffer.getvalue())
    return path


def _classifier(seed, head=nn.Sigmoid):
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 16), nn.SiLU(), nn.Linear(16, 1)]
    return nn.Sequential(*layers, *([head()] if head else []))


def _ort(path, z):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: z.astype(np.float32)})


@pytest.fixture
def scaled_data():
    """Physical events and a StandardScaler fitted on them, translated by hand into an affine step."""
    from sklearn.preprocessing import StandardScaler

    x = np.random.default_rng(0).normal(size=(400, 4)) * [1.0, 3.0, 0.5, 2.0] + [0.0, 5.0, -1.0, 2.0]
    scaler = StandardScaler().fit(x)
    step = {
        "kind": "affine",
        "features": [0, 1, 2, 3],
        "shift": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
    }
    return x, scaler, [step]


def test_classifier_with_scaler_gives_s_over_1_minus_s(tmp_path, scaled_data):
    x, scaler, steps = scaled_data
    src = _torch_file(tmp_path, _classifier(1), "clf")
    out = adopt_onnx(
        src,
        tmp_path / "adopted.onnx",
        kind="ratio",
        features=list("abcd"),
        output="probability",
        preprocessing=steps,
    )
    model = rooml.load(out)
    s = _ort(src, scaler.transform(x))[0][:, 0].astype(np.float64)
    np.testing.assert_allclose(model.ratio(x), s / (1 - s), rtol=2e-5)
    assert model.features == list("abcd")
    meta = rooml.export.read_metadata(out)
    assert meta["architecture"]["type"] == "graph" and meta["preprocessing"] == steps


def test_logit_softmax_and_tree_outputs(tmp_path):
    logit_src = _torch_file(tmp_path, _classifier(2, head=None), "logit")
    x = np.random.default_rng(1).normal(size=(300, 4))
    m = rooml.load(
        adopt_onnx(
            logit_src, tmp_path / "logit_adopted.onnx", kind="ratio", features=list("abcd"), output="logit"
        )
    )
    np.testing.assert_allclose(m.log_ratio(x), _ort(logit_src, x)[0][:, 0], rtol=1e-5, atol=1e-6)

    path, ref = fixture("keras_functional")  # 3-class softmax
    m = rooml.load(
        adopt_onnx(
            path,
            tmp_path / "softmax.onnx",
            kind="ratio",
            features=list("abcd"),
            output={"kind": "softmax", "class": 2, "reference": 0},
        )
    )
    p = ref["out:Identity:0"]
    log_r = np.log(p[:, 2]) - np.log(p[:, 0])  # float32 probabilities: compare log r at 1e-5 of 1 + |log r|
    assert np.max(np.abs(m.log_ratio(ref["x"]) - log_r) / (1 + np.abs(log_r))) < 1e-5

    path, ref = fixture("xgboost_classifier")
    m = rooml.load(
        adopt_onnx(
            path,
            tmp_path / "bdt.onnx",
            kind="ratio",
            features=list("abcd"),
            output={"kind": "probability", "tensor": "probabilities"},
        )
    )
    s = ref["out:probabilities"][:, 1]  # float32 s near 0 or 1: compare log r = log s - log(1 - s)
    log_r = np.log(s) - np.log1p(-s)
    assert np.max(np.abs(m.log_ratio(ref["x"]) - log_r) / (1 + np.abs(log_r))) < 1e-5


@pytest.mark.parametrize("rule", ["mean_ratio", "mean_log_ratio", "median_ratio"])
def test_ensembles_combine_like_numpy(tmp_path, rule):
    sources = [_torch_file(tmp_path, _classifier(seed), f"m{seed}") for seed in range(3)]
    model = rooml.load(
        adopt_onnx(sources, tmp_path / "ens.onnx", kind="ratio", features=list("abcd"), rule=rule)
    )
    x = np.random.default_rng(2).normal(size=(200, 4))
    s = np.stack([_ort(p, x)[0][:, 0].astype(np.float64) for p in sources], axis=1)
    r = s / (1 - s)
    want = {
        "mean_ratio": r.mean(axis=1),
        "mean_log_ratio": np.exp(np.log(r).mean(axis=1)),
        "median_ratio": np.median(r, axis=1),
    }[rule]
    np.testing.assert_allclose(model.ratio(x), want, rtol=2e-5)
    assert model.n_members == 3
    np.testing.assert_allclose(model.member_log_ratio(x, 1), np.log(r[:, 1]), rtol=1e-5, atol=1e-6)


class _StandardNormalLogProb(nn.Module):
    def forward(self, x):
        return -0.5 * (x * x).sum(dim=1) - 0.5 * x.shape[1] * math.log(2 * math.pi)


def test_flow_graph_is_log_density_without_sampler(tmp_path):
    src = _torch_file(tmp_path, _StandardNormalLogProb(), "gauss", n_features=2, output="log_prob")
    steps = [{"kind": "affine", "features": [0, 1], "shift": [1.0, -2.0], "scale": [2.0, 0.5]}]
    flow = rooml.load(
        adopt_onnx(
            src,
            tmp_path / "flow.onnx",
            kind="flow",
            features=["u", "v"],
            output="log_prob",
            preprocessing=steps,
        )
    )
    x = np.random.default_rng(3).normal(size=(100, 2))
    z = (x - [1.0, -2.0]) / [2.0, 0.5]
    want = -0.5 * (z**2).sum(axis=1) - math.log(2 * math.pi) - math.log(2.0) - math.log(0.5)
    np.testing.assert_allclose(flow.log_prob(x), want, rtol=1e-6)
    with pytest.raises(ValueError, match="no sampler"):
        flow.sample(10)


def test_bad_inputs_are_refused_and_nothing_is_overwritten(tmp_path):
    src = _torch_file(tmp_path, _classifier(4), "clf")
    target = tmp_path / "keep.onnx"
    target.write_bytes(b"user data")
    with pytest.raises(FileExistsError):
        adopt_onnx(src, target, kind="ratio", features=list("abcd"))
    with pytest.raises(ValueError, match="takes 4 values per event, but 3 features"):
        adopt_onnx(src, tmp_path / "a.onnx", kind="ratio", features=list("abc"))
    with pytest.raises(ValueError, match="acts on feature 4"):
        adopt_onnx(
            src,
            tmp_path / "b.onnx",
            kind="ratio",
            features=list("abcd"),
            preprocessing=[{"kind": "affine", "features": [4], "shift": [0.0], "scale": [1.0]}],
        )

    class Fitted:  # a scikit-learn transformer fitted on 5 features
        n_features_in_ = 5

        def transform(self, x):
            return x

    with pytest.raises(ValueError, match="fitted on 5 features"):
        adopt_onnx(src, tmp_path / "c.onnx", kind="ratio", features=list("abcd"), preprocessing=Fitted())
    with pytest.raises(ValueError, match="outside \\(0, 1\\)"):
        adopt_onnx(
            _torch_file(tmp_path, _classifier(5, head=None), "raw"),
            tmp_path / "d.onnx",
            kind="ratio",
            features=list("abcd"),
            output="probability",
        )
    path, _ = fixture("xgboost_classifier")
    with pytest.raises(ValueError, match="several outputs"):
        adopt_onnx(path, tmp_path / "e.onnx", kind="ratio", features=list("abcd"))
    log_src = _torch_file(tmp_path, _LogOfFirst(), "log", n_features=1, output="log_prob")
    with pytest.raises(ValueError, match="not finite on the support"):
        adopt_onnx(log_src, tmp_path / "f.onnx", kind="flow", features=["u"])
    assert target.read_bytes() == b"user data"
    assert not any((tmp_path / f"{c}.onnx").exists() for c in "abcdef")


class _LogOfFirst(nn.Module):
    def forward(self, x):
        return torch.log(x[:, 0])


def test_zipmap_output_is_skipped_and_unsupported_ops_are_named(tmp_path):
    """A ZipMap (sequence of maps) output is left out; the probability tensor is adopted. Sin is refused."""
    import onnx
    from onnx import TensorProto, helper

    path, ref = fixture("xgboost_classifier")
    model = onnx.load(str(path))
    model.graph.node.append(helper.make_node("ZipMap", ["probabilities"], ["zipped"], domain="ai.onnx.ml",
                                             classlabels_int64s=[0, 1]))  # fmt: skip
    zipped = helper.make_value_info("zipped", helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))))
    model.graph.output.append(zipped)
    source = tmp_path / "with_zipmap.onnx"
    onnx.save(model, str(source))
    assert "zipped" not in _core_outputs(source)
    adopted = adopt_onnx(source, tmp_path / "zip.onnx", kind="ratio", features=list("abcd"),
                         output={"kind": "probability", "tensor": "probabilities"})  # fmt: skip
    s = ref["out:probabilities"][:, 1]
    log_r = np.log(s) - np.log1p(-s)
    assert np.max(np.abs(rooml.load(adopted).log_ratio(ref["x"]) - log_r) / (1 + np.abs(log_r))) < 1e-5

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Sin", ["x"], ["y"], name="odd")], "g", [x], [y])
    sine = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(sine, str(tmp_path / "sine.onnx"))
    with pytest.raises(ValueError, match=r"unsupported ONNX operator 'Sin' in node 'odd' of .*sine\.onnx"):
        adopt_onnx(tmp_path / "sine.onnx", tmp_path / "g.onnx", kind="ratio", features=list("abcd"),
                   output="logit")
    assert not (tmp_path / "g.onnx").exists()


def _core_outputs(path):
    from rooml import _core

    return _core.GraphModel(str(path)).outputs
