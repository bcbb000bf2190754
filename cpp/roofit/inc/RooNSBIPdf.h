// RooNSBIPdf: the ATLAS neural-simulation-based-inference mixture of density ratios, as a RooAbsPdf.
#ifndef ROOML_ROONSBIPDF_H
#define ROOML_ROONSBIPDF_H

#include <RooAbsPdf.h>
#include <RooAbsReal.h>
#include <RooListProxy.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

/// The expected number of events of an NSBI model,
///   nu(mu, alpha) = sum_j f_j(mu) nu_j G_j(alpha),
///   G_j(alpha) = FlexibleInterpVar(nominal 1, low G_jk^-, high G_jk^+, alpha_k, codes),
/// i.e. rooml::interp::combine on one value starting from 1, codes in rooml's
/// (PiecewiseInterpolation's) numbering -- 5 is FlexibleInterpVar's 4 and 5 --,
/// boundary 1, and FlexibleInterpVar's floor (a product <= 0 becomes DBL_MIN).
/// RooNSBIPdf::createExpectedEventsFunc() returns one; builders may use it too.
class RooNSBIYield : public RooAbsReal {
public:
   RooNSBIYield() = default;
   /// `normLow`, `normHigh`, `normCodes`: J * K values, process-major (element j * K + k).
   RooNSBIYield(const char *name, const char *title, const RooArgList &coefficients, const std::vector<double> &yields,
                const RooArgList &nps, const std::vector<double> &normLow, const std::vector<double> &normHigh,
                const std::vector<int> &normCodes);
   RooNSBIYield(const RooNSBIYield &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooNSBIYield(*this, newname); }

   /// G_j(alpha) at the current parameter values.
   double normFactor(std::size_t j) const;

protected:
   double evaluate() const override;

private:
   RooListProxy _coefs;
   RooListProxy _nps;
   std::vector<double> _yields;
   std::vector<double> _normLow;
   std::vector<double> _normHigh;
   std::vector<int> _normCodes;

   ClassDefOverride(RooNSBIYield, 1) // Expected events of an NSBI model
};

/// The NSBI per-event likelihood ratio (arXiv:2412.01600)
///
///   p(x|mu,alpha)/p_ref(x) = (1/nu(mu,alpha)) sum_j f_j(mu) nu_j G_j(alpha) r_j(x) g_j(x,alpha) / N_j(alpha)
///
/// with processes j = 0..J-1 and nuisance parameters k = 0..K-1:
///  - f_j: any RooAbsReal of the parameters (RooFormulaVar mu - sqrt(mu), sqrt(mu), 1 - sqrt(mu), EFT polynomials);
///  - nu_j: nominal yields; G_j(alpha): normalization interpolation (see RooNSBIYield), default code 5;
///  - r_j(x) = p_j(x)/p_ref(x): per-event RooAbsReals (RooEventColumn of network outputs, ...), > 0;
///  - g_j(x,alpha) = combine(1; g_jk^-(x), g_jk^+(x); alpha): per-event shape factors from the per-event ratios
///    g_jk^+-(x) = p_j(x | alpha_k = +-1)/p_j(x) (RooAbsReals, > 0), one code per process and parameter, default 5
///    (the kernel rooml::interp::combine with nominal 1, as PiecewiseInterpolation).  A process without a shape
///    effect of parameter k takes a constant 1 for both (the factor is then exactly 1 and skipped);
///  - N_j(alpha) = 1 by default (as in the papers).  With setShapeNormalizationSample() it is the weighted mean
///    over a reference sample of r_j g_j(alpha) divided by that of r_j: the Monte-Carlo integral of
///    p_j(x) g_j(x, alpha), which the vertical interpolation does not keep at 1 between the +-1 sigma points.
///
/// Self-normalized: p_ref(x) is unknown and drops out; -sum_i w_i log p_ref(x_i) does not depend on the
/// parameters, so likelihood ratios, fits, profiles and intervals are those of the true density.
/// Extended: expectedEvents() = nu(mu, alpha) = sum_j f_j nu_j G_j(alpha).  Constraint terms for alpha are
/// separate pdfs (rooml.roofit.nsbi_model multiplies in Gaussians).
///
/// Errors: mismatched list lengths or an unknown code (constructor, rooml::Error and coutE); a per-event ratio
/// r_j or g_jk^+- that is not finite or not > 0 (rooml::Error naming process, parameter and dataset row);
/// a non-positive mixture or expected yield at some (mu, alpha) is logged with logEvalError so that the
/// minimizer backs off.
class RooNSBIPdf : public RooAbsPdf {
public:
   RooNSBIPdf() = default;
   /// `normLow`, `normHigh` (G_jk^-, G_jk^+), `shapeLow`, `shapeHigh` (g_jk^-(x), g_jk^+(x)) and the codes hold
   /// J * K entries, process-major (element j * K + k).  Empty code vectors mean 5 everywhere; a single code
   /// applies to all.
   RooNSBIPdf(const char *name, const char *title, const RooArgList &coefficients, const std::vector<double> &yields,
              const RooArgList &ratios, const RooArgList &nps, const std::vector<double> &normLow,
              const std::vector<double> &normHigh, const RooArgList &shapeLow, const RooArgList &shapeHigh,
              const std::vector<int> &normCodes = {}, const std::vector<int> &shapeCodes = {});
   RooNSBIPdf(const RooNSBIPdf &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooNSBIPdf(*this, newname); }

   bool selfNormalized() const override { return true; }
   std::unique_ptr<RooAbsArg>
   compileForNormSet(RooArgSet const &normSet, RooFit::Detail::CompileContext &ctx) const override;
   ExtendMode extendMode() const override { return CanBeExtended; }
   double expectedEvents(const RooArgSet *nset) const override;
   std::unique_ptr<RooAbsReal> createExpectedEventsFunc(const RooArgSet *nset) const override;

   /// Normalize each process's shape factor with a reference sample of n events (see the class documentation):
   /// `weights` (n), `ratios` r_j (J * n, process-major), `shapeLow`, `shapeHigh` g_jk^-+ (J * K * n, element
   /// (j * K + k) * n + s; 1 where a process has no shape effect).  Empty vectors switch it off.
   void setShapeNormalizationSample(const std::vector<double> &weights, const std::vector<double> &ratios,
                                    const std::vector<double> &shapeLow, const std::vector<double> &shapeHigh);
   bool shapeNormalized() const { return !_refWeights.empty(); }
   /// The reference sample as stored (weights normalized to sum 1; layouts as in setShapeNormalizationSample).
   const std::vector<double> &referenceWeights() const { return _refWeights; }
   const std::vector<double> &referenceRatios() const { return _refRatios; }
   const std::vector<double> &referenceShapeLow() const { return _refShapeLow; }
   const std::vector<double> &referenceShapeHigh() const { return _refShapeHigh; }
   /// N_j(alpha) at the current parameters (1 without a reference sample).
   double shapeNormalization(std::size_t j) const;

   std::size_t nProcesses() const { return _yields.size(); }
   std::size_t nParameters() const { return _nps.size(); }
   const RooArgList &coefficients() const { return _coefs; }
   const RooArgList &ratios() const { return _ratios; }
   const RooArgList &paramList() const { return _nps; }
   const RooArgList &shapeLowList() const { return _shapeLow; }
   const RooArgList &shapeHighList() const { return _shapeHigh; }
   const std::vector<double> &yields() const { return _yields; }
   const std::vector<double> &normLow() const { return _normLow; }
   const std::vector<double> &normHigh() const { return _normHigh; }
   const std::vector<int> &normCodes() const { return _normCodes; }
   const std::vector<int> &shapeCodes() const { return _shapeCodes; }
   /// G_j(alpha) at the current parameter values.
   double normFactor(std::size_t j) const;

protected:
   double evaluate() const override;
   void doEval(RooFit::EvalContext &ctx) const override;

private:
   void check() const;
   [[noreturn]] void fail(const std::string &message) const;
   /// Hoisted per-process coefficients c_j = f_j nu_j G_j / (N_j nu) and nu, from f and alpha.
   double processCoefficients(const std::vector<double> &f, const std::vector<double> &alpha,
                              std::vector<double> &c) const;
   const std::vector<double> &shapeNormalizationAt(const std::vector<double> &alpha) const;
   void checkRatio(double v, std::size_t j, long k, int side, long row) const;

   RooListProxy _coefs;
   RooListProxy _ratios;
   RooListProxy _nps;
   RooListProxy _shapeLow;
   RooListProxy _shapeHigh;
   std::vector<double> _yields;
   std::vector<double> _normLow;
   std::vector<double> _normHigh;
   std::vector<int> _normCodes;
   std::vector<int> _shapeCodes;
   std::vector<double> _refWeights;   // reference sample weights, normalized to sum 1 (empty: N_j = 1)
   std::vector<double> _refRatios;    // r_j(x_s), element j * n + s
   std::vector<double> _refShapeLow;  // g_jk^-(x_s), element (j * K + k) * n + s
   std::vector<double> _refShapeHigh; // g_jk^+(x_s)

   mutable std::vector<double> _cacheAlpha; //! alpha of the cached N_j
   mutable std::vector<double> _cacheN;     //! cached N_j(alpha)
   mutable std::vector<double> _refPoly;    //! code-5 polynomial coefficients per reference event, built lazily
   // Minuit's numerical gradient moves one parameter at a time: the code-5 factor columns of the parameters that
   // did not move are reused (see doEval and shapeNormalizationAt), and the products rebuilt in the same order.
   // Two slots per (j, k): the base value and the gradient's trial value (see cachedColumn in the source).
   mutable std::vector<double> _refColumns;        //! reference factors, element ((j * K + k) * 2 + slot) * n + s
   mutable std::vector<std::uint64_t> _refColKey;  //! bits of alpha_k of each cached reference column
   mutable std::vector<unsigned char> _refColOk;   //! 1 where the reference column is cached
   mutable std::vector<double> _evColumns;         //! per-event f_jk - 1, element ((j * K + k) * 2 + slot) * n + e
   mutable std::vector<std::uint64_t> _evColKey;   //! bits of alpha_k of each cached per-event column
   mutable std::vector<unsigned char> _evColOk;    //! 1 where the per-event column is cached
   mutable std::vector<std::uint64_t> _evInputKey; //! checksums and sizes of the per-event inputs g_jk^-+
   mutable std::vector<double> _evPrevAlpha;       //! alpha of the previous doEval call
   // The running products after each parameter (prefixes), reused up to the first column that changed.
   mutable std::vector<double> _refPrefix;         //! reference g_j after parameter k, element (j * K + k) * n + s
   mutable std::vector<std::uint64_t> _refPrefixSrc; //! column slot + 1 (0: invalid) and alpha bits of each prefix
   mutable std::vector<double> _evPrefix;          //! per-event g_j after the i-th shape factor, (j * K + i) * n + e
   mutable std::vector<std::uint64_t> _evPrefixSrc; //! column slot + 1 (0: invalid) and alpha bits of each prefix

   ClassDefOverride(RooNSBIPdf, 1) // NSBI mixture of per-event density ratios
};

#endif
