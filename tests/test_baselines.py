"""The HI-SIGMA baselines: the profile error, and the four fits on a tiny dataset."""
from __future__ import annotations

import numpy as np
import pytest
from rooml.data import bbyy
from rooml.validation.baselines import METHODS, compare_on_dataset, profile_fit, train_classifiers


def test_profile_error_of_a_correlated_gaussian_is_exact():
    """Profiling a correlated nuisance parameter: sigma(mu) is sqrt(C_00), not 1/sqrt(H_00)."""
    cov = np.array([[0.04, 0.018], [0.018, 0.09]])
    inv = np.linalg.inv(cov)
    centre = np.array([1.3, -0.4])

    def nll(p):
        d = np.asarray(p) - centre
        return 0.5 * d @ inv @ d

    mu_hat, sigma = profile_fit(nll, np.zeros(2), [(-5, 5), (-5, 5)], step=0.5)
    assert mu_hat == pytest.approx(1.3, abs=1e-4)
    assert sigma == pytest.approx(0.2, rel=1e-3)
    assert sigma > 1.04 / np.sqrt(inv[0, 0])  # the correlation (0.3) widens it by 1/sqrt(1 - 0.09)


@pytest.fixture(scope="module")
def results():
    """Small classifiers and the four fits of one 6000 + 200 event dataset."""
    classifiers = train_classifiers(2000, s_expected=200, b_expected=6000, n_templates=20_000, bins=20,
                                    seed=3)
    mock = bbyy.make_mock(n_bkg=6000, n_sig=200, seed=4)
    return classifiers, compare_on_dataset(mock, classifiers, s_expected=200)


def test_every_method_recovers_the_injected_signal(results):
    """mu_hat within 4 sigma of the injected 1 for every method, with sane errors."""
    _, fits = results
    assert set(fits) == set(METHODS)
    for fit in fits.values():
        assert 0.02 < fit.sigma < 1.0, fit
        assert abs(fit.mu_hat - 1.0) < 4 * fit.sigma, fit


def test_exact_densities_beat_the_mass_only_fit(results):
    """The exact-density likelihood is more precise than the mass fit and the binned score fit."""
    classifiers, fits = results
    assert fits["hisigma"].sigma < 0.9 * fits["mass_only"].sigma
    assert fits["hisigma"].sigma <= fits["binned_score"].sigma * 1.05  # the exact likelihood is optimal
    assert 0.05 < classifiers.efficiency < 1.0 and fits["cut_and_mass"].events < fits["mass_only"].events
    assert classifiers.signal_template.sum() == pytest.approx(1.0) and len(classifiers.bins) == 21
