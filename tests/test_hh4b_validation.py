"""The HH -> 4b validation tables on constructed predictions, and the ``rooml hh4b`` command end to end."""
from __future__ import annotations

import math

import numpy as np
import pytest
from rooml.cli import main
from rooml.data import Sample, hh4b
from rooml.hh4b import validation as V
from rooml.hh4b.prediction import Prediction


def _prediction(events, weights, replica, method="test"):
    return Prediction(method, "SR", events, np.asarray(weights, float), np.asarray(replica))


def test_yield_row_numbers():
    """1 - pred/obs, pred/true - 1 and the pull follow from the replica yields."""
    pred = _prediction({"x": np.zeros(4)}, [50.0, 50.0, 60.0, 50.0], [0, 0, 1, 1])  # replicas: 100, 110
    truth = V.TruthExpectation(100.0, 1.0, Sample({"x": np.zeros(1)}))
    row = V.yield_row(100.0, truth, {"a": pred})
    e = row["a"]
    assert e["yield"] == pytest.approx(105.0)
    assert e["error"] == pytest.approx(math.sqrt(50.0))
    assert e["obs_diff_pct"] == pytest.approx(-5.0)
    assert e["truth_diff_pct"] == pytest.approx(5.0)
    assert e["truth_pull"] == pytest.approx(5.0 / math.sqrt(51.0))
    assert row["truth"] == 100.0 and row["truth_error"] == 1.0


def test_chi2_shape_by_hand():
    """Normalized and absolute chi2 equal the explicit sums."""
    obs, var = np.array([10.0, 20.0, 30.0]), np.array([10.0, 20.0, 30.0])
    ref, rvar = np.array([2.0, 5.0, 5.0]), np.array([0.5, 0.0, 1.0])
    s = 60.0 / 12.0
    want = sum((o - s * r) ** 2 / (v + s * s * rv) for o, v, r, rv in zip(obs, var, ref, rvar))
    chi2, ndf = V.chi2_shape(obs, var, ref, rvar)
    assert chi2 == pytest.approx(want) and ndf == 2
    chi2, ndf = V.chi2_shape(obs, var, ref, rvar, normalize=False)
    assert chi2 == pytest.approx(sum((o - r) ** 2 / (v + rv) for o, v, r, rv in zip(obs, var, ref, rvar)))
    assert ndf == 3
    # bins without any error are left out
    assert V.chi2_shape(np.array([0.0, 5.0]), np.array([0.0, 5.0]), np.array([0.0, 5.0]), np.zeros(2))[1] == 0


def test_quantile_edges_and_categories():
    """Equal-population edges with infinite ends; the category index is the flat cell index."""
    edges = V.quantile_edges(np.arange(100.0), 4)
    assert edges[0] == -np.inf and edges[-1] == np.inf and len(edges) == 5
    assert np.histogram(np.arange(100.0), edges)[0].tolist() == [25, 25, 25, 25]
    ev = {"m_hh": np.array([300.0, 500.0]), "deta_hh": np.array([-0.2, 1.2]),
          "m_h1": np.array([124.0, 150.0]), "m_h2": np.array([117.0, 140.0])}  # fmt: skip
    cat_edges = [np.array([-np.inf, 400.0, np.inf]), np.array([-np.inf, 0.5, 1.0, np.inf]),
                 np.array([-np.inf, 1.0, np.inf])]  # fmt: skip
    out = V.add_category(ev, cat_edges, (124.0, 117.0))
    # event 0: m bin 0, |deta| bin 0, X_HH = 0 -> bin 0; event 1: 1, 2, X_HH > 1 -> 1*6 + 2*2 + 1
    assert out["category"].tolist() == [0.0, 11.0]


@pytest.fixture(scope="module")
def data():
    """Small observed samples and truth expectations."""
    return V.ValidationData(40_000, seed=2, truth_events=400_000)


def test_truth_expectation_agrees_with_observed_and_is_reproducible(data):
    """N * P(region) from the truth sample matches the observed count within Poisson errors."""
    for name in ("SR", "SR_m2_down", "3b", "reversed_deta"):
        region = V.VALIDATION_REGIONS[name]
        truth = data.truth(region)
        observed = len(data.observed(region))
        assert truth.events.weight.sum() == pytest.approx(truth.expected)
        assert abs(observed - truth.expected) < 4 * math.sqrt(truth.expected), name
        assert 0 < truth.error < 0.02 * truth.expected
    assert np.array_equal(data.dataset("3b")["m_hh"], V.ValidationData(40_000, seed=2).dataset("3b")["m_hh"])
    assert np.all(np.abs(data.observed(V.VALIDATION_REGIONS["reversed_deta"])["deta_hh"]) >= hh4b.DETA_CUT)


def _oracle(region, data):
    """Predict perfectly: the truth events of the region, split into two replicas of the full yield."""
    truth = data.truth(region)
    n = len(truth.events)
    replica = np.arange(n) % 2
    return Prediction("oracle", region.name, truth.events.columns, 2.0 * truth.events.weight, replica)


def _observed_copy(region, data):
    """Return the observed events themselves (two identical replicas): every chi2 against data is zero."""
    obs = data.observed(region)
    events = {k: np.tile(v, 2) for k, v in obs.columns.items()}
    return Prediction("copy", region.name, events, np.tile(obs.weight, 2), np.repeat([0, 1], len(obs)))


def test_run_validation_with_plugged_in_methods(data, tmp_path):
    """Tables and plots for two methods given as callables; their numbers are what they must be."""
    results = V.run_validation({"oracle": _oracle, "copy": _observed_copy}, data, ["SR", "3b"], n_bins=8,
                               plot_dir=tmp_path, progress=False)  # fmt: skip
    for name, res in results.items():
        y = res.yields
        assert y["copy"]["obs_diff_pct"] == pytest.approx(0.0, abs=1e-9)
        assert y["copy"]["error"] == 0.0
        assert abs(y["oracle"]["truth_diff_pct"]) < 1e-9 + 100 * 4 * y["oracle"]["error"] / y["truth"]
        for column, entry in res.chi2["copy"].items():
            assert entry["obs"] == pytest.approx(0.0, abs=1e-12), column
        # the oracle is the truth: chi2 against data at the statistical level
        assert res.chi2["oracle"]["m_hh"]["obs_stat"] < 3.0
        assert res.chi2["oracle"]["m_hh"]["truth"] < 1e-9  # same events as the truth sample
        assert (tmp_path / f"mhh_{name}.png").stat().st_size > 10_000
    table = V.format_yield_table(results)
    assert "| SR |" in table and "| 3b |" in table and "+0.00" in table
    chi2 = V.format_chi2_table(results)
    assert chi2.count("\n") == 1 + 2 * 2 and "category" in chi2
    with pytest.raises(ValueError, match="unknown validation regions"):
        V.run_validation({"copy": _observed_copy}, data, ["nowhere"], progress=False)


def test_cli_end_to_end(tmp_path, capsys):
    """``rooml hh4b data | train | predict | validate`` on tiny sizes, refusing to overwrite."""
    root = tmp_path / "hh4b.root"
    assert main(["hh4b", "data", "-n", "30000", "-o", str(root), "--chunk-size", "7000", "-q"]) == 0
    assert main(["hh4b", "data", "-n", "10", "-o", str(root), "-q"]) == 2  # exists
    from rooml.data.io import read_root

    back = read_root(root, "4b")
    assert len(back) == 30000
    first = hh4b.generate("4b", 7000, np.random.default_rng([0, 0]))  # the first chunk of process 0
    assert np.array_equal(back["m_hh"][:7000], first["m_hh"])
    tiny = ["--members", "1", "--epochs", "1", "--max-train-events", "3000", "--samples", "3000",
            "--gp-restarts", "0"]
    model = tmp_path / "model"
    assert main(["hh4b", "train", str(root), "-o", str(model), "--chunk-size", "8000", "-q", *tiny]) == 0
    pred = tmp_path / "sr.root"
    assert main(["hh4b", "predict", str(model), "-o", str(pred), "--export", str(tmp_path / "f.onnx")]) == 0
    out = capsys.readouterr().out
    assert "SR: predicted" in out
    p = read_root(pred, "prediction")
    assert np.all(hh4b.in_signal_region(p["m_h1"], p["m_h2"])) and (tmp_path / "f.onnx").stat().st_size > 0
    vdir = tmp_path / "val"
    args = ["hh4b", "validate", "-o", str(vdir), "-n", "20000", "--truth-events", "60000", "--regions", "SR",
            "--methods", "gp+flow", "--bins", "5", "-q", *tiny]  # fmt: skip
    assert main(args) == 0
    text = (vdir / "tables.md").read_text()
    assert "| SR |" in text and "chi2/(bins-1)" in text
    assert (vdir / "mhh_SR.png").exists()
    assert main(args) == 2  # tables.md exists: refused without --force
