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
  for (size_t e = 0; e < n; ++e) {
    out[e] = fast_exp(p[e] * scale - m[e]);
    sum[e] += out[e];
  }
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
  for (size_t e = 0; e < n; ++e) d[e] = fast_exp(-std::fabs(p[e]));
  for (size_t e = 0; e < n; ++e) d[e] = min_derivative + std::max(p[e], 0.0) + fast_log1p(d[e]);
}

struct Selected {  // the bin each event falls in
  double *x0, *w, *y0, *h, *d0, *d1;
};

struct Running {  // cumulative normalized widths and heights, derivative at the left knot
  double *cw, *ch, *dleft;
};

// One bin k: advance the cumulative sums and select the bin for events at or beyond its left knot.
typedef double v8d __attribute__((vector_size(64), aligned(8)));

inline v8d load8(const double* p) {
  v8d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(double* p, v8d v) { std::memcpy(p, &v, sizeof v); }

// One bin k for 8 events at a time (explicit vectors: GCC keeps this loop scalar otherwise).
// The flags are template parameters so that the body has no run-time branches; n must be
// a multiple of 8 (scratch rows are padded).
template <bool inverse, bool first, bool last>
__attribute__((noinline)) void bin_step(const SplineSpec& s, const double* __restrict key,
                                        const double* __restrict ew, const double* __restrict eh,
                                        const double* __restrict inv_w, const double* __restrict inv_h,
                                        const double* __restrict dright_row, Running r, Selected sel, size_t n) {
  const int K = s.num_bins;
  const double B = s.tail_bound;
  const double mbw = s.min_bin_width, mbh = s.min_bin_height;
  const double wscale = 1.0 - mbw * K, hscale = 1.0 - mbh * K;
  const v8d lo = v8d{} - B, hi = v8d{} + B;
  for (size_t e = 0; e < n; e += 8) {
    const v8d cw = load8(r.cw + e), ch = load8(r.ch + e);
    const v8d left_w = first ? lo : 2.0 * B * cw - B;
    const v8d left_h = first ? lo : 2.0 * B * ch - B;
    const v8d cw_next = cw + (mbw + wscale * (load8(ew + e) * load8(inv_w + e)));
    const v8d ch_next = ch + (mbh + hscale * (load8(eh + e) * load8(inv_h + e)));
    const v8d right_w = last ? hi : 2.0 * B * cw_next - B;
    const v8d right_h = last ? hi : 2.0 * B * ch_next - B;
    const v8d dright = load8(dright_row + e);
    const auto take = first ? (lo == lo) : load8(key + e) >= (inverse ? left_h : left_w);
    store8(sel.x0 + e, take ? left_w : load8(sel.x0 + e));
    store8(sel.w + e, take ? right_w - left_w : load8(sel.w + e));
    store8(sel.y0 + e, take ? left_h : load8(sel.y0 + e));
    store8(sel.h + e, take ? right_h - left_h : load8(sel.h + e));
    store8(sel.d0 + e, take ? load8(r.dleft + e) : load8(sel.d0 + e));
    store8(sel.d1 + e, take ? dright : load8(sel.d1 + e));
    store8(r.cw + e, cw_next);
    store8(r.ch + e, ch_next);
    store8(r.dleft + e, dright);
  }
}

ROOML_KERNEL void finish(const double* __restrict in, const double* __restrict key, Selected sel, double B,
                         bool inverse, double* __restrict out, double* __restrict logdet, double* __restrict num,
                         double* __restrict den, size_t n) {
  const double* __restrict x0 = sel.x0;
  const double* __restrict wb = sel.w;
  const double* __restrict y0 = sel.y0;
  const double* __restrict hb = sel.h;
  const double* __restrict d0 = sel.d0;
  const double* __restrict d1 = sel.d1;
  for (size_t e = 0; e < n; ++e) {
    const double delta = hb[e] / wb[e];
    const double dsum = d0[e] + d1[e] - 2.0 * delta;
    // forward: theta from x; inverse: theta solves the quadratic (nflows' stable root)
    const double dy = key[e] - y0[e];
    const double a = dy * dsum + hb[e] * (delta - d0[e]);
    const double b = hb[e] * d0[e] - dy * dsum;
    const double c = -delta * dy;
    const double root = (2.0 * c) / (-b - std::sqrt(std::max(b * b - 4.0 * a * c, 0.0)));
    const double theta = inverse ? root : (key[e] - x0[e]) / wb[e];
    const double tt = theta * (1.0 - theta);
    const double denominator = delta + dsum * tt;
    const double forward_value = y0[e] + hb[e] * (delta * theta * theta + d0[e] * tt) / denominator;
    const double value = inverse ? theta * wb[e] + x0[e] : forward_value;
    const double dnum =
        delta * delta * (d1[e] * theta * theta + 2.0 * delta * tt + d0[e] * (1.0 - theta) * (1.0 - theta));
    const bool inside = (in[e] >= -B) & (in[e] <= B);
    out[e] = inside ? value : in[e];
    num[e] = inside ? dnum : 1.0;
    den[e] = inside ? denominator : 1.0;
  }
  const double sign = inverse ? -1.0 : 1.0;
  for (size_t e = 0; e < n; ++e) logdet[e] += sign * (fast_log(num[e]) - 2.0 * fast_log(den[e]));
}

ROOML_KERNEL void clamp_row(double* __restrict out, const double* __restrict in, double B, size_t n) {
  for (size_t e = 0; e < n; ++e) out[e] = std::min(std::max(in[e], -B), B);
}

}  // namespace

void rq_spline(const SplineSpec& spec, const double* const* params, const double* in, double* out,
               double* logdet, std::size_t n, bool inverse, SplineScratch& scratch) {
  const int K = spec.num_bins;
  const double B = spec.tail_bound;
  const double edge_derivative =
      spec.min_derivative + softplus(std::log(std::exp(1.0 - spec.min_derivative) - 1.0));

  const std::size_t pitch = (n + 7) / 8 * 8;  // rows padded for the 8-lane bin_step
  double* mem = scratch.get(pitch * (3 * K + 16));
  double* ew = mem;                        // K rows
  double* eh = ew + K * pitch;             // K rows
  double* dr = eh + K * pitch;             // K rows: derivative at each bin's right knot
  double* row = dr + K * pitch;
  auto next = [&]() { double* p = row; row += pitch; return p; };
  double *inv_w = next(), *inv_h = next(), *maxima = next(), *key = next(), *orig = next();
  Running run{next(), next(), next()};
  Selected sel{next(), next(), next(), next(), next(), next()};

  softmax_parts(params, K, spec.scale, ew, inv_w, maxima, n, pitch);
  softmax_parts(params + K, K, spec.scale, eh, inv_h, maxima, n, pitch);
  for (int k = 0; k + 1 < K; ++k) softplus_row(dr + k * pitch, params[2 * K + k], spec.min_derivative, n);
  std::fill(dr + (K - 1) * pitch, dr + K * pitch, edge_derivative);  // the right edge
  std::copy(in, in + n, orig);  // `in` may be `out` (in-place use); the kernels below need distinct arrays
  clamp_row(key, orig, B, n);
  std::fill(run.cw, run.cw + n, 0.0);
  std::fill(run.ch, run.ch + n, 0.0);
  std::fill(run.dleft, run.dleft + n, edge_derivative);
  for (int k = 0; k < K; ++k) {
    auto step = inverse ? (k == 0 ? (K == 1 ? bin_step<true, true, true> : bin_step<true, true, false>)
                                  : (k + 1 == K ? bin_step<true, false, true> : bin_step<true, false, false>))
                        : (k == 0 ? (K == 1 ? bin_step<false, true, true> : bin_step<false, true, false>)
                                  : (k + 1 == K ? bin_step<false, false, true> : bin_step<false, false, false>));
    step(spec, key, ew + k * pitch, eh + k * pitch, inv_w, inv_h, dr + k * pitch, run, sel, pitch);
  }
  finish(orig, key, sel, B, inverse, out, logdet, run.cw, run.ch, n);  // cw, ch are free again
}

}  // namespace rooml
