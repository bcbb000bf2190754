"""The HI-SIGMA RooFit model: its likelihood equals the formula, and a fit recovers injected signal."""
from __future__ import annotations

import numpy as np
import pytest
import rooml
from rooml.data import bbyy
from rooml.export import export_flow
from rooml.models import FlowConfig, train_flow
from rooml.validation import bbyy_feature_preprocessing
from rooml.validation.bbyy_sideband import DR_RANGE


def _xm(sample):
    return np.column_stack([sample[f] for f in bbyy.FEATURES]), sample["m_yy"][:, None]


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    out = tmp_path_factory.mktemp("hisigma")
    paths = {}
    for i, process in enumerate(("signal", "background")):
        sample = bbyy.generate(process, 30_000, seed=20 + i)
        x, m = _xm(sample)
        config = FlowConfig(features=4, context=1, layers=3, bins=8, hidden=32, seed=i)
        support = [(0.0, np.inf), (0.0, np.inf), DR_RANGE, DR_RANGE]
        trained = train_flow(config, x, m, preprocessing=bbyy_feature_preprocessing(x), features=list(bbyy.FEATURES),
                             context_names=["m_yy"], support=support, epochs=6, progress=False, seed=i)
        paths[process] = export_flow(trained, out / f"{process}.onnx")
    return paths


def test_likelihood_equals_the_formula(flows, roofit):
    from rooml.data.io import to_roodataset
    from rooml.roofit.hisigma import hisigma_model

    ROOT = roofit
    h = hisigma_model(flows["signal"], flows["background"], s_expected=150.0, n_bkg_start=3000.0)
    mock = bbyy.make_mock(n_bkg=3000, n_sig=150, seed=5)
    data = to_roodataset(mock, h.observables())
    h.mu.setVal(1.3)
    h.n_bkg.setVal(2900.0)
    nll = h.model.createNLL(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.Extended(True)).getVal()
    x, m = _xm(mock)
    s, b = 1.3 * 150.0, 2900.0
    log_fs = bbyy.truth.log_prob_m(m[:, 0], "signal") + rooml.load(flows["signal"]).log_prob(x, m)
    log_fb = bbyy.truth.log_prob_m(m[:, 0], "background") + rooml.load(flows["background"]).log_prob(x, m)
    want = (s + b) - np.sum(np.logaddexp(np.log(s) + log_fs, np.log(b) + log_fb))
    assert nll == pytest.approx(want, rel=1e-8)


def test_fit_recovers_injected_signal(flows, roofit):
    from rooml.data.io import to_roodataset
    from rooml.infer import fit
    from rooml.roofit.hisigma import hisigma_model

    h = hisigma_model(flows["signal"], flows["background"], s_expected=200.0, n_bkg_start=5000.0)
    mock = bbyy.make_mock(n_bkg=5000, n_sig=200, seed=9)
    result = fit(h.model, to_roodataset(mock, h.observables()), extended=True)
    assert result.status == 0
    assert abs(result["mu"].value - 1.0) < 3 * result["mu"].error
    assert result["n_bkg"].value == pytest.approx(5000, abs=4 * result["n_bkg"].error)
    assert result["p1"].value == pytest.approx(bbyy.truth.p1, abs=4 * result["p1"].error)
