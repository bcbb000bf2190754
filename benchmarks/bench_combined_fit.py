"""Wall time of a combined fit: ROOT's HistFactory tutorial hf001 plus an unbinned NSBI channel with 10 NPs.

The binned part is the workspace of ROOT's ``hf001_example`` tutorial, built from the ROOT wheel's own
tutorial files (:func:`rooml.data.histfactory.hf001_workspace`).  The unbinned channel is the synthetic NSBI
model of ``bench_nsbi_fit.py`` (3 processes, 10 nuisance parameters of shape and normalization, exact
quadrature for the shape normalization); ``rooml combine`` joins the two, sharing the POI
(``mu`` -> ``SigXsecOverSM``) and two nuisance parameters (``alpha0`` -> ``alpha_syst2``, ``alpha1`` ->
``alpha_syst3``, constrained once).  Each combined workspace is fitted (Minuit2 strategy 1, then Hesse, from
``SigXsecOverSM`` = 1.2 and every alpha = 0.1) through ``rooml.infer``'s ``RooCombinedNLL`` (the unbinned
channel's analytic gradient and Hessian plus numerical derivatives of the binned NLL) and, up to
``--roofit-max`` events, through RooFit's NLL of the same ``RooSimultaneous`` (vectorized CPU backend,
Minuit's numerical gradient) as the reference.

``--hisigma N ...`` adds the same comparison for three channel kinds: hf001 + the N-event NSBI channel + a
HI-SIGMA channel of N bbyy mock events (a 5-layer coupling RQ-spline flow, 4 features conditional on m_yy,
evaluated once per dataset; POI shared), whose RooFit NLL ``RooCombinedNLL`` differentiates numerically in
its own four parameters only.  (hf001 + HI-SIGMA alone keeps RooFit's NLL: there it is as fast.)

    .venv/bin/python benchmarks/bench_combined_fit.py [--events 1e5 1e6] [--nps 10] [--hisigma 1e5]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench_nsbi_fit import build
from rooml._core import default_threads
from rooml.combine import combine
from rooml.data.histfactory import hf001_workspace
from rooml.infer import create_nll
from rooml.infer.fit import FitResult, minimize
from rooml.roofit import load_library, to_workspace

SHARED = {"mu": "SigXsecOverSM", "alpha0": "alpha_syst2", "alpha1": "alpha_syst3"}


def combined_workspace(hf, n: int, nps: int):
    """hf001 combined with an ``n``-event NSBI channel (``nps`` nuisance parameters, two shared)."""
    model, data, _ = build(n, nps)
    return combine(hf, to_workspace(model, data, name="nsbi"), rename=SHARED)


def hisigma_workspace(combined, n: int, folder: str):
    """Add a HI-SIGMA channel of ``n`` bbyy mock events to ``combined``: (workspace, NP start values)."""
    import numpy as np
    import torch
    from rooml.data import bbyy
    from rooml.data.io import to_roodataset
    from rooml.export import export_flow
    from rooml.models import FlowConfig, build_flow
    from rooml.roofit.hisigma import hisigma_model
    from rooml.validation import bbyy_feature_preprocessing

    mock = bbyy.make_mock(n_bkg=n, n_sig=n // 20, seed=1)
    x = np.column_stack([mock[f] for f in bbyy.FEATURES])
    config = FlowConfig(features=4, context=1, kind="coupling", layers=5, bins=8, hidden=32, seed=1)
    flow = build_flow(config).eval()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # one flow for both processes: the features then do not separate them, the mass does (mu near 1)
    path = export_flow(flow, f"{folder}/hisigma.onnx", features=list(bbyy.FEATURES), context=["m_yy"],
                       preprocessing=bbyy_feature_preprocessing(x), overwrite=True)
    h = hisigma_model(path, path, s_expected=n / 20, n_bkg_start=float(n))
    unbinned = h.to_workspace(to_roodataset(mock, h.observables()))
    ws = combine(combined, unbinned, rename={"mu": "SigXsecOverSM"}, channel_name="hisigma")
    return ws, {"n_bkg": 1.02 * n, "p1": bbyy.truth.p1, "p2": bbyy.truth.p2}


def reset(ws, start: dict) -> None:
    """Set the start values: ``start``, else POI 1.2, every alpha 0.1, the other floating ones 1."""
    mc = ws.obj("ModelConfig")
    for p in list(mc.GetParametersOfInterest()) + list(mc.GetNuisanceParameters()):
        name = p.GetName()
        default = 1.2 if name == "SigXsecOverSM" else 0.1 if name.startswith("alpha") else 1.0
        p.setVal(start.get(name, default))


def timed_fit(ws, native: bool, start: dict | None = None):
    """Fit from reset's start values (``start`` overrides them): (seconds for NLL + fit, FitResult)."""
    reset(ws, start or {})
    pdf, data = ws.obj("ModelConfig").GetPdf(), ws.data("obsData")
    t0 = time.perf_counter()
    nll = create_nll(pdf, data, native=native)
    result = FitResult.from_roofit(minimize(nll))
    return time.perf_counter() - t0, result, nll


def warm_up(hf, nps: int) -> None:
    """Fit a 2000-event combination through both NLLs once: one-time costs (JIT) leave the timings."""
    ws = combined_workspace(hf, 2000, nps)
    timed_fit(ws, native=True)
    timed_fit(ws, native=False)


def largest_difference(a: FitResult, b: FitResult) -> float:
    """Largest |value_a - value_b| / error_b over the parameters, in units of b's Hesse errors."""
    return max(abs(a[n].value - b[n].value) / b[n].error for n in b.parameters)


def main() -> None:
    """Build hf001 + NSBI for each size, fit through both NLLs, print times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=float, nargs="+", default=[1e5, 1e6])
    parser.add_argument("--nps", type=int, default=10)
    parser.add_argument("--hisigma", type=float, nargs="*", default=[1e5],
                        help="sizes of the HI-SIGMA channel combined with hf001 (none: skip)")
    parser.add_argument("--roofit-max", type=float, default=1e5,
                        help="largest sample also fitted through RooFit's NLL (numerical gradient; slow)")
    args = parser.parse_args()
    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        run(args, folder)


def run(args, folder: str) -> None:
    """Run the benchmark's fits (hf001 and the flows are written to ``folder``)."""
    hf = hf001_workspace(folder)
    print(f"hf001 (ROOT tutorial) + NSBI channel, 3 processes, {args.nps} nuisance parameters "
          f"({', '.join(f'{a} = {b}' for a, b in SHARED.items())}), Minuit2 strategy 1 + Hesse, "
          f"{default_threads()} threads; after one warm-up fit of each kind")
    warm_up(hf, args.nps)
    for n in args.events:
        t0 = time.perf_counter()
        ws = combined_workspace(hf, int(n), args.nps)
        data = ws.data("obsData")
        print(f"\n{data.sumEntries('channelCat==channelCat::unbinned'):.0f} unbinned events + hf001's "
              f"{data.sumEntries('channelCat==channelCat::channel1'):.0f} binned events "
              f"(combined workspace built in {time.perf_counter() - t0:.1f} s)")
        compare(ws, n <= args.roofit_max)
    for n in args.hisigma:
        ws, start = hisigma_workspace(combined_workspace(hf, int(n), args.nps), int(n), folder)
        data = ws.data("obsData")
        print(f"\nhf001 + NSBI channel of {data.sumEntries('channelCat==channelCat::unbinned'):.0f} events + "
              f"HI-SIGMA channel of {data.sumEntries('channelCat==channelCat::hisigma'):.0f} events")
        compare(ws, n <= args.roofit_max, start)


def compare(ws, with_roofit: bool, start: dict | None = None) -> None:
    """Fit ``ws`` through RooCombinedNLL and (``with_roofit``) RooFit's NLL; print times and differences."""
    t_fast, fast, nll = timed_fit(ws, native=True, start=start)
    poi = fast["SigXsecOverSM"]
    print(f"  rooml RooCombinedNLL: {t_fast:.2f} s; status {fast.status}, SigXsecOverSM = {poi.value:.5f} "
          f"+- {poi.error:.5f}; {nll.numericEvaluations()} evaluations of RooFit NLL terms for derivatives")
    if not with_roofit:
        return
    t_ref, ref, _ = timed_fit(ws, native=False, start=start)
    rpoi = ref["SigXsecOverSM"]
    print(f"  RooFit NLL of the same RooSimultaneous: {t_ref:.2f} s; status {ref.status}, "
          f"SigXsecOverSM = {rpoi.value:.5f} +- {rpoi.error:.5f}")
    print(f"  largest difference of the fitted values: {largest_difference(fast, ref):.1e} sigma")
    print(f"  rooml / RooFit time: {t_fast / t_ref:.3f} ({t_ref / t_fast:.1f}x faster)")


if __name__ == "__main__":
    main()
