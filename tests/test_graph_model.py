"""The general ONNX graph evaluator (rooml._core.GraphModel) on foreign models and hand-built graphs.

References: onnxruntime's outputs stored with each fixture (float32 models,
compared at 1e-5 of 1 + |value|, onnxruntime's own float32 rounding), onnx's
numpy reference evaluator on the same weights widened to float64 (1e-12
relative), and onnxruntime in float64 for the hand-built operator graphs.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from foreign_models import FOREIGN, close_to_onnxruntime, fixture, float64_reference
from onnx import TensorProto, helper, numpy_helper
from rooml import _core

FIXTURES = sorted(p.stem for p in FOREIGN.glob("*.onnx"))
MLPS = [
    "torch_mlp_opset13",
    "torch_mlp_opset17",
    "torch_mlp_dynamo",
    "keras_sequential",
    "keras_functional",
    "sklearn_mlp",
    "sklearn_pipeline",
    "sklearn_logistic",
]


def test_every_exporter_has_fixtures():
    """Fixtures of torch.onnx (TorchScript, dynamo), tf2onnx, skl2onnx and onnxmltools (XGBoost, LightGBM)."""
    for prefix in (
        "torch_mlp_opset13",
        "torch_mlp_opset17",
        "torch_ops_opset13",
        "torch_ops_opset17",
        "torch_mlp_dynamo",
        "torch_ops_dynamo",
        "keras_sequential",
        "keras_functional",
        "sklearn_mlp",
        "sklearn_logistic",
        "sklearn_pipeline",
        "xgboost_classifier",
        "lightgbm_classifier",
    ):
        assert prefix in FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_core_agrees_with_onnxruntime(name):
    path, ref = fixture(name)
    graph = _core.GraphModel(str(path))
    outputs = [k[4:] for k in ref if k.startswith("out:")]
    assert outputs and set(outputs) <= set(graph.outputs)
    for output in outputs:
        got = graph.evaluate(ref["x"], output=output)
        want = ref[f"out:{output}"]
        assert got.dtype == np.float64
        if "label" in output:
            np.testing.assert_array_equal(got.reshape(want.shape), want)
        else:
            assert close_to_onnxruntime(got, want) < 1e-5


@pytest.mark.parametrize("name", MLPS)
def test_core_agrees_with_float64_evaluation(name):
    path, ref = fixture(name)
    graph = _core.GraphModel(str(path))
    output = [o for o in graph.outputs if "label" not in o][0]
    want = float64_reference(path, ref["x"], output)
    got = graph.evaluate(ref["x"], output=output).reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_dense_chains_run_on_the_packed_kernels():
    """Every Gemm and activation of the torch MLP (SiLU as Sigmoid + Mul) is fused."""
    path, _ = fixture("torch_mlp_opset17")
    model = onnx.load(str(path))
    assert _core.GraphModel(str(path)).n_fused_nodes == len(model.graph.node)


@pytest.mark.parametrize(
    "name",
    [
        "torch_mlp_opset17",
        "torch_ops_opset17",
        "torch_ops_dynamo",
        "xgboost_classifier",
        "keras_functional",
        "lightgbm_classifier",
    ],
)
def test_bit_identical_for_any_thread_count(name):
    path, ref = fixture(name)
    graph = _core.GraphModel(str(path))
    output = graph.outputs[-1]
    x = np.tile(ref["x"], (3, 1))[:1537]
    one = graph.evaluate(x, output=output, threads=1)
    for threads in (2, 3, 7):
        np.testing.assert_array_equal(graph.evaluate(x, output=output, threads=threads), one)
    np.testing.assert_array_equal(graph.evaluate(x[:5], output=output), one[:5])


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _double(name, *dims):
    return helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["batch", *dims])


def _run_both(model, x, output):
    data = model.SerializeToString()
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run([output], {"x": x})[0]
    got = _core.GraphModel.from_bytes(data, "ops.onnx").evaluate(x, output=output)
    return got, want


def _const(name, values, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def test_shape_and_broadcasting_operators_match_onnxruntime_in_float64():
    """Slices (negative steps), gathers, splits, transposes, expands, three-way Where, reductions, CumSum."""
    nodes = [
        helper.make_node("Slice", ["x", "s0", "e0", "a1", "st"], ["sl"]),  # columns 4..1 backwards
        helper.make_node("Gather", ["x", "idx"], ["ga"], axis=1),
        helper.make_node("Split", ["x", "sp"], ["p0", "p1"], axis=1),
        helper.make_node("Unsqueeze", ["p0", "a2"], ["u"]),
        helper.make_node("Expand", ["u", "shape3"], ["ex"]),
        helper.make_node("Transpose", ["ex"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("ReduceSum", ["tr", "a1"], ["rs"], keepdims=0),
        helper.make_node("Flatten", ["rs"], ["fl"], axis=1),
        helper.make_node("Greater", ["p1", "half"], ["gt"]),
        helper.make_node("Where", ["gt", "p1", "row"], ["wh"]),
        helper.make_node("CumSum", ["sl", "ax1"], ["cs"], exclusive=1, reverse=1),
        helper.make_node("ReduceLogSumExp", ["ga"], ["lse"], axes=[1], keepdims=1),
        helper.make_node("Softmax", ["cs"], ["sm"], axis=1),
        helper.make_node("Concat", ["fl", "wh", "cs", "lse", "sm"], ["cat"], axis=1),
        helper.make_node("Max", ["cat", "row9"], ["mx"]),
        helper.make_node("Pow", ["mx", "two"], ["y"]),
    ]
    inits = [
        _const("s0", [-1]),
        _const("e0", [0]),
        _const("a1", [1]),
        _const("st", [-1]),
        _const("a2", [2]),
        _const("idx", [3, -4, 1]),
        _const("sp", [2, 3]),
        _const("shape3", [1, 2, 3]),
        _const("ax1", 1),
        _const("half", 0.5, np.float64),
        _const("row", [[0.1, -0.2, 0.3]], np.float64),
        _const("row9", np.linspace(-1, 1, 14), np.float64),
        _const("two", 2.0, np.float64),
    ]
    model = _model(nodes, [_double("x", 5)], [_double("y", 14)], inits)
    x = np.random.default_rng(3).normal(size=(700, 5))
    got, want = _run_both(model, x, "y")
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize(
    "op,attrs",
    [
        ("Elu", {"alpha": 0.7}),
        ("Selu", {}),
        ("Celu", {"alpha": 1.3}),
        ("HardSigmoid", {}),
        ("LeakyRelu", {"alpha": 0.2}),
        ("Softsign", {}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("Erf", {}),
        ("Softplus", {}),
        ("Gelu", {"approximate": "tanh"}),
        ("Mish", {}),
    ],
)
def test_activations_match_onnxruntime(op, attrs):
    opset = 20 if op == "Gelu" else 18
    model = _model(
        [helper.make_node(op, ["x"], ["y"], **attrs)], [_double("x", 3)], [_double("y", 3)], opset=opset
    )
    x = np.random.default_rng(4).normal(scale=3.0, size=(300, 3))
    try:
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            ["y"], {"x": x}
        )[0]
    except Exception:  # onnxruntime's CPU provider lacks some double kernels: compare with float32
        model32 = onnx.load_from_string(model.SerializeToString())
        for v in list(model32.graph.input) + list(model32.graph.output):
            v.type.tensor_type.elem_type = TensorProto.FLOAT
        want = ort.InferenceSession(model32.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            ["y"], {"x": x.astype(np.float32)}
        )[0]
        x = x.astype(np.float32).astype(np.float64)
        got = _core.GraphModel.from_bytes(model.SerializeToString()).evaluate(x)
        assert close_to_onnxruntime(got, want) < 1e-6
        return
    got = _core.GraphModel.from_bytes(model.SerializeToString()).evaluate(x)
    if op == "Gelu":  # onnxruntime's double kernel rounds its constants to float32: use the formula
        want = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_unsupported_operator_is_named_with_node_and_file(tmp_path):
    model = _model(
        [helper.make_node("Sin", ["x"], ["y"], name="my_sine")], [_double("x", 2)], [_double("y", 2)]
    )
    path = tmp_path / "sine.onnx"
    onnx.save(model, str(path))
    with pytest.raises(
        ValueError, match=r"unsupported ONNX operator 'Sin' in node 'my_sine' of .*sine\.onnx"
    ):
        _core.GraphModel(str(path))


def test_several_outputs_need_a_choice():
    path, ref = fixture("xgboost_classifier")
    graph = _core.GraphModel(str(path))
    with pytest.raises(ValueError, match="several outputs.*output="):
        graph.evaluate(ref["x"])
    with pytest.raises(ValueError, match="no output 'prob'"):
        graph.evaluate(ref["x"], output="prob")


def test_fixed_batch_and_wrong_width_are_refused():
    fixed = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 2])
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [fixed], [_double("y", 2)])
    with pytest.raises(ValueError, match="fixed batch size of 1"):
        _core.GraphModel.from_bytes(model.SerializeToString())
    path, _ = fixture("torch_mlp_opset17")
    with pytest.raises(ValueError, match="expected 4 values per event"):
        _core.GraphModel(str(path)).evaluate(np.zeros((3, 5)))
