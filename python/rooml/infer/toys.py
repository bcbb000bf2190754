"""Pseudo-experiments (toys) fitted in RooFit, fanned out on Dask with reproducible per-toy seeds.

Two ways to make a toy:

* ``mode="generate"``: sample the model (``RooAbsPdf.generate`` with an extended, Poisson-fluctuated
  number of events) at its parameters after a fit to the observed data (or as the factory leaves
  them), with the POI optionally set to ``mu``; global observables are drawn from their constraints.
* ``mode="bootstrap"``: the NSBI toys (arXiv:2412.01600): the events of a reference sample with
  weights ``w_i Poisson(1)``.  A reference sample with negative weights cannot be bootstrapped this
  way; :func:`positive_reference_weights` reweights a positive-weight reference sample to the target,
  ``w_i^+ p_target(x_i) / p_ref+(x_i)``, as the NSBI paper does.

RooFit objects cannot be pickled, so every Dask task builds its model with ``factory()``, a picklable
callable (a module-level function or a dataclass instance) returning a dict with ``pdf`` and ``poi``
and optionally ``observables``, ``data``, ``constraints``, ``global_observables``, ``extended``
(and, for bootstraps, ``reference_weights`` and ``dataset``, a callable weights -> RooAbsData).  Toy
``i`` uses the seed ``SeedSequence(seed, spawn_key=(i,))``, so the results do not depend on how the
toys are split over tasks and workers.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rooml._files import atomic_output
from rooml.infer._profile import ProfiledNLL
from rooml.infer.fit import fit

__all__ = ["ToyResults", "positive_reference_weights", "run_toys"]


@dataclass
class ToyResults:
    """Per-toy fit results (arrays in toy order)."""

    poi: str
    mu_true: float
    mu_hat: np.ndarray
    sigma: np.ndarray
    nll: np.ndarray
    status: np.ndarray
    seeds: np.ndarray
    t: dict[float, np.ndarray] = field(default_factory=dict)  # t(mu) = 2 (NLL(mu) - NLL_min) per toy

    @property
    def pulls(self) -> np.ndarray:
        """(mu_hat - mu_true) / sigma per toy."""
        return (self.mu_hat - self.mu_true) / self.sigma

    def summary(self) -> dict:
        """Mean and width of the pulls with their statistical errors, and the fraction of failed fits."""
        ok = self.status == 0
        p = self.pulls[ok]
        n = len(p)
        std = float(np.std(p, ddof=1)) if n > 1 else np.nan
        return {"n": int(len(self.mu_hat)), "failed": int(np.sum(~ok)), "pull_mean": float(np.mean(p)),
                "pull_mean_error": std / np.sqrt(n), "pull_std": std,
                "pull_std_error": std / np.sqrt(2 * (n - 1)) if n > 1 else np.nan}

    def plot_pulls(self, path: str | Path, *, bins: int = 30, overwrite: bool = False) -> Path:
        """Histogram of the pulls with the unit Gaussian and the fitted mean and width.

        Parameters
        ----------
        path
            Output file; refuses to replace it unless ``overwrite``.
        bins
            Histogram bins in [-5, 5].
        overwrite
            Replace an existing file.

        Returns
        -------
        pathlib.Path
        """
        from scipy.stats import norm

        s = self.summary()
        edges = np.linspace(-5, 5, bins + 1)
        counts = np.histogram(self.pulls[self.status == 0], edges)[0]
        width = edges[1] - edges[0]
        grid = np.linspace(-5, 5, 400)

        def draw(ax, hep):
            hep.histplot(counts, edges, yerr=np.sqrt(counts), histtype="errorbar", color="k", ax=ax,
                         label=f"{s['n'] - s['failed']} toys")
            ax.plot(grid, counts.sum() * width * norm.pdf(grid), "--", color="grey", label="N(0, 1)")
            fitted = counts.sum() * width * norm.pdf(grid, s["pull_mean"], s["pull_std"])
            ax.plot(grid, fitted, color="#e42536",
                    label=f"mean {s['pull_mean']:.3f} $\\pm$ {s['pull_mean_error']:.3f}\n"
                          f"width {s['pull_std']:.3f} $\\pm$ {s['pull_std_error']:.3f}")
            ax.set_xlabel(rf"$(\hat\mu - \mu_{{true}})/\hat\sigma$ of {self.poi}")
            ax.set_ylabel("toys / bin")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=12)

        return save_figure(draw, path, overwrite=overwrite)


def save_figure(draw: Callable, path: str | Path, *, overwrite: bool = False, figsize=(8, 6)) -> Path:
    """Draw with ``draw(ax, mplhep)`` in the ATLAS style and save atomically (refusing to overwrite)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    with plt.style.context(hep.style.ATLAS):
        fig, ax = plt.subplots(figsize=figsize)
        try:
            draw(ax, hep)
            fig.tight_layout()
            with atomic_output(path, overwrite=overwrite, suffix=path.suffix) as tmp:
                fig.savefig(tmp, dpi=90)
        finally:
            plt.close(fig)
    return path


def positive_reference_weights(weights, density_ratio, total: float | None = None) -> np.ndarray:
    """Weights that make a positive-weight reference sample represent a target distribution.

    ``w_i^+ * p_target(x_i) / p_ref+(x_i)``, optionally scaled to sum to ``total`` (the expected yield).

    Parameters
    ----------
    weights
        Weights ``w_i^+ >= 0`` of the positive reference sample.
    density_ratio
        ``p_target(x_i) / p_ref+(x_i)`` per event (e.g. from the NSBI ratio networks), finite and >= 0.
    total
        Optional sum of the returned weights.

    Returns
    -------
    numpy.ndarray
    """
    w = np.asarray(weights, dtype=np.float64)
    r = np.asarray(density_ratio, dtype=np.float64)
    if w.shape != r.shape:
        raise ValueError(f"weights {w.shape} and density ratios {r.shape} differ in shape")
    for name, a in (("weights", w), ("density ratios", r)):
        bad = np.flatnonzero(~(np.isfinite(a) & (a >= 0)))
        if len(bad):
            raise ValueError(f"positive reference sample: {name} must be finite and >= 0; event {bad[0]} has "
                             f"{a[bad[0]]} ({len(bad)} bad events)")
    out = w * r
    return out * (total / out.sum()) if total is not None else out


def _observables(spec):
    import ROOT

    obs = spec.get("observables")
    if obs is None:
        if spec.get("data") is None:
            raise ValueError("the factory's model needs 'observables' or 'data'")
        return spec["pdf"].getObservables(spec["data"])
    return obs if isinstance(obs, ROOT.RooArgSet) else ROOT.RooArgSet(*obs)


def _draw_globals(spec) -> None:
    """Set each global observable to a draw from its constraint at the current parameters."""
    import ROOT

    for g in spec.get("global_observables") or []:
        (constraint,) = [c for c in spec.get("constraints") or [] if c.dependsOn(g)][:1] or [None]
        if constraint is None:
            raise ValueError(f"global observable '{g.GetName()}' appears in none of the constraints")
        drawn = constraint.generate(ROOT.RooArgSet(g), 1)
        g.setVal(drawn.get(0).getRealValue(g.GetName()))


def _toy_data(spec, mode: str, seed: int, observables):
    import ROOT

    ROOT.RooRandom.randomGenerator().SetSeed(seed)
    if mode == "bootstrap":
        w = np.asarray(spec["reference_weights"], dtype=np.float64)
        if np.any(w < 0):
            raise ValueError(f"bootstrap toys: the reference sample has {int(np.sum(w < 0))} negative "
                             "weights; reweight a positive-weight reference sample with "
                             "positive_reference_weights()")
        return spec["dataset"](w * np.random.default_rng(seed).poisson(1.0, len(w)))
    _draw_globals(spec)
    pdf = spec["pdf"]
    if not pdf.canBeExtended():
        raise ValueError(f"mode='generate' needs an extended pdf; '{pdf.GetName()}' is not")
    return pdf.generate(observables, ROOT.RooFit.Extended(True))


def _prepare(shared):
    """Build the model and set the generation parameters; returns (spec, parameters, snapshot)."""
    spec = shared["factory"]()
    pdf, poi = spec["pdf"], spec["poi"]
    if shared["fit_to_data"] and spec.get("data") is not None:
        fit(pdf, spec["data"], constraints=spec.get("constraints"), extended=spec.get("extended"),
            hesse=False)
    if shared["mu"] is not None:
        poi.setVal(float(shared["mu"]))
    observables = _observables(spec)
    params = pdf.getParameters(observables)
    for c in spec.get("constraints") or []:
        params.add(c.getParameters(observables), True)
    return spec, params, params.snapshot(), observables


def _toy_chunk(shared, indices) -> list[dict]:
    """Dask task: build the model once and run the toys ``indices``."""
    from rooml._fanout import task_seed

    spec, params, truth, observables = _prepare(shared)
    mu_true = spec["poi"].getVal()
    out = []
    for i in indices:
        params.assign(truth)
        seed = task_seed(shared["seed"], i)
        data = _toy_data(spec, shared["mode"], seed, observables)
        profile = ProfiledNLL(spec["pdf"], data, spec["poi"], constraints=spec.get("constraints"),
                              extended=spec.get("extended"))
        mu_hat, sigma, nll = profile.global_fit()
        t = {v: 2 * (profile.at(v) - nll) for v in shared["test_values"]}
        out.append({"poi": spec["poi"].GetName(), "index": i, "seed": seed, "mu_true": mu_true,
                    "mu_hat": mu_hat, "sigma": sigma, "nll": nll, "status": profile.status, "t": t})
    params.assign(truth)
    return out


def run_toys(factory: Callable, n_toys: int, *, mu: float | None = None, mode: str = "generate",
             fit_to_data: bool = True, test_values: Sequence[float] = (), seed: int = 0, client=None,
             parallel: bool = True, n_workers: int | None = None, toys_per_task: int | None = None,
             progress: bool = True) -> ToyResults:
    """Generate and fit ``n_toys`` pseudo-experiments.

    Parameters
    ----------
    factory
        Picklable callable building the model (see the module docstring).
    n_toys
        Number of toys.
    mu
        POI value to generate at (default: its value after the fit to the data / from the factory).
    mode
        ``"generate"`` (sample the model) or ``"bootstrap"`` (Poisson(1) weights of a reference sample).
    fit_to_data
        Fit the model to the factory's ``data`` before generating (the "fitted model").
    test_values
        POI values at which to also compute the profile-likelihood ratio ``t(mu)`` of every toy.
    seed
        Master seed; toy ``i`` uses ``SeedSequence(seed, spawn_key=(i,))``.
    client, parallel, n_workers
        A ``distributed.Client``; or, without one, a ``LocalCluster`` of ``n_workers`` processes
        (``parallel=True``) or this process (``parallel=False``).
    toys_per_task
        Toys per Dask task (each task builds the model once); default: ``n_toys / (4 * workers)``.
    progress
        tqdm bar over finished tasks.

    Returns
    -------
    ToyResults
    """
    if mode not in ("generate", "bootstrap"):
        raise ValueError(f"mode must be 'generate' or 'bootstrap', got {mode!r}")
    if n_toys < 1:
        raise ValueError(f"n_toys must be >= 1, got {n_toys}")
    if toys_per_task is None:
        toys_per_task = max(1, int(np.ceil(n_toys / (4 * (n_workers or 2)))))
    chunks = [list(range(s, min(s + toys_per_task, n_toys))) for s in range(0, n_toys, toys_per_task)]
    shared = {"factory": factory, "mu": mu, "mode": mode, "fit_to_data": fit_to_data, "seed": int(seed),
              "test_values": [float(v) for v in test_values]}
    from rooml._fanout import fan_out  # the shared Dask fan-out helper (serial, LocalCluster or client)

    results = [r for chunk in fan_out(_toy_chunk, shared, chunks, client=client, parallel=parallel,
                                      n_workers=n_workers, progress=progress, desc="toys") for r in chunk]
    return ToyResults(
        poi=results[0]["poi"],
        mu_true=float(results[0]["mu_true"]),
        mu_hat=np.array([r["mu_hat"] for r in results]),
        sigma=np.array([r["sigma"] for r in results]),
        nll=np.array([r["nll"] for r in results]),
        status=np.array([r["status"] for r in results]),
        seeds=np.array([r["seed"] for r in results], dtype=np.uint64),
        t={v: np.array([r["t"][v] for r in results]) for v in shared["test_values"]},
    )
