// Native double-precision evaluation of a rooml-exported density-ratio network.
//
// The model (a single MLP or an ensemble of MLPs sharing one preprocessing) is
// read from the ONNX file itself: the architecture from the `rooml` metadata
// document ("kind": "ratio") and the weights from the graph's initializers.
// log r(x) = combine_k [ t_k(preprocess(x)) + log_correction_k ], with combine
// the identity for one member, log(mean_k exp(.)) for "mean" and mean_k for
// "mean_log".  No ONNX Runtime is needed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rooml/api.h"

namespace rooml {

class Preprocessing;
class GraphModel;
struct Dense;

/// A density ratio r(x) = p_num(x) / p_den(x) over physical features x.
class ROOML_API RatioModel {
 public:
  /// Parse an exported `.onnx` ratio model held in memory (`source` names it in errors).
  static std::shared_ptr<const RatioModel> from_bytes(const std::string& bytes,
                                                      const std::string& source = "<memory>");
  /// Read and parse an exported `.onnx` ratio file.
  static std::shared_ptr<const RatioModel> from_file(const std::string& path);

  ~RatioModel();
  RatioModel(const RatioModel&) = delete;
  RatioModel& operator=(const RatioModel&) = delete;

  std::size_t n_features() const { return features_.size(); }
  const std::vector<std::string>& feature_names() const { return features_; }
  const std::vector<double>& support_low() const { return low_; }
  const std::vector<double>& support_high() const { return high_; }
  /// Number of ensemble members (1 for a single network).
  std::size_t n_members() const;
  /// "mean" (log of the mean ratio), "mean_log" (mean of the log-ratios) or "median" (median ratio).
  const std::string& combination() const { return combination_; }
  /// The constant added to each member's network output.
  std::vector<double> log_corrections() const;
  /// The rooml metadata document (JSON) stored in the file.
  const std::string& metadata_json() const { return metadata_json_; }
  const std::string& content_hash() const { return content_hash_; }

  /// log r(x) for `n` events; `x` is row-major (n x n_features), `out` gets n values.
  ///
  /// Throws rooml::Error naming the event and feature for non-finite inputs or
  /// events outside the support.  `threads` <= 0 uses the default thread count;
  /// results do not depend on it.
  void log_ratio(const double* x, std::size_t n, double* out, int threads = 0) const;

  /// r(x) = exp(log r(x)).
  void ratio(const double* x, std::size_t n, double* out, int threads = 0) const;

  /// log r_k(x) of every member, row-major (n x n_members).
  void member_log_ratios(const double* x, std::size_t n, double* out, int threads = 0) const;

  /// log r_k(x) of member k alone (only that network runs): n values, equal to column k of member_log_ratios.
  void member_log_ratio(const double* x, std::size_t n, std::size_t member, double* out, int threads = 0) const;

 private:
  struct Member;
  RatioModel();
  void check_inputs(const double* x, std::size_t n) const;
  template <class Sink>
  void evaluate(const double* x, std::size_t n, int threads, Sink&& sink, long only = -1) const;

  std::vector<std::string> features_;
  std::vector<double> low_, high_;
  std::string combination_, metadata_json_, content_hash_, source_;
  std::unique_ptr<Preprocessing> preprocessing_;
  std::vector<Member> members_;
  std::size_t max_width_ = 1;
  std::shared_ptr<const GraphModel> graph_;  ///< adopted foreign graph (architecture "graph"), else null
};

}  // namespace rooml
