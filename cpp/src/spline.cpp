// Rational-quadratic spline: the kernel set's implementation (cpp/src/isa/spline.cpp) on this thread's scratch.
#include "rooml/spline.h"

#include "rooml/dispatch.h"

namespace rooml {

void rq_spline(const SplineSpec& spec, const double* const* params, const double* in, double* out,
               double* logdet, std::size_t n, bool inverse, SplineScratch& scratch) {
  double* mem = scratch.get(rq_spline_scratch_size(spec.num_bins, n));
  kernels().rq_spline(spec, params, in, out, logdet, n, inverse, mem);
}

}  // namespace rooml
