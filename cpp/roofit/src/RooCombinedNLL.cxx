// RooCombinedNLL: sum of NLL terms with the terms' own or numerical derivatives (see RooCombinedNLL.h).
#include "RooCombinedNLL.h"

#include <RooArgSet.h>
#include <RooMsgService.h>
#include <RooRealVar.h>

#include <cmath>
#include <string>
#include <vector>

#include "NumericDerivatives.h"
#include "rooml/error.h"

using rooml_roofit::numericJet;
using rooml_roofit::numericMixed;

namespace {

/// A term's parameters, where each sits in the combined list, and which of them float.
struct TermParameters {
   std::size_t count = 0;           // size of the term's getParameters(nullptr)
   std::vector<std::size_t> slot;   // combined index of each term parameter
   std::vector<RooRealVar *> var;   // floating term parameters ...
   std::vector<std::size_t> local;  // ... their index in the term's list
};

TermParameters termParameters(const RooAbsReal &term, const RooArgSet &combined)
{
   RooArgSet params;
   term.getParameters(nullptr, params);
   TermParameters out;
   out.count = params.size();
   std::size_t i = 0;
   for (RooAbsArg *arg : params) {
      const int at = combined.index(arg->GetName());
      if (at < 0)
         throw rooml::Error(std::string("RooCombinedNLL: parameter '") + arg->GetName() + "' of term '" +
                            term.GetName() + "' is not a parameter of the sum");
      out.slot.push_back(static_cast<std::size_t>(at));
      auto *v = dynamic_cast<RooRealVar *>(arg);
      if (v && !v->isConstant()) {
         out.var.push_back(v);
         out.local.push_back(i);
      }
      ++i;
   }
   return out;
}

/// Hessian of a term that has only a gradient: central differences of the gradient, symmetrized.
void hessianFromGradient(const RooAbsReal &term, const TermParameters &tp, std::vector<double> &local)
{
   const std::size_t n = tp.count;
   std::vector<double> up(n), down(n);
   local.assign(n * n, 0.0);
   for (std::size_t a = 0; a < tp.var.size(); ++a) {
      RooRealVar &p = *tp.var[a];
      const double x = p.getVal(), h = 1e-4 * std::max(1.0, std::fabs(x));
      const double hi = std::min(x + h, p.getMax()), lo = std::max(x - h, p.getMin());
      p.setVal(hi);
      term.gradient(up.data());
      p.setVal(lo);
      term.gradient(down.data());
      p.setVal(x);
      for (std::size_t b = 0; b < n; ++b)
         local[tp.local[a] * n + b] = (up[b] - down[b]) / (hi - lo);
   }
   for (std::size_t a = 0; a < n; ++a)
      for (std::size_t b = a + 1; b < n; ++b)
         local[a * n + b] = local[b * n + a] = 0.5 * (local[a * n + b] + local[b * n + a]);
}

} // namespace

RooCombinedNLL::RooCombinedNLL(const char *name, const char *title, const RooArgList &terms, double constant,
                               bool offset)
   : RooAnalyticNLL(name, title, offset), _terms("terms", "NLL terms", this), _constant(constant)
{
   for (RooAbsArg *arg : terms) {
      if (!dynamic_cast<RooAbsReal *>(arg))
         throw rooml::Error(std::string("RooCombinedNLL '") + GetName() + "': term '" + arg->GetName() +
                            "' is a " + arg->ClassName() + ", not a RooAbsReal");
      _terms.add(*arg);
   }
}

RooCombinedNLL::RooCombinedNLL(const RooCombinedNLL &other, const char *name)
   : RooAnalyticNLL(other, name), _terms("terms", this, other._terms), _constant(other._constant)
{
}

double RooCombinedNLL::absoluteValue() const
{
   double sum = _constant;
   for (RooAbsArg *arg : _terms)
      sum += static_cast<RooAbsReal *>(arg)->getVal();
   return sum;
}

void RooCombinedNLL::derivatives(bool wantHessian, double *out) const
{
   RooArgSet params;
   getParameters(nullptr, params);
   const std::size_t nAll = params.size();
   std::fill(out, out + (wantHessian ? nAll * nAll : nAll), 0.0);
   std::vector<double> local;
   for (RooAbsArg *arg : _terms) {
      const auto &term = static_cast<const RooAbsReal &>(*arg);
      const TermParameters tp = termParameters(term, params);
      const std::size_t n = tp.count, F = tp.var.size();
      if (!wantHessian && term.hasGradient()) {
         local.assign(n, 0.0);
         term.gradient(local.data());
         for (std::size_t i = 0; i < n; ++i)
            out[tp.slot[i]] += local[i];
         continue;
      }
      if (wantHessian && (term.hasHessian() || term.hasGradient())) {
         if (term.hasHessian()) {
            local.assign(n * n, 0.0);
            term.hessian(local.data());
         } else {
            hessianFromGradient(term, tp, local);
         }
         for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j)
               out[tp.slot[i] * nAll + tp.slot[j]] += local[i * n + j];
         continue;
      }
      // numerical: 5-point stencils per floating parameter (4 evaluations), 4 more per pair for the Hessian
      for (std::size_t a = 0; a < F; ++a) {
         const rooml_roofit::Jet1 jet = numericJet(term, *tp.var[a]);
         _numericEvaluations += 5;
         const std::size_t sa = tp.slot[tp.local[a]];
         if (!wantHessian) {
            out[sa] += jet.d1;
            continue;
         }
         out[sa * nAll + sa] += jet.d2;
         for (std::size_t b = a + 1; b < F; ++b) {
            const std::size_t sb = tp.slot[tp.local[b]];
            const double mixed = numericMixed(term, *tp.var[a], *tp.var[b]);
            _numericEvaluations += 4;
            out[sa * nAll + sb] += mixed;
            out[sb * nAll + sa] += mixed;
         }
      }
   }
}
