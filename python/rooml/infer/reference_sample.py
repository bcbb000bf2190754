"""The Monte-Carlo error of an NSBI reference sample, propagated into the fitted parameters.

An NSBI model whose interpolated shapes are normalized on a reference sample (``nsbi_model(...,
reference_sample=...)``) estimates ``N_j(alpha) = E_ref[r_j g_j(alpha)] / E_ref[r_j]`` from finitely many
events.  At ``alpha = 0`` the estimate is exact (``N_j(0) = 1``), but its slope in alpha carries a
Monte-Carlo error, which shifts every fit to the same data alike: by about ``sqrt(n_data / n_reference)``
of the nuisance parameter's error (measured on the offshell4l toy: docs/inference.md).  It is a systematic
error of the analysis, not a fluctuation of the data, so Hesse and Minos do not contain it.

:func:`reference_sample_errors` measures it with a Poisson bootstrap of the reference sample: each replica
gives every reference event a weight ``w Poisson(1)``, the model is refitted from the best fit, and the
covariance of the replicas' best fits is the reference sample's contribution, to be added to Hesse's.
:func:`check_reference_size` warns when a reference sample is small for the data.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from rooml.infer.fit import FitResult, minimize

__all__ = ["ReferenceSampleErrors", "check_reference_size", "effective_size", "reference_sample_errors",
           "MIN_REFERENCE_FACTOR"]

# A reference sample MIN_REFERENCE_FACTOR times the data (effective sizes) shifts the fitted nuisance
# parameters by about 1/sqrt(MIN_REFERENCE_FACTOR) = 0.2 of their errors.
MIN_REFERENCE_FACTOR = 25.0


def effective_size(weights) -> float:
    """Kish's effective number of events ``(sum w)^2 / sum w^2`` of a weighted sample."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w * w)) if len(w) else 0.0


def check_reference_size(n_data: float, reference_weights, *, name: str = "the model") -> float:
    """Warn when the reference sample is smaller than ``MIN_REFERENCE_FACTOR`` times the data.

    Returns the expected shift of the nuisance parameters in units of their errors,
    ``sqrt(n_data / n_reference)`` (effective sizes).
    """
    n_ref = effective_size(reference_weights)
    if n_ref <= 0 or n_data <= 0:
        return 0.0
    shift = float(np.sqrt(n_data / n_ref))
    if n_ref < MIN_REFERENCE_FACTOR * n_data:
        warnings.warn(
            f"{name}: the reference sample normalizing the shapes has {n_ref:.0f} effective events for "
            f"{n_data:.0f} data events; its Monte-Carlo error shifts the nuisance parameters by about "
            f"{shift:.2f} of their errors. Use at least {MIN_REFERENCE_FACTOR:.0f}x the data, or add "
            "rooml.infer.reference_sample_errors() to the fit's errors.", UserWarning, stacklevel=3)
    return shift


@dataclass
class ReferenceSampleErrors:
    """A fit's Hesse errors and the reference sample's Monte-Carlo errors of the same parameters."""

    names: list[str]
    values: np.ndarray
    hesse_covariance: np.ndarray
    reference_covariance: np.ndarray
    replicas: np.ndarray  # best fit of each bootstrap replica, one row per replica

    @property
    def hesse(self) -> np.ndarray:
        """Hesse errors."""
        return np.sqrt(np.diag(self.hesse_covariance))

    @property
    def reference(self) -> np.ndarray:
        """Reference-sample (Monte-Carlo) errors."""
        return np.sqrt(np.diag(self.reference_covariance))

    @property
    def total_covariance(self) -> np.ndarray:
        """Hesse's covariance plus the reference sample's."""
        return self.hesse_covariance + self.reference_covariance

    @property
    def total(self) -> np.ndarray:
        """Errors from :attr:`total_covariance`."""
        return np.sqrt(np.diag(self.total_covariance))

    def __str__(self) -> str:
        lines = [f"{'parameter':<14}{'value':>12}{'Hesse':>11}{'reference':>11}{'total':>11}"]
        for i, n in enumerate(self.names):
            lines.append(f"{n:<14}{self.values[i]:12.5g}{self.hesse[i]:11.4g}{self.reference[i]:11.4g}"
                         f"{self.total[i]:11.4g}")
        return "\n".join(lines)


def as_array(vector) -> np.ndarray:
    """Copy a ``std::vector<double>`` into a numpy array (through its buffer, not element by element)."""
    if vector.size() == 0:
        return np.empty(0)
    return np.frombuffer(vector.data(), dtype=np.float64, count=vector.size()).copy()


def _reference_arrays(nsbi):
    return tuple(as_array(a) for a in (nsbi.referenceWeights(), nsbi.referenceRatios(),
                                       nsbi.referenceShapeLow(), nsbi.referenceShapeHigh()))


def _vectors(ROOT, *arrays):
    return [ROOT.std.vector["double"](a) for a in arrays]


def reference_sample_errors(model, data, *, replicas: int = 30, seed: int = 0, constraints=None,
                            progress: bool = True) -> ReferenceSampleErrors:
    """Fit ``model`` to ``data`` and measure the reference sample's error with a Poisson bootstrap of it.

    Parameters
    ----------
    model
        An NSBI model (``nsbi_model``'s dictionary or its pdf) with a reference sample.
    data
        The dataset.
    replicas
        Bootstrap replicas (each one refit); the relative precision of the reference error is about
        ``1 / sqrt(2 replicas)``.
    seed
        Seed of the replicas' Poisson weights.
    constraints
        Extra Gaussian constraint terms, as in :func:`rooml.infer.fit`.
    progress
        A progress bar over the replicas.

    Returns
    -------
    ReferenceSampleErrors
        Parameter values and Hesse covariance of the fit, the reference sample's covariance, the replicas.
        The model's reference sample and parameters are left as they were after the nominal fit.
    """
    import ROOT
    from tqdm.auto import tqdm

    from rooml.roofit.nsbi import _nsbi_parts, nsbi_nll

    parts = _nsbi_parts(ROOT, model, constraints)
    if parts is None:
        raise ValueError("reference_sample_errors needs an NSBI model (nsbi_model's pdf with Gaussian "
                         "constraints)")
    nsbi = parts[0]
    if not nsbi.shapeNormalized():
        raise ValueError(f"'{nsbi.GetName()}' has no reference sample: its shapes are not normalized on one, "
                         "so there is no reference-sample error")
    if replicas < 2:
        raise ValueError(f"replicas must be >= 2, got {replicas}")
    nll = nsbi_nll(model, data, constraints=constraints, offset=False)
    nominal = FitResult.from_roofit(minimize(nll, hesse=True))
    names = list(nominal.parameters)
    params = nll.getVariables()
    best = params.snapshot()
    errors = np.array([nominal.parameters[n].error for n in names])
    weights, ratios, low, high = _reference_arrays(nsbi)
    rng = np.random.default_rng(seed)
    fits = []
    try:
        for _ in tqdm(range(replicas), desc="reference-sample bootstrap", disable=not progress):
            replica_weights = weights * rng.poisson(1.0, len(weights))
            nsbi.setShapeNormalizationSample(*_vectors(ROOT, replica_weights, ratios, low, high))
            replica = nsbi_nll(model, data, constraints=constraints, offset=False)
            params.assign(best)
            minimize(replica, hesse=False)
            fits.append([params.find(n).getVal() for n in names])
    finally:
        nsbi.setShapeNormalizationSample(*_vectors(ROOT, weights, ratios, low, high))
        params.assign(best)
    fits = np.array(fits)
    values = np.array([nominal.parameters[n].value for n in names])
    hesse = nominal.correlation * np.outer(errors, errors)
    return ReferenceSampleErrors(names, values, hesse, np.atleast_2d(np.cov(fits.T)), fits)
