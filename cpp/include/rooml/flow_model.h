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
#include "rooml/box_mass.h"

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

  /// Probability mass inside the box [low, high] (n_features() bounds each, infinite allowed) given one
  /// context row (null without context).
  ///
  /// Exact when the box contains the support (1) and for one-dimensional flows (the CDF through the
  /// monotone flow map z = T(x) to the standard-normal base: |Phi(T(high)) - Phi(T(low))|). Otherwise a
  /// deterministic randomized quasi-Monte-Carlo estimate: Halton points with 16 fixed random shifts,
  /// mapped to the base by the inverse normal CDF and pushed through each member's exact inverse; the
  /// count doubles until the relative standard error (spread over the shifts) is <= `rel_precision` or
  /// `max_points` base points were used.  An ensemble combined by MeanLogProb (not normalized) gets the
  /// fraction of its density's mass inside the box, by self-normalized importance sampling from the
  /// members.  The result does not depend on the thread count.
  BoxMass box_mass(const double* low, const double* high, const double* context, double rel_precision = 1e-3,
                   int bootstrap = -1, std::size_t max_points = std::size_t(1) << 24, int threads = 0) const;

  /// The flow map z = T(x) of member `member` to its standard-normal base (row-major n x n_features).
  void member_forward(std::size_t member, const double* x, const double* context, std::size_t n, double* z,
                      int threads = 0) const;
  /// The inverse map x = T^-1(z) of member `member` (row-major n x n_features; context rows as in log_prob).
  void member_inverse(std::size_t member, const double* z, const double* context, std::size_t n, double* x,
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
  double member_box_mass_1d(std::size_t member, double low, double high, const double* context) const;
  BoxMass box_mass_qmc(const double* low, const double* high, const double* context, double rel_precision,
                       std::size_t first, std::size_t last, std::size_t max_points, int threads) const;
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
