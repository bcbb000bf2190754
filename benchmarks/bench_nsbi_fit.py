"""Wall time of a full NSBI fit: 1e6 events, 3 processes, 10 nuisance parameters, Minuit2 + Hesse.

The per-event inputs are synthetic and exact: processes are unit-width normals
in x (means 0, 0.7, -0.6), each nuisance parameter shifts every process's mean
(shape, per-event ``g_jk^+-`` = ratio of shifted to nominal normal) and scales
its yield (``G_jk^+-``), code 5 for both; the reference density is the nominal
mixture, so ``r_j = p_j / p_ref``.  Data are drawn at the truth (mu = 1, all
alpha = 0), with Gaussian constraints on the alphas.  Each sample is fitted
(Minuit2 strategy 1, then Hesse, from mu = 1.2, alpha = 0.1) with rooml's
``RooNSBINLL`` (analytic gradient and Hessian; what ``rooml.infer`` uses) and,
up to ``--roofit-max`` events, with RooFit's own NLL of the same
``RooNSBIPdf`` (vectorized CPU backend, numerical gradient) as the reference.

    .venv/bin/python benchmarks/bench_nsbi_fit.py [--events 1e5 1e6] [--nps 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_nll import MEANS, YIELDS, gauss, shifts
from rooml._core import default_threads
from rooml.infer import create_nll
from rooml.infer.fit import minimize
from rooml.roofit import dataset_with_index, index_variable, load_library, nsbi_model


def reference_points(n_reference: int, rng):
    """Return points and weights of the shape-normalization reference.

    ``n_reference`` events drawn from p_ref, or for ``n_reference = 0`` a Simpson grid of 4001 points
    on [-9, 9] with weights p_ref(x) dx (exact integrals).
    """
    if n_reference > 0:
        choice = rng.choice(len(YIELDS), size=n_reference, p=np.array(YIELDS) / np.sum(YIELDS))
        return rng.normal(np.asarray(MEANS)[choice], 1.0), np.ones(n_reference)
    x = np.linspace(-9.0, 9.0, 4001)
    simpson = np.ones_like(x)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    p_ref = sum(y * gauss(x, m) for y, m in zip(YIELDS, MEANS)) / np.sum(YIELDS)
    return x, simpson * (x[1] - x[0]) / 3.0 * p_ref


def build(n: int, M: int, seed: int = 1, n_reference: int = 0):
    """Build the NSBI model and a dataset of about n events drawn at mu = 1, alpha = 0.

    The interpolated shapes are normalized on a reference sample (``reference_sample`` of
    :func:`rooml.roofit.nsbi_model`, see :func:`reference_points`): without it the code-5 shape factors
    do not integrate to one away from alpha = 0, +-1, and the likelihood grows without bound as the
    alphas leave [-1, 1] (Migrad runs every alpha to its limit).  A Monte-Carlo reference sample must be
    much larger than the data: its statistical error on N_j(alpha) enters the NLL multiplied by the
    number of data events (with 1e6 events and 2e5 reference events, a slope of hundreds per unit alpha).
    """
    S = 3
    rng = np.random.default_rng(seed)
    counts = rng.poisson(np.array(YIELDS) * n)
    x = np.concatenate([rng.normal(MEANS[j], 1.0, counts[j]) for j in range(S)])
    d, g_lo, g_hi = shifts(S, M)
    procs = [f"P{j}" for j in range(S)]
    names = [f"alpha{k}" for k in range(M)]
    p = np.array([gauss(x, MEANS[j]) for j in range(S)])
    nus = np.array(YIELDS) * n
    p_ref = (nus[:, None] * p).sum(0) / nus.sum()
    xr, wr = reference_points(n_reference, rng)
    pr = np.array([gauss(xr, MEANS[j]) for j in range(S)])
    pr_ref = (nus[:, None] * pr).sum(0) / nus.sum()
    reference = {
        "weights": wr,
        "monte_carlo": n_reference > 0,
        "ratios": {procs[j]: pr[j] / pr_ref for j in range(S)},
        "shape": {(procs[j], names[k]): (gauss(xr, MEANS[j] - d[j, k]) / pr[j],
                                         gauss(xr, MEANS[j] + d[j, k]) / pr[j])
                  for j in range(S) for k in range(M)},
    }
    unit = load_library().RooConstVar("f_one", "constant coefficient", 1.0)
    idx = index_variable(n=len(x))
    data = dataset_with_index({}, idx, n=len(x))
    model = nsbi_model(
        "nsbi", idx, yields=dict(zip(procs, nus)),
        coefficients={pr: ("mu" if j == 0 else unit) for j, pr in enumerate(procs)},
        ratios={pr: p[j] / p_ref for j, pr in enumerate(procs)},
        poi=[("mu", 1.0, -5.0, 10.0)], nps=[(a, 0.0, -5.0, 5.0) for a in names],
        norm={(procs[j], names[k]): (g_lo[j, k], g_hi[j, k]) for j in range(S) for k in range(M)},
        shape={(procs[j], names[k]): (gauss(x, MEANS[j] - d[j, k]) / p[j],
                                      gauss(x, MEANS[j] + d[j, k]) / p[j])
               for j in range(S) for k in range(M)},
        reference_sample=reference,
    )
    return model, data, idx


def reset(model) -> None:
    """Start values of a fit: mu = 1.2, alphas = 0.1 (away from the truth)."""
    model["poi"][0].setVal(1.2)
    for a in model["nuisance_parameters"]:
        a.setVal(0.1)


def timed_fit(model, data, native: bool):
    """Fit from the start values: (seconds for the NLL, seconds for Migrad + Hesse, RooFitResult, passes)."""
    reset(model)
    t0 = time.perf_counter()
    nll = create_nll(model["pdf"], data, native=native)
    t_nll = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = minimize(nll)
    t_min = time.perf_counter() - t0
    return t_nll, t_min, result, (nll.passes() if native else None)


def main() -> None:
    """Build, fit with rooml's RooNSBINLL and with RooFit's NLL of the same model, print times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=float, nargs="+", default=[1e5, 1e6])
    parser.add_argument("--nps", type=int, default=10)
    parser.add_argument("--reference", type=float, default=0,
                        help="Monte-Carlo reference events for the shape normalization (0: exact quadrature)")
    parser.add_argument("--roofit-max", type=float, default=1e5,
                        help="largest sample also fitted through RooFit's NLL (numerical gradient; slow)")
    args = parser.parse_args()
    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    print(f"NSBI fit, 3 processes, {args.nps} nuisance parameters, Minuit2 strategy 1 + Hesse, "
          f"{default_threads()} threads")
    for n in args.events:
        t0 = time.perf_counter()
        model, data, _ = build(int(n), args.nps, n_reference=int(args.reference))
        print(f"\n{data.numEntries()} events ({len(model['columns'])} per-event columns, built in "
              f"{time.perf_counter() - t0:.1f} s)")
        t_nll, t_min, result, passes = timed_fit(model, data, native=True)
        mu = result.floatParsFinal().find("mu")
        print(f"  rooml RooNSBINLL: NLL {t_nll:.2f} s + Migrad/Hesse {t_min:.2f} s = {t_nll + t_min:.2f} s, "
              f"{passes} passes over the events; status {result.status()}, mu = {mu.getVal():.4f} "
              f"+- {mu.getError():.4f}")
        if n > args.roofit_max:
            continue
        c_nll, c_min, classic, _ = timed_fit(model, data, native=False)
        cmu = classic.floatParsFinal().find("mu")
        print(f"  RooFit NLL of the same RooNSBIPdf: {c_nll + c_min:.2f} s; status {classic.status()}, "
              f"mu = {cmu.getVal():.4f} +- {cmu.getError():.4f}")
        print(f"  rooml / RooFit time: {(t_nll + t_min) / (c_nll + c_min):.3f} "
              f"({(c_nll + c_min) / (t_nll + t_min):.1f}x faster)")


if __name__ == "__main__":
    main()
