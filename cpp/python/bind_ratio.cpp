// Bindings: rooml::RatioModel on numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "numpy_args.h"
#include "rooml/ratio_model.h"

namespace py = pybind11;
using rooml::RatioModel;
using rooml_py::Array;

namespace {

enum class What { LogRatio, Ratio };

Array evaluate(const RatioModel& r, const py::object& x, int threads, What what) {
  Array xs = rooml_py::matrix(x, r.n_features(), "x");
  const std::size_t n = static_cast<std::size_t>(xs.shape(0));
  Array out(static_cast<py::ssize_t>(n));
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    if (what == What::LogRatio)
      r.log_ratio(xs.data(), n, o, threads);
    else
      r.ratio(xs.data(), n, o, threads);
  }
  return out;
}

Array member_log_ratios(const RatioModel& r, const py::object& x, int threads) {
  Array xs = rooml_py::matrix(x, r.n_features(), "x");
  const std::size_t n = static_cast<std::size_t>(xs.shape(0));
  Array out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(r.n_members())});
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    r.member_log_ratios(xs.data(), n, o, threads);
  }
  return out;
}

Array member_log_ratio(const RatioModel& r, const py::object& x, std::size_t member, int threads) {
  Array xs = rooml_py::matrix(x, r.n_features(), "x");
  const std::size_t n = static_cast<std::size_t>(xs.shape(0));
  Array out(static_cast<py::ssize_t>(n));
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    r.member_log_ratio(xs.data(), n, member, o, threads);
  }
  return out;
}

}  // namespace

void bind_ratio(py::module_& m) {
  py::class_<RatioModel, std::shared_ptr<RatioModel>>(
      m, "RatioModel", "A rooml-exported density-ratio network (or ensemble) evaluated natively.")
      .def_static("from_file",
                  [](const std::string& p) { return std::const_pointer_cast<RatioModel>(RatioModel::from_file(p)); },
                  py::arg("path"), "Load an exported .onnx ratio model.")
      .def_static("from_bytes",
                  [](const py::bytes& b, const std::string& source) {
                    return std::const_pointer_cast<RatioModel>(RatioModel::from_bytes(std::string(b), source));
                  },
                  py::arg("data"), py::arg("source") = "<memory>", "Load an exported ratio model from bytes.")
      .def_property_readonly("n_features", &RatioModel::n_features)
      .def_property_readonly("features", &RatioModel::feature_names)
      .def_property_readonly("support_low", &RatioModel::support_low)
      .def_property_readonly("support_high", &RatioModel::support_high)
      .def_property_readonly("n_members", &RatioModel::n_members)
      .def_property_readonly("combination", &RatioModel::combination)
      .def_property_readonly("log_corrections", &RatioModel::log_corrections)
      .def_property_readonly("metadata_json", &RatioModel::metadata_json)
      .def_property_readonly("content_hash", &RatioModel::content_hash)
      .def(
          "log_ratio", [](const RatioModel& r, const py::object& x, int t) { return evaluate(r, x, t, What::LogRatio); },
          py::arg("x"), py::arg("threads") = 0, "log r(x) = log p_num(x)/p_den(x) in double precision; x is (events, features).")
      .def(
          "ratio", [](const RatioModel& r, const py::object& x, int t) { return evaluate(r, x, t, What::Ratio); },
          py::arg("x"), py::arg("threads") = 0, "r(x) = exp(log_ratio(x)).")
      .def("member_log_ratios", &member_log_ratios, py::arg("x"), py::arg("threads") = 0,
           "log r_k(x) of every ensemble member, shape (events, n_members).")
      .def("member_log_ratio", &member_log_ratio, py::arg("x"), py::arg("member"), py::arg("threads") = 0,
           "log r_k(x) of ensemble member k alone (only that network runs), shape (events,).");
}
