"""Write a fitted Gaussian-process mass plane (``MassPlaneGP``) to an ``.onnx`` file with rooml metadata.

The file is a float64 ONNX graph with input ``x`` (events x 2: ``m_H1, m_H2`` in
GeV) and outputs ``mean_counts`` and ``std_counts`` (events): the GP's predicted
counts per bin and their standard deviation at any point,

    counts(m) = mu(m) + scale * sum_i C exp(-|(m - X_i)/l|^2 / 2) alpha_i
    std(m)    = scale * sqrt(max(C - |L^-1 k(m)|^2, 0))

(``MassPlaneGP.predict_points``).  The ``rooml`` metadata document has
``"kind": "gp_massplane"``, the features, the box (``support``), the binning
and blinded bins, the year, the kernel (``"constant_rbf"``: ``constant`` C and
``length_scales``), ``scale``, the mean function (kind and coefficients) and
the names of the initializers that hold the training points X, the weights
alpha and the inverse Cholesky factor L^-1, from which rooml's C++ core
evaluates the model natively.  One file per year (see :func:`export_gp_per_year`).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from scipy.linalg import solve_triangular

from rooml._version import __version__
from rooml.export.onnx_file import FORMAT_VERSION, _attach_metadata, check_agreement, write_atomic

__all__ = ["export_gp_massplane", "export_gp_per_year"]

_OUTPUTS = ("mean_counts", "std_counts")
_TENSORS = {"train_points": "gp.train_points", "alpha": "gp.alpha", "cholesky_inverse": "gp.cholesky_inverse"}


def _graph(gp, train: np.ndarray, alpha: np.ndarray, chol_inv: np.ndarray, constant: float,
           opset: int) -> bytes:
    """Return the ONNX graph of ``mean_counts`` and ``std_counts`` (float64 throughout)."""
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, value, dtype=np.float64):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    const(_TENSORS["train_points"], train)
    const(_TENSORS["alpha"], alpha)
    const(_TENSORS["cholesky_inverse"], chol_inv)
    inv_l = const("gp.inverse_length_scales", 1.0 / np.asarray(gp.length_scales))
    c, scale = const("gp.constant", constant), const("gp.scale", gp.scale)
    zero, one, two, half = const("zero", 0.0), const("one", 1.0), const("two", 2.0), const("minus_half", -0.5)
    axis0, axis1 = const("axis0", [0], np.int64), const("axis1", [1], np.int64)

    # scaled squared distances to the training points, as scikit-learn's RBF (inputs divided first)
    xs = node("Mul", ["x", inv_l], "xs")
    ts = node("Mul", [_TENSORS["train_points"], inv_l], "ts")
    xs2 = node("ReduceSum", [node("Mul", [xs, xs], "xs_sq"), axis1], "xs2", keepdims=1)
    ts2 = node("ReduceSum", [node("Mul", [ts, ts], "ts_sq"), axis1], "ts2", keepdims=0)
    cross = node("MatMul", [xs, node("Transpose", [ts], "ts_t")], "cross")
    d2 = node("Sub", [node("Add", [xs2, ts2], "norms"), node("Mul", [two, cross], "cross2")], "d2_raw")
    d2 = node("Max", [d2, zero], "d2")
    k = node("Mul", [c, node("Exp", [node("Mul", [half, d2], "half_d2")], "rbf")], "k")
    f = node("MatMul", [k, _TENSORS["alpha"]], "f")

    if gp.mean_function == "constant":
        mu = node("Add", [node("Mul", [f, zero], "f0"), scale], "mu")
    else:
        coef = np.asarray(gp.mean_coefficients, float)  # (x1, x2, c0, c1, c2[, a1, log w1, a2, log w2])
        x_c = node("Sub", ["x", const("mean.centre", coef[:2])], "x_c")
        u = node("Div", [x_c, const("hundred", 100.0)], "u")
        log_mu = node("Add", [const("mean.c0", coef[2]), node("MatMul", [u, const("mean.slopes", coef[3:5])],
                                                                  "slope_terms")], "log_mu_exp")  # fmt: skip
        if gp.mean_function == "turn_on":
            t = node("Div", [node("Sub", ["x", const("mean.a", coef[[5, 7]])], "x_a"),
                             const("mean.w", np.exp(coef[[6, 8]]))], "t")  # fmt: skip
            # log(1 + exp(-t)) = relu(-t) + log(1 + exp(-|t|))
            m_abs_t = node("Neg", [node("Abs", [t], "abs_t")], "m_abs_t")
            tail = node("Log", [node("Add", [one, node("Exp", [m_abs_t], "e_abs_t")], "one_e")], "log_one_e")
            softplus = node("Add", [node("Relu", [node("Neg", [t], "neg_t")], "relu_t"), tail], "softplus")
            turn_on = node("ReduceSum", [softplus, axis1], "turn_on", keepdims=0)
            log_mu = node("Sub", [log_mu, turn_on], "log_mu")
        mu = node("Exp", [log_mu], "mu")
    node("Add", [mu, node("Mul", [scale, f], "scaled_f")], "mean_counts")

    v = node("MatMul", [_TENSORS["cholesky_inverse"], node("Transpose", [k], "k_t")], "v")
    vv = node("ReduceSum", [node("Mul", [v, v], "v_sq"), axis0], "vv", keepdims=0)
    var = node("Max", [node("Sub", [c, vv], "var_raw"), zero], "var")
    node("Mul", [scale, node("Sqrt", [var], "std_f")], "std_counts")

    graph = helper.make_graph(
        nodes, "rooml_gp_massplane",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["events", 2])],
        [helper.make_tensor_value_info(o, TensorProto.DOUBLE, ["events"]) for o in _OUTPUTS],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _reference_points(gp, n: int = 256, seed: int = 1234) -> np.ndarray:
    """Return the bin centres plus random points in the box."""
    (lo1, hi1), (lo2, hi2) = gp.box
    u = np.random.default_rng(seed).random((n, 2))
    random = np.column_stack([lo1 + u[:, 0] * (hi1 - lo1), lo2 + u[:, 1] * (hi2 - lo2)])
    return np.vstack([gp._points(), random])


def export_gp_massplane(
    gp,
    path: str | os.PathLike,
    *,
    features: tuple[str, str] = ("m_h1", "m_h2"),
    tolerance: float = 1e-9,
    overwrite: bool = False,
    opset: int = 17,
) -> Path:
    """Export a fitted :class:`rooml.models.gp.MassPlaneGP` to an ``.onnx`` file.

    onnxruntime and rooml's compiled core (:func:`rooml.load`) both run it; in
    RooFit it is a ``RooGPMassPlane`` (:func:`rooml.roofit.gp_massplane_pdf`).

    Parameters
    ----------
    gp
        The fitted mass plane (e.g. one year of :func:`rooml.models.gp.fit_per_year`).
    path
        Output file; an existing file is replaced only with ``overwrite=True``.
    features
        Names of the two masses (the RooFit variables should carry them).
    tolerance
        Largest accepted deviation of onnxruntime from ``gp.predict_points`` on
        the bin centres and random points of the box, in units of ``gp.scale``
        (the mean bin count): ``|delta| / (scale + |value|)``.
    overwrite
        Replace an existing file.
    opset
        ONNX opset.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    gpr = gp.regressor
    if getattr(gpr, "_y_train_std", 1.0) != 1.0 or np.any(getattr(gpr, "_y_train_mean", 0.0) != 0.0):
        raise ValueError("the regressor normalizes its targets (normalize_y=True): not a MassPlaneGP fit")
    features = tuple(str(f) for f in features)
    if len(features) != 2:
        raise ValueError(f"a mass plane has two features, got {features!r}")
    train = np.ascontiguousarray(gpr.X_train_, dtype=np.float64)
    alpha = np.ascontiguousarray(np.ravel(gpr.alpha_), dtype=np.float64)
    chol_inv = solve_triangular(gpr.L_, np.eye(len(alpha)), lower=True)
    constant = float(gpr.kernel_.k1.constant_value)
    (lo1, hi1), (lo2, hi2) = gp.box
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": "gp_massplane",
        "rooml_version": __version__,
        "features": list(features),
        "support": [[lo1, hi1], [lo2, hi2]],
        "year": gp.year,
        "edges_m1": [float(e) for e in gp.edges_m1],
        "edges_m2": [float(e) for e in gp.edges_m2],
        "blinded": np.asarray(gp.blinded, bool).tolist(),
        "kernel": {"type": "constant_rbf", "constant": constant, "length_scales": list(gp.length_scales)},
        "scale": float(gp.scale),
        "mean_function": {"kind": gp.mean_function, "coefficients": [float(c) for c in gp.mean_coefficients]},
        "n_train": len(alpha),
        "n_obs_not_sr": None if not math.isfinite(gp.n_obs_not_sr) else float(gp.n_obs_not_sr),
        "tensors": dict(_TENSORS),
        "outputs": {"mean_counts": "predicted counts per bin", "std_counts": "GP std of the counts"},
    }
    data = _attach_metadata(_graph(gp, train, alpha, chol_inv, constant, opset), metadata, {})
    _validate(data, gp, tolerance)
    return write_atomic(path, data, overwrite=overwrite)


def export_gp_per_year(fits: dict, folder: str | os.PathLike, *, overwrite: bool = False, **kwargs) -> dict:
    """Export one file per year, ``<folder>/gp_massplane_<year>.onnx``.

    Parameters
    ----------
    fits
        ``{year: MassPlaneGP}`` (from :func:`rooml.models.gp.fit_per_year`).
    folder
        Output folder (created if needed).
    overwrite
        Replace existing files.
    **kwargs
        Passed to :func:`export_gp_massplane`.

    Returns
    -------
    dict of int to pathlib.Path
    """
    folder = Path(folder)
    return {year: export_gp_massplane(gp, folder / f"gp_massplane_{year}.onnx", overwrite=overwrite, **kwargs)
            for year, gp in fits.items()}  # fmt: skip


def _validate(data: bytes, gp, tolerance: float) -> None:
    import onnxruntime as ort

    points = _reference_points(gp)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    mean, std = session.run(["mean_counts", "std_counts"], {"x": points})
    want_mean, want_std = gp.predict_points(points)
    check_agreement(mean / gp.scale, want_mean / gp.scale, tolerance, "GP mass plane (mean)")
    check_agreement(std / gp.scale, want_std / gp.scale, tolerance, "GP mass plane (std)")
