"""Ratio-network export and the compiled core: against torch float64 and onnxruntime, metadata, errors."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rooml
import torch
from rooml import _core
from rooml.export import ExportValidationError, ModelFileError, export_flow, export_ratio, read_metadata
from rooml.models import Preprocessing, RatioConfig, RatioEnsemble, TrainedRatio
from rooml.models.ratio import RatioNet

FEATURES = ["pt", "frac", "eta"]
SUPPORT = [(0.0, math.inf), (0.0, 1.0), (-5.0, 5.0)]
# every preprocessing kind: log on pt, clip + logit on frac, then a standardization
STEPS = [
    {"kind": "log", "features": [0], "a": [1.0], "b": [0.5]},
    {"kind": "clip", "features": [1], "low": [1e-6], "high": [1 - 1e-6]},
    {"kind": "logit", "features": [1]},
    {"kind": "affine", "features": [0, 1, 2], "shift": [0.3, -0.1, 0.2], "scale": [1.2, 1.7, 0.9]},
]
VARIANTS = [
    {"activation": "relu", "members": 1, "combination": "mean", "correction": 0.0},
    {"activation": "silu", "members": 1, "combination": "mean", "correction": -0.7},
    {"activation": "relu", "members": 3, "combination": "mean", "correction": 0.25},
    {"activation": "silu", "members": 2, "combination": "mean_log", "correction": 0.0},
]


def _random_ratio(activation="relu", correction=0.0, seed=0, hidden=(24, 16)):
    """Make an untrained ratio net with random weights that give log r of order 1-5."""
    config = RatioConfig(hidden=hidden, activation=activation)
    torch.manual_seed(seed)
    net = RatioNet(len(FEATURES), config)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    pre = Preprocessing(STEPS, FEATURES)
    return TrainedRatio(net=net, config=config, preprocessing=pre, features=FEATURES, support=SUPPORT,
                        log_correction=correction, loss="bce", seed=seed)  # fmt: skip


def _model(v):
    members = [_random_ratio(v["activation"], v["correction"] * (k + 1), seed=k) for k in range(v["members"])]
    return members[0] if v["members"] == 1 else RatioEnsemble(members, v["combination"])


def _inputs(n, seed=7, edges=True):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.gamma(2.0, 20.0, n), rng.uniform(0.001, 0.999, n), rng.normal(0, 1.5, n)])
    if edges:
        # the clip + logit edges; float32 cannot resolve 1 - 1e-6 (an O(1e-2) effect on log r),
        # so they are compared in float64 only
        x[:3, 1] = [0.0, 1.0, 1e-9]
    x[:, 2] = np.clip(x[:, 2], -4.9, 4.9)
    return x


def _reference64(model, x):
    """Independent float64 reference: fp64 deep copies of the float32 nets, numpy preprocessing."""
    members = model.members if isinstance(model, RatioEnsemble) else [model]
    y, _ = Preprocessing(STEPS).forward_numpy(x)
    logs = []
    for m in members:
        net64 = copy.deepcopy(m.net).double().eval()
        with torch.no_grad():
            logs.append(net64(torch.from_numpy(y)).numpy() + m.log_correction)
    logs = np.array(logs)
    if len(members) == 1:
        return logs[0], logs
    if model.combination == "mean_log":
        return logs.mean(axis=0), logs
    return np.log(np.exp(logs).mean(axis=0)), logs


def _variant_id(v):
    return f"{v['activation']}-{v['members']}-{v['combination']}"


@pytest.fixture(scope="module", params=VARIANTS, ids=_variant_id)
def exported(request, tmp_path_factory):
    v = request.param
    model = _model(v)
    path = tmp_path_factory.mktemp("ratio") / "ratio.onnx"
    export_ratio(model, path, reference_inputs=_inputs(300, 3, edges=False))
    return model, path, v


def test_core_matches_torch_float64(exported):
    model, path, v = exported
    x = _inputs(3000)
    want, members = _reference64(model, x)
    core = rooml.load(path)
    assert isinstance(core, _core.RatioModel)
    got = core.log_ratio(x)
    assert got.dtype == np.float64 and got.shape == (3000,)
    assert np.ptp(want) > 1.0  # a non-trivial function
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(core.ratio(x), np.exp(want), rtol=1e-12)
    np.testing.assert_allclose(core.member_log_ratios(x), members.T, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.log_ratio(x), want, rtol=0, atol=1e-12)


def test_core_matches_onnxruntime(exported):
    model, path, v = exported
    x = _inputs(2000, seed=8, edges=False).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    assert outputs == (["log_ratio", "member_log_ratio"] if v["members"] > 1 else ["log_ratio"])
    results = session.run(None, {"x": x})
    core = rooml.load(path)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(core.log_ratio(x64), results[0], rtol=0, atol=1e-4)
    if v["members"] > 1:
        np.testing.assert_allclose(core.member_log_ratios(x64), results[1], rtol=0, atol=1e-4)


def test_results_independent_of_thread_count(exported):
    _, path, _ = exported
    x = _inputs(2500, seed=9)  # not a multiple of the block size
    core = rooml.load(path)
    one = core.log_ratio(x, threads=1)
    for threads in (2, 3, 7):
        np.testing.assert_array_equal(core.log_ratio(x, threads=threads), one)
    np.testing.assert_array_equal(core.member_log_ratios(x, threads=3), core.member_log_ratios(x, threads=1))


def test_one_member_alone_equals_its_column(exported):
    """member_log_ratio(x, k) runs member k only and gives exactly column k of member_log_ratios."""
    _, path, v = exported
    x = _inputs(700, seed=10)
    core = rooml.load(path)
    all_members = core.member_log_ratios(x)
    for k in range(v["members"]):
        np.testing.assert_array_equal(core.member_log_ratio(x, k), all_members[:, k])
    with pytest.raises(Exception, match="member 9 of"):
        core.member_log_ratio(x, 9)


def test_metadata_contents(exported):
    model, path, v = exported
    meta = read_metadata(path)
    assert meta["kind"] == "ratio" and meta["output"] == "log_ratio"
    assert meta["features"] == FEATURES
    assert meta["support"] == [[0.0, None], [0.0, 1.0], [-5.0, 5.0]]
    assert meta["preprocessing"] == Preprocessing(STEPS).to_list()
    arch = meta["architecture"]
    assert arch["type"] == "mlp" and arch["combination"] == v["combination"]
    assert len(arch["members"]) == v["members"]
    layers = arch["members"][0]["layers"]
    assert [(layer["in"], layer["out"]) for layer in layers] == [(3, 24), (24, 16), (16, 1)]
    assert [layer["activation"] for layer in layers] == [v["activation"]] * 2 + ["linear"]
    assert [m["log_correction"] for m in arch["members"]] == pytest.approx(
        [v["correction"] * (k + 1) for k in range(v["members"])]
    )
    core = rooml.load(path)
    assert core.content_hash == meta["content_hash"]
    assert json.loads(core.metadata_json)["kind"] == "ratio"
    assert core.features == FEATURES and core.n_members == v["members"]
    assert core.combination == v["combination"]
    assert core.support_low == [0.0, 0.0, -5.0] and core.support_high[0] == math.inf


def test_graph_is_plain(exported):
    _, path, _ = exported
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"NonZero", "ScatterND", "GatherND", "Loop", "If"}
    graph = onnx.load(str(path)).graph
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in graph.input)


def test_from_bytes_matches_from_file(exported):
    _, path, _ = exported
    x = _inputs(100)
    from_bytes = _core.RatioModel.from_bytes(path.read_bytes(), "mem")
    np.testing.assert_array_equal(from_bytes.log_ratio(x), rooml.load(path).log_ratio(x))


@pytest.fixture(scope="module")
def single_file(tmp_path_factory):
    return export_ratio(_random_ratio(), tmp_path_factory.mktemp("single") / "r.onnx")


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((3, 2)), "expected 3 columns"),
        (np.zeros(3), "expected a 2-D array"),
        (np.array([[1.0, np.nan, 0.0]]), "not finite"),
        (np.array([[np.inf, 0.5, 0.0]]), "not finite"),
        (np.array([[-1.0, 0.5, 0.0]]), "outside the ratio model's support"),
        (np.array([[1.0, 0.5, 6.0]]), "'eta'"),
        (np.array([[1.0, 1.5, 0.0]]), "variable 'frac'"),
    ],
)
def test_bad_inputs_raise_clear_errors(single_file, x, message):
    with pytest.raises(ValueError, match=message):
        rooml.load(single_file).log_ratio(x)


def test_event_index_in_error(single_file):
    x = np.tile([[1.0, 0.5, 0.0]], (600, 1))
    x[517, 2] = 7.0
    with pytest.raises(ValueError, match="event 517, variable 'eta'"):
        rooml.load(single_file).log_ratio(x, threads=2)


def test_preprocessing_domain_error(tmp_path):
    """Without a support, an event outside the log's domain gives a clear NaN error."""
    model = _random_ratio()
    path = export_ratio(model, tmp_path / "r.onnx", support=[(-math.inf, math.inf)] * 3,
                        reference_inputs=_inputs(50, edges=False))  # fmt: skip
    with pytest.raises(ValueError, match="event 1, variable 'pt': value is outside the domain"):
        rooml.load(path).log_ratio(np.array([[1.0, 0.5, 0.0], [-3.0, 0.5, 0.0]]))


def test_kind_mismatch_between_flow_and_ratio(single_file, tmp_path):
    with pytest.raises(ValueError, match="model kind is 'ratio', not 'flow'"):
        _core.FlowModel.from_file(str(single_file))
    from flow_factory import random_flow

    flow_path = export_flow(random_flow("coupling", features=2), tmp_path / "flow.onnx")
    with pytest.raises(ValueError, match="model kind is 'flow', not 'ratio'"):
        _core.RatioModel.from_file(str(flow_path))
    assert isinstance(rooml.load(flow_path), _core.FlowModel)


def test_bad_files(single_file, tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(single_file.read_bytes()[:200])
    with pytest.raises(ValueError, match="not an ONNX model|truncated|parse"):
        rooml.load(cut)
    with pytest.raises(ValueError, match="cannot open"):
        _core.RatioModel.from_file(str(tmp_path / "missing.onnx"))
    proto = onnx.load(str(single_file))
    meta = next(p for p in proto.metadata_props if p.key == "rooml")
    doc = json.loads(meta.value)
    doc["architecture"]["members"][0]["layers"][1]["activation"] = "gelu"
    meta.value = json.dumps(doc)
    with pytest.raises(ValueError, match="unsupported activation 'gelu'"):
        _core.RatioModel.from_bytes(proto.SerializeToString())
    doc["architecture"]["members"][0]["layers"][1]["activation"] = "relu"
    doc["architecture"]["members"][0]["layers"][1]["name"] = "members.0.layers.7"
    meta.value = json.dumps(doc)
    with pytest.raises(ValueError, match="members.0.layers.7.weight"):
        _core.RatioModel.from_bytes(proto.SerializeToString())
    with pytest.raises(ModelFileError, match="content hash mismatch"):
        tampered = tmp_path / "tampered.onnx"
        tampered.write_bytes(proto.SerializeToString())
        read_metadata(tampered)


def test_refuses_to_overwrite(single_file):
    before = single_file.read_bytes()
    with pytest.raises(FileExistsError):
        export_ratio(_random_ratio(seed=5), single_file)
    assert single_file.read_bytes() == before
    export_ratio(_random_ratio(seed=5), single_file, overwrite=True)
    assert single_file.read_bytes() != before


def test_validation_failure_is_reported(tmp_path):
    with pytest.raises(ExportValidationError, match="disagree"):
        export_ratio(_random_ratio(), tmp_path / "r.onnx", tolerance=0.0)
    assert not (tmp_path / "r.onnx").exists()


def test_wrong_names_and_support(tmp_path):
    with pytest.raises(ValueError, match="2 feature names given for a model with 3 features"):
        export_ratio(_random_ratio(), tmp_path / "r.onnx", features=["a", "b"])
    with pytest.raises(ValueError, match="support has 1 entries"):
        export_ratio(_random_ratio(), tmp_path / "r.onnx", support=[(0, 1)])
    with pytest.raises(TypeError, match="TrainedRatio or RatioEnsemble"):
        export_ratio(object(), tmp_path / "r.onnx")


def test_save_load_round_trip(tmp_path):
    model = _random_ratio("silu", correction=0.3)
    model.save(tmp_path / "r.pt")
    back = TrainedRatio.load(tmp_path / "r.pt")
    x = _inputs(200)
    np.testing.assert_array_equal(back.log_ratio(x), model.log_ratio(x))
    ensemble = RatioEnsemble([model, _random_ratio("silu", seed=3)], "mean_log")
    ensemble.save(tmp_path / "e.pt")
    back = TrainedRatio.load(tmp_path / "e.pt")
    assert isinstance(back, RatioEnsemble) and back.combination == "mean_log"
    np.testing.assert_array_equal(back.log_ratio(x), ensemble.log_ratio(x))
