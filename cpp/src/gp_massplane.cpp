// Loading and evaluation of rooml Gaussian-process mass planes (see rooml/gp_massplane.h).
#include "rooml/gp_massplane.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "rooml/error.h"
#include "rooml/flow_model.h"  // default_threads
#include "rooml/json.h"
#include "rooml/onnx_reader.h"
#include "rooml/parallel.h"

namespace rooml {
namespace {

std::vector<double> numbers(const json::Value& v) {
  std::vector<double> out;
  for (const auto& x : v.as_array()) out.push_back(x.as_number());
  return out;
}

// numpy.logaddexp(0, y), term for term.
double logaddexp0(double y) {
  if (y == 0.0) return std::log(2.0);
  return y < 0.0 ? std::log1p(std::exp(y)) : y + std::log1p(std::exp(-y));
}

const std::vector<double>& tensor(const onnx::Model& model, const json::Value& names, const char* key,
                                  std::size_t expected, const std::string& source) {
  const onnx::Tensor& t = model.initializer(names[key].as_string());
  if (t.size() != expected)
    throw Error(source + ": tensor '" + t.name + "' has " + std::to_string(t.size()) + " values, expected " +
                std::to_string(expected));
  return t.values;
}

}  // namespace

std::shared_ptr<const GPMassPlane> GPMassPlane::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open model file '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return from_bytes(bytes.str(), path);
}

std::shared_ptr<const GPMassPlane> GPMassPlane::from_bytes(const std::string& bytes, const std::string& source) {
  const onnx::Model model = onnx::parse_model(bytes, source);
  auto meta = model.metadata.find("rooml");
  if (meta == model.metadata.end())
    throw Error(source + ": ONNX model without rooml metadata (not exported by rooml.export?)");
  const json::Value doc = json::parse(meta->second);
  if (doc["kind"].as_string() != "gp_massplane")
    throw Error(source + ": model kind is '" + doc["kind"].as_string() + "', not 'gp_massplane'");
  if (doc["format_version"].as_int() > 1)
    throw Error(source + ": model format version " + std::to_string(doc["format_version"].as_int()) +
                " is newer than this rooml understands (1)");

  std::shared_ptr<GPMassPlane> g(new GPMassPlane());
  g->source_ = source;
  g->metadata_json_ = meta->second;
  auto hash = model.metadata.find("rooml_content_hash");
  g->content_hash_ = hash == model.metadata.end() ? "" : hash->second;
  g->features_ = doc["features"].as_strings();
  if (g->features_.size() != 2) throw Error(source + ": a mass plane has two features");
  g->edges_[0] = numbers(doc["edges_m1"]);
  g->edges_[1] = numbers(doc["edges_m2"]);
  for (const auto& e : g->edges_) {
    if (e.size() < 2 || !std::is_sorted(e.begin(), e.end()) || std::adjacent_find(e.begin(), e.end()) != e.end())
      throw Error(source + ": bin edges must be increasing with at least one bin");
  }
  g->year_ = doc["year"].is_null() ? -1 : static_cast<int>(doc["year"].as_int());
  const json::Value& kernel = doc["kernel"];
  if (kernel["type"].as_string() != "constant_rbf")
    throw Error(source + ": unsupported GP kernel '" + kernel["type"].as_string() + "'");
  g->constant_ = kernel["constant"].as_number();
  g->length_scales_ = numbers(kernel["length_scales"]);
  if (g->length_scales_.size() != 2 || !(g->length_scales_[0] > 0) || !(g->length_scales_[1] > 0))
    throw Error(source + ": the kernel needs two positive length scales");
  g->scale_ = doc["scale"].as_number();
  g->mean_kind_ = doc["mean_function"]["kind"].as_string();
  g->mean_coef_ = numbers(doc["mean_function"]["coefficients"]);
  const std::size_t want = g->mean_kind_ == "constant" ? 0 : g->mean_kind_ == "exponential" ? 5 : 9;
  if ((g->mean_kind_ != "constant" && g->mean_kind_ != "exponential" && g->mean_kind_ != "turn_on") ||
      g->mean_coef_.size() != want)
    throw Error(source + ": unsupported mean function '" + g->mean_kind_ + "' with " +
                std::to_string(g->mean_coef_.size()) + " coefficients");
  const json::Value& names = doc["tensors"];
  const std::size_t n = static_cast<std::size_t>(doc["n_train"].as_int());
  g->alpha_ = tensor(model, names, "alpha", n, source);
  g->train_ = tensor(model, names, "train_points", 2 * n, source);
  g->chol_inv_ = tensor(model, names, "cholesky_inverse", n * n, source);

  // the prediction at the bin centres and the sampler density made of it
  const std::size_t n1 = g->edges_[0].size() - 1, n2 = g->edges_[1].size() - 1;
  std::vector<double> centres;
  for (std::size_t i = 0; i < n1; ++i)
    for (std::size_t j = 0; j < n2; ++j) {
      centres.push_back(0.5 * (g->edges_[0][i + 1] + g->edges_[0][i]));
      centres.push_back(0.5 * (g->edges_[1][j + 1] + g->edges_[1][j]));
    }
  g->bin_counts_.resize(n1 * n2);
  g->mean_counts(centres.data(), n1 * n2, g->bin_counts_.data(), 1);
  double total = 0.0;
  for (double c : g->bin_counts_) total += std::max(c, 0.0);
  if (!(total > 0)) throw Error(source + ": the prediction is zero everywhere in the box");
  double cumulative = 0.0;
  for (double c : g->bin_counts_) {
    g->bin_probability_.push_back(std::max(c, 0.0) / total);
    cumulative += std::max(c, 0.0);
    g->bin_cdf_.push_back(cumulative / total);
  }
  return g;
}

void GPMassPlane::check_inputs(const double* x, std::size_t n) const {
  for (std::size_t e = 0; e < n; ++e)
    for (std::size_t f = 0; f < 2; ++f)
      if (!std::isfinite(x[2 * e + f])) {
        std::ostringstream msg;
        msg << "event " << e << ", variable '" << features_[f] << "': value is not finite (" << x[2 * e + f] << ")";
        throw Error(msg.str());
      }
}

void GPMassPlane::mean_function_counts(const double* x, std::size_t n, double* out) const {
  if (mean_kind_ == "constant") {
    std::fill(out, out + n, scale_);
    return;
  }
  const double* c = mean_coef_.data();  // (x1, x2, c0, c1, c2[, a1, log w1, a2, log w2])
  for (std::size_t e = 0; e < n; ++e) {
    const double m1 = x[2 * e], m2 = x[2 * e + 1];
    const double u = (m1 - c[0]) / 100.0, v = (m2 - c[1]) / 100.0;
    double log_mu = c[2] + c[3] * u + c[4] * v;
    if (mean_kind_ == "turn_on") {
      log_mu -= logaddexp0(-((m1 - c[5]) / std::exp(c[6])));
      log_mu -= logaddexp0(-((m2 - c[7]) / std::exp(c[8])));
    }
    out[e] = std::exp(log_mu);
  }
}

void GPMassPlane::mean_counts(const double* x, std::size_t n, double* out, int threads) const {
  check_inputs(x, n);
  const std::size_t nt = alpha_.size();
  const double l0 = length_scales_[0], l1 = length_scales_[1];
  for_each_block(n, threads > 0 ? threads : default_threads(), [&](std::size_t, std::size_t begin, std::size_t count) {
    mean_function_counts(x + 2 * begin, count, out + begin);
    for (std::size_t e = begin; e < begin + count; ++e) {
      const double a = x[2 * e] / l0, b = x[2 * e + 1] / l1;  // scaled first, as scikit-learn's RBF
      double f = 0.0;
      for (std::size_t i = 0; i < nt; ++i) {
        const double d0 = a - train_[2 * i] / l0, d1 = b - train_[2 * i + 1] / l1;
        f += constant_ * std::exp(-0.5 * (d0 * d0 + d1 * d1)) * alpha_[i];
      }
      out[e] += scale_ * f;
    }
  });
}

void GPMassPlane::std_counts(const double* x, std::size_t n, double* out, int threads) const {
  check_inputs(x, n);
  const std::size_t nt = alpha_.size();
  const double l0 = length_scales_[0], l1 = length_scales_[1];
  for_each_block(n, threads > 0 ? threads : default_threads(), [&](std::size_t, std::size_t begin, std::size_t count) {
    std::vector<double> k(nt);
    for (std::size_t e = begin; e < begin + count; ++e) {
      const double a = x[2 * e] / l0, b = x[2 * e + 1] / l1;
      for (std::size_t i = 0; i < nt; ++i) {
        const double d0 = a - train_[2 * i] / l0, d1 = b - train_[2 * i + 1] / l1;
        k[i] = constant_ * std::exp(-0.5 * (d0 * d0 + d1 * d1));
      }
      double vv = 0.0;  // |L^-1 k|^2, L^-1 lower triangular
      for (std::size_t i = 0; i < nt; ++i) {
        const double* row = chol_inv_.data() + i * nt;
        double v = 0.0;
        for (std::size_t j = 0; j <= i; ++j) v += row[j] * k[j];
        vv += v * v;
      }
      out[e] = scale_ * std::sqrt(std::max(constant_ - vv, 0.0));
    }
  });
}

long GPMassPlane::bin_of(int axis, double value) const {
  const auto& e = edges_[axis];
  if (!(value >= e.front() && value <= e.back())) return -1;
  if (value == e.back()) return static_cast<long>(e.size()) - 2;
  return static_cast<long>(std::upper_bound(e.begin(), e.end(), value) - e.begin()) - 1;
}

double GPMassPlane::overlap(int axis, std::size_t b, double lo, double hi) const {
  const auto& e = edges_[axis];
  return std::max(0.0, std::min(hi, e[b + 1]) - std::max(lo, e[b]));
}

void GPMassPlane::density(const double* x, std::size_t n, double* out) const {
  check_inputs(x, n);
  const std::size_t n2 = edges_[1].size() - 1;
  for (std::size_t e = 0; e < n; ++e) {
    const long i = bin_of(0, x[2 * e]), j = bin_of(1, x[2 * e + 1]);
    if (i < 0 || j < 0) {
      out[e] = 0.0;
      continue;
    }
    const double area = (edges_[0][i + 1] - edges_[0][i]) * (edges_[1][j + 1] - edges_[1][j]);
    out[e] = bin_probability_[static_cast<std::size_t>(i) * n2 + static_cast<std::size_t>(j)] / area;
  }
}

double GPMassPlane::probability(double lo1, double hi1, double lo2, double hi2) const {
  const std::size_t n1 = edges_[0].size() - 1, n2 = edges_[1].size() - 1;
  double sum = 0.0;
  for (std::size_t i = 0; i < n1; ++i) {
    const double f1 = overlap(0, i, lo1, hi1) / (edges_[0][i + 1] - edges_[0][i]);
    if (f1 == 0.0) continue;
    for (std::size_t j = 0; j < n2; ++j)
      sum += bin_probability_[i * n2 + j] * f1 * overlap(1, j, lo2, hi2) / (edges_[1][j + 1] - edges_[1][j]);
  }
  return sum;
}

double GPMassPlane::marginal(int axis, double value, double lo, double hi) const {
  if (axis != 0 && axis != 1) throw Error("GPMassPlane::marginal: axis must be 0 (m1) or 1 (m2)");
  const long b = bin_of(axis, value);
  if (b < 0) return 0.0;
  const int other = 1 - axis;
  const std::size_t n2 = edges_[1].size() - 1, m = edges_[other].size() - 1;
  const double width = edges_[axis][b + 1] - edges_[axis][b];
  double sum = 0.0;
  for (std::size_t k = 0; k < m; ++k) {
    const std::size_t bin = axis == 0 ? static_cast<std::size_t>(b) * n2 + k : k * n2 + static_cast<std::size_t>(b);
    sum += bin_probability_[bin] * overlap(other, k, lo, hi) / (edges_[other][k + 1] - edges_[other][k]);
  }
  return sum / width;
}

void GPMassPlane::sample(double u_bin, double u1, double u2, double* m1, double* m2) const {
  const std::size_t n2 = edges_[1].size() - 1;
  std::size_t bin = static_cast<std::size_t>(std::upper_bound(bin_cdf_.begin(), bin_cdf_.end(), u_bin) -
                                             bin_cdf_.begin());
  bin = std::min(bin, bin_cdf_.size() - 1);
  const std::size_t i = bin / n2, j = bin % n2;
  *m1 = edges_[0][i] + u1 * (edges_[0][i + 1] - edges_[0][i]);
  *m2 = edges_[1][j] + u2 * (edges_[1][j + 1] - edges_[1][j]);
}

}  // namespace rooml
