"""Machine-learned densities: normalizing flows, their preprocessing and ensembles (``rooml.models``)."""
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
from rooml.models.training import fold_context_standardization, train_flow

__all__ = [
    "RECIPES",
    "FlowConfig",
    "FlowEnsemble",
    "MassPlaneGP",
    "Normalization",
    "Preprocessing",
    "TrainedFlow",
    "bootstrap_replica",
    "build_flow",
    "build_preprocessing",
    "default_support",
    "fit_histogram",
    "fit_mass_plane",
    "fit_per_year",
    "fold_context_standardization",
    "member_seed",
    "normalization_of_geometric_mean",
    "plot_mass_plane",
    "register_recipe",
    "smear",
    "train_ensemble",
    "train_flow",
]
