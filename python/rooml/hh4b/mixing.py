"""Synthetic HH -> 4b datasets by hemisphere mixing, and what they measure.

Every event is split into its two hemispheres (one per Higgs candidate,
:func:`rooml.data.hh4b.split_hemispheres`).  A *library* of hemispheres from a
chosen category (4b by default; 3b works too) is indexed by a k-d tree
(``scipy.spatial.cKDTree``) on standardized matching variables (default
``pt, eta, m``), one tree per year.  A mixed event replaces both hemispheres of
an original event by their nearest neighbours in the library -- never a
hemisphere of the event itself when the library was built from the same sample
-- keeps the original azimuths (the library hemisphere is rotated onto the one
it replaces), the original ``x_wt`` (an event-level quantity) and weight, and
rebuilds the event columns (``m_h1, m_h2``, kinematics, ``m_hh``, ``pt_hh``,
``deta_hh``, ``x_hh``, ``ntag``) with :func:`rooml.data.hh4b.join_hemispheres`.
Columns ``donor_h1`` / ``donor_h2`` give the library event each hemisphere came from.

``K`` mixed datasets differ by their library (``variation="subsample"``: a
random half of the library hemispheres per dataset) or by the neighbour used
(``"neighbour"``: dataset ``j`` takes the ``(j+1)``-th nearest).  On them
:func:`study_method` measures a background method's *variance* (spread of its
predictions over the datasets) and *bias* (mean of prediction minus mixed data
in the signal region, which mixed data may unblind), and
:func:`fit_spurious_signal` the signal a background-only dataset fakes.

Memory stays bounded for large inputs: the events are mixed ``chunk_size`` at a
time (:func:`iter_mixed`), and the studies fan out over Dask, each task
returning only yields and histograms.

Self-matches and standardization matter (tests/test_hh4b_mixing.py):
``exclude_self=False`` with a library built from the sample itself returns the
sample unchanged (every hemisphere is its own nearest neighbour), so the ``K``
datasets are identical copies and measure nothing; ``standardize=False`` lets
the GeV-valued variables dominate the distance, so ``eta`` is matched poorly and
the ``|Delta eta| < 1.5`` preselection of the original events is violated.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from rooml._fanout import fan_out, task_seed
from rooml.data import Sample, concatenate, hh4b
from rooml.hh4b.prediction import Prediction

__all__ = [
    "MATCH_COLUMNS",
    "VARIATIONS",
    "HemisphereLibrary",
    "MixingStudy",
    "build_library",
    "fit_spurious_signal",
    "iter_mixed",
    "mix",
    "mixed_datasets",
    "study_method",
]

MATCH_COLUMNS = ("pt", "eta", "m")
"""Default hemisphere matching variables (standardized)."""
VARIATIONS = ("subsample", "neighbour")


def _fingerprint(sample: Sample) -> str:
    """Identify a sample by its size and the bytes of a few columns (cheap even at 1e7 events)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.int64(len(sample)).tobytes())
    for name in ("m_h1", "m_h2", "pt_h1"):
        digest.update(np.ascontiguousarray(sample[name]).tobytes())
    return digest.hexdigest()


@dataclass
class HemisphereLibrary:
    """Hemispheres indexed for nearest-neighbour matching (build with :func:`build_library`).

    Attributes
    ----------
    hemispheres
        The library rows (:func:`rooml.data.hh4b.split_hemispheres` columns; ``event`` is the
        row of the source sample).
    match_columns
        Matching variables.
    mean, scale
        Standardization of the matching variables (``0`` and ``1`` when not standardized).
    source
        Fingerprint of the sample the hemispheres come from (to recognize self-matches).
    """

    hemispheres: Sample
    match_columns: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    source: str
    _trees: dict[float, tuple[cKDTree, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        years = self.hemispheres["year"]
        points = self.points(self.hemispheres)
        for year in np.unique(years):
            rows = np.flatnonzero(years == year)
            self._trees[float(year)] = (cKDTree(points[rows]), rows)

    def __len__(self) -> int:
        return len(self.hemispheres)

    def __getstate__(self) -> dict:  # trees are rebuilt on unpickling (cheaper than shipping them)
        state = dict(self.__dict__)
        state["_trees"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def points(self, hemispheres: Sample) -> np.ndarray:
        """Return the matching coordinates of hemisphere rows, shape ``(N, len(match_columns))``."""
        x = np.column_stack([hemispheres[c] for c in self.match_columns])
        return (x - self.mean) / self.scale

    def subsample(self, fraction: float, seed: int) -> HemisphereLibrary:
        """Return a library of a random ``fraction`` of the hemispheres (same standardization)."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        keep = np.random.default_rng(seed).random(len(self)) < fraction
        return HemisphereLibrary(self.hemispheres.select(keep), self.match_columns, self.mean, self.scale,
                                 self.source)  # fmt: skip

    def query(self, hemispheres: Sample, own_event: np.ndarray | None, neighbour: int = 1) -> np.ndarray:
        """Library row of the ``neighbour``-th nearest hemisphere of the same year, for every row.

        Parameters
        ----------
        hemispheres
            Query rows (with ``year`` and the matching columns).
        own_event
            Source-sample event of each query row; library hemispheres of that event are skipped
            (``None``: nothing skipped).
        neighbour
            1 for the nearest.

        Returns
        -------
        numpy.ndarray of int
        """
        points = self.points(hemispheres)
        years = hemispheres["year"]
        out = np.empty(len(hemispheres), dtype=np.int64)
        extra = 0 if own_event is None else 2  # an event holds two library hemispheres at most
        for year in np.unique(years):
            if float(year) not in self._trees:
                raise ValueError(f"the library has no hemispheres of year {year:g}")
            tree, rows = self._trees[float(year)]
            sel = np.flatnonzero(years == year)
            k = min(neighbour + extra, tree.n)
            _, idx = tree.query(points[sel], k=[*range(1, k + 1)])
            idx = rows[idx]
            if own_event is not None:
                allowed = self.hemispheres["event"][idx] != own_event[sel, None]
                rank = np.cumsum(allowed, axis=1)
                ok = allowed & (rank == neighbour)
                if not np.all(ok.any(axis=1)):
                    raise ValueError("the library is too small to skip the events' own hemispheres")
                idx = idx[np.arange(len(sel)), np.argmax(ok, axis=1)]
            else:
                if k < neighbour:
                    raise ValueError(f"the library has only {tree.n} hemispheres of year {year:g}")
                idx = idx[:, neighbour - 1]
            out[sel] = idx
        return out


def build_library(
    sample: Sample,
    *,
    category: str | None = None,
    match_columns: Sequence[str] = MATCH_COLUMNS,
    standardize: bool = True,
) -> HemisphereLibrary:
    """Build a hemisphere library from the events of one b-tag category.

    Parameters
    ----------
    sample
        hh4b events (e.g. the 4b or 3b data).
    category
        ``"4b"``, ``"3b"`` or ``"2b"``: keep only events with that ``ntag`` (default: all).
    match_columns
        Hemisphere variables of the distance (:data:`rooml.data.hh4b.HEMISPHERE_COLUMNS`).
    standardize
        Divide each variable by its standard deviation (after subtracting the mean); without it
        the raw values enter the distance.

    Returns
    -------
    HemisphereLibrary
    """
    names = tuple(match_columns)
    unknown = [c for c in names if c not in hh4b.HEMISPHERE_COLUMNS]
    if unknown or not names:
        raise ValueError(f"unknown matching variable(s) {unknown}; choose from {hh4b.HEMISPHERE_COLUMNS}")
    source = _fingerprint(sample)
    rows = np.arange(len(sample))
    if category is not None:
        if category not in ("4b", "3b", "2b"):
            raise ValueError(f"category must be '4b', '3b' or '2b', not {category!r}")
        rows = np.flatnonzero(sample["ntag"] == float(category[0]))
        sample = sample.select(rows)
    if len(sample) < 2:
        raise ValueError("a hemisphere library needs at least two events")
    hemispheres = hh4b.split_hemispheres(sample)
    hemispheres.columns["event"] = rows[hemispheres["event"].astype(np.int64)].astype(float)
    x = np.column_stack([hemispheres[c] for c in names])
    mean = x.mean(axis=0) if standardize else np.zeros(len(names))
    scale = x.std(axis=0) if standardize else np.ones(len(names))
    if np.any(scale <= 0):
        raise ValueError(f"a matching variable is constant in the library: {names}")
    return HemisphereLibrary(hemispheres, names, mean, scale, source)


# --------------------------------------------------------------------------- mixing
def _mix_chunk(chunk: Sample, start: int, library: HemisphereLibrary, neighbour: int,
               skip_own: bool) -> Sample:  # fmt: skip
    n = len(chunk)
    halves = hh4b.split_hemispheres(chunk)  # rows 0..n-1: H1 of each event, n..2n-1: H2
    own = halves["event"].astype(np.int64) + start if skip_own else None
    donors = library.query(halves, own, neighbour)
    replaced = library.hemispheres.select(donors)
    replaced.columns["phi"] = halves["phi"]  # rotate each library hemisphere onto the one it replaces
    replaced.weight = halves.weight
    first, second = replaced.select(np.arange(n)), replaced.select(np.arange(n, 2 * n))
    mixed = hh4b.join_hemispheres(first, second)
    lead = first["pt"] >= second["pt"]
    mixed.columns["x_wt"] = chunk["x_wt"]
    mixed.columns["donor_h1"] = np.where(lead, first["event"], second["event"])
    mixed.columns["donor_h2"] = np.where(lead, second["event"], first["event"])
    mixed.attrs = {**chunk.attrs, "process": "mixed"}
    return mixed


def iter_mixed(
    sample: Sample,
    library: HemisphereLibrary,
    *,
    neighbour: int = 1,
    exclude_self: bool = True,
    chunk_size: int = 250_000,
) -> Iterator[Sample]:
    """Yield the mixed version of ``sample``, ``chunk_size`` events at a time (bounded memory).

    Parameters
    ----------
    sample
        The events to mix (any size).
    library
        From :func:`build_library`.
    neighbour
        Use the ``neighbour``-th nearest library hemisphere (1: the nearest).
    exclude_self
        When the library comes from ``sample`` itself, never take a hemisphere of the event
        being mixed (``False`` allows it: then every hemisphere is its own nearest neighbour).
    chunk_size
        Events per chunk.

    Yields
    ------
    Sample
        Mixed events with the original weights, ``x_wt`` and azimuths, plus ``donor_h1``/``donor_h2``.
    """
    if neighbour < 1:
        raise ValueError(f"neighbour must be >= 1, got {neighbour}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    skip_own = bool(exclude_self) and _fingerprint(sample) == library.source
    for start in range(0, len(sample), chunk_size):
        chunk = sample.select(np.arange(start, min(start + chunk_size, len(sample))))
        yield _mix_chunk(chunk, start, library, int(neighbour), skip_own)


def mix(sample: Sample, library: HemisphereLibrary, **kwargs: Any) -> Sample:
    """Return the mixed version of ``sample`` in one Sample (``kwargs`` as for :func:`iter_mixed`)."""
    return concatenate(list(iter_mixed(sample, library, **kwargs)))


def _variant(library: HemisphereLibrary, variation: str, index: int, seed: int,
             fraction: float) -> tuple[HemisphereLibrary, int]:  # fmt: skip
    """Library and neighbour rank of mixed dataset ``index``."""
    if variation == "subsample":
        return library.subsample(fraction, task_seed(seed, index)), 1
    if variation == "neighbour":
        return library, index + 1
    raise ValueError(f"unknown variation {variation!r}; choose one of {VARIATIONS}")


def mixed_datasets(
    sample: Sample,
    library: HemisphereLibrary,
    n_datasets: int,
    *,
    variation: str = "subsample",
    fraction: float = 0.5,
    seed: int = 0,
    **kwargs: Any,
) -> list[Sample]:
    """Make ``n_datasets`` mixed versions of ``sample`` in memory (see :func:`study_method` for big inputs).

    Parameters
    ----------
    sample, library
        As for :func:`iter_mixed`.
    n_datasets
        ``K``.
    variation
        ``"subsample"``: dataset ``j`` uses a random ``fraction`` of the library (seed
        ``SeedSequence(seed, (j,))``); ``"neighbour"``: dataset ``j`` the ``(j+1)``-th neighbour.
    fraction, seed
        See ``variation``.
    **kwargs
        Passed to :func:`iter_mixed` (``exclude_self``, ``chunk_size``).

    Returns
    -------
    list of Sample
    """
    variants = (_variant(library, variation, j, seed, fraction) for j in range(n_datasets))
    return [mix(sample, lib, neighbour=nb, **kwargs) for lib, nb in variants]


# --------------------------------------------------------------------------- studies
@dataclass
class MixingStudy:
    """A background method run on ``K`` mixed datasets and compared with them in its region.

    Attributes
    ----------
    region
        The predicted region.
    observed
        Mixed-data yield in the region, per dataset ``(K,)``.
    predicted, predicted_spread
        The method's prediction (mean of its replicas) and its replica spread, per dataset.
    edges, observed_hist, predicted_hist, predicted_hist_spread
        Optional binned versions ``(K, B)`` of ``column`` (``None`` without ``edges``).
    predictions
        The method's predictions (only with ``keep_predictions=True``).
    """

    region: str
    observed: np.ndarray
    predicted: np.ndarray
    predicted_spread: np.ndarray
    column: str | None = None
    edges: np.ndarray | None = None
    observed_hist: np.ndarray | None = None
    predicted_hist: np.ndarray | None = None
    predicted_hist_spread: np.ndarray | None = None
    predictions: list[Prediction] | None = None

    @property
    def n_datasets(self) -> int:
        """``K``."""
        return len(self.observed)

    def bias(self) -> tuple[float, float]:
        """Mean of prediction minus mixed data over the datasets, and its standard error."""
        d = self.predicted - self.observed
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")

    def variance(self) -> float:
        """Variance of the predictions over the datasets (their spread squared)."""
        return float(self.predicted.var(ddof=1)) if len(self.predicted) > 1 else float("nan")

    def summary(self) -> str:
        """One line per quantity, for printing."""
        bias, bias_err = self.bias()
        mean_obs = float(self.observed.mean())
        return (f"{self.n_datasets} mixed datasets, region {self.region}: observed {mean_obs:.1f} (mean), "
                f"predicted {self.predicted.mean():.1f}\n"
                f"  bias (pred - mixed) {bias:+.1f} +- {bias_err:.1f} ({100 * bias / mean_obs:+.2f} %)\n"
                f"  spread of predictions {np.sqrt(self.variance()):.1f} "
                f"({100 * np.sqrt(self.variance()) / mean_obs:.2f} %); mean replica spread "
                f"{self.predicted_spread.mean():.1f}")  # fmt: skip

    def spurious_signal(self, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signal fitted to each background-only mixed dataset (see :func:`fit_spurious_signal`)."""
        if self.observed_hist is None:
            raise ValueError("the study has no histograms: run study_method with column and edges")
        return fit_spurious_signal(
            self.observed_hist, self.predicted_hist, self.predicted_hist_spread, template
        )


def fit_spurious_signal(
    observed: np.ndarray, background: np.ndarray, background_error: np.ndarray, template: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``observed = background + s * template`` per dataset (weighted least squares).

    ``s = sum t (d - b) / v / sum t^2 / v`` with ``v = max(b, 1) + sigma_b^2`` per bin (the
    variance expected under the background-only hypothesis: weighting by the observed counts
    instead would bias ``s`` low); on background-only datasets ``s`` is the spurious signal.

    Parameters
    ----------
    observed, background, background_error
        ``(K, B)`` (or ``(B,)``) binned data, prediction and its uncertainty.
    template
        ``(B,)`` signal shape (any normalization: ``s`` is in its units).

    Returns
    -------
    (s, error)
        Arrays of shape ``(K,)`` (or scalars' 0-d arrays).

    Examples
    --------
    >>> t = np.array([0.0, 1.0, 0.0])
    >>> s, e = fit_spurious_signal(np.array([100.0, 130.0, 100.0]), np.full(3, 100.0), np.zeros(3), t)
    >>> float(s)
    30.0
    """
    d, b, sb = (np.asarray(a, dtype=float) for a in (observed, background, background_error))
    t = np.asarray(template, dtype=float)
    if not (d.shape == b.shape == sb.shape) or d.shape[-1] != t.shape[0]:
        raise ValueError(f"shapes differ: observed {d.shape}, background {b.shape}, "
                         f"error {sb.shape}, template {t.shape}")  # fmt: skip
    v = np.maximum(b, 1.0) + sb**2
    info = np.sum(t * t / v, axis=-1)
    return np.sum(t * (d - b) / v, axis=-1) / info, 1.0 / np.sqrt(info)


@dataclass
class _Shared:
    sample: Sample
    library: HemisphereLibrary
    method: Callable[[Sample], Prediction]
    variation: str
    fraction: float
    seed: int
    mix_kwargs: dict
    column: str | None
    edges: np.ndarray | None
    keep_predictions: bool


def _study_task(shared: _Shared, index: int) -> dict:
    library, neighbour = _variant(shared.library, shared.variation, index, shared.seed, shared.fraction)
    mixed = mix(shared.sample, library, neighbour=neighbour, **shared.mix_kwargs)
    prediction = shared.method(mixed)
    inside = hh4b.region_mask(mixed, prediction.region)
    out: dict[str, Any] = {"region": prediction.region, "observed": float(mixed.weight[inside].sum()),
                           "replica_yields": prediction.replica_yields()}  # fmt: skip
    if shared.edges is not None:
        values = mixed[shared.column][inside]
        out["observed_hist"] = np.histogram(values, shared.edges, weights=mixed.weight[inside])[0]
        hist, spread = prediction.histogram(shared.column, shared.edges)
        out["predicted_hist"], out["predicted_hist_spread"] = hist, spread
    if shared.keep_predictions:
        out["prediction"] = prediction
    return out


def study_method(
    method: Callable[[Sample], Prediction],
    sample: Sample,
    library: HemisphereLibrary,
    n_datasets: int = 8,
    *,
    variation: str = "subsample",
    fraction: float = 0.5,
    seed: int = 0,
    column: str | None = None,
    edges: Sequence[float] | None = None,
    keep_predictions: bool = False,
    client: Any = None,
    parallel: bool = True,
    n_workers: int | None = None,
    progress: bool = True,
    **mix_kwargs: Any,
) -> MixingStudy:
    """Run a background method on ``K`` mixed datasets and compare it with them in its region.

    Parameters
    ----------
    method
        ``mixed sample -> Prediction`` of one region (its ``region`` names it; e.g.
        :func:`rooml.hh4b.reweighting.reweighting_method`).  Picklable for process workers.
    sample, library
        The events to mix and the hemisphere library.
    n_datasets, variation, fraction, seed
        As for :func:`mixed_datasets` (dataset ``j`` depends only on ``seed`` and ``j``).
    column, edges
        Also compare the binned ``column`` (for χ² tables and :meth:`MixingStudy.spurious_signal`).
    keep_predictions
        Return the method's predictions too (memory!).
    client, parallel, n_workers, progress
        Dask fan-out as in :func:`rooml.hh4b.reweighting.train_reweighting` (one task per dataset:
        each mixes, runs the method and returns yields and histograms only).
    **mix_kwargs
        Passed to :func:`iter_mixed` (``exclude_self``, ``chunk_size``).

    Returns
    -------
    MixingStudy
    """
    if n_datasets < 1:
        raise ValueError(f"n_datasets must be >= 1, got {n_datasets}")
    if variation not in VARIATIONS:
        raise ValueError(f"unknown variation {variation!r}; choose one of {VARIATIONS}")
    if (column is None) != (edges is None):
        raise ValueError("give both column and edges, or neither")
    edges_arr = None if edges is None else np.asarray(edges, dtype=float)
    shared = _Shared(sample, library, method, variation, float(fraction), int(seed), dict(mix_kwargs),
                     column, edges_arr, bool(keep_predictions))  # fmt: skip
    results = fan_out(_study_task, shared, range(int(n_datasets)), client=client, parallel=parallel,
                      n_workers=n_workers, progress=progress, desc="mixed datasets")  # fmt: skip
    regions = {r["region"] for r in results}
    if len(regions) != 1:
        raise ValueError(f"the method predicted different regions on different datasets: {sorted(regions)}")
    stack = (lambda key: np.stack([r[key] for r in results])) if edges_arr is not None else (lambda key: None)
    return MixingStudy(
        region=regions.pop(),
        observed=np.array([r["observed"] for r in results]),
        predicted=np.array([r["replica_yields"].mean() for r in results]),
        predicted_spread=np.array([r["replica_yields"].std(ddof=1) if len(r["replica_yields"]) > 1 else 0.0
                                   for r in results]),  # fmt: skip
        column=column, edges=edges_arr, observed_hist=stack("observed_hist"),
        predicted_hist=stack("predicted_hist"), predicted_hist_spread=stack("predicted_hist_spread"),
        predictions=[r["prediction"] for r in results] if keep_predictions else None,
    )
