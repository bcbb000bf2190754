// The function table of one kernel set (see rooml/dispatch.h).
#include "isa.h"

namespace rooml::ROOML_ISA_NS {

#define ROOML_STR2(x) #x
#define ROOML_STR(x) ROOML_STR2(x)

const KernelTable table = {
    ROOML_STR(ROOML_ISA_NS) + 4,  // "isa_avx512" -> "avx512"
    &pack_dense,
    &dense,
    &exp_inplace,
    &add_sigmoid_product,
    &add_sigmoid_product_pair,
    &add_sigmoid_product_pair_affine,
    &silu_rows,
    &add_inplace,
    &rq_spline,
    &code5_unit_minus_one,
    &code5_jet,
    &log_normal_rows,
    &sum,
    &dot,
};

}  // namespace rooml::ROOML_ISA_NS
