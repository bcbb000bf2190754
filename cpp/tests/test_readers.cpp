// test_readers.cpp — standalone tests of rooml::onnx (ONNX reader) and rooml::json.
//
// Usage:
//   test_readers                 self-tests on hand-encoded protobuf and JSON
//   test_readers --dump F.onnx   print the parsed model as JSON (for tests/test_cpp_readers.py)
//   test_readers --fuzz F.onnx   truncations, byte mutations and random bytes must not crash
//   test_readers --json F.json   parse a JSON file and print json::Value::dump()
//   test_readers --bench F.onnx  parse time and per-initializer size/first/last/sum
// A failed parse in --dump/--json/--bench prints "ERROR: <message>" and exits with 2.
// Test modes print "N passed, M failed" last and return non-zero on failure.
#include <chrono>
#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "rooml/error.h"
#include "rooml/json.h"
#include "rooml/onnx_reader.h"

namespace {

namespace onnx = rooml::onnx;
namespace json = rooml::json;

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::cout << "FAIL: " << what << "\n";
  }
}

// Runs `f`, which must throw rooml::Error whose message contains `needle`.
void expect_error(const std::function<void()>& f, const std::string& needle,
                  const std::string& what) {
  try {
    f();
    check(false, what + ": no error thrown");
  } catch (const rooml::Error& e) {
    const bool ok = std::string(e.what()).find(needle) != std::string::npos;
    check(ok, what + ": message '" + e.what() + "' lacks '" + needle + "'");
  } catch (const std::exception& e) {
    check(false, what + ": wrong exception type: " + e.what());
  }
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// ---------------------------------------------------------------------------
// A minimal protobuf encoder for hand-made test messages.

struct Enc {
  std::string out;

  Enc& varint(uint64_t v) {
    while (v >= 0x80) {
      out += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out += static_cast<char>(v);
    return *this;
  }
  Enc& key(uint32_t field, unsigned wire) { return varint(uint64_t{field} << 3 | wire); }
  Enc& i(uint32_t field, int64_t v) { return key(field, 0).varint(static_cast<uint64_t>(v)); }
  Enc& bytes(uint32_t field, const std::string& s) {
    key(field, 2).varint(s.size());
    out += s;
    return *this;
  }
  Enc& msg(uint32_t field, const Enc& e) { return bytes(field, e.out); }
  Enc& f32(uint32_t field, float x) {
    key(field, 5);
    return raw32(x);
  }
  Enc& f64(uint32_t field, double x) {
    key(field, 1);
    return raw64(x);
  }
  Enc& raw32(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    for (int k = 0; k < 4; ++k) out += static_cast<char>(b >> (8 * k));
    return *this;
  }
  Enc& raw64(double x) {
    uint64_t b;
    std::memcpy(&b, &x, 8);
    for (int k = 0; k < 8; ++k) out += static_cast<char>(b >> (8 * k));
    return *this;
  }
  Enc& packed_floats(uint32_t field, const std::vector<float>& xs) {
    Enc p;
    for (float x : xs) p.raw32(x);
    return bytes(field, p.out);
  }
  Enc& packed_doubles(uint32_t field, const std::vector<double>& xs) {
    Enc p;
    for (double x : xs) p.raw64(x);
    return bytes(field, p.out);
  }
  Enc& packed_varints(uint32_t field, const std::vector<int64_t>& xs) {
    Enc p;
    for (int64_t x : xs) p.varint(static_cast<uint64_t>(x));
    return bytes(field, p.out);
  }
};

// TensorProto header: dims (unpacked, as onnx writes them), data_type, name.
Enc tensor_header(const std::string& name, int32_t type, const std::vector<int64_t>& dims) {
  Enc t;
  for (int64_t d : dims) t.i(1, d);
  t.i(2, type);
  t.bytes(8, name);
  return t;
}

std::string le_bytes(uint64_t v, int width) {
  std::string s;
  for (int k = 0; k < width; ++k) s += static_cast<char>(v >> (8 * k));
  return s;
}

Enc value_info(const std::string& name, int32_t elem, const std::vector<std::string>& dims) {
  Enc shape;
  for (const std::string& d : dims) {
    Enc dim;
    if (!d.empty() && d[0] >= '0' && d[0] <= '9')
      dim.i(1, std::stoll(d));
    else if (!d.empty())
      dim.bytes(2, d);
    shape.msg(1, dim);
  }
  Enc tensor_type;
  tensor_type.i(1, elem).msg(2, shape);
  Enc type;
  type.msg(1, tensor_type);
  Enc vi;
  vi.bytes(1, name).msg(2, type);
  return vi;
}

// A model exercising every storage form the reader supports.
std::string handmade_model(const std::vector<Enc>& extra_initializers = {}) {
  using namespace onnx::data_type;
  Enc graph;
  // node with attributes of every simple kind
  Enc node;
  node.bytes(1, "x").bytes(1, "w").bytes(2, "y").bytes(3, "n0").bytes(4, "Gemm");
  Enc a_f, a_i, a_s, a_floats, a_ints, a_t;
  a_f.bytes(1, "alpha").f32(2, 0.5f).i(20, 1);
  a_i.bytes(1, "transB").i(3, -7).i(20, 2);
  a_s.bytes(1, "mode").bytes(4, "linear").i(20, 3);
  a_floats.bytes(1, "scales").f32(7, 1.5f).f32(7, -2.25f).i(20, 6);   // unpacked
  a_ints.bytes(1, "perm").packed_varints(8, {2, 0, -1}).i(20, 7);     // packed
  Enc const_t = tensor_header("", kInt64, {1});
  const_t.bytes(9, le_bytes(uint64_t{0x7fffffffffffffff}, 8));
  a_t.bytes(1, "value").msg(5, const_t).i(20, 4);
  node.msg(5, a_f).msg(5, a_i).msg(5, a_s).msg(5, a_floats).msg(5, a_ints).msg(5, a_t);
  graph.msg(1, node).bytes(2, "g");

  Enc t_unpacked = tensor_header("f_unpacked", kFloat, {3});
  t_unpacked.f32(4, 0.1f).f32(4, -1e30f).f32(4, 3.0f);
  Enc t_packed = tensor_header("f_packed", kFloat, {2, 2});
  t_packed.packed_floats(4, {1.0f, 2.0f, -0.0f, 1e-40f});
  Enc t_double = tensor_header("d", kDouble, {2});
  t_double.packed_doubles(10, {0.1, -1.0 / 3.0});
  Enc t_double_unpacked = tensor_header("d_unpacked", kDouble, {1});
  t_double_unpacked.f64(10, 2.5);
  Enc t_int8 = tensor_header("i8", kInt8, {3});
  t_int8.packed_varints(5, {-128, 0, 127});
  Enc t_int32_raw = tensor_header("i32", kInt32, {2});
  t_int32_raw.bytes(9, le_bytes(0xfffffffe, 4) + le_bytes(5, 4));
  Enc t_int64 = tensor_header("i64", kInt64, {2});
  t_int64.packed_varints(7, {-9007199254740993LL, 42});
  Enc t_bool = tensor_header("b", kBool, {3});
  t_bool.bytes(9, std::string("\x01\x00\x02", 3));
  Enc t_u8 = tensor_header("u8", kUint8, {2});
  t_u8.bytes(9, "\xff\x07");
  Enc t_half = tensor_header("h", kFloat16, {4});
  t_half.bytes(9, le_bytes(0x3c00, 2) + le_bytes(0xc000, 2) + le_bytes(0x7bff, 2) +
                      le_bytes(0x0001, 2));
  Enc t_bf16 = tensor_header("bf", kBfloat16, {1});
  t_bf16.packed_varints(5, {0x3fc0});  // 1.5
  Enc t_scalar = tensor_header("scalar", kFloat, {});
  t_scalar.bytes(9, le_bytes(0x40490fdb, 4));  // float(pi)
  Enc t_empty = tensor_header("empty", kFloat, {0, 3});
  for (const Enc* t : {&t_unpacked, &t_packed, &t_double, &t_double_unpacked, &t_int8,
                       &t_int32_raw, &t_int64, &t_bool, &t_u8, &t_half, &t_bf16, &t_scalar,
                       &t_empty})
    graph.msg(5, *t);
  for (const Enc& t : extra_initializers) graph.msg(5, t);
  graph.msg(11, value_info("x", kDouble, {"batch", "3"}));
  graph.msg(11, value_info("f_unpacked", kFloat, {"3"}));
  graph.msg(12, value_info("y", kDouble, {"batch", ""}));

  Enc opset, opset_ml, meta1, meta2;
  opset.bytes(1, "").i(2, 17);
  opset_ml.bytes(1, "ai.onnx.ml").i(2, 3);
  meta1.bytes(1, "rooml.kind").bytes(2, "flow");
  meta2.bytes(1, "rooml.json").bytes(2, "{\"a\": [1, 2.5]}");
  Enc model;
  model.i(1, 8).bytes(2, "handmade").bytes(3, "0.1").i(5, 3).msg(7, graph);
  model.msg(8, opset).msg(8, opset_ml).msg(14, meta1).msg(14, meta2);
  model.i(99, 12345);  // an unknown field must be skipped
  return model.out;
}

// A model whose graph holds just `tensor` as initializer.
std::string model_with_tensor(const Enc& tensor) {
  Enc graph, model;
  graph.msg(5, tensor);
  model.i(1, 8).msg(7, graph);
  return model.out;
}

// ---------------------------------------------------------------------------
// ONNX self-tests

void test_handmade_model() {
  const onnx::Model m = onnx::parse_model(handmade_model(), "handmade.onnx");
  check(m.ir_version == 8 && m.producer_name == "handmade" && m.producer_version == "0.1" &&
            m.model_version == 3 && m.graph_name == "g",
        "model header fields");
  check(m.opsets.size() == 2 && m.opset_version() == 17 && m.opset_version("ai.onnx") == 17 &&
            m.opset_version("ai.onnx.ml") == 3 && m.opset_version("com.microsoft") == 0,
        "opset imports");
  check(m.metadata.size() == 2 && m.metadata.at("rooml.kind") == "flow", "metadata_props");
  check(json::parse(m.metadata.at("rooml.json"))["a"].as_doubles() ==
            std::vector<double>{1.0, 2.5},
        "metadata JSON");

  check(m.nodes.size() == 1, "one node");
  const onnx::Node& n = m.nodes.at(0);
  check(n.name == "n0" && n.op_type == "Gemm" && n.domain.empty() &&
            n.inputs == std::vector<std::string>{"x", "w"} &&
            n.outputs == std::vector<std::string>{"y"},
        "node fields");
  check(n.attributes.size() == 6, "six attributes");
  const onnx::Attribute* alpha = n.attribute("alpha");
  check(alpha && alpha->type == onnx::attribute_type::kFloat && alpha->f == 0.5, "float attr");
  check(n.attribute("transB") && n.attribute("transB")->i == -7, "negative int attr");
  check(n.attribute("mode") && n.attribute("mode")->s == "linear", "string attr");
  check(n.attribute("scales") && n.attribute("scales")->floats == std::vector<double>{1.5, -2.25},
        "unpacked floats attr");
  check(n.attribute("perm") && n.attribute("perm")->ints == std::vector<int64_t>{2, 0, -1},
        "packed ints attr");
  const onnx::Attribute* value = n.attribute("value");
  check(value && value->type == onnx::attribute_type::kTensor &&
            value->t.int_values == std::vector<int64_t>{INT64_MAX} && value->t.dims.size() == 1,
        "tensor attr keeps INT64_MAX exactly");
  check(n.attribute("missing") == nullptr, "missing attribute is nullptr");

  check(m.inputs.size() == 2 && m.inputs[0].dims == std::vector<int64_t>{-1, 3} &&
            m.inputs[0].dim_params == std::vector<std::string>{"batch", ""} &&
            m.inputs[0].elem_type == onnx::data_type::kDouble && m.inputs[0].has_shape,
        "input value info");
  check(m.outputs.size() == 1 && m.outputs[0].dims == std::vector<int64_t>{-1, -1},
        "output with unknown dim");
  const auto feeds = m.non_initializer_inputs();
  check(feeds.size() == 1 && feeds[0].name == "x", "non_initializer_inputs");
}

void test_handmade_tensors() {
  const onnx::Model m = onnx::parse_model(handmade_model(), "handmade.onnx");
  check(m.initializers.size() == 13, "13 initializers");
  auto vals = [&](const char* name) { return m.initializer(name).values; };
  check(vals("f_unpacked") == std::vector<double>{double(0.1f), double(-1e30f), 3.0},
        "unpacked float_data");
  const auto packed = vals("f_packed");
  check(packed.size() == 4 && packed[0] == 1.0 && packed[1] == 2.0 && same_bits(packed[2], -0.0) &&
            packed[3] == double(1e-40f),
        "packed float_data incl. -0 and subnormal");
  check(m.initializer("f_packed").dims == std::vector<int64_t>{2, 2} &&
            m.initializer("f_packed").size() == 4,
        "dims and size()");
  check(vals("d") == std::vector<double>{0.1, -1.0 / 3.0}, "packed double_data");
  check(vals("d_unpacked") == std::vector<double>{2.5}, "unpacked double_data");
  check(vals("i8") == std::vector<double>{-128, 0, 127} &&
            m.initializer("i8").int_values == std::vector<int64_t>{-128, 0, 127},
        "INT8 in int32_data");
  check(vals("i32") == std::vector<double>{-2, 5}, "INT32 raw_data (negative)");
  check(m.initializer("i64").int_values == std::vector<int64_t>{-9007199254740993LL, 42} &&
            m.initializer("i64").is_integer(),
        "INT64 exact beyond 2^53");
  check(vals("b") == std::vector<double>{1, 0, 1}, "BOOL raw_data");
  check(vals("u8") == std::vector<double>{255, 7}, "UINT8 raw_data");
  check(vals("h") == std::vector<double>{1.0, -2.0, 65504.0, std::ldexp(1.0, -24)},
        "FLOAT16 raw_data incl. subnormal");
  check(vals("bf") == std::vector<double>{1.5}, "BFLOAT16 in int32_data");
  check(vals("scalar") == std::vector<double>{double(3.14159265358979f)} &&
            m.initializer("scalar").dims.empty() && m.initializer("scalar").size() == 1,
        "0-d tensor");
  check(vals("empty").empty() && m.initializer("empty").size() == 0, "empty tensor");
  check(!m.initializer("d").is_integer() && m.initializer("d").int_values.empty(),
        "float tensors have no int_values");
  expect_error([&] { m.initializer("nope"); }, "'nope'", "missing initializer names tensor");
  expect_error([&] { m.initializer("nope"); }, "handmade.onnx", "missing initializer names file");
}

void test_content_errors() {
  using namespace onnx::data_type;
  Enc ext = tensor_header("w", kFloat, {1});
  Enc entry;
  entry.bytes(1, "location").bytes(2, "w.bin");
  ext.msg(13, entry).i(14, 1);
  expect_error([&] { onnx::parse_model(model_with_tensor(ext)); },
               "external tensor data not supported", "external data");

  Enc short_raw = tensor_header("w", kFloat, {3});
  short_raw.bytes(9, std::string(8, '\0'));
  expect_error([&] { onnx::parse_model(model_with_tensor(short_raw)); }, "raw_data has 8 bytes",
               "raw_data size mismatch");

  Enc few = tensor_header("w", kFloat, {2, 2});
  few.packed_floats(4, {1, 2, 3});
  expect_error([&] { onnx::parse_model(model_with_tensor(few)); }, "3 values stored",
               "float_data count mismatch");

  Enc wrong_field = tensor_header("w", kDouble, {1});
  wrong_field.packed_floats(4, {1});
  expect_error([&] { onnx::parse_model(model_with_tensor(wrong_field)); },
               "DOUBLE data stored in float_data", "data in the wrong field");

  Enc both = tensor_header("w", kFloat, {1});
  both.packed_floats(4, {1}).bytes(9, le_bytes(0, 4));
  expect_error([&] { onnx::parse_model(model_with_tensor(both)); }, "both in raw_data",
               "raw_data and float_data");

  Enc str = tensor_header("s", kString, {1});
  str.bytes(6, "abc");
  expect_error([&] { onnx::parse_model(model_with_tensor(str)); }, "unsupported data type STRING",
               "string tensor");

  Enc negative = tensor_header("w", kFloat, {-1});
  expect_error([&] { onnx::parse_model(model_with_tensor(negative)); }, "invalid dims",
               "negative dim");

  Enc huge = tensor_header("w", kFloat, {1LL << 40, 1LL << 40});
  expect_error([&] { onnx::parse_model(model_with_tensor(huge)); }, "invalid dims",
               "dims overflow");
  Enc big_no_data = tensor_header("w", kDouble, {1LL << 40});
  expect_error([&] { onnx::parse_model(model_with_tensor(big_no_data)); }, "0 values stored",
               "huge dims without data allocate nothing");

  Enc range = tensor_header("w", kUint8, {1});
  range.packed_varints(5, {300});
  expect_error([&] { onnx::parse_model(model_with_tensor(range)); }, "out of range",
               "int32_data out of range for UINT8");

  Enc dup = tensor_header("f_packed", kFloat, {});
  dup.packed_floats(4, {1});
  expect_error([&] { onnx::parse_model(handmade_model({dup})); }, "duplicate initializer",
               "duplicate initializer");

  Enc graph, model;
  graph.bytes(15, "");
  model.i(1, 8).msg(7, graph);
  expect_error([&] { onnx::parse_model(model.out); }, "sparse initializers not supported",
               "sparse initializer");
}

void test_format_errors() {
  expect_error([] { onnx::parse_model(std::string()); }, "not an ONNX model: empty", "empty");
  expect_error([] { onnx::parse_model("This is a text file, not a model.\n", "readme.txt"); },
               "readme.txt: not an ONNX model", "text file");
  expect_error([] { onnx::parse_model("{\"json\": true}"); }, "not an ONNX model", "JSON file");
  Enc no_graph;
  no_graph.i(1, 8).bytes(2, "x");
  expect_error([&] { onnx::parse_model(no_graph.out); }, "no graph", "model without graph");
  Enc no_ir, empty_graph;
  no_ir.msg(7, empty_graph);
  expect_error([&] { onnx::parse_model(no_ir.out); }, "ir_version", "model without ir_version");

  Enc wrong_wire;
  wrong_wire.bytes(1, "8");  // ir_version as a string
  expect_error([&] { onnx::parse_model(wrong_wire.out); }, "field 1 has wire type length-delimited",
               "wrong wire type");
  Enc past_end;
  past_end.i(1, 8).key(7, 2).varint(1000).out += "abc";
  expect_error([&] { onnx::parse_model(past_end.out); }, "length 1000 runs past the end",
               "length past end");
  expect_error([] { onnx::parse_model(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11)); },
               "varint", "overlong varint");
  expect_error([] { onnx::parse_model(std::string("\x08", 1)); }, "truncated varint",
               "truncated varint");
  expect_error([] { onnx::parse_model(std::string("\x0b\x0c", 2)); }, "group", "group wire type");
  expect_error([] { onnx::parse_model(std::string("\x00\x01", 2)); }, "invalid field number 0",
               "field number 0");
  expect_error([] { onnx::parse_model(std::string("\x0e", 1)); }, "invalid wire type 6",
               "wire type 6");
  Enc bad_packed = tensor_header("w", onnx::data_type::kFloat, {1});
  bad_packed.bytes(4, "abcde");
  expect_error([&] { onnx::parse_model(model_with_tensor(bad_packed)); }, "not a multiple of 4",
               "packed floats with a partial element");
  Enc nameless_node, graph, model;
  nameless_node.bytes(1, "x");
  graph.msg(1, nameless_node);
  model.i(1, 8).msg(7, graph);
  expect_error([&] { onnx::parse_model(model.out); }, "has no op_type", "node without op_type");

  expect_error([] { onnx::read_model_file("/nonexistent/dir/model.onnx"); }, "cannot open",
               "missing file");
  expect_error([] { onnx::read_model_file("."); }, "is a directory", "directory");
}

// Parses `bytes`; returns false only for a failure that is not a rooml::Error.
bool parses_or_throws_rooml_error(const std::string& bytes, std::string* problem) {
  try {
    onnx::parse_model(bytes, "fuzz");
  } catch (const rooml::Error&) {
  } catch (const std::exception& e) {
    *problem = e.what();
    return false;
  }
  return true;
}

// Truncations at every length, byte mutations and random buffers.
void fuzz_model(const std::string& valid, uint64_t seed) {
  int reported = 0;  // print only the first few failures
  auto run = [&](const std::string& bytes, const std::string& what) {
    std::string problem;
    if (parses_or_throws_rooml_error(bytes, &problem)) {
      ++g_passed;
      return;
    }
    ++g_failed;
    if (reported++ < 5) std::cout << "FAIL: fuzz " << what << ": " << problem << "\n";
  };
  for (std::size_t n = 0; n < valid.size(); ++n)
    run(valid.substr(0, n), "prefix " + std::to_string(n));
  std::mt19937_64 rng(seed);
  for (std::size_t pos = 0; pos < valid.size(); ++pos) {
    for (unsigned char v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string b = valid;
      b[pos] = static_cast<char>(v);
      run(b, "byte " + std::to_string(pos) + "=" + std::to_string(v));
    }
    std::string b = valid;
    b[pos] = static_cast<char>(rng());
    run(b, "random byte at " + std::to_string(pos));
  }
  for (int k = 0; k < 2000; ++k) {
    std::string b(rng() % 512, '\0');
    for (char& c : b) c = static_cast<char>(rng());
    run(b, "random buffer " + std::to_string(k));
    std::string spliced = valid;
    const std::size_t at = rng() % (valid.size() + 1);
    spliced.insert(at, b.substr(0, rng() % 16));
    run(spliced, "splice " + std::to_string(k));
  }
}

// ---------------------------------------------------------------------------
// JSON self-tests

void test_json_values() {
  const json::Value v = json::parse(
      " {\"b\": true, \"n\": null, \"x\": -1.5e-3, \"s\": \"a\\\"b\\\\c\\/\\n\\t\","
      " \"arr\": [1, [2, {\"k\": []}], {}], \"f\": false, \"i\": 42}\n");
  check(v.is_object() && v.size() == 7, "object with 7 members");
  check(v["b"].as_bool() && !v["f"].as_bool() && v["n"].is_null(), "literals");
  check(v["x"].as_number() == -1.5e-3, "number with exponent");
  check(v["s"].as_string() == "a\"b\\c/\n\t", "simple escapes");
  check(v["arr"].at(1).at(1)["k"].as_array().empty() && v["arr"].at(2).as_object().empty(),
        "nested containers");
  check(v["i"].as_int() == 42 && v.contains("i") && !v.contains("zz") &&
            !v["i"].contains("zz"),
        "as_int and contains");
  check(v.find("zz") == nullptr && v.find("i") != nullptr, "find");
  expect_error([&] { v["zz"]; }, "json: missing key 'zz'", "missing key");
  expect_error([&] { v["arr"].at(3); }, "out of range", "at() out of range");
  expect_error([&] { v["s"].as_number(); }, "expected number, got string", "type mismatch");
  expect_error([&] { v["arr"]["k"]; }, "expected object, got array", "[] on array");
  check(v.dump() ==
            "{\"arr\":[1,[2,{\"k\":[]}],{}],\"b\":true,\"f\":false,\"i\":42,\"n\":null,"
            "\"s\":\"a\\\"b\\\\c/\\n\\t\",\"x\":-0.0015}",
        "compact dump: " + v.dump());
}

void test_json_arrays() {
  const json::Value v = json::parse("{\"d\": [1, 2.5, -3e2], \"i\": [1, -2, 1e3],"
                                    " \"s\": [\"a\", \"b\"], \"bad\": [1, null]}");
  check(v["d"].as_doubles() == std::vector<double>{1, 2.5, -300}, "as_doubles");
  check(v["i"].as_ints() == std::vector<int64_t>{1, -2, 1000}, "as_ints");
  check(v["s"].as_strings() == std::vector<std::string>{"a", "b"}, "as_strings");
  expect_error([&] { v["bad"].as_doubles(); }, "element 1: expected number, got null",
               "null in as_doubles");
  expect_error([&] { v["d"].as_ints(); }, "not an int64", "as_ints of 2.5");
}

void test_json_unicode() {
  check(json::parse("\"\\u00e9\"").as_string() == "\xc3\xa9", "\\u00e9");
  check(json::parse("\"\\u20AC\"").as_string() == "\xe2\x82\xac", "\\u20AC");
  check(json::parse("\"\\ud83d\\ude00\"").as_string() == "\xf0\x9f\x98\x80", "surrogate pair");
  check(json::parse("\"\\u0000x\"").as_string() == std::string("\0x", 2), "\\u0000");
  check(json::parse("\"h\xc3\xa9llo\"").as_string() == "h\xc3\xa9llo", "raw UTF-8 passes");
  expect_error([] { json::parse("\"\\ud83d\""); }, "surrogate", "lone high surrogate");
  expect_error([] { json::parse("\"\\ude00\""); }, "lone low surrogate", "lone low surrogate");
  expect_error([] { json::parse("\"\\ud83d\\u0041\""); }, "invalid surrogate pair",
               "bad pair");
  expect_error([] { json::parse("\"\\u12g4\""); }, "hex digits", "bad hex");
  check(json::Value(std::string("\x01\n\"", 3)).dump() == "\"\\u0001\\n\\\"\"",
        "dump escapes control characters");
}

void test_json_numbers() {
  check(json::parse("9223372036854775807").as_int() == INT64_MAX, "INT64_MAX exact");
  check(json::parse("-9223372036854775808").as_int() == INT64_MIN, "INT64_MIN exact");
  check(json::parse("9007199254740993").as_int() == 9007199254740993LL, "2^53+1 exact");
  check(json::parse("9223372036854775808").as_number() == 9223372036854775808.0,
        "2^63 as double");
  expect_error([] { json::parse("9223372036854775808").as_int(); }, "not an int64",
               "2^63 not int64");
  expect_error([] { json::parse("1.5").as_int(); }, "not an int64", "1.5 not int");
  check(std::signbit(json::parse("-0.0").as_number()) && std::signbit(json::parse("-0").as_number()),
        "-0.0 and -0 keep their sign");
  check(json::parse("1e-400").as_number() == 0.0, "underflow to zero");
  check(json::parse("4.9406564584124654e-324").as_number() ==
            std::numeric_limits<double>::denorm_min(),
        "smallest subnormal");
  expect_error([] { json::parse("1e400"); }, "out of range", "overflow");
  for (const char* bad : {"01", "1.", ".5", "+1", "-", "1e", "1e+", "NaN", "Infinity", "0x10",
                          "- 1"})
    expect_error([&] { json::parse(bad); }, "json:", std::string("invalid number ") + bad);
  expect_error([] { json::Value(std::nan("")).dump(); }, "non-finite", "dump NaN");

  std::vector<double> xs = {0.1, 1.0 / 3.0, 5e-324, 1.7976931348623157e308,
                            -2.2250738585072014e-308, 123456789.123456789, 1e21, 1e-7, -0.0};
  std::mt19937_64 rng(7);
  while (xs.size() < 20000) {
    const uint64_t bits = rng();
    double x;
    std::memcpy(&x, &bits, sizeof x);
    if (std::isfinite(x)) xs.push_back(x);
  }
  json::Value::Array arr;
  for (double x : xs) arr.emplace_back(x);
  const std::vector<double> back = json::parse(json::Value(arr).dump()).as_doubles();
  bool all_same = back.size() == xs.size();
  for (std::size_t k = 0; all_same && k < xs.size(); ++k) all_same = same_bits(back[k], xs[k]);
  check(all_same, "20000 doubles round-trip bit-exactly through dump/parse");
}

void test_json_locale() {
  // Only meaningful where a locale with a decimal comma is installed.
  const char* names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE"};
  for (const char* name : names) {
    if (!std::setlocale(LC_NUMERIC, name)) continue;
    check(json::parse("1.5").as_number() == 1.5, std::string("parse under ") + name);
    check(json::Value(2.25).dump() == "2.25", std::string("dump under ") + name);
    std::setlocale(LC_NUMERIC, "C");
    return;
  }
  std::cout << "note: no decimal-comma locale installed; locale test not run\n";
}

void test_json_errors() {
  struct Case {
    const char* text;
    const char* needle;
  };
  const Case cases[] = {
      {"", "unexpected end of input, expected a value at byte 0"},
      {"[1, 2,]", "unexpected character ']' at byte 6"},
      {"{\"a\": 1,}", "expected a string key at byte 8"},
      {"{\"a\" 1}", "expected ':' after object key at byte 5"},
      {"{\"a\": 1, \"a\": 2}", "duplicate key at byte 9"},
      {"[1 2]", "expected ',' or ']' in array at byte 3"},
      {"\"abc", "unterminated string at byte 0"},
      {"\"a\nb\"", "control character in string at byte 2"},
      {"\"\\x\"", "invalid escape"},
      {"tru", "invalid literal"},
      {"nul", "invalid literal"},
      {"[1] x", "unexpected characters after the JSON value at byte 4"},
      {"{\n  \"a\": ?}", "line 2, column 8"},
      {"// comment\n1", "unexpected character '/'"},
  };
  for (const Case& c : cases)
    expect_error([&] { json::parse(c.text); }, c.needle, std::string("json error for ") + c.text);
  expect_error([] { json::parse(std::string(100000, '[')); }, "nesting deeper",
               "deep nesting is an error, not a stack overflow");
  check(json::parse(std::string(500, '[') + std::string(500, ']')).is_array(),
        "500 levels of nesting are fine");

  // Mutated documents must give a value or a rooml::Error, nothing else.
  const std::string doc = "{\"a\": [1, -2.5e3, \"x\\u00e9\\ud83d\\ude00\", null, true], \"b\": {}}";
  const std::string alphabet = "[]{}\",:\\u0e.-+ d";
  std::mt19937_64 rng(3);
  bool ok = true;
  for (int k = 0; k < 20000 && ok; ++k) {
    std::string t = doc;
    for (int m = 0; m < 3; ++m) t[rng() % t.size()] = alphabet[rng() % alphabet.size()];
    try {
      json::parse(t.substr(0, rng() % (t.size() + 1)));
    } catch (const rooml::Error&) {
    } catch (...) {
      ok = false;
    }
  }
  check(ok, "mutated JSON documents raise only rooml::Error");
}

// ---------------------------------------------------------------------------
// File modes

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw rooml::Error("cannot open '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json::Value number(double x) {  // JSON has no inf/nan: spell them as strings
  if (std::isnan(x)) return json::Value("nan");
  if (std::isinf(x)) return json::Value(x > 0 ? "inf" : "-inf");
  return json::Value(x);
}

json::Value ints(const std::vector<int64_t>& xs) {
  json::Value::Array a;
  for (int64_t x : xs) a.emplace_back(x);
  return json::Value(a);
}

json::Value doubles(const std::vector<double>& xs) {
  json::Value::Array a;
  for (double x : xs) a.push_back(number(x));
  return json::Value(a);
}

json::Value strings(const std::vector<std::string>& xs) {
  json::Value::Array a;
  for (const std::string& x : xs) a.emplace_back(x);
  return json::Value(a);
}

json::Value tensor_json(const onnx::Tensor& t) {
  json::Value::Object o;
  o["name"] = json::Value(t.name);
  o["dims"] = ints(t.dims);
  o["data_type"] = json::Value(static_cast<int64_t>(t.data_type));
  o["values"] = doubles(t.values);
  o["int_values"] = ints(t.int_values);
  return json::Value(o);
}

json::Value attribute_json(const onnx::Attribute& a) {
  json::Value::Object o;
  o["name"] = json::Value(a.name);
  o["type"] = json::Value(static_cast<int64_t>(a.type));
  o["f"] = number(a.f);
  o["i"] = json::Value(a.i);
  o["s"] = json::Value(a.s);
  o["floats"] = doubles(a.floats);
  o["ints"] = ints(a.ints);
  o["strings"] = strings(a.strings);
  o["t"] = a.type == onnx::attribute_type::kTensor ? tensor_json(a.t) : json::Value();
  json::Value::Array ts;
  for (const onnx::Tensor& t : a.tensors) ts.push_back(tensor_json(t));
  o["tensors"] = json::Value(ts);
  return json::Value(o);
}

json::Value value_info_json(const std::vector<onnx::ValueInfo>& vs) {
  json::Value::Array a;
  for (const onnx::ValueInfo& v : vs) {
    json::Value::Object o;
    o["name"] = json::Value(v.name);
    o["elem_type"] = json::Value(static_cast<int64_t>(v.elem_type));
    o["dims"] = ints(v.dims);
    o["dim_params"] = strings(v.dim_params);
    o["has_shape"] = json::Value(v.has_shape);
    a.emplace_back(o);
  }
  return json::Value(a);
}

json::Value model_json(const onnx::Model& m) {
  json::Value::Object o;
  o["ir_version"] = json::Value(m.ir_version);
  o["producer_name"] = json::Value(m.producer_name);
  o["producer_version"] = json::Value(m.producer_version);
  o["graph_name"] = json::Value(m.graph_name);
  json::Value::Array opsets;
  for (const auto& [domain, version] : m.opsets)
    opsets.emplace_back(json::Value::Array{json::Value(domain), json::Value(version)});
  o["opsets"] = json::Value(opsets);
  json::Value::Object meta;
  for (const auto& [k, v] : m.metadata) meta[k] = json::Value(v);
  o["metadata"] = json::Value(meta);
  json::Value::Array nodes;
  for (const onnx::Node& n : m.nodes) {
    json::Value::Object no;
    no["name"] = json::Value(n.name);
    no["op_type"] = json::Value(n.op_type);
    no["domain"] = json::Value(n.domain);
    no["inputs"] = strings(n.inputs);
    no["outputs"] = strings(n.outputs);
    json::Value::Array attrs;
    for (const onnx::Attribute& a : n.attributes) attrs.push_back(attribute_json(a));
    no["attributes"] = json::Value(attrs);
    nodes.emplace_back(no);
  }
  o["nodes"] = json::Value(nodes);
  o["inputs"] = value_info_json(m.inputs);
  o["outputs"] = value_info_json(m.outputs);
  json::Value::Object inits;
  for (const auto& [name, t] : m.initializers) inits[name] = tensor_json(t);
  o["initializers"] = json::Value(inits);
  return json::Value(o);
}

int bench(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  const onnx::Model m = onnx::read_model_file(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  json::Value::Object inits;
  for (const auto& [name, t] : m.initializers) {
    double sum = 0;
    for (double x : t.values) sum += x;
    json::Value::Object o;
    o["size"] = json::Value(static_cast<int64_t>(t.values.size()));
    o["first"] = t.values.empty() ? json::Value() : number(t.values.front());
    o["last"] = t.values.empty() ? json::Value() : number(t.values.back());
    o["sum"] = number(sum);
    inits[name] = json::Value(o);
  }
  json::Value::Object out;
  out["seconds"] = json::Value(seconds);
  out["initializers"] = json::Value(inits);
  std::cout << json::Value(out).dump() << "\n";
  return 0;
}

int summary() {
  std::cout << g_passed << " passed, " << g_failed << " failed\n";
  return g_failed == 0 ? 0 : 1;
}

int file_mode(const std::string& mode, const std::string& path) {
  try {
    if (mode == "--dump") {
      std::cout << model_json(onnx::read_model_file(path)).dump() << "\n";
      return 0;
    }
    if (mode == "--json") {
      std::cout << json::parse(read_file(path)).dump() << "\n";
      return 0;
    }
    if (mode == "--bench") return bench(path);
    if (mode == "--fuzz") {
      fuzz_model(read_file(path), 12345);
      return summary();
    }
  } catch (const rooml::Error& e) {
    std::cout << "ERROR: " << e.what() << "\n";
    return 2;
  }
  std::cerr << "unknown mode " << mode << "\n";
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3) return file_mode(argv[1], argv[2]);
  if (argc != 1) {
    std::cerr << "usage: test_readers [--dump|--fuzz|--json|--bench FILE]\n";
    return 64;
  }
  const std::vector<std::pair<const char*, void (*)()>> tests = {
      {"handmade model", test_handmade_model},
      {"handmade tensors", test_handmade_tensors},
      {"content errors", test_content_errors},
      {"format errors", test_format_errors},
      {"json values", test_json_values},
      {"json arrays", test_json_arrays},
      {"json unicode", test_json_unicode},
      {"json numbers", test_json_numbers},
      {"json locale", test_json_locale},
      {"json errors", test_json_errors},
  };
  for (const auto& [name, fn] : tests) {
    try {
      fn();
    } catch (const std::exception& e) {
      check(false, std::string(name) + ": unexpected exception: " + e.what());
    }
  }
  fuzz_model(handmade_model(), 1);
  return summary();
}
