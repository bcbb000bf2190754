// Kernels of the general ONNX graph evaluator: element-wise, broadcasting, linear algebra,
// reductions and shape operators of the default domain (tree ensembles: graph_trees.cpp).
#include "graph_ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "rooml/error.h"
#include "rooml/kernels.h"
#include "rooml/vecmath.h"

namespace rooml::graph {

Kernel make_ml_kernel(const onnx::Node& node, const std::string& source);  // graph_trees.cpp

namespace dt = onnx::data_type;

std::size_t Value::size() const {
  std::size_t n = 1;
  for (int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

void Value::resize(const std::vector<int64_t>& dims) {
  shape = dims;
  data.resize(size());
}

bool Value::is_integer() const { return type != dt::kFloat && type != dt::kDouble && type != dt::kFloat16 && type != dt::kBfloat16; }

Value from_tensor(const onnx::Tensor& t) {
  Value v;
  v.shape = t.dims;
  v.data = t.values;
  v.type = t.data_type;
  return v;
}

int64_t to_index(double v) {
  constexpr double kLimit = 4611686018427387904.0;  // 2^62
  return static_cast<int64_t>(std::clamp(v, -kLimit, kLimit));
}

const Value& Call::input(std::size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
  return *in[i];
}

int64_t Call::attr_int(const std::string& name, int64_t fallback) const {
  const onnx::Attribute* a = node.attribute(name);
  return a ? a->i : fallback;
}

double Call::attr_float(const std::string& name, double fallback) const {
  const onnx::Attribute* a = node.attribute(name);
  return a ? a->f : fallback;
}

std::string Call::attr_string(const std::string& name, const std::string& fallback) const {
  const onnx::Attribute* a = node.attribute(name);
  return a ? a->s : fallback;
}

std::vector<int64_t> Call::attr_ints(const std::string& name) const {
  const onnx::Attribute* a = node.attribute(name);
  return a ? a->ints : std::vector<int64_t>{};
}

void Call::fail(const std::string& what) const {
  throw Error("ONNX node '" + node.name + "' (" + node.op_type + "): " + what);
}

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

std::size_t normalize_axis(const Call& c, int64_t axis, std::size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) c.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

std::vector<int64_t> ints_of(const Value& v) {
  std::vector<int64_t> out(v.data.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = to_index(v.data[i]);
  return out;
}

int64_t product(const std::vector<int64_t>& s, std::size_t from, std::size_t to) {
  int64_t p = 1;
  for (std::size_t i = from; i < to; ++i) p *= s[i];
  return p;
}

// ---- broadcasting ---------------------------------------------------------------------------

std::vector<int64_t> broadcast_shape(const Call& c, const std::vector<const std::vector<int64_t>*>& shapes) {
  std::size_t rank = 0;
  for (auto* s : shapes) rank = std::max(rank, s->size());
  std::vector<int64_t> out(rank, 1);
  for (auto* s : shapes) {
    const std::size_t off = rank - s->size();
    for (std::size_t i = 0; i < s->size(); ++i) {
      const int64_t d = (*s)[i];
      if (d == 1) continue;
      if (out[off + i] == 1)
        out[off + i] = d;
      else if (out[off + i] != d) {
        std::string all;
        for (auto* t : shapes) all += (all.empty() ? "" : " and ") + shape_text(*t);
        c.fail("shapes " + all + " do not broadcast");
      }
    }
  }
  // a zero-size dimension wins over 1 (handled above since d == 0 != 1)
  return out;
}

std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& shape, const std::vector<int64_t>& out) {
  const std::size_t rank = out.size(), off = rank - shape.size();
  std::vector<int64_t> strides(rank, 0);
  int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[off + i] = shape[i] == 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

/// out[i] = f(in_0[j_0], ..., in_{K-1}[j_{K-1}]) under ONNX (numpy) broadcasting.
template <std::size_t K, class F>
void broadcast_apply(const Call& c, const std::array<const Value*, K>& in, Value& out, int32_t type, F f) {
  std::vector<const std::vector<int64_t>*> shapes;
  for (auto* v : in) shapes.push_back(&v->shape);
  const std::vector<int64_t> shape = broadcast_shape(c, shapes);
  // Inputs may alias the output's storage only through copies: read everything first when same shape.
  std::array<std::vector<double>, K> hold;
  std::array<const double*, K> p;
  for (std::size_t k = 0; k < K; ++k) {
    if (in[k] == &out) {
      hold[k] = in[k]->data;
      p[k] = hold[k].data();
    } else {
      p[k] = in[k]->data.data();
    }
  }
  std::array<bool, K> same;
  bool all_same = true;
  for (std::size_t k = 0; k < K; ++k) all_same &= (same[k] = in[k]->shape == shape);
  out.resize(shape);
  out.type = type;
  double* o = out.data.data();
  const std::size_t n = out.size();
  if (n == 0) return;
  if (all_same) {
    for (std::size_t i = 0; i < n; ++i) {
      std::array<double, K> args;
      for (std::size_t k = 0; k < K; ++k) args[k] = p[k][i];
      o[i] = std::apply(f, args);
    }
    return;
  }
  const std::size_t rank = shape.size();
  std::array<std::vector<int64_t>, K> strides;
  for (std::size_t k = 0; k < K; ++k) strides[k] = broadcast_strides(in[k]->shape, shape);
  const int64_t inner = rank ? shape[rank - 1] : 1;
  std::array<int64_t, K> inner_stride, offset{};
  for (std::size_t k = 0; k < K; ++k) inner_stride[k] = rank ? strides[k][rank - 1] : 0;
  std::vector<int64_t> counter(rank ? rank - 1 : 0, 0);
  for (std::size_t i = 0; i < n; i += static_cast<std::size_t>(inner)) {
    for (int64_t j = 0; j < inner; ++j) {
      std::array<double, K> args;
      for (std::size_t k = 0; k < K; ++k) args[k] = p[k][offset[k] + j * inner_stride[k]];
      o[i + static_cast<std::size_t>(j)] = std::apply(f, args);
    }
    for (std::size_t d = counter.size(); d-- > 0;) {  // advance the outer index
      ++counter[d];
      for (std::size_t k = 0; k < K; ++k) offset[k] += strides[k][d];
      if (counter[d] < shape[d]) break;
      for (std::size_t k = 0; k < K; ++k) offset[k] -= strides[k][d] * shape[d];
      counter[d] = 0;
    }
  }
}

template <class F>
void binary(Call& c, F f, int32_t type = -1) {
  const Value& a = c.input(0);
  const Value& b = c.input(1);
  broadcast_apply<2>(c, {&a, &b}, *c.out[0], type < 0 ? a.type : type, f);
}

/// Variadic Min / Max / Sum / Mean: a left fold with broadcasting.
template <class F>
void variadic(Call& c, F f, bool mean = false) {
  Value acc = c.input(0);
  for (std::size_t i = 1; i < c.in.size(); ++i) {
    Value next;
    broadcast_apply<2>(c, {&acc, &c.input(i)}, next, acc.type, f);
    acc = std::move(next);
  }
  if (mean)
    for (double& v : acc.data) v /= static_cast<double>(c.in.size());
  *c.out[0] = std::move(acc);
}

// ---- element-wise activations ---------------------------------------------------------------

template <class F>
Activation pointwise(F f) {
  return [f](double* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x[i] = f(x[i]);
  };
}

/// A float attribute; ONNX stores them as float32, so the spec's defaults are float32 values too.
double attr_f(const onnx::Node& n, const char* name, double fallback) {
  const onnx::Attribute* a = n.attribute(name);
  return a ? a->f : static_cast<double>(static_cast<float>(fallback));
}

}  // namespace

Activation make_activation(const onnx::Node& node) {
  if (!node.domain.empty() && node.domain != "ai.onnx") return {};
  const std::string& op = node.op_type;
  if (op == "Relu") return [](double* x, std::size_t n) { relu_inplace(x, n); };
  if (op == "Sigmoid") return pointwise([](double v) { return 1.0 / (1.0 + fast_exp(-v)); });
  if (op == "Tanh") return pointwise([](double v) { return std::tanh(v); });
  if (op == "Softplus") return pointwise([](double v) { return fast_softplus(v); });
  if (op == "Softsign") return pointwise([](double v) { return v / (1.0 + std::fabs(v)); });
  if (op == "Mish") return pointwise([](double v) { return v * std::tanh(fast_softplus(v)); });
  if (op == "Exp") return pointwise([](double v) { return std::exp(v); });
  if (op == "Log") return pointwise([](double v) { return std::log(v); });
  if (op == "Sqrt") return pointwise([](double v) { return std::sqrt(v); });
  if (op == "Neg") return pointwise([](double v) { return -v; });
  if (op == "Abs") return pointwise([](double v) { return std::fabs(v); });
  if (op == "Reciprocal") return pointwise([](double v) { return 1.0 / v; });
  if (op == "Erf") return pointwise([](double v) { return std::erf(v); });
  if (op == "Floor") return pointwise([](double v) { return std::floor(v); });
  if (op == "Ceil") return pointwise([](double v) { return std::ceil(v); });
  if (op == "Identity" || op == "Dropout") return pointwise([](double v) { return v; });
  if (op == "LeakyRelu") {
    const double alpha = attr_f(node, "alpha", 0.01);
    return pointwise([alpha](double v) { return v >= 0.0 ? v : alpha * v; });
  }
  if (op == "Elu") {
    const double alpha = attr_f(node, "alpha", 1.0);
    return pointwise([alpha](double v) { return v >= 0.0 ? v : alpha * std::expm1(v); });
  }
  if (op == "Celu") {
    const double alpha = attr_f(node, "alpha", 1.0);
    return pointwise([alpha](double v) { return std::max(0.0, v) + std::min(0.0, alpha * std::expm1(v / alpha)); });
  }
  if (op == "Selu") {
    const double alpha = attr_f(node, "alpha", 1.67326319217681884765625);
    const double gamma = attr_f(node, "gamma", 1.05070102214813232421875);
    return pointwise([alpha, gamma](double v) { return gamma * (v > 0.0 ? v : alpha * std::expm1(v)); });
  }
  if (op == "HardSigmoid") {
    const double alpha = attr_f(node, "alpha", 0.2), beta = attr_f(node, "beta", 0.5);
    return pointwise([alpha, beta](double v) { return std::max(0.0, std::min(1.0, alpha * v + beta)); });
  }
  if (op == "Gelu") {
    const onnx::Attribute* a = node.attribute("approximate");
    if (a && a->s == "tanh")
      return pointwise([](double v) {
        return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
      });
    return pointwise([](double v) { return 0.5 * v * (1.0 + std::erf(v * 0.7071067811865476)); });
  }
  return {};
}

namespace {

bool is_dropout_like(const std::string& op) { return op == "Identity" || op == "Dropout"; }

void unary(Call& c, const Activation& f) {
  const Value& x = c.input(0);
  Value& y = *c.out[0];
  if (&x != &y) {
    y.shape = x.shape;
    y.data = x.data;
    y.type = x.type;
  }
  f(y.data.data(), y.data.size());
  if (c.out.size() > 1 && c.out[1] && is_dropout_like(c.node.op_type)) {  // Dropout's mask: all kept
    c.out[1]->resize(x.shape);
    std::fill(c.out[1]->data.begin(), c.out[1]->data.end(), 1.0);
    c.out[1]->type = dt::kBool;
  }
}

// ---- linear algebra -------------------------------------------------------------------------

void matmul(Call& c) {
  Value a = c.input(0), b = c.input(1);
  const bool vec_a = a.shape.size() == 1, vec_b = b.shape.size() == 1;
  if (a.shape.empty() || b.shape.empty()) c.fail("MatMul of a scalar");
  if (vec_a) a.shape.insert(a.shape.begin(), 1);
  if (vec_b) b.shape.push_back(1);
  const std::size_t ra = a.shape.size(), rb = b.shape.size();
  const int64_t m = a.shape[ra - 2], k = a.shape[ra - 1], k2 = b.shape[rb - 2], n = b.shape[rb - 1];
  if (k != k2) c.fail("inner dimensions differ: " + shape_text(c.input(0).shape) + " x " + shape_text(c.input(1).shape));
  std::vector<int64_t> ba(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  std::vector<int64_t> batch = broadcast_shape(c, {&ba, &bb});
  std::vector<int64_t> sa = broadcast_strides(ba, batch), sb = broadcast_strides(bb, batch);
  std::vector<int64_t> shape = batch;
  if (!vec_a) shape.push_back(m);
  if (!vec_b) shape.push_back(n);
  Value& out = *c.out[0];
  out.resize(shape);
  out.type = a.type;
  const int64_t batches = product(batch, 0, batch.size());
  std::vector<int64_t> counter(batch.size(), 0);
  for (int64_t q = 0; q < batches; ++q) {
    int64_t oa = 0, ob = 0;
    for (std::size_t d = 0; d < batch.size(); ++d) oa += counter[d] * sa[d], ob += counter[d] * sb[d];
    const double* pa = a.data.data() + oa * m * k;
    const double* pb = b.data.data() + ob * k * n;
    double* po = out.data.data() + q * m * n;
    std::fill(po, po + m * n, 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t kk = 0; kk < k; ++kk) {
        const double aik = pa[i * k + kk];
        const double* __restrict brow = pb + kk * n;
        double* __restrict orow = po + i * n;
        for (int64_t j = 0; j < n; ++j) orow[j] += aik * brow[j];
      }
    for (std::size_t d = batch.size(); d-- > 0;) {
      if (++counter[d] < batch[d]) break;
      counter[d] = 0;
    }
  }
}

void gemm(Call& c) {
  const Value& a = c.input(0);
  const Value& b = c.input(1);
  if (a.shape.size() != 2 || b.shape.size() != 2) c.fail("Gemm needs 2-D inputs, got " + shape_text(a.shape) + " and " + shape_text(b.shape));
  const bool ta = c.attr_int("transA", 0) != 0, tb = c.attr_int("transB", 0) != 0;
  const double alpha = c.attr_float("alpha", 1.0), beta = c.attr_float("beta", 1.0);
  const int64_t m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1];
  const int64_t k2 = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1];
  if (k != k2) c.fail("inner dimensions differ: " + shape_text(a.shape) + " x " + shape_text(b.shape));
  Value prod;
  prod.resize({m, n});
  prod.type = a.type;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t q = 0; q < k; ++q) s += (ta ? a.data[q * m + i] : a.data[i * k + q]) * (tb ? b.data[j * k + q] : b.data[q * n + j]);
      prod.data[i * n + j] = alpha * s;
    }
  if (c.has_input(2)) {
    broadcast_apply<2>(c, {&prod, &c.input(2)}, *c.out[0], a.type, [beta](double p, double q) { return p + beta * q; });
  } else {
    *c.out[0] = std::move(prod);
  }
}

// ---- reductions and normalizations -----------------------------------------------------------

std::vector<int64_t> reduce_axes(Call& c, bool axes_as_input) {
  if (axes_as_input) return c.has_input(1) ? ints_of(c.input(1)) : std::vector<int64_t>{};
  return c.attr_ints("axes");
}

enum class Reduce { Sum, Mean, Max, Min, LogSumExp, Prod, SumSquare };

void reduce(Call& c, Reduce kind, bool axes_as_input) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  std::vector<int64_t> axes = reduce_axes(c, axes_as_input);
  std::vector<bool> reduced(rank, axes.empty());
  if (axes.empty() && c.attr_int("noop_with_empty_axes", 0)) {
    *c.out[0] = x;
    return;
  }
  for (int64_t a : axes) reduced[normalize_axis(c, a, rank)] = true;
  const bool keep = c.attr_int("keepdims", 1) != 0;
  std::vector<int64_t> kept_shape(rank), out_shape;
  for (std::size_t d = 0; d < rank; ++d) {
    kept_shape[d] = reduced[d] ? 1 : x.shape[d];
    if (!reduced[d] || keep) out_shape.push_back(kept_shape[d]);
  }
  const std::vector<int64_t> strides = broadcast_strides(kept_shape, x.shape);
  const std::size_t m = static_cast<std::size_t>(product(kept_shape, 0, rank));
  std::vector<double> acc(m, kind == Reduce::Max   ? -std::numeric_limits<double>::infinity()
                             : kind == Reduce::Min ? std::numeric_limits<double>::infinity()
                             : kind == Reduce::Prod ? 1.0
                                                    : 0.0);
  std::vector<double> top;
  auto walk = [&](auto&& visit) {
    std::vector<int64_t> counter(rank, 0);
    int64_t o = 0;
    for (std::size_t i = 0; i < x.data.size(); ++i) {
      visit(static_cast<std::size_t>(o), x.data[i]);
      for (std::size_t d = rank; d-- > 0;) {
        o += strides[d];
        if (++counter[d] < x.shape[d]) break;
        o -= strides[d] * x.shape[d];
        counter[d] = 0;
      }
    }
  };
  switch (kind) {
    case Reduce::Sum:
    case Reduce::Mean: walk([&](std::size_t o, double v) { acc[o] += v; }); break;
    case Reduce::SumSquare: walk([&](std::size_t o, double v) { acc[o] += v * v; }); break;
    case Reduce::Prod: walk([&](std::size_t o, double v) { acc[o] *= v; }); break;
    case Reduce::Max: walk([&](std::size_t o, double v) { acc[o] = std::max(acc[o], v); }); break;
    case Reduce::Min: walk([&](std::size_t o, double v) { acc[o] = std::min(acc[o], v); }); break;
    case Reduce::LogSumExp:
      top.assign(m, -std::numeric_limits<double>::infinity());
      walk([&](std::size_t o, double v) { top[o] = std::max(top[o], v); });
      for (double& t : top) t = std::isfinite(t) ? t : 0.0;
      walk([&](std::size_t o, double v) { acc[o] += std::exp(v - top[o]); });
      for (std::size_t o = 0; o < m; ++o) acc[o] = top[o] + std::log(acc[o]);
      break;
  }
  if (kind == Reduce::Mean) {
    const double count = static_cast<double>(x.data.size()) / static_cast<double>(std::max<std::size_t>(m, 1));
    for (double& v : acc) v /= count;
  }
  Value& out = *c.out[0];
  out.shape = out_shape;
  out.data = std::move(acc);
  out.type = x.type;
}

void softmax(Call& c, bool log) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  const bool legacy = c.opset < 13;
  const std::size_t axis = normalize_axis(c, c.attr_int("axis", legacy ? 1 : -1), std::max<std::size_t>(rank, 1));
  const int64_t outer = product(x.shape, 0, axis);
  const int64_t len = legacy ? product(x.shape, axis, rank) : x.shape[axis];
  const int64_t inner = legacy ? 1 : product(x.shape, axis + 1, rank);
  Value y = x;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double* p = y.data.data() + o * len * inner + i;
      double top = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < len; ++j) top = std::max(top, p[j * inner]);
      double sum = 0.0;
      for (int64_t j = 0; j < len; ++j) sum += std::exp(p[j * inner] - top);
      const double log_sum = std::log(sum);
      for (int64_t j = 0; j < len; ++j)
        p[j * inner] = log ? p[j * inner] - top - log_sum : std::exp(p[j * inner] - top) / sum;
    }
  *c.out[0] = std::move(y);
}

void batch_norm(Call& c) {
  const Value& x = c.input(0);
  if (x.shape.size() < 2) c.fail("BatchNormalization needs at least 2-D input, got " + shape_text(x.shape));
  const Value &scale = c.input(1), &bias = c.input(2), &mean = c.input(3), &var = c.input(4);
  const double eps = c.attr_float("epsilon", 1e-5);
  const int64_t n = x.shape[0], ch = x.shape[1], inner = product(x.shape, 2, x.shape.size());
  for (const Value* p : {&scale, &bias, &mean, &var})
    if (static_cast<int64_t>(p->data.size()) != ch) c.fail("parameter size does not match the " + std::to_string(ch) + " channels");
  Value y = x;
  for (int64_t e = 0; e < n; ++e)
    for (int64_t k = 0; k < ch; ++k) {
      const double s = scale.data[k] / std::sqrt(var.data[k] + eps), m = mean.data[k], b = bias.data[k];
      double* p = y.data.data() + (e * ch + k) * inner;
      for (int64_t i = 0; i < inner; ++i) p[i] = (p[i] - m) * s + b;
    }
  *c.out[0] = std::move(y);
}

void layer_norm(Call& c) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  const std::size_t axis = normalize_axis(c, c.attr_int("axis", -1), rank);
  const double eps = c.attr_float("epsilon", 1e-5);
  const int64_t outer = product(x.shape, 0, axis), len = product(x.shape, axis, rank);
  const Value& scale = c.input(1);
  const Value* bias = c.has_input(2) ? &c.input(2) : nullptr;
  auto param = [len](const Value& p, int64_t j) { return p.data.size() == 1 ? p.data[0] : p.data[j % static_cast<int64_t>(p.data.size())]; };
  if (static_cast<int64_t>(scale.data.size()) != len && scale.data.size() != 1) c.fail("Scale does not match the normalized shape");
  Value y = x;
  std::vector<int64_t> stat_shape = x.shape;
  for (std::size_t d = axis; d < rank; ++d) stat_shape[d] = 1;
  Value* mean_out = c.out.size() > 1 ? c.out[1] : nullptr;
  Value* inv_out = c.out.size() > 2 ? c.out[2] : nullptr;
  if (mean_out) mean_out->resize(stat_shape);
  if (inv_out) inv_out->resize(stat_shape);
  for (int64_t o = 0; o < outer; ++o) {
    double* p = y.data.data() + o * len;
    double mean = 0.0;
    for (int64_t j = 0; j < len; ++j) mean += p[j];
    mean /= static_cast<double>(len);
    double var = 0.0;
    for (int64_t j = 0; j < len; ++j) var += (p[j] - mean) * (p[j] - mean);
    var /= static_cast<double>(len);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < len; ++j) p[j] = (p[j] - mean) * inv * param(scale, j) + (bias ? param(*bias, j) : 0.0);
    if (mean_out) mean_out->data[o] = mean;
    if (inv_out) inv_out->data[o] = inv;
  }
  *c.out[0] = std::move(y);
}

void cumsum(Call& c) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  const std::size_t axis = normalize_axis(c, to_index(c.input(1).data.at(0)), rank);
  const bool exclusive = c.attr_int("exclusive", 0) != 0, reverse = c.attr_int("reverse", 0) != 0;
  const int64_t outer = product(x.shape, 0, axis), len = x.shape[axis], inner = product(x.shape, axis + 1, rank);
  Value y = x;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double sum = 0.0;
      for (int64_t q = 0; q < len; ++q) {
        const int64_t j = reverse ? len - 1 - q : q;
        const int64_t at = (o * len + j) * inner + i;
        const double v = x.data[at];
        if (exclusive) {
          y.data[at] = sum;
          sum += v;
        } else {
          sum += v;
          y.data[at] = sum;
        }
      }
    }
  *c.out[0] = std::move(y);
}

// ---- shape operators ------------------------------------------------------------------------

void reshape_to(Call& c, const std::vector<int64_t>& shape) {
  const Value& x = c.input(0);
  Value y;
  y.shape = shape;
  if (y.size() != x.size()) c.fail("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
  y.data = x.data;
  y.type = x.type;
  *c.out[0] = std::move(y);
}

void reshape(Call& c) {
  const Value& x = c.input(0);
  std::vector<int64_t> shape = ints_of(c.input(1));
  const bool allow_zero = c.attr_int("allowzero", 0) != 0;
  int64_t known = 1;
  long infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allow_zero) {
      if (i >= x.shape.size()) c.fail("shape entry 0 at position " + std::to_string(i) + " beyond the input rank");
      shape[i] = x.shape[i];
    }
    if (shape[i] == -1) {
      if (infer >= 0) c.fail("more than one -1 in the target shape");
      infer = static_cast<long>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || static_cast<int64_t>(x.size()) % known) c.fail("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
    shape[infer] = static_cast<int64_t>(x.size()) / known;
  }
  reshape_to(c, shape);
}

void flatten(Call& c) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  int64_t axis = c.attr_int("axis", 1);
  if (axis < 0) axis += static_cast<int64_t>(rank);
  if (axis < 0 || axis > static_cast<int64_t>(rank)) c.fail("axis out of range");
  reshape_to(c, {product(x.shape, 0, axis), product(x.shape, axis, rank)});
}

std::vector<int64_t> axes_arg(Call& c, int64_t since) {
  if (c.opset >= since) return c.has_input(1) ? ints_of(c.input(1)) : std::vector<int64_t>{};
  return c.attr_ints("axes");
}

void squeeze(Call& c) {
  const Value& x = c.input(0);
  const std::vector<int64_t> axes = axes_arg(c, 13);
  std::vector<bool> drop(x.shape.size(), false);
  if (axes.empty())
    for (std::size_t d = 0; d < x.shape.size(); ++d) drop[d] = x.shape[d] == 1;
  for (int64_t a : axes) {
    const std::size_t d = normalize_axis(c, a, x.shape.size());
    if (x.shape[d] != 1) c.fail("cannot squeeze axis " + std::to_string(a) + " of shape " + shape_text(x.shape));
    drop[d] = true;
  }
  std::vector<int64_t> shape;
  for (std::size_t d = 0; d < x.shape.size(); ++d)
    if (!drop[d]) shape.push_back(x.shape[d]);
  reshape_to(c, shape);
}

void unsqueeze(Call& c) {
  const Value& x = c.input(0);
  const std::vector<int64_t> axes = axes_arg(c, 13);
  const std::size_t rank = x.shape.size() + axes.size();
  std::vector<bool> added(rank, false);
  for (int64_t a : axes) {
    const std::size_t d = normalize_axis(c, a, rank);
    if (added[d]) c.fail("repeated axis in Unsqueeze");
    added[d] = true;
  }
  std::vector<int64_t> shape;
  std::size_t src = 0;
  for (std::size_t d = 0; d < rank; ++d) shape.push_back(added[d] ? 1 : x.shape[src++]);
  reshape_to(c, shape);
}

void concat(Call& c) {
  const Value& first = c.input(0);
  const std::size_t rank = first.shape.size();
  const std::size_t axis = normalize_axis(c, c.attr_int("axis", 0), rank);
  std::vector<int64_t> shape = first.shape;
  shape[axis] = 0;
  for (std::size_t k = 0; k < c.in.size(); ++k) {
    const Value& v = c.input(k);
    for (std::size_t d = 0; d < rank; ++d)
      if (d != axis && (v.shape.size() != rank || v.shape[d] != first.shape[d]))
        c.fail("inputs " + shape_text(first.shape) + " and " + shape_text(v.shape) + " do not concatenate on axis " + std::to_string(axis));
    shape[axis] += v.shape[axis];
  }
  Value y;
  y.resize(shape);
  y.type = first.type;
  const int64_t outer = product(shape, 0, axis), inner = product(shape, axis + 1, rank);
  std::size_t at = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (std::size_t k = 0; k < c.in.size(); ++k) {
      const Value& v = c.input(k);
      const int64_t chunk = v.shape[axis] * inner;
      std::copy_n(v.data.begin() + o * chunk, chunk, y.data.begin() + static_cast<long>(at));
      at += static_cast<std::size_t>(chunk);
    }
  *c.out[0] = std::move(y);
}

void split(Call& c) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  const std::size_t axis = normalize_axis(c, c.attr_int("axis", 0), rank);
  std::vector<int64_t> sizes = c.opset >= 13 ? (c.has_input(1) ? ints_of(c.input(1)) : std::vector<int64_t>{}) : c.attr_ints("split");
  const int64_t len = x.shape[axis], parts = static_cast<int64_t>(c.out.size());
  if (sizes.empty()) {
    const int64_t each = (len + parts - 1) / parts;
    for (int64_t k = 0; k < parts; ++k) sizes.push_back(std::min(each, len - k * each));
  }
  if (static_cast<int64_t>(sizes.size()) != parts || std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != len)
    c.fail("split sizes do not add up to the axis length " + std::to_string(len));
  const int64_t outer = product(x.shape, 0, axis), inner = product(x.shape, axis + 1, rank);
  int64_t start = 0;
  for (int64_t k = 0; k < parts; ++k) {
    std::vector<int64_t> shape = x.shape;
    shape[axis] = sizes[k];
    Value y;
    y.resize(shape);
    y.type = x.type;
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(x.data.begin() + (o * len + start) * inner, sizes[k] * inner, y.data.begin() + o * sizes[k] * inner);
    start += sizes[k];
    if (c.out[k]) *c.out[k] = std::move(y);
  }
}

/// y[out index] = x[in index] where the input index of output position p is base + sum_d p_d * step_d.
void strided_copy(Call& c, const Value& x, const std::vector<int64_t>& shape, int64_t base, const std::vector<int64_t>& steps) {
  Value y;
  y.resize(shape);
  y.type = x.type;
  const std::size_t rank = shape.size();
  std::vector<int64_t> counter(rank, 0);
  int64_t at = base;
  for (std::size_t i = 0; i < y.data.size(); ++i) {
    y.data[i] = x.data[static_cast<std::size_t>(at)];
    for (std::size_t d = rank; d-- > 0;) {
      at += steps[d];
      if (++counter[d] < shape[d]) break;
      at -= steps[d] * shape[d];
      counter[d] = 0;
    }
  }
  *c.out[0] = std::move(y);
}

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

void slice(Call& c) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset >= 10) {
    starts = ints_of(c.input(1));
    ends = ints_of(c.input(2));
    if (c.has_input(3)) axes = ints_of(c.input(3));
    if (c.has_input(4)) steps = ints_of(c.input(4));
  } else {
    starts = c.attr_ints("starts");
    ends = c.attr_ints("ends");
    axes = c.attr_ints("axes");
  }
  if (axes.empty())
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    c.fail("starts, ends, axes and steps differ in length");
  std::vector<int64_t> shape = x.shape, begin(rank, 0), step(rank, 1);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t d = normalize_axis(c, axes[i], rank);
    const int64_t dim = x.shape[d], st = steps[i];
    if (st == 0) c.fail("slice step 0");
    int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      shape[d] = e > s ? (e - s + st - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      shape[d] = s > e ? (s - e - st - 1) / (-st) : 0;
    }
    begin[d] = s;
    step[d] = st;
  }
  const std::vector<int64_t> strides = row_major_strides(x.shape);
  int64_t base = 0;
  std::vector<int64_t> jumps(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    base += begin[d] * strides[d];
    jumps[d] = step[d] * strides[d];
  }
  strided_copy(c, x, shape, base, jumps);
}

void transpose(Call& c) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  std::vector<int64_t> perm = c.attr_ints("perm");
  if (perm.empty())
    for (std::size_t d = 0; d < rank; ++d) perm.push_back(static_cast<int64_t>(rank - 1 - d));
  if (perm.size() != rank) c.fail("perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(rank));
  const std::vector<int64_t> strides = row_major_strides(x.shape);
  std::vector<int64_t> shape(rank), jumps(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    const std::size_t from = normalize_axis(c, perm[d], rank);
    shape[d] = x.shape[from];
    jumps[d] = strides[from];
  }
  strided_copy(c, x, shape, 0, jumps);
}

void gather(Call& c) {
  const Value& x = c.input(0);
  const Value& idx = c.input(1);
  const std::size_t rank = x.shape.size();
  const std::size_t axis = normalize_axis(c, c.attr_int("axis", 0), rank);
  const int64_t outer = product(x.shape, 0, axis), len = x.shape[axis], inner = product(x.shape, axis + 1, rank);
  std::vector<int64_t> shape(x.shape.begin(), x.shape.begin() + static_cast<long>(axis));
  shape.insert(shape.end(), idx.shape.begin(), idx.shape.end());
  shape.insert(shape.end(), x.shape.begin() + static_cast<long>(axis) + 1, x.shape.end());
  Value y;
  y.resize(shape);
  y.type = x.type;
  const std::size_t m = idx.data.size();
  for (int64_t o = 0; o < outer; ++o)
    for (std::size_t q = 0; q < m; ++q) {
      int64_t j = to_index(idx.data[q]);
      if (j < 0) j += len;
      if (j < 0 || j >= len) c.fail("index " + std::to_string(to_index(idx.data[q])) + " out of range for axis length " + std::to_string(len));
      std::copy_n(x.data.begin() + (o * len + j) * inner, inner, y.data.begin() + (o * static_cast<int64_t>(m) + static_cast<int64_t>(q)) * inner);
    }
  *c.out[0] = std::move(y);
}

void cast(Call& c) {
  const Value& x = c.input(0);
  const int32_t to = static_cast<int32_t>(c.attr_int("to", dt::kFloat));
  if (to == dt::kString) c.fail("Cast to STRING is not supported");
  Value y = x;
  y.type = to;
  if (to == dt::kBool)
    for (double& v : y.data) v = v != 0.0 ? 1.0 : 0.0;
  else if (y.is_integer())
    for (double& v : y.data) v = std::trunc(v);
  *c.out[0] = std::move(y);
}

void shape_of(Call& c) {
  const Value& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t start = c.attr_int("start", 0), end = c.attr_int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  Value y;
  y.type = dt::kInt64;
  for (int64_t d = start; d < end; ++d) y.data.push_back(static_cast<double>(x.shape[d]));
  y.shape = {static_cast<int64_t>(y.data.size())};
  *c.out[0] = std::move(y);
}

void constant(Call& c) {
  const onnx::Node& n = c.node;
  Value y;
  if (const onnx::Attribute* a = n.attribute("value")) {
    y = from_tensor(a->t);
  } else if (const onnx::Attribute* f = n.attribute("value_float")) {
    y.shape = {};
    y.data = {f->f};
  } else if (const onnx::Attribute* fs = n.attribute("value_floats")) {
    y.data = fs->floats;
    y.shape = {static_cast<int64_t>(y.data.size())};
  } else if (const onnx::Attribute* i = n.attribute("value_int")) {
    y.shape = {};
    y.data = {static_cast<double>(i->i)};
    y.type = dt::kInt64;
  } else if (const onnx::Attribute* is = n.attribute("value_ints")) {
    for (int64_t v : is->ints) y.data.push_back(static_cast<double>(v));
    y.shape = {static_cast<int64_t>(y.data.size())};
    y.type = dt::kInt64;
  } else {
    c.fail("Constant without a supported value attribute");
  }
  *c.out[0] = std::move(y);
}

void constant_of_shape(Call& c) {
  Value y;
  double fill = 0.0;
  y.type = dt::kFloat;
  if (const onnx::Attribute* a = c.node.attribute("value")) {
    if (a->t.values.size() != 1) c.fail("value must hold one element");
    fill = a->t.values[0];
    y.type = a->t.data_type;
  }
  y.resize(ints_of(c.input(0)));
  std::fill(y.data.begin(), y.data.end(), fill);
  *c.out[0] = std::move(y);
}

void expand(Call& c) {
  const Value& x = c.input(0);
  Value target;
  target.shape = ints_of(c.input(1));
  const std::vector<int64_t> shape = broadcast_shape(c, {&x.shape, &target.shape});
  target.resize(shape);
  std::fill(target.data.begin(), target.data.end(), 0.0);
  broadcast_apply<2>(c, {&x, &target}, *c.out[0], x.type, [](double v, double) { return v; });
}

void clip(Call& c) {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (c.opset < 11) {
    lo = c.attr_float("min", lo);
    hi = c.attr_float("max", hi);
  } else {
    if (c.has_input(1)) lo = c.input(1).data.at(0);
    if (c.has_input(2)) hi = c.input(2).data.at(0);
  }
  unary(c, pointwise([lo, hi](double v) { return std::min(std::max(v, lo), hi); }));
}

void where(Call& c) {
  const Value &cond = c.input(0), &a = c.input(1), &b = c.input(2);
  broadcast_apply<3>(c, {&cond, &a, &b}, *c.out[0], a.type, [](double t, double p, double q) { return t != 0.0 ? p : q; });
}

void arg_extreme(Call& c, bool max) {
  const Value& x = c.input(0);
  const std::size_t rank = x.shape.size();
  const std::size_t axis = normalize_axis(c, c.attr_int("axis", 0), rank);
  const bool keep = c.attr_int("keepdims", 1) != 0, last = c.attr_int("select_last_index", 0) != 0;
  const int64_t outer = product(x.shape, 0, axis), len = x.shape[axis], inner = product(x.shape, axis + 1, rank);
  std::vector<int64_t> shape = x.shape;
  if (keep)
    shape[axis] = 1;
  else
    shape.erase(shape.begin() + static_cast<long>(axis));
  Value y;
  y.resize(shape);
  y.type = dt::kInt64;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t j = 1; j < len; ++j) {
        const double v = x.data[(o * len + j) * inner + i], b = x.data[(o * len + best) * inner + i];
        if (max ? (v > b || (last && v == b)) : (v < b || (last && v == b))) best = j;
      }
      y.data[o * inner + i] = static_cast<double>(best);
    }
  *c.out[0] = std::move(y);
}

void logical_not(Call& c) {
  unary(c, pointwise([](double v) { return v == 0.0 ? 1.0 : 0.0; }));
  c.out[0]->type = dt::kBool;
}

double as_bool(double v) { return v != 0.0 ? 1.0 : 0.0; }

using Builder = std::function<Kernel(const onnx::Node&)>;

template <class F>
Builder binary_op(F f, int32_t type = -1) {
  return [f, type](const onnx::Node&) -> Kernel { return [f, type](Call& c) { binary(c, f, type); }; };
}

Builder simple(void (*fn)(Call&)) {
  return [fn](const onnx::Node&) -> Kernel { return fn; };
}

const std::map<std::string, Builder>& default_domain() {
  static const std::map<std::string, Builder> ops = {
      {"Add", binary_op([](double a, double b) { return a + b; })},
      {"Sub", binary_op([](double a, double b) { return a - b; })},
      {"Mul", binary_op([](double a, double b) { return a * b; })},
      {"Div", [](const onnx::Node&) -> Kernel {
         return [](Call& c) {
           if (c.input(0).is_integer() && c.input(1).is_integer())
             binary(c, [](double a, double b) { return std::trunc(a / b); });
           else
             binary(c, [](double a, double b) { return a / b; });
         };
       }},
      {"Pow", binary_op([](double a, double b) { return std::pow(a, b); })},
      {"PRelu", binary_op([](double x, double s) { return x < 0.0 ? s * x : x; })},
      {"Less", binary_op([](double a, double b) { return a < b ? 1.0 : 0.0; }, dt::kBool)},
      {"Greater", binary_op([](double a, double b) { return a > b ? 1.0 : 0.0; }, dt::kBool)},
      {"Equal", binary_op([](double a, double b) { return a == b ? 1.0 : 0.0; }, dt::kBool)},
      {"LessOrEqual", binary_op([](double a, double b) { return a <= b ? 1.0 : 0.0; }, dt::kBool)},
      {"GreaterOrEqual", binary_op([](double a, double b) { return a >= b ? 1.0 : 0.0; }, dt::kBool)},
      {"And", binary_op([](double a, double b) { return as_bool(a) * as_bool(b); }, dt::kBool)},
      {"Or", binary_op([](double a, double b) { return std::max(as_bool(a), as_bool(b)); }, dt::kBool)},
      {"Xor", binary_op([](double a, double b) { return as_bool(a) != as_bool(b) ? 1.0 : 0.0; }, dt::kBool)},
      {"Not", simple(logical_not)},
      {"Min", simple([](Call& c) { variadic(c, [](double a, double b) { return std::min(a, b); }); })},
      {"Max", simple([](Call& c) { variadic(c, [](double a, double b) { return std::max(a, b); }); })},
      {"Sum", simple([](Call& c) { variadic(c, [](double a, double b) { return a + b; }); })},
      {"Mean", simple([](Call& c) { variadic(c, [](double a, double b) { return a + b; }, true); })},
      {"Where", simple(where)},
      {"ArgMax", simple([](Call& c) { arg_extreme(c, true); })},
      {"ArgMin", simple([](Call& c) { arg_extreme(c, false); })},
      {"Clip", simple(clip)},
      {"MatMul", simple(matmul)},
      {"Gemm", simple(gemm)},
      {"Softmax", simple([](Call& c) { softmax(c, false); })},
      {"LogSoftmax", simple([](Call& c) { softmax(c, true); })},
      {"BatchNormalization", simple(batch_norm)},
      {"LayerNormalization", simple(layer_norm)},
      {"CumSum", simple(cumsum)},
      {"Flatten", simple(flatten)},
      {"Reshape", simple(reshape)},
      {"Squeeze", simple(squeeze)},
      {"Unsqueeze", simple(unsqueeze)},
      {"Concat", simple(concat)},
      {"Split", simple(split)},
      {"Slice", simple(slice)},
      {"Gather", simple(gather)},
      {"Transpose", simple(transpose)},
      {"Cast", simple(cast)},
      {"Shape", simple(shape_of)},
      {"Constant", simple(constant)},
      {"ConstantOfShape", simple(constant_of_shape)},
      {"Expand", simple(expand)},
      {"ReduceSum", simple([](Call& c) { reduce(c, Reduce::Sum, c.opset >= 13); })},
      {"ReduceMean", simple([](Call& c) { reduce(c, Reduce::Mean, c.opset >= 18); })},
      {"ReduceMax", simple([](Call& c) { reduce(c, Reduce::Max, c.opset >= 18); })},
      {"ReduceMin", simple([](Call& c) { reduce(c, Reduce::Min, c.opset >= 18); })},
      {"ReduceProd", simple([](Call& c) { reduce(c, Reduce::Prod, c.opset >= 18); })},
      {"ReduceSumSquare", simple([](Call& c) { reduce(c, Reduce::SumSquare, c.opset >= 18); })},
      {"ReduceLogSumExp", simple([](Call& c) { reduce(c, Reduce::LogSumExp, c.opset >= 18); })},
  };
  return ops;
}

}  // namespace

Kernel make_kernel(const onnx::Node& node, const std::string& source) {
  if (node.domain == "ai.onnx.ml") return make_ml_kernel(node, source);
  if (!node.domain.empty() && node.domain != "ai.onnx") return {};
  if (Activation f = make_activation(node)) return [f](Call& c) { unary(c, f); };
  const auto& ops = default_domain();
  auto it = ops.find(node.op_type);
  return it == ops.end() ? Kernel{} : it->second(node);
}

}  // namespace rooml::graph
