"""rooml.data.hh4b: mass plane, kinematics, regions, 4b/2b ratio, hemispheres against the truth."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from rooml.data import hh4b
from rooml.data._testing import chi2_test, conditional_bin_probabilities, quantile_edges
from scipy import integrate, stats
from scipy.stats import qmc

N_EVENTS = 100_000
N_COND = 10_000
P_MIN = 1e-3
# the conditional sweeps test ~100 p-values per file: 1e-4 each keeps the family-wise
# false-alarm rate near 1% (seeds are fixed, so a pass is deterministic anyway)
P_MIN_SWEEP = 1e-4


@pytest.fixture(scope="module")
def samples():
    out = {p: hh4b.generate(p, N_EVENTS, seed=21 + k) for k, p in enumerate(("4b", "2b", "signal"))}
    out["4b_reversed"] = hh4b.generate("4b", N_COND, seed=29, preselection="reversed")
    return out


def test_columns_constraints_and_determinism(samples):
    s = samples["4b"]
    extra = ("phi_h1", "phi_h2", "year", "ntag", "m_hh", "pt_hh", "deta_hh", "x_hh")
    jets = ("h1_jet_pt_lead", "h1_jet_pt_sublead", "h1_dr_jj", "h1_nbtag", "h2_nbtag")
    for name in (*hh4b.MASSES, *hh4b.KINEMATICS, *extra, *jets):
        assert name in s and s[name].dtype == np.float64
    assert np.all((s["m_h1"] >= 50) & (s["m_h1"] <= 250) & (s["m_h2"] >= 50) & (s["m_h2"] <= 250))
    assert np.all(s["pt_h2"] <= s["pt_h1"]) and np.all(s["pt_h2"] > 0)
    assert np.all(np.abs(s["eta_h1"] - s["eta_h2"]) < 1.5)
    assert np.all((s["dphi_hh"] >= 0) & (s["dphi_hh"] <= np.pi))
    assert set(np.unique(s["year"])) == {2016.0, 2017.0, 2018.0} and np.all(s["ntag"] == 4)
    assert np.all(samples["2b"]["h1_nbtag"] + samples["2b"]["h2_nbtag"] == 2)
    assert np.all(np.abs(samples["4b_reversed"]["deta_hh"]) >= 1.5)
    a, b = hh4b.generate("3b", 500, seed=4), hh4b.generate("3b", 500, seed=4)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert np.all(a["h1_nbtag"] + a["h2_nbtag"] == 3)
    with pytest.raises(ValueError, match="year"):
        hh4b.generate("4b", 10, year=2015)


def test_year_fractions(samples):
    years = samples["4b"]["year"]
    lumi = np.array([hh4b.LUMI[y] for y in hh4b.YEARS])
    counts = np.array([np.sum(years == y) for y in hh4b.YEARS])
    _, _, p = chi2_test(counts, len(years) * lumi / lumi.sum())
    assert p > P_MIN
    assert np.all(hh4b.generate("2b", 300, seed=1, year=2016)["year"] == 2016)


@pytest.mark.parametrize("process", hh4b.PROCESSES)
@pytest.mark.parametrize("year", hh4b.YEARS)
def test_mass_plane_normalized(process, year):
    """Adaptive cubature, independent of the cached tensor Gauss-Legendre normalization."""
    f = lambda x: np.exp(hh4b.truth.log_prob_mass(x[:, 0], x[:, 1], year, process))  # noqa: E731
    res = integrate.cubature(f, [50.0, 50.0], [250.0, 250.0], rtol=1e-10, atol=1e-13)
    assert res.status == "converged" and abs(res.estimate - 1) < 1e-9


def _mass_expected(process, years, edges1, edges2, nodes=4):
    t, w = np.polynomial.legendre.leggauss(nodes)

    def grid(edges):
        half = 0.5 * np.diff(edges)
        pts = (0.5 * (edges[1:] + edges[:-1]))[:, None] + half[:, None] * t
        return pts.ravel(), (half[:, None] * w).ravel()

    x1, w1 = grid(edges1)
    x2, w2 = grid(edges2)
    expected = 0.0
    for y in hh4b.YEARS:
        n_y = np.sum(years == y)
        f = np.exp(hh4b.truth.log_prob_mass(x1[:, None], x2[None, :], y, process)) * w1[:, None] * w2[None, :]
        f = f.reshape(len(edges1) - 1, nodes, len(edges2) - 1, nodes).sum(axis=(1, 3))
        expected = expected + n_y * f
    return expected


@pytest.mark.parametrize(
    "process,truth_process", [("4b", "4b"), ("2b", "2b"), ("signal", "signal"), ("2b", "4b")]
)
def test_mass_plane_matches_samples(samples, process, truth_process):
    s = samples[process]
    edges = np.linspace(50, 250, 21)
    observed, _, _ = np.histogram2d(s["m_h1"], s["m_h2"], [edges, edges])
    expected = _mass_expected(truth_process, s["year"], edges, edges)
    small = expected < 10  # pool sparse bins into one
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    _, ndf, p = chi2_test(obs, exp)
    assert ndf > 30
    if process == truth_process:
        assert p > P_MIN
    else:  # 2b and 4b planes are distinguishable: the check has power
        assert p < 1e-6


def _set_deta(c, v):
    centre = 0.5 * (c["eta_h1"] + c["eta_h2"])
    c["eta_h1"], c["eta_h2"] = centre + 0.5 * v, centre - 0.5 * v


def _set_centre(c, v):
    deta = c["eta_h1"] - c["eta_h2"]
    c["eta_h1"], c["eta_h2"] = v + 0.5 * deta, v - 0.5 * deta


def _set_u(c, v):
    c["pt_h2"] = v * c["pt_h1"]


# variable -> (factor key, setter, value from columns, support, log-Jacobian to add to the factor)
_VARIABLES = {
    "pt_h1": ("pt_h1", lambda c, v: c.__setitem__("pt_h1", v), lambda x: x["pt_h1"], (0.0, np.inf), None),
    "u": ("pt_h2", _set_u, lambda x: x["pt_h2"] / x["pt_h1"], (0.0, 1.0), lambda c: np.log(c["pt_h1"])),
    "deta": ("deta", _set_deta, lambda x: x["eta_h1"] - x["eta_h2"], (-1.5, 1.5), None),
    "eta_centre": ("eta_centre", _set_centre, lambda x: 0.5 * (x["eta_h1"] + x["eta_h2"]), (-8.0, 8.0), None),
    "pi_minus_dphi": (
        "dphi_hh",
        lambda c, v: c.__setitem__("dphi_hh", np.pi - v),
        lambda x: np.pi - x["dphi_hh"],
        (0.0, np.pi),
        None,
    ),
    "x_wt": ("x_wt", lambda c, v: c.__setitem__("x_wt", v), lambda x: x["x_wt"], (0.0, np.inf), None),
}  # fmt: skip


def _conditional_pvalues(sample, process, variable, preselection="pass"):
    key, setter, value, support, log_jac = _VARIABLES[variable]
    x = {k: sample[k][:N_COND] for k in (*hh4b.MASSES, *hh4b.KINEMATICS, "year")}
    v = value(x)
    if preselection == "reversed" and variable == "deta":
        edges = quantile_edges(np.abs(v), 12, 1.5, 12.0)
        edges = np.concatenate([-edges[::-1], edges])  # |deta| >= 1.5 on both sides; middle bin is empty
    else:
        edges = quantile_edges(v, 16, *support)

    def logpdf(c):
        f = hh4b.truth.log_prob_factors(c, process, preselection=preselection)[key]
        return f if log_jac is None else f + log_jac(c)

    probs = conditional_bin_probabilities(x, edges, logpdf, setter)
    slices = {
        "all": np.ones(N_COND, bool),
        "SR": hh4b.region_mask(x, "SR"),
        "not SR": hh4b.region_mask(x, "not_SR"),
        "2016": x["year"] == 2016,
        "2018": x["year"] == 2018,
    }
    if variable not in ("pt_h1", "eta_centre"):  # pt_h1 is a parent: slicing on it is allowed
        slices["high pt_h1"] = x["pt_h1"] > np.quantile(x["pt_h1"], 0.7)
    out = {}
    for name, mask in slices.items():
        observed, _ = np.histogram(v[mask], edges)
        expected = probs[mask].sum(axis=0)
        keep = expected > 0
        if mask.sum() >= 1000:
            out[name] = chi2_test(observed[keep], expected[keep])[2]
    return out


@pytest.mark.parametrize("process", ["4b", "2b", "signal"])
@pytest.mark.parametrize("variable", list(_VARIABLES))
def test_kinematic_conditionals_match_samples(samples, process, variable):
    pvalues = _conditional_pvalues(samples[process], process, variable)
    assert len(pvalues) >= 4
    for name, p in pvalues.items():
        assert p > P_MIN_SWEEP, f"{process} {variable} in slice {name}: p = {p:.2e}"


def test_reversed_deta_conditional(samples):
    pvalues = _conditional_pvalues(samples["4b_reversed"], "4b", "deta", preselection="reversed")
    assert min(pvalues.values()) > P_MIN
    wrong = _conditional_pvalues(samples["2b"], "4b", "x_wt")["all"]  # 2b events under the 4b truth
    assert wrong < 1e-6


def _factor_pieces(process, preselection, rng, n_cond=40):
    """Random conditioning events for the one-dimensional factor normalization checks."""
    s = hh4b.generate(process, n_cond, rng, preselection=preselection)
    return {k: s[k] for k in (*hh4b.MASSES, *hh4b.KINEMATICS, "year")}


@pytest.mark.parametrize(
    "process,preselection", [("4b", "pass"), ("2b", "pass"), ("signal", "pass"), ("3b", "reversed")]
)
def test_kinematic_factors_normalized_and_triangular(process, preselection):
    """Check the chain factors by nested quadrature.

    Every factor integrates to one over its variable, for any parents, and depends only on
    its variable and its parents, so the chain product is normalized.
    """
    rng = np.random.default_rng(7)
    x = _factor_pieces(process, preselection, rng)
    t, w = np.polynomial.legendre.leggauss(48)
    for variable, (key, setter, _, support, log_jac) in _VARIABLES.items():
        lo, hi = support
        if variable == "deta" and preselection == "reversed":
            pieces = [(-12.0, -1.5), (1.5, 12.0)]
        elif np.isinf(hi):  # the tails beyond are far below 1e-10
            pieces = [(lo, 200.0 if variable == "x_wt" else 5000.0)]
        else:
            pieces = [(lo, hi)]
        total = 0.0
        for a, b in pieces:
            edges = np.linspace(a, b, 401)
            half = 0.5 * np.diff(edges)
            pts = ((0.5 * (edges[1:] + edges[:-1]))[:, None] + half[:, None] * t).ravel()
            wts = (half[:, None] * w).ravel()
            cols = {k: np.broadcast_to(v[:, None], (len(v), pts.size)) for k, v in x.items()}
            setter(cols, np.broadcast_to(pts, (len(x["m_h1"]), pts.size)))
            f = hh4b.truth.log_prob_factors(cols, process, preselection=preselection)[key]
            if log_jac is not None:
                f = f + log_jac(cols)
            total = total + np.exp(f) @ wts
        np.testing.assert_allclose(total, 1.0, atol=1e-6, err_msg=variable)
    # triangularity: perturbing a variable changes only its own factor and its descendants'
    base = hh4b.truth.log_prob_factors(x, process, preselection=preselection)
    children = {"x_wt": set(), "dphi_hh": set(), "eta_centre": set()}
    for var, changed in children.items():
        y = dict(x)
        if var == "eta_centre":
            y["eta_h1"], y["eta_h2"] = x["eta_h1"] + 0.1, x["eta_h2"] + 0.1
        else:
            y[var] = x[var] * 0.97
        new = hh4b.truth.log_prob_factors(y, process, preselection=preselection)
        for k in base:
            if k != var and k not in changed:
                np.testing.assert_allclose(
                    new[k], base[k], rtol=1e-13, atol=1e-13, err_msg=f"{k} depends on {var}"
                )
    total = hh4b.truth.log_prob(x, process, preselection=preselection)
    np.testing.assert_allclose(total, sum(base.values()), rtol=1e-12)
    kin = hh4b.truth.log_prob_kinematics(x, process, preselection=preselection)
    np.testing.assert_allclose(total, kin + base["mass_plane"], rtol=1e-12)


def _rqmc_normalization(process, year, preselection, replicates=8, log2n=15):
    """Randomized quasi-Monte Carlo importance sampling of the full 8-D density."""
    estimates = []
    for r in range(replicates):
        u = qmc.Sobol(d=8, scramble=True, seed=100 + r).random_base2(log2n)
        if process == "signal":
            d1, d2 = stats.truncnorm(-5, 11, loc=124, scale=15), stats.truncnorm(-5, 11, loc=117, scale=15)
        else:
            d1, d2 = stats.uniform(50, 200), stats.uniform(50, 200)
        m1, m2 = d1.ppf(u[:, 0]), d2.ppf(u[:, 1])
        lq = d1.logpdf(m1) + d2.logpdf(m2)
        pt_d = stats.gamma(a=4, scale=55)
        pt1 = pt_d.ppf(u[:, 2])
        lq = lq + pt_d.logpdf(pt1) - np.log(pt1)  # pt_h2 = u pt_h1, u uniform
        if preselection == "pass":
            deta = -1.5 + 3 * u[:, 4]
            lq = lq - np.log(3.0)
        else:
            tail = stats.expon(loc=1.5, scale=0.5)
            a = tail.ppf(np.abs(2 * u[:, 4] - 1))
            deta = np.sign(u[:, 4] - 0.5) * a
            lq = lq + tail.logpdf(a) - np.log(2)
        c_d, y_d, x_d = (
            stats.norm(0, 1.0),
            stats.truncexpon(b=np.pi / 0.3, scale=0.3),
            stats.lognorm(s=0.7, scale=2.5),
        )
        c, y, xw = c_d.ppf(u[:, 5]), y_d.ppf(u[:, 6]), x_d.ppf(u[:, 7])
        lq = lq + c_d.logpdf(c) + y_d.logpdf(y) + x_d.logpdf(xw)
        x = {"m_h1": m1, "m_h2": m2, "pt_h1": pt1, "pt_h2": u[:, 3] * pt1, "eta_h1": c + deta / 2,
             "eta_h2": c - deta / 2, "dphi_hh": np.pi - y, "x_wt": xw}  # fmt: skip
        lp = hh4b.truth.log_prob(x, process, year=year, preselection=preselection)
        estimates.append(np.mean(np.exp(lp - lq)))
    return np.mean(estimates), np.std(estimates, ddof=1) / np.sqrt(replicates)


@pytest.mark.parametrize(
    "process,year,preselection",
    [("4b", 2017, "pass"), ("2b", 2016, "pass"), ("signal", 2018, "pass"), ("3b", 2018, "reversed")],
)
def test_joint_density_normalized_rqmc(process, year, preselection):
    value, error = _rqmc_normalization(process, year, preselection)
    assert error < 1e-3
    assert abs(value - 1) < 4 * error + 1e-4


def test_regions_match_definitions():
    rng = np.random.default_rng(3)
    m1, m2 = rng.uniform(50, 250, 200_000), rng.uniform(50, 250, 200_000)
    xhh = np.sqrt(((m1 - 124) / (0.1 * m1)) ** 2 + ((m2 - 117) / (0.1 * m2)) ** 2)
    np.testing.assert_allclose(hh4b.x_hh(m1, m2), xhh, rtol=1e-14)
    sr = xhh < 1.6
    vr = ~sr & (np.hypot(m1 - 127.72, m2 - 120.51) < 30)
    cr = ~sr & ~vr & (np.hypot(m1 - 130.2, m2 - 122.85) < 45)
    x = {"m_h1": m1, "m_h2": m2}
    np.testing.assert_array_equal(hh4b.region_mask(x, "SR"), sr)
    np.testing.assert_array_equal(hh4b.region_mask(x, "not_SR"), ~sr)
    np.testing.assert_array_equal(hh4b.region_mask(x, "VR"), vr)
    np.testing.assert_array_equal(hh4b.region_mask(x, "CR"), cr)
    assert sr.any() and vr.any() and cr.any()
    assert hh4b.in_signal_region(np.array([124.0]), np.array([117.0]))[0]
    for name, (c1, c2) in hh4b.SHIFTED_CENTRES.items():
        assert abs(np.hypot(c1 - 124, c2 - 117) - 25) < 1e-12
        shifted = hh4b.region_mask(x, f"SR_{name}")
        own = np.sqrt(((m1 - c1) / (0.1 * m1)) ** 2 + ((m2 - c2) / (0.1 * m2)) ** 2) < 1.6
        np.testing.assert_array_equal(shifted, own & ~sr)
        assert shifted.sum() > 1000 and not np.any(shifted & sr)
        # the shifted centre is outside the nominal SR and inside its own region
        assert hh4b.region_mask({"m_h1": np.array([c1]), "m_h2": np.array([c2])}, f"SR_{name}")[0]
    with pytest.raises(ValueError, match="unknown region"):
        hh4b.region_mask(x, "SR_diag")


def test_derived_quantities(samples):
    s = samples["signal"].select(np.arange(5000))
    # m_HH^2 = m1^2 + m2^2 + 2 (E1 E2 - p1.p2), p1.p2 = pT1 pT2 (cos dphi + sinh eta1 sinh eta2)
    e1 = np.sqrt(s["m_h1"] ** 2 + (s["pt_h1"] * np.cosh(s["eta_h1"])) ** 2)
    e2 = np.sqrt(s["m_h2"] ** 2 + (s["pt_h2"] * np.cosh(s["eta_h2"])) ** 2)
    dphi = s["phi_h1"] - s["phi_h2"]
    deta = s["eta_h1"] - s["eta_h2"]
    dot = s["pt_h1"] * s["pt_h2"] * (np.cos(dphi) + np.sinh(s["eta_h1"]) * np.sinh(s["eta_h2"]))
    m_hh = np.sqrt(s["m_h1"] ** 2 + s["m_h2"] ** 2 + 2 * (e1 * e2 - dot))
    np.testing.assert_allclose(s["m_hh"], m_hh, rtol=1e-9)
    pt_hh = np.sqrt(s["pt_h1"] ** 2 + s["pt_h2"] ** 2 + 2 * s["pt_h1"] * s["pt_h2"] * np.cos(dphi))
    np.testing.assert_allclose(s["pt_hh"], pt_hh, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s["deta_hh"], np.abs(deta), rtol=1e-15)
    np.testing.assert_allclose(np.abs(np.cos(dphi) - np.cos(s["dphi_hh"])), 0, atol=1e-12)
    np.testing.assert_allclose(s["x_hh"], hh4b.x_hh(s["m_h1"], s["m_h2"]), rtol=1e-15)
    assert np.all(s["m_hh"] >= s["m_h1"] + s["m_h2"])
    # jets: each candidate decays into two massless jets whose pT sum is at least the candidate pT
    assert np.all(s["h1_jet_pt_lead"] + s["h1_jet_pt_sublead"] >= s["pt_h1"] * (1 - 1e-12))
    assert np.all(s["h1_jet_pt_lead"] >= s["h1_jet_pt_sublead"]) and np.all(s["h2_dr_jj"] > 0)


def test_ratio_4b_over_2b_reweights(samples):
    two, four = samples["2b"], samples["4b"]
    r = hh4b.truth.ratio(two, "4b", "2b")
    np.testing.assert_allclose(
        np.log(r), hh4b.truth.log_prob(two, "4b") - hh4b.truth.log_prob(two, "2b"), rtol=1e-12, atol=1e-12
    )
    assert abs(r.mean() - 1) < 4 * r.std() / np.sqrt(len(r))
    assert r.std() > 0.1  # the ratio really depends on the kinematics
    for var in ("m_h1", "pt_h1", "x_wt", "m_hh", "deta_hh"):
        edges = quantile_edges(four[var], 20, -np.inf, np.inf)
        idx2 = np.clip(np.searchsorted(edges, two[var], side="right") - 1, 0, 19)
        f2 = np.bincount(idx2, weights=r, minlength=20) / len(r)
        v2 = np.bincount(idx2, weights=r * r, minlength=20) / len(r) ** 2
        f4 = np.histogram(four[var], edges)[0] / len(four[var])
        v4 = f4 * (1 - f4) / len(four[var])
        chi2 = np.sum((f2 - f4) ** 2 / (v2 + v4))
        assert stats.chi2.sf(chi2, 19) > P_MIN, var
        raw = np.histogram(two[var], edges)[0] / len(r)  # without the weights the shapes differ
        if var in ("pt_h1", "x_wt"):
            assert stats.chi2.sf(np.sum((raw - f4) ** 2 / (raw / len(r) + v4)), 19) < 1e-6


def test_hemisphere_split_and_join(samples):
    s = samples["4b"].select(np.arange(2000))
    hem = hh4b.split_hemispheres(s)
    assert len(hem) == 4000 and set(np.unique(hem["hemisphere"])) == {1.0, 2.0}
    first, second = hem.select(hem["hemisphere"] == 1), hem.select(hem["hemisphere"] == 2)
    back = hh4b.join_hemispheres(first, second)
    for k in (*hh4b.MASSES, "pt_h1", "pt_h2", "eta_h1", "eta_h2", "phi_h1", "phi_h2", "m_hh", "pt_hh", "x_hh",
              "h2_jet_pt_lead", "h1_nbtag", "ntag", "year"):  # fmt: skip
        np.testing.assert_array_equal(back[k], s[k], err_msg=k)
    np.testing.assert_allclose(back["dphi_hh"], s["dphi_hh"], atol=1e-12)
    # mixing: pair hemispheres of different events; H1 is the harder one
    mixed = hh4b.join_hemispheres(second, first.select(np.roll(np.arange(2000), 1)))
    assert np.all(mixed["pt_h1"] >= mixed["pt_h2"]) and np.all(mixed["dphi_hh"] <= np.pi)
    assert not np.array_equal(mixed["m_hh"], s["m_hh"])


def test_doctests():
    result = doctest.testmod(hh4b)
    assert result.attempted > 0 and result.failed == 0
