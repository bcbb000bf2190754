"""Build RooFit objects from rooml models (PyROOT).

>>> import rooml.roofit                                   # doctest: +SKIP
>>> pdf = rooml.roofit.flow_pdf("sig", "signal.onnx")     # doctest: +SKIP
"""
from __future__ import annotations

from rooml.roofit._library import load_library
from rooml.roofit.column import (
    add_index_column,
    dataset_with_index,
    event_column,
    index_variable,
    set_column_values,
    to_std_vector,
)
from rooml.roofit.flow import flow_pdf, flow_variables
from rooml.roofit.gp import gp_massplane_pdf
from rooml.roofit.hisigma import HiSigmaModel, hisigma_model
from rooml.roofit.interp import interpolated_density, variation_integrals, variation_ratios
from rooml.roofit.nsbi import nsbi_model, nsbi_nll, poisson_bootstrap_weights, to_workspace, update_event_inputs
from rooml.roofit.ratio import ratio_function, ratio_variables

__all__ = ["HiSigmaModel", "hisigma_model", "flow_pdf", "flow_variables", "load_library",
           "add_index_column", "dataset_with_index", "event_column", "index_variable", "set_column_values",
           "to_std_vector",
           "interpolated_density", "variation_integrals", "variation_ratios",
           "nsbi_model", "nsbi_nll", "poisson_bootstrap_weights", "to_workspace", "update_event_inputs",
           "ratio_function", "ratio_variables", "gp_massplane_pdf"]
