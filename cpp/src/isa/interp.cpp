// Code-5 interpolation and the NSBI event pass's sums of one kernel set (see isa.h).
#include <cfloat>

#include "isa.h"
#include "rooml/code5_math.h"

namespace rooml::ROOML_ISA_NS {
namespace {

/// Weights of code 5 inside |x| < 1 (boundary 1): g - 1 = sum_t q_t p_t(x) with per-event
/// q = (H - L, dH + dL, sH - sL, H + L - 2, dH - dL, sH + sL), dH = H log H, dL = -L log L, sH = dH log H,
/// sL = -dL log L; the same polynomial as rooml::interp::detail::poly6_exp (RooFit's code 5), regrouped.
struct Code5Weights {
  double v[6], d1[6], d2[6];
  explicit Code5Weights(double x) {
    // coefficients of x^0..x^6 of p_t (already halved for q's factor 2)
    static constexpr double c[6][7] = {
        {0, 15.0 / 16, 0, -5.0 / 8, 0, 3.0 / 16, 0},  // (H - L)/2 = O0
        {0, -7.0 / 16, 0, 5.0 / 8, 0, -3.0 / 16, 0},  // O1
        {0, 1.0 / 16, 0, -1.0 / 8, 0, 1.0 / 16, 0},   // O2
        {0, 0, 3.0 / 2, 0, -3.0 / 2, 0, 1.0 / 2},     // E0 + 1
        {0, 0, -9.0 / 16, 0, 7.0 / 8, 0, -5.0 / 16},  // E1
        {0, 0, 1.0 / 16, 0, -1.0 / 8, 0, 1.0 / 16}};  // E2
    for (int t = 0; t < 6; ++t) {
      double p = 0, p1 = 0, p2 = 0;
      for (int m = 6; m >= 0; --m) {
        p2 = p2 * x + 2 * p1;
        p1 = p1 * x + p;
        p = p * x + c[t][m];
      }
      v[t] = p;
      d1[t] = p1;
      d2[t] = p2;
    }
  }
};

/// constant + sum_t q_t p_t for code 5's per-event q (see Code5Weights) and one set of weights p.
[[gnu::always_inline]] inline double code5(double H, double L, double lH, double lL, const double* p,
                                           double constant) {
  const double dH = H * lH, dL = -L * lL, sH = dH * lH, sL = -dL * lL;
  return constant + ((H - L) * p[0] + (dH + dL) * p[1] + (sH - sL) * p[2] + (H + L - 2.0) * p[3] +
                     (dH - dL) * p[4] + (sH + sL) * p[5]);
}

constexpr size_t kSumLanes = 8;

}  // namespace

void code5_unit_minus_one(const double* nominal, const double* low, const double* high, double x, size_t n,
                          double* fm1) {
  using interp::detail::poly6_exp_unit_minus_one;
  if (nominal) {
    for (size_t e = 0; e < n; ++e) fm1[e] = poly6_exp_unit_minus_one(high[e] / nominal[e], low[e] / nominal[e], x);
  } else {
    for (size_t e = 0; e < n; ++e) fm1[e] = poly6_exp_unit_minus_one(high[e], low[e], x);
  }
  // Ratios outside the normal range of log_normal (checked with products, conservatively): the scalar kernel.
  constexpr double lowest = 2 * DBL_MIN, largest = 0.5 * DBL_MAX;
  for (size_t e = 0; e < n; ++e) {
    const double N = nominal ? nominal[e] : 1.0, H = high[e], L = low[e];
    const bool normal = N > 0 && N <= largest && H <= largest && L <= largest && H >= lowest * N &&
                        L >= lowest * N && H <= largest * N && L <= largest * N;
    if (!normal) fm1[e] = interp::detail::poly6_exp(H / N, L / N, 1.0).value(x) - 1.0;
  }
}

void code5_jet(const double* __restrict H, const double* __restrict L, const double* __restrict lH,
               const double* __restrict lL, double x, size_t count, int order, double* __restrict g,
               double* __restrict d, double* __restrict e2) {
  if (x >= 1.0 || x <= -1.0) {
    const double* l = x >= 1.0 ? lH : lL;
    const double sign = x >= 1.0 ? 1.0 : -1.0, ax = x >= 1.0 ? x : -x;
    for (size_t i = 0; i < count; ++i) g[i] = fast_exp(ax * l[i]);
    if (order >= 1)
      for (size_t i = 0; i < count; ++i) d[i] = sign * l[i];
    if (order >= 2)
      for (size_t i = 0; i < count; ++i) e2[i] = 0.0;
    return;
  }
  const Code5Weights w(x);
  // one branch-free loop per order, so that each vectorizes
  if (order == 0) {
    for (size_t i = 0; i < count; ++i) g[i] = code5(H[i], L[i], lH[i], lL[i], w.v, 1.0);
  } else if (order == 1) {
    for (size_t i = 0; i < count; ++i) {
      const double gi = code5(H[i], L[i], lH[i], lL[i], w.v, 1.0);
      g[i] = gi;
      d[i] = code5(H[i], L[i], lH[i], lL[i], w.d1, 0.0) / gi;
    }
  } else {
    for (size_t i = 0; i < count; ++i) {
      const double gi = code5(H[i], L[i], lH[i], lL[i], w.v, 1.0);
      const double di = code5(H[i], L[i], lH[i], lL[i], w.d1, 0.0) / gi;
      g[i] = gi;
      d[i] = di;
      e2[i] = code5(H[i], L[i], lH[i], lL[i], w.d2, 0.0) / gi - di * di;
    }
  }
}

void log_normal_rows(const double* x, size_t count, double* out) {  // out may be x
  for (size_t i = 0; i < count; ++i) out[i] = interp::detail::log_normal(x[i] >= DBL_MIN ? x[i] : 1.0);
}

double sum(const double* v, size_t n) {
  double acc[kSumLanes] = {};
  size_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (size_t l = 0; l < kSumLanes; ++l) acc[l] += v[i + l];
  for (size_t l = 0; i < n; ++i, ++l) acc[l] += v[i];
  double s = 0.0;
  for (size_t l = 0; l < kSumLanes; ++l) s += acc[l];
  return s;
}

double dot(const double* a, const double* b, size_t n) {
  double acc[kSumLanes] = {};
  size_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (size_t l = 0; l < kSumLanes; ++l) acc[l] += a[i + l] * b[i + l];
  for (size_t l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
  double s = 0.0;
  for (size_t l = 0; l < kSumLanes; ++l) s += acc[l];
  return s;
}

}  // namespace rooml::ROOML_ISA_NS
