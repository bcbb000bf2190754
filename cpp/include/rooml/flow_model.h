// Native double-precision evaluation of a rooml-exported normalizing flow.
//
// The model is read from the ONNX file itself: the architecture from the
// `rooml` metadata document and the weights from the graph's initializers.
// No ONNX Runtime is needed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rooml/api.h"

namespace rooml {

struct FlowMember;

/// How the members of an ensemble combine into one log-density.
enum class EnsembleRule {
  MeanLogProb,  ///< average of the members' log p (HI-SIGMA; a geometric mean, not normalized)
  Mixture,      ///< log of the average density (normalized)
};

/// A conditional normalizing flow p(x | context) over physical features x, or
/// an ensemble of such flows: D bootstrap models of K members each (member
/// m = d * K + k), combined with an EnsembleRule.  A single flow is the
/// ensemble D = K = 1.
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
  std::size_t n_members() const { return members_.size(); }
  std::size_t n_bootstraps() const { return n_bootstraps_; }
  std::size_t members_per_bootstrap() const { return members_.size() / n_bootstraps_; }
  EnsembleRule rule() const { return rule_; }

  /// log p(x | context) for `n` events.
  ///
  /// `x` is row-major (n x n_features), `context` row-major (n x n_context) or
  /// null when the flow has no context; `out` receives n values.  Throws
  /// rooml::Error naming the event and feature for non-finite inputs or events
  /// outside the support.  `threads` <= 0 uses the default thread count.
  /// `bootstrap` >= 0 combines only that bootstrap model's members.
  void log_prob(const double* x, const double* context, std::size_t n, double* out, int threads = 0,
                int bootstrap = -1) const;

  /// Every member's log p: `out` is row-major (n x n_members()).
  void member_log_prob(const double* x, const double* context, std::size_t n, double* out,
                       int threads = 0) const;

  /// Draw `n` events through the exact inverse (for an ensemble: the mixture,
  /// one member drawn per event).  Event i uses context row i (if any); the
  /// result depends only on (seed, i), not on threads.  Throws for the
  /// MeanLogProb rule, which is not a normalized density.
  void sample(const double* context, std::size_t n, std::uint64_t seed, double* out, int threads = 0,
              int bootstrap = -1) const;

 private:
  FlowModel();
  void check_inputs(const double* x, const double* context, std::size_t n) const;
  std::pair<std::size_t, std::size_t> member_range(int bootstrap) const;
  /// Called per event block with the log p of members [first, last) (row k at lp + k * kBlock).
  using MemberBlockFn = std::function<void(std::size_t begin, std::size_t count, const double* lp)>;
  void for_each_member_block(const double* x, const double* context, std::size_t n, int threads,
                             std::size_t first, std::size_t last, const MemberBlockFn& use) const;

  std::vector<std::string> features_, context_;
  std::vector<double> low_, high_;
  std::string metadata_json_, content_hash_, source_;
  std::vector<std::unique_ptr<FlowMember>> members_;
  std::size_t n_bootstraps_ = 1;
  EnsembleRule rule_ = EnsembleRule::MeanLogProb;
};

/// Number of worker threads used when a call passes threads <= 0.
ROOML_API int default_threads();
/// Set the default thread count (<= 0 restores: ROOML_NUM_THREADS or all cores).
ROOML_API void set_default_threads(int threads);

}  // namespace rooml
