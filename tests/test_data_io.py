"""rooml.data IO: bit-exact ROOT round trips, atomic writes, chunked reading, RooDataSet, CLI, API."""

from __future__ import annotations

import argparse
import doctest
import hashlib
import inspect
import time

import numpy as np
import pytest
import rooml.data as data  # before ROOT, so rooml sets up its library path first
from rooml.data import bbyy, cli, hh4b, io, offshell4l
from rooml.data._sample import Sample

import ROOT  # noqa: E402  isort: skip

SPECIAL = np.array([-0.0, 5e-324, 1.7976931348623157e308, -1e-300, np.nan, np.inf, -np.inf, 1 / 3, -2.5e-17])


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.fixture()
def sample():
    s = bbyy.generate("background", 20_000, seed=1)
    cols = dict(s.columns)
    cols["special"] = np.resize(SPECIAL, len(s))
    weight = np.random.default_rng(2).normal(1.0, 0.5, len(s))  # includes negative weights
    return Sample(cols, weight, {"generator": "bbyy", "seed": 1, "note": np.float64(0.5)})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_uproot_round_trip_is_bit_exact(tmp_path, sample):
    path = io.write_root(tmp_path / "s.root", sample, tree="bkg")
    back = io.read_root(path, "bkg")
    assert back.keys() == sample.keys()
    for k in sample:
        np.testing.assert_array_equal(_bits(back[k]), _bits(sample[k]), err_msg=k)
    np.testing.assert_array_equal(_bits(back.weight), _bits(sample.weight))
    assert back.attrs == {"generator": "bbyy", "seed": 1, "note": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.root"]  # no temporary left behind


def test_rdataframe_round_trip_is_bit_exact(tmp_path, sample):
    path = io.write_root(tmp_path / "s.root", {"bkg": sample})
    raw = ROOT.RDataFrame("bkg", str(path)).AsNumpy()
    assert set(raw) == {*sample.keys(), "weight"}
    for k in sample:
        np.testing.assert_array_equal(_bits(np.asarray(raw[k])), _bits(sample[k]), err_msg=k)
    np.testing.assert_array_equal(_bits(np.asarray(raw["weight"])), _bits(sample.weight))
    back = io.read_root(path, "bkg", backend="rdataframe", columns=["m_yy", "special"])
    np.testing.assert_array_equal(_bits(back["special"]), _bits(sample["special"]))
    np.testing.assert_array_equal(_bits(back.weight), _bits(sample.weight))


def test_several_trees_all_generators(tmp_path):
    trees = {
        "hh4b": hh4b.generate("2b", 3000, seed=3),
        "interference": offshell4l.generate("I", 3000, seed=4),
        "mock": bbyy.make_mock(n_bkg=3000, n_sig=30, seed=5),
    }
    path = io.write_root(tmp_path / "all.root", trees, compression="lz4")
    for name, s in trees.items():
        back = io.read_root(path, name)
        assert back.keys() == s.keys() and back.attrs["generator"] == s.attrs["generator"]
        for k in s:
            np.testing.assert_array_equal(_bits(back[k]), _bits(s[k]))
        np.testing.assert_array_equal(_bits(back.weight), _bits(s.weight))
    with pytest.raises(KeyError, match="no tree"):
        io.read_root(path, "missing")
    with pytest.raises(KeyError, match="no branches"):
        io.read_root(path, "mock", columns=["m_yy", "nope"])


def test_refuses_to_overwrite(tmp_path, sample):
    path = io.write_root(tmp_path / "s.root", sample)
    before = _digest(path)
    with pytest.raises(FileExistsError, match="overwrite"):
        io.write_root(path, sample.select(np.arange(10)))
    assert _digest(path) == before
    io.write_root(path, sample.select(np.arange(10)), overwrite=True)
    assert _digest(path) != before and len(io.read_root(path)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.root"]


def test_failed_write_leaves_existing_file_untouched(tmp_path, sample):
    path = io.write_root(tmp_path / "s.root", sample)
    before = _digest(path)
    bad = {"ok": sample, "broken": {"a": np.zeros(5), "b": np.zeros(7)}}  # ragged columns
    with pytest.raises(Exception):  # noqa: B017 - whatever uproot raises
        io.write_root(path, bad, overwrite=True)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.root"]


def test_iterate_root_in_chunks(tmp_path, sample):
    path = io.write_root(tmp_path / "s.root", sample)
    chunks = list(io.iterate_root(path, columns=["m_yy", "special"], step_size=6000))
    assert [len(c) for c in chunks] == [6000, 6000, 6000, 2000]
    assert [c.attrs["entry_start"] for c in chunks] == [0, 6000, 12000, 18000]
    assert all(c.keys() == ["m_yy", "special"] for c in chunks)
    np.testing.assert_array_equal(
        _bits(np.concatenate([c["special"] for c in chunks])), _bits(sample["special"])
    )
    np.testing.assert_array_equal(np.concatenate([c.weight for c in chunks]), sample.weight)
    by_size = list(io.iterate_root(path, step_size="100 kB"))
    assert len(by_size) > 3 and max(len(c) for c in by_size) < len(sample)
    assert sum(len(c) for c in by_size) == len(sample)


def test_to_roodataset_values_and_weights():
    s = bbyy.generate("signal", 200_000, seed=8)
    s.weight[:] = np.random.default_rng(1).uniform(-0.2, 2.0, len(s))
    m = ROOT.RooRealVar("m_yy", "m_yy", 90, 180)
    pt = ROOT.RooRealVar("pt_bb", "pt_bb", 0, 1e4)
    start = time.perf_counter()
    ds = io.to_roodataset(s, [m, pt], name="sig")
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0
    assert ds.numEntries() == len(s) and ds.isWeighted() and ds.GetName() == "sig"
    assert ds.sumEntries() == pytest.approx(s.weight.sum(), rel=1e-12)
    for i in (0, 1234, len(s) - 1):
        row = ds.get(i)
        assert row.getRealValue("m_yy") == s["m_yy"][i] and row.getRealValue("pt_bb") == s["pt_bb"][i]
        assert ds.weight() == s.weight[i]
    unweighted = io.to_roodataset(s.select(np.arange(100)), ROOT.RooArgSet(m, pt), weight_name=None)
    assert not unweighted.isWeighted() and unweighted.numEntries() == 100


def test_to_roodataset_errors_name_column_and_count():
    s = bbyy.generate("background", 5000, seed=9)
    m = ROOT.RooRealVar("m_yy", "m_yy", 90, 180)
    narrow = ROOT.RooRealVar("pt_bb", "pt_bb", 0, 100)
    with pytest.raises(KeyError, match="dr_zz"):
        io.to_roodataset(s, [m, ROOT.RooRealVar("dr_zz", "", 0, 1)])
    n_out = int(np.sum(s["pt_bb"] > 100))
    with pytest.raises(ValueError, match=rf"column 'pt_bb': {n_out} of 5000 events outside"):
        io.to_roodataset(s, [m, narrow])
    with pytest.warns(UserWarning, match="dropped"):
        ds = io.to_roodataset(s, [m, narrow], out_of_range="drop")
    assert ds.numEntries() == 5000 - n_out
    nan = s.select(np.arange(50))
    nan.columns["m_yy"] = nan["m_yy"].copy()
    nan.columns["m_yy"][:3] = np.nan
    want = "column 'm_yy': 3 of 50 events not finite \\(first: event 0, value nan\\)"
    with pytest.raises(ValueError, match=want):
        io.to_roodataset(nan, [m])


def test_to_roodataset_nonfinite_is_not_out_of_range_and_drops_count_per_cause():
    s = bbyy.generate("background", 400, seed=10)
    m = ROOT.RooRealVar("m_yy", "m_yy", 90, 180)
    pt = ROOT.RooRealVar("pt_bb", "pt_bb", 0, 1e4)
    bad = s.select(np.arange(400))
    bad.columns["m_yy"] = np.where(np.isin(np.arange(400), [7, 9]), np.nan, bad["m_yy"])
    bad.columns["pt_bb"] = bad["pt_bb"].copy()
    bad.columns["pt_bb"][11] = np.inf
    bad.columns["m_yy"][20] = 200.0  # finite, outside [90, 180]
    assert np.all((s["m_yy"] >= 90) & (s["m_yy"] <= 180) & np.isfinite(s["pt_bb"]) & (s["pt_bb"] < 1e4))
    with pytest.raises(ValueError) as err:
        io.to_roodataset(bad, [m, pt])
    text = str(err.value)
    assert "column 'm_yy': 2 of 400 events not finite (first: event 7, value nan)" in text
    assert "column 'pt_bb': 1 of 400 events not finite (first: event 11, value inf)" in text
    assert "column 'm_yy': 1 of 400 events outside the range [90, 180]" in text
    assert "event 20, value 200.0" in text
    # dropping one cause does not drop the other under its label
    with pytest.raises(ValueError, match="not finite") as err:
        io.to_roodataset(bad, [m, pt], out_of_range="drop")
    assert "outside" not in str(err.value)
    with pytest.raises(ValueError, match="outside the range") as err:
        io.to_roodataset(bad, [m, pt], nonfinite="drop")
    assert "not finite" not in str(err.value)
    with pytest.warns(UserWarning, match="dropped 3 events with non-finite values and 1 events outside"):
        ds = io.to_roodataset(bad, [m, pt], nonfinite="drop", out_of_range="drop")
    assert ds.numEntries() == 396
    assert ds._rooml_dropped == {"nonfinite": 3, "out_of_range": 1}
    assert ds.sumEntries() == pytest.approx(np.sum(np.delete(bad.weight, [7, 9, 11, 20])), rel=1e-12)


def test_to_roodataset_category():
    s = hh4b.generate("4b", 2000, seed=2)
    year = ROOT.RooCategory("year", "year")
    for y in (2016, 2017, 2018):
        year.defineType(f"y{y}", y)
    m1 = ROOT.RooRealVar("m_h1", "m_h1", 50, 250)
    ds = io.to_roodataset(s, [m1, year])
    assert ds.numEntries() == 2000
    assert ds.sumEntries("year == year::y2016") == pytest.approx(np.sum(s["year"] == 2016))
    partial = ROOT.RooCategory("year", "year")
    partial.defineType("y2016", 2016)
    with pytest.raises(ValueError, match="RooCategory 'year'"):
        io.to_roodataset(s, [m1, partial])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rooml")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_make(tmp_path, capsys):
    out = tmp_path / "bbyy.root"
    args = _parser().parse_args(["data", "make", "bbyy", "--events", "1500", "--seed", "3", "-o", str(out)])
    assert args.func(args) == 0 and "wrote" in capsys.readouterr().out
    for k, process in enumerate(bbyy.PROCESSES):
        back = io.read_root(out, process)
        assert len(back) == 1500 and back.attrs["seed_sequence"] == [3, k]
        ref = bbyy.generate(process, 1500, np.random.default_rng([3, k]))
        np.testing.assert_array_equal(back["m_yy"], ref["m_yy"])
    before = _digest(out)
    again = _parser().parse_args(["data", "make", "bbyy", "-n", "10", "-o", str(out)])
    with pytest.raises(FileExistsError, match="--force"):
        again.func(again)
    assert _digest(out) == before
    forced = _parser().parse_args(
        ["data", "make", "bbyy", "-n", "10", "-o", str(out), "--force", "--nu", "1"]
    )
    assert forced.func(forced) == 0 and len(io.read_root(out, "signal")) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bbyy.root"]


def test_cli_options_per_generator(tmp_path):
    out = tmp_path / "i.root"
    args = _parser().parse_args(
        ["data", "make", "offshell4l", "-n", "800", "--process", "I", "--alpha", "1", "-o", str(out)]
    )
    assert args.func(args) == 0
    back = io.read_root(out, "I")
    assert back.attrs["alpha"] == 1.0 and np.any(back.weight < 0)
    hh = tmp_path / "hh.root"
    args = _parser().parse_args(["data", "make", "hh4b", "-n", "500", "--process", "4b", "--process", "2b",
                                 "--year", "2016", "--preselection", "reversed", "-o", str(hh)])  # fmt: skip
    args.func(args)
    assert np.all(io.read_root(hh, "2b")["year"] == 2016) and np.all(io.read_root(hh, "4b")["deta_hh"] >= 1.5)
    with pytest.raises(ValueError, match="--alpha"):
        cli.make("bbyy", 10, str(tmp_path / "x.root"), alpha=1.0)
    with pytest.raises(ValueError, match="unknown hh4b process"):
        cli.make("hh4b", 10, str(tmp_path / "x.root"), processes=["5b"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["data", "make", "ttbar", "-n", "1", "-o", "x.root"])
    assert not (tmp_path / "x.root").exists()


def test_public_api_surface():
    assert data.__all__ == ["GENERATORS", "Sample", "bbyy", "concatenate", "generate", "hh4b", "iterate_root",
                            "offshell4l", "read_root", "to_roodataset", "write_root"]  # fmt: skip
    assert set(data.GENERATORS) == {"bbyy", "hh4b", "offshell4l"}
    for module in data.GENERATORS.values():
        params = list(inspect.signature(module.generate).parameters)
        assert params[:3] == ["process", "n_events", "seed"]
        assert isinstance(module.PROCESSES, tuple) and hasattr(module, "truth")
        for name in module.__all__:
            assert hasattr(module, name), name
    assert io.__all__ == ["iterate_root", "read_root", "to_roodataset", "write_root"]
    assert list(inspect.signature(data.generate).parameters)[:4] == ["name", "process", "n_events", "seed"]
    with pytest.raises(ValueError, match="unknown dataset"):
        data.generate("zz", "S", 1)


def test_sample_container():
    s = Sample({"a": [1, 2, 3], "b": np.arange(3)})
    assert len(s) == 3 and s["b"].dtype == np.float64 and s.sum_weights == 3.0
    with pytest.raises(ValueError, match="has 2 entries"):
        Sample({"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(KeyError, match="no column"):
        s["c"]
    with pytest.raises(ValueError, match="clashes"):
        Sample({"weight": [1.0]}).as_dict()
    sub = s.select(s["a"] > 1)
    assert len(sub) == 2 and list(sub["a"]) == [2.0, 3.0]
    both = data.concatenate([s, sub])
    assert len(both) == 5


def test_doctests():
    for module in (io, data):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
