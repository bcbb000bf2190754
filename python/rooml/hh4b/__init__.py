"""The HH -> 4b data-driven background workflow on the ``rooml.data.hh4b`` generator.

Two background methods (DESIGN.md method 3) and the synthetic-dataset method
for their systematic uncertainties:

* :mod:`rooml.hh4b.interpolation` -- GP mass plane + conditional kinematics flow;
* :mod:`rooml.hh4b.reweighting` -- exponential-loss reweighting from 2b to 4b;
* :mod:`rooml.hh4b.mixing` -- hemisphere-mixed synthetic datasets;
* :mod:`rooml.hh4b.validation` -- yields and chi2 tables in the validation regions.

Every method returns a :class:`~rooml.hh4b.prediction.Prediction`.
"""
from __future__ import annotations

import importlib

# Imported on first use (PEP 562), so that ``rooml hh4b --help`` does not load torch and scikit-learn.
_EXPORTS = {
    "InterpolationConfig": "interpolation", "InterpolationModel": "interpolation",
    "interpolation_method": "interpolation",
    "HemisphereLibrary": "mixing", "MixingStudy": "mixing", "build_library": "mixing", "mix": "mixing",
    "study_method": "mixing",
    "Prediction": "prediction",
    "Reweighter": "reweighting", "reweighting_method": "reweighting", "train_reweighting": "reweighting",
    "VALIDATION_REGIONS": "validation", "ValidationData": "validation", "run_validation": "validation",
}  # fmt: skip

__all__ = [
    "HemisphereLibrary",
    "InterpolationConfig",
    "InterpolationModel",
    "MixingStudy",
    "VALIDATION_REGIONS",
    "ValidationData",
    "Prediction",
    "Reweighter",
    "build_library",
    "interpolation_method",
    "mix",
    "reweighting_method",
    "run_validation",
    "study_method",
    "train_reweighting",
]


def __getattr__(name: str):
    """Import the submodule that defines ``name`` on first access."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"rooml.hh4b.{_EXPORTS[name]}"), name)
    if name in set(_EXPORTS.values()) | {"cli"}:  # the submodules themselves
        return importlib.import_module(f"rooml.hh4b.{name}")
    raise AttributeError(f"module 'rooml.hh4b' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
