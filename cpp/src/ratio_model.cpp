// Loading and batched evaluation of rooml density-ratio networks (MLPs and ensembles of MLPs).
#include "rooml/ratio_model.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "flow_transforms.h"
#include "rooml/dispatch.h"
#include "rooml/error.h"
#include "rooml/flow_model.h"  // default_threads
#include "rooml/graph_model.h"
#include "rooml/kernels.h"
#include "rooml/parallel.h"

namespace rooml {
namespace {

enum class Activation { Linear, Relu, Silu };

Activation parse_activation(const std::string& name, const std::string& source) {
  if (name == "linear") return Activation::Linear;
  if (name == "relu") return Activation::Relu;
  if (name == "silu") return Activation::Silu;
  throw Error(source + ": unsupported activation '" + name + "' (file written by a newer rooml?)");
}

void activate(Activation a, double* rows, std::size_t count, std::size_t n) {
  for (std::size_t r = 0; r < count; ++r) {
    double* __restrict h = rows + r * kBlock;
    if (a == Activation::Relu) {
      relu_inplace(h, n);
    } else if (a == Activation::Silu) {
      kernels().silu_inplace(h, n);
    }
  }
}

double bound(const json::Value& v, double fallback) { return v.is_null() ? fallback : v.as_number(); }

// Workspace slots (a ratio model owns its workspaces).
enum Slot : std::size_t { kInput = 0, kLogdet, kHiddenA, kHiddenB, kMembers };

}  // namespace

struct RatioModel::Member {
  std::vector<Dense> layers;
  std::vector<Activation> activations;
  double log_correction = 0.0;
  // An adopted graph member: which output of graph_ holds what ("probability", "logit", "log_ratio",
  // "ratio" or "softmax": log r = log p[cls] - log p[reference]).
  long graph_output = -1;
  std::string output_kind;
  std::size_t cls = 0, reference = 0, width = 1;
};

namespace {

/// log r of one event from an adopted graph's output row `v` (width values).
double graph_log_ratio(const std::string& kind, const double* v, std::size_t cls, std::size_t reference,
                       std::size_t event) {
  auto fail = [&](const std::string& what) {
    std::ostringstream msg;
    msg << "event " << event << ": " << what;
    throw Error(msg.str());
  };
  if (kind == "probability") {
    const double s = v[cls];
    if (!(s > 0.0 && s < 1.0)) {
      std::ostringstream what;
      what << "classifier score " << s << " is outside (0, 1), so r = s / (1 - s) is not defined";
      fail(what.str());
    }
    return std::log(s) - std::log1p(-s);
  }
  if (kind == "logit" || kind == "log_ratio") return v[cls];
  if (kind == "ratio") {
    if (!(v[cls] > 0.0)) fail("ratio output " + std::to_string(v[cls]) + " is not positive");
    return std::log(v[cls]);
  }
  const double p = v[cls], q = v[reference];
  if (!(p > 0.0) || !(q > 0.0)) fail("class probability " + std::to_string(p > 0.0 ? q : p) + " is not positive");
  return std::log(p) - std::log(q);
}

}  // namespace

RatioModel::RatioModel() = default;
RatioModel::~RatioModel() = default;

std::size_t RatioModel::n_members() const { return members_.size(); }

std::vector<double> RatioModel::log_corrections() const {
  std::vector<double> out;
  for (const auto& m : members_) out.push_back(m.log_correction);
  return out;
}

std::shared_ptr<const RatioModel> RatioModel::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open model file '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return from_bytes(bytes.str(), path);
}

std::shared_ptr<const RatioModel> RatioModel::from_bytes(const std::string& bytes, const std::string& source) {
  const onnx::Model model = onnx::parse_model(bytes, source);
  auto meta = model.metadata.find("rooml");
  if (meta == model.metadata.end())
    throw Error(source + ": ONNX model without rooml metadata (not exported by rooml.export?)");
  const json::Value doc = json::parse(meta->second);
  if (doc["kind"].as_string() != "ratio")
    throw Error(source + ": model kind is '" + doc["kind"].as_string() + "', not 'ratio'");
  if (doc["format_version"].as_int() > 1)
    throw Error(source + ": model format version " + std::to_string(doc["format_version"].as_int()) +
                " is newer than this rooml understands (1)");

  std::shared_ptr<RatioModel> r(new RatioModel());
  r->source_ = source;
  r->metadata_json_ = meta->second;
  auto hash = model.metadata.find("rooml_content_hash");
  r->content_hash_ = hash == model.metadata.end() ? "" : hash->second;
  r->features_ = doc["features"].as_strings();
  const std::size_t dim = r->features_.size();
  if (dim == 0) throw Error(source + ": model has no features");
  const auto& support = doc["support"].as_array();
  if (support.size() != dim) throw Error(source + ": support bounds do not match the feature count");
  for (const auto& s : support) {
    r->low_.push_back(bound(s.at(0), -std::numeric_limits<double>::infinity()));
    r->high_.push_back(bound(s.at(1), std::numeric_limits<double>::infinity()));
  }
  r->preprocessing_ = std::make_unique<Preprocessing>(doc["preprocessing"], dim);

  const json::Value& arch = doc["architecture"];
  if (arch["type"].as_string() == "graph") {
    r->combination_ = arch["combination"].as_string();
    if (r->combination_ != "mean" && r->combination_ != "mean_log" && r->combination_ != "median")
      throw Error(source + ": unsupported ensemble combination '" + r->combination_ + "'");
    r->graph_ = GraphModel::from_model(model);
    for (std::size_t k = 0; k < r->graph_->input_names().size(); ++k)
      if (r->graph_->input_width(k) != dim)
        throw Error(source + ": graph input '" + r->graph_->input_names()[k] + "' takes " +
                    std::to_string(r->graph_->input_width(k)) + " values per event, the model has " +
                    std::to_string(dim) + " features");
    for (const auto& spec : arch["members"].as_array()) {
      Member m;
      m.graph_output = static_cast<long>(r->graph_->output_index(spec["output"].as_string()));
      m.output_kind = spec["output_kind"].as_string();
      m.width = r->graph_->output_width(static_cast<std::size_t>(m.graph_output));
      m.cls = static_cast<std::size_t>(spec["class"].as_int());
      m.reference = spec.contains("reference") ? static_cast<std::size_t>(spec["reference"].as_int()) : 0;
      static const std::vector<std::string> kinds = {"probability", "logit", "log_ratio", "ratio", "softmax"};
      if (std::find(kinds.begin(), kinds.end(), m.output_kind) == kinds.end())
        throw Error(source + ": unknown graph output kind '" + m.output_kind + "'");
      if (m.cls >= m.width || m.reference >= m.width)
        throw Error(source + ": graph output '" + spec["output"].as_string() + "' has " + std::to_string(m.width) +
                    " values per event; class " + std::to_string(m.cls) + " requested");
      r->members_.push_back(std::move(m));
    }
    if (r->members_.empty()) throw Error(source + ": ratio model without members");
    return r;
  }
  if (arch["type"].as_string() != "mlp")
    throw Error(source + ": unsupported ratio architecture '" + arch["type"].as_string() + "'");
  r->combination_ = arch["combination"].as_string();
  if (r->combination_ != "mean" && r->combination_ != "mean_log")
    throw Error(source + ": unsupported ensemble combination '" + r->combination_ + "'");
  std::map<std::string, std::string> aliases;
  if (doc.contains("tensor_aliases"))
    for (const auto& [name, target] : doc["tensor_aliases"].as_object()) aliases[name] = target.as_string();
  const WeightSource weights(model, std::move(aliases), source);
  const auto& members = arch["members"].as_array();
  if (members.empty()) throw Error(source + ": ratio model without members");
  r->max_width_ = dim;
  for (const auto& spec : members) {
    Member m;
    m.log_correction = spec["log_correction"].as_number();
    std::size_t width = dim;
    for (const auto& layer : spec["layers"].as_array()) {
      Dense d = weights.dense(layer["name"].as_string());
      if (d.in != width || static_cast<int64_t>(d.in) != layer["in"].as_int() ||
          static_cast<int64_t>(d.out) != layer["out"].as_int())
        throw Error(source + ": layer '" + layer["name"].as_string() + "' has shape " + std::to_string(d.out) +
                    " x " + std::to_string(d.in) + ", which does not chain with the previous layer (" +
                    std::to_string(width) + " outputs) or its metadata");
      width = d.out;
      r->max_width_ = std::max(r->max_width_, width);
      m.activations.push_back(parse_activation(layer["activation"].as_string(), source));
      m.layers.push_back(std::move(d));
    }
    if (m.layers.empty() || width != 1)
      throw Error(source + ": a ratio network must end in a layer with one output");
    r->members_.push_back(std::move(m));
  }
  return r;
}

void RatioModel::check_inputs(const double* x, std::size_t n) const {
  const std::size_t d = n_features();
  for (std::size_t e = 0; e < n; ++e) {
    for (std::size_t f = 0; f < d; ++f) {
      const double v = x[e * d + f];
      if (!std::isfinite(v)) {
        std::ostringstream msg;
        msg << "event " << e << ", variable '" << features_[f] << "': value is not finite (" << v << ")";
        throw Error(msg.str());
      }
      if (v < low_[f] || v > high_[f]) {
        std::ostringstream msg;
        msg << "event " << e << ", variable '" << features_[f] << "': value " << v
            << " is outside the ratio model's support [" << low_[f] << ", " << high_[f] << "]";
        throw Error(msg.str());
      }
    }
  }
}

// Runs every member (or only member `only` >= 0) on each block; sink(begin, count, values) gets the members'
// log-ratios as n_members rows of stride kBlock (only row `only` filled when given).
template <class Sink>
void RatioModel::evaluate(const double* x, std::size_t n, int threads, Sink&& sink, long only) const {
  check_inputs(x, n);
  const std::size_t d = n_features(), k = members_.size();
  const int workers = threads > 0 ? threads : default_threads();
  std::vector<Workspace> spaces(static_cast<std::size_t>(workers));
  std::vector<std::shared_ptr<GraphModel::Scratch>> graph_spaces(static_cast<std::size_t>(workers));
  for_each_block(n, workers, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    Workspace& ws = spaces[worker];
    if (graph_ && !graph_spaces[worker]) graph_spaces[worker] = graph_->make_scratch();
    double* z = ws.get(kInput, d * kBlock);
    double* logdet = ws.get(kLogdet, kBlock);
    double* a = ws.get(kHiddenA, max_width_ * kBlock);
    double* b = ws.get(kHiddenB, max_width_ * kBlock);
    double* values = ws.get(kMembers, k * kBlock);
    for (std::size_t e = 0; e < count; ++e)
      for (std::size_t f = 0; f < d; ++f) z[f * kBlock + e] = x[(begin + e) * d + f];
    Block block{count, d, z, nullptr, logdet, &ws};
    preprocessing_->forward(block);  // the Jacobian (logdet) cancels in a ratio
    // ReLU would turn a NaN from log/logit of an out-of-domain value into 0: catch it here.
    for (std::size_t f = 0; f < d; ++f)
      for (std::size_t e = 0; e < count; ++e)
        if (std::isnan(z[f * kBlock + e]))
          throw Error("event " + std::to_string(begin + e) + ", variable '" + features_[f] +
                      "': value is outside the domain of the model's preprocessing (log/logit of a "
                      "non-positive value?)");
    const std::size_t first = only < 0 ? 0 : static_cast<std::size_t>(only), last = only < 0 ? k : first + 1;
    for (std::size_t m = first; m < last; ++m) {
      const Member& member = members_[m];
      if (member.graph_output >= 0) {
        double* rows = ws.get(kMembers + 1, d * kBlock);
        double* outs = ws.get(kMembers + 2, member.width * kBlock);
        for (std::size_t e = 0; e < count; ++e)
          for (std::size_t f = 0; f < d; ++f) rows[e * d + f] = z[f * kBlock + e];
        const std::vector<const double*> feeds(graph_->input_names().size(), rows);
        graph_->evaluate_block(*graph_spaces[worker], feeds, count, static_cast<std::size_t>(member.graph_output), outs);
        double* row = values + m * kBlock;
        for (std::size_t e = 0; e < count; ++e) {
          const double v = graph_log_ratio(member.output_kind, outs + e * member.width, member.cls, member.reference, begin + e);
          if (std::isnan(v)) throw Error("event " + std::to_string(begin + e) + ": log-ratio is NaN");
          row[e] = v;
        }
        continue;
      }
      const double* in = z;
      double* out = a;
      for (std::size_t l = 0; l < member.layers.size(); ++l) {
        member.layers[l].apply(in, out, count, kBlock);
        activate(member.activations[l], out, member.layers[l].out, count);
        in = out;
        out = out == a ? b : a;
      }
      double* row = values + m * kBlock;
      for (std::size_t e = 0; e < count; ++e) {
        const double v = in[e] + member.log_correction;
        if (std::isnan(v))
          throw Error("event " + std::to_string(begin + e) +
                      ": log-ratio is NaN (non-finite weights in the model file?)");
        row[e] = v;
      }
    }
    sink(begin, count, values);
  });
}

void RatioModel::log_ratio(const double* x, std::size_t n, double* out, int threads) const {
  const std::size_t k = members_.size();
  const bool mean_log = combination_ == "mean_log", median = combination_ == "median";
  const double log_k = std::log(static_cast<double>(k));
  evaluate(x, n, threads, [&](std::size_t begin, std::size_t count, const double* values) {
    std::vector<double> scratch(median ? k : 0);
    for (std::size_t e = 0; e < count; ++e) {
      if (k == 1) {
        out[begin + e] = values[e];
        continue;
      }
      if (median) {  // median of the ratios: middle one, or the mean of the middle two
        double* sorted = scratch.data();
        for (std::size_t m = 0; m < k; ++m) sorted[m] = values[m * kBlock + e];
        std::sort(sorted, sorted + k);
        const double lo = sorted[(k - 1) / 2], hi = sorted[k / 2];
        out[begin + e] = k % 2 ? lo : hi + std::log1p(std::exp(lo - hi)) - std::log(2.0);
        continue;
      }
      if (mean_log) {
        double sum = 0.0;
        for (std::size_t m = 0; m < k; ++m) sum += values[m * kBlock + e];
        out[begin + e] = sum / static_cast<double>(k);
      } else {  // log(mean_m exp(l_m)), shifted by the largest term
        double top = values[e];
        for (std::size_t m = 1; m < k; ++m) top = std::max(top, values[m * kBlock + e]);
        double sum = 0.0;
        for (std::size_t m = 0; m < k; ++m) sum += std::exp(values[m * kBlock + e] - top);
        out[begin + e] = top + std::log(sum) - log_k;
      }
    }
  });
}

void RatioModel::ratio(const double* x, std::size_t n, double* out, int threads) const {
  log_ratio(x, n, out, threads);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::exp(out[i]);
}

void RatioModel::member_log_ratios(const double* x, std::size_t n, double* out, int threads) const {
  const std::size_t k = members_.size();
  evaluate(x, n, threads, [&](std::size_t begin, std::size_t count, const double* values) {
    for (std::size_t e = 0; e < count; ++e)
      for (std::size_t m = 0; m < k; ++m) out[(begin + e) * k + m] = values[m * kBlock + e];
  });
}

void RatioModel::member_log_ratio(const double* x, std::size_t n, std::size_t member, double* out,
                                  int threads) const {
  if (member >= members_.size())
    throw Error("ratio model '" + source_ + "': member " + std::to_string(member) + " of " +
                std::to_string(members_.size()) + " requested (members are numbered from 0)");
  evaluate(
      x, n, threads,
      [&](std::size_t begin, std::size_t count, const double* values) {
        std::copy_n(values + member * kBlock, count, out + begin);
      },
      static_cast<long>(member));
}

}  // namespace rooml
