// Bindings: rooml::GPMassPlane on numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "numpy_args.h"
#include "rooml/gp_massplane.h"

namespace py = pybind11;
using rooml::GPMassPlane;
using rooml_py::Array;

namespace {

enum class What { Mean, Std, Density };

Array evaluate(const GPMassPlane& g, const py::object& x, int threads, What what) {
  Array xs = rooml_py::matrix(x, 2, "x");
  const std::size_t n = static_cast<std::size_t>(xs.shape(0));
  Array out(static_cast<py::ssize_t>(n));
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    if (what == What::Mean)
      g.mean_counts(xs.data(), n, o, threads);
    else if (what == What::Std)
      g.std_counts(xs.data(), n, o, threads);
    else
      g.density(xs.data(), n, o);
  }
  return out;
}

Array plane(const GPMassPlane& g, const std::vector<double>& values) {
  Array out({static_cast<py::ssize_t>(g.edges_m1().size() - 1), static_cast<py::ssize_t>(g.edges_m2().size() - 1)});
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

}  // namespace

void bind_gp(py::module_& m) {
  py::class_<GPMassPlane, std::shared_ptr<GPMassPlane>>(
      m, "GPMassPlane", "A rooml-exported Gaussian-process mass plane (MassPlaneGP) evaluated natively.")
      .def_static("from_file",
                  [](const std::string& p) { return std::const_pointer_cast<GPMassPlane>(GPMassPlane::from_file(p)); },
                  py::arg("path"), "Load an exported .onnx GP mass plane.")
      .def_static("from_bytes",
                  [](const py::bytes& b, const std::string& source) {
                    return std::const_pointer_cast<GPMassPlane>(GPMassPlane::from_bytes(std::string(b), source));
                  },
                  py::arg("data"), py::arg("source") = "<memory>", "Load an exported GP mass plane from bytes.")
      .def_property_readonly("features", &GPMassPlane::feature_names)
      .def_property_readonly("edges_m1", &GPMassPlane::edges_m1)
      .def_property_readonly("edges_m2", &GPMassPlane::edges_m2)
      .def_property_readonly("n_train", &GPMassPlane::n_train)
      .def_property_readonly("length_scales", &GPMassPlane::length_scales)
      .def_property_readonly("constant", &GPMassPlane::constant)
      .def_property_readonly("scale", &GPMassPlane::scale)
      .def_property_readonly("mean_function", &GPMassPlane::mean_function)
      .def_property_readonly("year", [](const GPMassPlane& g) -> py::object {
        if (g.year() < 0) return py::none();
        return py::int_(g.year());
      })
      .def_property_readonly("metadata_json", &GPMassPlane::metadata_json)
      .def_property_readonly("content_hash", &GPMassPlane::content_hash)
      .def(
          "mean_counts", [](const GPMassPlane& g, const py::object& x, int t) { return evaluate(g, x, t, What::Mean); },
          py::arg("x"), py::arg("threads") = 0, "Predicted counts per bin at points x (events x 2: m1, m2).")
      .def(
          "std_counts", [](const GPMassPlane& g, const py::object& x, int t) { return evaluate(g, x, t, What::Std); },
          py::arg("x"), py::arg("threads") = 0, "GP standard deviation of the predicted counts at points x.")
      .def(
          "density", [](const GPMassPlane& g, const py::object& x) { return evaluate(g, x, 0, What::Density); },
          py::arg("x"), "Sampler density (per GeV^2, normalized over the box; 0 outside) at points x.")
      .def_property_readonly("bin_counts", [](const GPMassPlane& g) { return plane(g, g.bin_counts()); },
                             "Predicted counts at the bin centres, (n1, n2).")
      .def_property_readonly("bin_probabilities", [](const GPMassPlane& g) { return plane(g, g.bin_probabilities()); },
                             "Bin probabilities of the sampler density, (n1, n2).")
      .def("probability", &GPMassPlane::probability, py::arg("lo1"), py::arg("hi1"), py::arg("lo2"), py::arg("hi2"),
           "Integral of the sampler density over [lo1, hi1] x [lo2, hi2].");
}
