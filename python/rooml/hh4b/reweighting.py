"""The HH -> 4b reweighting baseline: an exponential-loss reweighter from 2b to 4b.

A network ``Q(x)`` is trained in a control region (CR) of the mass plane on the
loss ``E_2b[exp(Q/2)] + E_4b[exp(-Q/2)]``, whose optimum is ``exp(Q) = p_4b/p_2b``
(:func:`rooml.models.train_ratio` with ``loss="exponential"``).  The 2b events of
a target region, weighted by ``n * exp(Q(x))`` with the normalization

    n = sum_{4b in CR} w / sum_{2b in CR} w exp(Q(x)),

predict the 4b background there (ATLAS HH -> 4b, arXiv:2202.07288).  The
reweighter is retrained ``R`` times -- replica ``k`` with its own seed and, by
default, a Poisson(1) bootstrap of both training sets (its normalization comes
from the same bootstrapped sets) -- and every replica is one complete
prediction: the spread of the replicas is the method's training uncertainty.

Control regions.  The CR ring of :mod:`rooml.data._hh4b_regions` (45 GeV around
1.05 x the SR centre, outside SR and VR) is split

* into quadrants ``q1 ... q4`` by the angle around the CR centre
  (``q1``: both masses above the centre, counter-clockwise from there), and
* into crescents ``inner`` / ``outer`` by the distance from the CR centre
  (:data:`CRESCENT_RADIUS`, which halves the 2b CR events).

A control region is ``"CR"`` (the whole ring), a part name, a tuple of part
names (their union) or any region of :func:`rooml.data.hh4b.region_mask`
(``"VR"``...).  Training in an alternative CR (leave one quadrant out, only the
inner or only the outer crescent: :func:`alternative_control_regions`) and
taking the difference to the nominal prediction gives the CR-choice systematic
(:func:`control_region_systematic`).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rooml._fanout import fan_out, task_seed
from rooml.data import Sample, hh4b
from rooml.data._hh4b_regions import CR_CENTRE
from rooml.hh4b.prediction import Prediction
from rooml.models.ensembles import _TRAINING_LOCK
from rooml.models.flows import default_support
from rooml.models.ratio import RatioConfig, RatioEnsemble, TrainedRatio, train_ratio
from rooml.models.training import _resolve_preprocessing

__all__ = [
    "CRESCENT_RADIUS",
    "CR_PARTS",
    "ControlRegionSystematic",
    "FEATURES",
    "PREDICTION_COLUMNS",
    "PREPROCESSING",
    "Reweighter",
    "alternative_control_regions",
    "control_region_mask",
    "control_region_systematic",
    "reweighting_method",
    "train_reweighting",
]

FEATURES = ("m_h1", "m_h2", "pt_h1", "pt_h2", "eta_h1", "eta_h2", "dphi_hh", "x_wt", "year")
"""Default reweighter inputs: the masses, the candidate kinematics and the year."""
PREPROCESSING = {"pt_h1": "log", "pt_h2": "log", "x_wt": "log", "dphi_hh": "log_pi_minus"}
"""Default preprocessing recipe (the remaining features are standardized)."""
PREDICTION_COLUMNS = ("m_h1", "m_h2", *hh4b.KINEMATICS, "m_hh", "pt_hh", "deta_hh", "x_hh", "year")
"""Columns a prediction carries (those present in the 2b sample)."""
CRESCENT_RADIUS = 38.0
"""Distance (GeV) from the CR centre separating the inner and outer crescents."""
CR_PARTS = ("q1", "q2", "q3", "q4", "inner", "outer")
_SCHEMES = ("quadrants", "crescents")

ControlRegion = str | Sequence[str]


# --------------------------------------------------------------------------- control regions
def _part_mask(m1: np.ndarray, m2: np.ndarray, part: str) -> np.ndarray:
    d1, d2 = m1 - CR_CENTRE[0], m2 - CR_CENTRE[1]
    if part in ("inner", "outer"):
        inner = np.hypot(d1, d2) < CRESCENT_RADIUS
        return inner if part == "inner" else ~inner
    quadrant = {"q1": (d1 >= 0) & (d2 >= 0), "q2": (d1 < 0) & (d2 >= 0),
                "q3": (d1 < 0) & (d2 < 0), "q4": (d1 >= 0) & (d2 < 0)}  # fmt: skip
    return quadrant[part]


def control_region_mask(x: Mapping[str, np.ndarray], region: ControlRegion = "CR") -> np.ndarray:
    """Mask of the events in a control region.

    Parameters
    ----------
    x : mapping of str to numpy.ndarray
        Needs ``m_h1`` and ``m_h2`` (a Sample works).
    region : str or sequence of str
        ``"CR"`` (the whole ring); a part of the CR ring (:data:`CR_PARTS`:
        quadrants ``"q1"``-``"q4"``, crescents ``"inner"``, ``"outer"``); a tuple
        of parts (their union); or any region of :func:`rooml.data.hh4b.region_mask`.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> x = {"m_h1": np.array([160.0, 100.0, 124.0]), "m_h2": np.array([150.0, 150.0, 117.0])}
    >>> control_region_mask(x, "q1").tolist(), control_region_mask(x, ("q1", "q2")).tolist()
    ([True, False, False], [True, True, False])
    """
    m1, m2 = np.asarray(x["m_h1"], dtype=float), np.asarray(x["m_h2"], dtype=float)
    parts = (region,) if isinstance(region, str) else tuple(region)
    if not parts:
        raise ValueError("a control region needs at least one part")
    if len(parts) == 1 and parts[0] not in CR_PARTS:
        return hh4b.region_mask({"m_h1": m1, "m_h2": m2}, parts[0])
    unknown = [p for p in parts if p not in CR_PARTS]
    if unknown:
        raise ValueError(f"unknown control-region part(s) {unknown}; choose from {CR_PARTS}")
    union = np.zeros(m1.shape, dtype=bool)
    for part in parts:
        union |= _part_mask(m1, m2, part)
    return union & hh4b.in_control_region(m1, m2)


def alternative_control_regions(scheme: str = "quadrants") -> dict[str, tuple[str, ...]]:
    """Alternative control regions for the CR-choice systematic.

    Parameters
    ----------
    scheme : {"quadrants", "crescents"}
        ``"quadrants"``: four CRs, each leaving one quadrant out (``"no_q1"``...);
        ``"crescents"``: the inner and the outer crescent alone.

    Returns
    -------
    dict of str to tuple of str
        Name -> parts, each a valid ``control_region``.

    Examples
    --------
    >>> alternative_control_regions("crescents")
    {'inner': ('inner',), 'outer': ('outer',)}
    """
    if scheme == "quadrants":
        quads = CR_PARTS[:4]
        return {f"no_{q}": tuple(p for p in quads if p != q) for q in quads}
    if scheme == "crescents":
        return {"inner": ("inner",), "outer": ("outer",)}
    raise ValueError(f"unknown control-region scheme {scheme!r}; choose one of {_SCHEMES}")


# --------------------------------------------------------------------------- the reweighter
@dataclass
class Reweighter:
    """A 2b -> 4b reweighter retrained ``R`` times; replica ``k`` is ``normalizations[k] * exp(Q_k(x))``.

    Attributes
    ----------
    members
        The ``R`` trained exponential-loss networks (:class:`~rooml.models.TrainedRatio`).
    normalizations
        ``n_k``: 4b over reweighted-2b yield in the control region (of replica ``k``'s training sets).
    control_region
        Where it was trained (see :func:`control_region_mask`).
    seed
        Root seed of the replicas.
    """

    members: list[TrainedRatio]
    normalizations: np.ndarray
    control_region: ControlRegion = "CR"
    seed: int = 0

    def __post_init__(self) -> None:
        self.members = list(self.members)
        self.normalizations = np.asarray(self.normalizations, dtype=float)
        if not self.members or self.normalizations.shape != (len(self.members),):
            raise ValueError(f"need one normalization per member: {len(self.members)} members, "
                             f"normalizations of shape {self.normalizations.shape}")  # fmt: skip

    @property
    def n_replicas(self) -> int:
        """Number of replicas ``R``."""
        return len(self.members)

    @property
    def features(self) -> list[str]:
        """Input columns of the networks."""
        return self.members[0].features

    @property
    def ensemble(self) -> RatioEnsemble:
        """The members as a :class:`~rooml.models.RatioEnsemble` (mean weight; for export to ONNX/RooFit)."""
        return RatioEnsemble(self.members, "mean")

    def replica_weights(self, x: Any) -> np.ndarray:
        """Per-event weights of every replica, shape ``(R, N)`` (event weights not included).

        Parameters
        ----------
        x
            2b events: a Sample or a mapping holding :attr:`features`.

        Returns
        -------
        numpy.ndarray
        """
        table = np.column_stack([np.asarray(x[k], dtype=float) for k in self.features])
        return np.stack([n * np.exp(m.log_ratio(table)) for m, n in zip(self.members, self.normalizations)])

    def predict(
        self,
        source: Sample,
        region: ControlRegion = "SR",
        *,
        columns: Sequence[str] | None = None,
        chunk_size: int = 1_000_000,
    ) -> Prediction:
        """Predict the 4b background of ``region`` from the 2b events of ``source``.

        Parameters
        ----------
        source
            2b events (any size; evaluated ``chunk_size`` events at a time).
        region
            Target region (see :func:`control_region_mask`), e.g. ``"SR"``, ``"VR"``, ``"SR_m1_up"``.
        columns
            Event columns to carry (default: :data:`PREDICTION_COLUMNS` present in ``source``).

        Returns
        -------
        Prediction
            ``R`` replicas; each event of the region appears once per replica, with
            weight ``w_event * n_k * exp(Q_k(x))``.
        """
        mask = control_region_mask(source, region)
        selected = source.select(mask)
        names = [c for c in (columns or PREDICTION_COLUMNS) if c in selected]
        n, r = len(selected), self.n_replicas
        weights = np.empty((r, n))
        for start in range(0, n, chunk_size):
            part = {k: selected[k][start : start + chunk_size] for k in self.features}
            weights[:, start : start + chunk_size] = self.replica_weights(part)
        weights *= selected.weight[None, :]
        events = {k: np.tile(selected[k], r) for k in names}
        label = region if isinstance(region, str) else "+".join(region)
        return Prediction("reweighting", label, events, weights.reshape(-1), np.repeat(np.arange(r), n))

    def method(self, source: Sample, **kwargs: Any) -> Callable[[str], Prediction]:
        """Return ``region -> self.predict(source, region, **kwargs)`` (for the validation tables)."""
        return lambda region: self.predict(source, region, **kwargs)


@dataclass
class _Shared:
    x4: np.ndarray
    w4: np.ndarray
    x2: np.ndarray
    w2: np.ndarray
    features: list[str]
    train_kwargs: dict
    bootstrap: bool
    seed: int


def _train_replica(shared: _Shared, k: int) -> tuple[TrainedRatio, float]:
    """Replica ``k``: Poisson(1) bootstrap (seed key ``(k, 0)``), training seed key ``(k, 1)``."""
    w4, w2 = shared.w4, shared.w2
    if shared.bootstrap:
        rng = np.random.default_rng(task_seed(shared.seed, k, 0))
        w4, w2 = w4 * rng.poisson(1.0, len(w4)), w2 * rng.poisson(1.0, len(w2))
    with _TRAINING_LOCK:  # torch's generator is process-global
        member = train_ratio(
            shared.x4, shared.x2, features=shared.features, numerator_weights=w4, denominator_weights=w2,
            loss="exponential", seed=task_seed(shared.seed, k, 1), progress=False, num_threads=1,
            **shared.train_kwargs,
        )  # fmt: skip
    norm = float(w4.sum() / np.sum(w2 * np.exp(member.log_ratio(shared.x2))))
    return member, norm


def train_reweighting(
    target: Sample,
    source: Sample,
    *,
    control_region: ControlRegion = "CR",
    replicas: int = 10,
    bootstrap: bool = True,
    seed: int = 0,
    features: Sequence[str] = FEATURES,
    preprocessing: Any = PREPROCESSING,
    config: RatioConfig | None = None,
    client: Any = None,
    parallel: bool = True,
    n_workers: int | None = None,
    progress: bool = True,
    **train_kwargs: Any,
) -> Reweighter:
    """Train the 2b -> 4b reweighter ``replicas`` times in a control region, on Dask.

    Parameters
    ----------
    target
        4b (or 3b, or mixed) events; only those in ``control_region`` are used.
    source
        2b events; only those in ``control_region`` are used.
    control_region
        See :func:`control_region_mask`.
    replicas
        ``R``, number of retrainings.
    bootstrap
        Poisson(1)-bootstrap both training sets in every replica (else only the seeds differ).
    seed
        Root seed: replica ``k``'s bootstrap and training seeds are ``SeedSequence(seed, (k, 0|1))``,
        so the result does not depend on the workers or the scheduling.
    features, preprocessing, config
        Network inputs, preprocessing recipe (computed once on both CR samples, shared by the
        replicas) and architecture (default ``RatioConfig()``).
    client, parallel, n_workers
        ``client``: a ``distributed.Client`` (left open); ``None`` and ``parallel=True``: a
        ``LocalCluster`` of ``n_workers`` processes; ``parallel=False``: serially here.
    progress
        A tqdm bar over finished replicas.
    **train_kwargs
        Passed to :func:`rooml.models.train_ratio` (``epochs``, ``lr``, ``batch_size``, ``patience``...).

    Returns
    -------
    Reweighter
    """
    replicas = int(replicas)
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    reserved = sorted(set(train_kwargs) & {"loss", "seed", "progress", "num_threads", "features"})
    if reserved:
        raise TypeError(f"train_reweighting sets {reserved} itself")
    names = list(features)
    tables = []
    for what, sample in (("target", target), ("source", source)):
        missing = [k for k in names if k not in sample]
        if missing:
            raise ValueError(f"{what} sample lacks the feature column(s) {missing}")
        selected = sample.select(control_region_mask(sample, control_region))
        if len(selected) == 0:
            raise ValueError(f"no {what} events in the control region {control_region!r}")
        tables.append((np.column_stack([selected[k] for k in names]), selected.weight))
    (x4, w4), (x2, w2) = tables
    both = np.concatenate([x4, x2])
    pre = _resolve_preprocessing(preprocessing, both, names)
    kwargs = {"config": config or RatioConfig(), "preprocessing": pre, **train_kwargs}
    kwargs.setdefault("support", default_support(both, pre, math.inf))
    shared = _Shared(x4, w4, x2, w2, names, kwargs, bool(bootstrap), int(seed))
    results = fan_out(_train_replica, shared, range(replicas), client=client, parallel=parallel,
                      n_workers=n_workers, progress=progress, desc="reweighter replicas")  # fmt: skip
    members, norms = zip(*results)
    region = control_region if isinstance(control_region, str) else tuple(control_region)
    return Reweighter(list(members), np.array(norms), region, int(seed))


def _train_and_predict(
    target: Sample, *, source: Sample, region: ControlRegion, train_kwargs: dict
) -> Prediction:
    return train_reweighting(target, source, **train_kwargs).predict(source, region)


def reweighting_method(
    source: Sample, region: ControlRegion = "SR", **train_kwargs: Any
) -> Callable[[Sample], Prediction]:
    """Return the reweighting method as a callable ``4b sample -> Prediction`` of ``region``.

    Every call trains a :func:`train_reweighting` on the given 4b (e.g. mixed) sample and the
    fixed 2b ``source`` and predicts ``region``.  The result is picklable (a ``functools.partial``),
    as :func:`rooml.hh4b.mixing.study_method` needs.

    Parameters
    ----------
    source
        2b events.
    region
        Predicted region.
    **train_kwargs
        Passed to :func:`train_reweighting`; ``parallel`` defaults to ``False`` (the mixed-dataset
        study already runs one task per worker).

    Returns
    -------
    callable
    """
    train_kwargs.setdefault("parallel", False)
    train_kwargs.setdefault("progress", False)
    return functools.partial(_train_and_predict, source=source, region=region, train_kwargs=train_kwargs)


# --------------------------------------------------------------------------- CR-choice systematic
@dataclass
class ControlRegionSystematic:
    """Differences between predictions trained in alternative CRs and the nominal one.

    Attributes
    ----------
    nominal
        The nominal prediction.
    alternatives
        Name -> prediction of each alternative CR.
    """

    nominal: Prediction
    alternatives: dict[str, Prediction]

    def yield_shifts(self) -> dict[str, float]:
        """Alternative minus nominal yield (replica means), per alternative."""
        y0 = self.nominal.yield_and_error()[0]
        return {k: p.yield_and_error()[0] - y0 for k, p in self.alternatives.items()}

    def yield_uncertainty(self) -> float:
        """Return the envelope: the largest absolute yield shift."""
        return max(abs(v) for v in self.yield_shifts().values())

    def histogram_shifts(self, column: str, edges: np.ndarray) -> dict[str, np.ndarray]:
        """Per-bin alternative minus nominal mean counts of ``column``."""
        h0 = self.nominal.histogram(column, edges)[0]
        return {k: p.histogram(column, edges)[0] - h0 for k, p in self.alternatives.items()}

    def histogram_uncertainty(self, column: str, edges: np.ndarray) -> np.ndarray:
        """Per-bin envelope: the largest absolute shift over the alternatives."""
        return np.max(np.abs(np.stack(list(self.histogram_shifts(column, edges).values()))), axis=0)


def control_region_systematic(
    target: Sample,
    source: Sample,
    region: ControlRegion = "SR",
    *,
    scheme: str = "quadrants",
    nominal: Reweighter | None = None,
    **kwargs: Any,
) -> ControlRegionSystematic:
    """Train the reweighter in each alternative CR and compare its prediction of ``region`` with the nominal.

    Parameters
    ----------
    target, source
        4b and 2b events, as for :func:`train_reweighting`.
    region
        The predicted region (default the SR).
    scheme
        ``"quadrants"`` or ``"crescents"`` (:func:`alternative_control_regions`).
    nominal
        The nominal reweighter (default: trained here in the whole CR with ``kwargs``).
    **kwargs
        Passed to :func:`train_reweighting` for every training (``replicas``, ``client``, ``epochs``...).

    Returns
    -------
    ControlRegionSystematic
    """
    alternatives = alternative_control_regions(scheme)
    if nominal is None:
        nominal = train_reweighting(target, source, **kwargs)
    trained = {name: train_reweighting(target, source, control_region=parts, **kwargs)
               for name, parts in alternatives.items()}  # fmt: skip
    return ControlRegionSystematic(
        nominal.predict(source, region), {k: r.predict(source, region) for k, r in trained.items()}
    )
