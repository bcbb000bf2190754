// Rational-quadratic spline, streaming over bins so every loop runs over events.
#include "rooml/spline.h"

#include <algorithm>
#include <cmath>

#include "rooml/kernels.h"

namespace rooml {
namespace {

// Softmax of the scaled unnormalized sizes into exps (K rows) and their sums.
void softmax_parts(const double* const* p, int k_bins, double scale, double* exps, double* sums,
                   std::size_t n) {
  double* __restrict s = sums;
  for (std::size_t e = 0; e < n; ++e) s[e] = -INFINITY;
  for (int k = 0; k < k_bins; ++k) {
    const double* __restrict pk = p[k];
    for (std::size_t e = 0; e < n; ++e) s[e] = std::max(s[e], pk[e] * scale);
  }
  for (int k = 0; k < k_bins; ++k) {
    const double* __restrict pk = p[k];
    double* __restrict ek = exps + k * n;
    for (std::size_t e = 0; e < n; ++e) ek[e] = std::exp(pk[e] * scale - s[e]);
  }
  for (std::size_t e = 0; e < n; ++e) s[e] = 0.0;
  for (int k = 0; k < k_bins; ++k) {
    const double* __restrict ek = exps + k * n;
    for (std::size_t e = 0; e < n; ++e) s[e] += ek[e];
  }
}

}  // namespace

void rq_spline(const SplineSpec& spec, const double* const* params, const double* in, double* out,
               double* logdet, std::size_t n, bool inverse, SplineScratch& scratch) {
  const int K = spec.num_bins;
  const double B = spec.tail_bound;
  const double edge_derivative = spec.min_derivative + softplus(std::log(std::exp(1.0 - spec.min_derivative) - 1.0));
  const double wscale = 1.0 - spec.min_bin_width * K;
  const double hscale = 1.0 - spec.min_bin_height * K;

  double* mem = scratch.get(n * (2 * K + 16));
  double* ew = mem;           // K rows
  double* eh = ew + K * n;    // K rows
  double* sw = eh + K * n;
  double* sh = sw + n;
  double* cw = sh + n;        // running cumulative normalized widths
  double* ch = cw + n;
  double* dprev = ch + n;     // derivative at the left knot of the current bin
  double* xin = dprev + n;    // clamped input
  double* x0 = xin + n;       // selected bin: left knot (input side)
  double* wb = x0 + n;        //               width
  double* y0 = wb + n;        //               left knot (output side)
  double* hb = y0 + n;        //               height
  double* d0 = hb + n;        //               left derivative
  double* d1 = d0 + n;        //               right derivative

  softmax_parts(params, K, spec.scale, ew, sw, n);
  softmax_parts(params + K, K, spec.scale, eh, sh, n);
  for (std::size_t e = 0; e < n; ++e) {
    sw[e] = 1.0 / sw[e];
    sh[e] = 1.0 / sh[e];
    cw[e] = 0.0;
    ch[e] = 0.0;
    dprev[e] = edge_derivative;
    xin[e] = std::clamp(in[e], -B, B);
  }

  for (int k = 0; k < K; ++k) {
    const double* __restrict ewk = ew + k * n;
    const double* __restrict ehk = eh + k * n;
    const double* __restrict pd = k + 1 < K ? params[2 * K + k] : nullptr;
    const bool first = k == 0, last = k + 1 == K;
    for (std::size_t e = 0; e < n; ++e) {
      const double left_w = first ? -B : 2.0 * B * cw[e] - B;
      const double left_h = first ? -B : 2.0 * B * ch[e] - B;
      cw[e] += spec.min_bin_width + wscale * (ewk[e] * sw[e]);
      ch[e] += spec.min_bin_height + hscale * (ehk[e] * sh[e]);
      const double right_w = last ? B : 2.0 * B * cw[e] - B;
      const double right_h = last ? B : 2.0 * B * ch[e] - B;
      const double dright = last ? edge_derivative : spec.min_derivative + softplus(pd[e]);
      const double knot = inverse ? left_h : left_w;
      if (first || xin[e] >= knot) {
        x0[e] = left_w;
        wb[e] = right_w - left_w;
        y0[e] = left_h;
        hb[e] = right_h - left_h;
        d0[e] = dprev[e];
        d1[e] = dright;
      }
      dprev[e] = dright;
    }
  }

  for (std::size_t e = 0; e < n; ++e) {
    const double delta = hb[e] / wb[e];
    const double dsum = d0[e] + d1[e] - 2.0 * delta;
    double theta, value;
    if (!inverse) {
      theta = (xin[e] - x0[e]) / wb[e];
      const double tt = theta * (1.0 - theta);
      value = y0[e] + hb[e] * (delta * theta * theta + d0[e] * tt) / (delta + dsum * tt);
    } else {
      const double dy = xin[e] - y0[e];
      const double a = dy * dsum + hb[e] * (delta - d0[e]);
      const double b = hb[e] * d0[e] - dy * dsum;
      const double c = -delta * dy;
      const double disc = std::max(b * b - 4.0 * a * c, 0.0);
      theta = (2.0 * c) / (-b - std::sqrt(disc));
      value = theta * wb[e] + x0[e];
    }
    const double tt = theta * (1.0 - theta);
    const double denominator = delta + dsum * tt;
    const double dnum =
        delta * delta * (d1[e] * theta * theta + 2.0 * delta * tt + d0[e] * (1.0 - theta) * (1.0 - theta));
    const double ld = std::log(dnum) - 2.0 * std::log(denominator);
    const bool inside = in[e] >= -B && in[e] <= B;
    out[e] = inside ? value : in[e];
    logdet[e] += inside ? (inverse ? -ld : ld) : 0.0;
  }
}

}  // namespace rooml
