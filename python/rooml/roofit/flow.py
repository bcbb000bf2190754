"""RooFlowPdf from an exported flow file."""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

from rooml.export import read_metadata
from rooml.roofit._library import load_library

__all__ = ["flow_pdf", "flow_variables"]


def _range(name: str, low: float | None, high: float | None, ranges: dict | None):
    if ranges and name in ranges:
        return tuple(float(v) for v in ranges[name])
    import ROOT

    inf = ROOT.RooNumber.infinity()
    lo = -inf if low is None or not math.isfinite(low) else low
    hi = inf if high is None or not math.isfinite(high) else high
    return lo, hi


def flow_variables(model_file: str | os.PathLike, ranges: dict | None = None):
    """Create RooRealVars for a flow's features and context, named as in its metadata.

    Parameters
    ----------
    model_file
        Exported ``.onnx`` flow.
    ranges
        Optional ``{name: (low, high)}``; features default to the flow's
        support (unbounded where the support is), context to unbounded.

    Returns
    -------
    (ROOT.RooArgList, ROOT.RooArgList)
        Features and context.  The lists own nothing: keep the returned
        variables alive (they are also attached to the lists' Python objects).
    """
    ROOT = load_library()
    meta = read_metadata(model_file)
    features, context = ROOT.RooArgList(), ROOT.RooArgList()
    keep = []
    for name, (low, high) in zip(meta["features"], meta["support"]):
        lo, hi = _range(name, low, high, ranges)
        var = ROOT.RooRealVar(name, name, 0.5 * (lo + hi) if math.isfinite(lo + hi) else 0.0, lo, hi)
        keep.append(var)
        features.add(var)
    for name in meta["context"]:
        lo, hi = _range(name, None, None, ranges)
        var = ROOT.RooRealVar(name, name, 0.5 * (lo + hi) if math.isfinite(lo + hi) else 0.0, lo, hi)
        keep.append(var)
        context.add(var)
    features._rooml_keep = keep
    context._rooml_keep = keep
    return features, context


def flow_pdf(name: str, model_file: str | os.PathLike, features=None, context=None, title: str | None = None):
    """Build a ``RooFlowPdf`` from an exported flow.

    Parameters
    ----------
    name
        Name of the pdf.
    model_file
        Exported ``.onnx`` flow (its bytes are stored inside the pdf).
    features, context
        ``RooArgList`` (or lists) of the observables and conditioning
        variables, in the model's order; created from the metadata when omitted.
        A list may name variables instead (``["x", "y"]``): each is created over
        the flow's support (unbounded for context) and kept alive by the pdf
        (``pdf.getVariables()`` lists them).
        Variables named differently from the model's features are matched by
        position, with a warning naming both.

    Returns
    -------
    ROOT.RooFlowPdf
    """
    ROOT = load_library()
    path = Path(model_file)
    meta = read_metadata(path)  # clear Python errors for missing/corrupt files before ROOT sees them
    if features is None:
        features, made_context = flow_variables(path)
        context = made_context if context is None else context
    features = _as_arglist(ROOT, features, dict(zip(meta["features"], meta["support"])))
    context = _as_arglist(ROOT, context if context is not None else [])
    _check_names(name, features, meta["features"], "features")
    _check_names(name, context, meta["context"], "context variables")
    pdf = ROOT.RooFlowPdf(name, title or name, features, context, str(path))
    pdf._rooml_vars = (features, context)
    return pdf


def _check_names(object_name: str, variables, expected: list[str], what: str,
                 cls: str = "RooFlowPdf") -> None:
    """Make the checks of a rooml RooFit class's constructor on variable names, raising Python errors.

    ``what`` is the plural noun of the variables (``"features"``, ``"context variables"``).
    """
    given = [v.GetName() for v in variables]
    if len(given) != len(expected):
        raise ValueError(f"{cls} '{object_name}': the model has {len(expected)} {what} "
                         f"({', '.join(expected)}) but {len(given)} variables were given")
    for i, name in enumerate(given):
        if name in expected and expected.index(name) != i:
            raise ValueError(f"{cls} '{object_name}': variable '{name}' is given at position {i} but is the "
                             f"model's {what.removesuffix('s')} number {expected.index(name)} (wrong order)")
    renamed = [f"'{g}' for '{e}'" for g, e in zip(given, expected) if g != e]
    if renamed:
        warnings.warn(f"{cls} '{object_name}': variables named differently from the model's {what} are "
                      "matched "
                      f"by position: {', '.join(renamed)} (the model's {what}: {', '.join(expected)})",
                      UserWarning, stacklevel=3)


def _as_arglist(ROOT, items, supports: dict | None = None):
    """Return a RooArgList of ``items``: RooAbsReal objects, or names of variables to create.

    A name's variable spans ``supports[name]`` (``(low, high)``, None for unbounded) when given, else the
    whole real line.
    """
    if isinstance(items, ROOT.RooArgList):
        return items
    if isinstance(items, (str, bytes)):
        raise TypeError(f"expected a list of variables or names, not the single string {items!r}")
    if isinstance(items, ROOT.RooAbsArg):
        items = [items]
    out, keep = ROOT.RooArgList(), []
    for item in items:
        if isinstance(item, str):
            lo, hi = _range(item, *(supports or {}).get(item, (None, None)), None)
            item = ROOT.RooRealVar(item, item, 0.5 * (lo + hi) if math.isfinite(lo + hi) else 0.0, lo, hi)
        elif not isinstance(item, ROOT.RooAbsReal):
            raise TypeError(f"expected RooRealVars (or other RooAbsReal) or variable names, got "
                            f"{type(item).__name__} {item!r}")
        out.add(item)
        keep.append(item)
    out._rooml_keep = keep
    return out
