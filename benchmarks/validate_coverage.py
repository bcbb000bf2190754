"""Coverage of the profile-likelihood intervals and pulls of every parameter, on Dask, for NSBI and HI-SIGMA.

Pseudo-experiments are drawn exactly from the truths of rooml's built-in simulations and fitted with rooml's
own likelihoods, so what is checked is the inference (the likelihood, Minuit, Hesse and Minos), not a trained
network:

* ``nsbi``: the off-shell H -> ZZ -> 4l toy (``rooml.data.offshell4l``) with the exact ratios r_j and shape
  ratios g_j^+- of S, SBI, B (f = mu - sqrt(mu), sqrt(mu), 1 - sqrt(mu)), one nuisance parameter alpha for
  normalization and shape (code 5), a unit Gaussian constraint whose global observable is drawn per toy, the
  interpolated shapes normalized on a shared SBI reference sample; ``make_pseudodata(mu, 0, lumi_scale=10)``
  (about 13 300 events); fitted through ``RooNSBINLL`` (analytic gradient and Hessian).
* ``hisigma``: the bbyy toy (``rooml.data.bbyy``) with its p_T(bb)-scale shape systematic nu: the exact
  per-event densities of signal and background at nu = 0, -1, +1 interpolated per event (code 5,
  ``RooInterpolatedDensity``, "samples" normalization), s = mu * s_expected, a free background yield, a unit
  Gaussian constraint on nu.

Per toy: Migrad + Hesse + Minos for all parameters, then one refit per parameter held at its true value,
t = 2 (NLL(truth) - NLL_min).  Printed per parameter: coverage of the 68.27 % (t < 1) and 95 % (t < 3.84)
intervals, the pull mean and width with Minos' error on the side of the truth (the judged ones) and with
Hesse's; PASS/FAIL against: coverage within +-2 % absolute of nominal, pull mean within 3/sqrt(n), width
within 0.1 of 1.  Toys fan out on Dask (a LocalCluster by default; ``--scheduler`` for an existing one);
toy i of a configuration always gets the seed ``task_seed(seed, i)``, so a study can be split into runs:
``--first-toy 300 --toys 700 --include DIR`` runs toys 300-999 and adds the per-toy numbers that an earlier
run saved (``--save DIR``) for toys 0-299 to the tables (and to its own ``--save``).

    .venv/bin/python benchmarks/validate_coverage.py [--toys 1000] [--models nsbi hisigma] [--mu 1 0.5]
        [--reference-events 500000] [--workers N | --serial | --scheduler tcp://...] [--save DIR]
        [--first-toy N] [--include DIR ...]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rooml._fanout import fan_out, task_seed
from rooml.infer.coverage import print_summary, profile_at_truth, summarize

_BUILT: dict = {}  # per worker process: the model of each configuration, built once


def _quiet_root():
    from rooml.roofit import load_library

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    return ROOT


def _nsbi_inputs(x):
    from validate_nsbi_closure import inputs  # same folder

    return inputs(x)


def nsbi_toy(shared: dict, i: int):
    """Fit NSBI toy ``i`` of ``shared``'s configuration; ``{name: ParameterCheck}`` or None if it failed."""
    from rooml.data import offshell4l
    from rooml.roofit import dataset_with_index, update_event_inputs

    rng = np.random.default_rng(task_seed(shared["seed"], i))
    x = offshell4l.make_pseudodata(shared["mu"], 0.0, seed=rng, lumi_scale=shared["lumi"])
    ratios, shape = _nsbi_inputs(x)
    key = ("nsbi", shared["reference_events"], shared["seed"])
    if key not in _BUILT:
        _BUILT[key] = _nsbi_model(shared, ratios, shape)
    model, idx = _BUILT[key]
    update_event_inputs(model, ratios, shape)
    mu, alpha = model["poi"][0], model["nuisance_parameters"][0]
    model["global_observables"][0].setVal(rng.normal(0.0, 1.0))
    mu.setVal(1.0)
    alpha.setVal(0.0)
    data = dataset_with_index({}, idx, n=len(x))
    checks, result = profile_at_truth(model["pdf"], data, {mu: shared["mu"], alpha: 0.0})
    return checks if result.status == 0 else None


def _nsbi_model(shared, ratios, shape):
    from rooml.data import offshell4l
    from rooml.roofit import index_variable, nsbi_model
    from validate_nsbi_closure import COEFFICIENTS, PROCESSES

    _quiet_root()
    t = offshell4l.truth
    y = t.yields(0.0)
    reference = None
    if shared["reference_events"]:
        ref = offshell4l.generate("SBI", shared["reference_events"], seed=shared["seed"] + 10_000)
        ref_r, ref_shape = _nsbi_inputs(ref)
        reference = {"weights": ref.weight, "ratios": ref_r, "shape": ref_shape}
    idx = index_variable()
    model = nsbi_model("nsbi", idx, yields={p: shared["lumi"] * y[p] for p in PROCESSES},
                       coefficients=COEFFICIENTS, ratios=ratios, poi=[("mu", 1.0, 0.0, 10.0)], nps=["alpha"],
                       norm={(p, "alpha"): (t.G(p, -1.0), t.G(p, 1.0)) for p in PROCESSES}, shape=shape,
                       reference_sample=reference)
    return model, idx


def hisigma_toy(shared: dict, i: int):
    """Fit HI-SIGMA toy ``i``; ``{name: ParameterCheck}`` or None if the fit failed."""
    from rooml.data import bbyy
    from rooml.roofit import dataset_with_index
    from validate_hisigma_closure import hisigma_truth_model

    _quiet_root()
    rng = np.random.default_rng(task_seed(shared["seed"], i))
    x = bbyy.make_mock(n_bkg=shared["n_bkg"], n_sig=shared["mu"] * shared["s_expected"], seed=rng,
                       nu=0.0, poisson=True)
    parts = hisigma_truth_model(x, shared, global_value=rng.normal(0.0, 1.0))
    data = dataset_with_index({}, parts["index"], n=len(x))
    truth = {parts["mu"]: shared["mu"], parts["nu"]: 0.0, parts["n_bkg"]: shared["n_bkg"]}
    checks, result = profile_at_truth(parts["pdf"], data, truth, constraints=[parts["constraint"]],
                                      extended=True)
    return checks if result.status == 0 else None


FIELDS = ("value", "hesse", "minos_low", "minos_high", "t_truth")


def run(model: str, mu: float, args, client) -> tuple[dict, dict, float]:
    """Run ``args.toys`` toys of one configuration: ({toy index: checks} of the good fits, truth, seconds)."""
    import validate_coverage as module  # pickled by reference, so each worker keeps its built models

    shared = {"seed": args.seed, "mu": mu}
    if model == "nsbi":
        shared |= {"lumi": args.lumi, "reference_events": args.reference_events}
        func, truth = module.nsbi_toy, {"mu": mu, "alpha": 0.0}
    else:
        from rooml.data import bbyy
        from validate_hisigma_closure import normalization_samples

        shared |= {"s_expected": args.s_expected, "n_bkg": args.n_bkg,
                   "samples": {p: normalization_samples(p, args.normalization_events,
                                                        seed=args.seed * 1000 + k)
                               for k, p in enumerate(bbyy.PROCESSES)}}
        func, truth = module.hisigma_toy, {"mu": mu, "nu": 0.0, "n_bkg": args.n_bkg}
    t0 = time.perf_counter()
    indices = range(args.first_toy, args.first_toy + args.toys)
    rows = fan_out(func, shared, indices, client=client, parallel=not args.serial,
                   n_workers=args.workers, desc=f"{model} toys, mu = {mu}")
    return {i: r for i, r in zip(indices, rows) if r is not None}, truth, time.perf_counter() - t0


def toys_file(folder: Path, model: str, mu: float) -> Path:
    """The .npz of one configuration's per-toy numbers in a ``--save`` directory."""
    return Path(folder) / f"{model}_mu{mu:g}.npz"


def saved_toys(folder: Path, model: str, mu: float, truth: dict) -> dict:
    """Read {toy index: checks} an earlier run saved in ``folder`` (no indices stored: toys 0, 1, ...)."""
    from rooml.infer.coverage import ParameterCheck

    with np.load(toys_file(folder, model, mu)) as f:
        columns = {key: f[key] for key in f.files}
    n = len(columns[f"{next(iter(truth))}_value"])
    toys = columns.get("toy", np.arange(n))
    return {int(i): {name: ParameterCheck(*(float(columns[f"{name}_{field}"][k]) for field in FIELDS))
                     for name in truth} for k, i in enumerate(toys)}


def save_toys(path: Path, toys: dict, truth: dict) -> None:
    """Write the per-toy numbers of ``toys`` ({index: checks}) to ``path`` (.npz), with their toy indices."""
    order = sorted(toys)
    np.savez(path, toy=np.array(order), **{f"{n}_{f}": np.array([getattr(toys[i][n], f) for i in order])
                                           for n in truth for f in FIELDS})


def main() -> int:
    """Run every configuration, print the coverage tables; exit status 0 when every criterion passes."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toys", type=int, default=1000, help="toys per model and mu value")
    parser.add_argument("--models", nargs="+", choices=["nsbi", "hisigma"], default=["nsbi", "hisigma"])
    parser.add_argument("--mu", type=float, nargs="+", default=[1.0, 0.5], help="true signal strengths")
    parser.add_argument("--lumi", type=float, default=10.0, help="NSBI: scale of the offshell4l yields")
    parser.add_argument("--reference-events", type=int, default=500_000,
                        help="NSBI: SBI reference events normalizing the interpolated shapes (0: none)")
    parser.add_argument("--s-expected", type=float, default=100.0, help="HI-SIGMA: signal yield at mu = 1")
    parser.add_argument("--n-bkg", type=float, default=2000.0, help="HI-SIGMA: expected background yield")
    parser.add_argument("--normalization-events", type=int, default=200_000,
                        help="HI-SIGMA: nominal events per process normalizing the interpolation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: the cores)")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument("--serial", action="store_true", help="run in this process, without Dask")
    parser.add_argument("--save", default=None, help="new directory for the per-toy numbers (.npz)")
    parser.add_argument("--first-toy", type=int, default=0, help="index of the first toy (its seed)")
    parser.add_argument("--include", nargs="+", default=[], type=Path,
                        help="--save directories of earlier runs whose toys join the tables")
    args = parser.parse_args()
    for folder in args.include:  # before hours of toys
        for model in args.models:
            for mu in args.mu:
                if not toys_file(folder, model, mu).exists():
                    parser.error(f"--include {folder}: no {toys_file(folder, model, mu).name} there "
                                 f"(no earlier run of {model} at mu = {mu:g})")
    save = Path(args.save) if args.save else None
    if save is not None:
        save.mkdir(parents=True, exist_ok=False)
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    passed = True
    for model in args.models:
        for mu in args.mu:
            toys, truth, seconds = run(model, mu, args, client)
            failed = args.toys - len(toys)
            earlier = 0
            for folder in args.include:
                old = saved_toys(folder, model, mu, truth)
                if set(old) & set(toys):
                    raise SystemExit(f"validate_coverage: {folder} holds toys of this run's indices "
                                     f"(from {min(set(old) & set(toys))}); use --first-toy")
                toys |= old
                earlier += len(old)
            title = (f"{model}, mu = {mu}: {len(toys)} toys ({failed} failed fits, {len(toys) - earlier} run "
                     f"now in {seconds:.0f} s, {earlier} from earlier runs); pulls with the Minos error "
                     "towards the truth (M), and Hesse's")
            passed &= print_summary(summarize([toys[i] for i in sorted(toys)], truth), title)
            if save is not None:
                save_toys(toys_file(save, model, mu), toys, truth)
    print("coverage: PASS" if passed else "coverage: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
