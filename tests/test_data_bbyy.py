"""rooml.data.bbyy: samples against exact truth densities, normalization, regions, mocks."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from rooml.data import bbyy
from rooml.data._distributions import ExpQuadratic, gauss_legendre
from rooml.data._testing import chi2_test, conditional_bin_probabilities, quantile_edges
from scipy import integrate

N_EVENTS = 100_000
N_COND = 20_000  # events used for the conditional-density checks
P_MIN = 1e-3
# the conditional sweeps test ~100 p-values per file: 1e-4 each keeps the family-wise
# false-alarm rate near 1% (seeds are fixed, so a pass is deterministic anyway)
P_MIN_SWEEP = 1e-4


@pytest.fixture(scope="module")
def samples():
    return {p: bbyy.generate(p, N_EVENTS, seed=11 + k) for k, p in enumerate(bbyy.PROCESSES)}


def test_generate_columns_and_determinism():
    a = bbyy.generate("background", 1000, seed=5)
    b = bbyy.generate("background", 1000, seed=5)
    c = bbyy.generate("background", 1000, seed=6)
    assert a.keys() == ["m_yy", "pt_bb", "pt_yy_over_m_yy", "dr_bb", "dr_yy"]
    for k in a:
        assert a[k].dtype == np.float64
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])
    np.testing.assert_array_equal(a.weight, np.ones(1000))
    with pytest.raises(ValueError, match="unknown bbyy process"):
        bbyy.generate("ttH", 10)


@pytest.mark.parametrize("process", bbyy.PROCESSES)
def test_mass_density_normalized(process):
    f = lambda m: np.exp(bbyy.truth.log_prob_m(np.array([m]), process))[0]  # noqa: E731
    value, err = integrate.quad(f, 90, 180, points=[120, 122, 125, 128, 130], limit=500, epsabs=1e-13)
    assert abs(value - 1) < 1e-8
    assert np.isneginf(bbyy.truth.log_prob_m(np.array([89.9, 180.1]), process)).all()


@pytest.mark.parametrize("p1,p2", [(3.0, 0.5), (3.0, -0.7), (2.0, 0.0), (0.0, 0.0), (0.5, 2.0)])
def test_exp_quadratic_closed_form(p1, p2):
    quad, _ = integrate.quad(lambda u: np.exp(-p1 * u + p2 * u * u), 0, 1, epsabs=1e-14)
    assert np.exp(ExpQuadratic(p1, p2).log_norm) == pytest.approx(quad, rel=1e-12)


@pytest.mark.parametrize(
    "process,m,nu", [("background", 95.0, 0.0), ("background", 170.0, 1.5), ("signal", 124.0, -2.0)]
)
def test_feature_density_normalized(process, m, nu):
    """4-D tensor Gauss-Legendre integral of P(x'|m) at fixed m (pt, r mapped from [0, 1))."""
    t, w = gauss_legendre(0.0, 1.0, 4, 10)
    pt, wpt = 60 * t / (1 - t), w * 60 / (1 - t) ** 2
    r, wr = 0.5 * t / (1 - t), w * 0.5 / (1 - t) ** 2
    dr, wdr = gauss_legendre(0.4, 6.0, 4, 10)
    grid = np.meshgrid(pt, r, dr, dr, indexing="ij")
    x = dict(zip(bbyy.FEATURES, (g.ravel() for g in grid)))
    x["m_yy"] = np.full(grid[0].size, m)
    f = np.exp(bbyy.truth.log_prob_features(x, process, nu)).reshape(grid[0].shape)
    total = np.einsum("ijkl,i,j,k,l->", f, wpt, wr, wdr, wdr)
    assert abs(total - 1) < 1e-4


def test_mass_fraction_matches_quad():
    for process in bbyy.PROCESSES:
        f = lambda m: np.exp(bbyy.truth.log_prob_m(np.array([m]), process))[0]  # noqa: E731,B023
        for lo, hi in [(90, 115), (115, 135), (124, 126.5), (150, 180)]:
            ref, _ = integrate.quad(
                f, lo, hi, points=[p for p in (122, 125, 128) if lo < p < hi], epsabs=1e-13
            )
            assert bbyy.truth.mass_fraction(process, lo, hi) == pytest.approx(ref, abs=1e-9)


def _mass_chi2(m, model, process):
    edges = quantile_edges(m, 40, 90.0, 180.0)
    observed, _ = np.histogram(m, edges)
    expected = len(m) * np.array([model.mass_fraction(process, a, b) for a, b in zip(edges[:-1], edges[1:])])
    return chi2_test(observed, expected)


@pytest.mark.parametrize("process", bbyy.PROCESSES)
def test_mass_marginal_matches_samples(samples, process):
    _, _, p = _mass_chi2(samples[process]["m_yy"], bbyy.truth, process)
    assert p > P_MIN
    # the same test rejects a background slope 3% off: the check has power
    _, _, p_wrong = _mass_chi2(samples["background"]["m_yy"], bbyy.BbyyModel(p1=3.09), "background")
    assert p_wrong < 1e-6


_SETTERS = {v: (lambda v: lambda cols, vals: cols.__setitem__(v, vals))(v) for v in bbyy.FEATURES}
_SUPPORT = {
    "pt_bb": (0.0, np.inf),
    "pt_yy_over_m_yy": (0.0, np.inf),
    "dr_bb": (0.4, 6.0),
    "dr_yy": (0.4, 6.0),
}


def _conditional_check(sample, process, variable, nu=0.0, model=bbyy.truth):
    x = {k: sample[k][:N_COND] for k in sample.keys()}
    edges = quantile_edges(x[variable], 20, *_SUPPORT[variable])
    probs = conditional_bin_probabilities(
        x, edges, lambda c: model.log_prob_factors(c, process, nu)[variable], _SETTERS[variable]
    )
    m = x["m_yy"]
    # slices may only cut on variables that are not descendants of `variable`
    slices = {"all": np.ones(len(m), bool), "SR": bbyy.in_signal_region(m), "SB": bbyy.in_sideband(m)}
    if variable != "pt_bb":
        slices["high pt_bb"] = x["pt_bb"] > np.quantile(x["pt_bb"], 0.7)
    out = {}
    for name, mask in slices.items():
        if mask.sum() < 2000:
            continue
        observed, _ = np.histogram(x[variable][mask], edges)
        out[name] = chi2_test(observed, probs[mask].sum(axis=0))[2]
    return out


@pytest.mark.parametrize("process", bbyy.PROCESSES)
@pytest.mark.parametrize("variable", bbyy.FEATURES)
def test_conditionals_match_samples(samples, process, variable):
    pvalues = _conditional_check(samples[process], process, variable)
    assert len(pvalues) >= 2
    for name, p in pvalues.items():
        assert p > P_MIN_SWEEP, f"{process} {variable} in slice {name}: p = {p:.2e}"


def test_shape_systematic_density_and_samples():
    sample = bbyy.generate("background", N_COND, seed=99, nu=2.0)
    assert _conditional_check(sample, "background", "pt_bb", nu=2.0)["all"] > P_MIN
    assert _conditional_check(sample, "background", "pt_bb", nu=0.0)["all"] < 1e-6
    # the systematic is a pure rescaling of pt_bb, event by event
    nominal = bbyy.generate("background", 1000, seed=3)
    shifted = bbyy.generate("background", 1000, seed=3, nu=-1.0)
    np.testing.assert_allclose(shifted["pt_bb"], 0.9 * nominal["pt_bb"], rtol=1e-15)
    np.testing.assert_array_equal(shifted["dr_bb"], nominal["dr_bb"])
    # Jacobian: the density transforms as P_nu(x) = P_0(x with pt_bb/s) / s
    lp_shift = bbyy.truth.log_prob(shifted, "background", nu=-1.0)
    lp_nom = bbyy.truth.log_prob(nominal, "background", nu=0.0)
    np.testing.assert_allclose(lp_shift, lp_nom - np.log(0.9), rtol=1e-12)


def test_hard_delta_r_edge(samples):
    for process, s in samples.items():
        for v in ("dr_bb", "dr_yy"):
            assert s[v].min() >= 0.4 and s[v].max() <= 6.0
    x = {k: v[:3] for k, v in samples["background"].columns.items()}
    x["dr_bb"] = np.array([0.3999, 0.4001, 0.45])
    f = bbyy.truth.log_prob_factors(x, "background")["dr_bb"]
    assert np.isneginf(f[0]) and np.isfinite(f[1]) and f[1] > np.log(0.01)
    # a visible pile-up of events right at the edge: smearing it would matter
    frac = np.mean(samples["background"]["dr_bb"] < 0.5)
    assert frac > 0.005


def test_regions():
    m = np.linspace(80, 190, 110_001)
    sr, sb = bbyy.in_signal_region(m), bbyy.in_sideband(m)
    inside = (m >= 90) & (m <= 180)
    assert not np.any(sr & sb)
    np.testing.assert_array_equal(sr | sb, inside)
    np.testing.assert_array_equal(sr, (m >= 115) & (m < 135))
    assert bbyy.in_signal_region(np.array([115.0]))[0] and not bbyy.in_signal_region(np.array([135.0]))[0]
    assert bbyy.in_sideband(np.array([135.0, 114.999, 90.0, 180.0])).all()


def test_region_yields_match_truth(samples):
    for process, s in samples.items():
        frac = bbyy.truth.mass_fraction(process, *bbyy.SIGNAL_REGION)
        k = bbyy.in_signal_region(s["m_yy"]).sum()
        z = (k - frac * len(s)) / np.sqrt(len(s) * frac * (1 - frac))
        assert abs(z) < 4
    assert bbyy.truth.mass_fraction("signal", *bbyy.SIGNAL_REGION) > 0.95


def test_mock_dataset():
    mock = bbyy.make_mock(n_bkg=40_000, n_sig=300, seed=1)
    assert len(mock) == 40_300 and mock["is_signal"].sum() == 300
    assert not np.all(np.diff(mock["is_signal"]) >= 0)  # shuffled
    again = bbyy.make_mock(n_bkg=40_000, n_sig=300, seed=1)
    np.testing.assert_array_equal(mock["m_yy"], again["m_yy"])
    sizes = [len(bbyy.make_mock(n_bkg=2000, n_sig=100, seed=s, poisson=True)) for s in range(20)]
    assert len(set(sizes)) > 5 and abs(np.mean(sizes) - 2100) < 4 * np.sqrt(2100 / 20)
    up = bbyy.make_mock(n_bkg=500, n_sig=50, seed=2, nu=1.0)
    nominal = bbyy.make_mock(n_bkg=500, n_sig=50, seed=2)
    np.testing.assert_allclose(up["pt_bb"], 1.1 * nominal["pt_bb"], rtol=1e-15)


def test_log_prob_mixture(samples):
    x = samples["background"].select(np.arange(500))
    ls, lb = bbyy.truth.log_prob(x, "signal"), bbyy.truth.log_prob(x, "background")
    expect = np.log((30 * np.exp(ls) + 970 * np.exp(lb)) / 1000)
    np.testing.assert_allclose(bbyy.truth.log_prob_mixture(x, 30, 970), expect, rtol=1e-12)
    np.testing.assert_allclose(bbyy.truth.log_prob_mixture(x, 0, 970), lb, rtol=1e-12)


def test_doctests():
    result = doctest.testmod(bbyy, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
