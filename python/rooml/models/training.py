"""Maximum-likelihood training of :mod:`rooml.models.flows` flows.

Weighted mean negative log-likelihood, Adam with L2 weight decay, early stopping
on a validation split (best weights restored), deterministic for a given seed
on CPU.  Context variables are standardized for training and the
standardization is then folded into the conditioners' first layers, so the
returned flow takes the raw context (what the exported model and the RooFit pdf
receive).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from nflows.flows.base import Flow
from nflows.nn.nets import ResidualNet

from rooml.models._loop import run_epochs, torch_threads
from rooml.models.flows import FlowConfig, TrainedFlow, _as_events, build_flow, default_support
from rooml.models.preprocessing import Preprocessing, build_preprocessing

__all__ = ["fold_context_standardization", "train_flow"]

_EVAL_CHUNK = 65536


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', not {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA device")
    return torch.device(device)


def _resolve_preprocessing(
    preprocessing: Any, x: np.ndarray, names: list[str]
) -> Preprocessing:
    if preprocessing is None:
        return Preprocessing.standardize(x, feature_names=names)
    if isinstance(preprocessing, Preprocessing):
        return Preprocessing(preprocessing.steps, names)
    if isinstance(preprocessing, Mapping):
        return build_preprocessing(x, preprocessing, features=names)
    return Preprocessing(list(preprocessing), names)


@torch.no_grad()
def fold_context_standardization(flow: Flow, mean: np.ndarray, scale: np.ndarray) -> None:
    """Rewrite ``flow`` in place so that it takes raw context ``c`` instead of ``(c - mean) / scale``.

    Every linear layer that reads the context (ResidualNet's first layer, whose
    last inputs are the context, and every ``context_layer`` of ResidualNet
    blocks and MADE) gets ``W' = W / scale`` and ``b' = b - W' @ mean``,
    computed in float64.
    """
    mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float64))
    scale_t = torch.as_tensor(np.asarray(scale, dtype=np.float64))
    n = mean_t.numel()

    def fold(layer: torch.nn.Linear, start: int) -> None:
        w = layer.weight.detach().double().clone()
        wc = w[:, start:] / scale_t
        bias = layer.bias.detach().double() - wc @ mean_t
        w[:, start:] = wc
        layer.weight.copy_(w.to(layer.weight.dtype))
        layer.bias.copy_(bias.to(layer.bias.dtype))

    for module in flow.modules():
        if isinstance(module, ResidualNet) and module.context_features:
            fold(module.initial_layer, module.initial_layer.in_features - n)
        context_layer = getattr(module, "context_layer", None)
        if isinstance(context_layer, torch.nn.Linear):
            fold(context_layer, 0)


def _nll_sum(
    flow: Flow, y: torch.Tensor, logdet: torch.Tensor, w: torch.Tensor, c: torch.Tensor | None
) -> torch.Tensor:
    """Sum over events of ``w * -(log p_flow(y|c) + logdet)`` (physical-space NLL)."""
    return -(w * (flow.log_prob(y, context=c) + logdet)).sum()


@torch.no_grad()
def _mean_nll(flow: Flow, y, logdet, w, c) -> float:
    total = 0.0
    for s in range(0, y.shape[0], _EVAL_CHUNK):
        part = slice(s, s + _EVAL_CHUNK)
        cc = c[part] if c is not None else None
        total += float(_nll_sum(flow, y[part], logdet[part], w[part], cc))
    return total / float(w.sum())


def train_flow(
    config: FlowConfig,
    x: Any,
    context: Any = None,
    weights: Any = None,
    *,
    preprocessing: Preprocessing | Sequence[Mapping] | Mapping[str | int, str] | None = None,
    features: Sequence[str] | None = None,
    context_names: Sequence[str] | None = None,
    support: Sequence[tuple[float, float]] | None = None,
    support_margin: float = 0.1,
    standardize_context: bool = True,
    epochs: int = 100,
    batch_size: int = 512,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    validation_fraction: float = 0.2,
    patience: int = 10,
    device: str = "cpu",
    progress: bool = True,
    seed: int | None = None,
    num_threads: int | None = 1,
) -> TrainedFlow:
    """Fit a flow to (weighted, optionally conditional) data by maximum likelihood.

    Parameters
    ----------
    config
        Architecture; ``config.features`` and ``config.context`` must match the data.
    x
        Physical features, shape ``(N, D)``.
    context
        Context variables, shape ``(N, C)``; required iff ``config.context > 0``.
    weights
        Event weights ``(N,)`` (may be negative; their sum must be positive).
        The loss is the weighted mean NLL.
    preprocessing
        A :class:`Preprocessing`, its ``to_list()`` form, a recipe spec for
        :func:`build_preprocessing` (``{"pT": "log", ...}``), or ``None`` for a
        plain standardization.
    features, context_names
        Names (default ``x0, x1, ...`` and ``c0, c1, ...``).
    support
        ``(low, high)`` per feature; default: the data range widened by
        ``support_margin`` of its width per side, clipped to the preprocessing domain.
    standardize_context
        Train on standardized context and fold the standardization into the weights.
    epochs, batch_size, lr, weight_decay
        Optimization (Adam with L2 penalty ``weight_decay``).
    validation_fraction
        Fraction held out for validation/early stopping (0: monitor the training loss).
    patience
        Stop after this many epochs without a better validation loss; the best
        epoch's weights are restored.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    progress
        Show a tqdm bar over epochs with the train/validation loss.
    seed
        Seed of the weights, the split and the shuffles (default ``config.seed``).
    num_threads
        torch intra-op threads during training (restored afterwards); ``None``
        leaves torch's setting.  The default is 1 because small flows gain
        nothing from intra-op threads and lose a lot on a busy machine (here,
        2 threads on 2 shared cores made a 5 s training take 95 s).

    Returns
    -------
    TrainedFlow
    """
    seed = config.seed if seed is None else int(seed)
    config = FlowConfig.from_dict({**config.to_dict(), "seed": seed})
    names = list(features) if features is not None else [f"x{i}" for i in range(config.features)]
    ctx_names = (
        list(context_names) if context_names is not None else [f"c{i}" for i in range(config.context)]
    )
    if len(names) != config.features or len(ctx_names) != config.context:
        raise ValueError("features/context_names must have one name per feature/context variable")
    x = _as_events(x, config.features, "x", names)
    n = x.shape[0]
    if config.context:
        if context is None:
            raise ValueError(f"config.context = {config.context} but no context was given")
        ctx = _as_events(context, config.context, "context", ctx_names)
        if ctx.shape[0] != n:
            raise ValueError(f"context has {ctx.shape[0]} events, x has {n}")
    elif context is not None:
        raise ValueError("a context was given but config.context = 0")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ValueError(f"weights must be {n} finite values with a positive sum")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in [0, 1)")

    pre = _resolve_preprocessing(preprocessing, x, names)
    y, logdet = pre.forward_numpy(x)
    c_mean = c_scale = None
    if config.context:
        c_mean = ctx.mean(axis=0) if standardize_context else np.zeros(config.context)
        c_scale = ctx.std(axis=0) if standardize_context else np.ones(config.context)
        c_scale = np.where(c_scale > 0, c_scale, 1.0)
        context_sample = ctx[np.random.default_rng(0).choice(len(ctx), min(256, len(ctx)), replace=False)]
        ctx = (ctx - c_mean) / c_scale

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(validation_fraction * n))
    if validation_fraction > 0 and not 0 < n_val < n:
        raise ValueError(f"cannot split {n} events with validation_fraction={validation_fraction}")
    dev = _resolve_device(device)

    def tensors(idx: np.ndarray):
        to = lambda a: torch.as_tensor(a[idx], dtype=torch.float32, device=dev)  # noqa: E731
        return to(y), to(logdet), to(w), (to(ctx) if config.context else None)

    train = tensors(order[n_val:])
    val = tensors(order[:n_val]) if n_val else train

    with torch_threads(num_threads):
        flow, history, best_epoch = _fit(
            config, train, val, n_val, rng, dev, epochs, batch_size, lr, weight_decay, patience, progress
        )
    if config.context:
        fold_context_standardization(flow, c_mean, c_scale)
    support = list(support) if support is not None else default_support(x, pre, support_margin)
    return TrainedFlow(
        flow=flow,
        config=config,
        preprocessing=pre,
        features=names,
        context_names=ctx_names,
        support=support,
        history=history,
        best_epoch=best_epoch,
        context_sample=context_sample.tolist() if config.context else None,
    )


def _fit(
    config: FlowConfig,
    train: tuple,
    val: tuple,
    n_val: int,
    rng: np.random.Generator,
    dev: torch.device,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int,
    progress: bool,
) -> tuple[Flow, dict[str, list[float]], int]:
    """The optimization loop; returns the best flow (cpu, float32, eval), history and best epoch."""
    seed = config.seed
    n_train = train[0].shape[0]
    w_mean = float(train[2].sum()) / n_train
    flow = build_flow(config).to(dev)
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr, weight_decay=weight_decay)
    devices = [dev.index or 0] if dev.type == "cuda" else []

    def batch_loss(idx):
        yb, lb, wb, cb = (t[idx] if t is not None else None for t in train)
        return _nll_sum(flow, yb, lb, wb, cb) / (w_mean * len(idx))

    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        history, best_epoch = run_epochs(
            flow, optimizer, batch_loss, (lambda: _mean_nll(flow, *val)) if n_val else None,
            n_train=n_train, train_norm=n_train, rng=rng, device=dev, epochs=epochs, batch_size=batch_size,
            patience=patience, desc="train flow", progress=progress,
        )
    return flow.cpu().float().eval(), history, best_epoch
