"""Invariants of rooml flows, run over every architecture variant (zuko style)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nflows.transforms.autoregressive import (
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.normalization import BatchNorm
from rooml.models import (
    FlowConfig,
    Preprocessing,
    TrainedFlow,
    build_flow,
    fold_context_standardization,
    train_flow,
)

VARIANTS = [
    pytest.param(
        kind, ctx, lu, bn, id=f"{kind}-ctx{ctx}-{'lu' if lu else 'perm'}-{'bn' if bn else 'nobn'}"
    )
    for kind in ("coupling", "autoregressive")
    for ctx in (0, 1)
    for lu in (True, False)
    for bn in (True, False)
]
SHIFT, SCALE = [1.0, -0.5], [2.0, 0.5]
CONTEXT = 0.7


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks run fastest (and most reproducibly) on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _config(kind: str, ctx: int, lu: bool, bn: bool, **kw) -> FlowConfig:
    base = dict(features=2, context=ctx, kind=kind, layers=2, bins=4, hidden=8, blocks=1,
                lu_linear=lu, batch_norm=bn, seed=3)
    return FlowConfig(**{**base, **kw})


def _model(kind: str, ctx: int, lu: bool, bn: bool) -> TrainedFlow:
    """An untrained flow with perturbed weights and batch-norm statistics (non-trivial density)."""
    cfg = _config(kind, ctx, lu, bn)
    flow = build_flow(cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
        for m in flow.modules():
            if isinstance(m, BatchNorm):
                m.running_mean.normal_(0.0, 0.3, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    pre = Preprocessing([{"kind": "affine", "features": [0, 1], "shift": SHIFT, "scale": SCALE}])
    return TrainedFlow(flow, cfg, pre, ["a", "b"], ["m"] * ctx, [(-math.inf, math.inf)] * 2)


def _events(n: int, seed: int = 1) -> np.ndarray:
    y = np.random.default_rng(seed).standard_normal((n, 2)) * 1.5
    return y * SCALE + SHIFT


def _grid(n: int = 300, half: float = 8.0):
    """Midpoint grid in physical space covering +-half in flow space; returns (x, cell area)."""
    u = np.linspace(-half, half, n + 1)
    u = 0.5 * (u[1:] + u[:-1])
    y0, y1 = np.meshgrid(u, u, indexing="ij")
    x = np.stack([y0.ravel() * SCALE[0] + SHIFT[0], y1.ravel() * SCALE[1] + SHIFT[1]], axis=1)
    return x, (u[1] - u[0]) ** 2 * SCALE[0] * SCALE[1]


def _ctx(model: TrainedFlow, n: int) -> torch.Tensor | None:
    return torch.full((n, 1), CONTEXT, dtype=torch.float64) if model.config.context else None


@pytest.mark.parametrize("kind, ctx, lu, bn", VARIANTS)
def test_log_prob_shape_normalization_and_sampling(kind, ctx, lu, bn):
    model = _model(kind, ctx, lu, bn)
    c = [CONTEXT] if ctx else None
    lp = model.log_prob(_events(7), c)
    assert lp.shape == (7,) and lp.dtype == np.float64 and np.all(np.isfinite(lp))

    x, area = _grid()
    density = np.exp(model.log_prob(x, c))
    assert abs(density.sum() * area - 1.0) < 1e-2
    # the perturbed flow is not just the (affinely transformed) base Gaussian
    base = Preprocessing.from_list(model.preprocessing.to_list())
    y, logdet = base.forward_numpy(x)
    gauss = -0.5 * (y**2).sum(1) - math.log(2 * math.pi) + logdet
    assert np.max(np.abs(np.log(density) - gauss)[density > 1e-3]) > 0.05

    # samples follow the density: P(x0 < 1) from samples vs from the grid
    samples = model.sample(4000, c, seed=5)
    assert samples.shape == (4000, 2) and np.all(np.isfinite(samples))
    assert abs(np.mean(samples[:, 0] < 1.0) - density[x[:, 0] < 1.0].sum() * area) < 0.03
    assert np.array_equal(samples, model.sample(4000, c, seed=5))


@pytest.mark.parametrize("kind, ctx, lu, bn", VARIANTS)
def test_inverse_round_trip_and_sample_log_prob(kind, ctx, lu, bn):
    model = _model(kind, ctx, lu, bn)
    flow = model.flow64
    y = torch.from_numpy(np.random.default_rng(2).standard_normal((50, 2)) * 2)
    with torch.no_grad():
        z, ld = flow._transform(y, context=_ctx(model, 50))
        back, ld_inv = flow._transform.inverse(z, context=_ctx(model, 50))
        np.testing.assert_allclose(back.numpy(), y.numpy(), atol=1e-8)
        np.testing.assert_allclose((ld + ld_inv).numpy(), 0.0, atol=1e-8)
        # sampling = inverse pass on float64 noise (nflows' own sampler draws float32 noise)
        noise = torch.randn(40, 2, dtype=torch.float64)
        s, ld_s = flow._transform.inverse(noise, context=_ctx(model, 40))
        lp = -0.5 * (noise**2).sum(1) - math.log(2 * math.pi) - ld_s
        again = flow.log_prob(s, context=_ctx(model, 40))
        np.testing.assert_allclose(again.numpy(), lp.numpy(), atol=1e-8)
    x = _events(30)
    c = np.full((30, 1), CONTEXT) if ctx else None
    y, _ = model.preprocessing.forward_numpy(x)
    with torch.no_grad():
        z = flow._transform(torch.from_numpy(y), context=_ctx(model, 30))[0]
        y_back = flow._transform.inverse(z, context=_ctx(model, 30))[0].numpy()
    np.testing.assert_allclose(model.preprocessing.inverse_numpy(y_back), x, rtol=1e-8, atol=1e-8)
    assert c is None or model.log_prob(x, c).shape == (30,)


@pytest.mark.parametrize("kind, ctx, lu, bn", VARIANTS)
def test_jacobian_matches_autograd(kind, ctx, lu, bn):
    model = _model(kind, ctx, lu, bn)
    flow = model.flow64
    x = torch.from_numpy(_events(5, seed=3))
    c = _ctx(model, 1)

    def to_noise(xi: torch.Tensor) -> torch.Tensor:
        y, _ = model.preprocessing.forward_torch(xi[None])
        return flow._transform(y, context=c)[0][0]

    for xi, lp in zip(x, model.log_prob(x.numpy(), [CONTEXT] if ctx else None)):
        jac = torch.autograd.functional.jacobian(to_noise, xi)
        z = to_noise(xi).detach()
        expected = -0.5 * float(z @ z) - math.log(2 * math.pi) + float(torch.linalg.slogdet(jac)[1])
        assert lp == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("kind, ctx, lu, bn", VARIANTS)
def test_train_eval_agreement_and_batch_independence(kind, ctx, lu, bn):
    model = _model(kind, ctx, lu, bn)
    flow = model.flow64
    y = torch.from_numpy(np.random.default_rng(4).standard_normal((20, 2)))
    with torch.no_grad():
        lp = flow.log_prob(y, context=_ctx(model, 20))
        single = torch.cat([flow.log_prob(y[i : i + 1], context=_ctx(model, 1)) for i in range(20)])
        np.testing.assert_allclose(single.numpy(), lp.numpy(), rtol=0, atol=1e-12)
        # without batch norm (and dropout 0) the modes agree; with it train mode uses batch stats
        if not bn:
            flow.train()
            try:
                train_lp = flow.log_prob(y, context=_ctx(model, 20))
                np.testing.assert_allclose(train_lp.numpy(), lp.numpy(), atol=1e-12)
            finally:
                flow.eval()


@pytest.mark.parametrize("kind, ctx, lu, bn", VARIANTS)
def test_save_load_and_determinism(kind, ctx, lu, bn, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 2)) * [1.0, 3.0]
    c = rng.uniform(100, 200, size=(400, 1)) if ctx else None
    cfg = _config(kind, ctx, lu, bn)
    kw = dict(epochs=2, batch_size=100, progress=False, seed=7)
    first, second = train_flow(cfg, x, c, **kw), train_flow(cfg, x, c, **kw)
    for (name, a), (_, b) in zip(first.flow.state_dict().items(), second.flow.state_dict().items()):
        assert torch.equal(a, b), name
    other = train_flow(cfg, x, c, **{**kw, "seed": 8})
    cc = c[:50] if ctx else None
    assert not np.array_equal(first.log_prob(x[:50], cc), other.log_prob(x[:50], cc))

    first.save(tmp_path / "flow.pt")
    loaded = TrainedFlow.load(tmp_path / "flow.pt")
    assert np.array_equal(loaded.log_prob(x[:50], cc), first.log_prob(x[:50], cc))
    assert loaded.preprocessing == first.preprocessing
    for attr in ("config", "features", "context_names", "support", "history", "best_epoch"):
        assert getattr(loaded, attr) == getattr(first, attr), attr


def test_context_standardization_is_folded_exactly():
    for kind in ("coupling", "autoregressive"):
        flow = build_flow(_config(kind, 2, True, False))
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.2 * torch.randn_like(p))
        flow = flow.double().eval()
        mean, scale = np.array([150.0, -3.0]), np.array([20.0, 0.5])
        y = torch.randn(30, 2, dtype=torch.float64)
        c = torch.from_numpy(np.random.default_rng(0).normal(mean, scale, (30, 2)))
        with torch.no_grad():
            before = flow.log_prob(y, context=(c - torch.from_numpy(mean)) / torch.from_numpy(scale))
            fold_context_standardization(flow, mean, scale)
            after = flow.log_prob(y, context=c)
        np.testing.assert_allclose(after.numpy(), before.numpy(), atol=1e-10)


def test_one_feature_falls_back_to_autoregressive():
    cfg = FlowConfig(features=1, context=1, kind="coupling", layers=2, bins=4, hidden=8, blocks=1)
    assert cfg.resolved_kind == "autoregressive"
    flow = build_flow(cfg)
    autoregressive = MaskedPiecewiseRationalQuadraticAutoregressiveTransform
    assert any(isinstance(m, autoregressive) for m in flow.modules())
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model = TrainedFlow(flow, cfg, Preprocessing(), ["x"], ["m"], [(-math.inf, math.inf)])
    u = np.linspace(-10, 10, 4001)
    integral = np.trapezoid(np.exp(model.log_prob(u, [0.3])), u)
    assert integral == pytest.approx(1.0, abs=1e-3)


def test_coupling_masks_transform_every_feature():
    """Nflows' alternating masks + ReversePermutation on an even D would skip half the features."""
    from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
    from nflows.transforms.permutations import Permutation

    for d in (2, 3, 4):
        for perm, lu in (("reverse", False), ("random", False), ("reverse", True)):
            flow = build_flow(FlowConfig(features=d, layers=2, lu_linear=lu, permutation=perm, seed=1))
            order, touched = list(range(d)), set()
            for t in flow._transform._transforms:
                if isinstance(t, Permutation):
                    order = [order[int(k)] for k in t._permutation]
                elif isinstance(t, PiecewiseRationalQuadraticCouplingTransform):
                    touched |= {order[int(p)] for p in t.transform_features}
            if perm == "reverse":
                assert touched == set(range(d)), (d, lu, touched)


def test_training_learns_a_correlated_gaussian():
    rng = np.random.default_rng(11)
    mean, cov = np.array([1.0, -2.0]), np.array([[1.0, 0.8], [0.8, 1.0]])
    x = rng.multivariate_normal(mean, cov, size=12000)
    train, test = x[:10000], x[10000:]
    inv = np.linalg.inv(cov)
    d = test - mean
    log_norm = math.log(2 * math.pi) + 0.5 * math.log(np.linalg.det(cov))
    truth = np.mean(-0.5 * np.einsum("ni,ij,nj->n", d, inv, d) - log_norm)
    cfg = FlowConfig(features=2, layers=3, hidden=16, seed=0)
    model = train_flow(cfg, train, epochs=15, batch_size=512, patience=5, progress=False)
    loss = model.history["train_loss"]
    assert loss[-1] < loss[0]
    assert model.best_epoch == int(np.argmin(model.history["val_loss"]))
    # bar 0.05 nats: over training seeds the gap is -0.009 +- 0.002 (benchmarks/validate_training_spread.py
    # --flow-quality), so the bar is ~20 standard deviations of the training spread away
    assert abs(model.log_prob(test).mean() - truth) < 0.05


def test_training_learns_a_conditional_density():
    """X ~ N(0.02 * (m - 150), 1): context in GeV-like units, standardized and folded."""
    rng = np.random.default_rng(12)
    m = rng.uniform(100, 200, size=(8000, 1))
    x = rng.standard_normal((8000, 2)) + 0.02 * (m - 150)
    cfg = FlowConfig(features=2, context=1, layers=2, hidden=16, seed=0)
    model = train_flow(
        cfg, x[:6000], m[:6000], epochs=15, patience=5, progress=False, context_names=["m"]
    )
    d = x[6000:] - 0.02 * (m[6000:] - 150)
    truth = np.mean(-0.5 * (d**2).sum(1) - math.log(2 * math.pi))
    # over training seeds: gap -0.012 +- 0.002, mean shift -0.026 +- 0.012 (validate_training_spread.py
    # --flow-quality): both bars are >= 10 standard deviations of the training spread away
    assert abs(model.log_prob(x[6000:], m[6000:]).mean() - truth) < 0.05
    # the learned conditional mean follows the context
    assert np.mean(model.sample(2000, [190.0], seed=1)[:, 0]) == pytest.approx(0.8, abs=0.15)


def test_event_weights():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 2))
    cfg = FlowConfig(features=2, layers=1, bins=4, hidden=8, blocks=1)
    kw = dict(epochs=2, batch_size=100, progress=False)
    plain = train_flow(cfg, x, **kw)
    doubled = train_flow(cfg, x, weights=np.full(300, 2.0), **kw)  # scale-invariant
    assert np.array_equal(plain.log_prob(x), doubled.log_prob(x))
    zeroed = train_flow(cfg, x, weights=np.r_[np.ones(150), np.zeros(150)], **kw)
    assert not np.array_equal(plain.log_prob(x), zeroed.log_prob(x))


def test_support_and_preprocessing_spec():
    rng = np.random.default_rng(5)
    x = np.stack([rng.exponential(50, 500) + 20, rng.uniform(0, math.pi, 500)], axis=1)
    cfg = FlowConfig(features=2, layers=1, bins=4, hidden=8, blocks=1)
    model = train_flow(cfg, x, preprocessing={"pt": "log", "dphi": "log_pi_minus"},
                       features=["pt", "dphi"], epochs=1, progress=False)
    (lo0, hi0), (lo1, hi1) = model.support
    assert 0 <= lo0 < x[:, 0].min() and hi0 > x[:, 0].max()
    assert hi1 == pytest.approx(math.pi) and lo1 < x[:, 1].min()
    assert [s["kind"] for s in model.preprocessing.to_list()] == ["log", "log", "affine"]
    custom = train_flow(cfg, x, support=[(0, 1000), (0, math.pi)], epochs=1, progress=False)
    assert custom.support == [(0.0, 1000.0), (0.0, math.pi)]


def test_input_validation():
    model = _model("coupling", 1, True, False)
    x = _events(10)
    with pytest.raises(ValueError, match=r"shape \(events, 2\)"):
        model.log_prob(x[:, :1], [CONTEXT])
    bad = x.copy()
    bad[[2, 5], 1] = np.nan
    with pytest.raises(ValueError, match=r"column 1 \('b'\) has 2 non-finite"):
        model.log_prob(bad, [CONTEXT])
    with pytest.raises(ValueError, match="needs a context"):
        model.log_prob(x)
    with pytest.raises(ValueError, match=r"context column 0 \('m'\) has 1 non-finite"):
        model.log_prob(x, np.r_[np.full(9, 1.0), np.inf][:, None])
    with pytest.raises(ValueError, match="no context"):
        _model("coupling", 0, True, False).log_prob(x, [1.0])
    with pytest.raises(ValueError, match=r"x column 0 \('x0'\) has 10 non-finite"):
        train_flow(FlowConfig(features=2), np.c_[np.full(10, np.inf), np.ones(10)], progress=False)
    with pytest.raises(ValueError, match="kind"):
        FlowConfig(features=2, kind="maf")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            train_flow(FlowConfig(features=2), x, epochs=1, device="cuda", progress=False)


def test_progress_bar_runs():
    x = np.random.default_rng(0).standard_normal((200, 2))
    model = train_flow(FlowConfig(features=2, layers=1, hidden=8, blocks=1), x, epochs=2, progress=True)
    assert len(model.history["val_loss"]) == 2


def test_without_validation_split_and_thread_setting():
    x = np.random.default_rng(0).standard_normal((200, 2))
    cfg = FlowConfig(features=2, layers=1, hidden=8, blocks=1)
    before = torch.get_num_threads()
    model = train_flow(cfg, x, epochs=2, validation_fraction=0.0, num_threads=2, progress=False)
    assert torch.get_num_threads() == before
    assert model.history["val_loss"] == model.history["train_loss"]


def test_public_api():
    import rooml.models

    flows_api = {
        "RECIPES", "FlowConfig", "Preprocessing", "TrainedFlow", "build_flow", "build_preprocessing",
        "default_support", "fold_context_standardization", "register_recipe", "smear", "train_flow",
    }
    assert flows_api <= set(rooml.models.__all__)  # ensembles, ratios and the GP test their own surface
