"""The GP + flow interpolation of the HH -> 4b background against the exact truth.

One small model (70k 4b events, 2 short flow trainings) is shared by the tests.
The truth of the SR is ``N * P(SR, X_Wt >= 1.5)`` from a 600k-event truth sample
(relative Monte Carlo error 0.4 %).
"""
from __future__ import annotations

import numpy as np
import pytest
from rooml.data import hh4b
from rooml.data._fourvec import delta_phi
from rooml.hh4b import interpolation as interp
from rooml.hh4b.validation import chi2_shape, quantile_edges
from rooml.models.ensembles import FlowEnsemble
from scipy import stats

N_DATA = 70_000
N_TRUTH = 600_000
CONFIG = interp.InterpolationConfig(
    members=2, max_train_events=12_000, epochs=12, hidden=32, layers=4, blocks=1, gp_restarts=0,
    samples_per_replica=15_000, seed=1, lr=4e-3, batch_size=256, patience=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def data():
    """Return the observed 4b events."""
    return hh4b.generate("4b", N_DATA, seed=21)


@pytest.fixture(scope="module")
def model(data):
    """GPs and two flows trained with the SR blinded."""
    return interp.train(data, "SR", config=CONFIG, progress=False)


@pytest.fixture(scope="module")
def prediction(model):
    """Return the SR prediction (two replicas)."""
    return model.predict("SR", seed=3)


@pytest.fixture(scope="module")
def truth_sr():
    """Truth events in the SR after the X_Wt cut."""
    big = hh4b.generate("4b", N_TRUTH, seed=77)
    sel = hh4b.region_mask(big, "SR") & (big["x_wt"] >= interp.X_WT_CUT)
    return big.select(sel)


def test_reconstruction_matches_generator_exactly():
    """Four-vector reconstruction reproduces the generator's derived columns bit for bit."""
    s = hh4b.generate("4b", 3000, seed=4)
    cols = {c: s[c] for c in ("m_h1", "m_h2", *interp.FEATURES, "phi_h1", "phi_h2")}
    out = interp.reconstruct(cols)
    for c in ("m_hh", "pt_hh", "deta_hh", "x_hh"):
        assert np.array_equal(out[c], s[c]), c
    # without the azimuths (as for flow samples) only the rotation-invariant quantities are defined
    del cols["phi_h1"], cols["phi_h2"]
    drawn = interp.reconstruct(cols, rng=1)
    for c in ("m_hh", "pt_hh", "deta_hh"):
        np.testing.assert_allclose(drawn[c], s[c], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(delta_phi(drawn["phi_h1"], drawn["phi_h2"]), s["dphi_hh"], atol=1e-9)


def test_gp_normalization_equals_mass_plane_formula(model):
    """With one replica the yield is the GP formula of MassPlaneGP.sr_normalization."""
    one = interp.InterpolationModel(model.gps, FlowEnsemble([[model.flows.flat_members[0]]], rule="mixture"),
                                    "SR", "pass", CONFIG)  # fmt: skip
    yields = one.yields("SR")
    for year, gp in model.gps.items():
        assert yields[year][0] == pytest.approx(gp.sr_normalization(n_samples=None), rel=1e-3)


def test_sr_yield_within_errors_of_truth(model, prediction, truth_sr):
    """The predicted SR yield is within 3 sigma of N * P(SR, X_Wt cut)."""
    assert prediction.n_replicas == CONFIG.members
    value, spread = prediction.yield_and_error()
    expected = N_DATA * len(truth_sr) / N_TRUTH
    # the GPs' own uncertainty on the blinded yields (scaled by the X_Wt efficiency) and the replicas' spread
    totals, errors = np.array([gp.predicted_yield("SR") for gp in model.gps.values()]).T
    sigma = np.hypot(spread, np.hypot.reduce(errors) * value / totals.sum())
    mc = expected * np.sqrt(1.0 / len(truth_sr))
    pull = (value - expected) / np.hypot(sigma, mc)
    assert abs(pull) < 3.0, (value, expected, spread, sigma)
    assert sigma < 0.05 * expected, (spread, sigma)
    # every event of the prediction is in the SR, passes the X_Wt cut and the preselection
    ev = prediction.events
    assert np.all(hh4b.in_signal_region(ev["m_h1"], ev["m_h2"]))
    assert np.all(ev["x_wt"] >= interp.X_WT_CUT)
    assert np.all(np.abs(ev["eta_h1"] - ev["eta_h2"]) < hh4b.DETA_CUT)
    assert set(np.unique(ev["year"])) == set(hh4b.YEARS)


def test_mhh_shape_agrees_with_truth_and_a_wrong_shape_fails(prediction, truth_sr):
    """The m_HH shape passes a chi2 test against the truth; a 5 % scale shift fails it."""
    edges = quantile_edges(truth_sr["m_hh"], 10)
    scale = N_DATA / N_TRUTH
    truth_counts = np.histogram(truth_sr["m_hh"], edges)[0] * scale
    mean, spread = prediction.histogram("m_hh", edges)
    # the statistical precision of a data set of N_DATA events, plus the prediction's replica spread
    chi2, ndf = chi2_shape(truth_counts, truth_counts, mean, spread**2)
    assert stats.chi2.sf(chi2, ndf) > 0.01, chi2 / ndf
    wrong = prediction.select(np.ones(len(prediction.weights), bool))
    wrong.events = {**wrong.events, "m_hh": 1.05 * wrong.events["m_hh"]}
    mean_w, spread_w = wrong.histogram("m_hh", edges)
    chi2_w, _ = chi2_shape(truth_counts, truth_counts, mean_w, spread_w**2)
    assert stats.chi2.sf(chi2_w, ndf) < 1e-4, chi2_w / ndf


def test_shifted_region_blinding_and_box():
    """Shifted SRs are blinded together with the nominal SR, in a box around both."""
    blind = interp.blind_function("SR_m1_up")
    m1, m2 = np.array([124.0, 149.0, 100.0]), np.array([117.0, 117.0, 200.0])
    assert blind(m1, m2).tolist() == [True, True, False]
    (lo1, hi1), (lo2, hi2) = interp.fit_box("SR_m1_up")
    # the union spans m1 in [124 / 1.16, 149 / 0.84] (X_HH < 1.6 with resolution 0.1 m): 30 GeV on each side
    assert lo1 <= 124 / 1.16 - 30 and 149 / 0.84 + 30 <= hi1 <= hh4b.MASS_RANGE[1]
    assert lo2 <= 117 / 1.16 - 30 and 117 / 0.84 + 30 <= hi2
    with pytest.raises(ValueError, match="unknown region"):
        interp.blind_function("nowhere")


def test_streamed_chunks_give_the_same_histograms(data):
    """Chunked filling equals one pass; the flow subsample stays bounded."""
    one = interp._Accumulator("SR", 10**9, 0)
    one.add(data)
    many = interp._Accumulator("SR", 10**9, 0)
    for start in range(0, len(data), 9000):
        many.add({c: data[c][start : start + 9000] for c in (*interp.CONTEXT, *interp.FEATURES)})
    for year in hh4b.YEARS:
        np.testing.assert_array_equal(one.counts[year], many.counts[year])
        assert one.n_not_blinded[year] == many.n_not_blinded[year]
    assert one.keys.size == many.keys.size
    small = interp._Accumulator("SR", 500, 0)
    for start in range(0, len(data), 9000):
        small.add({c: data[c][start : start + 9000] for c in (*interp.CONTEXT, *interp.FEATURES)})
    assert small.keys.size == 500 and small.rows["m_h1"].size == 500


def test_export_and_roofit_pdf_match_the_flows(model, tmp_path, roofit):
    """The RooFlowPdf of the exported ensemble equals the flows' mixture density."""
    ROOT = roofit
    path = model.export(tmp_path / "flows.onnx")
    with pytest.raises(FileExistsError):
        model.export(path)
    pdf = model.roofit_pdf(path)
    features, context = pdf._rooml_vars
    s = hh4b.generate("4b", 200, seed=8)
    s = s.select(hh4b.region_mask(s, "SR"))  # inside every GP box
    x = np.column_stack([s[c] for c in interp.FEATURES])
    c = np.column_stack([s[k] for k in interp.CONTEXT])
    want = np.exp(model.flows.log_prob(x, c))
    norm = ROOT.RooArgSet(features)
    for i in range(5):
        for j, var in enumerate(features):
            var.setVal(x[i, j])
        for j, var in enumerate(context):
            var.setVal(c[i, j])
        assert pdf.getVal(norm) == pytest.approx(want[i], rel=1e-8)


def test_save_load_round_trip(model, tmp_path):
    """A saved model predicts exactly as the original."""
    out = model.save(tmp_path / "m")
    with pytest.raises(FileExistsError):
        model.save(out)
    back = interp.InterpolationModel.load(out)
    a, b = model.predict("SR", seed=5, n_samples=2000), back.predict("SR", seed=5, n_samples=2000)
    np.testing.assert_allclose(a.weights, b.weights)
    np.testing.assert_allclose(a.events["m_hh"], b.events["m_hh"])


def test_bad_input_is_refused():
    """Missing columns and a bad preselection raise clear errors."""
    with pytest.raises(ValueError, match="lack the columns"):
        interp.train({"m_h1": np.ones(10), "m_h2": np.ones(10), "year": np.ones(10)}, config=CONFIG)
    with pytest.raises(ValueError, match="preselection"):
        interp.train(hh4b.generate("4b", 100, seed=1), preselection="maybe", config=CONFIG)


def test_interpolation_method_is_a_picklable_sample_to_prediction_callable(data):
    """The callable for the mixed-dataset studies trains on the sample it gets and predicts its region."""
    import pickle

    tiny = interp.InterpolationConfig(members=1, max_train_events=1000, epochs=1, hidden=8, layers=1,
                                      blocks=1, gp_restarts=0, samples_per_replica=1000)  # fmt: skip
    method = pickle.loads(pickle.dumps(interp.interpolation_method("SR_m2_up", config=tiny, seed=2)))
    part = data.select(np.arange(len(data)) < 40_000)
    pred = method(part)
    assert pred.region == "SR_m2_up" and pred.n_replicas == 1
    assert np.all(hh4b.region_mask(pred.events, "SR_m2_up"))
    observed = np.sum(hh4b.region_mask(part, "SR_m2_up") & (part["x_wt"] >= interp.X_WT_CUT))
    assert abs(pred.yield_and_error()[0] / observed - 1) < 0.15
