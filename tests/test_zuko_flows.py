"""zuko flows (NSF, MAF; conditional or not): exported, equal to zuko's float64 log_prob, sampled exactly."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import rooml
import torch
import zuko
from rooml.export import UnsupportedModelError, export_flow
from test_foreign_flows import _assert_standard_normal, _inputs
from torch import nn


def _zuko_perturbed(flow, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in flow.named_parameters():
            p.add_(0.3 * torch.randn_like(p))
    return flow.eval()


def _zuko64(flow, x, c):
    flow64 = copy.deepcopy(flow).double()
    with torch.no_grad():
        return flow64(None if c is None else torch.as_tensor(c)).log_prob(torch.as_tensor(x)).numpy()


ZUKO_FLOWS = [
    ("NSF", 3, 0, dict(transforms=3, hidden_features=(16, 16))),
    ("NSF", 3, 2, dict(transforms=2, hidden_features=(16,), bins=6)),
    ("MAF", 3, 0, dict(transforms=3, hidden_features=(16, 16))),
    ("MAF", 4, 1, dict(transforms=2, hidden_features=(12, 12), activation=nn.ELU)),
    ("NSF", 2, 1, dict(transforms=2, hidden_features=(8, 8), randperm=True, activation=nn.SiLU)),
]


@pytest.mark.parametrize(("kind", "features", "context", "kwargs"), ZUKO_FLOWS,
                         ids=[f"{k}-d{f}-c{c}" for k, f, c, _ in ZUKO_FLOWS])
def test_zuko_flow_matches_zuko_and_samples_exactly(tmp_path, kind, features, context, kwargs):
    torch.manual_seed(1)
    flow = _zuko_perturbed(getattr(zuko.flows, kind)(features, context, **kwargs))
    path = export_flow(flow, tmp_path / "zuko.onnx")
    model = rooml.load(path)
    x, c = _inputs(2000, features, context)
    x[:5] *= 2.0  # beyond the spline bound
    # 1e-9 absolute; far-tail events with |log p| in the thousands to 1e-12 relative
    np.testing.assert_allclose(model.log_prob(x, c), _zuko64(flow, x, c), rtol=1e-12, atol=1e-9)
    n = 3000
    _, cs = _inputs(n, features, context, seed=12)
    samples = model.sample(n, cs, seed=4)
    flow64 = copy.deepcopy(flow).double()
    with torch.no_grad():
        dist = flow64(None if cs is None else torch.as_tensor(cs))
        z = dist.transform(torch.as_tensor(samples)).numpy()
    _assert_standard_normal(z)


def test_zuko_unsupported_transform_is_named(tmp_path):
    flow = zuko.flows.NAF(2, transforms=1, hidden_features=(8,))
    with pytest.raises(UnsupportedModelError, match="univariate transform MNN is not supported"):
        export_flow(flow, tmp_path / "f.onnx")


def test_zuko_one_feature_flow_is_refused_by_name(tmp_path):
    flow = zuko.flows.MAF(1, transforms=1, hidden_features=(8,))
    with pytest.raises(UnsupportedModelError, match="ElementWiseTransform"):
        export_flow(flow, tmp_path / "f.onnx")


def test_zuko_residual_conditioner_is_refused_by_name(tmp_path):
    flow = zuko.flows.NSF(3, transforms=1, hidden_features=(8, 8), residual=True)
    with pytest.raises(UnsupportedModelError, match="residual=True"):
        export_flow(flow, tmp_path / "f.onnx")
