// rooml::json — a small, strict JSON reader/writer for model metadata.
//
// Values are immutable after construction and cheap to copy (arrays and
// objects are shared). Numbers are doubles parsed exactly (strtod semantics,
// independent of the C locale); integer literals also keep their exact int64
// value so that as_int() is exact beyond 2^53. Objects are ordered by key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rooml/error.h"

namespace rooml::json {

/// A JSON value: null, bool, number, string, array or object.
class Value {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Value>;
  using Object = std::map<std::string, Value>;

  /// null
  Value();
  /// true / false
  explicit Value(bool b);
  /// A number (non-finite numbers are allowed here but dump() rejects them).
  explicit Value(double x);
  /// An integer, kept exactly.
  explicit Value(int64_t i);
  explicit Value(int i) : Value(static_cast<int64_t>(i)) {}
  explicit Value(std::string s);
  explicit Value(const char* s) : Value(std::string(s)) {}
  explicit Value(Array a);
  explicit Value(Object o);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  /// The number; throws rooml::Error if this is not a number.
  double as_number() const;
  /// The number as an exact integer; throws if not a number, not integral or out of range.
  int64_t as_int() const;
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  /// Member `key` of an object; throws rooml::Error("json: missing key 'key'").
  const Value& operator[](const std::string& key) const;
  /// Member `key`, or nullptr if absent; throws if this is not an object.
  const Value* find(const std::string& key) const;
  /// Element `i` of an array; throws if out of range.
  const Value& at(std::size_t i) const;
  /// True if this is an object with member `key` (false for non-objects).
  bool contains(const std::string& key) const;
  /// Number of elements (array) or members (object); throws for other types.
  std::size_t size() const;

  /// An array of numbers as doubles (null or other elements throw).
  std::vector<double> as_doubles() const;
  /// An array of integers (each as by as_int()).
  std::vector<int64_t> as_ints() const;
  /// An array of strings.
  std::vector<std::string> as_strings() const;

  /// Compact serialisation; numbers as integers when exact, else with %.17g.
  std::string dump() const;

  /// Name of a type ("null", "bool", "number", "string", "array", "object").
  static const char* type_name(Type t);

 private:
  void expect(Type t) const;
  void dump_to(std::string& out) const;

  Type type_ = Type::Null;
  bool bool_ = false;
  bool is_int_ = false;      // number_ came from an integer literal in int64 range
  double number_ = 0.0;
  int64_t int_ = 0;
  std::shared_ptr<const std::string> string_;
  std::shared_ptr<const Array> array_;
  std::shared_ptr<const Object> object_;
};

/// Parses a complete JSON document (RFC 8259; duplicate keys are an error).
/// Throws rooml::Error("json: <reason> at byte <offset> (line L, column C)").
Value parse(const std::string& text);

}  // namespace rooml::json
