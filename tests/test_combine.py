"""Combination of an unbinned NSBI channel with a HistFactory workspace (hf001-like, built in Python)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rooml.combine import combine, load_workspace, model_config, simultaneous_constant, write_workspace
from rooml.data import offshell4l
from rooml.data.histfactory import hf001_channel
from rooml.infer import fit
from rooml.roofit import dataset_with_index, index_variable, nsbi_model, to_workspace
from root_macro import run_root_macro

PROCESSES = ("S", "SBI", "B")
LUMI_SCALE = 0.5  # unbinned channel: offshell4l yields x 0.5 (about 670 events)


def _histfactory_workspace(ROOT, tmp: Path, channels=("channel1",)):
    """Build ROOT's hf001 example: signal + 2 backgrounds, OverallSys, HistoSys, stat. errors, Lumi.

    Every name in ``channels`` is one channel with these samples (systematics shared by all)."""
    HF = ROOT.RooStats.HistFactory
    hist_file = tmp / "hf001_inputs.root"
    f = ROOT.TFile(str(hist_file), "RECREATE")
    for name, values in {
        "signal": [20.0, 10.0],
        "background1": [100.0, 0.0],
        "background2": [0.0, 100.0],
        "background1_statUncert": [0.05, 0.05],
        "background2_syst4_up": [0.0, 110.0],
        "background2_syst4_down": [0.0, 90.0],
        "data": [122.0, 112.0],
    }.items():
        h = ROOT.TH1F(name, name, 2, 1.0, 3.0)
        for i, v in enumerate(values):
            h.SetBinContent(i + 1, v)
        h.Write()
    f.Close()
    meas = HF.Measurement("meas", "meas")
    meas.SetOutputFilePrefix(str(tmp / "hf001"))
    meas.SetPOI("SigXsecOverSM")
    meas.SetLumi(1.0)
    meas.SetLumiRelErr(0.10)
    for channel in channels:
        syst4 = ("background2_syst4_down", "background2_syst4_up")
        meas.AddChannel(hf001_channel(channel, hist_file, histo_sys=syst4))
    meas.CollectHistograms()
    return HF.MakeModelAndMeasurementFast(meas)


def _unbinned_workspace(ROOT, *, weighted: bool = False, poi: str = "mu", lumi: bool = True):
    """NSBI model of offshell4l with exact truth ratios; shares alpha_syst1 (and Lumi) with HistFactory."""
    t = offshell4l.truth
    x = offshell4l.make_pseudodata(1.0, 0.0, seed=3, lumi_scale=LUMI_SCALE)
    y = t.yields(0.0)
    idx = index_variable()
    mu = ROOT.RooRealVar(poi, poi, 1.0, 0.0, 10.0)
    params = ROOT.RooArgList(mu)
    scale = ""
    if lumi:
        lumi_var = ROOT.RooRealVar("Lumi", "luminosity", 1.0, 0.0, 10.0)
        params = ROOT.RooArgList(mu, lumi_var)
        scale = "Lumi*"
    # formulas by name: renaming mu must also work for them (RooFit's import leaves the text alone)
    coefficients = {
        p: ROOT.RooFormulaVar(f"unb_f_{p}", f"{scale}({f})", params)
        for p, f in {"S": f"{poi}-sqrt({poi})", "SBI": f"sqrt({poi})", "B": f"1-sqrt({poi})"}.items()
    }
    m = nsbi_model(
        "nsbi",
        idx,
        yields={p: LUMI_SCALE * y[p] for p in PROCESSES},
        coefficients=coefficients,
        ratios={p: t.ratio(p, x, reference="SBI") for p in PROCESSES},
        poi=[mu],
        nps=[("alpha_syst1", 0.0, -5.0, 5.0), ("alpha_unb", 0.0, -5.0, 5.0)],
        norm={(p, "alpha_syst1"): (t.G(p, -1.0), t.G(p, 1.0)) for p in PROCESSES}
        | {("B", "alpha_unb"): (0.97, 1.03)},
        shape={(p, "alpha_syst1"): (t.g(p, x, -1.0), t.g(p, x, 1.0)) for p in PROCESSES},
    )
    m["keep"] += list(coefficients.values())
    weights = np.random.default_rng(5).poisson(1.0, len(x)).astype(float) if weighted else None
    data = dataset_with_index({}, idx, n=len(x), weights=weights, name="data")
    return to_workspace(m, data, name="unbinned")


@pytest.fixture(scope="module")
def inputs(roofit, tmp_path_factory):
    """(HistFactory workspace, unbinned workspace) written to files."""
    tmp = tmp_path_factory.mktemp("combine")
    hf = _histfactory_workspace(roofit, tmp)
    hf_path = tmp / "hf.root"
    write_workspace(hf, hf_path)
    unb_path = tmp / "unbinned.root"
    write_workspace(_unbinned_workspace(roofit), unb_path)
    return hf_path, unb_path


def _tiny_workspace(
    ROOT, *, pdf_name="gauss_y", obs_name="y", lumi_sigma=None, lumi_names=("Lumi_constraint", "Lumi_obs")
):
    """Build a Gaussian channel in an observable ``y`` with POI ``mu`` (optionally a constrained ``Lumi``)."""
    y = ROOT.RooRealVar(obs_name, obs_name, -5.0, 5.0)
    mu = ROOT.RooRealVar("mu", "mu", 1.0, 0.0, 10.0)
    nexp = ROOT.RooRealVar("n_y", "expected events", 20.0, 0.0, 100.0)
    gauss = ROOT.RooGaussian(f"{pdf_name}_shape", "", y, mu, ROOT.RooFit.RooConst(1.0))
    pdf = ROOT.RooExtendPdf(pdf_name, "", gauss, nexp)
    keep, globs = [y, mu, nexp, gauss], []
    if lumi_sigma is not None:
        lumi = ROOT.RooRealVar("Lumi", "Lumi", 1.0, 0.0, 10.0)
        glob = ROOT.RooRealVar(lumi_names[1], "", 1.0, 0.0, 10.0)
        glob.setConstant(True)
        con = ROOT.RooGaussian(lumi_names[0], "", glob, lumi, ROOT.RooFit.RooConst(lumi_sigma))
        lumi_factor = ROOT.RooFormulaVar("lumi_times_n", "x[0]*x[1]", ROOT.RooArgList(lumi, nexp))
        extended = ROOT.RooExtendPdf(pdf_name, "", gauss, lumi_factor)
        pdf = ROOT.RooProdPdf(f"{pdf_name}_model", "", ROOT.RooArgList(extended, con))
        keep += [lumi, glob, con, lumi_factor, extended]
        globs = [glob]
    data = pdf.generate(ROOT.RooArgSet(y), 20)
    ws = ROOT.RooWorkspace("tiny")
    ws.Import(pdf, ROOT.RooFit.Silence())
    ws.Import(data, ROOT.RooFit.Rename("data"), ROOT.RooFit.Silence())
    mc = ROOT.RooStats.ModelConfig("ModelConfig", ws)
    mc.SetPdf(pdf.GetName())
    mc.SetParametersOfInterest(ROOT.RooArgSet(ws.var("mu")))
    mc.SetObservables(ROOT.RooArgSet(ws.var(obs_name)))
    if globs:
        mc.SetGlobalObservables(ROOT.RooArgSet(ws.var(lumi_names[1])))
    ws.Import(mc)
    return ws


def _set(ws, values: dict[str, float], rename: dict[str, str] | None = None) -> None:
    """Set the parameters of ``ws`` that exist there (names mapped through ``rename``)."""
    for name, value in values.items():
        var = ws.var((rename or {}).get(name, name))
        if var:
            var.setVal(value)


def _nll(ROOT, ws, data_name):
    mc = ws.obj("ModelConfig")
    return mc.GetPdf().createNLL(
        ws.data(data_name),
        ROOT.RooFit.EvalBackend("cpu"),
        ROOT.RooFit.Offset("off"),
        ROOT.RooFit.GlobalObservables(mc.GetGlobalObservables()),
    )


def _random_points(n, seed=11):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {
            "SigXsecOverSM": rng.uniform(0.1, 2.8),
            "Lumi": rng.uniform(0.85, 1.15),
            "alpha_syst1": rng.uniform(-2.0, 2.0),
            "alpha_syst2": rng.uniform(-1.5, 1.5),
            "alpha_syst3": rng.uniform(-1.5, 1.5),
            "alpha_syst4": rng.uniform(-1.5, 1.5),
            "alpha_unb": rng.uniform(-1.5, 1.5),
            "gamma_stat_channel1_bin_0": rng.uniform(0.9, 1.1),
            "gamma_stat_channel1_bin_1": rng.uniform(0.8, 1.2),
        }


def _check_sum_of_parts(ROOT, hf, unb, combined, points):
    """Check NLL_comb = NLL_HF + NLL_unbinned - its dropped alpha_syst1 constraint + sum(w) ln 2 (1e-9)."""
    to_unb = {"SigXsecOverSM": "mu"}
    parts = (_nll(ROOT, hf, "obsData"), _nll(ROOT, unb, "data"))
    nll = _nll(ROOT, combined, "obsData")
    mc = combined.obj("ModelConfig")  # without GlobalObservables(): the pdf's DefaultGlobalObservablesTag
    tagged = mc.GetPdf().createNLL(
        combined.data("obsData"), ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.Offset("off")
    )
    constant = simultaneous_constant(combined.data("obsData"), 2)
    assert constant == pytest.approx(combined.data("obsData").sumEntries() * math.log(2), rel=1e-15)
    glob = unb.var("alpha_syst1_obs").getVal()
    worst = 0.0
    values = []
    for point in points:
        _set(combined, point)
        _set(hf, point)
        _set(unb, point, to_unb)
        dropped = 0.5 * (point["alpha_syst1"] - glob) ** 2 + 0.5 * math.log(
            2 * math.pi
        )  # -ln Gaus(a_obs|a, 1)
        reference = parts[0].getVal() + parts[1].getVal() - dropped + constant
        got = nll.getVal()
        assert tagged.getVal() == pytest.approx(got, rel=1e-14)
        worst = max(worst, abs(got / reference - 1.0))
        values.append((got, reference))
    values = np.array(values)
    # the parameter dependence alone (differences to the first point) agrees as well
    np.testing.assert_allclose(
        values[1:, 0] - values[0, 0], values[1:, 1] - values[0, 1], rtol=1e-9, atol=1e-7
    )
    assert worst < 1e-9, worst
    return worst


def test_combined_nll_is_sum_of_parts(roofit, inputs, tmp_path):
    """NLL_comb = NLL_HF + NLL_unbinned (shared constraint once) at random points; ModelConfig; file."""
    ROOT = roofit
    hf, unb = load_workspace(inputs[0]), load_workspace(inputs[1])
    combined = combine(hf, unb, rename={"mu": "SigXsecOverSM"})
    info = combined._rooml_combination
    assert info.shared == ["Lumi", "SigXsecOverSM", "alpha_syst1"]
    assert info.dropped_constraints == {"alpha_syst1_constraint": "alpha_syst1Constraint"}
    worst = _check_sum_of_parts(ROOT, hf, unb, combined, list(_random_points(6)))
    print(f"combined NLL vs sum of parts: worst relative difference {worst:.2e}")

    mc = model_config(combined)
    assert [v.GetName() for v in mc.GetParametersOfInterest()] == ["SigXsecOverSM"]
    assert {"alpha_unb", "alpha_syst1", "Lumi"} <= {v.GetName() for v in mc.GetNuisanceParameters()}
    globs = {v.GetName() for v in mc.GetGlobalObservables()}
    assert "alpha_unb_obs" in globs and "alpha_syst1_obs" not in globs
    assert {v.GetName() for v in mc.GetObservables()} == {"obs_x_channel1", "channelCat", "event_index"}
    data = combined.data("obsData")
    n_unb = unb.data("data").numEntries()
    assert data.numEntries() == hf.data("obsData").numEntries() + n_unb
    assert data.sumEntries("channelCat==channelCat::unbinned") == pytest.approx(n_unb)
    assert data.sumEntries("channelCat==channelCat::channel1") == pytest.approx(
        hf.data("obsData").sumEntries()
    )

    # the written workspace gives the same NLL, and the inputs are untouched
    path = write_workspace(combined, tmp_path / "combined.root")
    again = load_workspace(path)
    point = next(_random_points(1, seed=3))
    _set(combined, point)
    _set(again, point)
    assert _nll(ROOT, again, "obsData").getVal() == pytest.approx(
        _nll(ROOT, combined, "obsData").getVal(), rel=1e-12
    )
    assert [n for n, _ in hf.cat("channelCat")] == ["channel1"]


def test_weighted_unbinned_data(roofit, inputs):
    """Poisson-bootstrap weights of the unbinned events enter the combined dataset and NLL."""
    ROOT = roofit
    hf = load_workspace(inputs[0])
    unb = _unbinned_workspace(ROOT, weighted=True)
    combined = combine(hf, unb, rename={"mu": "SigXsecOverSM"})
    data = combined.data("obsData")
    assert data.sumEntries("channelCat==channelCat::unbinned") == pytest.approx(unb.data("data").sumEntries())
    assert unb.data("data").sumEntries() != unb.data("data").numEntries()
    _check_sum_of_parts(ROOT, hf, unb, combined, list(_random_points(3, seed=5)))


def _fit_with_globs(ROOT, pdf, data, globs):
    """Minuit2 fit with the global observables named (constraint normalization as HistFactory's)."""
    from rooml.infer import FitResult, minimize

    nll = pdf.createNLL(data, ROOT.RooFit.EvalBackend("cpu"), ROOT.RooFit.GlobalObservables(globs))
    return FitResult.from_roofit(minimize(nll))


def test_joint_fit_consistent_with_separate_fits(roofit, inputs):
    """Joint mu-hat near the inverse-variance average of the separate ones; joint error below both.

    The two channels share alpha_syst1 and Lumi, so the likelihoods are not independent Gaussians in mu
    and the average is not exact: we allow 0.3 sigma_comb (measured here: 0.16 sigma).
    """
    ROOT = roofit
    hf, unb = load_workspace(inputs[0]), load_workspace(inputs[1])
    combined = combine(hf, unb, rename={"mu": "SigXsecOverSM"})
    hf_mc, unb_mc = model_config(hf), model_config(unb)
    unb.var("Lumi").setConstant(True)  # the unbinned model alone does not constrain the luminosity
    r_hf = _fit_with_globs(ROOT, hf_mc.GetPdf(), hf.data("obsData"), hf_mc.GetGlobalObservables())
    r_unb = _fit_with_globs(ROOT, unb_mc.GetPdf(), unb.data("data"), unb_mc.GetGlobalObservables())
    mc = model_config(combined)
    r_comb = fit(mc.GetPdf(), combined.data("obsData"))  # uses the DefaultGlobalObservablesTag of the pdf
    assert r_hf.status == r_unb.status == r_comb.status == 0
    (m1, s1), (m2, s2) = (
        (
            r["SigXsecOverSM" if "SigXsecOverSM" in r.parameters else "mu"].value,
            r["SigXsecOverSM" if "SigXsecOverSM" in r.parameters else "mu"].error,
        )
        for r in (r_hf, r_unb)
    )
    mc_hat, sc = r_comb["SigXsecOverSM"].value, r_comb["SigXsecOverSM"].error
    average = (m1 / s1**2 + m2 / s2**2) / (1 / s1**2 + 1 / s2**2)
    sigma_avg = (1 / s1**2 + 1 / s2**2) ** -0.5
    print(
        f"HF mu = {m1:.4f} +- {s1:.4f}, unbinned mu = {m2:.4f} +- {s2:.4f}, weighted average "
        f"{average:.4f} +- {sigma_avg:.4f}, joint {mc_hat:.4f} +- {sc:.4f} "
        f"(difference {(mc_hat - average) / sc:+.3f} sigma)"
    )
    assert sc < min(s1, s2)
    assert abs(mc_hat - average) < 0.3 * sc
    assert sc == pytest.approx(sigma_avg, rel=0.15)


def test_errors_and_clashes(roofit, inputs):
    """Missing names, unmapped POI, existing channel, name clashes (and --prefix), differing constraints."""
    ROOT = roofit
    hf, unb = load_workspace(inputs[0]), load_workspace(inputs[1])
    with pytest.raises(ValueError, match="no workspace 'nope'.*combined"):
        load_workspace(inputs[0], "nope")
    with pytest.raises(FileNotFoundError):
        load_workspace(inputs[0].with_name("missing.root"))
    with pytest.raises(ValueError, match="no ModelConfig 'nope'.*ModelConfig"):
        combine(hf, unb, model_config_name="nope", rename={"mu": "SigXsecOverSM"})
    with pytest.raises(ValueError, match="no dataset 'nope'"):
        combine(hf, unb, data_name="nope", rename={"mu": "SigXsecOverSM"})
    with pytest.raises(ValueError, match=r"POI \['mu'\].*--poi-map mu=SigXsecOverSM"):
        combine(hf, unb)
    with pytest.raises(ValueError, match="already has a channel 'channel1'"):
        combine(hf, unb, rename={"mu": "SigXsecOverSM"}, channel_name="channel1")
    with pytest.raises(ValueError, match="rename: the unbinned model has no objects"):
        combine(hf, unb, rename={"muu": "SigXsecOverSM"})

    binned = _tiny_workspace(ROOT)
    binned.Import(ROOT.RooDataHist("binned", "", ROOT.RooArgSet(binned.var("y")), binned.data("data")))
    with pytest.raises(ValueError, match="'binned' is a RooDataHist; a RooDataSet is needed"):
        combine(hf, binned, rename={"mu": "SigXsecOverSM"}, unbinned_data="binned")

    # a pdf named like a HistFactory pdf clashes; a prefix renames it
    tiny = _tiny_workspace(ROOT, pdf_name="lumiConstraint")
    with pytest.raises(ValueError, match="name clash.*'lumiConstraint'"):
        combine(hf, tiny, rename={"mu": "SigXsecOverSM"})
    combined = combine(hf, tiny, rename={"mu": "SigXsecOverSM"}, prefix="tiny_")
    assert combined.pdf("tiny_lumiConstraint") and combined.pdf("lumiConstraint")
    assert combined._rooml_combination.renamed["lumiConstraint"] == "tiny_lumiConstraint"
    assert combined.pdf("simPdf").getPdf("unbinned").GetName() == "tiny_lumiConstraint"

    # an observable named like a HistFactory parameter is not a parameter: clash
    with pytest.raises(ValueError, match="name clash.*'alpha_syst2'"):
        combine(hf, _tiny_workspace(ROOT, obs_name="alpha_syst2"), rename={"mu": "SigXsecOverSM"})
    with pytest.raises(ValueError, match="several unbinned objects the same name"):
        combine(hf, _tiny_workspace(ROOT), rename={"y": "SigXsecOverSM", "mu": "SigXsecOverSM"})

    # a shared parameter with a different constraint (2 % instead of HistFactory's 10 % on Lumi)
    with pytest.raises(ValueError, match="'Lumi' is constrained differently"):
        combine(hf, _tiny_workspace(ROOT, lumi_sigma=0.02), rename={"mu": "SigXsecOverSM"})
    same = combine(hf, _tiny_workspace(ROOT, lumi_sigma=0.1), rename={"mu": "SigXsecOverSM"})
    assert same._rooml_combination.dropped_constraints == {"Lumi_constraint": "lumiConstraint"}
    assert "Lumi_obs" not in {v.GetName() for v in model_config(same).GetGlobalObservables()}
    # a dropped constraint may carry HistFactory's own names: only what is imported must not clash
    alike = _tiny_workspace(ROOT, lumi_sigma=0.1, lumi_names=("lumiConstraint", "nominalLumi"))
    alike = combine(hf, alike, rename={"mu": "SigXsecOverSM"})
    assert alike._rooml_combination.dropped_constraints == {"lumiConstraint": "lumiConstraint"}


def _rooml(*args):
    return subprocess.run(
        [sys.executable, "-m", "rooml.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_cli_end_to_end(roofit, inputs, tmp_path):
    """``rooml combine`` writes the combined workspace, fits, scans; refuses to overwrite; bad names."""
    out = tmp_path / "combined.root"
    args = [
        "combine",
        "--histfactory",
        inputs[0],
        "--workspace",
        "combined",
        "--unbinned",
        inputs[1],
        "--poi-map",
        "mu=SigXsecOverSM",
        "-o",
        out,
    ]
    res = _rooml(*args, "--fit", "--scan", "5")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "shared parameters: Lumi, SigXsecOverSM, alpha_syst1" in res.stdout
    assert re.search(r"SigXsecOverSM\s+=\s+1\.2\d+ \+- 0\.5\d", res.stdout), res.stdout
    assert "68.3% CL interval" in res.stdout
    ws = load_workspace(out)
    in_memory = combine(*inputs, rename={"mu": "SigXsecOverSM"})
    for point in _random_points(2, seed=8):  # the file written by another process: the same likelihood
        _set(ws, point)
        _set(in_memory, point)
        assert _nll(roofit, ws, "obsData").getVal() == pytest.approx(
            _nll(roofit, in_memory, "obsData").getVal(), rel=1e-12
        )
    mc = model_config(ws)
    sim = mc.GetPdf()
    assert sim.InheritsFrom("RooSimultaneous")
    assert [n for n, _ in sim.indexCat()] == ["channel1", "unbinned"]
    assert sim.getPdf("unbinned").GetName() == "model_unbinned"
    assert ws.data("obsData").numEntries() == (
        load_workspace(inputs[0]).data("obsData").numEntries()
        + load_workspace(inputs[1]).data("data").numEntries()
    )

    # and in a C++ macro with nothing but gSystem->Load("libRooML")
    macro = tmp_path / "combined_nll.C"
    macro.write_text(_MACRO)
    res = run_root_macro(macro, out)
    match = re.search(r"ROOML_NLL (\S+) (\d+)", res.stdout)
    assert match, res.stdout + res.stderr
    fresh = load_workspace(out)  # the stored parameter values, as the macro sees them
    _set(fresh, {"SigXsecOverSM": 1.3, "alpha_syst1": 0.4})
    assert float(match.group(1)) == pytest.approx(_nll(roofit, fresh, "obsData").getVal(), rel=1e-12)
    assert int(match.group(2)) == 2

    before = out.read_bytes()
    res = _rooml(*args)
    assert res.returncode == 2 and "exists" in res.stderr and "--force" in res.stderr
    assert out.read_bytes() == before
    res = _rooml(*args[:-2], "--model-config", "nope", "-o", tmp_path / "other.root")
    assert res.returncode == 2 and "no ModelConfig 'nope'" in res.stderr
    assert not (tmp_path / "other.root").exists()
    assert not list(tmp_path.glob(".*.tmp.root"))


_MACRO = r"""
#include <RooAbsPdf.h>
#include <RooAbsReal.h>
#include <RooRealVar.h>
#include <RooSimultaneous.h>
#include <RooStats/ModelConfig.h>
#include <RooWorkspace.h>
#include <TFile.h>
#include <TSystem.h>
#include <cstdio>
#include <memory>

int combined_nll(const char *path)
{
   if (gSystem->Load("libRooML") < 0) return 1;
   std::unique_ptr<TFile> file{TFile::Open(path)};
   auto *w = file->Get<RooWorkspace>("combined");
   auto *mc = static_cast<RooStats::ModelConfig *>(w->obj("ModelConfig"));
   w->var("SigXsecOverSM")->setVal(1.3);
   w->var("alpha_syst1")->setVal(0.4);
   std::unique_ptr<RooAbsReal> nll{mc->GetPdf()->createNLL(*w->data("obsData"), RooFit::EvalBackend::Cpu(),
                                                           RooFit::Offset("off"),
                                                           RooFit::GlobalObservables(*mc->GetGlobalObservables()))};
   auto *sim = static_cast<RooSimultaneous *>(mc->GetPdf());
   std::printf("ROOML_NLL %.17g %d\n", nll->getVal(), sim->indexCat().size());
   return 0;
}
"""


def _readme_nsbi_workspace(ROOT, folder: Path, *, only_index: bool = False):
    """Write the README's NSBI path with tiny trained ratio networks (ratio_function inputs)."""
    import rooml.roofit as rr
    from rooml.export import export_ratio
    from rooml.models import RatioConfig, train_ratio

    folder = folder / ("only_index" if only_index else "features")
    folder.mkdir()
    rng = np.random.default_rng(7)
    features = ["x0", "x1"]
    reference = {n: rng.normal(0.0, 1.0, 3000) for n in features}
    signal = {n: rng.normal(0.7, 0.8, 3000) for n in features}
    config = RatioConfig(hidden=(8,))
    files = {}
    for proc, numerator in (("S", signal), ("B", reference)):
        net = train_ratio(numerator, reference, features=features, config=config, epochs=2, progress=False,
                          support=[(-10.0, 10.0)] * 2, seed=1)
        files[proc] = export_ratio(net, folder / f"ratio_{proc}.onnx")
    x = rr.ratio_variables(files["S"])
    ratios = {p: rr.ratio_function(f"r_{p}", files[p], x) for p in files}
    index = rr.index_variable()
    model = rr.nsbi_model("nsbi", index, yields={"S": 20.0, "B": 200.0}, coefficients={"S": "mu", "B": "1"},
                          ratios=ratios)
    assert {v.GetName() for v in model["observables"]} == set(features)
    if only_index:  # what to_workspace recorded before: the features were lost in the combination
        model["observables"] = [index]
    events = np.concatenate([rng.normal(0.0, 1.0, (200, 2)), rng.normal(0.7, 0.8, (20, 2))])
    x_vars = [x.at(i) for i in range(x.size())]
    data = rr.dataset_with_index({n: events[:, i] for i, n in enumerate(features)}, index, variables=x_vars,
                                 name="data")
    ws = rr.to_workspace(model, data, name="nsbi")
    path = folder / "nsbi.root"
    write_workspace(ws, path)
    return path


def test_readme_nsbi_path_into_rooml_combine(roofit, inputs, tmp_path):
    """A workspace of ratio_function inputs lists the features as observables, combines and fits end to end.

    A combination that cannot be evaluated leaves no output file.
    """
    nsbi_path = _readme_nsbi_workspace(roofit, tmp_path)
    mc = model_config(load_workspace(nsbi_path))
    assert sorted(v.GetName() for v in mc.GetObservables()) == ["x0", "x1"]
    out = tmp_path / "combined.root"
    res = _rooml("combine", "--histfactory", inputs[0], "--unbinned", nsbi_path,
                 "--poi-map", "mu=SigXsecOverSM", "-o", out, "--fit")
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"SigXsecOverSM\s+=\s+\S+ \+- \S+", res.stdout), res.stdout
    combined = load_workspace(out)
    assert {"x0", "x1"} <= {v.GetName() for v in model_config(combined).GetObservables()}

    broken = _readme_nsbi_workspace(roofit, tmp_path, only_index=True)
    bad_out = tmp_path / "broken.root"
    with pytest.raises(ValueError, match="the observable 'event_index' of a ModelConfig is not a variable"):
        combine(inputs[0], broken, rename={"mu": "SigXsecOverSM"})
    res = _rooml("combine", "--histfactory", inputs[0], "--unbinned", broken, "--poi-map", "mu=SigXsecOverSM",
                 "-o", bad_out, "--fit")
    assert res.returncode != 0 and "event_index" in res.stderr
    assert not bad_out.exists()
    assert not list(tmp_path.glob(".*.tmp.root"))
