"""Every file rooml writes gets the permissions of the user's umask (0644 under 022, 0664 under 002)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from flow_factory import random_flow
from rooml._files import atomic_output, file_mode
from rooml.data import bbyy
from rooml.data.io import write_root
from rooml.export import export_flow

UMASKS = [0o022, 0o002, 0o077]


@pytest.fixture(params=UMASKS, ids=lambda m: f"umask{m:03o}")
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_mode_follows_umask(umask):
    assert file_mode() == 0o666 & ~umask


def test_onnx_export(umask, tmp_path):
    flow = random_flow("coupling", features=2)
    path = export_flow(flow, tmp_path / "f.onnx", features=["a", "b"])
    assert _mode(path) == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name != "f.onnx"]  # no temporary left behind


def test_root_trees(umask, tmp_path):
    path = write_root(tmp_path / "bbyy.root", bbyy.generate("background", 100, seed=1))
    assert _mode(path) == 0o666 & ~umask


def test_workspace_written_by_root(umask, tmp_path, roofit):
    """ROOT itself creates 0644 files whatever the umask; rooml's workspaces follow the umask."""
    from rooml.demo import slice as demo_slice

    model, data = demo_slice.build_truth_model(demo_slice.make_dataset(10, 100, seed=1))
    path = demo_slice.write_workspace(model, data, tmp_path / "ws.root")
    assert _mode(path) == 0o666 & ~umask


def test_hh4b_stream_and_plots(umask, tmp_path):
    from rooml.hh4b.cli import stream_dataset
    from rooml.infer.toys import save_figure

    path = stream_dataset(tmp_path / "hh4b.root", 200, chunk_size=100, progress=False)
    assert _mode(path) == 0o666 & ~umask
    png = save_figure(lambda ax, hep: ax.plot([0, 1], [0, 1]), tmp_path / "p.png")
    assert _mode(png) == 0o666 & ~umask


def test_atomic_output_refuses_and_cleans_up(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("mine")
    with pytest.raises(FileExistsError, match="x.txt exists"):
        with atomic_output(target, overwrite=False) as tmp:
            tmp.write_text("theirs")
    assert target.read_text() == "mine"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(tmp_path / "y.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_cli_data_make(mask, tmp_path):
    """``rooml data make`` under the shell's umask."""
    out = tmp_path / "d.root"
    cmd = [sys.executable, "-m", "rooml.cli", "data", "make", "bbyy", "--events", "50", "--seed", "1",
           "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, preexec_fn=lambda: os.umask(mask))
    assert _mode(out) == 0o666 & ~mask
