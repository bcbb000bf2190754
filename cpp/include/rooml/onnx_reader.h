// rooml::onnx — a dependency-free reader for ONNX model files.
//
// Decodes the protobuf wire format directly, specialised to the parts of the
// ONNX schema (onnx/onnx.proto) that a native evaluator needs: the graph's
// nodes and attributes, its inputs/outputs, its initializers (converted to
// double) and the model's metadata and opset imports. Everything else (doc
// strings, value_info, local functions, training info) is skipped. Corrupt or
// foreign input raises rooml::Error; lengths are checked against the bytes
// that remain before anything is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rooml/error.h"

namespace rooml::onnx {

/// ONNX TensorProto.DataType codes (the subset rooml names).
namespace data_type {
constexpr int32_t kUndefined = 0;
constexpr int32_t kFloat = 1;
constexpr int32_t kUint8 = 2;
constexpr int32_t kInt8 = 3;
constexpr int32_t kUint16 = 4;
constexpr int32_t kInt16 = 5;
constexpr int32_t kInt32 = 6;
constexpr int32_t kInt64 = 7;
constexpr int32_t kString = 8;
constexpr int32_t kBool = 9;
constexpr int32_t kFloat16 = 10;
constexpr int32_t kDouble = 11;
constexpr int32_t kUint32 = 12;
constexpr int32_t kUint64 = 13;
constexpr int32_t kBfloat16 = 16;
}  // namespace data_type

/// ONNX AttributeProto.AttributeType codes.
namespace attribute_type {
constexpr int32_t kUndefined = 0;
constexpr int32_t kFloat = 1;
constexpr int32_t kInt = 2;
constexpr int32_t kString = 3;
constexpr int32_t kTensor = 4;
constexpr int32_t kGraph = 5;
constexpr int32_t kFloats = 6;
constexpr int32_t kInts = 7;
constexpr int32_t kStrings = 8;
constexpr int32_t kTensors = 9;
constexpr int32_t kGraphs = 10;
}  // namespace attribute_type

/// Name of an ONNX data type code ("FLOAT", "INT64", ...; "TYPE_<n>" if unknown).
std::string data_type_name(int32_t code);

/// A tensor (initializer or tensor-valued attribute), converted to double.
///
/// Supported element types: FLOAT, DOUBLE, FLOAT16, BFLOAT16, INT8, UINT8,
/// INT16, UINT16, INT32, UINT32, INT64 and BOOL; every one converts exactly
/// to double except INT64 values beyond 2^53, which is why integer tensors
/// also keep their exact values in `int_values` (torch exports Slice ends as
/// INT64_MAX, for instance).
struct Tensor {
  std::string name;
  std::vector<int64_t> dims;     ///< empty for a scalar (0-d tensor)
  std::vector<double> values;    ///< row-major, size() elements
  int32_t data_type = 0;         ///< TensorProto.DataType code as stored
  std::vector<int64_t> int_values;  ///< exact values for integer/bool types, else empty

  /// Number of elements: the product of dims (1 for a scalar).
  std::size_t size() const;
  /// True for the integer and bool element types (int_values is filled).
  bool is_integer() const;
};

/// A node attribute; which member holds the value depends on `type`.
struct Attribute {
  std::string name;
  int32_t type = 0;               ///< AttributeProto.AttributeType code
  double f = 0.0;                 ///< FLOAT
  int64_t i = 0;                  ///< INT
  std::string s;                  ///< STRING (raw bytes)
  std::vector<double> floats;     ///< FLOATS
  std::vector<int64_t> ints;      ///< INTS
  std::vector<std::string> strings;  ///< STRINGS
  Tensor t;                       ///< TENSOR (e.g. the value of a Constant node)
  std::vector<Tensor> tensors;    ///< TENSORS
  // GRAPH / GRAPHS (If, Loop, Scan bodies) are recorded by type only.
};

/// One operator invocation in the graph.
struct Node {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;  ///< "" marks an omitted optional input
  std::vector<Attribute> attributes;

  /// The attribute called `attr_name`, or nullptr if the node has none.
  const Attribute* attribute(const std::string& attr_name) const;
};

/// A graph input or output: element type and shape.
struct ValueInfo {
  std::string name;
  int32_t elem_type = 0;               ///< 0 if not a tensor type
  std::vector<int64_t> dims;           ///< -1 for symbolic or unknown dims
  std::vector<std::string> dim_params; ///< symbolic names ("batch"), "" for fixed dims
  bool has_shape = false;              ///< false: rank unknown (dims is empty)
};

/// The parts of an ONNX ModelProto that rooml uses.
struct Model {
  std::string source_name;   ///< file name (or "<memory>") used in error messages
  int64_t ir_version = 0;
  std::string producer_name, producer_version, domain;
  int64_t model_version = 0;
  std::vector<std::pair<std::string, int64_t>> opsets;  ///< (domain, version); "" = ai.onnx
  std::map<std::string, std::string> metadata;          ///< metadata_props
  std::string graph_name;
  std::vector<Node> nodes;
  std::vector<ValueInfo> inputs, outputs;
  std::map<std::string, Tensor> initializers;

  /// The initializer called `name`; throws rooml::Error naming it and the file if absent.
  const Tensor& initializer(const std::string& name) const;
  /// True if an initializer called `name` exists.
  bool has_initializer(const std::string& name) const;
  /// Opset version imported for `opset_domain` ("" or "ai.onnx" = default domain); 0 if none.
  int64_t opset_version(const std::string& opset_domain = "") const;
  /// Graph inputs that are not initializers (older exporters list both).
  std::vector<ValueInfo> non_initializer_inputs() const;
};

/// Parses a serialized ModelProto held in memory.
///
/// `source_name` only labels error messages. Throws rooml::Error for
/// anything that is not a well-formed ONNX model ("not an ONNX model: ...")
/// and for content rooml cannot represent (external data, unsupported
/// element types, sparse initializers).
Model parse_model(const std::string& bytes, const std::string& source_name = "<memory>");

/// Same as parse_model(std::string), on a raw buffer (e.g. from Python bytes).
Model parse_model(const void* data, std::size_t size,
                  const std::string& source_name = "<memory>");

/// Reads and parses the ONNX file at `path`; throws rooml::Error("cannot open ...")
/// if it cannot be read, and as parse_model otherwise.
Model read_model_file(const std::string& path);

}  // namespace rooml::onnx
