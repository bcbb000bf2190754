// Flow transforms and conditioners evaluated on structure-of-arrays blocks (private header).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rooml/json.h"
#include "rooml/kernels.h"
#include "rooml/onnx_reader.h"
#include "rooml/spline.h"

namespace rooml {

/// Per-thread scratch memory, reused across blocks.
struct Workspace {
  std::vector<std::vector<double>> buffers;
  SplineScratch spline;
  double* get(std::size_t slot, std::size_t count) {
    if (buffers.size() <= slot) buffers.resize(slot + 1);
    if (buffers[slot].size() < count) buffers[slot].resize(count);
    return buffers[slot].data();
  }
};

/// One block of events: features z (D rows) and context (C rows) of stride kBlock.
struct Block {
  std::size_t n = 0;     // events in this block
  std::size_t dim = 0;   // features
  double* z = nullptr;   // dim * kBlock
  const double* context = nullptr;  // n_context * kBlock, or null
  double* logdet = nullptr;         // kBlock
  Workspace* ws = nullptr;
};

/// Reads named initializers of an exported model.
class WeightSource {
 public:
  /// `aliases` maps tensor names the exporter merged into another initializer to that initializer.
  WeightSource(const onnx::Model& model, std::map<std::string, std::string> aliases, std::string source)
      : model_(model), aliases_(std::move(aliases)), source_(std::move(source)) {}
  const onnx::Tensor& tensor(const std::string& name) const;
  std::vector<double> vector(const std::string& name, std::size_t expected) const;
  Dense dense(const std::string& prefix, const std::string& mask = "") const;
  Affine batchnorm1d(const std::string& prefix, double eps) const;
  const std::string& source() const { return source_; }
  const onnx::Model& model() const { return model_; }

 private:
  const onnx::Model& model_;
  std::map<std::string, std::string> aliases_;
  std::string source_;
};

/// A conditioner network: (inputs, context) -> spline parameters.
class Conditioner {
 public:
  virtual ~Conditioner() = default;
  /// in: n_in rows, context: n_context rows, out: n_out rows (all stride kBlock).
  virtual void apply(const double* in, const double* context, double* out, std::size_t n,
                     Workspace& ws) const = 0;
};

std::unique_ptr<Conditioner> make_conditioner(const json::Value& spec, const WeightSource& weights,
                                              std::size_t n_in, std::size_t n_out);

/// A bijection of the flow, data -> noise direction is `forward`.
class Transform {
 public:
  virtual ~Transform() = default;
  virtual void forward(Block& block) const = 0;
  virtual void inverse(Block& block) const = 0;
};

std::unique_ptr<Transform> make_transform(const json::Value& spec, const WeightSource& weights,
                                          std::size_t dim);

/// The base distribution as a map onto a standard normal (null for a standard normal base).
std::unique_ptr<Transform> make_base(const json::Value& architecture, const WeightSource& weights,
                                     std::size_t dim);

/// Elementwise preprocessing of physical features (see rooml.models.preprocessing).
class Preprocessing {
 public:
  explicit Preprocessing(const json::Value& steps, std::size_t dim);
  /// Physical -> flow space, adding log|dy/dx| to logdet.
  void forward(Block& block) const;
  /// Flow space -> physical.
  void inverse(Block& block) const;

 private:
  struct Step {
    enum class Kind { Affine, Log, Logit, Clip, YeoJohnson, BoxCox } kind;
    std::vector<std::size_t> features;
    std::vector<double> p, q;  // affine: shift, scale; log: a, b; clip: low, high; power: lambda, -
  };
  std::vector<Step> steps_;
};

}  // namespace rooml
