"""The first end-to-end slice: flows -> ONNX -> C++ core -> RooFit extended fit.

Two flows are trained on the analytically known 2-D densities of
:mod:`rooml.demo.toy2d`, exported, wrapped as ``RooFlowPdf`` and fitted as
``n_s * flow_s + n_b * flow_b`` to a dataset drawn from the true densities.
The same fit with the exact densities in RooFit is the reference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rooml._files import atomic_output
from rooml.demo import toy2d

__all__ = [
    "FitResult", "fit_yields", "make_dataset", "train_and_export", "build_flow_model", "write_workspace",
]


@dataclass
class FitResult:
    """Yields fitted by an extended maximum-likelihood fit."""

    n_s: float
    n_s_err: float
    n_b: float
    n_b_err: float
    nll: float
    status: int

    def as_dict(self) -> dict:
        """Plain-dict form (JSON-able)."""
        return asdict(self)


def train_and_export(outdir: Path, events: int, epochs: int, seed: int, progress: bool = True) -> dict:
    """Train a signal and a background flow on toy2d samples and export both; returns ``{process: path}``."""
    from rooml.export import export_flow
    from rooml.models import FlowConfig, train_flow

    rng = np.random.default_rng(seed)
    paths = {}
    for i, process in enumerate(("signal", "background")):
        x = toy2d.sample(process, events, rng)
        config = FlowConfig(features=2, kind="coupling", layers=4, bins=8, tail_bound=4.0, hidden=32,
                            blocks=2, lu_linear=True, seed=seed + i)
        trained = train_flow(config, x, features=list(toy2d.FEATURES), epochs=epochs, batch_size=512,
                             lr=3e-3, patience=8, progress=progress, seed=seed + i,
                             support=[(-np.inf, np.inf)] * 2)
        paths[process] = export_flow(trained, Path(outdir) / f"{process}.onnx", overwrite=True)
    return paths


def make_dataset(n_signal: int, n_background: int, seed: int) -> np.ndarray:
    """Return a toy dataset (shape (N, 2)) with Poisson-fluctuated signal and background counts."""
    rng = np.random.default_rng(seed)
    ns, nb = rng.poisson(n_signal), rng.poisson(n_background)
    xy = np.concatenate([toy2d.sample("signal", ns, rng), toy2d.sample("background", nb, rng)])
    return xy[rng.permutation(len(xy))]


def _variables(keep):
    import ROOT

    x = ROOT.RooRealVar("x", "x", 0.0, *toy2d.BOX)
    y = ROOT.RooRealVar("y", "y", 0.0, *toy2d.BOX)
    keep += [x, y]
    return x, y


def _roodata(x, y, xy: np.ndarray):
    import ROOT

    return ROOT.RooDataSet.from_numpy({"x": xy[:, 0].copy(), "y": xy[:, 1].copy()}, ROOT.RooArgSet(x, y),
                                      name="data")


def _extended_sum(signal, background, n_total: int, keep):
    import ROOT

    ns = ROOT.RooRealVar("n_s", "signal yield", 0.1 * n_total, -0.5 * n_total, 2.0 * n_total)
    nb = ROOT.RooRealVar("n_b", "background yield", 0.9 * n_total, 0.0, 2.0 * n_total)
    model = ROOT.RooAddPdf("model", "n_s * signal + n_b * background", ROOT.RooArgList(signal, background),
                           ROOT.RooArgList(ns, nb))
    keep += [ns, nb, model]
    return model


def fit_yields(model, data) -> FitResult:
    """Run an extended unbinned ML fit of ``model`` to ``data`` with Minuit2 + Hesse."""
    import ROOT

    result = model.fitTo(data, ROOT.RooFit.Extended(True), ROOT.RooFit.Save(True),
                         ROOT.RooFit.PrintLevel(-1), ROOT.RooFit.Minimizer("Minuit2"),
                         ROOT.RooFit.EvalBackend("cpu"))
    ns = result.floatParsFinal().find("n_s")
    nb = result.floatParsFinal().find("n_b")
    return FitResult(ns.getVal(), ns.getError(), nb.getVal(), nb.getError(), result.minNll(), result.status())


def build_flow_model(paths: dict, xy: np.ndarray):
    """RooFit model ``n_s * RooFlowPdf(signal) + n_b * RooFlowPdf(background)`` and the dataset."""
    from rooml.roofit import flow_pdf

    keep: list = []
    x, y = _variables(keep)
    sig = flow_pdf("flow_signal", paths["signal"], [x, y])
    bkg = flow_pdf("flow_background", paths["background"], [x, y])
    keep += [sig, bkg]
    model = _extended_sum(sig, bkg, len(xy), keep)
    data = _roodata(x, y, xy)
    model._rooml_keep = keep
    return model, data


def build_truth_model(xy: np.ndarray, signal_scale: float = 1.0):
    """Build the same extended model with the exact toy2d densities as RooFit pdfs.

    ``signal_scale`` != 1 widens (or narrows) the signal density: a wrong model, for power checks.
    """
    keep: list = []
    x, y = _variables(keep)
    sig = toy2d.roofit_truth(x, y, "signal", keep, width_scale=signal_scale)
    bkg = toy2d.roofit_truth(x, y, "background", keep)
    model = _extended_sum(sig, bkg, len(xy), keep)
    data = _roodata(x, y, xy)
    model._rooml_keep = keep
    return model, data


def write_workspace(model, data, path: Path, name: str = "w") -> Path:
    """Write ``model`` and ``data`` into a RooWorkspace file (refusing to overwrite other files' content)."""
    import ROOT

    ws = ROOT.RooWorkspace(name, "rooml demo workspace")
    ws.Import(model)
    ws.Import(data)
    path = Path(path)
    with atomic_output(path, suffix=".tmp.root") as tmp:
        ws.writeToFile(str(tmp), True)
    return path
