"""Refit the HI-SIGMA workspace of ``rooml demo`` with PyROOT and scan the signal strength.

    export LD_LIBRARY_PATH=$(rooml config --libdir):$LD_LIBRARY_PATH
    python macros/fit_hisigma.py rooml_output/workspace.root

Only ROOT and libRooML are needed (not the rooml Python package): the workspace
is self-contained.  Prints the same "ROOML_FIT" / "ROOML_SCAN" lines as
``macros/fit_hisigma.C``.
"""

from __future__ import annotations

import argparse
import sys

import ROOT


def minimize(nll, hesse: bool) -> int:
    """Minuit2 migrad (one retry with strategy 2), then optionally hesse."""
    minimizer = ROOT.RooMinimizer(nll)
    minimizer.setMinimizerType("Minuit2")
    minimizer.setPrintLevel(-1)
    minimizer.setEps(0.01)
    status = minimizer.migrad()
    if status != 0:
        minimizer.setStrategy(2)
        status = minimizer.migrad()
    if hesse:
        minimizer.hesse()
    return status


def main(argv: list[str] | None = None) -> int:
    """Fit the workspace's ``model`` to ``data`` and scan ``mu``; returns the fit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", nargs="?", default="rooml_output/workspace.root")
    parser.add_argument("--points", type=int, default=7, help="scan points")
    parser.add_argument("--half-width", type=float, default=2.0, help="scan half-width in Hesse errors of mu")
    args = parser.parse_args(argv)

    if ROOT.gSystem.Load("libRooML") < 0:
        print("cannot load libRooML: add $(rooml config --libdir) to LD_LIBRARY_PATH", file=sys.stderr)
        return 1
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    file = ROOT.TFile.Open(args.workspace)
    ws = file.Get("w") if file else None
    if not ws or not ws.pdf("model") or not ws.data("data") or not ws.var("mu"):
        print(f"{args.workspace!r} holds no rooml HI-SIGMA workspace 'w'", file=sys.stderr)
        return 1
    model, data, mu = ws.pdf("model"), ws.data("data"), ws.var("mu")

    nll = model.createNLL(data, ROOT.RooFit.Extended(True), ROOT.RooFit.EvalBackend("cpu"))
    status = minimize(nll, hesse=True)
    mu_hat, mu_err, nll_min = mu.getVal(), mu.getError(), nll.getVal()
    print(f"ROOML_FIT mu={mu_hat:.10g} mu_err={mu_err:.10g} nll={nll_min:.12g} status={status}")

    params = model.getParameters(data)
    best = params.snapshot()
    for i in range(args.points):
        value = mu_hat + args.half_width * mu_err * (2.0 * i / (args.points - 1) - 1.0)
        params.assign(best)
        mu.setVal(value)
        mu.setConstant(True)
        minimize(nll, hesse=False)
        print(f"ROOML_SCAN mu={value:.10g} t={2.0 * (nll.getVal() - nll_min):.10g}")
    mu.setConstant(False)
    return status


if __name__ == "__main__":
    sys.exit(main())
