"""The compiled core against nflows (float64) and onnxruntime (float32), on every supported flow kind."""
from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
import rooml
import torch
from flow_factory import VARIANTS, random_flow, variant_id
from rooml.export import export_flow


def _inputs(n, features, context, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)) * 1.3
    x[:5] *= 3.0  # a few events in the linear tails
    c = rng.normal(size=(n, context)) if context else None
    return x, c


def _nflows_log_prob64(flow, x, c):
    flow64 = copy.deepcopy(flow).double().eval()
    with torch.no_grad():
        ctx = torch.as_tensor(c) if c is not None else None
        return flow64.log_prob(torch.as_tensor(x), context=ctx).numpy()


@pytest.fixture(scope="module", params=VARIANTS, ids=variant_id)
def exported(request, tmp_path_factory):
    v = request.param
    flow = random_flow(v["kind"], features=3, context=v["context"], lu=v["lu"], batch_norm=v["batch_norm"],
                       conditioner_bn=v["conditioner_bn"])
    path = export_flow(flow, tmp_path_factory.mktemp("flows") / "flow.onnx",
                       reference_inputs=_inputs(256, 3, v["context"], seed=3))
    return flow, path, v


def test_core_matches_nflows_float64(exported):
    flow, path, v = exported
    x, c = _inputs(3000, 3, v["context"])
    got = rooml.load(path).log_prob(x, c)
    want = _nflows_log_prob64(flow, x, c)
    assert got.dtype == np.float64 and got.shape == (3000,)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_core_matches_onnxruntime(exported):
    flow, path, v = exported
    x, c = _inputs(2000, 3, v["context"], seed=8)
    feeds = {"x": x}
    if c is not None:
        feeds["context"] = c
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = session.run(["log_prob"], feeds)[0]
    assert reference.dtype == np.float64  # float64 in and out; the network inside runs in float32
    np.testing.assert_allclose(rooml.load(path).log_prob(x, c), reference, rtol=0, atol=1e-4)


def test_results_independent_of_thread_count(exported):
    _, path, v = exported
    x, c = _inputs(2500, 3, v["context"], seed=9)  # not a multiple of the block size
    model = rooml.load(path)
    one = model.log_prob(x, c, threads=1)
    for threads in (2, 3, 7):
        np.testing.assert_array_equal(model.log_prob(x, c, threads=threads), one)


def test_sampling_inverts_the_flow(exported):
    """Samples mapped back through nflows' forward transform are standard normal."""
    flow, path, v = exported
    model = rooml.load(path)
    n = 4000
    _, c = _inputs(n, 3, v["context"], seed=10)
    x = model.sample(n, c, seed=5)
    np.testing.assert_array_equal(x, model.sample(n, c, seed=5, threads=1))
    assert not np.array_equal(x, model.sample(n, c, seed=6))
    flow64 = copy.deepcopy(flow).double().eval()
    with torch.no_grad():
        z, _ = flow64._transform(torch.as_tensor(x), context=torch.as_tensor(c) if c is not None else None)
    z = z.numpy()
    assert np.all(np.abs(z.mean(axis=0)) < 5 / np.sqrt(n))
    assert np.all(np.abs(z.std(axis=0) - 1) < 0.05)


def test_sample_round_trip_through_nflows_inverse(exported):
    """The core's inverse equals nflows' inverse: log_prob of core samples matches nflows log_prob."""
    flow, path, v = exported
    model = rooml.load(path)
    _, c = _inputs(500, 3, v["context"], seed=11)
    x = model.sample(500, c, seed=1)
    np.testing.assert_allclose(model.log_prob(x, c), _nflows_log_prob64(flow, x, c), atol=1e-9)


def test_autoregressive_without_residual_blocks(tmp_path):
    flow = random_flow("autoregressive", features=4, context=1, residual=False)
    x, c = _inputs(1000, 4, 1)
    path = export_flow(flow, tmp_path / "ff.onnx", reference_inputs=(x, c))
    np.testing.assert_allclose(rooml.load(path).log_prob(x, c), _nflows_log_prob64(flow, x, c), atol=1e-9)


def test_one_dimensional_autoregressive_flow(tmp_path):
    flow = random_flow("autoregressive", features=1, context=0)
    x, _ = _inputs(1000, 1, 0)
    path = export_flow(flow, tmp_path / "one.onnx", reference_inputs=(x, None))
    np.testing.assert_allclose(rooml.load(path).log_prob(x), _nflows_log_prob64(flow, x, None), atol=1e-9)
