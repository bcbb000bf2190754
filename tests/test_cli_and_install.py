"""The command line, the installed layout, and linking a C++ program against libRooML."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rooml
from rooml import _paths
from rooml.cli import main

ROOML = Path(sys.executable).with_name("rooml")
REPO = Path(__file__).resolve().parents[1]


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


DEMO_OPTIONS = ["--events", "6000", "--epochs", "2", "--bootstraps", "2", "--signal", "300",
                "--background", "3000", "--scan-points", "5", "--normalization-samples", "20000", "--serial"]
FIT_LINE = re.compile(r"ROOML_FIT mu=(\S+) mu_err=(\S+) nll=(\S+) status=(\d+)")
SCAN_LINE = re.compile(r"ROOML_SCAN mu=(\S+) t=(\S+)")


def _macro_output(command: list[str]) -> tuple[list[float], np.ndarray]:
    env = dict(os.environ, LD_LIBRARY_PATH=f"{_paths.library_dir()}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    fit = FIT_LINE.search(out.stdout)
    assert fit, out.stdout[-2000:] + out.stderr[-2000:]
    scan = np.array([[float(v) for v in m] for m in SCAN_LINE.findall(out.stdout)])
    return [float(v) for v in fit.groups()], scan


def test_demo_runs_end_to_end_and_macros_refit_it(tmp_path):
    """A reduced HI-SIGMA demo; then macros/fit_hisigma.C and .py refit its workspace in plain ROOT."""
    out = subprocess.run([str(ROOML), "demo", "-o", str(tmp_path), *DEMO_OPTIONS],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "envelope interval" in out.stdout and "Z0" in out.stdout
    assert out.stdout.count("under-trained") == 2  # before training and next to the numbers
    assert "alpha stage" not in out.stderr and "triangular_solve" not in out.stderr
    result = json.loads((tmp_path / "fit_result.json").read_text())
    assert result["fit"]["status"] == 0
    mu_hat, sigma = result["mu_hat"], result["mu_error"]
    assert 0.05 < sigma < 0.5  # 300 signal on 3000 background: sigma(mu) ~ 0.1
    assert abs(mu_hat - 1.0) < 4 * sigma
    assert abs(result["fit"]["parameters"]["nu_pt_bb"]["value"]) < 4  # the constrained NP stays in range
    lo, hi = result["envelope"]["interval"]
    assert len(result["envelope"]["mu_hats"]) == 2 and all(lo < m < hi for m in result["envelope"]["mu_hats"])
    assert result["z0"] > 3
    for name in ("workspace.root", "projections.png", "scan.png", "pulls.png", "signal_nominal.onnx",
                 "background_high.onnx"):
        assert (tmp_path / name).stat().st_size > 0
    again = subprocess.run([str(ROOML), "demo", "-o", str(tmp_path), *DEMO_OPTIONS], capture_output=True,
                           text=True)
    assert again.returncode == 2 and "--force" in again.stderr  # never overwrites without being asked

    workspace = str(tmp_path / "workspace.root")
    root = Path(sys.executable).with_name("root")
    (c_mu, c_err, c_nll, c_status), c_scan = _macro_output(
        [str(root), "-l", "-b", "-q", f'macros/fit_hisigma.C("{workspace}", 5)'])
    (p_mu, p_err, _, p_status), p_scan = _macro_output(
        [sys.executable, "macros/fit_hisigma.py", workspace, "--points", "5"])
    assert c_status == 0 and p_status == 0
    assert c_mu == pytest.approx(mu_hat, abs=0.02 * sigma)  # Minuit tolerance (EDM 1e-5 on the NLL)
    assert c_err == pytest.approx(sigma, rel=0.02)
    assert c_nll == pytest.approx(result["fit"]["nll"], abs=2e-3)
    assert p_mu == pytest.approx(c_mu, abs=1e-3 * sigma) and p_err == pytest.approx(c_err, rel=1e-3)
    np.testing.assert_allclose(p_scan, c_scan, atol=1e-3)
    assert c_scan.shape == (5, 2) and c_scan[2, 1] == pytest.approx(0.0, abs=1e-3)
    assert 2.5 < c_scan[0, 1] < 6.5 and 2.5 < c_scan[-1, 1] < 6.5  # t ~ 4 at mu_hat -+ 2 sigma


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


def test_demo_default_output_never_overwrites_an_earlier_run(tmp_path):
    from rooml.demo import fresh_output_directory

    base = tmp_path / "rooml_output"
    assert fresh_output_directory(base) == base
    base.mkdir()
    (base / "notes.txt").write_text("a user's file")
    assert fresh_output_directory(base) == base  # no demo outputs there yet
    (base / "fit_result.json").write_text("{}")
    assert fresh_output_directory(base) == tmp_path / "rooml_output_2"
    (tmp_path / "rooml_output_2").mkdir()
    (tmp_path / "rooml_output_2" / "workspace.root").write_text("")
    assert fresh_output_directory(base) == tmp_path / "rooml_output_3"
