"""Write tests/data/workspace_v1.root: a RooFlowPdf (with context) and reference values.

Run once per RooFit-class format change; the file written by each version is
kept so later versions are tested against it (tests/test_workspace_compat.py).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from flow_factory import random_flow  # noqa: E402
from rooml.export import export_flow  # noqa: E402
from rooml.roofit import load_library  # noqa: E402


def main(out_dir: Path) -> None:
    """Export a small conditional flow, wrap it in a workspace, store reference values."""
    ROOT = load_library()
    flow = random_flow("coupling", features=2, context=1, lu=True, seed=42)
    rng = np.random.default_rng(0)
    onnx_path = out_dir / "compat_flow.onnx"
    export_flow(flow, onnx_path, features=["a", "b"], context=["m"], overwrite=True,
                reference_inputs=(rng.normal(size=(64, 2)), rng.normal(size=(64, 1))))
    a, b = ROOT.RooRealVar("a", "a", 0, -10, 10), ROOT.RooRealVar("b", "b", 0, -10, 10)
    m = ROOT.RooRealVar("m", "m", 0, -5, 5)
    pdf = ROOT.RooFlowPdf("flow", "flow", ROOT.RooArgList(a, b), ROOT.RooArgList(m), str(onnx_path))
    points = rng.normal(size=(10, 3))
    values = []
    norm = ROOT.RooArgSet(a, b)
    for pa, pb, pm in points:
        a.setVal(pa), b.setVal(pb), m.setVal(pm)
        values.append(pdf.getVal(norm))
    ws = ROOT.RooWorkspace("w")
    ws.Import(pdf)
    ws.writeToFile(str(out_dir / "workspace_v1.root"))
    (out_dir / "workspace_v1.json").write_text(json.dumps({"points": points.tolist(), "values": values}))
    onnx_path.unlink()


if __name__ == "__main__":
    main(Path(__file__).parent / "data")
