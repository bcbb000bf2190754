"""Adopt a foreign ONNX file (torch.onnx, tf2onnx, skl2onnx, onnxmltools) as a rooml model.

:func:`adopt_onnx` writes a copy of the graph with rooml metadata, after which
``rooml.load``, ``RooRatioFunction``, ``RooFlowPdf``, workspaces and macros use
it like a model rooml trained; the core evaluates the graph natively in double
precision (``rooml._core.GraphModel``).  The graph's input is the
*preprocessed* feature vector: rooml applies ``preprocessing`` first, as for
its own models.  Several source files make one ensemble file (members prefixed
``m0.``, ``m1.``, ...).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from rooml._version import __version__
from rooml.export.onnx_file import (
    FORMAT_VERSION,
    ExportValidationError,
    _attach_metadata,
    _json_bound,
    write_atomic,
)

__all__ = ["OUTPUT_KINDS", "RULES", "adopt_onnx"]

OUTPUT_KINDS = ("probability", "logit", "log_ratio", "ratio", "softmax")
RULES = {"mean_ratio": "mean", "mean_log_ratio": "mean_log", "median_ratio": "median"}


def _load(source):
    import onnx

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # DecodeError and friends
        raise ValueError(f"{path}: not an ONNX model ({exc})") from exc


def _inputs(model):
    initializers = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in initializers]


def _width(value) -> int:
    dims = value.type.tensor_type.shape.dim
    return int(np.prod([d.dim_value for d in dims[1:]])) if len(dims) > 1 else 1


def _tensor_outputs(model) -> list[str]:
    return [o.name for o in model.graph.output if o.type.HasField("tensor_type")]


def _ratio_output(output, model, source) -> dict:
    """Normalize ``output`` into ``{"kind", "tensor", "class", "reference"}`` for one member."""
    spec = {"kind": output} if isinstance(output, str) else dict(output)
    kind = spec.get("kind")
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"output kind {kind!r} is not one of {OUTPUT_KINDS}")
    names = _tensor_outputs(model)
    tensor = spec.get("tensor")
    if tensor is None:
        if len(names) != 1:
            raise ValueError(
                f"{source}: the graph has several outputs {names}; choose one with "
                f"output={{'kind': {kind!r}, 'tensor': name}}"
            )
        tensor = names[0]
    if tensor not in names:
        raise ValueError(f"{source}: the graph has no output {tensor!r} (its outputs: {names})")
    width = _width(next(o for o in model.graph.output if o.name == tensor))
    default_class = 1 if (kind == "probability" and width == 2) else 0
    cls = int(spec.get("class", default_class))
    reference = int(spec.get("reference", 0))
    if kind == "softmax" and "class" not in spec:
        raise ValueError(
            "output kind 'softmax' needs the class and the reference class: "
            "output={'kind': 'softmax', 'class': j, 'reference': k}"
        )
    if width == 1 and kind == "probability" and "class" not in spec:
        cls = 0
    for c in (cls, reference):
        if not 0 <= c < max(width, 1):
            raise ValueError(f"{source}: output {tensor!r} has {width} values per event; class {c} requested")
    return {"kind": kind, "tensor": tensor, "class": cls, "reference": reference}


def _steps(preprocessing, n_features: int, kind: str) -> list[dict]:
    """Rooml preprocessing steps from a rooml list or a fitted scikit-learn transformer."""
    from rooml.models.preprocessing import Preprocessing

    if preprocessing is None:
        return []
    if hasattr(preprocessing, "transform"):
        fitted = getattr(preprocessing, "n_features_in_", n_features)
        if fitted != n_features:
            raise ValueError(
                f"the scikit-learn preprocessing was fitted on {fitted} features, the model has {n_features}"
            )
        from rooml.export.sklearn_steps import steps_from_sklearn

        preprocessing = steps_from_sklearn(preprocessing, n_features, kind=kind)
    steps = Preprocessing.from_list(list(preprocessing)).to_list()
    for step in steps:
        if max(step["features"]) >= n_features:
            raise ValueError(
                f"preprocessing step {step['kind']!r} acts on feature {max(step['features'])}, "
                f"the model has {n_features} features"
            )
    return steps


def _merge(models):
    """One ONNX model holding every member graph, names prefixed ``m<k>.``."""
    import onnx
    from onnx import compose, helper

    if len(models) == 1:
        return models[0]
    prefixed = [compose.add_prefix(m, f"m{k}.") for k, m in enumerate(models)]
    versions: dict[str, int] = {}
    for m in models:
        for op in m.opset_import:
            versions[op.domain] = max(versions.get(op.domain, 0), op.version)
    graph = helper.make_graph(
        [n for m in prefixed for n in m.graph.node], "rooml_adopted_ensemble",
        [v for m in prefixed for v in _inputs(m)], [o for m in prefixed for o in m.graph.output],
        [i for m in prefixed for i in m.graph.initializer])  # fmt: skip
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in versions.items()])
    merged.ir_version = max(m.ir_version for m in models)
    onnx.checker.check_model(merged)
    return merged


def _reference_inputs(steps, support, n_features: int, n: int = 512, seed: int = 1234) -> np.ndarray:
    """Events in the bulk: normal (sigma 0.8) in network space, mapped back and clipped to the support."""
    from rooml.models.preprocessing import Preprocessing

    y = 0.8 * np.random.default_rng(seed).standard_normal((n, n_features))
    x = Preprocessing.from_list(steps).inverse_numpy(y) if steps else y
    lo = np.array([s[0] for s in support], dtype=float)
    hi = np.array([s[1] for s in support], dtype=float)
    return np.clip(x, lo, hi)


def _onnxruntime_outputs(model, z: np.ndarray, names: list[str], context=None) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for i, value in enumerate(session.get_inputs()):
        data = z if i == 0 or context is None else context
        dtype = np.float64 if value.type == "tensor(double)" else np.float32
        feeds[value.name] = np.asarray(data, dtype=dtype)
    return [np.asarray(v, dtype=np.float64) for v in session.run(names, feeds)]


def _log_ratio_numpy(values: np.ndarray, spec: dict) -> np.ndarray:
    v = values.reshape(len(values), -1)
    kind, c = spec["kind"], spec["class"]
    if kind == "probability":
        return np.log(v[:, c]) - np.log1p(-v[:, c])
    if kind in ("logit", "log_ratio"):
        return v[:, c]
    if kind == "ratio":
        return np.log(v[:, c])
    return np.log(v[:, c]) - np.log(v[:, spec["reference"]])


def _combine(logs: np.ndarray, combination: str) -> np.ndarray:
    if logs.shape[1] == 1:
        return logs[:, 0]
    if combination == "mean_log":
        return logs.mean(axis=1)
    if combination == "median":
        return np.log(np.median(np.exp(logs), axis=1))
    top = logs.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.mean(np.exp(logs - top), axis=1))


def _check(got: np.ndarray, want: np.ndarray, tolerance: float, what: str) -> None:
    """Raise ExportValidationError unless the core's values match onnxruntime's (and are finite)."""
    worst = float(np.max(np.abs(got - want) / (1.0 + np.abs(want))))
    if not np.isfinite(got).all() or not worst <= tolerance:
        raise ExportValidationError(
            f"rooml's core and onnxruntime disagree on the adopted {what}: "
            f"max |delta| / (1 + |value|) = {worst:.3g} > {tolerance:g}"
        )


def adopt_onnx(
    source,
    path: str | os.PathLike,
    *,
    kind: str,
    features: list[str],
    context: list[str] | None = None,
    output="probability",
    preprocessing=None,
    support: list[tuple[float, float]] | None = None,
    rule: str = "mean_ratio",
    reference_inputs=None,
    tolerance: float = 1e-4,
    overwrite: bool = False,
) -> Path:
    """Write a foreign ONNX model (or an ensemble of them) as a rooml model file.

    Parameters
    ----------
    source
        An ONNX file, or a list of files for an ensemble (``kind="ratio"``).
    path
        Output file; an existing file is replaced only with ``overwrite=True``.
    kind
        ``"ratio"`` (density-ratio network or classifier) or ``"flow"`` (the
        graph returns log p(x | context) of a normalized density, as declared
        by the user; it has no sampler).
    features, context
        Names of the graph's input columns (and of the flow's context inputs).
    output
        For ratios, what the graph returns: ``"probability"`` (score s,
        r = s / (1 - s)), ``"logit"`` / ``"log_ratio"`` (log r), ``"ratio"``, or
        a dict ``{"kind": ..., "tensor": name, "class": j, "reference": k}``
        (``"softmax"``: r = p_j / p_k; ``tensor`` picks one of several outputs).
        For flows, the name of the log-density output (default: the only one).
    preprocessing
        rooml preprocessing steps (``Preprocessing.to_list()`` form) or a fitted
        scikit-learn transformer (translated exactly, else refused), applied to
        the physical features before the graph.
    support
        ``(low, high)`` per feature (default: unbounded).
    rule
        Ensemble rule: ``"mean_ratio"``, ``"mean_log_ratio"`` or ``"median_ratio"``.
    reference_inputs
        Physical events (``x``, or ``(x, context)`` for flows) on which the core
        is checked against onnxruntime (default: 512 events in the bulk).
    tolerance
        Largest accepted ``|core - onnxruntime| / (1 + |value|)`` on log r or log p: onnxruntime runs the
        float32 graph in float32 (a sum over 500 trees drifts by ~1e-5), the core in double.
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from rooml import _core

    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if kind not in ("ratio", "flow"):
        raise ValueError(f"kind must be 'ratio' or 'flow', got {kind!r}")
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise ValueError("no source ONNX file given")
    if kind == "flow" and len(sources) != 1:
        raise ValueError("an adopted flow is one ONNX file")
    if rule not in RULES:
        raise ValueError(f"unknown ensemble rule {rule!r}; use one of {sorted(RULES)}")
    features, context = list(features), list(context or [])
    n_features = len(features)
    models = [_load(s) for s in sources]
    for src, model in zip(sources, models):
        inputs = _inputs(model)
        wanted = 2 if context else 1
        if len(inputs) != wanted:
            raise ValueError(
                f"{src}: the graph has inputs {[v.name for v in inputs]}; expected {wanted} "
                f"({'features and context' if context else 'the features'})"
            )
        if _width(inputs[0]) != n_features:
            raise ValueError(
                f"{src}: graph input {inputs[0].name!r} takes {_width(inputs[0])} values per event, "
                f"but {n_features} features are named {features}"
            )
        if context and _width(inputs[1]) != len(context):
            raise ValueError(
                f"{src}: graph input {inputs[1].name!r} takes {_width(inputs[1])} values per event, "
                f"but {len(context)} context variables are named {context}"
            )
    steps = _steps(preprocessing, n_features, kind)
    support = list(support) if support is not None else [(-math.inf, math.inf)] * n_features
    if len(support) != n_features:
        raise ValueError(f"support has {len(support)} entries for {n_features} features")
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "rooml_version": __version__,
        "features": features,
        "preprocessing": steps,
        "support": [[_json_bound(lo), _json_bound(hi)] for lo, hi in support],
        "adopted_from": [
            {"file": Path(s).name, "producer": m.producer_name, "producer_version": m.producer_version}
            for s, m in zip(sources, models)
        ],  # fmt: skip
    }
    merged = _merge(models)
    prefixes = [""] if len(models) == 1 else [f"m{k}." for k in range(len(models))]
    if kind == "ratio":
        specs = [_ratio_output(output, m, s) for m, s in zip(models, sources)]
        combination = RULES[rule]
        metadata["output"] = "log_ratio"
        metadata["architecture"] = {
            "type": "graph",
            "combination": combination,
            "members": [
                {
                    "output": p + s["tensor"],
                    "output_kind": s["kind"],
                    "class": s["class"],
                    "reference": s["reference"],
                }
                for p, s in zip(prefixes, specs)
            ],  # fmt: skip
        }
    else:
        names = _tensor_outputs(models[0])
        tensor = output if output in names else (names[0] if len(names) == 1 else None)
        if tensor is None:
            raise ValueError(
                f"{sources[0]}: the graph has several outputs {names}; name the log-density with output="
            )
        inputs = _inputs(models[0])
        metadata["context"] = context
        metadata["architecture"] = {"type": "graph", "input": inputs[0].name, "output": tensor,
                                    "context_input": inputs[1].name if context else None,
                                    "normalized": "declared by the user"}  # fmt: skip
    data = _attach_metadata(merged.SerializeToString(), metadata, {})
    label = ", ".join(str(s) for s in sources)  # names the source files in the core's errors

    from rooml.models.preprocessing import Preprocessing

    if kind == "ratio":
        x = np.asarray(reference_inputs if reference_inputs is not None else
                       _reference_inputs(steps, support, n_features), dtype=np.float64)  # fmt: skip
        core = _core.RatioModel.from_bytes(data, label)
        got = core.log_ratio(x)
        z = Preprocessing.from_list(steps).forward_numpy(x)[0] if steps else x
        logs = np.stack([_log_ratio_numpy(_onnxruntime_outputs(m, z, [s["tensor"]])[0], s)
                         for m, s in zip(models, specs)], axis=1)  # fmt: skip
        _check(got, _combine(logs, RULES[rule]), tolerance, "ratio model (log r)")
    else:
        if reference_inputs is None:
            x = _reference_inputs(steps, support, n_features)
            ctx = np.random.default_rng(7).normal(size=(len(x), len(context))) if context else None
        else:
            x, ctx = reference_inputs if isinstance(reference_inputs, tuple) else (reference_inputs, None)
        x = np.asarray(x, dtype=np.float64)
        core = _core.FlowModel.from_bytes(data, label)
        try:
            got = core.log_prob(x, ctx)
        except ValueError as exc:
            raise ValueError(
                f"{sources[0]}: the log_prob graph is not finite on the support ({exc})"
            ) from exc
        if not np.isfinite(got).all():
            bad = int(np.flatnonzero(~np.isfinite(got))[0])
            raise ValueError(
                f"{sources[0]}: the log_prob graph is not finite on the support (event {bad}, "
                f"x = {x[bad].tolist()}, log p = {got[bad]})"
            )
        z, logdet = Preprocessing.from_list(steps).forward_numpy(x) if steps else (x, 0.0)
        want = _onnxruntime_outputs(models[0], z, [tensor], ctx)[0].reshape(len(x)) + logdet
        _check(got, want, tolerance, "flow (log p)")
    return write_atomic(path, data, overwrite=overwrite)
