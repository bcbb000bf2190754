"""Where the installed rooml keeps libRooML, its headers and its CMake files."""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cflags", "cmake_dir", "core_libs", "include_dir", "libs", "library_dir", "library_path",
           "prepare_root_autoload"]

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


def _build_config() -> dict:
    """Read what the build recorded about the ROOT libRooML was linked against (``lib/rooml_build.json``)."""
    import json

    path = library_dir() / "rooml_build.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall rooml (it is written by the C++ build)")
    config = json.loads(path.read_text())
    for key in ("root_include_dirs", "root_libraries"):
        config[key] = [v for v in config[key].split(";") if v]
    return config


def cflags() -> str:
    """Compiler flags for code using rooml's headers and libRooML's ROOT (C++ standard, include paths)."""
    config = _build_config()
    dirs = [str(include_dir()), *config["root_include_dirs"]]
    includes = [f"-I{d}" for d in dict.fromkeys(dirs)]
    return " ".join([f"-std=c++{config['cxx_standard']}", "-pthread", *includes])


def libs() -> str:
    """Linker flags for a program using libRooML and RooFit, usable as printed.

    libRooML, ROOT's RooFit libraries with run paths to both, and for the ROOT pip wheel the folder of its
    bundled libraries (libpcre2, libpng, libbz2, ...) as ``-rpath-link`` (the linker does not read ROOT's
    ``$ORIGIN`` run path) and run path.
    """
    config = _build_config()
    lib, root = library_dir(), config["root_library_dir"]
    flags = [f"-L{lib}", f"-Wl,-rpath,{lib}", "-lRooML", f"-L{root}", f"-Wl,-rpath,{root}"]
    flags += [f"-l{name}" for name in config["root_libraries"]]
    bundled = config.get("root_bundled_library_dir")
    if bundled:
        flags += [f"-Wl,-rpath-link,{bundled}", f"-Wl,-rpath,{bundled}"]
    return " ".join([*flags, "-pthread"])


def core_libs() -> str:
    """Linker flags for the ROOT-free core ``libroomlcore`` alone (CMake: ``rooml::core``)."""
    lib = library_dir()
    return f"-L{lib} -Wl,-rpath,{lib} -lroomlcore -pthread"


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
