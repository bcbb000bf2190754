"""Export trained models to ONNX files with rooml metadata (``rooml.export``)."""
from __future__ import annotations

from rooml.export._describe import UnsupportedModelError
from rooml.export.onnx_file import (
    ExportValidationError,
    ModelFileError,
    export_flow,
    read_metadata,
)

__all__ = [
    "ExportValidationError",
    "ModelFileError",
    "UnsupportedModelError",
    "export_flow",
    "read_metadata",
]
