"""Spurious-signal test: background-only fits centre at zero unless the background is mismodelled."""
from __future__ import annotations

import numpy as np
import pytest
from infer_factories import BumpOnExponential
from rooml.infer import spurious_signal


def test_adequate_background_gives_no_spurious_signal(roofit, tmp_path):
    """Exponential data, exponential model: the mean fitted signal is within 3 errors of 0."""
    spec = BumpOnExponential()
    m = spec.model()
    datasets = [spec.dataset(m["x"], seed) for seed in range(60)]
    result = spurious_signal(m["pdf"], m["poi"], datasets, progress=False)
    s = result.summary()
    assert s["n"] == 60 and s["failed"] == 0
    assert abs(s["mean"]) < 3 * s["mean_error"]
    assert s["std"] == pytest.approx(s["sigma_stat"], rel=0.3)  # fit errors describe the spread
    assert s["fraction_beyond_2sigma"] < 0.15
    assert m["poi"].getVal() == 0.0  # every fit started from (and left) the given parameters
    png = result.plot(tmp_path / "spurious.png")
    assert png.stat().st_size > 5000
    with pytest.raises(ValueError, match="not a floating parameter"):
        spurious_signal(m["pdf"], "nope", datasets[:1], progress=False)


def test_mismodelled_background_gives_a_spurious_signal(roofit):
    """A 10 % broad bump under the signal that the exponential cannot absorb biases s_hat upward."""
    result = spurious_signal(factory=BumpOnExponential(mismodelling=0.1), n=40, seed=1, progress=False)
    s = result.summary()
    assert s["mean"] > 5 * s["mean_error"]
    assert s["mean_over_sigma_stat"] > 0.5


def test_factory_on_dask_matches_here(roofit):
    """The factory path gives the same fits on a Dask worker as in this process."""
    from distributed import Client, LocalCluster

    factory = BumpOnExponential(mismodelling=0.1)
    here = spurious_signal(factory=factory, n=3, seed=5, progress=False)
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        there = spurious_signal(factory=factory, n=3, seed=5, client=client, progress=False)
    np.testing.assert_allclose(here.s_hat, there.s_hat, atol=1e-9)
    assert here.poi == "s"
    with pytest.raises(ValueError, match="factory and n"):
        spurious_signal()
