"""Fits, profile scans, significances and envelopes against closed-form answers."""
from __future__ import annotations

import json

import numpy as np
import pytest
from rooml.infer import ScanResult, discovery_significance, envelope, fit, profile_scan


@pytest.fixture()
def gaussian(roofit):
    """X ~ N(mu, 1), mu free: mu_hat = mean, error 1/sqrt(n), t(mu) = n (mu - mean)^2."""
    ROOT = roofit
    rng = np.random.default_rng(3)
    xs = rng.normal(0.7, 1.0, size=400)
    x = ROOT.RooRealVar("x", "x", -60, 60)
    mu = ROOT.RooRealVar("mu", "mu", 0.0, -5, 5)
    sigma = ROOT.RooConstVar("sigma", "sigma", 1.0)
    pdf = ROOT.RooGaussian("g", "g", x, mu, sigma)
    data = ROOT.RooDataSet.from_numpy({"x": xs}, ROOT.RooArgSet(x))
    return pdf, data, mu, xs, (x, sigma)


def test_fit_matches_closed_form(gaussian, tmp_path):
    pdf, data, mu, xs, _ = gaussian
    result = fit(pdf, data)
    n = len(xs)
    assert result.status == 0
    assert result["mu"].value == pytest.approx(xs.mean(), abs=5e-3 / np.sqrt(n))  # Minuit's tolerance
    assert result["mu"].error == pytest.approx(1 / np.sqrt(n), rel=1e-3)
    nll = 0.5 * np.sum((xs - xs.mean()) ** 2) + n * 0.5 * np.log(2 * np.pi)
    assert result.nll == pytest.approx(nll, abs=1e-4)
    saved = json.loads(result.save_json(tmp_path / "fit.json").read_text())
    assert saved["parameters"]["mu"]["value"] == result["mu"].value
    assert "mu" in str(result) and "status 0" in str(result)


def test_minos_errors(gaussian):
    pdf, data, mu, xs, _ = gaussian
    result = fit(pdf, data, minos=[mu])
    lo, hi = result["mu"].minos
    assert hi - lo == pytest.approx(2 / np.sqrt(len(xs)), rel=1e-3)
    assert result["mu"].value + hi == pytest.approx(xs.mean() + 1 / np.sqrt(len(xs)), abs=1e-4)


def test_profile_scan_is_the_parabola(gaussian):
    pdf, data, mu, xs, _ = gaussian
    grid = np.linspace(0.4, 1.0, 13)
    scan = profile_scan(pdf, data, mu, grid, progress=False)
    n, mean = len(xs), xs.mean()
    np.testing.assert_allclose(scan.t, n * (grid - mean) ** 2, atol=2e-3)
    lo, hi = scan.interval(1.0)
    assert lo == pytest.approx(mean - 1 / np.sqrt(n), abs=2e-3)
    assert hi == pytest.approx(mean + 1 / np.sqrt(n), abs=2e-3)
    assert mu.getVal() == 0.0 and not mu.isConstant()  # parameters restored


def test_discovery_significance_of_a_counting_experiment(roofit):
    """Identical signal and background shapes reduce the likelihood to Poisson counting: Z0 is closed form."""
    ROOT = roofit
    x = ROOT.RooRealVar("x", "x", 0, 1)
    sig, bkg = ROOT.RooUniform("s", "s", ROOT.RooArgSet(x)), ROOT.RooUniform("b", "b", ROOT.RooArgSet(x))
    ns = ROOT.RooRealVar("ns", "ns", 10, -50, 500)
    nb = ROOT.RooRealVar("nb", "nb", 100)
    nb.setConstant(True)
    model = ROOT.RooAddPdf("m", "m", ROOT.RooArgList(sig, bkg), ROOT.RooArgList(ns, nb))
    n_obs = 130
    data = ROOT.RooDataSet.from_numpy({"x": np.random.default_rng(1).uniform(size=n_obs)}, ROOT.RooArgSet(x))
    z0 = discovery_significance(model, data, ns)
    b = 100.0
    assert z0 == pytest.approx(np.sqrt(2 * (n_obs * np.log(n_obs / b) - (n_obs - b))), rel=1e-4)


def test_envelope_arithmetic():
    grid = np.linspace(-2, 4, 61)
    scans = [ScanResult("mu", grid, (grid - m) ** 2 / s**2, m, 0.0) for m, s in ((0.5, 1.0), (1.5, 0.5), (1.0, 2.0))]
    env = envelope(scans, n_sigma=1.0)
    np.testing.assert_allclose(env.t, np.min([(grid - m) ** 2 / s**2 for m, s in ((0.5, 1), (1.5, .5), (1, 2))], axis=0))
    assert env.best_fit == pytest.approx(1.0)
    np.testing.assert_allclose(env.sigmas, [1.0, 0.5, 2.0], atol=1e-9)
    assert env.interval == pytest.approx((1.0 - 2.0, 1.0 + 2.0))
    with pytest.raises(ValueError, match="same grid"):
        envelope([scans[0], ScanResult("mu", grid[:-1], grid[:-1] ** 2, 0, 0)])
