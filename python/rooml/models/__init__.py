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
    "Normalization",
    "Preprocessing",
    "TrainedFlow",
    "bootstrap_replica",
    "build_flow",
    "build_preprocessing",
    "default_support",
    "fold_context_standardization",
    "member_seed",
    "normalization_of_geometric_mean",
    "register_recipe",
    "smear",
    "train_ensemble",
    "train_flow",
]
