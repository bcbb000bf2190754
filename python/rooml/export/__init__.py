"""Export trained models to ONNX files with rooml metadata (``rooml.export``)."""
from __future__ import annotations

from rooml.export._describe import UnsupportedModelError
from rooml.export.ensemble import export_ensemble
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
    "export_ensemble",
    "export_flow",
    "read_metadata",
    "export_ratio",
]
