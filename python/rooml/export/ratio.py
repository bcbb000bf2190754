"""Write trained ratio networks (and ensembles of them) to ``.onnx`` files with rooml metadata.

The file is a float32 ONNX graph with input ``x`` (physical features, events x
D) and output ``log_ratio`` (events); an ensemble file has a second output
``member_log_ratio`` (events x K).  The ``rooml`` metadata document has
``"kind": "ratio"``, the features, preprocessing, support, ``"output":
"log_ratio"`` and the architecture that rooml's C++ core evaluates natively::

    "architecture": {
      "type": "mlp",
      "combination": "mean" | "mean_log",   # how members combine (see RatioEnsemble)
      "members": [
        {"layers": [{"name": "members.0.layers.0", "in": 8, "out": 64, "activation": "relu"},
                    ...,
                    {"name": "members.0.layers.2", "in": 64, "out": 1, "activation": "linear"}],
         "log_correction": 0.0,     # log r = network output + log_correction
         "loss": "bce" | "exponential", "seed": 0}
      ]
    }

Layer ``name`` is the prefix of the ONNX initializers ``<name>.weight`` (out x
in, as torch) and ``<name>.bias``.  A single model is an ensemble of one
member.  An ensemble is ONE file (all members, one content hash), so a
workspace that holds it cannot mix members of different trainings.
"""
from __future__ import annotations

import copy
import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rooml._version import __version__
from rooml.export._graph import preprocess_graph
from rooml.export.onnx_file import (
    FORMAT_VERSION,
    _attach_metadata,
    _json_bound,
    check_agreement,
    write_atomic,
)

__all__ = ["export_ratio"]


def _members(model):
    """``(members, combination)`` of a ``TrainedRatio`` or ``RatioEnsemble``."""
    if hasattr(model, "members") and hasattr(model, "combination"):
        return list(model.members), model.combination
    if hasattr(model, "net") and hasattr(model, "log_correction"):
        return [model], "mean"
    raise TypeError(f"expected a TrainedRatio or RatioEnsemble, got {type(model).__name__}")


def _preprocess(x: torch.Tensor, steps: list[dict]) -> torch.Tensor:
    """Apply the preprocessing chain (no Jacobian: it cancels in a ratio)."""
    return preprocess_graph(steps, x)[0]


class _ExportRatio(nn.Module):
    """Physical-space ``log r(x)`` (and per-member values) of an ensemble of ratio nets."""

    def __init__(self, nets, corrections, steps, combination: str, member_output: bool):
        super().__init__()
        self.members = nn.ModuleList(nets)
        self.corrections = [float(c) for c in corrections]
        self.steps = steps
        self.combination = combination
        self.member_output = member_output

    def forward(self, x):
        """Return ``log_ratio`` (and ``member_log_ratio`` for ensembles)."""
        y = _preprocess(x, self.steps)
        outs = [net(y) + c for net, c in zip(self.members, self.corrections)]
        stacked = torch.stack(outs, dim=1)
        k = len(outs)
        if k == 1:
            combined = outs[0]
        elif self.combination == "mean_log":
            combined = torch.mean(stacked, dim=1)
        else:
            top = torch.max(stacked, dim=1, keepdim=True).values
            combined = top[:, 0] + torch.log(torch.sum(torch.exp(stacked - top), dim=1)) - math.log(k)
        return (combined, stacked) if self.member_output else combined


def _describe_member(member, index: int) -> dict:
    layers = []
    n = len(member.net.layers)
    for i, layer in enumerate(member.net.layers):
        activation = "linear" if i == n - 1 else member.net.activation
        layers.append({"name": f"members.{index}.layers.{i}", "in": int(layer.in_features),
                       "out": int(layer.out_features), "activation": activation})  # fmt: skip
    return {"layers": layers, "log_correction": float(member.log_correction), "loss": member.loss,
            "seed": int(member.seed)}  # fmt: skip


def _reference_inputs(preprocessing, support, n_features: int, n: int = 512, seed: int = 1234) -> np.ndarray:
    """Events in the bulk: normal (sigma 0.8) in network space, mapped back and clipped to the support.

    Not the far tails: near the edges of a ``clip`` + ``logit`` step float32
    cannot resolve the clip bounds (``1 - 1e-6``), an inherent float32 effect.
    """
    y = 0.8 * np.random.default_rng(seed).standard_normal((n, n_features))
    x = preprocessing.inverse_numpy(y)
    lo = np.array([s[0] for s in support])
    hi = np.array([s[1] for s in support])
    return np.clip(x, lo, hi)


def _trace(module, n_features: int, outputs: list[str], opset: int) -> bytes:
    buffer = io.BytesIO()
    axes = {"x": {0: "events"}, **{name: {0: "events"} for name in outputs}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.randn(4, n_features),), buffer, input_names=["x"], output_names=outputs,
            dynamic_axes=axes, opset_version=opset, do_constant_folding=False, dynamo=False,
        )  # fmt: skip
    return buffer.getvalue()


def export_ratio(
    model,
    path: str | os.PathLike,
    *,
    features: list[str] | None = None,
    support: list[tuple[float, float]] | None = None,
    reference_inputs: np.ndarray | None = None,
    tolerance: float = 1e-4,
    overwrite: bool = False,
    opset: int = 17,
) -> Path:
    """Export a ratio model to an ``.onnx`` file that onnxruntime and rooml's core both run.

    Parameters
    ----------
    model
        A :class:`rooml.models.ratio.TrainedRatio` or :class:`~rooml.models.ratio.RatioEnsemble`.
    path
        Output file; an existing file is replaced only with ``overwrite=True``.
    features
        Feature names (default: the model's).
    support
        ``(low, high)`` per feature; events outside are rejected at evaluation
        (default: the model's support).
    reference_inputs
        ``(N, D)`` physical events on which onnxruntime is checked against the
        float64 torch model (default: 512 events drawn in the bulk of the
        preprocessing, clipped to the support).
    tolerance
        Largest accepted ``|log_r_onnxruntime - log_r_torch| / (1 + |log_r|)``.
    overwrite
        Replace an existing file.
    opset
        ONNX opset.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    members, combination = _members(model)
    pre = model.preprocessing
    n_features = len(model.features)
    features = list(features or model.features)
    if len(features) != n_features:
        raise ValueError(f"{len(features)} feature names given for a model with {n_features} features")
    support = list(support if support is not None else model.support)
    if len(support) != n_features:
        raise ValueError(f"support has {len(support)} entries, the model has {n_features} features")
    steps = pre.to_list()
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": "ratio",
        "rooml_version": __version__,
        "features": features,
        "preprocessing": steps,
        "support": [[_json_bound(lo), _json_bound(hi)] for lo, hi in support],
        "output": "log_ratio",
        "architecture": {
            "type": "mlp",
            "combination": combination,
            "members": [_describe_member(m, k) for k, m in enumerate(members)],
        },
    }
    nets = [copy.deepcopy(m.net).float().cpu().eval() for m in members]
    member_output = len(members) > 1
    module = _ExportRatio(nets, [m.log_correction for m in members], steps, combination, member_output).eval()
    outputs = ["log_ratio"] + (["member_log_ratio"] if member_output else [])
    onnx_bytes = _trace(module, n_features, outputs, opset)
    state = {f"members.{k}.{name}": t for k, net in enumerate(nets) for name, t in net.state_dict().items()}
    data = _attach_metadata(onnx_bytes, metadata, state)

    x_ref = reference_inputs if reference_inputs is not None else _reference_inputs(pre, support, n_features)
    _validate(data, model, np.asarray(x_ref, dtype=np.float64), tolerance, member_output)
    return write_atomic(path, data, overwrite=overwrite)


def _validate(data: bytes, model, x: np.ndarray, tolerance: float, member_output: bool) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = ["log_ratio"] + (["member_log_ratio"] if member_output else [])
    x32 = x.astype(np.float32)
    results = session.run(names, {"x": x32})
    got = results[0].astype(np.float64)
    x = x32.astype(np.float64)  # compare the graph, not the rounding of the inputs (logit edges amplify it)
    check_agreement(got, model.log_ratio(x), tolerance, "ratio model")
    if member_output:
        check_agreement(results[1].astype(np.float64).T, model.member_log_ratios(x), tolerance, "ratio ensemble")
