"""NLL evaluation time per Minuit call: rooml's per-event RooFit classes against RooFit and memory bandwidth.

For n events, S processes and M shape nuisance parameters (each acting on the
shape and the normalization of every process) the same likelihood is built
several ways and timed with RooFit's vectorized CPU backend (``EvalBackend("cpu")``):

* ``nsbi``: ``RooNSBIPdf`` with per-event ``r_j`` and ``g_jk^+-`` as
  ``RooEventColumn``s (``S (1 + 2M)`` per-event numbers per event);
* ``nsbinll``: the same ``RooNSBIPdf`` through rooml's ``RooNSBINLL`` (what
  ``rooml.infer`` fits with: one pass over packed columns per call, computing
  the value and the gradient's sums);
* ``interp``: ``RooAddPdf`` of S ``RooInterpolatedDensity`` (columns of
  ``p_j``, ``p_j^+-k``) with ``FlexibleInterpVar`` yields;
* ``analytic`` (reference a): the same numbers made by RooFit itself,
  ``RooAddPdf`` of S ``PiecewiseInterpolation`` of RooGaussians (nominal and
  shifted means; RooFit caches them as they depend on the observable only),
  wrapped self-normalized, with ``FlexibleInterpVar`` yields: the same number of
  per-event terms and the same interpolation code (5);
* ``gauss``: a plain ``RooAddPdf`` of S RooGaussians whose means move with the M
  parameters (``PiecewiseInterpolation`` of constants) and ``FlexibleInterpVar``
  yields: S exponentials per event, independent of M.

All give the same NLL differences (up to the constant ``log p_ref``), which
the script checks.  A call changes one nuisance parameter (``mu`` when M = 0),
so RooFit recomputes everything that depends on it.  Reference b is the
memory-bandwidth bound ``8 S (1 + M)`` bytes per event (the issue's figure;
``8 S (1 + 2M)`` when reading both variations) at the bandwidth of a numpy sum
over 256 MB measured in the same run.  The per-event columns are looked up once
per dataset (checked with ``RooEventColumn.evaluations()``).

    .venv/bin/python benchmarks/bench_nll.py [--events 100000 1000000] [--nps 0 5 20] [--calls 20]
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from rooml.roofit import dataset_with_index, event_column, index_variable, load_library, nsbi_model, nsbi_nll
from rooml.roofit.interp import interpolated_density

MEANS = (0.0, 0.7, -0.6)  # process means; all widths 1
SHIFT = 0.02  # mean shift of a process at alpha_k = +-1 (scaled per parameter and process)
YIELDS = (0.1, 0.5, 0.4)  # fractions of n


def gauss(x, m):
    """Unit-width normal density."""
    return np.exp(-0.5 * (x - m) ** 2) / np.sqrt(2 * np.pi)


def shifts(S, M):
    """Per-process, per-parameter mean shifts and yield ratios G_jk^-+ (deterministic)."""
    rng = np.random.default_rng(7)
    d = SHIFT * rng.uniform(0.5, 1.5, (S, M)) * rng.choice([-1, 1], (S, M))
    g = rng.uniform(0.02, 0.06, (S, M))
    return d, 1 - g, 1 + 1.3 * g


def measure_bandwidth(repeats: int = 5) -> float:
    """Bytes per second read by a numpy sum over 256 MB (best of ``repeats``)."""
    a = np.ones(2**25)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t0)
    return a.nbytes / best


def time_calls(nll, param, calls: int) -> float:
    """Median seconds per ``nll.getVal()`` after moving ``param`` (forces a recomputation)."""
    nll.getVal()
    times = []
    v0 = param.getVal()
    for i in range(calls):
        param.setVal(v0 + 1e-3 * (1 + i % 7))
        t0 = time.perf_counter()
        nll.getVal()
        times.append(time.perf_counter() - t0)
    param.setVal(v0)
    return float(np.median(times))


def make_nll(ROOT, pdf, data):
    """Create the extended NLL with the vectorized CPU backend, no offset."""
    return pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.Extended(True),
                         ROOT.RooFit.Offset("off"))


def flexible_yield(ROOT, name, nu, mu, alphas, lo, hi, keep):
    """Nu * f * FlexibleInterpVar(lo, hi; alphas) with FlexibleInterpVar code 4 (rooml 5)."""
    parts = [ROOT.RooConstVar(f"{name}_nu", "", nu)]
    if mu is not None:
        parts.append(mu)
    if alphas:
        fiv = ROOT.RooStats.HistFactory.FlexibleInterpVar(
            f"{name}_G", "", ROOT.RooArgList(*alphas), 1.0, list(lo), list(hi), [4] * len(alphas))
        parts.append(fiv)
    y = ROOT.RooProduct(f"{name}_yield", "", ROOT.RooArgList(*parts))
    keep += parts + [y]
    return y


def build_models(ROOT, x_vals, S, M, which):
    """Build the models for events ``x_vals``; return ({name: (pdf, data, param, columns)}, keep)."""
    n = len(x_vals)
    d, g_lo, g_hi = shifts(S, M)
    nus = [f * n for f in YIELDS[:S]]
    p = np.array([gauss(x_vals, MEANS[j]) for j in range(S)])
    p_ref = (np.array(nus)[:, None] * p).sum(0) / sum(nus)
    models, keep = {}, []
    names = [f"a{k}" for k in range(M)]
    procs = [f"P{j}" for j in range(S)]
    if {"nsbi", "nsbinll", "interp"} & set(which):
        idx = index_variable(n=n)
        data_idx = dataset_with_index({}, idx, n=n)
        keep += [idx, data_idx]
        shape = {}
        for j in range(S):
            for k in range(M):
                shape[(procs[j], names[k])] = (gauss(x_vals, MEANS[j] - d[j, k]) / p[j],
                                               gauss(x_vals, MEANS[j] + d[j, k]) / p[j])
    if "nsbi" in which or "nsbinll" in which:
        unit = ROOT.RooConstVar("f_one", "constant coefficient", 1.0)
        m = nsbi_model("nsbi", idx, yields=dict(zip(procs, nus)),
                       coefficients={pr: ("mu" if j == 0 else unit) for j, pr in enumerate(procs)},
                       ratios={pr: p[j] / p_ref for j, pr in enumerate(procs)},
                       poi=[("mu", 1.0, 0.0, 10.0)], nps=[(a, 0.0, -5.0, 5.0) for a in names],
                       norm={(procs[j], names[k]): (g_lo[j, k], g_hi[j, k])
                             for j in range(S) for k in range(M)},
                       shape=shape, constraints=False)
        param = m["nuisance_parameters"][0] if M else m["poi"][0]
        for name in {"nsbi", "nsbinll"} & set(which):
            models[name] = (m["nsbi"], data_idx, param, list(m["columns"].values()))
        keep.append(m)
    if "interp" in which:
        mu = ROOT.RooRealVar("mu_i", "", 1.0, 0.0, 10.0)
        alphas = [ROOT.RooRealVar(f"{a}_i", "", 0.0, -5.0, 5.0) for a in names]
        comps, ylds, cols = [], [], []
        for j in range(S):
            nom = event_column(f"i_p{j}", p[j], idx)
            lo = [event_column(f"i_lo{j}_{k}", shape[(procs[j], names[k])][0] * p[j], idx) for k in range(M)]
            hi = [event_column(f"i_hi{j}_{k}", shape[(procs[j], names[k])][1] * p[j], idx) for k in range(M)]
            comps.append(interpolated_density(f"i_pdf{j}", nom, lo, hi, alphas, 5))
            cols += [nom, *lo, *hi]
            ylds.append(flexible_yield(ROOT, f"i{j}", nus[j], mu if j == 0 else None, alphas,
                                       g_lo[j], g_hi[j], keep))
        pdf = ROOT.RooAddPdf("interp", "", ROOT.RooArgList(*comps), ROOT.RooArgList(*ylds))
        keep += [mu, alphas, comps, cols, pdf]
        models["interp"] = (pdf, data_idx, alphas[0] if M else mu, cols)
    if "analytic" in which or "gauss" in which:
        x = ROOT.RooRealVar("x", "x", -12.0, 12.0)
        data_x = ROOT.RooDataSet.from_numpy({"x": x_vals}, ROOT.RooArgSet(x))
        one = ROOT.RooConstVar("one", "", 1.0)
        keep += [x, data_x, one]
    if "analytic" in which:
        mu = ROOT.RooRealVar("mu_a", "", 1.0, 0.0, 10.0)
        alphas = [ROOT.RooRealVar(f"{a}_a", "", 0.0, -5.0, 5.0) for a in names]
        comps, ylds = [], []
        for j in range(S):
            def g(tag, m_):
                mean = ROOT.RooConstVar(f"a_m{tag}", "", m_)
                pdf_ = ROOT.RooGaussian(f"a_g{tag}", "", x, mean, one)
                keep.extend([mean, pdf_])
                return pdf_
            nom = g(f"{j}", MEANS[j])
            lo = [g(f"{j}_{k}m", MEANS[j] - d[j, k]) for k in range(M)]
            hi = [g(f"{j}_{k}p", MEANS[j] + d[j, k]) for k in range(M)]
            pw = ROOT.PiecewiseInterpolation(f"a_pw{j}", "", nom, ROOT.RooArgList(*lo), ROOT.RooArgList(*hi),
                                             ROOT.RooArgList(*alphas))
            pw.setAllInterpCodes(5)
            wrap = ROOT.RooWrapperPdf(f"a_pdf{j}", "", pw, True)
            comps.append(wrap)
            ylds.append(flexible_yield(ROOT, f"a{j}", nus[j], mu if j == 0 else None, alphas,
                                       g_lo[j], g_hi[j], keep))
            keep += [pw]
        pdf = ROOT.RooAddPdf("analytic", "", ROOT.RooArgList(*comps), ROOT.RooArgList(*ylds))
        keep += [mu, alphas, comps, pdf]
        models["analytic"] = (pdf, data_x, alphas[0] if M else mu, [])
    if "gauss" in which:
        mu = ROOT.RooRealVar("mu_g", "", 1.0, 0.0, 10.0)
        alphas = [ROOT.RooRealVar(f"{a}_g", "", 0.0, -5.0, 5.0) for a in names]
        comps, ylds = [], []
        for j in range(S):
            if M:
                c = ROOT.RooConstVar(f"g_c{j}", "", MEANS[j])
                lo = [ROOT.RooConstVar(f"g_lo{j}_{k}", "", MEANS[j] - d[j, k]) for k in range(M)]
                hi = [ROOT.RooConstVar(f"g_hi{j}_{k}", "", MEANS[j] + d[j, k]) for k in range(M)]
                mean = ROOT.PiecewiseInterpolation(f"g_mean{j}", "", c, ROOT.RooArgList(*lo),
                                                   ROOT.RooArgList(*hi), ROOT.RooArgList(*alphas))
                keep += [c, lo, hi]
            else:
                mean = ROOT.RooConstVar(f"g_mean{j}", "", MEANS[j])
            pdf_ = ROOT.RooGaussian(f"g_pdf{j}", "", x, mean, one)
            comps.append(pdf_)
            ylds.append(flexible_yield(ROOT, f"g{j}", nus[j], mu if j == 0 else None, alphas,
                                       g_lo[j], g_hi[j], keep))
            keep += [mean]
        pdf = ROOT.RooAddPdf("gauss", "", ROOT.RooArgList(*comps), ROOT.RooArgList(*ylds))
        keep += [mu, alphas, comps, pdf]
        models["gauss"] = (pdf, data_x, alphas[0] if M else mu, [])
    return models, keep


def delta_nll(nll, param, step=0.3) -> float:
    """NLL(param + step) - NLL(param)."""
    v0 = param.getVal()
    a = nll.getVal()
    param.setVal(v0 + step)
    b = nll.getVal()
    param.setVal(v0)
    return b - a


def main() -> None:
    """Run the benchmark grid and print times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=float, nargs="+", default=[1e5, 1e6])
    parser.add_argument("--nps", type=int, nargs="+", default=[0, 5, 20])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20, help="timed calls per model (fewer for slow ones)")
    parser.add_argument("--models", nargs="+", default=["nsbi", "nsbinll", "interp", "analytic", "gauss"])
    args = parser.parse_args()
    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    S = args.processes
    bandwidth = measure_bandwidth()
    print(f"memory bandwidth (numpy sum over 256 MB): {bandwidth / 1e9:.1f} GB/s; S = {S} processes")
    header = (f"{'events':>8s} {'M':>3s} " + " ".join(f"{m + ' [ms]':>14s}" for m in args.models)
              + "   nsbi/analytic  nsbinll/analytic  interp/analytic  nsbinll/bound(1+M)  nsbinll/bound(1+2M)"
              + "  dNLL rel. diff")
    print(header)
    rng = np.random.default_rng(1)
    for n in (int(v) for v in args.events):
        x_vals = np.concatenate([rng.normal(MEANS[j], 1.0, int(YIELDS[j] * n)) for j in range(S)])
        x_vals = np.resize(x_vals, n)
        for M in args.nps:
            models, keep = build_models(ROOT, x_vals, S, M, args.models)
            t, dn = {}, {}
            for name, (pdf, data, param, cols) in models.items():
                before = sum(c.evaluations() for c in cols)
                nll = nsbi_nll(pdf, data, offset=False) if name == "nsbinll" else make_nll(ROOT, pdf, data)
                first = time.perf_counter()
                nll.getVal()
                first = time.perf_counter() - first
                calls = max(3, min(args.calls, int(20.0 / max(first, 1e-3))))
                t[name] = time_calls(nll, param, calls)
                dn[name] = delta_nll(nll, param)
                looked_up = sum(c.evaluations() for c in cols) - before
                if cols and looked_up != len(cols) * n:
                    raise RuntimeError(f"{name}: {looked_up} column look-ups for {len(cols)} columns x {n} "
                                       "events: the per-event inputs were not evaluated exactly once")
                del nll
                gc.collect()
            bound1 = 8 * S * (1 + M) * n / bandwidth
            bound2 = 8 * S * (1 + 2 * M) * n / bandwidth
            ref = dn.get("analytic")
            same = [v for k, v in dn.items() if k != "gauss"]  # gauss moves means, not densities
            agree = max(abs(v - ref) / abs(ref) for v in same) if ref is not None else float("nan")

            def ratio(a, b):
                return f"{t[a] / t[b]:.2f}" if a in t and b in t else "-"

            fastest = t.get("nsbinll", float("nan"))
            print(f"{n:8d} {M:3d} " + " ".join(f"{t[m] * 1e3:14.2f}" for m in args.models)
                  + f"   {ratio('nsbi', 'analytic'):>13s}  {ratio('nsbinll', 'analytic'):>16s}"
                  + f"  {ratio('interp', 'analytic'):>15s}"
                  + f"  {fastest / bound1:18.1f}  {fastest / bound2:19.1f}  {agree:.2e}", flush=True)
            del models, keep
            gc.collect()


if __name__ == "__main__":
    main()
