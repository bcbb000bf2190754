// Rational-quadratic spline, streaming over bins so every loop runs over events.
//
// Each phase is a small function whose array arguments are __restrict: that is
// what lets the compiler turn every loop (exp, log and selects included) into
// SIMD code.
#include "rooml/spline.h"

#include <algorithm>
#include <cmath>

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
                   double* __restrict inv_sum, double* __restrict maxima, size_t n) {
  std::fill(maxima, maxima + n, -INFINITY);
  for (int k = 0; k < k_bins; ++k) running_max(maxima, p[k], scale, n);
  std::fill(inv_sum, inv_sum + n, 0.0);
  for (int k = 0; k < k_bins; ++k) exp_and_sum(exps + k * n, inv_sum, p[k], maxima, scale, n);
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
// The flags are template parameters so that the loop body has no run-time branches.
template <bool inverse, bool first, bool last>
__attribute__((noinline)) void bin_step(const SplineSpec& s, const double* __restrict key,
                                        const double* __restrict ew, const double* __restrict eh,
                                        const double* __restrict inv_w, const double* __restrict inv_h,
                                        const double* __restrict dright_row, Running r, Selected sel, size_t n) {
  const int K = s.num_bins;
  const double B = s.tail_bound;
  const double mbw = s.min_bin_width, mbh = s.min_bin_height;
  const double wscale = 1.0 - mbw * K, hscale = 1.0 - mbh * K;
  double* __restrict cw = r.cw;
  double* __restrict ch = r.ch;
  double* __restrict dl = r.dleft;
  double* __restrict x0 = sel.x0;
  double* __restrict w = sel.w;
  double* __restrict y0 = sel.y0;
  double* __restrict h = sel.h;
  double* __restrict d0 = sel.d0;
  double* __restrict d1 = sel.d1;
  for (size_t e = 0; e < n; ++e) {
    const double left_w = first ? -B : 2.0 * B * cw[e] - B;
    const double left_h = first ? -B : 2.0 * B * ch[e] - B;
    const double cw_next = cw[e] + (mbw + wscale * (ew[e] * inv_w[e]));
    const double ch_next = ch[e] + (mbh + hscale * (eh[e] * inv_h[e]));
    const double right_w = last ? B : 2.0 * B * cw_next - B;
    const double right_h = last ? B : 2.0 * B * ch_next - B;
    const double dright = dright_row[e];
    const bool take = first || key[e] >= (inverse ? left_h : left_w);
    // plain loads first: a load inside a ?: branch is control flow and stops vectorization
    const double old_x0 = x0[e], old_w = w[e], old_y0 = y0[e], old_h = h[e], old_d0 = d0[e], old_d1 = d1[e];
    const double d_left = dl[e];
    x0[e] = take ? left_w : old_x0;
    w[e] = take ? right_w - left_w : old_w;
    y0[e] = take ? left_h : old_y0;
    h[e] = take ? right_h - left_h : old_h;
    d0[e] = take ? d_left : old_d0;
    d1[e] = take ? dright : old_d1;
    cw[e] = cw_next;
    ch[e] = ch_next;
    dl[e] = dright;
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

  double* mem = scratch.get(n * (3 * K + 16));
  double* ew = mem;                    // K rows
  double* eh = ew + K * n;             // K rows
  double* dr = eh + K * n;             // K rows: derivative at each bin's right knot
  double* row = dr + K * n;
  auto next = [&]() { double* p = row; row += n; return p; };
  double *inv_w = next(), *inv_h = next(), *maxima = next(), *key = next(), *orig = next();
  Running run{next(), next(), next()};
  Selected sel{next(), next(), next(), next(), next(), next()};

  softmax_parts(params, K, spec.scale, ew, inv_w, maxima, n);
  softmax_parts(params + K, K, spec.scale, eh, inv_h, maxima, n);
  for (int k = 0; k + 1 < K; ++k) softplus_row(dr + k * n, params[2 * K + k], spec.min_derivative, n);
  std::fill(dr + (K - 1) * n, dr + K * n, edge_derivative);  // the right edge
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
    step(spec, key, ew + k * n, eh + k * n, inv_w, inv_h, dr + k * n, run, sel, n);
  }
  finish(orig, key, sel, B, inverse, out, logdet, run.cw, run.ch, n);  // cw, ch are free again
}

}  // namespace rooml
