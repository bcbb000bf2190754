"""Invertible, exportable, elementwise preprocessing of physical features.

A :class:`Preprocessing` is an ordered chain of steps; each step transforms a
subset of the feature columns and leaves the others unchanged.  The chain
serializes (:meth:`Preprocessing.to_list`) to the JSON-able list that rooml's
C++ core reads, and the formulas below are the contract with that core (all
evaluated in float64)::

    affine: y = (x - shift) / scale        logdet = -log|scale|
    log:    y = log(a*x + b)               logdet = log|a| - log(a*x + b)
    logit:  y = log(x) - log1p(-x)         logdet = -log(x) - log1p(-x)
    clip:   y = min(max(x, low), high)     logdet = 0
    yeo_johnson (lmbda = l), as scikit-learn's PowerTransformer / scipy.stats.yeojohnson:
        x >= 0: y = expm1(l log1p(x)) / l           (log1p(x) if l == 0)
                logdet = (l - 1) log1p(x)
        x < 0:  y = -expm1((2 - l) log1p(-x)) / (2 - l)   (-log1p(-x) if l == 2)
                logdet = (1 - l) log1p(-x)
    box_cox (lmbda = l), as scipy.special.boxcox, for x > 0:
        y = expm1(l log(x)) / l (log(x) if l == 0)  logdet = (l - 1) log(x)

``logdet`` is ``log|dy/dx|`` summed over the transformed features, so the
physical density is ``p_x(x) = p_y(y(x)) * exp(logdet)``.  ``clip`` only guards
``log``/``logit`` against edge values; it is not invertible and its inverse is
the identity.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

__all__ = [
    "RECIPES",
    "Preprocessing",
    "build_preprocessing",
    "register_recipe",
    "smear",
]

_PARAMS = {
    "affine": ("shift", "scale"),
    "log": ("a", "b"),
    "logit": (),
    "clip": ("low", "high"),
    "yeo_johnson": ("lmbda",),
    "box_cox": ("lmbda",),
}
# |lambda| below this counts as 0 (and |lambda - 2| as 2): numpy's float64 eps, as scipy uses.
_LAMBDA_EPS = float(np.finfo(np.float64).eps)


def _power_forward(kind: str, x, lmbda: float, lib, expm1=None):
    """Yeo-Johnson or Box-Cox transform and its log-derivative, with numpy or torch as ``lib``.

    ``expm1`` replaces ``lib.expm1`` (ONNX has no Expm1 operator).
    """
    expm1 = expm1 or lib.expm1
    if kind == "box_cox":
        lx = lib.log(x)
        y = lx if abs(lmbda) < _LAMBDA_EPS else expm1(lmbda * lx) / lmbda
        return y, (lmbda - 1.0) * lx
    zero = x * 0
    lp = lib.log1p(lib.maximum(x, zero))  # log1p(x) where x >= 0
    ln = lib.log1p(-lib.minimum(x, zero))  # log1p(-x) where x < 0
    y_pos = lp if abs(lmbda) < _LAMBDA_EPS else expm1(lmbda * lp) / lmbda
    y_neg = -ln if abs(lmbda - 2) < _LAMBDA_EPS else -expm1((2 - lmbda) * ln) / (2 - lmbda)
    pos = x >= 0
    return lib.where(pos, y_pos, y_neg), lib.where(pos, (lmbda - 1.0) * lp, (1.0 - lmbda) * ln)


def _power_inverse(kind: str, y: np.ndarray, lmbda: float) -> np.ndarray:
    """Inverse of :func:`_power_forward` (NaN outside the transform's image)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "box_cox":
            return np.exp(y) if abs(lmbda) < _LAMBDA_EPS else np.exp(np.log1p(lmbda * y) / lmbda)
        yp, yn = np.maximum(y, 0.0), np.minimum(y, 0.0)
        x_pos = np.expm1(yp) if abs(lmbda) < _LAMBDA_EPS else np.expm1(np.log1p(lmbda * yp) / lmbda)
        if abs(lmbda - 2) < _LAMBDA_EPS:
            x_neg = -np.expm1(-yn)
        else:
            x_neg = -np.expm1(np.log1p(-(2 - lmbda) * yn) / (2 - lmbda))
        return np.where(y >= 0, x_pos, x_neg)


def _normalize_step(step: Mapping, position: int) -> dict:
    """Validate one step and return it with Python ints/floats only."""
    if not isinstance(step, Mapping) or "kind" not in step:
        raise ValueError(f"preprocessing step {position} must be a dict with a 'kind'")
    kind = step["kind"]
    if kind not in _PARAMS:
        raise ValueError(
            f"preprocessing step {position}: unknown kind {kind!r} (known: {sorted(_PARAMS)})"
        )
    features = [int(i) for i in step.get("features", [])]
    if not features:
        raise ValueError(f"preprocessing step {position} ({kind}) acts on no features")
    if len(set(features)) != len(features) or min(features) < 0:
        raise ValueError(f"preprocessing step {position} ({kind}): bad feature indices {features}")
    out: dict = {"kind": kind, "features": features}
    for name in _PARAMS[kind]:
        values = [float(v) for v in np.ravel(np.asarray(step[name], dtype=np.float64))]
        if len(values) != len(features):
            raise ValueError(
                f"preprocessing step {position} ({kind}): {name!r} has {len(values)} values "
                f"for {len(features)} features"
            )
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"preprocessing step {position} ({kind}): {name!r} is not finite")
        out[name] = values
    unknown = set(step) - {"kind", "features", *_PARAMS[kind]}
    if unknown:
        raise ValueError(f"preprocessing step {position} ({kind}): unknown keys {sorted(unknown)}")
    if kind == "affine" and any(s == 0 for s in out["scale"]):
        raise ValueError(f"preprocessing step {position} (affine): scale must be non-zero")
    if kind == "log" and any(a == 0 for a in out["a"]):
        raise ValueError(f"preprocessing step {position} (log): a must be non-zero")
    if kind == "clip" and any(lo >= hi for lo, hi in zip(out["low"], out["high"])):
        raise ValueError(f"preprocessing step {position} (clip): low must be below high")
    return out


class Preprocessing:
    """Ordered chain of elementwise, invertible feature transforms.

    Parameters
    ----------
    steps
        Steps in the serialized form (see the module docstring).
    feature_names
        Optional names of the physical features, used in error messages only.

    Examples
    --------
    >>> import numpy as np
    >>> pre = Preprocessing([{"kind": "log", "features": [0], "a": [1.0], "b": [0.0]}])
    >>> y, logdet = pre.forward_numpy(np.array([[np.e, 5.0]]))
    >>> y.tolist(), logdet.tolist()
    ([[1.0, 5.0]], [-1.0])
    """

    def __init__(self, steps: Sequence[Mapping] = (), feature_names: Sequence[str] | None = None):
        self.steps = [_normalize_step(s, k) for k, s in enumerate(steps)]
        self.feature_names = list(feature_names) if feature_names is not None else None

    def __repr__(self) -> str:
        return f"Preprocessing({self.to_list()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Preprocessing) and self.to_list() == other.to_list()

    def __len__(self) -> int:
        return len(self.steps)

    def to_list(self) -> list[dict]:
        """Return the steps as a JSON-able list of dicts (a deep copy)."""
        return [{k: (list(v) if isinstance(v, list) else v) for k, v in s.items()} for s in self.steps]

    @classmethod
    def from_list(
        cls, steps: Sequence[Mapping], feature_names: Sequence[str] | None = None
    ) -> Preprocessing:
        """Build a chain from :meth:`to_list` output."""
        return cls(steps, feature_names)

    def then(self, other: Preprocessing) -> Preprocessing:
        """Return the chain that applies ``self`` and then ``other``."""
        return Preprocessing(self.steps + other.steps, self.feature_names)

    # ------------------------------------------------------------------ helpers
    def _name(self, i: int) -> str:
        if self.feature_names is not None and i < len(self.feature_names):
            return f"feature {i} ({self.feature_names[i]!r})"
        return f"feature {i}"

    def _check_shape(self, shape: tuple) -> None:
        if len(shape) != 2:
            raise ValueError(f"expected a 2-d array (events, features), got shape {tuple(shape)}")
        used = [i for s in self.steps for i in s["features"]]
        if used and max(used) >= shape[1]:
            raise ValueError(
                f"preprocessing uses feature index {max(used)} but the data has {shape[1]} features"
            )

    def _domain_error(self, kind: str, i: int, bad: int, total: int, what: str) -> ValueError:
        return ValueError(
            f"preprocessing step {kind!r} on {self._name(i)}: {bad} of {total} events "
            f"outside its domain ({what})"
        )

    # ------------------------------------------------------------------ numpy
    def forward_numpy(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the chain in float64.

        Parameters
        ----------
        x
            Physical features, shape ``(N, D)``.

        Returns
        -------
        y : numpy.ndarray
            Transformed features, float64, shape ``(N, D)``.
        logdet : numpy.ndarray
            ``log|det dy/dx|`` per event, float64, shape ``(N,)``.
        """
        y = np.array(x, dtype=np.float64, copy=True)
        self._check_shape(y.shape)
        logdet = np.zeros(y.shape[0])
        for step in self.steps:
            kind = step["kind"]
            for j, i in enumerate(step["features"]):
                c = y[:, i]
                if kind == "affine":
                    y[:, i] = (c - step["shift"][j]) / step["scale"][j]
                    logdet = logdet - math.log(abs(step["scale"][j]))
                elif kind == "log":
                    a, b = step["a"][j], step["b"][j]
                    arg = a * c + b
                    bad = int(np.count_nonzero(~(arg > 0)))
                    if bad:
                        raise self._domain_error(kind, i, bad, len(c), f"needs {a!r}*x + {b!r} > 0")
                    y[:, i] = np.log(arg)
                    logdet = logdet + math.log(abs(a)) - np.log(arg)
                elif kind == "logit":
                    bad = int(np.count_nonzero(~((c > 0) & (c < 1))))
                    if bad:
                        raise self._domain_error(kind, i, bad, len(c), "needs 0 < x < 1")
                    lx, l1mx = np.log(c), np.log1p(-c)
                    y[:, i] = lx - l1mx
                    logdet = logdet - lx - l1mx
                elif kind in ("yeo_johnson", "box_cox"):
                    if kind == "box_cox":
                        bad = int(np.count_nonzero(~(c > 0)))
                        if bad:
                            raise self._domain_error(kind, i, bad, len(c), "needs x > 0")
                    y[:, i], ld = _power_forward(kind, c, step["lmbda"][j], np)
                    logdet = logdet + ld
                else:  # clip
                    y[:, i] = np.minimum(np.maximum(c, step["low"][j]), step["high"][j])
        return y, logdet

    def inverse_numpy(self, y: np.ndarray) -> np.ndarray:
        """Map transformed features back to physical ones (float64).

        ``clip`` steps are inverted as the identity.
        """
        x = np.array(y, dtype=np.float64, copy=True)
        self._check_shape(x.shape)
        for step in reversed(self.steps):
            kind = step["kind"]
            for j, i in enumerate(step["features"]):
                c = x[:, i]
                if kind == "affine":
                    x[:, i] = c * step["scale"][j] + step["shift"][j]
                elif kind == "log":
                    x[:, i] = (np.exp(c) - step["b"][j]) / step["a"][j]
                elif kind == "logit":
                    e = np.exp(-np.abs(c))
                    x[:, i] = np.where(c >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
                elif kind in ("yeo_johnson", "box_cox"):
                    x[:, i] = _power_inverse(kind, c, step["lmbda"][j])
        return x

    # ------------------------------------------------------------------ torch
    def forward_torch(
        self, x: torch.Tensor, check: bool = True, exportable: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable version of :meth:`forward_numpy` that keeps ``x``'s dtype and device.

        Parameters
        ----------
        x
            Physical features, shape ``(N, D)``.
        check
            Raise on values outside a step's domain (``False`` when tracing a graph).
        exportable
            Use only operators that ONNX has (``exp(v) - 1`` for ``expm1``).

        Returns
        -------
        y, logdet : torch.Tensor
            Transformed features ``(N, D)`` and ``log|det dy/dx|`` per event ``(N,)``.
        """
        self._check_shape(tuple(x.shape))
        columns = list(torch.unbind(x, dim=1))
        logdet = torch.zeros_like(x[:, 0])
        for step in self.steps:
            kind = step["kind"]
            for j, i in enumerate(step["features"]):
                c = columns[i]
                if kind == "affine":
                    columns[i] = (c - step["shift"][j]) / step["scale"][j]
                    logdet = logdet - math.log(abs(step["scale"][j]))
                elif kind == "log":
                    a, b = step["a"][j], step["b"][j]
                    arg = a * c + b
                    bad = int(torch.count_nonzero(~(arg > 0))) if check else 0
                    if bad:
                        raise self._domain_error(kind, i, bad, len(c), f"needs {a!r}*x + {b!r} > 0")
                    columns[i] = torch.log(arg)
                    logdet = logdet + math.log(abs(a)) - torch.log(arg)
                elif kind == "logit":
                    bad = int(torch.count_nonzero(~((c > 0) & (c < 1)))) if check else 0
                    if bad:
                        raise self._domain_error(kind, i, bad, len(c), "needs 0 < x < 1")
                    lx, l1mx = torch.log(c), torch.log1p(-c)
                    columns[i] = lx - l1mx
                    logdet = logdet - lx - l1mx
                elif kind in ("yeo_johnson", "box_cox"):
                    bad = int(torch.count_nonzero(~(c > 0))) if check and kind == "box_cox" else 0
                    if bad:
                        raise self._domain_error(kind, i, bad, len(c), "needs x > 0")
                    expm1 = (lambda v: torch.exp(v) - 1) if exportable else None
                    columns[i], ld = _power_forward(kind, c, step["lmbda"][j], torch, expm1)
                    logdet = logdet + ld
                else:  # clip
                    columns[i] = torch.clamp(c, step["low"][j], step["high"][j])
        return torch.stack(columns, dim=1), logdet

    # ------------------------------------------------------------------ domain
    def domain(self, n_features: int) -> list[tuple[float, float]]:
        """Interval of physical values on which the chain is defined, per feature.

        Walks the steps backwards, intersecting each step's own domain with the
        preimage of what the later steps accept.  Boundaries are open.
        """
        lo = [-math.inf] * n_features
        hi = [math.inf] * n_features
        for step in reversed(self.steps):
            kind = step["kind"]
            for j, i in enumerate(step["features"]):
                a_, b_ = lo[i], hi[i]
                if kind == "affine":
                    s, t = step["scale"][j], step["shift"][j]
                    ends = sorted((a_ * s + t, b_ * s + t))
                elif kind == "log":
                    a, b = step["a"][j], step["b"][j]
                    ends = sorted((_exp_or_inf(a_, b, a), _exp_or_inf(b_, b, a)))
                elif kind == "logit":
                    ends = [_expit(a_), _expit(b_)]
                elif kind in ("yeo_johnson", "box_cox"):
                    ends = [_power_preimage(kind, a_, step["lmbda"][j], -math.inf),
                            _power_preimage(kind, b_, step["lmbda"][j], math.inf)]
                    if kind == "box_cox":
                        ends[0] = max(ends[0], 0.0)
                else:  # clip: saturates, so anything beyond [low, high] is accepted
                    low, high = step["low"][j], step["high"][j]
                    ends = [-math.inf if low > a_ else a_, math.inf if high < b_ else b_]
                lo[i], hi[i] = float(ends[0]), float(ends[1])
        return list(zip(lo, hi))

    # ------------------------------------------------------------------ builders
    @classmethod
    def standardize(
        cls,
        x: np.ndarray,
        features: Sequence[int] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> Preprocessing:
        """Affine step to zero mean and unit standard deviation (float64 statistics).

        Parameters
        ----------
        x
            Data, shape ``(N, D)``.
        features
            Columns to standardize (default: all).
        feature_names
            Names for error messages.
        """
        x = np.asarray(x, dtype=np.float64)
        features = list(range(x.shape[1])) if features is None else [int(i) for i in features]
        mean = x[:, features].mean(axis=0)
        std = x[:, features].std(axis=0)
        for j, i in enumerate(features):
            if not (np.isfinite(std[j]) and std[j] > 0):
                name = cls([], feature_names)._name(i)
                raise ValueError(f"cannot standardize {name}: its standard deviation is {std[j]}")
        step = {"kind": "affine", "features": features, "shift": mean.tolist(), "scale": std.tolist()}
        return cls([step], feature_names)

    @classmethod
    def unit_interval(
        cls,
        x: np.ndarray,
        low: float | Sequence[float] | None = None,
        high: float | Sequence[float] | None = None,
        *,
        margin: float = 0.01,
    ) -> Preprocessing:
        """Affine step mapping ``[low, high]`` onto ``[0, 1]`` for every feature.

        Parameters
        ----------
        x
            Data, shape ``(N, D)``; gives ``D`` and the default bounds.
        low, high
            Bounds (scalars or one per feature).  Default: the data range widened
            by ``margin`` times its width on each side, so the data lie strictly
            inside ``(0, 1)``.
        """
        x = np.asarray(x, dtype=np.float64)
        d = x.shape[1]
        width = x.max(axis=0) - x.min(axis=0)
        lo = x.min(axis=0) - margin * width if low is None else np.broadcast_to(low, (d,))
        hi = x.max(axis=0) + margin * width if high is None else np.broadcast_to(high, (d,))
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        step = {
            "kind": "affine",
            "features": list(range(d)),
            "shift": lo.tolist(),
            "scale": (hi - lo).tolist(),
        }
        return cls([step])


def _expit(v: float) -> float:
    if v == math.inf:
        return 1.0
    if v == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _power_preimage(kind: str, v: float, lmbda: float, beyond: float) -> float:
    """Return the preimage of a bound under a monotone power transform (``beyond`` outside its image)."""
    if math.isinf(v):
        return v if kind == "yeo_johnson" or v > 0 else 0.0
    x = float(_power_inverse(kind, np.array([v]), lmbda)[0])
    return x if math.isfinite(x) else beyond


def _exp_or_inf(v: float, b: float, a: float) -> float:
    """``(exp(v) - b) / a`` with ``exp`` overflow mapped to the right infinity."""
    try:
        return (math.exp(v) - b) / a
    except OverflowError:
        return math.inf if a > 0 else -math.inf


# ---------------------------------------------------------------------- recipes
Recipe = Callable[[np.ndarray, list[int]], list[dict]]


def _log(x: np.ndarray, f: list[int]) -> list[dict]:
    return [{"kind": "log", "features": f, "a": [1.0] * len(f), "b": [0.0] * len(f)}]


def _log1p(x: np.ndarray, f: list[int]) -> list[dict]:
    return [{"kind": "log", "features": f, "a": [1.0] * len(f), "b": [1.0] * len(f)}]


def _log_pi_minus(x: np.ndarray, f: list[int]) -> list[dict]:
    return [{"kind": "log", "features": f, "a": [-1.0] * len(f), "b": [math.pi] * len(f)}]


def _logit(x: np.ndarray, f: list[int]) -> list[dict]:
    return [{"kind": "logit", "features": f}]


def _clip_logit(x: np.ndarray, f: list[int], eps: float = 1e-6) -> list[dict]:
    n = len(f)
    return [
        {"kind": "clip", "features": f, "low": [eps] * n, "high": [1.0 - eps] * n},
        {"kind": "logit", "features": f},
    ]


def _bounded_logit(x: np.ndarray, f: list[int], margin: float = 0.01) -> list[dict]:
    step = Preprocessing.unit_interval(x, margin=margin).steps[0]
    return [{**step, "features": f}, {"kind": "logit", "features": f}]


RECIPES: dict[str, Recipe] = {
    "identity": lambda x, f: [],
    "log": _log,
    "log1p": _log1p,
    "log_pi_minus": _log_pi_minus,
    "logit": _logit,
    "clip_logit": _clip_logit,
    "bounded_logit": _bounded_logit,
}
"""Per-feature recipes for :func:`build_preprocessing`.

``log``: ``log(x)``; ``log1p``: ``log(x + 1)``; ``log_pi_minus``: ``log(pi - x)``
(e.g. ``dphi`` near ``pi``); ``logit``: for values in ``(0, 1)``; ``clip_logit``:
clip to ``[1e-6, 1 - 1e-6]`` then logit; ``bounded_logit``: affine map of the data
range (widened by 1 % per side) into ``(0, 1)``, then logit.
"""


def register_recipe(name: str, recipe: Recipe) -> None:
    """Add a recipe ``recipe(columns (N, k), feature_indices) -> list of steps`` to :data:`RECIPES`."""
    if name in RECIPES:
        raise ValueError(f"recipe {name!r} already exists")
    RECIPES[name] = recipe


def build_preprocessing(
    x: np.ndarray,
    spec: Mapping[str | int, str] | None = None,
    *,
    features: Sequence[str] | None = None,
    standardize: bool = True,
) -> Preprocessing:
    """Compose per-feature recipes, then standardize every feature.

    Parameters
    ----------
    x
        Training data, shape ``(N, D)``.
    spec
        ``{feature name or index: recipe name}``, recipes from :data:`RECIPES`,
        e.g. ``{"pT_bb": "log", "dphi": "log_pi_minus", "frac": "logit"}``.
        Features not named are only standardized.
    features
        Feature names (needed when ``spec`` uses names).
    standardize
        Append an affine step to zero mean and unit variance of the transformed data.

    Returns
    -------
    Preprocessing

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).uniform(0.1, 3.0, size=(1000, 2))
    >>> pre = build_preprocessing(x, {"pt": "log"}, features=["pt", "dphi"])
    >>> [s["kind"] for s in pre.to_list()]
    ['log', 'affine']
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-d array (events, features), got shape {x.shape}")
    names = list(features) if features is not None else None
    if names is not None and len(names) != x.shape[1]:
        raise ValueError(f"{len(names)} feature names for data with {x.shape[1]} features")
    groups: dict[str, list[int]] = {}
    for key, recipe in (spec or {}).items():
        if isinstance(key, str):
            if names is None or key not in names:
                raise ValueError(
                    f"unknown feature {key!r} in the preprocessing spec (features: {names})"
                )
            index = names.index(key)
        else:
            index = int(key)
            if not 0 <= index < x.shape[1]:
                raise ValueError(f"feature index {index} out of range for {x.shape[1]} features")
        if recipe not in RECIPES:
            raise ValueError(
                f"unknown recipe {recipe!r} for feature {key!r} (known: {sorted(RECIPES)})"
            )
        groups.setdefault(recipe, []).append(index)
    steps: list[dict] = []
    for recipe, indices in groups.items():
        steps.extend(RECIPES[recipe](x[:, indices], indices))
    pre = Preprocessing(steps, names)
    if standardize:
        y, _ = pre.forward_numpy(x)
        pre = pre.then(Preprocessing.standardize(y, feature_names=names))
    return pre


def smear(
    x: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    *,
    sigma: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Add Gaussian noise of ``fraction`` times each feature's standard deviation.

    Parameters
    ----------
    x
        Data, shape ``(N, D)``.
    fraction
        Noise width in units of each feature's standard deviation.
    rng
        Random generator.
    sigma
        Noise widths from an earlier call; pass them so that fit data are
        smeared exactly like the training data (``fraction`` is then ignored).

    Returns
    -------
    x_smeared : numpy.ndarray
        ``x + sigma * N(0, 1)``, float64.
    sigma : numpy.ndarray
        The per-feature widths used; store them with the model.
    """
    x = np.asarray(x, dtype=np.float64)
    if sigma is None:
        sigma = float(fraction) * x.std(axis=0)
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.shape != (x.shape[1],):
        raise ValueError(f"sigma has shape {sigma.shape}, expected ({x.shape[1]},)")
    return x + sigma * rng.standard_normal(x.shape), sigma
