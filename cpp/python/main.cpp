// The rooml._core extension module: numpy bindings of the ROOT-free C++ core.
#include <pybind11/pybind11.h>

#include "rooml/error.h"

namespace py = pybind11;

void bind_flow(py::module_& m);
void bind_ratio(py::module_& m);
void bind_gp(py::module_& m);
void bind_interpolation(py::module_& m);
void bind_threads(py::module_& m);
void bind_graph(py::module_& m);
void bind_dispatch(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "rooml's compiled core: native double-precision evaluation of exported models";
  py::register_exception<rooml::Error>(m, "CoreError", PyExc_ValueError);
  bind_dispatch(m);
  bind_threads(m);
  bind_flow(m);
  bind_ratio(m);
  bind_gp(m);
  bind_interpolation(m);
  bind_graph(m);
}
