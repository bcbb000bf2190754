// Per-event vertical interpolation of systematic variations ("interpolation codes").
//
// One ROOT-free kernel per code, numbered and defined as RooFit's HistFactory
// codes in ROOT 6.40 (RooFit::Detail::MathFuncs::flexibleInterpSingle, used by
// both PiecewiseInterpolation and RooStats::HistFactory::FlexibleInterpVar),
// plus rooml's own code 100.  The RooFit classes of rooml and the pybind11
// module rooml._core both call these functions; docs/interpolation.md has the
// table of codes and what the NSBI and HI-SIGMA papers use.
//
// Notation: N = nominal, H = high (the +1 sigma variation), L = low (-1 sigma),
// x = nu (the nuisance parameter), b = boundary (1 unless said otherwise),
// r+ = H/N, r- = L/N.
//
//   code  kind             |x| inside the boundary             outside
//   ----  ---------------  ----------------------------------  ---------------------------------
//    0    additive         x(H-N) for x>0, x(N-L) for x<=0      (same, no boundary)
//    1    multiplicative   r+^x for x>=0, r-^(-x) for x<0       (same, no boundary)
//    2    additive         a x^2 + c x, a=(H+L)/2-N, c=(H-L)/2  linear, slope matched at |x|=1
//    4    additive         6th-order polynomial                 x(H-N) for x>=b, x(N-L) for x<=-b
//    5    multiplicative   1 + sum_{i=1..6} a_i x^i             r+^x for x>=b, r-^(-x) for x<=-b
//    6    multiplicative   1 + (code 4 applied to r-, 1, r+)    1 + (code 4 on ratios, linear)
//  100    multiplicative   1 + c1 x + c2 x^2 (value-matched)    r+^x for x>=b, r-^(-x) for x<=-b
//
// Continuity promised (and tested): codes 4, 5, 6 are C2 at |x| = b (value,
// slope and curvature of the polynomial match the extrapolation); code 2 is C1
// at |x| = 1; code 100 is only C0 at |x| = b (two coefficients cannot match the
// slopes too); codes 0 and 1 are smooth at |x| = 1 but have a kink at x = 0
// whenever the up and down variations are not symmetric.
//
// Numbering conventions (read this before building a RooFit object):
//  * rooml's numbering IS PiecewiseInterpolation's (codes 0, 1, 2, 4, 5, 6; its
//    code 3 is a deprecated alias that RooFit turns into 2 with an error message;
//    rooml rejects it).  Use it for densities / shapes (HistoSys-like, per event).
//  * FlexibleInterpVar (normalisations, OverallSys-like) numbers differently:
//    its code 4 is converted to code 5 internally ("to get consistent codes with
//    the PiecewiseInterpolation"), it accepts 5 as well, and it rejects 6.  A
//    FlexibleInterpVar code is translated with from_flexible_code(): 4 -> 5.
//    So "code 4" in a HistFactory normalisation means rooml code 5 (pyhf's
//    "code4", exponential extrapolation), while "code 4" on a shape means rooml
//    code 4 (additive, linear extrapolation).
//  * Code 100 is rooml's own (no RooFit class implements it): the plain quadratic
//    with value continuity only.  The HI-SIGMA weight as DESIGN.md describes it
//    (1 + sum c_i nu^i inside, (P+-/P0)^|nu| outside, value AND derivatives
//    continuous at |nu| = 1) needs six coefficients and is code 5, as is the
//    NSBI papers' polynomial-inside / exponential-outside interpolation.
//
// How several nuisance parameters combine (combine(), exactly as RooFit): start
// from v = N and, for k = 0..K-1 in order,
//     additive code:        v += Delta_k            (Delta_k = single(...))
//     multiplicative code:  v += v * (f_k - 1)      (f_k = single(...); i.e. v *= f_k)
// so all-additive lists give N + sum Delta_k and all-multiplicative lists give
// N * prod f_k, while MIXED lists depend on the ORDER of the parameters (a
// multiplicative factor also scales the additive shifts that came before it).
// RooFit's PiecewiseInterpolation then optionally floors the result
// (setPositiveDefinite: v < 0 -> 0) and FlexibleInterpVar always floors it
// (v <= 0 -> DBL_MIN); combine() offers both as `Floor`.
//
// Branches and derivatives: every kernel picks its branch with exactly RooFit's
// comparisons (code 0: x > 0; code 1: x >= 0; code 2: |x| > 1 is outside; codes
// 4, 5, 6, 100: |x| >= b is outside).  d_single and d2_single differentiate the
// branch that single() evaluates, so at a kink they return that branch's
// one-sided derivative.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "rooml/code5_math.h"
#include "rooml/dispatch.h"
#include "rooml/error.h"

namespace rooml::interp {

enum Code : int {
  kLinear = 0,        ///< piecewise linear, additive (RooFit 0)
  kExponential = 1,   ///< piecewise exponential, multiplicative (RooFit 1)
  kQuadLinear = 2,    ///< quadratic inside |x|<=1, linear outside, additive (RooFit 2)
  kPoly6Linear = 4,   ///< 6th-order polynomial inside, linear outside, additive (PiecewiseInterpolation 4)
  kPoly6Exp = 5,      ///< 6th-order polynomial inside, exponential outside, multiplicative
                      ///< (PiecewiseInterpolation 5 = FlexibleInterpVar 4 and 5 = pyhf "code4")
  kPoly6Ratio = 6,    ///< code 4 on the ratios H/N, L/N, applied multiplicatively (PiecewiseInterpolation 6)
  kQuadratic = 100,   ///< rooml: 1 + c1 x + c2 x^2 inside (value-continuous only), exponential outside
};

/// What happens to a combined value that is not positive (see combine()).
enum Floor : int {
  kNoFloor = 0,    ///< keep it (PiecewiseInterpolation's default)
  kZeroFloor = 1,  ///< v < 0 -> 0 (PiecewiseInterpolation::setPositiveDefinite(true))
  kTinyFloor = 2,  ///< v <= 0 -> DBL_MIN (what FlexibleInterpVar always does)
};

/// All codes rooml knows, in increasing order.
inline constexpr int kCodes[] = {kLinear, kExponential, kQuadLinear, kPoly6Linear, kPoly6Exp, kPoly6Ratio, kQuadratic};

inline bool is_known(int code) {
  for (int c : kCodes)
    if (c == code) return true;
  return false;
}

/// Throw rooml::Error naming `code` unless rooml knows it.
inline void check_code(int code) {
  if (is_known(code)) return;
  std::string msg = "rooml::interp: unknown interpolation code " + std::to_string(code) +
                    " (known codes: 0, 1, 2, 4, 5, 6, 100)";
  if (code == 3)
    msg += "; RooFit's code 3 is a deprecated alias that RooFit replaces by code 2 -- use 2 "
           "(from_piecewise_code(3) does that translation explicitly)";
  throw Error(msg);
}

/// True for codes whose single() is a factor (1, 5, 6, 100), false for additive
/// codes whose single() is a shift (0, 2, 4).  Throws for an unknown code.
inline bool is_multiplicative(int code) {
  check_code(code);
  return code == kExponential || code == kPoly6Exp || code == kPoly6Ratio || code == kQuadratic;
}

/// rooml code for a PiecewiseInterpolation code: the identity, except 3 -> 2
/// (what PiecewiseInterpolation::setInterpCode does).  Throws outside 0..6.
inline int from_piecewise_code(int code) {
  if (code == 3) return kQuadLinear;
  if (code < 0 || code > 6) check_code(code);
  return code;
}

/// rooml code for a FlexibleInterpVar code: 0, 1, 2 unchanged, 3 -> 2 and
/// 4 -> 5 (both as FlexibleInterpVar does), 5 -> 5.  Throws for anything else
/// (FlexibleInterpVar refuses 6 and keeps the previous code).
inline int from_flexible_code(int code) {
  switch (code) {
    case 0: case 1: case 2: return code;
    case 3: return kQuadLinear;
    case 4: case 5: return kPoly6Exp;
    default:
      throw Error("rooml::interp: FlexibleInterpVar has no interpolation code " + std::to_string(code) +
                  " (it accepts 0-5; its 4 means rooml/PiecewiseInterpolation code 5)");
  }
}

namespace detail {

/// Code 5 (boundary 1) inside |x| < 1 for n events: fm1[e] = f - 1 for the ratios high[e]/nominal[e] and
/// low[e]/nominal[e] (nominal == nullptr: low and high are the ratios).  One loop the compiler vectorizes, in the
/// kernel set chosen at run time (rooml/dispatch.h); events whose ratios are outside log_normal's range (0,
/// subnormal, negative, inf, NaN) are redone with the scalar kernel, so the result is RooFit's everywhere.  The
/// hot loop of rooml's per-event RooFit classes (3-4x faster than the scalar kernel, which spends its time in
/// std::log and std::exp).
inline void poly6_exp_unit_minus_one(const double* nominal, const double* low, const double* high, double x,
                                     std::size_t n, double* fm1) {
  kernels().code5_unit_minus_one(nominal, low, high, x, n, fm1);
}

/// Code 4's shift (RooFit's closed form): for |x| < b,
/// x (S + t A (15 - 10 t^2 + 3 t^4)) with t = x/b, S = (e+ + e-)/2, A = (e+ - e-)/16,
/// e+ = H - N, e- = N - L; that is S x + A b (15 t^2 - 10 t^4 + 3 t^6).
inline double poly6_linear(double low, double high, double nominal, double x, double b) {
  if (x >= b) return x * (high - nominal);
  if (x <= -b) return x * (nominal - low);
  const double t = x / b, ep = high - nominal, em = nominal - low;
  const double S = 0.5 * (ep + em), A = 0.0625 * (ep - em);
  return x * (S + t * A * (15 + t * t * (-10 + t * t * 3)));
}
inline double poly6_linear_d1(double low, double high, double nominal, double x, double b) {
  if (x >= b) return high - nominal;
  if (x <= -b) return nominal - low;
  const double t = x / b, ep = high - nominal, em = nominal - low;
  const double S = 0.5 * (ep + em), A = 0.0625 * (ep - em), t2 = t * t;
  return S + A * t * (30 + t2 * (-40 + 18 * t2));
}
inline double poly6_linear_d2(double low, double high, double nominal, double x, double b) {
  if (x >= b || x <= -b) return 0.0;
  const double t = x / b, ep = high - nominal, em = nominal - low, A = 0.0625 * (ep - em), t2 = t * t;
  return A * (30 + t2 * (-120 + 90 * t2)) / b;
}

/// k-th derivative (k = 0, 1, 2) of r^x; 0 where r^x is 0 (r = 0, x > 0).
inline double pow_jet(double r, double x, int k) {
  const double v = std::pow(r, x);
  if (k == 0) return v;
  if (v == 0.0) return 0.0;
  const double l = std::log(r);
  return k == 1 ? v * l : v * l * l;
}

/// Code 100's coefficients: 1 + c1 x + c2 x^2 equals r+^b at +b and r-^b at -b.
inline void quadratic_coefficients(double rp, double rm, double b, double& c1, double& c2) {
  const double vp = b == 1.0 ? rp : std::pow(rp, b), vm = b == 1.0 ? rm : std::pow(rm, b);
  c1 = (vp - vm) / (2 * b);
  c2 = (0.5 * (vp + vm) - 1) / (b * b);
}

/// The k-th derivative (k = 0: the value) of single(), without any checks.
inline double jet(int code, double low, double high, double nominal, double x, double b, int k) {
  switch (code) {
    case kLinear:
      if (k == 2) return 0.0;
      if (x > 0) return k == 0 ? x * (high - nominal) : high - nominal;
      return k == 0 ? x * (nominal - low) : nominal - low;
    case kExponential:
      if (x >= 0) return pow_jet(high / nominal, x, k);
      return (k == 1 ? -1.0 : 1.0) * pow_jet(low / nominal, -x, k);
    case kQuadLinear: {
      // RooFit's evaluation order, so that values agree to the last bit.
      const double a = 0.5 * (high + low) - nominal, c = 0.5 * (high - low);
      if (x > 1) return k == 0 ? (2 * a + c) * (x - 1) + high - nominal : k == 1 ? 2 * a + c : 0.0;
      if (x < -1) return k == 0 ? -1 * (2 * a - c) * (x + 1) + low - nominal : k == 1 ? -(2 * a - c) : 0.0;
      return k == 0 ? a * x * x + c * x : k == 1 ? 2 * a * x + c : 2 * a;
    }
    case kPoly6Linear:
      return k == 0 ? poly6_linear(low, high, nominal, x, b)
             : k == 1 ? poly6_linear_d1(low, high, nominal, x, b)
                      : poly6_linear_d2(low, high, nominal, x, b);
    case kPoly6Ratio: {
      const double rl = low / nominal, rh = high / nominal;
      return k == 0 ? 1.0 + poly6_linear(rl, rh, 1.0, x, b)
             : k == 1 ? poly6_linear_d1(rl, rh, 1.0, x, b)
                      : poly6_linear_d2(rl, rh, 1.0, x, b);
    }
    case kPoly6Exp:
    case kQuadratic: {
      const double rh = high / nominal, rl = low / nominal;
      if (x >= b) return pow_jet(rh, x, k);
      if (x <= -b) return (k == 1 ? -1.0 : 1.0) * pow_jet(rl, -x, k);
      if (code == kPoly6Exp) {
        const Poly6 p = poly6_exp(rh, rl, b);
        return k == 0 ? p.value(x) : k == 1 ? p.d1(x) : p.d2(x);
      }
      double c1, c2;
      quadratic_coefficients(rh, rl, b, c1, c2);
      return k == 0 ? 1 + x * (c1 + c2 * x) : k == 1 ? c1 + 2 * c2 * x : 2 * c2;
    }
    default:
      check_code(code);
      return 0.0;
  }
}

/// A double for error messages ("%.17g": inf, nan and 1e-300 stay readable).
inline std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

/// " (nuisance parameter k, event e)" for error messages; empty for k < 0.
inline std::string where(long k, long e) {
  if (k < 0) return "";
  return " (nuisance parameter " + std::to_string(k) + ", event " + std::to_string(e) + ")";
}

/// The checks of the checked API: finite inputs, a positive finite boundary,
/// and for multiplicative codes a non-zero nominal; codes 1, 5, 100 also need
/// ratios L/N, H/N >= 0 (a negative ratio has no real power).
inline void check_inputs(int code, double low, double high, double nominal, double nu, double boundary,
                         long k = -1, long e = -1) {
  check_code(code);
  const char* names[] = {"low", "high", "nominal", "nu"};
  const double values[] = {low, high, nominal, nu};
  for (int i = 0; i < 4; ++i)
    if (!std::isfinite(values[i]))
      throw Error("rooml::interp: non-finite input " + std::string(names[i]) + " = " + num(values[i]) +
                  " for code " + std::to_string(code) + where(k, e));
  if (!(std::isfinite(boundary) && boundary > 0))
    throw Error("rooml::interp: the boundary must be finite and > 0, got " + num(boundary));
  if (!is_multiplicative(code)) return;
  if (nominal == 0.0)
    throw Error("rooml::interp: code " + std::to_string(code) +
                " is multiplicative and needs a non-zero nominal (it divides by it)" + where(k, e));
  if (code == kPoly6Ratio) return;
  if (!(low / nominal >= 0.0) || !(high / nominal >= 0.0))
    throw Error("rooml::interp: code " + std::to_string(code) +
                " raises the ratios low/nominal and high/nominal to real powers and needs them >= 0, got " +
                num(low / nominal) + " and " + num(high / nominal) + where(k, e));
}

}  // namespace detail

/// The value of one variation at nu, without validation: garbage in (NaN, a
/// zero nominal for a multiplicative code, ...) gives NaN/inf out, as in RooFit.
/// Additive codes (0, 2, 4) return the shift Delta (value = nominal + Delta);
/// multiplicative codes (1, 5, 6, 100) return the factor f (value = nominal * f).
inline double single_unchecked(int code, double low, double high, double nominal, double nu, double boundary = 1.0) {
  return detail::jet(code, low, high, nominal, nu, boundary, 0);
}

/// As single_unchecked(), after checking the code (rooml::Error naming it) and
/// the inputs (rooml::Error for non-finite values, boundary <= 0, a zero nominal
/// for multiplicative codes, negative ratios for codes 1, 5, 100).
///   Additive codes 0, 2, 4: returns Delta with  value = nominal + Delta.
///   Multiplicative codes 1, 5, 6, 100: returns f with  value = nominal * f.
/// single(code, L, H, N, 0) is 0 (additive) or 1 (multiplicative); at nu = +1
/// and -1 the value is H and L (for boundary <= 1).
inline double single(int code, double low, double high, double nominal, double nu, double boundary = 1.0) {
  detail::check_inputs(code, low, high, nominal, nu, boundary);
  return detail::jet(code, low, high, nominal, nu, boundary, 0);
}

/// d single / d nu (analytic; checked like single()).
inline double d_single(int code, double low, double high, double nominal, double nu, double boundary = 1.0) {
  detail::check_inputs(code, low, high, nominal, nu, boundary);
  return detail::jet(code, low, high, nominal, nu, boundary, 1);
}

/// d^2 single / d nu^2 (analytic; checked like single()).
inline double d2_single(int code, double low, double high, double nominal, double nu, double boundary = 1.0) {
  detail::check_inputs(code, low, high, nominal, nu, boundary);
  return detail::jet(code, low, high, nominal, nu, boundary, 2);
}

/// combine() without validation (RooFit's NaN-in, NaN-out behaviour).
inline void combine_unchecked(const double* nominal, const double* const* low, const double* const* high,
                              const double* nu, const int* codes, std::size_t K, std::size_t n, double* out,
                              int floor = kNoFloor, double boundary = 1.0) {
  for (std::size_t e = 0; e < n; ++e) out[e] = nominal[e];
  std::vector<double> fm1;  // code 5's f - 1 per event (the vectorized path)
  for (std::size_t k = 0; k < K; ++k) {
    const int code = codes[k];
    const double x = nu[k];
    const double* lo = low[k];
    const double* hi = high[k];
    if (code == kPoly6Exp && boundary == 1.0 && x > -1.0 && x < 1.0) {
      fm1.resize(n);
      detail::poly6_exp_unit_minus_one(nominal, lo, hi, x, n, fm1.data());
      for (std::size_t e = 0; e < n; ++e) out[e] += out[e] * fm1[e];
    } else if (code == kPoly6Ratio) {
      // RooFit adds mod * v with mod = code 4 on the ratios (f - 1 without the round trip through f).
      for (std::size_t e = 0; e < n; ++e)
        out[e] += out[e] * detail::poly6_linear(lo[e] / nominal[e], hi[e] / nominal[e], 1.0, x, boundary);
    } else if (is_multiplicative(code)) {
      for (std::size_t e = 0; e < n; ++e)
        out[e] += out[e] * (detail::jet(code, lo[e], hi[e], nominal[e], x, boundary, 0) - 1.0);
    } else {
      for (std::size_t e = 0; e < n; ++e) out[e] += detail::jet(code, lo[e], hi[e], nominal[e], x, boundary, 0);
    }
  }
  if (floor == kZeroFloor) {
    for (std::size_t e = 0; e < n; ++e)
      if (out[e] < 0.0) out[e] = 0.0;
  } else if (floor == kTinyFloor) {
    for (std::size_t e = 0; e < n; ++e)
      if (out[e] <= 0.0) out[e] = std::numeric_limits<double>::min();
  }
}

/// Several nuisance parameters on n events, combined as RooFit's
/// PiecewiseInterpolation does: v = nominal[e], then for k = 0..K-1 in order
/// v += Delta_k (additive codes) or v += v (f_k - 1) (multiplicative codes),
/// where Delta_k / f_k = single(codes[k], low[k][e], high[k][e], nominal[e], nu[k]).
/// All-additive: nominal + sum Delta; all-multiplicative: nominal * prod f; mixed
/// lists depend on the order.  Then `floor` (see Floor).  For a
/// FlexibleInterpVar (one "event", FlexibleInterpVar codes translated with
/// from_flexible_code, floor = kTinyFloor, its global boundary) the result is
/// FlexibleInterpVar's value.  Inputs are validated first (rooml::Error naming
/// the parameter and event); out may not alias the inputs.
inline void combine(const double* nominal, const double* const* low, const double* const* high, const double* nu,
                    const int* codes, std::size_t K, std::size_t n, double* out, int floor = kNoFloor,
                    double boundary = 1.0) {
  if (floor != kNoFloor && floor != kZeroFloor && floor != kTinyFloor)
    throw Error("rooml::interp: unknown floor mode " + std::to_string(floor) + " (0 none, 1 zero, 2 tiny)");
  for (std::size_t k = 0; k < K; ++k) {
    check_code(codes[k]);
    for (std::size_t e = 0; e < n; ++e)
      detail::check_inputs(codes[k], low[k][e], high[k][e], nominal[e], nu[k], boundary, long(k), long(e));
  }
  if (K == 0)
    for (std::size_t e = 0; e < n; ++e)
      if (!std::isfinite(nominal[e]))
        throw Error("rooml::interp: non-finite input nominal = " + detail::num(nominal[e]) + " (event " +
                    std::to_string(e) + ")");
  combine_unchecked(nominal, low, high, nu, codes, K, n, out, floor, boundary);
}

}  // namespace rooml::interp
