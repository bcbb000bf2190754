"""Write trained flows to ``.onnx`` files with rooml metadata, and read that metadata back.

The file is a normal ONNX model that onnxruntime runs: float64 inputs ``x``
and optionally ``context``, float64 output ``log_prob``; preprocessing and the
final sum run in float64, the network in float32.  Its ``metadata_props``
carry the key ``rooml``: a JSON document with the model kind, feature and
context names, preprocessing, support bounds, the architecture that rooml's
C++ core evaluates natively, and the rooml version; ``rooml_content_hash`` is
the SHA-256 of the graph and that document.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from rooml._files import atomic_output
from rooml._version import __version__
from rooml.export._describe import UnsupportedModelError, describe_flow
from rooml.export._graph import ExportFlow
from rooml.export._zuko import (
    ExportZukoFlow,
    describe_zuko_flow,
    is_zuko_flow,
    zuko_log_prob,
    zuko_n_features,
    zuko_sample,
)

__all__ = [
    "FORMAT_VERSION",
    "ExportValidationError",
    "ModelFileError",
    "UnsupportedModelError",
    "check_agreement",
    "content_hash",
    "export_flow",
    "read_metadata",
    "run_onnxruntime",
    "sample_flow",
    "write_atomic",
]

FORMAT_VERSION = 1
METADATA_KEY = "rooml"
HASH_KEY = "rooml_content_hash"


class ModelFileError(ValueError):
    """A model file is missing, corrupt, not ONNX, or lacks rooml metadata."""


class ExportValidationError(RuntimeError):
    """onnxruntime disagrees with torch on the exported model."""


def content_hash(graph_bytes: bytes, metadata_json: str) -> str:
    """SHA-256 over the serialized ONNX graph and the rooml metadata document."""
    digest = hashlib.sha256()
    digest.update(graph_bytes)
    digest.update(metadata_json.encode())
    return digest.hexdigest()


def write_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename.

    An existing file is only replaced when ``overwrite`` is true, so a failed or
    refused export never destroys what the user had; the file gets the umask's
    permissions (``rooml._files.atomic_output``).
    """
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return path


def _json_bound(value: float):
    return None if not math.isfinite(value) else float(value)


def _unwrap(model):
    """Accept a rooml ``TrainedFlow`` or a bare nflows ``Flow``."""
    if hasattr(model, "flow") and hasattr(model, "preprocessing"):
        pre = model.preprocessing.to_list() if model.preprocessing is not None else []
        return model.flow, pre, list(model.features), list(model.context_names or []), model.support
    return model, [], None, None, None


def _nflows_base_sample(distribution, n: int, context, generator, dtype) -> torch.Tensor:
    """Draw from an nflows base distribution (``DiagonalNormal`` has no sampler of its own)."""
    eps = torch.randn((n, *tuple(distribution._shape)), generator=generator, dtype=dtype)
    name = type(distribution).__name__
    if name == "DiagonalNormal":
        return distribution.mean_ + torch.exp(distribution.log_std_) * eps
    if name == "ConditionalDiagonalNormal":
        params = distribution._context_encoder(context.to(eps.dtype))
        d = params.shape[-1] // 2
        return params[:, :d] + torch.exp(params[:, d:]) * eps
    return eps


def sample_flow(flow, n: int, context, seed: int = 1234) -> torch.Tensor:
    """``n`` flow-space samples of an nflows or zuko flow (one per context row, if given)."""
    from rooml.models.flows import quiet_nflows

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad(), quiet_nflows():
        if is_zuko_flow(flow):
            with torch.random.fork_rng():  # zuko samples from the global generator; leave the user's alone
                torch.manual_seed(seed)
                return zuko_sample(flow, n, context)
        dtype = next(flow.parameters()).dtype
        ctx = context.to(dtype) if context is not None else None
        z = _nflows_base_sample(flow._distribution, n, ctx, gen, dtype)
        return flow._transform.inverse(z, context=ctx)[0]


def _reference_inputs(flow, pre, n_features, n_context, n=256, seed=1234, context_sample=None):
    """Physical-space events to validate the export on: the flow's own samples.

    Context values come from ``context_sample`` (training rows kept by
    ``train_flow``) when given, else from a standard normal.
    """
    gen = torch.Generator().manual_seed(seed)
    if n_context and context_sample is not None:
        rows = torch.as_tensor(np.asarray(context_sample, dtype=np.float32))
        context = rows[torch.randint(len(rows), (n,), generator=gen)]
    else:
        context = torch.randn(n, n_context, generator=gen) if n_context else None
    z = sample_flow(flow, n, context, seed)
    y = z.double().numpy()
    if not pre:
        return y, (context.double().numpy() if context is not None else None)
    from rooml.models.preprocessing import Preprocessing

    x = Preprocessing.from_list(pre).inverse_numpy(y)
    return x, (context.double().numpy() if context is not None else None)


def export_flow(
    model,
    path: str | os.PathLike,
    *,
    features: list[str] | None = None,
    context: list[str] | None = None,
    support: list[tuple[float, float]] | None = None,
    preprocessing=None,
    reference_inputs: tuple[np.ndarray, np.ndarray | None] | None = None,
    tolerance: float = 1e-4,
    overwrite: bool = False,
    opset: int = 17,
    network_dtype: str = "float32",
) -> Path:
    """Export a flow to an ``.onnx`` file that onnxruntime and rooml's core both run.

    Parameters
    ----------
    model
        A rooml ``TrainedFlow``, an nflows ``Flow`` built from supported parts, or a
        zuko flow (``zuko.flows.NSF`` / ``MAF``).
    path
        Output file.  An existing file is replaced only with ``overwrite=True``.
    features, context
        Names of the physical features and context variables (default: from the
        ``TrainedFlow``, else ``x0, x1, ...`` and ``c0, c1, ...``).
    support
        ``(low, high)`` per feature; events outside are rejected at evaluation.
    preprocessing
        Preprocessing steps (``Preprocessing.to_list()`` form) for a bare flow, or a
        fitted scikit-learn transformer translated by
        :func:`rooml.export.sklearn_steps.steps_from_sklearn` (its Jacobian is included).
    reference_inputs
        ``(x, context)`` used to check onnxruntime against torch; default: the
        flow's own samples.
    tolerance
        Largest accepted ``|log_prob_onnxruntime - log_prob_torch| / (1 + |log_prob|)``.
    network_dtype
        ``"float32"`` (default) or ``"float64"``: the precision of the network in the
        ONNX graph that onnxruntime runs.  The weights keep their float32 values
        either way, so rooml's core (always float64) computes the same; a float64
        graph agrees with it to rounding (useful for deep flows with many spline
        bins, whose float32 graph can miss the default tolerance).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    flow, pre, names, ctx_names, model_support = _unwrap(model)
    if network_dtype not in ("float32", "float64"):
        raise ValueError(f"network_dtype must be 'float32' or 'float64', not {network_dtype!r}")
    flow = copy.deepcopy(flow).float().cpu().eval()
    if network_dtype == "float64":
        flow = flow.double()
    zuko = is_zuko_flow(flow)
    n_features = zuko_n_features(flow) if zuko else _n_features(flow)
    pre = _preprocessing_steps(preprocessing, n_features) if preprocessing is not None else pre
    if zuko:
        architecture = describe_zuko_flow(flow, "flow")
        state = {f"flow.{k}": v for k, v in flow.state_dict().items()}
    else:
        architecture = describe_flow(flow, "transform", "distribution")
        state = {f"transform.{k}": v for k, v in flow._transform.state_dict().items()}
        state.update({f"distribution.{k}": v for k, v in flow._distribution.state_dict().items()})
    n_context = _n_context(architecture)
    features = list(features or names or [f"x{i}" for i in range(n_features)])
    context = list(context or ctx_names or [f"c{i}" for i in range(n_context)])
    if len(features) != n_features:
        raise ValueError(f"{len(features)} feature names given for a flow with {n_features} features")
    if len(context) != n_context:
        raise ValueError(f"{len(context)} context names given for a flow with {n_context} context variables")
    support = support if support is not None else model_support
    support = support if support is not None else [(-math.inf, math.inf)] * n_features
    if len(support) != n_features:
        raise ValueError(f"support has {len(support)} entries, the flow has {n_features} features")

    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": "flow",
        "rooml_version": __version__,
        "features": features,
        "context": context,
        "preprocessing": pre,
        "support": [[_json_bound(lo), _json_bound(hi)] for lo, hi in support],
        "architecture": architecture,
    }
    module = (ExportZukoFlow if zuko else ExportFlow)(flow, pre, n_context).eval()
    onnx_bytes = _trace(module, n_features, n_context, opset)
    data = _attach_metadata(onnx_bytes, metadata, state)

    x_ref, c_ref = reference_inputs or _reference_inputs(flow, pre, n_features, n_context,
                                                         context_sample=getattr(model, "context_sample", None))
    _validate(data, flow, pre, x_ref, c_ref, tolerance)
    return write_atomic(path, data, overwrite=overwrite)


def _n_features(flow) -> int:
    return int(np.prod(flow._distribution._shape))


def _preprocessing_steps(preprocessing, n_features: int) -> list[dict]:
    """Return rooml's step list from a list of steps or a fitted scikit-learn transformer."""
    if isinstance(preprocessing, (list, tuple)):
        return list(preprocessing)
    if hasattr(preprocessing, "to_list"):
        return preprocessing.to_list()
    from rooml.export.sklearn_steps import steps_from_sklearn

    return steps_from_sklearn(preprocessing, n_features, kind="flow")


def _n_context(architecture) -> int:
    """Context variables of a flow: those of its conditioned transforms and base (0 if none)."""
    nets = [t["net"] for t in architecture["transforms"] if "net" in t]
    nets += [architecture["base_encoder"]] if "base_encoder" in architecture else []
    counts = {int(net["context"]) for net in nets} - {0}
    if len(counts) > 1:
        raise UnsupportedModelError(
            f"the flow's parts take different numbers of context variables {sorted(counts)}"
        )
    return counts.pop() if counts else 0


def _trace(module, n_features: int, n_context: int, opset: int, outputs: tuple[str, ...] = ("log_prob",)) -> bytes:
    x = torch.randn(4, n_features, dtype=torch.float64)
    args = (x,) if not n_context else (x, torch.randn(4, n_context, dtype=torch.float64))
    inputs = ["x"] if not n_context else ["x", "context"]
    axes = {name: {0: "events"} for name in inputs + list(outputs)}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buffer,
            input_names=inputs,
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=False,
            dynamo=False,
        )
    return buffer.getvalue()


# Buffers whose content the architecture document already carries.
_DESCRIBED_IN_METADATA = {"degrees", "identity_features", "transform_features", "_permutation", "order"}


def _resolve_tensor_names(proto, state: dict) -> dict:
    """Make every state tensor findable by its name in the ONNX file.

    The torch exporter merges initializers with identical values (e.g. equal MADE
    masks), keeping one name.  Such names are recorded as aliases of the kept
    initializer; a tensor the graph does not use at all is added as an initializer.
    """
    from onnx import numpy_helper

    present = {init.name: init for init in proto.graph.initializer}
    by_content: dict[tuple, str] = {}
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        by_content.setdefault((arr.dtype.str, arr.shape, arr.tobytes()), init.name)
    # the exporter names a merged tensor's other uses by Identity nodes of the kept initializer
    copies = {n.output[0]: n.input[0] for n in proto.graph.node
              if n.op_type == "Identity" and n.input[0] in present}
    aliases = {}
    for name, tensor in state.items():
        if name in present or name.rsplit(".", 1)[-1] in _DESCRIBED_IN_METADATA:
            continue
        if name in copies:
            aliases[name] = copies[name]
            continue
        arr = tensor.detach().cpu().numpy()
        arr = arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.int64)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in by_content:
            aliases[name] = by_content[key]
        else:
            proto.graph.initializer.append(numpy_helper.from_array(arr, name))
            by_content[key] = name
    return aliases


def _attach_metadata(onnx_bytes: bytes, metadata: dict, state: dict) -> bytes:
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    metadata = dict(metadata, tensor_aliases=_resolve_tensor_names(proto, state))
    text = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(
        proto,
        {METADATA_KEY: text, HASH_KEY: content_hash(proto.graph.SerializeToString(), text)},
    )
    proto.producer_name = "rooml"
    proto.producer_version = __version__
    return proto.SerializeToString()


def _torch_log_prob64(flow, pre, x, context):
    flow64 = copy.deepcopy(flow).double().eval()
    y, logdet = x, 0.0
    if pre:
        from rooml.models.preprocessing import Preprocessing

        y, logdet = Preprocessing.from_list(pre).forward_numpy(x)
    with torch.no_grad():
        ctx = torch.as_tensor(context, dtype=torch.float64) if context is not None else None
        y = torch.as_tensor(y, dtype=torch.float64)
        if is_zuko_flow(flow64):
            lp = zuko_log_prob(flow64, y, ctx).numpy()
        else:
            lp = flow64.log_prob(y, context=ctx).numpy()
    return lp + logdet


def run_onnxruntime(data: bytes, x, context=None, outputs=("log_prob",)) -> list[np.ndarray]:
    """Run an exported flow graph with onnxruntime's CPU provider (float64 inputs)."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {"x": np.asarray(x, dtype=np.float64)}
    if context is not None:
        feeds["context"] = np.asarray(context, dtype=np.float64)
    return session.run(list(outputs), feeds)


_FLOW_HINT = (" (a deep flow's float32 graph can err this much: pass network_dtype='float64' "
              "or a larger tolerance)")


def check_agreement(got: np.ndarray, want: np.ndarray, tolerance: float, what: str) -> None:
    """Raise ExportValidationError unless |got - want| / (1 + |want|) <= tolerance everywhere (and finite).

    The relative form suits log-densities and log-ratios, whose float32 network
    error grows with their size.
    """
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    worst = float(np.max(np.abs(got - want) / (1.0 + np.abs(want))))
    if not np.isfinite(got).all() or worst > tolerance:
        raise ExportValidationError(
            f"onnxruntime and torch disagree on the exported {what}: max |delta| / (1 + |value|) = "
            f"{worst:.3g} > {tolerance:g}" + (_FLOW_HINT if what == "flow" else "")
        )


def _validate(data: bytes, flow, pre, x, context, tolerance: float) -> None:
    got = run_onnxruntime(data, x, context)[0]
    want = _torch_log_prob64(flow, pre, np.asarray(x, dtype=np.float64), context)
    check_agreement(got, want, tolerance, "flow")


def read_metadata(path: str | os.PathLike) -> dict:
    """Return the rooml metadata of an exported model file.

    Raises
    ------
    ModelFileError
        The file is missing, not an ONNX model, lacks rooml metadata, or its
        content hash does not match.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelFileError(f"{path}: not an ONNX model ({exc})") from exc
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelFileError(f"{path}: ONNX model without rooml metadata (key '{METADATA_KEY}')")
    expected = content_hash(proto.graph.SerializeToString(), props[METADATA_KEY])
    if props.get(HASH_KEY) != expected:
        raise ModelFileError(f"{path}: content hash mismatch (file modified or corrupt)")
    metadata = json.loads(props[METADATA_KEY])
    metadata["content_hash"] = expected
    return metadata
