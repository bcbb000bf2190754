"""Toys: generated and Poisson-bootstrapped pseudo-experiments against exact per-toy answers."""
from __future__ import annotations

import numpy as np
import pytest
from infer_factories import ExtendedGaussianMean, WeightedCount
from rooml.infer import positive_reference_weights, run_toys


def test_generated_toys_give_unit_gaussian_pulls(roofit, tmp_path):
    """X ~ N(mu, 1): pull = (mean - mu) sqrt(n) ~ N(0, 1) exactly and t(mu_true) = pull^2 per toy."""
    toys = run_toys(ExtendedGaussianMean(), 300, mu=0.0, test_values=[0.0], parallel=False, progress=False)
    s = toys.summary()
    assert s["n"] == 300 and s["failed"] == 0
    assert abs(s["pull_mean"]) < 3 * s["pull_mean_error"]
    assert abs(s["pull_std"] - 1) < 3 * s["pull_std_error"]
    np.testing.assert_allclose(toys.t[0.0], toys.pulls**2, rtol=1e-3, atol=1e-4)
    assert toys.mu_true == 0.0 and toys.poi == "mu"
    assert np.all((toys.sigma > 0.08) & (toys.sigma < 0.125))  # 1/sqrt(n) for n ~ Poisson(100)
    png = toys.plot_pulls(tmp_path / "pulls.png")
    assert png.stat().st_size > 5000
    with pytest.raises(FileExistsError):
        toys.plot_pulls(png)


def test_toys_are_reproducible_across_task_splits_and_dask(roofit):
    """Per-toy seeds: the same toys run here in chunks of 5 or on a Dask worker in chunks of 3."""
    from distributed import Client, LocalCluster

    factory = ExtendedGaussianMean()
    here = run_toys(factory, 9, seed=7, parallel=False, toys_per_task=5, progress=False)
    # processes=True works too (checked by hand) but a fresh worker process spends ~30 s importing ROOT
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        there = run_toys(factory, 9, seed=7, client=client, toys_per_task=3, progress=False)
    np.testing.assert_array_equal(here.seeds, there.seeds)
    np.testing.assert_allclose(here.mu_hat, there.mu_hat, rtol=0, atol=1e-9)
    other = run_toys(factory, 9, seed=8, parallel=False, progress=False)
    assert not np.allclose(other.mu_hat, here.mu_hat)
    assert here.mu_true == pytest.approx(0.3, abs=0.3)  # generated at the fit to the data (mean 0.3, n 100)


def test_bootstrap_toys_fit_the_poisson_weighted_sum(roofit):
    """A free yield fitted to w_i Poisson(1) weights is their sum, reproducible from each toy's seed."""
    weights = tuple(np.linspace(0.5, 1.5, 200))
    toys = run_toys(WeightedCount(weights), 20, mode="bootstrap", fit_to_data=False, parallel=False,
                    progress=False)
    w = np.array(weights)
    expected = [np.sum(w * np.random.default_rng(int(s)).poisson(1.0, len(w))) for s in toys.seeds]
    np.testing.assert_allclose(toys.mu_hat, expected, rtol=5e-4)  # Minuit tolerance: 0.005 sigma
    assert np.std(toys.mu_hat) == pytest.approx(np.sqrt(np.sum(w**2)), rel=0.5)  # bootstrap spread


def test_negative_reference_weights_are_replaced_by_a_positive_reference(roofit):
    """Bootstrapping refuses negative weights; a uniform sample reweighted by 2x represents p = 2x."""
    signed = (1.0,) * 150 + (-0.2,) * 50
    with pytest.raises(ValueError, match="negative weights"):
        run_toys(WeightedCount(signed), 2, mode="bootstrap", fit_to_data=False, parallel=False,
                 progress=False)
    x = np.random.default_rng(4).uniform(0, 1, 40000)
    w = positive_reference_weights(np.ones_like(x), 2 * x, total=100.0)
    assert w.sum() == pytest.approx(100.0)
    assert np.sum(w * x) / w.sum() == pytest.approx(2 / 3, abs=3 * np.sqrt(1 / 18 / 40000) * 1.5)
    with pytest.raises(ValueError, match="event 1"):
        positive_reference_weights([1.0, -1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="mode"):
        run_toys(WeightedCount(), 1, mode="nope")
