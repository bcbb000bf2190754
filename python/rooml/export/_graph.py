"""An export-friendly torch mirror of a rooml flow, traced into the ONNX graph.

nflows' own forward pass uses boolean masking and in-place scatters, which turn
into NonZero/ScatterND/GatherND nodes.  The mirror computes the same function
with ``where``, one-hot products and an explicit softplus, so the ONNX graph has
static shapes and runs on every onnxruntime provider.  Parameters stay the
nflows module's own tensors, so initializer names are their ``state_dict`` names.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from rooml.export._describe import flatten_transforms

__all__ = ["ExportFlow"]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def _linear(x, layer: nn.Linear, mask=None):
    weight = layer.weight if mask is None else layer.weight * mask
    return x @ weight.t() + layer.bias


def _batchnorm1d(x, bn: nn.BatchNorm1d):
    return (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _resnet(net, x, context):
    h = _linear(torch.cat((x, context), dim=1) if context is not None else x, net.initial_layer)
    for block in net.blocks:
        t = h
        if block.use_batch_norm:
            t = _batchnorm1d(t, block.batch_norm_layers[0])
        t = _linear(block.activation(t), block.linear_layers[0])
        if block.use_batch_norm:
            t = _batchnorm1d(t, block.batch_norm_layers[1])
        t = _linear(block.activation(t), block.linear_layers[1])
        if context is not None:
            t = t * torch.sigmoid(_linear(context, block.context_layer))
        h = h + t
    return _linear(h, net.final_layer)


def _made(net, x, context):
    act = net.activation
    h = _linear(x, net.initial_layer, net.initial_layer.mask)
    if context is not None:
        h = h + act(_linear(context, net.context_layer))
    if not net.use_residual_blocks:
        h = act(h)
    for block in net.blocks:
        if hasattr(block, "linear_layers"):  # residual block
            t = h
            if block.use_batch_norm:
                t = _batchnorm1d(t, block.batch_norm_layers[0])
            t = _linear(act(t), block.linear_layers[0], block.linear_layers[0].mask)
            if context is not None:
                t = t + _linear(context, block.context_layer)
            if block.use_batch_norm:
                t = _batchnorm1d(t, block.batch_norm_layers[1])
            t = _linear(act(t), block.linear_layers[1], block.linear_layers[1].mask)
            h = h + t
        else:  # feed-forward block
            t = _batchnorm1d(h, block.batch_norm) if block.batch_norm is not None else h
            h = act(_linear(t, block.linear, block.linear.mask))
    return _linear(h, net.final_layer, net.final_layer.mask)


def _softmax_scale(net) -> float:
    """Nflows divides spline widths/heights by sqrt(hidden) only if the net has that attribute."""
    hidden = getattr(net, "hidden_features", None)
    return 1.0 / math.sqrt(hidden) if hidden else 1.0


def _gather(values, onehot):
    return torch.sum(values * onehot, dim=-1)


def _rq_spline(x, params, t, scale: float):
    """Mask-free rational-quadratic spline with linear tails (nflows semantics)."""
    k = t.num_bins
    bound = float(t.tail_bound)
    uw = params[..., :k] * scale
    uh = params[..., k : 2 * k] * scale
    ud_inner = params[..., 2 * k :]
    edge = math.log(math.exp(1 - t.min_derivative) - 1)
    pad = torch.full_like(ud_inner[..., :1], edge)
    derivs = t.min_derivative + _softplus(torch.cat((pad, ud_inner, pad), dim=-1))

    def knots(unnormalized, minimum):
        sizes = torch.softmax(unnormalized, dim=-1)
        sizes = minimum + (1 - minimum * k) * sizes
        inner = (2 * bound) * torch.cumsum(sizes, dim=-1)[..., :-1] - bound
        lo = torch.full_like(inner[..., :1], -bound)
        hi = torch.full_like(inner[..., :1], bound)
        return torch.cat((lo, inner, hi), dim=-1)

    cumw = knots(uw, t.min_bin_width)
    cumh = knots(uh, t.min_bin_height)
    widths = cumw[..., 1:] - cumw[..., :-1]
    heights = cumh[..., 1:] - cumh[..., :-1]

    inside = (x >= -bound) & (x <= bound)
    xc = torch.clamp(x, -bound, bound)
    search = torch.cat((cumw[..., :-1], cumw[..., -1:] + 1e-6), dim=-1)
    idx = torch.sum((xc[..., None] >= search).to(x.dtype), dim=-1) - 1
    onehot = (idx[..., None] == torch.arange(k, dtype=x.dtype)).to(x.dtype)

    x0 = _gather(cumw[..., :-1], onehot)
    w = _gather(widths, onehot)
    y0 = _gather(cumh[..., :-1], onehot)
    h = _gather(heights, onehot)
    delta = h / w
    d0 = _gather(derivs[..., :-1], onehot)
    d1 = _gather(derivs[..., 1:], onehot)

    theta = (xc - x0) / w
    tt = theta * (1 - theta)
    denominator = delta + (d0 + d1 - 2 * delta) * tt
    y = y0 + h * (delta * theta * theta + d0 * tt) / denominator
    dnum = delta * delta * (d1 * theta * theta + 2 * delta * tt + d0 * (1 - theta) * (1 - theta))
    logdet = torch.log(dnum) - 2 * torch.log(denominator)
    return torch.where(inside, y, x), torch.where(inside, logdet, torch.zeros_like(x))


def _placement(d: int, offset: int, dtype) -> torch.Tensor:
    """Constant (d*d, n) matrix that places n packed triangular entries into a flat d x d matrix."""
    rows, cols = (np.tril_indices if offset < 0 else np.triu_indices)(d, k=offset)
    place = np.zeros((d * d, rows.size))
    place[rows * d + cols, np.arange(rows.size)] = 1
    return torch.from_numpy(place).to(dtype)  # a traced constant, not a scatter


def _lu_weight(t):
    d = t.features
    dtype = t.lower_entries.dtype
    diag = _softplus(t.unconstrained_upper_diag) + t.eps
    eye = torch.eye(d, dtype=dtype)
    lower = eye + (_placement(d, -1, dtype) @ t.lower_entries).reshape(d, d)
    upper = eye * diag + (_placement(d, 1, dtype) @ t.upper_entries).reshape(d, d)
    return lower @ upper, torch.sum(torch.log(diag))


def preprocess_graph(preprocessing: list[dict], x):
    """Preprocessing steps as traceable torch operations: ``(y, log|dy/dx|)``."""
    from rooml.models.preprocessing import Preprocessing

    return Preprocessing.from_list(preprocessing).forward_torch(x, check=False, exportable=True)


def _base_log_prob(distribution, z, context):
    """Log-density of nflows' base distributions, mask-free."""
    d = z.shape[1]
    log_norm = 0.5 * d * math.log(2 * math.pi)
    name = type(distribution).__name__
    if name == "StandardNormal":
        return -0.5 * torch.sum(z * z, dim=1) - log_norm
    if name == "DiagonalNormal":
        mean, log_std = distribution.mean_, distribution.log_std_
    else:  # ConditionalDiagonalNormal
        params = distribution._context_encoder(context)
        mean, log_std = params[:, :d], params[:, d:]
    u = (z - mean) * torch.exp(-log_std)
    return -0.5 * torch.sum(u * u, dim=1) - torch.sum(log_std * torch.ones_like(z), dim=1) - log_norm


class ExportFlow(nn.Module):
    """Physical-space ``log_prob(x, context)`` of a flow with its preprocessing."""

    def __init__(self, flow, preprocessing: list[dict], n_context: int):
        super().__init__()
        self.transform = flow._transform
        self.distribution = flow._distribution
        self.leaves = flatten_transforms(flow._transform)
        self.preprocessing = preprocessing
        self.n_context = n_context

    def _preprocess(self, x):
        return preprocess_graph(self.preprocessing, x)

    def forward(self, x, context=None):
        """Return the log-density of ``x`` (physical variables) given ``context``.

        Inputs, preprocessing and the final sum are in float64 (edges such as a
        logit near a hard cut need it); the network runs in its own dtype.
        """
        dtype = next(self.transform.parameters()).dtype
        y, logdet = self._preprocess(x.double())
        z = y.to(dtype)
        context = context.to(dtype) if context is not None else None
        flow_logdet = torch.zeros_like(z[:, 0])
        for t in self.leaves:
            z, ld = self._apply(t, z, context)
            flow_logdet = flow_logdet + ld
        base = _base_log_prob(self.distribution, z, context)
        return logdet + (flow_logdet + base).double()

    def _apply(self, t, z, context):
        name = type(t).__name__
        zero = torch.zeros_like(z[:, 0])
        if hasattr(t, "_permutation"):
            return z[:, t._permutation], zero
        if name == "LULinear":
            weight, logdet = _lu_weight(t)
            return z @ weight.t() + t.bias, zero + logdet
        if name == "BatchNorm":
            weight = _softplus(t.unconstrained_weight) + t.eps
            out = weight * (z - t.running_mean) / torch.sqrt(t.running_var + t.eps) + t.bias
            return out, zero + torch.sum(torch.log(weight) - 0.5 * torch.log(t.running_var + t.eps))
        if name == "PiecewiseRationalQuadraticCouplingTransform":
            ident = z[:, t.identity_features]
            params = _resnet(t.transform_net, ident, context)
            n_t = len(t.transform_features)
            params = params.reshape(z.shape[0], n_t, -1)
            scale = _softmax_scale(t.transform_net)
            y, ld = _rq_spline(z[:, t.transform_features], params, t, scale)
            parts = [None] * z.shape[1]
            for j, i in enumerate(t.identity_features.tolist()):
                parts[i] = ident[:, j]
            for j, i in enumerate(t.transform_features.tolist()):
                parts[i] = y[:, j]
            return torch.stack(parts, dim=1), torch.sum(ld, dim=1)
        if name == "MaskedAffineAutoregressiveTransform":
            params = _made(t.autoregressive_net, z, context).reshape(z.shape[0], z.shape[1], 2)
            scale = _softplus(params[..., 0]) + t._epsilon
            return z * scale + params[..., 1], torch.sum(torch.log(scale), dim=1)
        if name == "AffineCouplingTransform":
            ident = z[:, t.identity_features]
            params = _resnet(t.transform_net, ident, context)
            n_t = len(t.transform_features)
            scale = torch.sigmoid(params[:, n_t:] + 2) + 1e-3
            y = z[:, t.transform_features] * scale + params[:, :n_t]
            parts = [None] * z.shape[1]
            for j, i in enumerate(t.identity_features.tolist()):
                parts[i] = ident[:, j]
            for j, i in enumerate(t.transform_features.tolist()):
                parts[i] = y[:, j]
            return torch.stack(parts, dim=1), torch.sum(torch.log(scale), dim=1)
        if name == "ActNorm":
            return z * torch.exp(t.log_scale) + t.shift, zero + torch.sum(t.log_scale)
        if name == "MaskedPiecewiseRationalQuadraticAutoregressiveTransform":
            net = t.autoregressive_net
            params = _made(net, z, context).reshape(z.shape[0], z.shape[1], -1)
            scale = _softmax_scale(net)
            y, ld = _rq_spline(z, params, t, scale)
            return y, torch.sum(ld, dim=1)
        raise ValueError(f"unsupported transform {name}")
