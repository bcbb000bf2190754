"""A flow trained on bbyy sidebands, used in the SR, against the exact truth; its export with real preprocessing."""
from __future__ import annotations

import numpy as np
import pytest
import rooml
from rooml.data import bbyy
from rooml.export import export_flow
from rooml.models import FlowConfig
from rooml.validation import sideband_interpolation


@pytest.fixture(scope="module")
def result():
    config = FlowConfig(features=4, context=1, kind="coupling", layers=4, bins=8, tail_bound=4.0, hidden=32,
                        blocks=2, lu_linear=True, seed=1)
    return sideband_interpolation(40_000, 40_000, epochs=15, config=config, progress=False)


def test_sideband_flow_interpolates_into_the_signal_region(result):
    """Looser than the validation script's 0.05 nats (bigger training there)."""
    res, _ = result
    assert res.test_events > 5000
    assert res.gap < 0.1
    assert res.gap > -3 * res.gap_error  # the truth cannot be beaten beyond statistics
    assert res.gap - res.sideband_gap < 0.05  # little extra loss from interpolating into the SR


def test_core_matches_training_reference_with_log_logit_preprocessing(result, tmp_path):
    _, trained = result
    path = export_flow(trained, tmp_path / "bkg.onnx")
    meta_kinds = [s["kind"] for s in rooml.export.read_metadata(path)["preprocessing"]]
    assert {"log", "logit", "clip", "affine"} <= set(meta_kinds)
    sample = bbyy.generate("background", 5000, seed=77)
    x = np.column_stack([sample[f] for f in bbyy.FEATURES])
    m = sample["m_yy"][:, None]
    np.testing.assert_allclose(rooml.load(path).log_prob(x, m), trained.log_prob(x, m), atol=1e-9)


def test_events_below_the_delta_r_edge_are_outside_the_support(result, tmp_path):
    _, trained = result
    path = export_flow(trained, tmp_path / "bkg.onnx")
    x = np.array([[50.0, 0.5, 0.3, 1.0]])  # dr_bb below 0.4
    with pytest.raises(ValueError, match="'dr_bb'.*outside the flow's support"):
        rooml.load(path).log_prob(x, np.array([[125.0]]))
