"""Asymptotic CLs limits against the closed form of a Gaussian measurement.

x_i ~ N(mu + delta, 1), i = 1..n, with delta constrained by Gaus(g | delta, tau):
profiling delta gives mu_hat = mean(x) - g with a Gaussian width
sigma = sqrt(1/n + tau^2), so (arXiv:1007.1727) the observed 95% CLs limit is
mu_hat + sigma Phi^-1(1 - 0.05 Phi(mu_hat/sigma)) and the expected one at N
sigma is sigma (N + Phi^-1(1 - 0.05 Phi(N))).  The Asimov dataset is right only
if the global observable g moves to the conditional delta_hat(mu=0).
"""
from __future__ import annotations

import numpy as np
import pytest
from rooml.infer import asimov_dataset, asymptotic_cls, asymptotic_upper_limit, expected_sqrt_q
from scipy.stats import norm


@pytest.fixture()
def gaussian_measurement(roofit):
    """Build the constrained Gaussian measurement and its closed-form mu_hat and sigma."""
    ROOT = roofit

    def build(true_mean, n=200, tau=0.1, g_obs=0.05, seed=5):
        xs = np.random.default_rng(seed).normal(true_mean, 1.0, size=n)
        x = ROOT.RooRealVar("x", "x", -12, 12)
        mu = ROOT.RooRealVar("mu", "mu", 0.5, -5, 5)
        delta = ROOT.RooRealVar("delta", "delta", 0.0, -3, 3)
        g = ROOT.RooRealVar("g", "g", g_obs, -3, 3)
        g.setConstant(True)
        one, width = ROOT.RooConstVar("one", "one", 1.0), ROOT.RooConstVar("tau", "tau", tau)
        mean = ROOT.RooAddition("mean", "mu + delta", ROOT.RooArgList(mu, delta))
        pdf = ROOT.RooGaussian("pdf", "pdf", x, mean, one)
        constraint = ROOT.RooGaussian("constraint", "constraint", g, delta, width)
        data = ROOT.RooDataSet.from_numpy({"x": xs}, ROOT.RooArgSet(x))
        keep = (x, delta, one, width, mean)
        truth = dict(mu_hat=xs.mean() - g_obs, sigma=np.sqrt(1 / n + tau**2), n=n)
        return dict(pdf=pdf, data=data, mu=mu, g=g, delta=delta, constraint=constraint, keep=keep,
                    truth=truth)

    return build


def closed_form(mu_hat, sigma, cl=0.95):
    """Observed and expected CLs limits of a Gaussian measurement."""
    alpha = 1 - cl
    observed = mu_hat + sigma * norm.isf(alpha * norm.cdf(mu_hat / sigma))
    expected = {n: sigma * (n + norm.isf(alpha * norm.cdf(n))) for n in (-2, -1, 0, 1, 2)}
    return observed, expected


@pytest.mark.parametrize("true_mean", [0.2, -0.08])  # mu_hat > 0 and mu_hat < 0 (the q~ boundary branch)
def test_limit_matches_closed_form(gaussian_measurement, true_mean):
    """Observed and expected limits agree with the closed form to 1e-3."""
    m = gaussian_measurement(true_mean)
    limit = asymptotic_upper_limit(m["pdf"], m["data"], m["mu"], constraints=[m["constraint"]],
                                   global_observables=[m["g"]])
    truth = m["truth"]
    assert np.sign(limit.mu_hat) == np.sign(true_mean - 0.05)
    observed, expected = closed_form(truth["mu_hat"], truth["sigma"])
    assert limit.mu_hat == pytest.approx(truth["mu_hat"], abs=1e-4)
    assert limit.observed == pytest.approx(observed, rel=1e-3)
    for n in expected:
        assert limit.expected[n] == pytest.approx(expected[n], rel=1e-3), n
    assert expected[0] == pytest.approx(1.95996 * truth["sigma"], rel=1e-5)
    assert m["mu"].getVal() == 0.5 and not m["mu"].isConstant() and m["g"].getVal() == 0.05  # restored
    assert "upper limit on mu" in str(limit)


def test_asimov_dataset_moves_the_global_observable(gaussian_measurement):
    """The Asimov data and global observable sit at the conditional delta_hat(mu = 0)."""
    m = gaussian_measurement(0.2)
    asimov, globs = asimov_dataset(m["pdf"], m["data"], m["mu"], 0.0, constraints=[m["constraint"]],
                                   global_observables=[m["g"]])
    xs_mean, n, tau, g = m["truth"]["mu_hat"] + 0.05, m["truth"]["n"], 0.1, 0.05
    delta0 = (n * xs_mean + g / tau**2) / (n + 1 / tau**2)  # conditional delta_hat at mu = 0
    assert globs[m["g"]] == pytest.approx(delta0, abs=1e-4)
    assert asimov.sumEntries() == pytest.approx(n)
    centres = np.array([asimov.get(i).getRealValue("x") for i in range(asimov.numEntries())])
    weights = np.array([asimov.weight(i) for i in range(asimov.numEntries())])
    mean = np.sum(centres * weights) / np.sum(weights)
    assert mean == pytest.approx(delta0, abs=1e-4)


def test_cls_formulae():
    """The two branches of the CLs formulae join continuously."""
    # CLs(q~ = 0) = 0.5 / Phi(sqrt(q_A)); on the boundary q~ = q_A both branches agree
    assert asymptotic_cls(0.0, 1.0)[0] == pytest.approx(0.5 / norm.cdf(1.0))
    lo = asymptotic_cls(4.0 - 1e-9, 4.0)
    hi = asymptotic_cls(4.0 + 1e-9, 4.0)
    np.testing.assert_allclose(lo, hi, rtol=1e-6)
    assert expected_sqrt_q(2) == pytest.approx(2 + norm.isf(0.05 * norm.cdf(2)))


def test_bad_input(gaussian_measurement):
    """Bad arguments raise errors that name the problem."""
    m = gaussian_measurement(0.2)
    with pytest.raises(ValueError, match="cl must be"):
        asymptotic_upper_limit(m["pdf"], m["data"], m["mu"], cl=95)
    with pytest.raises(ValueError, match="appears in none of the constraints"):
        asymptotic_upper_limit(m["pdf"], m["data"], m["mu"], global_observables=[m["g"]])


def test_limit_matches_roostats_asymptotic_calculator(roofit):
    """A Gaussian peak on a flat background with a constrained background yield: rooml vs RooStats.

    RooStats' AsymptoticCalculator (q~, one-sided) with a HypoTestInverter scan gives the same observed
    and expected limits up to its 0.02 scan spacing.
    """
    ROOT = roofit
    x = ROOT.RooRealVar("x", "x", 0, 1)
    m0, w0 = ROOT.RooConstVar("m0", "m0", 0.5), ROOT.RooConstVar("w0", "w0", 0.05)
    sig, bkg = ROOT.RooGaussian("sig", "sig", x, m0, w0), ROOT.RooUniform("bkg", "bkg", ROOT.RooArgSet(x))
    mu, s0 = ROOT.RooRealVar("mu", "mu", 1, -5, 20), ROOT.RooConstVar("s0", "s0", 10.0)
    ns = ROOT.RooProduct("ns", "ns", ROOT.RooArgList(mu, s0))
    b = ROOT.RooRealVar("b", "b", 100, 20, 300)
    model = ROOT.RooAddPdf("model", "model", ROOT.RooArgList(sig, bkg), ROOT.RooArgList(ns, b))
    b_obs, b_width = ROOT.RooRealVar("b_obs", "b_obs", 95, 0, 500), ROOT.RooConstVar("bw", "bw", 10.0)
    b_obs.setConstant(True)
    constraint = ROOT.RooGaussian("con", "con", b_obs, b, b_width)
    rng = np.random.default_rng(2)
    xs = np.concatenate([rng.uniform(0, 1, 105), rng.normal(0.5, 0.05, 4)])
    data = ROOT.RooDataSet.from_numpy({"x": xs}, ROOT.RooArgSet(x))
    limit = asymptotic_upper_limit(model, data, mu, constraints=[constraint], global_observables=[b_obs])

    full = ROOT.RooProdPdf("full", "full", ROOT.RooArgList(model, constraint))
    ws = ROOT.RooWorkspace("w")
    ws.Import(full)
    ws.Import(data)
    sb = ROOT.RooStats.ModelConfig("sb", ws)
    sb.SetPdf("full")
    sb.SetParametersOfInterest("mu")
    sb.SetNuisanceParameters("b")
    sb.SetObservables("x")
    sb.SetGlobalObservables("b_obs")
    ws.var("mu").setVal(1)
    sb.SetSnapshot(ROOT.RooArgSet(ws.var("mu")))
    bonly = sb.Clone("b_only")
    ws.var("mu").setVal(0)
    bonly.SetSnapshot(ROOT.RooArgSet(ws.var("mu")))
    calc = ROOT.RooStats.AsymptoticCalculator(ws.data(data.GetName()), bonly, sb)
    calc.SetOneSided(True)
    calc.SetQTilde(True)
    inverter = ROOT.RooStats.HypoTestInverter(calc)
    inverter.SetConfidenceLevel(0.95)
    inverter.UseCLs(True)
    inverter.SetFixedScan(200, 0.0, 4.0)
    reference = inverter.GetInterval()
    assert limit.observed == pytest.approx(reference.UpperLimit(), rel=5e-3)
    for n in (-2, -1, 0, 1, 2):
        assert limit.expected[n] == pytest.approx(reference.GetExpectedUpperLimit(n), rel=5e-3), n
    assert limit.observed > limit.expected[1]  # the 4 injected signal events show
