"""Machine-learned densities: normalizing flows and their preprocessing (``rooml.models``)."""
from __future__ import annotations

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
    "Preprocessing",
    "TrainedFlow",
    "build_flow",
    "build_preprocessing",
    "default_support",
    "fold_context_standardization",
    "register_recipe",
    "smear",
    "train_flow",
]
