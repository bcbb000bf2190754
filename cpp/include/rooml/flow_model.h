// Native double-precision evaluation of a rooml-exported normalizing flow.
//
// The model is read from the ONNX file itself: the architecture from the
// `rooml` metadata document and the weights from the graph's initializers.
// No ONNX Runtime is needed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rooml/api.h"

namespace rooml {

class Transform;
class Preprocessing;

/// A conditional normalizing flow p(x | context) over physical features x.
class ROOML_API FlowModel {
 public:
  /// Parse an exported `.onnx` model held in memory (`source` names it in errors).
  static std::shared_ptr<const FlowModel> from_bytes(const std::string& bytes,
                                                     const std::string& source = "<memory>");
  /// Read and parse an exported `.onnx` file.
  static std::shared_ptr<const FlowModel> from_file(const std::string& path);

  ~FlowModel();
  FlowModel(const FlowModel&) = delete;
  FlowModel& operator=(const FlowModel&) = delete;

  std::size_t n_features() const { return features_.size(); }
  std::size_t n_context() const { return context_.size(); }
  const std::vector<std::string>& feature_names() const { return features_; }
  const std::vector<std::string>& context_names() const { return context_; }
  const std::vector<double>& support_low() const { return low_; }
  const std::vector<double>& support_high() const { return high_; }
  /// The rooml metadata document (JSON) stored in the file.
  const std::string& metadata_json() const { return metadata_json_; }
  const std::string& content_hash() const { return content_hash_; }

  /// log p(x | context) for `n` events.
  ///
  /// `x` is row-major (n x n_features), `context` row-major (n x n_context) or
  /// null when the flow has no context; `out` receives n values.  Throws
  /// rooml::Error naming the event and feature for non-finite inputs or events
  /// outside the support.  `threads` <= 0 uses the default thread count.
  void log_prob(const double* x, const double* context, std::size_t n, double* out,
                int threads = 0) const;

  /// Draw `n` events through the flow's exact inverse.  Event i uses context
  /// row i (if any); the result depends only on (seed, i), not on threads.
  void sample(const double* context, std::size_t n, std::uint64_t seed, double* out,
              int threads = 0) const;

 private:
  FlowModel() = default;
  void check_inputs(const double* x, const double* context, std::size_t n) const;

  std::vector<std::string> features_, context_;
  std::vector<double> low_, high_;
  std::string metadata_json_, content_hash_, source_;
  std::unique_ptr<Preprocessing> preprocessing_;
  std::vector<std::unique_ptr<Transform>> transforms_;
};

/// Number of worker threads used when a call passes threads <= 0.
ROOML_API int default_threads();
/// Set the default thread count (<= 0 restores: ROOML_NUM_THREADS or all cores).
ROOML_API void set_default_threads(int threads);

}  // namespace rooml
