"""Quick closure of the bbyy HI-SIGMA-style likelihood with its shape systematic (the 8-toy version).

The full validation (>= 100 toys, fanned out on Dask) is benchmarks/validate_hisigma_closure.py; this runs
the same per-toy function serially on 8 toys with loose bounds, and checks the PASS/FAIL criteria it uses.
The NSBI counterpart is test_roofit_nsbi.py's closure test.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "validate_hisigma_closure.py"


@pytest.fixture(scope="module")
def closure():
    """Import the benchmark script as a module."""
    spec = importlib.util.spec_from_file_location("validate_hisigma_closure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pull_criteria(closure):
    """Unit-Gaussian pulls pass; shifted or too wide pulls fail the matching criterion."""
    z = np.random.default_rng(3).normal(size=400)
    assert [ok for _, ok in closure.pull_checks("mu", z)] == [True, True]
    assert [ok for _, ok in closure.pull_checks("mu", z + 0.5)] == [False, True]
    assert [ok for _, ok in closure.pull_checks("mu", 1.3 * z)] == [True, False]


def test_bbyy_shape_systematic_closure_quick(closure, roofit):
    """8 toys from the exact truth at mu = 1, nu = 0.5: fits converge, pulls of mu and nu are sane."""
    mu, nu = 1.0, 0.5
    samples = {p: closure.normalization_samples(p, 50_000, seed=10 + k) for k, p in enumerate(("background",
                                                                                                "signal"))}
    shared = {"seed": 4, "mu": mu, "nu": nu, "s_expected": 100.0, "n_bkg": 2000.0, "samples": samples,
              "minos": False}
    from rooml._fanout import fan_out

    fits = np.array(fan_out(closure.fit_toy, shared, range(8), parallel=False, progress=False))
    assert np.all(fits[:, 7] == 0) and np.all(fits[:, 8] >= 2)
    assert np.all(np.abs(fits[:, 1] - 0.13) < 0.03)  # sigma_mu ~ 0.13 (100 toys: 0.129)
    assert np.all(np.abs(fits[:, 3] - 0.13) < 0.03)  # sigma_nu ~ 0.13
    for value, error, truth in ((fits[:, 0], fits[:, 1], mu), (fits[:, 2], fits[:, 3], nu)):
        pulls = (value - truth) / error
        assert abs(pulls.mean()) < 3 / np.sqrt(len(pulls))
        assert 0.4 < pulls.std(ddof=1) < 1.8
