"""Small analytic RooFit models for the inference tests, as picklable factories (Dask workers import this)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _root():
    from rooml.roofit import load_library

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.WARNING)
    return ROOT


@dataclass(frozen=True)
class LinearGaussian:
    """x ~ N(mu + a1 th1 + a2 th2, 1), y ~ N(b th1, 1), n events; th_k ~ Gaus(g_k | th_k, 1).

    The NLL is quadratic, so the best fit and covariance are the solution of a
    3 x 3 linear system (:meth:`truth`), and Hessian and refit impacts agree.
    """

    n: int = 300
    a1: float = 0.8
    a2: float = -0.3
    b: float = 0.5
    g1: float = 0.3
    g2: float = -0.2
    seed: int = 11

    def events(self):
        """Return the (x, y) samples at mu = 1, th = (0.2, -0.1)."""
        rng = np.random.default_rng(self.seed)
        x = rng.normal(1.0 + self.a1 * 0.2 + self.a2 * -0.1, 1.0, self.n)
        y = rng.normal(self.b * 0.2, 1.0, self.n)
        return x, y

    def truth(self):
        """Return the exact (mu, th1, th2) best fit and covariance."""
        x, y = self.events()
        v = np.array([1.0, self.a1, self.a2])
        e1 = np.array([0.0, 1.0, 0.0])
        h = self.n * np.outer(v, v) + self.n * self.b**2 * np.outer(e1, e1) + np.diag([0.0, 1.0, 1.0])
        rhs = x.sum() * v + self.b * y.sum() * e1 + np.array([0.0, self.g1, self.g2])
        cov = np.linalg.inv(h)
        return cov @ rhs, cov

    def __call__(self):
        """Build the model: ``{"pdf", "data", "constraints", "poi", "nuisance", "keep"}``."""
        ROOT = _root()
        x, y = ROOT.RooRealVar("x", "x", -20, 20), ROOT.RooRealVar("y", "y", -20, 20)
        # wide ranges: Minuit2's Hesse errors of bounded parameters are approximate (0.7 % off at +-5 here)
        mu = ROOT.RooRealVar("mu", "mu", 0.5, -100, 100)
        th1, th2 = ROOT.RooRealVar("th1", "th1", 0, -100, 100), ROOT.RooRealVar("th2", "th2", 0, -100, 100)
        one = ROOT.RooConstVar("one", "one", 1.0)
        mx = ROOT.RooFormulaVar("mx", f"mu + {self.a1}*th1 + {self.a2}*th2", ROOT.RooArgList(mu, th1, th2))
        my = ROOT.RooFormulaVar("my", f"{self.b}*th1", ROOT.RooArgList(th1))
        gx, gy = ROOT.RooGaussian("gx", "gx", x, mx, one), ROOT.RooGaussian("gy", "gy", y, my, one)
        pdf = ROOT.RooProdPdf("pdf", "pdf", ROOT.RooArgList(gx, gy))
        globs = [ROOT.RooRealVar("g1", "g1", self.g1, -5, 5), ROOT.RooRealVar("g2", "g2", self.g2, -5, 5)]
        for g in globs:
            g.setConstant(True)
        cons = [ROOT.RooGaussian(f"c{k}", "c", g, th, one)
                for k, (g, th) in enumerate(zip(globs, (th1, th2)))]
        xs, ys = self.events()
        data = ROOT.RooDataSet.from_numpy({"x": xs, "y": ys}, ROOT.RooArgSet(x, y))
        keep = [x, y, th1, th2, one, mx, my, gx, gy, *globs]
        return {"pdf": pdf, "data": data, "constraints": cons, "poi": mu, "nuisance": [th1, th2],
                "global_observables": globs, "keep": keep}


@dataclass(frozen=True)
class ExponentialScale:
    """x ~ N(mu exp(c th), 1), n events, th ~ Gaus(0 | th, 1): mu_hat(th) = mean(x) exp(-c th) exactly."""

    n: int = 50  # few events and a small c keep corr(mu, th) ~ 0.9: Minuit's Hesse is then accurate
    c: float = 0.15
    seed: int = 12

    def events(self):
        """Return the x sample at mu = 2, th = 0."""
        return np.random.default_rng(self.seed).normal(2.0, 1.0, self.n)

    def __call__(self):
        """Build the model: ``{"pdf", "data", "constraints", "poi", "nuisance", "keep"}``."""
        ROOT = _root()
        x = ROOT.RooRealVar("x", "x", -150, 150)
        mu = ROOT.RooRealVar("mu", "mu", 1.0, -100, 100)
        th = ROOT.RooRealVar("th", "th", 0, -10, 10)
        one = ROOT.RooConstVar("one", "one", 1.0)
        mean = ROOT.RooFormulaVar("mean", f"mu*exp({self.c}*th)", ROOT.RooArgList(mu, th))
        pdf = ROOT.RooGaussian("pdf", "pdf", x, mean, one)
        g = ROOT.RooRealVar("g", "g", 0.0, -5, 5)
        g.setConstant(True)
        con = ROOT.RooGaussian("con", "con", g, th, one)
        data = ROOT.RooDataSet.from_numpy({"x": self.events()}, ROOT.RooArgSet(x))
        return {"pdf": pdf, "data": data, "constraints": [con], "poi": mu, "nuisance": [th],
                "global_observables": [g], "keep": [x, th, one, mean, g]}


@dataclass(frozen=True)
class ExtendedGaussianMean:
    """Extended x ~ N(mu, 1) with a fixed expected yield: mu_hat = mean(x), sigma = 1/sqrt(n) exactly.

    ``mu_min = 0`` gives the Feldman-Cousins Gaussian with a physical boundary (sigma = 1/sqrt(n)).
    """

    n_expected: float = 100.0
    mu_min: float = -10.0
    observed_mean: float = 0.3
    seed: int = 13

    def __call__(self):
        """Build the model: ``{"pdf", "poi", "observables", "data", "keep"}``."""
        ROOT = _root()
        x = ROOT.RooRealVar("x", "x", -15, 15)
        mu = ROOT.RooRealVar("mu", "mu", 0.0, self.mu_min, 10)
        one = ROOT.RooConstVar("one", "one", 1.0)
        gauss = ROOT.RooGaussian("gauss", "gauss", x, mu, one)
        n = ROOT.RooConstVar("n", "n", self.n_expected)
        pdf = ROOT.RooExtendPdf("pdf", "pdf", gauss, n)
        xs = np.random.default_rng(self.seed).normal(self.observed_mean, 1.0, int(self.n_expected))
        data = ROOT.RooDataSet.from_numpy({"x": xs}, ROOT.RooArgSet(x))
        return {"pdf": pdf, "poi": mu, "observables": [x], "data": data, "keep": [x, one, gauss, n]}


@dataclass(frozen=True)
class WeightedCount:
    """Extended uniform pdf with free yield nu on a weighted reference sample: nu_hat = sum of weights."""

    weights: tuple = (1.0,) * 200

    def __call__(self):
        """Build the model: ``{"pdf", "poi", "observables", "reference_weights", "dataset", "keep"}``."""
        ROOT = _root()
        x = ROOT.RooRealVar("x", "x", 0, 1)
        w = ROOT.RooRealVar("w", "w", -1e9, 1e9)
        xs = np.random.default_rng(3).uniform(0, 1, len(self.weights))

        def dataset(weights):
            return ROOT.RooDataSet.from_numpy({"x": xs, "w": np.asarray(weights)}, ROOT.RooArgSet(x, w),
                                              weight_name="w")

        nu = ROOT.RooRealVar("nu", "nu", sum(self.weights), 0, 10 * len(self.weights))
        uniform = ROOT.RooUniform("uniform", "uniform", ROOT.RooArgSet(x))
        pdf = ROOT.RooExtendPdf("pdf", "pdf", uniform, nu)
        return {"pdf": pdf, "poi": nu, "observables": [x], "reference_weights": np.array(self.weights),
                "dataset": dataset, "keep": [x, w, uniform]}


@dataclass(frozen=True)
class BumpOnExponential:
    """Signal N(0.5, 0.04) + background exp(-lambda x) on [0, 1], fitted to background-only data.

    The data are exp(-2x) events, plus a fraction ``mismodelling`` of a broad N(0.5, 0.12) component the
    exponential background model cannot describe (then the fitted signal is biased upward).
    """

    n_events: int = 1000
    mismodelling: float = 0.0

    def events(self, seed: int) -> np.ndarray:
        """Return background-only events for ``seed`` (inverse-CDF exponential, rejection-free)."""
        rng = np.random.default_rng(seed)
        n_bump = rng.binomial(self.n_events, self.mismodelling)
        u = rng.uniform(size=self.n_events - n_bump)
        expo = -np.log1p(-u * (1 - np.exp(-2.0))) / 2.0
        bump = rng.normal(0.5, 0.12, 4 * n_bump + 10)
        return np.concatenate([expo, bump[(bump > 0) & (bump < 1)][:n_bump]])

    def model(self):
        """Build the signal + background model: ``{"pdf", "poi", "x", "keep"}``."""
        ROOT = _root()
        x = ROOT.RooRealVar("x", "x", 0, 1)
        mean, width = ROOT.RooConstVar("m", "m", 0.5), ROOT.RooConstVar("w", "w", 0.04)
        sig = ROOT.RooGaussian("sig", "sig", x, mean, width)
        slope = ROOT.RooRealVar("slope", "slope", -2.0, -10, 10)
        bkg = ROOT.RooExponential("bkg", "bkg", x, slope)
        s = ROOT.RooRealVar("s", "s", 0, -200, 200)
        b = ROOT.RooRealVar("b", "b", self.n_events, 0, 5 * self.n_events)
        pdf = ROOT.RooAddPdf("pdf", "pdf", ROOT.RooArgList(sig, bkg), ROOT.RooArgList(s, b))
        return {"pdf": pdf, "poi": s, "x": x, "keep": [x, mean, width, sig, slope, bkg, b]}

    def dataset(self, x, seed: int):
        """Return a RooDataSet of :meth:`events` over ``x``."""
        ROOT = _root()
        return ROOT.RooDataSet.from_numpy({"x": self.events(seed)}, ROOT.RooArgSet(x))

    def __call__(self, seed: int):
        """Build the model with a fresh background-only dataset."""
        spec = self.model()
        spec["data"] = self.dataset(spec["x"], seed)
        return spec
