"""HI-SIGMA against the strategies it replaces, on :mod:`rooml.data.bbyy` mock datasets.

Four estimates of the signal strength mu from the same mock dataset, each with
its profile-likelihood error sigma(mu):

* ``hisigma``: the unbinned HI-SIGMA likelihood
  ``Pois(N|s+b) prod_i [s P_s(m) P_s(x'|m) + b P_b(m) P_b(x'|m)]/(s+b)`` with the exact
  feature densities of the generator (the limit of perfectly trained flows) and the
  background mass shape's ``p1, p2`` free;
* ``mass_only``: the same without the features (a classic bump hunt);
* ``cut_and_mass``: a classifier on the features ``x'`` (sklearn MLP, trained on
  signal vs background simulation in the signal region), a score cut that maximizes
  ``S/sqrt(B)`` in the signal region, then the mass fit of the selected events;
* ``binned_score``: a classifier on ``(x', m)``, the signal-region events binned in
  its score (50 bins), fitted with signal and background templates from large
  simulation samples of the known truth (as in the HI-SIGMA paper).

The fits are small numpy likelihoods minimized with scipy: an independent
reference for the RooFit model of :mod:`rooml.roofit.hisigma`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize

from rooml.data import bbyy

__all__ = [
    "METHODS",
    "BaselineResult",
    "Classifiers",
    "compare_on_dataset",
    "profile_fit",
    "train_classifiers",
]

METHODS = ("hisigma", "mass_only", "cut_and_mass", "binned_score")


@dataclass
class BaselineResult:
    """mu_hat and its profile-likelihood error (half the width of the t = 1 interval) for one method."""

    method: str
    mu_hat: float
    sigma: float
    events: int  # events entering the fit (after cuts / region)

    def as_dict(self) -> dict:
        """Plain-dict form (JSON-able)."""
        return asdict(self)


def profile_fit(nll, start: np.ndarray, bounds: list, step: float) -> tuple[float, float]:
    """Minimize ``nll(params)`` (``params[0]`` is mu) and return ``(mu_hat, sigma)``.

    ``sigma`` is ``step * sqrt(2 / (t(mu_hat - step) + t(mu_hat + step)))`` with
    ``t = 2 (NLL_profiled(mu) - NLL_min)``: the parabola through the profile
    likelihood at ``mu_hat +- step`` (exact for a Gaussian likelihood), computed
    twice, the second time with ``step`` = the first sigma.
    """
    best = minimize(nll, start, method="L-BFGS-B", bounds=bounds)
    mu_hat = float(best.x[0])
    for _ in range(2):  # the second pass probes at +-1 sigma of the first
        t = []
        for mu in (mu_hat - step, mu_hat + step):
            rest = minimize(
                lambda p: nll(np.concatenate([[mu], p])), best.x[1:], method="L-BFGS-B", bounds=bounds[1:]
            )
            t.append(2.0 * (min(rest.fun, nll(np.concatenate([[mu], best.x[1:]]))) - best.fun))
        step = float(step * np.sqrt(2.0 / max(sum(t), 1e-12)))
    return mu_hat, step


def _mass_log_pdfs(m: np.ndarray, p1: float, p2: float) -> tuple[np.ndarray, np.ndarray]:
    return bbyy.truth.log_prob_m(m, "signal"), bbyy.BbyyModel(p1=p1, p2=p2).log_prob_m(m, "background")


def _unbinned_fit(m, log_fs, log_fb, s_expected: float, step: float) -> tuple[float, float]:
    """Fit mu, b, p1, p2 (extended, unbinned) with per-event feature log-densities ``log_fs``, ``log_fb``."""
    n = len(m)

    def nll(p):
        mu, beta, p1, p2 = p  # b = beta * n keeps every parameter of order one for the minimizer
        ls, lb = _mass_log_pdfs(m, p1, p2)
        density = mu * s_expected * np.exp(ls + log_fs) + beta * n * np.exp(lb + log_fb)
        return float(mu * s_expected + beta * n - np.sum(np.log(np.maximum(density, 1e-300))))

    start = np.array([1.0, 1.0, bbyy.truth.p1, bbyy.truth.p2])
    bounds = [(-5.0, 50.0), (0.5, 1.5), (-20.0, 20.0), (-20.0, 20.0)]
    return profile_fit(nll, start, bounds, step)


@dataclass
class Classifiers:
    """The two classifiers of the baselines and the choices made with simulation."""

    features_only: object  # sklearn pipeline on x' (for the cut: leaves the background mass shape smooth)
    with_mass: object  # sklearn pipeline on (x', m) (for the binned score fit)
    cut: float  # score cut on features_only
    efficiency: float  # signal efficiency of the cut over the whole mass range
    signal_template: np.ndarray  # binned_score templates (normalized), signal region
    background_template: np.ndarray
    signal_region_fraction: float  # P_s(m in SR)
    bins: np.ndarray


def _inputs(sample, with_mass: bool) -> np.ndarray:
    cols = [np.log(sample["pt_bb"]), np.log(sample["pt_yy_over_m_yy"]), sample["dr_bb"], sample["dr_yy"]]
    if with_mass:
        cols.append(sample[bbyy.MASS])
    return np.column_stack(cols)


def _mlp(x, y, seed: int):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=60, early_stopping=True, random_state=seed),
    )
    with warnings.catch_warnings():  # the epoch cap (max_iter) is deliberate: its warning says nothing new
        warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")
        return clf.fit(x, y)


def _score(clf, sample, with_mass: bool) -> np.ndarray:
    return clf.predict_proba(_inputs(sample, with_mass))[:, 1]


def train_classifiers(
    n_train: int,
    *,
    s_expected: float,
    b_expected: float,
    n_templates: int = 200_000,
    bins: int = 50,
    seed: int = 1,
) -> Classifiers:
    """Train both classifiers on signal-region simulation, choose the cut, build the score templates.

    Parameters
    ----------
    n_train
        Simulated events per class in the signal region for training.
    s_expected, b_expected
        Expected signal and background yields of a mock dataset (whole mass range): the cut
        maximizes ``S/sqrt(B)`` for them.
    n_templates
        Simulated events per process for the cut choice and the templates (independent of training).
    bins
        Score bins of the template fit.
    seed
        Seed of the simulation and the classifiers.
    """

    def simulate(process, n, s):
        sample = bbyy.generate(process, n, seed=s)
        return sample.select(bbyy.in_signal_region(sample[bbyy.MASS]))

    b_fraction = bbyy.truth.mass_fraction("background", *bbyy.SIGNAL_REGION)
    s_fraction = bbyy.truth.mass_fraction("signal", *bbyy.SIGNAL_REGION)
    sig = simulate("signal", int(n_train / s_fraction) + 1, seed)
    bkg = simulate("background", int(n_train / b_fraction) + 1, seed + 1)
    y = np.r_[np.ones(len(sig)), np.zeros(len(bkg))]
    classifiers = {}
    for with_mass in (False, True):
        x = np.vstack([_inputs(sig, with_mass), _inputs(bkg, with_mass)])
        classifiers[with_mass] = _mlp(x, y, seed)

    sig_all = bbyy.generate("signal", n_templates, seed=seed + 2)
    bkg_sr = simulate("background", int(n_templates / b_fraction) + 1, seed + 3)
    sig_sr = sig_all.select(bbyy.in_signal_region(sig_all[bbyy.MASS]))
    # the cut: maximize S/sqrt(B) in the signal region, with at least 5 background events left
    s_scores = _score(classifiers[False], sig_sr, False)
    b_scores = _score(classifiers[False], bkg_sr, False)
    cuts = np.quantile(b_scores, np.linspace(0.5, 0.9999, 400))
    s_pass = np.array([np.mean(s_scores > c) for c in cuts]) * s_expected * s_fraction
    b_pass = np.array([np.mean(b_scores > c) for c in cuts]) * b_expected * b_fraction
    significance = np.where(b_pass >= 5.0, s_pass / np.sqrt(np.maximum(b_pass, 1e-9)), 0.0)
    cut = float(cuts[int(np.argmax(significance))])
    efficiency = float(np.mean(_score(classifiers[False], sig_all, False) > cut))

    edges = np.linspace(0.0, 1.0, bins + 1)
    t_s = np.histogram(_score(classifiers[True], sig_sr, True), edges)[0].astype(float)
    t_b = np.histogram(_score(classifiers[True], bkg_sr, True), edges)[0].astype(float)
    t_b = np.maximum(t_b, 0.5)  # empty simulation bins: a tiny expectation instead of zero
    return Classifiers(
        classifiers[False],
        classifiers[True],
        cut,
        efficiency,
        t_s / t_s.sum(),
        t_b / t_b.sum(),
        s_fraction,
        edges,
    )


def _binned_fit(counts, t_s, t_b, s_sr: float, step: float) -> tuple[float, float]:
    n = counts.sum()

    def nll(p):
        mu, beta = p
        expected = np.maximum(mu * s_sr * t_s + beta * n * t_b, 1e-300)
        return float(np.sum(expected - counts * np.log(expected)))

    return profile_fit(nll, np.array([1.0, 1.0]), [(-20.0, 50.0), (0.5, 1.5)], step)


def compare_on_dataset(mock, classifiers: Classifiers, *, s_expected: float) -> dict[str, BaselineResult]:
    """Fit one mock dataset with the four methods.

    Parameters
    ----------
    mock
        A :func:`rooml.data.bbyy.make_mock` sample.
    classifiers
        From :func:`train_classifiers`.
    s_expected
        Signal yield at mu = 1.

    Returns
    -------
    dict of str to BaselineResult
        Keyed by :data:`METHODS`.
    """
    m = np.asarray(mock[bbyy.MASS])
    step = 0.3
    out = {}
    log_fs = bbyy.truth.log_prob_features(mock, "signal")
    log_fb = bbyy.truth.log_prob_features(mock, "background")
    out["hisigma"] = BaselineResult("hisigma", *_unbinned_fit(m, log_fs, log_fb, s_expected, step), len(m))
    zeros = np.zeros(len(m))
    out["mass_only"] = BaselineResult("mass_only", *_unbinned_fit(m, zeros, zeros, s_expected, step), len(m))
    passed = _score(classifiers.features_only, mock, False) > classifiers.cut
    mu, sigma = _unbinned_fit(
        m[passed], zeros[passed], zeros[passed], s_expected * classifiers.efficiency, step
    )
    out["cut_and_mass"] = BaselineResult("cut_and_mass", mu, sigma, int(passed.sum()))
    sr = bbyy.in_signal_region(m)
    counts = np.histogram(_score(classifiers.with_mass, mock.select(sr), True), classifiers.bins)[0]
    mu, sigma = _binned_fit(
        counts.astype(float),
        classifiers.signal_template,
        classifiers.background_template,
        s_expected * classifiers.signal_region_fraction,
        step,
    )
    out["binned_score"] = BaselineResult("binned_score", mu, sigma, int(sr.sum()))
    return out
