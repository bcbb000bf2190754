// Run-time choice of the vectorized kernels.
//
// The hot loops of the core (dense layers, fast exp/log, the rational-quadratic
// spline, code-5 interpolation, the NSBI event pass) are compiled several times
// into the same library, once per instruction set ("kernel set"):
//   avx512   AVX-512 F/BW/DQ/VL + FMA (x86-64-v4)
//   avx2     AVX2 + FMA (x86-64-v3)
//   baseline the architecture's default (SSE2 on x86-64; plain C++ elsewhere)
// kernels() picks one once, on first use, from the CPU (__builtin_cpu_supports)
// or from the environment variable ROOML_ISA (refused, with the supported sets
// listed, if the CPU cannot run it); the callers go through its table of function
// pointers, so no hot loop branches on the instruction set.  ROOML_ISA_LIMIT=avx2
// treats the CPU as one without the sets above avx2 (what an older machine runs,
// reproduced on a newer one).
//
// Each kernel set lives in its own namespace (rooml::isa_avx512, rooml::isa_avx2,
// rooml::isa_baseline): code compiled for AVX-512 can never be merged by the
// linker into functions that older CPUs run (tests/test_isa_dispatch.py checks
// the built libraries' machine code for that).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "rooml/api.h"

namespace rooml {

struct SplineSpec;

/// The kernels of one instruction set.  Every array argument holds `n` (or `count`) doubles.
struct KernelTable {
  const char* name;  ///< "avx512", "avx2" or "baseline"

  /// W (row-major out x in) reordered into this set's tiles: in * out doubles for `dense`.
  void (*pack_dense)(const double* weight, std::size_t in, std::size_t out, double* packed);
  /// y[o][e] = sum_i W[o][i] x'[i][e] + b[o] (x' = relu(x) when relu_input), W as pack_dense left it, rows of
  /// length `stride`; see Dense::apply.
  void (*dense)(const double* packed, const double* bias, std::size_t in, std::size_t out, const double* x,
                double* y, std::size_t n, std::size_t stride, bool relu_input);
  /// x[i] = exp(x[i]) (fast_exp's range).
  void (*exp_inplace)(double* x, std::size_t count);
  /// h[i] += t[i] / (1 + exp(-g[i])).
  void (*add_sigmoid_product)(double* h, const double* t, const double* g, std::size_t count);
  /// add_sigmoid_product on rows h, h + stride (t and g alike), in one pass (see vecmath.h).
  void (*add_sigmoid_product_pair)(double* h, const double* t, const double* g, std::size_t stride,
                                   std::size_t count);
  /// The same with g = w[k] c + b[k] for row k = 0, 1 (a gate layer with one input c), computed in the pass.
  void (*add_sigmoid_product_pair_affine)(double* h, const double* t, const double* c, const double* w,
                                          const double* b, std::size_t stride, std::size_t count);
  /// h[i] = h[i] / (1 + exp(-h[i])) (SiLU).
  void (*silu_inplace)(double* h, std::size_t count);
  /// h[i] += t[i].
  void (*add_inplace)(double* h, const double* t, std::size_t count);
  /// The rational-quadratic spline of rooml::rq_spline on `n` events; `scratch` holds
  /// rq_spline_scratch_size(spec.num_bins, n) doubles.
  void (*rq_spline)(const SplineSpec& spec, const double* const* params, const double* in, double* out,
                    double* logdet, std::size_t n, bool inverse, double* scratch);
  /// Code 5 (boundary 1) inside |x| < 1: fm1[e] = f - 1 for the ratios high/nominal, low/nominal (nominal null:
  /// low and high are the ratios); see rooml::interp::detail::poly6_exp_unit_minus_one.
  void (*code5_unit_minus_one)(const double* nominal, const double* low, const double* high, double x,
                               std::size_t n, double* fm1);
  /// Code 5's factor g and, for order >= 1 / 2, d log g / dx and d^2 log g / dx^2 per event from the ratios H, L
  /// and their logs lH, lL (the NSBI event pass).
  void (*code5_jet)(const double* H, const double* L, const double* lH, const double* lL, double x,
                    std::size_t count, int order, double* g, double* d, double* e2);
  /// out[i] = log(x[i]) for normal positive finite x[i] (log_normal; out may be x); 0 for x[i] < DBL_MIN, garbage
  /// for x[i] > DBL_MAX: the caller redoes those.
  void (*log_normal)(const double* x, std::size_t count, double* out);
  /// Sum of v in 8 interleaved partial sums (a fixed order).
  double (*sum)(const double* v, std::size_t n);
  /// Sum of a[i] b[i] in the order of sum.
  double (*dot)(const double* a, const double* b, std::size_t n);
};

/// The kernel set in use (chosen on the first call; throws rooml::Error for a bad ROOML_ISA).
ROOML_API const KernelTable& kernels();

/// Name of the kernel set in use ("avx512", "avx2" or "baseline").
ROOML_API std::string active_isa();

/// The kernel sets this CPU can run, fastest first (always ends with "baseline").
ROOML_API std::vector<std::string> supported_isas();

/// The kernel sets compiled into this library, fastest first.
ROOML_API std::vector<std::string> compiled_isas();

/// Doubles of scratch memory KernelTable::rq_spline needs for `num_bins` bins and n events.
inline std::size_t rq_spline_scratch_size(int num_bins, std::size_t n) {
  return ((n + 7) / 8 * 8 + 8) * (3 * static_cast<std::size_t>(num_bins) + 13);
}

}  // namespace rooml
