"""rooml: machine-learned densities as first-class RooFit objects."""
from __future__ import annotations

from rooml._version import __version__

__all__ = ["__version__"]
