"""``rooml data``: write the synthetic datasets to ROOT files.

Usage::

    rooml data make bbyy --events 1000000 --seed 1 -o bbyy.root
    rooml data make hh4b --process 4b --process 2b --events 200000 -o hh4b.root
    rooml data make offshell4l --alpha 1 --events 100000 -o offshell_up.root --force

One TTree per process, named after the process (all processes by default),
each with ``--events`` events and a ``weight`` branch. Process number ``k`` of
the generator's ``PROCESSES`` is drawn with ``np.random.default_rng([seed, k])``
so that the trees are independent and each is reproducible on its own.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["add_parser", "make"]

_NAMES = ("bbyy", "hh4b", "offshell4l")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``data`` sub-command (with ``make``) on an argparse sub-parser set.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The result of ``parser.add_subparsers()`` of the ``rooml`` command.
    """
    data = subparsers.add_parser("data", help="synthetic datasets with exact truth densities")
    sub = data.add_subparsers(dest="data_command", required=True)
    make_p = sub.add_parser(
        "make",
        help="generate a dataset and write it to a ROOT file",
        description="Generate one of the rooml.data toys and write one TTree per process.",
    )
    make_p.add_argument("name", choices=_NAMES, help="generator")
    make_p.add_argument("-n", "--events", type=int, required=True, help="events per process")
    make_p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make_p.add_argument("-o", "--output", required=True, help="output .root file")
    make_p.add_argument(
        "--process", action="append", default=None,
        help="process to write (repeatable; default: all). bbyy: background, signal; "
        "hh4b: 4b, 3b, 2b, signal; offshell4l: S, B, SBI, I",
    )  # fmt: skip
    make_p.add_argument("--force", action="store_true", help="replace an existing output file")
    make_p.add_argument(
        "--nu", type=float, default=None, help="bbyy shape systematic (pt_bb scale 1 + 0.1 nu)"
    )
    make_p.add_argument("--alpha", type=float, default=None, help="offshell4l systematic nuisance parameter")
    make_p.add_argument("--year", type=int, default=None, help="hh4b: only this year (2016, 2017 or 2018)")
    make_p.add_argument(
        "--preselection",
        choices=("pass", "reversed"),
        default=None,
        help="hh4b: |Delta eta| < 1.5 or reversed",
    )
    make_p.set_defaults(func=_run_make)


def make(
    name: str,
    n_events: int,
    output: str,
    *,
    seed: int = 0,
    processes: list[str] | None = None,
    force: bool = False,
    **options: float | int | str | None,
) -> dict[str, int]:
    """Generate a dataset and write it to ``output`` (the work behind ``rooml data make``).

    Parameters
    ----------
    name : {"bbyy", "hh4b", "offshell4l"}
    n_events : int
        Events per process.
    output : str
        ROOT file to write; an existing file raises :class:`FileExistsError`
        unless ``force``.
    seed : int
    processes : list of str, optional
        Default: all processes of the generator.
    force : bool
    **options
        ``nu`` (bbyy), ``alpha`` (offshell4l), ``year`` and ``preselection``
        (hh4b); ``None`` values are ignored.

    Returns
    -------
    dict of str to int
        Events written per tree.
    """
    from rooml.data import GENERATORS
    from rooml.data.io import write_root

    if name not in GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(GENERATORS)}")
    module = GENERATORS[name]
    allowed = {"bbyy": {"nu"}, "hh4b": {"year", "preselection"}, "offshell4l": {"alpha"}}[name]
    options = {k: v for k, v in options.items() if v is not None}
    wrong = sorted(set(options) - allowed)
    if wrong:
        raise ValueError(f"option(s) {', '.join('--' + w for w in wrong)} do not apply to {name}")
    if n_events < 0:
        raise ValueError(f"--events must be >= 0, got {n_events}")
    chosen = list(module.PROCESSES) if not processes else list(dict.fromkeys(processes))
    unknown = [p for p in chosen if p not in module.PROCESSES]
    if unknown:
        raise ValueError(f"unknown {name} process(es) {unknown}; choose from {list(module.PROCESSES)}")
    from pathlib import Path

    if Path(output).exists() and not force:  # fail before spending time generating
        raise FileExistsError(f"{output} exists; use --force to replace it")
    trees = {}
    for process in chosen:
        k = module.PROCESSES.index(process)
        sample = module.generate(process, n_events, np.random.default_rng([seed, k]), **options)
        sample.attrs.update({"seed": seed, "seed_sequence": [seed, k]})
        trees[process] = sample
    write_root(output, trees, overwrite=force)
    return {p: len(s) for p, s in trees.items()}


def _run_make(args: argparse.Namespace) -> int:
    counts = make(
        args.name,
        args.events,
        args.output,
        seed=args.seed,
        processes=args.process,
        force=args.force,
        nu=args.nu,
        alpha=args.alpha,
        year=args.year,
        preselection=args.preselection,
    )
    trees = ", ".join(f"{p} ({n} events)" for p, n in counts.items())
    print(f"wrote {args.output}: {trees}", file=sys.stdout)
    return 0
