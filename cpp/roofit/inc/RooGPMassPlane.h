// RooGPMassPlane: a Gaussian-process mass plane exported by rooml, as a RooAbsPdf of (m_H1, m_H2).
#ifndef ROOML_ROOGPMASSPLANE_H
#define ROOML_ROOGPMASSPLANE_H

#include <RooAbsPdf.h>
#include <RooRealProxy.h>

#include <memory>
#include <string>
#include <vector>

namespace rooml {
class GPMassPlane;
}

/// The sampler density of a fitted rooml.models.gp.MassPlaneGP: the GP's predicted
/// counts at the bin centres, clipped at zero, uniform inside each bin and zero
/// outside the fit box; exactly what MassPlaneGP.sample draws from.  The model
/// file's bytes are stored in the object (self-contained workspaces).  Integrals
/// over (m1, m2), over m1 or over m2 alone, in any range, are analytical (bin
/// overlaps), so the pdf is fitted (e.g. its yield in a RooAddPdf), plotted and
/// projected without numerical integration; events are generated like
/// MassPlaneGP.sample (inverse CDF of the bins, uniform inside).
class RooGPMassPlane : public RooAbsPdf {
public:
   RooGPMassPlane() = default;
   /// Read the exported model from `modelFile` (.onnx written by rooml.export.export_gp_massplane).
   RooGPMassPlane(const char *name, const char *title, RooAbsReal &m1, RooAbsReal &m2, const char *modelFile);
   /// Take the exported model's bytes directly.
   RooGPMassPlane(const char *name, const char *title, RooAbsReal &m1, RooAbsReal &m2,
                  const std::vector<unsigned char> &modelBytes);
   RooGPMassPlane(const RooGPMassPlane &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooGPMassPlane(*this, newname); }
   ~RooGPMassPlane() override;

   Int_t getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars, const char *rangeName = nullptr) const override;
   double analyticalIntegral(Int_t code, const char *rangeName = nullptr) const override;

   Int_t getGenerator(const RooArgSet &directVars, RooArgSet &generateVars, bool staticInitOK = true) const override;
   void generateEvent(Int_t code) override;

   /// The stored model file (ONNX bytes with rooml metadata).
   const std::vector<unsigned char> &modelBytes() const { return _modelBytes; }
   /// The rooml metadata document of the model (JSON).
   std::string metadataJson() const;
   /// Predicted counts per bin (the GP mean, not clipped) at the current (m1, m2).
   double meanCounts() const;
   /// GP standard deviation of the predicted counts at the current (m1, m2).
   double stdCounts() const;

protected:
   double evaluate() const override;
   void doEval(RooFit::EvalContext &ctx) const override;

private:
   const rooml::GPMassPlane &model() const;
   void checkVariables() const;

   RooRealProxy _m1;
   RooRealProxy _m2;
   std::vector<unsigned char> _modelBytes;
   mutable std::shared_ptr<const rooml::GPMassPlane> _model; //! built lazily from _modelBytes

   ClassDefOverride(RooGPMassPlane, 1) // Gaussian-process mass plane exported by rooml
};

#endif
