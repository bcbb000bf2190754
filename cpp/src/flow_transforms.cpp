// Conditioners, transforms and preprocessing of rooml flows (nflows semantics, double precision).
#include "flow_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "rooml/dispatch.h"
#include "rooml/error.h"

namespace rooml {
namespace {

// Workspace slots: conditioners use 0..7, transforms 8..13.
enum Slot : std::size_t {
  kCat = 0, kHidden, kTemp, kTemp2, kGate, kAct, kMlpA, kMlpB,
  kGather = 8, kParams, kCopy, kLogdet, kBaseParams, kConverted
};

// h += t * sigmoid(gate(context)): the GLU gate of nflows' residual blocks with context, and the residual sum,
// two rows at a time.  A gate layer on one context variable is computed inside that pass (its rows would only
// be stored to be read back); otherwise its rows go through `g` (scratch).
void gated_residual(const Dense& gate, const double* context, double* h, const double* t, double* g,
                    std::size_t n) {
  const std::size_t rows = gate.out;
  if (gate.in == 1 && rows % 2 == 0) {
    const auto pair = kernels().add_sigmoid_product_pair_affine;
    for (std::size_t r = 0; r < rows; r += 2)
      pair(h + r * kBlock, t + r * kBlock, context, &gate.weight[r], &gate.bias[r], kBlock, n);
    return;
  }
  gate.apply(context, g, n, kBlock);
  const auto pair = kernels().add_sigmoid_product_pair;
  std::size_t r = 0;
  for (; r + 2 <= rows; r += 2) pair(h + r * kBlock, t + r * kBlock, g + r * kBlock, kBlock, n);
  if (r < rows) kernels().add_sigmoid_product(h + r * kBlock, t + r * kBlock, g + r * kBlock, n);
}

// h += t.
void add_rows(double* h, const double* t, std::size_t rows, std::size_t n) {
  const auto add = kernels().add_inplace;
  for (std::size_t r = 0; r < rows; ++r) add(h + r * kBlock, t + r * kBlock, n);
}

void copy_rows(const double* from, double* to, std::size_t rows, std::size_t n) {
  for (std::size_t r = 0; r < rows; ++r) std::memcpy(to + r * kBlock, from + r * kBlock, n * sizeof(double));
}

std::size_t index_at(const json::Value& v, std::size_t i, std::size_t limit, const char* what) {
  const int64_t idx = v.at(i).as_int();
  if (idx < 0 || static_cast<std::size_t>(idx) >= limit)
    throw Error(std::string("model architecture: ") + what + " index " + std::to_string(idx) + " out of range");
  return static_cast<std::size_t>(idx);
}

std::vector<std::size_t> indices(const json::Value& v, std::size_t limit, const char* what) {
  std::vector<std::size_t> out(v.as_array().size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = index_at(v, i, limit, what);
  return out;
}

SplineSpec spline_spec(const json::Value& spec) {
  SplineSpec s;
  s.num_bins = static_cast<int>(spec["num_bins"].as_int());
  s.tail_bound = spec["tail_bound"].as_number();
  s.min_bin_width = spec["min_bin_width"].as_number();
  s.min_bin_height = spec["min_bin_height"].as_number();
  s.min_derivative = spec["min_derivative"].as_number();
  s.scale = spec["scale"].as_number();
  if (s.num_bins < 1 || !(s.tail_bound > 0)) throw Error("model architecture: invalid spline settings");
  return s;
}

DenseActivation parse_activation(const json::Value& spec, const std::string& where) {
  static const std::map<std::string, DenseActivation::Kind> kinds = {
      {"identity", DenseActivation::Kind::Identity}, {"relu", DenseActivation::Kind::Relu},
      {"leaky_relu", DenseActivation::Kind::LeakyRelu}, {"elu", DenseActivation::Kind::Elu},
      {"selu", DenseActivation::Kind::Selu}, {"tanh", DenseActivation::Kind::Tanh},
      {"sigmoid", DenseActivation::Kind::Sigmoid}, {"silu", DenseActivation::Kind::Silu},
      {"gelu", DenseActivation::Kind::Gelu}};
  const std::string name = spec["activation"].as_string();
  auto it = kinds.find(name);
  if (it == kinds.end()) throw Error(where + ": unsupported activation '" + name + "'");
  DenseActivation a;
  a.kind = it->second;
  if (a.kind == DenseActivation::Kind::LeakyRelu || a.kind == DenseActivation::Kind::Elu) {
    if (!spec.contains("activation_param")) throw Error(where + ": activation '" + name + "' needs its parameter");
    a.param = spec["activation_param"].as_number();
  }
  return a;
}

// y = d(act(x)) for `rows` input rows; relu folds into the dense kernel, other activations go
// through `scratch` (x itself is left unchanged).
void dense_on_activated(const Dense& d, const DenseActivation& act, const double* x, double* y, double* scratch,
                        std::size_t n) {
  if (act.is_relu()) {
    d.apply_relu_input(x, y, n, kBlock);
    return;
  }
  copy_rows(x, scratch, d.in, n);
  act.apply(scratch, d.in, n, kBlock);
  d.apply(scratch, y, n, kBlock);
}

// --- conditioners -----------------------------------------------------------------------

class ResidualNet final : public Conditioner {
 public:
  ResidualNet(const json::Value& spec, const WeightSource& w, std::size_t n_in, std::size_t n_out) {
    const std::string p = spec["prefix"].as_string();
    act_ = parse_activation(spec, w.source() + ": conditioner " + p);
    n_context_ = static_cast<std::size_t>(spec["context"].as_int());
    const bool bn = spec["batch_norm"].as_bool();
    const double eps = spec["batch_norm_eps"].as_number();
    initial_ = w.dense(p + ".initial_layer");
    final_ = w.dense(p + ".final_layer");
    if (initial_.in != n_in + n_context_ || final_.out != n_out)
      throw Error(w.source() + ": conditioner " + p + " does not match the transform's feature counts");
    for (int64_t b = 0; b < spec["blocks"].as_int(); ++b) {
      const std::string bp = p + ".blocks." + std::to_string(b);
      Block_ blk{w.dense(bp + ".linear_layers.0"), w.dense(bp + ".linear_layers.1"), {}, {}, {}, bn};
      if (n_context_) blk.gate = w.dense(bp + ".context_layer");
      if (bn) {
        blk.bn0 = w.batchnorm1d(bp + ".batch_norm_layers.0", eps);
        blk.bn1 = w.batchnorm1d(bp + ".batch_norm_layers.1", eps);
      }
      blocks_.push_back(std::move(blk));
    }
  }

  void apply(const double* in, const double* context, double* out, std::size_t n,
             Workspace& ws) const override {
    const std::size_t hidden = initial_.out;
    double* cat = ws.get(kCat, initial_.in * kBlock);
    copy_rows(in, cat, initial_.in - n_context_, n);
    if (n_context_) copy_rows(context, cat + (initial_.in - n_context_) * kBlock, n_context_, n);
    double* h = ws.get(kHidden, hidden * kBlock);
    double* t = ws.get(kTemp, hidden * kBlock);
    double* t2 = ws.get(kTemp2, hidden * kBlock);
    double* scratch = act_.is_relu() ? nullptr : ws.get(kAct, hidden * kBlock);
    initial_.apply(cat, h, n, kBlock);
    for (const auto& b : blocks_) {
      if (b.use_bn) {
        b.bn0.apply(h, t, n, kBlock);
        dense_on_activated(b.linear0, act_, t, t2, scratch, n);
        b.bn1.apply(t2, t2, n, kBlock);
      } else {
        dense_on_activated(b.linear0, act_, h, t2, scratch, n);
      }
      dense_on_activated(b.linear1, act_, t2, t, scratch, n);
      if (n_context_) {
        gated_residual(b.gate, context, h, t, ws.get(kGate, hidden * kBlock), n);
      } else {
        add_rows(h, t, hidden, n);
      }
    }
    final_.apply(h, out, n, kBlock);
  }

 private:
  struct Block_ {
    Dense linear0, linear1, gate;
    Affine bn0, bn1;
    bool use_bn = false;
  };
  Dense initial_, final_;
  std::vector<Block_> blocks_;
  std::size_t n_context_ = 0;
  DenseActivation act_;
};

class Made final : public Conditioner {
 public:
  Made(const json::Value& spec, const WeightSource& w, std::size_t n_in, std::size_t n_out) {
    const std::string p = spec["prefix"].as_string();
    act_ = parse_activation(spec, w.source() + ": MADE " + p);
    n_context_ = static_cast<std::size_t>(spec["context"].as_int());
    residual_ = spec["residual"].as_bool();
    const bool bn = spec["batch_norm"].as_bool();
    const double eps = spec["batch_norm_eps"].as_number();
    initial_ = w.dense(p + ".initial_layer", "mask");
    final_ = w.dense(p + ".final_layer", "mask");
    if (initial_.in != n_in || final_.out != n_out)
      throw Error(w.source() + ": MADE " + p + " does not match the transform's feature counts");
    if (n_context_) context_ = w.dense(p + ".context_layer");
    for (int64_t b = 0; b < spec["blocks"].as_int(); ++b) {
      const std::string bp = p + ".blocks." + std::to_string(b);
      Block_ blk;
      blk.use_bn = bn;
      if (residual_) {
        blk.linear0 = w.dense(bp + ".linear_layers.0", "mask");
        blk.linear1 = w.dense(bp + ".linear_layers.1", "mask");
        if (n_context_) blk.context = w.dense(bp + ".context_layer");
        if (bn) {
          blk.bn0 = w.batchnorm1d(bp + ".batch_norm_layers.0", eps);
          blk.bn1 = w.batchnorm1d(bp + ".batch_norm_layers.1", eps);
        }
      } else {
        blk.linear0 = w.dense(bp + ".linear", "mask");
        if (bn) blk.bn0 = w.batchnorm1d(bp + ".batch_norm", eps);
      }
      blocks_.push_back(std::move(blk));
    }
  }

  void apply(const double* in, const double* ctx, double* out, std::size_t n,
             Workspace& ws) const override {
    const std::size_t hidden = initial_.out;
    double* h = ws.get(kHidden, hidden * kBlock);
    double* t = ws.get(kTemp, hidden * kBlock);
    double* t2 = ws.get(kTemp2, hidden * kBlock);
    initial_.apply(in, h, n, kBlock);
    if (n_context_) {
      double* g = ws.get(kGate, hidden * kBlock);
      context_.apply(ctx, g, n, kBlock);
      act_.apply(g, hidden, n, kBlock);
      add_rows(h, g, hidden, n);
    }
    if (!residual_) act_.apply(h, hidden, n, kBlock);
    for (const auto& b : blocks_) {
      if (residual_) {
        copy_rows(h, t, hidden, n);
        if (b.use_bn) b.bn0.apply(t, t, n, kBlock);
        act_.apply(t, hidden, n, kBlock);
        b.linear0.apply(t, t2, n, kBlock);
        if (n_context_) {
          double* g = ws.get(kGate, hidden * kBlock);
          b.context.apply(ctx, g, n, kBlock);
          for (std::size_t r = 0; r < hidden; ++r)
            for (std::size_t e = 0; e < n; ++e) t2[r * kBlock + e] += g[r * kBlock + e];
        }
        if (b.use_bn) b.bn1.apply(t2, t2, n, kBlock);
        act_.apply(t2, hidden, n, kBlock);
        b.linear1.apply(t2, t, n, kBlock);
        for (std::size_t r = 0; r < hidden; ++r)
          for (std::size_t e = 0; e < n; ++e) h[r * kBlock + e] += t[r * kBlock + e];
      } else {
        copy_rows(h, t, hidden, n);
        if (b.use_bn) b.bn0.apply(t, t, n, kBlock);
        b.linear0.apply(t, h, n, kBlock);
        act_.apply(h, hidden, n, kBlock);
      }
    }
    final_.apply(h, out, n, kBlock);
  }

 private:
  struct Block_ {
    Dense linear0, linear1, context;
    Affine bn0, bn1;
    bool use_bn = false;
  };
  Dense initial_, final_, context_;
  std::vector<Block_> blocks_;
  std::size_t n_context_ = 0;
  bool residual_ = true;
  DenseActivation act_;
};

/// A chain of (optionally masked) dense layers, each followed by its own activation, on
/// [inputs, context]: zuko's MaskedMLP, a torch Linear or Sequential context encoder.
class Mlp final : public Conditioner {
 public:
  Mlp(const json::Value& spec, const WeightSource& w, std::size_t n_in, std::size_t n_out) {
    n_context_ = static_cast<std::size_t>(spec["context"].as_int());
    for (const auto& layer : spec["layers"].as_array()) {
      const std::string p = layer["prefix"].as_string();
      layers_.push_back(w.dense(p, layer["mask"].as_bool() ? "mask" : ""));
      acts_.push_back(parse_activation(layer, w.source() + ": layer " + p));
      if (layers_.size() > 1 && layers_.back().in != layers_[layers_.size() - 2].out)
        throw Error(w.source() + ": layer " + p + " does not fit the previous layer's outputs");
    }
    if (layers_.empty()) throw Error(w.source() + ": an MLP conditioner without layers");
    if (layers_.front().in != n_in + n_context_ || layers_.back().out != n_out)
      throw Error(w.source() + ": MLP " + spec["layers"].at(0)["prefix"].as_string() +
                  " does not match the transform's feature counts");
  }

  void apply(const double* in, const double* context, double* out, std::size_t n,
             Workspace& ws) const override {
    const std::size_t n_in = layers_.front().in - n_context_;
    const double* x = in;
    if (n_context_) {
      double* cat = ws.get(kCat, layers_.front().in * kBlock);
      if (n_in) copy_rows(in, cat, n_in, n);
      copy_rows(context, cat + n_in * kBlock, n_context_, n);
      x = cat;
    }
    for (std::size_t k = 0; k < layers_.size(); ++k) {
      const bool last = k + 1 == layers_.size();
      double* y = last ? out : ws.get(k % 2 ? kMlpB : kMlpA, layers_[k].out * kBlock);
      if (k > 0 && acts_[k - 1].is_relu()) {
        layers_[k].apply_relu_input(x, y, n, kBlock);  // the previous layer's relu, fused
      } else {
        layers_[k].apply(x, y, n, kBlock);
      }
      if (last || !acts_[k].is_relu()) acts_[k].apply(y, layers_[k].out, n, kBlock);
      x = y;
    }
  }

 private:
  std::vector<Dense> layers_;
  std::vector<DenseActivation> acts_;
  std::size_t n_context_ = 0;
};

// --- transforms ---------------------------------------------------------------------------

class Permutation final : public Transform {
 public:
  Permutation(const json::Value& spec, std::size_t dim) : perm_(indices(spec["perm"], dim, "permutation")) {
    if (perm_.size() != dim) throw Error("model architecture: permutation of the wrong length");
    inverse_.resize(dim);
    for (std::size_t i = 0; i < dim; ++i) inverse_[perm_[i]] = i;
  }
  void forward(Block& b) const override { permute(b, perm_); }
  void inverse(Block& b) const override { permute(b, inverse_); }

 private:
  static void permute(Block& b, const std::vector<std::size_t>& perm) {
    double* copy = b.ws->get(kCopy, b.dim * kBlock);
    copy_rows(b.z, copy, b.dim, b.n);
    for (std::size_t i = 0; i < perm.size(); ++i)
      std::memcpy(b.z + i * kBlock, copy + perm[i] * kBlock, b.n * sizeof(double));
  }
  std::vector<std::size_t> perm_, inverse_;
};

/// Matrix acting on all features plus a constant log-determinant.
class LinearTransform final : public Transform {
 public:
  LinearTransform(Dense forward, Dense inverse, double logdet)
      : forward_(std::move(forward)), inverse_(std::move(inverse)), logdet_(logdet) {}
  void forward(Block& b) const override { apply(b, forward_, logdet_); }
  void inverse(Block& b) const override { apply(b, inverse_, -logdet_); }

 private:
  static void apply(Block& b, const Dense& d, double logdet) {
    double* copy = b.ws->get(kCopy, b.dim * kBlock);
    copy_rows(b.z, copy, b.dim, b.n);
    d.apply(copy, b.z, b.n, kBlock);
    for (std::size_t e = 0; e < b.n; ++e) b.logdet[e] += logdet;
  }
  Dense forward_, inverse_;
  double logdet_;
};

std::unique_ptr<Transform> make_lu(const json::Value& spec, const WeightSource& w, std::size_t d) {
  const std::string p = spec["prefix"].as_string();
  const double eps = spec["eps"].as_number();
  const std::size_t tri = d * (d - 1) / 2;
  const auto lower_entries = w.vector(p + ".lower_entries", tri);
  const auto upper_entries = w.vector(p + ".upper_entries", tri);
  const auto diag_raw = w.vector(p + ".unconstrained_upper_diag", d);
  const auto bias = w.vector(p + ".bias", d);
  std::vector<double> L(d * d, 0.0), U(d * d, 0.0);
  // torch.tril_indices / triu_indices order: row-major over the triangle.
  std::size_t k = 0;
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j < i; ++j) L[i * d + j] = lower_entries[k++];
  k = 0;
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = i + 1; j < d; ++j) U[i * d + j] = upper_entries[k++];
  double logdet = 0.0;
  for (std::size_t i = 0; i < d; ++i) {
    L[i * d + i] = 1.0;
    U[i * d + i] = softplus(diag_raw[i]) + eps;
    logdet += std::log(U[i * d + i]);
  }
  Dense fwd{d, d, std::vector<double>(d * d, 0.0), bias};
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j < d; ++j)
      for (std::size_t m = 0; m < d; ++m) fwd.weight[i * d + j] += L[i * d + m] * U[m * d + j];
  // inverse: x = U^{-1} L^{-1} (y - b); columns of the inverse by triangular solves.
  Dense inv{d, d, std::vector<double>(d * d, 0.0), std::vector<double>(d, 0.0)};
  for (std::size_t c = 0; c < d; ++c) {
    std::vector<double> col(d, 0.0);
    col[c] = 1.0;
    for (std::size_t i = 0; i < d; ++i)
      for (std::size_t j = 0; j < i; ++j) col[i] -= L[i * d + j] * col[j];
    for (std::size_t i = d; i-- > 0;) {
      for (std::size_t j = i + 1; j < d; ++j) col[i] -= U[i * d + j] * col[j];
      col[i] /= U[i * d + i];
    }
    for (std::size_t i = 0; i < d; ++i) inv.weight[i * d + c] = col[i];
  }
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j < d; ++j) inv.bias[i] -= inv.weight[i * d + j] * bias[j];
  return std::make_unique<LinearTransform>(std::move(fwd), std::move(inv), logdet);
}

std::unique_ptr<Transform> make_batch_norm(const json::Value& spec, const WeightSource& w, std::size_t d) {
  const std::string p = spec["prefix"].as_string();
  const double eps = spec["eps"].as_number();
  const auto raw = w.vector(p + ".unconstrained_weight", d);
  const auto bias = w.vector(p + ".bias", d);
  const auto mean = w.vector(p + ".running_mean", d);
  const auto var = w.vector(p + ".running_var", d);
  Dense fwd{d, d, std::vector<double>(d * d, 0.0), std::vector<double>(d)};
  Dense inv{d, d, std::vector<double>(d * d, 0.0), std::vector<double>(d)};
  double logdet = 0.0;
  for (std::size_t i = 0; i < d; ++i) {
    const double weight = softplus(raw[i]) + eps;
    const double a = weight / std::sqrt(var[i] + eps);
    fwd.weight[i * d + i] = a;
    fwd.bias[i] = bias[i] - a * mean[i];
    inv.weight[i * d + i] = 1.0 / a;
    inv.bias[i] = mean[i] - bias[i] / a;
    logdet += std::log(weight) - 0.5 * std::log(var[i] + eps);
  }
  return std::make_unique<LinearTransform>(std::move(fwd), std::move(inv), logdet);
}

/// The masks of a coupling layer: features that pass through (and feed the conditioner) and those transformed.
struct CouplingMasks {
  CouplingMasks(const json::Value& spec, std::size_t dim)
      : identity(indices(spec["identity"], dim, "coupling identity")),
        transformed(indices(spec["transform"], dim, "coupling transform")) {
    if (identity.size() + transformed.size() != dim)
      throw Error("model architecture: coupling masks do not cover the features");
  }
  /// The identity features of the block, contiguous (the conditioner's input).
  const double* gather_identity(Block& b) const {
    double* out = b.ws->get(kGather, identity.size() * kBlock);
    for (std::size_t j = 0; j < identity.size(); ++j)
      std::memcpy(out + j * kBlock, b.z + identity[j] * kBlock, b.n * sizeof(double));
    return out;
  }
  std::vector<std::size_t> identity, transformed;
};

/// Rational-quadratic spline coupling (nflows PiecewiseRationalQuadraticCouplingTransform, zuko NSF coupling).
class RQCoupling final : public Transform {
 public:
  RQCoupling(const json::Value& spec, const WeightSource& w, std::size_t dim)
      : masks_(spec, dim), spline_(spline_spec(spec)) {
    net_ = make_conditioner(spec["net"], w, masks_.identity.size(),
                            masks_.transformed.size() * spline_.params_per_feature());
  }
  void forward(Block& b) const override { run(b, false); }
  void inverse(Block& b) const override { run(b, true); }

 private:
  void run(Block& b, bool inverse) const {
    const std::size_t m = spline_.params_per_feature();
    const std::vector<std::size_t>& transformed = masks_.transformed;
    double* params = b.ws->get(kParams, transformed.size() * m * kBlock);
    net_->apply(masks_.gather_identity(b), b.context, params, b.n, *b.ws);
    std::vector<const double*> rows(m);
    for (std::size_t j = 0; j < transformed.size(); ++j) {
      for (std::size_t k = 0; k < m; ++k) rows[k] = params + (j * m + k) * kBlock;
      double* zj = b.z + transformed[j] * kBlock;
      rq_spline(spline_, rows.data(), zj, zj, b.logdet, b.n, inverse, b.ws->spline);
    }
  }
  CouplingMasks masks_;
  SplineSpec spline_;
  std::unique_ptr<Conditioner> net_;
};

/// The element-wise map of an autoregressive or coupling transform, from its parameter rows.
class Elementwise {
 public:
  enum class Kind { Spline, ZukoSpline, AffineSoftplus, AffineSigmoid, ZukoAffine };

  explicit Elementwise(const json::Value& spec) {
    const std::string type = spec["type"].as_string();
    const std::string param = spec.contains("parametrization") ? spec["parametrization"].as_string() : "nflows";
    if (param != "nflows" && param != "zuko")
      throw Error("model architecture: unknown parametrization '" + param + "'");
    const bool zuko = param == "zuko";
    if (type == "rq_autoregressive" || type == "rq_coupling") {
      kind_ = zuko ? Kind::ZukoSpline : Kind::Spline;
      if (zuko) {
        // zuko's knots are nflows' with no minimum sizes or slopes, after a soft clip of the raw values
        spline_.num_bins = static_cast<int>(spec["num_bins"].as_int());
        spline_.tail_bound = spec["tail_bound"].as_number();
        spline_.min_bin_width = spline_.min_bin_height = spline_.min_derivative = 0.0;
        spline_.scale = 1.0;
        log_slope_ = std::log(spec["slope"].as_number());
      } else {
        spline_ = spline_spec(spec);
      }
      per_feature_ = static_cast<std::size_t>(spline_.params_per_feature());
    } else {
      per_feature_ = 2;
      if (zuko) {
        kind_ = Kind::ZukoAffine;
        log_slope_ = std::log(spec["slope"].as_number());
      } else {
        kind_ = type == "affine_coupling" ? Kind::AffineSigmoid : Kind::AffineSoftplus;
        eps_ = spec["eps"].as_number();
      }
    }
  }

  std::size_t per_feature() const { return per_feature_; }

  /// Feature map with its parameters at rows[0..per_feature): in -> out, log|d out / d in| added to logdet.
  void apply(const double* const* rows, const double* in, double* out, double* logdet, std::size_t n,
             bool inverse, Workspace& ws) const {
    switch (kind_) {
      case Kind::Spline: rq_spline(spline_, rows, in, out, logdet, n, inverse, ws.spline); return;
      case Kind::ZukoSpline: zuko_spline(rows, in, out, logdet, n, inverse, ws); return;
      default: affine(rows, in, out, logdet, n, inverse); return;
    }
  }

 private:
  double soft_clip(double v, double bound) const { return v / (1.0 + std::fabs(v / bound)); }

  void zuko_spline(const double* const* rows, const double* in, double* out, double* logdet, std::size_t n,
                   bool inverse, Workspace& ws) const {
    const std::size_t K = static_cast<std::size_t>(spline_.num_bins);
    double* conv = ws.get(kConverted, per_feature_ * kBlock);
    std::vector<const double*> converted(per_feature_);
    for (std::size_t k = 0; k < per_feature_; ++k) {
      double* row = conv + k * kBlock;
      converted[k] = row;
      const double* raw = rows[k];
      if (k < 2 * K) {  // widths, heights: v / (1 + |2 v / log slope|), softmax-invariant otherwise
        for (std::size_t e = 0; e < n; ++e) row[e] = soft_clip(raw[e], 0.5 * log_slope_);
      } else {  // derivative exp(clip(v)) as the raw value u with softplus(u) = exp(clip(v))
        for (std::size_t e = 0; e < n; ++e) {
          const double d = std::exp(soft_clip(raw[e], log_slope_));
          row[e] = d + std::log(-std::expm1(-d));
        }
      }
    }
    rq_spline(spline_, converted.data(), in, out, logdet, n, inverse, ws.spline);
  }

  void affine(const double* const* rows, const double* in, double* out, double* logdet, std::size_t n,
              bool inverse) const {
    // raw scale and shift rows: nflows MAF [scale, shift]; zuko [shift, scale]; the coupling
    // transform passes [scale, shift] too (see AffineCoupling)
    const double* u = kind_ == Kind::ZukoAffine ? rows[1] : rows[0];
    const double* shift = kind_ == Kind::ZukoAffine ? rows[0] : rows[1];
    for (std::size_t e = 0; e < n; ++e) {
      double log_scale, scale;
      switch (kind_) {
        case Kind::AffineSoftplus: scale = softplus(u[e]) + eps_; log_scale = std::log(scale); break;
        case Kind::AffineSigmoid: scale = 1.0 / (1.0 + std::exp(-(u[e] + 2.0))) + eps_; log_scale = std::log(scale); break;
        default: log_scale = soft_clip(u[e], log_slope_); scale = std::exp(log_scale); break;
      }
      if (inverse) {
        out[e] = (in[e] - shift[e]) / scale;
        logdet[e] -= log_scale;
      } else {
        out[e] = in[e] * scale + shift[e];
        logdet[e] += log_scale;
      }
    }
  }

  Kind kind_ = Kind::Spline;
  SplineSpec spline_;
  std::size_t per_feature_ = 0;
  double eps_ = 0.0, log_slope_ = 0.0;
};

/// Affine coupling (nflows' AffineCouplingTransform): net outputs [shifts..., raw scales...].
class AffineCoupling final : public Transform {
 public:
  AffineCoupling(const json::Value& spec, const WeightSource& w, std::size_t dim)
      : masks_(spec, dim), map_(spec) {
    net_ = make_conditioner(spec["net"], w, masks_.identity.size(), 2 * masks_.transformed.size());
  }
  void forward(Block& b) const override { run(b, false); }
  void inverse(Block& b) const override { run(b, true); }

 private:
  void run(Block& b, bool inverse) const {
    const std::size_t t = masks_.transformed.size();
    double* params = b.ws->get(kParams, 2 * t * kBlock);
    net_->apply(masks_.gather_identity(b), b.context, params, b.n, *b.ws);
    for (std::size_t j = 0; j < t; ++j) {
      const double* rows[2] = {params + (t + j) * kBlock, params + j * kBlock};
      double* zj = b.z + masks_.transformed[j] * kBlock;
      map_.apply(rows, zj, zj, b.logdet, b.n, inverse, *b.ws);
    }
  }
  CouplingMasks masks_;
  Elementwise map_;
  std::unique_ptr<Conditioner> net_;
};

/// Masked autoregressive transform (nflows MAF / RQ-spline, zuko MAF / NSF): the conditioner
/// returns the element-wise map's parameters feature by feature.
class Autoregressive final : public Transform {
 public:
  Autoregressive(const json::Value& spec, const WeightSource& w, std::size_t dim) : dim_(dim), map_(spec) {
    net_ = make_conditioner(spec["net"], w, dim, dim * map_.per_feature());
  }

  void forward(Block& b) const override {
    double* params = b.ws->get(kParams, dim_ * map_.per_feature() * kBlock);
    net_->apply(b.z, b.context, params, b.n, *b.ws);
    maps(b, params, b.z, b.z, b.logdet, false);
  }

  // D passes, each recomputing the parameters from the partial output (exact after D passes).
  void inverse(Block& b) const override {
    double* params = b.ws->get(kParams, dim_ * map_.per_feature() * kBlock);
    double* y = b.ws->get(kCopy, dim_ * kBlock);
    double* ld = b.ws->get(kLogdet, kBlock);
    copy_rows(b.z, y, dim_, b.n);
    std::fill(b.z, b.z + dim_ * kBlock, 0.0);
    for (std::size_t pass = 0; pass < dim_; ++pass) {
      net_->apply(b.z, b.context, params, b.n, *b.ws);
      std::fill(ld, ld + kBlock, 0.0);
      maps(b, params, y, b.z, ld, true);
    }
    for (std::size_t e = 0; e < b.n; ++e) b.logdet[e] += ld[e];
  }

 private:
  void maps(Block& b, const double* params, const double* in, double* out, double* logdet, bool inverse) const {
    const std::size_t m = map_.per_feature();
    std::vector<const double*> rows(m);
    for (std::size_t f = 0; f < dim_; ++f) {
      for (std::size_t k = 0; k < m; ++k) rows[k] = params + (f * m + k) * kBlock;
      map_.apply(rows.data(), in + f * kBlock, out + f * kBlock, logdet, b.n, inverse, *b.ws);
    }
  }
  std::size_t dim_;
  Elementwise map_;
  std::unique_ptr<Conditioner> net_;
};

std::unique_ptr<Transform> make_act_norm(const json::Value& spec, const WeightSource& w, std::size_t d) {
  const std::string p = spec["prefix"].as_string();
  const auto log_scale = w.vector(p + ".log_scale", d);
  const auto shift = w.vector(p + ".shift", d);
  Dense fwd{d, d, std::vector<double>(d * d, 0.0), shift};
  Dense inv{d, d, std::vector<double>(d * d, 0.0), std::vector<double>(d)};
  double logdet = 0.0;
  for (std::size_t i = 0; i < d; ++i) {
    fwd.weight[i * d + i] = std::exp(log_scale[i]);
    inv.weight[i * d + i] = std::exp(-log_scale[i]);
    inv.bias[i] = -shift[i] * std::exp(-log_scale[i]);
    logdet += log_scale[i];
  }
  return std::make_unique<LinearTransform>(std::move(fwd), std::move(inv), logdet);
}

/// Diagonal normal base N(mean, exp(log_std)^2) as the map to a standard normal.
std::unique_ptr<Transform> make_diagonal_base(const json::Value& arch, std::size_t d) {
  const auto mean = arch["base_mean"].as_doubles();
  const auto log_std = arch["base_log_std"].as_doubles();
  if (mean.size() != d || log_std.size() != d)
    throw Error("model architecture: diagonal normal base of the wrong dimension");
  Dense fwd{d, d, std::vector<double>(d * d, 0.0), std::vector<double>(d)};
  Dense inv{d, d, std::vector<double>(d * d, 0.0), mean};
  double logdet = 0.0;
  for (std::size_t i = 0; i < d; ++i) {
    fwd.weight[i * d + i] = std::exp(-log_std[i]);
    fwd.bias[i] = -mean[i] * std::exp(-log_std[i]);
    inv.weight[i * d + i] = std::exp(log_std[i]);
    logdet -= log_std[i];
  }
  return std::make_unique<LinearTransform>(std::move(fwd), std::move(inv), logdet);
}

/// nflows' ConditionalDiagonalNormal: encoder(context) = [means, log stds], as the map to a standard normal.
class ConditionalDiagonalBase final : public Transform {
 public:
  ConditionalDiagonalBase(const json::Value& arch, const WeightSource& w, std::size_t dim) : dim_(dim) {
    encoder_ = make_conditioner(arch["base_encoder"], w, 0, 2 * dim);
  }
  void forward(Block& b) const override {
    const double* p = params(b);
    for (std::size_t f = 0; f < dim_; ++f) {
      const double* m = p + f * kBlock;
      const double* ls = p + (dim_ + f) * kBlock;
      double* z = b.z + f * kBlock;
      for (std::size_t e = 0; e < b.n; ++e) {
        z[e] = (z[e] - m[e]) * std::exp(-ls[e]);
        b.logdet[e] -= ls[e];
      }
    }
  }
  void inverse(Block& b) const override {
    const double* p = params(b);
    for (std::size_t f = 0; f < dim_; ++f) {
      const double* m = p + f * kBlock;
      const double* ls = p + (dim_ + f) * kBlock;
      double* z = b.z + f * kBlock;
      for (std::size_t e = 0; e < b.n; ++e) {
        z[e] = m[e] + std::exp(ls[e]) * z[e];
        b.logdet[e] += ls[e];
      }
    }
  }

 private:
  const double* params(Block& b) const {
    if (!b.context) throw Error("model architecture: a conditional base distribution needs the context");
    double* p = b.ws->get(kBaseParams, 2 * dim_ * kBlock);
    encoder_->apply(nullptr, b.context, p, b.n, *b.ws);
    return p;
  }
  std::size_t dim_;
  std::unique_ptr<Conditioner> encoder_;
};

}  // namespace

// --- weights --------------------------------------------------------------------------------

const onnx::Tensor& WeightSource::tensor(const std::string& name) const {
  auto alias = aliases_.find(name);
  auto it = model_.initializers.find(alias == aliases_.end() ? name : alias->second);
  if (it == model_.initializers.end())
    throw Error(source_ + ": model metadata names tensor '" + name + "' that the ONNX graph does not contain");
  return it->second;
}

std::vector<double> WeightSource::vector(const std::string& name, std::size_t expected) const {
  const auto& t = tensor(name);
  if (t.values.size() != expected)
    throw Error(source_ + ": tensor '" + name + "' has " + std::to_string(t.values.size()) +
                " values, expected " + std::to_string(expected));
  return t.values;
}

Dense WeightSource::dense(const std::string& prefix, const std::string& mask) const {
  const auto& w = tensor(prefix + ".weight");
  if (w.dims.size() != 2) throw Error(source_ + ": tensor '" + prefix + ".weight' is not a matrix");
  Dense d;
  d.out = static_cast<std::size_t>(w.dims[0]);
  d.in = static_cast<std::size_t>(w.dims[1]);
  d.weight = w.values;
  d.bias = vector(prefix + ".bias", d.out);
  if (!mask.empty()) {
    const auto m = vector(prefix + "." + mask, d.weight.size());
    for (std::size_t i = 0; i < m.size(); ++i) d.weight[i] *= m[i];
  }
  return d;
}

Affine WeightSource::batchnorm1d(const std::string& prefix, double eps) const {
  const auto& w = tensor(prefix + ".weight");
  const std::size_t n = w.values.size();
  const auto bias = vector(prefix + ".bias", n);
  const auto mean = vector(prefix + ".running_mean", n);
  const auto var = vector(prefix + ".running_var", n);
  Affine a{std::vector<double>(n), std::vector<double>(n)};
  for (std::size_t i = 0; i < n; ++i) {
    a.a[i] = w.values[i] / std::sqrt(var[i] + eps);
    a.c[i] = bias[i] - mean[i] * a.a[i];
  }
  return a;
}

std::unique_ptr<Conditioner> make_conditioner(const json::Value& spec, const WeightSource& w,
                                              std::size_t n_in, std::size_t n_out) {
  const std::string type = spec["type"].as_string();
  if (type == "resnet") return std::make_unique<ResidualNet>(spec, w, n_in, n_out);
  if (type == "made") return std::make_unique<Made>(spec, w, n_in, n_out);
  if (type == "mlp") return std::make_unique<Mlp>(spec, w, n_in, n_out);
  throw Error(w.source() + ": unsupported conditioner type '" + type + "'");
}

std::unique_ptr<Transform> make_transform(const json::Value& spec, const WeightSource& w, std::size_t dim) {
  const std::string type = spec["type"].as_string();
  if (type == "permutation") return std::make_unique<Permutation>(spec, dim);
  if (type == "lu_linear") return make_lu(spec, w, dim);
  if (type == "batch_norm") return make_batch_norm(spec, w, dim);
  if (type == "rq_coupling") return std::make_unique<RQCoupling>(spec, w, dim);
  if (type == "rq_autoregressive" || type == "affine_autoregressive")
    return std::make_unique<Autoregressive>(spec, w, dim);
  if (type == "affine_coupling") return std::make_unique<AffineCoupling>(spec, w, dim);
  if (type == "act_norm") return make_act_norm(spec, w, dim);
  throw Error(w.source() + ": unsupported transform type '" + type + "' (file written by a newer rooml?)");
}

std::unique_ptr<Transform> make_base(const json::Value& arch, const WeightSource& w, std::size_t dim) {
  const std::string base = arch["base"].as_string();
  if (base == "standard_normal") return nullptr;
  if (base == "diagonal_normal") return make_diagonal_base(arch, dim);
  if (base == "conditional_diagonal_normal") return std::make_unique<ConditionalDiagonalBase>(arch, w, dim);
  throw Error(w.source() + ": unsupported base distribution '" + base + "'");
}

// --- preprocessing ----------------------------------------------------------------------------

namespace {

// |lambda| below double eps counts as 0 (|lambda - 2| as 2), as in scipy.
constexpr double kLambdaEps = 2.220446049250313e-16;

// Yeo-Johnson or Box-Cox of x (scipy's formulas), adding log|dy/dx| to logdet.
double power_forward(bool box_cox, double x, double l, double& logdet) {
  if (box_cox) {
    const double lx = std::log(x);
    logdet += (l - 1.0) * lx;
    return std::fabs(l) < kLambdaEps ? lx : std::expm1(l * lx) / l;
  }
  if (x >= 0.0) {
    const double lp = std::log1p(x);
    logdet += (l - 1.0) * lp;
    return std::fabs(l) < kLambdaEps ? lp : std::expm1(l * lp) / l;
  }
  const double ln = std::log1p(-x);
  logdet += (1.0 - l) * ln;
  return std::fabs(l - 2.0) < kLambdaEps ? -ln : -std::expm1((2.0 - l) * ln) / (2.0 - l);
}

double power_inverse(bool box_cox, double y, double l) {
  if (box_cox) return std::fabs(l) < kLambdaEps ? std::exp(y) : std::exp(std::log1p(l * y) / l);
  if (y >= 0.0) return std::fabs(l) < kLambdaEps ? std::expm1(y) : std::expm1(std::log1p(l * y) / l);
  return std::fabs(l - 2.0) < kLambdaEps ? -std::expm1(-y) : -std::expm1(std::log1p(-(2.0 - l) * y) / (2.0 - l));
}

}  // namespace

Preprocessing::Preprocessing(const json::Value& steps, std::size_t dim) {
  for (const auto& s : steps.as_array()) {
    Step step;
    const std::string kind = s["kind"].as_string();
    step.features = indices(s["features"], dim, "preprocessing feature");
    if (kind == "affine") {
      step.kind = Step::Kind::Affine;
      step.p = s["shift"].as_doubles();
      step.q = s["scale"].as_doubles();
    } else if (kind == "log") {
      step.kind = Step::Kind::Log;
      step.p = s["a"].as_doubles();
      step.q = s["b"].as_doubles();
    } else if (kind == "logit") {
      step.kind = Step::Kind::Logit;
      step.p.assign(step.features.size(), 0.0);
      step.q = step.p;
    } else if (kind == "clip") {
      step.kind = Step::Kind::Clip;
      step.p = s["low"].as_doubles();
      step.q = s["high"].as_doubles();
    } else if (kind == "yeo_johnson" || kind == "box_cox") {
      step.kind = kind == "box_cox" ? Step::Kind::BoxCox : Step::Kind::YeoJohnson;
      step.p = s["lmbda"].as_doubles();
      step.q.assign(step.p.size(), 0.0);
    } else {
      throw Error("model preprocessing: unknown kind '" + kind + "'");
    }
    if (step.p.size() != step.features.size() || step.q.size() != step.features.size())
      throw Error("model preprocessing '" + kind + "': parameter count does not match its features");
    steps_.push_back(std::move(step));
  }
}

void Preprocessing::forward(Block& b) const {
  for (const auto& s : steps_) {
    for (std::size_t j = 0; j < s.features.size(); ++j) {
      double* __restrict x = b.z + s.features[j] * kBlock;
      double* __restrict ld = b.logdet;
      const double p = s.p[j], q = s.q[j];
      switch (s.kind) {
        case Step::Kind::Affine: {
          const double lscale = std::log(std::fabs(q));
          for (std::size_t e = 0; e < b.n; ++e) {
            x[e] = (x[e] - p) / q;
            ld[e] -= lscale;
          }
          break;
        }
        case Step::Kind::Log: {
          const double la = std::log(std::fabs(p));
          for (std::size_t e = 0; e < b.n; ++e) {
            const double y = std::log(p * x[e] + q);
            x[e] = y;
            ld[e] += la - y;
          }
          break;
        }
        case Step::Kind::Logit:
          for (std::size_t e = 0; e < b.n; ++e) {
            const double y = std::log(x[e]) - std::log1p(-x[e]);
            ld[e] += -std::log(x[e]) - std::log1p(-x[e]);
            x[e] = y;
          }
          break;
        case Step::Kind::Clip:
          for (std::size_t e = 0; e < b.n; ++e) x[e] = std::clamp(x[e], p, q);
          break;
        case Step::Kind::YeoJohnson:
        case Step::Kind::BoxCox:
          for (std::size_t e = 0; e < b.n; ++e) x[e] = power_forward(s.kind == Step::Kind::BoxCox, x[e], p, ld[e]);
          break;
      }
    }
  }
}

void Preprocessing::inverse(Block& b) const {
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
    const auto& s = *it;
    for (std::size_t j = 0; j < s.features.size(); ++j) {
      double* __restrict x = b.z + s.features[j] * kBlock;
      const double p = s.p[j], q = s.q[j];
      for (std::size_t e = 0; e < b.n; ++e) {
        switch (s.kind) {
          case Step::Kind::Affine: x[e] = x[e] * q + p; break;
          case Step::Kind::Log: x[e] = (std::exp(x[e]) - q) / p; break;
          case Step::Kind::Logit: x[e] = 1.0 / (1.0 + std::exp(-x[e])); break;
          case Step::Kind::Clip: break;
          case Step::Kind::YeoJohnson: x[e] = power_inverse(false, x[e], p); break;
          case Step::Kind::BoxCox: x[e] = power_inverse(true, x[e], p); break;
        }
      }
    }
  }
}

}  // namespace rooml
