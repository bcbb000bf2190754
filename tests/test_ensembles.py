"""Deep ensembles and bootstraps of flows (``rooml.models.ensembles``)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rooml.models import (
    FlowConfig,
    FlowEnsemble,
    Preprocessing,
    TrainedFlow,
    bootstrap_replica,
    build_flow,
    member_seed,
    normalization_of_geometric_mean,
    train_ensemble,
)
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

COV = [[1.0, 0.8], [0.8, 1.0]]
TINY = FlowConfig(features=2, layers=2, bins=4, hidden=16, blocks=1)
FAST = dict(epochs=10, batch_size=200)


def _gauss(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multivariate_normal([0.0, 0.0], COV, size=n)


def _random_member(seed: int, features: int = 2, context: int = 0, scale: float = 0.2) -> TrainedFlow:
    """Build an untrained flow with perturbed weights: a cheap, non-trivial, normalized density."""
    cfg = FlowConfig(features=features, context=context, layers=2, bins=4, hidden=8, blocks=1, seed=seed)
    flow = build_flow(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return TrainedFlow(
        flow=flow, config=cfg, preprocessing=Preprocessing([]), features=[f"x{i}" for i in range(features)],
        context_names=[f"c{i}" for i in range(context)], support=[(-5.0, 5.0)] * features,
    )  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks evaluate fastest on one thread (2 threads on 2 busy cores crawl)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data():
    return _gauss(1000, 0), _gauss(5000, 1)


@pytest.fixture(scope="module")
def trained(data):
    """D=2 bootstraps x K=3 seeds, trained serially in-process."""
    x, _ = data
    return train_ensemble(TINY, x, members=3, bootstraps=2, seed=7, parallel=False, progress=False, **FAST)


@pytest.fixture(scope="module")
def random_ensemble():
    return FlowEnsemble([[_random_member(10 * d + k) for k in range(3)] for d in range(2)])


# --------------------------------------------------------------------------- seeds, replicas, indexing
def test_member_seeds_are_distinct_and_fixed():
    seeds = {member_seed(7, d, k) for d in range(4) for k in range(5)}
    assert len(seeds) == 20
    assert member_seed(7, 2, 3) == member_seed(7, 2, 3) != member_seed(8, 2, 3)


def test_resample_replica_resamples():
    x = np.arange(2000.0)[:, None]
    reps = [bootstrap_replica(x, method="resample", seed=3, index=d) for d in range(3)]
    for xr, c, w in reps:
        assert c is None and w.sum() == len(x)  # N draws with replacement, as multiplicities
        assert np.all(w == np.round(w)) and w.max() > 1 and w.min() >= 1
        assert 0.6 < len(xr) / len(x) < 0.67  # ~ 1 - 1/e distinct events
    assert not np.array_equal(reps[0][0], reps[1][0])
    again = bootstrap_replica(x, method="resample", seed=3, index=1)
    assert all(np.array_equal(a, b) for a, b in zip(again[::2], reps[1][::2]))
    xo, _, wo = bootstrap_replica(x, method=None)
    assert np.array_equal(xo, x) and np.all(wo == 1)


def test_poisson_replica_weights_have_mean_one():
    n = 200_000
    x = np.zeros((n, 1))
    base = np.full(n, 0.5)
    counts = []
    for d in range(2):
        xr, _, w = bootstrap_replica(x, weights=base, method="poisson", seed=1, index=d)
        c = w / 0.5  # Poisson counts multiplied into the given weights
        assert np.all(c == np.round(c)) and c.min() >= 1  # zeros dropped
        counts.append(c.sum() / n)  # mean count over all N events
        assert abs(len(xr) / n - (1 - math.exp(-1))) < 0.005
    assert all(abs(m - 1) < 5 / math.sqrt(n) for m in counts)
    assert counts[0] != counts[1]


def test_trained_members_indexing(trained, data):
    _, xt = data
    assert trained.n_bootstraps == 2 and trained.n_members == 3 and len(trained) == 6
    assert trained.bootstrap == "resample" and trained.rule == "mean_log_prob"
    lp = trained.member_log_probs(xt[:50])
    assert lp.shape == (50, 6)
    for d in range(2):
        for k in range(3):
            member = trained.members[d][k]
            assert member.config.seed == member_seed(7, d, k)
            np.testing.assert_array_equal(lp[:, d * 3 + k], member.log_prob(xt[:50]))
    # all members share the preprocessing and support fitted once on the full data
    first = trained.members[0][0]
    assert all(m.preprocessing == first.preprocessing and m.support == first.support
               for m in trained.flat_members)  # fmt: skip
    assert len({m.history["train_loss"][0] for m in trained.flat_members}) == 6


def test_bootstraps_train_on_different_data(data):
    """Same member seed, different replica: different models; same replica and seed: same model."""
    x, xt = data
    kw = dict(parallel=False, progress=False, epochs=2, batch_size=200)
    a = train_ensemble(TINY, x, members=1, bootstraps=2, seed=1, **kw)
    b = train_ensemble(TINY, x, members=1, bootstraps=2, seed=1, bootstrap="poisson", **kw)
    # seeds are the same for "resample" and "poisson": only the data differ
    assert a.members[1][0].config.seed == b.members[1][0].config.seed
    assert not np.array_equal(a.members[1][0].log_prob(xt[:20]), b.members[1][0].log_prob(xt[:20]))
    assert b.bootstrap == "poisson"


# --------------------------------------------------------------------------- rules and spread
def test_rules_match_numpy(random_ensemble):
    x = np.random.default_rng(2).normal(size=(300, 2))
    lp = np.stack([m.log_prob(x) for row in random_ensemble.members for m in row], axis=1)
    np.testing.assert_array_equal(random_ensemble.member_log_probs(x), lp)
    np.testing.assert_allclose(random_ensemble.log_prob(x), lp.mean(axis=1), rtol=0, atol=1e-12)
    mix = random_ensemble.with_rule("mixture")
    direct = np.log(np.exp(lp).mean(axis=1))
    np.testing.assert_allclose(mix.log_prob(x), direct, rtol=0, atol=1e-12)
    for d in range(2):
        block = lp[:, 3 * d : 3 * d + 3]
        np.testing.assert_allclose(random_ensemble.log_prob(x, bootstrap=d), block.mean(axis=1), atol=1e-12)
        np.testing.assert_allclose(mix.log_prob(x, bootstrap=d), logsumexp(block, axis=1) - math.log(3),
                                   atol=1e-12)  # fmt: skip
        spread = random_ensemble.spread(x, bootstrap=d)
        np.testing.assert_allclose(spread, block.std(axis=1, ddof=1), atol=1e-12)
    np.testing.assert_allclose(random_ensemble.spread(x), lp.std(axis=1, ddof=1), atol=1e-12)
    models = random_ensemble.bootstrap_models()
    assert len(models) == 2 and models[1].members == [random_ensemble.members[1]]
    np.testing.assert_array_equal(models[1].log_prob(x), random_ensemble.log_prob(x, bootstrap=1))


def test_conditional_members_take_context():
    ens = FlowEnsemble([[_random_member(k, context=1) for k in range(2)]], rule="mixture")
    x = np.random.default_rng(0).normal(size=(40, 2))
    c = np.full((40, 1), 0.3)
    np.testing.assert_array_equal(ens.log_prob(x, c), ens.log_prob(x, [0.3]))
    s = ens.sample(40, c, seed=1)
    assert s.shape == (40, 2) and np.array_equal(s, ens.sample(40, [0.3], seed=1))
    with pytest.raises(ValueError, match="context"):
        ens.log_prob(x)


def test_spread_zero_for_identical_copies(random_ensemble):
    x = np.random.default_rng(3).normal(size=(200, 2))
    m = random_ensemble.members[0][0]
    copies = FlowEnsemble([[m, m], [m, m]])
    assert np.all(copies.spread(x) == 0)
    np.testing.assert_allclose(copies.with_rule("mixture").log_prob(x), m.log_prob(x), atol=1e-12)
    np.testing.assert_allclose(copies.log_prob(x), m.log_prob(x), atol=1e-12)
    assert np.all(random_ensemble.spread(x) > 0)
    assert np.all(FlowEnsemble([[m]]).spread(x) == 0)


# --------------------------------------------------------------------------- quality bar
def test_ensemble_not_worse_than_median_member(trained, data, capsys):
    """Held-out mean log-likelihood of the combined model vs the median member (2-D Gaussian, rho=0.8)."""
    _, xt = data
    member_ll = trained.member_log_probs(xt).mean(axis=0)
    median = float(np.median(member_ll))
    mix_ll = float(trained.with_rule("mixture").log_prob(xt).mean())
    geo_ll = float(trained.log_prob(xt).mean())
    z = normalization_of_geometric_mean(trained, 8000, seed=3)
    geo_norm_ll = geo_ll - math.log(z.value)
    truth = float(multivariate_normal([0, 0], COV).logpdf(xt).mean())
    with capsys.disabled():
        print(f"\n[ensembles] held-out LL: truth {truth:.4f}, members {np.round(member_ll, 4)}, "
              f"median {median:.4f}, "
              f"mixture {mix_ll:.4f}, mean_log_prob {geo_ll:.4f} (Z = {z.value:.4f} +- {z.error:.4f}, "
              f"normalized {geo_norm_ll:.4f})")  # fmt: skip
    assert mix_ll >= median
    assert mix_ll >= member_ll.mean()  # Jensen, pointwise
    # the geometric mean's LL is exactly the members' average (not normalized) ...
    assert geo_ll == pytest.approx(member_ll.mean(), abs=1e-12)
    # ... and once normalized (divided by Z <= 1) it is at least that
    assert geo_norm_ll >= median
    for d in range(2):  # each HI-SIGMA bootstrap model vs its own seeds
        ll_d = member_ll[3 * d : 3 * d + 3]
        assert trained.with_rule("mixture").log_prob(xt, bootstrap=d).mean() >= np.median(ll_d)


# --------------------------------------------------------------------------- geometric-mean normalization
def test_geometric_mean_normalization_at_most_one(random_ensemble):
    z = normalization_of_geometric_mean(random_ensemble, 4000, seed=0)
    assert 0 < z.value <= 1 and z.error > 0
    assert z.value < 1 - 3 * z.error  # members differ: strictly below 1
    zd = normalization_of_geometric_mean(random_ensemble, 4000, seed=0, bootstrap=1)
    assert 0 < zd.value <= 1
    m = random_ensemble.members[0][0]
    same = normalization_of_geometric_mean(FlowEnsemble([[m, m, m]]), 500, seed=0)
    assert same.value == pytest.approx(1.0, abs=1e-12) and same.error == pytest.approx(0.0, abs=1e-12)


def test_geometric_mean_normalization_matches_quadrature():
    """1-D members: importance-sampling estimate vs a trapezoid integral of exp(mean log p)."""
    ens = FlowEnsemble([[_random_member(s, features=1, scale=0.4) for s in (1, 2, 3)]])
    grid = np.linspace(-12.0, 12.0, 24001)[:, None]
    lp = ens.member_log_probs(grid)
    geo = np.trapezoid(np.exp(lp.mean(axis=1)), grid[:, 0])
    mix = np.trapezoid(np.exp(ens.with_rule("mixture").log_prob(grid)), grid[:, 0])
    assert mix == pytest.approx(1, abs=1e-4)
    z = normalization_of_geometric_mean(ens, 20000, seed=5)
    assert geo < 1 and abs(z.value - geo) < 4 * z.error + 1e-4


# --------------------------------------------------------------------------- sampling, persistence, errors
def test_mixture_sampling(random_ensemble):
    mix = random_ensemble.with_rule("mixture")
    s = mix.sample(3000, seed=4)
    assert s.shape == (3000, 2) and np.all(np.isfinite(s))
    np.testing.assert_array_equal(s, mix.sample(3000, seed=4))
    assert not np.array_equal(s, mix.sample(3000, seed=5))
    # the sample follows the mixture: its mean log-density is about the mixture's entropy estimate
    ref = mix.sample(3000, seed=6)
    assert abs(mix.log_prob(s).mean() - mix.log_prob(ref).mean()) < 0.15
    with pytest.raises(ValueError, match="not a normalized density"):
        random_ensemble.sample(10, seed=0)


def test_save_load_round_trip(trained, data, tmp_path):
    _, xt = data
    trained.with_rule("mixture").save(tmp_path / "ens")
    back = FlowEnsemble.load(tmp_path / "ens")
    assert back.rule == "mixture" and back.bootstrap == "resample" and back.seed == 7
    assert back.config == trained.config and back.features == trained.features
    assert (back.n_bootstraps, back.n_members) == (2, 3)
    np.testing.assert_array_equal(back.member_log_probs(xt[:100]), trained.member_log_probs(xt[:100]))
    with pytest.raises(ValueError, match="not a rooml FlowEnsemble"):
        FlowEnsemble.load(tmp_path)


def test_bad_arguments(random_ensemble):
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="members and bootstraps must be >= 1"):
        train_ensemble(TINY, x, members=0, parallel=False)
    with pytest.raises(ValueError, match="members and bootstraps must be >= 1"):
        train_ensemble(TINY, x, bootstraps=0, parallel=False)
    with pytest.raises(ValueError, match="unknown ensemble rule"):
        train_ensemble(TINY, x, rule="median", parallel=False)
    with pytest.raises(ValueError, match="unknown ensemble rule"):
        random_ensemble.with_rule("average")
    with pytest.raises(ValueError, match="unknown bootstrap method"):
        train_ensemble(TINY, x, bootstraps=2, bootstrap="jackknife", parallel=False)
    with pytest.raises(ValueError, match="needs bootstraps=1"):
        train_ensemble(TINY, x, bootstraps=2, bootstrap=None, parallel=False)
    with pytest.raises(TypeError, match="num_threads"):
        train_ensemble(TINY, x, parallel=False, **{"num_threads": 2})
    with pytest.raises(ValueError, match="at least one"):
        FlowEnsemble([])
    with pytest.raises(ValueError, match="same number of members"):
        FlowEnsemble([[random_ensemble.members[0][0]], random_ensemble.members[1]])
    with pytest.raises(ValueError, match="must share"):
        FlowEnsemble([[random_ensemble.members[0][0], _random_member(0, context=1)]])
    other = random_ensemble.members[0][0]
    wide = _random_member(1, features=2)
    wide.config = FlowConfig.from_dict({**wide.config.to_dict(), "hidden": 9})
    with pytest.raises(ValueError, match="share the architecture"):
        FlowEnsemble([[other, wide]])
    with pytest.raises(ValueError, match="bootstrap must be in"):
        random_ensemble.log_prob(x, bootstrap=2)


# --------------------------------------------------------------------------- Dask: determinism
def test_dask_worker_count_does_not_change_results(data):
    """Own LocalCluster with 1 worker, user's client with 2 workers, and the serial path: bit-identical.

    Last in the file: starting worker processes (torch imports) dominates its time.
    """
    from distributed import Client, LocalCluster, get_task_stream

    x, xt = data
    args = dict(members=2, bootstraps=2, bootstrap="poisson", seed=5, epochs=3, batch_size=200)
    serial = train_ensemble(TINY, x[:500], parallel=False, progress=False, **args)
    one = train_ensemble(TINY, x[:500], n_workers=1, progress=False, **args)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:  # fmt: skip
        with get_task_stream(client) as stream:
            two = train_ensemble(TINY, x[:500], client=client, progress=False, **args)
        used = {t["worker"] for t in stream.data if t["key"].startswith("_train_member")}
        assert client.status == "running"  # a user's client is left open
    assert len(used) == 2
    reference = serial.member_log_probs(xt)
    np.testing.assert_array_equal(one.member_log_probs(xt), reference)
    np.testing.assert_array_equal(two.member_log_probs(xt), reference)


def test_threaded_workers_warn_and_stay_deterministic(data):
    """In-process workers with 2 threads: a warning, and the lock keeps the members bit-identical."""
    from distributed import Client, LocalCluster

    x, xt = data
    args = dict(members=2, bootstraps=1, seed=2, epochs=2, batch_size=200, progress=False)
    serial = train_ensemble(TINY, x[:300], parallel=False, **args)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:  # fmt: skip
        with pytest.warns(UserWarning, match="several threads"):
            threaded = train_ensemble(TINY, x[:300], client=client, **args)
    np.testing.assert_array_equal(threaded.member_log_probs(xt[:200]), serial.member_log_probs(xt[:200]))


def test_public_api():
    import rooml.models
    from rooml.models import ensembles

    names = ["BOOTSTRAP_METHODS", "RULES", "FlowEnsemble", "Normalization", "bootstrap_replica",
             "member_seed", "normalization_of_geometric_mean", "train_ensemble"]  # fmt: skip
    assert sorted(ensembles.__all__) == sorted(names)
    assert set(names) - {"BOOTSTRAP_METHODS", "RULES"} <= set(rooml.models.__all__)
