"""Evaluate the models of a probe directory with the kernel set in use; run by test_isa_dispatch.py.

    python tests/isa_probe.py DIR [--nsbi]

The environment variable ROOML_ISA chooses the kernel set.  DIR holds flow_*.onnx, ratio_*.onnx and
inputs.npz (written by the test); the outputs of every evaluator at 1 and 2 threads go to
DIR/out_<isa>.npz.  With --nsbi the NSBI NLL of test_roofit_nsbi's toy model (value and gradient at
several points, through libRooML's RooNSBINLL) is added.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from rooml import _core
from rooml.interpolation import interpolate

CODE5_NU = (0.37, -0.81, 1.6, -1.0)


def flow_outputs(path: Path, inputs, threads: int) -> dict:
    """log_prob (and, for flows without context, samples: the inverse transforms) of one flow."""
    flow = _core.FlowModel.from_file(str(path))
    x = inputs[f"x{flow.n_features}"]
    c = inputs[f"c{flow.n_context}"] if flow.n_context else None
    out = {"log_prob": flow.log_prob(x, c, threads=threads)}
    if not flow.n_context:
        out["sample"] = flow.sample(1500, None, 11, threads=threads)
    return out


def interpolation_outputs(inputs) -> dict:
    """Code 5 on many events, inside and outside |nu| < 1 (the vectorized kernel and its edges)."""
    nominal, low, high = inputs["nominal"], inputs["low"], inputs["high"]
    lows, highs = np.stack([low, 0.5 * (low + nominal)]), np.stack([high, 0.5 * (high + nominal)])
    return {f"code5_{i}": interpolate(nominal, lows, highs, [nu, -0.5 * nu], [5, 5])
            for i, nu in enumerate(CODE5_NU)}


def nsbi_outputs() -> dict:
    """Value and gradient of the toy NSBI NLL (code-5 shapes) at a few points, for 1 and 2 threads."""
    sys.path.insert(0, str(Path(__file__).parent))
    from rooml.roofit import dataset_with_index, index_variable, load_library, nsbi_nll
    from test_roofit_nsbi import Toy

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.WARNING)
    idx = index_variable()
    toy = Toy(n=2000, seed=4)
    m = toy.model(idx)
    nll = nsbi_nll(m, dataset_with_index({}, idx, n=toy.n), offset=False)
    params = ROOT.RooArgSet()
    nll.getParameters(ROOT.nullptr, params)
    out = {}
    for threads in (1, 2):
        os.environ["ROOML_NUM_THREADS"] = str(threads)
        values, grads = [], []
        for mu, a1, a2 in [(1.0, 0.0, 0.0), (0.3, 0.4, -0.7), (1.7, 1.6, -2.2)]:
            m["poi"][0].setVal(mu)
            m["nuisance_parameters"][0].setVal(a1)
            m["nuisance_parameters"][1].setVal(a2)
            grad = np.zeros(len(params))
            values.append(nll.getVal())
            nll.gradient(grad)
            grads.append(grad)
        out[f"nsbi_value_t{threads}"] = np.array(values)
        out[f"nsbi_gradient_t{threads}"] = np.array(grads)
    return out


def main() -> None:
    """Evaluate everything in the probe directory and save the outputs."""
    directory = Path(sys.argv[1])
    inputs = np.load(directory / "inputs.npz")
    out = {}
    for threads in (1, 2):
        for path in sorted(directory.glob("flow_*.onnx")):
            for key, value in flow_outputs(path, inputs, threads).items():
                out[f"{path.stem}_{key}_t{threads}"] = value
        for path in sorted(directory.glob("ratio_*.onnx")):
            ratio = _core.RatioModel.from_file(str(path))
            out[f"{path.stem}_t{threads}"] = ratio.member_log_ratios(inputs["ratio_x"], threads=threads)
    out.update(interpolation_outputs(inputs))
    if "--nsbi" in sys.argv:
        out.update(nsbi_outputs())
    np.savez(directory / f"out_{_core.isa()}.npz", **out)


if __name__ == "__main__":
    main()
