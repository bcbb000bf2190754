"""Build RooFit objects from rooml models (PyROOT).

>>> import rooml.roofit                                   # doctest: +SKIP
>>> pdf = rooml.roofit.flow_pdf("sig", "signal.onnx")     # doctest: +SKIP
"""
from __future__ import annotations

from rooml.roofit._library import load_library
from rooml.roofit.flow import flow_pdf, flow_variables

__all__ = ["flow_pdf", "flow_variables", "load_library"]
