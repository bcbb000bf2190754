"""Combine rooml's unbinned channel with a HistFactory workspace into one simultaneous likelihood.

The unbinned model (its ``ModelConfig``'s pdf, e.g. an NSBI or HI-SIGMA model) becomes a new state of the
HistFactory ``RooSimultaneous``'s channel category, so ``L_comb = L_hist * L_unbinned``:

* parameters with the same name (after ``rename``) are one parameter: the POI, ``Lumi``, common nuisance
  parameters such as ``alpha_syst1``;
* a shared parameter constrained in both models keeps the HistFactory constraint only (the two must agree
  as functions of the parameter, else :class:`ValueError`); the unbinned one and its global observable go;
* any other object present in both under one name is a clash: :class:`ValueError`, or renamed with
  ``prefix``;
* the datasets are merged into one weighted ``RooDataSet`` with the category column; the new
  ``ModelConfig`` has the POI, all other floating parameters as nuisance parameters, the global and the
  ordinary observables of both parts.

RooFit normalizes a ``RooSimultaneous`` over its channel category: with ``C`` channels its NLL holds the
parameter-independent term ``sum_i w_i ln C`` besides the sum of the channels' NLLs.

>>> ws = combine(hf_ws, unbinned_ws, rename={"mu": "SigXsecOverSM"})   # doctest: +SKIP
>>> write_workspace(ws, "combined.root")                               # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rooml._files import atomic_output

__all__ = [
    "GLOBAL_OBSERVABLE_TAG",
    "Combination",
    "combine",
    "load_workspace",
    "model_config",
    "simultaneous_constant",
    "write_workspace",
]

#: Attribute that marks the combined model's global observables; the pdf names it as its
#: ``DefaultGlobalObservablesTag``, so ``createNLL``/``fitTo`` without ``GlobalObservables`` use them.
GLOBAL_OBSERVABLE_TAG = "GLOBAL_OBSERVABLE"


@dataclass
class Combination:
    """What :func:`combine` did (attached to the combined workspace as ``ws._rooml_combination``)."""

    channel: str
    poi: list[str]
    shared: list[str]  # names (in the combined model) of parameters of both parts
    renamed: dict[str, str] = field(default_factory=dict)  # unbinned name -> combined name
    dropped_constraints: dict[str, str] = field(default_factory=dict)  # unbinned constraint -> kept HF one

    def __str__(self) -> str:
        lines = [
            f"channel '{self.channel}' added; POI {', '.join(self.poi)}",
            f"  shared parameters: {', '.join(self.shared) or '(none)'}",
        ]
        if self.renamed:
            lines.append("  renamed: " + ", ".join(f"{a} -> {b}" for a, b in self.renamed.items()))
        if self.dropped_constraints:
            lines.append(
                "  constraints counted once (HistFactory's kept): "
                + ", ".join(f"{a} -> {b}" for a, b in self.dropped_constraints.items())
            )
        return "\n".join(lines)


def _root():
    from rooml.roofit import load_library

    return load_library()


def load_workspace(path: str | os.PathLike, name: str | None = None):
    """Read a ``RooWorkspace`` from a ROOT file.

    Parameters
    ----------
    path
        The ROOT file.
    name
        The workspace's key; by default the file's only workspace.

    Returns
    -------
    ROOT.RooWorkspace
        The workspace (it keeps its file open as ``_rooml_file``).

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file; a file that is not a ROOT file; no workspace of that name (the message lists
        the file's workspaces).
    """
    ROOT = _root()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as handle:
        if handle.read(4) != b"root":  # checked here: ROOT would print its own error lines first
            raise ValueError(f"{path} is not a ROOT file")
    tfile = ROOT.TFile.Open(str(path))
    found = [k.GetName() for k in tfile.GetListOfKeys() if k.GetClassName() == "RooWorkspace"]
    if name is None and len(found) != 1:
        raise ValueError(f"{path} holds {len(found)} workspaces {found}; name the one to use")
    key = name or found[0]
    if key not in found:
        raise ValueError(f"{path} has no workspace '{key}'; it holds {found}")
    ws = tfile.Get(key)
    ws._rooml_file = tfile
    return ws


def model_config(ws, name: str = "ModelConfig"):
    """Return the ``RooStats::ModelConfig`` ``name`` of ``ws``; raise :class:`ValueError` if absent."""
    ROOT = _root()
    mc = ws.obj(name)
    if not mc or not isinstance(mc, ROOT.RooStats.ModelConfig):
        there = [o.GetName() for o in ws.allGenericObjects() if isinstance(o, ROOT.RooStats.ModelConfig)]
        raise ValueError(f"workspace '{ws.GetName()}' has no ModelConfig '{name}'; it has {there}")
    return mc


def _names(collection) -> list[str]:
    return [a.GetName() for a in collection] if collection else []


def _floating(pdf, observables, globs) -> dict:
    """``{name: RooRealVar}`` of the non-constant parameters of ``pdf`` (neither observable nor global)."""
    out = {}
    for v in pdf.getParameters(observables):
        if v.GetName() not in globs and v.InheritsFrom("RooRealVar") and not v.isConstant():
            out[v.GetName()] = v
    return out


def _constraints(pdf, observables, globs) -> dict:
    """``{parameter name: constraint pdf}`` of the constraint terms of ``pdf``."""
    params = pdf.getParameters(observables)
    found = pdf.getAllConstraints(observables, params, False)
    out = {}
    for c in found:
        for v in c.getVariables():
            if v.GetName() not in globs and v.InheritsFrom("RooRealVar") and not v.isConstant():
                out[v.GetName()] = c
    return out


def _log_constraint(ROOT, constraint, param, values, globs) -> np.ndarray:
    """Return ``ln c(param = v) - ln c(param = values[0])``, ``c`` normalized over its global observables."""
    norm = ROOT.RooArgSet(*[g for g in constraint.getVariables() if g.GetName() in globs])
    old = param.getVal()
    out = []
    for v in values:
        param.setVal(v)
        out.append(constraint.getLogVal(norm))
    param.setVal(old)
    return np.array(out) - out[0]


def _check_same_constraint(ROOT, name, hf, unb, hf_globs, unb_globs) -> None:
    """Both constraints must be the same function of the shared parameter (up to a constant)."""
    (hf_c, hf_p), (unb_c, unb_p) = hf, unb
    centre = hf_p.getVal()
    step = hf_p.getError() if hf_p.getError() > 0 else 0.1 * max(abs(centre), 1.0)
    points = [centre + k * step for k in (0.0, -1.0, -0.5, 0.5, 1.0)]
    points = [min(max(v, hf_p.getMin()), hf_p.getMax()) for v in points]
    a = _log_constraint(ROOT, hf_c, hf_p, points, hf_globs)
    b = _log_constraint(ROOT, unb_c, unb_p, points, unb_globs)
    if not np.allclose(a, b, rtol=1e-6, atol=1e-9):
        raise ValueError(
            f"shared parameter '{name}' is constrained differently: HistFactory's '{hf_c.GetName()}' and the "
            f"unbinned '{unb_c.GetName()}' differ by {np.max(np.abs(a - b)):.3g} in ln L within one step "
            f"({step:.3g}) of {centre:.4g}; make them agree or rename the parameter so it is not shared"
        )


def _shared_constraints(ROOT, hf, unb, rename) -> dict[str, str]:
    """Return ``{unbinned constraint: HistFactory constraint}`` for parameters constrained on both sides."""
    (hf_pdf, hf_obs, hf_globs, hf_params), (unb_pdf, unb_obs, unb_globs, unb_params) = hf, unb
    hf_cons = _constraints(hf_pdf, hf_obs, hf_globs)
    unb_cons = _constraints(unb_pdf, unb_obs, unb_globs)
    dropped = {}
    for old, con in unb_cons.items():
        new = rename.get(old, old)
        if new in hf_cons and old in unb_params and new in hf_params:
            pair = ((hf_cons[new], hf_params[new]), (con, unb_params[old]))
            _check_same_constraint(ROOT, new, *pair, hf_globs, unb_globs)
            dropped[con.GetName()] = hf_cons[new].GetName()
    for old, con in unb_cons.items():
        if con.GetName() in dropped and rename.get(old, old) not in hf_cons:
            raise ValueError(
                f"the unbinned constraint '{con.GetName()}' also constrains '{old}', which HistFactory does "
                "not constrain; it cannot be dropped in part"
            )
    return dropped


def _index_formula(ROOT, node):
    """Copy a ``RooFormulaVar``/``RooGenericPdf`` with its expression naming its inputs ``x[i]``.

    RooFit renames variables on import but keeps a ``RooFormulaVar``'s expression text, which then fails
    when the workspace is read back; an expression in indices survives any renaming.
    """
    deps = node.dependents()
    expr = str(node.expression())
    names = sorted(((d.GetName(), i) for i, d in enumerate(deps)), key=lambda t: -len(t[0]))
    for n, i in names:
        expr = re.sub(rf"(?<![\w.\[]){re.escape(n)}(?![\w\[])", f"x[{i}]", expr)
    cls = ROOT.RooFormulaVar if node.InheritsFrom("RooFormulaVar") else ROOT.RooGenericPdf
    return cls(node.GetName(), node.GetTitle(), expr, ROOT.RooArgList(deps))


def _channel_pdf(ROOT, pdf, drop: set, name: str):
    """Deep-copy ``pdf`` without the top-level constraint factors in ``drop``, formulas in index form."""
    owner = ROOT.RooArgSet(pdf).snapshot(True)
    top = owner.find(pdf.GetName())
    keep = [owner]
    if drop:
        factors = list(top.pdfList()) if top.InheritsFrom("RooProdPdf") else [top]
        missing = drop - {f.GetName() for f in factors}
        if missing:
            raise ValueError(
                f"cannot count the constraints {sorted(missing)} once: they are not factors of the unbinned "
                f"model's top-level product '{pdf.GetName()}'"
            )
        kept = [f for f in factors if f.GetName() not in drop]
        top = ROOT.RooProdPdf(name, f"{pdf.GetTitle()} (shared constraints dropped)", ROOT.RooArgList(*kept))
    formulas = [
        n for n in top.getComponents() if n.InheritsFrom("RooFormulaVar") or n.InheritsFrom("RooGenericPdf")
    ]
    if formulas:
        replacements = [_index_formula(ROOT, n) for n in formulas]
        keep += replacements
        top.recursiveRedirectServers(ROOT.RooArgSet(*replacements))
        if top.GetName() in {n.GetName() for n in formulas}:
            top = next(r for r in replacements if r.GetName() == top.GetName())
    top._rooml_keep = keep
    return top


def _tree_names(pdf) -> dict[str, str]:
    """``{name: class name}`` of every node of ``pdf``'s computation graph."""
    nodes = {n.GetName(): n.ClassName() for n in pdf.getComponents()}
    nodes.update({v.GetName(): v.ClassName() for v in pdf.getVariables()})
    return nodes


def _resolve_names(hf_nodes, hf_params, unb_nodes, unb_params, rename, prefix):
    """Return (rename map, shared names): same-named parameters are shared, any other common name clashes."""
    rename = {old: new for old, new in rename.items() if old in unb_nodes}

    def clashes():
        out, shared = [], []
        for old in unb_nodes:
            new = rename.get(old, old)
            if new not in hf_nodes:
                continue
            if old in unb_params and new in hf_params:
                shared.append(new)
            else:
                out.append(old)
        return out, shared

    targets = [rename.get(n, n) for n in unb_nodes]
    doubled = sorted({t for t in targets if targets.count(t) > 1})
    if doubled:
        raise ValueError(f"rename gives several unbinned objects the same name: {doubled}")
    clash, shared = clashes()
    if clash and prefix:
        rename.update({old: prefix + rename.get(old, old) for old in clash})
        clash, shared = clashes()
    if clash:
        detail = ", ".join(
            f"'{rename.get(c, c)}' ({unb_nodes[c]} in the unbinned model, "
            f"{hf_nodes[rename.get(c, c)]} in HistFactory)"
            for c in clash
        )
        raise ValueError(
            f"name clash between the unbinned model and the HistFactory workspace: {detail}; only parameters "
            "may be shared by name. Rename them (rename={old: new}) or pass a prefix for the unbinned ones"
        )
    return rename, sorted(shared)


def _dataset_columns(data) -> tuple[dict, np.ndarray]:
    """``({variable name: values}, weights)`` of a dataset (unit weights if unweighted)."""
    arrays = {str(k): np.asarray(v) for k, v in data.to_numpy().items()}
    weights = np.ones(data.numEntries())
    if data.isWeighted() and data.weightVar():
        weights = arrays.pop(data.weightVar().GetName())
    return arrays, weights


def _combined_data(ROOT, hf_data, unb_data, observables, category, channel, rename, name):
    """One weighted ``RooDataSet``: HistFactory's rows, then the unbinned rows in the new category state."""
    hf_cols, hf_w = _dataset_columns(hf_data)
    unb_cols, unb_w = _dataset_columns(unb_data)
    unb_cols = {rename.get(k, k): v for k, v in unb_cols.items()}
    n_hf, n_unb = len(hf_w), len(unb_w)
    parts = ((hf_cols, n_hf, hf_data), (unb_cols, n_unb, unb_data))
    columns = {}
    for var in observables:
        vname = var.GetName()
        pieces = []
        for cols, n, source in parts:
            if vname in cols:
                pieces.append(np.asarray(cols[vname], dtype=np.float64))
            elif vname == category.GetName():
                pieces.append(np.full(n, category.lookupIndex(channel), dtype=np.float64))
            elif any(vname in other for other, _, _ in parts):  # the other part's observable: a dummy value
                pieces.append(np.full(n, var.getVal()))
            else:
                raise ValueError(
                    f"the dataset '{source.GetName()}' has no column for the observable '{vname}'"
                )
        columns[vname] = np.concatenate(pieces)
    columns[category.GetName()] = columns[category.GetName()].astype(np.int32)
    weight_name = (
        hf_data.weightVar().GetName() if hf_data.isWeighted() and hf_data.weightVar() else "weightVar"
    )
    columns[weight_name] = np.concatenate([hf_w, unb_w]).astype(np.float64)
    data = ROOT.RooDataSet.from_numpy(
        columns, observables, name=name, title=hf_data.GetTitle(), weight_name=weight_name
    )
    if data.numEntries() != n_hf + n_unb:
        raise RuntimeError(
            f"combined dataset: RooFit kept {data.numEntries()} of {n_hf + n_unb} rows "
            "(values outside the observables' ranges are dropped)"
        )
    return data


def _pick_data(ws, name, what):
    if name is not None:
        data = ws.data(name)
        if not data:
            raise ValueError(
                f"{what} workspace '{ws.GetName()}' has no dataset '{name}'; it has {_names(ws.allData())}"
            )
    else:
        datasets = list(ws.allData())
        if len(datasets) != 1:
            raise ValueError(
                f"{what} workspace '{ws.GetName()}' holds datasets {_names(datasets)}; name the one to use"
            )
        data = datasets[0]
    if not data.InheritsFrom("RooDataSet"):
        raise ValueError(f"{what} dataset '{data.GetName()}' is a {data.ClassName()}; a RooDataSet is needed")
    return data


def combine(
    histfactory_ws,
    unbinned_ws,
    *,
    poi: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    prefix: str | None = None,
    channel_name: str = "unbinned",
    model_config_name: str = "ModelConfig",
    unbinned_model_config: str = "ModelConfig",
    data_name: str = "obsData",
    unbinned_data: str | None = None,
    name: str | None = None,
):
    """Add an unbinned channel to a HistFactory model: one ``RooSimultaneous``, parameters shared by name.

    Parameters
    ----------
    histfactory_ws, unbinned_ws
        ``RooWorkspace`` objects (see :func:`load_workspace`) or paths of files with one workspace each;
        neither is modified.
    poi
        POI names of the combined ModelConfig; default: HistFactory's, and every unbinned POI must then
        map onto one of them (through ``rename``).
    rename
        ``{unbinned name: combined name}``, e.g. ``{"mu": "SigXsecOverSM"}`` to share the signal strength.
    prefix
        Rename every unbinned object whose name clashes with a HistFactory one (and is not a parameter of
        both) to ``prefix + name``; without it a clash raises :class:`ValueError`.
    channel_name
        State of the channel category for the unbinned channel.
    model_config_name, unbinned_model_config
        Names of the ModelConfigs (the combined one gets the first).
    data_name, unbinned_data
        Observed datasets; ``unbinned_data`` defaults to the unbinned workspace's only dataset.
    name
        Name of the combined workspace (default: the HistFactory workspace's).

    Returns
    -------
    ROOT.RooWorkspace
        With the combined pdf (HistFactory's ``RooSimultaneous`` plus the new state), the combined dataset
        (named ``data_name``) and ModelConfig; ``ws._rooml_combination`` is a :class:`Combination`.

    Raises
    ------
    ValueError
        A missing ModelConfig/dataset, a pdf that is not a ``RooSimultaneous``, an existing channel name,
        an unmapped POI, a name clash, or a shared parameter with different constraints.
    """
    ROOT = _root()
    if isinstance(histfactory_ws, (str, os.PathLike)):
        histfactory_ws = load_workspace(histfactory_ws)
    if isinstance(unbinned_ws, (str, os.PathLike)):
        unbinned_ws = load_workspace(unbinned_ws)
    hf_mc = model_config(histfactory_ws, model_config_name)
    unb_mc = model_config(unbinned_ws, unbinned_model_config)
    sim = hf_mc.GetPdf()
    if not sim or not sim.InheritsFrom("RooSimultaneous"):
        raise ValueError(f"the pdf of ModelConfig '{model_config_name}' is not a RooSimultaneous")
    category = sim.indexCat()
    if category.hasLabel(channel_name):
        raise ValueError(
            f"the HistFactory category '{category.GetName()}' already has a channel '{channel_name}'"
        )
    unb_pdf = unb_mc.GetPdf()
    hf_data = _pick_data(histfactory_ws, data_name, "HistFactory")
    unb_data = _pick_data(unbinned_ws, unbinned_data, "unbinned")

    hf_obs, unb_obs = hf_mc.GetObservables(), unb_mc.GetObservables()
    hf_globs, unb_globs = (
        set(_names(hf_mc.GetGlobalObservables())),
        set(_names(unb_mc.GetGlobalObservables())),
    )
    hf_params = _floating(sim, hf_obs, hf_globs)
    unb_params = _floating(unb_pdf, unb_obs, unb_globs)
    hf_nodes = _tree_names(sim) | {n: "observable" for n in _names(hf_obs)}
    rename = dict(rename or {})
    unknown = set(rename) - set(_tree_names(unb_pdf))
    if unknown:
        raise ValueError(f"rename: the unbinned model has no objects {sorted(unknown)}")
    back = {rename.get(n, n): n for n in _tree_names(unb_pdf)}
    dropped = _shared_constraints(
        ROOT, (sim, hf_obs, hf_globs, hf_params), (unb_pdf, unb_obs, unb_globs, unb_params), rename
    )
    channel_pdf = _channel_pdf(ROOT, unb_pdf, set(dropped), f"model_{channel_name}")
    # names are checked on what is imported: a dropped constraint may well have HistFactory's name
    rename, shared = _resolve_names(hf_nodes, hf_params, _tree_names(channel_pdf), unb_params, rename, prefix)

    unb_poi = [rename.get(n, n) for n in _names(unb_mc.GetParametersOfInterest())]
    pois = list(poi) if poi else _names(hf_mc.GetParametersOfInterest())
    if not poi:
        unmapped = [n for n in unb_poi if n not in pois]
        if unmapped:
            old, new = back[unmapped[0]], pois[0]
            raise ValueError(
                f"the unbinned POI {unmapped} is not HistFactory's POI {pois}: share it with "
                f"rename={{'{old}': '{new}'}} (CLI: --poi-map {old}={new}), "
                "or list the POIs of the combination with poi=[...]"
            )

    ws = ROOT.RooWorkspace(name or histfactory_ws.GetName(), histfactory_ws.GetTitle())
    silence = ROOT.RooFit.Silence()
    ws.Import(sim, silence)
    renames = {a: b for a, b in rename.items() if a != b}
    # RooFit checks the top node's name before renaming: rename our private copy of it ourselves
    top_name = channel_pdf.GetName()
    channel_pdf.SetName(renames.get(top_name, top_name))
    inner = {a: b for a, b in renames.items() if a != top_name}
    options = [ROOT.RooFit.RenameVariable(",".join(inner), ",".join(inner.values()))] if inner else []
    if ws.Import(channel_pdf, *options, silence):
        raise RuntimeError(f"RooWorkspace::import of the unbinned model '{channel_pdf.GetName()}' failed")
    combined_sim = ws.pdf(sim.GetName())
    ws_category = ws.cat(category.GetName())
    ws_category.defineType(channel_name)
    combined_sim.addPdf(ws.pdf(channel_pdf.GetName()), channel_name)

    observables = ROOT.RooArgSet()
    for n in _names(hf_obs) + [rename.get(n, n) for n in _names(unb_obs)]:
        if not ws.arg(n):
            raise ValueError(f"the observable '{n}' of a ModelConfig is not a variable of its model (the "
                             "unbinned pdf reads other columns): list the model's observables in its "
                             "ModelConfig")
        observables.add(ws.arg(n))
    data = _combined_data(ROOT, hf_data, unb_data, observables, ws_category, channel_name, rename, data_name)
    ws.Import(data, silence)

    kept_globs = unb_globs.intersection(_tree_names(channel_pdf))  # those of dropped constraints are gone
    globs = sorted(hf_globs | {rename.get(g, g) for g in kept_globs})
    missing = [p for p in pois if not ws.var(p)]
    if missing:
        raise ValueError(f"POI {missing} not in the combined model")
    combined_globs = {g for g in globs if ws.var(g)}
    nps = sorted(set(_floating(combined_sim, observables, combined_globs)) - set(pois))
    for g in combined_globs:
        ws.var(g).setAttribute(GLOBAL_OBSERVABLE_TAG)
    combined_sim.setStringAttribute("DefaultGlobalObservablesTag", GLOBAL_OBSERVABLE_TAG)

    mc = ROOT.RooStats.ModelConfig(model_config_name, ws)
    mc.SetPdf(combined_sim.GetName())
    mc.SetParametersOfInterest(ROOT.RooArgSet(*[ws.var(p) for p in pois]))
    mc.SetNuisanceParameters(ROOT.RooArgSet(*[ws.var(p) for p in nps]))
    mc.SetGlobalObservables(ROOT.RooArgSet(*[ws.var(g) for g in sorted(combined_globs)]))
    mc.SetObservables(observables)
    mc.SetSnapshot(ROOT.RooArgSet(*[ws.var(p) for p in pois]))
    ws.Import(mc)
    _check_likelihood(ROOT, ws.obj(model_config_name), ws.data(data_name))
    ws._rooml_combination = Combination(channel_name, pois, shared, renames, dropped)
    return ws


def _check_likelihood(ROOT, mc, data) -> None:
    """Evaluate the combined NLL once: a model that cannot be fitted fails before anything is written."""
    try:
        nll = mc.GetPdf().createNLL(
            data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.Offset("off"),
            ROOT.RooFit.GlobalObservables(mc.GetGlobalObservables()),
        )
        value = nll.getVal()
    except Exception as err:  # RooFit's and rooml's C++ errors arrive as cppyy exceptions
        message = str(err).strip().splitlines()[-1].strip()
        raise ValueError(
            f"the combined model cannot be evaluated on the combined dataset: {message}"
        ) from None
    if not np.isfinite(value):
        raise ValueError(f"the combined NLL is {value} at the stored parameter values; nothing was written")


def write_workspace(ws, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``ws`` to ``path`` through a temporary file and an atomic rename.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``force`` is false.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; use --force (force=True) to replace it")
    with atomic_output(path, suffix=".tmp.root") as tmp:
        if not ws.writeToFile(str(tmp), True):
            raise RuntimeError(f"RooWorkspace::writeToFile failed for {path}")
    return path


def simultaneous_constant(data, n_channels: int) -> float:
    """RooFit's parameter-independent term ``sum_i w_i ln C`` of a ``C``-channel ``RooSimultaneous`` NLL."""
    return data.sumEntries() * math.log(n_channels)
