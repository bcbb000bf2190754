// Per-event sums of the NSBI likelihood and of its first and second derivatives in the nuisance parameters.
//
// For events e with weights w_e, processes j with per-event ratios r_j(e) and shape factors
// g_s(e, alpha_k(s)) (one column s per process and nuisance parameter with a shape effect, multiplicative codes),
//   A_j(e) = r_j(e) prod_{s of j} g_s(e),   S(e) = sum_j c_j A_j(e),
// accumulate() returns, for given coefficients c_j and nuisance parameters alpha,
//   sum_e w log S,  B_j = sum_e w A_j / S,  D_s = sum_e w A_j d_s / S,
//   E_st = sum_e w A_j d_s d_t / S (s, t of the same process),  F_s = sum_e w A_j e_s / S,
//   TT_ab = sum_e w T_a T_b / S^2  with  T_a = sum_j dc_aj A_j + sum_{s: k(s) = k_a} c_j(s) A_j(s) d_s,
// where d_s = d log g_s / d alpha and e_s = d^2 log g_s / d alpha^2.  These are all the event sums the value,
// gradient and Hessian of -sum_e w log S need (RooNSBINLL assembles them).  Without coefficients (a reference
// sample) the factor is w instead of w / S: B_j = sum w A_j, ..., the Monte-Carlo integrals of p_j g_j and their
// derivatives.
//
// Events are cut into blocks of kBlock; every block's sums are stored and added in block order, so the results do
// not depend on the number of threads (bit for bit).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "rooml/error.h"
#include "rooml/interpolation.h"

namespace rooml::nsbi {

/// One process's shape effect of one nuisance parameter (its per-event ratios are packed in EventTable).
struct ShapeColumn {
  std::size_t process = 0;
  std::size_t parameter = 0;
  int code = interp::kPoly6Exp;
};

/// The per-event inputs of one dataset (or reference sample): n events, J processes, K nuisance parameters.
/// Built with the constructor and addShape(), then pack() lays every block of kBlock events out contiguously
/// (weights, r_j, then per shape column g^+, g^-, log g^+, log g^-), so that a pass reads one sequential stream.
struct ROOML_API EventTable {
  std::size_t n = 0, J = 0, K = 0;
  bool weighted = false;
  std::vector<ShapeColumn> shapes;   ///< columns with a shape effect
  std::vector<double> ratioSums;     ///< sum_e w_e r_j(e) per process
  std::vector<double> packed;        ///< blocks of stride() doubles (after pack())

  /// `weights`: n values or empty (all 1); `ratios`: r_j(e), element j * n + e.
  EventTable(std::size_t n_, std::size_t J_, std::size_t K_, std::vector<double> weights, std::vector<double> ratios)
      : n(n_), J(J_), K(K_), weighted(!weights.empty()), pendingWeights(std::move(weights)),
        pendingRatios(std::move(ratios)) {
    if ((weighted && pendingWeights.size() != n) || pendingRatios.size() != J * n)
      throw Error("rooml::nsbi: an event table of " + std::to_string(n) + " events and " + std::to_string(J) +
                  " processes needs n weights (or none) and J * n ratios");
  }

  /// Add a shape column (checked: a multiplicative code, n values per side).
  void addShape(std::size_t j, std::size_t k, int code, std::vector<double> lo, std::vector<double> hi) {
    if (!interp::is_multiplicative(code))
      throw Error("rooml::nsbi: shape code " + std::to_string(code) +
                  " is additive; the NSBI likelihood's derivatives need a multiplicative code (1, 5, 6 or 100)");
    if (lo.size() != n || hi.size() != n)
      throw Error("rooml::nsbi: a shape column needs " + std::to_string(n) + " values per side");
    shapes.push_back({j, k, code});
    pendingLo.push_back(std::move(lo));
    pendingHi.push_back(std::move(hi));
  }

  /// Doubles per block in `packed`.
  std::size_t stride() const;
  /// Lay the inputs out in blocks (see above) and free the column copies.
  void pack(int threads = 1);

 private:
  std::vector<double> pendingWeights, pendingRatios;
  std::vector<std::vector<double>> pendingLo, pendingHi;
};

enum class Order { Value = 0, Gradient = 1, Hessian = 2 };

/// Directions of the Hessian's outer-product term: T_a = sum_j dc[a * J + j] A_j + (alpha derivative of
/// parameter k[a], -1 for none).
struct Directions {
  std::size_t P = 0;
  std::vector<double> dc;
  std::vector<long> k;
};

/// The event sums (see the file comment).  E is S x S over shape columns (0 across processes), TT is P x P.
struct Sums {
  double logSum = 0.0;
  std::size_t bad = 0;          ///< events with S not finite and > 0
  std::size_t firstBad = 0;
  double firstBadValue = 0.0;
  std::vector<double> B, D, E, F, TT;
};

/// The event sums of `t` at nuisance parameters `alpha` (K) with coefficients `c` (J; nullptr for a reference
/// sample), up to `order`; `dirs` only for Order::Hessian with coefficients.  See the file comment.
ROOML_API Sums accumulate(const EventTable& t, const double* alpha, const double* c, Order order,
                const Directions* dirs = nullptr, int threads = 0);

}  // namespace rooml::nsbi
