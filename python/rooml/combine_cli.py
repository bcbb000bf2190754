"""``rooml combine``: add rooml's unbinned channel to a HistFactory workspace.

Usage::

    rooml combine --histfactory hf.root --unbinned nsbi.root --poi-map mu=SigXsecOverSM \
        -o combined.root --fit --scan 21
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["SCAN_SIGMA", "add_parser", "run"]

#: ``--scan`` covers t <= SCAN_SIGMA**2 around the best fit (cut at the POI's limits).
SCAN_SIGMA = 2.5


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``combine`` sub-command on the ``rooml`` command's sub-parsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The result of ``parser.add_subparsers()`` of the ``rooml`` command.
    """
    p = subparsers.add_parser(
        "combine",
        help="combine an unbinned rooml channel with a HistFactory workspace",
        description="Add the unbinned model as a new channel of the HistFactory RooSimultaneous, share "
        "parameters by name, merge the datasets and write the combined workspace with its ModelConfig.",
    )
    p.add_argument("--histfactory", required=True, help="ROOT file with the HistFactory workspace")
    p.add_argument("--workspace", default=None, help="its workspace name (default: the file's only one)")
    p.add_argument(
        "--model-config", default="ModelConfig", help="HistFactory ModelConfig (default ModelConfig)"
    )
    p.add_argument("--data", default="obsData", help="HistFactory dataset (default obsData)")
    p.add_argument("--unbinned", required=True, help="ROOT file with rooml's unbinned workspace")
    p.add_argument("--unbinned-workspace", default=None, help="its workspace name (default: the only one)")
    p.add_argument("--unbinned-model-config", default="ModelConfig", help="unbinned ModelConfig")
    p.add_argument("--unbinned-data", default=None, help="unbinned dataset (default: the only one)")
    p.add_argument(
        "--poi-map",
        action="append",
        default=[],
        metavar="UNBINNED=HF",
        help="share a parameter under the HistFactory name, e.g. mu=SigXsecOverSM (repeatable)",
    )
    p.add_argument("--prefix", default=None, help="rename clashing unbinned objects to PREFIX+name")
    p.add_argument("--channel", default="unbinned", help="name of the new channel (default unbinned)")
    p.add_argument("-o", "--output", required=True, help="output ROOT file")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--fit", action="store_true", help="fit the combined model and print the result")
    p.add_argument(
        "--scan",
        type=int,
        default=0,
        metavar="N",
        help="profile-likelihood scan of the POI at N points where t <= 6.25 (2.5 sigma), found from the "
        "profile likelihood and cut at the POI's limits; prints the 68.3%% CL interval "
        "(one-sided at a limit)",
    )
    p.set_defaults(func=run)


def _mapping(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"--poi-map expects UNBINNED=HF, got '{item}'")
        out[old] = new
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``rooml combine`` (see the module docstring)."""
    from pathlib import Path

    from rooml.combine import combine, load_workspace, write_workspace

    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; use --force to replace it")
    if args.scan < 0 or args.scan == 1:
        raise ValueError(f"--scan needs at least 2 points, got {args.scan}")
    from rooml.roofit import load_library

    ROOT = load_library()
    ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.WARNING)
    hf = load_workspace(args.histfactory, args.workspace)
    unb = load_workspace(args.unbinned, args.unbinned_workspace)
    ws = combine(
        hf,
        unb,
        rename=_mapping(args.poi_map),
        prefix=args.prefix,
        channel_name=args.channel,
        model_config_name=args.model_config,
        unbinned_model_config=args.unbinned_model_config,
        data_name=args.data,
        unbinned_data=args.unbinned_data,
    )
    print(ws._rooml_combination)
    write_workspace(ws, args.output, force=args.force)
    print(
        f"wrote {args.output}: workspace '{ws.GetName()}', ModelConfig '{args.model_config}', "
        f"dataset '{args.data}' ({ws.data(args.data).numEntries()} rows)"
    )
    if args.fit or args.scan:
        _fit_and_scan(ws, args.model_config, args.data, args.scan)
    return 0


def _fit_and_scan(ws, mc_name: str, data_name: str, points: int) -> None:
    from rooml.infer import fit, profile_scan, scan_range

    mc = ws.obj(mc_name)
    pdf, data = mc.GetPdf(), ws.data(data_name)
    result = fit(pdf, data)
    print(result)
    if not points:
        return
    poi = mc.GetParametersOfInterest().first()
    low, high = scan_range(pdf, data, poi, n_sigma=SCAN_SIGMA)
    scan = profile_scan(pdf, data, poi, np.linspace(low, high, points), progress=sys.stderr.isatty())
    for v, t in zip(scan.values, scan.t):
        print(f"  {poi.GetName()} = {v:10.5g}   t = {t:.4f}")
    print(f"{poi.GetName()} = {scan.mu_hat:.4g}  68.3% CL interval {scan.describe_interval(1.0)}")
