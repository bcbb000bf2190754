// Dense layers and elementwise kernels of one kernel set (see isa.h).
#include "isa.h"
#include "rooml/vecmath.h"

namespace rooml::ROOML_ISA_NS {
namespace {

// Tile shapes: R outputs x V vectors of kLanes events of sums held in registers while the inputs stream by.
#if defined(__AVX512F__)
constexpr size_t kLanes = 8, kTileOutputs = 8, kTileVectors = 2;  // 16 sums + 2 inputs of 32 registers
#elif defined(__AVX2__)
constexpr size_t kLanes = 4, kTileOutputs = 6, kTileVectors = 2;  // 12 sums + 2 inputs + 1 weight of 16
#elif defined(__aarch64__)
constexpr size_t kLanes = 2, kTileOutputs = 8, kTileVectors = 2;  // NEON: 16 sums + 2 inputs of 32
#else
constexpr size_t kLanes = 2, kTileOutputs = 6, kTileVectors = 2;  // SSE2: 12 sums + 2 inputs of 16
#endif
constexpr size_t kTileEvents = kLanes * kTileVectors;
static_assert(kTileEvents <= 16, "Dense::kTileEvents (the padding promised to callers) is 16");
constexpr size_t kPackedInputs = 256;

// GCC/Clang vector extension of this kernel set's width: explicit SIMD without intrinsics.
typedef double vec __attribute__((vector_size(kLanes * sizeof(double)), aligned(8)));
typedef long long lvec __attribute__((vector_size(kLanes * sizeof(double)), aligned(8)));

// Loads and stores through the vector type (it aliases double), not memcpy: GCC 12 copies 256-bit
// memcpys through the stack in 128-bit halves, and the reload then stalls.
template <bool Relu>
inline void input(vec& v, const double* p) {
  v = *reinterpret_cast<const vec*>(p);
  if constexpr (Relu) v = (vec)((lvec)v & (v > 0.0));
}

/// Outputs [o, o + R) for all events.  The sum runs over i in order, so every event gets the same rounding
/// whatever its position in the block.
template <size_t R, bool Relu>
__attribute__((noinline)) void rows(const double* weight, const double* bias, size_t in, size_t o,
                                    const double* __restrict x, double* __restrict y, size_t n, size_t stride) {
  constexpr size_t V = kTileVectors;
  // The R weights of each input side by side: one pointer walks them all.
  double stack[kPackedInputs * R];
  double* heap = in > kPackedInputs ? new double[in * R] : nullptr;
  double* packed = heap ? heap : stack;
  for (size_t i = 0; i < in; ++i)
    for (size_t r = 0; r < R; ++r) packed[i * R + r] = weight[(o + r) * in + i];
  const double* __restrict w = packed;
  const double* __restrict b = bias + o;
  for (size_t e0 = 0; e0 < n; e0 += kTileEvents) {
    vec acc[R][V];
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v) acc[r][v] = vec{} + b[r];
    const double* xr = x + e0;
    for (size_t i = 0; i < in; ++i, xr += stride) {
      vec xv[V];
      for (size_t v = 0; v < V; ++v) input<Relu>(xv[v], xr + v * kLanes);
      for (size_t r = 0; r < R; ++r) {
        const double wr = w[i * R + r];
        for (size_t v = 0; v < V; ++v) acc[r][v] += wr * xv[v];
      }
    }
    double* yr = y + o * stride + e0;
    for (size_t r = 0; r < R; ++r, yr += stride)
      for (size_t v = 0; v < V; ++v) *reinterpret_cast<vec*>(yr + v * kLanes) = acc[r][v];
  }
  delete[] heap;
}

/// The last `left` (< kTileOutputs) outputs in one pass.
template <bool Relu, size_t R = kTileOutputs - 1>
void last_rows(size_t left, const double* weight, const double* bias, size_t in, size_t o, const double* x,
               double* y, size_t n, size_t stride) {
  if constexpr (R > 0) {
    if (left == R) return rows<R, Relu>(weight, bias, in, o, x, y, n, stride);
    last_rows<Relu, R - 1>(left, weight, bias, in, o, x, y, n, stride);
  }
}

template <bool Relu>
void run(const double* weight, const double* bias, size_t in, size_t out, const double* x, double* y, size_t n,
         size_t stride) {
  size_t o = 0;
  for (; o + kTileOutputs <= out; o += kTileOutputs) rows<kTileOutputs, Relu>(weight, bias, in, o, x, y, n, stride);
  last_rows<Relu>(out - o, weight, bias, in, o, x, y, n, stride);
}

}  // namespace

void dense(const double* weight, const double* bias, size_t in, size_t out, const double* x, double* y, size_t n,
           size_t stride, bool relu_input) {
  (relu_input ? run<true> : run<false>)(weight, bias, in, out, x, y, n, stride);
}

void silu_inplace(double* __restrict h, size_t count) {
  for (size_t e = 0; e < count; ++e) h[e] = h[e] / (1.0 + fast_exp(-h[e]));
}

void add_inplace(double* __restrict h, const double* __restrict t, size_t count) {
  for (size_t e = 0; e < count; ++e) h[e] += t[e];
}

}  // namespace rooml::ROOML_ISA_NS
