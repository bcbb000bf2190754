// Loading and batched evaluation of rooml flows.
#include "rooml/flow_model.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include "flow_transforms.h"
#include "rooml/error.h"
#include "rooml/graph_model.h"
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

/// One flow of an ensemble: its preprocessing and its transforms (data -> noise).
struct FlowMember {
  std::unique_ptr<Preprocessing> preprocessing;
  std::vector<std::unique_ptr<Transform>> transforms;
  // An adopted graph returning log p(z | context) of the preprocessed features: no transforms, no sampler.
  std::shared_ptr<const GraphModel> graph;
  std::size_t graph_output = 0;
  long x_input = -1, context_input = -1;
  std::size_t n_context = 0;

  /// log p of the events in `block` (z is overwritten).
  void log_prob(Block& block, double* out) const {
    preprocessing->forward(block);
    if (graph) {
      const std::size_t n = block.n, d = block.dim, c = n_context;
      std::vector<double> rows(n * d), ctx(n * c), values(n);
      for (std::size_t e = 0; e < n; ++e) {
        for (std::size_t f = 0; f < d; ++f) rows[e * d + f] = block.z[f * kBlock + e];
        for (std::size_t f = 0; f < c; ++f) ctx[e * c + f] = block.context[f * kBlock + e];
      }
      std::vector<const double*> feeds(graph->input_names().size());
      feeds[static_cast<std::size_t>(x_input)] = rows.data();
      if (context_input >= 0) feeds[static_cast<std::size_t>(context_input)] = ctx.data();
      graph->evaluate(feeds, n, {graph_output}, {values.data()}, 1);
      for (std::size_t e = 0; e < n; ++e) out[e] = block.logdet[e] + values[e];
      return;
    }
    for (const auto& t : transforms) t->forward(block);
    const double log_norm = 0.5 * static_cast<double>(block.dim) * std::log(2.0 * M_PI);
    for (std::size_t e = 0; e < block.n; ++e) {
      double sq = 0.0;
      for (std::size_t f = 0; f < block.dim; ++f) sq += block.z[f * kBlock + e] * block.z[f * kBlock + e];
      out[e] = block.logdet[e] - 0.5 * sq - log_norm;
    }
  }

  /// Physical events in `block.z` -> noise.
  void forward(Block& block) const {
    preprocessing->forward(block);
    for (const auto& t : transforms) t->forward(block);
  }

  /// Noise in `block.z` -> physical events.
  void invert(Block& block) const {
    for (auto it = transforms.rbegin(); it != transforms.rend(); ++it) (*it)->inverse(block);
    preprocessing->inverse(block);
  }
};

FlowModel::FlowModel() = default;
FlowModel::~FlowModel() = default;

namespace {

std::unique_ptr<FlowMember> make_member(const json::Value& doc, const WeightSource& weights, std::size_t dim,
                                        const std::string& source) {
  auto member = std::make_unique<FlowMember>();
  member->preprocessing = std::make_unique<Preprocessing>(doc["preprocessing"], dim);
  const json::Value& arch = doc["architecture"];
  if (arch.contains("type") && arch["type"].as_string() == "graph") {
    member->graph = GraphModel::from_model(weights.model());
    const GraphModel& g = *member->graph;
    member->graph_output = g.output_index(arch["output"].as_string());
    if (g.output_width(member->graph_output) != 1)
      throw Error(source + ": graph output '" + arch["output"].as_string() + "' must hold one log-density per event");
    member->x_input = static_cast<long>(g.input_index(arch["input"].as_string()));
    if (g.input_width(static_cast<std::size_t>(member->x_input)) != dim)
      throw Error(source + ": graph input '" + arch["input"].as_string() + "' does not take the " + std::to_string(dim) + " features");
    member->n_context = doc["context"].as_strings().size();
    if (arch.contains("context_input") && !arch["context_input"].is_null()) {
      member->context_input = static_cast<long>(g.input_index(arch["context_input"].as_string()));
      if (g.input_width(static_cast<std::size_t>(member->context_input)) != member->n_context)
        throw Error(source + ": graph input '" + arch["context_input"].as_string() + "' does not take the " +
                    std::to_string(member->n_context) + " context variables");
    }
    if (g.input_names().size() != (member->context_input >= 0 ? 2u : 1u))
      throw Error(source + ": the graph has inputs that are neither the features nor the context");
    return member;
  }
  for (const auto& t : arch["transforms"].as_array()) member->transforms.push_back(make_transform(t, weights, dim));
  if (auto base = make_base(arch, weights, dim)) member->transforms.push_back(std::move(base));
  return member;
}

// Copy events [begin, begin + count) into the block's structure-of-arrays rows.
void load_block(const double* x, const double* context, std::size_t d, std::size_t c, std::size_t begin,
                std::size_t count, double* z, double* ctx, double* logdet) {
  for (std::size_t e = 0; e < count; ++e) {
    if (x)
      for (std::size_t f = 0; f < d; ++f) z[f * kBlock + e] = x[(begin + e) * d + f];
    for (std::size_t f = 0; f < c; ++f) ctx[f * kBlock + e] = context[(begin + e) * c + f];
    logdet[e] = 0.0;
  }
}

}  // namespace

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
  std::map<std::string, std::string> aliases;
  if (doc.contains("tensor_aliases"))
    for (const auto& [name, target] : doc["tensor_aliases"].as_object()) aliases[name] = target.as_string();
  const WeightSource weights(model, std::move(aliases), source);
  if (doc.contains("ensemble")) {
    const json::Value& ens = doc["ensemble"];
    const std::string rule = ens["rule"].as_string();
    if (rule != "mean_log_prob" && rule != "mixture")
      throw Error(source + ": unknown ensemble rule '" + rule + "'");
    flow->rule_ = rule == "mixture" ? EnsembleRule::Mixture : EnsembleRule::MeanLogProb;
    flow->n_bootstraps_ = static_cast<std::size_t>(ens["bootstraps"].as_int());
    const auto per = static_cast<std::size_t>(ens["members_per_bootstrap"].as_int());
    const auto& members = doc["members"].as_array();
    if (flow->n_bootstraps_ < 1 || per < 1 || members.size() != flow->n_bootstraps_ * per)
      throw Error(source + ": ensemble metadata lists " + std::to_string(members.size()) + " members for " +
                  std::to_string(flow->n_bootstraps_) + " bootstraps x " + std::to_string(per) + " members");
    for (const auto& m : members) flow->members_.push_back(make_member(m, weights, dim, source));
  } else {
    flow->members_.push_back(make_member(doc, weights, dim, source));
  }
  return flow;
}

std::pair<std::size_t, std::size_t> FlowModel::member_range(int bootstrap) const {
  if (bootstrap < 0) return {0, members_.size()};
  if (static_cast<std::size_t>(bootstrap) >= n_bootstraps_)
    throw Error(source_ + ": bootstrap index " + std::to_string(bootstrap) + " out of range (the model has " +
                std::to_string(n_bootstraps_) + " bootstrap models)");
  const std::size_t per = members_per_bootstrap();
  return {bootstrap * per, (bootstrap + 1) * per};
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

void FlowModel::for_each_member_block(const double* x, const double* context, std::size_t n, int threads,
                                      std::size_t first, std::size_t last, const MemberBlockFn& use) const {
  check_inputs(x, context, n);
  const std::size_t d = n_features(), c = n_context(), m = last - first;
  const int workers = threads > 0 ? threads : default_threads();
  std::vector<Workspace> spaces(static_cast<std::size_t>(workers));
  for_each_block(n, workers, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    Workspace& ws = spaces[worker];
    double* z = ws.get(20, d * kBlock);
    double* ctx = c ? ws.get(21, c * kBlock) : nullptr;
    double* logdet = ws.get(22, kBlock);
    double* lp = ws.get(23, m * kBlock);
    for (std::size_t k = 0; k < m; ++k) {
      load_block(x, context, d, c, begin, count, z, ctx, logdet);
      Block block{count, d, z, ctx, logdet, &ws};
      members_[first + k]->log_prob(block, lp + k * kBlock);
    }
    use(begin, count, lp);
  });
}

void FlowModel::member_log_prob(const double* x, const double* context, std::size_t n, double* out,
                                int threads) const {
  const std::size_t m = members_.size();
  for_each_member_block(x, context, n, threads, 0, m, [&](std::size_t begin, std::size_t count, const double* lp) {
    for (std::size_t k = 0; k < m; ++k)
      for (std::size_t e = 0; e < count; ++e) out[(begin + e) * m + k] = lp[k * kBlock + e];
  });
}

void FlowModel::log_prob(const double* x, const double* context, std::size_t n, double* out, int threads,
                         int bootstrap) const {
  const auto [first, last] = member_range(bootstrap);
  const std::size_t m = last - first;
  for_each_member_block(x, context, n, threads, first, last, [&](std::size_t begin, std::size_t count,
                                                                 const double* lp) {
    for (std::size_t e = 0; e < count; ++e) {
      double value;
      if (m == 1) {
        value = lp[e];
      } else if (rule_ == EnsembleRule::MeanLogProb) {
        double sum = 0.0;
        for (std::size_t k = 0; k < m; ++k) sum += lp[k * kBlock + e];
        value = sum / static_cast<double>(m);
      } else {  // log of the mean density, in log space
        double top = -std::numeric_limits<double>::infinity();
        for (std::size_t k = 0; k < m; ++k) top = std::max(top, lp[k * kBlock + e]);
        double sum = 0.0;
        for (std::size_t k = 0; k < m; ++k) sum += std::exp(lp[k * kBlock + e] - top);
        value = top + std::log(sum / static_cast<double>(m));
      }
      if (std::isnan(value))
        throw Error("event " + std::to_string(begin + e) +
                    ": log-density is NaN (input outside the domain of the model's preprocessing?)");
      out[begin + e] = value;
    }
  });
}

namespace {

/// Map `n` events of one member through its preprocessing and transforms (or back), block by block.
void map_member(const FlowMember& m, const double* in, const double* context, std::size_t n, std::size_t d,
                std::size_t c, double* out, int workers, bool inverse) {
  std::vector<Workspace> spaces(static_cast<std::size_t>(workers));
  for_each_block(n, workers, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    Workspace& ws = spaces[worker];
    double* z = ws.get(20, d * kBlock);
    double* ctx = c ? ws.get(21, c * kBlock) : nullptr;
    double* logdet = ws.get(22, kBlock);
    load_block(in, context, d, c, begin, count, z, ctx, logdet);
    Block block{count, d, z, ctx, logdet, &ws};
    if (inverse)
      m.invert(block);
    else
      m.forward(block);
    for (std::size_t e = 0; e < count; ++e)
      for (std::size_t f = 0; f < d; ++f) out[(begin + e) * d + f] = z[f * kBlock + e];
  });
}

}  // namespace

void FlowModel::member_forward(std::size_t member, const double* x, const double* context, std::size_t n,
                               double* z_out, int threads) const {
  if (member >= members_.size()) throw Error(source_ + ": member index " + std::to_string(member) + " out of range");
  check_inputs(x, context, n);
  map_member(*members_[member], x, context, n, n_features(), n_context(), z_out,
             threads > 0 ? threads : default_threads(), false);
}

void FlowModel::member_inverse(std::size_t member, const double* z_in, const double* context, std::size_t n,
                               double* x_out, int threads) const {
  if (member >= members_.size()) throw Error(source_ + ": member index " + std::to_string(member) + " out of range");
  if (n_context() && !context)
    throw Error(source_ + ": the flow needs " + std::to_string(n_context()) + " context variables");
  map_member(*members_[member], z_in, context, n, n_features(), n_context(), x_out,
             threads > 0 ? threads : default_threads(), true);
}

void FlowModel::sample(const double* context, std::size_t n, std::uint64_t seed, double* out, int threads,
                       int bootstrap) const {
  const auto [first, last] = member_range(bootstrap);
  const std::size_t d = n_features(), c = n_context(), m = last - first;
  for (std::size_t k = first; k < last; ++k)
    if (members_[k]->graph)
      throw Error(source_ + ": this flow is an adopted ONNX graph that returns log p only and has no sampler; "
                            "export nflows or zuko flows with rooml.export.export_flow to keep exact sampling");
  if (m > 1 && rule_ == EnsembleRule::MeanLogProb)
    throw Error(source_ + ": cannot sample an ensemble combined by mean log-probability (a geometric mean, "
                          "not a normalized density); export it with rule='mixture' to sample");
  if (c && !context) throw Error(source_ + ": sampling needs " + std::to_string(c) + " context values per event");
  for (std::size_t i = 0; i < n * c; ++i)
    if (!std::isfinite(context[i])) throw Error(describe_event(i / c, context_[i % c]) + ": context value is not finite");
  const int workers = threads > 0 ? threads : default_threads();
  std::vector<Workspace> spaces(static_cast<std::size_t>(workers));
  const std::uint64_t member_stream = 0xA5A5A5A5A5A5A5A5ULL;
  for_each_block(n, workers, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    Workspace& ws = spaces[worker];
    double* z = ws.get(20, d * kBlock);
    double* ctx = c ? ws.get(21, c * kBlock) : nullptr;
    double* logdet = ws.get(22, kBlock);
    std::vector<std::size_t> events;
    for (std::size_t k = 0; k < m; ++k) {
      // events of this block drawn from member k (one uniform per event picks the member)
      events.clear();
      for (std::size_t e = 0; e < count; ++e) {
        const std::size_t pick = m == 1 ? 0 : static_cast<std::size_t>(uniform(seed ^ member_stream, begin + e) * m);
        if (std::min(pick, m - 1) == k) events.push_back(e);
      }
      if (events.empty()) continue;
      for (std::size_t j = 0; j < events.size(); ++j) {
        const std::uint64_t event = begin + events[j];
        for (std::size_t f = 0; f < d; ++f) {  // Box-Muller from two counter-based uniforms
          const std::uint64_t u = 2 * (event * d + f);
          z[f * kBlock + j] = std::sqrt(-2.0 * std::log(uniform(seed, u))) * std::cos(2.0 * M_PI * uniform(seed, u + 1));
        }
        for (std::size_t f = 0; f < c; ++f) ctx[f * kBlock + j] = context[event * c + f];
        logdet[j] = 0.0;
      }
      Block block{events.size(), d, z, ctx, logdet, &ws};
      members_[first + k]->invert(block);
      for (std::size_t j = 0; j < events.size(); ++j)
        for (std::size_t f = 0; f < d; ++f) out[(begin + events[j]) * d + f] = z[f * kBlock + j];
    }
  });
}

}  // namespace rooml
