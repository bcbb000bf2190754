"""Throughput of rooml's native core vs onnxruntime vs torch on the same flow.

The flow is the one in DESIGN.md's measurement: 5 coupling RQ-spline layers,
4 features, 1 context variable, 8 bins, 32 hidden units (ResNet, 2 blocks),
LU mixing.  All run on the CPU with the same number of threads, in double
precision for the core and onnxruntime (torch runs float32, as trained).

The machine may be shared, so the evaluators are timed in interleaved
repetitions (core and onnxruntime back to back, their order alternating) and
the ratio core/onnxruntime is taken per repetition; the table shows the median
events/s and the median ratio with its range over the repetitions, for each
thread count and event count.  The last column is the median ratio of process
CPU time (all threads) per call: with 1 thread it is insensitive to other
processes taking turns on the cores; with more threads it also counts the
time onnxruntime's pool spends spinning.

The core's kernel set is chosen when rooml._core is loaded (rooml/dispatch.h),
so the table has one block of rows per kernel set this CPU supports, each
measured in its own process (ROOML_ISA set) against onnxruntime in that same
process; the CPU's name comes from /proc/cpuinfo.

    .venv/bin/python benchmarks/bench_flow_throughput.py [--threads 1 2] [--repeat 7] [--no-torch]
        [--isa avx512 avx2 baseline]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import rooml
import torch
from rooml import _core
from rooml.export import export_flow
from rooml.models import FlowConfig, build_flow


def call_times(fn) -> tuple[float, float]:
    """Wall time and process CPU time (all threads) of one call of ``fn``."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def interleaved_times(evaluators: dict, repeat: int) -> dict[str, np.ndarray]:
    """Time every evaluator once per repetition, alternating their order (after one warm-up call each).

    Parameters
    ----------
    evaluators : dict
        Name -> zero-argument callable.
    repeat : int
        Number of repetitions.

    Returns
    -------
    dict
        Name -> array (repeat, 2) of wall and process CPU times in seconds.
    """
    for fn in evaluators.values():
        fn()
    names = list(evaluators)
    times = {name: [] for name in names}
    for rep in range(repeat):
        for name in (names if rep % 2 == 0 else names[::-1]):
            times[name].append(call_times(evaluators[name]))
    return {name: np.asarray(t) for name, t in times.items()}


def benchmark_flow() -> tuple[torch.nn.Module, Path]:
    """Build the benchmark flow (perturbed away from its identity initialisation) and export it."""
    config = FlowConfig(features=4, context=1, kind="coupling", layers=5, bins=8, tail_bound=4.0, hidden=32,
                        blocks=2, lu_linear=True, seed=3)
    flow = build_flow(config).eval()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "bench_flow.onnx"
    export_flow(flow, path, reference_inputs=(rng.normal(size=(256, 4)), rng.normal(size=(256, 1))))
    return flow, path


def cpu_name() -> str:
    """Return the CPU's model name from /proc/cpuinfo (or the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def header(with_torch: bool) -> str:
    """Return the table's column names."""
    line = (f"{'isa':>8s} {'threads':>7s} {'events':>9s} {'core ev/s':>10s} {'onnxrt ev/s':>11s} "
            f"{'core/onnxrt':>24s} {'per CPU-s':>9s}")
    return line + (f" {'torch ev/s':>10s} {'core/torch':>10s}" if with_torch else "")


def measure_rows(args) -> None:
    """Print this process's rows (its kernel set, every thread count and size)."""
    flow, path = benchmark_flow()
    core = rooml.load(path)
    rng = np.random.default_rng(1)
    isa = _core.isa()
    for threads in args.threads:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        torch.set_num_threads(threads)
        for n in args.sizes:
            x = rng.normal(size=(n, 4))
            c = rng.normal(size=(n, 1))
            evaluators = {
                "core": lambda: core.log_prob(x, c, threads=threads),
                "onnxrt": lambda: session.run(["log_prob"], {"x": x, "context": c}),
            }
            if args.torch:
                xt, ct = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(c.astype(np.float32))

                def run_torch(xt=xt, ct=ct, n=n):
                    with torch.no_grad():
                        for i in range(0, n, 100_000):
                            flow.log_prob(xt[i:i + 100_000], context=ct[i:i + 100_000])

                evaluators["torch"] = run_torch
            measured = interleaved_times(evaluators, args.repeat)
            t = {name: times[:, 0] for name, times in measured.items()}
            ratio = t["onnxrt"] / t["core"]
            cpu_ratio = np.median(measured["onnxrt"][:, 1] / measured["core"][:, 1])
            spread = f"{np.median(ratio):.2f}x [{ratio.min():.2f}, {ratio.max():.2f}]"
            rates = {name: n / np.median(times) for name, times in t.items()}
            line = (f"{isa:>8s} {threads:>7d} {n:>9d} {rates['core']:>10.3g} {rates['onnxrt']:>11.3g} "
                    f"{spread:>24s} {cpu_ratio:>8.2f}x")
            if args.torch:
                line += f" {rates['torch']:>10.3g} {np.median(t['torch'] / t['core']):>9.2f}x"
            print(line, flush=True)


def main() -> None:
    """Run the benchmark and print its table: one process per kernel set."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repetitions per setting")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--no-torch", dest="torch", action="store_false", help="skip torch (the slowest)")
    parser.add_argument("--isa", nargs="+", default=None,
                        help="kernel sets to measure (default: all this CPU supports)")
    parser.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)  # one kernel set's rows
    args = parser.parse_args()
    if args.rows_only:
        measure_rows(args)
        return

    sets = args.isa or _core.supported_isas()
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores); kernel sets this CPU supports: "
          f"{', '.join(_core.supported_isas())}")
    print(f"flow: 5 coupling RQ-spline layers, 4 features, 1 context, 8 bins, 32 hidden; "
          f"{args.repeat} interleaved repetitions; medians, ratio range in brackets")
    print(header(args.torch), flush=True)
    forwarded = ["--threads", *map(str, args.threads), "--repeat", str(args.repeat),
                 "--sizes", *map(str, args.sizes), *([] if args.torch else ["--no-torch"])]
    for isa in sets:
        env = dict(os.environ, ROOML_ISA=isa)
        subprocess.run([sys.executable, __file__, "--rows-only", *forwarded], env=env, check=True)


if __name__ == "__main__":
    main()
