// RooNSBINLL: extended NLL of a RooNSBIPdf with analytic gradient and Hessian (see RooNSBINLL.h).
#include "RooNSBINLL.h"

#include <RooAbsData.h>
#include <RooArgSet.h>
#include <RooFit/Detail/NormalizationHelpers.h>
#include <RooFit/Evaluator.h>
#include <RooGaussian.h>
#include <RooMsgService.h>
#include <RooRealVar.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <sstream>
#include <string>

#include "EventInputs.h"
#include "NumericDerivatives.h"
#include "RooNSBIPdf.h"
#include "rooml/error.h"
#include "rooml/flow_model.h"
#include "rooml/interpolation.h"
#include "rooml/nsbi_likelihood.h"

namespace interp = rooml::interp;
namespace nsbi = rooml::nsbi;
using rooml_roofit::Jet1;
using rooml_roofit::numericJet;
using rooml_roofit::numericMixed;

namespace {

/// Values of a per-event input over the dataset (n values, or 1 for an input that depends on no observable).
std::vector<double> valuesOver(const RooAbsReal &input, const RooAbsData &data)
{
   std::unique_ptr<RooAbsReal> compiled = RooFit::Detail::compileForNormSet<RooAbsReal>(input, *data.get());
   RooFit::Evaluator evaluator(*compiled);
   for (auto const &[key, span] : data.getBatches(0, static_cast<std::size_t>(data.numEntries())))
      evaluator.setInput(key->GetName(), span, false);
   std::span<const double> out = evaluator.run();
   return {out.begin(), out.end()};
}

/// Value and first two derivatives of G_j(alpha) = combine(1; G^-, G^+; alpha; codes) (RooNSBIYield's
/// FlexibleInterpVar, floor DBL_MIN), carried through the combination in its order: multiplicative codes
/// v -> v f(alpha_k), additive ones v -> v + Delta(alpha_k).
void normJet(const double *low, const double *high, const int *codes, const std::vector<double> &alpha, double &v,
             double *d1, double *d2)
{
   const std::size_t K = alpha.size();
   v = 1.0;
   std::fill(d1, d1 + K, 0.0);
   std::fill(d2, d2 + K * K, 0.0);
   for (std::size_t k = 0; k < K; ++k) {
      const double f0 = interp::detail::jet(codes[k], low[k], high[k], 1.0, alpha[k], 1.0, 0);
      const double f1 = interp::detail::jet(codes[k], low[k], high[k], 1.0, alpha[k], 1.0, 1);
      const double f2 = interp::detail::jet(codes[k], low[k], high[k], 1.0, alpha[k], 1.0, 2);
      if (interp::is_multiplicative(codes[k])) {
         for (std::size_t a = 0; a < K; ++a)
            for (std::size_t b = 0; b < K; ++b)
               d2[a * K + b] = d2[a * K + b] * f0 + (b == k ? d1[a] * f1 : 0.0) + (a == k ? d1[b] * f1 : 0.0) +
                               (a == k && b == k ? v * f2 : 0.0);
         for (std::size_t a = 0; a < K; ++a)
            d1[a] = d1[a] * f0 + (a == k ? v * f1 : 0.0);
         v *= f0;
      } else {
         v += f0;
         d1[k] += f1;
         d2[k * K + k] += f2;
      }
   }
   if (v <= 0.0) {
      v = DBL_MIN;
      std::fill(d1, d1 + K, 0.0);
      std::fill(d2, d2 + K * K, 0.0);
   }
}

} // namespace

/// The parameters of the last computation and everything the derivatives need.
struct RooNSBINLL::Point {
   std::vector<double> key;           // f_j, alpha_k, constraint inputs
   int order = -1;                    // the pass over the events done (-1: none yet)
   bool secondDerivatives = false;    // lh2 includes the reference sample's second derivatives
   double value = 0.0;                // absolute NLL (NaN when invalid)
   double nu = 0.0;                   // expected events
   std::vector<double> f, alpha, c, h; // J, K, J, J
   std::vector<double> G, G1, G2;      // G_j and its alpha derivatives (J, J * K, J * K * K)
   std::vector<double> lh1, lh2;       // derivatives of log h_j = log(nu_j G_j / N_j) (J * K, J * K * K)
   nsbi::Sums sums;
};

RooNSBINLL::RooNSBINLL(const char *name, const char *title, const RooNSBIPdf &pdf, const RooAbsData &data,
                       const RooArgList &constraints, bool offset)
   : RooAnalyticNLL(name, title, offset),
     _coefs("coefficients", "coefficient functions f_j", this),
     _nps("nps", "nuisance parameters", this),
     _constraintTerms("constraintTerms", "x, mean and sigma of the Gaussian constraints", this),
     _yields(pdf.yields()),
     _normLow(pdf.normLow()),
     _normHigh(pdf.normHigh()),
     _normCodes(pdf.normCodes())
{
   _coefs.add(pdf.coefficients());
   _nps.add(pdf.paramList());
   for (RooAbsArg *arg : constraints) {
      auto *gauss = dynamic_cast<RooGaussian *>(arg);
      if (!gauss)
         fail(std::string("constraint '") + arg->GetName() + "' is a " + arg->ClassName() +
              "; only RooGaussian constraint terms are supported");
      if (!gauss->getSigma().isConstant())
         fail(std::string("constraint '") + arg->GetName() + "' has a floating width; widths must be constant");
      _constraintTerms.add(gauss->getX());
      _constraintTerms.add(gauss->getMean());
      _constraintTerms.add(gauss->getSigma());
   }
   const std::size_t J = _yields.size(), K = _nps.size();
   const std::vector<int> &shapeCodes = pdf.shapeCodes();

   const std::size_t n = static_cast<std::size_t>(data.numEntries());
   std::vector<double> weights;
   if (data.isWeighted()) {
      weights.resize(n);
      for (std::size_t e = 0; e < n; ++e) {
         data.get(static_cast<int>(e));
         weights[e] = data.weight();
      }
   }
   auto column = [&](const RooAbsReal &input, const std::string &what) {
      const std::string missing = rooml_roofit::missingObservable(input, *data.get(), what);
      if (!missing.empty())
         fail(missing);
      std::vector<double> v = valuesOver(input, data);
      if (v.size() == 1 && n != 1)
         v.assign(n, v[0]);
      for (std::size_t e = 0; e < v.size(); ++e) {
         if (!(std::isfinite(v[e]) && v[e] > 0))
            fail("event " + std::to_string(e) + ": " + what + " ('" + input.GetName() + "') is " +
                 interp::detail::num(v[e]) + "; per-event ratios must be finite and > 0");
      }
      return v;
   };
   std::vector<double> ratios;
   ratios.reserve(J * n);
   for (std::size_t j = 0; j < J; ++j) {
      const auto &r = static_cast<const RooAbsReal &>(pdf.ratios()[j]);
      const std::vector<double> v = column(r, "per-event ratio r_" + std::to_string(j));
      ratios.insert(ratios.end(), v.begin(), v.end());
   }
   auto events = std::make_shared<nsbi::EventTable>(n, J, K, std::move(weights), std::move(ratios));
   for (std::size_t j = 0; j < J; ++j) {
      for (std::size_t k = 0; k < K; ++k) {
         const auto &lo = static_cast<const RooAbsReal &>(pdf.shapeLowList()[j * K + k]);
         const auto &hi = static_cast<const RooAbsReal &>(pdf.shapeHighList()[j * K + k]);
         const std::unique_ptr<RooArgSet> vl{lo.getVariables()}, vh{hi.getVariables()};
         if (vl->empty() && vh->empty() && lo.getVal() == 1.0 && hi.getVal() == 1.0)
            continue; // no shape effect
         const std::string what = "shape ratio of process " + std::to_string(j) + " for parameter '" +
                                  _nps[k].GetName() + "'";
         try {
            events->addShape(j, k, shapeCodes[j * K + k], column(lo, "-1 sigma " + what),
                             column(hi, "+1 sigma " + what));
         } catch (const rooml::Error &e) {
            fail(std::string(e.what()) + " (" + what + ")");
         }
      }
   }
   events->pack(rooml::default_threads());
   _events = events;

   if (pdf.shapeNormalized()) {
      const std::size_t m = pdf.referenceWeights().size();
      auto ref = std::make_shared<nsbi::EventTable>(m, J, K, pdf.referenceWeights(), pdf.referenceRatios());
      for (std::size_t jk = 0; jk < J * K; ++jk) {
         const double *lo = pdf.referenceShapeLow().data() + jk * m, *hi = pdf.referenceShapeHigh().data() + jk * m;
         if (std::all_of(lo, lo + m, [](double x) { return x == 1.0; }) &&
             std::all_of(hi, hi + m, [](double x) { return x == 1.0; }))
            continue;
         try {
            ref->addShape(jk / K, jk % K, shapeCodes[jk], std::vector<double>(lo, lo + m),
                          std::vector<double>(hi, hi + m));
         } catch (const rooml::Error &e) {
            fail(std::string(e.what()) + " (reference sample)");
         }
      }
      ref->pack(rooml::default_threads());
      _reference = ref;
   }
}

RooNSBINLL::RooNSBINLL(const RooNSBINLL &other, const char *name)
   : RooAnalyticNLL(other, name),
     _coefs("coefficients", this, other._coefs),
     _nps("nps", this, other._nps),
     _constraintTerms("constraintTerms", this, other._constraintTerms),
     _yields(other._yields),
     _normLow(other._normLow),
     _normHigh(other._normHigh),
     _normCodes(other._normCodes),
     _events(other._events),
     _reference(other._reference)
{
}

RooNSBINLL::~RooNSBINLL() = default;

void RooNSBINLL::fail(const std::string &message) const
{
   const std::string full = "RooNSBINLL '" + std::string(GetName()) + "': " + message;
   coutE(InputArguments) << full << std::endl;
   throw rooml::Error(full);
}

std::size_t RooNSBINLL::numEvents() const
{
   return _events ? _events->n : 0;
}

void RooNSBINLL::compute(int order) const
{
   const std::size_t J = _yields.size(), K = _nps.size();
   std::vector<double> key = rooml_roofit::valuesOf(_coefs);
   const std::vector<double> alpha = rooml_roofit::valuesOf(_nps), cons = rooml_roofit::valuesOf(_constraintTerms);
   key.insert(key.end(), alpha.begin(), alpha.end());
   key.insert(key.end(), cons.begin(), cons.end());
   if (_last && _last->order >= order && _last->key == key)
      return;
   if (order == 2 && _last && _last->key == key && _last->secondDerivatives)
      return; // the coefficients' second derivatives are there; derivatives() runs the Hessian pass
   auto pt = std::make_shared<Point>();
   Point &p = *pt;
   p.key = key;
   p.order = -1; // set by finish(): no value and sums before the pass over the events
   p.secondDerivatives = order == 2;
   p.f.assign(key.begin(), key.begin() + J);
   p.alpha = alpha;
   p.G.assign(J, 1.0);
   p.G1.assign(J * K, 0.0);
   p.G2.assign(J * K * K, 0.0);
   for (std::size_t j = 0; j < J; ++j)
      normJet(_normLow.data() + j * K, _normHigh.data() + j * K, _normCodes.data() + j * K, alpha, p.G[j],
              p.G1.data() + j * K, p.G2.data() + j * K * K);
   // log h_j = log nu_j + log G_j - log N_j
   p.lh1.assign(J * K, 0.0);
   p.lh2.assign(J * K * K, 0.0);
   std::vector<double> N(J, 1.0);
   if (_reference) {
      const nsbi::Sums ref = nsbi::accumulate(*_reference, alpha.data(), nullptr, static_cast<nsbi::Order>(order),
                                              nullptr, rooml::default_threads());
      for (std::size_t j = 0; j < J; ++j)
         N[j] = ref.B[j] / _reference->ratioSums[j]; // over the shape-free integral
      const auto &shapes = _reference->shapes;
      for (std::size_t s = 0; s < shapes.size() && order >= 1; ++s) {
         const std::size_t j = shapes[s].process, k = shapes[s].parameter;
         p.lh1[j * K + k] -= ref.D[s] / ref.B[j];
         if (order < 2)
            continue;
         for (std::size_t t = 0; t < shapes.size(); ++t) {
            if (shapes[t].process != j)
               continue;
            const std::size_t l = shapes[t].parameter;
            const double second = (ref.E[s * shapes.size() + t] + (s == t ? ref.F[s] : 0.0)) / ref.B[j];
            p.lh2[(j * K + k) * K + l] -= second - ref.D[s] * ref.D[t] / (ref.B[j] * ref.B[j]);
         }
      }
   }
   double nu = 0.0;
   p.h.assign(J, 0.0);
   p.c.assign(J, 0.0);
   for (std::size_t j = 0; j < J; ++j) {
      nu += p.f[j] * _yields[j] * p.G[j];
      p.h[j] = _yields[j] * p.G[j] / N[j];
      p.c[j] = p.f[j] * p.h[j];
      for (std::size_t k = 0; k < K; ++k) {
         const double g1 = p.G1[j * K + k] / p.G[j];
         p.lh1[j * K + k] += g1;
         for (std::size_t l = 0; l < K; ++l)
            p.lh2[(j * K + k) * K + l] += p.G2[(j * K + k) * K + l] / p.G[j] - g1 * p.G1[j * K + l] / p.G[j];
      }
   }
   p.nu = nu;
   _last = pt;
   if (order < 2) // the Hessian's pass (derivatives()) needs the coefficients' derivatives first
      finish(order >= 1 ? nsbi::Order::Gradient : nsbi::Order::Value, nullptr);
}

void RooNSBINLL::finish(rooml::nsbi::Order order, const rooml::nsbi::Directions *dirs) const
{
   Point &p = *_last;
   const double *cons = p.key.data() + _yields.size() + _nps.size(); // x, mean, sigma per constraint
   p.sums = nsbi::accumulate(*_events, p.alpha.data(), p.c.data(), order, dirs, rooml::default_threads());
   p.order = static_cast<int>(order);
   ++_passes;
   const double nu = p.nu;
   double constraint = 0.0;
   for (std::size_t i = 0; i + 2 < _constraintTerms.size(); i += 3) {
      const double z = (cons[i] - cons[i + 1]) / cons[i + 2];
      constraint += 0.5 * z * z + std::log(cons[i + 2]) + 0.5 * std::log(2 * M_PI);
   }
   p.value = nu - p.sums.logSum + constraint;
   if (!(std::isfinite(nu) && nu > 0)) {
      logEvalError(("expected events nu(mu, alpha) = " + interp::detail::num(nu) + " is not positive").c_str());
      p.value = std::numeric_limits<double>::quiet_NaN();
   } else if (p.sums.bad > 0) {
      std::ostringstream msg;
      msg << "mixture p(x|mu,alpha)/p_ref(x) is not positive for " << p.sums.bad << " of " << _events->n
          << " events (first: event " << p.sums.firstBad << ", value " << interp::detail::num(p.sums.firstBadValue)
          << ")";
      logEvalError(msg.str().c_str());
      p.value = std::numeric_limits<double>::quiet_NaN();
   }
}

double RooNSBINLL::absoluteValue() const
{
   // With the gradient's sums (about 10% more than the value alone): Minuit asks for the gradient at the point a
   // line search ends on, which then costs nothing.
   compute(1);
   return _last->value;
}

void RooNSBINLL::derivatives(bool wantHessian, double *out) const
{
   RooArgSet params;
   getParameters(nullptr, params);
   const std::size_t nAll = params.size();
   std::fill(out, out + (wantHessian ? nAll * nAll : nAll), 0.0);
   // the floating parameters and what depends on them
   std::vector<RooRealVar *> var;
   std::vector<std::size_t> slot;
   std::size_t i = 0;
   for (RooAbsArg *arg : params) {
      auto *v = dynamic_cast<RooRealVar *>(arg);
      if (v && !v->isConstant()) {
         var.push_back(v);
         slot.push_back(i);
      }
      ++i;
   }
   const std::size_t P = var.size(), J = _yields.size(), K = _nps.size();
   // f_j derivatives (numerical; exact for f_j = p)
   std::vector<double> f1(P * J, 0.0), f2(wantHessian ? P * P * J : 0, 0.0);
   std::vector<long> kOf(P, -1);
   for (std::size_t a = 0; a < P; ++a) {
      const int idx = _nps.index(var[a]);
      kOf[a] = idx;
      for (std::size_t j = 0; j < J; ++j) {
         const auto &fj = static_cast<const RooAbsReal &>(_coefs[j]);
         if (&fj == var[a]) {
            f1[a * J + j] = 1.0;
            continue;
         }
         if (!fj.dependsOn(*var[a]))
            continue;
         const Jet1 jet = numericJet(fj, *var[a]);
         f1[a * J + j] = jet.d1;
         if (wantHessian)
            f2[(a * P + a) * J + j] = jet.d2;
      }
   }
   if (wantHessian) {
      for (std::size_t a = 0; a < P; ++a)
         for (std::size_t b = a + 1; b < P; ++b)
            for (std::size_t j = 0; j < J; ++j) {
               const auto &fj = static_cast<const RooAbsReal &>(_coefs[j]);
               if (&fj == var[a] || &fj == var[b] || !fj.dependsOn(*var[a]) || !fj.dependsOn(*var[b]))
                  continue;
               f2[(a * P + b) * J + j] = f2[(b * P + a) * J + j] = numericMixed(fj, *var[a], *var[b]);
            }
   }
   compute(wantHessian ? 2 : 1);
   Point &p = *_last;
   // dc_aj = f_j,a h_j + f_j h_j lh1_j,k(a)
   std::vector<double> dc(P * J, 0.0);
   for (std::size_t a = 0; a < P; ++a)
      for (std::size_t j = 0; j < J; ++j)
         dc[a * J + j] = f1[a * J + j] * p.h[j] + (kOf[a] >= 0 ? p.c[j] * p.lh1[j * K + kOf[a]] : 0.0);
   if (wantHessian) {
      nsbi::Directions dirs;
      dirs.P = P;
      dirs.dc = dc;
      dirs.k = kOf;
      finish(nsbi::Order::Hessian, &dirs);
   }
   const nsbi::Sums &s = p.sums;
   const auto &shapes = _events->shapes;
   const std::size_t NS = shapes.size();
   auto Gk = [&](std::size_t j, long k) { return k < 0 ? 0.0 : p.G1[j * K + k]; };
   auto constraintD = [&](const RooRealVar *v, const RooRealVar *w) {
      // d/dv (and d/dw) of sum 0.5 ((x - m)/sigma)^2
      double d1 = 0.0, d2 = 0.0;
      for (std::size_t c = 0; c + 2 < _constraintTerms.size(); c += 3) {
         const auto &x = static_cast<const RooAbsReal &>(_constraintTerms[c]);
         const auto &m = static_cast<const RooAbsReal &>(_constraintTerms[c + 1]);
         const double sigma = static_cast<const RooAbsReal &>(_constraintTerms[c + 2]).getVal();
         const double sv = &x == v ? 1.0 : (&m == v ? -1.0 : 0.0);
         if (sv == 0.0)
            continue;
         d1 += sv * (x.getVal() - m.getVal()) / (sigma * sigma);
         const double sw = &x == w ? 1.0 : (&m == w ? -1.0 : 0.0);
         d2 += sv * sw / (sigma * sigma);
      }
      return std::make_pair(d1, d2);
   };
   for (std::size_t a = 0; a < P; ++a) {
      double g = 0.0;
      for (std::size_t j = 0; j < J; ++j) {
         g += _yields[j] * (f1[a * J + j] * p.G[j] + p.f[j] * Gk(j, kOf[a]));
         g -= dc[a * J + j] * s.B[j];
      }
      for (std::size_t t = 0; t < NS && kOf[a] >= 0; ++t)
         if (static_cast<long>(shapes[t].parameter) == kOf[a])
            g -= p.c[shapes[t].process] * s.D[t];
      g += constraintD(var[a], nullptr).first;
      if (!wantHessian)
         out[slot[a]] = g;
   }
   if (!wantHessian)
      return;
   for (std::size_t a = 0; a < P; ++a) {
      for (std::size_t b = a; b < P; ++b) {
         const long ka = kOf[a], kb = kOf[b];
         double H = 0.0;
         for (std::size_t j = 0; j < J; ++j) {
            const double G2 = (ka >= 0 && kb >= 0) ? p.G2[(j * K + ka) * K + kb] : 0.0;
            H += _yields[j] * (f2[(a * P + b) * J + j] * p.G[j] + f1[a * J + j] * Gk(j, kb) +
                               f1[b * J + j] * Gk(j, ka) + p.f[j] * G2);
            // d2c = f,ab h + f,a h,b + f,b h,a + f h,ab with h,a = h lh1_a, h,ab = h (lh1_a lh1_b + lh2_ab)
            const double la = ka >= 0 ? p.lh1[j * K + ka] : 0.0, lb = kb >= 0 ? p.lh1[j * K + kb] : 0.0;
            const double l2 = (ka >= 0 && kb >= 0) ? p.lh2[(j * K + ka) * K + kb] : 0.0;
            const double d2c = p.h[j] * (f2[(a * P + b) * J + j] + f1[a * J + j] * lb + f1[b * J + j] * la +
                                         p.f[j] * (la * lb + l2));
            H -= d2c * s.B[j];
         }
         for (std::size_t t = 0; t < NS; ++t) {
            const std::size_t j = shapes[t].process;
            const long k = static_cast<long>(shapes[t].parameter);
            if (k == kb)
               H -= dc[a * J + j] * s.D[t];
            if (k == ka)
               H -= dc[b * J + j] * s.D[t];
            if (k != ka)
               continue;
            for (std::size_t u = 0; u < NS; ++u) {
               if (shapes[u].process != j || static_cast<long>(shapes[u].parameter) != kb)
                  continue;
               H -= p.c[j] * (s.E[t * NS + u] + (t == u ? s.F[t] : 0.0));
            }
         }
         H += s.TT[a * P + b];
         H += constraintD(var[a], var[b]).second;
         out[slot[a] * nAll + slot[b]] = H;
         out[slot[b] * nAll + slot[a]] = H;
      }
   }
}
