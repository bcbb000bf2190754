"""GP mass plane export: onnxruntime, the core and RooGPMassPlane against MassPlaneGP (scikit-learn)."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import rooml
from rooml.data import hh4b
from rooml.export import ModelFileError, export_gp_massplane, export_gp_per_year, read_metadata
from rooml.models.gp import fit_mass_plane
from rooml.roofit import gp_massplane_pdf
from scipy import stats


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Fit one year (30k events) and export it."""
    s = hh4b.generate("4b", 30_000, seed=3, year=2017)
    gp = fit_mass_plane(s["m_h1"], s["m_h2"], year=2017, seed=0, restarts=0)
    path = export_gp_massplane(gp, tmp_path_factory.mktemp("gp") / "gp_2017.onnx")
    return gp, path


def _points(gp, n=400, seed=1):
    (lo1, hi1), (lo2, hi2) = gp.box
    return np.random.default_rng(seed).uniform([lo1 - 10, lo2 - 10], [hi1 + 10, hi2 + 10], (n, 2))


def _sampler_density(gp, x):
    """Independent numpy reference: MassPlaneGP.sample's piecewise-uniform density."""
    mean, _ = gp.predict()
    p = np.clip(mean, 0, None)
    p = p / p.sum() / np.outer(np.diff(gp.edges_m1), np.diff(gp.edges_m2))
    i = np.searchsorted(gp.edges_m1, x[:, 0], side="right") - 1
    j = np.searchsorted(gp.edges_m2, x[:, 1], side="right") - 1
    inside = (i >= 0) & (i < gp.shape[0]) & (j >= 0) & (j < gp.shape[1])
    out = np.zeros(len(x))
    out[inside] = p[i[inside], j[inside]]
    return out


def test_onnxruntime_and_core_match_sklearn(fitted):
    """Mean and std counts of onnxruntime and the core equal MassPlaneGP.predict_points (1e-9)."""
    gp, path = fitted
    x = _points(gp)
    want_mean, want_std = gp.predict_points(x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_mean, ort_std = session.run(["mean_counts", "std_counts"], {"x": x})
    core = rooml.load(path)
    assert type(core).__name__ == "GPMassPlane"
    for mean, std in ((ort_mean, ort_std), (core.mean_counts(x), core.std_counts(x))):
        assert np.max(np.abs(mean / want_mean - 1)) < 1e-9
        assert np.max(np.abs(std / want_std - 1)) < 1e-9
    # the bin-centre prediction of MassPlaneGP.predict, and its metadata
    mean, std = gp.predict()
    assert np.max(np.abs(core.bin_counts / mean - 1)) < 1e-12
    assert np.max(np.abs(core.std_counts(gp._points()).reshape(gp.shape) / std - 1)) < 1e-9
    assert core.year == 2017 and core.mean_function == "turn_on" and core.n_train == int((~gp.blinded).sum())
    assert core.length_scales == pytest.approx(gp.length_scales, rel=1e-15)
    meta = read_metadata(path)
    assert meta["kind"] == "gp_massplane" and meta["features"] == ["m_h1", "m_h2"]
    assert np.array_equal(np.array(meta["blinded"]), gp.blinded)
    assert json.loads(core.metadata_json)["scale"] == gp.scale


def test_core_sampler_density_and_sr_normalization(fitted):
    """The core's sampler density, rectangle integrals and the SR normalization against numpy."""
    gp, path = fitted
    core = rooml.load(path)
    x = _points(gp, 2000)
    assert np.max(np.abs(core.density(x) - _sampler_density(gp, x))) < 1e-12 * _sampler_density(gp, x).max()
    (lo1, hi1), (lo2, hi2) = gp.box
    assert core.probability(lo1, hi1, lo2, hi2) == pytest.approx(1.0, rel=1e-13)
    # a rectangle cutting through bins: the exact overlap integral of the numpy reference
    step = 0.25  # divides the bin edges: the midpoint rule is exact on the piecewise-constant density
    g1, g2 = np.meshgrid(np.arange(101.0, 150.0, step) + step / 2, np.arange(92.0, 140.0, step) + step / 2,
                         indexing="ij")  # fmt: skip
    numeric = _sampler_density(gp, np.column_stack([g1.ravel(), g2.ravel()])).sum() * step**2
    assert core.probability(101.0, 150.0, 92.0, 140.0) == pytest.approx(numeric, rel=1e-12)
    # the SR normalization of MassPlaneGP in the infinite-sample limit, from the exported bin probabilities
    p, f = core.bin_probabilities, gp.sr_fraction
    n_sr = gp.n_obs_not_sr * (p * f).sum() / (p * (1 - f)).sum()
    assert n_sr == pytest.approx(gp.sr_normalization(n_samples=None), rel=1e-12)
    with pytest.raises(ValueError, match=r"event 3, variable 'm_h2': value is not finite"):
        core.mean_counts(np.array([[100.0, 100.0]] * 3 + [[120.0, np.nan]]))


def test_roofit_pdf_values_integrals_and_workspace(fitted, roofit, tmp_path):
    """RooGPMassPlane values, analytical integrals and projection, and a workspace round trip."""
    ROOT = roofit
    gp, path = fitted
    pdf = gp_massplane_pdf("bkg", path)
    m1, m2 = pdf._rooml_vars
    norm = ROOT.RooArgSet(m1, m2)
    x = _points(gp, 50, seed=4)
    x = x[(x[:, 0] >= 80) & (x[:, 0] <= 180) & (x[:, 1] >= 70) & (x[:, 1] <= 170)]
    want = _sampler_density(gp, x)
    for (a, b), w in zip(x, want):
        m1.setVal(a), m2.setVal(b)
        assert pdf.getVal(norm) == pytest.approx(w, rel=1e-13)
    m1.setVal(121.0), m2.setVal(111.0)
    assert pdf.meanCounts() == pytest.approx(gp.predict_points([[121.0, 111.0]])[0][0], rel=1e-12)
    assert pdf.stdCounts() == pytest.approx(gp.predict_points([[121.0, 111.0]])[1][0], rel=1e-9)
    # analytical integrals: a named range, and the marginal of m1 (integrated over m2)
    m1.setRange("window", 101.0, 150.0), m2.setRange("window", 90.0, 140.0)
    integral = pdf.createIntegral(norm, ROOT.RooFit.NormSet(norm), ROOT.RooFit.Range("window"))
    window = rooml.load(path).probability(101.0, 150.0, 90.0, 140.0)
    assert integral.getVal() == pytest.approx(window, rel=1e-13)
    marginal = pdf.createProjection(ROOT.RooArgSet(m2))
    fine = np.linspace(70.0 + 0.0125, 170.0 - 0.0125, 4000)
    m1.setVal(121.0)
    ref = _sampler_density(gp, np.column_stack([np.full_like(fine, 121.0), fine])).mean() * 100.0
    assert marginal.getVal(ROOT.RooArgSet(m1)) == pytest.approx(ref, rel=1e-12)
    # a workspace written and read back keeps the model
    ws = ROOT.RooWorkspace("w", "w")
    ws.Import(pdf, ROOT.RooFit.Silence())
    ws.writeToFile(str(tmp_path / "ws.root"))
    f = ROOT.TFile.Open(str(tmp_path / "ws.root"))
    w_back = f.Get("w")
    back = w_back.pdf("bkg")
    vars_back = w_back.var("m_h1"), w_back.var("m_h2")
    for (a, b), w in zip(x[:10], want[:10]):
        vars_back[0].setVal(a), vars_back[1].setVal(b)
        assert back.getVal(ROOT.RooArgSet(*vars_back)) == pytest.approx(w, rel=1e-15)
    f.Close()


def test_roofit_generate_and_fit(fitted, roofit):
    """Direct generation follows the bin probabilities (chi2); an extended fit of the yield returns N."""
    ROOT = roofit
    gp, path = fitted
    pdf = gp_massplane_pdf("bkg", path)
    m1, m2 = pdf._rooml_vars
    ROOT.RooRandom.randomGenerator().SetSeed(5)
    n = 20000
    data = pdf.generate(ROOT.RooArgSet(m1, m2), n)
    cols = data.to_numpy()
    counts = np.histogram2d(cols["m_h1"], cols["m_h2"], bins=(gp.edges_m1, gp.edges_m2))[0]
    expected = n * rooml.load(path).bin_probabilities
    sel = expected > 0
    chi2 = float((((counts - expected) ** 2)[sel] / expected[sel]).sum())
    assert stats.chi2.sf(chi2, sel.sum() - 1) > 1e-3
    assert counts[~sel].sum() == 0
    nbkg = ROOT.RooRealVar("nbkg", "nbkg", 1000.0, 0.0, 1e6)
    ext = ROOT.RooExtendPdf("ext", "ext", pdf, nbkg)
    res = ext.fitTo(data, ROOT.RooFit.Save(), ROOT.RooFit.PrintLevel(-1), ROOT.RooFit.EvalBackend("cpu"))
    assert res.status() == 0
    assert nbkg.getVal() == pytest.approx(n, abs=0.1 * np.sqrt(n))  # the minimum is N, up to Minuit's EDM
    frame = m1.frame()
    data.plotOn(frame)
    pdf.plotOn(frame)
    curve = frame.getCurve()
    # the projection on m1 of N events in 100 plot bins of 1 GeV, at a bin centre of the model
    fine = np.linspace(70.0 + 0.0125, 170.0 - 0.0125, 4000)
    ref = _sampler_density(gp, np.column_stack([np.full_like(fine, 122.5), fine])).mean() * 100.0
    assert curve.Eval(122.5) == pytest.approx(n * 1.0 * ref, rel=1e-6)


def test_errors_and_per_year_export(fitted, roofit, tmp_path):
    """No overwrite, one file per year, wrong variable order, normalized targets, bad files."""
    ROOT = roofit
    gp, path = fitted
    with pytest.raises(FileExistsError):
        export_gp_massplane(gp, path)
    files = export_gp_per_year({2017: gp}, tmp_path)
    assert files[2017].name == "gp_massplane_2017.onnx" and rooml.load(files[2017]).year == 2017
    a, b = ROOT.RooRealVar("m_h1", "", 100, 80, 180), ROOT.RooRealVar("m_h2", "", 100, 70, 170)
    with pytest.raises(Exception, match="wrong order"):
        gp_massplane_pdf("bad", path, b, a)
    with pytest.raises(ValueError, match="not a MassPlaneGP fit"):
        gp.regressor._y_train_std = 2.0  # as a regressor fitted with normalize_y=True
        try:
            export_gp_massplane(gp, tmp_path / "x.onnx")
        finally:
            gp.regressor._y_train_std = 1.0
    ratio = tmp_path / "not_gp.onnx"
    ratio.write_bytes(b"not an onnx file")
    with pytest.raises(ModelFileError):
        gp_massplane_pdf("bad", ratio)
