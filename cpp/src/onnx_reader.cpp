// onnx_reader.cpp — decodes ONNX ModelProto files without protobuf.
//
// The decoder walks the protobuf wire format (varint keys, then a varint,
// fixed32, fixed64 or length-delimited payload) with bounds-checked readers
// over views into the caller's buffer, so nothing is copied until a value is
// stored in the result. Field numbers follow onnx/onnx.proto (stable across IR
// versions); unknown fields are skipped, as protobuf itself does.
#include "rooml/onnx_reader.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string_view>

namespace rooml::onnx {
namespace {

// ---------------------------------------------------------------------------
// Wire format

enum class Wire : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

const char* wire_name(Wire w) {
  switch (w) {
    case Wire::kVarint: return "varint";
    case Wire::kFixed64: return "fixed64";
    case Wire::kLen: return "length-delimited";
    case Wire::kFixed32: return "fixed32";
  }
  return "?";
}

struct Field {
  uint32_t number;
  Wire wire;
  std::size_t offset;  // of the field's key, for error messages
};

// What every reader of one buffer shares: where it starts and what it is called.
struct Context {
  const char* base;
  std::string source;
};

// A content error (valid protobuf, but something rooml cannot use).
[[noreturn]] void fail_content(const Context& ctx, const std::string& what) {
  throw Error(ctx.source + ": " + what);
}

// Bounds-checked reader over one message (or packed field) inside the buffer.
class Reader {
 public:
  Reader(const Context& ctx, std::string_view data, const char* message)
      : ctx_(&ctx), pos_(data.data()), end_(data.data() + data.size()), message_(message) {}

  bool at_end() const { return pos_ >= end_; }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - pos_); }
  const Context& context() const { return *ctx_; }

  /// A format error at the current position.
  [[noreturn]] void fail(const std::string& what) const { fail_at(offset(), what); }

  [[noreturn]] void fail_at(std::size_t at, const std::string& what) const {
    throw Error(ctx_->source + ": not an ONNX model: " + what + " in " + message_ +
                " at byte " + std::to_string(at));
  }

  /// Reads a field key; rejects field number 0, groups and unknown wire types.
  Field next_field() {
    const std::size_t at = offset();
    const uint64_t key = varint();
    const uint64_t number = key >> 3;
    const auto wire = static_cast<unsigned>(key & 7u);
    if (number == 0 || number > kMaxFieldNumber)
      fail_at(at, "invalid field number " + std::to_string(number));
    if (wire == 3 || wire == 4)
      fail_at(at, "protobuf group (wire type " + std::to_string(wire) + ") in field " +
                      std::to_string(number));
    if (wire != 0 && wire != 1 && wire != 2 && wire != 5)
      fail_at(at, "invalid wire type " + std::to_string(wire) + " in field " +
                      std::to_string(number));
    return {static_cast<uint32_t>(number), static_cast<Wire>(wire), at};
  }

  uint64_t varint() {
    uint64_t result = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_) fail("truncated varint");
      const auto byte = static_cast<uint8_t>(*pos_++);
      if (shift == 63 && byte > 1) fail("varint overflows 64 bits");
      result |= static_cast<uint64_t>(byte & 0x7fu) << shift;
      if ((byte & 0x80u) == 0) return result;
    }
    fail("varint too long");
  }

  uint32_t fixed32() {
    need(4, "fixed32");
    const uint32_t v = load_u32(pos_);
    pos_ += 4;
    return v;
  }

  uint64_t fixed64() {
    need(8, "fixed64");
    const uint64_t v = load_u64(pos_);
    pos_ += 8;
    return v;
  }

  /// A length-delimited payload, as a view into the buffer.
  std::string_view len_payload() {
    const std::size_t at = offset();
    const uint64_t n = varint();
    if (n > remaining())
      fail_at(at, "length " + std::to_string(n) + " runs past the end of the data (" +
                      std::to_string(remaining()) + " bytes left; truncated file?)");
    std::string_view out(pos_, static_cast<std::size_t>(n));
    pos_ += n;
    return out;
  }

  void skip(const Field& f) {
    switch (f.wire) {
      case Wire::kVarint: varint(); break;
      case Wire::kFixed64: fixed64(); break;
      case Wire::kLen: len_payload(); break;
      case Wire::kFixed32: fixed32(); break;
    }
  }

  // --- typed accessors: check the wire type, then read ---------------------

  uint64_t varint_field(const Field& f) {
    expect(f, Wire::kVarint);
    return varint();
  }
  int64_t int64_field(const Field& f) { return static_cast<int64_t>(varint_field(f)); }
  int32_t int32_field(const Field& f) { return static_cast<int32_t>(varint_field(f)); }

  float float_field(const Field& f) {
    expect(f, Wire::kFixed32);
    return bits_to_float(fixed32());
  }

  std::string_view bytes_field(const Field& f) {
    expect(f, Wire::kLen);
    return len_payload();
  }
  std::string string_field(const Field& f) { return std::string(bytes_field(f)); }

  /// A reader over an embedded message.
  Reader message(const Field& f, const char* name) {
    return Reader(*ctx_, bytes_field(f), name);
  }

  /// Appends a repeated varint field (packed or not), truncating each value with `conv`.
  template <typename Conv>
  void append_varints(const Field& f, std::vector<int64_t>& out, Conv conv) {
    if (f.wire == Wire::kVarint) {
      out.push_back(conv(varint()));
      return;
    }
    expect(f, Wire::kLen);
    const std::string_view payload = len_payload();
    std::size_t count = 0;  // every varint ends with exactly one byte < 0x80
    for (char c : payload) count += (static_cast<uint8_t>(c) & 0x80u) == 0;
    out.reserve(out.size() + count);
    Reader packed(*ctx_, payload, message_);
    while (!packed.at_end()) out.push_back(conv(packed.varint()));
  }

  /// Appends a repeated float field (fixed32, packed or not) converted to double.
  void append_floats(const Field& f, std::vector<double>& out) {
    append_fixed(f, Wire::kFixed32, 4, out, [](const char* p) {
      return static_cast<double>(bits_to_float(load_u32(p)));
    });
  }

  /// Appends a repeated double field (fixed64, packed or not).
  void append_doubles(const Field& f, std::vector<double>& out) {
    append_fixed(f, Wire::kFixed64, 8, out,
                 [](const char* p) { return bits_to_double(load_u64(p)); });
  }

  static uint32_t load_u32(const char* p) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
           static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
  }
  static uint64_t load_u64(const char* p) {
    return static_cast<uint64_t>(load_u32(p)) | static_cast<uint64_t>(load_u32(p + 4)) << 32;
  }
  static float bits_to_float(uint32_t bits) {
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  static double bits_to_double(uint64_t bits) {
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }

 private:
  static constexpr uint64_t kMaxFieldNumber = (1u << 29) - 1;

  std::size_t offset() const { return static_cast<std::size_t>(pos_ - ctx_->base); }

  void need(std::size_t n, const char* what) const {
    if (remaining() < n) fail(std::string("truncated ") + what);
  }

  void expect(const Field& f, Wire w) const {
    if (f.wire != w)
      fail_at(f.offset, "field " + std::to_string(f.number) + " has wire type " +
                            wire_name(f.wire) + ", expected " + wire_name(w));
  }

  template <typename Load>
  void append_fixed(const Field& f, Wire single, std::size_t width, std::vector<double>& out,
                    Load load) {
    if (f.wire == single) {
      need(width, wire_name(single));
      out.push_back(load(pos_));
      pos_ += width;
      return;
    }
    expect(f, Wire::kLen);
    const std::size_t at = offset();
    const std::string_view payload = len_payload();
    if (payload.size() % width != 0)
      fail_at(at, "packed field " + std::to_string(f.number) + " has " +
                      std::to_string(payload.size()) + " bytes, not a multiple of " +
                      std::to_string(width));
    const std::size_t n = payload.size() / width;
    out.reserve(out.size() + n);
    for (std::size_t k = 0; k < n; ++k) out.push_back(load(payload.data() + k * width));
  }

  const Context* ctx_;
  const char* pos_;
  const char* end_;
  const char* message_;
};

// Identity/truncating conversions for append_varints.
int64_t as_int64(uint64_t v) { return static_cast<int64_t>(v); }
int64_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

// ---------------------------------------------------------------------------
// Tensors

// A TensorProto as stored, before conversion to double.
struct RawTensor {
  Tensor tensor;  // name, dims and data_type filled
  std::string_view raw_data;
  bool has_raw_data = false;
  std::vector<double> float_data, double_data;
  std::vector<int64_t> int32_data, int64_data, uint64_data;
  bool external = false;
  bool segmented = false;
};

RawTensor read_tensor(Reader r) {
  RawTensor t;
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: r.append_varints(f, t.tensor.dims, as_int64); break;
      case 2: t.tensor.data_type = r.int32_field(f); break;
      case 3: t.segmented = true; r.skip(f); break;
      case 4: r.append_floats(f, t.float_data); break;
      case 5: r.append_varints(f, t.int32_data, as_int32); break;
      case 7: r.append_varints(f, t.int64_data, as_int64); break;
      case 8: t.tensor.name = r.string_field(f); break;
      case 9: t.raw_data = r.bytes_field(f); t.has_raw_data = true; break;
      case 10: r.append_doubles(f, t.double_data); break;
      case 11: r.append_varints(f, t.uint64_data, as_int64); break;
      case 14: t.external = r.int32_field(f) == 1; break;
      default: r.skip(f);
    }
  }
  return t;
}

// Exact conversion of an IEEE half-precision bit pattern.
double half_to_double(uint32_t bits) {
  const double sign = (bits & 0x8000u) ? -1.0 : 1.0;
  const int exponent = static_cast<int>((bits >> 10) & 0x1fu);
  const double mantissa = static_cast<double>(bits & 0x3ffu);
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31)
    return mantissa == 0 ? sign * std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::quiet_NaN();
  return sign * std::ldexp(mantissa + 1024.0, exponent - 25);
}

double bfloat16_to_double(uint32_t bits) {
  return static_cast<double>(Reader::bits_to_float((bits & 0xffffu) << 16));
}

// How one element type is stored: its raw width and which typed field holds it.
enum class Storage { kFloatData, kDoubleData, kInt32Data, kInt64Data, kUint64Data };

struct TypeInfo {
  int32_t code;
  std::size_t width;  // bytes per element in raw_data
  Storage storage;
  bool integer;       // exact values also go to int_values
  int64_t min, max;   // valid range of integer values
};

const TypeInfo* type_info(int32_t code) {
  using namespace data_type;
  static const TypeInfo kTypes[] = {
      {kFloat, 4, Storage::kFloatData, false, 0, 0},
      {kDouble, 8, Storage::kDoubleData, false, 0, 0},
      {kFloat16, 2, Storage::kInt32Data, false, 0, 0},
      {kBfloat16, 2, Storage::kInt32Data, false, 0, 0},
      {kInt8, 1, Storage::kInt32Data, true, -128, 127},
      {kUint8, 1, Storage::kInt32Data, true, 0, 255},
      {kInt16, 2, Storage::kInt32Data, true, -32768, 32767},
      {kUint16, 2, Storage::kInt32Data, true, 0, 65535},
      {kInt32, 4, Storage::kInt32Data, true, INT32_MIN, INT32_MAX},
      {kUint32, 4, Storage::kUint64Data, true, 0, UINT32_MAX},
      {kInt64, 8, Storage::kInt64Data, true, INT64_MIN, INT64_MAX},
      {kBool, 1, Storage::kInt32Data, true, 0, 1},
  };
  for (const TypeInfo& t : kTypes)
    if (t.code == code) return &t;
  return nullptr;
}

// One raw little-endian element as an integer (integer types) ...
int64_t raw_int(int32_t code, const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  switch (code) {
    case data_type::kInt8: return static_cast<int8_t>(b[0]);
    case data_type::kUint8: return b[0];
    case data_type::kBool: return b[0] != 0;
    case data_type::kInt16: return static_cast<int16_t>(b[0] | b[1] << 8);
    case data_type::kUint16: return static_cast<uint16_t>(b[0] | b[1] << 8);
    case data_type::kInt32: return static_cast<int32_t>(Reader::load_u32(p));
    case data_type::kUint32: return Reader::load_u32(p);
    default: return static_cast<int64_t>(Reader::load_u64(p));  // kInt64
  }
}

// ... or as a double (floating types).
double raw_double(int32_t code, const char* p) {
  switch (code) {
    case data_type::kFloat: return Reader::bits_to_float(Reader::load_u32(p));
    case data_type::kDouble: return Reader::bits_to_double(Reader::load_u64(p));
    case data_type::kFloat16: return half_to_double(Reader::load_u32(p) & 0xffffu);
    default: return bfloat16_to_double(Reader::load_u32(p) & 0xffffu);  // kBfloat16
  }
}

// Decodes raw_data (little-endian). FLOAT, DOUBLE and INT64 — nearly all the
// bytes of a real model — get loops of their own without a per-element switch.
void decode_raw(Tensor& t, const TypeInfo& info, std::string_view raw, std::size_t n) {
  const char* p = raw.data();
  const int32_t code = t.data_type;
  if (info.integer) {
    t.int_values.resize(n);
    if (code == data_type::kInt64) {
      for (std::size_t k = 0; k < n; ++k)
        t.int_values[k] = static_cast<int64_t>(Reader::load_u64(p + 8 * k));
    } else {
      for (std::size_t k = 0; k < n; ++k) t.int_values[k] = raw_int(code, p + k * info.width);
    }
    return;
  }
  t.values.resize(n);
  if (code == data_type::kFloat) {
    for (std::size_t k = 0; k < n; ++k)
      t.values[k] = Reader::bits_to_float(Reader::load_u32(p + 4 * k));
  } else if (code == data_type::kDouble) {
    for (std::size_t k = 0; k < n; ++k)
      t.values[k] = Reader::bits_to_double(Reader::load_u64(p + 8 * k));
  } else {
    for (std::size_t k = 0; k < n; ++k) t.values[k] = raw_double(code, p + k * info.width);
  }
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t k = 0; k < dims.size(); ++k)
    s += (k ? "," : "") + std::to_string(dims[k]);
  return s + "]";
}

// Element count from dims, or an error for negative or absurd dims.
std::size_t element_count(const Context& ctx, const std::string& label,
                          const std::vector<int64_t>& dims) {
  constexpr uint64_t kLimit = uint64_t{1} << 48;
  uint64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || static_cast<uint64_t>(d) > kLimit || (d > 0 && n > kLimit / static_cast<uint64_t>(d)))
      fail_content(ctx, label + ": invalid dims " + dims_string(dims));
    n *= static_cast<uint64_t>(d);
  }
  return static_cast<std::size_t>(n);
}

// Decodes the typed repeated field that `info` says holds the data.
void decode_typed(const Context& ctx, const std::string& label, RawTensor& raw,
                  const TypeInfo& info) {
  Tensor& t = raw.tensor;
  switch (info.storage) {
    case Storage::kFloatData: t.values = std::move(raw.float_data); return;
    case Storage::kDoubleData: t.values = std::move(raw.double_data); return;
    case Storage::kInt64Data: t.int_values = std::move(raw.int64_data); return;
    case Storage::kUint64Data: t.int_values = std::move(raw.uint64_data); break;
    case Storage::kInt32Data:
      if (!info.integer) {  // FLOAT16 / BFLOAT16 bit patterns
        t.values.reserve(raw.int32_data.size());
        for (int64_t bits : raw.int32_data) {
          const auto b = static_cast<uint32_t>(bits) & 0xffffu;
          t.values.push_back(t.data_type == data_type::kFloat16 ? half_to_double(b)
                                                                 : bfloat16_to_double(b));
        }
        return;
      }
      t.int_values = std::move(raw.int32_data);
      break;
  }
  for (int64_t v : t.int_values)
    if (v < info.min || v > info.max)
      fail_content(ctx, label + ": value " + std::to_string(v) + " out of range for " +
                            data_type_name(t.data_type));
}

// How many values each typed field holds (to detect data in the wrong field).
std::size_t typed_count(const RawTensor& raw, Storage s) {
  switch (s) {
    case Storage::kFloatData: return raw.float_data.size();
    case Storage::kDoubleData: return raw.double_data.size();
    case Storage::kInt32Data: return raw.int32_data.size();
    case Storage::kInt64Data: return raw.int64_data.size();
    case Storage::kUint64Data: return raw.uint64_data.size();
  }
  return 0;
}

const char* storage_name(Storage s) {
  switch (s) {
    case Storage::kFloatData: return "float_data";
    case Storage::kDoubleData: return "double_data";
    case Storage::kInt32Data: return "int32_data";
    case Storage::kInt64Data: return "int64_data";
    case Storage::kUint64Data: return "uint64_data";
  }
  return "?";
}

// Checks that the data sits where data_type says it should, and nowhere else.
void check_storage(const Context& ctx, const std::string& label, const RawTensor& raw,
                   const TypeInfo& info) {
  for (Storage s : {Storage::kFloatData, Storage::kDoubleData, Storage::kInt32Data,
                    Storage::kInt64Data, Storage::kUint64Data}) {
    if (typed_count(raw, s) == 0) continue;
    if (s != info.storage)
      fail_content(ctx, label + ": " + data_type_name(info.code) + " data stored in " +
                            storage_name(s));
    if (raw.has_raw_data)
      fail_content(ctx, label + ": data stored both in raw_data and in " + storage_name(s));
  }
}

// Converts a stored tensor to a Tensor; `what` describes it when it has no name.
Tensor convert_tensor(const Context& ctx, RawTensor raw, const std::string& what) {
  Tensor& t = raw.tensor;
  const std::string label =
      t.name.empty() ? what : "tensor '" + t.name + "'";
  if (raw.external)
    fail_content(ctx, label +
                          ": external tensor data not supported (save the model with "
                          "all tensors inside the .onnx file)");
  if (raw.segmented) fail_content(ctx, label + ": segmented tensors not supported");
  const TypeInfo* info = type_info(t.data_type);
  if (!info)
    fail_content(ctx, label + ": unsupported data type " + data_type_name(t.data_type));
  const std::size_t n = element_count(ctx, label, t.dims);
  check_storage(ctx, label, raw, *info);

  if (raw.has_raw_data) {
    if (raw.raw_data.size() % info->width != 0 || raw.raw_data.size() / info->width != n)
      fail_content(ctx, label + ": raw_data has " + std::to_string(raw.raw_data.size()) +
                            " bytes, dims " + dims_string(t.dims) + " of " +
                            data_type_name(t.data_type) + " need " +
                            std::to_string(n * info->width));
    decode_raw(t, *info, raw.raw_data, n);
  } else {
    const std::size_t stored = typed_count(raw, info->storage);
    if (stored != n)
      fail_content(ctx, label + ": " + std::to_string(stored) + " values stored, dims " +
                            dims_string(t.dims) + " need " + std::to_string(n));
    decode_typed(ctx, label, raw, *info);
  }
  if (info->integer)
    t.values.assign(t.int_values.begin(), t.int_values.end());
  return std::move(t);
}

// ---------------------------------------------------------------------------
// Graph pieces

Attribute read_attribute(Reader r, const std::string& node_label) {
  Attribute a;
  // Tensors are converted once the attribute's name is known (for messages).
  std::vector<RawTensor> t_raw;  // at most one: a repeated `t` keeps the last
  std::vector<RawTensor> tensors_raw;
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: a.name = r.string_field(f); break;
      case 20: a.type = r.int32_field(f); break;
      case 2: a.f = static_cast<double>(r.float_field(f)); break;
      case 3: a.i = r.int64_field(f); break;
      case 4: a.s = r.string_field(f); break;
      case 5:
        t_raw.clear();
        t_raw.push_back(read_tensor(r.message(f, "TensorProto")));
        break;
      case 7: r.append_floats(f, a.floats); break;
      case 8: r.append_varints(f, a.ints, as_int64); break;
      case 9: a.strings.push_back(r.string_field(f)); break;
      case 10: tensors_raw.push_back(read_tensor(r.message(f, "TensorProto"))); break;
      default: r.skip(f);  // graphs, sparse tensors, type protos, doc_string
    }
  }
  const std::string what = node_label + " attribute '" + a.name + "'";
  for (RawTensor& raw : t_raw) a.t = convert_tensor(r.context(), std::move(raw), what);
  for (RawTensor& raw : tensors_raw)
    a.tensors.push_back(convert_tensor(r.context(), std::move(raw), what));
  return a;
}

Node read_node(Reader r, std::size_t index) {
  Node n;
  std::vector<std::string_view> attributes;  // decoded once the node's name is known
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: n.inputs.push_back(r.string_field(f)); break;
      case 2: n.outputs.push_back(r.string_field(f)); break;
      case 3: n.name = r.string_field(f); break;
      case 4: n.op_type = r.string_field(f); break;
      case 5: attributes.push_back(r.bytes_field(f)); break;
      case 7: n.domain = r.string_field(f); break;
      default: r.skip(f);
    }
  }
  const std::string label = "node #" + std::to_string(index) +
                            (n.name.empty() ? "" : " '" + n.name + "'") + " (" + n.op_type + ")";
  if (n.op_type.empty()) fail_content(r.context(), "not an ONNX model: " + label + " has no op_type");
  for (std::string_view bytes : attributes)
    n.attributes.push_back(read_attribute(Reader(r.context(), bytes, "AttributeProto"), label));
  return n;
}

void read_dimension(Reader r, ValueInfo& v) {
  int64_t value = -1;
  std::string param;
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: value = r.int64_field(f); param.clear(); break;
      case 2: param = r.string_field(f); value = -1; break;
      default: r.skip(f);
    }
  }
  v.dims.push_back(value);
  v.dim_params.push_back(std::move(param));
}

void read_shape(Reader r, ValueInfo& v) {
  v.has_shape = true;
  v.dims.clear();
  v.dim_params.clear();
  while (!r.at_end()) {
    const Field f = r.next_field();
    if (f.number == 1)
      read_dimension(r.message(f, "TensorShapeProto.Dimension"), v);
    else
      r.skip(f);
  }
}

void read_tensor_type(Reader r, ValueInfo& v) {
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: v.elem_type = r.int32_field(f); break;
      case 2: read_shape(r.message(f, "TensorShapeProto"), v); break;
      default: r.skip(f);
    }
  }
}

void read_type(Reader r, ValueInfo& v) {
  while (!r.at_end()) {
    const Field f = r.next_field();
    if (f.number == 1)  // tensor_type; sequences, maps, ... are left at elem_type 0
      read_tensor_type(r.message(f, "TypeProto.Tensor"), v);
    else
      r.skip(f);
  }
}

ValueInfo read_value_info(Reader r) {
  ValueInfo v;
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: v.name = r.string_field(f); break;
      case 2: read_type(r.message(f, "TypeProto"), v); break;
      default: r.skip(f);
    }
  }
  return v;
}

void add_initializer(Model& m, const Context& ctx, RawTensor raw) {
  const std::size_t index = m.initializers.size();
  Tensor t = convert_tensor(ctx, std::move(raw), "initializer #" + std::to_string(index));
  if (t.name.empty()) fail_content(ctx, "initializer #" + std::to_string(index) + " has no name");
  const std::string name = t.name;
  if (!m.initializers.emplace(name, std::move(t)).second)
    fail_content(ctx, "duplicate initializer '" + name + "'");
}

void read_graph(Reader r, Model& m) {
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: m.nodes.push_back(read_node(r.message(f, "NodeProto"), m.nodes.size())); break;
      case 2: m.graph_name = r.string_field(f); break;
      case 5: add_initializer(m, r.context(), read_tensor(r.message(f, "TensorProto"))); break;
      case 11: m.inputs.push_back(read_value_info(r.message(f, "ValueInfoProto"))); break;
      case 12: m.outputs.push_back(read_value_info(r.message(f, "ValueInfoProto"))); break;
      case 15: fail_content(r.context(), "sparse initializers not supported");
      default: r.skip(f);
    }
  }
}

// Reads a (key, value) message: StringStringEntryProto or OperatorSetIdProto.
template <typename Value, typename ReadValue>
std::pair<std::string, Value> read_entry(Reader r, Value value, ReadValue read_value) {
  std::string key;
  while (!r.at_end()) {
    const Field f = r.next_field();
    if (f.number == 1)
      key = r.string_field(f);
    else if (f.number == 2)
      value = read_value(r, f);
    else
      r.skip(f);
  }
  return {std::move(key), std::move(value)};
}

void read_model(Reader r, Model& m) {
  bool has_graph = false;
  while (!r.at_end()) {
    const Field f = r.next_field();
    switch (f.number) {
      case 1: m.ir_version = r.int64_field(f); break;
      case 2: m.producer_name = r.string_field(f); break;
      case 3: m.producer_version = r.string_field(f); break;
      case 4: m.domain = r.string_field(f); break;
      case 5: m.model_version = r.int64_field(f); break;
      case 7: read_graph(r.message(f, "GraphProto"), m); has_graph = true; break;
      case 8:
        m.opsets.push_back(read_entry(r.message(f, "OperatorSetIdProto"), int64_t{0},
                                      [](Reader& e, const Field& g) { return e.int64_field(g); }));
        break;
      case 14: {  // a repeated key keeps its last value
        auto [key, value] =
            read_entry(r.message(f, "StringStringEntryProto"), std::string(),
                       [](Reader& e, const Field& g) { return e.string_field(g); });
        m.metadata[key] = std::move(value);
        break;
      }
      default: r.skip(f);
    }
  }
  const std::string prefix = r.context().source + ": not an ONNX model: ";
  if (!has_graph) throw Error(prefix + "no graph (ModelProto field 7)");
  if (m.ir_version <= 0)
    throw Error(prefix + "missing or invalid ir_version " + std::to_string(m.ir_version));
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

std::string data_type_name(int32_t code) {
  static const char* const kNames[] = {
      "UNDEFINED", "FLOAT",  "UINT8",  "INT8",   "UINT16",    "INT16",      "INT32",
      "INT64",     "STRING", "BOOL",   "FLOAT16", "DOUBLE",   "UINT32",     "UINT64",
      "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  if (code >= 0 && code < static_cast<int32_t>(sizeof kNames / sizeof kNames[0]))
    return kNames[code];
  return "TYPE_" + std::to_string(code);
}

std::size_t Tensor::size() const {
  std::size_t n = 1;
  for (int64_t d : dims) n *= static_cast<std::size_t>(d);
  return n;
}

bool Tensor::is_integer() const {
  const TypeInfo* info = type_info(data_type);
  return info && info->integer;
}

const Attribute* Node::attribute(const std::string& attr_name) const {
  for (const Attribute& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

const Tensor& Model::initializer(const std::string& name) const {
  const auto it = initializers.find(name);
  if (it == initializers.end())
    throw Error(source_name + ": no initializer '" + name + "' in the ONNX model");
  return it->second;
}

bool Model::has_initializer(const std::string& name) const {
  return initializers.count(name) != 0;
}

int64_t Model::opset_version(const std::string& opset_domain) const {
  const bool default_domain = opset_domain.empty() || opset_domain == "ai.onnx";
  for (const auto& [d, version] : opsets)
    if (d == opset_domain || (default_domain && (d.empty() || d == "ai.onnx"))) return version;
  return 0;
}

std::vector<ValueInfo> Model::non_initializer_inputs() const {
  std::vector<ValueInfo> out;
  for (const ValueInfo& v : inputs)
    if (!has_initializer(v.name)) out.push_back(v);
  return out;
}

Model parse_model(const void* data, std::size_t size, const std::string& source_name) {
  const Context ctx{static_cast<const char*>(data), source_name};
  if (size == 0) throw Error(source_name + ": not an ONNX model: empty file");
  Model m;
  m.source_name = source_name;
  read_model(Reader(ctx, std::string_view(ctx.base, size), "ModelProto"), m);
  return m;
}

Model parse_model(const std::string& bytes, const std::string& source_name) {
  return parse_model(bytes.data(), bytes.size(), source_name);
}

Model read_model_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error("cannot open ONNX file '" + path + "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open ONNX file '" + path + "'");
  std::string bytes;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) bytes.reserve(static_cast<std::size_t>(size));
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0)
    bytes.append(chunk, static_cast<std::size_t>(in.gcount()));
  if (in.bad()) throw Error("cannot read ONNX file '" + path + "'");
  return parse_model(bytes, path);
}

}  // namespace rooml::onnx
