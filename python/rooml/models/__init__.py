"""Machine-learned densities and ratios (``rooml.models``).

Normalizing flows and their preprocessing, ensembles and bootstraps of flows,
density-ratio networks (classifier ratios, the exponential-loss reweighter)
and the Gaussian-process mass plane.
"""
from __future__ import annotations

from rooml.models.ensembles import (
    FlowEnsemble,
    Normalization,
    bootstrap_replica,
    member_seed,
    normalization_of_geometric_mean,
    train_ensemble,
)
from rooml.models.flows import FlowConfig, TrainedFlow, build_flow, default_support
from rooml.models.gp import MassPlaneGP, fit_histogram, fit_mass_plane, fit_per_year, plot_mass_plane
from rooml.models.preprocessing import (
    RECIPES,
    Preprocessing,
    build_preprocessing,
    register_recipe,
    smear,
)
from rooml.models.ratio import (
    CalibrationReport,
    RatioConfig,
    RatioEnsemble,
    TrainedRatio,
    calibration_report,
    plot_calibration,
    reliability_curve,
    train_process_ratios,
    train_ratio,
    train_reweighter,
    train_systematic_ratios,
)
from rooml.models.training import fold_context_standardization, train_flow

__all__ = [
    "RECIPES",
    "CalibrationReport",
    "FlowConfig",
    "FlowEnsemble",
    "MassPlaneGP",
    "Normalization",
    "Preprocessing",
    "RatioConfig",
    "RatioEnsemble",
    "TrainedFlow",
    "TrainedRatio",
    "bootstrap_replica",
    "build_flow",
    "build_preprocessing",
    "calibration_report",
    "default_support",
    "fit_histogram",
    "fit_mass_plane",
    "fit_per_year",
    "fold_context_standardization",
    "member_seed",
    "normalization_of_geometric_mean",
    "plot_calibration",
    "plot_mass_plane",
    "register_recipe",
    "reliability_curve",
    "smear",
    "train_ensemble",
    "train_flow",
    "train_process_ratios",
    "train_ratio",
    "train_reweighter",
    "train_systematic_ratios",
]
