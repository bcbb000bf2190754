// Bindings: rooml::GraphModel (a general ONNX graph) on numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "numpy_args.h"
#include "rooml/graph_model.h"

namespace py = pybind11;
using rooml::GraphModel;
using rooml_py::Array;

namespace {

/// The graph inputs as (events x width) float64 arrays: one array, a sequence or a dict by name.
std::vector<Array> input_arrays(const GraphModel& g, const py::object& x) {
  const std::size_t k = g.input_names().size();
  std::vector<py::object> given(k);
  if (py::isinstance<py::dict>(x)) {
    py::dict d = x.cast<py::dict>();
    for (auto item : d) given[g.input_index(item.first.cast<std::string>())] = py::reinterpret_borrow<py::object>(item.second);
  } else if (k == 1) {
    given[0] = x;
  } else if (py::isinstance<py::list>(x) || py::isinstance<py::tuple>(x)) {
    py::sequence s = x.cast<py::sequence>();
    if (s.size() != k) throw py::value_error("the graph has " + std::to_string(k) + " inputs, " + std::to_string(s.size()) + " given");
    for (std::size_t i = 0; i < k; ++i) given[i] = s[i];
  } else {
    throw py::value_error("the graph has " + std::to_string(k) + " inputs: pass a dict {name: array} or a list");
  }
  std::vector<Array> arrays;
  for (std::size_t i = 0; i < k; ++i) {
    const std::string& name = g.input_names()[i];
    if (!given[i]) throw py::value_error("input '" + name + "' not given");
    Array a = Array::ensure(given[i]);
    if (!a) throw py::type_error("input '" + name + "': expected an array of numbers");
    const std::size_t w = g.input_width(i);
    if (a.ndim() == 0) throw py::value_error("input '" + name + "': expected an array with an events axis");
    const py::ssize_t n = a.shape(0);
    if (static_cast<std::size_t>(a.size()) != static_cast<std::size_t>(n) * w)
      throw py::value_error("input '" + name + "': expected " + std::to_string(w) + " values per event, got an array of shape " +
                            py::str(py::tuple(py::cast(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim())))).cast<std::string>());
    arrays.push_back(a);
  }
  for (std::size_t i = 1; i < k; ++i)
    if (arrays[i].shape(0) != arrays[0].shape(0)) throw py::value_error("inputs differ in their number of events");
  return arrays;
}

std::size_t pick_output(const GraphModel& g, const py::object& output) {
  if (!output.is_none()) return g.output_index(output.cast<std::string>());
  if (g.output_names().size() != 1) {
    std::string known;
    for (const auto& n : g.output_names()) known += (known.empty() ? "'" : ", '") + n + "'";
    throw py::value_error(g.source() + ": the graph has several outputs (" + known + "); choose one with output=...");
  }
  return 0;
}

Array evaluate(const GraphModel& g, const py::object& x, const py::object& output, int threads) {
  std::vector<Array> arrays = input_arrays(g, x);
  const std::size_t k = pick_output(g, output);
  const std::size_t n = arrays.empty() ? 0 : static_cast<std::size_t>(arrays[0].shape(0));
  std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(n)};
  for (long d : g.output_shape(k)) shape.push_back(d);
  Array out(shape);
  std::vector<const double*> in;
  for (auto& a : arrays) in.push_back(a.data());
  std::vector<double*> outs{out.mutable_data()};
  {
    py::gil_scoped_release release;
    g.evaluate(in, n, {k}, outs, threads);
  }
  return out;
}

}  // namespace

void bind_graph(py::module_& m) {
  py::class_<GraphModel, std::shared_ptr<GraphModel>>(
      m, "GraphModel", "A general ONNX graph (foreign model) evaluated natively in double precision.")
      .def(py::init([](const std::string& p) { return std::const_pointer_cast<GraphModel>(GraphModel::from_file(p)); }),
           py::arg("path"), "Read an ONNX file.")
      .def_static("from_bytes",
                  [](const py::bytes& b, const std::string& source) {
                    return std::const_pointer_cast<GraphModel>(GraphModel::from_bytes(std::string(b), source));
                  },
                  py::arg("data"), py::arg("source") = "<memory>", "Read a serialized ONNX model.")
      .def_property_readonly("inputs", &GraphModel::input_names, "Graph input names.")
      .def_property_readonly("outputs", &GraphModel::output_names, "Tensor output names.")
      .def("input_shape", [](const GraphModel& g, const std::string& name) { return g.input_shape(g.input_index(name)); },
           py::arg("name"), "Per-event shape of an input (without the events axis).")
      .def("output_shape", [](const GraphModel& g, const std::string& name) { return g.output_shape(g.output_index(name)); },
           py::arg("name"), "Per-event shape of an output (without the events axis).")
      .def_property_readonly("n_fused_nodes", &GraphModel::n_fused_nodes,
                             "Nodes evaluated on the packed dense kernels (fused dense chains).")
      .def("evaluate", &evaluate, py::arg("x"), py::arg("output") = py::none(), py::arg("threads") = 0,
           "Evaluate the graph: x is an array (one input), a list or a dict {name: array} with events first; "
           "returns the chosen output as float64 (events, ...).");
}
