// Loading and batched evaluation of rooml flows.
#include "rooml/flow_model.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "flow_transforms.h"
#include "rooml/error.h"
#include "rooml/parallel.h"

namespace rooml {
namespace {

std::atomic<int> g_threads{0};

std::string describe_event(std::size_t event, const std::string& name) {
  return "event " + std::to_string(event) + ", variable '" + name + "'";
}

double bound(const json::Value& v, double fallback) { return v.is_null() ? fallback : v.as_number(); }

// Counter-based uniform in (0, 1): splitmix64 of (seed, counter).
double uniform(std::uint64_t seed, std::uint64_t counter) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (static_cast<double>(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

}  // namespace

int default_threads() {
  const int set = g_threads.load();
  if (set > 0) return set;
  if (const char* env = std::getenv("ROOML_NUM_THREADS")) {
    const int v = std::atoi(env);
    if (v > 0) return v;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

void set_default_threads(int threads) { g_threads = threads > 0 ? threads : 0; }

FlowModel::~FlowModel() = default;

std::shared_ptr<const FlowModel> FlowModel::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open model file '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return from_bytes(bytes.str(), path);
}

std::shared_ptr<const FlowModel> FlowModel::from_bytes(const std::string& bytes, const std::string& source) {
  const onnx::Model model = onnx::parse_model(bytes, source);
  auto meta = model.metadata.find("rooml");
  if (meta == model.metadata.end())
    throw Error(source + ": ONNX model without rooml metadata (not exported by rooml.export?)");
  const json::Value doc = json::parse(meta->second);
  if (doc["kind"].as_string() != "flow")
    throw Error(source + ": model kind is '" + doc["kind"].as_string() + "', not 'flow'");
  if (doc["format_version"].as_int() > 1)
    throw Error(source + ": model format version " + std::to_string(doc["format_version"].as_int()) +
                " is newer than this rooml understands (1)");

  std::shared_ptr<FlowModel> flow(new FlowModel());
  flow->source_ = source;
  flow->metadata_json_ = meta->second;
  auto hash = model.metadata.find("rooml_content_hash");
  flow->content_hash_ = hash == model.metadata.end() ? "" : hash->second;
  flow->features_ = doc["features"].as_strings();
  flow->context_ = doc["context"].as_strings();
  const std::size_t dim = flow->features_.size();
  if (dim == 0) throw Error(source + ": model has no features");
  const auto& support = doc["support"].as_array();
  if (support.size() != dim) throw Error(source + ": support bounds do not match the feature count");
  for (const auto& s : support) {
    flow->low_.push_back(bound(s.at(0), -std::numeric_limits<double>::infinity()));
    flow->high_.push_back(bound(s.at(1), std::numeric_limits<double>::infinity()));
  }
  flow->preprocessing_ = std::make_unique<Preprocessing>(doc["preprocessing"], dim);
  const json::Value& arch = doc["architecture"];
  if (arch["base"].as_string() != "standard_normal")
    throw Error(source + ": unsupported base distribution '" + arch["base"].as_string() + "'");
  std::map<std::string, std::string> aliases;
  if (doc.contains("tensor_aliases"))
    for (const auto& [name, target] : doc["tensor_aliases"].as_object()) aliases[name] = target.as_string();
  const WeightSource weights(model, std::move(aliases), source);
  for (const auto& t : arch["transforms"].as_array()) flow->transforms_.push_back(make_transform(t, weights, dim));
  return flow;
}

void FlowModel::check_inputs(const double* x, const double* context, std::size_t n) const {
  const std::size_t d = n_features(), c = n_context();
  if (c && !context) throw Error(source_ + ": the flow needs " + std::to_string(c) + " context variables");
  for (std::size_t e = 0; e < n; ++e) {
    for (std::size_t f = 0; f < d; ++f) {
      const double v = x[e * d + f];
      if (!std::isfinite(v)) throw Error(describe_event(e, features_[f]) + ": value is not finite (" + std::to_string(v) + ")");
      if (v < low_[f] || v > high_[f]) {
        std::ostringstream msg;
        msg << describe_event(e, features_[f]) << ": value " << v << " is outside the flow's support ["
            << low_[f] << ", " << high_[f] << "]";
        throw Error(msg.str());
      }
    }
    for (std::size_t f = 0; f < c; ++f)
      if (!std::isfinite(context[e * c + f]))
        throw Error(describe_event(e, context_[f]) + ": context value is not finite");
  }
}

void FlowModel::log_prob(const double* x, const double* context, std::size_t n, double* out, int threads) const {
  check_inputs(x, context, n);
  const std::size_t d = n_features(), c = n_context();
  const int workers = threads > 0 ? threads : default_threads();
  std::vector<Workspace> spaces(static_cast<std::size_t>(workers));
  const double log_norm = 0.5 * static_cast<double>(d) * std::log(2.0 * M_PI);
  for_each_block(n, workers, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    Workspace& ws = spaces[worker];
    double* z = ws.get(20, d * kBlock);
    double* ctx = c ? ws.get(21, c * kBlock) : nullptr;
    double* logdet = ws.get(22, kBlock);
    for (std::size_t e = 0; e < count; ++e) {
      for (std::size_t f = 0; f < d; ++f) z[f * kBlock + e] = x[(begin + e) * d + f];
      for (std::size_t f = 0; f < c; ++f) ctx[f * kBlock + e] = context[(begin + e) * c + f];
      logdet[e] = 0.0;
    }
    Block block{count, d, z, ctx, logdet, &ws};
    preprocessing_->forward(block);
    for (const auto& t : transforms_) t->forward(block);
    for (std::size_t e = 0; e < count; ++e) {
      double sq = 0.0;
      for (std::size_t f = 0; f < d; ++f) sq += z[f * kBlock + e] * z[f * kBlock + e];
      const double value = logdet[e] - 0.5 * sq - log_norm;
      if (std::isnan(value))
        throw Error("event " + std::to_string(begin + e) +
                    ": log-density is NaN (input outside the domain of the model's preprocessing?)");
      out[begin + e] = value;
    }
  });
}

void FlowModel::sample(const double* context, std::size_t n, std::uint64_t seed, double* out, int threads) const {
  const std::size_t d = n_features(), c = n_context();
  if (c && !context) throw Error(source_ + ": sampling needs " + std::to_string(c) + " context values per event");
  for (std::size_t i = 0; i < n * c; ++i)
    if (!std::isfinite(context[i])) throw Error(describe_event(i / c, context_[i % c]) + ": context value is not finite");
  const int workers = threads > 0 ? threads : default_threads();
  std::vector<Workspace> spaces(static_cast<std::size_t>(workers));
  for_each_block(n, workers, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    Workspace& ws = spaces[worker];
    double* z = ws.get(20, d * kBlock);
    double* ctx = c ? ws.get(21, c * kBlock) : nullptr;
    double* logdet = ws.get(22, kBlock);
    for (std::size_t e = 0; e < count; ++e) {
      const std::uint64_t event = begin + e;
      for (std::size_t f = 0; f < d; ++f) {  // Box-Muller from two counter-based uniforms
        const std::uint64_t k = 2 * (event * d + f);
        const double u1 = uniform(seed, k), u2 = uniform(seed, k + 1);
        z[f * kBlock + e] = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
      }
      for (std::size_t f = 0; f < c; ++f) ctx[f * kBlock + e] = context[event * c + f];
      logdet[e] = 0.0;
    }
    Block block{count, d, z, ctx, logdet, &ws};
    for (auto it = transforms_.rbegin(); it != transforms_.rend(); ++it) (*it)->inverse(block);
    preprocessing_->inverse(block);
    for (std::size_t e = 0; e < count; ++e)
      for (std::size_t f = 0; f < d; ++f) out[(begin + e) * d + f] = z[f * kBlock + e];
  });
}

}  // namespace rooml
