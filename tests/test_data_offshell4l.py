"""rooml.data.offshell4l: exact yields, normalizations, ratios and weighted samples."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from rooml.data import offshell4l
from rooml.data._amplitudes import ANGLES
from rooml.data._testing import chi2_test, quantile_edges
from rooml.data.offshell4l import OBSERVABLES, truth
from scipy import integrate, stats
from scipy.stats import qmc

N_EVENTS = 100_000
P_MIN = 1e-3
P_MIN_SWEEP = 1e-4  # many p-values per test: see test_data_bbyy.py


def _proposal(u: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Independent proposal (m^-3 power law, uniform angles, gamma pt, normal y) from uniforms."""
    a, b = 220.0**-2, 2000.0**-2
    m = (a - u[:, 0] * (a - b)) ** -0.5
    lq = np.log(2.0 / (a - b)) - 3 * np.log(m)
    x = {"m4l": m}
    for j, k in enumerate(ANGLES, start=1):
        if k.startswith("cos"):
            x[k] = 2 * u[:, j] - 1
            lq = lq - np.log(2.0)
        else:
            x[k] = np.pi * (2 * u[:, j] - 1)
            lq = lq - np.log(2 * np.pi)
    pt_d, y_d = stats.gamma(a=1.3, scale=25), stats.norm(0, 1.2)
    x["pt4l"], x["y4l"] = pt_d.ppf(u[:, 6]), y_d.ppf(u[:, 7])
    return x, lq + pt_d.logpdf(x["pt4l"]) + y_d.logpdf(x["y4l"])


@pytest.fixture(scope="module")
def rqmc_points():
    """Eight scrambled-Sobol replicates of 2^16 proposal points."""
    return [_proposal(qmc.Sobol(d=8, scramble=True, seed=50 + r).random_base2(16)) for r in range(8)]


@pytest.fixture(scope="module")
def samples():
    return {p: offshell4l.generate(p, N_EVENTS, seed=31 + k) for k, p in enumerate(offshell4l.PROCESSES)}


def test_coefficients_and_yields():
    y = truth.yields()
    assert y["S"] == pytest.approx(40.0, rel=1e-12) and y["B"] == pytest.approx(1400.0, rel=1e-12)
    assert y["I"] < 0 and y["SBI"] == pytest.approx(y["S"] + y["B"] + y["I"], rel=1e-14)
    for mu in (0.0, 0.3, 1.0, 2.5):
        f = offshell4l.coefficients(mu)
        assert f["S"] + f["SBI"] + f["B"] == pytest.approx(mu - np.sqrt(mu) + 1 if mu else 1.0)
        expect = mu * y["S"] + np.sqrt(mu) * y["I"] + y["B"]
        assert truth.nu(mu) == pytest.approx(expect, rel=1e-13)
        assert sum(f[j] * y[j] for j in f) == pytest.approx(expect, rel=1e-13)
    assert truth.nu(1.0) == pytest.approx(y["SBI"], rel=1e-13)
    with pytest.raises(ValueError):
        offshell4l.coefficients(-0.1)


@pytest.mark.parametrize("alpha", [0.0, 1.3])
def test_mass_integrals_match_quad(alpha):
    from rooml.data.offshell4l import _mass_integrals, _mass_shapes

    cached = _mass_integrals(alpha)
    for key in ("s", "g", "i", "q"):
        f = lambda m: _mass_shapes(np.array([m]), alpha)[key][0]  # noqa: E731,B023
        ref, _ = integrate.quad(f, 220, 2000, points=[300, 350, 400, 600], limit=400, epsabs=0, epsrel=1e-12)
        assert cached[key] == pytest.approx(ref, rel=1e-10), key


def test_angular_overlaps_match_quad():
    amps = truth._amps
    for a, b in (("S", "S"), ("Bgg", "Bgg"), ("Bqq", "Bqq"), ("S", "Bgg")):
        for k in ANGLES:
            lo, hi = amps[a][k].support
            ref, _ = integrate.quad(lambda v: amps[a][k](v) * amps[b][k](v), lo, hi, epsabs=1e-14)  # noqa: B023
            assert amps[a][k].overlap(amps[b][k]) == pytest.approx(ref, rel=1e-12)


def test_production_densities_normalized():
    """p(pt4l, y4l | m4l) is a product: check that, then integrate each factor."""
    from rooml.data.offshell4l import _production_logpdf

    for kind in ("gg", "qq"):
        for m in (220.0, 700.0, 2000.0):

            def f(pt, y):
                return np.exp(
                    _production_logpdf(kind, np.atleast_1d(pt), np.atleast_1d(y), np.full(np.size(pt), m))
                )

            pts, ys = np.array([5.0, 40.0, 150.0]), np.array([-1.5, 0.2, 2.0])
            np.testing.assert_allclose(
                f(pts, ys) * f(pts[::-1], ys[::-1]), f(pts, ys[::-1]) * f(pts[::-1], ys), rtol=1e-12
            )
            i_pt = integrate.quad(lambda p: f(p, 0.3)[0], 0, np.inf, epsabs=1e-14)[0]  # noqa: B023
            i_y = integrate.quad(lambda y: f(30.0, y)[0], -np.inf, np.inf, epsabs=1e-14)[0]  # noqa: B023
            assert i_pt * i_y / f(30.0, 0.3)[0] == pytest.approx(1.0, abs=1e-9), (kind, m)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -1.0])
def test_densities_normalized_rqmc(rqmc_points, alpha):
    """Randomized-QMC importance sampling in 8-D; replicate spread gives the error."""
    for process in ("S", "B", "SBI", "I", "mu=2.5"):
        key = process if alpha == 0 else f"{process} alpha={alpha:g}"
        if process == "mu=2.5":
            density = lambda x: np.exp(truth.log_prob_mu(x, 2.5, alpha))  # noqa: E731
        else:
            density = lambda x: truth.density(process, x, alpha)  # noqa: E731,B023
        estimates = [np.mean(w) for w in _is_weights(rqmc_points, key, density)]
        value, error = np.mean(estimates), np.std(estimates, ddof=1) / np.sqrt(len(estimates))
        assert error < 1e-3, process
        assert abs(value - 1) < 4 * error + 1e-4, f"{process}: {value} +- {error}"


def test_interference_positivity_and_sign_change():
    rng = np.random.default_rng(8)
    n = 200_000
    x = {"m4l": rng.uniform(220, 2000, n), "pt4l": rng.uniform(0, 300, n), "y4l": rng.uniform(-3, 3, n)}
    for k in ANGLES:
        x[k] = rng.uniform(-1, 1, n) if k.startswith("cos") else rng.uniform(-np.pi, np.pi, n)
    c = truth._components(x, 0.0)
    scale = c["S"] + c["Bgg"]
    assert np.min((c["S"] + c["Bgg"] + c["I"]) / scale) >= -1e-12
    assert np.any(c["I"] < 0) and np.any(c["I"] > 0)
    for mu in (0.0, 0.2, 1.0, 3.0, 10.0):
        total = mu * c["S"] + np.sqrt(mu) * c["I"] + c["Bgg"] + c["Bqq"]
        assert np.all(total >= -1e-12 * (mu * c["S"] + c["Bgg"] + c["Bqq"]))
    # |I| <= 2 sqrt(S B_gg): a genuine interference term
    assert np.all(np.abs(c["I"]) <= 2 * np.sqrt(c["S"] * c["Bgg"]) * (1 + 1e-12))


_IS_CACHE: dict[str, list[np.ndarray]] = {}


def _is_weights(points, key, density):
    """Return importance weights p(x)/q(x) on the RQMC points, cached per truth density ``key``."""
    if key not in _IS_CACHE:
        _IS_CACHE[key] = [density(x) / np.exp(lq) for x, lq in points]
    return _IS_CACHE[key]


def _is_bin_probabilities(points, weights, variable, edges, mask_fn=None):
    """Return expected bin probabilities (and their RQMC variances) from importance sampling."""
    estimates = []
    for (x, _), w in zip(points, weights):
        if mask_fn is not None:
            w = w * mask_fn(x)
        estimates.append(np.histogram(x[variable], edges, weights=w)[0] / len(w))
    estimates = np.array(estimates)
    return estimates.mean(axis=0), estimates.std(axis=0, ddof=1) ** 2 / len(estimates)


_SUPPORT = {"m4l": (220.0, 2000.0), "pt4l": (0.0, np.inf), "y4l": (-np.inf, np.inf),
            **{k: ((-1.0, 1.0) if k.startswith("cos") else (-np.pi, np.pi)) for k in ANGLES}}  # fmt: skip
_SLICES = {"all": None, "m4l < 330": lambda x: x["m4l"] < 330, "m4l > 450": lambda x: x["m4l"] > 450}


def _sample_vs_truth(sample, truth_key, density, points, variable, slice_name="all"):
    """chi2 p-value of a (weighted) sample histogram against the truth in one slice."""
    mask_fn = _SLICES[slice_name]
    sel = np.ones(len(sample), bool) if mask_fn is None else mask_fn(sample)
    v, w = sample[variable][sel], sample.weight[sel]
    edges = quantile_edges(v, 20, *_SUPPORT[variable])
    weights = _is_weights(points, truth_key, density)
    prob, var_prob = _is_bin_probabilities(points, weights, variable, edges, mask_fn)
    n_total = len(sample)
    if np.all(sample.weight == sample.weight[0]):  # unweighted: counts against N P
        observed = np.histogram(v, edges)[0]
        expected = n_total * prob
        return chi2_test(observed, expected, expected + n_total**2 * var_prob)[2]
    observed = np.histogram(v, edges, weights=w)[0]
    expected = sample.attrs["yield"] * prob
    var = np.histogram(v, edges, weights=w * w)[0] + sample.attrs["yield"] ** 2 * var_prob
    return chi2_test(observed, expected, var)[2]


@pytest.mark.parametrize("process", offshell4l.PROCESSES)
@pytest.mark.parametrize("variable", OBSERVABLES)
def test_samples_match_truth(samples, rqmc_points, process, variable):
    density = lambda x: truth.density(process, x)  # noqa: E731
    for slice_name in _SLICES:
        if slice_name != "all" and variable == "m4l":
            continue
        p = _sample_vs_truth(samples[process], process, density, rqmc_points, variable, slice_name)
        assert p > P_MIN_SWEEP, f"{process} {variable} {slice_name}: p = {p:.2e}"


def test_sample_check_has_power(samples, rqmc_points):
    wrong = lambda x: truth.density("B", x)  # noqa: E731
    assert _sample_vs_truth(samples["S"], "B", wrong, rqmc_points, "cos_theta1") < 1e-6
    assert _sample_vs_truth(samples["S"], "SBI", lambda x: truth.density("SBI", x), rqmc_points, "m4l") < 1e-6


def test_sbi_sample_equals_weighted_components(samples):
    edges = quantile_edges(samples["SBI"]["m4l"], 25, 220.0, 2000.0)
    obs, var = 0.0, 0.0
    for p in ("S", "B", "I"):
        s = samples[p]
        obs = obs + np.histogram(s["m4l"], edges, weights=s.weight)[0]
        var = var + np.histogram(s["m4l"], edges, weights=s.weight**2)[0]
    sbi = samples["SBI"]
    ref = np.histogram(sbi["m4l"], edges, weights=sbi.weight)[0]
    ref_var = np.histogram(sbi["m4l"], edges, weights=sbi.weight**2)[0]
    assert chi2_test(obs, ref, var + ref_var)[2] > P_MIN


def test_interference_sample_weights(samples):
    s = samples["I"]
    y = truth.yields()
    assert 0.1 < np.mean(s.weight < 0) < 0.95
    assert abs(s.sum_weights - y["I"]) < 4 * np.sqrt(np.sum(s.weight**2))
    assert np.all(np.abs(s.weight) <= (y["S"] + y["Bgg"]) / len(s) * (1 + 1e-12))
    for p in ("S", "B", "SBI"):
        assert samples[p].sum_weights == pytest.approx(y[p], rel=1e-12)


def test_systematic_samples_and_reweighting(rqmc_points):
    up = offshell4l.generate("B", 60_000, seed=5, alpha=1.0)
    nominal = offshell4l.generate("B", 60_000, seed=6)
    assert up.sum_weights == pytest.approx(truth.yields(1.0)["B"], rel=1e-12)
    assert truth.G("B", 1.0) == pytest.approx(truth.yields(1.0)["B"] / truth.yields(0.0)["B"], rel=1e-14)
    assert truth.G("B", 1.0) > 1.02 and truth.G("B", -1.0) < 0.98
    p = _sample_vs_truth(up, "B alpha=1", lambda x: truth.density("B", x, 1.0), rqmc_points, "m4l")
    assert p > P_MIN
    p_wrong = _sample_vs_truth(up, "B", lambda x: truth.density("B", x, 0.0), rqmc_points, "m4l")
    assert p_wrong < 1e-3
    # nominal events reweighted by G g reproduce the +1 sigma sample
    w = nominal.weight * truth.G("B", 1.0) * truth.g("B", nominal, 1.0)
    assert w.sum() == pytest.approx(up.sum_weights, rel=0.01)
    edges = quantile_edges(up["m4l"], 20, 220.0, 2000.0)
    h_rw, v_rw = (np.histogram(nominal["m4l"], edges, weights=ww)[0] for ww in (w, w * w))
    h_up, v_up = (np.histogram(up["m4l"], edges, weights=ww)[0] for ww in (up.weight, up.weight**2))
    assert chi2_test(h_rw, h_up, v_rw + v_up)[2] > P_MIN


def test_ratio_and_mixture_identities(samples):
    x = samples["SBI"].select(np.arange(3000))
    ref = truth.density("SBI", x)
    for p in ("S", "B", "I"):
        np.testing.assert_allclose(truth.ratio(p, x), truth.density(p, x) / ref, rtol=1e-13)
    assert np.all(truth.ratio("S", x) > 0) and np.any(truth.ratio("I", x) < 0)
    for mu, alpha in ((1.0, 0.0), (0.4, 0.7), (3.0, -1.2)):
        f, y0 = offshell4l.coefficients(mu), truth.yields(0.0)
        # DESIGN: p(x|mu,alpha)/p_ref = (1/nu) sum_j f_j nu_j r_j(x) G_j(alpha) g_j(x, alpha)
        terms = sum(f[j] * y0[j] * truth.ratio(j, x) * truth.G(j, alpha) * truth.g(j, x, alpha) for j in f)
        expect = terms / truth.nu(mu, alpha)
        np.testing.assert_allclose(truth.mixture_ratio(x, mu, alpha), expect, rtol=1e-10)
    with pytest.raises(ValueError, match="signed"):
        truth.log_prob("I", x)


def test_pseudodata():
    sizes = [len(offshell4l.make_pseudodata(1.0, 0.0, seed=s, lumi_scale=0.5)) for s in range(30)]
    nu = 0.5 * truth.nu(1.0)
    assert abs(np.mean(sizes) - nu) < 4 * np.sqrt(nu / 30) and len(set(sizes)) > 10
    fixed = offshell4l.make_pseudodata(2.0, 0.5, seed=1, poisson=False)
    assert len(fixed) == round(truth.nu(2.0, 0.5)) and np.all(fixed.weight == 1)
    assert len(offshell4l.make_pseudodata(0.0, seed=2, poisson=False)) == round(truth.yields()["B"])


def test_pseudodata_matches_mixture_density(rqmc_points):
    data = offshell4l.make_pseudodata(2.5, 0.5, seed=9, poisson=False, lumi_scale=40.0)
    density = lambda x: np.exp(truth.log_prob_mu(x, 2.5, 0.5))  # noqa: E731
    for v in ("m4l", "cos_theta1", "phi"):
        assert _sample_vs_truth(data, "mu=2.5 alpha=0.5", density, rqmc_points, v) > P_MIN


def test_determinism():
    a, b = offshell4l.generate("SBI", 2000, seed=3), offshell4l.generate("SBI", 2000, seed=3)
    for k in OBSERVABLES:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ValueError, match="unknown offshell4l process"):
        offshell4l.generate("ggH", 10)


def test_doctests():
    result = doctest.testmod(offshell4l)
    assert result.attempted > 0 and result.failed == 0
