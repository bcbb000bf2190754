"""Translate fitted scikit-learn preprocessing into rooml's preprocessing steps, exactly.

Supported: ``StandardScaler``, ``MinMaxScaler``, ``MaxAbsScaler``, ``RobustScaler``,
``PowerTransformer`` (Yeo-Johnson and Box-Cox, with or without ``standardize``),
``FunctionTransformer`` with ``np.log``, ``np.log1p`` or ``scipy.special.logit``
(and their inverses as ``inverse_func``), and ``Pipeline`` / ``ColumnTransformer``
(column subsets, ``remainder="passthrough"``) of these.  Everything else, a
transformer that cannot be reproduced exactly, is refused by name.

The steps are those of :mod:`rooml.models.preprocessing` (``affine``, ``log``,
``logit``, ``clip``, ``yeo_johnson``, ``box_cox``); every one of them is
element-wise, so the Jacobian of a flow's preprocessing is exact.
"""
from __future__ import annotations

import numpy as np

from rooml.export._describe import UnsupportedModelError

__all__ = ["steps_from_sklearn"]

SUPPORTED = (
    "StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, PowerTransformer, "
    "FunctionTransformer(np.log / np.log1p / scipy.special.logit), Pipeline, ColumnTransformer"
)


def steps_from_sklearn(transformer, n_features: int, *, kind: str) -> list[dict]:
    """Return rooml preprocessing steps that compute ``transformer.transform`` exactly.

    Parameters
    ----------
    transformer
        A fitted scikit-learn transformer (see the module docstring for the supported ones).
    n_features
        Number of features the model takes; the transformer must be fitted on as many.
    kind
        ``"flow"`` (the steps must be invertible with a Jacobian: ``MinMaxScaler(clip=True)``
        is refused) or ``"ratio"``.

    Returns
    -------
    list of dict
        Steps in ``Preprocessing.to_list()`` form.

    Raises
    ------
    UnsupportedModelError
        A transformer (named in the message) has no exact translation.
    ValueError
        The transformer is not fitted, or fitted on another number of features.
    """
    if kind not in ("flow", "ratio"):
        raise ValueError(f"kind must be 'flow' or 'ratio', not {kind!r}")
    fitted = getattr(transformer, "n_features_in_", None)
    if fitted is None:
        raise ValueError(f"{type(transformer).__name__} is not fitted (no n_features_in_)")
    if int(fitted) != int(n_features):
        raise ValueError(
            f"{type(transformer).__name__} was fitted on {fitted} features, the model has {n_features}"
        )
    steps, layout = _translate(transformer, list(range(n_features)), kind)
    if layout != list(range(n_features)):
        raise UnsupportedModelError(
            f"ColumnTransformer reorders the features (its output columns are the inputs {layout}); "
            "rooml preprocessing keeps every feature in place: list the column groups in input order"
        )
    return steps


def _values(array) -> list[float]:
    return [float(v) for v in np.ravel(np.asarray(array, dtype=np.float64))]


def _affine(features: list[int], shift, scale) -> dict:
    return {"kind": "affine", "features": list(features), "shift": _values(shift), "scale": _values(scale)}


def _translate(t, layout: list[int], kind: str) -> tuple[list[dict], list[int]]:
    """Translate ``t`` acting on the features ``layout`` (global indices of its input columns).

    Returns the steps and the global indices of its output columns.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        MaxAbsScaler,
        MinMaxScaler,
        PowerTransformer,
        RobustScaler,
        StandardScaler,
    )

    n = len(layout)
    ones, zeros = np.ones(n), np.zeros(n)
    if t is None or (isinstance(t, str) and t == "passthrough"):
        return [], layout
    if type(t) is Pipeline:
        steps: list[dict] = []
        for _, step in t.steps:
            more, layout = _translate(step, layout, kind)
            steps += more
        return steps, layout
    if type(t) is ColumnTransformer:
        return _column_transformer(t, layout, kind)
    if type(t) is StandardScaler:
        shift = t.mean_ if t.with_mean else zeros
        scale = t.scale_ if t.with_std else ones
        return [_affine(layout, shift, scale)], layout
    if type(t) is RobustScaler:
        shift = t.center_ if t.with_centering else zeros
        scale = t.scale_ if t.with_scaling else ones
        return [_affine(layout, shift, scale)], layout
    if type(t) is MaxAbsScaler:
        return [_affine(layout, zeros, t.scale_)], layout
    if type(t) is MinMaxScaler:  # y = x * scale_ + min_
        scale = np.asarray(t.scale_, dtype=np.float64)
        if np.any(scale == 0):
            raise UnsupportedModelError("MinMaxScaler with a zero scale (constant feature) is not invertible")
        steps = [_affine(layout, -np.asarray(t.min_) / scale, 1.0 / scale)]
        if t.clip:
            if kind == "flow":
                raise UnsupportedModelError(
                    "MinMaxScaler(clip=True) is not invertible and has no Jacobian; refused for a flow"
                )
            lo, hi = t.feature_range
            steps.append({"kind": "clip", "features": list(layout), "low": [float(lo)] * n,
                          "high": [float(hi)] * n})
        return steps, layout
    if type(t) is PowerTransformer:
        method = {"yeo-johnson": "yeo_johnson", "box-cox": "box_cox"}[t.method]
        steps = [{"kind": method, "features": list(layout), "lmbda": _values(t.lambdas_)}]
        if t.standardize:
            steps.append(_affine(layout, t._scaler.mean_, t._scaler.scale_))
        return steps, layout
    if type(t) is FunctionTransformer:
        return _function_transformer(t, layout), layout
    raise UnsupportedModelError(
        f"scikit-learn {type(t).__name__} has no exact translation into rooml preprocessing "
        f"(supported: {SUPPORTED})"
    )


def _function_transformer(t, layout: list[int]) -> list[dict]:
    import scipy.special

    n = len(layout)
    if t.kw_args or t.inv_kw_args:
        raise UnsupportedModelError("FunctionTransformer with kw_args is not supported")
    known = {
        np.log: ({"kind": "log", "features": list(layout), "a": [1.0] * n, "b": [0.0] * n}, np.exp),
        np.log1p: ({"kind": "log", "features": list(layout), "a": [1.0] * n, "b": [1.0] * n}, np.expm1),
        scipy.special.logit: ({"kind": "logit", "features": list(layout)}, scipy.special.expit),
    }
    if t.func is None:
        return []
    if t.func not in known:
        name = getattr(t.func, "__name__", repr(t.func))
        raise UnsupportedModelError(
            f"FunctionTransformer(func={name}) has no exact translation "
            "(supported: np.log, np.log1p, scipy.special.logit)"
        )
    step, inverse = known[t.func]
    if t.inverse_func is not None and t.inverse_func is not inverse:
        name = getattr(t.inverse_func, "__name__", repr(t.inverse_func))
        raise UnsupportedModelError(
            f"FunctionTransformer: inverse_func={name} is not the inverse of {t.func.__name__}"
        )
    return [step]


def _column_transformer(ct, layout: list[int], kind: str) -> tuple[list[dict], list[int]]:
    indices = ct._transformer_to_input_indices
    steps: list[dict] = []
    out: list[int] = []
    for name, trans, _ in ct.transformers_:
        cols = [int(i) for i in indices[name]]
        if isinstance(trans, str) and trans == "drop":
            if cols:
                raise UnsupportedModelError(
                    f"ColumnTransformer drops columns {cols} ({name!r}); the model must see every feature"
                )
            continue
        if not cols:
            continue
        more, sub = _translate(trans, [layout[c] for c in cols], kind)
        steps += more
        out += sub
    if sorted(out) != sorted(layout):
        raise UnsupportedModelError("ColumnTransformer does not pass every feature exactly once")
    return steps, out
