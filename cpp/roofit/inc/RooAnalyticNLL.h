// RooAnalyticNLL: base of rooml's negative log-likelihoods that give Minuit an analytic gradient and Hessian.
#ifndef ROOML_ROOANALYTICNLL_H
#define ROOML_ROOANALYTICNLL_H

#include <RooAbsReal.h>

/// What RooNSBINLL and RooCombinedNLL share: RooMinimizer's interface (error level 0.5, hasGradient, hasHessian)
/// and offsetting as RooFit's Offset("initial"): with `offset`, the first finite value is subtracted while
/// RooAbsReal::hideOffset() is false (inside RooMinimizer), so Minuit sees differences.  A derived class gives
/// the un-offset value (absoluteValue) and the derivatives over getParameters(nullptr) (derivatives).
class RooAnalyticNLL : public RooAbsReal {
public:
   RooAnalyticNLL() = default;
   RooAnalyticNLL(const char *name, const char *title, bool offset) : RooAbsReal(name, title), _offsetting(offset) {}
   RooAnalyticNLL(const RooAnalyticNLL &other, const char *name = nullptr);

   double getValV(const RooArgSet *nset = nullptr) const override;
   double defaultErrorLevel() const override { return 0.5; }
   void enableOffsetting(bool flag) override;
   bool isOffsetting() const override { return _offsetting; }
   double offset() const override { return _offsetting ? _offset : 0.0; }

   bool hasGradient() const override { return true; }
   bool hasHessian() const override { return true; }
   /// d NLL / d p for every parameter of getParameters(nullptr) (RooMinimizer's order; 0 for constant ones).
   void gradient(double *out) const override { derivatives(false, out); }
   /// The n x n matrix of second derivatives over the same parameters (row-major).
   void hessian(double *out) const override { derivatives(true, out); }

protected:
   double evaluate() const override { return getValV(nullptr); }
   /// The NLL without offset at the current parameter values.
   virtual double absoluteValue() const = 0;
   /// The gradient (`hessian` false) or Hessian into `out`, as gradient() and hessian() document.
   virtual void derivatives(bool hessian, double *out) const = 0;

private:
   bool _offsetting = false;
   mutable bool _offsetSet = false;
   mutable double _offset = 0.0;

   ClassDefOverride(RooAnalyticNLL, 1) // NLL with analytic gradient and Hessian for RooMinimizer
};

#endif
