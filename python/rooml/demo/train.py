"""Training and export of the demo's HI-SIGMA models.

P_s(x'|m) is trained on signal simulation, P_b(x'|m) on the m_yy sidebands of
background simulation (:mod:`rooml.data.bbyy`); both are bootstrap ensembles
(``D`` replicas x ``K`` seeds, :func:`rooml.models.train_ensemble`, on Dask).
The +-1 sigma models of bbyy's shape systematic (``pt_bb -> (1 + 0.1 nu) pt_bb``)
are each nominal member composed with that scaling -- an exact change of
variables added in front of the member's preprocessing, Jacobian included --
so the variations carry no training noise of their own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rooml.data import bbyy
from rooml.models import FlowConfig, FlowEnsemble, Preprocessing, train_ensemble
from rooml.validation.bbyy_sideband import DR_RANGE, bbyy_feature_preprocessing

__all__ = ["DemoModels", "VARIATIONS", "features_and_mass", "shifted_ensemble", "train_models"]

#: Variation name -> value of the nuisance parameter nu.
VARIATIONS = {"nominal": 0.0, "low": -1.0, "high": 1.0}


@dataclass
class DemoModels:
    """The trained ensembles and their exported files ``paths[process][variation]``."""

    ensembles: dict  # process -> FlowEnsemble (nominal, rule "mean_log_prob")
    paths: dict  # process -> {"nominal" | "low" | "high": Path}


def features_and_mass(sample) -> tuple[np.ndarray, np.ndarray]:
    """``(x', m)``: the four bbyy features ``(N, 4)`` and the mass ``(N, 1)`` of a sample."""
    return np.column_stack([sample[f] for f in bbyy.FEATURES]), np.asarray(sample[bbyy.MASS])[:, None]


def _training_sample(process: str, events: int, seed: int):
    sample = bbyy.generate(process, events, seed=seed)
    if process == "background":  # HI-SIGMA: the background model never sees the signal region
        sample = sample.select(bbyy.in_sideband(sample[bbyy.MASS]))
    return features_and_mass(sample)


def shifted_ensemble(ensemble: FlowEnsemble, nu: float) -> FlowEnsemble:
    """Return the ensemble at systematic ``nu``: members evaluated at ``pt_bb / (1 + 0.1 nu)``, with Jacobian.

    Parameters
    ----------
    ensemble
        Nominal ensemble with ``pt_bb`` among its features.
    nu
        Value of the nuisance parameter (``bbyy.truth.syst_scale`` per unit).

    Returns
    -------
    FlowEnsemble
        Members share the networks of ``ensemble``; only their preprocessing differs.
    """
    scale = 1.0 + bbyy.truth.syst_scale * nu
    step = Preprocessing(
        [
            {
                "kind": "affine",
                "features": [ensemble.features.index("pt_bb")],
                "shift": [0.0],
                "scale": [scale],
            }
        ],
        ensemble.features,
    )
    rows = []
    for row in ensemble.members:
        rows.append([])
        for member in row:
            moved = copy.copy(member)
            moved.preprocessing = step.then(member.preprocessing)
            rows[-1].append(moved)
    return replace(ensemble, members=rows)


def train_models(
    outdir: str | Path,
    *,
    signal_events: int,
    background_events: int,
    epochs: int,
    bootstraps: int,
    members: int,
    seed: int,
    client=None,
    parallel: bool = True,
    progress: bool = True,
) -> DemoModels:
    """Train the signal and sideband-background ensembles and export nominal and +-1 sigma models.

    Parameters
    ----------
    outdir
        Where ``{signal,background}_{nominal,low,high}.onnx`` are written (overwritten).
    signal_events, background_events
        Simulated events generated per process (the background keeps its sidebands only).
    epochs
        Maximum training epochs (early stopping on a validation split).
    bootstraps, members
        ``D`` bootstrap replicas x ``K`` seeds per process.
    seed
        Root seed of the data and the trainings.
    client, parallel
        Passed to :func:`rooml.models.train_ensemble` (a Dask client, or a LocalCluster when None).
    progress
        Show tqdm bars.

    Returns
    -------
    DemoModels
    """
    from rooml.export import export_ensemble

    outdir = Path(outdir)
    config = FlowConfig(
        features=4,
        context=1,
        kind="coupling",
        layers=4,
        bins=8,
        tail_bound=4.0,
        hidden=32,
        blocks=2,
        lu_linear=True,
        seed=seed,
    )
    support = [(0.0, np.inf), (0.0, np.inf), DR_RANGE, DR_RANGE]
    ensembles, paths = {}, {}
    for i, (process, events) in enumerate((("signal", signal_events), ("background", background_events))):
        x, m = _training_sample(process, events, seed + 10 * i)
        if progress:
            print(f"[rooml demo] {process}: {bootstraps} bootstraps x {members} seeds on {len(x)} events")
        ensemble = train_ensemble(
            config,
            x,
            m,
            members=members,
            bootstraps=bootstraps,
            rule="mean_log_prob",
            seed=seed + 10 * i,
            client=client,
            parallel=parallel,
            progress=progress,
            preprocessing=bbyy_feature_preprocessing(x),
            features=list(bbyy.FEATURES),
            context_names=[bbyy.MASS],
            support=support,
            epochs=epochs,
            batch_size=1024,
            lr=2e-3,
            patience=4,
        )
        ensembles[process] = ensemble
        rng = np.random.default_rng(seed)
        check = (x[rng.integers(0, len(x), 256)], m[rng.integers(0, len(m), 256)])
        paths[process] = {
            name: export_ensemble(
                shifted_ensemble(ensemble, nu) if nu else ensemble,
                outdir / f"{process}_{name}.onnx",
                reference_inputs=check,
                overwrite=True,
            )
            for name, nu in VARIATIONS.items()
        }
    return DemoModels(ensembles, paths)
