"""ONNX export: metadata, graph hygiene, and clear errors for bad models and files."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import rooml
import torch
from flow_factory import random_flow
from nflows.distributions import StandardNormal
from nflows.flows import Flow
from nflows.transforms import AdditiveCouplingTransform, CompositeTransform
from rooml.export import ModelFileError, UnsupportedModelError, export_flow, read_metadata


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory):
    flow = random_flow("coupling", features=2, context=1, lu=True)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("export") / "flow.onnx"
    export_flow(flow, path, features=["mgg", "ptbb"], context=["m"], support=[(0.0, np.inf), (-5.0, 5.0)],
                reference_inputs=(np.abs(rng.normal(size=(64, 2))), rng.normal(size=(64, 1))))
    return path


def test_metadata_contents(flow_file):
    meta = read_metadata(flow_file)
    assert meta["kind"] == "flow"
    assert meta["features"] == ["mgg", "ptbb"]
    assert meta["context"] == ["m"]
    assert meta["support"] == [[0.0, None], [-5.0, 5.0]]
    assert meta["rooml_version"] == rooml.__version__
    assert len(meta["content_hash"]) == 64
    assert meta["preprocessing"] == []
    types = [t["type"] for t in meta["architecture"]["transforms"]]
    assert types.count("rq_coupling") == 3 and types.count("lu_linear") == 3


def test_graph_has_static_shapes_only(flow_file):
    ops = {node.op_type for node in onnx.load(str(flow_file)).graph.node}
    assert not ops & {"NonZero", "ScatterND", "GatherND", "Softplus"}


def test_core_reports_names_and_support(flow_file):
    model = rooml.load(flow_file)
    assert model.features == ["mgg", "ptbb"] and model.context == ["m"]
    assert model.support_low == [0.0, -5.0]
    assert model.support_high[0] == np.inf


def test_refuses_to_overwrite(flow_file):
    before = flow_file.read_bytes()
    with pytest.raises(FileExistsError):
        export_flow(random_flow("coupling", features=2), flow_file)
    assert flow_file.read_bytes() == before


@pytest.mark.parametrize(
    "x, context, message",
    [
        (np.zeros((3, 3)), np.zeros((3, 1)), "expected 2 columns"),
        (np.array([[1.0, np.nan]]), np.zeros((1, 1)), "not finite"),
        (np.array([[1.0, np.inf]]), np.zeros((1, 1)), "not finite"),
        (np.array([[-1.0, 0.0]]), np.zeros((1, 1)), "outside the flow's support"),
        (np.array([[1.0, 6.0]]), np.zeros((1, 1)), "'ptbb'"),
        (np.array([[1.0, 0.0]]), np.array([[np.nan]]), "context value is not finite"),
        (np.array([[1.0, 0.0]]), None, "needs context"),
        (np.array([[1.0, 0.0]]), np.zeros((2, 1)), "2 rows for 1 events"),
    ],
)
def test_bad_inputs_raise_clear_errors(flow_file, x, context, message):
    with pytest.raises(ValueError, match=message):
        rooml.load(flow_file).log_prob(x, context)


def test_event_index_in_error(flow_file):
    x = np.ones((10, 2))
    x[7, 1] = np.nan
    with pytest.raises(ValueError, match="event 7, variable 'ptbb'"):
        rooml.load(flow_file).log_prob(x, np.zeros((10, 1)))


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model")
    with pytest.raises(ValueError, match="not an ONNX model"):
        rooml.load(bad)
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        read_metadata(bad)


def test_truncated_file(flow_file, tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(flow_file.read_bytes()[:5000])
    with pytest.raises(ValueError, match="not an ONNX model"):
        rooml.load(cut)


def test_onnx_without_rooml_metadata(flow_file, tmp_path):
    proto = onnx.load(str(flow_file))
    del proto.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(proto, str(plain))
    with pytest.raises(ValueError, match="without rooml metadata"):
        rooml.load(plain)
    with pytest.raises(ModelFileError, match="without rooml metadata"):
        read_metadata(plain)


def test_tampered_metadata_fails_hash(flow_file, tmp_path):
    proto = onnx.load(str(flow_file))
    for prop in proto.metadata_props:
        if prop.key == "rooml":
            doc = json.loads(prop.value)
            doc["features"] = ["a", "b"]
            prop.value = json.dumps(doc)
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    with pytest.raises(ModelFileError, match="content hash mismatch"):
        read_metadata(tampered)


def test_unsupported_transform_is_named(tmp_path):
    from nflows.nn.nets import ResidualNet

    transform = AdditiveCouplingTransform([0, 1], lambda a, b: ResidualNet(a, b, 8))
    flow = Flow(CompositeTransform([transform]), StandardNormal([2]))
    target = tmp_path / "affine.onnx"
    with pytest.raises(UnsupportedModelError, match="AdditiveCouplingTransform"):
        export_flow(flow, target)
    assert not target.exists()


def test_metadata_mismatch_names(tmp_path):
    flow = random_flow("coupling", features=2)
    with pytest.raises(ValueError, match="3 feature names given for a flow with 2 features"):
        export_flow(flow, tmp_path / "f.onnx", features=["a", "b", "c"])


def test_export_validation_catches_disagreement(tmp_path, monkeypatch):
    """A mirror that disagrees with nflows is refused and nothing is written."""
    from rooml.export import ExportValidationError, onnx_file

    flow = random_flow("coupling", features=2)
    original = onnx_file._torch_log_prob64
    monkeypatch.setattr(onnx_file, "_torch_log_prob64", lambda *a: original(*a) + 0.01)
    with pytest.raises(ExportValidationError, match="disagree"):
        export_flow(flow, tmp_path / "f.onnx", reference_inputs=(np.zeros((4, 2)), None))
    assert not (tmp_path / "f.onnx").exists()
    assert torch.is_tensor(next(flow.parameters()))
