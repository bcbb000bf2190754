// RooNSBINLL: the extended negative log-likelihood of a RooNSBIPdf on one dataset, with analytic gradient and
// Hessian for Minuit.
#ifndef ROOML_ROONSBINLL_H
#define ROOML_ROONSBINLL_H

#include "RooAnalyticNLL.h"

#include <RooListProxy.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

class RooAbsData;
class RooNSBIPdf;
namespace rooml::nsbi {
struct EventTable;
struct Directions;
enum class Order;
}

/// NLL(mu, alpha) = nu(mu, alpha) - sum_e w_e log S_e(mu, alpha) + sum_k constraint_k, with
///   S_e = sum_j c_j r_j(x_e) g_j(x_e, alpha),  c_j = f_j nu_j G_j(alpha) / N_j(alpha)
/// (the notation of RooNSBIPdf).  This is RooFit's extended NLL of RooNSBIPdf x Gaussian constraints,
///   -sum_e w_e log(S_e / nu) + nu - (sum_e w_e) log nu - sum_k log Gauss_k,
/// with the log nu terms cancelled.
///
/// The per-event inputs r_j, g_jk^-+ are evaluated once, at construction, over the dataset; every call then runs
/// one pass over the stored columns (see rooml/nsbi_likelihood.h).  The gradient (hasGradient) and Hessian
/// (hasHessian) are analytic in the nuisance parameters and in the per-event sums; the coefficient functions f_j
/// (any RooAbsReal) are differentiated numerically (central differences: they are cheap scalars).  RooMinimizer
/// uses both (Config::useGradient, Config::useHessian): a 1e6-event fit then needs tens of passes, not hundreds.
///
/// Supported: multiplicative shape codes (1, 5, 6, 100; 5 vectorized), any normalization codes, constraint terms
/// that are RooGaussians with constant widths.  The constructor refuses anything else (rooml::Error), and per-event
/// ratios that are not finite and > 0 (naming process, parameter and event).
class RooNSBINLL : public RooAnalyticNLL {
public:
   RooNSBINLL() = default;
   /// `constraints`: RooGaussian terms (x, mean, sigma); `offset`: subtract the first evaluation's value while
   /// RooAbsReal::hideOffset() is false (what RooMinimizer sees), as RooFit's Offset("initial").
   RooNSBINLL(const char *name, const char *title, const RooNSBIPdf &pdf, const RooAbsData &data,
              const RooArgList &constraints, bool offset = true);
   RooNSBINLL(const RooNSBINLL &other, const char *name = nullptr);
   ~RooNSBINLL() override;
   TObject *clone(const char *newname = nullptr) const override { return new RooNSBINLL(*this, newname); }

   std::size_t numEvents() const;
   /// Passes over the events so far (value, gradient, Hessian), for benchmarks.
   std::size_t passes() const { return _passes; }

protected:
   double absoluteValue() const override;
   void derivatives(bool hessian, double *out) const override;

private:
   struct Point;
   /// Value, and derivative sums up to `order` (0 value, 1 gradient, 2 Hessian) at the current parameters.
   void compute(int order) const;
   /// The pass over the events at the computed point (value and sums up to `order`).
   void finish(rooml::nsbi::Order order, const rooml::nsbi::Directions *dirs) const;
   [[noreturn]] void fail(const std::string &message) const;

   RooListProxy _coefs;
   RooListProxy _nps;
   RooListProxy _constraintTerms; // x, mean, sigma of each Gaussian constraint
   std::vector<double> _yields, _normLow, _normHigh;
   std::vector<int> _normCodes;
   std::shared_ptr<const rooml::nsbi::EventTable> _events;    //! per-event columns of the dataset
   std::shared_ptr<const rooml::nsbi::EventTable> _reference; //! reference sample (shape normalization), or null
   mutable std::shared_ptr<Point> _last; //! the last computed point and its sums
   mutable std::size_t _passes = 0;

   ClassDefOverride(RooNSBINLL, 0) // NSBI negative log-likelihood with analytic gradient and Hessian
};

#endif
