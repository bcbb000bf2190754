"""The ATLAS NSBI likelihood as a RooFit model (``RooNSBIPdf`` plus Gaussian constraints).

``p(x|mu,alpha)/p_ref(x) = (1/nu(mu,alpha)) sum_j f_j(mu) nu_j G_j(alpha) r_j(x) prod_k g_j(x, alpha_k)``
(arXiv:2412.01600), extended with ``nu(mu, alpha) = sum_j f_j(mu) nu_j G_j(alpha)`` and multiplied by
``Gaus(a_k | alpha_k, 1)`` constraint terms with global observables ``a_k``.  Per-event inputs are numpy
arrays (turned into ``RooEventColumn`` objects over the index observable) or any ``RooAbsReal``.

>>> from rooml.roofit import nsbi_model, index_variable                           # doctest: +SKIP
>>> idx = index_variable()                                                         # doctest: +SKIP
>>> m = nsbi_model("nsbi", idx, yields={"S": 40, "SBI": 1455, "B": 1400},
...                coefficients={"S": "mu - sqrt(mu)", "SBI": "sqrt(mu)", "B": "1 - sqrt(mu)"},
...                ratios={"S": r_s, "SBI": r_sbi, "B": r_b}, poi=["mu"], nps=["alpha"],
...                norm={("S", "alpha"): (0.95, 1.06)},
...                shape={("S", "alpha"): (g_s_lo, g_s_hi)})                      # doctest: +SKIP
>>> m["pdf"].fitTo(data, ROOT.RooFit.GlobalObservables(*m["global_observables"]))  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from rooml.roofit.column import _load, event_column, set_column_values, to_std_vector

__all__ = ["nsbi_model", "nsbi_nll", "poisson_bootstrap_weights", "to_workspace", "update_event_inputs"]


def _param(ROOT, spec, default):
    """Return a RooRealVar given one, a name, or (name, value, low, high)."""
    if isinstance(spec, str):
        return ROOT.RooRealVar(spec, spec, *default)
    if isinstance(spec, tuple):
        name, value, low, high = spec
        return ROOT.RooRealVar(name, name, float(value), float(low), float(high))
    return spec


def _arglist(ROOT, items):
    out = ROOT.RooArgList()
    for item in items:
        out.add(item)
    return out


def _codes(codes, processes, nps, what):
    """Return J * K codes (process-major) from one code, a {(process, np): code} mapping or a flat list."""
    J, K = len(processes), len(nps)
    if np.ndim(codes) == 0 and not isinstance(codes, Mapping):
        return [int(codes)] * (J * K)
    if isinstance(codes, Mapping):
        unknown = set(codes) - {(p, n) for p in processes for n in nps}
        if unknown:
            raise ValueError(f"{what} codes for unknown (process, parameter) pairs: {sorted(unknown)}")
        return [int(codes.get((p, n), 5)) for p in processes for n in nps]
    flat = [int(c) for c in codes]
    if len(flat) != J * K:
        raise ValueError(f"{what} codes: need J * K = {J * K} (process-major), got {len(flat)}")
    return flat


def nsbi_model(
    name: str,
    index_var,
    *,
    yields: Mapping[str, float],
    coefficients: Mapping,
    ratios: Mapping,
    poi: Sequence = ("mu",),
    nps: Sequence = (),
    norm: Mapping | None = None,
    shape: Mapping | None = None,
    norm_codes=5,
    shape_codes=5,
    constraints: bool = True,
    reference_sample: Mapping | None = None,
    title: str | None = None,
) -> dict:
    """Build the NSBI model: ``RooNSBIPdf`` x Gaussian constraints, and a ModelConfig-like description.

    Parameters
    ----------
    name
        Name of the ``RooNSBIPdf``; other objects get it as prefix.
    index_var
        The index observable of the dataset (see :func:`rooml.roofit.index_variable`).
    yields
        ``{process: nu_j}``, nominal expected yields; the order of this mapping is the order of processes.
    coefficients
        ``{process: f_j}``: a ``RooAbsReal`` or a formula in the parameters' names
        (``"mu - sqrt(mu)"``, ``"sqrt(mu)"``, ``"1 - sqrt(mu)"``).
    ratios
        ``{process: r_j}``: per-event ``p_j(x)/p_ref(x)`` as a 1-d array (made a ``RooEventColumn``)
        or a ``RooAbsReal``.
    poi
        Parameters of interest: ``RooRealVar``, names (value 1 in [0, 20]) or ``(name, value, low, high)``.
    nps
        Nuisance parameters: ``RooRealVar``, names (value 0 in [-5, 5]) or ``(name, value, low, high)``.
    norm
        ``{(process, np): (G_low, G_high)}``: yield ratios ``nu_j(alpha_k = -1)/nu_j`` and ``(+1)``; missing
        pairs are ``(1, 1)``.
    shape
        ``{(process, np): (g_low, g_high)}``: per-event ratios ``p_j(x|alpha_k = -+1)/p_j(x)`` (arrays or
        ``RooAbsReal``); missing pairs have no shape effect.
    norm_codes, shape_codes
        One code, ``{(process, np): code}`` (others 5) or J * K codes.  rooml numbering: 5 is polynomial
        inside / exponential outside (``FlexibleInterpVar``'s 4 and 5, pyhf's ``code4``).
    constraints
        Multiply in ``Gaus(a_k | alpha_k, 1)`` with constant global observables ``a_k = 0``.
    reference_sample
        Optional ``{"weights": w, "ratios": {process: r_j(x_s)}, "shape": {(process, np): (lo, hi)}}`` on a
        reference sample: normalizes each process's interpolated shape (see ``docs/roofit_classes.md``).
        A Monte-Carlo sample smaller than 25 times the expected data (effective sizes) gets a warning (its
        statistical error shifts the nuisance parameters; :func:`rooml.infer.reference_sample_errors`
        measures it); ``"monte_carlo": False`` declares deterministic quadrature points instead.
    title
        Title of the ``RooNSBIPdf``.

    Returns
    -------
    dict
        ``pdf`` (the full model to fit), ``nsbi`` (the ``RooNSBIPdf``), ``constraints``, ``poi``,
        ``nuisance_parameters``, ``global_observables``, ``observables`` (the index if an input is a
        per-event array or column, the features of function inputs such as ``RooRatioFunction``),
        ``expected_events``
        (a ``RooNSBIYield`` for nu(mu, alpha)), ``coefficients``, ``processes``, ``columns``
        (``{("r", process) or ("lo"/"hi", process, np): RooEventColumn}``) and ``keep`` (objects that must
        stay alive as long as the model).

    Raises
    ------
    ValueError
        Mismatched processes, a nuisance parameter without any +-1 sigma input, a one-sided variation,
        non-positive or non-finite per-event ratios (naming the event).
    """
    ROOT = _load()
    norm, shape = dict(norm or {}), dict(shape or {})
    processes = list(yields)
    for what, mapping in (("coefficients", coefficients), ("ratios", ratios)):
        if set(mapping) != set(processes):
            raise ValueError(
                f"nsbi_model '{name}': {what} are given for {sorted(mapping)} but the yields for "
                f"{sorted(processes)}"
            )
    pois = [_param(ROOT, p, (1.0, 0.0, 20.0)) for p in poi]
    alphas = [_param(ROOT, p, (0.0, -5.0, 5.0)) for p in nps]
    np_names = [a.GetName() for a in alphas]
    for key in list(norm) + list(shape):
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] in processes and key[1] in np_names):
            raise ValueError(
                f"nsbi_model '{name}': variation key {key!r} is not a (process, nuisance parameter) "
                f"pair of {processes} x {np_names}"
            )
    for a in np_names:
        if not any(k[1] == a for k in list(norm) + list(shape)):
            raise ValueError(
                f"nsbi_model '{name}': nuisance parameter '{a}' has no +-1 sigma inputs (neither a "
                "normalization nor a shape variation)"
            )
    keep: list = [index_var, *pois, *alphas]
    params = {p.GetName(): p for p in pois + alphas}

    coef_objs = []
    for proc in processes:
        c = coefficients[proc]
        if isinstance(c, str):
            used = [p for n, p in params.items() if re.search(rf"\b{re.escape(n)}\b", c)]
            c = ROOT.RooFormulaVar(f"{name}_f_{proc}", c, _arglist(ROOT, used))
        coef_objs.append(c)
    keep += coef_objs

    columns = {}

    def per_event(values, key, label):
        if isinstance(values, ROOT.RooAbsReal):
            return values
        arr = np.asarray(values, dtype=np.float64)
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
        if len(bad):
            raise ValueError(
                f"nsbi_model '{name}': per-event {label} of event {int(bad[0])} is {arr[bad[0]]}; "
                f"per-event ratios must be finite and > 0 ({len(bad)} bad events)"
            )
        col = event_column(f"{name}_{'_'.join(key)}", arr, index_var)
        columns[key] = col
        return col

    ratio_objs = [per_event(ratios[p], ("r", p), f"ratio r_{p}") for p in processes]
    one = ROOT.RooConstVar(f"{name}_one", "no shape effect", 1.0)
    keep.append(one)
    shape_lo, shape_hi, norm_lo, norm_hi = [], [], [], []
    for p in processes:
        for a in np_names:
            g_lo, g_hi = norm.get((p, a), (1.0, 1.0))
            norm_lo.append(float(g_lo))
            norm_hi.append(float(g_hi))
            if (p, a) in shape:
                lo, hi = shape[(p, a)]
                if lo is None or hi is None:
                    raise ValueError(
                        f"nsbi_model '{name}': shape variation of '{p}' for '{a}' needs both the -1 "
                        "and the +1 sigma per-event ratios"
                    )
                shape_lo.append(per_event(lo, ("lo", p, a), f"-1 sigma ratio of {p} for {a}"))
                shape_hi.append(per_event(hi, ("hi", p, a), f"+1 sigma ratio of {p} for {a}"))
            else:
                shape_lo.append(one)
                shape_hi.append(one)
    keep += ratio_objs + shape_lo + shape_hi
    ncodes = _codes(norm_codes, processes, np_names, "normalization")
    scodes = _codes(shape_codes, processes, np_names, "shape")
    y = [float(yields[p]) for p in processes]
    nsbi = ROOT.RooNSBIPdf(
        name,
        title or name,
        _arglist(ROOT, coef_objs),
        to_std_vector(y),
        _arglist(ROOT, ratio_objs),
        _arglist(ROOT, alphas),
        to_std_vector(norm_lo),
        to_std_vector(norm_hi),
        _arglist(ROOT, shape_lo),
        _arglist(ROOT, shape_hi),
        to_std_vector(ncodes, "int"),
        to_std_vector(scodes, "int"),
    )
    if reference_sample is not None:
        _set_reference(nsbi, reference_sample, processes, np_names)
    expected = ROOT.RooNSBIYield(
        f"{name}_nu",
        "expected events nu(mu, alpha)",
        _arglist(ROOT, coef_objs),
        to_std_vector(y),
        _arglist(ROOT, alphas),
        to_std_vector(norm_lo),
        to_std_vector(norm_hi),
        to_std_vector(ncodes, "int"),
    )
    if reference_sample is not None and reference_sample.get("monte_carlo", True):
        from rooml.infer.reference_sample import check_reference_size

        check_reference_size(expected.getVal(), reference_sample["weights"], name=f"nsbi_model '{name}'")
    cons, globs = [], []
    if constraints:
        for a in alphas:
            g = ROOT.RooRealVar(f"{a.GetName()}_obs", f"global observable of {a.GetName()}", 0.0, -10.0, 10.0)
            g.setConstant(True)
            sigma = ROOT.RooConstVar(f"{a.GetName()}_sigma", "constraint width", 1.0)
            cons.append(
                ROOT.RooGaussian(
                    f"{a.GetName()}_constraint", f"Gaussian constraint of {a.GetName()}", g, a, sigma
                )
            )
            globs.append(g)
            keep += [g, sigma]
    pdf = (
        ROOT.RooProdPdf(f"{name}_model", f"{name} with constraints", _arglist(ROOT, [nsbi, *cons]))
        if cons
        else nsbi
    )
    keep += cons + [nsbi, expected]
    pdf._rooml_keep = keep
    return {
        "pdf": pdf,
        "nsbi": nsbi,
        "constraints": cons,
        "poi": pois,
        "nuisance_parameters": alphas,
        "global_observables": globs,
        "observables": _input_observables(ratio_objs + shape_lo + shape_hi, index_var, pois + alphas),
        "expected_events": expected,
        "coefficients": dict(zip(processes, coef_objs)),
        "processes": processes,
        "columns": columns,
        "keep": keep,
    }


def _input_observables(inputs, index_var, parameters) -> list:
    """Return the dataset columns the per-event inputs read.

    The index (for ``RooEventColumn`` inputs) first, then the features of function inputs such as
    ``RooRatioFunction`` in order of first use.
    """
    skip = {p.GetName() for p in parameters}
    found = {}
    for obj in inputs:
        for v in obj.getVariables():
            name = v.GetName()
            if name in skip or name in found or not v.InheritsFrom("RooAbsLValue"):
                continue
            found[name] = index_var if name == index_var.GetName() else v
    ordered = sorted(found.values(), key=lambda v: v.GetName() != index_var.GetName())
    return ordered


def _set_reference(nsbi, ref: Mapping, processes, np_names) -> None:
    w = np.asarray(ref["weights"], dtype=np.float64)
    n = len(w)
    r = np.stack([np.asarray(ref["ratios"][p], dtype=np.float64) for p in processes])
    shape = ref.get("shape", {})
    lo = np.ones((len(processes), len(np_names), n))
    hi = np.ones((len(processes), len(np_names), n))
    for (p, a), (vlo, vhi) in shape.items():
        lo[processes.index(p), np_names.index(a)] = vlo
        hi[processes.index(p), np_names.index(a)] = vhi
    if r.shape != (len(processes), n):
        raise ValueError(
            f"reference_sample: ratios must have one value per sample event ({n}), got {r.shape}"
        )
    nsbi.setShapeNormalizationSample(to_std_vector(w), to_std_vector(r), to_std_vector(lo), to_std_vector(hi))


def update_event_inputs(model: dict, ratios: Mapping | None = None, shape: Mapping | None = None) -> None:
    """Replace the per-event values of a model's ``RooEventColumn`` inputs (e.g. for the next toy dataset).

    Parameters
    ----------
    model
        The dictionary returned by :func:`nsbi_model` (or any with its keys ``pdf``, ``poi``,
        ``nuisance_parameters``, ``global_observables``, ``observables``).
    ratios
        ``{process: array}``.
    shape
        ``{(process, np): (low, high)}``.
    """
    cols = model["columns"]
    for p, values in (ratios or {}).items():
        set_column_values(cols[("r", p)], values)
    for (p, a), (lo, hi) in (shape or {}).items():
        set_column_values(cols[("lo", p, a)], lo)
        set_column_values(cols[("hi", p, a)], hi)


_MULTIPLICATIVE_CODES = (1, 5, 6, 100)


def _nsbi_parts(ROOT, model, constraints):
    """``(RooNSBIPdf, [RooGaussian constraints])`` of an NSBI model, or None for any other model."""
    if isinstance(model, Mapping):
        model = model["pdf"]
    if isinstance(model, ROOT.RooNSBIPdf):
        parts = [model]
    elif isinstance(model, ROOT.RooProdPdf):
        parts = list(model.pdfList())
    else:
        return None
    nsbi = [p for p in parts if isinstance(p, ROOT.RooNSBIPdf)]
    others = [p for p in parts if not isinstance(p, ROOT.RooNSBIPdf)] + list(constraints or [])
    if len(nsbi) != 1 or not all(isinstance(p, ROOT.RooGaussian) for p in others):
        return None
    if any(code not in _MULTIPLICATIVE_CODES for code in nsbi[0].shapeCodes()):
        return None  # additive per-event shape codes: RooFit's NLL
    return nsbi[0], others


def nsbi_nll(model, data, *, constraints=None, offset: bool = True):
    """Build the extended NLL of an NSBI model as a ``RooNSBINLL`` (analytic gradient and Hessian), or None.

    ``model`` is a ``RooNSBIPdf``, a ``RooProdPdf`` of one with ``RooGaussian`` constraint terms
    (what :func:`nsbi_model` builds) or that function's dictionary; ``constraints`` adds more
    Gaussian terms.  The value equals RooFit's ``createNLL(data, Extended(True))`` of the same model;
    RooMinimizer uses the gradient and, with ``Config.useHessian`` (as
    :func:`rooml.infer.minimize` sets it), the Hessian.  Returns None when the model is not of this
    form or has additive per-event shape codes (0, 2, 4): use RooFit's NLL.  Raises ``rooml`` errors
    for bad per-event inputs (naming the event).
    """
    ROOT = _load()
    parts = _nsbi_parts(ROOT, model, constraints)
    if parts is None:
        return None
    nsbi, cons = parts
    nll = ROOT.RooNSBINLL(f"nll_{nsbi.GetName()}", f"NLL of {nsbi.GetName()}", nsbi, data,
                          _arglist(ROOT, cons), bool(offset))
    nll._rooml_keep = (nsbi, cons)
    return nll


def poisson_bootstrap_weights(n: int, seed=None) -> np.ndarray:
    """Poisson(1) weights for a bootstrap toy of an ``n``-event sample (as the NSBI toys)."""
    return np.random.default_rng(seed).poisson(1.0, int(n)).astype(np.float64)


def to_workspace(model: dict, data=None, name: str = "w", model_config: str = "ModelConfig"):
    """Import a model (and optionally data) into a ``RooWorkspace`` with a ``RooStats::ModelConfig``.

    Parameters
    ----------
    model
        The dictionary returned by :func:`nsbi_model` (or any with its keys ``pdf``, ``poi``,
        ``nuisance_parameters``, ``global_observables``, ``observables``).
    data
        Optional dataset to import.
    name, model_config
        Names of the workspace and of the ModelConfig.

    Returns
    -------
    ROOT.RooWorkspace
    """
    ROOT = _load()
    ws = ROOT.RooWorkspace(name, name)
    ws.Import(model["pdf"], ROOT.RooFit.Silence())
    if data is not None:
        ws.Import(data, ROOT.RooFit.Silence())
    mc = ROOT.RooStats.ModelConfig(model_config, ws)
    mc.SetPdf(model["pdf"].GetName())
    mc.SetParametersOfInterest(ROOT.RooArgSet(*[ws.var(p.GetName()) for p in model["poi"]]))
    if model["nuisance_parameters"]:
        mc.SetNuisanceParameters(ROOT.RooArgSet(*[ws.var(a.GetName()) for a in model["nuisance_parameters"]]))
    if model["global_observables"]:
        mc.SetGlobalObservables(ROOT.RooArgSet(*[ws.var(g.GetName()) for g in model["global_observables"]]))
    mc.SetObservables(ROOT.RooArgSet(*[ws.var(o.GetName()) for o in model["observables"]]))
    ws.Import(mc)
    return ws
