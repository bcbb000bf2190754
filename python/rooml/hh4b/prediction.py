"""A background prediction in one region: weighted events from K replicas (trainings)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Prediction"]


@dataclass
class Prediction:
    """Weighted events predicting the background of one region.

    Each event belongs to one of ``n_replicas`` replicas (one per training of an
    ensemble, or per retraining of a reweighter); every replica is a complete
    prediction on its own. The nominal prediction is the mean over replicas and
    its uncertainty the spread of the replicas (the papers' ensemble error bar).

    Attributes
    ----------
    method, region
        Names for tables and plots (``"gp+flow"``, ``"reweighting"``; ``"SR"``, ``"SR_up"``, ...).
    events
        Columns as in :func:`rooml.data.hh4b.generate` samples (at least the kinematics, the masses and the
        derived ``m_hh``, ``pt_hh``, ``deta_hh``, ``x_hh``), one entry per event.
    weights
        Per-event weights; the weights of one replica sum to that replica's predicted yield.
    replica
        Replica index of each event (all zeros for a single prediction).
    """

    method: str
    region: str
    events: Mapping[str, np.ndarray]
    weights: np.ndarray
    replica: np.ndarray

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=float)
        self.replica = np.asarray(self.replica, dtype=int)
        n = len(self.weights)
        if self.replica.shape != (n,):
            raise ValueError(f"replica has shape {self.replica.shape}, expected ({n},)")
        for name, column in self.events.items():
            if len(column) != n:
                raise ValueError(f"column {name!r} has {len(column)} entries, weights have {n}")
        if not np.all(np.isfinite(self.weights)):
            bad = int(np.flatnonzero(~np.isfinite(self.weights))[0])
            raise ValueError(f"non-finite weight at event {bad}")

    @property
    def n_replicas(self) -> int:
        """Number of replicas (at least 1)."""
        return int(self.replica.max()) + 1 if len(self.replica) else 1

    def replica_yields(self) -> np.ndarray:
        """Predicted yield of each replica, shape ``(n_replicas,)``."""
        return np.bincount(self.replica, weights=self.weights, minlength=self.n_replicas)

    def yield_and_error(self) -> tuple[float, float]:
        """Mean of the replicas' yields and their standard deviation (0 for one replica)."""
        yields = self.replica_yields()
        return float(yields.mean()), float(yields.std(ddof=1)) if len(yields) > 1 else 0.0

    def histogram(self, column: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Binned prediction of ``column``: the replicas' mean counts and their standard deviation per bin.

        Events outside ``edges`` are not counted.
        """
        edges = np.asarray(edges, dtype=float)
        values = np.asarray(self.events[column], dtype=float)
        n_bins = len(edges) - 1
        bins = np.searchsorted(edges, values, side="right") - 1
        bins[values == edges[-1]] = n_bins - 1
        inside = (bins >= 0) & (bins < n_bins)
        flat = self.replica[inside] * n_bins + bins[inside]
        counts = np.bincount(flat, weights=self.weights[inside], minlength=self.n_replicas * n_bins)
        counts = counts.reshape(self.n_replicas, n_bins)
        spread = counts.std(axis=0, ddof=1) if self.n_replicas > 1 else np.zeros(n_bins)
        return counts.mean(axis=0), spread

    def select(self, mask: np.ndarray, region: str | None = None) -> Prediction:
        """Restrict the prediction to the events where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        events = {k: np.asarray(v)[mask] for k, v in self.events.items()}
        return Prediction(self.method, region or self.region, events, self.weights[mask], self.replica[mask])
