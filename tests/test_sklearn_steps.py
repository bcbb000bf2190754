"""Fitted scikit-learn preprocessing translated exactly into rooml's steps, and used by exported flows."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import rooml
import torch
from flow_factory import random_flow
from rooml.export import UnsupportedModelError, export_flow
from rooml.export.sklearn_steps import steps_from_sklearn
from rooml.models.preprocessing import Preprocessing
from scipy import special, stats
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)


def _data(n=500, seed=0):
    """Three features: positive and skewed, in (0, 1), and real-valued with both signs."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.lognormal(0.5, 0.6, n), rng.beta(2, 5, n), rng.normal(0.5, 2.0, n) ** 3 / 4])


def _fd_logdet(transform, x, h=1e-6):
    """log|det J| of an element-wise sklearn transform by central differences (independent of rooml)."""
    total = np.zeros(len(x))
    for j in range(x.shape[1]):
        step = h * np.maximum(1.0, np.abs(x[:, j]))
        up, down = x.copy(), x.copy()
        up[:, j] += step
        down[:, j] -= step
        deriv = (transform(up)[:, j] - transform(down)[:, j]) / (2 * step)
        total += np.log(np.abs(deriv))
    return total


TRANSFORMERS = {
    "standard": lambda: StandardScaler(),
    "standard_no_mean": lambda: StandardScaler(with_mean=False),
    "minmax": lambda: MinMaxScaler(feature_range=(-1, 2)),
    "maxabs": lambda: MaxAbsScaler(),
    "robust": lambda: RobustScaler(quantile_range=(10, 90)),
    "yeo_johnson": lambda: PowerTransformer(method="yeo-johnson"),
    "yeo_johnson_raw": lambda: PowerTransformer(method="yeo-johnson", standardize=False),
    "box_cox": lambda: ColumnTransformer([("bc", PowerTransformer(method="box-cox"), [0, 1])],
                                         remainder="passthrough"),
    "box_cox_raw": lambda: ColumnTransformer(
        [("bc", PowerTransformer(method="box-cox", standardize=False), [0, 1])], remainder="passthrough"),
    "log_then_scale": lambda: ColumnTransformer(
        [("log", make_pipeline(FunctionTransformer(np.log, inverse_func=np.exp), StandardScaler()), [0]),
         ("logit", FunctionTransformer(special.logit, inverse_func=special.expit), [1]),
         ("yj", PowerTransformer(), [2])]),
    "nested": lambda: Pipeline([
        ("cols", ColumnTransformer([("mm", MinMaxScaler(), [0, 1])], remainder="passthrough")),
        ("log1p", ColumnTransformer([("l", FunctionTransformer(np.log1p), [0, 1])], remainder="passthrough")),
        ("scale", RobustScaler()),
    ]),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_steps_reproduce_transform_and_jacobian(name):
    x = _data()
    t = TRANSFORMERS[name]().fit(x)
    x = x[(x[:, 2] > -30) & (x[:, 2] < 30)]  # keep finite differences away from huge values
    pre = Preprocessing(steps_from_sklearn(t, 3, kind="flow"))
    y, logdet = pre.forward_numpy(x)
    np.testing.assert_allclose(y, t.transform(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logdet, _fd_logdet(t.transform, x), rtol=0, atol=1e-5)
    # the exact Jacobian, by torch autograd of the translated chain
    xt = torch.tensor(x, requires_grad=True)
    yt, ld = pre.forward_torch(xt)
    grad = torch.autograd.grad(yt.sum(), xt)[0].numpy()  # element-wise: the diagonal of J
    np.testing.assert_allclose(ld.detach().numpy(), np.log(np.abs(grad)).sum(axis=1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(pre.inverse_numpy(y), x, rtol=1e-9, atol=1e-9)


def test_clip_is_kept_for_ratios_and_refused_for_flows():
    t = MinMaxScaler(clip=True).fit(_data())
    steps = steps_from_sklearn(t, 3, kind="ratio")
    x = _data(seed=3) * 1.5
    np.testing.assert_allclose(Preprocessing(steps).forward_numpy(x)[0], t.transform(x), atol=1e-12)
    with pytest.raises(UnsupportedModelError, match="clip=True"):
        steps_from_sklearn(t, 3, kind="flow")


@pytest.mark.parametrize(("make", "message"), [
    (lambda: QuantileTransformer(n_quantiles=50), "QuantileTransformer"),
    (lambda: FunctionTransformer(np.sqrt), "func=sqrt"),
    (lambda: FunctionTransformer(np.log, inverse_func=np.expm1), "inverse_func=expm1"),
    (lambda: ColumnTransformer([("a", StandardScaler(), [2]), ("b", StandardScaler(), [0, 1])]), "reorders"),
    (lambda: ColumnTransformer([("a", StandardScaler(), [0, 1])]), "drops columns"),
])
def test_untranslatable_is_refused_by_name(make, message):
    t = make().fit(_data())
    with pytest.raises(UnsupportedModelError, match=message):
        steps_from_sklearn(t, 3, kind="flow")


def test_fitted_on_other_feature_count():
    with pytest.raises(ValueError, match="fitted on 3 features, the model has 2"):
        steps_from_sklearn(StandardScaler().fit(_data()), 2, kind="ratio")
    with pytest.raises(ValueError, match="not fitted"):
        steps_from_sklearn(StandardScaler(), 2, kind="ratio")


def _nflows64(flow, y):
    with torch.no_grad():
        return copy.deepcopy(flow).double().eval().log_prob(torch.as_tensor(y)).numpy()


def test_flow_with_power_transformer_in_the_core(tmp_path):
    """Core log p(x) = nflows log p(T(x)) + log|T'(x)| (T: the fitted sklearn transformer); exact sampling."""
    x = _data(2000, seed=1)
    t = TRANSFORMERS["log_then_scale"]().fit(x)
    flow = random_flow("autoregressive", features=3)
    path = export_flow(flow, tmp_path / "pt.onnx", preprocessing=t)
    model = rooml.load(path)
    want = _nflows64(flow, t.transform(x)) + _fd_logdet(t.transform, x)
    np.testing.assert_allclose(model.log_prob(x), want, rtol=0, atol=1e-5)  # finite differences: ~1e-7
    steps = steps_from_sklearn(t, 3, kind="flow")
    exact = _nflows64(flow, t.transform(x)) + Preprocessing(steps).forward_numpy(x)[1]
    np.testing.assert_allclose(model.log_prob(x), exact, rtol=0, atol=1e-9)
    samples = model.sample(3000, seed=2)
    with torch.no_grad():
        z, _ = copy.deepcopy(flow).double()._transform(torch.as_tensor(t.transform(samples)))
    for j in range(3):
        assert stats.kstest(z[:, j].numpy(), "norm").pvalue > 1e-5


def test_hisigma_pickled_logit_scaler_pipeline_end_to_end(tmp_path):
    """The HI-SIGMA inputs: a pickled (logit, StandardScaler) pipeline beside an nflows flow with context."""
    rng = np.random.default_rng(4)
    x = rng.beta(2, 3, size=(3000, 2))
    pipeline = make_pipeline(FunctionTransformer(special.logit, inverse_func=special.expit), StandardScaler())
    pipeline.fit(x)
    pickled = tmp_path / "scaler.pkl"
    pickled.write_bytes(pickle.dumps(pipeline))
    scaler = pickle.loads(pickled.read_bytes())
    flow = random_flow("autoregressive", features=2, context=1)
    path = export_flow(flow, tmp_path / "hs.onnx", preprocessing=scaler, context=["mgg"])
    model = rooml.load(path)
    c = rng.normal(size=(3000, 1))
    y = scaler.transform(x)
    # log|J| by hand: logit' = 1 / (x (1 - x)), then 1 / scale
    logdet = np.sum(-np.log(x * (1 - x)) - np.log(scaler[-1].scale_), axis=1)
    with torch.no_grad():
        lp = copy.deepcopy(flow).double().log_prob(torch.as_tensor(y), context=torch.as_tensor(c)).numpy()
    np.testing.assert_allclose(model.log_prob(x, c), lp + logdet, rtol=0, atol=1e-9)
    assert [s["kind"] for s in rooml.export.read_metadata(path)["preprocessing"]] == ["logit", "affine"]


def test_ratio_with_translated_column_transformer_in_the_core(tmp_path):
    """A ratio net behind a Yeo-Johnson / MinMax(clip) ColumnTransformer: core log r = net(T(x))."""
    from rooml.export import export_ratio
    from rooml.models import RatioConfig, TrainedRatio
    from rooml.models.ratio import RatioNet

    x = _data(1000, seed=5)
    t = ColumnTransformer([("yj", PowerTransformer(), [0, 1]), ("mm", MinMaxScaler(clip=True), [2])]).fit(x)
    pre = Preprocessing(steps_from_sklearn(t, 3, kind="ratio"))
    config = RatioConfig(hidden=(16, 16), activation="silu")
    torch.manual_seed(0)
    net = RatioNet(3, config)
    ratio = TrainedRatio(net=net, config=config, preprocessing=pre, features=["a", "b", "c"],
                         support=[(-np.inf, np.inf)] * 3, log_correction=0.0, loss="bce", seed=0)
    path = export_ratio(ratio, tmp_path / "r.onnx")
    x_test = _data(500, seed=6)
    x_test[:5, 2] *= 10  # beyond the MinMaxScaler's fitted range: clipped
    with torch.no_grad():
        want = copy.deepcopy(net).double()(torch.as_tensor(t.transform(x_test))).numpy()
    np.testing.assert_allclose(rooml.load(path).log_ratio(x_test), want, rtol=0, atol=1e-9)
