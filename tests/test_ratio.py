"""Training ratio networks against exact truths: NSBI classifiers, HH->4b reweighter, signed weights."""
from __future__ import annotations

import math

import numpy as np
import pytest
import rooml
import torch
from rooml.data import hh4b, offshell4l
from rooml.export import export_ratio
from rooml.models import (
    RatioConfig,
    RatioEnsemble,
    TrainedRatio,
    calibration_report,
    plot_calibration,
    train_process_ratios,
    train_ratio,
    train_reweighter,
    train_systematic_ratios,
)

FAST = {"progress": False, "lr": 3e-3, "batch_size": 1024}
HH_FEATURES = ["m_h1", "m_h2", "pt_h1", "pt_h2", "eta_h1", "eta_h2", "dphi_hh", "x_wt", "year"]
HH_PRE = {"pt_h1": "log", "pt_h2": "log", "x_wt": "log", "dphi_hh": "log_pi_minus"}


def _figures(log_true, log_pred):
    """Pearson correlation of log r, and the median |r_pred/r_true - 1| in the central 90 % of log r_true."""
    lo, hi = np.percentile(log_true, [5, 95])
    bulk = (log_true > lo) & (log_true < hi)
    corr = float(np.corrcoef(log_true, log_pred)[0, 1])
    return corr, float(np.median(np.abs(np.expm1(log_pred[bulk] - log_true[bulk]))))


# --------------------------------------------------------------------------- NSBI classifier
@pytest.fixture(scope="module")
def offshell_ratio():
    """r_S = p_S / p_SBI (the NSBI per-process ratio) from 100k + 100k events."""
    samples = {"S": offshell4l.generate("S", 100_000, seed=1),
               "SBI": offshell4l.generate("SBI", 100_000, seed=2)}  # fmt: skip
    ratios = train_process_ratios(samples, "SBI", preprocessing={"m4l": "log", "pt4l": "log1p"}, epochs=60,
                                  seed=0, **FAST)  # fmt: skip
    assert list(ratios) == ["S"]
    return ratios["S"]


def test_classifier_ratio_reproduces_truth(offshell_ratio):
    test = offshell4l.generate("SBI", 50_000, seed=9)
    truth = np.log(offshell4l.truth.ratio("S", test, reference="SBI"))
    corr, med = _figures(truth, offshell_ratio.log_ratio(test))
    # a 100k + 100k-event training (seeds 0-2 give corr 0.984-0.985, median error 13-14 %);
    # benchmarks/validate_ratios.py shows corr > 0.99 and median error < 10 % with 500k + 500k
    assert corr > 0.97, corr
    assert med < 0.20, med
    assert offshell_ratio.features == list(offshell4l.OBSERVABLES)
    assert offshell_ratio.log_correction == 0.0  # balanced classes


def test_classifier_calibration(offshell_ratio, tmp_path):
    num = offshell4l.generate("S", 30_000, seed=11)
    den = offshell4l.generate("SBI", 30_000, seed=12)
    report = calibration_report(offshell_ratio, num, den)
    # noise of rms sigma in log r biases E[r] up by ~ sigma^2 / 2 (Jensen): sigma ~ 0.2-0.3 at this
    # training size gives +2 to +5 % (measured: 1.050 +- 0.008; 1.010 with 500k + 500k)
    assert abs(report.mean_ratio - 1) < 0.08, report.summary()
    assert report.max_reliability_deviation < 0.05, report.summary()
    fig = plot_calibration(report, tmp_path / "calibration.png", features=["m4l", "phi"])
    assert (tmp_path / "calibration.png").stat().st_size > 10_000
    assert len(fig.axes) == 6  # reliability + 2 features, each with a residual panel


def test_exported_classifier_matches_core(offshell_ratio, tmp_path):
    path = export_ratio(offshell_ratio, tmp_path / "rS.onnx")
    test = offshell4l.generate("SBI", 5_000, seed=13)
    x = np.column_stack([test[k] for k in offshell_ratio.features])
    core = rooml.load(path)
    np.testing.assert_allclose(core.log_ratio(x), offshell_ratio.log_ratio(x), rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- HH -> 4b reweighter
@pytest.fixture(scope="module")
def hh4b_reweighter():
    """2b -> 4b exponential-loss reweighter in the control region, two members."""
    d4 = hh4b.generate("4b", 120_000, seed=1)
    d2 = hh4b.generate("2b", 240_000, seed=2)
    d4, d2 = (d.select(hh4b.region_mask(d, "CR")) for d in (d4, d2))
    return train_reweighter(d4, d2, features=HH_FEATURES, preprocessing=HH_PRE, n_retrain=2, epochs=40,
                            **FAST)  # fmt: skip


def test_reweighter_recovers_exact_ratio_in_control_region(hh4b_reweighter):
    test = hh4b.generate("2b", 150_000, seed=3)
    test = test.select(hh4b.region_mask(test, "CR"))
    # the truth is p_4b/p_2b on the full plane; restricted to the CR both densities are
    # renormalized, which divides it by P_4b(CR)/P_2b(CR) = E_2b|CR[truth ratio]
    truth = hh4b.truth.ratio(test, "4b", "2b")
    truth = np.log(truth / truth.mean())
    corr, med = _figures(truth, hh4b_reweighter.log_ratio(test))
    # log r_true has a standard deviation of 0.37 in the CR; corr > 0.93 leaves a residual of
    # about 0.14 in log r (measured: ensemble 0.964 and 6.7 %, members 0.955; 4 members trained
    # on 3x the events reach 0.983 and 3.8 % in benchmarks/validate_ratios.py)
    assert corr > 0.93, corr
    assert med < 0.10, med
    members = hh4b_reweighter.member_log_ratios(test)
    assert members.shape == (2, len(test)) and not np.allclose(members[0], members[1])
    assert np.median(hh4b_reweighter.spread(test)) > 0
    combined = np.log(np.exp(members).mean(axis=0))
    np.testing.assert_allclose(hh4b_reweighter.log_ratio(test), combined, atol=1e-12)
    assert all(m.loss == "exponential" and m.log_correction == 0.0 for m in hh4b_reweighter.members)
    # the weighted 2b sample reproduces the 4b normalization, E_2b[w] = 1, up to the few % that
    # early stopping leaves (measured 0.970; the analysis normalizes w in the CR anyway)
    assert abs(np.mean(np.exp(hh4b_reweighter.log_ratio(test))) - 1) < 0.05


def test_reweighter_ensemble_file(hh4b_reweighter, tmp_path):
    path = export_ratio(hh4b_reweighter, tmp_path / "reweighter.onnx")
    meta = rooml.export.read_metadata(path)
    assert meta["architecture"]["combination"] == "mean"
    assert [m["loss"] for m in meta["architecture"]["members"]] == ["exponential"] * 2
    test = hh4b.generate("2b", 20_000, seed=4)
    test = test.select(hh4b.region_mask(test, "CR"))
    x = np.column_stack([test[k] for k in HH_FEATURES])
    core = rooml.load(path)
    np.testing.assert_allclose(core.log_ratio(x), hh4b_reweighter.log_ratio(x), rtol=0, atol=1e-9)
    np.testing.assert_allclose(core.member_log_ratios(x), hh4b_reweighter.member_log_ratios(x).T, atol=1e-9)


# --------------------------------------------------------------------------- signed weights
def _signed_sample(n, rng):
    """p_num = 1.5 N(0, 1.5^2 I) - 0.5 N(0, I) in 2-D: positive everywhere (f_B/f_A <= 2.25 < 3).

    Drawn as n events of each component with weights +1.5/n and -0.5/n.
    """
    a = rng.normal(0.0, 1.5, (n, 2))
    b = rng.normal(0.0, 1.0, (n, 2))
    return np.concatenate([a, b]), np.concatenate([np.full(n, 1.5 / n), np.full(n, -0.5 / n)])


def _normal2(x, mu, sigma):
    return np.exp(-0.5 * np.sum(((x - mu) / sigma) ** 2, axis=1)) / (2 * math.pi * sigma**2)


def _signed_truth(x):
    p_num = 1.5 * _normal2(x, 0.0, 1.5) - 0.5 * _normal2(x, 0.0, 1.0)
    return np.log(p_num / _normal2(x, 0.2, 1.3))


@pytest.mark.parametrize("loss", ["bce", "exponential"])
def test_negative_weights(loss):
    rng = np.random.default_rng(5)
    x_num, w_num = _signed_sample(20_000, rng)
    x_den = rng.normal(0.2, 1.3, (40_000, 2))
    kwargs = dict(loss=loss, epochs=40, seed=1, config=RatioConfig((32, 32)), **FAST)
    model = train_ratio(x_num, x_den, numerator_weights=w_num, **kwargs)
    test = rng.normal(0.2, 1.3, (50_000, 2))
    corr, med = _figures(_signed_truth(test), model.log_ratio(test))
    assert corr > 0.97, corr
    assert med < 0.08, med
    # negative control: dropping the signs learns (1.5 f_A + 0.5 f_B)/2 instead
    wrong = train_ratio(x_num, x_den, numerator_weights=np.abs(w_num), **kwargs)
    _, med_wrong = _figures(_signed_truth(test), wrong.log_ratio(test))
    assert med_wrong > 2 * med and med_wrong > 0.15, (med, med_wrong)


# --------------------------------------------------------------------------- calibration, priors
@pytest.fixture(scope="module")
def gaussian_problem():
    rng = np.random.default_rng(21)
    num = rng.normal([0.4, -0.2], [1.0, 0.8], (30_000, 2))
    den = rng.normal(0.0, 1.2, (90_000, 2))  # 3:1 class imbalance
    return num, den


def _gauss_truth(x):
    num = np.exp(-0.5 * (((x - [0.4, -0.2]) / [1.0, 0.8]) ** 2).sum(axis=1)) / (1.0 * 0.8)
    den = np.exp(-0.5 * ((x / 1.2) ** 2).sum(axis=1)) / 1.44
    return np.log(num / den)


@pytest.mark.parametrize("balance", [True, False])
def test_prior_correction(gaussian_problem, balance):
    num, den = gaussian_problem
    config = RatioConfig((32,))
    model = train_ratio(num, den, balance_classes=balance, epochs=30, seed=2, config=config, **FAST)
    if balance:
        assert model.log_correction == 0.0
    else:
        assert model.log_correction == pytest.approx(math.log(3.0))
    test = np.random.default_rng(22).normal(0.0, 1.2, (40_000, 2))
    corr, med = _figures(_gauss_truth(test), model.log_ratio(test))
    assert corr > 0.98 and med < 0.05, (corr, med)


def test_calibration_check_passes_and_detects_miscalibration(gaussian_problem):
    num, den = gaussian_problem
    model = train_ratio(num, den, epochs=30, seed=3, config=RatioConfig((32,)), **FAST)
    rng = np.random.default_rng(23)
    num_test = rng.normal([0.4, -0.2], [1.0, 0.8], (40_000, 2))
    den_test = rng.normal(0.0, 1.2, (40_000, 2))
    good = calibration_report(model, num_test, den_test, bins=15)
    assert abs(good.mean_ratio_pull) < 4 and abs(good.mean_ratio - 1) < 0.02, good.summary()
    assert good.max_reliability_deviation < 0.03, good.summary()
    assert good.chi2 / good.ndf < 2.0, good.summary()
    # a wrong normalization fails E_den[r] = 1; a flattened ratio fails reliability and closure
    shifted = TrainedRatio(**{**_fields(model), "log_correction": 0.3})
    bad_norm = calibration_report(shifted, num_test, den_test, bins=15)
    assert bad_norm.mean_ratio > 1.2 and abs(bad_norm.mean_ratio_pull) > 10
    flat = _fields(model)
    flat["net"] = _scaled_net(model.net, 0.5)
    bad_shape = calibration_report(TrainedRatio(**flat), num_test, den_test, bins=15)
    assert bad_shape.max_reliability_deviation > 0.05
    assert bad_shape.chi2 / bad_shape.ndf > 10


def _fields(model):
    keys = ("net", "config", "preprocessing", "features", "support", "log_correction", "loss", "seed")
    return {k: getattr(model, k) for k in keys}


def _scaled_net(net, factor):
    import copy

    out = copy.deepcopy(net)
    with torch.no_grad():
        out.layers[-1].weight.mul_(factor)
        out.layers[-1].bias.mul_(factor)
    return out


# --------------------------------------------------------------------------- API
def test_systematic_ratios():
    """g_S(x, alpha=+-1) = p_S(x|alpha)/p_S(x|0) depends on m4l only (the gg luminosity)."""
    nominal = offshell4l.generate("S", 60_000, seed=31)
    up = offshell4l.generate("S", 60_000, seed=32, alpha=1.0)
    down = offshell4l.generate("S", 60_000, seed=33, alpha=-1.0)
    ratios = train_systematic_ratios(nominal, up, down, features=["m4l"], preprocessing={"m4l": "log"},
                                     epochs=30, seed=4, config=RatioConfig((16, 16)), **FAST)  # fmt: skip
    assert set(ratios) == {"up", "down"}
    test = offshell4l.generate("S", 40_000, seed=34)
    for name, alpha in (("up", 1.0), ("down", -1.0)):
        truth = np.log(offshell4l.truth.g("S", test, alpha))
        corr, med = _figures(truth, ratios[name].log_ratio(test))
        assert corr > 0.9 and med < 0.03, (name, corr, med)


def test_training_is_deterministic(gaussian_problem):
    num, den = gaussian_problem
    kwargs = dict(epochs=2, config=RatioConfig((8,)), **FAST)
    threads = torch.get_num_threads()
    a = train_ratio(num[:2000], den[:2000], seed=7, **kwargs)
    assert torch.get_num_threads() == threads  # num_threads=1 during training only
    b = train_ratio(num[:2000], den[:2000], seed=7, **kwargs)
    c = train_ratio(num[:2000], den[:2000], seed=8, **kwargs)
    x = den[:100]
    np.testing.assert_array_equal(a.log_ratio(x), b.log_ratio(x))
    assert not np.array_equal(a.log_ratio(x), c.log_ratio(x))
    assert a.history["val_loss"] == b.history["val_loss"]


def test_bootstrap_members_differ(gaussian_problem):
    num, den = gaussian_problem
    ens = train_reweighter(num[:3000], den[:3000], n_retrain=3, bootstrap=True, combination="mean_log",
                           epochs=2, config=RatioConfig((8,)), **FAST)  # fmt: skip
    assert isinstance(ens, RatioEnsemble) and len(ens) == 3
    assert [m.seed for m in ens.members] == [0, 1, 2]
    lr = ens.member_log_ratios(den[:50])
    np.testing.assert_allclose(ens.log_ratio(den[:50]), lr.mean(axis=0), atol=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda n, d: train_ratio(n, d[:, :1]), "denominator: 2 feature names for 1 columns"),
        (lambda n, d: train_ratio(n, d, numerator_weights=-np.ones(len(n))), "positive sums"),
        (lambda n, d: train_ratio(n, d, loss="hinge"), "loss must be one of"),
        (lambda n, d: train_ratio(np.where(n > 3, np.nan, n), d), "non-finite"),
        (lambda n, d: train_ratio(n, d, numerator_weights=np.ones(3)), "weights must be"),
        (lambda n, d: train_reweighter(n, d, n_retrain=0), "n_retrain"),
        (lambda n, d: train_reweighter(n, d, loss="bce"), "exponential loss"),
        (lambda n, d: train_process_ratios({"a": n}, "b"), "reference 'b'"),
        (lambda n, d: RatioConfig(activation="tanh"), "activation"),
    ],
)
def test_bad_arguments(gaussian_problem, call, message):
    num, den = gaussian_problem
    with pytest.raises(ValueError, match=message):
        call(num[:500], den[:500])
