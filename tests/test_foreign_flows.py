"""Flows built from nflows' own parts: exported, evaluated by the core, sampled exactly.

Each flow has perturbed random weights (and batch-norm statistics from forward
passes in train mode); the core must equal the library's own float64 log_prob
of the same (float32) weights to 1e-9, and its sampler must give the base
distribution back when its samples are mapped through the library's forward
transform (Kolmogorov-Smirnov test per coordinate).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import rooml
import torch
import torch.nn.functional as F
from nflows.distributions import ConditionalDiagonalNormal, DiagonalNormal, StandardNormal
from nflows.flows import Flow
from nflows.nn.nets import ResidualNet
from nflows.transforms import (
    ActNorm,
    AffineCouplingTransform,
    BatchNorm,
    CompositeTransform,
    MaskedAffineAutoregressiveTransform,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
    Permutation,
    PiecewiseRationalQuadraticCouplingTransform,
    RandomPermutation,
    ReversePermutation,
)
from rooml.export import UnsupportedModelError, export_flow
from scipy import stats
from torch import nn

# A KS p-value below this fails; each test makes at most a handful of KS tests on
# deterministic samples, so a correct sampler fails with probability ~1e-5.
KS_FLOOR = 1e-5


def _perturb_and_train_batch_norm(flow, features: int, context: int, seed: int = 0):
    """Perturb all weights, run a few train-mode passes (batch-norm statistics, ActNorm init), eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
        flow.train()
        for _ in range(4):
            x = torch.randn(256, features) * 1.4 + 0.3
            c = torch.randn(256, context) if context else None
            flow.log_prob(x, context=c)
    return flow.eval()


def _inputs(n, features, context, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)) * 1.3
    x[:5] *= 3.0  # a few events in the spline tails
    c = rng.normal(size=(n, context)) if context else None
    return x, c


def _nflows64(flow, x, c):
    flow64 = copy.deepcopy(flow).double().eval()
    with torch.no_grad():
        return flow64.log_prob(torch.as_tensor(x), context=None if c is None else torch.as_tensor(c)).numpy()


def _nflows_to_noise(flow, x, c):
    """Map x by nflows' forward map of x to standard-normal noise (through the transforms and the base)."""
    flow64 = copy.deepcopy(flow).double().eval()
    ctx = None if c is None else torch.as_tensor(c)
    with torch.no_grad():
        z, _ = flow64._transform(torch.as_tensor(x), context=ctx)
        base = flow64._distribution
        if isinstance(base, DiagonalNormal):
            z = (z - base.mean_) * torch.exp(-base.log_std_)
        elif isinstance(base, ConditionalDiagonalNormal):
            mean, log_std = base._compute_params(ctx)
            z = (z - mean) * torch.exp(-log_std)
    return z.numpy()


def _assert_standard_normal(z):
    for j in range(z.shape[1]):
        assert stats.kstest(z[:, j], "norm").pvalue > KS_FLOOR, f"coordinate {j} is not N(0, 1)"


def _check_nflows(flow, tmp_path, features, context, **export_args):
    path = export_flow(flow, tmp_path / "flow.onnx", **export_args)
    model = rooml.load(path)
    x, c = _inputs(2000, features, context)
    np.testing.assert_allclose(model.log_prob(x, c), _nflows64(flow, x, c), rtol=0, atol=1e-9)
    n = 3000
    _, cs = _inputs(n, features, context, seed=11)
    samples = model.sample(n, cs, seed=3)
    _assert_standard_normal(_nflows_to_noise(flow, samples, cs))
    return model


def hisigma_flow(features=3, layers=5, hidden=16):
    """Build the HI-SIGMA authors' architecture (fewer hidden units): diphoton mass as the context."""
    transforms = []
    for _ in range(layers):
        transforms += [
            MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                features=features, hidden_features=hidden, context_features=1, num_bins=24, tails="linear",
                tail_bound=5, use_residual_blocks=True, activation=nn.ReLU()),
            ReversePermutation(features),
            BatchNorm(features),
        ]
    base = ConditionalDiagonalNormal([features], context_encoder=nn.Linear(1, 2 * features))
    return Flow(CompositeTransform(transforms), base)


def test_hisigma_flow_matches_nflows_and_samples_exactly(tmp_path):
    flow = _perturb_and_train_batch_norm(hisigma_flow(), 3, 1)
    bn = [m for m in flow.modules() if isinstance(m, BatchNorm)]
    assert all(not torch.allclose(m.running_var, torch.ones(3)) for m in bn)  # trained statistics
    model = _check_nflows(flow, tmp_path, 3, 1, network_dtype="float64")
    # 1D marginals of the core's samples against nflows' own sampler, at one context value
    c = np.full((4000, 1), 0.7)
    ours = model.sample(4000, c, seed=9)
    torch.manual_seed(5)
    with torch.no_grad():
        theirs = flow.sample(4000, context=torch.tensor([[0.7]]))[0].double().numpy()
    for j in range(3):
        assert stats.ks_2samp(ours[:, j], theirs[:, j]).pvalue > KS_FLOOR


ACTIVATIONS = [
    torch.relu, F.relu, torch.tanh, torch.sigmoid, F.silu, F.elu, F.selu, F.gelu, F.leaky_relu,
    nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.SELU(), nn.Tanh(), nn.Sigmoid(), nn.SiLU(), nn.GELU(),
]


def _name(a):
    return type(a).__name__ if isinstance(a, nn.Module) else a.__name__


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=_name)
def test_maf_with_every_activation(tmp_path, activation):
    d = 3
    transforms = [
        MaskedAffineAutoregressiveTransform(d, 12, context_features=2, num_blocks=1, activation=activation),
        RandomPermutation(d),
        MaskedAffineAutoregressiveTransform(d, 12, context_features=2, num_blocks=1,
                                            use_residual_blocks=False, activation=activation),
    ]
    flow = _perturb_and_train_batch_norm(Flow(CompositeTransform(transforms), StandardNormal([d])), d, 2)
    _check_nflows(flow, tmp_path, d, 2)


@pytest.mark.parametrize("activation", [F.relu, nn.Tanh(), nn.GELU(), nn.LeakyReLU(0.1)], ids=_name)
def test_realnvp_actnorm_diagonal_normal(tmp_path, activation):
    d = 4
    transforms = []
    for i in range(3):
        mask = [(j + i) % 2 for j in range(d)]
        transforms += [
            AffineCouplingTransform(mask, lambda a, b: ResidualNet(
                a, b, 12, context_features=1, num_blocks=1, activation=activation, use_batch_norm=True)),
            ActNorm(d),
            Permutation(torch.tensor([2, 0, 3, 1])),
        ]
    flow = Flow(CompositeTransform(transforms), DiagonalNormal([d]))
    flow = _perturb_and_train_batch_norm(flow, d, 1)
    assert any(bool(m.initialized) for m in flow.modules() if isinstance(m, ActNorm))
    _check_nflows(flow, tmp_path, d, 1)


@pytest.mark.parametrize(("context", "hidden"), [(1, 12), (1, 11), (3, 12)],
                         ids=["one-context-even", "one-context-odd", "three-context"])
def test_rq_coupling_resnet_context_gates(tmp_path, context, hidden):
    """Residual blocks' context gates, computed in the gating pass or stored first, against nflows.

    One context variable with the rows in pairs, an odd row left over, several context variables.
    """
    d = 4
    transforms = []
    for i in range(2):
        mask = [(j + i) % 2 for j in range(d)]
        transforms += [
            PiecewiseRationalQuadraticCouplingTransform(
                mask, lambda a, b: ResidualNet(a, b, hidden, context_features=context, num_blocks=2),
                num_bins=5, tails="linear", tail_bound=3.5),
            ReversePermutation(d),
        ]
    flow = Flow(CompositeTransform(transforms), StandardNormal([d]))
    _check_nflows(_perturb_and_train_batch_norm(flow, d, context), tmp_path, d, context)


def test_conditional_base_with_mlp_encoder_and_rq_coupling_resnet(tmp_path):
    d = 3
    encoder = nn.Sequential(nn.Linear(2, 8), nn.SiLU(), nn.Linear(8, 2 * d))
    transforms = [
        MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
            d, 10, context_features=2, num_bins=6, tails="linear", tail_bound=4.0, activation=nn.ELU()),
        ReversePermutation(d),
        BatchNorm(d),
    ]
    flow = Flow(CompositeTransform(transforms), ConditionalDiagonalNormal([d], context_encoder=encoder))
    _check_nflows(_perturb_and_train_batch_norm(flow, d, 2), tmp_path, d, 2)


def test_metadata_names_the_base(tmp_path):
    flow = _perturb_and_train_batch_norm(hisigma_flow(layers=1), 3, 1)
    path = export_flow(flow, tmp_path / "f.onnx", network_dtype="float64")
    arch = rooml.export.read_metadata(path)["architecture"]
    assert arch["base"] == "conditional_diagonal_normal"
    assert arch["base_encoder"]["layers"][0]["prefix"] == "distribution._context_encoder"


@pytest.mark.parametrize(("activation", "message"), [
    (nn.GELU(approximate="tanh"), r"GELU\(approximate='tanh'\)"),
    (nn.Softplus(), "Softplus"),
    (torch.exp, "exp"),
])
def test_unsupported_activation_is_named(tmp_path, activation, message):
    flow = Flow(MaskedAffineAutoregressiveTransform(2, 8, activation=activation), StandardNormal([2]))
    with pytest.raises(UnsupportedModelError, match=message):
        export_flow(flow, tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists()


def test_unsupported_encoder_is_named(tmp_path):
    class Encoder(nn.Module):
        def forward(self, c):
            return torch.cat((c, c), dim=1)

    flow = Flow(ReversePermutation(2), ConditionalDiagonalNormal([2], context_encoder=Encoder()))
    with pytest.raises(UnsupportedModelError, match="Encoder"):
        export_flow(flow, tmp_path / "f.onnx")


def test_context_only_in_the_base(tmp_path):
    """Transforms that ignore the context on a conditional base: the flow still takes the context."""
    d = 2
    transforms = [BatchNorm(d), ReversePermutation(d), ActNorm(d)]
    base = ConditionalDiagonalNormal([d], context_encoder=nn.Linear(3, 2 * d))
    flow = _perturb_and_train_batch_norm(Flow(CompositeTransform(transforms), base), d, 3)
    model = _check_nflows(flow, tmp_path, d, 3)
    assert model.n_context == 3
