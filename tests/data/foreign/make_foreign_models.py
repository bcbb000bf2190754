"""Regenerate the foreign-model fixtures of tests/test_graph_model.py.

Small models written by the exporters analysts use (torch.onnx TorchScript and
dynamo, tf2onnx from Keras, skl2onnx, onnxmltools from XGBoost and LightGBM),
each saved as ``<name>.onnx`` with ``<name>.npz``: the inputs ``x`` (float32
values, stored as float64) and onnxruntime's output for every tensor output
(key ``out:<output name>``).  The tests need only onnx and onnxruntime; this
script also needs torch, tensorflow-cpu, tf2onnx, scikit-learn, skl2onnx,
onnxmltools, xgboost and lightgbm.  Run: ``python make_foreign_models.py``
(deterministic seeds; an exporter that is not installed is skipped).
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
N_FEATURES = 4
N_EVENTS = 600  # more than two evaluation blocks


def _inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(N_EVENTS, N_FEATURES)).astype(np.float32)


def _labels(x):
    return (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - 0.3 * x[:, 3] > 0).astype(np.int64)


def save(name: str, data: bytes, x: np.ndarray) -> None:
    """Write ``name.onnx`` and its onnxruntime reference outputs ``name.npz``."""
    import onnxruntime as ort

    (HERE / f"{name}.onnx").write_bytes(data)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    outputs = [o.name for o in session.get_outputs() if o.type.startswith("tensor")]
    results = session.run(outputs, feed)
    np.savez(
        HERE / f"{name}.npz",
        x=x.astype(np.float64),
        **{f"out:{k}": np.asarray(v, dtype=np.float64) for k, v in zip(outputs, results)},
    )
    print("wrote", name, outputs)


def torch_models() -> None:
    """TorchScript (opsets 13, 17) and dynamo exports of an NSBI-style MLP and of a many-operator net."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    mlp = nn.Sequential(
        nn.Linear(4, 16), nn.SiLU(), nn.Linear(16, 16), nn.SiLU(), nn.Linear(16, 1), nn.Sigmoid()
    )

    class ManyOps(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 12)
            self.bn = nn.BatchNorm1d(12)
            self.ln = nn.LayerNorm(6)
            self.b = nn.Linear(12, 3)
            self.prelu = nn.PReLU(12)

        def forward(self, x):
            h = self.bn(self.a(x))
            h = torch.cat([nn.functional.gelu(h[:, :6]), nn.functional.elu(h[:, 6:])], dim=1)
            h = h + nn.functional.leaky_relu(h, 0.1) * torch.tanh(h) - nn.functional.softplus(h) / 3
            h = self.prelu(h) + nn.functional.mish(h) * 0.1 + nn.functional.selu(h) * 0.1
            left, right = torch.split(h, 6, dim=1)
            h = torch.cat([self.ln(left), torch.sigmoid(right) * torch.clamp(right, -1.0, 2.0)], dim=1)
            h = (
                h
                + h.mean(dim=1, keepdim=True)
                - h.amax(dim=1, keepdim=True)
                + torch.logsumexp(h, 1, keepdim=True)
            )
            h = h.reshape(x.shape[0], 3, 4).transpose(1, 2).reshape(x.shape[0], -1)
            h = torch.where(h > 0.2, h, torch.exp(torch.minimum(h, torch.zeros_like(h))) - 1)
            h = h + torch.cumsum(h, dim=1) * 0.01 + torch.sqrt(torch.abs(h) + 1) + torch.erf(h) + h**2 * 0.05
            logits = self.b(h)
            return (
                torch.log_softmax(logits, dim=1)
                + torch.softmax(logits, dim=1) * 0.0
                + nn.functional.hardsigmoid(logits) * 0.0
                + nn.functional.softsign(logits) * 0.0
            )

    many = ManyOps()
    with torch.no_grad():  # trained-looking batch-norm statistics
        many.bn.running_mean.uniform_(-0.5, 0.5)
        many.bn.running_var.uniform_(0.5, 2.0)
    x = _inputs(1)
    for module, name in ((mlp.eval(), "torch_mlp"), (many.eval(), "torch_ops")):
        for opset in (13, 17):
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    (torch.randn(3, 4),),
                    buffer,
                    input_names=["x"],
                    output_names=["score"],
                    dynamic_axes={"x": {0: "batch"}, "score": {0: "batch"}},
                    opset_version=opset,
                    dynamo=False,
                )
            save(f"{name}_opset{opset}", buffer.getvalue(), x)
    for module, name in ((mlp, "torch_mlp_dynamo"), (many, "torch_ops_dynamo")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(
                    module,
                    (torch.randn(3, 4),),
                    input_names=["x"],
                    output_names=["score"],
                    dynamic_shapes=({0: torch.export.Dim("batch")},),
                    dynamo=True,
                    verbose=False,
                )
            save(name, program.model_proto.SerializeToString(), x)
        except Exception as exc:  # the dynamo exporter needs onnxscript
            print(f"dynamo exporter skipped for {name}:", type(exc).__name__, str(exc)[:200], file=sys.stderr)


def keras_models() -> None:
    """tf2onnx conversions of a Keras Sequential and a functional MLP."""
    import tensorflow as tf
    import tf2onnx

    tf.keras.utils.set_random_seed(0)
    seq = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(16, activation="tanh"),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    inp = tf.keras.Input((4,))
    h = tf.keras.layers.Dense(16, activation="swish")(inp)
    h = tf.keras.layers.Dense(16, activation="elu")(h)
    out = tf.keras.layers.Dense(3, activation="softmax")(tf.keras.layers.Concatenate()([h, inp]))
    func = tf.keras.Model(inp, out)
    x = _inputs(2)
    for model, name in ((seq, "keras_sequential"), (func, "keras_functional")):
        spec = (tf.TensorSpec((None, 4), tf.float32, name="x"),)
        # from_keras does not read Keras 3 models; a tf.function of the model converts the same graph
        function = tf.function(lambda x, model=model: model(x))
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=17)
        save(name, proto.SerializeToString(), x)


def sklearn_models() -> None:
    """skl2onnx conversions of an MLPClassifier, a LogisticRegression and a StandardScaler pipeline."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train = _inputs(3) * np.float32([1, 2, 0.5, 3]) + np.float32([0, 1, -1, 2])
    y = _labels(x_train)
    x = _inputs(4) * np.float32([1, 2, 0.5, 3]) + np.float32([0, 1, -1, 2])
    models = {
        "sklearn_mlp": MLPClassifier((8, 8), max_iter=300, random_state=0).fit(x_train, y),
        "sklearn_logistic": LogisticRegression().fit(x_train, y),
        "sklearn_pipeline": make_pipeline(
            StandardScaler(), MLPClassifier((8,), max_iter=300, random_state=0)
        ).fit(x_train, y),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in models.items():
            options = {id(model): {"zipmap": False}}
            save(
                name,
                to_onnx(
                    model, x_train[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options=options
                ).SerializeToString(),
                x,
            )


def tree_models() -> None:
    """Onnxmltools conversions of XGBoost and LightGBM classifiers."""
    import lightgbm
    import onnxmltools
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    x_train = _inputs(5)
    y = _labels(x_train)
    x = _inputs(6)
    kinds = [FloatTensorType([None, N_FEATURES])]
    xgb = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x_train, y)
    save(
        "xgboost_classifier",
        onnxmltools.convert_xgboost(
            xgb, initial_types=[("x", kinds[0])], target_opset=15
        ).SerializeToString(),
        x,
    )
    lgb = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, random_state=0, verbose=-1).fit(x_train, y)
    save(
        "lightgbm_classifier",
        onnxmltools.convert_lightgbm(
            lgb, initial_types=[("x", kinds[0])], target_opset=15, zipmap=False
        ).SerializeToString(),
        x,
    )


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["torch", "sklearn", "tree", "keras"]
    for make in [globals()[f"{name}_models"] for name in chosen]:
        try:
            make()
        except ImportError as exc:
            print(f"{make.__name__} skipped: {exc}", file=sys.stderr)
