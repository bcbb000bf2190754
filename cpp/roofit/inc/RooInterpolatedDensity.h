// RooInterpolatedDensity: per-event vertical interpolation of shape systematics, as a RooAbsPdf.
#ifndef ROOML_ROOINTERPOLATEDDENSITY_H
#define ROOML_ROOINTERPOLATEDDENSITY_H

#include <RooAbsPdf.h>
#include <RooListProxy.h>
#include <RooRealProxy.h>

#include <cstddef>
#include <vector>

/// P(x | nu) = P_0(x) w(x, nu) / N(nu): the nominal per-event density P_0 (any
/// RooAbsReal: a RooFlowPdf, a RooEventColumn of densities computed elsewhere)
/// times a per-event weight built from the +-1 sigma densities P_+k, P_-k of
/// each nuisance parameter nu_k with one interpolation code per parameter
/// (rooml::interp, the codes of RooFit's PiecewiseInterpolation: 0, 1, 2, 4, 5,
/// 6, and rooml's 100).  Several parameters combine exactly as
/// PiecewiseInterpolation does (rooml::interp::combine): start from P_0, then
/// for k = 0..K-1 add the shift (additive codes) or multiply by the factor
/// (multiplicative codes).  Without normalization (N = 1) the value equals
/// PiecewiseInterpolation's on the same inputs.
///
/// Normalization N(nu) (docs/roofit_classes.md has the derivation):
///  - None:    N = 1.  The interpolated density is *treated* as normalized; it
///             is at nu = 0 and nu_k = +-1, and for additive codes (and code 6)
///             at every nu, but not between the nodes for codes 1, 5, 100.
///  - Nodes:   N(nu) = combine(1; I_-k, I_+k; nu) with the same codes, where
///             I_+-k = E_{P_0}[P_+-k / P_0] are the variations' integrals
///             relative to the nominal (estimated in Python from nominal
///             samples).  Exact for additive codes and code 6 (their shift is
///             linear in the inputs), exact at the nodes for every code; for
///             normalized variations (I = 1) it is 1 for the multiplicative codes.
///  - Samples: N(nu) = sum_s w_s combine(1; r_-k(s), r_+k(s); nu) / sum_s w_s
///             over weighted nominal samples s with per-sample ratios
///             r_+-k(s) = P_+-k(x_s)/P_0(x_s): the Monte-Carlo estimate of
///             int P_0 w(x, nu) dx / int P_0 dx at every nu, for every code and
///             any number of parameters.
///
/// Integral over the observables: declared analytically wherever the nominal
/// declares its own (RooFlowPdf over its features, RooEventColumn over its
/// index; a nominal that RooFit's vectorized backend wrapped in a
/// RooNormalizedPdf is asked through the pdf inside), with the value the
/// nominal's values integrate to (1 for a pdf, whose values RooFit normalizes,
/// or the nominal function's own integral): the division by N(nu) makes the
/// interpolated density integrate like the nominal (in Samples mode up to
/// Monte-Carlo error).  docs/roofit_classes.md explains why N = 1 biases fits.
class RooInterpolatedDensity : public RooAbsPdf {
public:
   enum Normalization : int { kNone = 0, kNodes = 1, kSamples = 2 };

   RooInterpolatedDensity() = default;
   /// Not normalized (N = 1).  `codes` has one code per parameter (or one code for all); `floor` is
   /// rooml::interp::Floor (0: none, PiecewiseInterpolation's default; 1: v < 0 -> 0, its setPositiveDefinite).
   RooInterpolatedDensity(const char *name, const char *title, RooAbsReal &nominal, const RooArgList &low,
                          const RooArgList &high, const RooArgList &nps, const std::vector<int> &codes,
                          int floor = 0);
   /// Normalized with the variations' relative integrals I_-k, I_+k (Nodes mode, see above).
   RooInterpolatedDensity(const char *name, const char *title, RooAbsReal &nominal, const RooArgList &low,
                          const RooArgList &high, const RooArgList &nps, const std::vector<int> &codes,
                          const std::vector<double> &lowIntegrals, const std::vector<double> &highIntegrals,
                          int floor = 0);
   RooInterpolatedDensity(const RooInterpolatedDensity &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooInterpolatedDensity(*this, newname); }

   /// Switch to Nodes mode with integrals I_-k, I_+k (K each, finite, > 0 for multiplicative codes).
   void setNodeNormalization(const std::vector<double> &lowIntegrals, const std::vector<double> &highIntegrals);
   /// Switch to Samples mode: per-sample ratios P_-k/P_0 and P_+k/P_0 of n nominal samples, parameter-major
   /// (element k * n + s), and optional sample weights (n, or empty for equal weights).
   void setSampleNormalization(const std::vector<double> &lowRatios, const std::vector<double> &highRatios,
                               const std::vector<double> &weights = {});
   /// Back to N = 1.
   void setNoNormalization();

   int normalizationMode() const { return _normMode; }
   /// N(nu) at the current values of the parameters.
   double normalizationFactor() const;
   const std::vector<int> &codes() const { return _codes; }
   int floor() const { return _floor; }
   const RooAbsReal &nominal() const { return _nominal.arg(); }
   const RooArgList &lowList() const { return _low; }
   const RooArgList &highList() const { return _high; }
   const RooArgList &paramList() const { return _nps; }
   const std::vector<double> &lowIntegrals() const { return _lowIntegrals; }
   const std::vector<double> &highIntegrals() const { return _highIntegrals; }
   std::size_t nNormalizationSamples() const { return _sampleWeights.size(); }

   /// The observables are reached through the inputs (not direct servers): let RooFit ask this pdf about them.
   bool forceAnalyticalInt(const RooAbsArg & /*dep*/) const override { return true; }
   Int_t getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars, const char *rangeName = nullptr) const override;
   double analyticalIntegral(Int_t code, const char *rangeName = nullptr) const override;

protected:
   double evaluate() const override;
   void doEval(RooFit::EvalContext &ctx) const override;
   std::unique_ptr<RooAbsArg>
   compileForNormSet(RooArgSet const &normSet, RooFit::Detail::CompileContext &ctx) const override;

private:
   void check() const;
   [[noreturn]] void fail(const std::string &message) const;
   std::vector<double> nuValues() const;
   double normalizationAt(const std::vector<double> &nu) const;
   /// Explain why event `e` (nominal, low, high at nu) gave a non-finite value.
   std::string explain(double nominal, const std::vector<double> &lo, const std::vector<double> &hi,
                       const std::vector<double> &nu, long e) const;

   RooRealProxy _nominal;
   RooListProxy _low;
   RooListProxy _high;
   RooListProxy _nps;
   std::vector<int> _codes;
   Int_t _floor = 0;
   Int_t _normMode = kNone;
   std::vector<double> _lowIntegrals;  // Nodes: I_-k
   std::vector<double> _highIntegrals; // Nodes: I_+k
   std::vector<double> _sampleLow;     // Samples: P_-k/P_0 at sample s, element k * n + s
   std::vector<double> _sampleHigh;    // Samples: P_+k/P_0
   std::vector<double> _sampleWeights; // Samples: weights, normalized to sum 1

   mutable std::vector<double> _cacheNu; //! nu of the cached N(nu)
   mutable double _cacheN = 1.0;         //! cached N(nu)

   ClassDefOverride(RooInterpolatedDensity, 1) // Per-event vertical interpolation of shape systematics
};

#endif
