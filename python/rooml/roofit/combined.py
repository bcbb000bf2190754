"""The NLL of a combined model (``RooSimultaneous``) as a sum of terms with analytic or cheap numerical derivatives.

A combination of unbinned NSBI channels with binned HistFactory channels (what :func:`rooml.combine.combine`
builds) has the likelihood ``L = L_binned * prod_c L_c``.  :func:`combined_nll` builds its NLL as a
``RooCombinedNLL``: one ``RooNSBINLL`` per NSBI channel (analytic gradient and Hessian, one pass over the
channel's events per call) plus RooFit's own NLL of the remaining channels (a ``RooSimultaneous`` of them with
their constraint terms, differentiated numerically: a binned channel costs microseconds per evaluation).  Its
value equals RooFit's NLL of the whole ``RooSimultaneous``, including RooFit's ``sum_i w_i ln C``.
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
        ``RooNSBINLL`` covers: then RooFit's own NLL is the right one.
    """
    ROOT = load_library()
    from rooml.roofit.nsbi import _nsbi_parts, nsbi_nll

    if not isinstance(model, ROOT.RooSimultaneous):
        return None
    category = model.indexCat()
    channels = {str(state.first): model.getPdf(str(state.first)) for state in category}
    channels = {label: pdf for label, pdf in channels.items() if pdf}
    unbinned = {label: _nsbi_parts(ROOT, pdf, None) for label, pdf in channels.items()}
    unbinned = {label: parts for label, parts in unbinned.items() if parts is not None}
    if not unbinned:
        return None
    rest = [label for label in channels if label not in unbinned]
    counted = _constraint_names(ROOT, [channels[label] for label in rest], data)
    terms, keep = [], [data]
    for label, (nsbi, cons) in unbinned.items():
        own = [c for c in cons if c.GetName() not in counted]
        counted |= {c.GetName() for c in own}
        channel_data = _reduce(ROOT, data, category, [label])
        nll = nsbi_nll(nsbi, channel_data, constraints=own, offset=False)
        terms.append(nll)
        keep += [channel_data, nll]
    constant = _ln_c(data, len(channels))
    external = list(constraints or [])
    if rest:
        binned = ROOT.RooSimultaneous(f"{model.GetName()}_binned", "channels without RooNSBINLL", category)
        for label in rest:
            binned.addPdf(channels[label], label)
        tag = model.getStringAttribute("DefaultGlobalObservablesTag")
        if tag:
            binned.setStringAttribute("DefaultGlobalObservablesTag", tag)
        binned_data = _reduce(ROOT, data, category, rest)
        args = [ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.Offset("off")]
        if external:
            args.append(ROOT.RooFit.ExternalConstraints(ROOT.RooArgSet(*external)))
        binned_nll = binned.createNLL(binned_data, *args)
        terms.append(binned_nll)
        keep += [binned, binned_data, binned_nll]
        constant -= _ln_c(binned_data, len(rest))
    elif external:
        raise ValueError("external constraints for a combination without binned channels: pass them to "
                         "the NSBI channel's model instead")
    out = ROOT.RooCombinedNLL(f"nll_{model.GetName()}", f"NLL of {model.GetName()}",
                              ROOT.RooArgList(*terms), float(constant), bool(offset))
    out._rooml_keep = keep
    return out


def _reduce(ROOT, data, category, labels):
    """The events of ``data`` in the given states of ``category``."""
    name = category.GetName()
    cut = " || ".join(f"{name}=={name}::{label}" for label in labels)
    return data.reduce(ROOT.RooFit.Cut(cut), ROOT.RooFit.Name(f"{data.GetName()}_{'_'.join(labels)}"))


def _constraint_names(ROOT, pdfs, data) -> set[str]:
    """Names of the constraint terms RooFit finds in ``pdfs`` (components that depend on no observable)."""
    names = set()
    observables = data.get()
    for pdf in pdfs:
        for arg in pdf.getComponents():
            if isinstance(arg, ROOT.RooAbsPdf) and not arg.dependsOn(observables):
                names.add(arg.GetName())
    return names


def _ln_c(data, n_channels: int) -> float:
    from rooml.combine import simultaneous_constant

    return simultaneous_constant(data, n_channels)
