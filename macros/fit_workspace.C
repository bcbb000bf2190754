// Refit a two-flow yield workspace (pdf "model" = n_s * signal + n_b * background, data "data") in pure ROOT,
// e.g. the one rooml.demo.slice.write_workspace writes (tests/test_roofit_flow.py).  For the HI-SIGMA
// workspace of `rooml demo` use macros/fit_hisigma.C.
//
//   export LD_LIBRARY_PATH=$(rooml config --libdir):$LD_LIBRARY_PATH
//   root -b -q 'macros/fit_workspace.C("ws.root")'
//
// The workspace is self-contained: the RooFlowPdf objects carry their networks.
#include <RooAbsPdf.h>
#include <RooDataSet.h>
#include <RooFitResult.h>
#include <RooRealVar.h>
#include <RooWorkspace.h>
#include <TFile.h>
#include <TSystem.h>

#include <cstdio>
#include <memory>

int fit_workspace(const char *fileName = "rooml_output/workspace.root", const char *wsName = "w")
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
   RooAbsPdf *model = ws->pdf("model");
   RooAbsData *data = ws->data("data");
   std::unique_ptr<RooFitResult> result{model->fitTo(*data, RooFit::Extended(true), RooFit::Save(true),
                                                     RooFit::PrintLevel(-1), RooFit::Minimizer("Minuit2"))};
   auto *ns = static_cast<RooRealVar *>(result->floatParsFinal().find("n_s"));
   auto *nb = static_cast<RooRealVar *>(result->floatParsFinal().find("n_b"));
   std::printf("ROOML_FIT n_s=%.10g n_s_err=%.10g n_b=%.10g n_b_err=%.10g nll=%.12g status=%d\n", ns->getVal(),
               ns->getError(), nb->getVal(), nb->getError(), result->minNll(), result->status());
   return result->status();
}
