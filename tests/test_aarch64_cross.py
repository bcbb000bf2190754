"""rooml's ROOT-free core on aarch64: cross-compiled with Debian's g++-aarch64-linux-gnu, run under qemu-user.

The core's sources (as listed in cpp/CMakeLists.txt) and tests/cross/core_driver.cpp are compiled for
aarch64 (the baseline kernel set: plain C++, auto-vectorized for NEON); the driver evaluates a flow (log_prob
and sampling), a ratio model and code-5 interpolation, and its numbers must equal the x86-64 build's to 1e-12
relative.  .ci/run installs the two Debian packages where apt-get is available.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from flow_factory import random_flow
from rooml import _core
from rooml.export import export_flow, export_ratio
from rooml.interpolation import interpolate
from test_ratio_export import _inputs, _model

REPO = Path(__file__).resolve().parent.parent
CXX, QEMU, SYSROOT = "aarch64-linux-gnu-g++", "qemu-aarch64", Path("/usr/aarch64-linux-gnu")

pytestmark = pytest.mark.skipif(
    shutil.which(CXX) is None or shutil.which(QEMU) is None,
    reason="needs Debian's g++-aarch64-linux-gnu and qemu-user, not installed here (apt-get install "
           "g++-aarch64-linux-gnu qemu-user; .ci/run does that where apt-get is available)")


def core_sources() -> list[Path]:
    """List the ROOT-free core's sources: rooml_core_objects' and the kernel sources in cpp/CMakeLists.txt."""
    text = (REPO / "cpp" / "CMakeLists.txt").read_text()
    core = re.search(r"add_library\(rooml_core_objects OBJECT(.*?)\)", text, re.S).group(1)
    kernels = re.search(r"set\(ROOML_ISA_SOURCES(.*?)\)", text, re.S).group(1)
    return [REPO / "cpp" / s for s in (core + kernels).split()]


def build_driver(out: Path) -> Path:
    """Cross-compile the core (baseline kernel set) and the driver; return the executable."""
    flags = ["-std=c++17", "-O2", "-fno-math-errno", "-fno-trapping-math", "-pthread",
             f"-I{REPO / 'cpp' / 'include'}"]
    sources = [*core_sources(), REPO / "tests" / "cross" / "core_driver.cpp"]

    def compile_one(source: Path) -> Path:
        obj = out / (source.parent.name + "_" + source.stem + ".o")
        extra = ["-DROOML_ISA_NS=isa_baseline"] if source.parent.name == "isa" else []
        subprocess.run([CXX, *flags, *extra, "-c", str(source), "-o", str(obj)], check=True)
        return obj

    with ThreadPoolExecutor(max_workers=2) as pool:
        objects = list(pool.map(compile_one, sources))
    exe = out / "core_driver"
    subprocess.run([CXX, "-pthread", *map(str, objects), "-o", str(exe)], check=True)
    return exe


def test_core_runs_on_aarch64(tmp_path):
    rng = np.random.default_rng(3)
    n = 700
    flow = random_flow("coupling", features=3, context=1, lu=True, seed=2)
    x, c = rng.normal(size=(n, 3)), rng.normal(size=(n, 1))
    with torch.no_grad():
        export_flow(flow, tmp_path / "flow.onnx", reference_inputs=(x[:256], c[:256]))
    export_ratio(_model(dict(activation="silu", correction=0.2, members=2, combination="mean_log")),
                 tmp_path / "ratio.onnx")
    rx = _inputs(n, edges=False)
    nominal = rng.uniform(0.5, 2.0, n)
    low, high = nominal * rng.uniform(0.6, 1.1, n), nominal * rng.uniform(0.9, 1.5, n)
    header = np.array([n, 3, 1, rx.shape[1]], dtype=np.float64)
    inputs = np.concatenate([header, x.ravel(), c.ravel(), rx.ravel(), nominal, low, high])
    inputs.tofile(tmp_path / "inputs.bin")

    exe = build_driver(tmp_path)
    assert int.from_bytes(exe.read_bytes()[18:20], "little") == 183  # ELF e_machine: EM_AARCH64
    done = subprocess.run([QEMU, "-L", str(SYSROOT), str(exe), str(tmp_path / "flow.onnx"),
                           str(tmp_path / "ratio.onnx"), str(tmp_path / "inputs.bin")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[0] == "baseline"
    got = np.array(lines[1:], dtype=np.float64)

    core_flow = _core.FlowModel.from_file(str(tmp_path / "flow.onnx"))
    want = [core_flow.log_prob(x, c, threads=1), core_flow.sample(n, c, 7, threads=2).ravel(),
            _core.RatioModel.from_file(str(tmp_path / "ratio.onnx")).log_ratio(rx, threads=2)]
    want += [interpolate(nominal, low[None], high[None], [nu], [5]) for nu in (0.4, 1.3)]
    assert got.size == sum(w.size for w in want)
    start = 0
    for name, w in zip(["log_prob", "sample", "log_ratio", "code5 inside", "code5 outside"], want):
        np.testing.assert_allclose(got[start:start + w.size], w, rtol=1e-12, atol=1e-12 * np.abs(w).max(),
                                   err_msg=name)
        start += w.size
