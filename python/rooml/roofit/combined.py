"""The NLL of a combined model (``RooSimultaneous``): terms with analytic or cheap numerical derivatives.

A combination of unbinned rooml channels with binned HistFactory channels (what :func:`rooml.combine.combine`
builds) has the likelihood ``L = L_binned * prod_c L_c``.  :func:`combined_nll` builds its NLL as a
``RooCombinedNLL``: one ``RooNSBINLL`` per NSBI channel (analytic gradient and Hessian, one pass over the
channel's events per call), RooFit's NLL of each other channel with rooml densities (HI-SIGMA: flows evaluated
once per dataset; differentiated numerically in that channel's own parameters only, so derivatives in the
binned channels' parameters never re-evaluate its events), plus RooFit's NLL of the
remaining (binned) channels (a ``RooSimultaneous`` of them with their constraint terms, differentiated
numerically: a binned channel costs microseconds per evaluation).  Its value equals RooFit's NLL of the whole
``RooSimultaneous``, including RooFit's ``sum_i w_i ln C``.
"""

from __future__ import annotations

from rooml.roofit._library import load_library

__all__ = ["combined_nll"]


def combined_nll(model, data, *, constraints=None, offset: bool = True):
    """Build the NLL of a ``RooSimultaneous`` with NSBI channels as a ``RooCombinedNLL``, or return None.

    Parameters
    ----------
    model
        A ``RooSimultaneous`` (e.g. the pdf of a workspace written by ``rooml combine``).
    data
        Its dataset, with the channel category as a column.
    constraints
        External constraint pdfs (as RooFit's ``ExternalConstraints``).
    offset
        Subtract the first value (RooFit's ``Offset("initial")``) for Minuit.

    Returns
    -------
    ROOT.RooCombinedNLL or None
        None when ``model`` is not a ``RooSimultaneous`` or none of its channels is an NSBI model that
        ``RooNSBINLL`` covers: then RooFit's own NLL is the right one (for HistFactory + HI-SIGMA alone it
        was faster than this sum: docs/combination.md).
    """
    ROOT = load_library()
    from rooml.roofit.nsbi import _nsbi_parts, nsbi_nll

    if not isinstance(model, ROOT.RooSimultaneous):
        return None
    category = model.indexCat()
    channels = {str(state.first): model.getPdf(str(state.first)) for state in category}
    channels = {label: pdf for label, pdf in channels.items() if pdf}
    nsbi = {label: _nsbi_parts(ROOT, pdf, None) for label, pdf in channels.items()}
    nsbi = {label: parts for label, parts in nsbi.items() if parts is not None}
    if not nsbi:
        return None  # without a RooNSBINLL term RooFit's NLL is faster (measured in bench_combined_fit.py)
    observables = data.get()
    unbinned = {label: _split_constraints(ROOT, pdf, observables) for label, pdf in channels.items()
                if label not in nsbi and _has_rooml_density(ROOT, pdf)}
    unbinned = {label: parts for label, parts in unbinned.items() if parts is not None}
    rest = [label for label in channels if label not in nsbi and label not in unbinned]
    counted = _constraint_names(ROOT, [channels[label] for label in rest], data)
    terms, keep = [], [data]
    for label, (shape, cons) in (nsbi | unbinned).items():
        own = [c for c in cons if c.GetName() not in counted]
        counted |= {c.GetName() for c in own}
        channel_data = _reduce(ROOT, data, category, [label])
        if label in nsbi:
            nll = nsbi_nll(shape, channel_data, constraints=own, offset=False)
        else:
            nll = _roofit_nll(ROOT, shape, channel_data, own)
        terms.append(nll)
        keep += [channel_data, nll]
    constant = _ln_c(data, len(channels))
    external = list(constraints or [])
    if rest:
        binned = ROOT.RooSimultaneous(f"{model.GetName()}_binned", "the binned channels", category)
        for label in rest:
            binned.addPdf(channels[label], label)
        tag = model.getStringAttribute("DefaultGlobalObservablesTag")
        if tag:
            binned.setStringAttribute("DefaultGlobalObservablesTag", tag)
        binned_data = _reduce(ROOT, data, category, rest)
        binned_nll = _roofit_nll(ROOT, binned, binned_data, external)
        terms.append(binned_nll)
        keep += [binned, binned_data, binned_nll]
        constant -= _ln_c(binned_data, len(rest))
    elif external:
        raise ValueError("external constraints for a combination without binned channels: pass them to "
                         "the unbinned channel's model instead")
    out = ROOT.RooCombinedNLL(f"nll_{model.GetName()}", f"NLL of {model.GetName()}",
                              ROOT.RooArgList(*terms), float(constant), bool(offset))
    out._rooml_keep = keep
    return out


_ROOML_DENSITIES = ("RooFlowPdf", "RooInterpolatedDensity", "RooRatioFunction", "RooEventColumn",
                    "RooNSBIPdf")


def _has_rooml_density(ROOT, pdf) -> bool:
    """Whether ``pdf`` has a per-event rooml component (an unbinned channel worth its own NLL term)."""
    return any(arg.ClassName() in _ROOML_DENSITIES for arg in pdf.getComponents())


def _split_constraints(ROOT, pdf, observables):
    """``(shape pdf, [constraint pdfs])`` of a channel pdf, or None when its constraints cannot be split off.

    A ``RooProdPdf`` of one observable-dependent factor and constraint terms is split; any other pdf is its
    own shape, provided it holds no constraint term (RooFit would count one shared with other channels twice).
    """
    if isinstance(pdf, ROOT.RooProdPdf):
        factors = list(pdf.pdfList())
        shapes = [f for f in factors if f.dependsOn(observables)]
        if len(shapes) == 1 and not _constraint_components(ROOT, shapes[0], observables):
            return shapes[0], [f for f in factors if not f.dependsOn(observables)]
        return None
    return (pdf, []) if not _constraint_components(ROOT, pdf, observables) else None


def _constraint_components(ROOT, pdf, observables) -> list:
    """Components of ``pdf`` that are pdfs of no observable (what RooFit takes as constraint terms)."""
    return [arg for arg in pdf.getComponents()
            if isinstance(arg, ROOT.RooAbsPdf) and not arg.dependsOn(observables)]


def _roofit_nll(ROOT, pdf, data, constraints):
    """RooFit's (CPU-backend, not offset) NLL of ``pdf`` on ``data`` with external ``constraints``."""
    args = [ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.Offset("off")]
    if constraints:
        args.append(ROOT.RooFit.ExternalConstraints(ROOT.RooArgSet(*constraints)))
    return pdf.createNLL(data, *args)


def _reduce(ROOT, data, category, labels):
    """The events of ``data`` in the given states of ``category``."""
    name = category.GetName()
    cut = " || ".join(f"{name}=={name}::{label}" for label in labels)
    return data.reduce(ROOT.RooFit.Cut(cut), ROOT.RooFit.Name(f"{data.GetName()}_{'_'.join(labels)}"))


def _constraint_names(ROOT, pdfs, data) -> set[str]:
    """Names of the constraint terms RooFit finds in ``pdfs`` (components that depend on no observable)."""
    observables = data.get()
    return {arg.GetName() for pdf in pdfs for arg in _constraint_components(ROOT, pdf, observables)}


def _ln_c(data, n_channels: int) -> float:
    from rooml.combine import simultaneous_constant

    return simultaneous_constant(data, n_channels)
