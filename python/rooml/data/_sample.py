"""The event container shared by every generator: named float64 columns plus weights."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Sample", "concatenate", "as_rng"]


@dataclass
class Sample:
    """Events as named float64 columns, one weight per event and metadata.

    Parameters
    ----------
    columns : dict of str to numpy.ndarray
        Equal-length one-dimensional arrays, converted to float64. Discrete
        quantities (year, b-tag count, truth labels) are stored as exact small
        integers in float64 so that every column is a plain ROOT ``double``.
    weight : numpy.ndarray, optional
        Per-event weights (default: ones).
    attrs : dict, optional
        Metadata (generator, process, seed, parameters); JSON-serializable.

    Notes
    -----
    ``len(sample)`` is the number of events; ``sample["name"]`` a column;
    ``sample.select(mask)`` a sub-sample; ``sample.as_dict()`` the columns plus
    the weight, ready for :func:`rooml.data.write_root` or
    ``ROOT.RooDataSet.from_numpy``.
    """

    columns: dict[str, np.ndarray]
    weight: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cols = {str(k): np.ascontiguousarray(v, dtype=np.float64) for k, v in self.columns.items()}
        lengths = {k: v.shape for k, v in cols.items()}
        n = None
        for name, shape in lengths.items():
            if len(shape) != 1:
                raise ValueError(f"column {name!r} is not one-dimensional (shape {shape})")
            if n is None:
                n = shape[0]
            elif shape[0] != n:
                raise ValueError(f"column {name!r} has {shape[0]} entries, expected {n}")
        n = 0 if n is None else n
        if self.weight is None:
            weight = np.ones(n)
        else:
            weight = np.ascontiguousarray(self.weight, dtype=np.float64)
            if weight.shape != (n,):
                raise ValueError(f"weight has shape {weight.shape}, expected ({n},)")
        self.columns = cols
        self.weight = weight

    def __len__(self) -> int:
        return int(self.weight.shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"no column {name!r}; columns are {sorted(self.columns)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def keys(self) -> list[str]:
        """Return the column names (without the weight)."""
        return list(self.columns)

    @property
    def n_events(self) -> int:
        """Number of events."""
        return len(self)

    @property
    def sum_weights(self) -> float:
        """Sum of the event weights."""
        return float(np.sum(self.weight))

    def select(self, mask: np.ndarray) -> Sample:
        """Return the events where ``mask`` is true (or the given indices).

        Parameters
        ----------
        mask : numpy.ndarray
            Boolean mask of length ``len(self)`` or an integer index array.

        Returns
        -------
        Sample
            A new sample sharing ``attrs`` (copied).
        """
        mask = np.asarray(mask)
        if mask.dtype == bool and mask.shape != (len(self),):
            raise ValueError(f"mask has shape {mask.shape}, expected ({len(self)},)")
        return Sample({k: v[mask] for k, v in self.columns.items()}, self.weight[mask], dict(self.attrs))

    def as_dict(self, weight_name: str | None = "weight") -> dict[str, np.ndarray]:
        """Return the columns (and the weight under ``weight_name``) as a dict.

        Parameters
        ----------
        weight_name : str or None
            Key for the weights; ``None`` leaves them out.

        Returns
        -------
        dict of str to numpy.ndarray
        """
        out = dict(self.columns)
        if weight_name is not None:
            if weight_name in out:
                raise ValueError(f"weight name {weight_name!r} clashes with a column")
            out[weight_name] = self.weight
        return out


def concatenate(samples: Sequence[Sample], attrs: Mapping[str, Any] | None = None) -> Sample:
    """Concatenate samples with identical columns.

    Parameters
    ----------
    samples : sequence of Sample
        At least one sample; all must have the same column names.
    attrs : mapping, optional
        Metadata of the result (default: that of the first sample).

    Returns
    -------
    Sample
    """
    if not samples:
        raise ValueError("nothing to concatenate")
    names = samples[0].keys()
    for s in samples[1:]:
        if set(s.keys()) != set(names):
            raise ValueError(f"column mismatch: {sorted(names)} vs {sorted(s.keys())}")
    cols = {k: np.concatenate([s[k] for s in samples]) for k in names}
    weight = np.concatenate([s.weight for s in samples])
    return Sample(cols, weight, dict(samples[0].attrs if attrs is None else attrs))


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return ``np.random.default_rng(seed)``, or ``seed`` if it is a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
