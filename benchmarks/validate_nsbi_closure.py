"""Closure of the NSBI likelihood (RooNSBIPdf) with the exact truths of the off-shell H -> ZZ -> 4l toy.

The per-event inputs are the exact ratios r_j = p_j/p_SBI and shape ratios g_j^+-
of rooml.data.offshell4l (processes S, SBI, B; f = mu - sqrt(mu), sqrt(mu),
1 - sqrt(mu); one nuisance parameter alpha with normalization G_j and shape
g_j, both code 5).  Each toy is fitted with RooFit/Minuit (mu, alpha free, a
unit Gaussian constraint whose global observable is drawn around the truth)
and the pulls (fit - truth)/error are summarized: mean (with its error) and
width, which should be 0 and 1.

Toys are either exact Poisson pseudo-data from the truth (default) or
Poisson-bootstrap toys (--bootstrap): one large sample of M events from the
truth, each toy giving every event a weight w ~ Pois(nu / M), fitted as a
weighted dataset (weights are multiplicities: SumW2Error(False)).  Bootstrap
toys scatter around the large sample's own best fit, not around the truth, so
their pulls are also given relative to that fit (the "centre"), and those are the
ones judged.  Each criterion of the issue (mean pull within 3/sqrt(n_toys) of 0,
width within 10% of 1) is printed with PASS or FAIL; --minos also judges the
pulls with the Minos error on the side of the truth.  --shape-normalization
off reproduces the papers' likelihood (no renormalization of the interpolated
shapes); on (default) normalizes them with a reference SBI sample.

    .venv/bin/python benchmarks/validate_nsbi_closure.py [--toys 100] [--alpha 0.5] [--lumi 10]
        [--shape-normalization on|off] [--bootstrap] [--minos]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rooml.data import offshell4l
from rooml.roofit import dataset_with_index, index_variable, load_library, nsbi_model, update_event_inputs
from tqdm.auto import tqdm
from validate_hisigma_closure import print_checks, pull_checks  # same folder: run as a script

PROCESSES = ("S", "SBI", "B")
COEFFICIENTS = {"S": "mu - sqrt(mu)", "SBI": "sqrt(mu)", "B": "1 - sqrt(mu)"}


def inputs(x):
    """Exact per-event ratios and shape ratios of the truth."""
    t = offshell4l.truth
    ratios = {p: t.ratio(p, x, reference="SBI") for p in PROCESSES}
    shape = {(p, "alpha"): (t.g(p, x, -1.0), t.g(p, x, 1.0)) for p in PROCESSES}
    return ratios, shape


def minos_towards(var, truth: float) -> float:
    """Return the Minos error of ``var`` on the side of ``truth`` (Hesse's when Minos did not run)."""
    if not var.hasAsymError():
        return var.getError()
    return var.getErrorHi() if var.getVal() < truth else -var.getErrorLo()


def main() -> int:
    """Run the toys, print the pull summary with PASS/FAIL; return 0 when every criterion passes."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--toys", type=int, default=100)
    parser.add_argument("--mu", type=float, default=1.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--lumi", type=float, default=10.0, help="scale of all yields (1: ~1300 events)")
    parser.add_argument("--shape-normalization", choices=["on", "off"], default="on")
    parser.add_argument(
        "--reference-events",
        type=int,
        default=500_000,
        help="SBI reference events for the shape normalization (its Monte-Carlo error acts like "
        "a shift of alpha of about sigma_alpha * sqrt(n_data / n_reference))",
    )
    parser.add_argument("--bootstrap-factor", type=int, default=50, help="M / nu for --bootstrap")
    parser.add_argument("--bootstrap", action="store_true", help="Poisson-bootstrap toys of one large sample")
    parser.add_argument("--minos", action="store_true", help="also judge the pulls with Minos errors")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    t = offshell4l.truth
    y = t.yields(0.0)
    rng = np.random.default_rng(args.seed)
    idx = index_variable()
    reference = None
    if args.shape_normalization == "on":
        ref = offshell4l.generate("SBI", args.reference_events, seed=args.seed + 10_000)
        ref_r, ref_shape = inputs(ref)
        reference = {"weights": ref.weight, "ratios": ref_r, "shape": ref_shape}

    big = None
    if args.bootstrap:
        factor = args.bootstrap_factor
        big = offshell4l.make_pseudodata(
            args.mu, args.alpha, seed=args.seed + 20_000, poisson=False, lumi_scale=args.lumi * factor
        )
        big_inputs = inputs(big)
        rate = 1.0 / factor

    def toy(i):
        if big is None:
            x = offshell4l.make_pseudodata(
                args.mu, args.alpha, seed=args.seed * 100_000 + i, lumi_scale=args.lumi
            )
            return inputs(x), None, len(x)
        w = rng.poisson(rate, len(big)).astype(float)
        keep = w > 0
        r, shape = big_inputs
        return (
            ({p: v[keep] for p, v in r.items()}, {k: (lo[keep], hi[keep]) for k, (lo, hi) in shape.items()}),
            w[keep],
            int(keep.sum()),
        )

    (r0, shape0), w0, n0 = toy(0)
    model = nsbi_model(
        "nsbi",
        idx,
        yields={p: args.lumi * y[p] for p in PROCESSES},
        coefficients=COEFFICIENTS,
        ratios=r0,
        poi=[("mu", 1.0, 0.0, 10.0)],
        nps=["alpha"],
        norm={(p, "alpha"): (t.G(p, -1.0), t.G(p, 1.0)) for p in PROCESSES},
        shape=shape0,
        reference_sample=reference,
    )
    mu, alpha = model["poi"][0], model["nuisance_parameters"][0]
    glob = model["global_observables"][0]
    centre = (args.mu, args.alpha)
    if big is not None:  # the bootstrap centre: the large sample's own fit, normalized to one toy's yield
        update_event_inputs(model, *big_inputs)
        data = dataset_with_index({}, idx, n=len(big), weights=np.full(len(big), rate))
        glob.setVal(args.alpha)
        model["pdf"].fitTo(
            data,
            ROOT.RooFit.EvalBackend("cpu"),
            ROOT.RooFit.PrintLevel(-1),
            ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(glob)),
            ROOT.RooFit.SumW2Error(False),
        )
        centre = (mu.getVal(), alpha.getVal())
        update_event_inputs(model, r0, shape0)
    fits, failed, t_fit = [], 0, 0.0
    for i in tqdm(range(args.toys), desc="NSBI closure toys"):
        (r, shape), w, n = (r0, shape0), w0, n0
        if i:
            (r, shape), w, n = toy(i)
            update_event_inputs(model, r, shape)
        data = dataset_with_index({}, idx, n=n, weights=w)
        glob.setVal(rng.normal(args.alpha, 1.0))
        mu.setVal(1.0)
        alpha.setVal(0.0)
        opts = [
            ROOT.RooFit.EvalBackend("cpu"),
            ROOT.RooFit.PrintLevel(-1),
            ROOT.RooFit.Save(),
            ROOT.RooFit.GlobalObservables(ROOT.RooArgSet(glob)),
        ]
        if w is not None:
            opts.append(ROOT.RooFit.SumW2Error(False))
        if args.minos:
            opts.append(ROOT.RooFit.Minos(ROOT.RooArgSet(mu, alpha)))
        t0 = time.perf_counter()
        res = model["pdf"].fitTo(data, *opts)
        t_fit += time.perf_counter() - t0
        if res.status() != 0 or res.covQual() < 2:
            failed += 1
            continue
        fits.append((mu.getVal(), mu.getError(), alpha.getVal(), alpha.getError(), n,
                     minos_towards(mu, centre[0]), minos_towards(alpha, centre[1])))
    fits = np.array(fits)
    print(
        f"offshell4l NSBI closure: {args.toys} {'Poisson-bootstrap' if big is not None else 'Poisson'} toys, "
        f"mu = {args.mu}, alpha = {args.alpha}, lumi x{args.lumi} (~{fits[:, 4].mean():.0f} events), "
        f"shape normalization {args.shape_normalization}; {failed} failed fits; "
        f"{t_fit / args.toys:.2f} s per fit"
    )
    print(
        f"mean errors: mu {fits[:, 1].mean():.4f}, alpha {fits[:, 3].mean():.4f}; spread of the estimates: "
        f"std(mu-hat) {fits[:, 0].std(ddof=1):.4f}, std(alpha-hat) {fits[:, 2].std(ddof=1):.4f}"
    )
    if big is not None:
        print(f"(around the truth: mu pull mean {np.mean((fits[:, 0] - args.mu) / fits[:, 1]):+.3f}, "
              f"alpha pull mean {np.mean((fits[:, 2] - args.alpha) / fits[:, 3]):+.3f})")
        print(
            f"bootstrap centre (fit of all {len(big)} events): mu {centre[0]:.4f}, alpha {centre[1]:.4f}; "
            "pulls around it:"
        )
    checks = pull_checks("mu", (fits[:, 0] - centre[0]) / fits[:, 1])
    checks += pull_checks("alpha", (fits[:, 2] - centre[1]) / fits[:, 3])
    if args.minos:
        checks += pull_checks("mu/M", (fits[:, 0] - centre[0]) / fits[:, 5])
        checks += pull_checks("alpha/M", (fits[:, 2] - centre[1]) / fits[:, 6])
    passed = print_checks(checks)
    print("closure: PASS" if passed else "closure: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
