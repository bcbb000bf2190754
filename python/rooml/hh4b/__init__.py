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

from rooml.hh4b.interpolation import InterpolationConfig, InterpolationModel, interpolation_method
from rooml.hh4b.mixing import HemisphereLibrary, MixingStudy, build_library, mix, study_method
from rooml.hh4b.prediction import Prediction
from rooml.hh4b.reweighting import Reweighter, reweighting_method, train_reweighting
from rooml.hh4b.validation import VALIDATION_REGIONS, ValidationData, run_validation

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
