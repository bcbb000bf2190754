// Native double-precision evaluation of a rooml-exported Gaussian-process mass plane.
//
// The model (rooml.models.gp.MassPlaneGP, exported by rooml.export.export_gp_massplane)
// is read from the ONNX file itself: hyper-parameters, mean function and binning
// from the `rooml` metadata document ("kind": "gp_massplane"), the training
// points, the weights alpha = K^-1 y and the inverse Cholesky factor L^-1 of K
// from the graph's initializers.  The prediction, in counts per bin, is
//
//   counts(m) = mu(m) + scale * sum_i C exp(-|(m - X_i) / l|^2 / 2) alpha_i
//   std(m)    = scale * sqrt(max(C - |L^-1 k(m)|^2, 0))
//
// with mu the fitted mean function (constant, exponential, or exponential times
// a logistic turn-on per axis).  The sampler density of MassPlaneGP.sample is the
// prediction at the bin centres, clipped at zero, uniform inside each bin and
// normalized over the box.  No ONNX Runtime is needed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rooml/api.h"

namespace rooml {

class ROOML_API GPMassPlane {
 public:
  /// Parse an exported `.onnx` GP mass plane held in memory (`source` names it in errors).
  static std::shared_ptr<const GPMassPlane> from_bytes(const std::string& bytes,
                                                       const std::string& source = "<memory>");
  /// Read and parse an exported `.onnx` GP mass-plane file.
  static std::shared_ptr<const GPMassPlane> from_file(const std::string& path);

  const std::vector<std::string>& feature_names() const { return features_; }
  const std::vector<double>& edges_m1() const { return edges_[0]; }
  const std::vector<double>& edges_m2() const { return edges_[1]; }
  std::size_t n_train() const { return alpha_.size(); }
  const std::vector<double>& length_scales() const { return length_scales_; }
  /// Kernel amplitude squared C (prior variance, in units of scale^2).
  double constant() const { return constant_; }
  double scale() const { return scale_; }
  const std::string& mean_function() const { return mean_kind_; }
  /// The data-taking year of the fit, or -1 if none was recorded.
  int year() const { return year_; }
  const std::string& metadata_json() const { return metadata_json_; }
  const std::string& content_hash() const { return content_hash_; }

  /// Predicted counts per bin at `n` row-major points (m1, m2); any finite point is allowed.
  /// Throws rooml::Error naming the event for non-finite inputs; results do not depend on `threads`.
  void mean_counts(const double* x, std::size_t n, double* out, int threads = 0) const;
  /// The GP standard deviation of the predicted counts (latent function, no Poisson term).
  void std_counts(const double* x, std::size_t n, double* out, int threads = 0) const;
  /// The mean function mu(m1, m2) alone (counts per bin).
  void mean_function_counts(const double* x, std::size_t n, double* out) const;

  /// Predicted counts at the bin centres, (n1 x n2) row-major.
  const std::vector<double>& bin_counts() const { return bin_counts_; }
  /// Probability of each bin under the sampler density (clipped counts / their sum), (n1 x n2) row-major.
  const std::vector<double>& bin_probabilities() const { return bin_probability_; }
  /// Sampler density (per GeV^2) at `n` row-major points; 0 outside the box, NaN input is an error.
  void density(const double* x, std::size_t n, double* out) const;
  /// Integral of the sampler density over [lo1, hi1] x [lo2, hi2] (clipped to the box).
  double probability(double lo1, double hi1, double lo2, double hi2) const;
  /// Integral of the sampler density over the other axis in [lo, hi] at `value` of `axis` (0: m1, 1: m2).
  double marginal(int axis, double value, double lo, double hi) const;
  /// A point of the sampler density from three uniform numbers in [0, 1): the bin by inverse CDF, then the point.
  void sample(double u_bin, double u1, double u2, double* m1, double* m2) const;

 private:
  GPMassPlane() = default;
  void check_inputs(const double* x, std::size_t n) const;
  /// Bin index along `axis` (the upper edge belongs to the last bin), or -1 outside.
  long bin_of(int axis, double value) const;
  /// Length of [lo, hi] that overlaps bin `b` of `axis`.
  double overlap(int axis, std::size_t b, double lo, double hi) const;

  std::vector<std::string> features_;
  std::vector<double> edges_[2];
  std::vector<double> train_;       // (n x 2) row-major, GeV
  std::vector<double> alpha_;       // K^-1 y
  std::vector<double> chol_inv_;    // L^-1, (n x n) row-major, lower triangular
  std::vector<double> length_scales_, mean_coef_;
  double constant_ = 0.0, scale_ = 0.0;
  std::string mean_kind_, metadata_json_, content_hash_, source_;
  int year_ = -1;
  std::vector<double> bin_counts_, bin_probability_, bin_cdf_;
};

}  // namespace rooml
