// Common header of the per-instruction-set kernel sources in cpp/src/isa/ (private).
//
// Every file here is compiled once per kernel set with that set's compiler flags and
// ROOML_ISA_NS naming its namespace (isa_avx512, isa_avx2, isa_baseline); see
// rooml/dispatch.h.  Rules that keep AVX-512 code out of the baseline path:
//  - everything is defined inside rooml::ROOML_ISA_NS (helpers also in an anonymous namespace),
//  - no std templates (std::max, std::vector, ...) and no inline functions of other rooml headers are
//    used here: an out-of-line copy of one of those, compiled for AVX-512, could be the copy the linker
//    keeps for the whole library.  Only C functions (std::log, std::sqrt, std::memcpy) and intrinsics.
#pragma once

#ifndef ROOML_ISA_NS
#error "cpp/src/isa/*.cpp are compiled once per kernel set with -DROOML_ISA_NS=isa_<name>"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rooml/dispatch.h"
#include "rooml/vecmath.h"  // exp_inplace, add_sigmoid_product, silu_rows

// Vector width of the explicit SIMD code (GCC/Clang vector extensions) in doubles.
#if defined(__AVX512F__)
#define ROOML_ISA_LANES 8
#elif defined(__AVX2__)
#define ROOML_ISA_LANES 4
#else
#define ROOML_ISA_LANES 2
#endif

namespace rooml::ROOML_ISA_NS {

using std::size_t;

inline double max_d(double a, double b) { return a > b ? a : b; }
inline double min_d(double a, double b) { return a < b ? a : b; }

void pack_dense(const double* weight, size_t in, size_t out, double* packed);
void dense(const double* packed, const double* bias, size_t in, size_t out, const double* x, double* y, size_t n,
           size_t stride, bool relu_input);
void add_inplace(double* h, const double* t, size_t count);
void rq_spline(const SplineSpec& spec, const double* const* params, const double* in, double* out, double* logdet,
               size_t n, bool inverse, double* scratch);
void code5_unit_minus_one(const double* nominal, const double* low, const double* high, double x, size_t n,
                          double* fm1);
void code5_jet(const double* H, const double* L, const double* lH, const double* lL, double x, size_t count,
               int order, double* g, double* d, double* e2);
void log_normal_rows(const double* x, size_t count, double* out);
double sum(const double* v, size_t n);
double dot(const double* a, const double* b, size_t n);

/// This kernel set's table (defined in table.cpp).
extern const KernelTable table;

}  // namespace rooml::ROOML_ISA_NS
