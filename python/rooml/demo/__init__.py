"""The end-to-end HI-SIGMA demonstration behind ``rooml demo``.

Signal and sideband-background flows conditional on m_yy are trained on the
:mod:`rooml.data.bbyy` simulation as bootstrap ensembles, exported (with their
+-1 sigma shape-systematic variations), assembled into the HI-SIGMA RooFit model
(:mod:`rooml.demo.model`) and fitted to a mock dataset; mu is scanned for every
bootstrap model and the scans are combined by their envelope.

>>> from rooml.demo import run_demo      # doctest: +SKIP
>>> run_demo("rooml_output")             # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from rooml._files import atomic_output

__all__ = ["MINIMUM_EPOCHS", "MINIMUM_EVENTS", "fresh_output_directory", "run_demo", "undertraining_warning"]

MINIMUM_EVENTS = 60_000
"""Fewest training events (background; the signal gets a third) for which the demo's numbers are meaningful:
the defaults, whose flows give sigma(mu) within 2 % of the fit with the exact densities (README)."""
MINIMUM_EPOCHS = 12
"""Fewest training epochs for which the demo's numbers are meaningful (the default)."""

_OUTPUTS = ("fit_result.json", "workspace.root", "projections.png", "scan.png", "pulls.png")


def _say(message: str) -> None:
    print(f"[rooml demo] {message}", flush=True)


def _check_output(out: Path, force: bool) -> None:
    existing = [name for name in _OUTPUTS if (out / name).exists()]
    if existing and not force:
        raise FileExistsError(
            f"{out} already holds demo outputs ({', '.join(existing)}); "
            "choose another -o directory or pass --force to overwrite them"
        )


def undertraining_warning(events: int, epochs: int) -> str | None:
    """Return the warning to print when ``events`` or ``epochs`` are below the validated minimum, else None.

    Examples
    --------
    >>> undertraining_warning(60_000, 12) is None
    True
    >>> print(undertraining_warning(5000, 2))  # doctest: +ELLIPSIS
    WARNING: --events 5000 --epochs 2 is below ... mu, its error and Z0 are not meaningful.
    """
    if events >= MINIMUM_EVENTS and epochs >= MINIMUM_EPOCHS:
        return None
    return (f"WARNING: --events {events} --epochs {epochs} is below --events {MINIMUM_EVENTS} --epochs "
            f"{MINIMUM_EPOCHS} (the defaults, the smallest settings validated against the exact densities): "
            "the flows are under-trained, so mu, its error and Z0 are not meaningful.")


def fresh_output_directory(base: str | Path) -> Path:
    """Return ``base`` if it holds no demo outputs, else the first of ``base_2``, ``base_3``, ... without any.

    Lets the README's demo command run again without overwriting the results of an earlier run.
    """
    candidate, k = Path(base), 1
    while any((candidate / name).exists() for name in _OUTPUTS):
        k += 1
        candidate = Path(f"{base}_{k}")
    return candidate


def run_demo(
    output: str | Path = "rooml_output",
    *,
    signal: float = 200.0,
    background: float = 40_000.0,
    events: int = 60_000,
    epochs: int = 12,
    bootstraps: int = 3,
    members: int = 1,
    normalization_samples: int = 100_000,
    scan_points: int = 13,
    seed: int = 1,
    force: bool = False,
    parallel: bool = True,
    progress: bool = True,
) -> dict:
    """Train, export, build the HI-SIGMA model with a shape systematic, fit, scan mu per bootstrap, plot.

    Parameters
    ----------
    output
        Output directory: ``{signal,background}_{nominal,low,high}.onnx``, ``workspace.root``
        (``macros/fit_hisigma.C`` refits it), ``fit_result.json``, ``projections.png``,
        ``scan.png``, ``pulls.png``.
    signal, background
        Injected signal (also the expected yield at mu = 1) and background events in the mock data.
    events
        Simulated background events generated for training (the sidebands are kept); the signal
        flow trains on ``events // 3`` signal events.
    epochs
        Maximum training epochs.
    bootstraps, members
        ``D`` bootstrap models of ``K`` seeds per process.
    normalization_samples
        Simulated events per process for the systematic's normalization.
    scan_points
        Minimum number of points of each mu scan (a common grid from the lowest bootstrap
        mu_hat - 2.5 sigma to the highest + 2.5 sigma, at least 1 point per sigma).
    seed
        Root seed (training data, trainings, mock data).
    force
        Overwrite earlier demo outputs in ``output``.
    parallel
        Train on a Dask LocalCluster (else serially in this process).
    progress
        Progress bars.

    Returns
    -------
    dict
        The content of ``fit_result.json``.
    """
    import ROOT

    from rooml.data import bbyy
    from rooml.demo import model as demo_model
    from rooml.demo import plots
    from rooml.demo.train import train_models
    from rooml.infer import discovery_significance, envelope, fit, profile_scan

    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.ERROR)
    if min(signal, background, events, epochs, bootstraps, members, scan_points) <= 0:
        raise ValueError(
            "signal, background, events, epochs, bootstraps, members and scan points must be positive"
        )
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    _check_output(out, force)
    t0 = time.time()
    timing = {}
    warning = undertraining_warning(events, epochs)
    if warning:
        _say(warning)

    _say(f"training flows: {bootstraps} bootstraps x {members} seeds per process, <= {epochs} epochs")
    trained = train_models(
        out,
        signal_events=max(events // 3, 1000),
        background_events=events,
        epochs=epochs,
        bootstraps=bootstraps,
        members=members,
        seed=seed,
        parallel=parallel,
        progress=progress,
    )
    timing["training"] = time.time() - t0

    mock = bbyy.make_mock(n_bkg=background, n_sig=signal, seed=seed + 100)
    _say(f"building the HI-SIGMA model and fitting {len(mock)} events ({int(signal)} signal injected)")
    demo = demo_model.build_workspace(
        trained.paths, mock, s_expected=signal, normalization_samples=normalization_samples, seed=seed + 200
    )
    mu = demo.var("mu")
    nominal = fit(demo.model, demo.data, extended=True)
    z0 = discovery_significance(demo.model, demo.data, mu, extended=True)
    mu_hat, sigma = nominal["mu"].value, nominal["mu"].error
    timing["fit"] = time.time() - t0 - timing["training"]

    _say(f"fitting and scanning mu for {bootstraps} bootstrap models")
    bootstrap_fits = []
    for d in range(bootstraps):
        demo.use_bootstrap(d)
        bootstrap_fits.append(fit(demo.model, demo.data, extended=True, hesse=False)["mu"].value)
    grid = _scan_grid([mu_hat, *bootstrap_fits], sigma, scan_points)
    bootstrap_scans = []
    for d in range(bootstraps):
        demo.use_bootstrap(d)
        bootstrap_scans.append(
            profile_scan(demo.model, demo.data, mu, grid, extended=True, progress=progress)
        )
    demo.use_bootstrap(-1)
    nominal_scan = profile_scan(demo.model, demo.data, mu, grid, extended=True, progress=progress)
    env = envelope(bootstrap_scans)
    timing["bootstrap scans"] = time.time() - t0 - timing["training"] - timing["fit"]

    workspace = demo_model.write_workspace(demo, out / "workspace.root")
    values = {name: p.value for name, p in nominal.parameters.items()}
    templates = demo_model.fitted_templates(trained.paths, values, 50_000, seed + 300, trained.ensembles)
    yields = {"signal": mu_hat * signal, "background": values["n_bkg"]}
    plots.projections(mock, templates, yields, out / "projections.png")
    plots.scans(nominal_scan, bootstrap_scans, env, 1.0, out / "scan.png")
    truth = {"mu": 1.0, "n_bkg": background, "p1": bbyy.truth.p1, "p2": bbyy.truth.p2}
    pull_entries = [(demo_model.NP, *_constrained_pull(nominal[demo_model.NP]))]
    pull_entries += [
        (f"{n} (vs truth, /σ̂)", (nominal[n].value - v) / nominal[n].error, 1.0) for n, v in truth.items()
    ]
    plots.pulls(pull_entries, out / "pulls.png")

    summary = {
        "mu_hat": mu_hat,
        "mu_error": sigma,
        "mu_profile_interval": nominal_scan.interval(1.0),
        "z0": z0,
        "injected": {"signal": signal, "background": background, "mu": 1.0},
        "fit": nominal.as_dict(),
        "envelope": {
            "interval": list(env.interval),
            "best_fit": env.best_fit,
            "mu_hats": env.mu_hats.tolist(),
            "sigmas": env.sigmas.tolist(),
            "widening": (env.interval[1] - env.interval[0]) / (2 * nominal_scan.sigma),
        },
        "options": {
            "events": events,
            "epochs": epochs,
            "bootstraps": bootstraps,
            "members": members,
            "normalization_samples": normalization_samples,
            "seed": seed,
        },
        "seconds": {**timing, "total": time.time() - t0},
    }
    path = out / "fit_result.json"
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    _print_summary(summary, nominal)
    if warning:
        _say(warning)
    _say(
        f"wrote {workspace}, {path} and projections.png, scan.png, pulls.png in {out} "
        f"({summary['seconds']['total']:.0f} s)"
    )
    return summary


def _scan_grid(centres: list[float], sigma: float, points: int) -> np.ndarray:
    """Return a mu grid from min(centres) - 2.5 sigma to max(centres) + 2.5 sigma, >= 1 point per sigma."""
    lo, hi = min(centres) - 2.5 * sigma, max(centres) + 2.5 * sigma
    return np.linspace(lo, hi, max(points, int(np.ceil((hi - lo) / sigma)) + 1))


def _constrained_pull(parameter, centre: float = 0.0, width: float = 1.0) -> tuple[float, float]:
    """``(theta_hat - theta_0)/sigma_0`` and ``sigma_hat/sigma_0`` of a Gaussian-constrained parameter."""
    return (parameter.value - centre) / width, parameter.error / width


def _print_summary(summary: dict, nominal) -> None:
    env = summary["envelope"]
    lo, hi = summary["mu_profile_interval"]
    print()
    print(nominal)
    print(
        f"\n  mu_hat = {summary['mu_hat']:.3f} +- {summary['mu_error']:.3f} (Hesse), "
        f"profile interval [{lo:.3f}, {hi:.3f}]  (injected {summary['injected']['mu']:g})"
    )
    print(f"  bootstrap models: mu_hat = {', '.join(f'{m:.3f}' for m in env['mu_hats'])}")
    print(
        f"  envelope interval [{env['interval'][0]:.3f}, {env['interval'][1]:.3f}]: "
        f"{env['widening']:.2f} x the width of the all-member interval"
    )
    print(f"  discovery significance Z0 = {summary['z0']:.2f}\n")
