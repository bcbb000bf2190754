"""Pulls and impacts against exact answers: a linear Gaussian model and mu scaling as exp(c theta)."""
from __future__ import annotations

import numpy as np
import pytest
from infer_factories import ExponentialScale, LinearGaussian
from rooml.infer import fit, impacts, plot_ranking, pulls


def test_linear_model_hessian_and_refit_impacts_equal_the_exact_ones(roofit, tmp_path):
    """In a linear Gaussian model C(mu,th)/sigma_th is exact and equal to the +-1 sigma refit shifts."""
    spec = LinearGaussian()
    m = spec()
    best, cov = spec.truth()
    result = impacts(m["pdf"], m["data"], m["poi"], m["nuisance"], constraints=m["constraints"],
                     prefit_impacts=True, progress=False)
    assert result.mu_hat == pytest.approx(best[0], abs=2e-4)
    assert result.sigma_mu == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-3)
    by_name = {e.name: e for e in result.entries}
    for k, name in ((1, "th1"), (2, "th2")):
        e = by_name[name]
        exact = cov[0, k] / np.sqrt(cov[k, k])
        assert e.hessian == pytest.approx(exact, rel=2e-3, abs=2e-4)
        assert e.postfit[1] == pytest.approx(exact, rel=2e-3, abs=2e-4)
        assert e.postfit[0] == pytest.approx(-exact, rel=2e-3, abs=2e-4)
        # pre-fit: theta shifted by sigma_pre = 1
        assert e.prefit[1] == pytest.approx(cov[0, k] / cov[k, k], rel=2e-3, abs=2e-4)
        assert e.pull.pull == pytest.approx(best[k], abs=2e-4)
        assert e.pull.constraint == pytest.approx(np.sqrt(cov[k, k]), rel=1e-3)
    # th1 is constrained by y (sigma 0.11), so th2 (sigma 1) moves mu more and ranks first
    assert [e.name for e in result.entries] == ["th2", "th1"]
    assert m["poi"].getVal() == pytest.approx(best[0], abs=2e-4)  # left at the best fit
    png = plot_ranking(result, tmp_path / "ranking.png", label="test")
    assert png.stat().st_size > 5000
    with pytest.raises(FileExistsError, match="overwrite"):
        plot_ranking(result, png)
    saved = result.save_json(tmp_path / "impacts.json")
    assert "th1" in saved.read_text() and "th1" in str(result)


def test_nonlinear_model_refit_impacts_differ_from_the_hessian(roofit):
    """mu_hat(th) = mean(x) exp(-c th) with sigma_th = 1: Hessian -c mu_hat, refits mu_hat (exp(-+c) - 1)."""
    spec = ExponentialScale()
    m = spec()
    result = impacts(m["pdf"], m["data"], m["poi"], ["th"], constraints=m["constraints"], progress=False)
    e = result.entries[0]
    mean, c = spec.events().mean(), spec.c
    # the valley mu exp(c th) = mean(x) is only weakly curved (by the constraint): Minuit's tolerance
    # leaves th_hat ~ 1e-3 off 0, so compare with the fitted th_hat and sigma_th
    mu_hat, th_hat, sigma = result.mu_hat, e.pull.value, e.pull.error
    assert mu_hat * np.exp(c * th_hat) == pytest.approx(mean, abs=5e-4)  # 0.004 sigma_mu
    assert abs(th_hat) < 0.01 and sigma == pytest.approx(1.0, rel=1e-2)
    assert e.hessian == pytest.approx(-c * mu_hat * sigma, rel=2e-3)
    assert e.postfit[1] == pytest.approx(mu_hat * (np.exp(-c * sigma) - 1), rel=2e-3)
    assert e.postfit[0] == pytest.approx(mu_hat * (np.exp(c * sigma) - 1), rel=2e-3)
    assert abs(e.postfit[0]) - abs(e.postfit[1]) > 0.04  # asymmetric, unlike the Hessian estimate


def test_pulls_with_prefit_widths(roofit):
    """Pulls use the given pre-fit centre and width; unknown parameters are refused by name."""
    spec = LinearGaussian()
    m = spec()
    result = fit(m["pdf"], m["data"], constraints=m["constraints"])
    best, cov = spec.truth()
    (p,) = pulls(result, ["th1"], prefit={"th1": (0.1, 2.0)})
    assert p.pull == pytest.approx((best[1] - 0.1) / 2.0, abs=2e-4)
    assert p.constraint == pytest.approx(np.sqrt(cov[1, 1]) / 2.0, rel=1e-3)
    with pytest.raises(KeyError, match="nope"):
        pulls(result, ["nope"])
    with pytest.raises(ValueError, match="not a floating parameter"):
        impacts(m["pdf"], m["data"], m["poi"], ["g1"], constraints=m["constraints"])


def test_refits_on_dask_match_the_sequential_ones(roofit):
    """The same impacts when the refits run on a Dask worker that builds the model from the factory."""
    from distributed import Client, LocalCluster

    spec = LinearGaussian()
    m = spec()
    local = impacts(m["pdf"], m["data"], m["poi"], m["nuisance"], constraints=m["constraints"],
                    progress=False)
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        remote = impacts(m["pdf"], m["data"], m["poi"], m["nuisance"], constraints=m["constraints"],
                         client=client, factory=spec, progress=False)
    for a, b in zip(local.entries, remote.entries):
        assert a.name == b.name
        np.testing.assert_allclose(a.postfit, b.postfit, atol=1e-5)
    with pytest.raises(ValueError, match="factory"):
        impacts(m["pdf"], m["data"], m["poi"], m["nuisance"], client=object())
