"""Conditional generation with RooFlowPdf: prototype datasets and RooProdPdf(P(m) x Conditional(flow)).

The reference is the flow itself (nflows, torch): for events drawn from p(x | m),
the flow's forward transform z = f(x; m) is standard normal in every dimension.
Mapping each generated event with its own prototype context gives N(0, 1)
samples (KS test); mapping it with a wrong context (shifted) must fail the
same test, which shows the test can tell.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from flow_factory import random_flow
from rooml.export import export_flow
from scipy import stats

N_EVENTS = 3000


@pytest.fixture(scope="module")
def cflow(tmp_path_factory):
    """Export a random-weight coupling flow p(a, b | m); return the torch flow (reference) and the file."""
    flow = random_flow("coupling", features=2, context=1, lu=True, seed=3)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("gen") / "cond.onnx"
    export_flow(flow, path, features=["a", "b"], context=["m"],
                reference_inputs=(rng.normal(size=(64, 2)), rng.normal(size=(64, 1))))
    return flow, path


def base_coordinates(flow, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Z = f(x; m), the flow's map to its standard-normal base space."""
    with torch.no_grad():
        z, _ = flow._transform(torch.as_tensor(x, dtype=torch.float32),
                               context=torch.as_tensor(m.reshape(-1, 1), dtype=torch.float32))
    return z.numpy().astype(np.float64)


def min_ks_pvalue(z: np.ndarray) -> float:
    """Smallest KS p-value of the columns of z against N(0, 1)."""
    return min(stats.kstest(z[:, i], "norm").pvalue for i in range(z.shape[1]))


def variables(ROOT):
    """Make the features a, b and the mass m."""
    a, b = ROOT.RooRealVar("a", "a", 0.0, -30, 30), ROOT.RooRealVar("b", "b", 0.0, -30, 30)
    m = ROOT.RooRealVar("m", "m", 0.0, -6, 6)
    return a, b, m


def test_prototype_generation_follows_the_conditional(cflow, roofit):
    """Features generated for a prototype's masses follow p(a, b | m) event by event."""
    ROOT = roofit
    flow, path = cflow
    a, b, m = variables(ROOT)
    pdf = ROOT.RooFlowPdf("f", "f", ROOT.RooArgList(a, b), ROOT.RooArgList(m), str(path))
    # masses first, from a parametric pdf, then the features given each mass
    mu, sigma = ROOT.RooRealVar("mu", "mu", 0.5), ROOT.RooRealVar("sigma", "sigma", 1.5)
    gm = ROOT.RooGaussian("gm", "gm", m, mu, sigma)
    ROOT.RooRandom.randomGenerator().SetSeed(5)
    proto = gm.generate(ROOT.RooArgSet(m), N_EVENTS)
    data = pdf.generate(ROOT.RooArgSet(a, b), ROOT.RooFit.ProtoData(proto))
    assert data.numEntries() == N_EVENTS
    arr, parr = data.to_numpy(), proto.to_numpy()
    np.testing.assert_array_equal(arr["m"], parr["m"])  # each event keeps its prototype's mass
    x = np.c_[arr["a"], arr["b"]]
    assert np.unique(x[:, 0]).size == N_EVENTS  # no repeated draws
    assert pdf.networkEvaluations() < 10  # the exact sampler, not accept-reject (which needs >= 1 per event)
    z = base_coordinates(flow, x, arr["m"])
    assert min_ks_pvalue(z) > 1e-3
    # the features really depend on m: with the masses shifted the same test fails
    assert min_ks_pvalue(base_coordinates(flow, x, arr["m"] + 2.0)) < 1e-6
    # the moments in bins of m agree with the flow's own (nflows) samples at the bin centres
    torch.manual_seed(0)
    for lo, hi in ((-1.5, -0.5), (1.0, 2.0)):
        sel = (arr["m"] > lo) & (arr["m"] < hi)
        with torch.no_grad():
            ref = flow.sample(1, context=torch.as_tensor(arr["m"][sel].reshape(-1, 1),
                                                         dtype=torch.float32))[:, 0].numpy()
        for i in range(2):
            assert stats.ks_2samp(x[sel, i], ref[:, i]).pvalue > 1e-3


def test_generation_is_reproducible_with_roorandom_seed(cflow, roofit):
    """The same RooRandom seed gives the same events."""
    ROOT = roofit
    _, path = cflow
    a, b, m = variables(ROOT)
    pdf = ROOT.RooFlowPdf("f", "f", ROOT.RooArgList(a, b), ROOT.RooArgList(m), str(path))
    proto = ROOT.RooDataSet.from_numpy({"m": np.linspace(-2, 2, 50)}, ROOT.RooArgSet(m))
    draws = []
    for _ in range(2):
        ROOT.RooRandom.randomGenerator().SetSeed(17)
        d = pdf.generate(ROOT.RooArgSet(a, b), ROOT.RooFit.ProtoData(proto)).to_numpy()
        draws.append(np.c_[d["a"], d["b"]])
    np.testing.assert_array_equal(draws[0], draws[1])


def test_product_with_mass_pdf_generates_jointly(cflow, roofit):
    """RooProdPdf(P(m) x Conditional(flow, {a, b})).generate({a, b, m}): m ~ P(m), then (a, b) ~ p(. | m)."""
    ROOT = roofit
    flow, path = cflow
    a, b, m = variables(ROOT)
    mu, sigma = ROOT.RooRealVar("mu", "mu", -0.3), ROOT.RooRealVar("sigma", "sigma", 1.2)
    gm = ROOT.RooGaussian("gm", "gm", m, mu, sigma)
    pdf = ROOT.RooFlowPdf("f", "f", ROOT.RooArgList(a, b), ROOT.RooArgList(m), str(path))
    prod = ROOT.RooProdPdf("prod", "prod", ROOT.RooArgSet(gm),
                           ROOT.RooFit.Conditional(ROOT.RooArgSet(pdf), ROOT.RooArgSet(a, b)))
    ROOT.RooRandom.randomGenerator().SetSeed(9)
    data = prod.generate(ROOT.RooArgSet(a, b, m), N_EVENTS)
    arr = data.to_numpy()
    assert data.numEntries() == N_EVENTS
    # m: the truncation of N(-0.3, 1.2) to [-6, 6] is negligible
    assert stats.kstest(arr["m"], "norm", args=(-0.3, 1.2)).pvalue > 1e-3
    x = np.c_[arr["a"], arr["b"]]
    assert min_ks_pvalue(base_coordinates(flow, x, arr["m"])) > 1e-3
    assert min_ks_pvalue(base_coordinates(flow, x, np.full(N_EVENTS, 0.0) + arr["m"].mean() + 2.0)) < 1e-6
