// Refit the HI-SIGMA workspace of `rooml demo` in pure ROOT and scan the signal strength.
//
//   export LD_LIBRARY_PATH=$(rooml config --libdir):$LD_LIBRARY_PATH
//   root -l -b -q 'macros/fit_hisigma.C("rooml_output/workspace.root")'
//
// The workspace is self-contained: the RooFlowPdf objects carry their networks and the
// RooInterpolatedDensity objects their systematic's normalization; only libRooML is needed.
// Prints one "ROOML_FIT" line and one "ROOML_SCAN" line per scan point (for scripts and tests).
#include <RooAbsData.h>
#include <RooAbsPdf.h>
#include <RooAbsReal.h>
#include <RooArgSet.h>
#include <RooFitResult.h>
#include <RooMinimizer.h>
#include <RooMsgService.h>
#include <RooRealVar.h>
#include <RooWorkspace.h>
#include <TFile.h>
#include <TSystem.h>

#include <cstdio>
#include <memory>

namespace {
// Minimize with Minuit2 (one retry with strategy 2, as rooml.infer does).
int minimize(RooAbsReal &nll, bool hesse)
{
   RooMinimizer minimizer(nll);
   minimizer.setMinimizerType("Minuit2");
   minimizer.setPrintLevel(-1);
   minimizer.setEps(0.01);
   int status = minimizer.migrad();
   if (status != 0) {
      minimizer.setStrategy(2);
      status = minimizer.migrad();
   }
   if (hesse)
      minimizer.hesse();
   return status;
}
} // namespace

int fit_hisigma(const char *fileName = "rooml_output/workspace.root", int scanPoints = 7, double halfWidth = 2.0)
{
   if (gSystem->Load("libRooML") < 0) {
      std::printf("cannot load libRooML: add $(rooml config --libdir) to LD_LIBRARY_PATH\n");
      return 1;
   }
   RooMsgService::instance().setGlobalKillBelow(RooFit::WARNING);
   std::unique_ptr<TFile> file{TFile::Open(fileName)};
   auto *ws = file ? file->Get<RooWorkspace>("w") : nullptr;
   if (!ws || !ws->pdf("model") || !ws->data("data") || !ws->var("mu")) {
      std::printf("'%s' holds no rooml HI-SIGMA workspace 'w' (pdf 'model', data 'data', variable 'mu')\n", fileName);
      return 1;
   }
   RooAbsPdf &model = *ws->pdf("model");
   RooAbsData &data = *ws->data("data");
   RooRealVar &mu = *ws->var("mu");

   std::unique_ptr<RooAbsReal> nll{model.createNLL(data, RooFit::Extended(true), RooFit::EvalBackend("cpu"))};
   const int status = minimize(*nll, true);
   const double muHat = mu.getVal(), muErr = mu.getError(), nllMin = nll->getVal();
   std::printf("ROOML_FIT mu=%.10g mu_err=%.10g nll=%.12g status=%d\n", muHat, muErr, nllMin, status);
   const RooRealVar *nu = ws->var("nu_pt_bb");
   if (nu)
      std::printf("  nu_pt_bb = %.4f +- %.4f (pull %.3f)\n", nu->getVal(), nu->getError(), nu->getVal());

   // Profile scan of mu: fix it on a grid around mu_hat, profile everything else.
   std::unique_ptr<RooArgSet> params{model.getParameters(data)};
   RooArgSet best;
   params->snapshot(best);
   for (int i = 0; i < scanPoints; ++i) {
      const double value = muHat + halfWidth * muErr * (2.0 * i / (scanPoints - 1) - 1.0);
      params->assign(best);
      mu.setVal(value);
      mu.setConstant(true);
      minimize(*nll, false);
      std::printf("ROOML_SCAN mu=%.10g t=%.10g\n", value, 2.0 * (nll->getVal() - nllMin));
   }
   mu.setConstant(false);
   return status;
}
