// Dense layers and elementwise kernels of one kernel set (see isa.h).
#include "isa.h"
#include "rooml/vecmath.h"

namespace rooml::ROOML_ISA_NS {
namespace {

// Tiles: up to kMaxOutputs outputs x V vectors of kLanes events of sums held in registers while the inputs
// stream by.
#if defined(__AVX512F__)
constexpr size_t kLanes = 8, kMaxOutputs = 5, kTileVectors = 4;  // 20 sums + 4 inputs of 32 registers
#elif defined(__AVX2__)
constexpr size_t kLanes = 4, kMaxOutputs = 6, kTileVectors = 2;  // 12 sums + 2 inputs + 1 weight of 16
#elif defined(__aarch64__)
constexpr size_t kLanes = 2, kMaxOutputs = 8, kTileVectors = 2;  // NEON: 16 sums + 2 inputs of 32
#else
constexpr size_t kLanes = 2, kMaxOutputs = 6, kTileVectors = 2;  // SSE2: 12 sums + 2 inputs of 16
#endif
constexpr size_t kTileEvents = kLanes * kTileVectors;
static_assert(kTileEvents <= 32, "Dense::kTileEvents (the padding promised to callers) is 32");
// Layers are summed over panels of at most kPanelInputs inputs (the bias and inputs [0, 256), then the next
// 256 added to those sums, ...): the inputs of a panel stay in L2 while all output tiles pass over them.
constexpr size_t kPanelInputs = 256;

// GCC/Clang vector extension of this kernel set's width: explicit SIMD without intrinsics.
typedef double vec __attribute__((vector_size(kLanes * sizeof(double)), aligned(8)));

// Loads and stores through the vector type (it aliases double), not memcpy: GCC 12 copies 256-bit
// memcpys through the stack in 128-bit halves, and the reload then stalls.
inline vec load(const double* p) { return *reinterpret_cast<const vec*>(p); }
inline void store(double* p, vec v) { *reinterpret_cast<vec*>(p) = v; }

// relu(v) = max(v, 0) in one instruction (NaN and -0 give +0, as before).
inline vec relu(vec v) {
#if defined(__AVX512F__)
  return _mm512_max_pd(v, _mm512_setzero_pd());
#elif defined(__AVX2__)
  return _mm256_max_pd(v, _mm256_setzero_pd());
#else
  return v > 0.0 ? v : vec{};
#endif
}

/// Outputs [o, o + R) for all events over one panel of `in` inputs: y = start + sum_i w[i][r] x[i], with start
/// the bias (FromBias) or y's sums of the earlier panels.  The sum runs over i in order, so every event gets
/// the same rounding whatever its position in the block (and a layer summed in panels is summed in order).
template <size_t R, bool Relu, bool FromBias>
__attribute__((noinline)) void rows(const double* __restrict w, const double* __restrict bias, size_t in,
                                    const double* __restrict x, double* __restrict y, size_t n, size_t stride) {
  constexpr size_t V = kTileVectors;
  for (size_t e0 = 0; e0 < n; e0 += kTileEvents) {
    vec acc[R][V];
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v) acc[r][v] = FromBias ? vec{} + bias[r] : load(y + r * stride + e0 + v * kLanes);
    const double* xr = x + e0;
    const double* wr = w;
    for (size_t i = 0; i < in; ++i, xr += stride, wr += R) {
      vec xv[V];
      for (size_t v = 0; v < V; ++v) xv[v] = Relu ? relu(load(xr + v * kLanes)) : load(xr + v * kLanes);
      for (size_t r = 0; r < R; ++r)
        for (size_t v = 0; v < V; ++v) acc[r][v] += wr[r] * xv[v];
    }
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v) store(y + r * stride + e0 + v * kLanes, acc[r][v]);
  }
}

typedef void (*RowsFn)(const double*, const double*, size_t, const double*, double*, size_t, size_t);

template <bool Relu, bool FromBias, size_t R = kMaxOutputs>
RowsFn rows_fn(size_t r) {
  if constexpr (R == 0) {
    return nullptr;
  } else {
    return r == R ? &rows<R, Relu, FromBias> : rows_fn<Relu, FromBias, R - 1>(r);
  }
}

RowsFn rows_fn(size_t r, bool relu_input, bool from_bias) {
  if (relu_input) return from_bias ? rows_fn<true, true>(r) : rows_fn<true, false>(r);
  return from_bias ? rows_fn<false, true>(r) : rows_fn<false, false>(r);
}

/// The outputs cut into `count` tiles of at most kMaxOutputs that differ by at most one (32 = 6+6+5+5+5+5, not
/// 6+6+6+6+6+2: a narrow tile has too few independent sums to keep the FMA units busy).
struct Tiles {
  size_t count, base, wider;
  explicit Tiles(size_t out) : count((out + kMaxOutputs - 1) / kMaxOutputs), base(out / count), wider(out % count) {}
  size_t first(size_t t) const { return t * base + (t < wider ? t : wider); }
  size_t size(size_t t) const { return base + (t < wider ? 1 : 0); }
};

}  // namespace

namespace {

/// Calls tile(i0, panel, o, size, offset) for every tile of every panel, in the order dense sums them: panels of
/// inputs [i0, i0 + panel), each panel's output tiles [o, o + size).  `offset` is where that tile's weights
/// start in the packed layout (panel after panel, tile after tile, each tile input by input: [i][r]).
template <class Tile>
void for_each_tile(size_t in, size_t out, Tile&& tile) {
  if (out == 0) return;  // Tiles needs at least one output
  const Tiles tiles(out);
  for (size_t i0 = 0; i0 < in; i0 += kPanelInputs) {
    const size_t panel = in - i0 < kPanelInputs ? in - i0 : kPanelInputs;
    for (size_t t = 0; t < tiles.count; ++t) {
      const size_t o = tiles.first(t);
      tile(i0, panel, o, tiles.size(t), i0 * out + panel * o);
    }
  }
}

}  // namespace

void pack_dense(const double* weight, size_t in, size_t out, double* packed) {
  for_each_tile(in, out, [&](size_t i0, size_t panel, size_t o, size_t size, size_t offset) {
    for (size_t i = 0; i < panel; ++i)
      for (size_t r = 0; r < size; ++r) packed[offset + i * size + r] = weight[(o + r) * in + i0 + i];
  });
}

void dense(const double* packed, const double* bias, size_t in, size_t out, const double* x, double* y, size_t n,
           size_t stride, bool relu_input) {
  for_each_tile(in, out, [&](size_t i0, size_t panel, size_t o, size_t size, size_t offset) {
    rows_fn(size, relu_input, i0 == 0)(packed + offset, bias + o, panel, x + i0 * stride, y + o * stride, n, stride);
  });
}

void add_inplace(double* __restrict h, const double* __restrict t, size_t count) {
  for (size_t e = 0; e < count; ++e) h[e] += t[e];
}

}  // namespace rooml::ROOML_ISA_NS
