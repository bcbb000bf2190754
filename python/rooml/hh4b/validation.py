"""Validation of the HH -> 4b background methods against data and against the exact truth.

The paper's two tables, for every validation region and every method:

* yields: observed events, the prediction with its replica error, ``1 - pred/obs``
  in %, and -- because the generator knows the truth -- the true expected yield
  and the prediction's deviation from it (``pred/true - 1`` and its pull);
* shapes: ``chi2 / (bins - 1)`` of the prediction (normalized to the observed
  yield) against the observed histogram for every kinematic variable and for
  the ``m_HH x Delta eta x X_HH`` categories, with the statistical and the
  prediction (replica) errors added in quadrature; and against the true shape.

Validation regions (:data:`VALIDATION_REGIONS`): the nominal SR, the four
shifted SRs, a 3b-like region (the 3b category playing the data, SR) and the
reversed-Delta-eta region (the 4b category with ``|Delta eta| >= 1.5``, SR).
All numbers count events after the ``X_Wt >= 1.5`` cut.

A method is a callable ``method(region, data) -> Prediction`` with ``region`` a
:class:`ValidationRegion` and ``data`` the :class:`ValidationData` (observed
samples of every category and preselection); :func:`gp_flow_method` makes the
interpolation one,
:func:`reweighting_validation_method` the 2b -> 4b reweighting one.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rooml.data import Sample, hh4b
from rooml.data._hh4b_regions import SHIFTED_CENTRES, SR_CENTRE
from rooml.hh4b.interpolation import X_WT_CUT, InterpolationConfig
from rooml.hh4b.interpolation import train as train_interpolation
from rooml.hh4b.prediction import Prediction

__all__ = [
    "CATEGORY_BINS",
    "VALIDATION_REGIONS",
    "VARIABLES",
    "RegionResult",
    "TruthExpectation",
    "ValidationData",
    "ValidationRegion",
    "add_category",
    "chi2_shape",
    "compare_region",
    "format_chi2_table",
    "format_yield_table",
    "gp_flow_method",
    "plot_mhh",
    "quantile_edges",
    "reweighting_validation_method",
    "run_validation",
    "yield_row",
]

VARIABLES = ("m_hh", "pt_hh", "deta_hh", "pt_h1", "pt_h2", "eta_h1", "eta_h2", "dphi_hh", "x_wt")
"""Columns whose shapes enter the chi2 table (plus ``category``)."""
CATEGORY_BINS = (4, 3, 2)
"""Quantile bins of ``m_hh``, ``|Delta eta|`` and ``X_HH`` (around the region's centre): the categories."""


@dataclass(frozen=True)
class ValidationRegion:
    """A validation region: which category plays the data, its preselection, and the mass region."""

    name: str
    process: str
    preselection: str
    mass_region: str

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of the mass region's ellipse (for ``X_HH`` categories)."""
        if self.mass_region.startswith("SR_"):
            return SHIFTED_CENTRES[self.mass_region[3:]]
        return SR_CENTRE


VALIDATION_REGIONS: dict[str, ValidationRegion] = {
    r.name: r
    for r in (
        ValidationRegion("SR", "4b", "pass", "SR"),
        *(ValidationRegion(f"SR_{k}", "4b", "pass", f"SR_{k}") for k in SHIFTED_CENTRES),
        ValidationRegion("3b", "3b", "pass", "SR"),
        ValidationRegion("reversed_deta", "4b", "reversed", "SR"),
    )
}


def _selection(events: Mapping[str, np.ndarray], region: ValidationRegion) -> np.ndarray:
    return hh4b.region_mask(events, region.mass_region) & (np.asarray(events["x_wt"]) >= X_WT_CUT)


@dataclass
class TruthExpectation:
    """The true expected yield of a region and a large truth sample of its events.

    ``events`` are weighted so that they sum to ``expected``; ``error`` is the
    Monte Carlo error of ``expected`` (binomial, from the truth sample size).
    """

    expected: float
    error: float
    events: Sample


class ValidationData:
    """The observed samples ("data") of every category and preselection, and the truth expectations.

    Parameters
    ----------
    n_events : int
        Events per observed dataset (one dataset per ``(process, preselection)``).
    seed : int
        Dataset ``(process, preselection)`` uses ``default_rng([seed, k, p])``.
    truth_events : int
        Size of the truth sample per dataset (generated in chunks; only region events are kept).
    source_factor : float
        2b datasets (the reweighting's source) have ``source_factor * n_events`` events.
    """

    def __init__(self, n_events: int, seed: int = 0, *, truth_events: int = 2_000_000,
                 source_factor: float = 1.0, chunk_size: int = 500_000):  # fmt: skip
        if n_events < 1 or truth_events < 1:
            raise ValueError(f"n_events and truth_events must be positive, got {n_events}, {truth_events}")
        self.n_events, self.seed = int(n_events), int(seed)
        self.truth_events, self.source_factor, self.chunk_size = int(truth_events), source_factor, chunk_size
        self._data: dict[tuple[str, str], Sample] = {}
        self._truth: dict[tuple[str, str], Sample] = {}

    def size(self, process: str) -> int:
        """Events of the observed dataset of ``process``."""
        return int(round(self.n_events * (self.source_factor if process == "2b" else 1.0)))

    def dataset(self, process: str, preselection: str = "pass") -> Sample:
        """Return the observed events of a category (generated once, then cached)."""
        key = (process, preselection)
        if key not in self._data:
            k, p = hh4b.PROCESSES.index(process), ("pass", "reversed").index(preselection)
            rng = np.random.default_rng([self.seed, k, p])
            self._data[key] = hh4b.generate(process, self.size(process), rng, preselection=preselection)
        return self._data[key]

    def observed(self, region: ValidationRegion) -> Sample:
        """Observed events of ``region`` (mass region and ``X_Wt`` cut)."""
        data = self.dataset(region.process, region.preselection)
        return data.select(_selection(data, region))

    def truth(self, region: ValidationRegion) -> TruthExpectation:
        """``N_data * P(region)`` from a large truth sample of the dataset's process and preselection."""
        key = (region.process, region.preselection)
        if key not in self._truth:
            near = []
            rng = np.random.default_rng([self.seed, 1000 + hh4b.PROCESSES.index(region.process)])
            for start in range(0, self.truth_events, self.chunk_size):
                n = min(self.chunk_size, self.truth_events - start)
                chunk = hh4b.generate(region.process, n, rng, preselection=region.preselection)
                keep = np.zeros(n, bool)
                for r in VALIDATION_REGIONS.values():
                    keep |= _selection(chunk, r)
                near.append(chunk.select(keep))
            from rooml.data import concatenate

            self._truth[key] = concatenate(near)
        sample = self._truth[key]
        sample = sample.select(_selection(sample, region))
        p = len(sample) / self.truth_events
        n_data = self.size(region.process)
        scale = n_data / self.truth_events
        error = n_data * math.sqrt(p * (1 - p) / self.truth_events)
        return TruthExpectation(n_data * p, error, Sample(sample.columns, np.full(len(sample), scale)))


# ---------------------------------------------------------------- binning and statistics
def quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-population bin edges of ``values``, the outer edges at +-infinity.

    Parameters
    ----------
    values : numpy.ndarray
    n_bins : int

    Returns
    -------
    numpy.ndarray
        ``n_bins + 1`` increasing edges (fewer bins if ``values`` has ties).
    """
    values = np.asarray(values, float)
    if values.size == 0:
        raise ValueError("cannot make quantile bins of an empty sample")
    inner = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def add_category(events: Mapping[str, np.ndarray], edges: Sequence[np.ndarray],
                 centre: tuple[float, float]) -> dict[str, np.ndarray]:  # fmt: skip
    """Add ``category``: the flat index of the ``m_hh x |Delta eta| x X_HH`` cell of every event.

    Parameters
    ----------
    events : mapping of str to numpy.ndarray
        Needs ``m_hh``, ``deta_hh``, ``m_h1``, ``m_h2``.
    edges : (m_hh edges, Delta-eta edges, X_HH edges)
        Outer edges at +-infinity (see :func:`quantile_edges`).
    centre : (float, float)
        Mass centre of ``X_HH``.

    Returns
    -------
    dict of str to numpy.ndarray
        The columns plus ``category`` (``0 ... n_m * n_deta * n_xhh - 1``).
    """
    cols = dict(events)
    values = (cols["m_hh"], np.abs(cols["deta_hh"]), hh4b.x_hh(cols["m_h1"], cols["m_h2"], centre))
    index = np.zeros(len(values[0]), int)
    for v, e in zip(values, edges):
        b = np.clip(np.searchsorted(e, v, side="right") - 1, 0, len(e) - 2)
        index = index * (len(e) - 1) + b
    cols["category"] = index.astype(float)
    return cols


def chi2_shape(counts: np.ndarray, variances: np.ndarray, reference: np.ndarray,
               reference_variances: np.ndarray, *, normalize: bool = True) -> tuple[float, int]:  # fmt: skip
    """``chi2`` of two histograms and its number of degrees of freedom.

    ``chi2 = sum_i (counts_i - s ref_i)^2 / (var_i + s^2 refvar_i)`` over bins
    with a positive denominator, ``s = sum counts / sum ref`` (shape
    comparison, ``ndf = bins - 1``) or ``s = 1`` (``ndf = bins``).

    Parameters
    ----------
    counts, variances : numpy.ndarray
        E.g. observed counts and their (Poisson) variances.
    reference, reference_variances : numpy.ndarray
        E.g. the predicted counts and the square of their replica spread.
    normalize : bool

    Returns
    -------
    chi2 : float
    ndf : int
    """
    counts, variances, reference, reference_variances = (
        np.asarray(a, float) for a in (counts, variances, reference, reference_variances)
    )
    s = counts.sum() / reference.sum() if normalize else 1.0
    denominator = variances + s * s * reference_variances
    use = denominator > 0
    chi2 = float(np.sum((counts[use] - s * reference[use]) ** 2 / denominator[use]))
    return chi2, int(use.sum()) - (1 if normalize else 0)


def yield_row(observed: float, truth: TruthExpectation | None, predictions: Mapping[str, Prediction]) -> dict:
    """Numbers of one line of the yields table.

    Parameters
    ----------
    observed : float
        Observed (weighted) events.
    truth : TruthExpectation or None
    predictions : mapping of method name to Prediction

    Returns
    -------
    dict
        ``observed``, ``truth``, ``truth_error`` and per method ``{name: {"yield", "error",
        "obs_diff_pct" (1 - pred/obs in %), "truth_diff_pct" (pred/true - 1 in %),
        "truth_pull" ((pred - true) / sqrt(error^2 + truth_error^2))}}``.
    """
    row: dict[str, Any] = {"observed": float(observed)}
    if truth is not None:
        row.update(truth=truth.expected, truth_error=truth.error)
    for name, pred in predictions.items():
        value, error = pred.yield_and_error()
        entry = {"yield": value, "error": error, "obs_diff_pct": 100.0 * (1.0 - value / observed)}
        if truth is not None:
            entry["truth_diff_pct"] = 100.0 * (value / truth.expected - 1.0)
            sigma = math.hypot(error, truth.error)
            entry["truth_pull"] = (value - truth.expected) / sigma if sigma > 0 else math.inf
        row[name] = entry
    return row


# ---------------------------------------------------------------- one region
@dataclass
class RegionResult:
    """Everything the tables and plots need for one region.

    Attributes
    ----------
    yields : dict
        :func:`yield_row`.
    chi2 : dict
        ``{method: {variable: {"obs": chi2/(bins-1) with stat+pred errors, "obs_stat": stat only,
        "truth": against the true shape (pred + truth-MC errors), "p_obs": p-value of "obs"}}}``.
    edges : dict
        Binning of every variable (outer edges infinite).
    """

    region: ValidationRegion
    yields: dict
    chi2: dict
    edges: dict
    observed: Sample = field(repr=False)
    truth: TruthExpectation | None = field(repr=False)
    predictions: dict[str, Prediction] = field(repr=False)


def _histogram(sample: Sample | Prediction, column: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return counts and variances: replica spread^2 for a Prediction, sum w^2 for a Sample."""
    if isinstance(sample, Prediction):
        mean, spread = sample.histogram(column, edges)
        return mean, spread**2
    values, w = np.asarray(sample[column], float), sample.weight
    return np.histogram(values, edges, weights=w)[0], np.histogram(values, edges, weights=w * w)[0]


def compare_region(region: ValidationRegion, observed: Sample, truth: TruthExpectation | None,
                   predictions: Mapping[str, Prediction], *, n_bins: int = 12) -> RegionResult:  # fmt: skip
    """Compare the predictions of one region with the observed data and the truth (yields, shapes).

    Parameters
    ----------
    region : ValidationRegion
    observed : Sample
        Observed events of the region (after the ``X_Wt`` cut).
    truth : TruthExpectation or None
    predictions : mapping of method name to Prediction
        Events failing the region's mass selection or the ``X_Wt`` cut are dropped.
    n_bins : int
        Quantile bins (of the observed events) per variable.

    Returns
    -------
    RegionResult
    """
    if len(observed) < 2 * n_bins:
        raise ValueError(f"only {len(observed)} observed events in region {region.name!r}: too few for "
                         f"{n_bins} bins")  # fmt: skip
    cat_edges = [quantile_edges(v, n) for v, n in zip(
        (observed["m_hh"], np.abs(observed["deta_hh"]),
         hh4b.x_hh(observed["m_h1"], observed["m_h2"], region.centre)), CATEGORY_BINS)]  # fmt: skip
    n_cat = int(np.prod([len(e) - 1 for e in cat_edges]))
    obs = Sample(add_category(observed.columns, cat_edges, region.centre), observed.weight)
    preds = {}
    for name, p in predictions.items():
        p = p.select(_selection(p.events, region))
        preds[name] = Prediction(p.method, region.name, add_category(p.events, cat_edges, region.centre),
                                 p.weights, p.replica)  # fmt: skip
    tru = None
    if truth is not None:
        tru = Sample(add_category(truth.events.columns, cat_edges, region.centre), truth.events.weight)
    edges = {v: quantile_edges(obs[v], n_bins) for v in VARIABLES}
    edges["category"] = np.arange(n_cat + 1) - 0.5
    chi2: dict[str, dict] = {}
    for name, pred in preds.items():
        chi2[name] = {}
        for column, e in edges.items():
            o, ov = _histogram(obs, column, e)
            p, pv = _histogram(pred, column, e)
            c_all, ndf = chi2_shape(o, ov, p, pv)
            c_stat, _ = chi2_shape(o, ov, p, np.zeros_like(pv))
            entry = {"obs": c_all / ndf, "obs_stat": c_stat / ndf, "p_obs": float(stats.chi2.sf(c_all, ndf))}
            if tru is not None:
                t, tv = _histogram(tru, column, e)
                c_true, ndf_t = chi2_shape(t, tv, p, pv)
                entry["truth"] = c_true / ndf_t
                entry["p_truth"] = float(stats.chi2.sf(c_true, ndf_t))
            chi2[name][column] = entry
    row = yield_row(float(obs.weight.sum()), truth, preds)
    return RegionResult(region, row, chi2, edges, obs, truth, preds)


# ---------------------------------------------------------------- the methods
Method = Callable[[ValidationRegion, ValidationData], Prediction]


def gp_flow_method(config: InterpolationConfig | None = None, *, client: Any = None, parallel: bool = False,
                   progress: bool = False, seed: int = 0) -> Method:  # fmt: skip
    """Return the GP + flow interpolation as a validation method.

    For every region, the GPs are refitted and the flows retrained with the
    region blinded (together with the nominal SR) on the region's dataset.

    Parameters
    ----------
    config : InterpolationConfig, optional
    client, parallel, progress
        Passed to :func:`rooml.hh4b.interpolation.train`.
    seed : int
        Prediction seed.

    Returns
    -------
    callable
        ``method(region, data) -> Prediction``.
    """

    def method(region: ValidationRegion, data: ValidationData) -> Prediction:
        model = train_interpolation(
            data.dataset(region.process, region.preselection), region.mass_region,
            preselection=region.preselection, config=config, client=client, parallel=parallel,
            progress=progress,
        )  # fmt: skip
        return model.predict(region.mass_region, seed=seed)

    return method


def reweighting_validation_method(**options: Any) -> Method:
    """Return the 2b -> 4b reweighting (:mod:`rooml.hh4b.reweighting`) as a validation method.

    The reweighter is trained on the region's dataset (target) and the 2b
    dataset of the same preselection (source), once per dataset, and predicts
    the region from the 2b events.

    Parameters
    ----------
    **options
        Passed to :func:`rooml.hh4b.reweighting.train_reweighting` (``replicas``, ``epochs``...).

    Returns
    -------
    callable
        ``method(region, data) -> Prediction``.
    """
    from rooml.hh4b.reweighting import train_reweighting

    cache: dict[tuple[str, str], Any] = {}

    def method(region: ValidationRegion, data: ValidationData) -> Prediction:
        key = (region.process, region.preselection)
        source = data.dataset("2b", region.preselection)
        if key not in cache:
            cache[key] = train_reweighting(data.dataset(*key), source, **options)
        return cache[key].predict(source, region.mass_region)

    return method


def run_validation(
    methods: Mapping[str, Method],
    data: ValidationData,
    regions: Sequence[str] | None = None,
    *,
    n_bins: int = 12,
    plot_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, RegionResult]:
    """Run every method in every region and compare with the observed data and the truth.

    Parameters
    ----------
    methods : mapping of name to callable
        ``method(region, data) -> Prediction``.
    data : ValidationData
    regions : sequence of str, optional
        Names in :data:`VALIDATION_REGIONS` (default: all).
    n_bins : int
        Bins per variable.
    plot_dir : str or pathlib.Path, optional
        Write ``mhh_<region>.png`` there.
    progress : bool

    Returns
    -------
    dict of str to RegionResult
    """
    from tqdm.auto import tqdm

    names = list(regions or VALIDATION_REGIONS)
    unknown = [r for r in names if r not in VALIDATION_REGIONS]
    if unknown:
        raise ValueError(f"unknown validation regions {unknown}; choose from {list(VALIDATION_REGIONS)}")
    out = {}
    for name in tqdm(names, desc="validation regions", disable=not progress):
        region = VALIDATION_REGIONS[name]
        predictions = {m: method(region, data) for m, method in methods.items()}
        observed, truth = data.observed(region), data.truth(region)
        out[name] = compare_region(region, observed, truth, predictions, n_bins=n_bins)
        if plot_dir is not None:
            plot_mhh(out[name], Path(plot_dir) / f"mhh_{name}.png")
    return out


# ---------------------------------------------------------------- tables
def format_yield_table(results: Mapping[str, RegionResult]) -> str:
    """Return the yields table (markdown): observed, truth, predictions, 1 - pred/obs, pred/true - 1 (%)."""
    methods = list(next(iter(results.values())).predictions)
    head = ["region", "observed", "true expected"]
    for m in methods:
        head += [f"{m}", f"{m}: 1-pred/obs [%]", f"{m}: pred/true-1 [%] (pull)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in results.items():
        y = res.yields
        cells = [name, f"{y['observed']:.0f}",
                 f"{y['truth']:.1f} ± {y['truth_error']:.1f}" if "truth" in y else "-"]  # fmt: skip
        for m in methods:
            e = y[m]
            cells += [f"{e['yield']:.1f} ± {e['error']:.1f}", f"{e['obs_diff_pct']:+.2f}"]
            truth = f"{e['truth_diff_pct']:+.2f} ({e['truth_pull']:+.1f}σ)" if "truth_diff_pct" in e else "-"
            cells.append(truth)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_chi2_table(results: Mapping[str, RegionResult], key: str = "obs") -> str:
    """Return the markdown table of ``chi2/(bins - 1)`` per region, method and variable.

    Parameters
    ----------
    results : mapping of str to RegionResult
    key : {"obs", "obs_stat", "truth"}
        Against the observed data with stat + prediction errors, stat only, or against the true shape.
    """
    first = next(iter(results.values()))
    columns = list(first.edges)
    head = ["region", "method", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in results.items():
        for m, table in res.chi2.items():
            cells = [name, m] + [f"{table[c][key]:.2f}" if key in table[c] else "-" for c in columns]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- plots
def plot_mhh(result: RegionResult, path: str | Path, *, bins: int = 20) -> Path:
    """``m_HH`` of the observed data, the truth and each prediction with its replica band, and ratios.

    Parameters
    ----------
    result : RegionResult
    path : str or pathlib.Path
        Output image (parents created; an existing file is replaced).
    bins : int
        Equal-width bins between the observed 0.5 % and 99.5 % quantiles.

    Returns
    -------
    pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    from rooml.models.gp import _style_context

    lo, hi = np.quantile(result.observed["m_hh"], [0.005, 0.995])
    edges = np.linspace(lo, hi, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    obs, obs_var = _histogram(result.observed, "m_hh", edges)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _style_context(hep):
        fig, (ax, rax) = plt.subplots(2, 1, figsize=(9, 8), sharex=True,
                                      gridspec_kw={"height_ratios": (3, 1)})  # fmt: skip
        ax.errorbar(centres, obs, yerr=np.sqrt(obs_var), fmt="ko", ms=4, label="observed")
        if result.truth is not None:
            t, _ = _histogram(result.truth.events, "m_hh", edges)
            hep.histplot(t, edges, ax=ax, color="k", ls="--", label="true expectation")
            rax.stairs(np.divide(t, obs, out=np.ones_like(t), where=obs > 0), edges, color="k", ls="--")
        for (name, pred), color in zip(result.predictions.items(), ("tab:blue", "tab:orange", "tab:green")):
            mean, spread = pred.histogram("m_hh", edges)
            hep.histplot(mean, edges, ax=ax, color=color, label=name)
            ax.stairs(mean + spread, edges, baseline=mean - spread, fill=True, alpha=0.3, color=color)
            safe = np.where(obs > 0, obs, 1.0)
            rax.stairs((mean + spread) / safe, edges, baseline=(mean - spread) / safe, fill=True, alpha=0.3,
                       color=color)  # fmt: skip
            rax.stairs(mean / safe, edges, color=color)
        rax.axhline(1.0, color="gray", lw=1)
        rax.set_ylim(0.7, 1.3)
        rax.set_ylabel("pred / obs")
        rax.set_xlabel(r"$m_{HH}$ [GeV]")
        ax.set_ylabel("events / bin")
        ax.set_title(f"region {result.region.name}", loc="left", fontsize=15)
        ax.legend()
        try:
            fig.savefig(path, bbox_inches="tight", dpi=80)
        finally:
            plt.close(fig)
    return path
