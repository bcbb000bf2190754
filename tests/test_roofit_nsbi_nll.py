"""RooNSBINLL: the NSBI NLL with analytic gradient and Hessian, against RooFit's own NLL of the same model."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rooml.infer import create_nll, fit
from rooml.infer.fit import minimize
from rooml.roofit import dataset_with_index, index_variable, nsbi_nll, poisson_bootstrap_weights
from root_macro import run_root_macro
from scipy.stats import norm
from test_roofit_nsbi import Toy

# (mu, (a1, a2)): inside and outside |alpha| < 1, on the boundary
POINTS = [(1.0, (0.0, 0.0)), (0.3, (0.4, -0.7)), (2.5, (-1.0, 1.0)), (1.7, (1.6, -2.2)), (0.8, (-0.3, 0.999))]


def _model(idx, **kw):
    """Build the Toy model with a reference sample, mixed normalization codes and a code-1 shape."""
    toy = Toy(n=800, seed=4)
    ref = Toy(n=3000, seed=5)
    w = np.random.default_rng(2).uniform(0.5, 1.5, ref.n)
    m = toy.model(idx, reference_sample={"weights": w, "ratios": ref.r, "shape": ref.shape},
                  norm_codes={("B", "a2"): 0, ("SBI", "a1"): 2},
                  shape_codes={("SBI", "a2"): 1}, **kw)
    return toy, m


def _data(idx, n, weighted):
    weights = poisson_bootstrap_weights(n, seed=3) if weighted else None
    return dataset_with_index({}, idx, n=n, weights=weights)


def _set(m, mu, alphas):
    m["poi"][0].setVal(mu)
    for a, v in zip(m["nuisance_parameters"], alphas):
        a.setVal(v)


def _range_constant(m):
    """RooFit normalizes each Gaussian constraint over its parameter's range; rooml over the real line."""
    total = 0.0
    for a in m["nuisance_parameters"]:
        total -= math.log(norm.cdf(a.getMax()) - norm.cdf(a.getMin()))
    return total


def _parameters(ROOT, nll):
    params = ROOT.RooArgSet()
    nll.getParameters(ROOT.nullptr, params)
    return list(params)


@pytest.mark.parametrize("weighted", [False, True])
def test_value_equals_roofit_nll(roofit, weighted):
    idx = index_variable()
    toy, m = _model(idx)
    data = _data(idx, toy.n, weighted)
    ours = nsbi_nll(m, data, offset=False)
    assert isinstance(ours, roofit.RooNSBINLL)
    reference = create_nll(m["pdf"], data, native=False, offset=False)
    worst = 0.0
    for mu, alphas in POINTS:
        _set(m, mu, alphas)
        want = reference.getVal() + _range_constant(m)
        worst = max(worst, abs(ours.getVal() - want) / abs(want))
    print(f"max relative difference from RooFit's NLL: {worst:.1e}")
    assert worst < 1e-13


def test_gradient_and_hessian_match_finite_differences(roofit):
    idx = index_variable()
    toy, m = _model(idx)
    nll = nsbi_nll(m, _data(idx, toy.n, True), offset=False)
    params = _parameters(roofit, nll)
    floating = [i for i, p in enumerate(params) if not p.isConstant()]
    assert [params[i].GetName() for i in floating] == ["a1", "a2", "mu"]
    n = len(params)
    for mu, alphas in [(0.3, (0.4, -0.7)), (1.7, (1.6, -2.2)), (2.2, (-0.5, 0.3))]:
        _set(m, mu, alphas)
        grad, hess = np.zeros(n), np.zeros(n * n)
        nll.gradient(grad)
        nll.hessian(hess)
        hess = hess.reshape(n, n)
        assert np.all(grad[[i for i in range(n) if i not in floating]] == 0)
        for i in floating:
            p, x, h = params[i], params[i].getVal(), 1e-5
            p.setVal(x + h)
            f_plus, g_plus = nll.getVal(), np.zeros(n)
            nll.gradient(g_plus)
            p.setVal(x - h)
            f_minus, g_minus = nll.getVal(), np.zeros(n)
            nll.gradient(g_minus)
            p.setVal(x)
            assert grad[i] == pytest.approx((f_plus - f_minus) / (2 * h), rel=1e-6, abs=1e-4)
            np.testing.assert_allclose(hess[i, floating], ((g_plus - g_minus) / (2 * h))[floating],
                                       rtol=1e-6, atol=1e-4 * np.abs(hess).max())
        assert np.allclose(hess, hess.T)


def _gauss(x, mean):
    return np.exp(-0.5 * (x - mean) ** 2) / np.sqrt(2 * np.pi)


def _gaussian_model(idx, n=4000, seed=11):
    """Build a well-posed NSBI fit.

    Unit-width normal processes, nuisance parameters shifting their means, data drawn at mu = 1,
    alpha = 0, shapes normalized exactly (a Simpson grid as reference sample).
    """
    from rooml.roofit import nsbi_model

    means, fractions = {"S": 0.0, "B1": 0.8, "B2": -0.7}, {"S": 0.1, "B1": 0.5, "B2": 0.4}
    shifts = {("S", "a1"): 0.15, ("B1", "a1"): -0.1, ("B2", "a2"): 0.2, ("S", "a2"): 0.05}
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(means[p], 1.0, rng.poisson(fractions[p] * n)) for p in means])
    grid = np.linspace(-9, 9, 2001)
    simpson = np.ones_like(grid)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0

    def inputs(points):
        p_ref = sum(fractions[p] * _gauss(points, means[p]) for p in means)
        ratios = {p: _gauss(points, means[p]) / p_ref for p in means}
        shape = {(p, a): (_gauss(points, means[p] - d) / _gauss(points, means[p]),
                          _gauss(points, means[p] + d) / _gauss(points, means[p]))
                 for (p, a), d in shifts.items()}
        return p_ref, ratios, shape

    p_ref, ratios, shape = inputs(grid)
    reference = {"weights": simpson * (grid[1] - grid[0]) / 3 * p_ref, "ratios": ratios, "shape": shape,
                 "monte_carlo": False}
    _, ratios, shape = inputs(x)
    model = nsbi_model("gauss", idx, yields={p: f * n for p, f in fractions.items()},
                       coefficients={"S": "mu", "B1": "exp(0.1 * (mu - 1))", "B2": "2 - sqrt(mu)"},
                       ratios=ratios, poi=[("mu", 1.0, 0.0, 3.0)], nps=["a1", "a2"],
                       norm={("S", "a1"): (0.95, 1.06), ("B2", "a2"): (1.03, 0.98)}, shape=shape,
                       reference_sample=reference)
    return model, dataset_with_index({}, idx, n=len(x))


def test_fit_agrees_with_roofit_and_needs_few_passes(roofit):
    idx = index_variable()
    m, data = _gaussian_model(idx)

    def reset():
        _set(m, 1.4, (0.3, -0.2))

    reset()
    classic = minimize(create_nll(m["pdf"], data, native=False))  # RooFit's NLL, numerical derivatives
    assert classic.status() == 0
    reset()
    ours = fit(m["pdf"], data)
    assert ours.status == 0 and ours.covariance_quality == 3
    for p in classic.floatParsFinal():
        print(p.GetName(), p.getVal(), p.getError(), ours[p.GetName()])
        assert ours[p.GetName()].value == pytest.approx(p.getVal(), abs=0.01 * p.getError())
        assert ours[p.GetName()].error == pytest.approx(p.getError(), rel=0.03)
    # passes over the events: a few per Migrad iteration, not one per parameter and gradient component
    reset()
    nll = create_nll(m["pdf"], data)
    assert isinstance(nll, roofit.RooNSBINLL)
    minimize(nll)
    print(f"passes over the events in Migrad + Hesse: {nll.passes()}")
    assert nll.passes() < 40


def test_offset_is_hidden_outside_the_minimizer(roofit):
    idx = index_variable()
    toy, m = _model(idx)
    data = _data(idx, toy.n, False)
    nll = nsbi_nll(m, data, offset=True)
    absolute = nsbi_nll(m, data, offset=False).getVal()
    assert nll.isOffsetting()
    roofit.RooAbsReal.setHideOffset(False)
    try:
        assert nll.getVal() == 0.0  # the first value becomes the offset
        _set(m, 1.3, (0.2, -0.1))
        moved = nll.getVal()
    finally:
        roofit.RooAbsReal.setHideOffset(True)
    assert moved == pytest.approx(nll.getVal() - absolute, abs=1e-9)
    assert nll.offset() == absolute


_THREADS_SCRIPT = """
import sys; sys.path.insert(0, sys.argv[1])
import numpy as np
from test_roofit_nsbi_nll import _model, _data, _parameters, _set
from rooml.roofit import index_variable, load_library, nsbi_nll
ROOT = load_library()
idx = index_variable()
toy, m = _model(idx)
nll = nsbi_nll(m, _data(idx, toy.n, True), offset=False)
_set(m, 1.7, (1.6, -0.4))
n = len(_parameters(ROOT, nll))
g, h = np.zeros(n), np.zeros(n * n)
nll.gradient(g); nll.hessian(h)
print(float(nll.getVal()).hex(), [float(v).hex() for v in g], [float(v).hex() for v in h])
"""


def test_results_do_not_depend_on_thread_count(roofit):
    outputs = []
    for threads in ("1", "2", "3"):
        env = dict(os.environ, ROOML_NUM_THREADS=threads)
        run = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(Path(__file__).parent)], env=env,
                             capture_output=True, text=True, check=True)
        outputs.append(run.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] == outputs[2]


def test_other_models_get_roofits_nll(roofit):
    idx = index_variable()
    toy = Toy(n=300, seed=6)
    data = _data(idx, toy.n, False)
    additive = toy.model(idx, shape_codes=4)
    assert nsbi_nll(additive, data) is None
    assert not isinstance(create_nll(additive["pdf"], data), roofit.RooNSBINLL)
    model = toy.model(index_variable())
    one, two = roofit.RooFit.RooConst(1.0), roofit.RooFit.RooConst(2.0)
    other = roofit.RooGaussian("g", "g", model["poi"][0], one, two)
    assert nsbi_nll(model, data, constraints=[other]) is not None
    landau = roofit.RooLandau("l", "l", model["poi"][0], one, two)
    assert nsbi_nll(model, data, constraints=[landau]) is None
    assert not isinstance(create_nll(model["pdf"], data, extended=False), roofit.RooNSBINLL)


def test_bad_per_event_ratio_names_the_event(roofit):
    idx = index_variable()
    toy = Toy(n=300, seed=7)
    m = toy.model(idx)
    bad = roofit.RooFormulaVar("r_bad", "@0 - 0.9", roofit.RooArgList(m["columns"][("r", "B")]))
    toy.r["B"] = bad
    broken = toy.model(idx)
    first = int(np.flatnonzero(Toy(n=300, seed=7).r["B"] - 0.9 <= 0)[0])
    with pytest.raises(Exception, match=rf"RooNSBINLL.*event {first}: per-event ratio r_2 \('r_bad'\)"):
        nsbi_nll(broken, _data(idx, toy.n, False))


def test_cpp_macro_fits_a_workspace_like_python(roofit, tmp_path):
    from rooml.roofit import to_workspace

    idx = index_variable()
    m, data = _gaussian_model(idx, n=2000)
    path = tmp_path / "nsbi.root"
    to_workspace(m, data).writeToFile(str(path))
    _set(m, 1.0, (0.0, 0.0))
    here = fit(m["pdf"], data)
    out = run_root_macro(Path(__file__).parents[1] / "macros" / "fit_nsbi.C", path)
    pars = {line.split()[1]: (float(line.split()[2]), float(line.split()[3]))
            for line in out.stdout.splitlines() if line.startswith("ROOML_PAR")}
    assert set(pars) == {"mu", "a1", "a2"}, out.stdout + out.stderr
    assert "status=0" in out.stdout
    for name, (value, error) in pars.items():
        assert value == pytest.approx(here[name].value, abs=1e-3 * error)
        assert error == pytest.approx(here[name].error, rel=1e-3)


def test_input_that_is_a_variable_missing_from_the_data_is_refused(roofit):
    """A per-event input that is a bare RooRealVar must be a dataset column (else one value for all)."""
    idx = index_variable()
    toy = Toy(n=200, seed=8)
    loose = roofit.RooRealVar("r_loose", "not a dataset column", 0.8, 0.1, 2.0)
    toy.r["B"] = loose
    m = toy.model(idx)
    data = _data(idx, toy.n, False)
    with pytest.raises(Exception, match=r"r_loose.*no column"):
        nsbi_nll(m, data)
    with pytest.raises(Exception, match=r"r_loose.*no column"):
        create_nll(m["pdf"], data, native=False).getVal()
    # as a column of the dataset it is a per-event input like any other
    values = np.random.default_rng(1).uniform(0.5, 1.0, toy.n)
    with_column = dataset_with_index({"r_loose": values}, idx, variables=[loose])
    nll = nsbi_nll(m, with_column, offset=False)
    reference = create_nll(m["pdf"], with_column, native=False, offset=False)
    _set(m, 1.2, (0.1, -0.3))
    assert nll.getVal() == pytest.approx(reference.getVal() + _range_constant(m), rel=1e-13)
