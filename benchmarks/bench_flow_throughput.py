"""Throughput of rooml's native core vs onnxruntime vs torch on the same flow.

The flow is the one in DESIGN.md's measurement: 5 coupling RQ-spline layers,
4 features, 1 context variable, 8 bins, 32 hidden units (ResNet, 2 blocks),
LU mixing.  All three run on the CPU with the same number of threads.  Prints
events/s and the ratios core/onnxruntime and core/torch for 1e5 and 1e6 events.

    .venv/bin/python benchmarks/bench_flow_throughput.py [--threads 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import rooml
from rooml.export import export_flow
from rooml.models import FlowConfig, build_flow


def best_time(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()

    config = FlowConfig(features=4, context=1, kind="coupling", layers=5, bins=8, tail_bound=4.0, hidden=32,
                        blocks=2, lu_linear=True, seed=3)
    flow = build_flow(config).eval()
    with torch.no_grad():  # move away from the identity initialisation
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "bench_flow.onnx"
    export_flow(flow, path, reference_inputs=(rng.normal(size=(256, 4)), rng.normal(size=(256, 1))))

    core = rooml.load(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    torch.set_num_threads(args.threads)

    print(f"flow: 5 coupling RQ-spline layers, 4 features, 1 context, 8 bins, 32 hidden; {args.threads} threads")
    print(f"{'events':>10s} {'core ev/s':>12s} {'onnxrt ev/s':>12s} {'torch ev/s':>12s} "
          f"{'core/onnxrt':>12s} {'core/torch':>11s}")
    for n in args.sizes:
        x = rng.normal(size=(n, 4))
        c = rng.normal(size=(n, 1))
        xt, ct = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(c.astype(np.float32))
        t_core = best_time(lambda: core.log_prob(x, c, threads=args.threads), args.repeat)
        t_ort = best_time(lambda: session.run(["log_prob"], {"x": x, "context": c}), args.repeat)

        def run_torch():
            with torch.no_grad():
                for i in range(0, n, 100_000):
                    flow.log_prob(xt[i:i + 100_000], context=ct[i:i + 100_000])

        t_torch = best_time(run_torch, max(1, args.repeat // 2))
        print(f"{n:>10d} {n / t_core:>12.3g} {n / t_ort:>12.3g} {n / t_torch:>12.3g} "
              f"{t_ort / t_core:>11.2f}x {t_torch / t_core:>10.2f}x")


if __name__ == "__main__":
    main()
