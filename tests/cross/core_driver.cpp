// A small program on rooml's ROOT-free core, for tests/test_aarch64_cross.py: evaluate a flow and a
// ratio model and code-5 interpolation on inputs from a file, and print the results.
//
//   core_driver FLOW.onnx RATIO.onnx INPUTS.bin
//
// INPUTS.bin: n, d, c, r (as doubles), then x (n x d), context (n x c), ratio inputs (n x r), nominal, low,
// high (n each).  Prints the kernel set, then one line per value (%.17g): log_prob (n), samples (n x d, 2
// threads), log r (n), code-5 interpolation at nu = 0.4 and 1.3 (n each).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "rooml/dispatch.h"
#include "rooml/flow_model.h"
#include "rooml/interpolation.h"
#include "rooml/ratio_model.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: core_driver FLOW.onnx RATIO.onnx INPUTS.bin\n");
    return 2;
  }
  std::ifstream in(argv[3], std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const double* v = reinterpret_cast<const double*>(bytes.data());
  const auto n = static_cast<std::size_t>(v[0]), d = static_cast<std::size_t>(v[1]);
  const auto c = static_cast<std::size_t>(v[2]), r = static_cast<std::size_t>(v[3]);
  const double *x = v + 4, *ctx = x + n * d, *rx = ctx + n * c, *nominal = rx + n * r;
  const double *low = nominal + n, *high = low + n;
  try {
    std::printf("%s\n", rooml::active_isa().c_str());
    const auto flow = rooml::FlowModel::from_file(argv[1]);
    std::vector<double> out(n * d);
    flow->log_prob(x, c ? ctx : nullptr, n, out.data(), 1);
    for (std::size_t e = 0; e < n; ++e) std::printf("%.17g\n", out[e]);
    flow->sample(c ? ctx : nullptr, n, 7, out.data(), 2);
    for (double s : out) std::printf("%.17g\n", s);
    const auto ratio = rooml::RatioModel::from_file(argv[2]);
    ratio->log_ratio(rx, n, out.data(), 2);
    for (std::size_t e = 0; e < n; ++e) std::printf("%.17g\n", out[e]);
    const int code = rooml::interp::kPoly6Exp;
    for (double nu : {0.4, 1.3}) {
      rooml::interp::combine(nominal, &low, &high, &nu, &code, 1, n, out.data());
      for (std::size_t e = 0; e < n; ++e) std::printf("%.17g\n", out[e]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "core_driver: %s\n", e.what());
    return 1;
  }
  return 0;
}
