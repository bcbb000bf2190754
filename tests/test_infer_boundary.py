"""Scans and intervals at and away from a parameter's limit, against a Poisson counting model's profile.

n ~ Pois(mu s + b) with mu >= 0: t(mu) = 2 [(mu s + b) - n ln(mu s + b)] - its minimum over mu >= 0.  With
n < b the best fit sits at the limit mu = 0 (Hesse's error there says nothing about the allowed side).
"""
from __future__ import annotations

import numpy as np
import pytest
from rooml.infer import fit, profile_scan, scan_range
from scipy.optimize import brentq

S, B = 10.0, 5.0


def _nll(mu, n):
    return (mu * S + B) - n * np.log(mu * S + B)


def _t(mu, n):
    mu_hat = max((n - B) / S, 0.0)
    return 2.0 * (_nll(mu, n) - _nll(mu_hat, n))


@pytest.fixture
def counting(roofit):
    """Make the extended counting model (a uniform shape in x) and a dataset of n events."""
    ROOT = roofit

    def build(n):
        x = ROOT.RooRealVar("x", "x", 0.5, 0.0, 1.0)
        mu = ROOT.RooRealVar("mu", "mu", 1.0, 0.0, 10.0)
        nexp = ROOT.RooFormulaVar("nexp", f"mu*{S}+{B}", ROOT.RooArgList(mu))
        shape = ROOT.RooUniform("shape", "shape", ROOT.RooArgSet(x))
        pdf = ROOT.RooExtendPdf("pdf", "pdf", shape, nexp)
        data = ROOT.RooDataSet.from_numpy({"x": np.linspace(0.05, 0.95, n)}, ROOT.RooArgSet(x))
        pdf._keep = (x, mu, nexp, shape, data)
        return pdf, data, mu

    return build


def test_at_the_limit_the_interval_is_one_sided(counting):
    n = 3
    pdf, data, mu = counting(n)
    result = fit(pdf, data, extended=True)
    assert result["mu"].value == pytest.approx(0.0, abs=1e-4)
    low, high = scan_range(pdf, data, mu, n_sigma=2.5, extended=True)
    assert low == 0.0
    assert 2.5 <= np.sqrt(_t(high, n)) <= 3.75  # the range reaches t = 6.25 on the allowed side
    values = np.linspace(low, high, 41)
    scan = profile_scan(pdf, data, mu, values, extended=True, progress=False)
    np.testing.assert_allclose(scan.t, _t(values, n), atol=2e-3)  # Minuit's tolerance on each profile fit
    lo, hi = scan.interval(1.0)
    want = brentq(lambda m: _t(m, n) - 1.0, 1e-9, 10.0)
    assert lo == 0.0
    assert hi == pytest.approx(want, abs=0.1 * (values[1] - values[0]))
    text = scan.describe_interval(1.0)
    assert text.startswith("[0, ") and "lower end at the parameter's boundary" in text and "inf" not in text


def test_away_from_the_limit_the_interval_is_two_sided(counting):
    n = 30
    pdf, data, mu = counting(n)
    low, high = scan_range(pdf, data, mu, n_sigma=2.5, extended=True)
    mu_hat = (n - B) / S
    assert low > 0.0
    for end in (low, high):
        assert 2.5 <= np.sqrt(_t(end, n)) <= 3.75
    values = np.linspace(low, high, 41)
    scan = profile_scan(pdf, data, mu, values, extended=True, progress=False)
    lo, hi = scan.interval(1.0)
    want_lo = brentq(lambda m: _t(m, n) - 1.0, 0.0, mu_hat)
    want_hi = brentq(lambda m: _t(m, n) - 1.0, mu_hat, 10.0)
    spacing = values[1] - values[0]
    assert lo == pytest.approx(want_lo, abs=0.1 * spacing)
    assert hi == pytest.approx(want_hi, abs=0.1 * spacing)
    assert "boundary" not in scan.describe_interval(1.0)


def test_a_scan_that_stops_short_says_so(counting):
    n = 30
    pdf, data, mu = counting(n)
    scan = profile_scan(pdf, data, mu, np.linspace(2.3, 2.7, 5), extended=True, progress=False)
    assert scan.interval(1.0) == (-np.inf, np.inf)
    assert "scan wider" in scan.describe_interval(1.0)
