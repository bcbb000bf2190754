// Bindings: rooml::interp (vertical interpolation codes) on numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "numpy_args.h"
#include "rooml/interpolation.h"

namespace py = pybind11;
namespace interp = rooml::interp;
using rooml_py::Array;

namespace {

/// Broadcast (low, high, nominal, nu) against each other (numpy rules) and
/// apply the k-th derivative of code `code` elementwise.  Returns a float for
/// all-scalar input, else an array of the broadcast shape.
py::object elementwise(int code, const py::object& low, const py::object& high, const py::object& nominal,
                       const py::object& nu, double boundary, int order) {
  interp::check_code(code);
  py::module_ np = py::module_::import("numpy");
  py::tuple b = np.attr("broadcast_arrays")(np.attr("asarray")(low, "float64"), np.attr("asarray")(high, "float64"),
                                            np.attr("asarray")(nominal, "float64"), np.attr("asarray")(nu, "float64"));
  Array a[4];
  for (int i = 0; i < 4; ++i) a[i] = Array::ensure(b[i]);  // copies the broadcast views into contiguous buffers
  std::vector<py::ssize_t> shape(a[0].shape(), a[0].shape() + a[0].ndim());
  Array out(shape);
  const std::size_t n = static_cast<std::size_t>(a[0].size());
  const double *lo = a[0].data(), *hi = a[1].data(), *nom = a[2].data(), *x = a[3].data();
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    for (std::size_t e = 0; e < n; ++e) {
      interp::detail::check_inputs(code, lo[e], hi[e], nom[e], x[e], boundary, -1, -1);
      o[e] = interp::detail::jet(code, lo[e], hi[e], nom[e], x[e], boundary, order);
    }
  }
  if (out.ndim() == 0) return py::float_(o[0]);
  return std::move(out);
}

std::vector<int> integer_codes(const py::object& codes) {
  py::array a = py::array::ensure(codes);
  if (!a) throw py::type_error("codes: expected a sequence of integers");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u' && !(a.size() == 0))
    throw py::type_error(std::string("codes: expected integers, got dtype ") +
                         py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != 1) throw py::value_error("codes: expected a 1-D sequence (one code per nuisance parameter)");
  std::vector<int> out;
  for (py::handle h : a) out.push_back(h.cast<int>());
  return out;
}

Array combine(const py::object& nominal, const py::object& low, const py::object& high, const py::object& nu,
              const py::object& codes, interp::Floor floor, double boundary) {
  Array nom = Array::ensure(nominal);
  if (!nom || nom.ndim() != 1) throw py::value_error("nominal: expected a 1-D array (events)");
  const std::size_t n = static_cast<std::size_t>(nom.shape(0));
  std::vector<int> c = integer_codes(codes);
  const std::size_t K = c.size();
  Array lo = rooml_py::matrix(low, n, "low (nuisance parameters x events)");
  Array hi = rooml_py::matrix(high, n, "high (nuisance parameters x events)");
  Array x = Array::ensure(nu);
  if (!x || x.ndim() != 1) throw py::value_error("nu: expected a 1-D array (one value per nuisance parameter)");
  if (static_cast<std::size_t>(lo.shape(0)) != K || static_cast<std::size_t>(hi.shape(0)) != K ||
      static_cast<std::size_t>(x.shape(0)) != K)
    throw py::value_error("codes has " + std::to_string(K) + " entries but low, high and nu have " +
                          std::to_string(lo.shape(0)) + ", " + std::to_string(hi.shape(0)) + " and " +
                          std::to_string(x.shape(0)) + " rows");
  std::vector<const double*> lp(K), hp(K);
  for (std::size_t k = 0; k < K; ++k) {
    lp[k] = lo.data() + k * n;
    hp[k] = hi.data() + k * n;
  }
  Array out(static_cast<py::ssize_t>(n));
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    interp::combine(nom.data(), lp.data(), hp.data(), x.data(), c.data(), K, n, o, floor, boundary);
  }
  return out;
}

}  // namespace

void bind_interpolation(py::module_& m) {
  py::enum_<interp::Floor>(m, "InterpFloor", "What combine does with a non-positive result.")
      .value("none", interp::kNoFloor, "keep it (PiecewiseInterpolation's default)")
      .value("zero", interp::kZeroFloor, "v < 0 -> 0 (PiecewiseInterpolation::setPositiveDefinite)")
      .value("tiny", interp::kTinyFloor, "v <= 0 -> DBL_MIN (FlexibleInterpVar)");

  m.def("interp_codes", [] { return std::vector<int>(std::begin(interp::kCodes), std::end(interp::kCodes)); },
        "The interpolation codes the core implements.");
  m.def("interp_is_multiplicative", &interp::is_multiplicative, py::arg("code"),
        "True for codes whose single value is a factor (1, 5, 6, 100), False for additive ones (0, 2, 4).");
  m.def("interp_from_flexible_code", &interp::from_flexible_code, py::arg("code"),
        "rooml code for a FlexibleInterpVar code (4 -> 5, 3 -> 2, 0-2 and 5 unchanged).");
  m.def("interp_from_piecewise_code", &interp::from_piecewise_code, py::arg("code"),
        "rooml code for a PiecewiseInterpolation code (identity, 3 -> 2).");
  m.def(
      "interp_single",
      [](int code, const py::object& low, const py::object& high, const py::object& nominal, const py::object& nu,
         double boundary) { return elementwise(code, low, high, nominal, nu, boundary, 0); },
      py::arg("code"), py::arg("low"), py::arg("high"), py::arg("nominal"), py::arg("nu"), py::arg("boundary") = 1.0,
      "One variation, elementwise (numpy broadcasting over low, high, nominal, nu): the shift Delta "
      "(value = nominal + Delta) for additive codes 0, 2, 4, the factor f (value = nominal * f) for "
      "multiplicative codes 1, 5, 6, 100.");
  m.def(
      "interp_derivative",
      [](int code, const py::object& low, const py::object& high, const py::object& nominal, const py::object& nu,
         int order, double boundary) {
        if (order < 0 || order > 2)
          throw py::value_error("order must be 0 (value), 1 or 2, got " + std::to_string(order));
        return elementwise(code, low, high, nominal, nu, boundary, order);
      },
      py::arg("code"), py::arg("low"), py::arg("high"), py::arg("nominal"), py::arg("nu"), py::arg("order"),
      py::arg("boundary") = 1.0, "d^order interp_single / d nu^order (analytic), elementwise.");
  m.def("interp_combine", &combine, py::arg("nominal"), py::arg("low"), py::arg("high"), py::arg("nu"),
        py::arg("codes"), py::arg("floor") = interp::kNoFloor, py::arg("boundary") = 1.0,
        "K nuisance parameters on n events as PiecewiseInterpolation combines them: nominal (n,), "
        "low and high (K, n), nu (K,), codes (K,); returns (n,).");
}
