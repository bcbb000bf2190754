#!/usr/bin/env bash
# Create (or update) the virtual environment .venv at the repository root with
# everything rooml needs, then build and install rooml into it.  Safe to run
# again: existing packages are kept, the C++ build is incremental.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "rooml: creating virtual environment .venv"
  "$python" -m venv .venv
fi
py="$repo/.venv/bin/python"
pip() { "$py" -m pip --disable-pip-version-check -q "$@"; }

have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then have_gpu=1; fi

# torch first: a bare 'torch' requirement would pull a multi-GB CUDA build on a CPU machine.
if ! "$py" -c "import torch" >/dev/null 2>&1; then
  if [ "$have_gpu" = 1 ]; then
    echo "rooml: GPU found, installing CUDA torch and onnxruntime-gpu"
    pip install torch onnxruntime-gpu
  else
    echo "rooml: installing CPU torch"
    pip install "torch==2.13.0" || pip install torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

echo "rooml: installing dependencies (ROOT wheel, nflows, onnxruntime, uproot, dask, ...)"
pip install "scikit-build-core>=0.10" "pybind11>=2.12" "root" pytest ruff
pip install numpy scipy nflows zuko onnx onnxruntime uproot awkward scikit-learn "dask[distributed]" \
  matplotlib mplhep tqdm

echo "rooml: building and installing rooml (C++ core, pybind11 module, libRooML)"
# One build at a time: the build directory and site-packages are shared.
exec 9>"$repo/.venv/.rooml-install.lock"
flock 9
pip install --no-build-isolation --no-deps .
flock -u 9
"$py" -c "import rooml, rooml._core; print('rooml', rooml.__version__, 'ready in .venv')"
