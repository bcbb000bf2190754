"""Describe a zuko flow (``zuko.flows.NSF`` / ``MAF`` and the like) for rooml's C++ core.

zuko orders features through the masks of each transform's ``MaskedMLP``, so a
flow is a list of masked autoregressive transforms whose conditioner returns,
feature by feature, the parameters of a univariate map: ``MonotonicAffineTransform``
(``[shift, scale]``) or ``MonotonicRQSTransform`` (``[widths, heights,
derivatives]``), followed by the ``DiagNormal`` base.  The core evaluates these
with zuko's own parametrization (``"parametrization": "zuko"``).
"""
from __future__ import annotations

import functools
import inspect
import math

import torch
from torch import nn

from rooml.export._describe import UnsupportedModelError, describe_mlp

__all__ = ["ExportZukoFlow", "describe_zuko_flow", "is_zuko_flow", "zuko_log_prob", "zuko_n_features",
           "zuko_sample"]


def is_zuko_flow(model) -> bool:
    """Whether ``model`` is a ``zuko.flows.Flow`` (without importing zuko when it is not)."""
    if not type(model).__module__.startswith("zuko"):
        return False
    from zuko.flows import Flow

    return isinstance(model, Flow)


def _univariate(t, where: str) -> dict:
    """Fields of the univariate map of a ``MaskedAutoregressiveTransform``."""
    from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform

    factory = t.univariate
    keywords = dict(factory.keywords) if isinstance(factory, functools.partial) else {}
    cls = factory.func if isinstance(factory, functools.partial) else factory
    if cls not in (MonotonicAffineTransform, MonotonicRQSTransform):
        name = getattr(cls, "__name__", type(cls).__name__)
        raise UnsupportedModelError(
            f"{where}: univariate transform {name} is not supported "
            "(supported: MonotonicAffineTransform (MAF), MonotonicRQSTransform (NSF))"
        )
    if isinstance(factory, functools.partial) and factory.args:
        raise UnsupportedModelError(f"{where}: univariate {cls.__name__} with positional arguments")
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    unknown = set(keywords) - {"slope", "bound"}
    if unknown:
        raise UnsupportedModelError(f"{where}: univariate {cls.__name__} with arguments {sorted(unknown)}")

    def value(name):
        return float(keywords.get(name, defaults[name]))

    if cls is MonotonicRQSTransform:
        bins = int(t.shapes[0][0])
        if [tuple(s) for s in t.shapes] != [(bins,), (bins,), (bins - 1,)]:
            raise UnsupportedModelError(f"{where}: unexpected spline parameter shapes {t.shapes}")
        return {"type": "rq_autoregressive", "parametrization": "zuko", "num_bins": bins,
                "tail_bound": value("bound"), "slope": value("slope")}
    if [tuple(s) for s in t.shapes] != [(), ()]:
        raise UnsupportedModelError(f"{where}: unexpected affine parameter shapes {t.shapes}")
    return {"type": "affine_autoregressive", "parametrization": "zuko", "slope": value("slope")}


def _base(flow) -> dict:
    from zuko.distributions import DiagNormal
    from zuko.lazy import UnconditionalDistribution

    base = flow.base
    if not (isinstance(base, UnconditionalDistribution) and base.f is DiagNormal):
        raise UnsupportedModelError(
            f"zuko base distribution {type(base).__name__} is not supported (supported: DiagNormal)"
        )
    tensors = dict(base.named_buffers())
    tensors.update(dict(base.named_parameters()))
    loc, scale = tensors.get("loc"), tensors.get("scale")
    if loc is None or scale is None:
        raise UnsupportedModelError("zuko DiagNormal base without loc and scale")
    return {
        "base": "diagonal_normal",
        "base_mean": [float(v) for v in loc.detach().double().tolist()],
        "base_log_std": [math.log(float(v)) for v in scale.detach().double().tolist()],
    }


def zuko_n_features(flow) -> int:
    """Return the number of features of a zuko flow (from its base distribution)."""
    return len(_base(flow)["base_mean"])


def describe_zuko_flow(flow, prefix: str = "flow") -> dict:
    """Return the JSON-able architecture of a zuko flow.

    ``prefix`` is the name under which the flow is registered in the exported
    module, so the descriptions' tensor names are its initializers' names.
    """
    from zuko.flows.autoregressive import MaskedAutoregressiveTransform
    from zuko.lazy import LazyComposedTransform

    if not isinstance(flow.transform, LazyComposedTransform):
        raise UnsupportedModelError(f"zuko flow transform {type(flow.transform).__name__} is not supported")
    base = _base(flow)
    dim = len(base["base_mean"])
    transforms = []
    for i, t in enumerate(flow.transform.transforms):
        where = f"{prefix}.transform.transforms.{i}"
        if type(t) is not MaskedAutoregressiveTransform:
            raise UnsupportedModelError(
                f"{where}: zuko transform {type(t).__name__} is not supported "
                "(supported: MaskedAutoregressiveTransform, as in zuko's NSF and MAF with features > 1)"
            )
        spec = _univariate(t, where)
        n_context = int(t.hyper.in_features) - dim
        if any(type(m).__name__ == "Residual" for m in t.hyper):
            raise UnsupportedModelError(f"{where}.hyper: zuko MaskedMLP with residual=True is not supported")
        spec["net"] = describe_mlp(t.hyper, where + ".hyper", n_context, mask=True)
        transforms.append(spec)
    return {**base, "transforms": transforms}


def zuko_log_prob(flow, y: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    """``log p(y | context)`` of a zuko flow."""
    return flow(context).log_prob(y)


def zuko_sample(flow, n: int, context: torch.Tensor | None) -> torch.Tensor:
    """``n`` samples (one per context row when ``context`` is given)."""
    return flow(context).sample() if context is not None else flow().sample((n,))


class ExportZukoFlow(nn.Module):
    """Physical-space ``log_prob(x, context)`` of a zuko flow with rooml preprocessing."""

    def __init__(self, flow, preprocessing: list[dict], n_context: int):
        super().__init__()
        self.flow = flow
        self.preprocessing = preprocessing
        self.n_context = n_context

    def forward(self, x, context=None):
        """Return the log-density of ``x`` given ``context`` (float64 preprocessing and sum)."""
        from rooml.export._graph import preprocess_graph

        dtype = next(self.flow.parameters()).dtype
        y, logdet = preprocess_graph(self.preprocessing, x.double())
        context = context.to(dtype) if context is not None else None
        return logdet + zuko_log_prob(self.flow, y.to(dtype), context).double()
