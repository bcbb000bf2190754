"""Random-weight nflows flows of every supported kind, for exact agreement tests."""
from __future__ import annotations

import torch
from nflows.distributions import StandardNormal
from nflows.flows import Flow
from nflows.nn.nets import ResidualNet
from nflows.transforms import (
    BatchNorm,
    CompositeTransform,
    LULinear,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
    PiecewiseRationalQuadraticCouplingTransform,
    RandomPermutation,
    ReversePermutation,
)

# Each option appears on and off for both kinds, with and without context.
VARIANTS = [
    dict(kind=k, context=c, lu=lu, batch_norm=bn, conditioner_bn=cbn)
    for k in ("coupling", "autoregressive")
    for c, lu, bn, cbn in ((0, False, False, False), (2, True, False, False), (2, False, True, True),
                           (1, True, True, False))
]


def variant_id(v: dict) -> str:
    """Readable pytest id of a variant."""
    return f"{v['kind']}-ctx{v['context']}-lu{int(v['lu'])}-bn{int(v['batch_norm'])}-cbn{int(v['conditioner_bn'])}"


def random_flow(kind: str, features: int = 3, context: int = 0, lu: bool = False, batch_norm: bool = False,
                conditioner_bn: bool = False, layers: int = 3, seed: int = 0, residual: bool = True) -> Flow:
    """A flow with perturbed (non-identity) weights and batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    ctx = context or None
    transforms = []
    for i in range(layers):
        if kind == "coupling":
            mask = [(j + i) % 2 for j in range(features)]
            transforms.append(PiecewiseRationalQuadraticCouplingTransform(
                mask, lambda a, b: ResidualNet(a, b, 16, context_features=ctx, num_blocks=2,
                                               use_batch_norm=conditioner_bn),
                num_bins=6, tails="linear", tail_bound=3.5))
        else:
            transforms.append(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                features, 16, context_features=ctx, num_bins=5, tails="linear", tail_bound=3.0,
                use_residual_blocks=residual, use_batch_norm=conditioner_bn))
        if lu:
            transforms.append(LULinear(features, identity_init=False))
        if batch_norm:
            transforms.append(BatchNorm(features))
        transforms.append(ReversePermutation(features) if i % 2 else RandomPermutation(features))
    flow = Flow(CompositeTransform(transforms), StandardNormal([features]))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in flow.modules():
            if hasattr(m, "running_mean") and m.running_mean is not None:
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.6, 1.5)
    return flow.eval()
