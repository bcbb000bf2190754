"""Asymptotic CLs upper limits with the q~_mu test statistic (Cowan et al., arXiv:1007.1727).

For a signal strength mu >= 0 the test statistic is

    q~_mu = 0                                        if mu_hat > mu
          = 2 [NLL(mu, theta_hat_mu) - NLL(mu_hat, theta_hat)]   if 0 <= mu_hat <= mu
          = 2 [NLL(mu, theta_hat_mu) - NLL(0, theta_hat_0)]      if mu_hat < 0

and q_mu,A, the same quantity on the Asimov dataset of the background-only
hypothesis, sets the width sigma of mu_hat through q_mu,A = mu^2 / sigma^2.
With these two numbers (eqs. 65-66 of the paper)

    CLs+b = 1 - Phi(sqrt(q~))                        CLb = Phi(sqrt(q_A) - sqrt(q~))      (q~ <= q_A)
    CLs+b = 1 - Phi((q~ + q_A) / (2 sqrt(q_A)))      CLb = 1 - Phi((q~ - q_A) / (2 sqrt(q_A)))   (q~ > q_A)

and CLs = CLs+b / CLb.  The expected limit for mu_hat at N standard deviations
of the background-only distribution solves sqrt(q_mu,A) = N + Phi^-1(1 - alpha Phi(N)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from rooml.infer._profile import ProfiledNLL

__all__ = ["UpperLimit", "asimov_dataset", "asymptotic_cls", "asymptotic_upper_limit", "expected_sqrt_q"]


@dataclass
class UpperLimit:
    """An asymptotic CLs upper limit on a POI with its expected band."""

    poi: str
    cl: float
    observed: float
    expected: dict[int, float]  # {-2, -1, 0, 1, 2}: limit for mu_hat at N sigma of the background-only model
    mu_hat: float
    sigma_hat: float
    cls_scan: dict[float, float] = field(default_factory=dict)  # CLs at each mu evaluated

    def __str__(self) -> str:
        band = "  ".join(f"{n:+d}s: {v:.4g}" for n, v in sorted(self.expected.items()))
        return (f"{100 * self.cl:.0f}% CL upper limit on {self.poi}: observed {self.observed:.4g}, "
                f"expected {self.expected[0]:.4g} ({band})")


def asymptotic_cls(q_tilde, q_asimov):
    """CLs, CLs+b and CLb from q~_mu and q_mu,A (asymptotic formulae of arXiv:1007.1727).

    Parameters
    ----------
    q_tilde, q_asimov : float or array
        Observed q~_mu and its Asimov value q_mu,A = mu^2/sigma^2 (both >= 0).

    Returns
    -------
    tuple
        ``(cls, clsb, clb)``.

    Examples
    --------
    >>> cls, clsb, clb = asymptotic_cls(0.0, 4.0)   # mu_hat = mu = 2 sigma
    >>> round(float(clsb), 4), round(float(clb), 4)
    (0.5, 0.9772)
    """
    q = np.maximum(np.asarray(q_tilde, dtype=float), 0.0)
    qa = np.maximum(np.asarray(q_asimov, dtype=float), 1e-300)
    below = q <= qa
    sq, sqa = np.sqrt(q), np.sqrt(qa)
    clsb = np.where(below, norm.sf(sq), norm.sf((q + qa) / (2 * sqa)))
    clb = np.where(below, norm.cdf(sqa - sq), norm.sf((q - qa) / (2 * sqa)))
    return clsb / clb, clsb, clb


def expected_sqrt_q(n_sigma: float, cl: float = 0.95) -> float:
    """Return sqrt(q_mu,A) = mu_up/sigma of the expected limit at ``n_sigma``: N + Phi^-1(1 - alpha Phi(N)).

    Examples
    --------
    >>> round(expected_sqrt_q(0), 4)
    1.96
    """
    return float(n_sigma + norm.isf((1 - cl) * norm.cdf(n_sigma)))


def _expected_global_value(constraint, glob):
    """Value of global observable ``glob`` that maximizes ``constraint`` at the current parameters."""
    import ROOT

    if isinstance(constraint, ROOT.RooGaussian):
        x, mean = constraint.getX(), constraint.getMean()
        return (mean if x.GetName() == glob.GetName() else x).getVal()
    if isinstance(constraint, ROOT.RooPoisson):
        return constraint.getMean().getVal()
    raise TypeError(f"asimov_dataset: global observable '{glob.GetName()}' belongs to constraint "
                    f"'{constraint.GetName()}' of class {constraint.ClassName()}; only RooGaussian and "
                    "RooPoisson constraints are supported (or pass asimov data yourself)")


def asimov_globals(constraints, global_observables) -> dict:
    """``{global observable: Asimov value}`` at the current parameters (the constraints' maxima)."""
    out = {}
    for g in global_observables or []:
        owners = [c for c in constraints or [] if c.dependsOn(g)]
        if not owners:
            raise ValueError(f"global observable '{g.GetName()}' appears in none of the constraints")
        out[g] = _expected_global_value(owners[0], g)
    return out


def asimov_dataset(model, data, poi, mu: float = 0.0, *, constraints=None, global_observables=None,
                   extended: bool | None = None, bins: int = 200):
    """Asimov dataset of ``model`` at ``poi = mu``, nuisance parameters at their conditional fit to ``data``.

    The model's observables (those of ``data``) are binned (``bins`` per
    observable, at most two observables) and each bin holds the expected
    number of events at its centre (``RooAbsPdf.generateBinned`` with
    ``ExpectedData``): the total is the expected yield for an extended model,
    ``data.sumEntries()`` otherwise.

    Parameters
    ----------
    model, data, poi
        RooAbsPdf, RooAbsData, RooRealVar.
    mu
        POI value of the Asimov dataset.
    constraints, global_observables
        Constraint pdfs and their global observables.  The Asimov global
        observables are the values that maximize each constraint at the
        conditional nuisance parameters (RooGaussian: the mean; RooPoisson: the mean).
    extended
        As in :func:`rooml.infer.fit`.
    bins
        Bins per observable.

    Returns
    -------
    tuple
        ``(RooDataHist, {global observable: value})``; all parameters are restored on return.
    """
    import ROOT

    observables = model.getObservables(data)
    if len(observables) > 2 or any(not isinstance(o, ROOT.RooRealVar) for o in observables):
        raise ValueError(f"asimov_dataset: cannot bin observables {[o.GetName() for o in observables]} "
                         "(at most two real observables); build the Asimov data yourself and pass it as "
                         "asimov=")
    profile = ProfiledNLL(model, data, poi, constraints=constraints, extended=extended)
    old_bins = {o: o.getBins() for o in observables}
    try:
        profile.at(mu)
        globs = asimov_globals(constraints, global_observables)
        for o in observables:
            o.setBins(int(bins))
        ext = model.canBeExtended() if extended is None else extended
        n = model.expectedEvents(observables) if ext else data.sumEntries()
        asimov = model.generateBinned(observables, ROOT.RooFit.ExpectedData(), ROOT.RooFit.NumEvents(n))
        return asimov, globs
    finally:
        for o, b in old_bins.items():
            o.setBins(b)
        profile.restore()


class _TestStatistics:
    """q~_mu on the data and q_mu,A on the Asimov data, memoized per mu."""

    def __init__(self, model, data, asimov, globs, poi, constraints, extended):
        from rooml.infer._profile import set_values

        self.observed = ProfiledNLL(model, data, poi, constraints=constraints, extended=extended)
        self.mu_hat, self.sigma_hat, self.nll_hat = self.observed.global_fit()
        self.nll_zero = self.observed.at(0.0) if self.mu_hat < 0 else self.nll_hat
        self._globs, self._set_values = globs, set_values
        self.asimov = ProfiledNLL(model, asimov, poi, constraints=constraints, extended=extended)
        with set_values(globs):
            self.asimov_zero = self.asimov.at(0.0)
        self._q, self._qa = {}, {}

    def q_tilde(self, mu: float) -> float:
        if mu not in self._q:
            self._q[mu] = 0.0 if self.mu_hat > mu else max(2 * (self.observed.at(mu) - self.nll_zero), 0.0)
        return self._q[mu]

    def q_asimov(self, mu: float) -> float:
        if mu not in self._qa:
            with self._set_values(self._globs):
                self._qa[mu] = max(2 * (self.asimov.at(mu) - self.asimov_zero), 0.0)
        return self._qa[mu]

    def cls(self, mu: float) -> float:
        return float(asymptotic_cls(self.q_tilde(mu), self.q_asimov(mu))[0])

    def restore(self):
        self.asimov.restore()  # reverse order: the observed one holds the parameters as they were on entry
        self.observed.restore()


def _root(f, low: float, step: float, high_limit: float, what: str) -> float:
    """Root of a decreasing ``f`` above ``low``, bracketing by doubling ``step``."""
    high = low + step
    while f(high) > 0:
        if high >= high_limit:
            raise RuntimeError(f"{what}: no crossing below the POI's upper bound {high_limit}; "
                               "widen its range")
        step *= 2
        low, high = high, min(high + step, high_limit)
    return float(brentq(f, low, high, xtol=1e-7 * step, rtol=1e-10))


def asymptotic_upper_limit(model, data, poi, *, cl: float = 0.95, constraints=None, global_observables=None,
                           extended: bool | None = None, asimov=None, bins: int = 200) -> UpperLimit:
    """Asymptotic CLs upper limit on ``poi`` at level ``cl``, observed and expected (+-1, +-2 sigma).

    The observed limit solves CLs(mu) = 1 - cl with q~_mu from the data and
    q_mu,A from the background-only Asimov dataset; the expected limits solve
    sqrt(q_mu,A) = N + Phi^-1(1 - alpha Phi(N)) for N = -2..2.  The POI's
    range must reach below 0 for q~ to see negative mu_hat as the formulae
    assume, and high enough to contain the limit.

    Parameters
    ----------
    model, data, poi
        RooAbsPdf, RooAbsData and the POI (RooRealVar); all other floating parameters are profiled.
    cl
        Confidence level of the limit (0.95: CLs = 0.05).
    constraints, global_observables
        Constraint pdfs (external constraints) and their global observables (constant RooRealVars), which
        take their Asimov values in the Asimov fits.
    extended
        As in :func:`rooml.infer.fit`.
    asimov
        Optional ``(RooAbsData, {global observable: value})`` Asimov data at mu = 0 (default:
        :func:`asimov_dataset`), e.g. a reweighted reference sample for an NSBI model.
    bins
        Bins per observable of the default Asimov dataset.

    Returns
    -------
    UpperLimit
        Parameters are restored on return.
    """
    if not 0 < cl < 1:
        raise ValueError(f"cl must be in (0, 1), got {cl}")
    if asimov is None:
        asimov = asimov_dataset(model, data, poi, 0.0, constraints=constraints,
                                global_observables=global_observables, extended=extended, bins=bins)
    asimov_data, globs = asimov
    stats = _TestStatistics(model, data, asimov_data, globs, poi, constraints, extended)
    try:
        sigma = stats.sigma_hat if stats.sigma_hat > 0 else 1.0
        alpha, top = 1 - cl, poi.getMax()
        expected = {n: _root(lambda mu, n=n: expected_sqrt_q(n, cl) - np.sqrt(stats.q_asimov(mu)),
                             1e-6 * sigma, sigma, top, f"expected limit ({n:+d} sigma)")
                    for n in (-2, -1, 0, 1, 2)}
        start = max(stats.mu_hat, 0.0) + 1e-6 * sigma
        observed = _root(lambda mu: stats.cls(mu) - alpha, start, sigma, top, "observed limit")
        scan = {mu: stats.cls(mu) for mu in stats._q if mu in stats._qa}
        return UpperLimit(poi.GetName(), cl, observed, expected, stats.mu_hat, stats.sigma_hat, scan)
    finally:
        stats.restore()
