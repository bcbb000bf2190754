"""The ``rooml`` command line.

Errors are reported as one line on stderr with exit status 2; ``--debug`` (or the environment variable
``ROOML_DEBUG=1``) shows the traceback instead.  Sub-command modules import torch and ROOT only when they
run, so ``rooml --help`` is fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
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

    output = getattr(args, "output", None) or fresh_output_directory("rooml_output")
    run_demo(output=output, signal=args.signal, background=args.background, events=args.events,
             epochs=args.epochs, bootstraps=args.bootstraps, members=args.members, seed=args.seed,
             scan_points=args.scan_points, normalization_samples=args.normalization_samples, force=args.force,
             parallel=not args.serial)
    return 0


def _demo_minimum_text() -> str:
    from rooml.demo import MINIMUM_EPOCHS, MINIMUM_EVENTS

    return f"--events {MINIMUM_EVENTS} --epochs {MINIMUM_EPOCHS}"


_DESCRIPTION = ("rooml: machine-learned densities (normalizing flows, density-ratio networks, GP mass "
                "planes) as RooFit objects. Every command refuses to overwrite an existing output unless "
                "given --force.")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``rooml`` command."""
    from rooml._version import __version__

    parser = argparse.ArgumentParser(prog="rooml", description=_DESCRIPTION,
                                     epilog="Errors print one line; set ROOML_DEBUG=1 or pass --debug "
                                            "for the traceback.")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"rooml {__version__}",
                        help="print rooml's version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: ROOML_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    demo = sub.add_parser("demo", help="HI-SIGMA end to end: train bbyy flows, export, fit, scan, plot",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                          description="The HI-SIGMA analysis on the bbyy simulation, end to end. The "
                                      "defaults "
                                      f"are the smallest settings whose numbers mean something; below "
                                      f"{_demo_minimum_text()} the demo warns that its flows are "
                                      "under-trained.")
    demo.add_argument("-o", "--output", default=argparse.SUPPRESS,
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


def _one_line(exc: BaseException) -> str:
    """Return the exception's message on one line (KeyError's quotes dropped; the type if unexpected)."""
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    message = " ".join(str(message).split()) or type(exc).__name__
    expected = (ValueError, KeyError, OSError, RuntimeError)
    return message if isinstance(exc, expected) else f"{type(exc).__name__}: {message}"


def main(argv: list[str] | None = None) -> int:
    """Run the ``rooml`` command line; return its exit status (2 for an error, reported on one line)."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("ROOML_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rooml: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"rooml: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
