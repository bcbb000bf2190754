"""Density-ratio networks: classifier ratios (NSBI) and exponential-loss reweighters (HH -> 4b).

A ratio network is a small MLP ``t(x)`` on preprocessed features.  Two losses:

* ``"bce"`` (classifier ratio, NSBI): weighted binary cross-entropy between a
  numerator (label 1) and a denominator (label 0) sample.  The optimum is
  ``s = sigmoid(t) = W_n p_n / (W_n p_n + W_d p_d)`` with ``W`` the class weight
  totals the loss sees, so ``r = p_n/p_d = s/(1-s) * W_d/W_n`` and
  ``log r = t + log(W_d/W_n)``.  By default the classes are balanced (each
  class's weights rescaled to the same total), so the correction is 0; with
  ``balance_classes=False`` the raw weights are used and the correction
  ``log(W_d/W_n)`` is kept with the model (Cranmer, Pavez, Louppe,
  arXiv:1506.02169; ATLAS NSBI, arXiv:2412.01600).
* ``"exponential"`` (reweighter, HH -> 4b): minimizes
  ``E_den[exp(Q/2)] + E_num[exp(-Q/2)]`` (weighted means per class), whose
  pointwise optimum is ``exp(Q) = p_n/p_d``; the weight is ``w = exp(Q)``, so
  ``log r = Q`` and the correction is 0 (ATLAS HH -> 4b, arXiv:2202.07288).

Both learn the ratio of *unit-normalized* densities.  Because the preprocessing
is applied to numerator and denominator alike, its Jacobian cancels: the ratio
in physical space equals the ratio in preprocessed space.

Negative weights.  Event weights enter the loss as signed multipliers (weighted
BCE / weighted exponential loss with signed weights).  This is an unbiased
estimate of the population loss, whose pointwise optimum is still
``p_n/p_d`` as long as each class's *net* weighted density is positive
everywhere (negative weights that cancel locally against positive ones, as in
NLO generators or a mixture with a subtracted component).  Where a class's net
density is negative the loss is unbounded below and no ratio exists: train
ratios to positive combinations (NSBI uses S, SBI and B, not the signed
interference term I).  Classes need a positive weight total.

Every trainer here is deterministic for a given seed on CPU, uses early
stopping on a validation split (best weights restored), shows a tqdm bar and
runs torch with one intra-op thread by default (as :func:`rooml.models.train_flow`).
"""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from rooml.models._loop import run_epochs, torch_threads
from rooml.models.flows import default_support
from rooml.models.preprocessing import Preprocessing
from rooml.models.training import _resolve_device, _resolve_preprocessing

__all__ = [
    "CalibrationReport",
    "RatioConfig",
    "RatioEnsemble",
    "RatioNet",
    "TrainedRatio",
    "calibration_report",
    "plot_calibration",
    "reliability_curve",
    "train_process_ratios",
    "train_ratio",
    "train_reweighter",
    "train_systematic_ratios",
]

_FORMAT = "rooml.TrainedRatio"
_FORMAT_VERSION = 1
_CHUNK = 65536
ACTIVATIONS = ("relu", "silu")
LOSSES = ("bce", "exponential")
COMBINATIONS = ("mean", "mean_log")


# --------------------------------------------------------------------------- model
@dataclass(frozen=True)
class RatioConfig:
    """Architecture of a ratio MLP.

    Parameters
    ----------
    hidden
        Units of each hidden layer (``()`` gives a linear model).
    activation
        ``"relu"`` (default; piecewise-linear ``log r``) or ``"silu"`` (smooth).
    dropout
        Dropout probability after each hidden activation (training only).
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden layer sizes must be >= 1, got {self.hidden}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatioConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


class RatioNet(nn.Module):
    """MLP ``t(y)``: linear layers ``layers.0 ... layers.L`` with an activation between them."""

    def __init__(self, features: int, config: RatioConfig):
        super().__init__()
        sizes = [int(features), *config.hidden, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = config.activation
        self.dropout = config.dropout

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Return the logit ``t`` of shape ``(N,)``."""
        h = y
        for layer in self.layers[:-1]:
            h = layer(h)
            h = torch.relu(h) if self.activation == "relu" else h * torch.sigmoid(h)
            if self.dropout:
                h = F.dropout(h, self.dropout, self.training)
        return self.layers[-1](h)[:, 0]


# --------------------------------------------------------------------------- inputs
def _as_table(data: Any, features: Sequence[str] | None, weights: Any, what: str):
    """Return ``(x (N, D) float64, w (N,), names)`` from a Sample, a mapping of columns or an array."""
    if hasattr(data, "columns") and hasattr(data, "weight"):  # rooml.data.Sample
        names = list(features) if features is not None else list(data.keys())
        x = np.column_stack([np.asarray(data[k], dtype=np.float64) for k in names])
        w = data.weight if weights is None else weights
    elif isinstance(data, Mapping):
        names = list(features) if features is not None else list(data.keys())
        missing = [k for k in names if k not in data]
        if missing:
            raise ValueError(f"{what}: no column(s) {missing}")
        x = np.column_stack([np.asarray(data[k], dtype=np.float64) for k in names])
        w = weights
    else:
        x = np.asarray(data, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"{what}: expected (events, features), got shape {x.shape}")
        names = list(features) if features is not None else [f"x{i}" for i in range(x.shape[1])]
        if len(names) != x.shape[1]:
            raise ValueError(f"{what}: {len(names)} feature names for {x.shape[1]} columns")
        w = weights
    n = x.shape[0]
    bad = ~np.isfinite(x)
    if bad.any():
        col = int(np.argmax(bad.any(axis=0)))
        raise ValueError(
            f"{what}: feature {col} ({names[col]!r}) has {int(bad[:, col].sum())} non-finite values"
        )
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.all(np.isfinite(w)):
        raise ValueError(f"{what}: weights must be {n} finite values")
    return x, w, names


def _features_of(model, x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray) or not (isinstance(x, Mapping) or hasattr(x, "columns")):
        return np.asarray(x, dtype=np.float64)
    return _as_table(x, model.features, None, "x")[0]


# --------------------------------------------------------------------------- trained models
@dataclass
class TrainedRatio:
    """A trained ratio network: ``log r(x) = t(preprocess(x)) + log_correction``.

    Attributes
    ----------
    net
        The :class:`RatioNet` (float32, cpu, eval mode) on preprocessed features.
    config
        Its architecture.
    preprocessing
        Physical -> network features.
    features, support
        Names and ``(low, high)`` per physical feature.
    log_correction
        Constant added to the logit (``log(W_d/W_n)`` for unbalanced BCE, else 0).
    loss
        ``"bce"`` or ``"exponential"``.
    seed, history, best_epoch
        Training record (history: per-epoch ``train_loss``/``val_loss``).
    """

    net: RatioNet = field(repr=False)
    config: RatioConfig
    preprocessing: Preprocessing
    features: list[str]
    support: list[tuple[float, float]]
    log_correction: float = 0.0
    loss: str = "bce"
    seed: int = 0
    history: dict[str, list[float]] = field(default_factory=dict, repr=False)
    best_epoch: int = -1
    _net64: RatioNet | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.net = self.net.float().cpu().eval()
        self.features = list(self.features)
        self.support = [(float(lo), float(hi)) for lo, hi in self.support]
        self.log_correction = float(self.log_correction)
        if len(self.support) != len(self.features) or self.net.layers[0].in_features != len(self.features):
            raise ValueError("features, support and the network input size must agree")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {self.loss!r}")

    @property
    def net64(self) -> RatioNet:
        """Cached float64 deep copy of :attr:`net` (the reference for the compiled core)."""
        if self._net64 is None:
            self._net64 = copy.deepcopy(self.net).double().eval()
        return self._net64

    def refresh(self) -> None:
        """Drop the float64 cache after :attr:`net`'s weights changed."""
        self._net64 = None

    def logit(self, x: Any) -> np.ndarray:
        """Network output ``t(x)`` in float64 (classifier logit / reweighter ``Q``)."""
        x = _features_of(self, x)
        y, _ = self.preprocessing.forward_numpy(x)
        out = np.empty(y.shape[0])
        with torch.no_grad():
            for s in range(0, y.shape[0], _CHUNK):
                out[s : s + _CHUNK] = self.net64(torch.from_numpy(y[s : s + _CHUNK])).numpy()
        return out

    def log_ratio(self, x: Any) -> np.ndarray:
        """``log r(x) = log p_num(x)/p_den(x)`` in float64; ``x`` is ``(N, D)``, a Sample or a mapping."""
        return self.logit(x) + self.log_correction

    def ratio(self, x: Any) -> np.ndarray:
        """``r(x) = exp(log_ratio(x))``."""
        return np.exp(self.log_ratio(x))

    def save(self, path: str | os.PathLike) -> None:
        """Write the model with ``torch.save`` (state dict and plain data only)."""
        torch.save({"format": _FORMAT, "format_version": _FORMAT_VERSION, **self._payload()}, os.fspath(path))

    def _payload(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "state_dict": self.net.state_dict(),
            "preprocessing": self.preprocessing.to_list(),
            "features": self.features,
            "support": [[lo, hi] for lo, hi in self.support],
            "log_correction": self.log_correction,
            "loss": self.loss,
            "seed": self.seed,
            "history": {k: list(v) for k, v in self.history.items()},
            "best_epoch": self.best_epoch,
        }

    @classmethod
    def _from_payload(cls, p: dict) -> TrainedRatio:
        config = RatioConfig.from_dict(p["config"])
        net = RatioNet(len(p["features"]), config)
        net.load_state_dict(p["state_dict"])
        return cls(
            net=net, config=config, preprocessing=Preprocessing.from_list(p["preprocessing"], p["features"]),
            features=p["features"], support=[tuple(s) for s in p["support"]],
            log_correction=p["log_correction"], loss=p["loss"], seed=p["seed"], history=p["history"],
            best_epoch=p["best_epoch"],
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainedRatio | RatioEnsemble:
        """Read a file written by :meth:`save` or :meth:`RatioEnsemble.save`."""
        payload = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a rooml ratio-model file")
        if payload["format_version"] > _FORMAT_VERSION:
            raise ValueError(f"{path} has format version {payload['format_version']}, too new")
        if "members" in payload:
            members = [cls._from_payload(m) for m in payload["members"]]
            return RatioEnsemble(members, payload["combination"])
        return cls._from_payload(payload)


@dataclass
class RatioEnsemble:
    """Ratio networks trained on the same samples with different seeds (or bootstraps).

    The combined ratio is the arithmetic mean of the members' ratios
    (``combination="mean"``: ``log r = log(mean_k r_k)``, the default, as the
    averaged reweighting weight of the HH -> 4b method) or their geometric mean
    (``"mean_log"``: ``log r = mean_k log r_k``).  The spread of the members is
    the training uncertainty.  All members share one preprocessing.
    """

    members: list[TrainedRatio]
    combination: str = "mean"

    def __post_init__(self) -> None:
        self.members = list(self.members)
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        if self.combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {COMBINATIONS}, not {self.combination!r}")
        first = self.members[0]
        for m in self.members[1:]:
            if m.features != first.features or m.preprocessing != first.preprocessing:
                raise ValueError("ensemble members must share features and preprocessing")

    def __len__(self) -> int:
        return len(self.members)

    @property
    def features(self) -> list[str]:
        """Feature names (shared by the members)."""
        return self.members[0].features

    @property
    def preprocessing(self) -> Preprocessing:
        """The shared preprocessing."""
        return self.members[0].preprocessing

    @property
    def support(self) -> list[tuple[float, float]]:
        """Union of the members' supports."""
        lows = np.min([[lo for lo, _ in m.support] for m in self.members], axis=0)
        highs = np.max([[hi for _, hi in m.support] for m in self.members], axis=0)
        return [(float(a), float(b)) for a, b in zip(lows, highs)]

    def member_log_ratios(self, x: Any) -> np.ndarray:
        """``log r_k(x)`` of every member, shape ``(K, N)``, float64."""
        x = _features_of(self, x)
        return np.stack([m.log_ratio(x) for m in self.members])

    def log_ratio(self, x: Any) -> np.ndarray:
        """Return the combined ``log r(x)`` (see the class docstring)."""
        lr = self.member_log_ratios(x)
        if self.combination == "mean_log":
            return lr.mean(axis=0)
        top = lr.max(axis=0)
        return top + np.log(np.exp(lr - top).sum(axis=0)) - math.log(lr.shape[0])

    def ratio(self, x: Any) -> np.ndarray:
        """Return the combined ``r(x)``."""
        return np.exp(self.log_ratio(x))

    def spread(self, x: Any) -> np.ndarray:
        """Return the standard deviation of the members' ratios per event (training uncertainty)."""
        return np.exp(self.member_log_ratios(x)).std(axis=0, ddof=1 if len(self) > 1 else 0)

    def save(self, path: str | os.PathLike) -> None:
        """Write all members with ``torch.save``; read back with :meth:`TrainedRatio.load`."""
        payload = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "combination": self.combination,
                   "members": [m._payload() for m in self.members]}  # fmt: skip
        torch.save(payload, os.fspath(path))


# --------------------------------------------------------------------------- training
def _element_loss(kind: str, t: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(t, label, reduction="none")
    return label * torch.exp(-0.5 * t) + (1.0 - label) * torch.exp(0.5 * t)


def _class_weights(w_num, w_den, loss: str, balance: bool) -> tuple[np.ndarray, float]:
    """Training weights (mean 1) and the log prior correction they imply."""
    wn, wd = float(w_num.sum()), float(w_den.sum())
    if not (wn > 0 and wd > 0):
        raise ValueError(
            f"numerator and denominator weights must have positive sums (got {wn:.6g} and {wd:.6g})"
        )
    n = len(w_num) + len(w_den)
    if loss == "exponential" or balance:
        w = np.concatenate([w_num * (0.5 * n / wn), w_den * (0.5 * n / wd)])
        return w, 0.0
    return np.concatenate([w_num, w_den]) * (n / (wn + wd)), math.log(wd / wn)


def train_ratio(
    numerator: Any,
    denominator: Any,
    *,
    features: Sequence[str] | None = None,
    numerator_weights: Any = None,
    denominator_weights: Any = None,
    config: RatioConfig | None = None,
    loss: str = "bce",
    balance_classes: bool = True,
    preprocessing: Preprocessing | Sequence[Mapping] | Mapping[str | int, str] | None = None,
    support: Sequence[tuple[float, float]] | None = None,
    support_margin: float = math.inf,
    epochs: int = 100,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    validation_fraction: float = 0.2,
    patience: int = 10,
    lr_decay: float | None = 0.5,
    device: str = "cpu",
    progress: bool = True,
    seed: int = 0,
    num_threads: int | None = 1,
) -> TrainedRatio:
    """Train a network for ``r(x) = p_num(x) / p_den(x)`` (unit-normalized densities).

    Parameters
    ----------
    numerator, denominator
        ``rooml.data.Sample`` (its weights are used), a mapping of columns, or an
        ``(N, D)`` array.
    features
        Columns to use (default: all columns of ``numerator``; ``x0, x1, ...`` for arrays).
    numerator_weights, denominator_weights
        Event weights overriding the samples' (signed weights allowed, see the
        module docstring; each class needs a positive total).
    config
        Architecture (default :class:`RatioConfig` ``()``: 2 x 64 ReLU).
    loss
        ``"bce"`` (classifier, ``r = s/(1-s) * W_d/W_n``) or ``"exponential"``
        (reweighter, ``r = exp(Q)``).
    balance_classes
        BCE only: rescale each class to the same weight total (correction 0);
        otherwise keep the raw weights and store ``log(W_d/W_n)``.
    preprocessing
        A :class:`Preprocessing`, its ``to_list()`` form, a recipe spec
        (``{"m4l": "log"}``), or ``None`` for a standardization; computed on the
        union of both samples.
    support, support_margin
        ``(low, high)`` per feature (events outside are rejected by the exported
        model).  Default: the data range of both samples widened by
        ``support_margin`` of its width per side, clipped to the preprocessing
        domain; the default margin ``inf`` gives the preprocessing domain, because
        a ratio is evaluated on data whose tails reach beyond any training sample
        (the network extrapolates there: restrict the support where that matters).
    epochs, batch_size, lr, weight_decay
        Adam with L2 penalty ``weight_decay``.
    validation_fraction, patience
        Early stopping on the weighted validation loss; the best epoch's weights are kept.
    lr_decay
        Multiply the learning rate by this factor after ``max(1, patience // 3)``
        epochs without improvement (``None``: constant rate).  Decaying before
        stopping averages out the mini-batch noise that limits the ratio's precision.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    progress
        tqdm bar over epochs.
    seed
        Seed of the initial weights, the validation split and the shuffles.
    num_threads
        torch intra-op threads during training (restored afterwards); ``None`` keeps torch's setting.

    Returns
    -------
    TrainedRatio
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
    config = config or RatioConfig()
    xn, wn, names = _as_table(numerator, features, numerator_weights, "numerator")
    xd, wd, _ = _as_table(denominator, names, denominator_weights, "denominator")
    if xd.shape[1] != xn.shape[1]:
        raise ValueError(f"numerator has {xn.shape[1]} features, denominator {xd.shape[1]}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in [0, 1)")
    x = np.concatenate([xn, xd])
    label = np.concatenate([np.ones(len(xn)), np.zeros(len(xd))])
    w, log_correction = _class_weights(wn, wd, loss, balance_classes)
    pre = _resolve_preprocessing(preprocessing, x, names)
    y, _ = pre.forward_numpy(x)

    n = len(x)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(validation_fraction * n))
    if validation_fraction > 0 and not 0 < n_val < n:
        raise ValueError(f"cannot split {n} events with validation_fraction={validation_fraction}")
    dev = _resolve_device(device)

    def tensors(idx):
        return tuple(torch.as_tensor(a[idx], dtype=torch.float32, device=dev) for a in (y, label, w))

    train = tensors(order[n_val:])
    val = tensors(order[:n_val]) if n_val else train
    with torch_threads(num_threads):
        net, history, best_epoch = _fit(
            x.shape[1], config, loss, train, val, bool(n_val), rng, dev, seed,
            epochs, batch_size, lr, weight_decay, patience, lr_decay, progress,
        )  # fmt: skip
    support = list(support) if support is not None else default_support(x, pre, support_margin)
    return TrainedRatio(
        net=net, config=config, preprocessing=pre, features=names, support=support,
        log_correction=log_correction, loss=loss, seed=seed, history=history, best_epoch=best_epoch,
    )  # fmt: skip


@torch.no_grad()
def _mean_loss(net, kind, y, label, w) -> float:
    total = 0.0
    for s in range(0, y.shape[0], _CHUNK):
        part = slice(s, s + _CHUNK)
        total += float((w[part] * _element_loss(kind, net(y[part]), label[part])).double().sum())
    return total / float(w.double().sum())


def _fit(d, config, kind, train, val, has_val, rng, dev, seed, epochs, batch_size, lr, weight_decay,
         patience, lr_decay, progress):  # fmt: skip
    """Adam loop with early stopping; returns the best net (cpu, float32, eval), history, best epoch."""
    n_train = train[0].shape[0]
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        net = RatioNet(d, config).to(dev)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = None
        if lr_decay is not None:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=float(lr_decay), patience=max(1, patience // 3) - 1, threshold=0.0
            )

        def batch_loss(idx):
            yb, lb, wb = (t[idx] for t in train)
            return (wb * _element_loss(kind, net(yb), lb)).sum() / len(idx)

        history, best_epoch = run_epochs(
            net, optimizer, batch_loss, (lambda: _mean_loss(net, kind, *val)) if has_val else None,
            n_train=n_train, train_norm=float(train[2].double().sum()), rng=rng, device=dev, epochs=epochs,
            batch_size=batch_size, patience=patience, desc=f"train ratio ({kind})", progress=progress,
            scheduler=scheduler,
        )
    return net.cpu().float().eval(), history, best_epoch


def train_process_ratios(
    samples: Mapping[str, Any], reference: str, **kwargs: Any
) -> dict[str, TrainedRatio]:
    """Per-process ratios ``r_j = p_j / p_ref`` for every process ``j != reference`` (NSBI).

    Parameters
    ----------
    samples
        ``{process: Sample}`` including the reference.
    reference
        Name of the reference (denominator) sample, e.g. ``"SBI"``.
    **kwargs
        Passed to :func:`train_ratio` (``features``, ``config``, ``preprocessing``, ...).

    Returns
    -------
    dict of str to TrainedRatio
    """
    if reference not in samples:
        raise ValueError(f"reference {reference!r} is not among the samples {sorted(samples)}")
    ref = samples[reference]
    return {name: train_ratio(s, ref, **kwargs) for name, s in samples.items() if name != reference}


def train_systematic_ratios(
    nominal: Any, up: Any = None, down: Any = None, **kwargs: Any
) -> dict[str, TrainedRatio]:
    """Systematic ratios ``g(x, alpha=+-1) = p(x | alpha=+-1) / p(x | 0)`` (NSBI).

    Parameters
    ----------
    nominal, up, down
        Samples at ``alpha = 0, +1, -1`` (``up``/``down`` may be omitted).
    **kwargs
        Passed to :func:`train_ratio`.

    Returns
    -------
    dict
        ``{"up": TrainedRatio, "down": TrainedRatio}`` for the variations given.
    """
    out = {}
    for name, sample in (("up", up), ("down", down)):
        if sample is not None:
            out[name] = train_ratio(sample, nominal, **kwargs)
    if not out:
        raise ValueError("give at least one of up, down")
    return out


def train_reweighter(
    numerator: Any,
    denominator: Any,
    *,
    n_retrain: int = 1,
    seed: int = 0,
    bootstrap: bool = False,
    combination: str = "mean",
    features: Sequence[str] | None = None,
    numerator_weights: Any = None,
    denominator_weights: Any = None,
    preprocessing: Any = None,
    support: Sequence[tuple[float, float]] | None = None,
    support_margin: float = math.inf,
    progress: bool = True,
    **kwargs: Any,
) -> RatioEnsemble:
    """Exponential-loss reweighter ``w(x) = exp(Q(x)) = p_num/p_den``, retrained ``n_retrain`` times.

    For HH -> 4b: numerator the 4b (or 3b) events of a control region,
    denominator the 2b events of the same region; ``(N_4b/N_2b) w(x)`` then maps
    the 2b yield onto the 4b one.  Member ``k`` uses seed ``seed + k`` (initial
    weights, validation split, shuffles) and, with ``bootstrap=True``, Poisson(1)
    event multipliers, so the members' spread covers the training-sample
    fluctuations too.  All members share one preprocessing and support.

    Parameters
    ----------
    numerator, denominator
        As in :func:`train_ratio`.
    n_retrain
        Number of members ``K``.
    seed
        Seed of the first member.
    bootstrap
        Poisson(1)-bootstrap the events of each member.
    combination
        ``"mean"`` (mean weight) or ``"mean_log"`` (mean ``Q``), see :class:`RatioEnsemble`.
    **kwargs
        Passed to :func:`train_ratio` (``config``, ``epochs``, ``lr``, ...).

    Returns
    -------
    RatioEnsemble
    """
    if n_retrain < 1:
        raise ValueError("n_retrain must be >= 1")
    if "loss" in kwargs:
        raise ValueError("train_reweighter always uses the exponential loss")
    xn, wn, names = _as_table(numerator, features, numerator_weights, "numerator")
    xd, wd, _ = _as_table(denominator, names, denominator_weights, "denominator")
    x = np.concatenate([xn, xd])
    pre = _resolve_preprocessing(preprocessing, x, names)
    support = list(support) if support is not None else default_support(x, pre, support_margin)
    members = []
    quiet = not progress or n_retrain == 1
    bar = tqdm(range(n_retrain), desc="reweighter members", disable=quiet, leave=False)
    for k in bar:
        wn_k, wd_k = wn, wd
        if bootstrap:  # Poisson(1) multiplicities, independent of the training seed's other uses
            boot = np.random.default_rng([seed + k, 7919])
            wn_k, wd_k = wn * boot.poisson(1.0, len(xn)), wd * boot.poisson(1.0, len(xd))
        members.append(
            train_ratio(
                xn, xd, features=names, numerator_weights=wn_k, denominator_weights=wd_k, loss="exponential",
                preprocessing=pre, support=support, seed=seed + k, progress=progress and n_retrain == 1,
                **kwargs,
            )  # fmt: skip
        )
    return RatioEnsemble(members, combination)


# --------------------------------------------------------------------------- calibration
@dataclass
class CalibrationReport:
    """Calibration of a ratio model on a numerator and a denominator sample.

    Attributes
    ----------
    mean_ratio, mean_ratio_error
        Weighted mean of ``r`` over the denominator and its statistical error
        (``E_den[r] = 1`` for a calibrated ratio).
    reliability
        ``edges, predicted, observed, observed_error, weight`` per bin of the
        balanced score ``s = r/(1+r)``: the observed fraction is the numerator's
        share when both classes are normalized to unit weight (ideal: ``s``).
    closure
        ``{feature: {"edges", "numerator", "numerator_error", "reweighted",
        "reweighted_error", "denominator", "chi2", "ndf"}}``: normalized
        histograms of the numerator and of the denominator weighted by ``r``.
    chi2, ndf
        Closure chi2 summed over features and its degrees of freedom.
    """

    mean_ratio: float
    mean_ratio_error: float
    reliability: dict[str, np.ndarray]
    closure: dict[str, dict]
    chi2: float
    ndf: int

    @property
    def mean_ratio_pull(self) -> float:
        """``(mean_ratio - 1) / mean_ratio_error``."""
        return (self.mean_ratio - 1.0) / self.mean_ratio_error

    @property
    def max_reliability_deviation(self) -> float:
        """Largest ``|observed - predicted|`` over the reliability bins holding >= 0.5 % of the events.

        (The weight of both classes together is 2; sparsely filled bins at extreme
        scores only show statistical noise and are left out.)
        """
        r = self.reliability
        ok = r["weight"] >= 0.01
        return float(np.max(np.abs(r["observed"][ok] - r["predicted"][ok])))

    @property
    def reliability_chi2(self) -> tuple[float, int]:
        """``sum ((observed - predicted) / observed_error)^2`` over filled bins, and their number."""
        r = self.reliability
        ok = (r["weight"] > 0) & (r["observed_error"] > 0)
        pulls = (r["observed"][ok] - r["predicted"][ok]) / r["observed_error"][ok]
        return float(np.sum(pulls**2)), int(ok.sum())

    def summary(self) -> str:
        """One line per figure of merit."""
        lines = [f"E_den[r] = {self.mean_ratio:.4f} +- {self.mean_ratio_error:.4f} "
                 f"(pull {self.mean_ratio_pull:+.2f})",
                 f"reliability: max |observed - predicted| = {self.max_reliability_deviation:.4f}, "
                 f"chi2/bins = {self.reliability_chi2[0]:.1f}/{self.reliability_chi2[1]}",
                 f"closure chi2/ndf = {self.chi2:.1f}/{self.ndf}"]  # fmt: skip
        for name, c in self.closure.items():
            lines.append(f"  {name}: chi2/ndf = {c['chi2']:.1f}/{c['ndf']}")
        return "\n".join(lines)


def _log_ratio_of(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.log_ratio(x), dtype=np.float64)


def _hist(values, weights, edges):
    h, _ = np.histogram(values, edges, weights=weights)
    e2, _ = np.histogram(values, edges, weights=weights * weights)
    return h, np.sqrt(e2)


def reliability_curve(
    log_ratio_num: np.ndarray, log_ratio_den: np.ndarray, w_num: np.ndarray, w_den: np.ndarray, bins: int = 10
) -> dict[str, np.ndarray]:
    """Reliability curve of the balanced score ``s = r/(1+r)`` from precomputed ``log r``.

    Parameters
    ----------
    log_ratio_num, log_ratio_den
        ``log r`` on the numerator and denominator samples.
    w_num, w_den
        Their weights; each class is normalized to unit total.
    bins
        Equal-width bins of ``s`` in ``[0, 1]``.

    Returns
    -------
    dict
        ``edges``, ``predicted`` (weighted mean ``s`` per bin), ``observed``
        (numerator share), ``observed_error``, ``weight`` (total per bin).
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    s_n = 1.0 / (1.0 + np.exp(-np.asarray(log_ratio_num)))
    s_d = 1.0 / (1.0 + np.exp(-np.asarray(log_ratio_den)))
    a_n, a_d = w_num / w_num.sum(), w_den / w_den.sum()
    hn, en = _hist(s_n, a_n, edges)
    hd, ed = _hist(s_d, a_d, edges)
    sn, _ = np.histogram(s_n, edges, weights=a_n * s_n)
    sd, _ = np.histogram(s_d, edges, weights=a_d * s_d)
    tot = hn + hd
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.where(tot != 0, (sn + sd) / tot, np.nan)
        observed = np.where(tot != 0, hn / tot, np.nan)
        # error of hn/(hn+hd) with independent hn, hd
        error = np.where(tot != 0, np.sqrt((hd * en) ** 2 + (hn * ed) ** 2) / tot**2, np.nan)
    return {"edges": edges, "predicted": predicted, "observed": observed, "observed_error": error,
            "weight": tot}  # fmt: skip


def calibration_report(
    model: Any,
    numerator: Any,
    denominator: Any,
    *,
    features: Sequence[str] | None = None,
    numerator_weights: Any = None,
    denominator_weights: Any = None,
    bins: int = 20,
    reliability_bins: int = 10,
) -> CalibrationReport:
    """Check a ratio model on held-out samples: ``E_den[r] = 1``, reliability and closure.

    Parameters
    ----------
    model
        A :class:`TrainedRatio`, :class:`RatioEnsemble` or ``rooml._core.RatioModel``
        (anything with ``log_ratio(x)`` on ``(N, D)`` arrays and ``features``).
    numerator, denominator
        Samples as in :func:`train_ratio` (use events not seen in training).
    features
        Columns (default ``model.features``).
    bins
        Closure histogram bins per feature (numerator quantiles, so equally populated).
    reliability_bins
        Bins of the balanced score.

    Returns
    -------
    CalibrationReport
    """
    names = list(features) if features is not None else list(model.features)
    xn, wn, _ = _as_table(numerator, names, numerator_weights, "numerator")
    xd, wd, _ = _as_table(denominator, names, denominator_weights, "denominator")
    ln, ld = _log_ratio_of(model, xn), _log_ratio_of(model, xd)
    rd = np.exp(ld)
    wsum = wd.sum()
    mean = float(np.sum(wd * rd) / wsum)
    mean_err = float(np.sqrt(np.sum((wd * (rd - mean)) ** 2)) / wsum)
    rel = reliability_curve(ln, ld, wn, wd, reliability_bins)
    closure, chi2_total, ndf_total = {}, 0.0, 0
    for j, name in enumerate(names):
        qs = np.quantile(xn[:, j], np.linspace(0, 1, bins + 1))
        edges = np.unique(np.concatenate([[min(xn[:, j].min(), xd[:, j].min())], qs[1:-1],
                                          [max(xn[:, j].max(), xd[:, j].max())]]))  # fmt: skip
        if len(edges) < 3:  # a (nearly) discrete feature: one bin per value
            values = np.unique(np.concatenate([xn[:, j], xd[:, j]]))
            mids = 0.5 * (values[1:] + values[:-1])
            edges = np.concatenate([[values[0] - 0.5], mids, [values[-1] + 0.5]])
        hn, en = _hist(xn[:, j], wn / wn.sum(), edges)
        rw = wd * rd
        hr, er = _hist(xd[:, j], rw / rw.sum(), edges)
        hd, _ = _hist(xd[:, j], wd / wsum, edges)
        var = en**2 + er**2
        ok = var > 0
        chi2 = float(np.sum((hn[ok] - hr[ok]) ** 2 / var[ok]))
        ndf = int(ok.sum()) - 1
        closure[name] = {"edges": edges, "numerator": hn, "numerator_error": en, "reweighted": hr,
                         "reweighted_error": er, "denominator": hd, "chi2": chi2, "ndf": ndf}  # fmt: skip
        chi2_total += chi2
        ndf_total += ndf
    return CalibrationReport(mean, mean_err, rel, closure, chi2_total, ndf_total)


def plot_calibration(report: CalibrationReport, path: str | os.PathLike | None = None,
                     features: Sequence[str] | None = None, max_features: int = 5):  # fmt: skip
    """Draw the reliability curve and the closure histograms (matplotlib + mplhep).

    Parameters
    ----------
    report
        From :func:`calibration_report`.
    path
        Save the figure there when given.
    features
        Closure panels to draw (default: the first ``max_features``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    import mplhep as hep

    names = list(features) if features is not None else list(report.closure)[:max_features]
    ncol = 1 + len(names)
    with plt.style.context(hep.style.ROOT), plt.rc_context({"font.size": 14}):
        fig, axes = plt.subplots(2, ncol, figsize=(5.0 * ncol, 6.0), squeeze=False, sharex="col",
                                 layout="constrained", gridspec_kw={"height_ratios": [3, 1]})  # fmt: skip
        r = report.reliability
        ok = r["weight"] > 0
        top, bottom = axes[0, 0], axes[1, 0]
        top.plot([0, 1], [0, 1], ls="--", color="grey", label="ideal")
        top.errorbar(r["predicted"][ok], r["observed"][ok], yerr=r["observed_error"][ok], fmt="o",
                     color="k", label="observed")  # fmt: skip
        top.set(xlim=(0, 1), ylim=(0, 1), ylabel="numerator fraction")
        top.legend(title=f"$E_{{den}}[r]$ = {report.mean_ratio:.3f} ± {report.mean_ratio_error:.3f}",
                   fontsize="x-small", title_fontsize="x-small", loc="upper left")  # fmt: skip
        top.tick_params(labelbottom=False)
        bottom.axhline(0, color="grey", ls="--")
        bottom.errorbar(r["predicted"][ok], r["observed"][ok] - r["predicted"][ok],
                        yerr=r["observed_error"][ok], fmt="o", color="k")  # fmt: skip
        bottom.set(xlim=(0, 1), xlabel="predicted s = r/(1+r)", ylabel="obs. - pred.")
        for col, name in enumerate(names, start=1):
            c = report.closure[name]
            edges = c["edges"]
            width = np.diff(edges)
            top, bottom = axes[0, col], axes[1, col]
            hep.histplot(c["denominator"] / width, edges, ax=top, label="denominator", color="grey", ls=":")
            hep.histplot(c["reweighted"] / width, edges, yerr=c["reweighted_error"] / width, ax=top,
                         label="denominator × r", color="C1")  # fmt: skip
            hep.histplot(c["numerator"] / width, edges, yerr=c["numerator_error"] / width, ax=top,
                         histtype="errorbar", label="numerator", color="k")  # fmt: skip
            density = np.concatenate([c["numerator"], c["denominator"]]) / np.concatenate([width, width])
            if density.max() > 30 * max(density[density > 0].min(), 1e-300):
                top.set_yscale("log")
            top.set_ylabel("density")
            top.legend(title=f"χ²/ndf = {c['chi2']:.1f}/{c['ndf']}", fontsize="x-small",
                       title_fontsize="x-small")  # fmt: skip
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = c["reweighted"] / c["numerator"]
                error = np.hypot(c["reweighted_error"], c["numerator_error"]) / c["numerator"]
            hep.histplot(ratio, edges, yerr=error, ax=bottom, histtype="errorbar", color="C1")
            bottom.axhline(1, color="grey", ls="--")
            bottom.set(xlabel=name, ylabel="rew./num.", ylim=(0.8, 1.2))
            skewed = edges[len(edges) // 2] - edges[0] < 0.1 * (edges[-1] - edges[0])
            if edges[0] > 0 and skewed:  # a long tail: log axis
                bottom.set_xscale("log")
            bottom.set_xlim(edges[0], edges[-1])
            top.tick_params(labelbottom=False)
    if path is not None:
        fig.savefig(os.fspath(path))
    return fig
