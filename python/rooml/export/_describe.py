"""Describe an nflows ``Flow`` as the JSON architecture that rooml's C++ core reads.

The description lists the transforms in the data -> noise direction (nflows'
``forward``).  Weights are not copied into the description: each entry names
the prefix of its parameters, which are stored as ONNX initializers under their
``state_dict`` names.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from nflows.distributions.normal import ConditionalDiagonalNormal, DiagonalNormal, StandardNormal
from nflows.nn.nets.resnet import ResidualNet
from nflows.transforms.autoregressive import (
    MaskedAffineAutoregressiveTransform,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import (
    AdditiveCouplingTransform,
    AffineCouplingTransform,
    PiecewiseRationalQuadraticCouplingTransform,
)
from nflows.transforms.lu import LULinear
from nflows.transforms.made import MADE, MaskedFeedforwardBlock, MaskedResidualBlock
from nflows.transforms.normalization import ActNorm, BatchNorm
from nflows.transforms.permutations import Permutation
from torch import nn

__all__ = [
    "UnsupportedModelError",
    "activation_fields",
    "describe_flow",
    "describe_mlp",
    "flatten_transforms",
]


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


_ACTIVATION_FUNCTIONS = {
    torch.relu: "relu",
    F.relu: "relu",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    F.silu: "silu",
    F.selu: "selu",
    torch.selu: "selu",
    F.gelu: "gelu",
}
_ACTIVATION_MODULES = {
    nn.ReLU: "relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.SiLU: "silu",
    nn.SELU: "selu",
    nn.Identity: "identity",
}
SUPPORTED_ACTIVATIONS = "ReLU, LeakyReLU, ELU, SELU, Tanh, Sigmoid, SiLU, GELU (exact)"


def activation_fields(fn, where: str = "") -> dict:
    """Return ``{"activation": name[, "activation_param": p]}`` for a torch activation.

    ``fn`` is a function (``F.relu``, ``torch.tanh``, ...) or an ``nn.Module``
    (``nn.ReLU()``, ``nn.LeakyReLU(0.2)``, ...).  Anything else raises
    :class:`UnsupportedModelError` naming it.
    """
    prefix = f"{where}: " if where else ""
    if isinstance(fn, nn.Module):
        if type(fn) in _ACTIVATION_MODULES:
            return {"activation": _ACTIVATION_MODULES[type(fn)]}
        if type(fn) is nn.LeakyReLU:
            return {"activation": "leaky_relu", "activation_param": float(fn.negative_slope)}
        if type(fn) is nn.ELU:
            return {"activation": "elu", "activation_param": float(fn.alpha)}
        if type(fn) is nn.GELU:
            if fn.approximate != "none":
                raise UnsupportedModelError(
                    f"{prefix}unsupported activation GELU(approximate={fn.approximate!r}): "
                    "only the exact (erf) GELU is exported"
                )
            return {"activation": "gelu"}
        raise UnsupportedModelError(
            f"{prefix}unsupported activation {type(fn).__name__} (supported: {SUPPORTED_ACTIVATIONS})"
        )
    try:
        if fn in _ACTIVATION_FUNCTIONS:
            return {"activation": _ACTIVATION_FUNCTIONS[fn]}
    except TypeError:  # unhashable callables
        pass
    if fn is F.leaky_relu:
        return {"activation": "leaky_relu", "activation_param": 0.01}
    if fn is F.elu:
        return {"activation": "elu", "activation_param": 1.0}
    name = getattr(fn, "__name__", repr(fn))
    raise UnsupportedModelError(
        f"{prefix}unsupported activation {name} (supported: {SUPPORTED_ACTIVATIONS}, "
        "as torch functions or nn.Modules)"
    )


def describe_mlp(module, prefix: str, n_context: int, mask: bool = False) -> dict:
    """Describe a ``nn.Linear`` or an ``nn.Sequential`` of linear layers and activations.

    The result is the core's ``mlp`` conditioner: its input is ``[inputs, context]``
    with ``n_context`` context columns; each layer is followed by its activation
    (``identity`` when none follows).  ``mask``: the linear layers carry a ``mask``
    buffer multiplying their weight (zuko's ``MaskedLinear``).
    """
    children = [module] if isinstance(module, nn.Linear) else None
    if children is None and isinstance(module, nn.Sequential):
        children = list(module)
    if children is None:
        raise UnsupportedModelError(
            f"{prefix}: network {type(module).__name__} is not supported "
            "(use nn.Linear or an nn.Sequential of nn.Linear layers and activations)"
        )
    names = ["" if children == [module] else f".{i}" for i in range(len(children))]
    layers: list[dict] = []
    for name, child in zip(names, children):
        where = prefix + name
        if isinstance(child, nn.Linear):
            if child.bias is None:
                raise UnsupportedModelError(f"{where}: linear layers without bias are not supported")
            layers.append({"prefix": where, "mask": mask, "activation": "identity"})
        elif isinstance(child, nn.Dropout):
            continue
        else:
            if not layers or layers[-1]["activation"] != "identity":
                raise UnsupportedModelError(
                    f"{where}: {type(child).__name__} must follow a linear layer"
                )
            layers[-1].update(activation_fields(child, where))
    if not layers:
        raise UnsupportedModelError(f"{prefix}: network without linear layers")
    return {"type": "mlp", "context": int(n_context), "layers": layers}


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
    act = activation_fields(blocks[0].activation, prefix) if blocks else {"activation": "relu"}
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
        **act,
    }


def _describe_made(net: MADE, prefix: str) -> dict:
    blocks = list(net.blocks)
    residual = bool(blocks) and isinstance(blocks[0], MaskedResidualBlock)
    if blocks and not residual and not isinstance(blocks[0], MaskedFeedforwardBlock):
        raise UnsupportedModelError(f"{prefix}: unknown MADE block {type(blocks[0]).__name__}")
    use_bn = False
    eps = 0.0
    act = activation_fields(net.activation, prefix)
    if blocks:
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
        **act,
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
    if type(t) is MaskedAffineAutoregressiveTransform:
        net = _describe_made(t.autoregressive_net, prefix + ".autoregressive_net")
        return {"type": "affine_autoregressive", "parametrization": "nflows", "eps": float(t._epsilon),
                "net": net}
    if type(t) is AffineCouplingTransform:
        if t.unconditional_transform is not None:
            raise UnsupportedModelError(f"{prefix}: apply_unconditional_transform is not supported")
        return {
            "type": "affine_coupling",
            "identity": [int(i) for i in t.identity_features.tolist()],
            "transform": [int(i) for i in t.transform_features.tolist()],
            "net": _describe_resnet(t.transform_net, prefix + ".transform_net"),
            "eps": 1e-3,
        }
    if type(t) is ActNorm:
        return {"type": "act_norm", "prefix": prefix}
    name = type(t).__name__
    if isinstance(t, AdditiveCouplingTransform):
        name = "AdditiveCouplingTransform"
    raise UnsupportedModelError(
        f"{prefix}: transform {name} is not supported by rooml's exporter "
        "(supported: RQ spline and affine coupling/autoregressive, LULinear, BatchNorm, ActNorm, "
        "permutations)"
    )


def _float_list(tensor) -> list[float]:
    return [float(v) for v in tensor.detach().double().reshape(-1).tolist()]


def describe_base(distribution, prefix: str) -> dict:
    """Return the architecture fields of an nflows base distribution (``prefix``: its state_dict prefix)."""
    if isinstance(distribution, StandardNormal):
        return {"base": "standard_normal"}
    if type(distribution) is DiagonalNormal:
        return {
            "base": "diagonal_normal",
            "base_mean": _float_list(distribution.mean_),
            "base_log_std": _float_list(distribution.log_std_),
        }
    if type(distribution) is ConditionalDiagonalNormal:
        encoder = distribution._context_encoder
        if not isinstance(encoder, nn.Module):
            raise UnsupportedModelError(
                "ConditionalDiagonalNormal without a context encoder module is not supported "
                "(give context_encoder=nn.Linear(...) or an nn.Sequential MLP)"
            )
        first = encoder if isinstance(encoder, nn.Linear) else next(
            (m for m in encoder.modules() if isinstance(m, nn.Linear)), None)
        n_context = first.in_features if first is not None else 0
        spec = describe_mlp(encoder, prefix + "._context_encoder", n_context)
        return {"base": "conditional_diagonal_normal", "base_encoder": spec}
    raise UnsupportedModelError(
        f"base distribution {type(distribution).__name__} is not supported "
        "(supported: StandardNormal, DiagonalNormal, ConditionalDiagonalNormal)"
    )


def describe_flow(flow, transform_prefix: str, distribution_prefix: str = "distribution") -> dict:
    """Return the JSON-able architecture of ``flow`` (an nflows ``Flow``).

    ``transform_prefix`` and ``distribution_prefix`` are the ``state_dict``
    prefixes under which the flow's transforms and base distribution are
    registered in the exported module (so initializer names match).
    """
    base = describe_base(flow._distribution, distribution_prefix)
    if not isinstance(flow._embedding_net, torch.nn.Identity):
        raise UnsupportedModelError("context embedding networks are not supported")
    leaves = flatten_transforms(flow._transform)
    names = {id(m): n for n, m in flow._transform.named_modules()}
    transforms = []
    for leaf in leaves:
        prefix = transform_prefix + ("." + names[id(leaf)] if names[id(leaf)] else "")
        transforms.append(_describe_leaf(leaf, prefix))
    return {**base, "transforms": transforms}
