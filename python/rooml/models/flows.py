"""Conditional rational-quadratic spline flows (nflows) and the trained-model container.

The flows use only the nflows pieces that rooml's ONNX exporter and C++ core
evaluate: ``PiecewiseRationalQuadraticCouplingTransform`` (ResidualNet
conditioner) or ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform``
(MADE with residual blocks), both with linear tails, plus ``LULinear``,
``BatchNorm``, ``ReversePermutation``/``RandomPermutation``, ``CompositeTransform``
and a ``StandardNormal`` base.

References: Durkan et al., Neural Spline Flows, arXiv:1906.04032;
Papamakarios et al., Masked Autoregressive Flow, arXiv:1705.07057.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.nn.nets import ResidualNet
from nflows.transforms.autoregressive import (
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.lu import LULinear
from nflows.transforms.normalization import BatchNorm
from nflows.transforms.permutations import RandomPermutation, ReversePermutation
from torch.nn import functional as F

from rooml.models.preprocessing import Preprocessing

__all__ = ["FlowConfig", "TrainedFlow", "build_flow"]

_FORMAT = "rooml.TrainedFlow"
_FORMAT_VERSION = 1
_CHUNK = 65536


@dataclass(frozen=True)
class FlowConfig:
    """Architecture of a rational-quadratic spline flow.

    Parameters
    ----------
    features
        Number of (preprocessed) features modelled by the flow.
    context
        Number of context (conditioning) variables; 0 for an unconditional flow.
    kind
        ``"coupling"`` or ``"autoregressive"``.  A 1-feature coupling flow is
        impossible; it is built as autoregressive (see :attr:`resolved_kind`).
    layers
        Number of spline transforms.
    bins
        Spline bins per transform.
    tail_bound
        Splines act on ``[-tail_bound, tail_bound]``; identity (linear tails) outside.
    hidden, blocks, dropout
        Conditioner width, number of residual blocks and dropout probability.
    lu_linear
        Put an ``LULinear`` (identity-initialized) after every spline transform.
        Without it, a permutation is inserted between spline transforms.
    batch_norm
        Put an nflows ``BatchNorm`` transform between spline transforms.
    permutation
        ``"reverse"`` or ``"random"`` (used only when ``lu_linear`` is off).
    seed
        Seed for the initial weights and random permutations.
    """

    features: int
    context: int = 0
    kind: str = "coupling"
    layers: int = 4
    bins: int = 8
    tail_bound: float = 4.0
    hidden: int = 64
    blocks: int = 2
    dropout: float = 0.0
    lu_linear: bool = True
    batch_norm: bool = False
    permutation: str = "reverse"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.features < 1 or self.context < 0 or self.layers < 1:
            raise ValueError("FlowConfig needs features >= 1, context >= 0 and layers >= 1")
        if self.kind not in ("coupling", "autoregressive"):
            raise ValueError(f"kind must be 'coupling' or 'autoregressive', not {self.kind!r}")
        if self.permutation not in ("reverse", "random"):
            raise ValueError(f"permutation must be 'reverse' or 'random', not {self.permutation!r}")
        if self.bins < 1 or self.hidden < 1 or self.blocks < 0 or self.tail_bound <= 0:
            raise ValueError("FlowConfig needs bins >= 1, hidden >= 1, blocks >= 0, tail_bound > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")

    @property
    def resolved_kind(self) -> str:
        """The kind actually built: ``"autoregressive"`` for one feature."""
        return "autoregressive" if self.features == 1 else self.kind

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-able)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FlowConfig fields {sorted(unknown)}")
        return cls(**data)


def _spline_transform(config: FlowConfig, mask: list[int] | None) -> torch.nn.Module:
    context = config.context or None
    if mask is None:
        return MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
            features=config.features,
            hidden_features=config.hidden,
            context_features=context,
            num_bins=config.bins,
            tails="linear",
            tail_bound=config.tail_bound,
            num_blocks=config.blocks,
            use_residual_blocks=True,
            random_mask=False,
            activation=F.relu,
            dropout_probability=config.dropout,
            use_batch_norm=False,
        )

    def conditioner(n_in: int, n_out: int) -> ResidualNet:
        return ResidualNet(
            in_features=n_in,
            out_features=n_out,
            hidden_features=config.hidden,
            context_features=context,
            num_blocks=config.blocks,
            activation=F.relu,
            dropout_probability=config.dropout,
            use_batch_norm=False,
        )

    return PiecewiseRationalQuadraticCouplingTransform(
        mask=torch.tensor(mask),
        transform_net_create_fn=conditioner,
        num_bins=config.bins,
        tails="linear",
        tail_bound=config.tail_bound,
        apply_unconditional_transform=False,
    )


def build_flow(config: FlowConfig) -> Flow:
    """Build an untrained flow (float32, train mode) from ``config``.

    Layer ``i`` is: spline transform, then ``LULinear`` if ``config.lu_linear``;
    between layers a permutation (only without LU) and a ``BatchNorm`` (if
    ``config.batch_norm``, its running variance initialized to 1 instead of
    nflows' 0 so that an untrained flow is well defined in eval mode).

    Coupling masks alternate between the even and odd ORIGINAL features, tracked
    through the permutations (nflows' alternating masks combined with a
    ``ReversePermutation`` on an even number of features would transform the same
    half in every layer).  With ``permutation="random"`` the masks alternate by
    position, so the random permutations choose the halves.

    Parameters
    ----------
    config
        The architecture.

    Returns
    -------
    nflows.flows.Flow
        With a ``StandardNormal`` base; ``flow.log_prob(y, context)`` is the
        density of the preprocessed features.
    """
    d = config.features
    coupling = config.resolved_kind == "coupling"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        transforms: list[torch.nn.Module] = []
        order = list(range(d))  # original feature held at each position
        for i in range(config.layers):
            mask = None
            if coupling:
                by_position = config.permutation == "random" and not config.lu_linear
                mask = [int((p if by_position else order[p]) % 2 == i % 2) for p in range(d)]
            transforms.append(_spline_transform(config, mask))
            if config.lu_linear:
                transforms.append(LULinear(d, identity_init=True))
            if i == config.layers - 1:
                break
            if not config.lu_linear:
                perm = ReversePermutation(d) if config.permutation == "reverse" else RandomPermutation(d)
                order = [order[int(k)] for k in perm._permutation]
                transforms.append(perm)
            if config.batch_norm:
                bn = BatchNorm(d)
                bn.running_var.fill_(1.0)
                transforms.append(bn)
        return Flow(CompositeTransform(transforms), StandardNormal([d]))


@contextlib.contextmanager
def quiet_nflows() -> Iterator[None]:
    """Context hiding nflows' ``torch.triangular_solve`` deprecation warning (``LULinear.inverse``).

    Users cannot act on it (it is nflows' code), so rooml filters it around its own calls, and only it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*triangular_solve is deprecated", category=UserWarning)
        yield


def _exact_log_z(flow: Flow) -> Flow:
    """Reset the base's ``_log_z`` buffer to the exact float64 ``D/2 log(2 pi)``.

    ``StandardNormal`` keeps it as a float64 buffer, but ``flow.float()`` rounds it
    to float32 (an offset of ~3e-8 in every log-density, even after ``.double()``).
    """
    base = flow._distribution
    if isinstance(base, StandardNormal):
        d = int(np.prod(base._shape))
        exact = 0.5 * d * math.log(2 * math.pi)
        base._log_z = torch.tensor(exact, dtype=torch.float64, device=base._log_z.device)
    return flow


def _as_events(
    values: Any, n_columns: int, what: str, names: list[str] | None
) -> np.ndarray:
    """Return ``values`` as a float64 ``(N, n_columns)`` array after checking it."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1 and n_columns == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != n_columns:
        raise ValueError(f"{what} must have shape (events, {n_columns}), got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        column = int(np.argmax(bad.any(axis=0)))
        label = f"{column} ({names[column]!r})" if names else str(column)
        raise ValueError(
            f"{what} column {label} has {int(bad[:, column].sum())} non-finite (NaN/inf) "
            f"values; {int(bad.any(axis=1).sum())} events are affected in total"
        )
    return arr


@dataclass
class TrainedFlow:
    """A trained flow with everything needed to evaluate it in physical space.

    Attributes
    ----------
    flow
        The nflows ``Flow`` (float32, cpu, eval mode) on preprocessed features
        and raw context variables.
    config
        Its architecture.
    preprocessing
        Physical -> flow-space transform; its Jacobian is part of :meth:`log_prob`.
    features, context_names
        Names of the physical features and the context variables.
    support
        ``(low, high)`` per physical feature (may be infinite).
    history
        ``{"train_loss": [...], "val_loss": [...]}`` per epoch (mean NLL in
        physical space, nats per event).
    best_epoch
        Epoch whose weights were kept (0-based).
    """

    flow: Flow = field(repr=False)
    config: FlowConfig
    preprocessing: Preprocessing
    features: list[str]
    context_names: list[str]
    support: list[tuple[float, float]]
    history: dict[str, list[float]] = field(default_factory=dict, repr=False)
    best_epoch: int = -1
    context_sample: list[list[float]] | None = field(default=None, repr=False)  # training context rows
    _flow64: Flow | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.flow = _exact_log_z(self.flow.float().cpu().eval())
        self.features = list(self.features)
        self.context_names = list(self.context_names)
        self.support = [(float(lo), float(hi)) for lo, hi in self.support]
        if len(self.features) != self.config.features or len(self.support) != self.config.features:
            raise ValueError("features and support need one entry per flow feature")
        if len(self.context_names) != self.config.context:
            raise ValueError("context_names needs one entry per context variable")
        if self.preprocessing.feature_names is None:
            self.preprocessing.feature_names = self.features

    @property
    def flow64(self) -> Flow:
        """Cached float64 deep copy of :attr:`flow` (rebuild with :meth:`refresh`)."""
        if self._flow64 is None:
            self._flow64 = _exact_log_z(copy.deepcopy(self.flow).double().eval())
        return self._flow64

    def refresh(self) -> None:
        """Drop the float64 cache after :attr:`flow`'s weights were changed."""
        self._flow64 = None

    def _context(self, context: Any, n: int) -> torch.Tensor | None:
        c = self.config.context
        if c == 0:
            if context is not None:
                raise ValueError("this flow has no context variables, but a context was given")
            return None
        if context is None:
            raise ValueError(f"this flow needs a context with {c} variables {self.context_names}")
        arr = np.asarray(context, dtype=np.float64)
        if arr.ndim == 1 and arr.shape[0] == c:
            arr = np.broadcast_to(arr, (n, c))
        arr = _as_events(arr, c, "context", self.context_names)
        if arr.shape[0] != n:
            raise ValueError(f"context has {arr.shape[0]} events, expected {n}")
        return torch.from_numpy(np.ascontiguousarray(arr))

    def log_prob(self, x: Any, context: Any = None) -> np.ndarray:
        """Physical-space log-density, computed in float64.

        ``flow64.log_prob(preprocess(x), context) + logdet(preprocess)``, exactly
        the float64 nflows computation; the reference for rooml's C++ evaluator.
        Events outside :attr:`support` are evaluated all the same (the support
        is metadata for the exported model); events outside the preprocessing
        domain raise ``ValueError``.

        Parameters
        ----------
        x
            Physical features, shape ``(N, D)``.
        context
            Shape ``(N, C)``, or ``(C,)`` for the same context for every event.

        Returns
        -------
        numpy.ndarray
            Shape ``(N,)``, float64.
        """
        x = _as_events(x, self.config.features, "x", self.features)
        ctx = self._context(context, x.shape[0])
        y, logdet = self.preprocessing.forward_numpy(x)
        y_t = torch.from_numpy(y)
        out = np.empty(x.shape[0])
        flow = self.flow64
        with torch.no_grad():
            for s in range(0, x.shape[0], _CHUNK):
                c = ctx[s : s + _CHUNK] if ctx is not None else None
                out[s : s + _CHUNK] = flow.log_prob(y_t[s : s + _CHUNK], context=c).numpy()
        return out + logdet

    def sample(self, n: int, context: Any = None, seed: int | None = None) -> np.ndarray:
        """Draw ``n`` events in physical space (float64 inverse pass).

        Parameters
        ----------
        n
            Number of events.
        context
            Shape ``(n, C)`` (one event per row) or ``(C,)`` (all at one point).
        seed
            Seed of the numpy generator that draws the base-distribution noise.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, D)``.
        """
        ctx = self._context(context, n)
        z = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, self.config.features)))
        out = np.empty((n, self.config.features))
        transform = self.flow64._transform
        with torch.no_grad(), quiet_nflows():
            for s in range(0, n, _CHUNK):
                c = ctx[s : s + _CHUNK] if ctx is not None else None
                out[s : s + _CHUNK] = transform.inverse(z[s : s + _CHUNK], context=c)[0].numpy()
        return self.preprocessing.inverse_numpy(out)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model with ``torch.save`` (state dict and plain data only)."""
        payload = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "config": self.config.to_dict(),
            "state_dict": self.flow.state_dict(),
            "preprocessing": self.preprocessing.to_list(),
            "features": self.features,
            "context_names": self.context_names,
            "support": [[lo, hi] for lo, hi in self.support],
            "history": {k: list(v) for k, v in self.history.items()},
            "best_epoch": self.best_epoch,
            "context_sample": self.context_sample,
        }
        torch.save(payload, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainedFlow:
        """Read a file written by :meth:`save` (``torch.load(weights_only=True)``)."""
        payload = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a rooml TrainedFlow file")
        if payload["format_version"] > _FORMAT_VERSION:
            raise ValueError(f"{path} has format version {payload['format_version']}, too new")
        config = FlowConfig.from_dict(payload["config"])
        flow = build_flow(config)
        flow.load_state_dict(payload["state_dict"])
        return cls(
            flow=flow,
            config=config,
            preprocessing=Preprocessing.from_list(payload["preprocessing"], payload["features"]),
            features=payload["features"],
            context_names=payload["context_names"],
            support=[tuple(s) for s in payload["support"]],
            history=payload["history"],
            best_epoch=payload["best_epoch"],
            context_sample=payload.get("context_sample"),
        )


def default_support(
    x: np.ndarray, preprocessing: Preprocessing, margin: float = 0.1
) -> list[tuple[float, float]]:
    """Data range widened by ``margin`` times its width, clipped to the preprocessing domain.

    Parameters
    ----------
    x
        Training data ``(N, D)``.
    preprocessing
        Its :meth:`Preprocessing.domain` bounds the result.
    margin
        Fraction of the data range added on each side (``math.inf`` gives the domain).
    """
    lo, hi = x.min(axis=0), x.max(axis=0)
    width = hi - lo
    domain = preprocessing.domain(x.shape[1])
    out = []
    for j, (dlo, dhi) in enumerate(domain):
        a = lo[j] - margin * width[j] if math.isfinite(margin) else -math.inf
        b = hi[j] + margin * width[j] if math.isfinite(margin) else math.inf
        out.append((float(max(a, dlo)), float(min(b, dhi))))
    return out
