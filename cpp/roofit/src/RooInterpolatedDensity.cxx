// RooInterpolatedDensity: per-event vertical interpolation of shape systematics (see RooInterpolatedDensity.h).
#include "RooInterpolatedDensity.h"

#include <RooFit/Detail/RooNormalizedPdf.h>
#include <RooFit/EvalContext.h>
#include <RooMsgService.h>

#include <cmath>
#include <limits>
#include <string>

#include "EventInputs.h"
#include "rooml/error.h"
#include "rooml/interpolation.h"

namespace interp = rooml::interp;

RooInterpolatedDensity::RooInterpolatedDensity(const char *name, const char *title, RooAbsReal &nominal,
                                               const RooArgList &low, const RooArgList &high, const RooArgList &nps,
                                               const std::vector<int> &codes, int floor)
   : RooAbsPdf(name, title),
     _nominal("nominal", "nominal density", this, nominal),
     _low("low", "-1 sigma densities", this),
     _high("high", "+1 sigma densities", this),
     _nps("nps", "nuisance parameters", this),
     _codes(codes),
     _floor(floor)
{
   _low.addTyped<RooAbsReal>(low);
   _high.addTyped<RooAbsReal>(high);
   _nps.addTyped<RooAbsReal>(nps);
   if (_codes.size() == 1 && _nps.size() > 1)
      _codes.assign(_nps.size(), codes[0]);
   check();
}

RooInterpolatedDensity::RooInterpolatedDensity(const char *name, const char *title, RooAbsReal &nominal,
                                               const RooArgList &low, const RooArgList &high, const RooArgList &nps,
                                               const std::vector<int> &codes, const std::vector<double> &lowIntegrals,
                                               const std::vector<double> &highIntegrals, int floor)
   : RooInterpolatedDensity(name, title, nominal, low, high, nps, codes, floor)
{
   setNodeNormalization(lowIntegrals, highIntegrals);
}

RooInterpolatedDensity::RooInterpolatedDensity(const RooInterpolatedDensity &other, const char *name)
   : RooAbsPdf(other, name),
     _nominal("nominal", this, other._nominal),
     _low("low", this, other._low),
     _high("high", this, other._high),
     _nps("nps", this, other._nps),
     _codes(other._codes),
     _floor(other._floor),
     _normMode(other._normMode),
     _lowIntegrals(other._lowIntegrals),
     _highIntegrals(other._highIntegrals),
     _sampleLow(other._sampleLow),
     _sampleHigh(other._sampleHigh),
     _sampleWeights(other._sampleWeights)
{
}

void RooInterpolatedDensity::fail(const std::string &message) const
{
   const std::string full = "RooInterpolatedDensity '" + std::string(GetName()) + "': " + message;
   coutE(InputArguments) << full << std::endl; // the exception's message may not survive every caller
   throw rooml::Error(full);
}

void RooInterpolatedDensity::check() const
{
   const std::size_t K = _nps.size();
   if (_low.size() != K || _high.size() != K) {
      fail("needs one -1 sigma and one +1 sigma input per nuisance parameter: " + std::to_string(K) +
           " parameters, " + std::to_string(_low.size()) + " low and " + std::to_string(_high.size()) +
           " high inputs");
   }
   if (_codes.size() != K) {
      fail("needs one interpolation code per nuisance parameter (or one for all): " + std::to_string(K) +
           " parameters, " + std::to_string(_codes.size()) + " codes");
   }
   for (std::size_t k = 0; k < K; ++k) {
      try {
         interp::check_code(_codes[k]);
      } catch (const rooml::Error &e) {
         fail(std::string(e.what()) + " (parameter '" + _nps[k].GetName() + "')");
      }
   }
   if (_floor != interp::kNoFloor && _floor != interp::kZeroFloor && _floor != interp::kTinyFloor)
      fail("unknown floor mode " + std::to_string(_floor) + " (0 none, 1 zero, 2 tiny)");
}

void RooInterpolatedDensity::setNodeNormalization(const std::vector<double> &lowIntegrals,
                                                  const std::vector<double> &highIntegrals)
{
   const std::size_t K = _nps.size();
   if (lowIntegrals.size() != K || highIntegrals.size() != K) {
      fail("needs one low and one high integral per nuisance parameter: " + std::to_string(K) + " parameters, " +
           std::to_string(lowIntegrals.size()) + " low and " + std::to_string(highIntegrals.size()) +
           " high integrals");
   }
   for (std::size_t k = 0; k < K; ++k) {
      try {
         interp::detail::check_inputs(_codes[k], lowIntegrals[k], highIntegrals[k], 1.0, 0.0, 1.0);
      } catch (const rooml::Error &e) {
         fail("bad integrals for parameter '" + std::string(_nps[k].GetName()) + "': " + e.what());
      }
      if (!(lowIntegrals[k] > 0 && highIntegrals[k] > 0))
         fail("the integrals of the variations of parameter '" + std::string(_nps[k].GetName()) +
              "' must be > 0, got " + interp::detail::num(lowIntegrals[k]) + " and " + interp::detail::num(highIntegrals[k]));
   }
   _lowIntegrals = lowIntegrals;
   _highIntegrals = highIntegrals;
   _sampleLow.clear();
   _sampleHigh.clear();
   _sampleWeights.clear();
   _normMode = kNodes;
   _cacheNu.clear();
   setValueDirty();
}

void RooInterpolatedDensity::setSampleNormalization(const std::vector<double> &lowRatios,
                                                    const std::vector<double> &highRatios,
                                                    const std::vector<double> &weights)
{
   const std::size_t K = _nps.size();
   if (K == 0)
      fail("sample normalization needs at least one nuisance parameter");
   if (lowRatios.size() != highRatios.size() || lowRatios.empty() || lowRatios.size() % K != 0) {
      fail("the per-sample ratios must hold K * n values each (K = " + std::to_string(K) + " parameters), got " +
           std::to_string(lowRatios.size()) + " low and " + std::to_string(highRatios.size()) + " high");
   }
   const std::size_t n = lowRatios.size() / K;
   if (!weights.empty() && weights.size() != n)
      fail("got " + std::to_string(weights.size()) + " sample weights for " + std::to_string(n) + " samples");
   for (std::size_t k = 0; k < K; ++k) {
      for (std::size_t s = 0; s < n; ++s) {
         const double lo = lowRatios[k * n + s], hi = highRatios[k * n + s];
         if (!(std::isfinite(lo) && std::isfinite(hi) && lo >= 0 && hi >= 0)) {
            fail("sample " + std::to_string(s) + " has ratios " + interp::detail::num(lo) + ", " + interp::detail::num(hi) +
                 " for parameter '" + _nps[k].GetName() + "' (they must be finite and >= 0)");
         }
      }
   }
   double sum = 0.0;
   std::vector<double> w(n, 1.0);
   for (std::size_t s = 0; s < n; ++s) {
      if (!weights.empty()) {
         if (!std::isfinite(weights[s]))
            fail("sample weight " + std::to_string(s) + " is " + interp::detail::num(weights[s]));
         w[s] = weights[s];
      }
      sum += w[s];
   }
   if (!(sum > 0))
      fail("the sample weights sum to " + interp::detail::num(sum) + " (must be > 0)");
   for (double &v : w)
      v /= sum;
   _sampleLow = lowRatios;
   _sampleHigh = highRatios;
   _sampleWeights = std::move(w);
   _lowIntegrals.clear();
   _highIntegrals.clear();
   _normMode = kSamples;
   _cacheNu.clear();
   setValueDirty();
}

void RooInterpolatedDensity::setNoNormalization()
{
   _lowIntegrals.clear();
   _highIntegrals.clear();
   _sampleLow.clear();
   _sampleHigh.clear();
   _sampleWeights.clear();
   _normMode = kNone;
   _cacheNu.clear();
   setValueDirty();
}

std::vector<double> RooInterpolatedDensity::nuValues() const
{
   std::vector<double> nu(_nps.size());
   for (std::size_t k = 0; k < nu.size(); ++k)
      nu[k] = static_cast<const RooAbsReal &>(_nps[k]).getVal();
   return nu;
}

double RooInterpolatedDensity::normalizationFactor() const
{
   return normalizationAt(nuValues());
}

double RooInterpolatedDensity::normalizationAt(const std::vector<double> &nu) const
{
   if (_normMode == kNone)
      return 1.0;
   if (nu == _cacheNu)
      return _cacheN;
   const std::size_t K = nu.size();
   double N = 1.0;
   std::vector<const double *> lo(K), hi(K);
   if (_normMode == kNodes) {
      for (std::size_t k = 0; k < K; ++k) {
         lo[k] = &_lowIntegrals[k];
         hi[k] = &_highIntegrals[k];
      }
      const double one = 1.0;
      interp::combine_unchecked(&one, lo.data(), hi.data(), nu.data(), _codes.data(), K, 1, &N, _floor);
   } else {
      // The same kernel on the nominal samples: w(x_s, nu) = P(x_s | nu) / P_0(x_s), then their weighted mean.
      const std::size_t n = _sampleWeights.size();
      for (std::size_t k = 0; k < K; ++k) {
         lo[k] = _sampleLow.data() + k * n;
         hi[k] = _sampleHigh.data() + k * n;
      }
      const std::vector<double> ones(n, 1.0);
      std::vector<double> w(n);
      interp::combine_unchecked(ones.data(), lo.data(), hi.data(), nu.data(), _codes.data(), K, n, w.data(), _floor);
      N = 0.0;
      for (std::size_t s = 0; s < n; ++s)
         N += _sampleWeights[s] * w[s];
   }
   _cacheNu = nu;
   _cacheN = N;
   return N;
}

std::string RooInterpolatedDensity::explain(double nominal, const std::vector<double> &lo,
                                            const std::vector<double> &hi, const std::vector<double> &nu,
                                            long e) const
{
   try {
      for (std::size_t k = 0; k < nu.size(); ++k)
         interp::detail::check_inputs(_codes[k], lo[k], hi[k], nominal, nu[k], 1.0, static_cast<long>(k), e);
      if (!std::isfinite(nominal))
         return "non-finite nominal density " + interp::detail::num(nominal) + (e >= 0 ? " (event " + std::to_string(e) + ")" : "");
   } catch (const rooml::Error &err) {
      return err.what();
   }
   return "non-finite interpolated density" + (e >= 0 ? " (event " + std::to_string(e) + ")" : std::string());
}

double RooInterpolatedDensity::evaluate() const
{
   const std::size_t K = _nps.size();
   const double nominal = _nominal;
   std::vector<double> lo(K), hi(K);
   std::vector<const double *> plo(K), phi(K);
   for (std::size_t k = 0; k < K; ++k) {
      lo[k] = static_cast<const RooAbsReal &>(_low[k]).getVal(_low.nset());
      hi[k] = static_cast<const RooAbsReal &>(_high[k]).getVal(_high.nset());
      plo[k] = &lo[k];
      phi[k] = &hi[k];
   }
   const std::vector<double> nu = nuValues();
   double v = 0.0;
   interp::combine_unchecked(&nominal, plo.data(), phi.data(), nu.data(), _codes.data(), K, 1, &v, _floor);
   if (!std::isfinite(v)) {
      logEvalError(explain(nominal, lo, hi, nu, -1).c_str());
      return std::numeric_limits<double>::quiet_NaN();
   }
   const double N = normalizationAt(nu);
   if (!(N > 0) || !std::isfinite(N)) {
      logEvalError(("normalization N(nu) = " + interp::detail::num(N) + " is not positive and finite").c_str());
      return std::numeric_limits<double>::quiet_NaN();
   }
   return v / N;
}

void RooInterpolatedDensity::doEval(RooFit::EvalContext &ctx) const
{
   std::span<double> out = ctx.output();
   const std::size_t n = out.size(), K = _nps.size();
   // Inputs as n-long columns (a scalar input, e.g. a constant, is broadcast).
   std::vector<std::vector<double>> owned;
   owned.reserve(2 * K + 1);
   auto column = [&](const RooAbsArg &arg) -> const double * {
      std::span<const double> s = ctx.at(&arg);
      if (s.size() == n)
         return s.data();
      owned.emplace_back(n, s[0]);
      return owned.back().data();
   };
   const double *nominal = column(_nominal.arg());
   std::vector<const double *> lo(K), hi(K);
   std::vector<double> nu(K);
   for (std::size_t k = 0; k < K; ++k) {
      lo[k] = column(_low[k]);
      hi[k] = column(_high[k]);
      nu[k] = ctx.at(&_nps[k])[0];
   }
   // The kernel's branch and per-parameter work sits outside its event loops (rooml::interp::combine).
   interp::combine_unchecked(nominal, lo.data(), hi.data(), nu.data(), _codes.data(), K, n, out.data(), _floor);

   if (_normMode != kNone) {
      const double N = normalizationAt(nu);
      if (!(N > 0) || !std::isfinite(N)) {
         logEvalError(("normalization N(nu) = " + interp::detail::num(N) + " is not positive and finite").c_str());
         std::fill(out.begin(), out.end(), std::numeric_limits<double>::quiet_NaN());
         return;
      }
      for (std::size_t e = 0; e < n; ++e)
         out[e] /= N; // as evaluate(), to the last bit
   }
   // Never a silent NaN: name the first bad event and why.
   for (std::size_t e = 0; e < n; ++e) {
      if (!std::isfinite(out[e])) {
         std::vector<double> l(K), h(K);
         for (std::size_t k = 0; k < K; ++k) {
            l[k] = lo[k][e];
            h[k] = hi[k][e];
         }
         logEvalError(explain(nominal[e], l, h, nu, static_cast<long>(e)).c_str());
         break;
      }
   }
}

namespace {

// RooFit's vectorized backend hands a pdf server to its parent wrapped in a RooNormalizedPdf (normalized over the
// parent's normalization set), which does not answer getAnalyticalIntegral(): ask the pdf inside.
const RooAbsReal &unwrapped(const RooAbsReal &nominal)
{
   if (auto *normalized = dynamic_cast<const RooFit::Detail::RooNormalizedPdf *>(&nominal))
      return normalized->pdf();
   return nominal;
}

} // namespace

Int_t RooInterpolatedDensity::getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars,
                                                    const char *rangeName) const
{
   // Integrate analytically wherever the nominal does (its features, or a RooEventColumn's index); never over
   // the nuisance parameters.
   RooArgSet candidates(allVars);
   candidates.remove(_nps, true, true);
   RooArgSet nominalVars;
   const Int_t code = unwrapped(_nominal.arg()).getAnalyticalIntegral(candidates, nominalVars, rangeName);
   if (code == 0)
      return 0;
   analVars.add(nominalVars);
   return code;
}

double RooInterpolatedDensity::analyticalIntegral(Int_t code, const char *rangeName) const
{
   // A pdf nominal enters with the values RooFit normalizes (integral 1); a function nominal with its own integral.
   // The variations are taken to integrate like the nominal, and N(nu) corrects what the interpolation adds.
   const RooAbsReal &nominal = unwrapped(_nominal.arg());
   if (dynamic_cast<const RooAbsPdf *>(&nominal))
      return 1.0;
   return nominal.analyticalIntegral(code, rangeName);
}

std::unique_ptr<RooAbsArg>
RooInterpolatedDensity::compileForNormSet(RooArgSet const &normSet, RooFit::Detail::CompileContext &ctx) const
{
   // The vectorized backend compiles with the dataset's observables: refuse a dataset without the nominal's.
   const std::string missing = rooml_roofit::missingObservable(_nominal.arg(), normSet, "the nominal density");
   if (!missing.empty())
      fail(missing);
   return RooAbsPdf::compileForNormSet(normSet, ctx);
}
