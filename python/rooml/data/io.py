"""ROOT file IO for rooml samples: TTrees via uproot, RDataFrame reading, RooDataSet conversion.

Every column is written as a ``double`` branch of a TTree and the weights as a
branch (``weight`` by default); a sample's ``attrs`` go into a ``TObjString``
named ``<tree>__attrs`` holding JSON. Files are written under a temporary name
in the target directory and moved into place atomically; an existing file is
never replaced unless asked.

Examples
--------
>>> import tempfile, pathlib
>>> from rooml.data import bbyy, io
>>> sample = bbyy.generate("signal", 100, seed=1)
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = io.write_root(pathlib.Path(tmp) / "signal.root", {"signal": sample})
...     back = io.read_root(path, "signal")
>>> bool((back["m_yy"] == sample["m_yy"]).all() and (back.weight == sample.weight).all())
True
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rooml._files import atomic_output
from rooml.data._sample import Sample

__all__ = ["iterate_root", "read_root", "to_roodataset", "write_root"]

_ATTRS_SUFFIX = "__attrs"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _compression(name: str | None):
    import uproot

    table = {"zstd": uproot.ZSTD(1), "lz4": uproot.LZ4(1), "zlib": uproot.ZLIB(1), None: None, "none": None}
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown compression {name!r}; choose one of zstd, lz4, zlib, none") from None


def write_root(
    path: str | os.PathLike,
    trees: Sample | Mapping[str, Sample | Mapping[str, np.ndarray]],
    *,
    tree: str = "events",
    weight_name: str = "weight",
    overwrite: bool = False,
    compression: str | None = "zstd",
) -> Path:
    """Write samples as TTrees of a ROOT file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    trees : Sample or mapping of str to Sample (or to dict of arrays)
        One sample (written as ``tree``) or several, keyed by tree name.
    tree : str
        Tree name when ``trees`` is a single sample.
    weight_name : str
        Branch holding :attr:`Sample.weight` (plain dicts are written as given).
    overwrite : bool
        Replace an existing file. Without it an existing ``path`` raises
        :class:`FileExistsError` and is left untouched.
    compression : {"zstd", "lz4", "zlib", None}
        Basket compression (level 1).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import uproot

    path = Path(path)
    if isinstance(trees, Sample):
        trees = {tree: trees}
    if not trees:
        raise ValueError("nothing to write")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    with atomic_output(path, overwrite=overwrite) as tmp:
        with uproot.recreate(tmp, compression=_compression(compression)) as f:
            for name, sample in trees.items():
                if isinstance(sample, Sample):
                    data = sample.as_dict(weight_name)
                    attrs = sample.attrs
                else:
                    data = {k: np.ascontiguousarray(v) for k, v in sample.items()}
                    attrs = {}
                t = f.mktree(
                    name, {k: v.dtype for k, v in data.items()}, title=str(attrs.get("generator", name))
                )
                if data and len(next(iter(data.values()))) > 0:
                    t.extend(data)
                f[name + _ATTRS_SUFFIX] = json.dumps(attrs, default=_json_default, sort_keys=True)
    return path


def _read_attrs(f, tree: str) -> dict[str, Any]:
    key = tree + _ATTRS_SUFFIX
    if key not in f:
        return {}
    try:
        return json.loads(str(f[key]))
    except (ValueError, TypeError):
        return {}


def _split(arrays: Mapping[str, np.ndarray], weight_name: str | None, attrs: dict) -> Sample:
    cols = dict(arrays)
    weight = cols.pop(weight_name, None) if weight_name else None
    return Sample(cols, weight, attrs)


def read_root(
    path: str | os.PathLike,
    tree: str = "events",
    *,
    columns: Sequence[str] | None = None,
    weight_name: str | None = "weight",
    backend: str = "uproot",
) -> Sample:
    """Read a TTree into a :class:`Sample`.

    Parameters
    ----------
    path : str or os.PathLike
    tree : str
        Tree name.
    columns : sequence of str, optional
        Branches to read (default: all); the weight branch is added.
    weight_name : str or None
        Branch holding the weights (unit weights if absent or None).
    backend : {"uproot", "rdataframe"}
        ``"rdataframe"`` reads with ``ROOT.RDataFrame(tree, path).AsNumpy()``.

    Returns
    -------
    Sample
    """
    import uproot

    path = Path(path)
    with uproot.open(path) as f:
        attrs, branches, wanted = _check_tree(f, path, tree, columns)
        if weight_name and weight_name in branches and weight_name not in wanted:
            wanted.append(weight_name)
        if backend == "uproot":
            arrays = f[tree].arrays(wanted, library="np")
    if backend == "rdataframe":
        import ROOT

        frame = ROOT.RDataFrame(tree, str(path))
        arrays = {k: np.asarray(v) for k, v in frame.AsNumpy(wanted).items()}
    elif backend != "uproot":
        raise ValueError(f"backend must be 'uproot' or 'rdataframe', not {backend!r}")
    return _split({k: arrays[k] for k in wanted}, weight_name, attrs)


def iterate_root(
    path: str | os.PathLike,
    tree: str = "events",
    *,
    columns: Sequence[str] | None = None,
    step_size: int | str = 100_000,
    weight_name: str | None = "weight",
) -> Iterator[Sample]:
    """Yield a large TTree chunk by chunk (``uproot.iterate``), with bounded memory.

    Parameters
    ----------
    path : str or os.PathLike
    tree : str
    columns : sequence of str, optional
        Branches to read (the weight branch is added).
    step_size : int or str
        Events per chunk, or a memory size such as ``"50 MB"``.
    weight_name : str or None

    Yields
    ------
    Sample
        Consecutive chunks; ``attrs["entry_start"]`` gives each chunk's first entry.
    """
    import uproot

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with uproot.open(path) as f:  # checked now, not at the first chunk
        attrs, branches, wanted = _check_tree(f, Path(path), tree, columns)
    if weight_name and weight_name in branches and weight_name not in wanted:
        wanted.append(weight_name)
    return _chunks(path, tree, wanted, step_size, weight_name, attrs)


def _chunks(path, tree: str, wanted: list[str], step_size, weight_name, attrs) -> Iterator[Sample]:
    import uproot

    start = 0
    for arrays in uproot.iterate({str(path): tree}, wanted, step_size=step_size, library="np"):
        chunk = _split({k: arrays[k] for k in wanted}, weight_name, {**attrs, "entry_start": start})
        start += len(chunk)
        yield chunk


def _check_tree(f, path: Path, tree: str, columns) -> tuple[dict, list[str], list[str]]:
    """Return ``(attrs, branches, wanted columns)`` of ``tree`` in the open file ``f``.

    A missing tree or branch raises a KeyError naming it.
    """
    if tree not in f:
        trees = sorted({k.split(";")[0] for k, c in f.classnames().items() if c.startswith("TTree")})
        raise KeyError(f"{path} has no tree {tree!r}; it has {trees}")
    branches = list(f[tree].keys())
    wanted = list(branches if columns is None else columns)
    missing = [c for c in wanted if c not in branches]
    if missing:
        raise KeyError(f"tree {tree!r} in {path} has no branches {missing}")
    return _read_attrs(f, tree), branches, wanted


def _as_list(variables: Any) -> list:
    if hasattr(variables, "size") and hasattr(variables, "at"):  # RooArgSet / RooArgList
        return [variables.at(i) for i in range(variables.size())]
    if isinstance(variables, Iterable):
        return list(variables)
    return [variables]


def to_roodataset(
    data: Sample | Mapping[str, np.ndarray],
    variables: Any,
    *,
    name: str = "data",
    title: str | None = None,
    weight_name: str | None = "weight",
    out_of_range: str = "raise",
    nonfinite: str = "raise",
):
    """Convert events into a weighted ``RooDataSet`` without a per-event Python loop.

    Uses ``ROOT.RooDataSet.from_numpy``. Each RooRealVar (or RooCategory) takes
    the column of the same name; non-finite values (NaN, inf) and finite values
    outside its range are reported (or dropped, counted per cause) here rather
    than silently skipped by RooFit.

    Parameters
    ----------
    data : Sample or mapping of str to numpy.ndarray
        Events; for a mapping the weights are ``data[weight_name]`` if present.
    variables : RooArgSet, RooArgList or sequence of RooRealVar / RooCategory
        Observables of the dataset.
    name, title : str
        Dataset name and title.
    weight_name : str or None
        Name of the weight variable (created with an infinite range); ``None``
        makes an unweighted dataset.
    out_of_range : {"raise", "drop"}
        For finite values outside a variable's range (or a category's states):
        ``"raise"``: :class:`ValueError` naming each offending column, its number
        of events and the first one (index and value); ``"drop"``: remove those
        events (with a warning that counts them).
    nonfinite : {"raise", "drop"}
        The same for NaN and infinite values (never called "out of range").

    Returns
    -------
    ROOT.RooDataSet
        With ``dropped`` attached as ``_rooml_dropped``: ``{"nonfinite": n1,
        "out_of_range": n2}``, the events removed for each cause (an event with
        both counts as non-finite).
    """
    import ROOT

    for option, value in (("out_of_range", out_of_range), ("nonfinite", nonfinite)):
        if value not in ("raise", "drop"):
            raise ValueError(f"{option} must be 'raise' or 'drop', not {value!r}")
    variables = _as_list(variables)
    names = [v.GetName() for v in variables]
    available = data.keys()
    missing = [n for n in names if n not in available]
    if missing:
        raise KeyError(
            f"columns {missing} are missing for the RooFit variables; available: {sorted(available)}"
        )
    weight = None
    if weight_name is not None:
        if isinstance(data, Sample):
            weight = data.weight
        elif weight_name in data:
            weight = np.asarray(data[weight_name], dtype=float)
    arrays = {n: np.asarray(data[n]) for n in names}
    n_events = len(next(iter(arrays.values()))) if arrays else 0
    bad_finite = np.zeros(n_events, dtype=bool)
    bad_range = np.zeros(n_events, dtype=bool)
    problems = {"nonfinite": [], "out_of_range": []}
    for var, n in zip(variables, names):
        x = arrays[n]
        if var.isCategory():
            states = [int(s.second) for s in var]
            finite = np.ones(len(x), dtype=bool)
            outside = ~np.isin(x, states)
            where = f"the states {sorted(states)} of RooCategory {n!r}"
        else:
            x = np.asarray(x, dtype=float)
            lo, hi = var.getMin(), var.getMax()
            finite = np.isfinite(x)
            outside = finite & ~((x >= lo) & (x <= hi))
            where = f"the range [{lo:g}, {hi:g}] of RooRealVar {n!r}"
        causes = (("nonfinite", ~finite, "not finite"), ("out_of_range", outside, f"outside {where}"))
        for cause, mask, what in causes:
            if mask.any():
                first = int(np.flatnonzero(mask)[0])
                problems[cause].append(f"column {n!r}: {int(mask.sum())} of {n_events} events {what} "
                                       f"(first: event {first}, value {float(x[first])!r})")
        bad_finite |= ~finite
        bad_range |= outside
    raising = [text for cause, option in (("nonfinite", nonfinite), ("out_of_range", out_of_range))
               if option == "raise" for text in problems[cause]]
    if raising:
        hint = []
        if nonfinite == "raise" and problems["nonfinite"]:
            hint.append("nonfinite='drop'")
        if out_of_range == "raise" and problems["out_of_range"]:
            hint.append("out_of_range='drop'")
        raise ValueError("; ".join(raising) + f" (use {' and '.join(hint)} to remove them)")
    dropped = {"nonfinite": int(bad_finite.sum()), "out_of_range": int((bad_range & ~bad_finite).sum())}
    if any(dropped.values()):
        warnings.warn(f"to_roodataset dropped {dropped['nonfinite']} events with non-finite values and "
                      f"{dropped['out_of_range']} events outside the ranges: "
                      + "; ".join(problems["nonfinite"] + problems["out_of_range"]), stacklevel=2)
        keep = ~(bad_finite | bad_range)
        arrays = {k: v[keep] for k, v in arrays.items()}
        weight = None if weight is None else weight[keep]
    arg_list = list(variables)
    if weight is not None:
        if weight_name in names:
            raise ValueError(f"weight name {weight_name!r} is also an observable")
        inf = ROOT.RooNumber.infinity()
        wvar = ROOT.RooRealVar(weight_name, weight_name, -inf, inf)
        arrays[weight_name] = weight
        arg_list.append(wvar)
    arg_set = ROOT.RooArgSet()
    for v in arg_list:
        arg_set.add(v)
    ds = ROOT.RooDataSet.from_numpy(
        arrays,
        arg_set,
        name=name,
        title=title or name,
        weight_name=weight_name if weight is not None else None,
    )
    ds._rooml_dropped = dropped
    return ds
