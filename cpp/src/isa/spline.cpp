// Rational-quadratic spline of one kernel set (see isa.h), streaming over bins so every loop runs over events.
//
// Each phase is a small function whose array arguments are __restrict: that is
// what lets the compiler turn every loop (exp, log and selects included) into
// SIMD code.
#include "isa.h"
#include "rooml/spline.h"

namespace rooml::ROOML_ISA_NS {
namespace {

// Kept out of line: inlined into their callers, the __restrict promises are lost and loops stay scalar.
#define ROOML_KERNEL __attribute__((noinline)) static

// One vector of this kernel set's width.
constexpr size_t kLanes = ROOML_ISA_LANES;
typedef double vnd __attribute__((vector_size(kLanes * sizeof(double)), aligned(8)));

// Through the vector type (it aliases double), not memcpy: see dense.cpp.
inline vnd loadv(const double* p) { return *reinterpret_cast<const vnd*>(p); }
inline void storev(double* p, vnd v) { *reinterpret_cast<vnd*>(p) = v; }

inline vnd exp_v(vnd x) {
#if defined(__AVX512F__)
  return reinterpret_cast<vnd>(exp8(reinterpret_cast<__m512d>(x)));
#elif defined(__AVX2__)
  return reinterpret_cast<vnd>(exp4(reinterpret_cast<__m256d>(x)));
#else
  vnd y;
  for (size_t l = 0; l < kLanes; ++l) y[l] = fast_exp(x[l]);
  return y;
#endif
}

// Softmax parts of one vector of events e..e+kLanes of the K rows row(k): exps[k] = exp(scale row(k) -
// max_k scale row(k)) and inv_sum = 1 / sum_k exps[k], the K values held in registers between the passes.
// (exps is not __restrict: for the staged last vector, row(k) points into it.)
template <class Row>
inline void softmax_vector(Row row, int K, double scale, size_t e, double* exps, double* __restrict inv_sum,
                           size_t pitch) {
  vnd m = loadv(row(0) + e) * scale;
  for (int k = 1; k < K; ++k) {
    const vnd v = loadv(row(k) + e) * scale;
    m = v > m ? v : m;
  }
  vnd sum{};
  for (int k = 0; k < K; ++k) {
    const vnd x = exp_v(loadv(row(k) + e) * scale - m);
    storev(exps + k * pitch + e, x);
    sum += x;
  }
  storev(inv_sum + e, 1.0 / sum);
}

// Softmax parts of the scaled unnormalized sizes: exps (K rows) and 1 / their sum.  The last partial vector
// is staged in exps' padding, so every event takes the same vector path whatever its place in the block.
__attribute__((noinline)) void softmax_parts(const double* const* p, int K, double scale, double* exps,
                                             double* __restrict inv_sum, size_t n, size_t pitch) {
  size_t e = 0;
  for (; e + kLanes <= n; e += kLanes) softmax_vector([p](int k) { return p[k]; }, K, scale, e, exps, inv_sum, pitch);
  if (e == n) return;
  for (int k = 0; k < K; ++k)
    for (size_t l = 0; l < kLanes; ++l) exps[k * pitch + e + l] = e + l < n ? p[k][e + l] : 0.0;
  softmax_vector([exps, pitch](int k) { return exps + k * pitch; }, K, scale, e, exps, inv_sum, pitch);
}

// min_derivative + softplus(p), as two loops: the compiler vectorizes exp and log only when they are apart.
ROOML_KERNEL void softplus_row(double* __restrict d, const double* __restrict p, double min_derivative, size_t n) {
  for (size_t e = 0; e < n; ++e) d[e] = -std::fabs(p[e]);
  exp_inplace(d, n);
  for (size_t e = 0; e < n; ++e) d[e] = min_derivative + max_d(p[e], 0.0) + fast_log1p_unit(d[e]);
}

struct Selected {  // the bin each event falls in
  double *x0, *w, *y0, *h, *d0, *d1;
};

// The bin of each event: walk the knots (cumulative normalized widths and heights) for kLanes events at a
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
  const vnd lo = vnd{} - B, hi = vnd{} + B;
  for (size_t e = 0; e < n; e += kLanes) {
    const vnd kv = loadv(key + e), iw = loadv(inv_w + e), ih = loadv(inv_h + e);
    vnd cw{}, ch{}, dleft = vnd{} + edge_raw;
    vnd x0{}, w{}, y0{}, h{}, d0{}, d1{};
    for (int k = 0; k < K; ++k) {
      const size_t row = k * pitch + e;
      const vnd left_w = k == 0 ? lo : 2.0 * B * cw - B;
      const vnd left_h = k == 0 ? lo : 2.0 * B * ch - B;
      cw += mbw + wscale * (loadv(ew + row) * iw);
      ch += mbh + hscale * (loadv(eh + row) * ih);
      const vnd right_w = k + 1 == K ? hi : 2.0 * B * cw - B;
      const vnd right_h = k + 1 == K ? hi : 2.0 * B * ch - B;
      const vnd dright = loadv(dr + row);
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
    storev(sel.x0 + e, x0);
    storev(sel.w + e, w);
    storev(sel.y0 + e, y0);
    storev(sel.h + e, h);
    storev(sel.d0 + e, d0);
    storev(sel.d1 + e, d1);
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
      theta = (2.0 * c) / (-b - std::sqrt(max_d(b * b - 4.0 * a * c, 0.0)));
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
  for (size_t e = 0; e < n; ++e) out[e] = min_d(max_d(in[e], -B), B);
}

inline double* next(double*& row, size_t pitch) {
  double* p = row;
  row += pitch;
  return p;
}

}  // namespace

void rq_spline(const SplineSpec& spec, const double* const* params, const double* in, double* out, double* logdet,
               size_t n, bool inverse, double* mem) {
  const int K = spec.num_bins;
  const double B = spec.tail_bound;
  // nflows pads the unnormalized derivatives with this value at both edges (derivative 1 there).
  const double edge_raw = std::log(std::exp(1.0 - spec.min_derivative) - 1.0);

  // Rows padded to whole vectors, plus one: a pitch of a power of two would put every row in the same cache sets.
  const size_t pitch = (n + 7) / 8 * 8 + 8;  // as rq_spline_scratch_size
  double* ew = mem;                        // K rows
  double* eh = ew + K * pitch;             // K rows
  double* dr = eh + K * pitch;             // K rows: unnormalized derivative at each bin's right knot
  double* row = dr + K * pitch;
  double *inv_w = next(row, pitch), *inv_h = next(row, pitch);
  double *key = next(row, pitch), *orig = next(row, pitch);
  Selected raw;  // knot derivatives still unnormalized
  raw.x0 = next(row, pitch), raw.w = next(row, pitch), raw.y0 = next(row, pitch), raw.h = next(row, pitch);
  raw.d0 = next(row, pitch), raw.d1 = next(row, pitch);
  double *d0 = next(row, pitch), *d1 = next(row, pitch), *ratio = next(row, pitch);

  softmax_parts(params, K, spec.scale, ew, inv_w, n, pitch);
  softmax_parts(params + K, K, spec.scale, eh, inv_h, n, pitch);
  for (int k = 0; k + 1 < K; ++k) std::memcpy(dr + k * pitch, params[2 * K + k], n * sizeof(double));
  for (size_t e = 0; e < pitch; ++e) dr[(K - 1) * pitch + e] = edge_raw;  // the right edge
  std::memcpy(orig, in, n * sizeof(double));  // `in` may be `out` (in-place use); the kernels need distinct arrays
  clamp_row(key, orig, B, n);
  (inverse ? select_bins<true> : select_bins<false>)(spec, key, ew, eh, inv_w, inv_h, dr, edge_raw, raw,
                                                      (n + 7) / 8 * 8, pitch);
  // Only the selected bin's two knot derivatives are needed: normalize just those.
  softplus_row(d0, raw.d0, spec.min_derivative, n);
  softplus_row(d1, raw.d1, spec.min_derivative, n);
  const Selected sel{raw.x0, raw.w, raw.y0, raw.h, d0, d1};
  (inverse ? finish<true> : finish<false>)(orig, key, sel, B, out, logdet, ratio, n);
}

}  // namespace rooml::ROOML_ISA_NS
