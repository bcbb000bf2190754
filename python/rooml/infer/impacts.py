"""Pulls of nuisance parameters and their impacts on the parameter of interest, with a ranking plot.

* pull: ``(theta_hat - theta_0) / sigma_prefit`` and the constraint ``sigma_hat / sigma_prefit``;
* Hessian impact: the POI shift for a +1 sigma_hat shift of theta in the linearized fit,
  ``C(mu, theta) / sigma_hat(theta)`` from the post-fit covariance C;
* refit impacts: ``mu_hat(theta fixed at theta_hat +- sigma_hat) - mu_hat`` (post-fit) and optionally
  ``mu_hat(theta_hat +- sigma_prefit) - mu_hat`` (pre-fit), the remaining parameters refitted, as in
  CMS ``combine``'s impacts and ATLAS's ranking plots.  For a linear Gaussian model the Hessian and
  the post-fit refit impacts agree.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rooml._files import atomic_output
from rooml.infer._profile import named
from rooml.infer.fit import FitResult, create_nll, fit, minimize
from rooml.infer.toys import save_figure

__all__ = ["Impact", "Impacts", "Pull", "impacts", "plot_ranking", "pulls"]


@dataclass
class Pull:
    """A nuisance parameter after the fit compared with its pre-fit constraint."""

    name: str
    value: float
    error: float
    prefit_value: float = 0.0
    prefit_sigma: float = 1.0

    @property
    def pull(self) -> float:
        """(theta_hat - theta_0) / sigma_prefit."""
        return (self.value - self.prefit_value) / self.prefit_sigma

    @property
    def constraint(self) -> float:
        """sigma_hat / sigma_prefit (< 1: the data constrain the parameter beyond its prior)."""
        return self.error / self.prefit_sigma


def pulls(fit_result: FitResult, nuisance: Sequence, prefit: Mapping | None = None) -> list[Pull]:
    """Return the pulls of the nuisance parameters of a fit.

    Parameters
    ----------
    fit_result
        A :class:`rooml.infer.FitResult`.
    nuisance
        Nuisance parameters (RooRealVar or names), all floating in the fit.
    prefit
        ``{name: (theta_0, sigma_prefit)}``; default ``(0, 1)``, the unit Gaussian constraints of the
        rooml models.

    Returns
    -------
    list of Pull
        In the order of ``nuisance``.
    """
    out = []
    for name in named(nuisance):
        if name not in fit_result.parameters:
            raise KeyError(f"nuisance parameter '{name}' did not float in the fit "
                           f"(floating: {sorted(fit_result.parameters)})")
        p = fit_result[name]
        theta0, sigma0 = (prefit or {}).get(name, (0.0, 1.0))
        if not sigma0 > 0:
            raise ValueError(f"pre-fit sigma of '{name}' must be > 0, got {sigma0}")
        out.append(Pull(name, p.value, p.error, float(theta0), float(sigma0)))
    return out


@dataclass
class Impact:
    """Impacts of one nuisance parameter on the POI (shifts of mu_hat)."""

    pull: Pull
    hessian: float  # C(mu, theta) / sigma_hat(theta)
    postfit: tuple[float, float] | None = None  # (theta_hat - sigma_hat, theta_hat + sigma_hat) refits
    prefit: tuple[float, float] | None = None  # (theta_hat - sigma_prefit, theta_hat + sigma_prefit) refits

    @property
    def name(self) -> str:
        """The nuisance parameter's name."""
        return self.pull.name

    @property
    def size(self) -> float:
        """Ranking key: the largest |post-fit refit impact| (the Hessian one without refits)."""
        return max(abs(v) for v in self.postfit) if self.postfit else abs(self.hessian)


@dataclass
class Impacts:
    """The pulls and impacts of all nuisance parameters, ranked by :attr:`Impact.size`."""

    poi: str
    mu_hat: float
    sigma_mu: float
    entries: list[Impact]
    fit: FitResult

    def __str__(self) -> str:
        lines = [f"{self.poi} = {self.mu_hat:.5g} +- {self.sigma_mu:.4g}; impacts on {self.poi}:"]
        for e in self.entries:
            refit = f"  refit {e.postfit[0]:+.4g} / {e.postfit[1]:+.4g}" if e.postfit else ""
            lines.append(f"  {e.name:<20s} pull {e.pull.pull:+.3f} ({e.pull.constraint:.3f})  "
                         f"Hessian {e.hessian:+.4g}{refit}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-able dict."""
        return {"poi": self.poi, "mu_hat": self.mu_hat, "sigma_mu": self.sigma_mu,
                "impacts": [dict(asdict(e), name=e.name, pull_value=e.pull.pull) for e in self.entries]}

    def save_json(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write :meth:`as_dict` to ``path`` (refuses to replace a file unless ``overwrite``)."""
        return _write_new(Path(path), json.dumps(self.as_dict(), indent=2), overwrite)


def _write_new(path: Path, text: str, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return path


def _refit(nll, poi_name: str, fixed: dict, start) -> float:
    """mu_hat with the parameters in ``fixed`` held at their values, starting at ``start``."""
    params = nll.getVariables()
    params.assign(start)
    for name, value in fixed.items():
        v = params.find(name)
        v.setVal(float(value))
        v.setConstant(True)
    minimize(nll, hesse=False)
    mu = float(params.find(poi_name).getVal())
    params.assign(start)
    return mu


def _refit_task(shared, task) -> float:
    """Dask task: build the model with ``shared["factory"]``, fit it, refit with one parameter fixed."""
    spec = shared["factory"]()
    nll = create_nll(spec["pdf"], spec["data"], constraints=spec.get("constraints"),
                     extended=shared["extended"])
    minimize(nll, hesse=False)
    return _refit(nll, shared["poi"], task, nll.getVariables().snapshot())


def impacts(model, data, poi, nuisance: Sequence, *, constraints=None, extended: bool | None = None,
            prefit: Mapping | None = None, refit: bool = True, prefit_impacts: bool = False,
            client=None, factory: Callable | None = None, progress: bool = True) -> Impacts:
    """Fit, then compute pulls and Hessian and refit impacts of ``nuisance`` on ``poi``, ranked.

    Parameters
    ----------
    model, data
        RooAbsPdf and RooAbsData.
    poi
        The parameter of interest (RooRealVar or name).
    nuisance
        Nuisance parameters (RooRealVar or names) to rank.
    constraints, extended
        As in :func:`rooml.infer.fit`.
    prefit
        ``{name: (theta_0, sigma_prefit)}``, default ``(0, 1)``.
    refit
        Compute the post-fit refit impacts (2 fits per parameter).
    prefit_impacts
        Also the pre-fit refit impacts (2 more fits per parameter).
    client
        A ``distributed.Client``: the refits run there, each task building its model with
        ``factory``.  ``None``: the refits run here, one after the other, on ``model``.
    factory
        Picklable callable returning ``{"pdf", "data", "constraints" (optional)}`` equal to
        ``model``/``data``/``constraints`` (needed with ``client``; RooFit objects cannot be pickled).
    progress
        tqdm bar over the refits.

    Returns
    -------
    Impacts
        The model's parameters are left at the best fit.
    """
    from rooml._fanout import fan_out

    poi_name = named([poi])[0]
    names = named(nuisance)
    if client is not None and factory is None:
        raise ValueError("impacts on a Dask client need factory=, a picklable callable that builds the model "
                         "(RooFit objects cannot be sent to workers)")
    nll = create_nll(model, data, constraints=constraints, extended=extended)
    params = nll.getVariables()
    for name in [poi_name, *names]:
        if params.find(name) is None or params.find(name).isConstant():
            raise ValueError(f"'{name}' is not a floating parameter of the model")
    fitted = fit(model, data, constraints=constraints, extended=extended)
    best = params.snapshot()
    mu_hat, sigma_mu = fitted[poi_name].value, fitted[poi_name].error
    order = list(fitted.parameters)
    cov = fitted.correlation * np.outer([fitted[n].error for n in order], [fitted[n].error for n in order])
    i_mu = order.index(poi_name)
    the_pulls = pulls(fitted, names, prefit)

    tasks = []
    for p in the_pulls:
        shifts = [p.error] + ([p.prefit_sigma] if prefit_impacts else [])
        tasks += [{p.name: p.value + sign * s} for s in shifts for sign in (-1.0, 1.0)] if refit else []
    if client is None:
        shifted = [_refit(nll, poi_name, t, best) for t in _progress(tasks, progress)]
    else:
        shared = {"factory": factory, "poi": poi_name, "extended": extended}
        shifted = fan_out(_refit_task, shared, tasks, client=client, progress=progress, desc="impact refits")
    params.assign(best)

    entries, k = [], 0
    per = 4 if prefit_impacts else 2
    for p in the_pulls:
        hessian = cov[i_mu, order.index(p.name)] / p.error
        post = pre = None
        if refit:
            d = [s - mu_hat for s in shifted[k:k + per]]
            post, pre = (d[0], d[1]), ((d[2], d[3]) if prefit_impacts else None)
            k += per
        entries.append(Impact(p, float(hessian), post, pre))
    entries.sort(key=lambda e: e.size, reverse=True)
    return Impacts(poi_name, mu_hat, sigma_mu, entries, fitted)


def _progress(items, enabled):
    from tqdm.auto import tqdm

    return tqdm(items, desc="impact refits", disable=not enabled, leave=False)


def plot_ranking(result: Impacts, path: str | Path, *, top: int | None = 20, overwrite: bool = False,
                 label: str | None = None) -> Path:
    """Ranking plot: pulls with error bars (bottom axis) and impact bars on the POI (top axis).

    Parameters
    ----------
    result
        Output of :func:`impacts`.
    path
        Output file (format from the suffix); refuses to replace it unless ``overwrite``.
    top
        Show the ``top`` highest-ranked parameters (None: all).
    overwrite
        Replace an existing file.
    label
        Text drawn in the corner (e.g. the experiment and luminosity).

    Returns
    -------
    pathlib.Path
    """
    entries = result.entries[:top] if top else result.entries
    n = len(entries)
    y = np.arange(n)[::-1]

    def draw(ax, hep) -> None:
        top_ax = ax.twiny()
        prefit_sizes = [max(map(abs, e.prefit)) for e in entries if e.prefit]
        scale = max([e.size for e in entries] + prefit_sizes + [1e-12])
        for i, e in zip(y, entries):
            up, down = e.postfit if e.postfit else (e.hessian, -e.hessian)
            top_ax.barh(i, up, height=0.7, color="#5790fc", alpha=0.6,
                        label=r"$+1\hat\sigma$" if i == y[0] else None)
            top_ax.barh(i, down, height=0.7, color="#f89c20", alpha=0.6,
                        label=r"$-1\hat\sigma$" if i == y[0] else None)
            if e.prefit:
                top_ax.barh(i, e.prefit[1], height=0.7, fill=False, edgecolor="#5790fc")
                top_ax.barh(i, e.prefit[0], height=0.7, fill=False, edgecolor="#f89c20")
        top_ax.set_xlim(-1.3 * scale, 1.3 * scale)
        top_ax.set_xlabel(rf"$\Delta\hat{{\mu}}$ on {result.poi}")
        ax.errorbar([e.pull.pull for e in entries], y, xerr=[e.pull.constraint for e in entries], fmt="ko",
                    ms=5, label="pull")
        ax.axvline(0, color="k", lw=0.8)
        for edge in (-1, 1):
            ax.axvline(edge, color="k", ls="--", lw=0.8)
        ax.set_xlim(-2.5, 2.5)
        ax.set_xlabel(r"$(\hat\theta - \theta_0)/\Delta\theta$")
        ax.set_yticks(y, [e.name for e in entries])
        ax.set_ylim(-0.8, n - 0.2)
        ax.set_zorder(top_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        handles = ax.get_legend_handles_labels()[0] + top_ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=11,
                  frameon=False)
        if label:
            ax.text(0.02, 0.02, label, transform=ax.transAxes, fontsize=11)

    return save_figure(draw, path, overwrite=overwrite, figsize=(9, 3.0 + 0.5 * max(n, 1)))
