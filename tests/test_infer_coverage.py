"""Coverage machinery (profile at the truth, summaries) and the reference-sample error of NSBI fits."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from rooml.infer.coverage import LEVELS, ParameterCheck, profile_at_truth, summarize
from rooml.infer.reference_sample import check_reference_size, effective_size, reference_sample_errors


def _gaussian(ROOT, values):
    x = ROOT.RooRealVar("x", "x", -50.0, 50.0)
    mean = ROOT.RooRealVar("mean", "mean", 0.0, -10.0, 10.0)
    sigma = ROOT.RooRealVar("sigma", "sigma", 1.0, 0.1, 10.0)
    pdf = ROOT.RooGaussian("g", "g", x, mean, sigma)
    data = ROOT.RooDataSet("d", "d", ROOT.RooArgSet(x))
    for v in values:
        x.setVal(float(v))
        data.add(ROOT.RooArgSet(x))
    return pdf, data, mean, sigma, (x,)


def test_profile_at_truth_of_a_gaussian_mean_is_the_analytic_statistic(roofit):
    values = np.random.default_rng(3).normal(0.3, 2.0, 400)
    pdf, data, mean, sigma, keep = _gaussian(roofit, values)
    xbar, s2 = values.mean(), values.var()  # the MLEs
    checks, result = profile_at_truth(pdf, data, {mean: 0.0, sigma: 2.0})
    assert result.status == 0
    # t is known to Minuit's tolerance: both fits stop within EDM ~ 1e-5 of their minima
    # t(mean = m0) with sigma profiled: N log(1 + (xbar - m0)^2 / s^2)
    assert checks["mean"].t_truth == pytest.approx(len(values) * math.log1p(xbar**2 / s2), abs=1e-4)
    # t(sigma = s0) with the mean profiled at xbar: N (s^2/s0^2 - 1 - log(s^2/s0^2))
    ratio = s2 / 4.0
    assert checks["sigma"].t_truth == pytest.approx(len(values) * (ratio - 1 - math.log(ratio)), abs=1e-4)
    assert checks["mean"].value == pytest.approx(xbar, abs=1e-4 * math.sqrt(s2))
    assert checks["mean"].hesse == pytest.approx(math.sqrt(s2 / len(values)), rel=1e-3)
    # Minos of a Gaussian mean with sigma profiled: t = 1 where N log(1 + d^2/s^2) = 1
    d = math.sqrt(s2 * math.expm1(1.0 / len(values)))
    assert checks["mean"].minos_high == pytest.approx(d, rel=1e-3)
    assert checks["mean"].minos_low == pytest.approx(-d, rel=1e-3)


def test_summary_counts_coverage_and_pulls():
    rng = np.random.default_rng(5)
    n = 2000
    z = rng.normal(size=n)
    toys = [{"a": ParameterCheck(v, 1.0, -1.0, 1.0, v * v)} for v in z]
    (row,) = summarize(toys, {"a": 0.0})
    for level, q in LEVELS.items():
        assert row.coverage[level] == np.mean(z * z < q)
    assert row.pull_mean == pytest.approx(z.mean(), abs=1e-15)
    assert row.pull_width == pytest.approx(z.std(ddof=1), rel=1e-12)
    assert all(row.verdicts().values())  # an exact N(0, 1) passes (z is 2000 standard normals)
    biased = [{"a": ParameterCheck(v + 0.3, 1.0, -1.0, 1.0, (v + 0.3) ** 2)} for v in z]
    verdicts = summarize(biased, {"a": 0.0})[0].verdicts()
    assert not verdicts["pull mean"] and verdicts["pull width"]


def test_reference_size_warning():
    with pytest.warns(UserWarning, match="effective events"):
        shift = check_reference_size(10_000, np.ones(100_000))
    assert shift == pytest.approx(math.sqrt(0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_reference_size(10_000, np.ones(300_000))
    assert effective_size([1.0, 1.0, 2.0]) == pytest.approx(16 / 6)


def _offshell_model(idx, x, ref):
    from rooml.data import offshell4l
    from rooml.roofit import nsbi_model

    t = offshell4l.truth
    processes = ("S", "SBI", "B")

    def inputs(sample):
        return ({p: t.ratio(p, sample, reference="SBI") for p in processes},
                {(p, "alpha"): (t.g(p, sample, -1.0), t.g(p, sample, 1.0)) for p in processes})

    r, s = inputs(x)
    rr, rs = inputs(ref)
    coefficients = {"S": "mu - sqrt(mu)", "SBI": "sqrt(mu)", "B": "1 - sqrt(mu)"}
    return nsbi_model("nsbi", idx, yields={p: t.yields(0.0)[p] for p in processes}, coefficients=coefficients,
                      ratios=r, poi=[("mu", 1.0, 0.0, 10.0)], nps=["alpha"],
                      norm={(p, "alpha"): (t.G(p, -1.0), t.G(p, 1.0)) for p in processes}, shape=s,
                      reference_sample={"weights": ref.weight, "ratios": rr, "shape": rs})


def test_reference_bootstrap_error_matches_the_spread_over_independent_reference_samples(roofit):
    """The bootstrap of one reference sample predicts how much the fit moves between reference samples."""
    from rooml.data import offshell4l
    from rooml.infer import fit
    from rooml.roofit import dataset_with_index, index_variable

    roofit.RooMsgService.instance().setGlobalKillBelow(roofit.RooFit.ERROR)
    x = offshell4l.make_pseudodata(1.0, 0.0, seed=11)  # ~1300 events
    n_ref, independent, replicas = 20_000, 30, 60
    alphas = []
    for k in range(independent):
        idx = index_variable()
        m = _offshell_model(idx, x, offshell4l.generate("SBI", n_ref, seed=500 + k))
        alphas.append(fit(m["pdf"], dataset_with_index({}, idx, n=len(x))).parameters["alpha"].value)
    spread = np.std(alphas, ddof=1)
    idx = index_variable()
    m = _offshell_model(idx, x, offshell4l.generate("SBI", n_ref, seed=499))
    errors = reference_sample_errors(m, dataset_with_index({}, idx, n=len(x)), replicas=replicas, seed=1,
                                     progress=False)
    i = errors.names.index("alpha")
    predicted = errors.reference[i]
    print(f"alpha: Hesse {errors.hesse[i]:.4f}; reference error: bootstrap {predicted:.4f}, "
          f"spread over {independent} reference samples {spread:.4f}")
    # both standard deviations have relative errors 1/sqrt(2(n-1)): 0.13 and 0.09, so their ratio
    # is within exp(+-3.5 * 0.16) of 1 unless the bootstrap is wrong
    assert 0.57 < predicted / spread < 1.75
    assert errors.total[i] == pytest.approx(math.hypot(errors.hesse[i], predicted))
    # the model's reference sample is restored: a fit gives the nominal result again
    again = fit(m["pdf"], dataset_with_index({}, idx, n=len(x))).parameters["alpha"].value
    assert again == pytest.approx(errors.values[i], abs=1e-2 * errors.hesse[i])


def test_nsbi_model_warns_about_a_small_monte_carlo_reference_only(roofit):
    from rooml.roofit import index_variable
    from test_roofit_nsbi import Toy

    toy, ref = Toy(n=500, seed=1), Toy(n=4000, seed=2)  # expected data ~1300-2700 events
    reference = {"weights": np.ones(ref.n), "ratios": ref.r, "shape": ref.shape}
    with pytest.warns(UserWarning, match="4000 effective events"):
        toy.model(index_variable(), reference_sample=reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        toy.model(index_variable(), reference_sample={**reference, "monte_carlo": False})


def test_validation_script_runs_a_study_in_parts(tmp_path):
    """validate_coverage.py: toys 0-1 saved, then toys 2-3 with --include = toys 0-3 in one run, exactly."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "validate_coverage.py"
    base = [sys.executable, str(script), "--models", "hisigma", "--mu", "1", "--serial",
            "--normalization-events", "20000"]

    def run(*extra):
        done = subprocess.run(base + [str(a) for a in extra], capture_output=True, text=True, timeout=600)
        assert "hisigma, mu = 1.0" in done.stdout, done.stdout + done.stderr
        return done.stdout

    run("--toys", 2, "--save", tmp_path / "first")
    parts = run("--toys", 2, "--first-toy", 2, "--include", tmp_path / "first", "--save", tmp_path / "parts")
    assert "from earlier runs" in parts
    run("--toys", 4, "--save", tmp_path / "whole")
    parts_file, whole_file = (tmp_path / name / "hisigma_mu1.npz" for name in ("parts", "whole"))
    with np.load(parts_file) as a, np.load(whole_file) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    refused = subprocess.run(base + ["--toys", "1", "--include", str(tmp_path / "nothing")],
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "no hisigma_mu1.npz" in refused.stderr
