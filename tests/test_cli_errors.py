"""The command line off the happy path: one-line errors, fast help, --version, help and defaults shown."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rooml import __version__
from rooml.cli import build_parser
from rooml.demo import MINIMUM_EPOCHS, MINIMUM_EVENTS, undertraining_warning

ROOML = Path(sys.executable).with_name("rooml")


def _run(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOML), *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=dict(os.environ, **(env or {})))


def _one_line_error(out: subprocess.CompletedProcess, *needles: str) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("rooml: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "text.root"
    path.write_text("not a ROOT file\n")
    return path


@pytest.fixture(scope="module")
def bbyy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "bbyy.root"
    subprocess.run([str(ROOML), "data", "make", "bbyy", "-n", "200", "-o", str(path)], check=True,
                   capture_output=True)
    return path


def test_combine_with_a_text_file(text_file, tmp_path):
    out = _run("combine", "--histfactory", str(text_file), "--unbinned", str(text_file),
               "-o", str(tmp_path / "c.root"))
    _one_line_error(out, "not a ROOT file", str(text_file))
    assert not (tmp_path / "c.root").exists()


def test_combine_with_a_missing_file(tmp_path):
    out = _run("combine", "--histfactory", str(tmp_path / "nope.root"),
               "--unbinned", str(tmp_path / "x.root"),
               "-o", str(tmp_path / "c.root"))
    _one_line_error(out, "nope.root", "no such file")


def test_hh4b_train_on_the_wrong_dataset(bbyy_file, tmp_path):
    out = _run("hh4b", "train", str(bbyy_file), "-o", str(tmp_path / "model"))
    _one_line_error(out, "no tree '4b'", "background", "rooml hh4b data")
    assert not (tmp_path / "model").exists()


def test_hh4b_train_on_a_missing_file(tmp_path):
    out = _run("hh4b", "train", str(tmp_path / "none.root"), "-o", str(tmp_path / "m"))
    _one_line_error(out, "none.root")


def test_debug_shows_the_traceback(text_file, tmp_path):
    args = ("combine", "--histfactory", str(text_file), "--unbinned", str(text_file),
            "-o", str(tmp_path / "c"))
    for out in (_run(*args, env={"ROOML_DEBUG": "1"}), _run("--debug", *args)):
        assert out.returncode != 0 and "Traceback" in out.stderr and "not a ROOT file" in out.stderr


def test_hh4b_predict_refuses_an_existing_output_before_working(tmp_path):
    """The model directory is not even a model: the refusal must come first, before loading or predicting."""
    existing = tmp_path / "sr.root"
    existing.write_text("mine")
    out = _run("hh4b", "predict", str(tmp_path / "no_model"), "-o", str(existing))
    _one_line_error(out, "sr.root exists", "--force")
    assert existing.read_text() == "mine"
    out = _run("hh4b", "predict", str(tmp_path / "no_model"), "--export", str(existing))
    _one_line_error(out, "sr.root exists")


def test_help_is_fast_and_imports_neither_torch_nor_root():
    probe = ("import sys, rooml.cli\n"
             "try:\n    rooml.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
             "import json; print(json.dumps([m for m in ('torch', 'ROOT', 'scipy', 'sklearn', 'nflows') "
             "if m in sys.modules]))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    t0 = time.perf_counter()
    help_out = _run("--help")
    elapsed = time.perf_counter() - t0
    assert help_out.returncode == 0 and "COMMAND" in help_out.stdout
    print(f"\n[cli] rooml --help: {elapsed:.2f} s (target < 1 s; this machine may be loaded)")


def test_version():
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"rooml {__version__}"


def _parsers(parser: argparse.ArgumentParser, prefix: str = "rooml"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix} {name}")


def test_every_option_has_help_and_no_markup():
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            what = (name, action.option_strings or action.dest)
            assert action.help and action.help != argparse.SUPPRESS, what
        text = parser.format_help()
        assert "``" not in text and ":mod:" not in text and ":func:" not in text, name


def test_demo_help_shows_the_defaults():
    text = " ".join(_run("demo", "--help").stdout.split())
    assert "(default: 60000)" in text and "(default: 12)" in text and "(default: 3)" in text
    assert "rooml_output" in text and "(default: None)" not in text
    assert f"--events {MINIMUM_EVENTS} --epochs {MINIMUM_EPOCHS}" in text


def test_undertraining_warning_names_the_threshold():
    assert undertraining_warning(MINIMUM_EVENTS, MINIMUM_EPOCHS) is None
    assert undertraining_warning(10 * MINIMUM_EVENTS, 3 * MINIMUM_EPOCHS) is None
    below = ((5000, 2), (MINIMUM_EVENTS - 1, MINIMUM_EPOCHS), (MINIMUM_EVENTS, MINIMUM_EPOCHS - 1))
    for events, epochs in below:
        text = undertraining_warning(events, epochs)
        assert f"--events {events} --epochs {epochs}" in text and "under-trained" in text
        assert f"--events {MINIMUM_EVENTS} --epochs {MINIMUM_EPOCHS}" in text
