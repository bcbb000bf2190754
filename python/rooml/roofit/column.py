"""Per-event values computed outside RooFit as ``RooEventColumn`` objects, and datasets with an event index.

Values computed outside RooFit -- log-densities from onnxruntime on a GPU,
network outputs, exact truths -- enter RooFit through an *index observable*:
the dataset holds a column with each event's row number, and a
``RooEventColumn`` returns ``values[index]`` (or ``exp`` of it).

>>> import numpy as np
>>> from rooml.roofit import dataset_with_index, event_column, index_variable   # doctest: +SKIP
>>> idx = index_variable()                                                       # doctest: +SKIP
>>> logp = event_column("logp_sig", np.log([0.2, 0.5, 0.1]), idx, log=True)     # doctest: +SKIP
>>> data = dataset_with_index({}, idx, n=3)                                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rooml.roofit._library import load_library

__all__ = [
    "add_index_column",
    "dataset_with_index",
    "event_column",
    "index_variable",
    "set_column_values",
    "to_std_vector",
]

def _load():
    """``load_library()`` (kept as the module's single entry point to ROOT)."""
    return load_library()


#: Upper end of a default index variable's range (RooFit drops dataset rows outside a variable's range).
INDEX_MAX = float(2**31 - 1)


def index_variable(name: str = "event_index", title: str = "event index", n: int | None = None):
    """Make the index observable: a ``RooRealVar`` whose dataset value is the event's row number.

    Parameters
    ----------
    name, title
        Name and title of the variable.
    n
        Number of events; the range is then ``[0, n - 1]``.  By default the range is
        ``[0, 2**31 - 1]``, so datasets of any size (toys) fit in it.

    Returns
    -------
    ROOT.RooRealVar
    """
    ROOT = _load()
    high = INDEX_MAX if n is None else float(max(int(n) - 1, 0))
    return ROOT.RooRealVar(name, title, 0.0, 0.0, max(high, 1.0))


def to_std_vector(values, dtype: str = "double"):
    """Copy a 1-d array into a ``std::vector<double>`` or ``std::vector<int>`` with one buffer copy.

    Parameters
    ----------
    values
        1-d array-like.
    dtype
        ``"double"`` or ``"int"``.

    Returns
    -------
    ROOT.std.vector
    """
    ROOT = _load()
    np_type = {"double": np.float64, "int": np.int32}[dtype]
    arr = np.ascontiguousarray(np.asarray(values, dtype=np_type).ravel())
    vec = ROOT.std.vector[dtype](len(arr))
    if len(arr):
        view = vec.data()
        view.reshape((len(arr),))
        np.frombuffer(view, dtype=np_type, count=len(arr))[:] = arr
    return vec


def _check_values(name: str, values: np.ndarray, log: bool) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        e = int(bad[0])
        what = "log-value" if log else "value"
        extra = "; a density of 0 has log-value -inf and cannot enter a likelihood" if log else ""
        raise ValueError(
            f"RooEventColumn '{name}': {what} of event {e} is {values[e]} (all values must be "
            f"finite{extra}); {len(bad)} non-finite values in all"
        )


def event_column(name: str, values, index_var, log: bool = False, title: str | None = None):
    """Build a ``RooEventColumn``: per-event values exposed to RooFit through an index observable.

    Parameters
    ----------
    name
        Name of the column.
    values
        1-d array; ``values[i]`` belongs to the event whose index is ``i``.
    index_var
        The index observable (see :func:`index_variable`); the dataset holds it.
    log
        ``values`` are logarithms (e.g. log-densities) and the column's value is their
        exponential.
    title
        Title (defaults to the name).

    Returns
    -------
    ROOT.RooEventColumn

    Raises
    ------
    ValueError
        ``values`` is not 1-d or holds a non-finite value (the message names the event).
    """
    ROOT = _load()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"RooEventColumn '{name}': values must be 1-d, got shape {arr.shape}")
    _check_values(name, arr, log)
    column = ROOT.RooEventColumn(name, title or name, index_var, to_std_vector(arr), bool(log))
    column._rooml_index = index_var  # RooFit does not own its servers: keep the index alive with the column
    return column


def set_column_values(column, values, log: bool | None = None) -> None:
    """Replace a column's values (same checks as :func:`event_column`), e.g. for the next toy."""
    arr = np.asarray(values, dtype=np.float64)
    use_log = column.logValues() if log is None else bool(log)
    if arr.ndim != 1:
        raise ValueError(f"RooEventColumn '{column.GetName()}': values must be 1-d, got shape {arr.shape}")
    _check_values(column.GetName(), arr, use_log)
    column.setValues(to_std_vector(arr), use_log)


def _name(key) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


def dataset_with_index(
    columns: Mapping[str, np.ndarray],
    index_var,
    *,
    variables: Sequence | None = None,
    weights=None,
    n: int | None = None,
    name: str = "data",
    title: str | None = None,
):
    """Build a ``RooDataSet`` from numpy columns plus the index column ``0, 1, ..., n - 1``.

    Parameters
    ----------
    columns
        ``{name: 1-d array}`` of other observables (may be empty).
    index_var
        The index observable; its range is widened to hold ``n - 1`` if needed
        (RooFit would drop rows outside it).
    variables
        ``RooRealVar`` objects for ``columns`` (created with the data's range when omitted).
    weights
        Optional per-event weights (e.g. Poisson-bootstrap weights); the dataset is then weighted.
    n
        Number of events when ``columns`` is empty.
    name, title
        Name and title of the dataset.

    Returns
    -------
    ROOT.RooDataSet
        Row ``i`` has index ``i``.  The variables are attached as ``_rooml_vars``.

    Raises
    ------
    ValueError
        For a non-finite value (named as such, never "outside the range") or a
        value outside a given variable's range: the column, the number of such
        events and the first one's index and value.  Nothing is dropped.
    """
    ROOT = _load()
    lengths = {len(np.asarray(v)) for v in columns.values()}
    if n is not None:
        lengths.add(int(n))
    if weights is not None:
        lengths.add(len(np.asarray(weights)))
    if len(lengths) != 1:
        raise ValueError(
            f"dataset_with_index: columns, weights and n disagree on the number of events: {sorted(lengths)}"
        )
    count = lengths.pop()
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in columns.items()}
    if index_var.GetName() in arrays:
        raise ValueError(f"dataset_with_index: a column is already named '{index_var.GetName()}'")
    arrays[index_var.GetName()] = np.arange(count, dtype=np.float64)
    if index_var.getMax() < count - 1:
        index_var.setMax(float(count - 1))
    for key, arr in arrays.items():
        finite = np.isfinite(arr)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"dataset_with_index: column '{key}': {int((~finite).sum())} of {count} events "
                             f"are not finite (first: event {first}, value {float(arr[first])!r})")
    vars_ = list(variables) if variables is not None else []
    have = {v.GetName() for v in vars_}
    for var in vars_:
        arr = arrays.get(var.GetName())
        if arr is None:
            continue
        outside = ~((arr >= var.getMin()) & (arr <= var.getMax()))
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise ValueError(f"dataset_with_index: column '{var.GetName()}': {int(outside.sum())} of {count} "
                             f"events outside the range [{var.getMin():g}, {var.getMax():g}] of its variable "
                             f"(first: event {first}, value {float(arr[first])!r})")
    for key, arr in arrays.items():
        if key not in have and key != index_var.GetName():
            lo, hi = (float(arr.min()), float(arr.max())) if len(arr) else (0.0, 1.0)
            vars_.append(ROOT.RooRealVar(key, key, lo, lo, hi if hi > lo else lo + 1.0))
    argset = ROOT.RooArgSet()
    for v in vars_:
        argset.add(v)
    argset.add(index_var)
    weight_name = None
    if weights is not None:
        w = np.ascontiguousarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            raise ValueError(
                f"dataset_with_index: weight of event {int(np.flatnonzero(~np.isfinite(w))[0])} is not finite"
            )
        weight_name = "_rooml_weight"
        arrays[weight_name] = w
    data = ROOT.RooDataSet.from_numpy(arrays, argset, name=name, title=title or name, weight_name=weight_name)
    if data.numEntries() != count:
        raise RuntimeError(
            f"dataset_with_index: RooFit kept {data.numEntries()} of {count} events (values outside "
            "the variables' ranges are dropped)"
        )
    data._rooml_vars = (vars_, index_var)
    return data


def add_index_column(data, index_var, name: str | None = None):
    """Return a copy of ``data`` with the index column ``0, 1, ..., n - 1`` added (weights kept).

    Parameters
    ----------
    data
        A ``RooDataSet`` (weighted or not).
    index_var
        The index observable.
    name
        Name of the new dataset (default: the old one's).

    Returns
    -------
    ROOT.RooDataSet
    """
    arrays = {_name(k): v for k, v in data.to_numpy().items()}
    weight_name = data.weightVar().GetName() if data.isWeighted() and data.weightVar() else None
    weights = arrays.pop(weight_name) if weight_name else None
    variables = [v for v in data.get()]
    columns = {v.GetName(): arrays[v.GetName()] for v in variables}
    return dataset_with_index(
        columns,
        index_var,
        variables=variables,
        weights=weights,
        n=data.numEntries(),
        name=name or data.GetName(),
        title=data.GetTitle(),
    )
