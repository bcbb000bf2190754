// json.cpp — recursive-descent JSON parser and compact serialiser.
//
// Strict RFC 8259: no comments, no trailing commas, no NaN/Infinity, no
// unescaped control characters, no lone surrogates, no duplicate keys.
// Nesting is limited (kMaxDepth) so hostile input cannot overflow the stack.
#include "rooml/json.h"

#include <cerrno>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace rooml::json {
namespace {

constexpr int kMaxDepth = 512;

// strtod parses in the current C locale; substitute its decimal point for '.'
// so that "1.5" means 1.5 whatever setlocale() a host program called.
double locale_independent_strtod(const std::string& token, bool& out_of_range) {
  std::string buffer;
  const char* point = std::localeconv()->decimal_point;
  const std::string decimal_point = (point && *point) ? point : ".";
  buffer.reserve(token.size() + decimal_point.size());
  for (char c : token) {
    if (c == '.')
      buffer += decimal_point;
    else
      buffer += c;
  }
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(buffer.c_str(), &end);
  out_of_range = errno == ERANGE && std::isinf(x);
  return x;
}

// Formats a finite double with 17 significant digits (exact round trip),
// mapping a locale's decimal separator back to '.'.
std::string format_double(double x) {
  char buffer[40];
  const int n = std::snprintf(buffer, sizeof buffer, "%.17g", x);
  std::string s(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  for (char& c : s)
    if (!(c == '-' || c == '+' || c == 'e' || (c >= '0' && c <= '9'))) c = '.';
  return s;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// Recursive-descent parser over one document.
class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  Value document() {
    skip_whitespace();
    Value v = value(0);
    skip_whitespace();
    if (pos_ != s_.size()) fail("unexpected characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail_at(std::size_t at, const std::string& why) const {
    std::size_t line = 1, column = 1;
    for (std::size_t k = 0; k < at && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw Error("json: " + why + " at byte " + std::to_string(at) + " (line " +
                std::to_string(line) + ", column " + std::to_string(column) + ")");
  }
  [[noreturn]] void fail(const std::string& why) const { fail_at(pos_, why); }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                         s_[pos_] == '\r'))
      ++pos_;
  }

  void expect(char c, const char* what) {
    if (peek() != c) fail(std::string("expected ") + what);
    ++pos_;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    if (at_end()) fail("unexpected end of input, expected a value");
    switch (s_[pos_]) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return Value(string());
      case 't': literal("true"); return Value(true);
      case 'f': literal("false"); return Value(false);
      case 'n': literal("null"); return Value();
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return number();
        fail(std::string("unexpected character '") + s_[pos_] + "'");
    }
  }

  void literal(const char* word) {
    const std::string w(word);
    if (s_.compare(pos_, w.size(), w) != 0) fail("invalid literal, expected '" + w + "'");
    pos_ += w.size();
  }

  Value object(int depth) {
    ++pos_;  // '{'
    Value::Object members;
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      return Value(std::move(members));
    }
    for (;;) {
      skip_whitespace();
      const std::size_t key_at = pos_;
      if (peek() != '"') fail("expected a string key");
      std::string key = string();
      skip_whitespace();
      expect(':', "':' after object key");
      skip_whitespace();
      Value v = value(depth + 1);
      if (!members.emplace(std::move(key), std::move(v)).second)
        fail_at(key_at, "duplicate key");
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}', "',' or '}' in object");
      return Value(std::move(members));
    }
  }

  Value array(int depth) {
    ++pos_;  // '['
    Value::Array elements;
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      return Value(std::move(elements));
    }
    for (;;) {
      skip_whitespace();
      elements.push_back(value(depth + 1));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']', "',' or ']' in array");
      return Value(std::move(elements));
    }
  }

  // A string starting at the opening quote.
  std::string string() {
    const std::size_t start = pos_++;
    std::string out;
    for (;;) {
      if (at_end()) fail_at(start, "unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail_at(pos_ - 1, "control character in string");
      if (c == '\\')
        escape(out);
      else
        out += c;
    }
  }

  // An escape sequence after its backslash.
  void escape(std::string& out) {
    if (at_end()) fail("unterminated escape sequence");
    const char c = s_[pos_++];
    switch (c) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': append_utf8(out, code_point()); break;
      default: fail_at(pos_ - 1, std::string("invalid escape '\\") + c + "'");
    }
  }

  // The code point of \uXXXX (after the 'u'), joining a surrogate pair.
  uint32_t code_point() {
    const std::size_t at = pos_ - 2;
    const uint32_t first = hex4();
    if (first >= 0xdc00 && first <= 0xdfff) fail_at(at, "lone low surrogate in \\u escape");
    if (first < 0xd800 || first > 0xdbff) return first;
    if (s_.compare(pos_, 2, "\\u") != 0) fail_at(at, "high surrogate not followed by \\u escape");
    pos_ += 2;
    const uint32_t second = hex4();
    if (second < 0xdc00 || second > 0xdfff) fail_at(at, "invalid surrogate pair");
    return 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
  }

  uint32_t hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9')
        digit = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        digit = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        digit = static_cast<uint32_t>(c - 'A' + 10);
      else
        fail("expected 4 hex digits in \\u escape");
      v = v * 16 + digit;
      ++pos_;
    }
    return v;
  }

  void digits() {
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit");
    while (peek() >= '0' && peek() <= '9') ++pos_;
  }

  Value number() {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0')
      ++pos_;
    else
      digits();
    bool integer = true;
    if (peek() == '.') {
      ++pos_;
      digits();
      integer = false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      digits();
      integer = false;
    }
    const std::string token = s_.substr(start, pos_ - start);
    int64_t exact = 0;
    if (integer && token != "-0" && parse_int64(token, exact)) return Value(exact);
    bool out_of_range = false;
    const double x = locale_independent_strtod(token, out_of_range);
    if (out_of_range) fail_at(start, "number out of range");
    return Value(x);
  }

  // Exact int64 value of an integer literal, if it fits.
  static bool parse_int64(const std::string& token, int64_t& out) {
    const bool negative = token[0] == '-';
    uint64_t magnitude = 0;
    const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    for (std::size_t k = negative ? 1 : 0; k < token.size(); ++k) {
      const auto digit = static_cast<uint64_t>(token[k] - '0');
      if (magnitude > (limit - digit) / 10) return false;
      magnitude = magnitude * 10 + digit;
    }
    out = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    return true;
  }

  const std::string& s_;
  std::size_t pos_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------
// Value

Value::Value() = default;
Value::Value(bool b) : type_(Type::Bool), bool_(b) {}
Value::Value(double x) : type_(Type::Number), number_(x) {}
Value::Value(int64_t i)
    : type_(Type::Number), is_int_(true), number_(static_cast<double>(i)), int_(i) {}
Value::Value(std::string s)
    : type_(Type::String), string_(std::make_shared<const std::string>(std::move(s))) {}
Value::Value(Array a) : type_(Type::Array), array_(std::make_shared<const Array>(std::move(a))) {}
Value::Value(Object o)
    : type_(Type::Object), object_(std::make_shared<const Object>(std::move(o))) {}

const char* Value::type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "bool";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

void Value::expect(Type t) const {
  if (type_ != t)
    throw Error(std::string("json: expected ") + type_name(t) + ", got " + type_name(type_));
}

double Value::as_number() const {
  expect(Type::Number);
  return number_;
}

int64_t Value::as_int() const {
  expect(Type::Number);
  if (is_int_) return int_;
  const double two63 = 9223372036854775808.0;
  if (!(std::floor(number_) == number_ && number_ >= -two63 && number_ < two63))
    throw Error("json: number " + format_double(number_) + " is not an int64 integer");
  return static_cast<int64_t>(number_);
}

bool Value::as_bool() const {
  expect(Type::Bool);
  return bool_;
}

const std::string& Value::as_string() const {
  expect(Type::String);
  return *string_;
}

const Value::Array& Value::as_array() const {
  expect(Type::Array);
  return *array_;
}

const Value::Object& Value::as_object() const {
  expect(Type::Object);
  return *object_;
}

const Value* Value::find(const std::string& key) const {
  const Object& o = as_object();
  const auto it = o.find(key);
  return it == o.end() ? nullptr : &it->second;
}

const Value& Value::operator[](const std::string& key) const {
  const Value* v = find(key);
  if (!v) throw Error("json: missing key '" + key + "'");
  return *v;
}

const Value& Value::at(std::size_t i) const {
  const Array& a = as_array();
  if (i >= a.size())
    throw Error("json: index " + std::to_string(i) + " out of range for array of size " +
                std::to_string(a.size()));
  return a[i];
}

bool Value::contains(const std::string& key) const {
  return is_object() && object_->count(key) != 0;
}

std::size_t Value::size() const {
  if (is_array()) return array_->size();
  if (is_object()) return object_->size();
  throw Error(std::string("json: size() of a ") + type_name(type_));
}

namespace {
// Converts every element of an array with `get`, naming the element that fails.
template <typename T, typename Get>
std::vector<T> convert_elements(const Value::Array& a, Get get) {
  std::vector<T> out;
  out.reserve(a.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    try {
      out.push_back(get(a[k]));
    } catch (const Error& e) {
      std::string why = e.what();
      if (why.rfind("json: ", 0) == 0) why.erase(0, 6);
      throw Error("json: array element " + std::to_string(k) + ": " + why);
    }
  }
  return out;
}
}  // namespace

std::vector<double> Value::as_doubles() const {
  return convert_elements<double>(as_array(), [](const Value& v) { return v.as_number(); });
}

std::vector<int64_t> Value::as_ints() const {
  return convert_elements<int64_t>(as_array(), [](const Value& v) { return v.as_int(); });
}

std::vector<std::string> Value::as_strings() const {
  return convert_elements<std::string>(as_array(),
                                       [](const Value& v) { return v.as_string(); });
}

void Value::dump_to(std::string& out) const {
  switch (type_) {
    case Type::Null: out += "null"; return;
    case Type::Bool: out += bool_ ? "true" : "false"; return;
    case Type::Number:
      if (is_int_) {
        out += std::to_string(int_);
      } else {
        if (!std::isfinite(number_)) throw Error("json: cannot serialise a non-finite number");
        out += format_double(number_);
      }
      return;
    case Type::String: dump_string(out, *string_); return;
    case Type::Array: {
      out += '[';
      bool first = true;
      for (const Value& v : *array_) {
        if (!first) out += ',';
        first = false;
        v.dump_to(out);
      }
      out += ']';
      return;
    }
    case Type::Object: {
      out += '{';
      bool first = true;
      for (const auto& [key, v] : *object_) {
        if (!first) out += ',';
        first = false;
        dump_string(out, key);
        out += ':';
        v.dump_to(out);
      }
      out += '}';
      return;
    }
  }
}

std::string Value::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

Value parse(const std::string& text) { return Parser(text).document(); }

}  // namespace rooml::json
