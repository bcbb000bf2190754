"""Hemisphere mixing: mixed data vs the exact truth, self-matches, studies of a method, spurious signal."""
from __future__ import annotations

import numpy as np
import pytest
from rooml.data import concatenate, hh4b
from rooml.hh4b import Prediction
from rooml.hh4b.mixing import (
    build_library,
    fit_spurious_signal,
    mix,
    mixed_datasets,
    study_method,
)
from scipy import stats

N = 40_000
M_EDGES = np.linspace(50.0, 250.0, 21)


@pytest.fixture(scope="module")
def data():
    """Return the 4b events to mix."""
    return hh4b.generate("4b", N, seed=21)


@pytest.fixture(scope="module")
def library(data):
    """Return the 4b hemisphere library of ``data``."""
    return build_library(data)


@pytest.fixture(scope="module")
def mixed(data, library):
    """Return ``data`` mixed with its own library, in chunks."""
    return mix(data, library, chunk_size=15_000)


def mass_marginals(step: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Exact probabilities of the ``M_EDGES`` bins of m_h1 and m_h2 (midpoint rule, years by luminosity)."""
    centres = np.arange(hh4b.MASS_RANGE[0] + step / 2, hh4b.MASS_RANGE[1], step)
    m1, m2 = np.meshgrid(centres, centres, indexing="ij")
    lumi = sum(hh4b.LUMI.values())
    density = sum(hh4b.LUMI[y] / lumi * np.exp(hh4b.truth.log_prob_mass(m1, m2, y, "4b")) for y in hh4b.YEARS)
    bins = np.searchsorted(M_EDGES, centres, side="right") - 1
    p1 = np.bincount(bins, weights=density.sum(axis=1) * step**2, minlength=20)
    p2 = np.bincount(bins, weights=density.sum(axis=0) * step**2, minlength=20)
    return p1, p2


def test_no_self_matches_and_what_is_kept(data, mixed):
    """Check that no hemisphere comes from its own event and what mixing keeps."""
    own = np.arange(N)
    assert not np.any(mixed["donor_h1"] == own) and not np.any(mixed["donor_h2"] == own)
    # both hemispheres are replaced, azimuths, year, x_wt and weights stay
    assert np.mean(mixed["pt_h1"] == data["pt_h1"]) < 0.01
    np.testing.assert_array_equal(np.sort(np.c_[mixed["phi_h1"], mixed["phi_h2"]], axis=1),
                                  np.sort(np.c_[data["phi_h1"], data["phi_h2"]], axis=1))  # fmt: skip
    for column in ("year", "x_wt"):
        np.testing.assert_array_equal(mixed[column], data[column])
    np.testing.assert_array_equal(mixed.weight, data.weight)
    # every mixed hemisphere is a library hemisphere of the same year
    donor = mixed["donor_h1"].astype(int)
    from_h1 = data["pt_h1"][donor] == mixed["pt_h1"]
    assert np.all(from_h1 | (data["pt_h2"][donor] == mixed["pt_h1"]))
    np.testing.assert_array_equal(data["year"][donor], mixed["year"])
    assert np.all(mixed["pt_h1"] >= mixed["pt_h2"]) and np.all(mixed["ntag"] == 4)
    # event quantities are rebuilt from the new candidates
    np.testing.assert_allclose(mixed["x_hh"], hh4b.x_hh(mixed["m_h1"], mixed["m_h2"]))


def test_mixed_data_reproduce_the_truth(data, mixed):
    """Compare mixed-data marginals with the exact mass marginals and a truth sample."""
    reference = hh4b.generate("4b", 200_000, seed=22)
    for sample in (data, mixed):
        for column, p in zip(("m_h1", "m_h2"), mass_marginals()):  # chi2 against the exact marginal
            observed = np.histogram(sample[column], M_EDGES)[0]
            chi2 = float(np.sum((observed - N * p) ** 2 / (N * p)))
            assert stats.chi2.sf(chi2, len(p) - 1) > 1e-3, (column, chi2)
        for column in ("pt_h1", "pt_h2", "eta_h1", "deta_hh", "m_hh", "pt_hh", "x_hh"):
            assert stats.ks_2samp(sample[column], reference[column]).pvalue > 1e-3, column
    assert np.mean(mixed["deta_hh"] >= hh4b.DETA_CUT) < 0.01  # the preselection survives (measured 0.4 %)
    sr = hh4b.region_mask(mixed, "SR").sum()
    assert abs(sr - hh4b.region_mask(data, "SR").sum()) < 3 * np.sqrt(sr)


def test_broken_mixing_is_detected(data, library, mixed):
    """Show what self-matches and unstandardized matching do."""
    # self-matches allowed: every hemisphere is its own nearest neighbour, the "mixed" data are a copy
    copy = mix(data, library, exclude_self=False)
    np.testing.assert_array_equal(copy["donor_h1"], np.arange(N))
    for column in ("m_h1", "pt_h2", "m_hh"):
        np.testing.assert_array_equal(copy[column], data[column])
    # without standardization GeV-valued pt and m dominate the distance and eta is matched badly
    raw = mix(data, build_library(data, standardize=False))
    assert np.mean(raw["deta_hh"] >= hh4b.DETA_CUT) > 0.05  # measured 9 % (0.4 % standardized)
    assert stats.ks_2samp(raw["deta_hh"], data["deta_hh"]).pvalue < 1e-10
    assert stats.ks_2samp(mixed["deta_hh"], data["deta_hh"]).pvalue > 1e-3


def test_chunking_variations_and_categories(data, library, mixed):
    """Check chunking, the K-dataset variations and a 3b library."""
    whole = mix(data, library, chunk_size=10 * N)
    for column in mixed.keys():
        np.testing.assert_array_equal(whole[column], mixed[column])
    small = data.select(np.arange(5_000))
    first, second = mixed_datasets(small, build_library(small), 2, seed=4)
    assert np.mean(first["m_h1"] == second["m_h1"]) < 0.5  # different half-libraries
    again = mixed_datasets(small, build_library(small), 2, seed=4)[1]
    np.testing.assert_array_equal(again["m_hh"], second["m_hh"])
    near, next_near = mixed_datasets(small, build_library(small), 2, variation="neighbour")
    np.testing.assert_array_equal(near["m_hh"], mix(small, build_library(small))["m_hh"])
    assert not np.array_equal(near["m_hh"], next_near["m_hh"])
    # a 3b library from a mixed-category sample: donors index the full sample and are 3b events
    both = concatenate([small, hh4b.generate("3b", 3_000, seed=23)])
    lib3 = build_library(both, category="3b")
    assert len(lib3) == 6_000 and np.all(lib3.hemispheres["event"] >= 5_000)
    from3b = mix(small, lib3)
    assert np.all(both["ntag"][from3b["donor_h1"].astype(int)] == 3)
    assert set(np.unique(from3b["ntag"])) <= {2.0, 3.0, 4.0}
    with pytest.raises(ValueError, match="unknown matching variable"):
        build_library(small, match_columns=("pt", "mass"))
    with pytest.raises(ValueError, match="neighbour"):
        mix(small, lib3, neighbour=0)


def scaled_counting(mixed_sample):
    """Predict the mixed SR with the mixed events weighted 1.0 and 1.2 (two replicas, mean 1.1 x the data)."""
    sr = mixed_sample.select(hh4b.region_mask(mixed_sample, "SR"))
    n = len(sr)
    events = {k: np.tile(sr[k], 2) for k in ("m_hh", "m_h1")}
    return Prediction("scaled", "SR", events, np.r_[np.ones(n), np.full(n, 1.2)], np.repeat([0, 1], n))


def test_study_of_a_method_and_spurious_signal(data, library):
    """Check the variance, bias and spurious-signal bookkeeping on a method 10 % high."""
    from distributed import Client, LocalCluster

    sample = data.select(np.arange(20_000))
    lib = build_library(sample)
    edges = np.linspace(200.0, 1000.0, 9)
    study = study_method(scaled_counting, sample, lib, 4, column="m_hh", edges=edges, parallel=False,
                         progress=False)  # fmt: skip
    assert study.region == "SR" and study.n_datasets == 4
    np.testing.assert_allclose(study.predicted, 1.1 * study.observed)
    bias, error = study.bias()
    np.testing.assert_allclose(bias, 0.1 * study.observed.mean())
    np.testing.assert_allclose(study.variance(), 1.21 * study.observed.var(ddof=1))
    assert study.observed.std() > 0  # the mixed datasets differ
    np.testing.assert_allclose(study.predicted_hist, 1.1 * study.observed_hist)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            on_dask = study_method(scaled_counting, sample, lib, 4, column="m_hh", edges=edges, client=client,
                                   progress=False)  # fmt: skip
    np.testing.assert_array_equal(on_dask.observed, study.observed)
    # spurious signal: a prediction 10 % high fakes a negative signal in a one-bin template
    template = np.zeros(len(edges) - 1)
    template[2] = 1.0
    s, s_err = study.spurious_signal(template)
    np.testing.assert_allclose(s, -0.1 * study.observed_hist[:, 2])
    assert np.all(s_err > 0)


def test_spurious_signal_fit():
    """Fit injected and background-only toys."""
    rng = np.random.default_rng(0)
    background = np.linspace(400.0, 100.0, 12)
    template = np.exp(-0.5 * ((np.arange(12) - 6.0) / 1.5) ** 2)
    s, err = fit_spurious_signal(background + 50.0 * template, background, np.zeros(12), template)
    np.testing.assert_allclose(s, 50.0)
    toys = rng.poisson(background, size=(2000, 12)).astype(float)  # background-only datasets
    s, err = fit_spurious_signal(toys, np.tile(background, (2000, 1)), np.zeros((2000, 12)), template)
    assert abs(s.mean()) < 4 * s.std() / np.sqrt(len(s))
    assert abs(s.std() / err.mean() - 1) < 0.1  # the quoted error is the spread of the fit
    with pytest.raises(ValueError, match="shapes differ"):
        fit_spurious_signal(background, background[:-1], background, template)
