// Bindings: the core's thread-count setting.
#include <pybind11/pybind11.h>

#include "rooml/flow_model.h"

namespace py = pybind11;

void bind_threads(py::module_& m) {
  m.def("default_threads", &rooml::default_threads,
        "Number of threads the core uses when a call does not say (ROOML_NUM_THREADS or all cores).");
  m.def("set_default_threads", &rooml::set_default_threads, py::arg("threads"),
        "Set the default thread count; <= 0 restores the automatic choice.");
}
