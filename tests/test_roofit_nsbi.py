"""RooNSBIPdf: numpy, FlexibleInterpVar, weighted NLL, evaluation count, errors, workspaces, closure."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from interp_reference import code5
from roofit_batch import batch
from rooml.data import offshell4l
from rooml.roofit import (
    dataset_with_index,
    event_column,
    index_variable,
    nsbi_model,
    poisson_bootstrap_weights,
    to_workspace,
    update_event_inputs,
)
from root_macro import run_root_macro

PROCESSES = ("S", "SBI", "B")
COEFFICIENTS = {"S": "mu - sqrt(mu)", "SBI": "sqrt(mu)", "B": "1 - sqrt(mu)"}

class Toy:
    """Random positive per-event inputs for 3 processes and 2 nuisance parameters."""

    def __init__(self, n=800, seed=0):
        rng = np.random.default_rng(seed)
        self.n = n
        self.yields = {"S": 40.0, "SBI": 1300.0, "B": 1400.0}
        # positive mixtures at every tested point: r_SBI near 1 (the reference), r_B <= 1
        self.r = {
            "S": np.exp(rng.normal(0, 0.5, n)),
            "SBI": np.exp(rng.uniform(-0.3, 0.3, n)),
            "B": np.exp(rng.uniform(-1.0, 0.0, n)),
        }
        self.norm = {
            ("S", "a1"): (0.97, 1.05),
            ("SBI", "a1"): (0.93, 1.07),
            ("B", "a1"): (0.94, 1.06),
            ("B", "a2"): (1.02, 0.95),
        }
        self.shape = {
            (p, a): (np.exp(rng.normal(-0.05, 0.05, n)), np.exp(rng.normal(0.05, 0.05, n)))
            for p, a in [("S", "a1"), ("SBI", "a1"), ("B", "a1"), ("SBI", "a2")]
        }

    def model(self, idx, mu_max=10.0, **kw):
        """Build the model with nsbi_model."""
        return nsbi_model(
            "nsbi",
            idx,
            yields=self.yields,
            coefficients=COEFFICIENTS,
            ratios=self.r,
            poi=[("mu", 1.0, 0.0, mu_max)],
            nps=["a1", "a2"],
            norm=self.norm,
            shape=self.shape,
            **kw,
        )

    def numpy(self, mu, a):
        """(p/p_ref per event, nu) from an independent numpy implementation."""
        f = {"S": mu - np.sqrt(mu), "SBI": np.sqrt(mu), "B": 1 - np.sqrt(mu)}
        total, nu = 0.0, 0.0
        for p in PROCESSES:
            G, g = 1.0, np.ones(self.n)
            for k, name in enumerate(("a1", "a2")):
                if (p, name) in self.norm:
                    G *= float(code5(*self.norm[(p, name)], a[k]))
                if (p, name) in self.shape:
                    g = g * code5(*self.shape[(p, name)], a[k])
            nu += f[p] * self.yields[p] * G
            total = total + f[p] * self.yields[p] * G * self.r[p] * g
        return total / nu, nu


@pytest.fixture()
def idx(roofit):
    return index_variable()


POINTS = [(1.0, (0.0, 0.0)), (0.3, (0.4, -0.7)), (2.5, (-1.0, 1.0)), (1.7, (1.6, -2.2)), (0.8, (-0.3, 0.999))]


def test_values_match_numpy(roofit, idx):
    ROOT = roofit
    toy = Toy()
    m = toy.model(idx)
    nsbi, mu = m["nsbi"], m["poi"][0]
    a1, a2 = m["nuisance_parameters"]
    worst = 0.0
    for mu_v, (x1, x2) in POINTS:
        mu.setVal(mu_v), a1.setVal(x1), a2.setVal(x2)
        want, nu = toy.numpy(mu_v, (x1, x2))
        got = batch(ROOT, nsbi, toy.n)
        worst = max(worst, float(np.max(np.abs(got / want - 1))))
        for i in (0, 17, toy.n - 1):  # the scalar evaluate() path
            idx.setVal(i)
            assert nsbi.getVal() == pytest.approx(want[i], rel=1e-13)
        assert nsbi.expectedEvents(ROOT.RooArgSet(idx)) == pytest.approx(nu, rel=1e-13)
        assert m["expected_events"].getVal() == pytest.approx(nu, rel=1e-13)
    print(f"max relative deviation of RooNSBIPdf from numpy: {worst:.2e}")
    assert worst < 1e-12
    assert nsbi.selfNormalized() and nsbi.canBeExtended()


@pytest.mark.parametrize("flexible_code", [0, 1, 2, 4, 5])
def test_norm_factors_match_flexible_interp_var(roofit, idx, flexible_code):
    """G_j(alpha) == HistFactory::FlexibleInterpVar(1, low, high), its code translated (4 -> 5)."""
    ROOT = roofit
    from rooml.interpolation import from_flexible_code

    toy = Toy(n=5)
    code = from_flexible_code(flexible_code)
    m = toy.model(idx, norm_codes=code)
    nsbi = m["nsbi"]
    alphas = m["nuisance_parameters"]
    params = ROOT.RooArgList(*alphas)
    worst = 0.0
    for j, p in enumerate(PROCESSES):
        lows = [toy.norm.get((p, a), (1.0, 1.0))[0] for a in ("a1", "a2")]
        highs = [toy.norm.get((p, a), (1.0, 1.0))[1] for a in ("a1", "a2")]
        fiv = ROOT.RooStats.HistFactory.FlexibleInterpVar(
            f"fiv{j}", "", params, 1.0, lows, highs, [flexible_code, flexible_code]
        )
        for x1, x2 in [(0.0, 0.0), (0.5, -0.3), (1.0, -1.0), (-2.5, 1.7), (3.0, 0.2)]:
            alphas[0].setVal(x1), alphas[1].setVal(x2)
            worst = max(worst, abs(nsbi.normFactor(j) / fiv.getVal() - 1))
    print(f"FlexibleInterpVar code {flexible_code} (rooml {code}): max relative deviation {worst:.2e}")
    assert worst < 1e-12


def test_weighted_nll_matches_numpy(roofit, idx):
    """Extended NLL, Poisson-bootstrap weights: -sum w log(p/p_ref) + nu - W log nu (+ constraints)."""
    ROOT = roofit
    toy = Toy(n=1200, seed=4)
    m = toy.model(idx)
    w = poisson_bootstrap_weights(toy.n, seed=3)
    data = dataset_with_index({}, idx, weights=w)
    mu = m["poi"][0]
    a1, a2 = m["nuisance_parameters"]
    g1, g2 = m["global_observables"]
    g1.setVal(0.3), g2.setVal(-0.2)
    nll_nsbi = m["nsbi"].createNLL(data, ROOT.RooFit.EvalBackend("cpu"))
    nll_full = m["pdf"].createNLL(
        data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(g1, g2))
    )
    worst = 0.0
    for mu_v, (x1, x2) in POINTS:
        mu.setVal(mu_v), a1.setVal(x1), a2.setVal(x2)
        ratio, nu = toy.numpy(mu_v, (x1, x2))
        want = -np.sum(w * np.log(ratio)) + nu - w.sum() * np.log(nu)
        cons = 0.5 * ((x1 - 0.3) ** 2 + (x2 + 0.2) ** 2) + np.log(2 * np.pi)
        worst = max(worst, abs(nll_nsbi.getVal() / want - 1), abs(nll_full.getVal() / (want + cons) - 1))
    print(f"max relative deviation of the weighted RooFit NLL from numpy: {worst:.2e}")
    assert worst < 1e-10


def test_inputs_evaluated_once_per_dataset(roofit, idx):
    """In a fit the per-event inputs are looked up once per dataset; only the combination runs per step."""
    ROOT = roofit
    toy = Toy(n=3000, seed=8)
    m = toy.model(idx, mu_max=2.5)  # the mixture of these random ratios stays positive up to 2.5
    data = dataset_with_index({}, idx, n=toy.n)
    before = {k: c.evaluations() for k, c in m["columns"].items()}
    res = m["pdf"].fitTo(
        data,
        ROOT.RooFit.EvalBackend("cpu"),
        ROOT.RooFit.PrintLevel(-1),
        ROOT.RooFit.Save(),
        ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(*m["global_observables"])),
    )
    assert res.status() == 0 and res.numInvalidNLL() == 0
    assert all(c.evaluations() - before[k] == toy.n for k, c in m["columns"].items())


def test_reference_sample_normalization(roofit, idx):
    """N_j(alpha) = sum w r_j g_j(alpha) / sum w r_j on the reference sample; 1 at alpha = 0."""
    toy = Toy(n=50, seed=2)
    ref = Toy(n=4000, seed=3)
    w = np.random.default_rng(1).uniform(0.5, 1.5, ref.n)
    m = toy.model(idx, reference_sample={"weights": w, "ratios": ref.r, "shape": ref.shape})
    nsbi = m["nsbi"]
    a1, a2 = m["nuisance_parameters"]
    assert nsbi.shapeNormalized()
    assert [nsbi.shapeNormalization(j) for j in range(3)] == [1.0, 1.0, 1.0]
    a1.setVal(0.6), a2.setVal(-1.4)
    for j, p in enumerate(PROCESSES):
        g = np.ones(ref.n)
        for k, a in enumerate(("a1", "a2")):
            if (p, a) in ref.shape:
                g = g * code5(*ref.shape[(p, a)], (0.6, -1.4)[k])
        want = np.sum(w * ref.r[p] * g) / np.sum(w * ref.r[p])
        assert nsbi.shapeNormalization(j) == pytest.approx(want, rel=1e-13)
    # the normalized mixture: numpy value divided per process
    mu_v = 1.3
    m["poi"][0].setVal(mu_v)
    idx.setVal(7)
    f = {"S": mu_v - np.sqrt(mu_v), "SBI": np.sqrt(mu_v), "B": 1 - np.sqrt(mu_v)}
    num, nu = 0.0, 0.0
    for j, p in enumerate(PROCESSES):
        G = nsbi.normFactor(j)
        g = 1.0
        for k, a in enumerate(("a1", "a2")):
            if (p, a) in toy.shape:
                g *= float(code5(toy.shape[(p, a)][0][7:8], toy.shape[(p, a)][1][7:8], (0.6, -1.4)[k])[0])
        nu += f[p] * toy.yields[p] * G
        num += f[p] * toy.yields[p] * G * toy.r[p][7] * g / nsbi.shapeNormalization(j)
    assert nsbi.getVal() == pytest.approx(num / nu, rel=1e-12)


def test_errors(roofit, idx):
    ROOT = roofit
    toy = Toy(n=20)
    kw = dict(yields=toy.yields, coefficients=COEFFICIENTS, poi=["mu"])
    with pytest.raises(ValueError, match="has no \\+-1 sigma inputs"):
        nsbi_model(
            "m",
            idx,
            ratios=toy.r,
            nps=["a1", "lonely"],
            norm={k: v for k, v in toy.norm.items() if k[1] == "a1"},
            **kw,
        )
    with pytest.raises(ValueError, match="needs both the -1 and the \\+1 sigma"):
        nsbi_model("m", idx, ratios=toy.r, nps=["a1"], shape={("S", "a1"): (toy.r["S"], None)}, **kw)
    bad = dict(toy.r, B=np.where(np.arange(20) == 13, 0.0, toy.r["B"]))
    with pytest.raises(ValueError, match="ratio r_B of event 13 is 0.0"):
        nsbi_model("m", idx, ratios=bad, **kw)
    with pytest.raises(ValueError, match="coefficients are given for"):
        nsbi_model("m", idx, ratios=toy.r, yields=toy.yields, coefficients={"S": "mu"}, poi=["mu"])
    # C++ constructor: mismatched list lengths
    mu = ROOT.RooRealVar("mu", "mu", 1.0, 0, 10)
    f = ROOT.RooArgList(mu)
    cols = [event_column(f"r{j}", toy.r[p], idx) for j, p in enumerate(PROCESSES)]
    r = ROOT.RooArgList(*cols)
    with pytest.raises(Exception, match="got 1 coefficients f_j for 3 yields"):
        ROOT.RooNSBIPdf(
            "p", "p", f, [1.0, 2.0, 3.0], r, ROOT.RooArgList(), [], [], ROOT.RooArgList(), ROOT.RooArgList()
        )
    a = ROOT.RooRealVar("a", "a", 0, -5, 5)
    with pytest.raises(Exception, match="-1 and \\+1 sigma per-event ratios for every process"):
        ROOT.RooNSBIPdf(
            "p",
            "p",
            ROOT.RooArgList(mu, mu, mu),
            [1.0, 2.0, 3.0],
            r,
            ROOT.RooArgList(a),
            [1.0] * 3,
            [1.0] * 3,
            ROOT.RooArgList(),
            ROOT.RooArgList(),
        )
    # a non-positive per-event ratio from a generic RooAbsReal input: the likelihood names the event
    neg = event_column("neg", np.where(np.arange(20) == 5, -0.5, 1.0), idx)
    m = nsbi_model("m", idx, ratios=dict(toy.r, S=neg), **kw)
    data = dataset_with_index({}, idx, n=20)
    with pytest.raises(Exception, match="event 5: per-event ratio r_0 \\('neg'\\) is -0.5"):
        m["pdf"].createNLL(data, ROOT.RooFit.EvalBackend("cpu")).getVal()


def test_negative_mixture_is_never_silent(roofit, idx, capfd):
    """A negative mixture is never silent.

    Where a coefficient turns the mixture negative the value is logged as an evaluation error and the
    NLL is not a finite number (RooFit steers the minimizer away), never a silent NaN.
    """
    ROOT = roofit
    toy = Toy(n=100)
    r = dict(toy.r, B=toy.r["B"] * 50)  # mu > 1 gives f_B < 0: large B ratios make the mixture negative
    m = nsbi_model("m", idx, yields=toy.yields, coefficients=COEFFICIENTS, ratios=r, poi=[("mu", 4.0, 0, 10)])
    data = dataset_with_index({}, idx, n=toy.n)
    nll = m["pdf"].createNLL(data, ROOT.RooFit.EvalBackend("cpu"))
    ROOT.RooAbsReal.clearEvalErrorLog()
    ROOT.RooAbsReal.setEvalErrorLoggingMode(ROOT.RooAbsReal.CollectErrors)
    try:
        value = nll.getVal()
        assert not np.isfinite(value)
        assert ROOT.RooAbsReal.numEvalErrors() > 0
    finally:
        ROOT.RooAbsReal.setEvalErrorLoggingMode(ROOT.RooAbsReal.PrintErrors)
        ROOT.RooAbsReal.clearEvalErrorLog()


def test_workspace_round_trip_in_new_process(roofit, idx, tmp_path):
    ROOT = roofit
    toy = Toy(n=600, seed=6)
    ref = Toy(n=1000, seed=7)
    m = toy.model(idx, reference_sample={"weights": np.ones(ref.n), "ratios": ref.r, "shape": ref.shape})
    data = dataset_with_index({}, idx, weights=poisson_bootstrap_weights(toy.n, seed=1), name="data")
    m["poi"][0].setVal(1.4)
    m["nuisance_parameters"][0].setVal(0.3)
    ws = to_workspace(m, data)
    path = tmp_path / "nsbi.root"
    ws.writeToFile(str(path))
    globs = ROOT.RooArgSet(*m["global_observables"])
    here = [
        m["pdf"]
        .createNLL(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.GlobalObservables(globs))
        .getVal(),
        m["nsbi"].expectedEvents(ROOT.RooArgSet(idx)),
    ]
    script = (
        "import json\n"
        "from rooml.roofit import load_library\n"
        "ROOT = load_library()\n"
        f"f = ROOT.TFile.Open({str(path)!r}); w = f.Get('w')\n"
        "mc = w.obj('ModelConfig'); pdf = mc.GetPdf(); data = w.data('data')\n"
        "globs = ROOT.RooFit.GlobalObservables(mc.GetGlobalObservables())\n"
        "nll = pdf.createNLL(data, ROOT.RooFit.EvalBackend('cpu'), globs)\n"
        "nsbi = w.pdf('nsbi')\n"
        "out = [nll.getVal(), nsbi.expectedEvents(mc.GetObservables())]\n"
        "sets = (mc.GetParametersOfInterest(), mc.GetNuisanceParameters(), mc.GetGlobalObservables())\n"
        "names = [[v.GetName() for v in s] for s in sets]\n"
        "print(json.dumps([names, nsbi.shapeNormalized(), out]))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    names, normalized, there = json.loads(res.stdout.strip().splitlines()[-1])
    assert names == [["mu"], ["a1", "a2"], ["a1_obs", "a2_obs"]]
    assert normalized is True
    assert there == here

    # and in a C++ macro with nothing but gSystem->Load("libRooML")
    macro = tmp_path / "nsbi_nll.C"
    macro.write_text(_MACRO)
    out = run_root_macro(macro, path)
    match = re.search(r"ROOML_NLL (\S+)", out.stdout)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) == pytest.approx(here[0], rel=1e-14)


_MACRO = r"""
#include <RooAbsPdf.h>
#include <RooAbsReal.h>
#include <RooDataSet.h>
#include <RooStats/ModelConfig.h>
#include <RooWorkspace.h>
#include <TFile.h>
#include <TSystem.h>
#include <cstdio>
#include <memory>

int nsbi_nll(const char *path)
{
   if (gSystem->Load("libRooML") < 0) return 1;
   std::unique_ptr<TFile> file{TFile::Open(path)};
   auto *w = file->Get<RooWorkspace>("w");
   auto *mc = static_cast<RooStats::ModelConfig *>(w->obj("ModelConfig"));
   std::unique_ptr<RooAbsReal> nll{mc->GetPdf()->createNLL(*w->data("data"), RooFit::EvalBackend::Cpu(),
                                                           RooFit::GlobalObservables(*mc->GetGlobalObservables()))};
   std::printf("ROOML_NLL %.17g\n", nll->getVal());
   return 0;
}
"""


def _offshell_inputs(x):
    t = offshell4l.truth
    ratios = {p: t.ratio(p, x, reference="SBI") for p in PROCESSES}
    shape = {(p, "alpha"): (t.g(p, x, -1.0), t.g(p, x, 1.0)) for p in PROCESSES}
    return ratios, shape


def test_offshell4l_closure(roofit):
    """Closure with the exact offshell4l truths.

    Exact truth ratios as inputs: 20 Poisson toys at mu = 1, alpha = 0.5 (global observable drawn around
    the truth) give mu-hat and alpha-hat pulls with mean within 3/sqrt(20) of 0.
    """
    ROOT = roofit
    t = offshell4l.truth
    lumi, mu_true, alpha_true, n_toys = 10.0, 1.0, 0.5, 20
    y = t.yields(0.0)
    ref = offshell4l.generate("SBI", 30_000, seed=99)
    ref_r, ref_shape = _offshell_inputs(ref)
    idx = index_variable()
    first = offshell4l.make_pseudodata(mu_true, alpha_true, seed=500, lumi_scale=lumi)
    r, shape = _offshell_inputs(first)
    m = nsbi_model(
        "nsbi",
        idx,
        yields={p: lumi * y[p] for p in PROCESSES},
        coefficients=COEFFICIENTS,
        ratios=r,
        poi=[("mu", 1.0, 0.0, 10.0)],
        nps=["alpha"],
        norm={(p, "alpha"): (t.G(p, -1.0), t.G(p, 1.0)) for p in PROCESSES},
        shape=shape,
        reference_sample={"weights": ref.weight, "ratios": ref_r, "shape": ref_shape},
    )
    mu, alpha = m["poi"][0], m["nuisance_parameters"][0]
    glob = m["global_observables"][0]
    rng = np.random.default_rng(12)
    pulls = []
    for i in range(n_toys):
        x = (
            first
            if i == 0
            else offshell4l.make_pseudodata(mu_true, alpha_true, seed=500 + i, lumi_scale=lumi)
        )
        if i:
            update_event_inputs(m, *_offshell_inputs(x))
        data = dataset_with_index({}, idx, n=len(x))
        glob.setVal(rng.normal(alpha_true, 1.0))
        mu.setVal(1.0), alpha.setVal(0.0)
        res = m["pdf"].fitTo(
            data,
            ROOT.RooFit.EvalBackend("cpu"),
            ROOT.RooFit.PrintLevel(-1),
            ROOT.RooFit.Save(),
            ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(glob)),
        )
        assert res.status() == 0
        pulls.append(
            ((mu.getVal() - mu_true) / mu.getError(), (alpha.getVal() - alpha_true) / alpha.getError())
        )
    pulls = np.array(pulls)
    print(
        f"offshell4l closure, {n_toys} toys: mu pull {pulls[:, 0].mean():+.3f} "
        f"(width {pulls[:, 0].std():.2f}), "
        f"alpha pull {pulls[:, 1].mean():+.3f} (width {pulls[:, 1].std():.2f})"
    )
    assert np.all(np.abs(pulls.mean(axis=0)) < 3 / np.sqrt(n_toys))


def test_cached_shape_columns_are_exact_and_never_stale(roofit, idx):
    """Reused shape-factor columns give the NLL of a freshly built model, to the last bit.

    Minuit moves one parameter at a time and RooNSBIPdf reuses the columns (per event and on the reference
    sample) of the parameters that did not move.  Checked along such a path, and after a new dataset (other
    events, or the same events in another order) is set on the same NLL, so that every per-event input
    changes while the evaluator's buffers keep their addresses.
    """
    ROOT = roofit
    toy = Toy(n=900, seed=5)
    ref = Toy(n=700, seed=6)
    reference = {"weights": np.ones(ref.n), "ratios": ref.r, "shape": ref.shape}

    def move(m, point):
        mu, (x1, x2) = point
        m["poi"][0].setVal(mu)
        m["nuisance_parameters"][0].setVal(x1)
        m["nuisance_parameters"][1].setVal(x2)

    def fresh(point, data):
        m = toy.model(idx, reference_sample=reference)
        move(m, point)
        return m["nsbi"].createNLL(data, ROOT.RooFit.EvalBackend("cpu")).getVal()

    model = toy.model(idx, reference_sample=reference)
    data = dataset_with_index({}, idx, n=toy.n)
    move(model, (1.0, (0.1, 0.2)))
    nll = model["nsbi"].createNLL(data, ROOT.RooFit.EvalBackend("cpu"))
    # one parameter at a time, back to an earlier value, outside |alpha| < 1 and back in
    path = [(1.0, (0.1, 0.2)), (1.0, (0.15, 0.2)), (1.0, (0.15, -0.3)), (1.2, (0.15, -0.3)),
            (1.2, (0.1, -0.3)), (1.2, (0.1, 1.5)), (1.2, (0.1, 0.2)), (1.2, (-0.7, 0.2))]
    for point in path:
        move(model, point)
        assert nll.getVal() == fresh(point, data), point

    # other events; then the same events reversed (the same per-event values at other positions: columns
    # reused by a position-blind check would pair with the wrong ratios)
    point, before = path[-1], nll.getVal()
    resampled = np.random.default_rng(9).integers(0, toy.n, toy.n)
    for rows in (resampled, resampled[::-1]):
        data = ROOT.RooDataSet.from_numpy({idx.GetName(): rows.astype(np.float64)}, [idx])
        nll.setData(data)
        assert nll.getVal() == fresh(point, data)
    assert nll.getVal() != pytest.approx(before, rel=1e-9)
