"""The demo's RooFit model: HI-SIGMA with one per-event shape systematic, in a RooWorkspace.

:func:`rooml.roofit.hisigma_model` builds ``mu s P_s(m) P_s(x'|m) + b P_b(m) P_b(x'|m)``
from the nominal flows; RooFit's workspace editor then replaces each feature
density ``P(x'|m)`` by a ``RooInterpolatedDensity`` of the nominal and +-1 sigma
flows (code 5, samples normalization), and the product with the unit Gaussian
constraint of ``nu`` is the model ``"model"``.  Switching every flow to one
bootstrap model (:meth:`DemoWorkspace.use_bootstrap`) gives HI-SIGMA's bootstrap
fits without rebuilding anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rooml._files import atomic_output
from rooml.data import bbyy

__all__ = ["NP", "PROCESSES", "DemoWorkspace", "build_workspace", "fitted_templates", "write_workspace"]

NP = "nu_pt_bb"  # the shape systematic's nuisance parameter
PROCESSES = ("signal", "background")


def _feature_name(process: str, variation: str) -> str:
    return f"{process}_features" if variation == "nominal" else f"{process}_features_{variation}"


@dataclass
class DemoWorkspace:
    """The workspace and the handles the demo needs (keep this object alive while fitting)."""

    ws: object  # RooWorkspace "w": pdf "model", data "data"
    hisigma: object  # the HiSigmaModel of the nominal flows (owns objects the workspace copied)
    paths: dict  # paths[process][variation] of the exported flows
    normalization_samples: int
    seed: int

    @property
    def model(self):
        """The full model: HI-SIGMA with the interpolated feature densities, times the constraint of nu."""
        return self.ws.pdf("model")

    @property
    def data(self):
        """The mock dataset."""
        return self.ws.data("data")

    def var(self, name: str):
        """Return a variable of the workspace (``mu``, ``n_bkg``, ``p1``, ``p2``, ``nu_pt_bb``, ...)."""
        return self.ws.var(name)

    def n_bootstraps(self) -> int:
        """Return the number of bootstrap models of the flows."""
        return int(self.ws.pdf(_feature_name("background", "nominal")).nBootstraps())

    def use_bootstrap(self, index: int) -> None:
        """Make every flow use bootstrap model ``index`` (-1: all members) and renormalize the systematic.

        The samples normalization ``N(nu) = E_{P_0}[w(x', m, nu)]`` of each
        interpolated density is recomputed with that bootstrap model's ratios
        ``P_+-/P_0`` on nominal simulation events (``normalization_samples`` per
        process, independent of the training and the mock data).
        """
        import rooml
        from rooml.demo.train import features_and_mass
        from rooml.roofit import to_std_vector, variation_ratios

        for i, process in enumerate(PROCESSES):
            for variation in ("nominal", "low", "high"):
                self.ws.pdf(_feature_name(process, variation)).setBootstrap(int(index))
            x, m = features_and_mass(
                bbyy.generate(process, self.normalization_samples, seed=self.seed + 7919 + i)
            )
            lp = {
                v: rooml.load(self.paths[process][v]).log_prob(x, m, bootstrap=int(index))
                for v in ("nominal", "low", "high")
            }
            lo, hi = variation_ratios(lp["nominal"], [lp["low"]], [lp["high"]])
            self.ws.pdf(f"{process}_features_syst").setSampleNormalization(
                to_std_vector(lo), to_std_vector(hi), to_std_vector([])
            )


def build_workspace(
    paths: dict,
    mock,
    *,
    s_expected: float,
    code: int = 5,
    normalization_samples: int = 100_000,
    seed: int = 1,
) -> DemoWorkspace:
    """Build the HI-SIGMA model with the shape systematic and import it with the mock data.

    Parameters
    ----------
    paths
        ``paths[process][variation]`` of the exported ensembles (:func:`rooml.demo.train.train_models`).
    mock
        The observed events (a :mod:`rooml.data.bbyy` mock sample).
    s_expected
        Signal yield at ``mu = 1``.
    code
        Interpolation code of the systematic (5: polynomial inside, exponential outside).
    normalization_samples
        Nominal-model events per process for the systematic's normalization.
    seed
        Seed of those events.

    Returns
    -------
    DemoWorkspace
        With every flow on bootstrap model -1 (all members).
    """
    import ROOT

    from rooml.data.io import to_roodataset
    from rooml.roofit import flow_pdf, hisigma_model, interpolated_density

    h = hisigma_model(
        paths["signal"]["nominal"],
        paths["background"]["nominal"],
        s_expected=s_expected,
        n_bkg_start=float(len(mock)),
        mass_range=bbyy.MASS_RANGE,
    )
    ws = ROOT.RooWorkspace("w", "rooml HI-SIGMA demo")
    ws.Import(h.model)
    nu = ROOT.RooRealVar(NP, "pt_bb scale systematic", 0.0, -5.0, 5.0)
    keep = [nu]
    edits = []
    for process in PROCESSES:
        nominal = ws.pdf(_feature_name(process, "nominal"))
        varied = {
            v: flow_pdf(_feature_name(process, v), paths[process][v], h.features, [h.mass])
            for v in ("low", "high")
        }
        syst = interpolated_density(
            f"{process}_features_syst",
            nominal,
            [varied["low"]],
            [varied["high"]],
            [nu],
            codes=code,
            floor="tiny",
        )
        keep += [*varied.values(), syst]
        ws.Import(syst, ROOT.RooFit.RecycleConflictNodes())
        edits.append(f"{_feature_name(process, 'nominal')}={process}_features_syst")
    ws.factory(f"EDIT::hisigma_syst(hisigma, {', '.join(edits)})")
    ws.factory(f"Gaussian::{NP}_constraint({NP}, 0, 1)")
    ws.factory(f"PROD::model(hisigma_syst, {NP}_constraint)")
    ws.Import(to_roodataset(mock, h.observables(), weight_name=None))
    demo = DemoWorkspace(ws, h, paths, normalization_samples, seed)
    demo._keep = keep
    demo.use_bootstrap(-1)
    return demo


def write_workspace(demo: DemoWorkspace, path: str | Path) -> Path:
    """Write the workspace to ``path`` atomically."""
    path = Path(path)
    with atomic_output(path, suffix=".tmp.root") as tmp:
        demo.ws.writeToFile(str(tmp), True)
    return path


def _sample_mixture(path, m: np.ndarray, seed: int, ensemble=None) -> np.ndarray:
    """``x'`` given ``m`` from the equal mixture of a file's bootstrap models.

    One member per bootstrap model: the compiled core's exact sampler.  Several
    seeds per bootstrap model (combined by a geometric mean, which has no
    sampler): the members' mixture, drawn by ``ensemble`` (a ``FlowEnsemble``).
    """
    import rooml

    model = rooml.load(path)
    if model.members_per_bootstrap != 1:
        if ensemble is None:
            raise ValueError(f"{path}: pass the FlowEnsemble to sample a geometric mean of several seeds")
        return ensemble.with_rule("mixture").sample(len(m), m, seed=seed)
    pick = np.random.default_rng(seed).integers(0, model.n_bootstraps, len(m))
    x = np.empty((len(m), model.n_features))
    for d in range(model.n_bootstraps):
        rows = np.flatnonzero(pick == d)
        x[rows] = model.sample(len(rows), np.ascontiguousarray(m[rows]), seed=seed + d, bootstrap=d)
    return x


def fitted_templates(paths: dict, fitted: dict, n: int, seed: int, ensembles: dict | None = None) -> dict:
    """Events of each process's fitted model, for plots: ``{process: (columns, weights)}``.

    ``m`` is drawn from the fitted mass shape (the background's with the fitted
    ``p1``, ``p2``), ``x'`` from the process's nominal flows (the mixture of its
    bootstrap models, with the compiled core's exact sampler), and each event is
    weighted by the systematic's per-event factor at the fitted ``nu`` (code 5,
    the same kernel the RooFit model calls).
    """
    import rooml
    from rooml.interpolation import interpolate

    rng = np.random.default_rng(seed)
    mass_model = bbyy.BbyyModel(p1=fitted["p1"], p2=fitted["p2"])
    out = {}
    for i, process in enumerate(PROCESSES):
        m = mass_model.sample(process, n, rng)[bbyy.MASS][:, None]
        x = _sample_mixture(paths[process]["nominal"], m, seed + 10 * i, (ensembles or {}).get(process))
        lp = {v: rooml.load(paths[process][v]).log_prob(x, m) for v in ("nominal", "low", "high")}
        weights = interpolate(
            np.ones(n),
            [np.exp(lp["low"] - lp["nominal"])],
            [np.exp(lp["high"] - lp["nominal"])],
            [fitted[NP]],
            5,
            floor="tiny",
        )
        columns = dict(zip(bbyy.FEATURES, x.T))
        columns[bbyy.MASS] = m[:, 0]
        out[process] = (columns, weights)
    return out
