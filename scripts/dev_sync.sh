#!/usr/bin/env bash
# Developer shortcut: copy the Python sources of python/rooml over the rooml
# installed in .venv, without rebuilding the C++ parts.  Use after editing only
# .py files; run scripts/setup_env.sh after any C++ or CMake change.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
site="$("$repo/.venv/bin/python" -c 'import rooml, pathlib; print(pathlib.Path(rooml.__file__).parent)')"
exec 9>"$repo/.venv/.rooml-install.lock"
flock 9
cd "$repo/python/rooml"
find . -name '*.py' -o -name '*.pyi' | while read -r f; do
  mkdir -p "$site/$(dirname "$f")"
  cmp -s "$f" "$site/$f" || cp "$f" "$site/$f"
done
