"""Maximum-likelihood fits with RooFit + Minuit2, returned as a result object that prints and saves."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FitResult", "FittedParameter", "create_nll", "fit", "minimize"]


@dataclass
class FittedParameter:
    """One floating parameter after the fit."""

    name: str
    value: float
    error: float
    minos: tuple[float, float] | None = None  # (negative, positive) errors when Minos ran


@dataclass
class FitResult:
    """Values, errors, correlations, minimum NLL and status of a fit."""

    parameters: dict[str, FittedParameter]
    correlation: np.ndarray
    nll: float
    status: int
    edm: float
    covariance_quality: int
    constants: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> FittedParameter:
        return self.parameters[name]

    def __str__(self) -> str:
        lines = [f"status {self.status}  NLL {self.nll:.6f}  EDM {self.edm:.2e}  cov. quality {self.covariance_quality}"]
        width = max([len(n) for n in self.parameters] + [9])
        for p in self.parameters.values():
            minos = f"  (-{abs(p.minos[0]):.4g} / +{p.minos[1]:.4g})" if p.minos else ""
            lines.append(f"  {p.name:<{width}s} = {p.value:12.6g} +- {p.error:.4g}{minos}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-able dict (the correlation matrix as nested lists, keyed by parameter order)."""
        return {
            "parameters": {n: asdict(p) for n, p in self.parameters.items()},
            "correlation": self.correlation.tolist(),
            "order": list(self.parameters),
            "nll": self.nll,
            "status": self.status,
            "edm": self.edm,
            "covariance_quality": self.covariance_quality,
            "constants": self.constants,
        }

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`as_dict` to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.as_dict(), indent=2))
        return path

    @classmethod
    def from_roofit(cls, result) -> "FitResult":
        """Convert a ``RooFitResult``."""
        floats = result.floatParsFinal()
        params = {}
        for i in range(floats.size()):
            v = floats.at(i)
            minos = (v.getErrorLo(), v.getErrorHi()) if v.hasAsymError() else None
            params[v.GetName()] = FittedParameter(v.GetName(), v.getVal(), v.getError(), minos)
        n = len(params)
        corr = np.eye(n)
        names = list(params)
        for i in range(n):
            for j in range(n):
                corr[i, j] = result.correlation(names[i], names[j])
        constants = {c.GetName(): c.getVal() for c in result.constPars()}
        return cls(params, corr, result.minNll(), result.status(), result.edm(), result.covQual(), constants)


def create_nll(model, data, *, constraints=None, extended: bool | None = None, offset: bool = True,
               native: bool = True):
    """Build the model's negative log-likelihood on ``data``.

    NSBI models (a ``RooNSBIPdf``, alone or times Gaussian constraints) get rooml's ``RooNSBINLL``, whose
    analytic gradient and Hessian Minuit uses; a ``RooSimultaneous`` with NSBI channels (``rooml combine``)
    gets a ``RooCombinedNLL``: the NSBI channels' ``RooNSBINLL`` plus RooFit's NLL of the other channels,
    differentiated numerically.  ``native=False`` forces RooFit's NLL; every other model gets RooFit's
    vectorized CPU backend.
    """
    import ROOT

    if native and extended in (None, True):
        from rooml.roofit.combined import combined_nll
        from rooml.roofit.nsbi import nsbi_nll

        nll = nsbi_nll(model, data, constraints=constraints, offset=offset)
        if nll is None:
            nll = combined_nll(model, data, constraints=constraints, offset=offset)
        if nll is not None:
            return nll
    args = [ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.Offset("initial" if offset else "off")]
    if extended is not None:
        args.append(ROOT.RooFit.Extended(extended))
    if constraints:
        args.append(ROOT.RooFit.ExternalConstraints(ROOT.RooArgSet(*constraints)))
    return model.createNLL(data, *args)


def minimize(nll, *, strategy: int = 1, hesse: bool = True, minos: list | None = None, print_level: int = -1,
             tolerance: float = 0.01):
    """Minimize ``nll`` with Minuit2 (migrad, then hesse / minos); returns the ``RooFitResult``.

    An NLL with an analytic gradient and Hessian (``RooNSBINLL``, ``RooCombinedNLL``) has Minuit use both,
    and Hesse's covariance is replaced by the inverse of the analytic Hessian at the minimum (Minuit's Hesse
    works in its internal, bounded coordinates with finite steps and is off by up to a few per cent for
    parameters with limits).  ``tolerance`` is Minuit's (the EDM goal is 0.002 ``tolerance`` x 0.5).
    """
    import ROOT

    analytic = bool(nll.hasHessian())
    config = ROOT.RooMinimizer.Config()
    config.useHessian = analytic
    minimizer = ROOT.RooMinimizer(nll, config)
    minimizer.setMinimizerType("Minuit2")
    minimizer.setStrategy(strategy)
    minimizer.setPrintLevel(print_level)
    minimizer.setEps(tolerance)
    status = minimizer.migrad()
    if status != 0:  # one retry with the more careful strategy, as combine does
        minimizer.setStrategy(2)
        status = minimizer.migrad()
    if hesse:
        minimizer.hesse()
    if minos:
        minimizer.minos(ROOT.RooArgSet(*minos))
    result = minimizer.save()
    if hesse and analytic:
        ROOT.RooML.useInverseHessian(nll, result)
    return result


def fit(model, data, *, constraints=None, extended: bool | None = None, minos: list | None = None,
        strategy: int = 1, hesse: bool = True) -> FitResult:
    """Maximum-likelihood fit of ``model`` to ``data`` (Minuit2; Hesse; Minos for the given parameters).

    Parameters
    ----------
    model, data
        A RooAbsPdf and a RooAbsData.
    constraints
        Constraint pdfs (e.g. unit Gaussians of nuisance parameters) multiplied into the likelihood.
    extended
        Force an extended (True) or non-extended (False) likelihood; default: RooFit's choice.
    minos
        Parameters (RooRealVar) to get Minos errors for.

    Raises
    ------
    ValueError
        The model (with its constraints) has no free parameter: there is nothing to fit.
    """
    _require_free_parameters(model, data, constraints)
    nll = create_nll(model, data, constraints=constraints, extended=extended)
    result = minimize(nll, strategy=strategy, hesse=hesse, minos=minos)
    out = FitResult.from_roofit(result)
    out.nll = _absolute_nll(model, data, constraints, extended)
    return out


def _require_free_parameters(model, data, constraints) -> None:
    """Raise a clear ValueError when nothing floats (Minuit would fail with a null-pointer error)."""
    pdfs = [model, *(constraints or [])]
    free = [p.GetName() for pdf in pdfs for p in pdf.getParameters(data)
            if p.InheritsFrom("RooRealVar") and not p.isConstant()]  # fmt: skip
    if not free:
        raise ValueError(f"'{model.GetName()}' has no free parameters, so there is nothing to fit; "
                         "give it one "
                         "(e.g. a yield through RooExtendPdf or RooAddPdf), or evaluate "
                         "rooml.infer.create_nll(model, data).getVal() for its NLL")


def _absolute_nll(model, data, constraints, extended) -> float:
    """Return the NLL at the current parameters without RooFit's offset (comparable across fits)."""
    return create_nll(model, data, constraints=constraints, extended=extended, offset=False).getVal()
