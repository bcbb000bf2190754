"""The command line, the installed layout, and linking a C++ program against libRooML."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rooml
from rooml import _paths
from rooml.cli import main

ROOML = Path(sys.executable).with_name("rooml")


def test_config_prints_existing_directories(capsys):
    assert main(["config", "--libdir", "--incdir", "--cmakedir"]) == 0
    libdir, incdir, cmakedir = capsys.readouterr().out.split()
    assert (Path(libdir) / "libRooML.so").is_file()
    assert (Path(libdir) / "libRooML.rootmap").is_file()
    assert (Path(libdir) / "libRooML_rdict.pcm").is_file()
    assert (Path(incdir) / "RooFlowPdf.h").is_file()
    assert (Path(incdir) / "rooml" / "flow_model.h").is_file()
    assert (Path(cmakedir) / "roomlConfig.cmake").is_file()


def test_core_module_has_stubs():
    package = Path(rooml.__file__).parent
    assert (package / "_core.pyi").is_file() and (package / "py.typed").is_file()


def test_errors_become_messages_not_tracebacks(tmp_path, capsys):
    target = tmp_path / "x.root"
    target.write_text("keep me")
    code = main(["data", "make", "bbyy", "--events", "10", "-o", str(target)])
    assert code == 2
    assert "exists" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_demo_runs_end_to_end(tmp_path):
    out = subprocess.run([str(ROOML), "demo", "-o", str(tmp_path), "--events", "3000", "--epochs", "3"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "exact pdfs" in out.stdout
    result = json.loads((tmp_path / "fit_result.json").read_text())
    assert result["flow"]["status"] == 0 and result["truth"]["status"] == 0
    for name in ("workspace.root", "projections.png", "signal.onnx", "background.onnx"):
        assert (tmp_path / name).stat().st_size > 0


CPP_PROGRAM = r"""
#include "RooFlowPdf.h"
#include "rooml/flow_model.h"
#include <RooArgSet.h>
#include <RooRealVar.h>
#include <cstdio>
int main(int argc, char** argv) {
  auto core = rooml::FlowModel::from_file(argv[1]);
  double x[2] = {0.3, -0.2}, lp = 0;
  core->log_prob(x, nullptr, 1, &lp);
  RooRealVar a("x", "x", 0.3, -10, 10), b("y", "y", -0.2, -10, 10);
  RooFlowPdf pdf("p", "p", RooArgList(a, b), RooArgList(), argv[1]);
  RooArgSet norm(a, b);
  std::printf("%.17g %.17g\n", lp, pdf.getVal(norm));
  return 0;
}
"""

CMAKE_PROJECT = """
cmake_minimum_required(VERSION 3.20)
project(uses_rooml CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(rooml REQUIRED PATHS "{cmakedir}" NO_DEFAULT_PATH)
add_executable(uses_rooml main.cpp)
target_link_libraries(uses_rooml PRIVATE rooml::RooML)
"""


def test_cmake_framework_links_librooml(tmp_path, toy_flows):
    """A C++ program found rooml with find_package, linked rooml::RooML and evaluated a flow."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.cpp").write_text(CPP_PROGRAM)
    (src / "CMakeLists.txt").write_text(CMAKE_PROJECT.format(cmakedir=_paths.cmake_dir()))
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, capture_output=True, timeout=300)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, timeout=600)
    out = subprocess.run([str(build / "uses_rooml"), str(toy_flows["signal"])], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    log_prob, value = (float(v) for v in out.stdout.split()[-2:])
    assert value == pytest.approx(2.718281828459045 ** log_prob, rel=1e-12)
    assert log_prob == pytest.approx(float(rooml.load(toy_flows["signal"]).log_prob([[0.3, -0.2]])[0]), abs=1e-12)
