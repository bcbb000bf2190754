"""Synthetic physics datasets with exact truth densities, and their ROOT IO.

Three generators mimic the analyses rooml serves; each has exactly normalized
truth densities so that a flow, a ratio network, a fit or a coverage study can
be scored against the truth:

* :mod:`rooml.data.bbyy` -- HI-SIGMA-like di-Higgs -> bbyy (resonant ``m_yy``
  plus four features, shape systematic ``nu``).
* :mod:`rooml.data.hh4b` -- HH -> 4b mass plane, six kinematic features,
  b-tag categories with an exact 4b/2b ratio, years, hemispheres.
* :mod:`rooml.data.offshell4l` -- off-shell H -> ZZ -> 4l with S, B and signed
  interference I, exact per-process ratios and a systematic ``alpha``.

Each module has ``generate(process, n_events, seed, ...) -> Sample``, a
``PROCESSES`` tuple and a ``truth`` object with the densities. IO lives in
:mod:`rooml.data.io` (``write_root``, ``read_root``, ``iterate_root``,
``to_roodataset``) and the ``rooml data make`` command in :mod:`rooml.data.cli`.

Examples
--------
>>> from rooml import data
>>> s = data.generate("bbyy", "signal", 500, seed=4)
>>> len(s), s.attrs["process"]
(500, 'signal')
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from rooml.data._sample import Sample, concatenate

__all__ = [
    "GENERATORS",
    "Sample",
    "bbyy",
    "concatenate",
    "generate",
    "hh4b",
    "iterate_root",
    "offshell4l",
    "read_root",
    "to_roodataset",
    "write_root",
]

_GENERATOR_NAMES = ("bbyy", "hh4b", "offshell4l")
_IO = ("iterate_root", "read_root", "to_roodataset", "write_root")


def __getattr__(name: str):
    """Import the generators (scipy) and the IO functions on first use, so the CLI starts fast."""
    if name in (*_GENERATOR_NAMES, "io", "cli"):
        return importlib.import_module(f"rooml.data.{name}")
    if name in _IO:
        return getattr(importlib.import_module("rooml.data.io"), name)
    if name == "GENERATORS":
        generators: dict[str, ModuleType] = {n: importlib.import_module(f"rooml.data.{n}")
                                             for n in _GENERATOR_NAMES}  # fmt: skip
        return generators
    raise AttributeError(f"module 'rooml.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def generate(
    name: str, process: str, n_events: int, seed: int | np.random.Generator | None = 0, **kwargs
) -> Sample:
    """Generate ``n_events`` of ``process`` with the generator called ``name``.

    Parameters
    ----------
    name : {"bbyy", "hh4b", "offshell4l"}
    process : str
        One of the generator's ``PROCESSES``.
    n_events : int
    seed : int or numpy.random.Generator
    **kwargs
        Passed to the generator's ``generate`` (``nu``, ``alpha``, ``year``,
        ``preselection``).

    Returns
    -------
    Sample
    """
    if name not in _GENERATOR_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(_GENERATOR_NAMES)}")
    module = importlib.import_module(f"rooml.data.{name}")
    return module.generate(process, n_events, seed, **kwargs)
