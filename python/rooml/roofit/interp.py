"""Per-event vertical interpolation of shape systematics as a RooFit pdf (``RooInterpolatedDensity``).

``P(x | nu) = P_0(x) w(x, nu) / N(nu)``: the weight ``w`` is built per event from
the nominal and the +-1 sigma densities with rooml's interpolation codes (those of
RooFit's ``PiecewiseInterpolation``; code 5 -- polynomial inside, exponential
outside -- is what the HI-SIGMA and NSBI papers use).  ``N(nu)`` keeps the
density normalized; see ``docs/roofit_classes.md`` for why it matters (without it
a code-5 fit of nu is biased by a sizeable fraction of a unit of nu, whatever the
sample size).

>>> from rooml.roofit import interpolated_density, variation_ratios   # doctest: +SKIP
>>> r_lo, r_hi = variation_ratios(logp0_samples, [logp_minus], [logp_plus])  # doctest: +SKIP
>>> pdf = interpolated_density("p", p0, [p_minus], [p_plus], [nu], codes=5,
...                            normalization_samples=(r_lo, r_hi))    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rooml.roofit.column import _load, to_std_vector

__all__ = ["FLOORS", "interpolated_density", "variation_integrals", "variation_ratios"]

#: Floor modes of rooml::interp::combine: what happens to a non-positive interpolated value.
FLOORS = {"none": 0, "zero": 1, "tiny": 2}


def _log_ratios(log_nominal, log_low, log_high):
    lp0 = np.asarray(log_nominal, dtype=np.float64)
    lo = np.atleast_2d(np.asarray(log_low, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(log_high, dtype=np.float64))
    if lp0.ndim != 1 or lo.shape != hi.shape or lo.shape[1] != len(lp0):
        raise ValueError(
            f"log-densities must be (n,), (K, n), (K, n); got {lp0.shape}, {lo.shape}, {hi.shape}"
        )
    if not (np.all(np.isfinite(lp0)) and np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(
            "the log-densities of the nominal samples must be finite (the nominal samples must lie "
            "where every variation has support)"
        )
    return np.exp(lo - lp0), np.exp(hi - lp0)


def variation_ratios(log_nominal, log_low, log_high):
    """Per-sample ratios ``P_-k/P_0`` and ``P_+k/P_0`` on samples of the nominal model.

    Parameters
    ----------
    log_nominal
        ``log P_0(x_s)`` for ``n`` samples ``x_s`` drawn from the nominal model.
    log_low, log_high
        ``log P_-k(x_s)``, ``log P_+k(x_s)``, shape ``(K, n)`` (or ``(n,)`` for one parameter).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Ratios, shape ``(K, n)`` each: the ``normalization_samples`` of :func:`interpolated_density`.
    """
    return _log_ratios(log_nominal, log_low, log_high)


def variation_integrals(log_nominal, log_low, log_high, weights=None):
    """Integrals of the variations relative to the nominal, ``I_+-k = E_{P_0}[P_+-k / P_0]``.

    Parameters
    ----------
    log_nominal, log_low, log_high
        As for :func:`variation_ratios`.
    weights
        Optional sample weights.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``I_-k`` and ``I_+k`` (K each): the ``integrals`` of :func:`interpolated_density`.
    """
    lo, hi = _log_ratios(log_nominal, log_low, log_high)
    w = np.ones(lo.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    return lo @ w / w.sum(), hi @ w / w.sum()


def _arglist(ROOT, items):
    out = ROOT.RooArgList()
    for item in items:
        out.add(item)
    return out


def interpolated_density(
    name: str,
    nominal,
    low: Sequence,
    high: Sequence,
    nps: Sequence,
    codes=5,
    *,
    floor: str = "none",
    integrals=None,
    normalization_samples=None,
    title: str | None = None,
):
    """Build a ``RooInterpolatedDensity``.

    Parameters
    ----------
    name
        Name of the pdf.
    nominal
        ``P_0``: any ``RooAbsReal`` (a ``RooFlowPdf``, a ``RooEventColumn`` of densities).
    low, high
        ``P_-k`` and ``P_+k``, one ``RooAbsReal`` per nuisance parameter.
    nps
        The nuisance parameters (``RooRealVar``; a string makes ``RooRealVar(name, name, 0, -5, 5)``).
    codes
        One interpolation code for all parameters or one per parameter (rooml's numbering, which is
        ``PiecewiseInterpolation``'s; default 5).
    floor
        ``"none"`` (``PiecewiseInterpolation``'s default), ``"zero"`` (its ``setPositiveDefinite``)
        or ``"tiny"``.
    integrals
        ``(I_low, I_high)`` from :func:`variation_integrals`: normalize with ``N(nu)`` interpolated from
        the integrals with the same codes ("nodes" mode).
    normalization_samples
        ``(ratios_low, ratios_high)`` or ``(ratios_low, ratios_high, weights)`` from
        :func:`variation_ratios`: normalize with the Monte-Carlo integral of the interpolated density at
        every ``nu`` ("samples" mode, recommended for multiplicative codes).
    title
        Title (defaults to the name).

    Returns
    -------
    ROOT.RooInterpolatedDensity
        The parameters created from names are attached as ``_rooml_nps``.
    """
    ROOT = _load()
    if integrals is not None and normalization_samples is not None:
        raise ValueError(
            "give either integrals (nodes mode) or normalization_samples (samples mode), not both"
        )
    if floor not in FLOORS:
        raise ValueError(f"unknown floor {floor!r}; choose one of {sorted(FLOORS)}")
    low, high = list(low), list(high)
    params = [ROOT.RooRealVar(p, p, 0.0, -5.0, 5.0) if isinstance(p, str) else p for p in nps]
    if not (len(low) == len(high) == len(params)):
        raise ValueError(
            f"RooInterpolatedDensity '{name}': every nuisance parameter needs a -1 and a +1 sigma "
            f"input: {len(params)} parameters, {len(low)} low, {len(high)} high"
        )
    code_list = [int(codes)] * len(params) if np.ndim(codes) == 0 else [int(c) for c in codes]
    if len(code_list) != len(params):
        raise ValueError(
            f"RooInterpolatedDensity '{name}': {len(code_list)} codes for {len(params)} parameters"
        )
    pdf = ROOT.RooInterpolatedDensity(
        name,
        title or name,
        nominal,
        _arglist(ROOT, low),
        _arglist(ROOT, high),
        _arglist(ROOT, params),
        to_std_vector(code_list, "int"),
        FLOORS[floor],
    )
    if integrals is not None:
        lo, hi = (np.asarray(v, dtype=np.float64).ravel() for v in integrals)
        pdf.setNodeNormalization(to_std_vector(lo), to_std_vector(hi))
    if normalization_samples is not None:
        lo, hi, *rest = normalization_samples
        lo, hi = np.atleast_2d(lo), np.atleast_2d(hi)
        if lo.shape != hi.shape or lo.shape[0] != len(params):
            raise ValueError(
                f"normalization_samples must be (K, n) arrays with K = {len(params)}, "
                f"got {lo.shape} and {hi.shape}"
            )
        weights = rest[0] if rest and rest[0] is not None else []
        pdf.setSampleNormalization(to_std_vector(lo), to_std_vector(hi), to_std_vector(weights))
    pdf._rooml_keep = (nominal, low, high, params)
    pdf._rooml_nps = params
    return pdf
