// RooFlowPdf: a conditional normalizing flow exported by rooml, as a RooAbsPdf.
#ifndef ROOML_ROOFLOWPDF_H
#define ROOML_ROOFLOWPDF_H

#include <RooAbsPdf.h>
#include <RooListProxy.h>

#include <memory>
#include <string>
#include <vector>

namespace rooml {
class FlowModel;
struct BoxMass;
}

/// p(x | c) of a normalizing flow over the observables x (its features) given
/// the conditioning variables c (its context).  The model file's bytes are
/// stored in the object, so a workspace holding it is self-contained; the
/// native evaluator is rebuilt lazily after reading.  Normalized over the
/// features' ranges (default or named) as RooFit pdfs are: by construction (1)
/// when a range contains the flow's support, exactly through the CDF for a
/// one-dimensional flow, otherwise by a cached deterministic quasi-Monte-Carlo
/// estimate of the box's mass (relative precision integralPrecision()).
/// Evaluated for a whole dataset at once, and only again when the data change.
class RooFlowPdf : public RooAbsPdf {
public:
   RooFlowPdf() = default;
   /// Read the exported model from `modelFile` (.onnx written by rooml.export).
   RooFlowPdf(const char *name, const char *title, const RooArgList &features, const RooArgList &context,
              const char *modelFile);
   /// Take the exported model's bytes directly.
   RooFlowPdf(const char *name, const char *title, const RooArgList &features, const RooArgList &context,
              const std::vector<unsigned char> &modelBytes);
   RooFlowPdf(const RooFlowPdf &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooFlowPdf(*this, newname); }
   ~RooFlowPdf() override;

   Int_t getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars, const char *rangeName = nullptr) const override;
   double analyticalIntegral(Int_t code, const char *rangeName = nullptr) const override;

   /// Refuses a dataset (its observables are the normalization set) without one of the features.
   std::unique_ptr<RooAbsArg>
   compileForNormSet(RooArgSet const &normSet, RooFit::Detail::CompileContext &ctx) const override;

   Int_t getGenerator(const RooArgSet &directVars, RooArgSet &generateVars, bool staticInitOK = true) const override;
   void generateEvent(Int_t code) override;

   const RooArgList &features() const { return _features; }
   const RooArgList &context() const { return _context; }
   /// The stored model file (ONNX bytes with rooml metadata).
   const std::vector<unsigned char> &modelBytes() const { return _modelBytes; }
   /// The rooml metadata document of the model (JSON).
   std::string metadataJson() const;
   /// How many events the network has evaluated, summed over this pdf and its clones (fits evaluate clones).
   unsigned long long networkEvaluations() const { return *_networkEvaluations; }
   /// log p(x | c) for the current values of the observables.
   double logProbCurrent() const;

   /// The flow's probability mass inside the features' range `rangeName` (nullptr: their current ranges),
   /// given the current context values: the normalization integral over the features.
   double boxMass(const char *rangeName = nullptr) const;
   /// Estimated relative standard error of boxMass() (0 where it is exact).
   double boxMassRelativeError(const char *rangeName = nullptr) const;
   /// Relative precision asked of the quasi-Monte-Carlo box mass (default 1e-3).
   void setIntegralPrecision(double relativePrecision);
   double integralPrecision() const { return _integralPrecision; }
   /// Warn when a range keeps less than 1 - `fraction` of the flow's mass (default 0.05; 1 never warns).
   void setRangeCutWarning(double fraction);
   double rangeCutWarning() const { return _rangeCutWarning; }

   /// For an ensemble model: use only bootstrap model `index` (-1: all members, the default).
   /// Set it before building the likelihood (fitTo / createNLL clone the pdf).
   void setBootstrap(int index);
   int bootstrap() const { return _bootstrap; }
   /// Number of bootstrap models (1 for a single flow or a plain ensemble).
   int nBootstraps() const;

protected:
   double evaluate() const override;
   void doEval(RooFit::EvalContext &ctx) const override;

private:
   const rooml::FlowModel &model() const;
   void checkVariables() const;
   const rooml::BoxMass &boxMassEntry(const char *rangeName) const;

   RooListProxy _features;
   RooListProxy _context;
   std::vector<unsigned char> _modelBytes;
   Int_t _bootstrap = -1; // bootstrap model in use (-1: all members)
   mutable std::shared_ptr<const rooml::FlowModel> _model; //! built lazily from _modelBytes
   std::shared_ptr<unsigned long long> _networkEvaluations = std::make_shared<unsigned long long>(0); //! shared with clones
   mutable UInt_t _seed = 0;                                //! generator event counter
   Double_t _integralPrecision = 1e-3; // relative precision of the quasi-Monte-Carlo box mass
   Double_t _rangeCutWarning = 0.05;   // warn when a range cuts more than this fraction of the mass
   struct BoxMassCache;
   mutable std::shared_ptr<BoxMassCache> _boxMassCache; //! per (bounds, context), built on first use; shared with clones

   ClassDefOverride(RooFlowPdf, 2) // Normalizing flow exported by rooml
};

#endif
