"""C++ users: the ROOT-free core as the CMake target rooml::core, and libRooML linked as printed.

The flags are those ``rooml config --cflags --libs`` prints, used exactly as printed.  Both programs evaluate
a small flow and are compared with the Python module (the same compiled core: 1e-12).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rooml
from flow_factory import random_flow
from rooml.export import export_flow

ROOML = Path(sys.executable).with_name("rooml")
POINTS = np.array([[0.1, -0.3], [1.2, 0.4], [-0.7, 2.0]])

_CORE_PROGRAM = r"""
#include <cstdio>
#include <rooml/flow_model.h>

int main(int argc, char **argv) {
  auto flow = rooml::FlowModel::from_file(argv[1]);
  const double x[] = {0.1, -0.3, 1.2, 0.4, -0.7, 2.0};
  double out[3];
  flow->log_prob(x, nullptr, 3, out, 1);
  for (double v : out) std::printf("%.17g\n", v);
  return 0;
}
"""

_CMAKE = """
cmake_minimum_required(VERSION 3.20)
project(core_user LANGUAGES CXX)
find_package(rooml REQUIRED)
add_executable(core_user main.cpp)
target_link_libraries(core_user PRIVATE rooml::core)
"""

_ROOFIT_PROGRAM = r"""
#include <RooArgList.h>
#include <RooArgSet.h>
#include <RooFlowPdf.h>
#include <RooRealVar.h>
#include <cstdio>

int main(int argc, char **argv) {
  RooRealVar a("a", "a", 0, -1e30, 1e30), b("b", "b", 0, -1e30, 1e30);
  RooFlowPdf pdf("flow", "flow", RooArgList(a, b), RooArgList(), argv[1]);
  RooArgSet norm(a, b);
  const double x[][2] = {{0.1, -0.3}, {1.2, 0.4}, {-0.7, 2.0}};
  for (auto &row : x) {
    a.setVal(row[0]);
    b.setVal(row[1]);
    std::printf("%.17g\n", pdf.getVal(norm));
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory):
    rng = np.random.default_rng(4)
    path = tmp_path_factory.mktemp("cpp_link") / "flow.onnx"
    return export_flow(random_flow("coupling", features=2, seed=2), path, features=["a", "b"],
                       reference_inputs=(rng.normal(size=(32, 2)), None))


def _values(stdout: str) -> np.ndarray:
    return np.array([float(v) for v in stdout.split()])


def test_core_target_without_root(flow_file, tmp_path):
    """find_package(rooml) + rooml::core builds a program that evaluates a flow, linked to no ROOT library."""
    (tmp_path / "main.cpp").write_text(_CORE_PROGRAM)
    (tmp_path / "CMakeLists.txt").write_text(_CMAKE)
    cmake_dir = subprocess.run([str(ROOML), "config", "--cmakedir"], capture_output=True, text=True,
                               check=True).stdout.strip()
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(tmp_path), "-B", str(build), f"-Drooml_DIR={cmake_dir}"],
                   capture_output=True, text=True, check=True)
    subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True, check=True)
    exe = build / "core_user"
    needed = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "libroomlcore.so" in needed
    assert "libCore" not in needed and "libRooFit" not in needed and "libRooML" not in needed
    lddout = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "ROOT" not in lddout and "not found" not in lddout
    run = subprocess.run([str(exe), str(flow_file)], capture_output=True, text=True, check=True)
    want = rooml.load(flow_file).log_prob(POINTS)
    np.testing.assert_allclose(_values(run.stdout), want, rtol=1e-12)


def test_roofit_program_links_with_printed_flags(flow_file, tmp_path):
    """``g++ main.cpp $(rooml config --cflags --libs)``, exactly as printed, links and runs."""
    (tmp_path / "main.cpp").write_text(_ROOFIT_PROGRAM)
    exe = tmp_path / "roofit_user"
    command = f'g++ -O1 main.cpp -o {exe} $("{ROOML}" config --cflags --libs)'
    res = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    run = subprocess.run([str(exe), str(flow_file)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    want = np.exp(rooml.load(flow_file).log_prob(POINTS))
    np.testing.assert_allclose(_values(run.stdout), want, rtol=1e-12)
