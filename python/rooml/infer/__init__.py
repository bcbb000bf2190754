"""Statistical inference on RooFit models: fits, profile scans, significances, bootstrap envelopes."""
from __future__ import annotations

from rooml.infer.coverage import CoverageRow, ParameterCheck, print_summary, profile_at_truth, summarize
from rooml.infer.fit import FitResult, FittedParameter, create_nll, fit, minimize
from rooml.infer.impacts import Impact, Impacts, Pull, impacts, plot_ranking, pulls
from rooml.infer.limits import (
    UpperLimit,
    asimov_dataset,
    asymptotic_cls,
    asymptotic_upper_limit,
    expected_sqrt_q,
)
from rooml.infer.neyman import Belt, belt_from_statistics, coverage, neyman_belt
from rooml.infer.reference_sample import ReferenceSampleErrors, check_reference_size, reference_sample_errors
from rooml.infer.scan import Envelope, ScanResult, discovery_significance, envelope, profile_scan, scan_range
from rooml.infer.spurious import SpuriousSignal, spurious_signal
from rooml.infer.toys import ToyResults, positive_reference_weights, run_toys

__all__ = [
    "Belt",
    "CoverageRow",
    "ParameterCheck",
    "ReferenceSampleErrors",
    "Envelope",
    "FitResult",
    "FittedParameter",
    "Impact",
    "Impacts",
    "Pull",
    "ScanResult",
    "SpuriousSignal",
    "ToyResults",
    "UpperLimit",
    "asimov_dataset",
    "asymptotic_cls",
    "asymptotic_upper_limit",
    "belt_from_statistics",
    "check_reference_size",
    "coverage",
    "expected_sqrt_q",
    "create_nll",
    "discovery_significance",
    "envelope",
    "fit",
    "impacts",
    "minimize",
    "neyman_belt",
    "plot_ranking",
    "positive_reference_weights",
    "print_summary",
    "profile_at_truth",
    "profile_scan",
    "pulls",
    "reference_sample_errors",
    "run_toys",
    "scan_range",
    "spurious_signal",
    "summarize",
]
