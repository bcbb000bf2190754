"""Run a ROOT C++ macro with libRooML on the library path (what a ROOT-macro user does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import rooml._paths


def run_root_macro(macro: str | Path, *arguments: str | Path) -> subprocess.CompletedProcess:
    """Run ``root -b -q -l 'macro("arg", ...)'`` with libRooML's directory on ``LD_LIBRARY_PATH``."""
    library_path = f"{rooml._paths.library_dir()}:{os.environ.get('LD_LIBRARY_PATH', '')}"
    env = dict(os.environ, LD_LIBRARY_PATH=library_path)
    root = Path(sys.executable).with_name("root")
    call = f"{macro}(" + ", ".join(f'"{a}"' for a in arguments) + ")"
    return subprocess.run([str(root), "-b", "-q", "-l", call], capture_output=True, text=True, env=env,
                          timeout=300)
