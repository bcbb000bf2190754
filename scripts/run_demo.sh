#!/usr/bin/env bash
# The README's main job: set up .venv (if needed), build rooml, run the end-to-end demo.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup_env.sh"
exec "$repo/.venv/bin/rooml" demo "$@"
