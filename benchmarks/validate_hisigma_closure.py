"""Closure of the HI-SIGMA-style likelihood with the exact bbyy truths and their shape systematic.

Per process (signal, background) the density of an event is the exact joint
truth ``P(m, x' | nu)`` of :mod:`rooml.data.bbyy` at nu = 0, -1, +1, given to
``RooInterpolatedDensity`` as ``RooEventColumn``s (code 5, "samples"
normalization from nominal samples of that process, as docs/roofit_classes.md
recommends for multiplicative codes).  The model is the extended
``s P_s + b P_b`` with ``s = mu * s_expected`` and a free background yield
``b``, times a unit Gaussian constraint on nu whose global observable is drawn
around the truth for every toy.

Each toy is Poisson pseudo-data generated exactly from the truth at
(mu, nu) (``bbyy.make_mock(..., poisson=True)``), fitted with Minuit2 + Hesse
(``rooml.infer.fit``); the toys fan out on Dask (``rooml._fanout.fan_out``,
per-toy seeds ``task_seed(seed, i)``, so the numbers do not depend on the
number of workers).  The pulls (fit - truth) / error of mu and nu are checked
against the closure criteria of the issue: mean within 3/sqrt(n_toys) of 0,
width within 10% of 1.

    nice .venv/bin/python benchmarks/validate_hisigma_closure.py [--toys 100] [--mu 1] [--nu 0.5]
        [--s-expected 100] [--n-bkg 2000] [--workers 2 | --serial] [--minos] [--save toys.npz]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rooml._fanout import fan_out, task_seed
from rooml.data import bbyy
from rooml.roofit import load_library

NU_NODES = (0.0, -1.0, 1.0)
COLUMNS = ("mu", "sigma_mu", "nu", "sigma_nu", "b", "sigma_b", "n_events", "status", "cov_quality", "seconds",
           "minos_mu", "minos_nu")


def pull_checks(name: str, pulls: np.ndarray) -> list[tuple[str, bool]]:
    """Return the closure criteria of ``pulls`` as ``(line, passed)`` pairs.

    Parameters
    ----------
    name
        Parameter name for the printout.
    pulls
        (fit - truth) / error, one per successful toy.

    Returns
    -------
    list of (str, bool)
        Mean within ``3/sqrt(n)`` of 0; width (sample standard deviation) within 10% of 1,
        each with its statistical error.
    """
    n = len(pulls)
    mean, width = float(np.mean(pulls)), float(np.std(pulls, ddof=1))
    mean_ok = abs(mean) < 3.0 / np.sqrt(n)
    width_ok = abs(width - 1.0) < 0.1
    return [
        (f"{name:6s} pull mean  {mean:+.3f} +- {width / np.sqrt(n):.3f}  (|mean| < 3/sqrt({n}) = "
         f"{3 / np.sqrt(n):.3f})", mean_ok),
        (f"{name:6s} pull width {width:.3f} +- {width / np.sqrt(2 * (n - 1)):.3f}  (|width - 1| < 0.1)",
         width_ok),
    ]


def print_checks(checks: list[tuple[str, bool]]) -> bool:
    """Print one PASS/FAIL line per criterion; return whether all passed."""
    for line, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {line}")
    return all(ok for _, ok in checks)


def normalization_samples(process: str, n: int, seed: int):
    """Ratios ``P_-/P_0`` and ``P_+/P_0`` on ``n`` nominal samples of ``process`` (samples normalization)."""
    from rooml.roofit import variation_ratios

    x = bbyy.generate(process, n, seed=seed)
    logp = [bbyy.truth.log_prob(x, process, v) for v in NU_NODES]
    return variation_ratios(logp[0], [logp[1]], [logp[2]])


def hisigma_truth_model(x, shared: dict, global_value: float) -> dict:
    """Build the HI-SIGMA model of the events ``x`` from the exact bbyy densities at nu = 0, -1, +1.

    ``shared`` holds ``s_expected``, ``n_bkg`` and the normalization ``samples`` per process; the global
    observable of nu is set to ``global_value``.  Returns the pdf, the constraint, the parameters ``mu``,
    ``nu``, ``n_bkg``, the index observable and ``keep`` (objects that must outlive the fit).
    """
    from rooml.roofit import event_column, index_variable, interpolated_density

    ROOT = load_library()
    idx = index_variable()
    nu = ROOT.RooRealVar("nu", "shape systematic", 0.0, -5.0, 5.0)
    densities = {}
    for process in bbyy.PROCESSES:
        nominal, low, high = (
            event_column(f"p_{process}_{k}", bbyy.truth.log_prob(x, process, v), idx, log=True)
            for k, v in zip(("nominal", "low", "high"), NU_NODES)
        )
        # floor "zero": code 5's polynomial turns negative for a few signal-tail events (see the docs)
        densities[process] = interpolated_density(process, nominal, [low], [high], [nu], 5, floor="zero",
                                                  normalization_samples=shared["samples"][process])
    mu = ROOT.RooRealVar("mu", "signal strength", 1.0, -3.0, 6.0)
    s_expected = ROOT.RooConstVar("s_expected", "s_expected", shared["s_expected"])
    n_sig = ROOT.RooProduct("n_sig", "mu * s_expected", ROOT.RooArgList(mu, s_expected))
    n_bkg = ROOT.RooRealVar("n_bkg", "background yield", shared["n_bkg"], 0.0, 10.0 * shared["n_bkg"] + 100.0)
    shapes = ROOT.RooArgList(densities["signal"], densities["background"])
    model = ROOT.RooAddPdf("model", "s P_s + b P_b", shapes, ROOT.RooArgList(n_sig, n_bkg))
    global_nu = ROOT.RooRealVar("global_nu", "global observable of nu", float(global_value))
    global_nu.setConstant(True)
    one = ROOT.RooConstVar("one", "one", 1.0)
    constraint = ROOT.RooGaussian("nu_constraint", "N(global_nu | nu, 1)", global_nu, nu, one)
    return {"pdf": model, "constraint": constraint, "mu": mu, "nu": nu, "n_bkg": n_bkg, "index": idx,
            "keep": [densities, s_expected, n_sig, shapes, global_nu, one]}


def fit_toy(shared: dict, i: int) -> tuple:
    """Generate toy ``i`` from the truth, build the model on its events, fit; return the fitted numbers.

    Parameters
    ----------
    shared
        Truth values, yields, fit options and the normalization samples (see :func:`main`).
    i
        Toy number; its seed is ``task_seed(shared["seed"], i)``.

    Returns
    -------
    tuple
        ``(mu, sigma_mu, nu, sigma_nu, b, sigma_b, n_events, status, covariance quality, fit seconds,
        Minos error of mu and of nu towards the truth)``.
    """
    from rooml.infer import fit
    from rooml.roofit import dataset_with_index

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    rng = np.random.default_rng(task_seed(shared["seed"], i))
    x = bbyy.make_mock(n_bkg=shared["n_bkg"], n_sig=shared["mu"] * shared["s_expected"], seed=rng,
                       nu=shared["nu"], poisson=True)
    parts = hisigma_truth_model(x, shared, global_value=rng.normal(shared["nu"], 1.0))
    model, constraint, mu, nu, idx = (parts[k] for k in ("pdf", "constraint", "mu", "nu", "index"))
    data = dataset_with_index({}, idx, n=len(x))
    t0 = time.perf_counter()
    result = fit(model, data, constraints=[constraint], extended=True, strategy=1,
                 minos=[mu, nu] if shared["minos"] else None)
    seconds = time.perf_counter() - t0
    p = result.parameters
    row = [p["mu"].value, p["mu"].error, p["nu"].value, p["nu"].error, p["n_bkg"].value, p["n_bkg"].error,
           len(x), result.status, result.covariance_quality, seconds]
    for name in ("mu", "nu"):  # the Minos error on the side of the truth (Hesse's when Minos did not run)
        lo, hi = p[name].minos or (-p[name].error, p[name].error)
        row.append(hi if p[name].value < shared[name] else -lo)
    return tuple(row)


def main() -> int:
    """Run the toys, print the pull summary with PASS/FAIL; return 0 when every criterion passes."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--toys", type=int, default=100)
    parser.add_argument("--mu", type=float, default=1.0, help="true signal strength")
    parser.add_argument("--nu", type=float, default=0.5, help="true shape-systematic parameter")
    parser.add_argument("--s-expected", type=float, default=100.0, help="signal yield at mu = 1")
    parser.add_argument("--n-bkg", type=float, default=2000.0, help="expected background yield")
    parser.add_argument("--normalization-events", type=int, default=200_000,
                        help="nominal samples per process for the samples normalization (their Monte-Carlo "
                        "error shifts all fits alike by about sigma_nu sqrt(n_data / n_samples))")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: the cores)")
    parser.add_argument("--serial", action="store_true", help="run the toys in this process, without Dask")
    parser.add_argument("--minos", action="store_true",
                        help="also run Minos for mu and nu; pulls with the Minos error towards the truth")
    parser.add_argument("--save", default=None, help="write the per-toy numbers to this new .npz file")
    args = parser.parse_args()
    if args.save and Path(args.save).exists():
        parser.error(f"{args.save} exists; choose another file")

    samples = {p: normalization_samples(p, args.normalization_events, seed=args.seed * 1000 + k)
               for k, p in enumerate(bbyy.PROCESSES)}
    shared = {"seed": args.seed, "mu": args.mu, "nu": args.nu, "s_expected": args.s_expected,
              "n_bkg": args.n_bkg, "samples": samples, "minos": args.minos}
    t0 = time.perf_counter()
    rows = fan_out(fit_toy, shared, range(args.toys), parallel=not args.serial, n_workers=args.workers,
                   desc="bbyy closure toys")
    wall = time.perf_counter() - t0
    fits = np.array(rows, dtype=float)
    ok = (fits[:, 7] == 0) & (fits[:, 8] >= 2)
    good = fits[ok]
    print(
        f"bbyy HI-SIGMA closure: {args.toys} toys, mu = {args.mu}, nu = {args.nu}, "
        f"s_expected = {args.s_expected}, "
        f"b = {args.n_bkg} (~{fits[:, 6].mean():.0f} events), samples normalization with "
        f"{args.normalization_events} nominal events per process; {int((~ok).sum())} failed fits; "
        f"{fits[:, 9].mean():.2f} s per fit, {wall:.0f} s in all"
    )
    print(f"mean errors: mu {good[:, 1].mean():.4f}, nu {good[:, 3].mean():.4f}, b {good[:, 5].mean():.1f}")
    if args.save:
        with open(args.save, "xb") as out:  # refuses to overwrite
            np.savez(out, fits=fits, columns=np.array(COLUMNS))
    spread = good[:, [0, 2]].std(axis=0, ddof=1)
    print(f"spread of the estimates: std(mu-hat) {spread[0]:.4f}, std(nu-hat) {spread[1]:.4f}")
    b_pulls = (good[:, 4] - args.n_bkg) / good[:, 5]
    print(f"(b pull mean {b_pulls.mean():+.3f}, width {b_pulls.std(ddof=1):.3f}; not a criterion)")
    checks = pull_checks("mu", (good[:, 0] - args.mu) / good[:, 1])
    checks += pull_checks("nu", (good[:, 2] - args.nu) / good[:, 3])
    if args.minos:  # mu/M, nu/M: the pulls with the Minos error towards the truth
        checks += pull_checks("mu/M", (good[:, 0] - args.mu) / good[:, 10])
        checks += pull_checks("nu/M", (good[:, 2] - args.nu) / good[:, 11])
    passed = print_checks(checks)
    print("closure: PASS" if passed else "closure: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
