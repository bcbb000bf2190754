// Elementwise and dense kernels on structure-of-arrays event blocks.
//
// A block holds up to kBlock events; a quantity with F components is stored
// as F contiguous rows of `n` doubles (row f at data + f * stride).  Every inner
// loop runs over events, so the compiler vectorizes it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

namespace rooml {

inline constexpr std::size_t kBlock = 256;

/// A dense layer y = W x + b with W stored row-major (out x in), as in torch.
struct Dense {
  std::size_t in = 0, out = 0;
  std::vector<double> weight;  // out * in
  std::vector<double> bias;    // out

  /// y[o][e] = sum_i W[o][i] x[i][e] + b[o] for e < n (rows of length `stride`).
  ///
  /// Works on tiles of up to 8 outputs x 8 events.  Tiles may run past n up to
  /// the next multiple of 8, which must not exceed `stride` (true for blocks:
  /// kBlock is a multiple of 8); those lanes are scratch.
  void apply(const double* x, double* y, std::size_t n, std::size_t stride) const { run<false>(x, y, n, stride); }

  /// The same on relu(x), without a separate pass over x.
  void apply_relu_input(const double* x, double* y, std::size_t n, std::size_t stride) const {
    run<true>(x, y, n, stride);
  }

 private:
  // GCC/Clang vector extension: 8 doubles, explicit SIMD without intrinsics.
  static constexpr std::size_t kLanes = 8;
  typedef double v8d __attribute__((vector_size(64), aligned(8)));

  template <bool Relu>
  void run(const double* x, double* y, std::size_t n, std::size_t stride) const {
    std::size_t o = 0;
    for (; o + 8 <= out; o += 8)
      for (std::size_t e0 = 0; e0 < n; e0 += kLanes) tile<8, Relu>(o, x + e0, y + e0, stride);
    for (; o + 4 <= out; o += 4)
      for (std::size_t e0 = 0; e0 < n; e0 += kLanes) tile<4, Relu>(o, x + e0, y + e0, stride);
    for (; o < out; ++o)
      for (std::size_t e0 = 0; e0 < n; e0 += kLanes) tile<1, Relu>(o, x + e0, y + e0, stride);
  }

  /// R outputs x 8 events in registers while the inputs stream by.
  template <std::size_t R, bool Relu>
  void tile(std::size_t o, const double* __restrict x, double* __restrict y, std::size_t stride) const {
    v8d acc[R];
    for (std::size_t r = 0; r < R; ++r) acc[r] = v8d{} + bias[o + r];
    const double* w = weight.data() + o * in;
    for (std::size_t i = 0; i < in; ++i) {
      v8d xi;
      std::memcpy(&xi, x + i * stride, sizeof xi);
      if constexpr (Relu) xi = xi > 0.0 ? xi : 0.0;
      for (std::size_t r = 0; r < R; ++r) acc[r] += w[r * in + i] * xi;
    }
    for (std::size_t r = 0; r < R; ++r) std::memcpy(y + (o + r) * stride, &acc[r], sizeof(v8d));
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

/// Numerically stable softplus, log(1 + exp(x)) (scalar; loops use fast_softplus).
inline double softplus(double x) { return (x > 0.0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }

}  // namespace rooml
