"""ROOT's HistFactory tutorial workspace hf001, built from the ROOT installation's own tutorial files.

>>> ws = hf001_workspace("hf001")      # doctest: +SKIP
>>> ws.obj("ModelConfig").GetPdf()     # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["hf001_channel", "hf001_workspace", "histfactory_tutorials"]


def histfactory_tutorials() -> Path:
    """The folder of ROOT's HistFactory tutorials (``tutorials/roofit/histfactory`` of the ROOT wheel)."""
    import ROOT

    roots = [Path(ROOT.__file__).parent / "tutorials", Path(str(ROOT.TROOT.GetTutorialDir()))]
    for base in roots:
        for sub in ("roofit/histfactory", "histfactory"):
            if (base / sub / "makeExample.C").exists():
                return base / sub
    raise FileNotFoundError("ROOT's HistFactory tutorials (makeExample.C) are not in this ROOT installation; "
                            f"looked in {', '.join(str(r) for r in roots)}")


def hf001_workspace(folder: str | os.PathLike):
    """Build the workspace of ROOT's tutorial ``hf001_example``: 1 channel, 2 bins, signal + 2 backgrounds.

    The input histograms are made by the tutorials' own ``makeExample.C`` in ``folder/data``; the
    measurement is the tutorial's (POI ``SigXsecOverSM``; OverallSys ``syst1-3``; stat. errors; ``Lumi``
    with 10 %; ``Lumi`` and ``alpha_syst1`` constant).  Returns the ``RooWorkspace`` (with ``ModelConfig``
    and ``obsData``); HistFactory's output files go to ``folder/results``.
    """
    import ROOT

    folder = Path(folder).resolve()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "results").mkdir(exist_ok=True)
    inputs = folder / "data" / "example.root"
    if not inputs.exists():
        cwd = os.getcwd()
        try:
            os.chdir(folder / "data")
            ROOT.gROOT.ProcessLine(f'.x {histfactory_tutorials() / "makeExample.C"}')
        finally:
            os.chdir(cwd)
    HF = ROOT.RooStats.HistFactory
    meas = HF.Measurement("meas", "meas")
    meas.SetOutputFilePrefix(str(folder / "results" / "example_UsingPy"))
    meas.SetPOI("SigXsecOverSM")
    meas.AddConstantParam("Lumi")
    meas.AddConstantParam("alpha_syst1")
    meas.SetLumi(1.0)
    meas.SetLumiRelErr(0.10)
    meas.AddChannel(hf001_channel("channel1", inputs))
    meas.CollectHistograms()
    return HF.MakeModelAndMeasurementFast(meas)


def hf001_channel(name: str, inputs: str | os.PathLike, *, histo_sys: tuple[str, str] | None = None):
    """Build a ``HistFactory.Channel`` like tutorial ``hf001_example``'s from the histograms in ``inputs``.

    Samples ``signal`` (OverallSys ``syst1``, NormFactor ``SigXsecOverSM`` in [0, 3]), ``background1``
    (stat. error from ``background1_statUncert``, ``syst2``) and ``background2`` (stat. error, ``syst3``; with
    ``histo_sys = (down, up)`` histogram names also a HistoSys ``syst4``); data ``data``; Poisson stat. errors
    above 5 %.
    """
    import ROOT

    HF = ROOT.RooStats.HistFactory
    inputs = str(inputs)
    chan = HF.Channel(name)
    chan.SetData("data", inputs)
    chan.SetStatErrorConfig(0.05, "Poisson")
    signal = HF.Sample("signal", "signal", inputs)
    signal.AddOverallSys("syst1", 0.95, 1.05)
    signal.AddNormFactor("SigXsecOverSM", 1, 0, 3)
    chan.AddSample(signal)
    background1 = HF.Sample("background1", "background1", inputs)
    background1.ActivateStatError("background1_statUncert", inputs)
    background1.AddOverallSys("syst2", 0.95, 1.05)
    chan.AddSample(background1)
    background2 = HF.Sample("background2", "background2", inputs)
    background2.ActivateStatError()
    background2.AddOverallSys("syst3", 0.95, 1.05)
    if histo_sys is not None:
        down, up = histo_sys
        background2.AddHistoSys("syst4", down, inputs, "", up, inputs, "")
    chan.AddSample(background2)
    return chan
