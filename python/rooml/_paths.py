"""Where the installed rooml keeps libRooML, its headers and its CMake files."""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cmake_dir", "include_dir", "library_dir", "library_path", "prepare_root_autoload"]

_PACKAGE = Path(__file__).resolve().parent


def library_dir() -> Path:
    """Directory holding ``libRooML.so``, its rootmap and its pcm."""
    return _PACKAGE / "lib"


def library_path() -> Path:
    """Full path of ``libRooML.so``."""
    return library_dir() / "libRooML.so"


def include_dir() -> Path:
    """Directory with the rooml headers (RooFit classes and the ROOT-free core)."""
    return _PACKAGE / "include"


def cmake_dir() -> Path:
    """Directory with ``roomlConfig.cmake`` for ``find_package(rooml)``."""
    return library_dir() / "cmake" / "rooml"


def prepare_root_autoload() -> None:
    """Make ROOT find rooml's classes (``ROOT.RooFlowPdf``).

    If ROOT is already imported the library is loaded now; otherwise its
    directory is put on ``LD_LIBRARY_PATH`` so that ROOT, when it starts, reads
    libRooML's rootmap and loads the library on first use of a rooml class.
    """
    libdir = str(library_dir())
    if "ROOT" in sys.modules:
        from rooml.roofit import load_library

        load_library()
        return
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir not in current.split(os.pathsep):
        os.environ["LD_LIBRARY_PATH"] = libdir + (os.pathsep + current if current else "")
