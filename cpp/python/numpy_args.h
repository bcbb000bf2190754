// Shared checks turning numpy arguments into contiguous float64 buffers.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace rooml_py {

namespace py = pybind11;
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

/// A 2-D float64 C-contiguous view of `obj` with `columns` columns (1-D accepted when columns == 1).
inline Array matrix(const py::handle& obj, std::size_t columns, const char* what) {
  Array a = Array::ensure(obj);
  if (!a) throw py::type_error(std::string(what) + ": expected an array of numbers");
  if (a.ndim() == 1 && columns == 1) a = a.reshape({a.shape(0), py::ssize_t(1)});
  if (a.ndim() != 2)
    throw py::value_error(std::string(what) + ": expected a 2-D array (events x " + std::to_string(columns) +
                          "), got " + std::to_string(a.ndim()) + " dimensions");
  if (static_cast<std::size_t>(a.shape(1)) != columns)
    throw py::value_error(std::string(what) + ": expected " + std::to_string(columns) + " columns, got " +
                          std::to_string(a.shape(1)));
  return a;
}

}  // namespace rooml_py
