"""Neyman construction of confidence belts from toys on a grid of the POI, intervals and coverage.

Two orderings (Feldman and Cousins, arXiv:physics/9711021):

* ``"central"``: at each grid value mu the acceptance region of mu_hat is the central ``cl`` quantile
  range ``[q_(1-cl)/2(mu), q_(1+cl)/2(mu)]``; the interval of an observed mu_hat is every mu whose region
  contains it.
* ``"fc"``: likelihood-ratio ordering with the profile test statistic ``t_mu = 2 [NLL(mu) - NLL(mu_hat)]``
  (mu_hat inside the POI's allowed range, which carries physical boundaries): accept while ``t_mu`` is
  below its ``cl`` quantile ``c(mu)``; the interval of the data is ``{mu: t_mu(data) <= c(mu)}``.

Coverage is the fraction of toys at the true mu whose interval contains it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rooml.infer.toys import ToyResults, run_toys

__all__ = ["Belt", "belt_from_statistics", "coverage", "neyman_belt"]


@dataclass
class Belt:
    """A confidence belt on a grid of POI values."""

    grid: np.ndarray
    cl: float
    ordering: str  # "central" or "fc"
    lower: np.ndarray  # central: lower end of the mu_hat acceptance region; fc: unused (-inf)
    upper: np.ndarray  # central: upper end of the mu_hat acceptance region; fc: threshold c(mu) on t_mu
    n_toys: np.ndarray

    def accepts(self, mu: float, statistic) -> np.ndarray:
        """Whether ``statistic`` (mu_hat, or t_mu at this mu for FC) lies in the acceptance region at ``mu``.

        The region's ends are linearly interpolated between grid values.
        """
        s = np.asarray(statistic, dtype=float)
        hi = np.interp(mu, self.grid, self.upper)
        if self.ordering == "fc":
            return s <= hi
        return (s >= np.interp(mu, self.grid, self.lower)) & (s <= hi)

    def interval(self, observed) -> tuple[float, float]:
        """Confidence interval of an observation.

        Parameters
        ----------
        observed
            ``"central"``: the observed mu_hat (a number).  ``"fc"``: the observed ``t_mu`` on the belt's grid
            (e.g. ``profile_scan(model, data, poi, belt.grid).t``).

        Returns
        -------
        tuple
            ``(low, high)``: the accepted grid range, its ends refined by linear interpolation.
        """
        if self.ordering == "fc":
            t_obs = np.asarray(observed, dtype=float)
            if t_obs.shape != self.grid.shape:
                raise ValueError(f"FC intervals need t_mu on the belt's {len(self.grid)} grid points, got "
                                 f"shape {t_obs.shape}")
            excess = t_obs - self.upper
        else:
            mu_hat = float(observed)
            excess = np.maximum(self.lower - mu_hat, mu_hat - self.upper)
        inside = np.flatnonzero(excess <= 0)
        if not len(inside):
            return (np.nan, np.nan)
        i, j = inside[0], inside[-1]
        low = self.grid[i] if i == 0 else _zero(self.grid[i - 1], self.grid[i], excess[i - 1], excess[i])
        high = self.grid[j] if j == len(self.grid) - 1 else _zero(self.grid[j], self.grid[j + 1], excess[j],
                                                                  excess[j + 1])
        return (float(low), float(high))


def _zero(x0, x1, y0, y1):
    return x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x0


def belt_from_statistics(grid: Sequence[float], statistics: Sequence, *, ordering: str = "fc",
                         cl: float = 0.68) -> Belt:
    """Build a belt from toy test statistics generated at each grid value.

    Parameters
    ----------
    grid
        Increasing POI values.
    statistics
        One array per grid value: the toys' mu_hat (``"central"``) or their ``t_mu`` at that grid value
        (``"fc"``).
    ordering
        ``"central"`` or ``"fc"``.
    cl
        Confidence level.

    Returns
    -------
    Belt
    """
    grid = np.asarray(grid, dtype=float)
    if ordering not in ("central", "fc"):
        raise ValueError(f"ordering must be 'central' or 'fc', got {ordering!r}")
    if not 0 < cl < 1:
        raise ValueError(f"cl must be in (0, 1), got {cl}")
    if len(statistics) != len(grid) or np.any(np.diff(grid) <= 0):
        raise ValueError("need one array of toy statistics per grid value, on an increasing grid")
    stats = [np.asarray(s, dtype=float)[np.isfinite(s)] for s in statistics]
    if ordering == "fc":
        lower = np.full(len(grid), -np.inf)
        upper = np.array([np.quantile(s, cl) for s in stats])
    else:
        lower = np.array([np.quantile(s, (1 - cl) / 2) for s in stats])
        upper = np.array([np.quantile(s, (1 + cl) / 2) for s in stats])
    return Belt(grid, cl, ordering, lower, upper, np.array([len(s) for s in stats]))


def _statistic(toys: ToyResults, mu: float, ordering: str) -> np.ndarray:
    ok = toys.status == 0
    return (toys.t[mu] if ordering == "fc" else toys.mu_hat)[ok]


def neyman_belt(factory: Callable, grid: Sequence[float], n_toys: int, *, ordering: str = "fc",
                cl: float = 0.68, seed: int = 0, client=None, parallel: bool = True,
                n_workers: int | None = None, progress: bool = True) -> tuple[Belt, list[ToyResults]]:
    """Run toys at every grid value and build the confidence belt.

    Parameters
    ----------
    factory
        Picklable model factory (see :mod:`rooml.infer.toys`); toys are generated from the model
        (``mode="generate"``, without a fit to data) with the POI at each grid value.
    grid
        Increasing POI values.
    n_toys
        Toys per grid value.
    ordering, cl
        See :func:`belt_from_statistics`.
    seed
        Master seed; grid point k uses the seed ``seed + k`` for its toys' ``SeedSequence``.
    client, parallel, n_workers
        As in :func:`rooml.infer.run_toys`; without a client, one ``LocalCluster`` serves all grid points.
    progress
        tqdm bars.

    Returns
    -------
    tuple
        ``(Belt, [ToyResults per grid value])``.
    """
    grid = np.asarray(grid, dtype=float)
    own = None
    if client is None and parallel:
        import logging

        from distributed import Client, LocalCluster

        own = LocalCluster(n_workers=n_workers or 2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(own, set_as_default=False)
    try:
        toys = [run_toys(factory, n_toys, mu=float(mu), fit_to_data=False, test_values=[float(mu)],
                         seed=seed + k, client=client, parallel=parallel, n_workers=n_workers,
                         progress=progress) for k, mu in enumerate(grid)]
    finally:
        if own is not None:
            client.close()
            own.close()
    belt = belt_from_statistics(grid, [_statistic(t, float(mu), ordering) for t, mu in zip(toys, grid)],
                                ordering=ordering, cl=cl)
    return belt, toys


def coverage(belt: Belt, toys: ToyResults) -> tuple[float, float]:
    """Fraction of the toys generated at ``toys.mu_true`` whose interval contains it, and its binomial error.

    For FC the toys need ``t`` at the true value (``run_toys(..., test_values=[mu_true])``).
    """
    mu = toys.mu_true
    if belt.ordering == "fc" and mu not in toys.t:
        raise ValueError(f"FC coverage needs the toys' t_mu at the true value {mu}: "
                         f"run_toys(test_values=[{mu}])")
    covered = belt.accepts(mu, _statistic(toys, mu, belt.ordering))
    p = float(np.mean(covered))
    return p, float(np.sqrt(p * (1 - p) / len(covered)))
