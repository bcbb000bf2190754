"""Helpers for the foreign-model tests: fixture files and an independent float64 evaluation.

The fixtures in ``tests/data/foreign`` are written by ``make_foreign_models.py``
there.  :func:`float64_reference` runs onnx's own reference evaluator (numpy)
on a copy of a graph whose float32 tensors are widened to float64, giving the
same weights evaluated in double precision by code independent of rooml.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FOREIGN = Path(__file__).resolve().parent / "data" / "foreign"

__all__ = ["FOREIGN", "close_to_onnxruntime", "fixture", "float64_reference"]


def fixture(name: str) -> tuple[Path, dict[str, np.ndarray]]:
    """Path of ``name.onnx`` and its reference arrays (``x`` and ``out:<output>``)."""
    data = np.load(FOREIGN / f"{name}.npz")
    return FOREIGN / f"{name}.onnx", {k: data[k] for k in data.files}


def close_to_onnxruntime(got, want, tolerance: float = 1e-5) -> float:
    """Largest ``|got - want| / (1 + |want|)`` (float32 rounding of O(1) values is absolute)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got.reshape(want.shape) - want) / (1.0 + np.abs(want))))


def _widen_tensor(tensor) -> None:
    from onnx import TensorProto, numpy_helper

    if tensor.data_type == TensorProto.FLOAT:
        tensor.CopyFrom(
            numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name)
        )


def float64_reference(path: Path, x: np.ndarray, output: str) -> np.ndarray:
    """Output ``output`` of the graph at ``path`` on ``x``, float tensors in float64 (onnx.reference)."""
    import onnx
    from onnx import TensorProto
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    graph = model.graph
    for init in graph.initializer:
        _widen_tensor(init)
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                _widen_tensor(attr.t)
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    session = ReferenceEvaluator(model)
    return np.asarray(session.run([output], {graph.input[0].name: np.asarray(x, dtype=np.float64)})[0])
