"""Shared fixtures: deterministic seeds, random-weight flows, small trained toy flows."""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", message=r"\s*This distribution of ROOT")
os.environ.setdefault("ROOML_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    np.random.seed(1234)


@pytest.fixture(scope="session")
def toy_flows(tmp_path_factory):
    """Signal and background flows trained on the analytic toy2d densities, exported to ONNX."""
    from rooml.demo import slice as demo_slice

    out = tmp_path_factory.mktemp("toy_flows")
    return demo_slice.train_and_export(out, events=20000, epochs=40, seed=1, progress=False)


@pytest.fixture(scope="session")
def roofit():
    """ROOT with libRooML loaded and RooFit's INFO messages silenced."""
    from rooml.roofit import load_library

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.WARNING)
    return ROOT


def pytest_sessionfinish(session, exitstatus):
    session.config._rooml_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without ROOT's interpreter teardown once the run has reported.

    ROOT's TROOT::~TROOT (libCling) can spin at exit: seen once, at 100 % CPU for 17 minutes after a
    subprocess's tests had all passed, which made the whole run hang.  Nothing is left to write by then.
    """
    if "ROOT" in sys.modules and hasattr(config, "_rooml_exitstatus"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config._rooml_exitstatus)
