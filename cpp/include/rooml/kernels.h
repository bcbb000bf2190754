// Elementwise and dense kernels on structure-of-arrays event blocks.
//
// A block holds up to kBlock events; a quantity with F components is stored
// as F contiguous rows of `n` doubles (row f at data + f * stride).  Every inner
// loop runs over events, so the compiler vectorizes it.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace rooml {

inline constexpr std::size_t kBlock = 256;

/// A dense layer y = W x + b with W stored row-major (out x in), as in torch.
struct Dense {
  std::size_t in = 0, out = 0;
  std::vector<double> weight;  // out * in
  std::vector<double> bias;    // out

  /// y[o][e] = sum_i W[o][i] x[i][e] + b[o] for e < n (rows of length `stride`).
  void apply(const double* x, double* y, std::size_t n, std::size_t stride) const {
    for (std::size_t o = 0; o < out; ++o) {
      double* __restrict yo = y + o * stride;
      const double b = bias[o];
      for (std::size_t e = 0; e < n; ++e) yo[e] = b;
      const double* w = weight.data() + o * in;
      std::size_t i = 0;
      for (; i + 4 <= in; i += 4) {
        const double* __restrict x0 = x + i * stride;
        const double* __restrict x1 = x0 + stride;
        const double* __restrict x2 = x1 + stride;
        const double* __restrict x3 = x2 + stride;
        const double w0 = w[i], w1 = w[i + 1], w2 = w[i + 2], w3 = w[i + 3];
        for (std::size_t e = 0; e < n; ++e) yo[e] += w0 * x0[e] + w1 * x1[e] + w2 * x2[e] + w3 * x3[e];
      }
      for (; i < in; ++i) {
        const double* __restrict xi = x + i * stride;
        const double wi = w[i];
        for (std::size_t e = 0; e < n; ++e) yo[e] += wi * xi[e];
      }
    }
  }
};

/// Per-feature affine map y = a x + c (an eval-mode batch norm).
struct Affine {
  std::vector<double> a, c;
  void apply(const double* x, double* y, std::size_t n, std::size_t stride) const {
    for (std::size_t f = 0; f < a.size(); ++f) {
      const double af = a[f], cf = c[f];
      const double* __restrict xf = x + f * stride;
      double* __restrict yf = y + f * stride;
      for (std::size_t e = 0; e < n; ++e) yf[e] = af * xf[e] + cf;
    }
  }
};

inline void relu_inplace(double* x, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) x[i] = x[i] > 0.0 ? x[i] : 0.0;
}

/// Numerically stable softplus, log(1 + exp(x)).
inline double softplus(double x) { return (x > 0.0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace rooml
