"""Extract the fenced code blocks of a Markdown file and run them in document order (``tests/test_docs.py``).

Every block has a language.  ``python`` blocks of one file share one fresh interpreter (run in order);
``bash`` blocks run with ``bash -eo pipefail`` in the same working directory, ``cpp`` blocks are ROOT
macros run with ``root -l -b -q``; ``text``, ``json`` and ``cmake`` blocks are shown, not run (``cmake``
snippets are built by the CMake tests).  A block preceded by ``<!-- doc-test: skip: REASON -->`` is not
run; ``<!-- doc-test: needs hf.root nsbi.root -->`` has the test provide prerequisites that the text says come
from elsewhere (``hf.root``: ROOT's hf001 HistFactory tutorial workspace; ``nsbi.root``: an offshell4l
NSBI workspace), made as ``tests/test_combine.py`` makes them.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

RUN = ("python", "bash", "cpp")
SHOW = ("text", "json", "cmake")
_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->\s*\Z", re.S)


@dataclass
class Block:
    """One fenced block: its language, first line number, code and doc-test directive."""

    language: str
    line: int
    code: str
    directive: str = ""

    @property
    def skip_reason(self) -> str | None:
        """The reason given in a ``skip:`` directive, or None when the block runs."""
        if self.directive.startswith("skip"):
            return self.directive.partition(":")[2].strip()
        return None


def blocks(path: Path) -> list[Block]:
    """All fenced blocks of ``path`` in order."""
    text = path.read_text()
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip()
        directive = _DIRECTIVE.search(before[-300:])
        out.append(Block(m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2),
                         directive.group(1) if directive else ""))
    return out


DRIVER = r'''
import json, os, re, subprocess, sys, time, traceback
blocks, tests = (json.load(open(sys.argv[1])), sys.argv[2]) if __name__ == "__main__" else ([], "")
root = os.path.join(os.path.dirname(sys.executable), "root")
namespace = {"__name__": "__main__"}


def needs(what):
    """Prerequisite files a block names as coming from elsewhere (made as the combination tests make them)."""
    import pathlib
    sys.path.insert(0, tests)
    for name in what.split():
        if os.path.exists(name):
            continue
        import ROOT
        import test_combine
        from rooml.combine import write_workspace
        if name == "hf.root":  # ROOT's hf001 HistFactory tutorial workspace
            write_workspace(test_combine._histfactory_workspace(ROOT, pathlib.Path(".")), name)
        elif name == "nsbi.root":  # an offshell4l NSBI workspace (rooml.roofit.to_workspace)
            write_workspace(test_combine._unbinned_workspace(ROOT), name)
        else:
            raise ValueError(f"doc-test: no recipe for the prerequisite {name}")


def failed(b, why):
    print(f"DOC-BLOCK-FAILED {b['source']}:{b['line']} ({why})", flush=True)
    sys.exit(1)


def main():
    """Run the blocks in order (guarded: Dask's spawned workers import this file)."""
    start = time.perf_counter()
    for b in blocks:
        elapsed = time.perf_counter() - start
        print(f"\n===== {b['source']}:{b['line']} [{b['language']}] at {elapsed:.1f} s", flush=True)
        if b["directive"].startswith("needs "):
            needs(b["directive"][len("needs "):])
        if b["language"] == "python":
            try:
                exec(compile(b["code"], f"{b['source']}:{b['line']}", "exec"), namespace)
            except BaseException:
                traceback.print_exc()
                failed(b, "exception")
            sys.stdout.flush()
            continue
        if b["language"] == "bash":  # one shell session: exports carry over to later blocks
            cmd = ["bash", "-eo", "pipefail", "-c", b["code"] + "\nenv -0 > .doc_env"]
        else:  # a ROOT macro, in a file named after its function
            function = re.search(r"^\w[\w:<>, ]*\s+(\w+)\s*\(", b["code"], re.M).group(1)
            with open(f"{function}.C", "w") as f:
                f.write(b["code"])
            cmd = [root, "-l", "-b", "-q", f"{function}.C"]
        sys.stdout.flush()
        done = subprocess.run(cmd)
        if b.get("known_failure"):
            if done.returncode == 0:
                failed(b, "passed but is listed in KNOWN_FAILURES: remove it there")
            print(f"DOC-BLOCK-KNOWN-FAILURE {b['source']}:{b['line']}: {b['known_failure']}", flush=True)
            continue
        if done.returncode != 0:
            failed(b, f"exit {done.returncode}")
        if b["language"] == "bash" and os.path.exists(".doc_env"):
            env = dict(item.split("=", 1) for item in open(".doc_env").read().split("\0") if "=" in item)
            os.environ.clear()
            os.environ.update(env)
    print(f"\n===== done in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
'''


def write_driver(path: Path, source: str, to_run: list[Block], folder: Path,
                 known_failures: dict[int, str] | None = None) -> list[str]:
    """Write the driver and its block list into ``folder``; return the command that runs them.

    ``known_failures`` maps a (bash or cpp) block's line to the reason it is expected to fail; such a
    block must fail (the driver says so and goes on) until it is removed from the mapping.
    """
    known_failures = known_failures or {}
    rows = [dict(asdict(b), source=source, known_failure=known_failures.get(b.line, "")) for b in to_run]
    (folder / "doc_blocks.json").write_text(json.dumps(rows))
    (folder / "doc_driver.py").write_text(DRIVER)
    tests = str(Path(__file__).resolve().parent)
    return [sys.executable, str(folder / "doc_driver.py"), str(folder / "doc_blocks.json"), tests]
