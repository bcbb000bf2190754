// Numerical derivatives of RooFit functions with respect to their parameters (internal, not in the dictionary).
#ifndef ROOML_ROOFIT_NUMERICDERIVATIVES_H
#define ROOML_ROOFIT_NUMERICDERIVATIVES_H

#include <RooAbsReal.h>
#include <RooRealVar.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace rooml_roofit {

/// Numerical derivatives of a scalar function of one parameter: 5-point central stencils (errors ~h^4), moved to
/// one-sided 3-point ones near the parameter's limits.
struct Jet1 {
   double d1 = 0.0, d2 = 0.0;
};

inline Jet1 numericJet(const RooAbsReal &f, RooRealVar &p)
{
   const double x = p.getVal(), f0 = f.getVal();
   double h = 1e-3 * std::max(1.0, std::fabs(x));
   auto at = [&](double v) {
      p.setVal(v);
      return f.getVal();
   };
   Jet1 out;
   const double lo = p.getMin(), hi = p.getMax();
   if (x - 2 * h >= lo && x + 2 * h <= hi) {
      const double m2 = at(x - 2 * h), m1 = at(x - h), p1 = at(x + h), p2 = at(x + 2 * h);
      out.d1 = (m2 - 8 * m1 + 8 * p1 - p2) / (12 * h);
      out.d2 = (-m2 + 16 * m1 - 30 * f0 + 16 * p1 - p2) / (12 * h * h);
   } else {
      h = std::min(h, 0.25 * std::max(hi - lo, 0.0));
      const double s = (x - lo < hi - x) ? 1.0 : -1.0; // step into the range
      const double f1 = at(x + s * h), f2 = at(x + 2 * s * h);
      out.d1 = s * (-3 * f0 + 4 * f1 - f2) / (2 * h);
      out.d2 = (f0 - 2 * f1 + f2) / (h * h);
   }
   p.setVal(x);
   return out;
}

/// The two points (x_minus, x_plus) of a difference quotient at x: central, or one-sided at the parameter's limits.
inline std::pair<double, double> differencePoints(const RooRealVar &p, double h)
{
   const double x = p.getVal(), lo = p.getMin(), hi = p.getMax();
   h = std::min(h, 0.5 * std::max(hi - lo, 0.0));
   if (x - h < lo)
      return {x, x + h};
   if (x + h > hi)
      return {x - h, x};
   return {x - h, x + h};
}

/// d^2 f / dp dq from 4 points: central differences, one-sided in a parameter at its limits.
inline double numericMixed(const RooAbsReal &f, RooRealVar &p, RooRealVar &q)
{
   const double x = p.getVal(), y = q.getVal();
   const auto [xm, xp] = differencePoints(p, 1e-4 * std::max(1.0, std::fabs(x)));
   const auto [ym, yp] = differencePoints(q, 1e-4 * std::max(1.0, std::fabs(y)));
   auto at = [&](double a, double b) {
      p.setVal(a);
      q.setVal(b);
      return f.getVal();
   };
   const double v = (at(xp, yp) - at(xp, ym) - at(xm, yp) + at(xm, ym)) / ((xp - xm) * (yp - ym));
   p.setVal(x);
   q.setVal(y);
   return v;
}

} // namespace rooml_roofit

#endif
