"""Throughput of adopted foreign models: rooml's core vs onnxruntime on the same file and thread count.

Models (as the NSBI toolkits and BDT users write them):

- an MLP of 4 hidden layers x 1000 SiLU units, sigmoid score (torch.onnx.export, opset 17, dynamic batch);
- a small MLP of 3 x 64 SiLU units, the same way;
- an XGBoost classifier of 500 trees of depth 6 converted by onnxmltools (only when xgboost and
  onnxmltools are installed; otherwise the row says so).

Each file is adopted with ``rooml.export.adopt_onnx`` (kind ``"ratio"``, output ``"probability"``); the core
evaluates log r = log s - log(1 - s) in double precision through ``rooml.load(...).log_ratio``, onnxruntime
runs the same graph (float32, as exported) and returns s.  For the MLPs, the last column compares with a
rooml-trained ratio network of the same architecture (``export_ratio``), evaluated by the same core: the
adopted graph runs on the same packed dense kernels.  Timing as in ``bench_flow_throughput.py``:
interleaved repetitions, median time ratios (> 1: the adopted model in the core is faster).

    .venv/bin/python benchmarks/bench_adopted.py [--threads 1 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import rooml
import torch
from bench_flow_throughput import interleaved_times
from rooml.export import adopt_onnx, export_ratio
from rooml.models import Preprocessing, RatioConfig, TrainedRatio
from rooml.models.ratio import RatioNet
from torch import nn

N_FEATURES = 8


def mlp_file(folder: Path, hidden: int, layers: int) -> Path:
    """Export a torch MLP (SiLU hidden layers, sigmoid score) with plain torch.onnx.export."""
    torch.manual_seed(0)
    modules, width = [], N_FEATURES
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    net = nn.Sequential(*modules, nn.Linear(width, 1), nn.Sigmoid()).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.randn(2, N_FEATURES),),
            buffer,
            input_names=["x"],
            output_names=["score"],
            dynamic_axes={"x": {0: "batch"}, "score": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    path = folder / f"mlp_{layers}x{hidden}.onnx"
    path.write_bytes(buffer.getvalue())
    return path


def rooml_ratio_file(folder: Path, hidden: int, layers: int) -> Path:
    """Write a rooml ratio network of the same architecture with export_ratio."""
    config = RatioConfig(hidden=(hidden,) * layers, activation="silu")
    torch.manual_seed(0)
    features = [f"x{i}" for i in range(N_FEATURES)]
    model = TrainedRatio(
        net=RatioNet(N_FEATURES, config),
        config=config,
        preprocessing=Preprocessing([], features),
        features=features,
        support=[(-np.inf, np.inf)] * N_FEATURES,
        log_correction=0.0,
        seed=0,
    )
    x = np.random.default_rng(0).normal(size=(256, N_FEATURES))
    return export_ratio(model, folder / f"rooml_{layers}x{hidden}.onnx", reference_inputs=x)


def xgboost_file(folder: Path) -> Path | None:
    """500 trees of depth 6 via onnxmltools, or None if xgboost / onnxmltools are missing."""
    try:
        import onnxmltools
        import xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + 0.5 * rng.normal(size=len(x)) > 0).astype(int)
    model = xgboost.XGBClassifier(n_estimators=500, max_depth=6, learning_rate=0.05, random_state=0).fit(x, y)
    proto = onnxmltools.convert_xgboost(
        model, initial_types=[("x", FloatTensorType([None, N_FEATURES]))], target_opset=15
    )
    path = folder / "xgboost_500x6.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def main() -> None:
    """Build, adopt and time the three models; print one row per model and thread count."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    features = [f"x{i}" for i in range(N_FEATURES)]
    models = [
        ("MLP 4x1000 SiLU", mlp_file(folder, 1000, 4), 4_000, "score", {}, rooml_ratio_file(folder, 1000, 4)),
        ("MLP 3x64 SiLU", mlp_file(folder, 64, 3), 200_000, "score", {}, rooml_ratio_file(folder, 64, 3)),
        (
            "XGBoost 500 trees depth 6",
            xgboost_file(folder),
            100_000,
            "probabilities",
            {"tensor": "probabilities"},
            None,
        ),
    ]
    rng = np.random.default_rng(1)
    print(
        f"{args.repeat} interleaved repetitions; onnxrt/core = median time ratio [range] (> 1: core faster)"
    )
    print(
        f"{'model':>27s} {'threads':>7s} {'events':>8s} {'core ev/s':>10s} {'onnxrt ev/s':>11s} "
        f"{'onnxrt/core':>22s} {'rooml-trained/adopted':>21s}"
    )
    for label, source, n, output, spec, own_file in models:
        if source is None:
            print(f"{label:>27s}  skipped: install xgboost and onnxmltools to generate it")
            continue
        adopted = adopt_onnx(
            source,
            folder / f"adopted_{source.name}",
            kind="ratio",
            features=features,
            output={"kind": "probability", **spec},
        )
        core = rooml.load(adopted)
        own = rooml.load(own_file) if own_file else None
        x = rng.normal(size=(n, N_FEATURES))
        x32 = x.astype(np.float32)
        for threads in args.threads:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
            evaluators = {
                "core": lambda: core.log_ratio(x, threads=threads),
                "onnxrt": lambda: session.run([output], {"x": x32}),
            }
            if own is not None:
                evaluators["rooml"] = lambda: own.log_ratio(x, threads=threads)
            measured = interleaved_times(evaluators, args.repeat)
            t = {name: times[:, 0] for name, times in measured.items()}
            ratio = t["onnxrt"] / t["core"]
            spread = f"{np.median(ratio):.2f}x [{ratio.min():.2f}, {ratio.max():.2f}]"
            versus_own = f"{np.median(t['rooml'] / t['core']):.2f}x" if own is not None else "-"
            print(
                f"{label:>27s} {threads:>7d} {n:>8d} {n / np.median(t['core']):>10.3g} "
                f"{n / np.median(t['onnxrt']):>11.3g} {spread:>22s} {versus_own:>21s}",
                flush=True,
            )


if __name__ == "__main__":
    main()
