"""Every code block of README.md and docs/*.md runs as written (so the tours cannot drift from the code).

Each file's blocks run in document order in one fresh interpreter, in an empty directory that has the
repository's ``.venv``, ``macros`` and ``benchmarks`` linked in, with the virtual environment activated
(``PATH`` and ``VIRTUAL_ENV``, as ``source .venv/bin/activate`` sets them).  See ``tests/doc_blocks.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import RUN, SHOW, blocks, write_driver

REPO = Path(__file__).resolve().parents[1]
TESTED_BY_OWN_TESTS = {"own_models.md"}  # test_doc_own_models.py and test_own_models_doc.py run it
DOCS = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in TESTED_BY_OWN_TESTS)]

# Blocks not run, each for a stated reason (a new skip must be added here on purpose).
SKIPPED = {
    ("README.md", "bash scripts/run_demo.sh"): "the full demo and the test suite; a reduced demo is tested",
    ("README.md", ".venv/bin/python benchmarks/bench_flow_throughput.py"): "a timing benchmark (minutes)",
    ("docs/core_performance.md", ".venv/bin/python benchmarks/bench_flow_throughput.py"): "a benchmark",
    ("docs/hisigma.md", "bash scripts/run_demo.sh"): "the full demo and bigger runs; a reduced one is tested",
    ("docs/hisigma.md", "export LD_LIBRARY_PATH=$(rooml config --libdir):$LD_LIBRARY_PATH"):
        "the README's ROOT-macro tour runs the same commands",
    ("docs/hisigma.md", "nice .venv/bin/python benchmarks/compare_baselines.py -o baselines_output"):
        "benchmarks (tens of minutes)",
}

# Blocks known to fail, with the reason (each must fail; remove the entry once it passes).
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _skip_key(path: Path, block) -> tuple[str, str]:
    return _rel(path), block.code.strip().splitlines()[0].split("  #")[0].strip()


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_block_is_classified(path):
    for block in blocks(path):
        where = f"{_rel(path)}:{block.line}"
        assert block.language in RUN + SHOW, f"{where}: fence language {block.language!r} (text if not code)"
        if block.skip_reason is not None:
            assert block.skip_reason, f"{where}: a skip needs a reason"
            assert _skip_key(path, block) in SKIPPED, f"{where}: skipped but not in test_docs.SKIPPED"


def test_skips_are_the_listed_ones():
    found = {_skip_key(p, b) for p in DOCS for b in blocks(p) if b.skip_reason is not None}
    assert found == set(SKIPPED)
    present = {_skip_key(p, b) for p in DOCS for b in blocks(p)}
    assert set(KNOWN_FAILURES) <= present


def _sandbox(tmp_path: Path) -> dict:
    for name in (".venv", "macros", "benchmarks", "scripts"):
        (tmp_path / name).symlink_to(REPO / name)
    venv = REPO / ".venv"
    env = dict(os.environ, VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
               MPLBACKEND="Agg", PYTHONHASHSEED="0", TQDM_DISABLE="1")
    env.pop("PYTHONHOME", None)
    return env


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_doc_runs_as_written(path, tmp_path):
    to_run = [b for b in blocks(path) if b.language in RUN and b.skip_reason is None]
    if not to_run:
        assert all(b.language in SHOW or b.skip_reason for b in blocks(path))
        return
    env = _sandbox(tmp_path)
    known = {b.line: KNOWN_FAILURES[_skip_key(path, b)] for b in to_run
             if _skip_key(path, b) in KNOWN_FAILURES}
    command = write_driver(path, _rel(path), to_run, tmp_path, known)
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    tail = (out.stdout[-6000:] + "\n--- stderr ---\n" + out.stderr[-6000:])
    print("\n".join(line for line in out.stdout.splitlines() if line.startswith("=====")))
    assert out.returncode == 0, tail
    if not known:
        assert "Traceback" not in out.stderr, tail
    assert sys.executable  # the driver ran under the suite's interpreter
