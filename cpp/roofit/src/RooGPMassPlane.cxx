// RooGPMassPlane: a rooml Gaussian-process mass plane as a RooAbsPdf (see RooGPMassPlane.h).
#include "RooGPMassPlane.h"

#include <RooAbsRealLValue.h>
#include <RooFit/EvalContext.h>
#include <RooMsgService.h>
#include <RooRandom.h>

#include <cmath>

#include "ModelFile.h"
#include "rooml/error.h"
#include "rooml/gp_massplane.h"

RooGPMassPlane::RooGPMassPlane(const char *name, const char *title, RooAbsReal &m1, RooAbsReal &m2,
                               const std::vector<unsigned char> &modelBytes)
   : RooAbsPdf(name, title), _m1("m1", "m_H1", this, m1), _m2("m2", "m_H2", this, m2), _modelBytes(modelBytes)
{
   try {
      checkVariables();
   } catch (const std::exception &e) {
      coutE(InputArguments) << e.what() << std::endl; // the message may not survive the PyROOT boundary
      throw;
   }
}

RooGPMassPlane::RooGPMassPlane(const char *name, const char *title, RooAbsReal &m1, RooAbsReal &m2,
                               const char *modelFile)
   : RooGPMassPlane(name, title, m1, m2,
                    rooml_roofit::readModelFile(modelFile, "RooGPMassPlane '" + std::string(name) + "'"))
{
}

RooGPMassPlane::RooGPMassPlane(const RooGPMassPlane &other, const char *name)
   : RooAbsPdf(other, name),
     _m1("m1", this, other._m1),
     _m2("m2", this, other._m2),
     _modelBytes(other._modelBytes),
     _model(other._model)
{
}

RooGPMassPlane::~RooGPMassPlane() = default;

const rooml::GPMassPlane &RooGPMassPlane::model() const
{
   if (!_model)
      _model = rooml::GPMassPlane::from_bytes(std::string(_modelBytes.begin(), _modelBytes.end()), GetName());
   return *_model;
}

std::string RooGPMassPlane::metadataJson() const
{
   return model().metadata_json();
}

void RooGPMassPlane::checkVariables() const
{
   const auto &m = model();
   const auto &names = m.feature_names();
   const std::string me = "RooGPMassPlane '" + std::string(GetName()) + "'";
   if (names[1] == _m1.arg().GetName() || names[0] == _m2.arg().GetName())
      throw rooml::Error(me + ": variables '" + _m1.arg().GetName() + "', '" + _m2.arg().GetName() +
                         "' are in the wrong order: the model's features are ('" + names[0] + "', '" + names[1] +
                         "')");
   const RooAbsReal *vars[2] = {&_m1.arg(), &_m2.arg()};
   const std::vector<double> *edges[2] = {&m.edges_m1(), &m.edges_m2()};
   for (int a = 0; a < 2; ++a) {
      auto *lv = dynamic_cast<const RooAbsRealLValue *>(vars[a]);
      if (lv && (lv->getMin() < edges[a]->front() || lv->getMax() > edges[a]->back())) {
         coutW(InputArguments) << me << ": range of '" << lv->GetName() << "' [" << lv->getMin() << ", "
                               << lv->getMax() << "] extends beyond the fit box [" << edges[a]->front() << ", "
                               << edges[a]->back() << "]; the density is zero outside it" << std::endl;
      }
   }
}

double RooGPMassPlane::evaluate() const
{
   const double x[2] = {_m1, _m2};
   double out = 0.0;
   try {
      model().density(x, 1, &out);
   } catch (const rooml::Error &e) {
      logEvalError(e.what());
      return std::numeric_limits<double>::quiet_NaN();
   }
   return out;
}

void RooGPMassPlane::doEval(RooFit::EvalContext &ctx) const
{
   std::span<double> out = ctx.output();
   std::span<const double> a = ctx.at(_m1), b = ctx.at(_m2);
   const std::size_t n = out.size();
   std::vector<double> x(2 * n);
   for (std::size_t e = 0; e < n; ++e) {
      x[2 * e] = a.size() == 1 ? a[0] : a[e];
      x[2 * e + 1] = b.size() == 1 ? b[0] : b[e];
   }
   try {
      model().density(x.data(), n, out.data());
   } catch (const rooml::Error &err) {
      const std::string full = "RooGPMassPlane '" + std::string(GetName()) + "': " + err.what();
      coutE(InputArguments) << full << std::endl;
      throw rooml::Error(full);
   }
}

double RooGPMassPlane::meanCounts() const
{
   const double x[2] = {_m1, _m2};
   double out = 0.0;
   model().mean_counts(x, 1, &out, 1);
   return out;
}

double RooGPMassPlane::stdCounts() const
{
   const double x[2] = {_m1, _m2};
   double out = 0.0;
   model().std_counts(x, 1, &out, 1);
   return out;
}

Int_t RooGPMassPlane::getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars, const char * /*rangeName*/) const
{
   if (matchArgs(allVars, analVars, _m1, _m2))
      return 1;
   if (matchArgs(allVars, analVars, _m1))
      return 2;
   if (matchArgs(allVars, analVars, _m2))
      return 3;
   return 0;
}

double RooGPMassPlane::analyticalIntegral(Int_t code, const char *rangeName) const
{
   const auto &m = model();
   switch (code) {
   case 1: return m.probability(_m1.min(rangeName), _m1.max(rangeName), _m2.min(rangeName), _m2.max(rangeName));
   case 2: return m.marginal(1, _m2, _m1.min(rangeName), _m1.max(rangeName));
   case 3: return m.marginal(0, _m1, _m2.min(rangeName), _m2.max(rangeName));
   default: R__ASSERT(false); return 0.0;
   }
}

Int_t RooGPMassPlane::getGenerator(const RooArgSet &directVars, RooArgSet &generateVars, bool /*staticInitOK*/) const
{
   return matchArgs(directVars, generateVars, _m1, _m2) ? 1 : 0;
}

void RooGPMassPlane::generateEvent(Int_t code)
{
   R__ASSERT(code == 1);
   const auto &v1 = static_cast<const RooAbsRealLValue &>(_m1.arg()); // direct generation needs lvalues
   const auto &v2 = static_cast<const RooAbsRealLValue &>(_m2.arg());
   // Uniforms from RooRandom, so RooRandom::randomGenerator()->SetSeed() makes toys reproducible.
   for (int attempt = 0; attempt < 10000; ++attempt) {
      double m1 = 0.0, m2 = 0.0;
      model().sample(RooRandom::uniform(), RooRandom::uniform(), RooRandom::uniform(), &m1, &m2);
      if (v1.inRange(m1, nullptr) && v2.inRange(m2, nullptr)) { // truncated to the variables' ranges
         _m1 = m1;
         _m2 = m2;
         return;
      }
   }
   coutE(Generation) << "RooGPMassPlane '" << GetName() << "': no sample inside the variables' ranges after 10000 tries"
                     << std::endl;
}
