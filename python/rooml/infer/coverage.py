"""Frequentist checks of fits to pseudo-experiments: profile-likelihood coverage and pulls of each parameter.

For one dataset, :func:`profile_at_truth` fits all parameters (Migrad, Hesse, Minos), then refits with each
parameter in turn held at its true value, giving ``t_i = 2 (NLL(theta_i = truth, rest profiled) - NLL_min)``.
The profile interval of confidence level ``CL`` covers the truth when ``t_i < chi2_1 quantile(CL)`` (1 for
68.27 %, 3.84 for 95 %).  Over many toys, :func:`summarize` gives the coverage of both intervals and the pulls
``(theta_hat - truth) / error`` with Hesse's error and with Minos' error on the side of the truth; Minos is
the one to judge pulls by where the likelihood is not parabolic (a POI entering as ``sqrt(mu)``, a parameter
near a limit), Hesse where it is.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rooml.infer.fit import FitResult, create_nll, minimize

__all__ = ["CoverageRow", "ParameterCheck", "profile_at_truth", "summarize", "print_summary"]

LEVELS = {"68.27%": 1.0, "95%": 3.841458820694124}


@dataclass
class ParameterCheck:
    """One parameter on one dataset: the fit, its errors and the profile statistic at the truth."""

    value: float
    hesse: float
    minos_low: float  # negative, as RooFit reports it
    minos_high: float
    t_truth: float

    def minos_towards(self, truth: float) -> float:
        """Minos error on the side of the truth."""
        return self.minos_high if self.value < truth else -self.minos_low


def profile_at_truth(model, data, truth: Mapping, *, constraints=None, extended: bool | None = None,
                     minos: bool = True) -> tuple[dict[str, ParameterCheck], FitResult]:
    """Fit ``model`` to ``data`` and profile each parameter of ``truth`` at its true value.

    Parameters
    ----------
    model, data
        A RooAbsPdf and a RooAbsData.
    truth
        ``{RooRealVar: true value}`` of the parameters to check (POIs and nuisance parameters); every other
        floating parameter is profiled.
    constraints, extended
        As in :func:`rooml.infer.fit`.
    minos
        Run Minos for the parameters of ``truth`` (otherwise the Minos errors are Hesse's).

    Returns
    -------
    (dict, FitResult)
        ``{name: ParameterCheck}`` and the global fit.
    """
    nll = create_nll(model, data, constraints=constraints, extended=extended, offset=False)
    params = list(truth)
    result = FitResult.from_roofit(minimize(nll, hesse=True, minos=params if minos else None))
    nll_min = nll.getVal()
    best = nll.getVariables().snapshot()
    checks = {}
    for p in params:
        nll.getVariables().assign(best)
        p.setVal(float(truth[p]))
        p.setConstant(True)
        minimize(nll, hesse=False)
        t = 2.0 * (nll.getVal() - nll_min)
        p.setConstant(False)
        fitted = result.parameters[p.GetName()]
        low, high = fitted.minos if fitted.minos else (-fitted.error, fitted.error)
        checks[p.GetName()] = ParameterCheck(fitted.value, fitted.error, low, high,
                                             max(t, 0.0) if math.isfinite(t) else math.inf)
    nll.getVariables().assign(best)
    return checks, result


@dataclass
class CoverageRow:
    """Coverage and pulls of one parameter over the toys, with the criteria's verdicts."""

    name: str
    truth: float
    n: int
    coverage: dict[str, float]
    pull_mean: float
    pull_width: float
    hesse_pull_mean: float
    hesse_pull_width: float

    def coverage_error(self, level: str) -> float:
        """Binomial error of a coverage fraction."""
        p = self.coverage[level]
        return math.sqrt(max(p * (1 - p), 1e-12) / self.n)

    def verdicts(self, coverage_tolerance: float = 0.02, width_tolerance: float = 0.1) -> dict[str, bool]:
        """PASS (True) / FAIL per criterion.

        Coverage within ``coverage_tolerance`` of nominal, Minos-pull mean within 3/sqrt(n) of 0, width within
        ``width_tolerance`` of 1.
        """
        out = {f"coverage {lvl}": abs(self.coverage[lvl] - _nominal(lvl)) <= coverage_tolerance
               for lvl in LEVELS}
        out["pull mean"] = abs(self.pull_mean) <= 3.0 / math.sqrt(self.n)
        out["pull width"] = abs(self.pull_width - 1.0) <= width_tolerance
        return out


def _nominal(level: str) -> float:
    return float(level.rstrip("%")) / 100.0


def summarize(toys: Sequence[Mapping[str, ParameterCheck]], truth: Mapping[str, float]) -> list[CoverageRow]:
    """Coverage of the 68.27 % and 95 % profile intervals and the pulls of each parameter over ``toys``.

    Parameters
    ----------
    toys
        One ``{name: ParameterCheck}`` per successful toy (from :func:`profile_at_truth`).
    truth
        ``{name: true value}``.
    """
    rows = []
    for name, true in truth.items():
        checks = [toy[name] for toy in toys]
        t = np.array([c.t_truth for c in checks])
        minos = np.array([(c.value - true) / c.minos_towards(true) for c in checks])
        hesse = np.array([(c.value - true) / c.hesse for c in checks])
        rows.append(CoverageRow(name, float(true), len(checks),
                                {lvl: float(np.mean(t < q)) for lvl, q in LEVELS.items()},
                                float(minos.mean()), float(minos.std(ddof=1)),
                                float(hesse.mean()), float(hesse.std(ddof=1))))
    return rows


def print_summary(rows: Sequence[CoverageRow], title: str) -> bool:
    """Print one table line per parameter with PASS/FAIL; return whether every criterion passed."""
    print(title)
    print(f"  {'parameter':<10} {'truth':>7} {'cov 68.27%':>15} {'cov 95%':>15} {'pull mean (M)':>16} "
          f"{'width (M)':>10} {'Hesse mean/width':>17}  verdict")
    passed = True
    for r in rows:
        v = r.verdicts()
        ok = all(v.values())
        passed &= ok
        failed = ", ".join(k for k, good in v.items() if not good)
        cov = [f"{100 * r.coverage[lvl]:5.1f} +- {100 * r.coverage_error(lvl):.1f}" for lvl in LEVELS]
        print(f"  {r.name:<10} {r.truth:7.3f} {cov[0]:>15} {cov[1]:>15} "
              f"{r.pull_mean:+7.3f} +- {r.pull_width / math.sqrt(r.n):.3f} {r.pull_width:10.3f} "
              f"{r.hesse_pull_mean:+8.3f}/{r.hesse_pull_width:.3f}  {'PASS' if ok else 'FAIL: ' + failed}")
    return passed
