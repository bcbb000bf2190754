"""Deep ensembles and bootstraps of flows, trained in parallel on Dask.

HI-SIGMA's uncertainty from the finite training sample (``DESIGN.md``, method 1):
``D`` bootstrap replicas of the training set, each fitted ``K`` times with
different seeds; a *bootstrap model* combines its ``K`` seeds, and the spread of
the ``D`` bootstrap models is the training uncertainty.  :func:`train_ensemble`
runs the ``D x K`` trainings as independent Dask tasks; :class:`FlowEnsemble`
holds them as ``members[d][k]`` and combines them with one of two rules:

``"mean_log_prob"``
    ``log p = mean_m log p_m`` -- the geometric mean of the members, as in the
    HI-SIGMA paper.  It is **not** normalized: by the AM-GM inequality
    ``exp(mean_m log p_m) <= mean_m p_m`` at every point, so its integral is
    ``<= 1`` (:func:`normalization_of_geometric_mean` measures it).
``"mixture"``
    ``log p = log(mean_m p_m)`` -- the equal-weight mixture, a normalized
    density that can be sampled.

Seeds never depend on the scheduling: bootstrap ``d``'s data and member
``(d, k)``'s training seed come from ``numpy.random.SeedSequence(seed,
spawn_key=...)`` (:func:`bootstrap_replica`, :func:`member_seed`), so one worker,
two workers and the serial path give bit-identical members.

References: Lakshminarayanan et al., Deep Ensembles, arXiv:1612.01474;
Efron, Bootstrap methods (1979); Oza & Russell, online (Poisson) bagging (2001).
"""
from __future__ import annotations

import json
import math
import os
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy.special import logsumexp

from rooml._fanout import fan_out
from rooml.models.flows import FlowConfig, TrainedFlow, _as_events, default_support
from rooml.models.training import _resolve_preprocessing, train_flow

__all__ = [
    "BOOTSTRAP_METHODS",
    "RULES",
    "FlowEnsemble",
    "Normalization",
    "bootstrap_replica",
    "member_seed",
    "normalization_of_geometric_mean",
    "train_ensemble",
]

RULES = ("mean_log_prob", "mixture")
BOOTSTRAP_METHODS = ("resample", "poisson", None)

_FORMAT = "rooml.FlowEnsemble"
_FORMAT_VERSION = 1
_INDEX_FILE = "ensemble.json"
_RESERVED = ("seed", "progress", "num_threads")


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"unknown ensemble rule {rule!r}; choose one of {RULES}")


# --------------------------------------------------------------------------- seeds and replicas
def member_seed(seed: int, bootstrap: int, member: int) -> int:
    """Return the training seed of member ``(d, k)``: 32 bits of ``SeedSequence(seed, spawn_key=(d, 1, k))``.

    >>> member_seed(0, 0, 0) == member_seed(0, 0, 0) != member_seed(0, 0, 1)
    True
    """
    seq = np.random.SeedSequence(int(seed), spawn_key=(int(bootstrap), 1, int(member)))
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def bootstrap_replica(
    x: Any,
    context: Any = None,
    weights: Any = None,
    *,
    method: str | None = "resample",
    seed: int = 0,
    index: int = 0,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Bootstrap replica ``index`` of a (weighted) training set.

    Both methods return the replica as **multiplicities**: each original event
    appears at most once, with its weight multiplied by the number of times it
    was drawn, and events drawn zero times are dropped.  The weighted NLL is the
    same as with duplicated rows, but a duplicated event can never land on both
    sides of :func:`~rooml.models.train_flow`'s train/validation split (which
    would make early stopping watch a partly-trained-on validation set).

    Parameters
    ----------
    x, context, weights
        Events ``(N, D)``, context ``(N, C)`` or ``None``, weights ``(N,)`` or ``None`` (ones).
    method
        ``"resample"``: draw ``N`` events with replacement (multinomial counts,
        summing to ``N``); ``"poisson"``: multiply each weight by an independent
        Poisson(1) count (mean 1); ``None``: the original data.
    seed, index
        The counts come from ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(index, 0)))``.

    Returns
    -------
    tuple
        ``(x, context, weights)`` of the replica (float64 arrays; ``context`` ``None`` if none was given).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    c = None if context is None else np.asarray(context, dtype=np.float64)
    if w.shape != (n,) or (c is not None and c.shape[0] != n):
        raise ValueError(f"x has {n} events; weights and context must have as many")
    if method is None:
        return x, c, w
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"unknown bootstrap method {method!r}; choose one of {BOOTSTRAP_METHODS}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index), 0)))
    if method == "resample":
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
    else:
        counts = rng.poisson(1.0, size=n)
    keep = counts > 0
    return x[keep], (c[keep] if c is not None else None), w[keep] * counts[keep]


# --------------------------------------------------------------------------- the ensemble
class Normalization(NamedTuple):
    """Monte Carlo estimate of an integral and its standard error."""

    value: float
    error: float


@dataclass
class FlowEnsemble:
    """``D`` bootstrap models of ``K`` seeds each: ``members[d][k]``, flat index ``m = d*K + k``.

    Attributes
    ----------
    members
        ``D`` lists of ``K`` :class:`~rooml.models.TrainedFlow` (same features,
        context variables and architecture apart from the seed).
    rule
        ``"mean_log_prob"`` (HI-SIGMA; geometric mean, not normalized) or
        ``"mixture"`` (normalized); see the module docstring.
    config, features, context_names
        Shared by the members (default: taken from ``members[0][0]``).
    bootstrap, seed
        How the replicas were made (metadata; ``None`` if unknown).
    """

    members: list[list[TrainedFlow]]
    rule: str = "mean_log_prob"
    config: FlowConfig | None = None
    features: list[str] | None = None
    context_names: list[str] | None = None
    bootstrap: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_rule(self.rule)
        rows = [list(row) for row in self.members]
        if not rows or not rows[0]:
            raise ValueError("an ensemble needs at least one bootstrap with at least one member")
        if any(len(row) != len(rows[0]) for row in rows):
            sizes = [len(r) for r in rows]
            raise ValueError(f"every bootstrap needs the same number of members, got {sizes}")
        self.members = rows
        first = rows[0][0]
        self.config = first.config if self.config is None else self.config
        self.features = list(first.features if self.features is None else self.features)
        self.context_names = list(first.context_names if self.context_names is None else self.context_names)
        arch = {**self.config.to_dict(), "seed": 0}
        for m in self.flat_members:
            if m.features != self.features or m.context_names != self.context_names:
                raise ValueError("ensemble members must share features and context_names")
            if {**m.config.to_dict(), "seed": 0} != arch:
                raise ValueError("ensemble members must share the architecture (FlowConfig apart from seed)")

    # ---- shape
    @property
    def n_bootstraps(self) -> int:
        """``D``."""
        return len(self.members)

    @property
    def n_members(self) -> int:
        """``K``, members (seeds) per bootstrap."""
        return len(self.members[0])

    def __len__(self) -> int:
        return sum(len(row) for row in self.members)

    @property
    def flat_members(self) -> list[TrainedFlow]:
        """All members in the order ``m = d*K + k``."""
        return [m for row in self.members for m in row]

    def with_rule(self, rule: str) -> FlowEnsemble:
        """Return the same members (shared, not copied) combined with another rule."""
        return replace(self, rule=rule)

    def bootstrap_models(self) -> list[FlowEnsemble]:
        """One single-bootstrap ensemble (``members=[members[d]]``, same rule) per bootstrap ``d``.

        These are HI-SIGMA's bootstrap models: fit each one, then combine the
        profiled likelihood curves by their envelope.
        """
        return [replace(self, members=[row]) for row in self.members]

    def _selected(self, bootstrap: int | None) -> list[TrainedFlow]:
        if bootstrap is None:
            return self.flat_members
        d = int(bootstrap)
        if not 0 <= d < self.n_bootstraps:
            raise ValueError(f"bootstrap must be in [0, {self.n_bootstraps}), not {bootstrap}")
        return self.members[d]

    # ---- evaluation
    def member_log_probs(self, x: Any, context: Any = None, bootstrap: int | None = None) -> np.ndarray:
        """``log p_m(x)`` of every member, shape ``(N, D*K)`` (column ``m = d*K + k``), float64.

        With ``bootstrap=d``: only that bootstrap's ``K`` members, shape ``(N, K)``.
        """
        x = _as_events(x, self.config.features, "x", self.features)
        return np.stack([m.log_prob(x, context) for m in self._selected(bootstrap)], axis=1)

    def log_prob(self, x: Any, context: Any = None, bootstrap: int | None = None) -> np.ndarray:
        """Return the combined log-density (``rule``) of all members, or of bootstrap ``d``'s.

        Parameters
        ----------
        x
            Physical features ``(N, D)``.
        context
            ``(N, C)``, ``(C,)`` or ``None``.
        bootstrap
            ``None``: all ``D*K`` members; ``d``: bootstrap model ``d`` only.

        Returns
        -------
        numpy.ndarray
            Shape ``(N,)``.  For ``"mean_log_prob"`` this is an unnormalized log-density.
        """
        lp = self.member_log_probs(x, context, bootstrap)
        if self.rule == "mean_log_prob":
            return lp.mean(axis=1)
        return logsumexp(lp, axis=1) - math.log(lp.shape[1])

    def spread(self, x: Any, context: Any = None, bootstrap: int | None = None) -> np.ndarray:
        """Per-event standard deviation (``ddof=1``; 0 for one member) of the members' log-probabilities."""
        lp = self.member_log_probs(x, context, bootstrap)
        return lp.std(axis=1, ddof=1 if lp.shape[1] > 1 else 0)

    def sample(
        self, n: int, context: Any = None, seed: int | None = None, bootstrap: int | None = None
    ) -> np.ndarray:
        """Draw ``n`` events from the mixture: a member chosen uniformly per event, then its sample.

        Only for ``rule="mixture"``; the geometric mean is not a normalized
        density and has no sampler (use ``with_rule("mixture")`` and reweight by
        ``exp(log_prob_geo - log_prob_mix)`` if you need it).

        Parameters
        ----------
        n
            Number of events.
        context
            ``(n, C)`` (one row per event), ``(C,)`` or ``None``.
        seed
            Seed of the member choice and of the members' noise.
        bootstrap
            Sample bootstrap model ``d``'s mixture only.
        """
        if self.rule != "mixture":
            raise ValueError(
                f"cannot sample an ensemble with rule {self.rule!r}: the mean of log-probabilities "
                "(geometric mean) is not a normalized density; use ensemble.with_rule('mixture')"
            )
        members = self._selected(bootstrap)
        n = int(n)
        ctx = None if context is None else np.asarray(context, dtype=np.float64)
        per_event = ctx is not None and ctx.ndim == 2
        if per_event and ctx.shape[0] != n:
            raise ValueError(f"context has {ctx.shape[0]} rows, expected n = {n}")
        root = np.random.SeedSequence(seed)
        choice_seq, *member_seqs = root.spawn(1 + len(members))
        pick = np.random.default_rng(choice_seq).integers(0, len(members), size=n)
        out = np.empty((n, self.config.features))
        for m, (member, seq) in enumerate(zip(members, member_seqs)):
            rows = np.flatnonzero(pick == m)
            if rows.size:
                c = ctx[rows] if per_event else ctx
                s = int(seq.generate_state(1, dtype=np.uint32)[0])
                out[rows] = member.sample(rows.size, c, seed=s)
        return out

    # ---- persistence
    def save(self, directory: str | os.PathLike) -> None:
        """Write ``ensemble.json`` and one ``member_d{d}_k{k}.pt`` per member into ``directory``."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        files = []
        for d, row in enumerate(self.members):
            files.append([])
            for k, member in enumerate(row):
                name = f"member_d{d}_k{k}.pt"
                member.save(path / name)
                files[-1].append(name)
        index = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "rule": self.rule,
            "bootstraps": self.n_bootstraps,
            "members_per_bootstrap": self.n_members,
            "features": self.features,
            "context_names": self.context_names,
            "config": self.config.to_dict(),
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "files": files,
        }
        (path / _INDEX_FILE).write_text(json.dumps(index, indent=1))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> FlowEnsemble:
        """Read a directory written by :meth:`save`."""
        path = Path(directory)
        try:
            index = json.loads((path / _INDEX_FILE).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} is not a rooml FlowEnsemble directory ({err})") from err
        if not isinstance(index, dict) or index.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a rooml FlowEnsemble directory")
        if index["format_version"] > _FORMAT_VERSION:
            raise ValueError(f"{path} has format version {index['format_version']}, too new")
        members = [[TrainedFlow.load(path / name) for name in row] for row in index["files"]]
        return cls(
            members=members,
            rule=index["rule"],
            config=FlowConfig.from_dict(index["config"]),
            features=index["features"],
            context_names=index["context_names"],
            bootstrap=index["bootstrap"],
            seed=index["seed"],
        )


def normalization_of_geometric_mean(
    ensemble: FlowEnsemble,
    n_samples: int,
    context: Any = None,
    seed: int | None = None,
    bootstrap: int | None = None,
) -> Normalization:
    """``Z = integral of exp(mean_m log p_m(x)) dx``, by importance sampling from the mixture.

    HI-SIGMA averages the members' log-probabilities and then treats the
    result as a normalized density.  It is not: pointwise, the geometric mean
    is at most the arithmetic mean (AM-GM), so ``Z <= integral of the mixture
    = 1``, with equality only where all members agree.  This function measures
    how far from 1 it is: ``Z = E_mix[geo(x) / mix(x)]`` with ``x`` drawn from
    the mixture.  Every importance weight is ``<= 1``, so the estimate is
    ``<= 1`` for any sample.  ``-log Z`` is what the geometric mean's
    log-likelihood per event lacks to be a normalized model's.

    Parameters
    ----------
    ensemble
        Any rule (the members are what matters).
    n_samples
        Mixture events drawn.
    context
        ``(C,)``: ``Z`` at that context point; ``(n_samples, C)``: the average of
        ``Z(c)`` over those context rows; ``None`` for unconditional flows.
    seed
        Sampling seed.
    bootstrap
        ``None``: the geometric mean of all ``D*K`` members; ``d``: of bootstrap
        model ``d``'s ``K`` members (the HI-SIGMA bootstrap model).

    Returns
    -------
    Normalization
        ``(value, error)``, ``error`` the standard error of the mean.
    """
    mix = ensemble.with_rule("mixture")
    x = mix.sample(n_samples, context, seed=seed, bootstrap=bootstrap)
    lp = mix.member_log_probs(x, context, bootstrap)
    ratio = np.exp(lp.mean(axis=1) - (logsumexp(lp, axis=1) - math.log(lp.shape[1])))
    error = float(ratio.std(ddof=1) / math.sqrt(ratio.size)) if ratio.size > 1 else math.inf
    return Normalization(float(ratio.mean()), error)


# --------------------------------------------------------------------------- training
@dataclass
class _Shared:
    """What every training task needs; scattered to the workers once."""

    config: FlowConfig
    x: np.ndarray
    context: np.ndarray | None
    weights: np.ndarray | None
    bootstrap: str | None
    seed: int
    train_kwargs: dict


# train_flow seeds torch's process-global generator (fork_rng + manual_seed): two
# trainings in threads of one process would draw from it in an unpredictable order.
_TRAINING_LOCK = threading.Lock()


def _train_member(shared: _Shared, job: tuple[int, int]) -> TrainedFlow:
    """One training: bootstrap ``d``'s replica, member ``k``'s seed, ``job = (d, k)`` (runs on a worker)."""
    d, k = job
    x, c, w = bootstrap_replica(
        shared.x, shared.context, shared.weights, method=shared.bootstrap, seed=shared.seed, index=d
    )
    with _TRAINING_LOCK:
        return train_flow(
            shared.config, x, c, w, seed=member_seed(shared.seed, d, k), progress=False, num_threads=1,
            **shared.train_kwargs,
        )  # fmt: skip


def _warn_multithreaded_workers(client: Any) -> None:
    if any(n > 1 for n in client.nthreads().values()):
        warnings.warn(
            "some Dask workers have several threads: trainings in one worker process run one at a "
            "time (torch's random generator is process-global); parallelism comes from worker "
            "processes, e.g. LocalCluster(processes=True, threads_per_worker=1)",
            stacklevel=3,
        )


def train_ensemble(
    config: FlowConfig,
    x: Any,
    context: Any = None,
    weights: Any = None,
    *,
    members: int = 5,
    bootstraps: int = 1,
    bootstrap: str | None = "auto",
    rule: str = "mean_log_prob",
    seed: int = 0,
    client: Any = None,
    parallel: bool = True,
    n_workers: int | None = None,
    progress: bool = True,
    **train_kwargs: Any,
) -> FlowEnsemble:
    """Train ``bootstraps x members`` flows (bootstrap replicas x seeds), in parallel on Dask.

    Parameters
    ----------
    config
        Architecture of every member (its ``seed`` is replaced by :func:`member_seed`).
    x, context, weights
        The training set, as for :func:`~rooml.models.train_flow`.
    members
        ``K``, trainings (seeds) per bootstrap replica.
    bootstraps
        ``D``, bootstrap replicas.
    bootstrap
        ``"resample"``, ``"poisson"`` or ``None`` (original data; needs
        ``bootstraps=1``); see :func:`bootstrap_replica`.  ``"auto"``: ``None``
        for one bootstrap, ``"resample"`` for more.
    rule
        Combination rule of the returned ensemble (``"mean_log_prob"`` or ``"mixture"``).
    seed
        Root seed: replica ``d`` and member ``(d, k)`` seeds derive from it alone.
    client
        A ``distributed.Client`` to run on (left open).  ``None``: a
        ``LocalCluster`` (processes, one thread each, ``n_workers`` workers,
        default ``min(cores, D*K)``) is started and closed.
    parallel
        ``False`` (with ``client=None``): train serially in this process.
    n_workers
        Workers of the LocalCluster started when ``client`` is ``None``.
    progress
        A tqdm bar over completed trainings.
    **train_kwargs
        Passed to :func:`~rooml.models.train_flow` (``epochs``, ``batch_size``,
        ``preprocessing``, ...).  A data-dependent preprocessing and the default
        support are computed once on the full training set, so all members share them.

    Returns
    -------
    FlowEnsemble
        ``members[d][k]``, identical whatever the workers or scheduling.
    """
    members, bootstraps = int(members), int(bootstraps)
    if members < 1 or bootstraps < 1:
        raise ValueError(f"members and bootstraps must be >= 1, got {members=}, {bootstraps=}")
    _check_rule(rule)
    if bootstrap == "auto":
        bootstrap = None if bootstraps == 1 else "resample"
    if bootstrap not in BOOTSTRAP_METHODS:
        raise ValueError(f"unknown bootstrap method {bootstrap!r}; choose one of {BOOTSTRAP_METHODS}")
    if bootstrap is None and bootstraps > 1:
        raise ValueError("bootstrap=None trains on the original data: it needs bootstraps=1")
    reserved = sorted(set(train_kwargs) & set(_RESERVED))
    if reserved:
        raise TypeError(f"train_ensemble sets {reserved} itself; do not pass them in train_kwargs")

    names = train_kwargs.get("features")
    names = list(names) if names is not None else [f"x{i}" for i in range(config.features)]
    x = _as_events(x, config.features, "x", names)
    ctx = None if context is None else np.asarray(context, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if ctx is not None and ctx.ndim == 1 and config.context == 1:
        ctx = ctx[:, None]
    if (ctx is not None and ctx.shape[0] != x.shape[0]) or (w is not None and w.shape != (x.shape[0],)):
        raise ValueError(f"x has {x.shape[0]} events; context and weights must have as many")
    kwargs = dict(train_kwargs)
    pre = _resolve_preprocessing(kwargs.get("preprocessing"), x, names)
    kwargs["preprocessing"] = pre
    if kwargs.get("support") is None:
        kwargs["support"] = default_support(x, pre, kwargs.pop("support_margin", 0.1))

    shared = _Shared(config, x, ctx, w, bootstrap, int(seed), kwargs)
    jobs = [(d, k) for d in range(bootstraps) for k in range(members)]
    if client is not None:
        _warn_multithreaded_workers(client)
    trained = fan_out(_train_member, shared, jobs, client=client, parallel=parallel, n_workers=n_workers,
                      progress=progress, desc="train ensemble")
    results = dict(zip(jobs, trained))
    grid = [[results[(d, k)] for k in range(members)] for d in range(bootstraps)]
    return FlowEnsemble(grid, rule=rule, config=config, bootstrap=bootstrap, seed=int(seed))
