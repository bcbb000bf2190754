"""Describe an nflows ``Flow`` as the JSON architecture that rooml's C++ core reads.

The description lists the transforms in the data -> noise direction (nflows'
``forward``).  Weights are not copied into the description: each entry names
the prefix of its parameters, which are stored as ONNX initializers under their
``state_dict`` names.
"""
from __future__ import annotations

import math

import torch
from nflows.distributions.normal import StandardNormal
from nflows.nn.nets.resnet import ResidualNet
from nflows.transforms.autoregressive import (
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.lu import LULinear
from nflows.transforms.made import MADE, MaskedFeedforwardBlock, MaskedResidualBlock
from nflows.transforms.normalization import BatchNorm
from nflows.transforms.permutations import Permutation

__all__ = ["UnsupportedModelError", "describe_flow", "flatten_transforms"]


class UnsupportedModelError(ValueError):
    """The model contains a piece that rooml cannot export or evaluate natively."""


def flatten_transforms(transform) -> list:
    """Return the leaf transforms of (nested) ``CompositeTransform``s in order."""
    if isinstance(transform, CompositeTransform):
        leaves = []
        for child in transform._transforms:
            leaves.extend(flatten_transforms(child))
        return leaves
    return [transform]


def _activation_name(fn) -> str:
    if fn in (torch.relu, torch.nn.functional.relu):
        return "relu"
    raise UnsupportedModelError(f"unsupported activation {fn!r}: only ReLU is exported")


def _check_batchnorm1d(bn: torch.nn.BatchNorm1d, where: str) -> None:
    if not (bn.affine and bn.track_running_stats):
        raise UnsupportedModelError(f"{where}: BatchNorm1d needs affine=True and running stats")


def _describe_resnet(net: ResidualNet, prefix: str) -> dict:
    if not isinstance(net, ResidualNet):
        raise UnsupportedModelError(
            f"{prefix}: coupling conditioner {type(net).__name__} is not supported "
            "(use nflows.nn.nets.ResidualNet)"
        )
    blocks = list(net.blocks)
    use_bn = bool(blocks and blocks[0].use_batch_norm)
    if blocks:
        _activation_name(blocks[0].activation)
    for i, block in enumerate(blocks):
        if use_bn:
            for j, bn in enumerate(block.batch_norm_layers):
                _check_batchnorm1d(bn, f"{prefix}.blocks.{i}.batch_norm_layers.{j}")
    return {
        "type": "resnet",
        "prefix": prefix,
        "hidden": int(net.hidden_features),
        "blocks": len(blocks),
        "context": int(net.context_features or 0),
        "batch_norm": use_bn,
        "batch_norm_eps": float(blocks[0].batch_norm_layers[0].eps) if use_bn else 0.0,
        "activation": "relu",
    }


def _describe_made(net: MADE, prefix: str) -> dict:
    blocks = list(net.blocks)
    residual = bool(blocks) and isinstance(blocks[0], MaskedResidualBlock)
    if blocks and not residual and not isinstance(blocks[0], MaskedFeedforwardBlock):
        raise UnsupportedModelError(f"{prefix}: unknown MADE block {type(blocks[0]).__name__}")
    use_bn = False
    eps = 0.0
    if blocks:
        _activation_name(blocks[0].activation)
        if residual:
            use_bn = bool(blocks[0].use_batch_norm)
            eps = float(blocks[0].batch_norm_layers[0].eps) if use_bn else 0.0
        else:
            use_bn = blocks[0].batch_norm is not None
            eps = float(blocks[0].batch_norm.eps) if use_bn else 0.0
    return {
        "type": "made",
        "prefix": prefix,
        "hidden": int(net.initial_layer.out_features),
        "blocks": len(blocks),
        "residual": residual,
        "context": int(net.context_layer.in_features) if hasattr(net, "context_layer") else 0,
        "batch_norm": use_bn,
        "batch_norm_eps": eps,
        "activation": "relu",
    }


def _spline_fields(t, net) -> dict:
    if t.tails != "linear":
        raise UnsupportedModelError(
            f"{type(t).__name__} with tails={t.tails!r}: only tails='linear' is supported"
        )
    return {
        "num_bins": int(t.num_bins),
        "tail_bound": float(t.tail_bound),
        "min_bin_width": float(t.min_bin_width),
        "min_bin_height": float(t.min_bin_height),
        "min_derivative": float(t.min_derivative),
        # nflows scales widths/heights by 1/sqrt(hidden) only when the net has
        # a ``hidden_features`` attribute (ResidualNet has, MADE has not).
        "scale": 1.0 / math.sqrt(net.hidden_features) if hasattr(net, "hidden_features") else 1.0,
    }


def _describe_leaf(t, prefix: str) -> dict:
    if isinstance(t, Permutation):
        return {"type": "permutation", "perm": [int(i) for i in t._permutation.tolist()]}
    if isinstance(t, LULinear):
        if t.using_cache:
            raise UnsupportedModelError(f"{prefix}: LULinear with using_cache=True is not supported")
        return {"type": "lu_linear", "prefix": prefix, "eps": float(t.eps)}
    if isinstance(t, BatchNorm):
        return {"type": "batch_norm", "prefix": prefix, "eps": float(t.eps)}
    if isinstance(t, PiecewiseRationalQuadraticCouplingTransform):
        if t.unconditional_transform is not None:
            raise UnsupportedModelError(f"{prefix}: apply_unconditional_transform is not supported")
        net = _describe_resnet(t.transform_net, prefix + ".transform_net")
        return {
            "type": "rq_coupling",
            "identity": [int(i) for i in t.identity_features.tolist()],
            "transform": [int(i) for i in t.transform_features.tolist()],
            "net": net,
            **_spline_fields(t, t.transform_net),
        }
    if isinstance(t, MaskedPiecewiseRationalQuadraticAutoregressiveTransform):
        net = _describe_made(t.autoregressive_net, prefix + ".autoregressive_net")
        return {"type": "rq_autoregressive", "net": net, **_spline_fields(t, t.autoregressive_net)}
    raise UnsupportedModelError(
        f"{prefix}: transform {type(t).__name__} is not supported by rooml's exporter "
        "(supported: RQ spline coupling/autoregressive, LULinear, BatchNorm, permutations)"
    )


def describe_flow(flow, transform_prefix: str) -> dict:
    """Return the JSON-able architecture of ``flow`` (an nflows ``Flow``).

    ``transform_prefix`` is the ``state_dict`` prefix under which the flow's
    transforms are registered in the exported module (so initializer names match).
    """
    if not isinstance(flow._distribution, StandardNormal):
        raise UnsupportedModelError(
            f"base distribution {type(flow._distribution).__name__} is not supported "
            "(use StandardNormal)"
        )
    if not isinstance(flow._embedding_net, torch.nn.Identity):
        raise UnsupportedModelError("context embedding networks are not supported")
    leaves = flatten_transforms(flow._transform)
    names = {id(m): n for n, m in flow._transform.named_modules()}
    transforms = []
    for leaf in leaves:
        prefix = transform_prefix + ("." + names[id(leaf)] if names[id(leaf)] else "")
        transforms.append(_describe_leaf(leaf, prefix))
    return {"base": "standard_normal", "transforms": transforms}
