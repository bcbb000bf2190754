"""Quality figures of trained models against the exact truths of :mod:`rooml.data`."""
from __future__ import annotations

from rooml.validation.bbyy_sideband import SidebandResult, bbyy_feature_preprocessing, sideband_interpolation

__all__ = ["SidebandResult", "bbyy_feature_preprocessing", "sideband_interpolation"]
