"""Extract the fenced code blocks of a Markdown file and run them in document order (``tests/test_docs.py``).

Every block has a language.  ``python`` blocks of one file share one fresh interpreter (run in order);
``bash`` blocks run with ``bash -euo pipefail`` in the same working directory, ``cpp`` blocks are ROOT
macros run with ``root -l -b -q``; ``text``, ``json`` and ``cmake`` blocks are shown, not run (``cmake``
snippets are built by the CMake tests).  A block preceded by ``<!-- doc-test: skip: REASON -->`` is not
run; ``<!-- doc-test: cpp-fragment -->`` marks a C++ fragment that is checked to compile inside a macro.
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
import json, os, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1]))
root = os.path.join(os.path.dirname(sys.executable), "root")
namespace = {"__name__": "__main__"}
for b in blocks:
    print(f"\n===== {b['source']}:{b['line']} [{b['language']}]", flush=True)
    if b["language"] == "python":
        try:
            exec(compile(b["code"], f"{b['source']}:{b['line']}", "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"DOC-BLOCK-FAILED {b['source']}:{b['line']}", flush=True)
            sys.exit(1)
        sys.stdout.flush()
        continue
    if b["language"] == "bash":
        cmd = ["bash", "-euo", "pipefail", "-c", b["code"]]
    else:  # a ROOT macro
        name = f"doc_macro_{b['line']}.C"
        code = b["code"] if b["directive"] != "cpp-fragment" else (
            "void " + name[:-2] + "() {\n" + b["code"] + "\n}\n")
        with open(name, "w") as f:
            f.write(code)
        cmd = [root, "-l", "-b", "-q", name]
    done = subprocess.run(cmd)
    if done.returncode != 0:
        print(f"DOC-BLOCK-FAILED {b['source']}:{b['line']} (exit {done.returncode})", flush=True)
        sys.exit(1)
'''


def write_driver(path: Path, source: str, to_run: list[Block], folder: Path) -> list[str]:
    """Write the driver and its block list into ``folder``; return the command that runs them."""
    (folder / "doc_blocks.json").write_text(json.dumps([dict(asdict(b), source=source) for b in to_run]))
    (folder / "doc_driver.py").write_text(DRIVER)
    return [sys.executable, str(folder / "doc_driver.py"), str(folder / "doc_blocks.json")]
