// RooRatioFunction: a density-ratio network exported by rooml, as a RooAbsReal.
#ifndef ROOML_ROORATIOFUNCTION_H
#define ROOML_ROORATIOFUNCTION_H

#include <RooAbsReal.h>
#include <RooListProxy.h>

#include <memory>
#include <string>
#include <vector>

namespace rooml {
class RatioModel;
}

/// r(x) = p_num(x) / p_den(x) (or log r(x)) of a ratio network or ensemble over
/// the feature observables x.  The model file's bytes are stored in the object,
/// so a workspace holding it is self-contained; the native evaluator is rebuilt
/// lazily after reading.  Evaluated for a whole dataset at once through the
/// compiled core and, since it depends on observables only, once per dataset
/// in a fit.  Typical use: the per-process ratios r_j(x) and per-event
/// systematic ratios g_j(x, +-1) of a RooNSBIPdf.
class RooRatioFunction : public RooAbsReal {
public:
   RooRatioFunction() = default;
   /// Read the exported model from `modelFile` (.onnx written by rooml.export.export_ratio).
   /// `logRatio`: return log r(x) instead of r(x).
   RooRatioFunction(const char *name, const char *title, const RooArgList &features, const char *modelFile,
                    bool logRatio = false);
   /// Take the exported model's bytes directly.
   RooRatioFunction(const char *name, const char *title, const RooArgList &features,
                    const std::vector<unsigned char> &modelBytes, bool logRatio = false);
   RooRatioFunction(const RooRatioFunction &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooRatioFunction(*this, newname); }
   ~RooRatioFunction() override;

   const RooArgList &features() const { return _features; }
   /// The stored model file (ONNX bytes with rooml metadata).
   const std::vector<unsigned char> &modelBytes() const { return _modelBytes; }
   /// The rooml metadata document of the model (JSON).
   std::string metadataJson() const;
   /// True if the function returns log r(x), false for r(x).
   bool logRatio() const { return _logRatio; }
   /// How many events the network has evaluated, summed over this function and its clones (fits evaluate clones).
   unsigned long long networkEvaluations() const { return *_networkEvaluations; }

   /// Number of ensemble members (1 for a single network).
   int nMembers() const;
   /// How the members combine: "mean" (log of the mean ratio) or "mean_log" (mean of the log-ratios).
   std::string combination() const;
   /// Use only ensemble member `index` (-1: all members, combined by the model's rule; the default).
   /// Set it before building the likelihood (fitTo / createNLL clone the function).
   void setMember(int index);
   int member() const { return _member; }

protected:
   double evaluate() const override;
   void doEval(RooFit::EvalContext &ctx) const override;

private:
   const rooml::RatioModel &model() const;
   void checkVariables() const;
   /// log r (or the selected member's log r_k) of n row-major events; rethrows core errors named after this object.
   void logRatios(const std::vector<double> &x, std::size_t n, double *out) const;

   RooListProxy _features;
   std::vector<unsigned char> _modelBytes;
   Bool_t _logRatio = false;
   Int_t _member = -1; // ensemble member in use (-1: all members)
   mutable std::shared_ptr<const rooml::RatioModel> _model; //! built lazily from _modelBytes
   std::shared_ptr<unsigned long long> _networkEvaluations = std::make_shared<unsigned long long>(0); //! shared with clones

   ClassDefOverride(RooRatioFunction, 1) // Density-ratio network exported by rooml
};

#endif
