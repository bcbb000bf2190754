// Code 5's polynomial and the branch-free log it needs (private to the core's kernels and
// rooml/interpolation.h, which documents the codes).
//
// Header-only math on plain doubles.  Its functions live in an inline namespace named after the
// kernel set the including file is compiled for (see rooml/dispatch.h), so that the copies in the
// AVX-512 and AVX2 kernels stay distinct from the baseline ones.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#ifndef ROOML_ISA_NS
#define ROOML_ISA_NS isa_baseline
#endif

namespace rooml::interp::detail {
inline namespace ROOML_ISA_NS {

/// c[0] + c[1] x + ... + c[6] x^6 and its first two derivatives.
struct Poly6 {
  double c[7];
  double value(double x) const {
    return c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * (c[4] + x * (c[5] + x * c[6])))));
  }
  double d1(double x) const {
    return c[1] + x * (2 * c[2] + x * (3 * c[3] + x * (4 * c[4] + x * (5 * c[5] + x * 6 * c[6]))));
  }
  double d2(double x) const { return 2 * c[2] + x * (6 * c[3] + x * (12 * c[4] + x * (20 * c[5] + x * 30 * c[6]))); }
};

/// The degree-6 polynomial with p(0) = p0 whose value, slope and curvature are
/// (vp, dp, sp) at x = +x0 and (vm, dm, sm) at x = -x0.  Split p - p0 into odd and
/// even parts; with u_k = c_k x0^k each part is a 3x3 linear system:
///   odd:  u1+u3+u5 = O0,  u1+3u3+5u5 = x0 O1,  6u3+20u5 = x0^2 O2,
///   even: u2+u4+u6 = E0,  2u2+4u4+6u6 = x0 E1, 2u2+12u4+30u6 = x0^2 E2,
/// with O0 = (vp-vm)/2, O1 = (dp+dm)/2, O2 = (sp-sm)/2, E0 = (vp+vm)/2 - p0,
/// E1 = (dp-dm)/2, E2 = (sp+sm)/2.  (The same polynomial as RooFit's code 5.)
inline Poly6 match_c2(double p0, double vp, double dp, double sp, double vm, double dm, double sm, double x0) {
  const double O0 = 0.5 * (vp - vm), O1 = x0 * 0.5 * (dp + dm), O2 = x0 * x0 * 0.5 * (sp - sm);
  const double E0 = 0.5 * (vp + vm) - p0, E1 = x0 * 0.5 * (dp - dm), E2 = x0 * x0 * 0.5 * (sp + sm);
  const double u1 = (15 * O0 - 7 * O1 + O2) / 8, u3 = (-5 * O0 + 5 * O1 - O2) / 4, u5 = (3 * O0 - 3 * O1 + O2) / 8;
  const double u2 = (24 * E0 - 9 * E1 + E2) / 8, u4 = (-12 * E0 + 7 * E1 - E2) / 4, u6 = (8 * E0 - 5 * E1 + E2) / 8;
  const double x2 = x0 * x0, x3 = x2 * x0, x4 = x2 * x2;
  return Poly6{{p0, u1 / x0, u2 / x2, u3 / x3, u4 / x4, u5 / (x4 * x0), u6 / (x4 * x2)}};
}

/// Code 5's polynomial for ratios rp = H/N, rm = L/N: matches rp^x at +x0 and
/// rm^(-x) at -x0 to second order, with p(0) = 1.  A ratio of 0 gives slope and
/// curvature 0 on its side (as RooFit; the limit of r^x0 log(r)^k for r -> 0).
inline Poly6 poly6_exp(double rp, double rm, double x0) {
  const double lp = std::log(rp), lm = std::log(rm);
  const double vp = std::exp(x0 * lp), vm = std::exp(x0 * lm);
  const double dp = rp <= 0.0 ? 0.0 : vp * lp, dm = rm <= 0.0 ? 0.0 : -vm * lm;
  const double sp = rp <= 0.0 ? 0.0 : vp * lp * lp, sm = rm <= 0.0 ? 0.0 : vm * lm * lm;
  return match_c2(1.0, vp, dp, sp, vm, dm, sm, x0);
}

/// log(x) for a normal, positive, finite x (DBL_MIN <= x <= DBL_MAX), within 2 ulp of std::log, without
/// branches or library calls so that loops over it vectorize (std::log does not, and is 3x slower per value).
/// x = m 2^e with m in [sqrt(1/2), sqrt(2)) by integer arithmetic on the bits (the exponent becomes a double
/// through the 2^52 trick, which needs no int64 -> double conversion), then
/// log(m) = 2 atanh(f) = 2 (f + f^3/3 + ... + f^21/21) with f = (m - 1)/(m + 1), |f| <= 0.172.
inline double log_normal(double x) {
  std::uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  constexpr std::uint64_t kSqrtHalf = 0x3fe6a09e667f3bcdULL;  // bits of sqrt(1/2)
  const std::uint64_t u = bits + (0x3ff0000000000000ULL - kSqrtHalf);
  const std::uint64_t mbits = (u & 0x000fffffffffffffULL) + kSqrtHalf;
  const std::uint64_t ebits = (u >> 52) | 0x4330000000000000ULL;
  double m, e;
  std::memcpy(&m, &mbits, sizeof m);
  std::memcpy(&e, &ebits, sizeof e);
  e -= 4503599627370496.0 + 1023.0;
  const double f = (m - 1.0) / (m + 1.0), s = f * f;
  const double p =
      2.0 / 3 + s * (2.0 / 5 + s * (2.0 / 7 + s * (2.0 / 9 + s * (2.0 / 11 + s * (2.0 / 13 + s * (2.0 / 15 +
      s * (2.0 / 17 + s * (2.0 / 19 + s * (2.0 / 21)))))))));
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  return e * ln2_hi + (2.0 * f + (f * s * p + e * ln2_lo));
}

/// f - 1 for code 5 (boundary 1) inside |x| < 1, from the ratios rp = H/N, rm = L/N: the same polynomial as
/// poly6_exp(rp, rm, 1) (at the boundary r^1 is r), with log_normal, branch-free.
inline double poly6_exp_unit_minus_one(double rp, double rm, double x) {
  const double lp = log_normal(rp), lm = log_normal(rm);
  const double dp = rp * lp, dm = -rm * lm, sp = dp * lp, sm = -dm * lm;
  const double O0 = 0.5 * (rp - rm), O1 = 0.5 * (dp + dm), O2 = 0.5 * (sp - sm);
  const double E0 = 0.5 * (rp + rm) - 1.0, E1 = 0.5 * (dp - dm), E2 = 0.5 * (sp + sm);
  const double u1 = (15 * O0 - 7 * O1 + O2) / 8, u3 = (-5 * O0 + 5 * O1 - O2) / 4, u5 = (3 * O0 - 3 * O1 + O2) / 8;
  const double u2 = (24 * E0 - 9 * E1 + E2) / 8, u4 = (-12 * E0 + 7 * E1 - E2) / 4, u6 = (8 * E0 - 5 * E1 + E2) / 8;
  return (1.0 + x * (u1 + x * (u2 + x * (u3 + x * (u4 + x * (u5 + x * u6)))))) - 1.0;
}

}  // namespace ROOML_ISA_NS
}  // namespace rooml::interp::detail
