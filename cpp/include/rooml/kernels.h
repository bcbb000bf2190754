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
  /// Works on tiles of up to kTileOutputs x kTileEvents sums held in registers.
  /// Tiles may run past n up to the next multiple of kTileEvents, which must
  /// not exceed `stride` (true for blocks: kBlock is a multiple of it); those
  /// lanes are scratch.  The sum runs over i in order, so every event gets
  /// the same rounding whatever its position in the block.
  void apply(const double* x, double* y, std::size_t n, std::size_t stride) const { run<false>(x, y, n, stride); }

  /// The same on relu(x), without a separate pass over x.
  void apply_relu_input(const double* x, double* y, std::size_t n, std::size_t stride) const {
    run<true>(x, y, n, stride);
  }

  // GCC/Clang vector extension of the native width: explicit SIMD without intrinsics.
#if defined(__AVX512F__)
  // 8 x 16 sums (16 vectors of 8) + inputs fit the 32 vector registers.
  static constexpr std::size_t kLanes = 8, kTileOutputs = 8, kTileVectors = 2;
#else
  // 8 x 4 sums (8 vectors of 4) + inputs fit the 16 AVX registers.
  static constexpr std::size_t kLanes = 4, kTileOutputs = 8, kTileVectors = 1;
#endif
  static constexpr std::size_t kTileEvents = kLanes * kTileVectors;
  static constexpr std::size_t kPackedInputs = 256;

 private:
  typedef double vec __attribute__((vector_size(kLanes * sizeof(double)), aligned(8)));
  typedef long long lvec __attribute__((vector_size(kLanes * sizeof(double)), aligned(8)));

  template <bool Relu>
  static void input(vec& v, const double* p) {
    std::memcpy(&v, p, sizeof v);
    if constexpr (Relu) v = (vec)((lvec)v & (v > 0.0));
  }

  template <bool Relu>
  void run(const double* x, double* y, std::size_t n, std::size_t stride) const {
    std::size_t o = 0;
    for (; o + kTileOutputs <= out; o += kTileOutputs) rows<kTileOutputs, Relu>(o, x, y, n, stride);
    switch (out - o) {  // the last outputs in one pass
      case 7: rows<7, Relu>(o, x, y, n, stride); break;
      case 6: rows<6, Relu>(o, x, y, n, stride); break;
      case 5: rows<5, Relu>(o, x, y, n, stride); break;
      case 4: rows<4, Relu>(o, x, y, n, stride); break;
      case 3: rows<3, Relu>(o, x, y, n, stride); break;
      case 2: rows<2, Relu>(o, x, y, n, stride); break;
      case 1: rows<1, Relu>(o, x, y, n, stride); break;
      default: break;
    }
  }

  /// Outputs [o, o + R) for all events: R x kTileEvents sums in registers while the inputs stream by.
  template <std::size_t R, bool Relu>
  __attribute__((noinline)) void rows(std::size_t o, const double* __restrict x, double* __restrict y,
                                      std::size_t n, std::size_t stride) const {
    constexpr std::size_t V = kTileVectors;
    // The R weights of each input side by side: one pointer walks them all.
    double stack[kPackedInputs * R];
    std::vector<double> heap(in > kPackedInputs ? in * R : 0);
    double* packed = heap.empty() ? stack : heap.data();
    const double* __restrict w = packed;
    for (std::size_t i = 0; i < in; ++i)
      for (std::size_t r = 0; r < R; ++r) packed[i * R + r] = weight[(o + r) * in + i];
    const double* __restrict b = bias.data() + o;
    for (std::size_t e0 = 0; e0 < n; e0 += kTileEvents) {
      vec acc[R][V];
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t v = 0; v < V; ++v) acc[r][v] = vec{} + b[r];
      const double* xr = x + e0;
      for (std::size_t i = 0; i < in; ++i, xr += stride) {
        vec xv[V];
        for (std::size_t v = 0; v < V; ++v) input<Relu>(xv[v], xr + v * kLanes);
        for (std::size_t r = 0; r < R; ++r) {
          const double wr = w[i * R + r];
          for (std::size_t v = 0; v < V; ++v) acc[r][v] += wr * xv[v];
        }
      }
      double* yr = y + o * stride + e0;
      for (std::size_t r = 0; r < R; ++r, yr += stride)
        for (std::size_t v = 0; v < V; ++v) std::memcpy(yr + v * kLanes, &acc[r][v], sizeof(vec));
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

/// An element-wise activation of a conditioner network, with torch's exact formulas.
struct DenseActivation {
  enum class Kind { Identity, Relu, LeakyRelu, Elu, Selu, Tanh, Sigmoid, Silu, Gelu };
  Kind kind = Kind::Relu;
  double param = 0.0;  // LeakyRelu: negative slope; Elu: alpha

  bool is_relu() const { return kind == Kind::Relu; }

  /// x <- act(x) on `rows` rows of `n` events (row r at x + r * stride).
  void apply(double* x, std::size_t rows, std::size_t n, std::size_t stride) const {
    if (kind == Kind::Identity) return;
    for (std::size_t r = 0; r < rows; ++r) {
      double* __restrict v = x + r * stride;
      switch (kind) {
        case Kind::Relu: relu_inplace(v, n); break;
        case Kind::LeakyRelu:
          for (std::size_t e = 0; e < n; ++e) v[e] = v[e] > 0.0 ? v[e] : param * v[e];
          break;
        case Kind::Elu:
          for (std::size_t e = 0; e < n; ++e) v[e] = v[e] > 0.0 ? v[e] : param * std::expm1(v[e]);
          break;
        case Kind::Selu: {
          constexpr double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
          for (std::size_t e = 0; e < n; ++e) v[e] = scale * (v[e] > 0.0 ? v[e] : alpha * std::expm1(v[e]));
          break;
        }
        case Kind::Tanh:
          for (std::size_t e = 0; e < n; ++e) v[e] = std::tanh(v[e]);
          break;
        case Kind::Sigmoid:
          for (std::size_t e = 0; e < n; ++e) v[e] = 1.0 / (1.0 + std::exp(-v[e]));
          break;
        case Kind::Silu:
          for (std::size_t e = 0; e < n; ++e) v[e] = v[e] / (1.0 + std::exp(-v[e]));
          break;
        case Kind::Gelu:
          for (std::size_t e = 0; e < n; ++e) v[e] = 0.5 * v[e] * (1.0 + std::erf(v[e] * M_SQRT1_2));
          break;
        case Kind::Identity: break;
      }
    }
  }
};

/// Numerically stable softplus, log(1 + exp(x)) (scalar; loops use fast_softplus).
inline double softplus(double x) { return (x > 0.0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }

}  // namespace rooml
