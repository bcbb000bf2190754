"""Workspaces written by earlier rooml versions still open and give the same values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("version", ["v1"])
def test_old_workspace_evaluates_the_same(version, roofit):
    ROOT = roofit
    reference = json.loads((DATA / f"workspace_{version}.json").read_text())
    f = ROOT.TFile.Open(str(DATA / f"workspace_{version}.root"))
    ws = f.Get("w")
    pdf = ws.pdf("flow")
    a, b, m = ws.var("a"), ws.var("b"), ws.var("m")
    norm = ROOT.RooArgSet(a, b)
    for (pa, pb, pm), value in zip(reference["points"], reference["values"]):
        a.setVal(pa), b.setVal(pb), m.setVal(pm)
        # the stored reference is the flow's density; normalized over the variables' box [-10, 10]^2 it is
        # divided by the flow's mass there (RooFit's convention since RooFlowPdf version 2)
        assert pdf.getVal() == pytest.approx(value, rel=1e-12)
        assert pdf.getVal(norm) == pytest.approx(value / pdf.boxMass(), rel=1e-12)
        assert 0.99 < pdf.boxMass() <= 1.0
