// Rational-quadratic spline with linear tails (Durkan et al., arXiv:1906.04032),
// with exactly the conventions of nflows' `unconstrained_rational_quadratic_spline`.
#pragma once

#include <cstddef>
#include <vector>

namespace rooml {

struct SplineSpec {
  int num_bins = 8;
  double tail_bound = 3.0;
  double min_bin_width = 1e-3;
  double min_bin_height = 1e-3;
  double min_derivative = 1e-3;
  double scale = 1.0;  // factor applied to the unnormalized widths and heights

  /// Number of network outputs per transformed feature (3K - 1 for linear tails).
  int params_per_feature() const { return 3 * num_bins - 1; }
};

/// Scratch memory for one block of events.
struct SplineScratch {
  std::vector<double> buffer;
  double* get(std::size_t count) {
    if (buffer.size() < count) buffer.resize(count);
    return buffer.data();
  }
};

/// Apply the spline to `n` events of one feature.
///
/// `params[k]` points to the k-th spline parameter row (n events each).  With
/// `inverse == false`, maps x -> y and adds log|dy/dx| to `logdet`; with
/// `inverse == true`, maps y -> x and adds log|dx/dy|.  Inputs outside the tail
/// bound pass through unchanged (identity tails).
void rq_spline(const SplineSpec& spec, const double* const* params, const double* in, double* out,
               double* logdet, std::size_t n, bool inverse, SplineScratch& scratch);

}  // namespace rooml
