"""GP mass plane + conditional kinematics flow: the interpolation background of HH -> 4b.

DESIGN.md method 3. For every data-taking year a Gaussian process is fitted to
the blinded ``(m_H1, m_H2)`` histogram (:mod:`rooml.models.gp`); one
conditional flow ``p(x | m_H1, m_H2, year)`` of the six candidate kinematics
``x = (pt_h1, pt_h2, eta_h1, eta_h2, dphi_hh, x_wt)`` (preprocessed as
``log pT``, ``eta``, ``log(pi - dphi_HH)``, ``log X_Wt``) is trained on the
events of the GP box outside the blinded region, before the ``X_Wt`` cut
(``X_Wt`` is a feature). The prediction in a region:

1. per year, masses are drawn from the GP in the region's bins and kept where
   the event-level region mask holds;
2. the flow draws the kinematics given ``(m_H1, m_H2, year)``; draws outside the
   preselection the flow was trained on (``pt_h2 > pt_h1``, the ``Delta eta``
   cut, ``dphi_hh < 0``) are dropped;
3. the Higgs-candidate four-vectors are rebuilt (``phi_h1`` uniform,
   ``phi_h2 = phi_h1 +- dphi_hh``) and ``m_hh``, ``pt_hh``, ``deta_hh``,
   ``x_hh`` derived exactly as the generator derives them;
4. every event of year ``y`` gets the weight ``n_region(y) / n_drawn(y)`` with
   the GP formula ``n_region = n_obs(not blinded) * S(region) / S(not blinded)``
   (``S`` the GP counts integrated over the bin areas), then the ``X_Wt > 1.5``
   cut is applied.

Replica ``k`` of the :class:`~rooml.hh4b.prediction.Prediction` uses the
``k``-th training of the flow (a Poisson bootstrap of the training set with its
own seed) and the ``k``-th posterior draw of each year's GP, so the replicas'
spread holds both the flow-training and the GP uncertainty.

The flow ensemble exports to one ONNX file (:meth:`InterpolationModel.export`)
and becomes a ``RooFlowPdf`` of the six kinematics conditional on
``m_h1, m_h2, year`` (:meth:`InterpolationModel.roofit_pdf`).

Big inputs stream: :func:`train` accepts an iterable of chunks (for example
:func:`rooml.data.io.iterate_root`); the GP histograms are filled chunk by
chunk and the flow's training set is a bounded uniform subsample (random keys,
the smallest ``max_train_events`` kept), so memory does not grow with the file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rooml._files import atomic_output
from rooml.data import hh4b
from rooml.data._fourvec import wrap_phi
from rooml.data.hh4b import _add_derived
from rooml.hh4b.prediction import Prediction
from rooml.models._loop import torch_threads
from rooml.models.ensembles import FlowEnsemble, train_ensemble
from rooml.models.flows import FlowConfig
from rooml.models.gp import MassPlaneGP, _bin_fraction, fit_histogram

__all__ = [
    "CONTEXT",
    "FEATURES",
    "InterpolationConfig",
    "InterpolationModel",
    "PREPROCESSING",
    "X_WT_CUT",
    "blind_function",
    "fit_box",
    "interpolation_method",
    "reconstruct",
    "train",
]

FEATURES = hh4b.KINEMATICS
CONTEXT = ("m_h1", "m_h2", "year")
PREPROCESSING = {"pt_h1": "log", "pt_h2": "log", "dphi_hh": "log_pi_minus", "x_wt": "log"}
X_WT_CUT = 1.5
"""Top veto: events with ``x_wt < 1.5`` are removed after the flow (the flow is trained before the cut)."""
_MARGIN = 30.0  # GeV of sideband around the blinded region in the GP box
_BIN = 5.0  # GeV
_SUBGRID = 20


@dataclass(frozen=True)
class _RegionBlind:
    """``blind(m1, m2)``: the nominal SR or ``region`` (a picklable callable for the GP fits)."""

    region: str

    def __call__(self, m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
        cols = {"m_h1": m1, "m_h2": m2}
        return hh4b.in_signal_region(m1, m2) | hh4b.region_mask(cols, self.region)


def blind_function(region: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Event-level blinding for a prediction in ``region``: the nominal SR, plus ``region`` itself.

    Parameters
    ----------
    region : str
        A mass region of :data:`rooml.data.hh4b.REGIONS`.

    Returns
    -------
    callable
        ``blind(m1, m2) -> bool array`` (picklable).
    """
    hh4b.region_mask({"m_h1": np.array([124.0]), "m_h2": np.array([117.0])}, region)  # validates the name
    return _RegionBlind(region)


def fit_box(region: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """GP box for ``region``: the blinded region's bounding box plus 30 GeV, on a 5 GeV grid.

    Clipped to the generator's mass range ``[50, 250]`` GeV.

    Parameters
    ----------
    region : str

    Returns
    -------
    ((lo1, hi1), (lo2, hi2))
    """
    grid = np.arange(hh4b.MASS_RANGE[0], hh4b.MASS_RANGE[1] + 0.25, 0.5)
    g1, g2 = np.meshgrid(grid, grid, indexing="ij")
    inside = blind_function(region)(g1, g2)
    out = []
    for g in (g1, g2):
        lo = np.floor((g[inside].min() - _MARGIN) / _BIN) * _BIN
        hi = np.ceil((g[inside].max() + _MARGIN) / _BIN) * _BIN
        out.append((float(max(lo, hh4b.MASS_RANGE[0])), float(min(hi, hh4b.MASS_RANGE[1]))))
    return out[0], out[1]


@dataclass(frozen=True)
class InterpolationConfig:
    """Settings of :func:`train` (defaults run in a few minutes on 2 cores).

    Attributes
    ----------
    members : int
        ``K``, flow trainings (Poisson bootstraps of the training set, one seed
        each); the prediction has ``K`` replicas.
    bootstrap : bool
        Bootstrap the training set per member (else only the seeds differ).
    max_train_events : int
        Size of the flow's training subsample.
    layers, hidden, blocks, spline_bins
        Flow architecture (:class:`~rooml.models.flows.FlowConfig`).
    epochs, batch_size, lr, patience
        Flow optimization (:func:`~rooml.models.train_flow`).
    gp_restarts : int
        Extra optimizer starts of each GP fit.
    samples_per_replica : int
        Mass points drawn per replica and year when predicting.
    seed : int
    """

    members: int = 3
    bootstrap: bool = True
    max_train_events: int = 60_000
    layers: int = 4
    hidden: int = 48
    blocks: int = 2
    spline_bins: int = 8
    epochs: int = 40
    batch_size: int = 512
    lr: float = 2e-3
    patience: int = 6
    gp_restarts: int = 2
    samples_per_replica: int = 50_000
    seed: int = 0

    def flow_config(self) -> FlowConfig:
        """Return the members' architecture."""
        return FlowConfig(
            features=len(FEATURES), context=len(CONTEXT), layers=self.layers, hidden=self.hidden,
            blocks=self.blocks, bins=self.spline_bins, seed=self.seed,
        )  # fmt: skip


def reconstruct(columns: Mapping[str, np.ndarray], rng: int | np.random.Generator | None = None) -> dict:
    """Higgs-candidate four-vectors -> ``m_hh``, ``pt_hh``, ``deta_hh``, ``x_hh`` (the generator's formulas).

    Parameters
    ----------
    columns : mapping of str to numpy.ndarray
        ``m_h1, m_h2``, :data:`FEATURES`; ``phi_h1, phi_h2`` if known, else
        ``phi_h1`` is drawn uniformly and ``phi_h2 = phi_h1 +- dphi_hh``.
    rng : int or numpy.random.Generator, optional
        For the azimuths.

    Returns
    -------
    dict of str to numpy.ndarray
        The input columns plus ``phi_h1, phi_h2`` (if drawn) and the derived ones.
    """
    cols = {k: np.asarray(v, dtype=float) for k, v in columns.items()}
    if "phi_h1" not in cols or "phi_h2" not in cols:
        rng = np.random.default_rng(rng)
        n = len(cols["m_h1"])
        dphi = cols["dphi_hh"]
        cols["phi_h1"] = rng.uniform(-np.pi, np.pi, n)
        cols["phi_h2"] = wrap_phi(cols["phi_h1"] + np.where(rng.random(n) < 0.5, -dphi, dphi))
    _add_derived(cols)
    return cols


def _check_inside_box(gp: MassPlaneGP, region: str) -> None:
    grid = np.arange(hh4b.MASS_RANGE[0], hh4b.MASS_RANGE[1] + 0.25, 0.5)
    g1, g2 = np.meshgrid(grid, grid, indexing="ij")
    inside = hh4b.region_mask({"m_h1": g1, "m_h2": g2}, region)
    (lo1, hi1), (lo2, hi2) = gp.box
    if np.any(inside & ((g1 < lo1) | (g1 > hi1) | (g2 < lo2) | (g2 > hi2))):
        raise ValueError(f"region {region!r} reaches outside the GP box {gp.box} of this model: "
                         f"train a model for it (train(data, {region!r}))")  # fmt: skip


def _passes_preselection(x: Mapping[str, np.ndarray], preselection: str) -> np.ndarray:
    deta = np.abs(x["eta_h1"] - x["eta_h2"])
    cut = deta < hh4b.DETA_CUT if preselection == "pass" else deta >= hh4b.DETA_CUT
    return cut & (x["pt_h2"] <= x["pt_h1"]) & (x["dphi_hh"] >= 0.0)


@dataclass(eq=False)
class InterpolationModel:
    """Per-year GP fits and the conditional kinematics flow ensemble (made by :func:`train`).

    Attributes
    ----------
    gps : dict of int to MassPlaneGP
        One blinded mass-plane fit per year.
    flows : FlowEnsemble
        ``K`` flows ``p(x | m_h1, m_h2, year)`` (``rule="mixture"``).
    region : str
        The region blinded besides the nominal SR (``"SR"``: only the SR).
    preselection : {"pass", "reversed"}
        The Delta-eta preselection of the training data.
    config : InterpolationConfig
    n_train : int
        Events the flows were trained on.
    """

    gps: dict[int, MassPlaneGP]
    flows: FlowEnsemble
    region: str
    preselection: str
    config: InterpolationConfig
    n_train: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_replicas(self) -> int:
        """``K``: replicas of every prediction."""
        return len(self.flows)

    def region_fractions(self, year: int, region: str) -> tuple[np.ndarray, np.ndarray]:
        """``(n1, n2)`` area fractions of each GP bin inside ``region`` and outside the blinding."""
        gp = self.gps[year]
        e1, e2 = gp.edges_m1, gp.edges_m2
        in_region = lambda a, b: hh4b.region_mask({"m_h1": a, "m_h2": b}, region)  # noqa: E731
        inside = _bin_fraction(e1, e2, in_region, _SUBGRID)
        outside = 1.0 - _bin_fraction(e1, e2, gp.blind, _SUBGRID)
        return inside, outside

    def yields(self, region: str, *, seed: int = 0) -> dict[int, np.ndarray]:
        """GP-formula yields of ``region`` before the ``X_Wt`` cut, one per replica and year.

        ``n = n_obs(not blinded) * S(region) / S(not blinded)`` with ``S`` the
        GP counts times the bins' area fractions; replica ``k`` uses the
        ``k``-th posterior draw of the GP (with ``K = 1`` the posterior mean,
        which equals :meth:`MassPlaneGP.sr_normalization` with ``n_samples=None``
        for the SR).

        Parameters
        ----------
        region : str
        seed : int
            Seed of the posterior draws.

        Returns
        -------
        dict of int to numpy.ndarray
            ``{year: (K,) yields}``.
        """
        out = {}
        for year, gp in self.gps.items():
            _check_inside_box(gp, region)
            inside, outside = self.region_fractions(year, region)
            points = gp._points()
            if self.n_replicas == 1:
                counts = gp.predict()[0].ravel()[None, :]
            else:
                draws = gp.regressor.sample_y(points, self.n_replicas, random_state=seed + year)
                counts = (gp.mean_counts(points)[:, None] + gp.scale * draws).T
            counts = np.clip(counts, 0.0, None)
            s_in = counts @ inside.ravel()
            s_out = counts @ outside.ravel()
            out[year] = gp.n_obs_not_sr * s_in / s_out
        return out

    def predict(self, region: str = "SR", *, seed: int = 0, n_samples: int | None = None,
                x_wt_cut: float | None = X_WT_CUT) -> Prediction:  # fmt: skip
        """Predict the background of ``region``: ``K`` replicas of weighted events.

        Parameters
        ----------
        region : str
            A mass region of :data:`rooml.data.hh4b.REGIONS`.
        seed : int
            Seeds the mass draws, the flows' noise, the azimuths and the GP posterior draws.
        n_samples : int, optional
            Mass points per replica and year (default ``config.samples_per_replica``).
        x_wt_cut : float or None
            Keep events with ``x_wt >= x_wt_cut`` (``None``: no cut).

        Returns
        -------
        Prediction
            Columns: masses, kinematics, ``year``, azimuths, ``m_hh``,
            ``pt_hh``, ``deta_hh``, ``x_hh``; method ``"gp+flow"``.
        """
        with torch_threads(1), threadpool_limits(1):  # small dense algebra: threads only contend
            return self._predict(region, seed, int(n_samples or self.config.samples_per_replica), x_wt_cut)

    def _predict(self, region: str, seed: int, n: int, x_wt_cut: float | None) -> Prediction:
        yields = self.yields(region, seed=seed)
        parts, weights, replica = [], [], []
        members = self.flows.flat_members
        for y_index, (year, gp) in enumerate(sorted(self.gps.items())):
            inside, _ = self.region_fractions(year, region)
            bins = inside > 0
            for k, member in enumerate(members):
                rng = np.random.default_rng([seed, 7, y_index, k])
                m1, m2 = gp.sample(n, region=bins, rng=rng)
                keep = hh4b.region_mask({"m_h1": m1, "m_h2": m2}, region)
                m1, m2 = m1[keep], m2[keep]
                ctx = np.column_stack([m1, m2, np.full(m1.size, float(year))])
                x = member.sample(m1.size, ctx, seed=int(rng.integers(2**31)))
                cols = {"m_h1": m1, "m_h2": m2, **{f: x[:, j] for j, f in enumerate(FEATURES)}}
                good = _passes_preselection(cols, self.preselection)
                cols = {c: v[good] for c, v in cols.items()}
                cols["year"] = np.full(int(good.sum()), float(year))
                cols = reconstruct(cols, rng)
                w = np.full(int(good.sum()), yields[year][k] / max(int(good.sum()), 1))
                if x_wt_cut is not None:
                    passed = cols["x_wt"] >= x_wt_cut
                    cols = {c: v[passed] for c, v in cols.items()}
                    w = w[passed]
                parts.append(cols)
                weights.append(w)
                replica.append(np.full(w.size, k))
        events = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        return Prediction("gp+flow", region, events, np.concatenate(weights), np.concatenate(replica))

    def export(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the flow ensemble (mixture rule) as one ONNX file.

        Parameters
        ----------
        path : str or os.PathLike
            ``.onnx`` file; an existing file is replaced only with ``overwrite``.

        Returns
        -------
        pathlib.Path
        """
        from rooml.export import export_ensemble

        return export_ensemble(self.flows, path, rule="mixture", overwrite=overwrite)

    def roofit_pdf(self, model_file: str | os.PathLike, name: str = "hh4b_kinematics"):
        """``RooFlowPdf`` of the six kinematics conditional on ``m_h1, m_h2, year``.

        Parameters
        ----------
        model_file : str or os.PathLike
            Written by :meth:`export`.
        name : str

        Returns
        -------
        ROOT.RooFlowPdf
            Its variables are created from the model's metadata (features named
            as :data:`FEATURES`, context as :data:`CONTEXT`); the masses and
            the year range over the GP boxes and 2016-2018.
        """
        from rooml.roofit.flow import flow_pdf, flow_variables

        lo1 = min(gp.edges_m1[0] for gp in self.gps.values())
        hi1 = max(gp.edges_m1[-1] for gp in self.gps.values())
        lo2 = min(gp.edges_m2[0] for gp in self.gps.values())
        hi2 = max(gp.edges_m2[-1] for gp in self.gps.values())
        ranges = {"m_h1": (lo1, hi1), "m_h2": (lo2, hi2), "year": (min(hh4b.YEARS), max(hh4b.YEARS))}
        features, context = flow_variables(model_file, ranges)
        return flow_pdf(name, model_file, features, context)

    # ------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save to ``directory``: the flows (:meth:`FlowEnsemble.save`), the GPs (pickle), ``model.json``.

        Parameters
        ----------
        directory : str or os.PathLike
            Created; an existing non-empty directory is refused unless ``overwrite``.

        Returns
        -------
        pathlib.Path
        """
        import pickle

        path = Path(directory)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; use --force to replace it")
        path.mkdir(parents=True, exist_ok=True)
        self.flows.save(path / "flows")
        with atomic_output(path / "gps.pkl") as tmp:
            tmp.write_bytes(pickle.dumps(self.gps))
        meta = {"format": "rooml.hh4b.InterpolationModel", "region": self.region,
                "preselection": self.preselection, "config": asdict(self.config), "n_train": self.n_train,
                "info": self.info}  # fmt: skip
        (path / "model.json").write_text(json.dumps(meta, indent=1, default=float))
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> InterpolationModel:
        """Read a directory written by :meth:`save` (the GP pickle must come from a trusted source)."""
        import pickle

        path = Path(directory)
        try:
            meta = json.loads((path / "model.json").read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} is not a saved hh4b interpolation model ({err})") from err
        if meta.get("format") != "rooml.hh4b.InterpolationModel":
            raise ValueError(f"{path} is not a saved hh4b interpolation model")
        gps = pickle.loads((path / "gps.pkl").read_bytes())
        return cls(gps, FlowEnsemble.load(path / "flows"), meta["region"], meta["preselection"],
                   InterpolationConfig(**meta["config"]), meta["n_train"], meta.get("info", {}))  # fmt: skip


# ---------------------------------------------------------------- training
class _Accumulator:
    """Mass-plane histograms per year and a bounded uniform subsample, filled chunk by chunk."""

    def __init__(self, region: str, max_events: int, seed: int):
        self.blind = blind_function(region)
        self.box = fit_box(region)
        (lo1, hi1), (lo2, hi2) = self.box
        self.edges = (np.linspace(lo1, hi1, round((hi1 - lo1) / _BIN) + 1),
                      np.linspace(lo2, hi2, round((hi2 - lo2) / _BIN) + 1))  # fmt: skip
        self.max_events = int(max_events)
        self.rng = np.random.default_rng([seed, 11])
        self.counts: dict[int, np.ndarray] = {}
        self.sumw2: dict[int, np.ndarray] = {}
        self.n_not_blinded: dict[int, float] = {}
        self.keys = np.empty(0)
        self.rows: dict[str, np.ndarray] = {}
        self.n_seen = 0

    def add(self, chunk: Mapping[str, np.ndarray]) -> None:
        m1, m2 = np.asarray(chunk["m_h1"], float), np.asarray(chunk["m_h2"], float)
        year = np.asarray(chunk["year"])
        w = getattr(chunk, "weight", None)
        w = np.ones(m1.size) if w is None else np.asarray(w, float)
        (lo1, hi1), (lo2, hi2) = self.box
        in_box = (m1 >= lo1) & (m1 <= hi1) & (m2 >= lo2) & (m2 <= hi2)
        blinded = np.zeros(m1.size, bool)
        blinded[in_box] = self.blind(m1[in_box], m2[in_box])
        self.n_seen += m1.size
        for y in np.unique(year):
            sel = year == y
            y = int(y)
            c = np.histogram2d(m1[sel], m2[sel], bins=self.edges, weights=w[sel])[0]
            s = np.histogram2d(m1[sel], m2[sel], bins=self.edges, weights=w[sel] ** 2)[0]
            self.counts[y] = self.counts.get(y, 0.0) + c
            self.sumw2[y] = self.sumw2.get(y, 0.0) + s
            self.n_not_blinded[y] = self.n_not_blinded.get(y, 0.0) + float(w[sel & in_box & ~blinded].sum())
        train = in_box & ~blinded
        keys = self.rng.random(int(train.sum()))
        rows = {c: np.asarray(chunk[c], float)[train] for c in (*CONTEXT, *FEATURES)}
        rows["weight"] = w[train]
        self.keys = np.concatenate([self.keys, keys])
        self.rows = {c: np.concatenate([self.rows.get(c, np.empty(0)), v]) for c, v in rows.items()}
        if self.keys.size > self.max_events:
            keep = np.argpartition(self.keys, self.max_events)[: self.max_events]
            keep.sort()
            self.keys = self.keys[keep]
            self.rows = {c: v[keep] for c, v in self.rows.items()}


def _chunks(data: Any) -> Iterable[Mapping[str, np.ndarray]]:
    if isinstance(data, Mapping) or hasattr(data, "columns"):
        return [data]
    return data


def train(
    data: Any,
    region: str = "SR",
    *,
    preselection: str = "pass",
    config: InterpolationConfig | None = None,
    client: Any = None,
    parallel: bool = False,
    progress: bool = True,
) -> InterpolationModel:
    """Fit the per-year GPs and train the conditional flow ensemble.

    Parameters
    ----------
    data : Sample, mapping of str to numpy.ndarray, or iterable of them
        The "observed" events (``m_h1, m_h2, year`` and :data:`FEATURES`), or
        chunks of them (e.g. ``rooml.data.io.iterate_root(path, "4b")``);
        weights are taken from a ``Sample``'s ``weight``.
    region : str
        Region to predict: blinded in the GP fits and excluded from the flow
        training together with the nominal SR.
    preselection : {"pass", "reversed"}
        The Delta-eta preselection the data passed (the predicted events obey it too).
    config : InterpolationConfig, optional
    client : distributed.Client, optional
        Train the ``K`` flows on this Dask client.
    parallel : bool
        Without ``client``: ``True`` starts a LocalCluster for the ``K``
        trainings, ``False`` trains them serially here.
    progress : bool

    Returns
    -------
    InterpolationModel
    """
    config = config or InterpolationConfig()
    if preselection not in ("pass", "reversed"):
        raise ValueError(f"preselection must be 'pass' or 'reversed', not {preselection!r}")
    acc = _Accumulator(region, config.max_train_events, config.seed)
    for chunk in _chunks(data):
        missing = [c for c in (*CONTEXT, *FEATURES) if c not in chunk]
        if missing:
            raise ValueError(f"the hh4b data lack the columns {missing}")
        acc.add(chunk)
    if not acc.counts:
        raise ValueError("no events in the hh4b data")
    if acc.keys.size < 100:
        raise ValueError(f"only {acc.keys.size} events in the GP box outside the blinded region: too few "
                         "to train the kinematics flow")  # fmt: skip
    gps = {}
    for year in sorted(acc.counts):
        counts = np.where(np.isfinite(acc.counts[year]), acc.counts[year], 0.0)
        gps[year] = fit_histogram(
            counts, acc.edges, variances=acc.sumw2[year], blind=acc.blind, year=year, seed=config.seed,
            n_obs_not_sr=acc.n_not_blinded[year], restarts=config.gp_restarts,
        )  # fmt: skip
    x = np.column_stack([acc.rows[c] for c in FEATURES])
    ctx = np.column_stack([acc.rows[c] for c in CONTEXT])
    k = config.members
    flows = train_ensemble(
        config.flow_config(), x, ctx, acc.rows["weight"], members=1 if config.bootstrap else k,
        bootstraps=k if config.bootstrap else 1, bootstrap="poisson" if config.bootstrap else None,
        rule="mixture", seed=config.seed, client=client, parallel=parallel, progress=progress,
        preprocessing=dict(PREPROCESSING), features=list(FEATURES), context_names=list(CONTEXT),
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, patience=config.patience,
    )  # fmt: skip
    info = {"n_events_read": acc.n_seen, "box": acc.box}
    return InterpolationModel(gps, flows, region, preselection, config, int(acc.keys.size), info)


def _train_and_predict(sample: Any, region: str, train_kwargs: dict, seed: int) -> Prediction:
    return train(sample, region, **train_kwargs).predict(region, seed=seed)


def interpolation_method(
    region: str = "SR", *, seed: int = 0, **train_kwargs: Any
) -> Callable[[Any], Prediction]:
    """Return the GP + flow method as a picklable callable ``4b sample -> Prediction`` of ``region``.

    Every call trains on the given sample (e.g. a hemisphere-mixed dataset of
    :mod:`rooml.hh4b.mixing`) and predicts ``region``.

    Parameters
    ----------
    region : str
    seed : int
        Prediction seed.
    **train_kwargs
        Passed to :func:`train` (``config``, ``preselection``...; ``progress`` defaults to False).

    Returns
    -------
    callable
    """
    import functools

    train_kwargs.setdefault("progress", False)
    return functools.partial(_train_and_predict, region=region, train_kwargs=train_kwargs, seed=seed)
