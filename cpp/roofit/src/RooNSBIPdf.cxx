// RooNSBIPdf and RooNSBIYield: the ATLAS NSBI mixture of density ratios (see RooNSBIPdf.h).
#include "RooNSBIPdf.h"

#include <RooFit/EvalContext.h>
#include <RooMsgService.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>

#include "EventInputs.h"
#include "rooml/error.h"
#include "rooml/interpolation.h"

namespace interp = rooml::interp;

namespace {

/// Codes as given (J * K), one code for all, or the default 5 for an empty vector.
std::vector<int> expandCodes(const std::vector<int> &codes, std::size_t JK)
{
   if (codes.empty())
      return std::vector<int>(JK, interp::kPoly6Exp);
   if (codes.size() == 1)
      return std::vector<int>(JK, codes[0]);
   return codes;
}

/// G_j(alpha) = FlexibleInterpVar(1; low_jk, high_jk; alpha; codes_j) for every process j.
void normFactors(const std::vector<double> &low, const std::vector<double> &high, const std::vector<int> &codes,
                 const std::vector<double> &alpha, std::size_t J, std::vector<double> &G)
{
   const std::size_t K = alpha.size();
   G.assign(J, 1.0);
   std::vector<const double *> lo(K), hi(K);
   const double one = 1.0;
   for (std::size_t j = 0; j < J; ++j) {
      for (std::size_t k = 0; k < K; ++k) {
         lo[k] = &low[j * K + k];
         hi[k] = &high[j * K + k];
      }
      interp::combine_unchecked(&one, lo.data(), hi.data(), alpha.data(), codes.data() + j * K, K, 1, &G[j],
                                interp::kTinyFloor);
   }
}

/// The checks shared by RooNSBIYield and RooNSBIPdf; returns an error message or "".
std::string checkCommon(std::size_t nCoefs, const std::vector<double> &yields, const RooArgList &nps,
                        const std::vector<double> &normLow, const std::vector<double> &normHigh,
                        const std::vector<int> &normCodes)
{
   const std::size_t J = yields.size(), K = nps.size();
   std::ostringstream msg;
   if (J == 0)
      return "needs at least one process";
   if (nCoefs != J) {
      msg << "got " << nCoefs << " coefficients f_j for " << J << " yields nu_j (one per process)";
      return msg.str();
   }
   if (normLow.size() != J * K || normHigh.size() != J * K) {
      msg << "needs J * K = " << J << " * " << K << " = " << J * K << " normalization ratios G_jk^- and G_jk^+"
          << " (process-major), got " << normLow.size() << " and " << normHigh.size();
      return msg.str();
   }
   if (normCodes.size() != J * K) {
      msg << "needs J * K = " << J * K << " normalization codes (or one, or none for 5), got " << normCodes.size();
      return msg.str();
   }
   for (std::size_t j = 0; j < J; ++j) {
      if (!(std::isfinite(yields[j]) && yields[j] > 0))
         return "yield nu_" + std::to_string(j) + " = " + interp::detail::num(yields[j]) + " must be finite and > 0";
      for (std::size_t k = 0; k < K; ++k) {
         const std::size_t jk = j * K + k;
         try {
            interp::check_code(normCodes[jk]);
         } catch (const rooml::Error &e) {
            return std::string(e.what()) + " (normalization of process " + std::to_string(j) + ", parameter '" +
                   nps[k].GetName() + "')";
         }
         if (!(std::isfinite(normLow[jk]) && std::isfinite(normHigh[jk]) && normLow[jk] > 0 && normHigh[jk] > 0)) {
            return "normalization ratios of process " + std::to_string(j) + " for parameter '" + nps[k].GetName() +
                   "' are " + interp::detail::num(normLow[jk]) + " (-1 sigma) and " + interp::detail::num(normHigh[jk]) +
                   " (+1 sigma); they must be finite and > 0";
         }
      }
   }
   return {};
}

/// True when every value is finite and > 0: one branch-free pass over the bits (a positive finite double has
/// bits in [1, 0x7FEFFFFFFFFFFFFF]); the per-event loop that names a bad event runs only when this fails.
bool allPositiveFinite(std::span<const double> s)
{
   std::uint64_t bad = 0;
   for (double v : s) {
      std::uint64_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      bad |= static_cast<std::uint64_t>(bits - 1 >= 0x7FEFFFFFFFFFFFFFULL);
   }
   return bad == 0;
}

std::vector<double> valuesOf(const RooArgList &list)
{
   std::vector<double> v(list.size());
   for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<const RooAbsReal &>(list[i]).getVal();
   return v;
}

} // namespace

// ------------------------------------------------------------------------------------------------ RooNSBIYield

RooNSBIYield::RooNSBIYield(const char *name, const char *title, const RooArgList &coefficients,
                           const std::vector<double> &yields, const RooArgList &nps, const std::vector<double> &normLow,
                           const std::vector<double> &normHigh, const std::vector<int> &normCodes)
   : RooAbsReal(name, title),
     _coefs("coefficients", "process coefficients f_j", this),
     _nps("nps", "nuisance parameters", this),
     _yields(yields),
     _normLow(normLow),
     _normHigh(normHigh),
     _normCodes(expandCodes(normCodes, yields.size() * nps.size()))
{
   _coefs.addTyped<RooAbsReal>(coefficients);
   _nps.addTyped<RooAbsReal>(nps);
   const std::string problem = checkCommon(_coefs.size(), _yields, _nps, _normLow, _normHigh, _normCodes);
   if (!problem.empty()) {
      const std::string full = "RooNSBIYield '" + std::string(GetName()) + "': " + problem;
      coutE(InputArguments) << full << std::endl;
      throw rooml::Error(full);
   }
}

RooNSBIYield::RooNSBIYield(const RooNSBIYield &other, const char *name)
   : RooAbsReal(other, name),
     _coefs("coefficients", this, other._coefs),
     _nps("nps", this, other._nps),
     _yields(other._yields),
     _normLow(other._normLow),
     _normHigh(other._normHigh),
     _normCodes(other._normCodes)
{
}

double RooNSBIYield::normFactor(std::size_t j) const
{
   std::vector<double> G;
   normFactors(_normLow, _normHigh, _normCodes, valuesOf(_nps), _yields.size(), G);
   return G.at(j);
}

double RooNSBIYield::evaluate() const
{
   std::vector<double> G;
   normFactors(_normLow, _normHigh, _normCodes, valuesOf(_nps), _yields.size(), G);
   const std::vector<double> f = valuesOf(_coefs);
   double nu = 0.0;
   for (std::size_t j = 0; j < _yields.size(); ++j)
      nu += f[j] * _yields[j] * G[j];
   return nu;
}

// ------------------------------------------------------------------------------------------------ RooNSBIPdf

RooNSBIPdf::RooNSBIPdf(const char *name, const char *title, const RooArgList &coefficients,
                       const std::vector<double> &yields, const RooArgList &ratios, const RooArgList &nps,
                       const std::vector<double> &normLow, const std::vector<double> &normHigh,
                       const RooArgList &shapeLow, const RooArgList &shapeHigh, const std::vector<int> &normCodes,
                       const std::vector<int> &shapeCodes)
   : RooAbsPdf(name, title),
     _coefs("coefficients", "process coefficients f_j", this),
     _ratios("ratios", "per-event ratios r_j", this),
     _nps("nps", "nuisance parameters", this),
     _shapeLow("shapeLow", "per-event ratios g_jk^-", this),
     _shapeHigh("shapeHigh", "per-event ratios g_jk^+", this),
     _yields(yields),
     _normLow(normLow),
     _normHigh(normHigh),
     _normCodes(expandCodes(normCodes, yields.size() * nps.size())),
     _shapeCodes(expandCodes(shapeCodes, yields.size() * nps.size()))
{
   _coefs.addTyped<RooAbsReal>(coefficients);
   _ratios.addTyped<RooAbsReal>(ratios);
   _nps.addTyped<RooAbsReal>(nps);
   _shapeLow.addTyped<RooAbsReal>(shapeLow);
   _shapeHigh.addTyped<RooAbsReal>(shapeHigh);
   check();
}

RooNSBIPdf::RooNSBIPdf(const RooNSBIPdf &other, const char *name)
   : RooAbsPdf(other, name),
     _coefs("coefficients", this, other._coefs),
     _ratios("ratios", this, other._ratios),
     _nps("nps", this, other._nps),
     _shapeLow("shapeLow", this, other._shapeLow),
     _shapeHigh("shapeHigh", this, other._shapeHigh),
     _yields(other._yields),
     _normLow(other._normLow),
     _normHigh(other._normHigh),
     _normCodes(other._normCodes),
     _shapeCodes(other._shapeCodes),
     _refWeights(other._refWeights),
     _refRatios(other._refRatios),
     _refShapeLow(other._refShapeLow),
     _refShapeHigh(other._refShapeHigh)
{
}

void RooNSBIPdf::fail(const std::string &message) const
{
   const std::string full = "RooNSBIPdf '" + std::string(GetName()) + "': " + message;
   coutE(InputArguments) << full << std::endl; // the exception's message may not survive every caller
   throw rooml::Error(full);
}

void RooNSBIPdf::check() const
{
   const std::size_t J = _yields.size(), K = _nps.size();
   std::string problem = checkCommon(_coefs.size(), _yields, _nps, _normLow, _normHigh, _normCodes);
   if (!problem.empty())
      fail(problem);
   if (_ratios.size() != J)
      fail("got " + std::to_string(_ratios.size()) + " per-event ratios r_j for " + std::to_string(J) + " processes");
   if (_shapeLow.size() != J * K || _shapeHigh.size() != J * K) {
      fail("every nuisance parameter needs -1 and +1 sigma per-event ratios for every process: J * K = " +
           std::to_string(J) + " * " + std::to_string(K) + " = " + std::to_string(J * K) + " each (process-major; " +
           "a constant 1 where a process has no shape effect), got " + std::to_string(_shapeLow.size()) + " and " +
           std::to_string(_shapeHigh.size()));
   }
   if (_shapeCodes.size() != J * K)
      fail("needs J * K = " + std::to_string(J * K) + " shape codes (or one, or none for 5), got " +
           std::to_string(_shapeCodes.size()));
   for (std::size_t jk = 0; jk < J * K; ++jk) {
      try {
         interp::check_code(_shapeCodes[jk]);
      } catch (const rooml::Error &e) {
         fail(std::string(e.what()) + " (shape of process " + std::to_string(jk / K) + ", parameter '" +
              _nps[jk % K].GetName() + "')");
      }
   }
}

void RooNSBIPdf::setShapeNormalizationSample(const std::vector<double> &weights, const std::vector<double> &ratios,
                                             const std::vector<double> &shapeLow,
                                             const std::vector<double> &shapeHigh)
{
   const std::size_t J = _yields.size(), K = _nps.size(), n = weights.size();
   _cacheAlpha.clear();
   setValueDirty();
   _refPoly.clear();
   if (n == 0) {
      _refWeights.clear();
      _refRatios.clear();
      _refShapeLow.clear();
      _refShapeHigh.clear();
      return;
   }
   if (ratios.size() != J * n || shapeLow.size() != J * K * n || shapeHigh.size() != J * K * n) {
      fail("reference sample of " + std::to_string(n) + " events needs J * n = " + std::to_string(J * n) +
           " ratios and J * K * n = " + std::to_string(J * K * n) + " shape ratios each side, got " +
           std::to_string(ratios.size()) + ", " + std::to_string(shapeLow.size()) + ", " +
           std::to_string(shapeHigh.size()));
   }
   double sum = 0.0;
   for (std::size_t s = 0; s < n; ++s) {
      if (!std::isfinite(weights[s]))
         fail("reference sample weight " + std::to_string(s) + " is " + interp::detail::num(weights[s]));
      sum += weights[s];
   }
   if (!(sum > 0))
      fail("reference sample weights sum to " + interp::detail::num(sum) + " (must be > 0)");
   for (std::size_t j = 0; j < J; ++j) {
      for (std::size_t s = 0; s < n; ++s) {
         const double r = ratios[j * n + s];
         if (!(std::isfinite(r) && r > 0))
            fail("reference sample event " + std::to_string(s) + ": ratio r_" + std::to_string(j) + " = " +
                 interp::detail::num(r) + " (must be finite and > 0)");
         for (std::size_t k = 0; k < K; ++k) {
            const double lo = shapeLow[(j * K + k) * n + s], hi = shapeHigh[(j * K + k) * n + s];
            if (!(std::isfinite(lo) && std::isfinite(hi) && lo > 0 && hi > 0))
               fail("reference sample event " + std::to_string(s) + ": shape ratios of process " + std::to_string(j) +
                    " for parameter '" + _nps[k].GetName() + "' are " + interp::detail::num(lo) + ", " + interp::detail::num(hi) +
                    " (must be finite and > 0)");
         }
      }
   }
   _refWeights = weights;
   for (double &w : _refWeights)
      w /= sum;
   _refPoly.clear();
   _refRatios = ratios;
   _refShapeLow = shapeLow;
   _refShapeHigh = shapeHigh;
}

const std::vector<double> &RooNSBIPdf::shapeNormalizationAt(const std::vector<double> &alpha) const
{
   const std::size_t J = _yields.size(), K = alpha.size(), n = _refWeights.size();
   if (!_cacheN.empty() && alpha == _cacheAlpha)
      return _cacheN;
   _cacheN.assign(J, 1.0);
   if (n > 0 && K > 0) {
      // Code 5 (the default) inside |alpha| < 1 is a polynomial whose coefficients depend only on the reference
      // event: build them once with the kernel's own construction (rooml::interp::detail::poly6_exp), so that a
      // Minuit step costs a polynomial per event and parameter instead of logarithms and exponentials.
      // Other codes, and mixed lists, go through rooml::interp::combine.
      if (_refPoly.empty()) {
         _refPoly.assign(J * K * n * 7, 0.0);
         for (std::size_t jk = 0; jk < J * K; ++jk) {
            if (_shapeCodes[jk] != interp::kPoly6Exp)
               continue;
            for (std::size_t s = 0; s < n; ++s) {
               const interp::detail::Poly6 p =
                  interp::detail::poly6_exp(_refShapeHigh[jk * n + s], _refShapeLow[jk * n + s], 1.0);
               std::copy(p.c, p.c + 7, _refPoly.begin() + (jk * n + s) * 7);
            }
         }
      }
      std::vector<double> g(n);
      std::vector<const double *> lo(K), hi(K);
      const std::vector<double> ones(n, 1.0);
      for (std::size_t j = 0; j < J; ++j) {
         bool allCode5 = true;
         for (std::size_t k = 0; k < K; ++k)
            allCode5 = allCode5 && _shapeCodes[j * K + k] == interp::kPoly6Exp;
         if (allCode5) {
            std::fill(g.begin(), g.end(), 1.0);
            for (std::size_t k = 0; k < K; ++k) {
               const std::size_t jk = j * K + k;
               const double a = alpha[k];
               if (a >= 1.0) {
                  for (std::size_t s = 0; s < n; ++s)
                     g[s] *= std::pow(_refShapeHigh[jk * n + s], a);
               } else if (a <= -1.0) {
                  for (std::size_t s = 0; s < n; ++s)
                     g[s] *= std::pow(_refShapeLow[jk * n + s], -a);
               } else {
                  const double *c = _refPoly.data() + jk * n * 7;
                  interp::detail::Poly6 p;
                  for (std::size_t s = 0; s < n; ++s, c += 7) {
                     std::copy(c, c + 7, p.c);
                     g[s] *= p.value(a);
                  }
               }
            }
         } else {
            for (std::size_t k = 0; k < K; ++k) {
               lo[k] = _refShapeLow.data() + (j * K + k) * n;
               hi[k] = _refShapeHigh.data() + (j * K + k) * n;
            }
            interp::combine_unchecked(ones.data(), lo.data(), hi.data(), alpha.data(), _shapeCodes.data() + j * K, K,
                                      n, g.data());
         }
         const double *r = _refRatios.data() + j * n;
         double num = 0.0, den = 0.0;
         for (std::size_t s = 0; s < n; ++s) {
            num += _refWeights[s] * r[s] * g[s];
            den += _refWeights[s] * r[s];
         }
         _cacheN[j] = num / den;
      }
   }
   _cacheAlpha = alpha;
   return _cacheN;
}

double RooNSBIPdf::shapeNormalization(std::size_t j) const
{
   return shapeNormalizationAt(valuesOf(_nps)).at(j);
}

double RooNSBIPdf::normFactor(std::size_t j) const
{
   std::vector<double> G;
   normFactors(_normLow, _normHigh, _normCodes, valuesOf(_nps), _yields.size(), G);
   return G.at(j);
}

double RooNSBIPdf::processCoefficients(const std::vector<double> &f, const std::vector<double> &alpha,
                                       std::vector<double> &c) const
{
   const std::size_t J = _yields.size();
   std::vector<double> G;
   normFactors(_normLow, _normHigh, _normCodes, alpha, J, G);
   const std::vector<double> &N = shapeNormalizationAt(alpha);
   double nu = 0.0;
   c.assign(J, 0.0);
   for (std::size_t j = 0; j < J; ++j) {
      const double yj = f[j] * _yields[j] * G[j];
      nu += yj;
      c[j] = yj / N[j];
   }
   for (std::size_t j = 0; j < J; ++j)
      c[j] /= nu;
   return nu;
}

double RooNSBIPdf::expectedEvents(const RooArgSet * /*nset*/) const
{
   const std::size_t J = _yields.size();
   std::vector<double> G;
   normFactors(_normLow, _normHigh, _normCodes, valuesOf(_nps), J, G);
   const std::vector<double> f = valuesOf(_coefs);
   double nu = 0.0;
   for (std::size_t j = 0; j < J; ++j)
      nu += f[j] * _yields[j] * G[j];
   return nu;
}

std::unique_ptr<RooAbsReal> RooNSBIPdf::createExpectedEventsFunc(const RooArgSet * /*nset*/) const
{
   const std::string name = std::string(GetName()) + "_expectedEvents";
   return std::make_unique<RooNSBIYield>(name.c_str(), name.c_str(), _coefs, _yields, _nps, _normLow, _normHigh,
                                         _normCodes);
}

void RooNSBIPdf::checkRatio(double v, std::size_t j, long k, int side, long row) const
{
   if (std::isfinite(v) && v > 0)
      return;
   std::string what = k < 0 ? "ratio r_" + std::to_string(j) + " ('" + _ratios[j].GetName() + "')"
                            : std::string(side < 0 ? "-1" : "+1") + " sigma shape ratio of process " +
                                 std::to_string(j) + " for parameter '" + _nps[k].GetName() + "' ('" +
                                 (side < 0 ? _shapeLow : _shapeHigh)[j * _nps.size() + k].GetName() + "')";
   fail((row < 0 ? std::string("current event") : "event " + std::to_string(row)) + ": per-event " + what + " is " +
        interp::detail::num(v) + "; per-event ratios must be finite and > 0");
}

double RooNSBIPdf::evaluate() const
{
   const std::size_t J = _yields.size(), K = _nps.size();
   const std::vector<double> f = valuesOf(_coefs), alpha = valuesOf(_nps);
   std::vector<double> c;
   const double nu = processCoefficients(f, alpha, c);
   if (!(std::isfinite(nu) && nu > 0)) {
      logEvalError(("expected events nu(mu, alpha) = " + interp::detail::num(nu) + " is not positive").c_str());
      return std::numeric_limits<double>::quiet_NaN();
   }
   const double one = 1.0;
   double sum = 0.0;
   std::vector<double> lo(K), hi(K);
   std::vector<const double *> plo(K), phi(K);
   for (std::size_t j = 0; j < J; ++j) {
      const double r = static_cast<const RooAbsReal &>(_ratios[j]).getVal();
      checkRatio(r, j, -1, 0, -1);
      for (std::size_t k = 0; k < K; ++k) {
         lo[k] = static_cast<const RooAbsReal &>(_shapeLow[j * K + k]).getVal();
         hi[k] = static_cast<const RooAbsReal &>(_shapeHigh[j * K + k]).getVal();
         checkRatio(lo[k], j, long(k), -1, -1);
         checkRatio(hi[k], j, long(k), +1, -1);
         plo[k] = &lo[k];
         phi[k] = &hi[k];
      }
      double g = 1.0;
      interp::combine_unchecked(&one, plo.data(), phi.data(), alpha.data(), _shapeCodes.data() + j * K, K, 1, &g);
      sum += c[j] * r * g;
   }
   if (!(sum > 0) || !std::isfinite(sum))
      logEvalError(("mixture p(x|mu,alpha)/p_ref(x) = " + interp::detail::num(sum) + " is not positive").c_str());
   return sum;
}

void RooNSBIPdf::doEval(RooFit::EvalContext &ctx) const
{
   std::span<double> out = ctx.output();
   const std::size_t n = out.size(), J = _yields.size(), K = _nps.size();
   std::vector<double> f(J), alpha(K);
   for (std::size_t j = 0; j < J; ++j)
      f[j] = ctx.at(&_coefs[j])[0];
   for (std::size_t k = 0; k < K; ++k)
      alpha[k] = ctx.at(&_nps[k])[0];
   // Per-process coefficients, hoisted out of the event loops.
   std::vector<double> c;
   const double nu = processCoefficients(f, alpha, c);
   if (!(std::isfinite(nu) && nu > 0)) {
      logEvalError(("expected events nu(mu, alpha) = " + interp::detail::num(nu) + " is not positive").c_str());
      std::fill(out.begin(), out.end(), std::numeric_limits<double>::quiet_NaN());
      return;
   }
   std::fill(out.begin(), out.end(), 0.0);

   std::vector<std::vector<double>> owned; // broadcast copies of scalar inputs
   auto column = [&](std::span<const double> s) -> const double * {
      if (s.size() == n)
         return s.data();
      owned.emplace_back(n, s[0]);
      return owned.back().data();
   };
   auto checkSpan = [&](std::span<const double> s, std::size_t j, long k, int side) {
      if (allPositiveFinite(s))
         return;
      for (std::size_t e = 0; e < s.size(); ++e) {
         if (!(std::isfinite(s[e]) && s[e] > 0))
            checkRatio(s[e], j, k, side, s.size() == 1 ? -1 : static_cast<long>(e));
      }
   };
   std::vector<double> ones, g, fm1;
   std::vector<const double *> lo, hi;
   std::vector<double> a;
   std::vector<int> codes;
   for (std::size_t j = 0; j < J; ++j) {
      owned.clear();
      owned.reserve(2 * K + 1);
      std::span<const double> rs = ctx.at(&_ratios[j]);
      checkSpan(rs, j, -1, 0);
      const double *r = column(rs);
      lo.clear();
      hi.clear();
      a.clear();
      codes.clear();
      for (std::size_t k = 0; k < K; ++k) {
         std::span<const double> ls = ctx.at(&_shapeLow[j * K + k]);
         std::span<const double> hs = ctx.at(&_shapeHigh[j * K + k]);
         if (ls.size() == 1 && hs.size() == 1 && ls[0] == 1.0 && hs[0] == 1.0)
            continue; // no shape effect: the factor is exactly 1 for every code
         checkSpan(ls, j, long(k), -1);
         checkSpan(hs, j, long(k), +1);
         lo.push_back(column(ls));
         hi.push_back(column(hs));
         a.push_back(alpha[k]);
         codes.push_back(_shapeCodes[j * K + k]);
      }
      const double cj = c[j];
      if (lo.empty()) {
         for (std::size_t e = 0; e < n; ++e)
            out[e] += cj * r[e];
         continue;
      }
      // g_j(x, alpha) for all events.  When every parameter of the process has code 5 and |alpha| < 1 (what
      // Minuit mostly sees), the vectorized kernel works on the ratios directly (no nominal of ones to divide by),
      // folded into g exactly as combine() does (g += g (f - 1)); otherwise combine(), whose loops have the code
      // and the value hoisted.
      const bool fast = std::all_of(codes.begin(), codes.end(), [](int code) { return code == interp::kPoly6Exp; }) &&
                        std::all_of(a.begin(), a.end(), [](double x) { return x > -1.0 && x < 1.0; });
      g.assign(n, 1.0);
      if (fast) {
         fm1.resize(n);
         for (std::size_t k = 0; k < lo.size(); ++k) {
            interp::detail::poly6_exp_unit_minus_one(nullptr, lo[k], hi[k], a[k], n, fm1.data());
            for (std::size_t e = 0; e < n; ++e)
               g[e] += g[e] * fm1[e];
         }
      } else {
         if (ones.empty())
            ones.assign(n, 1.0);
         interp::combine_unchecked(ones.data(), lo.data(), hi.data(), a.data(), codes.data(), lo.size(), n,
                                   g.data());
      }
      for (std::size_t e = 0; e < n; ++e)
         out[e] += cj * r[e] * g[e];
   }
   // Parameter-dependent failures are logged (RooFit then steers the minimizer away), never silent.
   std::size_t bad = 0, first = 0;
   for (std::size_t e = 0; e < n; ++e) {
      if (!(out[e] > 0) || !std::isfinite(out[e])) {
         if (bad++ == 0)
            first = e;
      }
   }
   if (bad > 0) {
      std::ostringstream msg;
      msg << "mixture p(x|mu,alpha)/p_ref(x) is not positive for " << bad << " of " << n << " events (first: event "
          << first << ", value " << interp::detail::num(out[first]) << ")";
      logEvalError(msg.str().c_str());
   }
}

std::unique_ptr<RooAbsArg>
RooNSBIPdf::compileForNormSet(RooArgSet const &normSet, RooFit::Detail::CompileContext &ctx) const
{
   // The vectorized backend compiles with the dataset's observables: refuse a dataset without the per-event index.
   for (std::size_t j = 0; j < _ratios.size(); ++j) {
      const std::string missing =
         rooml_roofit::missingObservable(_ratios[j], normSet, "per-event ratio r_" + std::to_string(j));
      if (!missing.empty())
         fail(missing);
   }
   return RooAbsPdf::compileForNormSet(normSet, ctx);
}
