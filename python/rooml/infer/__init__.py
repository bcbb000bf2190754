"""Statistical inference on RooFit models: fits, profile scans, significances, bootstrap envelopes."""
from __future__ import annotations

from rooml.infer.fit import FitResult, FittedParameter, create_nll, fit, minimize
from rooml.infer.scan import Envelope, ScanResult, discovery_significance, envelope, profile_scan

__all__ = [
    "Envelope",
    "FitResult",
    "FittedParameter",
    "ScanResult",
    "create_nll",
    "discovery_significance",
    "envelope",
    "fit",
    "minimize",
    "profile_scan",
]
