// RooCombinedNLL: a sum of negative log-likelihood terms whose gradient and Hessian Minuit gets from the terms.
#ifndef ROOML_ROOCOMBINEDNLL_H
#define ROOML_ROOCOMBINEDNLL_H

#include "RooAnalyticNLL.h"

#include <RooListProxy.h>

#include <cstddef>

/// NLL = sum_t NLL_t + constant, for a likelihood that multiplies independent parts (the channels of a
/// RooSimultaneous, each with its own data).  A term that has an analytic gradient (and Hessian) brings it (a
/// RooNSBINLL: one pass over its events); a term without one (RooFit's NLL of the binned HistFactory channels:
/// microseconds per evaluation) is differentiated numerically, term by term, so a derivative never re-evaluates
/// the expensive unbinned terms.  Terms share parameters by identity (the same RooRealVar objects).
///
/// The terms should not offset themselves: this class subtracts its first value while RooAbsReal::hideOffset() is
/// false (RooFit's Offset("initial")), so Minuit sees differences of the whole sum.
class RooCombinedNLL : public RooAnalyticNLL {
public:
   RooCombinedNLL() = default;
   /// `terms`: NLLs (RooAbsReal) of independent parts; `constant`: added to the sum (parameter-independent terms
   /// of the likelihood that the parts do not hold, e.g. RooSimultaneous's sum_i w_i ln C).
   RooCombinedNLL(const char *name, const char *title, const RooArgList &terms, double constant = 0.0,
                  bool offset = true);
   RooCombinedNLL(const RooCombinedNLL &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooCombinedNLL(*this, newname); }

   const RooArgList &terms() const { return _terms; }
   double constant() const { return _constant; }
   /// Evaluations of terms without analytic derivatives made for numerical derivatives so far (benchmarks).
   std::size_t numericEvaluations() const { return _numericEvaluations; }

protected:
   double absoluteValue() const override;
   void derivatives(bool hessian, double *out) const override;

private:

   RooListProxy _terms;
   double _constant = 0.0;
   mutable std::size_t _numericEvaluations = 0;

   ClassDefOverride(RooCombinedNLL, 1) // Sum of NLL terms with the terms' analytic or numerical derivatives
};

#endif
