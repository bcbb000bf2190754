"""Export trained models to ONNX files with rooml metadata (``rooml.export``)."""
from __future__ import annotations

from rooml.export._describe import UnsupportedModelError
from rooml.export.adopt import adopt_onnx
from rooml.export.ensemble import export_ensemble
from rooml.export.gp import export_gp_massplane, export_gp_per_year
from rooml.export.onnx_file import (
    ExportValidationError,
    ModelFileError,
    export_flow,
    read_metadata,
)
from rooml.export.ratio import export_ratio

__all__ = [
    "ExportValidationError",
    "ModelFileError",
    "UnsupportedModelError",
    "adopt_onnx",
    "export_ensemble",
    "export_flow",
    "export_gp_massplane",
    "export_gp_per_year",
    "read_metadata",
    "export_ratio",
]
