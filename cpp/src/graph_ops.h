// Operators of the general ONNX graph evaluator (private header).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rooml/onnx_reader.h"

namespace rooml::graph {

/// A tensor during evaluation: row-major values in double whatever the element type.
struct Value {
  std::vector<int64_t> shape;
  std::vector<double> data;
  int32_t type = onnx::data_type::kFloat;  ///< ONNX element type (integer semantics for Div and Cast)

  std::size_t size() const;
  /// Reshape to `dims` and size the data (contents unspecified).
  void resize(const std::vector<int64_t>& dims);
  bool is_integer() const;
};

/// Converts a parsed initializer or tensor attribute.
Value from_tensor(const onnx::Tensor& t);

/// The inputs and outputs of one node invocation ("" inputs are null).
struct Call {
  const onnx::Node& node;
  int64_t opset;  ///< version of the node's domain
  std::vector<const Value*> in;
  std::vector<Value*> out;

  const Value& input(std::size_t i) const;
  bool has_input(std::size_t i) const { return i < in.size() && in[i] != nullptr; }
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  double attr_float(const std::string& name, double fallback) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;
  bool has_attr(const std::string& name) const { return node.attribute(name) != nullptr; }
  /// An error naming the node (op type, node name) and `what`.
  [[noreturn]] void fail(const std::string& what) const;
};

using Kernel = std::function<void(Call&)>;

/// The kernel of an ONNX op (`domain` "" or "ai.onnx.ml"), or an empty function if unsupported.
/// Tree ensembles parse their attributes once, here.
Kernel make_kernel(const onnx::Node& node, const std::string& source);

/// Element-wise activation that a fused dense chain can apply in place (`x` of `count` values).
using Activation = std::function<void(double* x, std::size_t count)>;
/// The activation of a unary element-wise node, or an empty function if the node is not one.
Activation make_activation(const onnx::Node& node);

/// Integer value of a double holding an index or a size (clamped to +-2^62, e.g. for INT64_MAX ends).
int64_t to_index(double v);

}  // namespace rooml::graph
