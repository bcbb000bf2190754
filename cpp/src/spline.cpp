// Rational-quadratic spline, streaming over bins so every loop runs over events.
//
// Each phase is a small function whose array arguments are __restrict: that is
// what lets the compiler turn every loop (exp, log and selects included) into
// SIMD code.
#include "rooml/spline.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "rooml/kernels.h"
#include "rooml/vecmath.h"

namespace rooml {
namespace {

using std::size_t;

// Kept out of line: inlined into their callers, the __restrict promises are lost and loops stay scalar.
#define ROOML_KERNEL __attribute__((noinline)) static

ROOML_KERNEL void running_max(double* __restrict m, const double* __restrict p, double scale, size_t n) {
  for (size_t e = 0; e < n; ++e) m[e] = std::max(m[e], p[e] * scale);
}

ROOML_KERNEL void exp_and_sum(double* __restrict out, double* __restrict sum, const double* __restrict p,
                 const double* __restrict m, double scale, size_t n) {
  for (size_t e = 0; e < n; ++e) out[e] = p[e] * scale - m[e];
  exp_inplace(out, n);
  for (size_t e = 0; e < n; ++e) sum[e] += out[e];
}

// Softmax parts of the scaled unnormalized sizes: exps (K rows) and 1 / their sum.
void softmax_parts(const double* const* p, int k_bins, double scale, double* __restrict exps,
                   double* __restrict inv_sum, double* __restrict maxima, size_t n, size_t pitch) {
  std::fill(maxima, maxima + n, -INFINITY);
  for (int k = 0; k < k_bins; ++k) running_max(maxima, p[k], scale, n);
  std::fill(inv_sum, inv_sum + n, 0.0);
  for (int k = 0; k < k_bins; ++k) exp_and_sum(exps + k * pitch, inv_sum, p[k], maxima, scale, n);
  for (size_t e = 0; e < n; ++e) inv_sum[e] = 1.0 / inv_sum[e];
}

// min_derivative + softplus(p), as two loops: the compiler vectorizes exp and log only when they are apart.
ROOML_KERNEL void softplus_row(double* __restrict d, const double* __restrict p, double min_derivative, size_t n) {
  for (size_t e = 0; e < n; ++e) d[e] = -std::fabs(p[e]);
  exp_inplace(d, n);
  for (size_t e = 0; e < n; ++e) d[e] = min_derivative + std::max(p[e], 0.0) + fast_log1p_unit(d[e]);
}

struct Selected {  // the bin each event falls in
  double *x0, *w, *y0, *h, *d0, *d1;
};

typedef double v8d __attribute__((vector_size(64), aligned(8)));

// These helpers are internal and inlined: the ABI of passing 64-byte vectors (GCC's -Wpsabi note
// when AVX-512 is off) does not matter.
#pragma GCC diagnostic ignored "-Wpsabi"
inline v8d load8(const double* p) {
  v8d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(double* p, v8d v) { std::memcpy(p, &v, sizeof v); }

// The bin of each event: walk the knots (cumulative normalized widths and heights) for 8 events at a
// time, keeping the running sums and the selection in registers, and write the selected bin's
// left knot, size and (unnormalized) knot derivatives once.  n must be a multiple of 8 (scratch
// rows are padded).
template <bool inverse>
__attribute__((noinline)) void select_bins(const SplineSpec& s, const double* __restrict key,
                                           const double* __restrict ew, const double* __restrict eh,
                                           const double* __restrict inv_w, const double* __restrict inv_h,
                                           const double* __restrict dr, double edge_raw, Selected sel,
                                           size_t n, size_t pitch) {
  const int K = s.num_bins;
  const double B = s.tail_bound;
  const double mbw = s.min_bin_width, mbh = s.min_bin_height;
  const double wscale = 1.0 - mbw * K, hscale = 1.0 - mbh * K;
  const v8d lo = v8d{} - B, hi = v8d{} + B;
  for (size_t e = 0; e < n; e += 8) {
    const v8d kv = load8(key + e), iw = load8(inv_w + e), ih = load8(inv_h + e);
    v8d cw{}, ch{}, dleft = v8d{} + edge_raw;
    v8d x0{}, w{}, y0{}, h{}, d0{}, d1{};
    for (int k = 0; k < K; ++k) {
      const size_t row = k * pitch + e;
      const v8d left_w = k == 0 ? lo : 2.0 * B * cw - B;
      const v8d left_h = k == 0 ? lo : 2.0 * B * ch - B;
      cw += mbw + wscale * (load8(ew + row) * iw);
      ch += mbh + hscale * (load8(eh + row) * ih);
      const v8d right_w = k + 1 == K ? hi : 2.0 * B * cw - B;
      const v8d right_h = k + 1 == K ? hi : 2.0 * B * ch - B;
      const v8d dright = load8(dr + row);
      if (k == 0) {
        x0 = left_w, w = right_w - left_w, y0 = left_h, h = right_h - left_h, d0 = dleft, d1 = dright;
      } else {
        const auto take = kv >= (inverse ? left_h : left_w);
        x0 = take ? left_w : x0;
        w = take ? right_w - left_w : w;
        y0 = take ? left_h : y0;
        h = take ? right_h - left_h : h;
        d0 = take ? dleft : d0;
        d1 = take ? dright : d1;
      }
      dleft = dright;
    }
    store8(sel.x0 + e, x0);
    store8(sel.w + e, w);
    store8(sel.y0 + e, y0);
    store8(sel.h + e, h);
    store8(sel.d0 + e, d0);
    store8(sel.d1 + e, d1);
  }
}

// The RQ formula in the selected bin (forward: y from x; inverse: x from y via nflows' stable root of
// the quadratic), identity outside the tail bound, and log|dy/dx| (or its negative) added to logdet.
template <bool inverse>
__attribute__((noinline)) void finish(const double* __restrict in, const double* __restrict key, Selected sel,
                                      double B, double* __restrict out, double* __restrict logdet,
                                      double* __restrict ratio, size_t n) {
  const double* __restrict x0 = sel.x0;
  const double* __restrict wb = sel.w;
  const double* __restrict y0 = sel.y0;
  const double* __restrict hb = sel.h;
  const double* __restrict d0 = sel.d0;
  const double* __restrict d1 = sel.d1;
  for (size_t e = 0; e < n; ++e) {
    const double inv_w = 1.0 / wb[e];
    const double delta = hb[e] * inv_w;
    const double dsum = d0[e] + d1[e] - 2.0 * delta;
    double theta;
    if constexpr (inverse) {
      const double dy = key[e] - y0[e];
      const double a = dy * dsum + hb[e] * (delta - d0[e]);
      const double b = hb[e] * d0[e] - dy * dsum;
      const double c = -delta * dy;
      theta = (2.0 * c) / (-b - std::sqrt(std::max(b * b - 4.0 * a * c, 0.0)));
    } else {
      theta = (key[e] - x0[e]) * inv_w;
    }
    const double tt = theta * (1.0 - theta);
    const double inv_den = 1.0 / (delta + dsum * tt);
    const double value = inverse ? theta * wb[e] + x0[e] : y0[e] + hb[e] * (delta * theta * theta + d0[e] * tt) * inv_den;
    const double dnum =
        delta * delta * (d1[e] * theta * theta + 2.0 * delta * tt + d0[e] * (1.0 - theta) * (1.0 - theta));
    const bool inside = (in[e] >= -B) & (in[e] <= B);
    out[e] = inside ? value : in[e];
    ratio[e] = inside ? dnum * inv_den * inv_den : 1.0;  // dy/dx
  }
  for (size_t e = 0; e < n; ++e) logdet[e] += inverse ? -fast_log(ratio[e]) : fast_log(ratio[e]);
}

ROOML_KERNEL void clamp_row(double* __restrict out, const double* __restrict in, double B, size_t n) {
  for (size_t e = 0; e < n; ++e) out[e] = std::min(std::max(in[e], -B), B);
}

}  // namespace

void rq_spline(const SplineSpec& spec, const double* const* params, const double* in, double* out,
               double* logdet, std::size_t n, bool inverse, SplineScratch& scratch) {
  const int K = spec.num_bins;
  const double B = spec.tail_bound;
  // nflows pads the unnormalized derivatives with this value at both edges (derivative 1 there).
  const double edge_raw = std::log(std::exp(1.0 - spec.min_derivative) - 1.0);

  const std::size_t pitch = (n + 7) / 8 * 8;  // rows padded for the 8-lane select_bins
  double* mem = scratch.get(pitch * (3 * K + 14));
  double* ew = mem;                        // K rows
  double* eh = ew + K * pitch;             // K rows
  double* dr = eh + K * pitch;             // K rows: unnormalized derivative at each bin's right knot
  double* row = dr + K * pitch;
  auto next = [&]() { double* p = row; row += pitch; return p; };
  double *inv_w = next(), *inv_h = next(), *maxima = next(), *key = next(), *orig = next();
  Selected raw{next(), next(), next(), next(), next(), next()};  // knot derivatives still unnormalized
  double *d0 = next(), *d1 = next(), *ratio = next();

  softmax_parts(params, K, spec.scale, ew, inv_w, maxima, n, pitch);
  softmax_parts(params + K, K, spec.scale, eh, inv_h, maxima, n, pitch);
  for (int k = 0; k + 1 < K; ++k) std::copy(params[2 * K + k], params[2 * K + k] + n, dr + k * pitch);
  std::fill(dr + (K - 1) * pitch, dr + K * pitch, edge_raw);  // the right edge
  std::copy(in, in + n, orig);  // `in` may be `out` (in-place use); the kernels below need distinct arrays
  clamp_row(key, orig, B, n);
  (inverse ? select_bins<true> : select_bins<false>)(spec, key, ew, eh, inv_w, inv_h, dr, edge_raw, raw, pitch,
                                                      pitch);
  // Only the selected bin's two knot derivatives are needed: normalize just those.
  softplus_row(d0, raw.d0, spec.min_derivative, n);
  softplus_row(d1, raw.d1, spec.min_derivative, n);
  const Selected sel{raw.x0, raw.w, raw.y0, raw.h, d0, d1};
  (inverse ? finish<true> : finish<false>)(orig, key, sel, B, out, logdet, ratio, n);
}

}  // namespace rooml
