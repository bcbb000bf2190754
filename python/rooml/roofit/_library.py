"""Loading libRooML into a PyROOT session."""
from __future__ import annotations

from rooml import _paths

__all__ = ["load_library"]

_loaded = False


def load_library():
    """Load libRooML (the rooml RooFit classes) into ROOT and return the ``ROOT`` module.

    Raises
    ------
    RuntimeError
        libRooML is missing (rooml installed without its RooFit plugin) or ROOT
        refuses to load it.
    """
    global _loaded
    import ROOT

    if _loaded:
        return ROOT
    path = _paths.library_path()
    if not path.is_file():
        raise RuntimeError(f"libRooML not found at {path}: was rooml built with its RooFit plugin?")
    ROOT.gInterpreter.AddIncludePath(str(_paths.include_dir()))
    status = ROOT.gSystem.Load(str(path))
    if status < 0:
        raise RuntimeError(f"ROOT could not load {path} (gSystem.Load returned {status})")
    # Declaring rooml::Error lets cppyy raise it with its message instead of a bare std::exception.
    ROOT.gInterpreter.Declare('#include "rooml/error.h"')
    _loaded = True
    return ROOT
