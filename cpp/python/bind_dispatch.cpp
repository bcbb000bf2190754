// Bindings: which kernel set (instruction set) the core runs (rooml/dispatch.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>

#include "rooml/dispatch.h"

namespace py = pybind11;

void bind_dispatch(py::module_& m) {
  rooml::kernels();  // choose now: a bad ROOML_ISA fails the import with its message
  m.def("isa", &rooml::active_isa,
        "Kernel set in use: 'avx512', 'avx2' or 'baseline' (the CPU's best, or the environment variable "
        "ROOML_ISA read when the module was loaded).");
  m.def("supported_isas", &rooml::supported_isas, "Kernel sets this CPU can run, fastest first.");
  m.def("compiled_isas", &rooml::compiled_isas, "Kernel sets compiled into this library, fastest first.");
  using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;
  m.def(
      "_elementwise",
      [](const std::string& name, Array a, Array b) {
        const auto& k = rooml::kernels();
        Array out(a.size());
        double* o = out.mutable_data();
        const std::size_t n = static_cast<std::size_t>(a.size());
        std::copy(a.data(), a.data() + n, o);
        if (name == "exp") {
          k.exp_inplace(o, n);
        } else if (name == "silu") {
          k.silu_inplace(o, n);
        } else if (name == "sigmoid_product") {  // 0 + a * sigmoid(b)
          if (b.size() != a.size()) throw py::value_error("_elementwise: a and b differ in size");
          std::fill(o, o + n, 0.0);
          k.add_sigmoid_product(o, a.data(), b.data(), n);
        } else if (name == "sigmoid_product_pair") {  // the same through the two-row kernel: halves as rows
          if (b.size() != a.size() || n % 2) throw py::value_error("_elementwise: a and b differ or are odd");
          std::fill(o, o + n, 0.0);
          k.add_sigmoid_product_pair(o, a.data(), b.data(), n / 2, n / 2);
        } else {
          throw py::value_error("_elementwise: unknown kernel '" + name + "'");
        }
        return out;
      },
      py::arg("name"), py::arg("a"), py::arg("b") = Array(0),
      "Testing hook: one element-wise kernel of the active set ('exp', 'silu', 'sigmoid_product',\n"
      "'sigmoid_product_pair': the halves of a and b as two rows) on a.");
}
