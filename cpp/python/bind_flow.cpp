// Bindings: rooml::FlowModel on numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "numpy_args.h"
#include "rooml/flow_model.h"

namespace py = pybind11;
using rooml::FlowModel;
using rooml_py::Array;

namespace {

const double* context_pointer(const FlowModel& f, const py::object& context, std::size_t n, Array& holder) {
  if (f.n_context() == 0) {
    if (!context.is_none()) throw py::value_error("this flow takes no context, but context was given");
    return nullptr;
  }
  if (context.is_none())
    throw py::value_error("this flow needs context " + py::str(py::cast(f.context_names())).cast<std::string>());
  holder = rooml_py::matrix(context, f.n_context(), "context");
  if (static_cast<std::size_t>(holder.shape(0)) != n)
    throw py::value_error("context has " + std::to_string(holder.shape(0)) + " rows for " + std::to_string(n) +
                          " events");
  return holder.data();
}

Array log_prob(const FlowModel& f, const py::object& x, const py::object& context, int threads, int bootstrap) {
  Array xs = rooml_py::matrix(x, f.n_features(), "x");
  const std::size_t n = static_cast<std::size_t>(xs.shape(0));
  Array holder;
  const double* ctx = context_pointer(f, context, n, holder);
  Array out(static_cast<py::ssize_t>(n));
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    f.log_prob(xs.data(), ctx, n, o, threads, bootstrap);
  }
  return out;
}

Array member_log_prob(const FlowModel& f, const py::object& x, const py::object& context, int threads) {
  Array xs = rooml_py::matrix(x, f.n_features(), "x");
  const std::size_t n = static_cast<std::size_t>(xs.shape(0));
  Array holder;
  const double* ctx = context_pointer(f, context, n, holder);
  Array out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(f.n_members())});
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    f.member_log_prob(xs.data(), ctx, n, o, threads);
  }
  return out;
}

Array sample(const FlowModel& f, std::size_t n, const py::object& context, std::uint64_t seed, int threads,
             int bootstrap) {
  Array holder;
  const double* ctx = context_pointer(f, context, n, holder);
  Array out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(f.n_features())});
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    f.sample(ctx, n, seed, o, threads, bootstrap);
  }
  return out;
}

}  // namespace

void bind_flow(py::module_& m) {
  py::class_<FlowModel, std::shared_ptr<FlowModel>>(m, "FlowModel",
                                                   "A rooml-exported normalizing flow evaluated natively.")
      .def_static("from_file", [](const std::string& p) { return std::const_pointer_cast<FlowModel>(FlowModel::from_file(p)); },
                  py::arg("path"), "Load an exported .onnx flow.")
      .def_static("from_bytes",
                  [](const py::bytes& b, const std::string& source) {
                    return std::const_pointer_cast<FlowModel>(FlowModel::from_bytes(std::string(b), source));
                  },
                  py::arg("data"), py::arg("source") = "<memory>", "Load an exported flow from bytes.")
      .def_property_readonly("n_features", &FlowModel::n_features)
      .def_property_readonly("n_context", &FlowModel::n_context)
      .def_property_readonly("features", &FlowModel::feature_names)
      .def_property_readonly("context", &FlowModel::context_names)
      .def_property_readonly("support_low", &FlowModel::support_low)
      .def_property_readonly("support_high", &FlowModel::support_high)
      .def_property_readonly("metadata_json", &FlowModel::metadata_json)
      .def_property_readonly("content_hash", &FlowModel::content_hash)
      .def_property_readonly("n_members", &FlowModel::n_members)
      .def_property_readonly("n_bootstraps", &FlowModel::n_bootstraps)
      .def_property_readonly("members_per_bootstrap", &FlowModel::members_per_bootstrap)
      .def_property_readonly("rule", [](const FlowModel& f) {
        return f.rule() == rooml::EnsembleRule::Mixture ? "mixture" : "mean_log_prob";
      })
      .def("log_prob", &log_prob, py::arg("x"), py::arg("context") = py::none(), py::arg("threads") = 0,
           py::arg("bootstrap") = -1,
           "log p(x | context) in double precision; x is (events, features).  For an ensemble, the members "
           "combined by its rule; bootstrap >= 0 uses only that bootstrap model's members.")
      .def("member_log_prob", &member_log_prob, py::arg("x"), py::arg("context") = py::none(),
           py::arg("threads") = 0, "Every member's log p, shape (events, n_members); member m = d * K + k.")
      .def("sample", &sample, py::arg("n"), py::arg("context") = py::none(), py::arg("seed") = 0,
           py::arg("threads") = 0, py::arg("bootstrap") = -1,
           "Draw n events through the exact inverse; context is (n, n_context) when the flow has context.");
}
