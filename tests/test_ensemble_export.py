"""Ensembles and bootstraps of flows: one ONNX file, native combination, bootstrap selection in RooFit."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import rooml
from rooml.export import export_ensemble
from rooml.models import FlowConfig, train_flow


@pytest.fixture(scope="module")
def grid():
    """2 bootstraps x 2 seeds of tiny conditional flows (trained for a couple of epochs)."""
    rng = np.random.default_rng(3)
    m = rng.uniform(-1, 1, size=(4000, 1))
    x = rng.normal(size=(4000, 2)) * [1.0, 0.5] + m
    rows = []
    for d in range(2):
        idx = rng.integers(0, len(x), len(x))
        rows.append([
            train_flow(FlowConfig(features=2, context=1, layers=2, hidden=16, bins=6, seed=10 * d + k),
                       x[idx], m[idx], features=["a", "b"], context_names=["m"], epochs=2, progress=False,
                       seed=10 * d + k)
            for k in range(2)
        ])
    return rows


def _ensemble(grid, rule):
    return SimpleNamespace(members=grid, rule=rule, features=["a", "b"], context_names=["m"])


@pytest.fixture(scope="module", params=["mean_log_prob", "mixture"])
def exported(request, grid, tmp_path_factory):
    path = tmp_path_factory.mktemp("ens") / f"{request.param}.onnx"
    return export_ensemble(_ensemble(grid, request.param), path), request.param


def _inputs(n=700, seed=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) * 0.6, rng.uniform(-1, 1, size=(n, 1))


def _reference(grid, rule, x, c, bootstrap=None):
    rows = grid if bootstrap is None else [grid[bootstrap]]
    lps = np.stack([f.log_prob(x, c) for row in rows for f in row], axis=1)
    if rule == "mean_log_prob":
        return lps.mean(axis=1)
    return np.logaddexp.reduce(lps, axis=1) - np.log(lps.shape[1])


def test_core_combines_members_as_the_rule_says(exported, grid):
    path, rule = exported
    model = rooml.load(path)
    assert (model.n_members, model.n_bootstraps, model.members_per_bootstrap, model.rule) == (4, 2, 2, rule)
    x, c = _inputs()
    np.testing.assert_allclose(model.log_prob(x, c), _reference(grid, rule, x, c), atol=1e-9)
    for d in range(2):
        np.testing.assert_allclose(model.log_prob(x, c, bootstrap=d), _reference(grid, rule, x, c, d), atol=1e-9)
    members = model.member_log_prob(x, c)
    assert members.shape == (len(x), 4)
    np.testing.assert_allclose(members[:, 3], grid[1][1].log_prob(x, c), atol=1e-9)


def test_onnxruntime_gives_the_same_combination(exported):
    path, _ = exported
    x, c = _inputs(300, seed=6)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    combined, members = session.run(["log_prob", "member_log_prob"],
                                    {"x": x, "context": c})
    core = rooml.load(path)
    np.testing.assert_allclose(combined, core.log_prob(x, c), atol=1e-3)
    np.testing.assert_allclose(members, core.member_log_prob(x, c), atol=1e-3)


def test_sampling_follows_the_rule(exported):
    path, rule = exported
    model = rooml.load(path)
    _, c = _inputs(2000, seed=7)
    if rule == "mean_log_prob":
        with pytest.raises(ValueError, match="geometric mean"):
            model.sample(2000, c, seed=1)
        with pytest.raises(ValueError, match="geometric mean"):
            model.sample(2000, c, seed=1, bootstrap=0)  # bootstrap 0 alone still averages two seeds
    else:
        s = model.sample(2000, c, seed=1)
        np.testing.assert_array_equal(s, model.sample(2000, c, seed=1, threads=1))
        # each event comes from one member: about half of the events from each bootstrap's pair
        members = model.member_log_prob(s, c)
        assert np.isfinite(members).all()
        single = rooml.load(path).sample(2000, c, seed=1, bootstrap=0)
        assert single.shape == (2000, 2) and not np.array_equal(single, s)


def test_bad_bootstrap_index(exported):
    path, _ = exported
    with pytest.raises(ValueError, match="bootstrap index 2 out of range"):
        rooml.load(path).log_prob(*_inputs(5), bootstrap=2)


def test_ragged_ensembles_are_refused(grid, tmp_path):
    with pytest.raises(ValueError, match="same number of members"):
        export_ensemble(SimpleNamespace(members=[grid[0], grid[1][:1]], rule="mixture", features=["a", "b"],
                                        context_names=["m"]), tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match="unknown ensemble rule"):
        export_ensemble(_ensemble(grid, "median"), tmp_path / "bad.onnx")


def test_roofit_bootstrap_selection(exported, grid):
    from rooml.roofit import load_library

    ROOT = load_library()
    path, rule = exported
    a, b = ROOT.RooRealVar("a", "a", 0.2, -10, 10), ROOT.RooRealVar("b", "b", -0.1, -10, 10)
    m = ROOT.RooRealVar("m", "m", 0.3, -1, 1)
    pdf = ROOT.RooFlowPdf("ens", "ens", ROOT.RooArgList(a, b), ROOT.RooArgList(m), str(path))
    assert pdf.nBootstraps() == 2
    norm = ROOT.RooArgSet(a, b)
    x, c = np.array([[0.2, -0.1]]), np.array([[0.3]])
    assert pdf.getVal(norm) == pytest.approx(np.exp(_reference(grid, rule, x, c)[0]), rel=1e-9)
    pdf.setBootstrap(1)
    assert pdf.getVal(norm) == pytest.approx(np.exp(_reference(grid, rule, x, c, 1)[0]), rel=1e-9)
    with pytest.raises(Exception):
        pdf.setBootstrap(5)
