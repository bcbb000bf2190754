// Branch-free exp / log / log1p in double precision that compilers vectorize.
//
// The C library's exp and log are opaque calls that keep loops scalar.  These
// inline versions use only arithmetic, bit casts and selects, so a loop over
// events calling them becomes SIMD code.  Accuracy: within 2 ulp of the correctly
// rounded result over the ranges rooml uses (tested against std::exp/std::log).
//  - fast_exp clamps its argument to [-700, 700]: exp(-700) ~ 1e-304 stands in
//    for any smaller value, exp(700) for any larger one.
//  - fast_log returns -inf at 0, NaN below 0 and for NaN, +inf at +inf, and
//    handles subnormal inputs.
//
// The functions live in an inline namespace named after the kernel set the
// including file is compiled for (rooml/dispatch.h): the AVX-512 and AVX2 copies
// in cpp/src/isa/ stay distinct from the baseline ones.  The SIMD paths (exp8,
// exp4) exist where the including file is compiled for that instruction set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef ROOML_ISA_NS
#define ROOML_ISA_NS isa_baseline
#endif

namespace rooml {
inline namespace ROOML_ISA_NS {

namespace detail {
inline double from_bits(std::uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}
inline std::uint64_t to_bits(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

/// exp(r) - 1 for |r| <= ln2/2 (r a double or a vector of doubles): r + c2 r^2 + ... + c11 r^11, the c fitted to
/// it on that interval (relative error 1.2e-17; Taylor's series needs two terms more), by Horner's rule.
template <class V>
inline V expm1_reduced(V r) {
  constexpr double c[10] = {0.5000000000000012,     0.16666666666666483,    0.04166666666651632,
                            0.008333333333451433,   0.0013888888946678828,  0.00019841269597118902,
                            2.4801490346234684e-05, 2.7557507285413057e-06, 2.763112544637324e-07,
                            2.502464520958987e-08};  // c2 .. c11
  V p = V{} + c[9];
  for (int k = 8; k >= 0; --k) p = p * r + c[k];
  return (p * r + 1.0) * r;
}
}  // namespace detail

/// exp(x) for x in [-700, 700] (clamped outside).
inline double fast_exp(double x) {
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer in the low bits
  x = x < -700.0 ? -700.0 : (x > 700.0 ? 700.0 : x);
  const double t = x * kLog2e + kShifter;
  const double k = t - kShifter;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;  // |r| <= 0.347
  const double q = detail::expm1_reduced(r);
  const std::int64_t ki = static_cast<std::int64_t>(detail::to_bits(t) - detail::to_bits(kShifter));
  const double scale = detail::from_bits(static_cast<std::uint64_t>(ki + 1023) << 52);
  return scale + scale * q;  // 1 + q is never rounded on its own
}

/// Natural logarithm.
inline double fast_log(double x) {
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kSqrt2 = 1.41421356237309504880;
  const bool subnormal = x < 2.2250738585072014e-308;
  const double xs = subnormal ? x * 18014398509481984.0 : x;  // * 2^54
  const std::uint64_t bits = detail::to_bits(xs);
  // The biased exponent (and sign bit) as a double without an int64 -> double conversion, which AVX2 and
  // SSE2 lack (loops with one stay scalar): 2^52 + j has j in its low mantissa bits.
  constexpr double kTwo52 = 4503599627370496.0;
  double e = (detail::from_bits((bits >> 52) | detail::to_bits(kTwo52)) - (kTwo52 + 1023.0)) -
             (subnormal ? 54.0 : 0.0);
  double m = detail::from_bits((bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL);  // [1, 2)
  const bool high = m > kSqrt2;
  m = high ? 0.5 * m : m;  // [sqrt(1/2), sqrt(2))
  e = high ? e + 1.0 : e;
  const double f = m - 1.0;
  const double s = f / (2.0 + f);  // |s| <= 0.1716
  const double z = s * s;
  // log(m) = 2 atanh(s) = 2 s (1 + z/3 + z^2/5 + ...), series to z^11.
  double p = 1.0 / 23.0;
  p = p * z + 1.0 / 21.0;
  p = p * z + 1.0 / 19.0;
  p = p * z + 1.0 / 17.0;
  p = p * z + 1.0 / 15.0;
  p = p * z + 1.0 / 13.0;
  p = p * z + 1.0 / 11.0;
  p = p * z + 1.0 / 9.0;
  p = p * z + 1.0 / 7.0;
  p = p * z + 1.0 / 5.0;
  p = p * z + 1.0 / 3.0;
  // log(m) = f - 2s * (f/2) ... written as f - s*(f - 2 z p s / s); use the stable form below.
  const double hf = 0.5 * f * f;
  const double logm = f - (hf - s * (hf + 2.0 * z * p));
  double result = e * kLn2Hi + (logm + e * kLn2Lo);
  result = x == 0.0 ? -__builtin_inf() : result;
  result = x == __builtin_inf() ? x : result;
  result = ((x < 0.0) | (x != x)) ? __builtin_nan("") : result;
  return result;
}

/// log(1 + u) for u >= 0 (accurate also for tiny u).
inline double fast_log1p(double u) {
  const double w = 1.0 + u;
  // Correct the rounding of 1 + u: log(w) - ((w - 1) - u) / w.
  return fast_log(w) - ((w - 1.0) - u) / w;
}

/// log(1 + u) for 0 <= u <= 1, one division fewer than fast_log1p.
///
/// There w = 1 + u is in [1, 2], so w - 1 is exact and c = (w - 1) - u is the
/// rounding error of w; log(1 + u) = log(w) - c / w, and replacing c / w by c
/// errs by c u / (1 + u), below one ulp of the result.
inline double fast_log1p_unit(double u) {
  const double w = 1.0 + u;
  return fast_log(w) - ((w - 1.0) - u);
}

/// log(1 + exp(x)), stable for all x.
inline double fast_softplus(double x) {
  const double relu = x > 0.0 ? x : 0.0;
  return relu + fast_log1p_unit(fast_exp(x - 2.0 * relu));  // exp(-|x|)
}

/// 1 / (1 + exp(-x)).
inline double fast_sigmoid(double x) { return 1.0 / (1.0 + fast_exp(-x)); }

#if defined(__AVX512F__)
namespace detail {
/// exp(x), or exp(-x) when Negated (bit for bit the same as negating x first, one instruction fewer); see exp8.
template <bool Negated>
inline __m512d exp8_signed(__m512d x) {
  // 2^(j/16) correctly rounded, minus j << 48 in its bits: adding n << 48 then gives 2^(n>>4) 2^(j/16), j = n & 15.
  const __m512i table_0_7 = _mm512_setr_epi64(0x3ff0000000000000, 0x3fefb5586cf9890f, 0x3fef72b83c7d517b,
                                              0x3fef387a6e756238, 0x3fef06fe0a31b715, 0x3feedea64c123422,
                                              0x3feebfdad5362a27, 0x3feeab07dd485429);
  const __m512i table_8_15 = _mm512_setr_epi64(0x3feea09e667f3bcd, 0x3feea11473eb0187, 0x3feeace5422aa0db,
                                               0x3feec49182a3f090, 0x3feee89f995ad3ad, 0x3fef199bdd85529c,
                                               0x3fef5818dcfba487, 0x3fefa4afa2a490da);
  const __m512d shifter = _mm512_set1_pd(6755399441055744.0);  // 1.5 * 2^52
  const __m512d c = _mm512_set1_pd(16.0 * 1.4426950408889634074);
  const __m512d ln2_hi = _mm512_set1_pd(6.93147180369123816490e-01 / 16.0);
  const __m512d ln2_lo = _mm512_set1_pd(1.90821492927058770002e-10 / 16.0);
  x = _mm512_min_pd(_mm512_max_pd(x, _mm512_set1_pd(-700.0)), _mm512_set1_pd(700.0));
  const __m512d t = Negated ? _mm512_fnmadd_pd(x, c, shifter) : _mm512_fmadd_pd(x, c, shifter);
  const __m512d k = _mm512_sub_pd(t, shifter);  // n = round(16 (+-x) / ln2)
  // r = +-x - n ln2/16 in two parts; s = -r when Negated
  __m512d s = Negated ? _mm512_fmadd_pd(k, ln2_hi, x) : _mm512_fnmadd_pd(k, ln2_hi, x);
  s = Negated ? _mm512_fmadd_pd(k, ln2_lo, s) : _mm512_fnmadd_pd(k, ln2_lo, s);
  // exp(r) - 1 = q = r + c2 r^2 + ... + c6 r^6, the c fitted to it on |r| <= ln2/32 (relative error 1.2e-17);
  // Horner's steps p c_k + p r written as c_k -+ p s
  const auto step = [s](__m512d p, double ck) {
    return Negated ? _mm512_fnmadd_pd(p, s, _mm512_set1_pd(ck)) : _mm512_fmadd_pd(p, s, _mm512_set1_pd(ck));
  };
  __m512d q = _mm512_set1_pd(0.001388831551767825);
  q = step(q, 0.008333472971256996);
  q = step(q, 0.041666666712928374);
  q = step(q, 0.16666666664373656);
  q = step(q, 0.4999999999999928);
  q = step(q, 1.0);
  q = _mm512_mul_pd(q, s);  // q / r of above times s: -q when Negated
  const __m512i n = _mm512_castpd_si512(t);  // n in the low bits (the shifter's low 48 are zero)
  const __m512i table = _mm512_permutex2var_epi64(table_0_7, n, table_8_15);  // uses the low 4 bits of n
  const __m512d scale = _mm512_castsi512_pd(_mm512_add_epi64(table, _mm512_slli_epi64(n, 48)));
  // 2^(n/16) (1 + q) without rounding 1 + q
  return Negated ? _mm512_fnmadd_pd(scale, q, scale) : _mm512_fmadd_pd(scale, q, scale);
}
}  // namespace detail

/// exp of 8 lanes, x clamped to [-700, 700] as in fast_exp, within 1.1 ulp (measured): 2^(n/16) splits into
/// 2^(n>>4) (exponent bits) times 2^((n&15)/16) from a 16-entry table (one two-register permute), and the
/// remainder |r| <= ln2/32 needs only a degree-6 polynomial for exp(r) - 1 (fitted, not Taylor's).  The result is
/// scale + scale (exp(r) - 1) in one FMA, so 1 + (exp(r) - 1) is never rounded on its own.
inline __m512d exp8(__m512d x) { return detail::exp8_signed<false>(x); }
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
/// exp of 4 lanes, x clamped to [-700, 700] as in fast_exp, and fast_exp's algorithm: the shifter also
/// carries the exponent bias, so n + 1023 lands in the low bits of t and 2^n is those bits shifted into the
/// exponent field.  No table: a gather is no faster than the longer series on Zen 4, and slow on Intel CPUs
/// whose microcode slows gathers down (Downfall mitigation).
inline __m256d exp4(__m256d x) {
  const __m256d shifter = _mm256_set1_pd(6755399441055744.0 + 1023.0);  // 1.5 * 2^52 + bias
  x = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-700.0)), _mm256_set1_pd(700.0));
  const __m256d t = _mm256_fmadd_pd(x, _mm256_set1_pd(1.4426950408889634074), shifter);
  const __m256d k = _mm256_sub_pd(t, shifter);  // n = round(x / ln2)
  __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(6.93147180369123816490e-01), x);
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(1.90821492927058770002e-10), r);  // |r| <= 0.347
  const __m256d q = detail::expm1_reduced(r);  // as fast_exp
  const __m256d scale = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 52));
  return _mm256_fmadd_pd(scale, q, scale);
}
#endif

/// x[i] = exp(x[i]) for i < count (fast_exp's range and accuracy; exp8 where available).
inline void exp_inplace(double* __restrict x, std::size_t count) {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 8 <= count; i += 8) _mm512_storeu_pd(x + i, exp8(_mm512_loadu_pd(x + i)));
#elif defined(__AVX2__)
  for (; i + 4 <= count; i += 4) _mm256_storeu_pd(x + i, exp4(_mm256_loadu_pd(x + i)));
#endif
  for (; i < count; ++i) x[i] = fast_exp(x[i]);
}

#if defined(__AVX512F__)
/// t / (1 + exp(-g)) of 8 lanes, by division (correctly rounded).
inline __m512d sigmoid_quotient8(__m512d t, __m512d g) {
  return _mm512_div_pd(t, _mm512_add_pd(_mm512_set1_pd(1.0), detail::exp8_signed<true>(g)));
}
/// The same from a 14-bit reciprocal estimate refined by a Newton step (28 bits) and a residual correction of
/// the quotient, whose error is the square of that (within 1 ulp of t / d).
inline __m512d sigmoid_quotient8_newton(__m512d t, __m512d g) {
  const __m512d one = _mm512_set1_pd(1.0);
  const __m512d d = _mm512_add_pd(one, detail::exp8_signed<true>(g));
  __m512d r = _mm512_rcp14_pd(d);
  r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(d, r, one), r);
  const __m512d q = _mm512_mul_pd(t, r);
  return _mm512_fmadd_pd(r, _mm512_fnmadd_pd(d, q, t), q);
}
#elif defined(__AVX2__)
/// t / (1 + exp(-g)) of 4 lanes.
inline __m256d sigmoid_quotient4(__m256d t, __m256d g) {
  return _mm256_div_pd(t, _mm256_add_pd(_mm256_set1_pd(1.0), exp4(_mm256_sub_pd(_mm256_setzero_pd(), g))));
}
#endif

namespace detail {
/// The gate g of a row stored as an array.
struct StoredGate {
  const double* g;
  double at(std::size_t i) const { return g[i]; }
#if defined(__AVX512F__)
  __m512d at8(std::size_t i) const { return _mm512_loadu_pd(g + i); }
#elif defined(__AVX2__)
  __m256d at4(std::size_t i) const { return _mm256_loadu_pd(g + i); }
#endif
};
/// The gate g = w c + b of a gate layer with one input c (computed where used, never stored).
struct AffineGate {
  const double* c;
  double w, b;
  double at(std::size_t i) const { return w * c[i] + b; }
#if defined(__AVX512F__)
  __m512d at8(std::size_t i) const {
    return _mm512_fmadd_pd(_mm512_set1_pd(w), _mm512_loadu_pd(c + i), _mm512_set1_pd(b));
  }
#elif defined(__AVX2__)
  __m256d at4(std::size_t i) const {
    return _mm256_fmadd_pd(_mm256_set1_pd(w), _mm256_loadu_pd(c + i), _mm256_set1_pd(b));
  }
#endif
};

/// h[i] += t[i] / (1 + exp(-g[i])) for first <= i < count, g from `gate`.
template <class Gate>
inline void add_gated_row(double* __restrict h, const double* __restrict t, Gate gate, std::size_t count,
                          std::size_t first = 0) {
  std::size_t i = first;
#if defined(__AVX512F__)
  for (; i + 8 <= count; i += 8) {
    const __m512d q = sigmoid_quotient8(_mm512_loadu_pd(t + i), gate.at8(i));
    _mm512_storeu_pd(h + i, _mm512_add_pd(_mm512_loadu_pd(h + i), q));
  }
#elif defined(__AVX2__)
  for (; i + 4 <= count; i += 4) {
    const __m256d q = sigmoid_quotient4(_mm256_loadu_pd(t + i), gate.at4(i));
    _mm256_storeu_pd(h + i, _mm256_add_pd(_mm256_loadu_pd(h + i), q));
  }
#endif
  for (; i < count; ++i) h[i] += t[i] / (1.0 + fast_exp(-gate.at(i)));
}

/// add_gated_row on rows h, h + stride (t alike) with gates g0, g1; see add_sigmoid_product_pair.
template <class Gate>
inline void add_gated_pair(double* h, const double* t, Gate g0, Gate g1, std::size_t stride, std::size_t count) {
  std::size_t i = 0;
#if defined(__AVX512F__)
  double* __restrict h0 = h;
  double* __restrict h1 = h + stride;
  const double* __restrict t0 = t;
  const double* __restrict t1 = t + stride;
  for (; i + 8 <= count; i += 8) {
    const __m512d q0 = sigmoid_quotient8(_mm512_loadu_pd(t0 + i), g0.at8(i));
    const __m512d q1 = sigmoid_quotient8_newton(_mm512_loadu_pd(t1 + i), g1.at8(i));
    _mm512_storeu_pd(h0 + i, _mm512_add_pd(_mm512_loadu_pd(h0 + i), q0));
    _mm512_storeu_pd(h1 + i, _mm512_add_pd(_mm512_loadu_pd(h1 + i), q1));
  }
#endif
  add_gated_row(h, t, g0, count, i);  // the rest; all of each row without AVX-512
  add_gated_row(h + stride, t + stride, g1, count, i);
}
}  // namespace detail

/// h[i] += t[i] * sigmoid(g[i]) = t[i] / (1 + exp(-g[i])) for i < count (exp as in fast_exp).
inline void add_sigmoid_product(double* h, const double* t, const double* g, std::size_t count) {
  detail::add_gated_row(h, t, detail::StoredGate{g}, count);
}

/// add_sigmoid_product on two rows h, h + stride (t and g alike) in one pass.  With AVX-512 the first row
/// divides and the second refines a reciprocal estimate, interleaved: the divider and the FMA pipes then work
/// at once.  On AMD Zen 4 dividing is the faster (16 vs 21 cycles a vector, measured); Intel's AVX-512 cores
/// divide 8 lanes in 16 cycles of throughput (their published tables) with two FMA units beside, where the
/// reciprocal should win.  The pair costs 1 % of a flow's time on Zen 4 against dividing alone and is not
/// expected to lose on either.  Each row keeps its method, so an event's result does not depend on its place.
inline void add_sigmoid_product_pair(double* h, const double* t, const double* g, std::size_t stride,
                                     std::size_t count) {
  detail::add_gated_pair(h, t, detail::StoredGate{g}, detail::StoredGate{g + stride}, stride, count);
}

/// The same with the gates of a gate layer with one input c: g = w[k] c + b[k] for the two rows (the rounding
/// of that layer's output, without storing it).
inline void add_sigmoid_product_pair_affine(double* h, const double* t, const double* c, const double* w,
                                            const double* b, std::size_t stride, std::size_t count) {
  detail::add_gated_pair(h, t, detail::AffineGate{c, w[0], b[0]}, detail::AffineGate{c, w[1], b[1]}, stride,
                         count);
}

/// h[i] = silu(h[i]) = h[i] / (1 + exp(-h[i])) for i < count (exp as in fast_exp).
inline void silu_rows(double* __restrict h, std::size_t count) {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 8 <= count; i += 8) {
    const __m512d v = _mm512_loadu_pd(h + i);
    _mm512_storeu_pd(h + i, sigmoid_quotient8(v, v));
  }
#elif defined(__AVX2__)
  for (; i + 4 <= count; i += 4) {
    const __m256d v = _mm256_loadu_pd(h + i);
    _mm256_storeu_pd(h + i, sigmoid_quotient4(v, v));
  }
#endif
  for (; i < count; ++i) h[i] = h[i] / (1.0 + fast_exp(-h[i]));
}

}  // namespace ROOML_ISA_NS
}  // namespace rooml
