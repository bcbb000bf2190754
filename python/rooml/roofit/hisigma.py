"""The HI-SIGMA likelihood as an ordinary RooFit model.

Each process factorizes as P(x'|m) P(m): the feature densities are
``RooFlowPdf`` objects conditional on the resonant mass m (trained on the
sidebands for the background, on simulation for the signal); the signal mass
shape is a double-sided Crystal Ball (``RooCrystalBall``), the background mass
shape ``exp(-p1 u + p2 u^2)`` with u = (m - m_lo)/(m_hi - m_lo) and free p1, p2.
The extended likelihood Pois(N | s + b) prod_i [s P_s + b P_b]/(s + b) is a
``RooAddPdf`` of the two conditional products with yields s = mu * s_expected
and b.
"""
from __future__ import annotations

from dataclasses import dataclass

from rooml.roofit._library import load_library
from rooml.roofit.flow import flow_pdf

__all__ = ["HiSigmaModel", "hisigma_model"]


@dataclass
class HiSigmaModel:
    """The RooFit objects of a HI-SIGMA model (keep this object alive while using them)."""

    model: object  # RooAddPdf, extended
    mu: object  # signal strength (POI)
    n_bkg: object  # background yield
    s_expected: object  # expected signal yield at mu = 1 (constant)
    mass: object
    features: list
    p1: object
    p2: object
    keep: list

    def observables(self):
        """RooArgSet of the mass and the features."""
        import ROOT

        return ROOT.RooArgSet(self.mass, *self.features)

    def to_workspace(self, data=None, name: str = "hisigma", model_config: str = "ModelConfig"):
        """Put the model, ``data`` (optional) and a ``RooStats::ModelConfig`` into a new ``RooWorkspace``.

        POI ``mu``; nuisance parameters the background yield and mass-shape parameters; observables the mass
        and the features: what ``rooml combine`` and RooStats take.
        """
        from rooml.roofit.nsbi import to_workspace

        parts = {"pdf": self.model, "poi": [self.mu], "nuisance_parameters": [self.n_bkg, self.p1, self.p2],
                 "global_observables": [], "observables": [self.mass, *self.features]}
        return to_workspace(parts, data, name=name, model_config=model_config)


def hisigma_model(signal_flow, background_flow, *, mass_range=(90.0, 180.0), mass_name="m_yy",
                  signal_mass=None, s_expected: float = 100.0, n_bkg_start: float = 1000.0,
                  p1: float = 3.0, p2: float = 0.5, feature_ranges: dict | None = None) -> HiSigmaModel:
    """Build the HI-SIGMA extended model from two exported conditional flows.

    Parameters
    ----------
    signal_flow, background_flow
        ``.onnx`` files of P_s(x'|m) and P_b(x'|m); their single context variable is the mass.
    signal_mass
        Crystal Ball parameters ``dict(mu, sigma, alpha_l, n_l, alpha_r, n_r)`` (fixed);
        default: the :mod:`rooml.data.bbyy` truth.
    s_expected
        Signal yield at mu = 1.
    feature_ranges
        ``{name: (low, high)}`` for the feature variables (default: the flows' support).
    """
    ROOT = load_library()
    from rooml.export import read_metadata

    meta_s, meta_b = read_metadata(signal_flow), read_metadata(background_flow)
    if meta_s["features"] != meta_b["features"]:
        raise ValueError(f"signal and background flows have different features: {meta_s['features']} vs "
                         f"{meta_b['features']}")
    for meta, which in ((meta_s, "signal"), (meta_b, "background")):
        if len(meta["context"]) != 1:
            raise ValueError(f"the {which} flow must be conditional on the mass only, has context {meta['context']}")
    keep: list = []
    lo, hi = mass_range
    m = ROOT.RooRealVar(mass_name, mass_name, 0.5 * (lo + hi), lo, hi)
    features = []
    for name, (s_lo, s_hi) in zip(meta_s["features"], meta_s["support"]):
        f_lo, f_hi = (feature_ranges or {}).get(name, (s_lo if s_lo is not None else -1e30,
                                                        s_hi if s_hi is not None else 1e30))
        features.append(ROOT.RooRealVar(name, name, f_lo, f_hi))
    keep += [m, *features]

    cb = signal_mass or _bbyy_signal_mass()
    cb_vars = {k: ROOT.RooConstVar(f"cb_{k}", k, float(v)) for k, v in cb.items()}
    pdf_ms = ROOT.RooCrystalBall("signal_mass", "P_s(m)", m, cb_vars["mu"], cb_vars["sigma"], cb_vars["sigma"],
                                 cb_vars["alpha_l"], cb_vars["n_l"], cb_vars["alpha_r"], cb_vars["n_r"])
    vp1 = ROOT.RooRealVar("p1", "p1", p1, -20, 20)
    vp2 = ROOT.RooRealVar("p2", "p2", p2, -20, 20)
    pdf_mb = ROOT.RooGenericPdf("background_mass", "P_b(m)",
                                f"exp(-p1*(({mass_name}-{lo})/{hi - lo}) + p2*pow(({mass_name}-{lo})/{hi - lo},2))",
                                ROOT.RooArgList(m, vp1, vp2))
    keep += [*cb_vars.values(), pdf_ms, vp1, vp2, pdf_mb]

    flow_s = flow_pdf("signal_features", signal_flow, features, [m])
    flow_b = flow_pdf("background_features", background_flow, features, [m])
    feature_set = ROOT.RooArgSet(*features)
    sig = ROOT.RooProdPdf("signal", "P_s(m) P_s(x'|m)", ROOT.RooArgSet(pdf_ms),
                          ROOT.RooFit.Conditional(ROOT.RooArgSet(flow_s), feature_set))
    bkg = ROOT.RooProdPdf("background", "P_b(m) P_b(x'|m)", ROOT.RooArgSet(pdf_mb),
                          ROOT.RooFit.Conditional(ROOT.RooArgSet(flow_b), feature_set))
    mu = ROOT.RooRealVar("mu", "signal strength", 1.0, -20.0, 50.0)
    s_exp = ROOT.RooConstVar("s_expected", "expected signal yield", float(s_expected))
    n_sig = ROOT.RooProduct("n_sig", "mu * s_expected", ROOT.RooArgList(mu, s_exp))
    n_bkg = ROOT.RooRealVar("n_bkg", "background yield", n_bkg_start, 0.0, 1e9)
    model = ROOT.RooAddPdf("hisigma", "HI-SIGMA model", ROOT.RooArgList(sig, bkg), ROOT.RooArgList(n_sig, n_bkg))
    keep += [flow_s, flow_b, sig, bkg, mu, s_exp, n_sig, n_bkg, model]
    return HiSigmaModel(model, mu, n_bkg, s_exp, m, features, vp1, vp2, keep)


def _bbyy_signal_mass() -> dict:
    from rooml.data import bbyy

    t = bbyy.truth
    return dict(mu=t.mu, sigma=t.sigma, alpha_l=t.alpha_l, n_l=t.n_l, alpha_r=t.alpha_r, n_r=t.n_r)
