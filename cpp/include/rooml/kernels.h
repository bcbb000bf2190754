// Elementwise and dense kernels on structure-of-arrays event blocks.
//
// A block holds up to kBlock events; a quantity with F components is stored
// as F contiguous rows of `n` doubles (row f at data + f * stride).  Every inner
// loop runs over events, so the compiler vectorizes it; the hot ones (Dense) run
// in the kernel set chosen at run time (rooml/dispatch.h).
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "rooml/dispatch.h"

namespace rooml {

inline constexpr std::size_t kBlock = 256;

/// A dense layer y = W x + b with W stored row-major (out x in), as in torch.
/// A layer's weights in the tile order of the kernel set in use (KernelTable::pack_dense), made on first use
/// and then shared by every thread.  A copy starts empty: its layer's weights may still be changed.
class PackedWeights {
 public:
  PackedWeights() = default;
  PackedWeights(const PackedWeights&) {}
  PackedWeights& operator=(const PackedWeights&) {
    ready_ = nullptr;
    storage_.reset();
    return *this;
  }

  /// The packed copy of `weight` (out x in, row-major).
  const double* get(const std::vector<double>& weight, std::size_t in, std::size_t out) const {
    if (const double* p = ready_.load(std::memory_order_acquire)) return p;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!storage_) {
      storage_.reset(new double[weight.size() + 1]);  // + 1: never empty
      kernels().pack_dense(weight.data(), in, out, storage_.get());
      ready_.store(storage_.get(), std::memory_order_release);
    }
    return storage_.get();
  }

 private:
  mutable std::atomic<const double*> ready_{nullptr};
  mutable std::unique_ptr<double[]> storage_;
  mutable std::mutex mutex_;
};

struct Dense {
  std::size_t in = 0, out = 0;
  std::vector<double> weight;  // out * in
  std::vector<double> bias;    // out
  PackedWeights packed{};      // weight as the kernels read it: weight must not change after the first apply

  /// y[o][e] = sum_i W[o][i] x[i][e] + b[o] for e < n (rows of length `stride`).
  ///
  /// Runs in the kernel set chosen at run time (rooml/dispatch.h), on tiles of
  /// sums held in registers.  Tiles may run past n up to the next multiple of
  /// kTileEvents, which must not exceed `stride` (true for blocks: kBlock is a
  /// multiple of it); those lanes are scratch.  The sum runs over i in order, so
  /// every event gets the same rounding whatever its position in the block.
  void apply(const double* x, double* y, std::size_t n, std::size_t stride) const {
    kernels().dense(packed.get(weight, in, out), bias.data(), in, out, x, y, n, stride, false);
  }

  /// The same on relu(x), without a separate pass over x.
  void apply_relu_input(const double* x, double* y, std::size_t n, std::size_t stride) const {
    kernels().dense(packed.get(weight, in, out), bias.data(), in, out, x, y, n, stride, true);
  }

  /// The most events a tile covers in any kernel set (the padding `stride` must allow).
  static constexpr std::size_t kTileEvents = 32;
  static_assert(kBlock % kTileEvents == 0, "blocks hold whole tiles");
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
