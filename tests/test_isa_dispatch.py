"""Run-time choice of the kernel sets (rooml/dispatch.h): choice, refusal, agreement, and machine code.

A library built on an AVX-512 machine must run on an AVX2-only or SSE2-only one.  That is checked two ways:
every kernel set this CPU supports runs the core tests and gives the same numbers (ROOML_ISA forces a set;
ROOML_ISA_LIMIT makes the choice an older CPU would make), and the built libraries' machine code is read to
prove that no function outside the AVX-512 / AVX2 kernel namespaces uses AVX instructions.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rooml
import torch
from flow_factory import VARIANTS, random_flow, variant_id
from rooml import _core
from rooml._paths import library_path
from rooml.export import export_flow, export_ratio
from test_ratio_export import _inputs, _model

TESTS = Path(__file__).parent
SUPPORTED = _core.supported_isas()


def _run(args, isa=None, limit=None, **kw):
    """Run a Python subprocess with ROOML_ISA / ROOML_ISA_LIMIT set (or unset)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROOML_ISA", "ROOML_ISA_LIMIT")}
    if isa:
        env["ROOML_ISA"] = isa
    if limit:
        env["ROOML_ISA_LIMIT"] = limit
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, **kw)


def _query(isa=None, limit=None):
    code = "from rooml import _core; print(_core.isa(), ','.join(_core.supported_isas()))"
    return _run(["-c", code], isa, limit)


def test_chosen_set_is_the_best_the_cpu_supports():
    assert SUPPORTED[-1] == "baseline"
    assert set(SUPPORTED) <= set(_core.compiled_isas())
    assert _core.compiled_isas()[-1] == "baseline"
    done = _query()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [SUPPORTED[0], ",".join(SUPPORTED)]


@pytest.mark.parametrize("isa", SUPPORTED)
def test_forced_set_is_used(isa):
    done = _query(isa)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == isa


@pytest.mark.parametrize("limit", SUPPORTED)
def test_an_older_cpu_gets_its_best_set(limit):
    done = _query(limit=limit)
    assert done.returncode == 0, done.stderr
    kept = SUPPORTED[SUPPORTED.index(limit):]
    assert done.stdout.split() == [limit, ",".join(kept)]


def test_unknown_set_is_refused():
    done = _query("avx9000")
    assert done.returncode != 0
    assert "ROOML_ISA=avx9000: unknown kernel set" in done.stderr
    assert "kernel sets this CPU supports: " + ", ".join(SUPPORTED) in done.stderr


def test_set_the_cpu_lacks_is_refused():
    lacking = [s for s in _core.compiled_isas() if s not in SUPPORTED]
    # on a CPU that runs every compiled set, pretend it is one without the best of them
    limit = None if lacking else _core.compiled_isas()[1]
    want = lacking[0] if lacking else _core.compiled_isas()[0]
    usable = [s for s in SUPPORTED if limit is None or SUPPORTED.index(s) >= SUPPORTED.index(limit)]
    done = _query(want, limit)
    assert done.returncode != 0
    assert f"ROOML_ISA={want}: this CPU cannot run the '{want}' kernels" in done.stderr
    assert "kernel sets it supports: " + ", ".join(usable) in done.stderr


# --- the same numbers from every kernel set ---------------------------------------------------------------

@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    """Flows of every VARIANT, two ratio models and the inputs, for tests/isa_probe.py."""
    directory = tmp_path_factory.mktemp("isa_probe")
    rng = np.random.default_rng(5)
    inputs = {f"x{d}": rng.normal(size=(3001, d)) for d in (3,)}
    inputs.update({f"c{c}": rng.normal(size=(3001, c)) for c in (1, 2)})
    for i, v in enumerate(VARIANTS):
        flow = random_flow(features=3, seed=i, **v)
        ctx = inputs[f"c{v['context']}"][:256] if v["context"] else None
        with torch.no_grad():
            export_flow(flow, directory / f"flow_{i}_{variant_id(v)}.onnx",
                        reference_inputs=(inputs["x3"][:256], ctx))
    ratios = {"relu1": dict(activation="relu", correction=0.0, members=1, combination="mean_log"),
              "silu3": dict(activation="silu", correction=0.3, members=3, combination="mean_log")}
    for name, v in ratios.items():
        export_ratio(_model(v), directory / f"ratio_{name}.onnx")
    inputs["ratio_x"] = _inputs(2999, edges=False)
    nominal = rng.uniform(0.5, 2.0, 2003)
    inputs.update(nominal=nominal, low=nominal * rng.uniform(0.6, 1.1, 2003),
                  high=nominal * rng.uniform(0.9, 1.5, 2003))
    np.savez(directory / "inputs.npz", **inputs)
    with_nsbi = ["--nsbi"] if library_path().exists() else []
    for isa in SUPPORTED:
        done = _run([str(TESTS / "isa_probe.py"), str(directory), *with_nsbi], isa, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return directory


def _outputs(directory, isa):
    with np.load(directory / f"out_{isa}.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("isa", SUPPORTED)
def test_each_set_is_bit_identical_across_thread_counts(probe_dir, isa):
    out = _outputs(probe_dir, isa)
    pairs = [(k, k.replace("_t1", "_t2")) for k in out if k.endswith("_t1")]
    assert len(pairs) >= len(VARIANTS) + 2  # every flow, samples, both ratio models
    for one, two in pairs:
        assert np.array_equal(out[one], out[two], equal_nan=True), one


@pytest.mark.parametrize("isa", [s for s in SUPPORTED if s != "baseline"])
def test_sets_agree_to_1e12(probe_dir, isa):
    """Every output of a vector kernel set equals the baseline's to 1e-12 relative (of its largest value)."""
    want, got = _outputs(probe_dir, "baseline"), _outputs(probe_dir, isa)
    assert sorted(got) == sorted(want)
    for key in want:
        scale = np.max(np.abs(want[key]))
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12 * scale, err_msg=key)
        assert np.all(np.isfinite(want[key])), key
    if library_path().exists():
        assert "nsbi_value_t1" in want


# --- element-wise kernels against extended precision -------------------------------------------------------

_ULP_PROBE = r"""
import json
import numpy as np
from rooml import _core
rng = np.random.default_rng(8)
# wide and narrow ranges, a count that leaves a scalar tail (80006 = 6 mod 8), and the clamp edges
x = np.concatenate([rng.uniform(-700, 700, 40001), rng.uniform(-4, 4, 40001), [-700.0, 0.0, 700.0, 1e-300]])
t = rng.normal(size=x.size) * 10.0 ** rng.uniform(-3, 3, x.size)
L = np.longdouble
def ulps(got, ref):
    ref64 = ref.astype(float)
    ulp = np.spacing(np.abs(ref64))
    return float(np.max(np.abs(got.astype(L) - ref) / ulp))
ex = lambda v: _core._elementwise("exp", np.array(v))  # noqa: E731
xl = x.astype(L)
out = {
    "isa": _core.isa(),
    "exp": ulps(_core._elementwise("exp", x), np.exp(xl)),
    "silu": ulps(_core._elementwise("silu", x), xl / (1 + np.exp(-xl))),
    "sigmoid_product": ulps(_core._elementwise("sigmoid_product", t, x), t.astype(L) / (1 + np.exp(-xl))),
    "sigmoid_product_pair": ulps(_core._elementwise("sigmoid_product_pair", t, x),
                                 t.astype(L) / (1 + np.exp(-xl))),
    "clamped": bool(ex([-800.0])[0] == ex([-700.0])[0] and ex([800.0])[0] == ex([700.0])[0]),
}
print(json.dumps(out))
"""


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="the reference needs 80-bit long double (x86)")
@pytest.mark.parametrize("isa", SUPPORTED)
def test_elementwise_kernels_within_ulps(isa):
    """Exp (1.5 ulp), SiLU and t * sigmoid(g) (2.5 ulp, also the two-row kernel) of each kernel set.

    Measured: exp 1.07 / 1.10 / 1.15 ulp for avx512 / avx2 / baseline, the others at most 2.21.
    """
    done = _run(["-c", _ULP_PROBE], isa, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["isa"] == isa
    assert out["clamped"]
    for name, bound in (("exp", 1.5), ("silu", 2.5), ("sigmoid_product", 2.5), ("sigmoid_product_pair", 2.5)):
        assert out[name] <= bound, (name, out[name])


# --- the core tests under every kernel set ---------------------------------------------------------------

CORE_TESTS = ["test_core_flow.py", "test_ratio_export.py", "test_interpolation.py"]


@pytest.mark.parametrize("isa", [s for s in SUPPORTED if s != _core.isa()])
def test_core_tests_pass_under_every_set(isa):
    """The core test files again, with the kernel set the rest of this run did not use."""
    args = ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *[str(TESTS / t) for t in CORE_TESTS]]
    # About 15 s here; a crash can leave the process hung in ROOT's signal handler, hence the bound.
    done = _run(args, isa, timeout=600, cwd=TESTS.parent)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


# --- machine code ------------------------------------------------------------------------------------------

# Registers and instructions beyond SSE2 (x86-64 baseline): VEX/EVEX-encoded ("v..."), and the integer
# extensions of x86-64-v2/v3.  tzcnt is allowed: GCC emits rep bsf (which objdump prints as tzcnt) on
# purpose, and it runs as bsf on older CPUs.
_WIDE = re.compile(r"%[yz]mm\d+|%k[0-7]\b")
_AVX512_ONLY = re.compile(r"%zmm\d+|%k[0-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b|\{%k|14[ps]d\b|vperm[it]2")
_BEYOND_SSE2 = re.compile(r"^(v[a-z]\S*|popcnt|lzcnt|andn|bextr|blsi|blsr|blsmsk|bzhi|pdep|pext|rorx|sarx|"
                          r"shlx|shrx|movbe|crc32\S*|pclmul\S*|aes\S*)\s")


def _violations(library: Path) -> dict[str, str]:
    """Functions of `library` whose machine code needs more than their namespace allows (first offence)."""
    listing = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", str(library)], capture_output=True,
                             text=True, check=True).stdout
    bad, function = {}, None
    for line in listing.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            function = head.group(1)
            continue
        parts = line.split("\t")
        if function is None or len(parts) < 2:
            continue
        instruction = parts[-1].strip()
        if "rooml::isa_avx512::" in function:
            continue
        if "rooml::isa_avx2::" in function:
            offence = _AVX512_ONLY.search(instruction)
        else:
            offence = _WIDE.search(instruction) or _BEYOND_SSE2.match(instruction)
        if offence:
            bad.setdefault(function, instruction)
    return bad


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="the kernel sets exist on x86-64 only")
@pytest.mark.parametrize("library", ["_core", "libRooML"])
def test_only_the_kernel_sets_use_avx(library):
    path = Path(_core.__file__) if library == "_core" else library_path()
    if not path.exists():
        pytest.skip("rooml was built without libRooML (no ROOT)")
    symbols = subprocess.run(["nm", "-C", str(path)], capture_output=True, text=True).stdout
    assert "rooml::isa_avx512::" in symbols and "rooml::isa_avx2::" in symbols, \
        f"{path} has no symbol table, so its machine code cannot be attributed (stripped?)"
    bad = _violations(path)
    listed = "\n".join(f"{f}: {i}" for f, i in list(bad.items())[:20])
    assert not bad, "AVX outside the kernel sets:\n" + listed


def test_guard_detects_avx_outside_the_kernel_sets(tmp_path):
    """The check above fails where it should: a function compiled for AVX2 outside the kernel namespaces."""
    if shutil.which("g++") is None or shutil.which("objdump") is None or os.uname().machine != "x86_64":
        pytest.skip("needs g++ and objdump on x86-64")
    source = tmp_path / "leak.cpp"
    loop = "(double* x, int n) { for (int i = 0; i < n; ++i) x[i] *= 3; }"
    source.write_text(f"namespace rooml {{ void scale{loop} }}\n"
                      f"namespace rooml::isa_avx2 {{ void ok{loop} }}\n")
    library = tmp_path / "libleak.so"
    subprocess.run(["g++", "-O3", "-march=x86-64-v3", "-shared", "-fPIC", str(source), "-o", str(library)],
                   check=True)
    assert list(_violations(library)) == ["rooml::scale(double*, int)"]
    assert rooml.__version__
