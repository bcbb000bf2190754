"""rooml: machine-learned densities as first-class RooFit objects.

Train conditional normalizing flows and density-ratio networks in Python
(:mod:`rooml.models`), export them to ONNX with metadata (:mod:`rooml.export`),
evaluate them natively in double precision (:func:`rooml.load`) and use them as
RooFit pdfs (:mod:`rooml.roofit`).
"""
from __future__ import annotations

from rooml import _paths
from rooml._version import __version__

__all__ = ["__version__", "load"]

_paths.prepare_root_autoload()


def load(path):
    """Load an exported model file into the compiled core.

    Parameters
    ----------
    path : str or os.PathLike
        An ``.onnx`` file written by :func:`rooml.export.export_flow`.

    Returns
    -------
    rooml._core.FlowModel
        ``.log_prob(x, context=None)`` on numpy arrays (float64, events x
        features), ``.sample(n, context=None, seed=0)``, ``.features``,
        ``.context``.  Bad files and bad inputs raise ``ValueError`` naming the
        problem.
    """
    from rooml import _core

    return _core.FlowModel.from_file(str(path))
