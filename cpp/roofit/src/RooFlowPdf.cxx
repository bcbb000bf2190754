// RooFlowPdf: a rooml normalizing flow as a RooAbsPdf (see RooFlowPdf.h).
#include "RooFlowPdf.h"

#include <RooAbsRealLValue.h>
#include <RooConstVar.h>
#include <RooFit/EvalContext.h>
#include <RooMsgService.h>
#include <RooNumber.h>
#include <RooRandom.h>

#include <cmath>
#include <limits>
#include <sstream>

#include <map>

#include "ModelFile.h"
#include "rooml/error.h"
#include "rooml/flow_model.h"

struct RooFlowPdf::BoxMassCache {
   std::map<std::vector<double>, rooml::BoxMass> entries;
};

RooFlowPdf::RooFlowPdf(const char *name, const char *title, const RooArgList &features, const RooArgList &context,
                       const std::vector<unsigned char> &modelBytes)
   : RooAbsPdf(name, title),
     _features("features", "flow features", this),
     _context("context", "flow context", this),
     _modelBytes(modelBytes)
{
   _features.addTyped<RooAbsReal>(features);
   _context.addTyped<RooAbsReal>(context);
   try {
      checkVariables();
   } catch (const std::exception &e) {
      // Also reported through RooFit: an exception's message may not survive the PyROOT boundary.
      coutE(InputArguments) << e.what() << std::endl;
      throw;
   }
}

RooFlowPdf::RooFlowPdf(const char *name, const char *title, const RooArgList &features, const RooArgList &context,
                       const char *modelFile)
   : RooFlowPdf(name, title, features, context, rooml_roofit::readModelFile(modelFile, "RooFlowPdf"))
{
}

RooFlowPdf::RooFlowPdf(const RooFlowPdf &other, const char *name)
   : RooAbsPdf(other, name),
     _features("features", this, other._features),
     _context("context", this, other._context),
     _modelBytes(other._modelBytes),
     _bootstrap(other._bootstrap),
     _model(other._model),
     _networkEvaluations(other._networkEvaluations),
     _integralPrecision(other._integralPrecision),
     _rangeCutWarning(other._rangeCutWarning),
     _boxMassCache(other._boxMassCache)
{
}

RooFlowPdf::~RooFlowPdf() = default;

const rooml::FlowModel &RooFlowPdf::model() const
{
   if (!_model)
      _model = rooml::FlowModel::from_bytes(std::string(_modelBytes.begin(), _modelBytes.end()), GetName());
   return *_model;
}

void RooFlowPdf::setBootstrap(int index)
{
   if (index >= nBootstraps() || index < -1) {
      const std::string message = "RooFlowPdf '" + std::string(GetName()) + "': bootstrap index " +
                                  std::to_string(index) + " out of range [-1, " + std::to_string(nBootstraps() - 1) +
                                  "]";
      coutE(InputArguments) << message << std::endl;
      throw rooml::Error(message);
   }
   _bootstrap = index;
   setValueDirty();
}

int RooFlowPdf::nBootstraps() const
{
   return static_cast<int>(model().n_bootstraps());
}

std::string RooFlowPdf::metadataJson() const
{
   return model().metadata_json();
}

// Counts must match; a variable named like one of the model's features must sit at that feature's position.
void RooFlowPdf::checkVariables() const
{
   const auto &m = model();
   auto check = [&](const RooArgList &vars, const std::vector<std::string> &names, const char *what) {
      if (vars.size() != names.size()) {
         std::ostringstream msg;
         msg << "RooFlowPdf '" << GetName() << "': the model has " << names.size() << " " << what << " (";
         for (std::size_t i = 0; i < names.size(); ++i)
            msg << (i ? ", " : "") << names[i];
         msg << ") but " << vars.size() << " variables were given";
         throw rooml::Error(msg.str());
      }
      for (std::size_t i = 0; i < names.size(); ++i) {
         for (std::size_t j = 0; j < names.size(); ++j) {
            if (i != j && names[j] == vars[i].GetName()) {
               throw rooml::Error("RooFlowPdf '" + std::string(GetName()) + "': variable '" + vars[i].GetName() +
                                  "' is given at position " + std::to_string(i) + " but is the model's " + what +
                                  " number " + std::to_string(j) + " (wrong order)");
            }
         }
      }
   };
   check(_features, m.feature_names(), "features");
   check(_context, m.context_names(), "context variables");
   for (std::size_t i = 0; i < _features.size(); ++i) {
      auto *lv = dynamic_cast<const RooAbsRealLValue *>(&_features[i]);
      if (lv && (lv->getMin() < m.support_low()[i] || lv->getMax() > m.support_high()[i])) {
         coutW(InputArguments) << "RooFlowPdf '" << GetName() << "': range of '" << lv->GetName() << "' ["
                               << lv->getMin() << ", " << lv->getMax() << "] extends beyond the flow's support ["
                               << m.support_low()[i] << ", " << m.support_high()[i]
                               << "]; the density is zero outside it" << std::endl;
      }
   }
}

std::unique_ptr<RooAbsArg>
RooFlowPdf::compileForNormSet(RooArgSet const &normSet, RooFit::Detail::CompileContext &ctx) const
{
   // The vectorized backend compiles with the dataset's observables: a feature that is not a column of the dataset
   // would become a parameter (its current value used for every event, the density then normalized over the
   // other features only, or even floated by Minuit), so such a dataset is refused by name.
   for (std::size_t i = 0; i < _features.size(); ++i) {
      const RooAbsArg &feature = _features[i];
      // getVariables() of a variable is empty (it lists servers), hence dependsOn, which also matches the feature.
      const std::unique_ptr<RooArgSet> variables{feature.getVariables()};
      const bool fixedNumber =
         dynamic_cast<const RooConstVar *>(&feature) || (!feature.isFundamental() && variables->empty());
      if (fixedNumber || feature.dependsOn(normSet))
         continue;
      const std::string message = "RooFlowPdf '" + std::string(GetName()) + "': feature " + std::to_string(i) +
                                  " ('" + feature.GetName() +
                                  "') is not an observable of the dataset: the dataset has no column for it " +
                                  "(a flow's features must all be columns of the data it is fitted to)";
      coutE(InputArguments) << message << std::endl; // the exception's message may not survive every caller
      throw rooml::Error(message);
   }
   return RooAbsPdf::compileForNormSet(normSet, ctx);
}

Int_t RooFlowPdf::getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars, const char * /*rangeName*/) const
{
   // The integral over all features is the box mass (1 over the support); partial integrals are left to RooFit.
   return matchArgs(allVars, analVars, RooArgSet(_features)) ? 1 : 0;
}

double RooFlowPdf::analyticalIntegral(Int_t code, const char *rangeName) const
{
   R__ASSERT(code == 1);
   return boxMassEntry(rangeName).value;
}

double RooFlowPdf::boxMass(const char *rangeName) const
{
   return boxMassEntry(rangeName).value;
}

double RooFlowPdf::boxMassRelativeError(const char *rangeName) const
{
   return boxMassEntry(rangeName).rel_error;
}

void RooFlowPdf::setIntegralPrecision(double relativePrecision)
{
   if (!(relativePrecision > 0.0 && relativePrecision < 1.0)) {
      const std::string message = "RooFlowPdf '" + std::string(GetName()) +
                                  "': the integral precision must be in (0, 1), got " + std::to_string(relativePrecision);
      coutE(InputArguments) << message << std::endl;
      throw rooml::Error(message);
   }
   _integralPrecision = relativePrecision;
   if (_boxMassCache)
      _boxMassCache->entries.clear();
   setValueDirty();
}

void RooFlowPdf::setRangeCutWarning(double fraction)
{
   if (!(fraction >= 0.0 && fraction <= 1.0)) {
      const std::string message = "RooFlowPdf '" + std::string(GetName()) +
                                  "': the range-cut warning fraction must be in [0, 1], got " + std::to_string(fraction);
      coutE(InputArguments) << message << std::endl;
      throw rooml::Error(message);
   }
   _rangeCutWarning = fraction;
}

// The cache key holds everything the mass depends on, so a changed range or context value is a new entry.
const rooml::BoxMass &RooFlowPdf::boxMassEntry(const char *rangeName) const
{
   const auto &m = model();
   const std::size_t d = m.n_features();
   std::vector<double> key;
   key.reserve(2 * d + m.n_context() + 2);
   // A bound at or beyond 1e30 is unbounded: RooFit's infinity before ROOT 6.30, still used for "no limit".
   const double inf = std::numeric_limits<double>::infinity();
   auto unbounded = [](double v) { return RooNumber::isInfinite(v) || std::abs(v) >= 1e30; };
   for (std::size_t i = 0; i < d; ++i) {
      auto *lv = dynamic_cast<const RooAbsRealLValue *>(&_features[i]);
      const double lo = lv ? lv->getMin(rangeName) : -inf, hi = lv ? lv->getMax(rangeName) : inf;
      key.push_back(unbounded(lo) ? -inf : lo);
      key.push_back(unbounded(hi) ? inf : hi);
   }
   for (std::size_t i = 0; i < m.n_context(); ++i)
      key.push_back(static_cast<const RooAbsReal &>(_context[i]).getVal());
   key.push_back(_bootstrap);
   key.push_back(_integralPrecision);
   if (!_boxMassCache)
      _boxMassCache = std::make_shared<BoxMassCache>();
   auto &entries = _boxMassCache->entries;
   auto found = entries.find(key);
   if (found != entries.end())
      return found->second;
   if (entries.size() == 64 && m.n_context() > 0)
      coutW(Integration) << "RooFlowPdf '" << GetName() << "': 64 box masses computed (one per context value): "
                         << "with a context that varies per event and a range that cuts the support, every event "
                         << "costs one quasi-Monte-Carlo integral (exact and cheap only for one-dimensional flows)"
                         << std::endl;
   if (entries.size() > 4096)
      entries.clear(); // bounded memory when a context varies per event
   std::vector<double> low(d), high(d);
   for (std::size_t i = 0; i < d; ++i) {
      low[i] = key[2 * i];
      high[i] = key[2 * i + 1];
   }
   const double *context = m.n_context() ? key.data() + 2 * d : nullptr;
   rooml::BoxMass mass;
   try {
      mass = m.box_mass(low.data(), high.data(), context, _integralPrecision, _bootstrap);
   } catch (const rooml::Error &e) {
      coutE(Integration) << "RooFlowPdf '" << GetName() << "': " << e.what() << std::endl;
      throw;
   }
   const std::string range = rangeName ? std::string("range '") + rangeName + "'" : std::string("the variables' ranges");
   if (mass.value <= 0.0) {
      coutE(Integration) << "RooFlowPdf '" << GetName() << "': " << range
                         << " holds none of the flow's mass: the pdf cannot be normalized there" << std::endl;
   } else if (mass.value < 1.0 - _rangeCutWarning) {
      coutW(Integration) << "RooFlowPdf '" << GetName() << "': " << range << (rangeName ? " keeps " : " keep ") << mass.value
                         << " of the flow's mass (cuts more than " << _rangeCutWarning << "); normalized over it"
                         << (mass.exact ? " exactly" : "")
                         << (mass.exact ? std::string()
                                        : " (quasi-Monte-Carlo, relative error " + std::to_string(mass.rel_error) +
                                             " from " + std::to_string(mass.points) + " points)")
                         << std::endl;
   }
   if (!mass.exact && mass.rel_error > _integralPrecision)
      coutW(Integration) << "RooFlowPdf '" << GetName() << "': the box mass of " << range << " reached a relative error of "
                         << mass.rel_error << ", not the requested " << _integralPrecision << std::endl;
   return entries.emplace(std::move(key), mass).first->second;
}

double RooFlowPdf::logProbCurrent() const
{
   const auto &m = model();
   std::vector<double> x(m.n_features()), c(m.n_context());
   for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<const RooAbsReal &>(_features[i]).getVal();
   for (std::size_t i = 0; i < c.size(); ++i)
      c[i] = static_cast<const RooAbsReal &>(_context[i]).getVal();
   double out = 0.0;
   ++*_networkEvaluations;
   m.log_prob(x.data(), c.empty() ? nullptr : c.data(), 1, &out, 1, _bootstrap);
   return out;
}

double RooFlowPdf::evaluate() const
{
   const auto &m = model();
   for (std::size_t i = 0; i < m.n_features(); ++i) {
      const double v = static_cast<const RooAbsReal &>(_features[i]).getVal();
      if (!std::isfinite(v)) {
         logEvalError("feature value is not finite");
         return std::numeric_limits<double>::quiet_NaN();
      }
      if (v < m.support_low()[i] || v > m.support_high()[i])
         return 0.0; // outside the flow's support the density vanishes
   }
   try {
      return std::exp(logProbCurrent());
   } catch (const rooml::Error &e) {
      logEvalError(e.what());
      return std::numeric_limits<double>::quiet_NaN();
   }
}

void RooFlowPdf::doEval(RooFit::EvalContext &ctx) const
{
   const auto &m = model();
   std::span<double> out = ctx.output();
   const std::size_t n = out.size(), d = m.n_features(), c = m.n_context();
   auto column = [&](const RooAbsArg &arg) { return ctx.at(&arg); };
   // Gather row-major inputs of the events (all inside the support, else refused below).
   std::vector<double> x, cv;
   std::vector<std::size_t> valid;
   x.reserve(n * d);
   cv.reserve(n * c);
   valid.reserve(n);
   std::vector<std::span<const double>> xs, cs;
   for (std::size_t i = 0; i < d; ++i)
      xs.push_back(column(_features[i]));
   for (std::size_t i = 0; i < c; ++i)
      cs.push_back(column(_context[i]));
   auto at = [](std::span<const double> s, std::size_t e) { return s.size() == 1 ? s[0] : s[e]; };
   // A bad event is a property of the data, not of the parameters: stop (before Minuit steers around it) and
   // name the event, the variable and its value.
   auto refuse = [&](std::size_t e, const RooAbsArg &var, double v, const std::string &why) {
      std::ostringstream msg;
      msg << "RooFlowPdf '" << GetName() << "': event " << e << ", variable '" << var.GetName() << "': value " << v
          << " " << why;
      coutE(InputArguments) << msg.str() << std::endl; // the exception's message may not survive every caller
      throw rooml::Error(msg.str());
   };
   for (std::size_t e = 0; e < n; ++e) {
      for (std::size_t i = 0; i < d; ++i) {
         const double v = at(xs[i], e);
         if (!std::isfinite(v))
            refuse(e, _features[i], v, "is not finite");
         if (v < m.support_low()[i] || v > m.support_high()[i]) {
            std::ostringstream why;
            why << "is outside the flow's support [" << m.support_low()[i] << ", " << m.support_high()[i]
                << "] (its density is not defined there: restrict the data or the variable's range to the support)";
            refuse(e, _features[i], v, why.str());
         }
      }
      for (std::size_t i = 0; i < c; ++i)
         if (!std::isfinite(at(cs[i], e)))
            refuse(e, _context[i], at(cs[i], e), "is not finite (context)");
      valid.push_back(e);
      for (std::size_t i = 0; i < d; ++i)
         x.push_back(at(xs[i], e));
      for (std::size_t i = 0; i < c; ++i)
         cv.push_back(at(cs[i], e));
   }
   std::vector<double> lp(valid.size());
   try {
      *_networkEvaluations += valid.size();
      m.log_prob(x.data(), c ? cv.data() : nullptr, valid.size(), lp.data(), 0, _bootstrap);
   } catch (const rooml::Error &err) {
      const std::string full = "RooFlowPdf '" + std::string(GetName()) + "': " + err.what();
      coutE(InputArguments) << full << std::endl;
      throw rooml::Error(full);
   }
   for (std::size_t k = 0; k < valid.size(); ++k)
      out[valid[k]] = std::exp(lp[k]);
}

Int_t RooFlowPdf::getGenerator(const RooArgSet &directVars, RooArgSet &generateVars, bool /*staticInitOK*/) const
{
   // The flow samples all its features at once through its exact inverse, given the context values.
   // An ensemble averaging log-densities is not a normalized density: RooFit then uses accept-reject.
   const auto &m = model();
   const bool exact = m.n_members() == 1 || m.rule() == rooml::EnsembleRule::Mixture ||
                      (_bootstrap >= 0 && m.members_per_bootstrap() == 1);
   return exact && matchArgs(directVars, generateVars, RooArgSet(_features)) ? 1 : 0;
}

void RooFlowPdf::generateEvent(Int_t code)
{
   R__ASSERT(code == 1);
   const auto &m = model();
   std::vector<double> c(m.n_context()), x(m.n_features());
   for (std::size_t i = 0; i < c.size(); ++i)
      c[i] = static_cast<const RooAbsReal &>(_context[i]).getVal();
   // Seeds come from RooRandom, so RooRandom::randomGenerator()->SetSeed() makes toys reproducible.
   const std::uint64_t seed = (std::uint64_t(RooRandom::integer(0xFFFFFFFFu)) << 32) | RooRandom::integer(0xFFFFFFFFu);
   for (int attempt = 0; attempt < 1000; ++attempt) {
      m.sample(c.empty() ? nullptr : c.data(), 1, seed + attempt, x.data(), 1, _bootstrap);
      bool inRange = true;
      for (std::size_t i = 0; i < x.size(); ++i) {
         auto *lv = dynamic_cast<RooAbsRealLValue *>(&_features[i]);
         inRange = inRange && lv && lv->inRange(x[i], nullptr);
      }
      if (!inRange)
         continue; // truncated to the variables' ranges, as RooFit's own generators do
      for (std::size_t i = 0; i < x.size(); ++i)
         static_cast<RooAbsRealLValue &>(_features[i]).setVal(x[i]);
      return;
   }
   coutE(Generation) << "RooFlowPdf '" << GetName() << "': no sample inside the variables' ranges after 1000 tries"
                     << std::endl;
}
