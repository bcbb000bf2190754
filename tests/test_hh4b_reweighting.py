"""The HH->4b reweighting baseline against the exact p_4b/p_2b of the generator."""
from __future__ import annotations

import numpy as np
import pytest
from rooml.data import hh4b
from rooml.hh4b import Prediction
from rooml.hh4b.reweighting import (
    CR_PARTS,
    ControlRegionSystematic,
    alternative_control_regions,
    control_region_mask,
    control_region_systematic,
    reweighting_method,
    train_reweighting,
)
from rooml.models import RatioConfig

FAST = {"config": RatioConfig((32, 32)), "epochs": 20, "patience": 5, "lr": 1e-3, "progress": False}
N4, N2 = 60_000, 120_000


def region_probability(process: str, region: str, step: float = 0.2) -> float:
    """Exact P(region) of the mass plane (midpoint rule on a ``step`` GeV grid, luminosity-averaged years)."""
    centres = np.arange(hh4b.MASS_RANGE[0] + step / 2, hh4b.MASS_RANGE[1], step)
    m1, m2 = np.meshgrid(centres, centres, indexing="ij")
    inside = hh4b.region_mask({"m_h1": m1, "m_h2": m2}, region)
    lumi = sum(hh4b.LUMI.values())
    density = sum(hh4b.LUMI[y] / lumi * np.exp(hh4b.truth.log_prob_mass(m1[inside], m2[inside], y, process))
                  for y in hh4b.YEARS)  # fmt: skip
    return float(density.sum() * step**2)


@pytest.fixture(scope="module")
def samples():
    """Return the 4b and 2b events."""
    return hh4b.generate("4b", N4, seed=11), hh4b.generate("2b", N2, seed=12)


@pytest.fixture(scope="module")
def reweighter(samples):
    """Return a reweighter trained three times in the CR."""
    return train_reweighting(*samples, replicas=3, parallel=False, seed=5, **FAST)


def test_control_region_parts_partition_the_ring(samples):
    """Check that quadrants and crescents partition the CR ring."""
    x = samples[1]
    cr = control_region_mask(x, "CR")
    np.testing.assert_array_equal(cr, hh4b.region_mask(x, "CR"))
    quadrants = np.stack([control_region_mask(x, q) for q in CR_PARTS[:4]])
    np.testing.assert_array_equal(quadrants.sum(axis=0), cr.astype(int))  # disjoint, covering the CR
    inner, outer = control_region_mask(x, "inner"), control_region_mask(x, "outer")
    np.testing.assert_array_equal(inner ^ outer, cr)
    assert 0.4 < inner.sum() / cr.sum() < 0.6  # the crescent radius halves the CR
    np.testing.assert_array_equal(control_region_mask(x, ("q1", "q3")), quadrants[0] | quadrants[2])
    np.testing.assert_array_equal(control_region_mask(x, "VR"), hh4b.region_mask(x, "VR"))
    alternatives = alternative_control_regions("quadrants")
    assert alternatives["no_q2"] == ("q1", "q3", "q4") and len(alternatives) == 4
    with pytest.raises(ValueError, match="unknown control-region part"):
        control_region_mask(x, ("q1", "q5"))
    with pytest.raises(ValueError, match="unknown control-region scheme"):
        alternative_control_regions("rings")


def test_weights_follow_the_exact_ratio(samples, reweighter):
    """Correlate the learned weights with the exact p_4b/p_2b."""
    source = samples[1]
    for region in ("CR", "SR"):
        x = source.select(hh4b.region_mask(source, region))
        truth = np.log(hh4b.truth.ratio(x, "4b", "2b"))
        learned = np.log(reweighter.replica_weights(x).mean(axis=0))
        lo, hi = np.percentile(truth, [5, 95])
        bulk = (truth > lo) & (truth < hi)
        corr = np.corrcoef(truth[bulk], learned[bulk])[0, 1]
        # measured 0.93 (CR) and 0.94 (SR) in the bulk, 0.95 and 0.96 on all events
        assert corr > 0.9, (region, corr)


def test_signal_region_yield_against_the_truth(samples, reweighter):
    """Compare the SR prediction with the exact 4b expectation."""
    d4, d2 = samples
    prediction = reweighter.predict(d2, "SR")
    assert isinstance(prediction, Prediction) and prediction.n_replicas == 3
    assert prediction.region == "SR" and prediction.method == "reweighting"
    n_sr = int(hh4b.region_mask(d2, "SR").sum())
    assert len(prediction.weights) == 3 * n_sr and "m_hh" in prediction.events
    yields = prediction.replica_yields()
    assert np.ptp(yields) > 0  # bootstrapped retrainings differ
    # replica k: its normalization times its ratio sums to the CR 4b yield on the 2b CR events
    cr = d2.select(hh4b.region_mask(d2, "CR"))
    cr_pred = reweighter.replica_weights(cr).sum(axis=1)
    assert np.all(np.abs(cr_pred / hh4b.region_mask(d4, "CR").sum() - 1) < 0.03)

    expected = N4 * region_probability("4b", "SR")  # exact expectation of the 4b SR yield
    value, spread = prediction.yield_and_error()
    w0 = prediction.weights[prediction.replica == 0]
    sigma = np.hypot(spread, np.sqrt(np.sum(w0**2)))  # training (bootstrap) + 2b statistics
    # the oracle: the same normalization with the exact ratio is unbiased
    ratio = hh4b.truth.ratio(d2, "4b", "2b")
    sr2, cr2 = hh4b.region_mask(d2, "SR"), hh4b.region_mask(d2, "CR")
    oracle = hh4b.region_mask(d4, "CR").sum() / ratio[cr2].sum() * ratio[sr2].sum()
    assert abs(oracle - expected) < 3 * sigma, (oracle, expected, sigma)
    # the network's CR -> SR interpolation undershoots by ~4 % (measured -3.9 %, -1.3 sigma here; -4 %
    # with 150k + 300k events: benchmarks/validate_hh4b_mixing.py measures this bias on mixed data)
    assert abs(value - expected) < 4 * sigma, (value, expected, sigma)
    assert abs(value / expected - 1) < 0.07


def test_replicas_reproducible_on_dask(samples):
    """Check that the replicas are identical serially and on Dask."""
    from distributed import Client, LocalCluster

    d4, d2 = (s.select(np.arange(15_000)) for s in samples)
    tiny = {**FAST, "epochs": 2}
    serial = train_reweighting(d4, d2, replicas=2, parallel=False, seed=3, **tiny)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            on_dask = train_reweighting(d4, d2, replicas=2, client=client, seed=3, **tiny)
    np.testing.assert_array_equal(serial.normalizations, on_dask.normalizations)
    x = d2.select(np.arange(500))
    np.testing.assert_array_equal(serial.replica_weights(x), on_dask.replica_weights(x))
    assert serial.normalizations[0] != serial.normalizations[1]


def test_control_region_systematic(samples):
    """Check the alternative-CR systematic."""
    d4, d2 = (s.select(np.arange(20_000)) for s in samples)
    tiny = {**FAST, "epochs": 3, "replicas": 1, "parallel": False}
    syst = control_region_systematic(d4, d2, "SR", scheme="crescents", **tiny)
    assert set(syst.alternatives) == {"inner", "outer"}
    assert all(p.region == "SR" for p in syst.alternatives.values())
    shifts = syst.yield_shifts()
    assert syst.yield_uncertainty() == max(abs(v) for v in shifts.values()) > 0
    # the bookkeeping on hand-made predictions
    events = {"m_hh": np.array([300.0, 500.0])}
    nominal = Prediction("rw", "SR", events, np.array([1.0, 2.0]), np.zeros(2))
    alt = {"a": Prediction("rw", "SR", events, np.array([1.5, 1.0]), np.zeros(2)),
           "b": Prediction("rw", "SR", events, np.array([0.0, 2.5]), np.zeros(2))}  # fmt: skip
    hand = ControlRegionSystematic(nominal, alt)
    assert hand.yield_shifts() == {"a": -0.5, "b": -0.5}
    np.testing.assert_allclose(hand.histogram_uncertainty("m_hh", np.array([0.0, 400.0, 600.0])), [1.0, 1.0])


def test_method_callable_and_errors(samples):
    """Check the method callable and bad input."""
    d4, d2 = (s.select(np.arange(10_000)) for s in samples)
    method = reweighting_method(d2, "VR", replicas=1, **{**FAST, "epochs": 1})
    prediction = method(d4)
    assert prediction.region == "VR" and prediction.n_replicas == 1
    assert len(prediction.weights) == hh4b.region_mask(d2, "VR").sum()
    with pytest.raises(ValueError, match="replicas"):
        train_reweighting(d4, d2, replicas=0)
    with pytest.raises(ValueError, match="lacks the feature"):
        train_reweighting(d4, d2, features=("m_h1", "nope"), parallel=False)
    with pytest.raises(TypeError, match="sets"):
        train_reweighting(d4, d2, parallel=False, loss="bce")
