// Fit an NSBI workspace (rooml.roofit.to_workspace: a RooNSBIPdf times Gaussian constraints, its ModelConfig and
// data "data") in pure ROOT with RooNSBINLL, the NLL whose analytic gradient and Hessian RooMinimizer uses.
//
//   export LD_LIBRARY_PATH=$(rooml config --libdir):$LD_LIBRARY_PATH
//   root -b -q 'macros/fit_nsbi.C("nsbi.root")'
//
// RooNSBIPdf and RooNSBINLL need no #include: ROOT finds them through libRooML's rootmap (on LD_LIBRARY_PATH).
// Prints one line per floating parameter ("ROOML_PAR name value error") and "ROOML_FIT nll=... status=...".
#include <RooAbsData.h>
#include <RooFitResult.h>
#include <RooGaussian.h>
#include <RooMinimizer.h>
#include <RooProdPdf.h>
#include <RooRealVar.h>
#include <RooStats/ModelConfig.h>
#include <RooWorkspace.h>
#include <TFile.h>
#include <TSystem.h>

#include <cstdio>
#include <memory>

int fit_nsbi(const char *fileName = "nsbi.root", const char *wsName = "w", const char *dataName = "data")
{
   if (gSystem->Load("libRooML") < 0) {
      std::printf("cannot load libRooML: add $(rooml config --libdir) to LD_LIBRARY_PATH\n");
      return 1;
   }
   std::unique_ptr<TFile> file{TFile::Open(fileName)};
   auto *ws = file ? file->Get<RooWorkspace>(wsName) : nullptr;
   if (!ws) {
      std::printf("no workspace '%s' in '%s'\n", wsName, fileName);
      return 1;
   }
   auto *mc = static_cast<RooStats::ModelConfig *>(ws->obj("ModelConfig"));
   RooAbsData *data = ws->data(dataName);
   // the RooNSBIPdf and the Gaussian constraint terms of the model
   RooNSBIPdf *nsbi = dynamic_cast<RooNSBIPdf *>(mc->GetPdf());
   RooArgList constraints;
   if (auto *prod = dynamic_cast<RooProdPdf *>(mc->GetPdf())) {
      for (RooAbsArg *term : prod->pdfList()) {
         if (auto *pdf = dynamic_cast<RooNSBIPdf *>(term))
            nsbi = pdf;
         else if (dynamic_cast<RooGaussian *>(term))
            constraints.add(*term);
      }
   }
   if (!nsbi || !data) {
      std::printf("the workspace has no RooNSBIPdf model or no dataset '%s'\n", dataName);
      return 1;
   }
   RooNSBINLL nll("nll", "NSBI NLL", *nsbi, *data, constraints);
   RooMinimizer::Config config;
   config.useHessian = true;
   RooMinimizer minimizer(nll, config);
   minimizer.setMinimizerType("Minuit2");
   minimizer.setPrintLevel(-1);
   minimizer.setEps(0.01);
   minimizer.migrad();
   minimizer.hesse();
   std::unique_ptr<RooFitResult> result{minimizer.save()};
   // errors from the inverse analytic Hessian (Minuit's Hesse is off by up to a few % for bounded parameters)
   RooML::useInverseHessian(nll, *result);
   for (RooAbsArg *arg : result->floatParsFinal()) {
      auto *v = static_cast<RooRealVar *>(arg);
      std::printf("ROOML_PAR %s %.10g %.10g\n", v->GetName(), v->getVal(), v->getError());
   }
   std::printf("ROOML_FIT nll=%.12g status=%d passes=%zu\n", result->minNll(), result->status(), nll.passes());
   return result->status();
}
