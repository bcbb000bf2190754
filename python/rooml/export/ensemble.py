"""Export deep ensembles and bootstraps of flows as one ``.onnx`` file.

Members are stored side by side (member m = d * K + k for bootstrap d, seed k),
each with its own preprocessing; the metadata carries the combination rule so
rooml's core, ``RooFlowPdf`` and onnxruntime all combine them the same way.
The graph has two outputs: ``log_prob`` (all members combined) and
``member_log_prob`` (events x members) for per-event ensemble spreads.
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rooml._version import __version__
from rooml.export._describe import describe_flow
from rooml.export._graph import ExportFlow
from rooml.export.onnx_file import (
    FORMAT_VERSION,
    _attach_metadata,
    _json_bound,
    _n_context,
    _n_features,
    _trace,
    check_agreement,
    run_onnxruntime,
    write_atomic,
)

__all__ = ["RULES", "export_ensemble"]

RULES = ("mean_log_prob", "mixture")


class _EnsembleGraph(nn.Module):
    def __init__(self, members: list[ExportFlow], rule: str):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.rule = rule

    def forward(self, x, context=None):
        lps = torch.stack([m(x, context) for m in self.members], dim=1)  # float64
        if self.rule == "mean_log_prob":
            combined = torch.mean(lps, dim=1)
        else:
            combined = torch.logsumexp(lps, dim=1) - math.log(lps.shape[1])
        return combined, lps


def _combine(lps: np.ndarray, rule: str) -> np.ndarray:
    if rule == "mean_log_prob":
        return lps.mean(axis=1)
    top = lps.max(axis=1, keepdims=True)
    return (top + np.log(np.mean(np.exp(lps - top), axis=1, keepdims=True)))[:, 0]


def export_ensemble(
    ensemble,
    path: str | os.PathLike,
    *,
    rule: str | None = None,
    support: list[tuple[float, float]] | None = None,
    reference_inputs: tuple[np.ndarray, np.ndarray | None] | None = None,
    tolerance: float = 1e-4,
    overwrite: bool = False,
    opset: int = 17,
) -> Path:
    """Export a ``FlowEnsemble`` (members[d][k] ``TrainedFlow``) to one ``.onnx`` file.

    Parameters
    ----------
    ensemble
        An object with ``members`` (list over bootstraps of lists of
        ``TrainedFlow``), ``rule``, ``features`` and ``context_names``.
    rule
        ``"mean_log_prob"`` (HI-SIGMA: average of log-densities, not
        normalized) or ``"mixture"`` (normalized); default: the ensemble's.
    support
        ``(low, high)`` per feature; default: the union of the members' supports.
    reference_inputs
        ``(x, context)`` on which onnxruntime is checked against the members'
        float64 log-densities; default: samples of the first member.

    Returns
    -------
    pathlib.Path
    """
    grid = [list(row) for row in ensemble.members]
    if not grid or not grid[0]:
        raise ValueError("the ensemble has no members")
    per = len(grid[0])
    if any(len(row) != per for row in grid):
        raise ValueError(f"every bootstrap needs the same number of members, got {[len(r) for r in grid]}")
    rule = rule or getattr(ensemble, "rule", "mean_log_prob")
    if rule not in RULES:
        raise ValueError(f"unknown ensemble rule {rule!r}; use one of {RULES}")
    flat = [member for row in grid for member in row]
    features = list(ensemble.features)
    context = list(getattr(ensemble, "context_names", None) or [])

    member_docs, graphs, state = [], [], {}
    for m, member in enumerate(flat):
        flow = copy.deepcopy(member.flow).float().cpu().eval()
        pre = member.preprocessing.to_list() if member.preprocessing is not None else []
        prefix, base_prefix = f"members.{m}.transform", f"members.{m}.distribution"
        architecture = describe_flow(flow, prefix, base_prefix)
        if _n_features(flow) != len(features) or _n_context(architecture) != len(context):
            raise ValueError(f"member {m} has a different number of features or context variables")
        member_docs.append({"architecture": architecture, "preprocessing": pre})
        graphs.append(ExportFlow(flow, pre, len(context)).eval())
        state.update({f"{prefix}.{k}": v for k, v in flow._transform.state_dict().items()})
        state.update({f"{base_prefix}.{k}": v for k, v in flow._distribution.state_dict().items()})

    if support is None:
        lows = np.min([[lo for lo, _ in m.support] for m in flat], axis=0)
        highs = np.max([[hi for _, hi in m.support] for m in flat], axis=0)
        support = list(zip(lows.tolist(), highs.tolist()))
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": "flow",
        "rooml_version": __version__,
        "features": features,
        "context": context,
        "support": [[_json_bound(lo), _json_bound(hi)] for lo, hi in support],
        "ensemble": {"rule": rule, "bootstraps": len(grid), "members_per_bootstrap": per},
        "members": member_docs,
    }
    module = _EnsembleGraph(graphs, rule).eval()
    onnx_bytes = _trace(module, len(features), len(context), opset, outputs=("log_prob", "member_log_prob"))
    data = _attach_metadata(onnx_bytes, metadata, state)

    if reference_inputs is None:
        n = 256
        ctx = None
        if context:
            rows = np.asarray(flat[0].context_sample) if flat[0].context_sample else None
            rng = np.random.default_rng(7)
            ctx = rows[rng.integers(0, len(rows), n)] if rows is not None else rng.normal(size=(n, len(context)))
        reference_inputs = (flat[0].sample(n, context=ctx, seed=7), ctx)
    _validate(data, flat, rule, *reference_inputs, tolerance)
    return write_atomic(path, data, overwrite=overwrite)


def _validate(data: bytes, flat, rule: str, x, context, tolerance: float) -> None:
    got = run_onnxruntime(data, x, context)[0]
    lps = np.stack([m.log_prob(np.asarray(x, dtype=np.float64), context) for m in flat], axis=1)
    check_agreement(got, _combine(lps, rule), tolerance, "ensemble")
