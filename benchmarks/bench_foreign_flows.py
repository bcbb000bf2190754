"""Throughput of rooml's core on flows built by nflows and zuko, against onnxruntime and the library itself.

Two flows: the HI-SIGMA architecture (nflows: 5 x [masked RQ autoregressive,
24 bins, residual MADE of 64 hidden units, ReversePermutation, BatchNorm],
3 features, ConditionalDiagonalNormal base with a Linear context encoder) and a
zuko NSF (3 features, 1 context, 3 transforms, 2 x 64 hidden).  Each is timed
in interleaved repetitions on the same events and threads; the table shows the
median events/s and the median ratios core/onnxruntime (on the exported
file's graph in float64, the core's precision: float32 evaluation of the deep
HI-SIGMA flow errs by several percent on its own samples) and core/library
(float32 torch).

    .venv/bin/python benchmarks/bench_foreign_flows.py [--threads 1] [--repeat 5] [--events 20000]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import rooml
import torch
import zuko
from rooml.export import export_flow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_flow_throughput import interleaved_times  # noqa: E402


def hisigma_flow() -> torch.nn.Module:
    """Build the HI-SIGMA authors' flow: weights perturbed, batch-norm statistics from train-mode passes."""
    from nflows.distributions import ConditionalDiagonalNormal
    from nflows.flows import Flow
    from nflows.transforms import (
        BatchNorm,
        CompositeTransform,
        MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
        ReversePermutation,
    )

    d, layers = 3, []
    for _ in range(5):
        layers += [
            MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                d, 64, context_features=1, num_bins=24, tails="linear", tail_bound=5,
                use_residual_blocks=True, activation=torch.nn.ReLU()),
            ReversePermutation(d),
            BatchNorm(d),
        ]
    flow = Flow(CompositeTransform(layers),
                ConditionalDiagonalNormal([d], context_encoder=torch.nn.Linear(1, 2 * d)))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
        flow.train()
        for _ in range(3):
            flow.log_prob(torch.randn(512, d), context=torch.randn(512, 1))
    return flow.eval()


def main() -> None:
    """Time the core, onnxruntime and the library on both flows and print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(args.events, 3)), rng.normal(size=(args.events, 1))
    flows = {"HI-SIGMA (nflows)": hisigma_flow(),
             "zuko NSF": zuko.flows.NSF(3, 1, transforms=3, hidden_features=(64, 64)).eval()}
    print(f"{args.events} events, {args.threads} thread(s), {args.repeat} interleaved repetitions; medians")
    print(f"{'flow':>18} {'core ev/s':>10} {'onnxrt ev/s':>12} {'torch ev/s':>11} {'core/onnxrt':>12} "
          f"{'core/torch':>11}")
    for name, flow in flows.items():
        path = Path(tempfile.mkdtemp()) / "flow.onnx"
        export_flow(flow, path, network_dtype="float64")
        model = rooml.load(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        xt, ct = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(c, dtype=torch.float32)

        def library(flow=flow, xt=xt, ct=ct):
            with torch.no_grad():
                return flow(ct).log_prob(xt) if name.startswith("zuko") else flow.log_prob(xt, context=ct)

        times = interleaved_times({
            "core": lambda: model.log_prob(x, c, threads=args.threads),
            "onnxrt": lambda: session.run(["log_prob"], {"x": x, "context": c}),
            "torch": library,
        }, args.repeat)
        wall = {k: v[:, 0] for k, v in times.items()}
        rate = {k: args.events / np.median(v) for k, v in wall.items()}
        vs_ort, vs_torch = np.median(wall["onnxrt"] / wall["core"]), np.median(wall["torch"] / wall["core"])
        print(f"{name:>18} {rate['core']:10.3g} {rate['onnxrt']:12.3g} {rate['torch']:11.3g} "
              f"{vs_ort:11.2f}x {vs_torch:10.2f}x")


if __name__ == "__main__":
    main()
