"""Spurious-signal test: signal + background fits to background-only datasets.

A background model is adequate when fits of the signal + background model to many
background-only datasets (simulation, mixed or synthetic data, toys) give a signal yield
centred at 0.  The summary follows the ATLAS H -> yy convention: the mean fitted signal, its
spread, the ratio mean / sigma_stat (sigma_stat the median fit error) and the fraction of fits
with |s_hat| / sigma > 2.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rooml.infer.fit import fit
from rooml.infer.toys import save_figure

__all__ = ["SpuriousSignal", "spurious_signal"]


@dataclass
class SpuriousSignal:
    """Fitted signal yields on background-only datasets."""

    poi: str
    s_hat: np.ndarray
    sigma: np.ndarray
    status: np.ndarray

    def summary(self) -> dict:
        """Mean, std, error of the mean, mean / sigma_stat, fraction beyond 2 sigma (of converged fits)."""
        ok = self.status == 0
        s, e = self.s_hat[ok], self.sigma[ok]
        n = len(s)
        std = float(np.std(s, ddof=1)) if n > 1 else np.nan
        sigma_stat = float(np.median(e))
        return {"n": int(len(self.s_hat)), "failed": int(np.sum(~ok)), "mean": float(np.mean(s)), "std": std,
                "mean_error": std / np.sqrt(n), "sigma_stat": sigma_stat,
                "mean_over_sigma_stat": float(np.mean(s)) / sigma_stat,
                "fraction_beyond_2sigma": float(np.mean(np.abs(s / e) > 2))}

    def plot(self, path: str | Path, *, bins: int = 25, overwrite: bool = False) -> Path:
        """Histogram of the fitted signal with its mean; refuses to replace ``path`` unless ``overwrite``."""
        s = self.summary()
        ok = self.status == 0

        def draw(ax, hep):
            counts, edges = np.histogram(self.s_hat[ok], bins)
            hep.histplot(counts, edges, yerr=np.sqrt(counts), histtype="errorbar", color="k", ax=ax,
                         label=f"{int(ok.sum())} background-only fits")
            ax.axvline(0, color="grey", ls="--")
            ax.axvline(s["mean"], color="#e42536",
                       label=f"mean {s['mean']:.3g} $\\pm$ {s['mean_error']:.2g}\n"
                             f"mean/$\\sigma_{{stat}}$ = {s['mean_over_sigma_stat']:.3f}")
            ax.set_xlabel(rf"fitted {self.poi}")
            ax.set_ylabel("datasets / bin")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=12)

        return save_figure(draw, path, overwrite=overwrite)


def _fit_one(model, data, poi_name, constraints, extended) -> tuple[float, float, int, str]:
    params = model.getParameters(data)
    start = params.snapshot()
    try:
        result = fit(model, data, constraints=constraints, extended=extended)
        if poi_name not in result.parameters:
            raise ValueError(f"signal parameter '{poi_name}' is not a floating parameter of the model "
                             f"(floating: {sorted(result.parameters)})")
        p = result[poi_name]
        return p.value, p.error, result.status, poi_name
    finally:
        params.assign(start)


def _factory_task(shared, index) -> tuple[float, float, int, str]:
    from rooml._fanout import task_seed

    spec = shared["factory"](task_seed(shared["seed"], index))
    return _fit_one(spec["pdf"], spec["data"], spec["poi"].GetName(), spec.get("constraints"),
                    spec.get("extended"))


def spurious_signal(model=None, poi=None, datasets: Iterable | None = None, *,
                    factory: Callable | None = None, n: int | None = None, seed: int = 0,
                    constraints=None, extended: bool | None = None,
                    client=None, parallel: bool = False, n_workers: int | None = None,
                    progress: bool = True) -> SpuriousSignal:
    """Fit ``model`` to background-only datasets and collect the fitted signal ``poi``.

    Either ``model``, ``poi`` and ``datasets`` (RooAbsData, fitted here one after the other; every fit
    starts from the parameters as given), or ``factory`` and ``n``: ``factory(seed)`` is a picklable
    callable returning ``{"pdf", "poi", "data", "constraints" (optional), "extended" (optional)}`` with
    a fresh background-only dataset for that seed (``SeedSequence(seed, spawn_key=(i,))`` for dataset i),
    run on Dask (``client``, or a ``LocalCluster`` with ``parallel=True``) or here.

    Parameters
    ----------
    model, poi, datasets
        RooAbsPdf, its signal-yield parameter (RooRealVar or name), and the datasets.
    factory, n, seed
        The alternative: a dataset-and-model factory, the number of datasets, the master seed.
    constraints, extended
        As in :func:`rooml.infer.fit` (with ``datasets``).
    client, parallel, n_workers
        Dask options for the factory path (see :func:`rooml.infer.run_toys`).
    progress
        tqdm bar.

    Returns
    -------
    SpuriousSignal
    """
    if factory is not None:
        if n is None or n < 1:
            raise ValueError("spurious_signal with a factory needs n >= 1 datasets")
        from rooml._fanout import fan_out

        shared = {"factory": factory, "seed": int(seed)}
        rows = fan_out(_factory_task, shared, list(range(n)), client=client, parallel=parallel,
                       n_workers=n_workers, progress=progress, desc="spurious-signal fits")
    else:
        if model is None or poi is None or datasets is None:
            raise ValueError("spurious_signal needs model, poi and datasets, or factory and n")
        from tqdm.auto import tqdm

        name = poi if isinstance(poi, str) else poi.GetName()
        rows = [_fit_one(model, d, name, constraints, extended)
                for d in tqdm(list(datasets), desc="spurious-signal fits", disable=not progress)]
    if not rows:
        raise ValueError("spurious_signal: no datasets")
    s_hat, sigma, status, names = (np.array(c) for c in zip(*rows))
    return SpuriousSignal(str(names[0]), s_hat.astype(float), sigma.astype(float), status.astype(int))
