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

/// Column caches hold at most this many doubles (1 GiB); beyond it every call recomputes (no cache).
constexpr std::size_t kMaxCachedDoubles = std::size_t(1) << 27;

std::uint64_t bitsOf(double v)
{
   std::uint64_t bits;
   std::memcpy(&bits, &v, sizeof bits);
   return bits;
}

/// One pass over a per-event input: a position-sensitive checksum (Fletcher sums of the bit patterns in eight
/// independent lanes, folded) with the input's size, and whether every value is finite and > 0 (branch-free: a
/// positive finite double has bits in [1, 0x7FEFFFFFFFFFFFFF]).  Equal keys mean unchanged values, so columns
/// computed from them can be reused.
struct InputScan {
   std::uint64_t key[3];
   bool positiveFinite;
};

InputScan scanInput(std::span<const double> s)
{
   constexpr std::size_t L = 8;
   std::uint64_t a[L] = {}, b[L] = {}, bad[L] = {};
   const std::size_t n = s.size(), nBody = n - n % L;
   for (std::size_t e = 0; e < nBody; e += L) {
      for (std::size_t l = 0; l < L; ++l) {
         const std::uint64_t bits = bitsOf(s[e + l]);
         a[l] += bits;
         b[l] += a[l];
         bad[l] |= static_cast<std::uint64_t>(bits - 1 >= 0x7FEFFFFFFFFFFFFFULL);
      }
   }
   for (std::size_t e = nBody; e < n; ++e) {
      const std::uint64_t bits = bitsOf(s[e]);
      a[0] += bits;
      b[0] += a[0];
      bad[0] |= static_cast<std::uint64_t>(bits - 1 >= 0x7FEFFFFFFFFFFFFFULL);
   }
   InputScan out{{0, 0, n}, true};
   for (std::size_t l = 0; l < L; ++l) {
      out.key[0] = out.key[0] * 0x9E3779B97F4A7C15ULL + a[l];
      out.key[1] = out.key[1] * 0xC2B2AE3D27D4EB4FULL + b[l];
      out.positiveFinite = out.positiveFinite && bad[l] == 0;
   }
   return out;
}

/// The one parameter whose value differs (bitwise) from the previous call's, or -1 (none, several, or no
/// previous call): Minuit's numerical gradient moves one parameter at a time.
long singleChange(const std::vector<double> &previous, const std::vector<double> &alpha)
{
   if (previous.size() != alpha.size())
      return -1;
   long changed = -1;
   for (std::size_t k = 0; k < alpha.size(); ++k) {
      if (bitsOf(previous[k]) != bitsOf(alpha[k])) {
         if (changed >= 0)
            return -1;
         changed = static_cast<long>(k);
      }
   }
   return changed;
}

/// Cached factor columns, two slots per (process, parameter) `jk`: slot 0 holds the base value of alpha_k, slot 1
/// the trial values of a gradient step in alpha_k alone (`trial`), so that the base survives the gradient's
/// +-h evaluations.  Returns the column for the alpha bits `key` and sets `compute` when it is not cached (the
/// caller fills it; it is then marked as cached).
double *cachedColumn(std::vector<double> &columns, std::vector<std::uint64_t> &keys, std::vector<unsigned char> &ok,
                     std::size_t jk, std::size_t n, std::uint64_t key, bool trial, bool &compute)
{
   for (std::size_t slot = 2 * jk; slot < 2 * jk + 2; ++slot) {
      if (ok[slot] && keys[slot] == key) {
         compute = false;
         return columns.data() + slot * n;
      }
   }
   const std::size_t slot = 2 * jk + (trial ? 1 : 0);
   ok[slot] = 1;
   keys[slot] = key;
   compute = true;
   return columns.data() + slot * n;
}

/// Whether the running product stored for position `pos` was built from the same predecessor and the same cached
/// column (slot of `column` in `columns`, alpha bits `key`); if not, records the new source (the caller rebuilds).
bool prefixValid(std::vector<std::uint64_t> &src, std::size_t pos, const std::vector<double> &columns,
                 const double *column, std::size_t n, std::uint64_t key, bool previousValid, bool computed)
{
   const std::uint64_t slot = static_cast<std::uint64_t>(column - columns.data()) / n + 1;
   if (previousValid && !computed && src[2 * pos] == slot && src[2 * pos + 1] == key)
      return true;
   src[2 * pos] = slot;
   src[2 * pos + 1] = key;
   return false;
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
   normFactors(_normLow, _normHigh, _normCodes, rooml_roofit::valuesOf(_nps), _yields.size(), G);
   return G.at(j);
}

double RooNSBIYield::evaluate() const
{
   std::vector<double> G;
   normFactors(_normLow, _normHigh, _normCodes, rooml_roofit::valuesOf(_nps), _yields.size(), G);
   const std::vector<double> f = rooml_roofit::valuesOf(_coefs);
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
   _refColumns.clear();
   _refColOk.clear();
   _refPrefixSrc.clear();
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
      std::vector<double> g(n), column;
      std::vector<const double *> lo(K), hi(K);
      const std::vector<double> ones(n, 1.0);
      const bool cached = 3 * J * K * n <= kMaxCachedDoubles;
      if (cached && _refColOk.size() != 2 * J * K) {
         _refColumns.assign(2 * J * K * n, 0.0);
         _refColKey.assign(2 * J * K, 0);
         _refColOk.assign(2 * J * K, 0);
         _refPrefix.assign(J * K * n, 0.0);
         _refPrefixSrc.assign(2 * J * K, 0);
      }
      const long moved = _cacheN.empty() ? -1 : singleChange(_cacheAlpha, alpha);
      if (!cached)
         column.resize(n);
      for (std::size_t j = 0; j < J; ++j) {
         bool allCode5 = true;
         for (std::size_t k = 0; k < K; ++k)
            allCode5 = allCode5 && _shapeCodes[j * K + k] == interp::kPoly6Exp;
         const double *gj = g.data();
         if (allCode5) {
            std::fill(g.begin(), g.end(), 1.0);
            bool prefixOk = true;
            for (std::size_t k = 0; k < K; ++k) {
               const std::size_t jk = j * K + k;
               const double a = alpha[k];
               bool compute = true;
               double *col = cached ? cachedColumn(_refColumns, _refColKey, _refColOk, jk, n, bitsOf(a),
                                                   moved == static_cast<long>(k), compute)
                                    : column.data();
               if (compute) {
                  if (a >= 1.0) {
                     for (std::size_t s = 0; s < n; ++s)
                        col[s] = std::pow(_refShapeHigh[jk * n + s], a);
                  } else if (a <= -1.0) {
                     for (std::size_t s = 0; s < n; ++s)
                        col[s] = std::pow(_refShapeLow[jk * n + s], -a);
                  } else {
                     const double *c = _refPoly.data() + jk * n * 7;
                     interp::detail::Poly6 p;
                     for (std::size_t s = 0; s < n; ++s, c += 7) {
                        std::copy(c, c + 7, p.c);
                        col[s] = p.value(a);
                     }
                  }
               }
               if (cached) {
                  // g after parameter k, from g after k - 1 (1 before the first), as the uncached loop below
                  double *pre = _refPrefix.data() + jk * n;
                  prefixOk = prefixValid(_refPrefixSrc, jk, _refColumns, col, n, bitsOf(a), prefixOk, compute);
                  if (!prefixOk) {
                     if (k == 0) {
                        for (std::size_t s = 0; s < n; ++s)
                           pre[s] = 1.0 * col[s];
                     } else {
                        const double *prev = pre - n;
                        for (std::size_t s = 0; s < n; ++s)
                           pre[s] = prev[s] * col[s];
                     }
                  }
                  gj = pre;
                  continue;
               }
               for (std::size_t s = 0; s < n; ++s)
                  g[s] *= col[s];
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
            num += _refWeights[s] * r[s] * gj[s];
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
   return shapeNormalizationAt(rooml_roofit::valuesOf(_nps)).at(j);
}

double RooNSBIPdf::normFactor(std::size_t j) const
{
   std::vector<double> G;
   normFactors(_normLow, _normHigh, _normCodes, rooml_roofit::valuesOf(_nps), _yields.size(), G);
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
   normFactors(_normLow, _normHigh, _normCodes, rooml_roofit::valuesOf(_nps), J, G);
   const std::vector<double> f = rooml_roofit::valuesOf(_coefs);
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
   const std::vector<double> f = rooml_roofit::valuesOf(_coefs), alpha = rooml_roofit::valuesOf(_nps);
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
   // One pass per input checks it and returns its checksum key (see scanInput).
   auto checkSpan = [&](std::span<const double> s, std::size_t j, long k, int side) {
      const InputScan scan = scanInput(s);
      if (!scan.positiveFinite) {
         for (std::size_t e = 0; e < s.size(); ++e) {
            if (!(std::isfinite(s[e]) && s[e] > 0))
               checkRatio(s[e], j, k, side, s.size() == 1 ? -1 : static_cast<long>(e));
         }
      }
      return scan;
   };
   // Cached columns f_jk - 1 (code 5, |alpha_k| < 1), keyed by alpha_k's bits and the checksums of g_jk^-+.
   const bool cached = n > 0 && 3 * J * K * n <= kMaxCachedDoubles;
   if (cached && (_evColOk.size() != 2 * J * K || _evColumns.size() != 2 * J * K * n)) {
      _evColumns.assign(2 * J * K * n, 0.0);
      _evPrefix.assign(J * K * n, 0.0);
      _evPrefixSrc.assign(2 * J * K, 0);
      _evColKey.assign(2 * J * K, 0);
      _evColOk.assign(2 * J * K, 0);
      _evInputKey.assign(J * K * 6, 0);
      _evPrevAlpha.clear();
   }
   const long moved = singleChange(_evPrevAlpha, alpha);
   _evPrevAlpha = alpha;
   auto noteInput = [&](const InputScan &scan, std::size_t jk, int side) {
      if (!cached)
         return;
      std::uint64_t *stored = _evInputKey.data() + jk * 6 + (side < 0 ? 0 : 3);
      if (!std::equal(scan.key, scan.key + 3, stored)) {
         _evColOk[2 * jk] = _evColOk[2 * jk + 1] = 0;
         std::copy(scan.key, scan.key + 3, stored);
      }
   };
   std::vector<double> ones, g, fm1;
   std::vector<const double *> lo, hi;
   std::vector<double> a;
   std::vector<int> codes;
   std::vector<std::size_t> ks;
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
      ks.clear();
      for (std::size_t k = 0; k < K; ++k) {
         std::span<const double> ls = ctx.at(&_shapeLow[j * K + k]);
         std::span<const double> hs = ctx.at(&_shapeHigh[j * K + k]);
         if (ls.size() == 1 && hs.size() == 1 && ls[0] == 1.0 && hs[0] == 1.0)
            continue; // no shape effect: the factor is exactly 1 for every code
         noteInput(checkSpan(ls, j, long(k), -1), j * K + k, -1);
         noteInput(checkSpan(hs, j, long(k), +1), j * K + k, +1);
         ks.push_back(k);
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
      const double *gj = nullptr;
      if (fast && cached) {
         // g after the i-th factor, from g after the (i - 1)-th (1 before the first), as the uncached loop below
         bool prefixOk = true;
         for (std::size_t i = 0; i < lo.size(); ++i) {
            const std::size_t jk = j * K + ks[i];
            bool compute = true;
            double *col = cachedColumn(_evColumns, _evColKey, _evColOk, jk, n, bitsOf(a[i]),
                                       moved == static_cast<long>(ks[i]), compute);
            if (compute)
               interp::detail::poly6_exp_unit_minus_one(nullptr, lo[i], hi[i], a[i], n, col);
            double *pre = _evPrefix.data() + (j * K + i) * n;
            prefixOk = prefixValid(_evPrefixSrc, j * K + i, _evColumns, col, n, bitsOf(a[i]), prefixOk, compute);
            if (!prefixOk) {
               if (i == 0) {
                  for (std::size_t e = 0; e < n; ++e) {
                     const double g0 = 1.0;
                     pre[e] = g0 + g0 * col[e];
                  }
               } else {
                  const double *prev = pre - n;
                  for (std::size_t e = 0; e < n; ++e)
                     pre[e] = prev[e] + prev[e] * col[e];
               }
            }
            gj = pre;
         }
      } else if (fast) {
         g.assign(n, 1.0);
         fm1.resize(n);
         for (std::size_t k = 0; k < lo.size(); ++k) {
            interp::detail::poly6_exp_unit_minus_one(nullptr, lo[k], hi[k], a[k], n, fm1.data());
            for (std::size_t e = 0; e < n; ++e)
               g[e] += g[e] * fm1[e];
         }
         gj = g.data();
      } else {
         g.assign(n, 1.0);
         if (ones.empty())
            ones.assign(n, 1.0);
         interp::combine_unchecked(ones.data(), lo.data(), hi.data(), a.data(), codes.data(), lo.size(), n,
                                   g.data());
         gj = g.data();
      }
      for (std::size_t e = 0; e < n; ++e)
         out[e] += cj * r[e] * gj[e];
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
