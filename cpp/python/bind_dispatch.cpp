// Bindings: which kernel set (instruction set) the core runs (rooml/dispatch.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "rooml/dispatch.h"

namespace py = pybind11;

void bind_dispatch(py::module_& m) {
  rooml::kernels();  // choose now: a bad ROOML_ISA fails the import with its message
  m.def("isa", &rooml::active_isa,
        "Kernel set in use: 'avx512', 'avx2' or 'baseline' (the CPU's best, or the environment variable "
        "ROOML_ISA read when the module was loaded).");
  m.def("supported_isas", &rooml::supported_isas, "Kernel sets this CPU can run, fastest first.");
  m.def("compiled_isas", &rooml::compiled_isas, "Kernel sets compiled into this library, fastest first.");
}
