// RooRatioFunction: a rooml density-ratio network as a RooAbsReal (see RooRatioFunction.h).
#include "RooRatioFunction.h"

#include <RooAbsRealLValue.h>
#include <RooFit/EvalContext.h>
#include <RooMsgService.h>

#include <cmath>
#include <sstream>

#include "ModelFile.h"
#include "rooml/error.h"
#include "rooml/ratio_model.h"

RooRatioFunction::RooRatioFunction(const char *name, const char *title, const RooArgList &features,
                                   const std::vector<unsigned char> &modelBytes, bool logRatio)
   : RooAbsReal(name, title), _features("features", "ratio features", this), _modelBytes(modelBytes), _logRatio(logRatio)
{
   _features.addTyped<RooAbsReal>(features);
   try {
      checkVariables();
   } catch (const std::exception &e) {
      // Also reported through RooFit: an exception's message may not survive the PyROOT boundary.
      coutE(InputArguments) << e.what() << std::endl;
      throw;
   }
}

RooRatioFunction::RooRatioFunction(const char *name, const char *title, const RooArgList &features,
                                   const char *modelFile, bool logRatio)
   : RooRatioFunction(name, title, features,
                      rooml_roofit::readModelFile(modelFile, "RooRatioFunction '" + std::string(name) + "'"), logRatio)
{
}

RooRatioFunction::RooRatioFunction(const RooRatioFunction &other, const char *name)
   : RooAbsReal(other, name),
     _features("features", this, other._features),
     _modelBytes(other._modelBytes),
     _logRatio(other._logRatio),
     _member(other._member),
     _model(other._model),
     _networkEvaluations(other._networkEvaluations)
{
}

RooRatioFunction::~RooRatioFunction() = default;

const rooml::RatioModel &RooRatioFunction::model() const
{
   if (!_model)
      _model = rooml::RatioModel::from_bytes(std::string(_modelBytes.begin(), _modelBytes.end()), GetName());
   return *_model;
}

std::string RooRatioFunction::metadataJson() const
{
   return model().metadata_json();
}

int RooRatioFunction::nMembers() const
{
   return static_cast<int>(model().n_members());
}

std::string RooRatioFunction::combination() const
{
   return model().combination();
}

void RooRatioFunction::setMember(int index)
{
   if (index >= nMembers() || index < -1) {
      const std::string message = "RooRatioFunction '" + std::string(GetName()) + "': member index " +
                                  std::to_string(index) + " out of range [-1, " + std::to_string(nMembers() - 1) + "]";
      coutE(InputArguments) << message << std::endl;
      throw rooml::Error(message);
   }
   _member = index;
   setValueDirty();
}

// Counts must match; a variable named like one of the model's features must sit at that feature's position.
void RooRatioFunction::checkVariables() const
{
   const auto &m = model();
   const auto &names = m.feature_names();
   const std::string me = "RooRatioFunction '" + std::string(GetName()) + "'";
   if (_features.size() != names.size()) {
      std::ostringstream msg;
      msg << me << ": the model has " << names.size() << " features (";
      for (std::size_t i = 0; i < names.size(); ++i)
         msg << (i ? ", " : "") << names[i];
      msg << ") but " << _features.size() << " variables were given";
      throw rooml::Error(msg.str());
   }
   for (std::size_t i = 0; i < names.size(); ++i) {
      for (std::size_t j = 0; j < names.size(); ++j) {
         if (i != j && names[j] == _features[i].GetName()) {
            throw rooml::Error(me + ": variable '" + _features[i].GetName() + "' is given at position " +
                               std::to_string(i) + " but is the model's feature number " + std::to_string(j) +
                               " (wrong order)");
         }
      }
      auto *lv = dynamic_cast<const RooAbsRealLValue *>(&_features[i]);
      if (lv && (lv->getMin() < m.support_low()[i] || lv->getMax() > m.support_high()[i])) {
         coutW(InputArguments) << me << ": range of '" << lv->GetName() << "' [" << lv->getMin() << ", "
                               << lv->getMax() << "] extends beyond the model's support [" << m.support_low()[i]
                               << ", " << m.support_high()[i] << "]; events outside it are errors" << std::endl;
      }
   }
}

void RooRatioFunction::logRatios(const std::vector<double> &x, std::size_t n, double *out) const
{
   const auto &m = model();
   try {
      if (_member < 0) {
         m.log_ratio(x.data(), n, out);
      } else {
         m.member_log_ratio(x.data(), n, static_cast<std::size_t>(_member), out);
      }
   } catch (const rooml::Error &err) {
      // Bad inputs are a property of the data, not of the parameters: stop instead of steering Minuit.
      const std::string full = "RooRatioFunction '" + std::string(GetName()) + "': " + err.what();
      coutE(InputArguments) << full << std::endl;
      throw rooml::Error(full);
   }
   *_networkEvaluations += n;
}

double RooRatioFunction::evaluate() const
{
   const std::size_t d = _features.size();
   std::vector<double> x(d);
   for (std::size_t i = 0; i < d; ++i)
      x[i] = static_cast<const RooAbsReal &>(_features[i]).getVal();
   double out = 0.0;
   logRatios(x, 1, &out);
   return _logRatio ? out : std::exp(out);
}

void RooRatioFunction::doEval(RooFit::EvalContext &ctx) const
{
   std::span<double> out = ctx.output();
   const std::size_t n = out.size(), d = _features.size();
   // Row-major inputs of the whole batch: the core names a bad event by its index here, the dataset row.
   std::vector<double> x(n * d);
   for (std::size_t i = 0; i < d; ++i) {
      std::span<const double> column = ctx.at(&_features[i]);
      for (std::size_t e = 0; e < n; ++e)
         x[e * d + i] = column.size() == 1 ? column[0] : column[e];
   }
   logRatios(x, n, out.data());
   if (!_logRatio) {
      for (std::size_t e = 0; e < n; ++e)
         out[e] = std::exp(out[e]);
   }
}
