"""Run independent tasks serially or on Dask, in task order, with a progress bar.

Ensemble trainings, toys, spurious-signal fits, refit impacts and the HH -> 4b
studies (reweighter retrainings, mixed datasets) all fan out the same way: one
function, a large shared argument scattered to the workers once, and a small
per-task argument that alone fixes the task's random seeds, so the result does
not depend on the scheduling.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

__all__ = ["fan_out", "task_seed"]


def task_seed(seed: int, *key: int) -> int:
    """Return a 32-bit seed of task ``key``: ``SeedSequence(seed, spawn_key=key)``.

    >>> task_seed(0, 1) == task_seed(0, 1) != task_seed(0, 2)
    True
    """
    import numpy as np

    seq = np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fan_out(
    func: Callable[..., Any],
    shared: Any,
    tasks: Sequence[Any],
    *,
    client: Any = None,
    parallel: bool = True,
    n_workers: int | None = None,
    progress: bool = True,
    desc: str = "tasks",
) -> list[Any]:
    """Return ``[func(shared, task) for task in tasks]``, computed serially or on Dask.

    Parameters
    ----------
    func
        A picklable (module-level) function ``func(shared, task)``.
    shared
        The common argument, scattered to every worker once.
    tasks
        Per-task arguments (small).
    client
        A ``distributed.Client`` to run on (left open).  ``None``: with
        ``parallel=True`` a ``LocalCluster`` of ``n_workers`` single-threaded
        worker processes (default ``min(cores, len(tasks))``) is started and
        closed; with ``parallel=False`` the tasks run in this process.
    parallel, n_workers
        See ``client``.
    progress, desc
        A tqdm bar over completed tasks.

    Returns
    -------
    list
        Results in the order of ``tasks``.
    """
    tasks = list(tasks)
    if client is None and not parallel:
        return [func(shared, task) for task in tqdm(tasks, desc=desc, disable=not progress)]
    from distributed import Client, LocalCluster, as_completed

    own = client is None
    if own:
        workers = n_workers if n_workers is not None else min(_cores(), len(tasks))
        cluster = LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR,
        )  # fmt: skip
        client = Client(cluster, set_as_default=False)
    try:
        data = client.scatter(shared, broadcast=True, hash=False)
        futures = {client.submit(func, data, task, pure=False): i for i, task in enumerate(tasks)}
        results: list[Any] = [None] * len(tasks)
        with tqdm(total=len(tasks), desc=desc, disable=not progress) as bar:
            try:
                for future in as_completed(futures, loop=client.loop):
                    results[futures[future]] = future.result()
                    bar.update()
            except BaseException:
                client.cancel(list(futures))
                raise
        return results
    finally:
        if own:
            client.close()
            cluster.close()
