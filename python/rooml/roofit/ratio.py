"""RooRatioFunction from an exported ratio network (or ensemble) file.

>>> import rooml.roofit                                                    # doctest: +SKIP
>>> r = rooml.roofit.ratio_function("r_S", "ratio_S.onnx", [x1, x2, x3])  # doctest: +SKIP
>>> r.getVal()                                                             # doctest: +SKIP
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from rooml.export import read_metadata
from rooml.roofit._library import load_library
from rooml.roofit.flow import _as_arglist, _check_names, _range

__all__ = ["ratio_function", "ratio_variables"]


def ratio_variables(model_file: str | os.PathLike, ranges: dict | None = None):
    """Create RooRealVars for a ratio model's features, named as in its metadata.

    Parameters
    ----------
    model_file
        Exported ``.onnx`` ratio model.
    ranges
        Optional ``{name: (low, high)}``; features default to the model's
        support (unbounded where the support is).

    Returns
    -------
    ROOT.RooArgList
        The features (the variables are kept alive by the list's Python object).
    """
    ROOT = load_library()
    meta = _ratio_metadata(model_file)
    features, keep = ROOT.RooArgList(), []
    for name, (low, high) in zip(meta["features"], meta["support"]):
        lo, hi = _range(name, low, high, ranges)
        var = ROOT.RooRealVar(name, name, 0.5 * (lo + hi) if math.isfinite(lo + hi) else 0.0, lo, hi)
        keep.append(var)
        features.add(var)
    features._rooml_keep = keep
    return features


def ratio_function(
    name: str,
    model_file: str | os.PathLike,
    features=None,
    *,
    log: bool = False,
    member: int = -1,
    title: str | None = None,
):
    """Build a ``RooRatioFunction``: r(x) (or log r(x)) of an exported ratio network or ensemble.

    Parameters
    ----------
    name
        Name of the function.
    model_file
        ``.onnx`` file written by :func:`rooml.export.export_ratio` (its bytes are
        stored inside the function, so workspaces are self-contained).
    features
        ``RooArgList`` (or list) of the feature observables in the model's
        order; created from the metadata when omitted.
    log
        Return ``log r(x)`` instead of ``r(x)``.
    member
        Ensemble member to use alone; ``-1`` (default) combines all members by
        the model's rule (``"mean"`` or ``"mean_log"``).
    title
        Title (default: the name).

    Returns
    -------
    ROOT.RooRatioFunction

    Raises
    ------
    rooml.export.ModelFileError
        Missing or corrupt file, or not a ratio model.
    ValueError
        Wrong number or order of features, or a member index out of range.
    """
    ROOT = load_library()
    path = Path(model_file)
    meta = _ratio_metadata(path)  # clear Python errors for missing/corrupt files before ROOT sees them
    features = (ratio_variables(path) if features is None
                else _as_arglist(ROOT, features, dict(zip(meta["features"], meta["support"]))))
    _check_names(name, features, meta["features"], "features", cls="RooRatioFunction")
    n_members = len(meta["architecture"]["members"])
    if not -1 <= int(member) < n_members:
        raise ValueError(f"RooRatioFunction '{name}': member index {member} out of range "
                         f"[-1, {n_members - 1}]")
    func = ROOT.RooRatioFunction(name, title or name, features, str(path), bool(log))
    func.setMember(int(member))
    func._rooml_vars = features
    return func


def _ratio_metadata(path) -> dict:
    from rooml.export import ModelFileError

    meta = read_metadata(path)
    if meta.get("kind") != "ratio":
        raise ModelFileError(f"{path}: model kind is '{meta.get('kind')}', not 'ratio'")
    return meta


