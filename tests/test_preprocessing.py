"""Preprocessing chains: formulas, Jacobians, numpy/torch agreement, serialization, errors."""
from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
import rooml.models.preprocessing as preprocessing_module
import torch
from rooml.models import RECIPES, Preprocessing, build_preprocessing, register_recipe, smear

NAMES = ["pt", "dphi", "frac", "eta"]


def _data(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.exponential(40.0, n) + 20.0,  # pt > 0 -> log
            rng.uniform(0.1, 3.1, n),  # dphi < pi -> log(pi - x)
            rng.uniform(0.01, 0.99, n),  # fraction -> clip + logit
            rng.normal(0.0, 1.2, n),  # eta -> affine only
        ],
        axis=1,
    )


def _chain() -> Preprocessing:
    steps = [
        {"kind": "log", "features": [0, 1], "a": [1.0, -1.0], "b": [0.0, math.pi]},
        {"kind": "clip", "features": [2], "low": [1e-6], "high": [1 - 1e-6]},
        {"kind": "logit", "features": [2]},
        {
            "kind": "affine",
            "features": [0, 1, 2, 3],
            "shift": [3.5, 0.2, 0.0, 0.1],
            "scale": [0.8, -1.3, 1.7, 1.1],
        },
    ]
    return Preprocessing(steps, NAMES)


def test_round_trip():
    pre, x = _chain(), _data()
    y, _ = pre.forward_numpy(x)
    np.testing.assert_allclose(pre.inverse_numpy(y), x, rtol=1e-12, atol=1e-12)


def test_formulas_match_the_contract():
    pre, x = _chain(), _data(5)
    y, logdet = pre.forward_numpy(x)
    l0, l1 = np.log(x[:, 0]), np.log(math.pi - x[:, 1])
    lg = np.log(x[:, 2]) - np.log1p(-x[:, 2])
    expected = (np.stack([l0, l1, lg, x[:, 3]], 1) - [3.5, 0.2, 0.0, 0.1]) / [0.8, -1.3, 1.7, 1.1]
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-14)
    ld = -l0 - l1 - np.log(x[:, 2]) - np.log1p(-x[:, 2]) - np.log([0.8, 1.3, 1.7, 1.1]).sum()
    np.testing.assert_allclose(logdet, ld, rtol=1e-13)


def test_logdet_matches_autograd_and_finite_differences():
    pre, x = _chain(), _data(6)
    _, logdet = pre.forward_numpy(x)
    for xi, ld in zip(torch.from_numpy(x), logdet):
        jac = torch.autograd.functional.jacobian(lambda v: pre.forward_torch(v[None])[0][0], xi)
        assert np.count_nonzero(jac.numpy() - np.diag(np.diag(jac.numpy()))) == 0  # elementwise
        assert float(torch.linalg.slogdet(jac)[1]) == pytest.approx(ld, abs=1e-12)
    h = 1e-6
    diag = np.empty_like(x)
    for j in range(x.shape[1]):
        up, down = x.copy(), x.copy()
        up[:, j] += h
        down[:, j] -= h
        diag[:, j] = (pre.forward_numpy(up)[0][:, j] - pre.forward_numpy(down)[0][:, j]) / (2 * h)
    np.testing.assert_allclose(np.log(np.abs(diag)).sum(1), logdet, atol=1e-6)


def test_numpy_and_torch_agree_and_torch_keeps_dtype():
    pre, x = _chain(), _data()
    y, ld = pre.forward_numpy(x)
    yt, ldt = pre.forward_torch(torch.from_numpy(x))
    assert yt.dtype == torch.float64
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ldt.numpy(), ld, rtol=1e-12, atol=1e-12)
    y32, _ = pre.forward_torch(torch.from_numpy(x).float())
    assert y32.dtype == torch.float32


def test_clip_saturates_with_zero_logdet():
    pre = Preprocessing([{"kind": "clip", "features": [0], "low": [0.0], "high": [1.0]}])
    y, ld = pre.forward_numpy(np.array([[-1.0, 5.0], [0.5, 5.0], [2.0, 5.0]]))
    assert y[:, 0].tolist() == [0.0, 0.5, 1.0] and y[:, 1].tolist() == [5.0] * 3
    assert ld.tolist() == [0.0] * 3


def test_serialization_round_trip():
    pre = _chain()
    steps = pre.to_list()
    assert json.loads(json.dumps(steps)) == steps
    assert all(type(v) is float for s in steps for k in s if k not in ("kind", "features") for v in s[k])
    assert Preprocessing.from_list(steps) == pre
    x = _data()
    again = Preprocessing.from_list(json.loads(json.dumps(steps)))
    assert np.array_equal(again.forward_numpy(x)[0], pre.forward_numpy(x)[0])
    steps[0]["a"][0] = 7.0  # to_list returns a copy
    assert pre.steps[0]["a"][0] == 1.0


def test_domain_errors_name_feature_kind_and_count():
    pre, x = _chain(), _data(20)
    x[[1, 4, 9], 0] = -1.0
    with pytest.raises(ValueError, match=r"'log' on feature 0 \('pt'\): 3 of 20 events"):
        pre.forward_numpy(x)
    with pytest.raises(ValueError, match=r"'log' on feature 0 \('pt'\): 3 of 20 events"):
        pre.forward_torch(torch.from_numpy(x))
    x = _data(20)
    x[0, 1] = 4.0  # pi - x < 0
    with pytest.raises(ValueError, match=r"'log' on feature 1 \('dphi'\): 1 of 20"):
        pre.forward_numpy(x)
    logit = Preprocessing([{"kind": "logit", "features": [1]}])
    with pytest.raises(ValueError, match=r"'logit' on feature 1: 2 of 3 events .*0 < x < 1"):
        logit.forward_numpy(np.array([[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]]))


@pytest.mark.parametrize(
    "step, message",
    [
        ({"kind": "sqrt", "features": [0]}, "unknown kind"),
        ({"kind": "affine", "features": [0, 1], "shift": [0.0], "scale": [1.0, 1.0]}, "has 1 values"),
        ({"kind": "affine", "features": [0], "shift": [0.0], "scale": [0.0]}, "non-zero"),
        ({"kind": "log", "features": [0], "a": [0.0], "b": [1.0]}, "non-zero"),
        ({"kind": "clip", "features": [0], "low": [1.0], "high": [0.0]}, "below"),
        ({"kind": "logit", "features": []}, "no features"),
        ({"kind": "logit", "features": [0], "scale": [1.0]}, "unknown keys"),
    ],
)
def test_invalid_steps(step, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing([step])


def test_feature_index_out_of_range():
    with pytest.raises(ValueError, match="index 3 but the data has 2 features"):
        Preprocessing([{"kind": "logit", "features": [3]}]).forward_numpy(np.full((2, 2), 0.5))


def test_builders():
    x = _data(500)
    y, ld = Preprocessing.standardize(x).forward_numpy(x)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(0), 1.0, rtol=1e-12)
    assert np.allclose(ld, -np.log(x.std(0)).sum())
    with pytest.raises(ValueError, match=r"feature 1 \('b'\).*standard deviation is 0"):
        Preprocessing.standardize(np.c_[x[:, 0], np.ones(500)], feature_names=["a", "b"])
    u, _ = Preprocessing.unit_interval(x).forward_numpy(x)
    assert u.min() > 0 and u.max() < 1
    u, _ = Preprocessing.unit_interval(x[:, 1:2], 0.0, math.pi).forward_numpy(x[:, 1:2])
    np.testing.assert_allclose(u[:, 0], x[:, 1] / math.pi)


def test_build_preprocessing_from_recipes():
    x = _data(500)
    spec = {"pt": "log", "dphi": "log_pi_minus", 2: "clip_logit", "eta": "identity"}
    pre = build_preprocessing(x, spec, features=NAMES)
    assert [s["kind"] for s in pre.to_list()] == ["log", "log", "clip", "logit", "affine"]
    y, _ = pre.forward_numpy(x)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-12)
    log_pt = np.log(x[:, 0])
    np.testing.assert_allclose(y[:, 0], (log_pt - log_pt.mean()) / log_pt.std(), rtol=1e-12)
    np.testing.assert_allclose(pre.inverse_numpy(y), x, rtol=1e-10)
    assert len(build_preprocessing(x, {"pt": "log"}, features=NAMES, standardize=False)) == 1
    bounded = build_preprocessing(x, {"eta": "bounded_logit"}, features=NAMES)
    np.testing.assert_allclose(bounded.inverse_numpy(bounded.forward_numpy(x)[0]), x, rtol=1e-10)
    with pytest.raises(ValueError, match="unknown feature 'mjj'"):
        build_preprocessing(x, {"mjj": "log"}, features=NAMES)
    with pytest.raises(ValueError, match="unknown recipe 'sqrt'"):
        build_preprocessing(x, {"pt": "sqrt"}, features=NAMES)


def test_register_recipe():
    name = "test_log10"
    if name not in RECIPES:
        def recipe(cols, f):
            return [{"kind": "log", "features": f, "a": [10.0] * len(f), "b": [0.0] * len(f)}]

        register_recipe(name, recipe)
    with pytest.raises(ValueError, match="already exists"):
        register_recipe(name, RECIPES[name])
    pre = build_preprocessing(_data(), {0: name}, standardize=False)
    assert pre.to_list()[0]["a"] == [10.0]


def test_domain():
    pre = _chain()
    (lo0, hi0), (lo1, hi1), (lo2, hi2), (lo3, hi3) = pre.domain(4)
    assert (lo0, hi0) == (0.0, math.inf)
    assert lo1 == -math.inf and hi1 == pytest.approx(math.pi)
    assert (lo2, hi2) == (-math.inf, math.inf)  # clip guards the logit
    assert (lo3, hi3) == (-math.inf, math.inf)
    x = _data(500)
    bounded = build_preprocessing(x, {"eta": "bounded_logit"}, features=NAMES)
    lo, hi = bounded.domain(4)[3]
    assert lo < x[:, 3].min() and hi > x[:, 3].max() and math.isfinite(lo) and math.isfinite(hi)


def test_smear_reuses_its_widths():
    x = _data(1000)
    xs, sigma = smear(x, 0.1, np.random.default_rng(0))
    np.testing.assert_allclose(sigma, 0.1 * x.std(0))
    np.testing.assert_allclose((xs - x).std(0), sigma, rtol=0.1)
    other = _data(300, seed=1)
    os_, sigma2 = smear(other, 0.5, np.random.default_rng(1), sigma=sigma)
    assert np.array_equal(sigma2, sigma)
    again, _ = smear(other, 0.5, np.random.default_rng(1), sigma=sigma)
    assert np.array_equal(os_, again)


def test_docstring_examples():
    failures, attempted = doctest.testmod(preprocessing_module, optionflags=doctest.ELLIPSIS)
    assert failures == 0 and attempted >= 4
