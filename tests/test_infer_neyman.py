"""Neyman belts against the exact belts of a Gaussian measurement (with and without the mu >= 0 boundary).

For x ~ N(mu, 1) the 90% central belt is mu +- 1.645.  With the boundary mu >= 0 (Feldman & Cousins,
arXiv:physics/9711021, section IV.B) mu_hat = max(x, 0) and t_mu = (x - mu)^2 for x >= 0,
mu^2 - 2 mu x for x < 0; its 90% quantile c(mu) solves Phi(sqrt(c)) - Phi(x_lo - mu) = 0.9 with
x_lo = mu - sqrt(c) if mu >= sqrt(c), else (mu^2 - c) / (2 mu).
"""
from __future__ import annotations

import numpy as np
import pytest
from infer_factories import ExtendedGaussianMean
from rooml.infer import belt_from_statistics, coverage, neyman_belt, run_toys
from scipy.optimize import brentq
from scipy.stats import norm


def fc_threshold(mu: float, cl: float = 0.9) -> float:
    """Exact cl quantile of t_mu for a unit Gaussian with the boundary mu >= 0."""
    def accepted(c):
        root = np.sqrt(c)
        x_lo = mu - root if mu >= root else (mu * mu - c) / (2 * mu) if mu > 0 else -np.inf
        return norm.cdf(root) - norm.cdf(x_lo - mu) - cl

    return brentq(accepted, 1e-9, 20.0)


def fc_t(x, mu):
    """t_mu of a unit Gaussian with the boundary mu >= 0."""
    return np.where(x >= 0, (x - mu) ** 2, mu * mu - 2 * mu * x)


GRID = np.linspace(0.0, 4.0, 41)


def test_central_belt_is_mu_plus_minus_1645():
    """Quantiles of 40000 toys per grid value reproduce mu +- 1.645 and the interval mu_hat +- 1.645."""
    rng = np.random.default_rng(1)
    grid = np.linspace(-2, 4, 13)
    belt = belt_from_statistics(grid, [rng.normal(mu, 1.0, 40000) for mu in grid], ordering="central", cl=0.9)
    np.testing.assert_allclose(belt.lower, grid - 1.6449, atol=0.035)
    np.testing.assert_allclose(belt.upper, grid + 1.6449, atol=0.035)
    lo, hi = belt.interval(1.0)
    assert lo == pytest.approx(1.0 - 1.6449, abs=0.035) and hi == pytest.approx(1.0 + 1.6449, abs=0.035)


def test_feldman_cousins_belt_matches_the_exact_one():
    """FC thresholds within 3 %; intervals of x = -1, 0, 1, 2 within 0.05 of the exact FC intervals."""
    rng = np.random.default_rng(2)
    toys = [fc_t(rng.normal(mu, 1.0, 40000), mu) for mu in GRID]
    belt = belt_from_statistics(GRID, toys, ordering="fc", cl=0.9)
    exact = np.array([fc_threshold(mu) for mu in GRID])
    np.testing.assert_allclose(belt.upper, exact, rtol=0.03)
    assert exact[-1] == pytest.approx(2.7055, rel=1e-3)  # far from the boundary: chi2(1) 90% quantile
    exact_belt = belt_from_statistics(GRID, [[c] for c in exact], ordering="fc", cl=0.9)
    for x in (-1.0, 0.0, 1.0, 2.0):
        got, want = belt.interval(fc_t(x, GRID)), exact_belt.interval(fc_t(x, GRID))
        np.testing.assert_allclose(got, want, atol=0.05)
    assert exact_belt.interval(fc_t(0.0, GRID))[1] == pytest.approx(1.64, abs=0.01)  # FC Table X, x0 = 0
    assert exact_belt.interval(fc_t(0.0, GRID))[0] == 0.0
    with pytest.raises(ValueError, match="grid points"):
        belt.interval([1.0, 2.0])


def test_roofit_toys_build_the_fc_belt_and_cover(roofit):
    """RooFit toys of N(mu, 1/sqrt(100)) with mu >= 0: the toys' t_mu follow the exact FC distribution."""
    factory = ExtendedGaussianMean(mu_min=0.0)  # sigma = 1/sqrt(n), n ~ Poisson(100)
    grid = np.array([0.0, 0.1, 0.2])
    belt, toys = neyman_belt(factory, grid, 250, ordering="fc", cl=0.9, seed=3, parallel=False,
                             progress=False)
    for mu, t in zip(grid, toys):
        ok = t.status == 0
        assert ok.mean() > 0.99
        fraction = np.mean(t.t[mu][ok] <= fc_threshold(mu * 10.0))
        assert abs(fraction - 0.9) < 3 * np.sqrt(0.09 / ok.sum())
        assert np.all(t.mu_hat[ok] >= -1e-6)  # the boundary is respected
    independent = run_toys(factory, 250, mu=0.1, fit_to_data=False, test_values=[0.1], seed=99,
                           parallel=False, progress=False)
    p, err = coverage(belt, independent)
    assert abs(p - 0.9) < 3 * 0.019 and err == pytest.approx(np.sqrt(p * (1 - p) / 250))
    with pytest.raises(ValueError, match="test_values"):
        coverage(belt, run_toys(factory, 2, mu=0.1, fit_to_data=False, parallel=False, progress=False))
