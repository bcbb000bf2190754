"""A negative log-likelihood profiled over the nuisance parameters at fixed POI values (shared helper)."""
from __future__ import annotations

import numpy as np

from rooml.infer.fit import create_nll, minimize

__all__ = ["ProfiledNLL", "named", "set_values"]


def named(params) -> list[str]:
    """Names of RooRealVars given as objects or names."""
    return [p if isinstance(p, str) else p.GetName() for p in params]


class set_values:  # noqa: N801 (a context manager used like a function)
    """Context manager: give RooRealVars new values and put the old ones back on exit."""

    def __init__(self, values: dict):
        self.values = values  # {RooRealVar: value}

    def __enter__(self):
        self.old = {v: v.getVal() for v in self.values}
        for v, value in self.values.items():
            v.setVal(float(value))
        return self

    def __exit__(self, *exc):
        for v, value in self.old.items():
            v.setVal(value)


class ProfiledNLL:
    """``NLL(mu) = min_theta NLL(mu, theta)`` of ``model`` on ``data`` with the POI held at ``mu``.

    Every conditional fit starts from the global best fit (or, before it, from
    the parameters as they were at construction).  :meth:`restore` puts the
    floating parameters and the POI (values and constant flags) back as they
    were; constant parameters such as global observables are never touched, so
    they may be changed between calls (e.g. to their Asimov values).

    Parameters
    ----------
    model, data
        A RooAbsPdf and a RooAbsData.
    poi
        The parameter of interest (RooRealVar).
    constraints, extended
        As in :func:`rooml.infer.fit`.
    """

    def __init__(self, model, data, poi, *, constraints=None, extended: bool | None = None):
        self.nll = create_nll(model, data, constraints=constraints, extended=extended, offset=False)
        import ROOT

        # the floating parameters and the POI; constants (global observables) are left alone
        self.params = ROOT.RooArgSet()
        for v in self.nll.getVariables():
            if not v.isConstant() or v.GetName() == poi.GetName():
                self.params.add(v)
        self.poi = poi
        self._initial = self.params.snapshot()
        self._poi_constant = poi.isConstant()
        self._start = self._initial
        self.mu_hat = self.sigma_hat = self.nll_hat = None
        self.status = -1

    def _floating(self) -> int:
        return sum(1 for p in self.params if not p.isConstant())

    def _minimize(self, hesse: bool = False):
        if self._floating() == 0:
            return None
        return minimize(self.nll, hesse=hesse)

    def global_fit(self) -> tuple[float, float, float]:
        """Free fit of all parameters: ``(mu_hat, Hesse error of mu, NLL_min)``; later fits start here."""
        self.params.assign(self._initial)
        self.poi.setConstant(False)
        result = self._minimize(hesse=True)
        self.status = int(result.status()) if result is not None else 0
        self.mu_hat, self.sigma_hat, self.nll_hat = self.poi.getVal(), self.poi.getError(), self.nll.getVal()
        self._start = self.params.snapshot()
        return self.mu_hat, self.sigma_hat, self.nll_hat

    def at(self, mu: float) -> float:
        """Minimum of the NLL over the nuisance parameters with the POI fixed at ``mu``."""
        self.params.assign(self._start)
        self.poi.setVal(float(mu))
        self.poi.setConstant(True)
        self._minimize()
        value = self.nll.getVal()
        return float(value) if np.isfinite(value) else np.inf

    def values(self, names) -> dict[str, float]:
        """Return the current values of the named parameters."""
        return {n: self.params.find(n).getVal() for n in names}

    def restore(self) -> None:
        """Put all parameters back as they were at construction."""
        self.params.assign(self._initial)
        self.poi.setConstant(self._poi_constant)
