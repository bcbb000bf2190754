"""RooGPMassPlane from an exported Gaussian-process mass plane.

>>> import rooml.roofit                                                        # doctest: +SKIP
>>> pdf = rooml.roofit.gp_massplane_pdf("bkg_2018", "gp_massplane_2018.onnx")  # doctest: +SKIP
>>> m1, m2 = pdf._rooml_vars                                                   # doctest: +SKIP
>>> data = pdf.generate(ROOT.RooArgSet(m1, m2), 10000)                         # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path

from rooml.export import ModelFileError, read_metadata
from rooml.roofit._library import load_library

__all__ = ["gp_massplane_pdf"]


def gp_massplane_pdf(name: str, model_file: str | os.PathLike, m1=None, m2=None, *, title: str | None = None):
    """Build a ``RooGPMassPlane``: the sampler density of a GP mass plane as a pdf of ``(m_H1, m_H2)``.

    The density is the GP's predicted counts at the bin centres, clipped at
    zero, uniform inside each bin, normalized over the fit box and zero outside
    it: what ``MassPlaneGP.sample`` draws from.  Integrals over any ranges are
    analytical, generation is direct.

    Parameters
    ----------
    name
        Name of the pdf.
    model_file
        ``.onnx`` file written by :func:`rooml.export.export_gp_massplane` (its
        bytes are stored inside the pdf, so workspaces are self-contained).
    m1, m2
        ``RooRealVar`` observables; created from the metadata (named like its
        features, ranges the fit box) when omitted.
    title
        Title (default: the name).

    Returns
    -------
    ROOT.RooGPMassPlane
        With the variables attached as ``_rooml_vars``.

    Raises
    ------
    rooml.export.ModelFileError
        Missing or corrupt file, or not a GP mass plane.
    """
    ROOT = load_library()
    path = Path(model_file)
    meta = read_metadata(path)
    if meta.get("kind") != "gp_massplane":
        raise ModelFileError(f"{path}: model kind is '{meta.get('kind')}', not 'gp_massplane'")
    made = []
    for (lo, hi), feature in zip(meta["support"], meta["features"]):
        made.append(ROOT.RooRealVar(feature, feature, 0.5 * (lo + hi), lo, hi))
    m1 = made[0] if m1 is None else m1
    m2 = made[1] if m2 is None else m2
    pdf = ROOT.RooGPMassPlane(name, title or name, m1, m2, str(path))
    pdf._rooml_vars = (m1, m2)
    return pdf
