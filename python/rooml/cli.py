"""The ``rooml`` command line."""
from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["build_parser", "main"]

# Modules that register a sub-command through ``add_parser(subparsers)``.
_SUBCOMMAND_MODULES = (
    "rooml.data.cli",
    "rooml.combine_cli",
    "rooml.hh4b.cli",
)


def _config(args: argparse.Namespace) -> int:
    from rooml import _paths

    if args.libdir:
        print(_paths.library_dir())
    if args.incdir:
        print(_paths.include_dir())
    if args.cmakedir:
        print(_paths.cmake_dir())
    flags = [f() for wanted, f in ((args.cflags, _paths.cflags), (args.libs, _paths.libs),
                                   (args.core_libs, _paths.core_libs)) if wanted]
    if flags:
        print(" ".join(flags))
    if not (args.libdir or args.incdir or args.cmakedir or flags):
        from rooml import __version__

        print(f"rooml {__version__}\n  libdir   {_paths.library_dir()}\n  incdir   {_paths.include_dir()}"
              f"\n  cmakedir {_paths.cmake_dir()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rooml.demo import fresh_output_directory, run_demo

    output = args.output if args.output is not None else fresh_output_directory("rooml_output")
    run_demo(output=output, signal=args.signal, background=args.background, events=args.events,
             epochs=args.epochs, bootstraps=args.bootstraps, members=args.members, seed=args.seed,
             scan_points=args.scan_points, normalization_samples=args.normalization_samples, force=args.force,
             parallel=not args.serial)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``rooml`` command."""
    parser = argparse.ArgumentParser(prog="rooml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="print where libRooML and its headers are installed")
    config.add_argument("--libdir", action="store_true",
                        help="directory of libRooML (add to ROOT's library path)")
    config.add_argument("--incdir", action="store_true", help="directory of rooml's headers")
    config.add_argument("--cmakedir", action="store_true", help="directory of roomlConfig.cmake")
    config.add_argument("--cflags", action="store_true",
                        help="compiler flags: C++ standard, rooml's and ROOT's include directories")
    config.add_argument("--libs", action="store_true",
                        help="linker flags for libRooML and RooFit "
                             "(g++ main.cpp $(rooml config --cflags --libs))")
    config.add_argument("--core-libs", action="store_true",
                        help="linker flags for the ROOT-free core libroomlcore alone")
    config.set_defaults(func=_config)

    demo = sub.add_parser("demo", help="HI-SIGMA end to end: train bbyy flows, export, fit, scan, plot")
    demo.add_argument("-o", "--output", default=None,
                      help="output directory (default: rooml_output, or rooml_output_2, _3, ... if that has "
                           "results of an earlier run)")
    demo.add_argument("--events", type=int, default=60_000, help="simulated background events for training "
                      "(sidebands kept); the signal flow gets a third as many")
    demo.add_argument("--epochs", type=int, default=12, help="maximum training epochs")
    demo.add_argument("--bootstraps", type=int, default=3, help="bootstrap models D per process")
    demo.add_argument("--members", type=int, default=1, help="seeds K per bootstrap model")
    demo.add_argument("--signal", type=float, default=200.0, help="signal events injected in the mock data")
    demo.add_argument("--background", type=float, default=40_000.0, help="background events in the mock data")
    demo.add_argument("--scan-points", type=int, default=13,
                      help="minimum points per mu scan (grid: bootstrap fits -+ 2.5 sigma)")
    demo.add_argument("--normalization-samples", type=int, default=100_000,
                      help="simulated events per process for the systematic's normalization N(nu)")
    demo.add_argument("--seed", type=int, default=1, help="random seed")
    demo.add_argument("--serial", action="store_true", help="train in this process instead of a Dask cluster")
    demo.add_argument("--force", action="store_true", help="overwrite the outputs of an earlier demo in -o")
    demo.set_defaults(func=_demo)

    for module in _SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``rooml`` command line."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as exc:
        print(f"rooml: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
