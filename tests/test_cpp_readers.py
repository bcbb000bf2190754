"""Tests of the C++ ONNX reader and JSON parser (``cpp/src/onnx_reader.cpp``, ``json.cpp``).

The standalone program ``cpp/tests/test_readers.cpp`` is compiled with g++ and
run (a) on its own self-tests, (b) on ONNX files written here with the ``onnx``
package, whose parsed content it prints as JSON for comparison with what
``onnx``/numpy read, (c) on corrupt files and fuzzed variants, and (d) on JSON
documents written by Python's ``json`` module.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
SOURCES = [
    REPO / "cpp" / "tests" / "test_readers.cpp",
    REPO / "cpp" / "src" / "onnx_reader.cpp",
    REPO / "cpp" / "src" / "json.cpp",
]
# UBSan in trap mode needs no runtime library; _GLIBCXX_ASSERTIONS bounds-checks
# std containers. Both make a memory or UB bug in the fuzz tests fail loudly.
FLAGS = [
    "-std=c++17",
    "-O1",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-fsanitize=undefined",
    "-fsanitize-undefined-trap-on-error",
    "-D_GLIBCXX_ASSERTIONS",
]
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


# ---------------------------------------------------------------------------
# Building and running the test program


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compile cpp/tests/test_readers.cpp and return the executable's path."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.fail(
            "g++ not found on PATH: the C++ reader tests compile cpp/tests/test_readers.cpp "
            "with g++ (C++17); install g++ (e.g. apt-get install g++)"
        )
    exe = tmp_path_factory.mktemp("cpp_readers") / "test_readers"
    cmd = [gxx, *FLAGS, f"-I{REPO / 'cpp' / 'include'}", *map(str, SOURCES), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"compilation failed:\n{' '.join(cmd)}\n{proc.stderr}"
    return exe


def _limit_memory() -> None:  # pragma: no cover - runs in the child process
    """Cap the child's address space so a huge allocation fails instead of thrashing."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def run(exe: Path, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the test program with a memory cap; a crash shows as a negative return code."""
    preexec = _limit_memory if sys.platform.startswith("linux") else None
    return subprocess.run(
        [str(exe), *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        preexec_fn=preexec,
    )


def dump(exe: Path, path: Path) -> dict[str, Any]:
    proc = run(exe, "--dump", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def expect_summary(proc: subprocess.CompletedProcess, minimum: int) -> None:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr}"
    match = SUMMARY.findall(proc.stdout)
    assert match, proc.stdout[-2000:]
    passed, failed = map(int, match[-1])
    assert failed == 0 and passed >= minimum, proc.stdout[-2000:]


# ---------------------------------------------------------------------------
# ONNX files written with the onnx package

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def _initializers() -> list[TensorProto]:
    rng = np.random.default_rng(1)
    special = np.array(
        [np.inf, -np.inf, np.nan, 1e-45, np.finfo(np.float32).max, -0.0, 0.1], dtype=np.float32
    )
    return [
        # raw_data (how torch.onnx.export and numpy_helper store everything)
        numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(size=(4, 2)), "Wd"),
        numpy_helper.from_array(np.array([INT64_MAX, -1, INT64_MIN], dtype=np.int64), "idx"),
        numpy_helper.from_array(special, "special"),
        numpy_helper.from_array(np.array([True, False, True]), "flags_raw"),
        numpy_helper.from_array(np.array([0, 7, 255], dtype=np.uint8), "u8"),
        numpy_helper.from_array(np.array([-128, 5, 127], dtype=np.int8), "i8"),
        numpy_helper.from_array(np.array([-2, 3], dtype=np.int32), "i32_raw"),
        numpy_helper.from_array(np.array(2.5), "scalar"),
        numpy_helper.from_array(np.array([1.0, -2.0, 65504, 6e-8], dtype=np.float16), "half"),
        numpy_helper.from_array(np.zeros((0, 3), dtype=np.float32), "empty"),
        # typed repeated fields (helper.make_tensor without raw=True)
        helper.make_tensor("b", TensorProto.FLOAT, [4], rng.normal(size=4).astype(np.float32)),
        helper.make_tensor("bd", TensorProto.DOUBLE, [2], [0.1, -1.0 / 3.0]),
        helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 9007199254740993]),
        helper.make_tensor("i32", TensorProto.INT32, [3], [-7, 0, 2**31 - 1]),
        helper.make_tensor("flags", TensorProto.BOOL, [2], [True, False]),
        helper.make_tensor("half_typed", TensorProto.FLOAT16, [2],
                           np.array([0.5, -3.0], dtype=np.float16)),
    ]


def _nodes() -> list[onnx.NodeProto]:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["W"], ["o"])], "branch", [],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)],
    )
    const = numpy_helper.from_array(np.array([INT64_MAX], dtype=np.int64))  # torch-style Slice end
    return [
        helper.make_node("Constant", [], ["c"], name="/Constant", value=const),
        helper.make_node("Gemm", ["x", "Wd", "bd"], ["h"], name="/l/Gemm", alpha=0.5,
                         transB=1),
        helper.make_node(
            "Custom", ["h", "", "c"], ["y"], name="custom", domain="rooml",
            scales=[1.5, -0.1], perm=[2, 0, -1], mode="élan 🚀",
            names=["a", "b"], tables=[numpy_helper.from_array(np.arange(3.0)), const],
        ),
        helper.make_node("If", ["flags"], ["z"], name="if", then_branch=branch,
                         else_branch=branch),
    ]


def make_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        _nodes(),
        "mixed",
        [
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 4]),
            helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 4]),  # old exporters
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["batch", None]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
        ],
        initializer=_initializers(),
    )
    model = helper.make_model(
        graph,
        producer_name="rooml-test",
        producer_version="0.0.1",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("rooml", 1)],
    )
    helper.set_model_props(
        model,
        {
            "rooml.kind": "flow",
            "rooml.config": json.dumps({"features": ["pt", "eta"], "scale": [1.5, 2.0]}),
            "unicode": "élan 🚀",
        },
    )
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "mixed.onnx"
    onnx.save_model(make_model(), path)
    return path


def _expected_number(x: float) -> Any:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def check_tensor(got: dict[str, Any], t: TensorProto) -> None:
    arr = numpy_helper.to_array(t)
    assert got["dims"] == list(t.dims), t.name
    assert got["data_type"] == t.data_type, t.name
    expected = [_expected_number(float(v)) for v in arr.astype(np.float64).ravel()]
    if arr.dtype.kind in "iub":
        assert got["int_values"] == [int(v) for v in arr.ravel()], t.name
        # int64 beyond 2^53 rounds in `values`; compare those as doubles
        expected = [float(v) for v in arr.ravel()]
    else:
        assert got["int_values"] == [], t.name
    assert [_expected_number(v) if isinstance(v, float) else v for v in got["values"]] == expected


def check_attribute(got: dict[str, Any], a: onnx.AttributeProto) -> None:
    assert (got["name"], got["type"]) == (a.name, a.type)
    A = onnx.AttributeProto
    if a.type == A.FLOAT:
        assert got["f"] == float(np.float32(a.f))
    elif a.type == A.INT:
        assert got["i"] == a.i
    elif a.type == A.STRING:
        assert got["s"] == a.s.decode()
    elif a.type == A.FLOATS:
        assert got["floats"] == [float(np.float32(v)) for v in a.floats]
    elif a.type == A.INTS:
        assert got["ints"] == list(a.ints)
    elif a.type == A.STRINGS:
        assert got["strings"] == [s.decode() for s in a.strings]
    elif a.type == A.TENSOR:
        check_tensor(got["t"], a.t)
    elif a.type == A.TENSORS:
        assert len(got["tensors"]) == len(a.tensors)
        for g, t in zip(got["tensors"], a.tensors):
            check_tensor(g, t)
    else:
        assert a.type == A.GRAPH  # recorded by type only


def check_value_infos(got: list[dict[str, Any]], infos: Any) -> None:
    assert [g["name"] for g in got] == [v.name for v in infos]
    for g, v in zip(got, infos):
        tt = v.type.tensor_type
        assert g["elem_type"] == tt.elem_type
        assert g["has_shape"] == tt.HasField("shape")
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        assert g["dims"] == dims
        assert g["dim_params"] == [d.dim_param for d in tt.shape.dim]


# ---------------------------------------------------------------------------
# Tests


def test_selftest(reader: Path) -> None:
    """Hand-encoded protobuf, JSON edge cases and a fuzz loop, all in C++."""
    expect_summary(run(reader), minimum=1000)


def test_dump_matches_onnx_package(reader: Path, model_path: Path) -> None:
    model = onnx.load(model_path)
    got = dump(reader, model_path)
    assert got["ir_version"] == model.ir_version
    assert (got["producer_name"], got["producer_version"]) == ("rooml-test", "0.0.1")
    assert got["graph_name"] == "mixed"
    assert got["opsets"] == [[o.domain, o.version] for o in model.opset_import]
    assert got["metadata"] == {p.key: p.value for p in model.metadata_props}
    assert json.loads(got["metadata"]["rooml.config"])["scale"] == [1.5, 2.0]

    inits = {t.name: t for t in model.graph.initializer}
    assert sorted(got["initializers"]) == sorted(inits)
    for name, t in inits.items():
        check_tensor(got["initializers"][name], t)

    assert len(got["nodes"]) == len(model.graph.node)
    for g, n in zip(got["nodes"], model.graph.node):
        assert (g["name"], g["op_type"], g["domain"]) == (n.name, n.op_type, n.domain)
        assert (g["inputs"], g["outputs"]) == (list(n.input), list(n.output))
        assert len(g["attributes"]) == len(n.attribute)
        for ga, a in zip(g["attributes"], n.attribute):
            check_attribute(ga, a)

    check_value_infos(got["inputs"], model.graph.input)
    check_value_infos(got["outputs"], model.graph.output)
    assert got["inputs"][0]["dim_params"] == ["batch", ""]
    assert got["outputs"][0]["dims"] == [-1, -1]


def test_exact_values(reader: Path, model_path: Path) -> None:
    """Spot checks that do not go through numpy: INT64 limits, float32 specials, -0."""
    got = dump(reader, model_path)["initializers"]
    assert got["idx"]["int_values"] == [INT64_MAX, -1, INT64_MIN]
    assert got["shape"]["int_values"] == [-1, 9007199254740993]
    tiny = float(np.float32(1e-45))  # the smallest float32 subnormal, 2**-149
    assert tiny == 2.0**-149
    assert got["special"]["values"][:5] == ["inf", "-inf", "nan", tiny, 3.4028234663852886e38]
    assert got["special"]["values"][6] == float(np.float32(0.1))
    assert got["half"]["values"] == [1.0, -2.0, 65504.0, float(np.float16(6e-8))]
    assert got["flags"]["int_values"] == [1, 0] and got["flags_raw"]["values"] == [1, 0, 1]
    assert got["scalar"]["dims"] == [] and got["scalar"]["values"] == [2.5]
    assert got["empty"]["dims"] == [0, 3] and got["empty"]["values"] == []


def test_external_data_is_rejected(reader: Path, tmp_path: Path) -> None:
    path = tmp_path / "external.onnx"
    onnx.save_model(make_model(), path, save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    proc = run(reader, "--dump", path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "external tensor data not supported" in proc.stdout


def _corrupt_files(model_bytes: bytes) -> dict[str, tuple[bytes, str]]:
    rng = random.Random(5)
    return {
        "empty": (b"", "not an ONNX model: empty"),
        "text": (b"This is a README, not a network.\n" * 5, "not an ONNX model"),
        "json": (b'{"model": "flow", "layers": [1, 2, 3]}', "not an ONNX model"),
        "random": (bytes(rng.getrandbits(8) for _ in range(4096)), "not an ONNX model"),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not an ONNX model"),
        "truncated": (model_bytes[: len(model_bytes) // 2], "not an ONNX model"),
        "truncated_end": (model_bytes[:-3], "not an ONNX model"),
    }


@pytest.mark.parametrize("kind", ["empty", "text", "json", "random", "png", "truncated",
                                  "truncated_end"])
def test_corrupt_file_gives_clear_error(reader: Path, model_path: Path, tmp_path: Path,
                                        kind: str) -> None:
    data, needle = _corrupt_files(model_path.read_bytes())[kind]
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(data)
    proc = run(reader, "--dump", path)
    assert proc.returncode == 2, f"rc={proc.returncode}: {proc.stdout}{proc.stderr}"
    assert proc.stdout.startswith("ERROR: ") and needle in proc.stdout, proc.stdout
    assert str(path) in proc.stdout  # the message names the file


def test_missing_file(reader: Path, tmp_path: Path) -> None:
    proc = run(reader, "--dump", tmp_path / "nope.onnx")
    assert proc.returncode == 2 and "cannot open" in proc.stdout and "nope.onnx" in proc.stdout


def test_fuzz_does_not_crash(reader: Path, model_path: Path) -> None:
    """Every prefix, byte mutations and random buffers: a model or a rooml::Error."""
    size = model_path.stat().st_size
    expect_summary(run(reader, "--fuzz", model_path), minimum=7 * size)


def test_large_initializers(reader: Path, tmp_path: Path) -> None:
    """MB-sized initializers in raw_data and in float_data decode exactly and fast."""
    rng = np.random.default_rng(2)
    arrays = {
        "big_f32": rng.normal(size=(1000, 2000)).astype(np.float32),
        "big_f64": rng.normal(size=(500, 1000)),
    }
    inits = [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    typed = rng.normal(size=200_000).astype(np.float32)
    arrays["typed_f32"] = typed
    inits.append(helper.make_tensor("typed_f32", TensorProto.FLOAT, typed.shape, typed))
    graph = helper.make_graph([], "big", [], [], initializer=inits)
    path = tmp_path / "big.onnx"
    onnx.save_model(helper.make_model(graph), path)

    proc = run(reader, "--bench", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout)
    for name, a in arrays.items():
        flat = a.ravel().astype(np.float64)
        g = got["initializers"][name]
        assert g["size"] == flat.size
        assert (g["first"], g["last"]) == (flat[0], flat[-1])
        assert g["sum"] == pytest.approx(math.fsum(flat), rel=1e-9, abs=1e-6)
    assert got["seconds"] < 5.0, f"parsing {path.stat().st_size} bytes took {got['seconds']} s"


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**53 + 1, INT64_MAX, INT64_MIN, rng.randint(-10**9, 10**9)])
    if kind == 2:
        x = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        return x if math.isfinite(x) else rng.uniform(-1e3, 1e3)
    if kind == 3:
        return rng.choice([0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -2.5e-10, 1e21])
    if kind == 4:
        alphabet = 'aZ09 "\\/\b\f\n\r\t\x01\x1fé€🚀\u2028'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind in (5, 6):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {f"k{i}{_random_json(rng, 4) if i % 3 == 0 else ''}": _random_json(rng, depth + 1)
            for i in range(rng.randrange(5))}


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_json_matches_python(reader: Path, tmp_path: Path, ensure_ascii: bool) -> None:
    """Documents from Python's json module parse, and re-serialise, to the same value."""
    rng = random.Random(11 + ensure_ascii)
    doc = {f"case{k}": _random_json(rng) for k in range(300)}
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc, ensure_ascii=ensure_ascii, indent=1), encoding="utf-8")
    proc = run(reader, "--json", path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert json.loads(proc.stdout) == doc


@pytest.mark.parametrize(
    "text, needle",
    [('{"a": [1, 2,]}', "at byte 12"), ('{"a": NaN}', "at byte 6"), ('"\\ud800"', "surrogate")],
)
def test_json_errors_name_offset(reader: Path, tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    proc = run(reader, "--json", path)
    assert proc.returncode == 2 and proc.stdout.startswith("ERROR: json: ")
    assert needle in proc.stdout, proc.stdout

