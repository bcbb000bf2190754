"""rooml: machine-learned densities as first-class RooFit objects.

Train conditional normalizing flows and density-ratio networks in Python
(:mod:`rooml.models`), export them to ONNX with metadata (:mod:`rooml.export`),
evaluate them natively in double precision (:func:`rooml.load`) and use them as
RooFit pdfs (:mod:`rooml.roofit`).
"""
from __future__ import annotations

import warnings

from rooml import _paths
from rooml._version import __version__

__all__ = ["__version__", "load"]

_paths.prepare_root_autoload()
# The pip ROOT wheel warns on every import that it is an alpha distribution: nothing a rooml user can act on.
warnings.filterwarnings("ignore", message=r"\s*This distribution of ROOT is in alpha stage",
                        category=UserWarning, module="ROOT")


def load(path):
    """Load an exported model file into the compiled core.

    Parameters
    ----------
    path : str or os.PathLike
        An ``.onnx`` file written by :func:`rooml.export.export_flow` or
        :func:`rooml.export.export_ratio`.

    Returns
    -------
    rooml._core.FlowModel, rooml._core.RatioModel or rooml._core.GPMassPlane
        A flow: ``.log_prob(x, context=None)`` on numpy arrays (float64, events x
        features), ``.sample(n, context=None, seed=0)``, ``.features``,
        ``.context``.  A ratio model (metadata kind ``"ratio"``):
        ``.log_ratio(x)``, ``.ratio(x)``, ``.member_log_ratios(x)``.  A GP mass
        plane (kind ``"gp_massplane"``, :class:`rooml._core.GPMassPlane`):
        ``.mean_counts(x)``, ``.std_counts(x)``, ``.density(x)``.  Bad files
        and bad inputs raise ``ValueError`` naming the problem.
    """
    from rooml import _core

    kind = _model_kind(path)
    if kind == "ratio":
        return _core.RatioModel.from_file(str(path))
    if kind == "gp_massplane":
        return _core.GPMassPlane.from_file(str(path))
    return _core.FlowModel.from_file(str(path))


def _model_kind(path) -> str | None:
    """Return the ``kind`` in a model file's rooml metadata, or None if unreadable (the core says why)."""
    import json

    import onnx

    try:
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(props["rooml"]).get("kind")
    except Exception:
        return None
