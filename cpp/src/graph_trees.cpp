// ai.onnx.ml kernels of the general graph evaluator: tree ensembles (XGBoost, LightGBM, scikit-learn
// via onnxmltools / skl2onnx), linear models, Scaler, Normalizer, ArrayFeatureExtractor.
// Post-transforms and the two-class conventions follow the ONNX-ML operator specification as
// onnxruntime implements it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include "graph_ops.h"
#include "rooml/error.h"

namespace rooml::graph {
namespace {

namespace dt = onnx::data_type;

std::vector<double> floats_or_tensor(const onnx::Node& n, const std::string& name, bool* from_tensor = nullptr) {
  if (const onnx::Attribute* t = n.attribute(name + "_as_tensor")) {
    if (from_tensor) *from_tensor = true;
    return t->t.values;
  }
  if (from_tensor) *from_tensor = false;
  const onnx::Attribute* a = n.attribute(name);
  return a ? a->floats : std::vector<double>{};
}

std::vector<int64_t> ints(const onnx::Node& n, const std::string& name) {
  const onnx::Attribute* a = n.attribute(name);
  return a ? a->ints : std::vector<int64_t>{};
}

std::string text(const onnx::Node& n, const std::string& name, const std::string& fallback) {
  const onnx::Attribute* a = n.attribute(name);
  return a ? a->s : fallback;
}

[[noreturn]] void refuse(const onnx::Node& n, const std::string& source, const std::string& what) {
  throw Error(source + ": ONNX node '" + n.name + "' (" + n.op_type + "): " + what);
}

enum class Post { None, Logistic, Softmax, SoftmaxZero };

Post parse_post(const onnx::Node& n, const std::string& source) {
  const std::string p = text(n, "post_transform", "NONE");
  if (p == "NONE") return Post::None;
  if (p == "LOGISTIC") return Post::Logistic;
  if (p == "SOFTMAX") return Post::Softmax;
  if (p == "SOFTMAX_ZERO") return Post::SoftmaxZero;
  refuse(n, source, "unsupported post_transform '" + p + "'");
}

double logistic(double v) { return 1.0 / (1.0 + std::exp(-v)); }

void transform_scores(Post post, double* s, std::size_t k) {
  if (post == Post::Logistic) {
    for (std::size_t i = 0; i < k; ++i) s[i] = logistic(s[i]);
  } else if (post == Post::Softmax || post == Post::SoftmaxZero) {
    double top = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < k; ++i)
      if (post == Post::Softmax || s[i] != 0.0) top = std::max(top, s[i]);
    double sum = 0.0;
    for (std::size_t i = 0; i < k; ++i) {
      const bool zero = post == Post::SoftmaxZero && s[i] == 0.0;
      s[i] = zero ? 0.0 : std::exp(s[i] - top);
      sum += s[i];
    }
    for (std::size_t i = 0; i < k; ++i) s[i] = sum > 0.0 ? s[i] / sum : 0.0;
  }
}

/// Class labels: integer labels as given, string labels by their index (the label output then holds strings).
struct Labels {
  std::vector<double> values;
  int32_t type = dt::kInt64;
  explicit Labels(const onnx::Node& n) {
    for (int64_t v : ints(n, "classlabels_int64s")) values.push_back(static_cast<double>(v));
    if (const onnx::Attribute* s = n.attribute("classlabels_strings")) {
      for (std::size_t i = 0; i < s->strings.size(); ++i) values.push_back(static_cast<double>(i));
      type = dt::kString;
    }
  }
};

/// Rows of the feature matrix: the input viewed as (events, features).
std::pair<std::size_t, std::size_t> rows_of(const Call& c, const Value& x) {
  if (x.shape.empty()) c.fail("input must have at least one dimension");
  const std::size_t n = x.shape.size() == 1 ? 1 : static_cast<std::size_t>(x.shape[0]);
  return {n, n ? x.size() / n : 0};
}

// ---- tree ensembles -----------------------------------------------------------------------

struct TreeEnsemble {
  enum Mode : int32_t { Leq, Lt, Gte, Gt, Eq, Neq, Leaf };
  struct TreeNode {  // 32 bytes: two nodes per cache line
    double threshold = 0.0;
    int32_t feature = 0, yes = -1, no = -1;
    int32_t leaf_begin = 0, leaf_end = 0;  // weights [leaf_begin, leaf_end) of a leaf
    int8_t mode = Leaf;
    bool missing_true = false;
  };
  std::vector<TreeNode> nodes;
  std::vector<int32_t> roots;
  std::vector<int32_t> weight_target;
  std::vector<double> weight_value;
  std::vector<double> base;
  std::size_t n_targets = 1, n_features_min = 0;
  bool round_input = true;  // float32 thresholds: compare float32(x)
  Post post = Post::None;
  bool classifier = false, binary = false, all_positive = true;
  Labels labels;

  TreeEnsemble(const onnx::Node& n, bool is_classifier, const std::string& source) : labels(n) {
    classifier = is_classifier;
    const std::vector<int64_t> tree_ids = ints(n, "nodes_treeids"), node_ids = ints(n, "nodes_nodeids");
    const std::vector<int64_t> features = ints(n, "nodes_featureids"), yes = ints(n, "nodes_truenodeids"),
                               no = ints(n, "nodes_falsenodeids"), missing = ints(n, "nodes_missing_value_tracks_true");
    bool tensor_thresholds = false;
    const std::vector<double> thresholds = floats_or_tensor(n, "nodes_values", &tensor_thresholds);
    round_input = !tensor_thresholds;
    const onnx::Attribute* modes = n.attribute("nodes_modes");
    const std::size_t count = tree_ids.size();
    if (!modes || node_ids.size() != count || features.size() != count || yes.size() != count ||
        no.size() != count || modes->strings.size() != count || thresholds.size() != count)
      refuse(n, source, "tree attributes of inconsistent lengths");
    std::map<std::pair<int64_t, int64_t>, int32_t> index;
    for (std::size_t i = 0; i < count; ++i) index[{tree_ids[i], node_ids[i]}] = static_cast<int32_t>(i);
    static const std::map<std::string, int32_t> mode_names = {{"BRANCH_LEQ", Leq}, {"BRANCH_LT", Lt}, {"BRANCH_GTE", Gte},
                                                              {"BRANCH_GT", Gt},   {"BRANCH_EQ", Eq}, {"BRANCH_NEQ", Neq},
                                                              {"LEAF", Leaf}};
    nodes.resize(count);
    std::vector<bool> is_child(count, false);
    auto child = [&](std::size_t i, int64_t id) {
      auto it = index.find({tree_ids[i], id});
      if (it == index.end()) refuse(n, source, "tree " + std::to_string(tree_ids[i]) + " refers to a missing node " + std::to_string(id));
      is_child[static_cast<std::size_t>(it->second)] = true;
      return it->second;
    };
    for (std::size_t i = 0; i < count; ++i) {
      TreeNode& t = nodes[i];
      auto m = mode_names.find(modes->strings[i]);
      if (m == mode_names.end()) refuse(n, source, "unknown node mode '" + modes->strings[i] + "'");
      t.mode = static_cast<int8_t>(m->second);
      t.feature = static_cast<int32_t>(features[i]);
      t.threshold = thresholds[i];
      t.missing_true = i < missing.size() && missing[i] != 0;
      if (t.mode != Leaf) {
        t.yes = child(i, yes[i]);
        t.no = child(i, no[i]);
        n_features_min = std::max(n_features_min, static_cast<std::size_t>(t.feature) + 1);
      }
    }
    for (const TreeNode& t : nodes)
      if (t.mode != Leaf) single_mode = single_mode == -1 || single_mode == t.mode ? t.mode : -2;
    if (single_mode < 0) single_mode = -1;
    std::map<int64_t, bool> seen;
    for (std::size_t i = 0; i < count; ++i)
      if (!is_child[i] && !seen[tree_ids[i]]) {
        seen[tree_ids[i]] = true;
        roots.push_back(static_cast<int32_t>(i));
      }
    const std::string prefix = classifier ? "class_" : "target_";
    const std::vector<int64_t> w_trees = ints(n, prefix + "treeids"), w_nodes = ints(n, prefix + "nodeids"),
                               w_ids = ints(n, prefix + "ids");
    const std::vector<double> w = floats_or_tensor(n, prefix + "weights");
    if (w_nodes.size() != w_trees.size() || w_ids.size() != w_trees.size() || w.size() != w_trees.size())
      refuse(n, source, "leaf weight attributes of inconsistent lengths");
    std::vector<std::vector<std::pair<int32_t, double>>> per_node(count);
    int64_t max_id = 0;
    for (std::size_t j = 0; j < w_trees.size(); ++j) {
      auto it = index.find({w_trees[j], w_nodes[j]});
      if (it == index.end()) refuse(n, source, "leaf weight for a missing node");
      per_node[static_cast<std::size_t>(it->second)].push_back({static_cast<int32_t>(w_ids[j]), w[j]});
      max_id = std::max(max_id, w_ids[j]);
      all_positive = all_positive && w[j] >= 0.0;
    }
    for (std::size_t i = 0; i < count; ++i) {
      nodes[i].leaf_begin = static_cast<int32_t>(weight_value.size());
      for (auto [id, v] : per_node[i]) weight_target.push_back(id), weight_value.push_back(v);
      nodes[i].leaf_end = static_cast<int32_t>(weight_value.size());
    }
    base = floats_or_tensor(n, "base_values");
    post = parse_post(n, source);
    if (classifier) {
      n_targets = labels.values.size();
      if (n_targets < 2 && !(n_targets == 1)) refuse(n, source, "classifier without class labels");
      if (static_cast<std::size_t>(max_id) >= std::max<std::size_t>(n_targets, 1)) refuse(n, source, "class id beyond the class labels");
      bool one_id = true;
      for (int64_t id : w_ids) one_id = one_id && id == w_ids.front();
      binary = n_targets == 2 && one_id;
    } else {
      n_targets = static_cast<std::size_t>(n.attribute("n_targets") ? n.attribute("n_targets")->i : max_id + 1);
      const std::string aggregate = text(n, "aggregate_function", "SUM");
      if (aggregate == "AVERAGE") how = Aggregate::Average;
      else if (aggregate == "MIN") how = Aggregate::Min;
      else if (aggregate == "MAX") how = Aggregate::Max;
      else if (aggregate != "SUM") refuse(n, source, "unsupported aggregate_function '" + aggregate + "'");
    }
    if (!base.empty() && base.size() != n_targets && !(classifier && binary && base.size() == 1))
      refuse(n, source, "base_values has " + std::to_string(base.size()) + " entries for " + std::to_string(n_targets) + " outputs");
  }

  enum class Aggregate { Sum, Average, Min, Max };
  Aggregate how = Aggregate::Sum;
  int32_t single_mode = -1;  // the one branch mode of every node, or -1 if they differ

  static bool branch(int32_t mode, double v, double t) {
    switch (mode) {
      case Leq: return v <= t;
      case Lt: return v < t;
      case Gte: return v >= t;
      case Gt: return v > t;
      case Eq: return v == t;
      default: return v != t;
    }
  }

  /// The leaf that event row `x` reaches from `root`; Mode >= 0 fixes the branch mode of every node.
  template <int32_t Mode>
  int32_t leaf(int32_t root, const double* x) const {
    const TreeNode* all = nodes.data();
    int32_t i = root;
    for (;;) {
      const TreeNode& t = all[i];
      if (t.mode == Leaf) return i;
      const double v = x[t.feature];
      const bool go = std::isnan(v) ? t.missing_true : branch(Mode >= 0 ? Mode : t.mode, v, t.threshold);
      i = go ? t.yes : t.no;
    }
  }

  /// Per-target scores of events [0, n) (rows of `width` values in x): trees outer, events inner, so one
  /// tree stays in cache; every event still adds the trees in their order.
  template <int32_t Mode>
  void accumulate(const double* x, std::size_t n, std::size_t width, double* s, unsigned char* has) const {
    for (int32_t root : roots)
      for (std::size_t e = 0; e < n; ++e) {
        const TreeNode& t = nodes[static_cast<std::size_t>(leaf<Mode>(root, x + e * width))];
        for (int32_t j = t.leaf_begin; j < t.leaf_end; ++j) {
          const std::size_t at = e * n_targets + static_cast<std::size_t>(weight_target[j]);
          const double w = weight_value[j];
          if (how == Aggregate::Min) s[at] = has[at] ? std::min(s[at], w) : w;
          else if (how == Aggregate::Max) s[at] = has[at] ? std::max(s[at], w) : w;
          else s[at] += w;
          has[at] = 1;
        }
      }
  }

  void run(Call& c) const {
    const Value& x = c.input(0);
    auto [n, width] = rows_of(c, x);
    if (width < n_features_min) c.fail("input has " + std::to_string(width) + " features, the trees use " + std::to_string(n_features_min));
    const std::size_t k = n_targets;
    Value* label_out = classifier ? c.out[0] : nullptr;
    Value* score_out = classifier ? (c.out.size() > 1 ? c.out[1] : nullptr) : c.out[0];
    Value scores;
    scores.resize({static_cast<int64_t>(n), static_cast<int64_t>(k)});
    scores.type = dt::kFloat;
    Value labels_v;
    labels_v.resize({static_cast<int64_t>(n)});
    labels_v.type = labels.type;
    std::vector<double> rounded;
    const double* rows = x.data.data();
    if (round_input) {  // float32 thresholds: compare float32(x), as the trees were trained
      rounded.resize(x.data.size());
      for (std::size_t i = 0; i < rounded.size(); ++i) rounded[i] = static_cast<double>(static_cast<float>(x.data[i]));
      rows = rounded.data();
    }
    std::vector<double> sums(n * k, 0.0);
    std::vector<unsigned char> seen(n * k, 0);
    switch (single_mode) {
      case Leq: accumulate<Leq>(rows, n, width, sums.data(), seen.data()); break;
      case Lt: accumulate<Lt>(rows, n, width, sums.data(), seen.data()); break;
      case Gte: accumulate<Gte>(rows, n, width, sums.data(), seen.data()); break;
      case Gt: accumulate<Gt>(rows, n, width, sums.data(), seen.data()); break;
      default: accumulate<-1>(rows, n, width, sums.data(), seen.data()); break;
    }
    for (std::size_t e = 0; e < n; ++e) {
      double* s = sums.data() + e * k;
      if (how == Aggregate::Average)
        for (std::size_t i = 0; i < k; ++i) s[i] /= static_cast<double>(roots.size());
      double* out = scores.data.data() + e * k;
      if (classifier && binary) {
        const std::size_t id = static_cast<std::size_t>(weight_target.empty() ? 0 : weight_target.front());
        double v = s[id] + (base.empty() ? 0.0 : base.size() == 1 ? base[0] : base[id]);
        const bool positive = all_positive ? v > 0.5 : v > 0.0;
        labels_v.data[e] = labels.values[positive ? 1 : 0];
        if (post == Post::Logistic) {
          out[0] = logistic(-v);
          out[1] = logistic(v);
        } else if (all_positive) {
          out[0] = 1.0 - v;
          out[1] = v;
        } else {
          out[0] = -v;
          out[1] = v;
        }
        continue;
      }
      for (std::size_t i = 0; i < k; ++i) out[i] = s[i] + (base.empty() ? 0.0 : base[i]);
      if (classifier) {
        std::size_t best = 0;
        for (std::size_t i = 1; i < k; ++i)
          if (out[i] > out[best]) best = i;
        labels_v.data[e] = labels.values[best];
      }
      transform_scores(post, out, k);
    }
    if (score_out) *score_out = std::move(scores);
    if (label_out) *label_out = std::move(labels_v);
  }
};

// ---- linear models and helpers ------------------------------------------------------------

struct Linear {
  std::vector<double> coefficients, intercepts;
  std::size_t rows = 1;
  Post post = Post::None;
  bool classifier = false;
  Labels labels;

  Linear(const onnx::Node& n, bool is_classifier, const std::string& source) : labels(n) {
    classifier = is_classifier;
    coefficients = floats_or_tensor(n, "coefficients");
    intercepts = floats_or_tensor(n, "intercepts");
    post = parse_post(n, source);
    rows = classifier ? std::max<std::size_t>(intercepts.size(), 1)
                      : static_cast<std::size_t>(n.attribute("targets") ? n.attribute("targets")->i : 1);
    if (coefficients.empty() || coefficients.size() % rows) refuse(n, source, "coefficients do not split into " + std::to_string(rows) + " rows");
  }

  void run(Call& c) const {
    const Value& x = c.input(0);
    auto [n, width] = rows_of(c, x);
    if (width * rows != coefficients.size()) c.fail("input has " + std::to_string(width) + " features, the coefficients need " + std::to_string(coefficients.size() / rows));
    const bool two_from_one = classifier && rows == 1 && labels.values.size() == 2;
    const std::size_t k = two_from_one ? 2 : rows;
    Value scores;
    scores.resize({static_cast<int64_t>(n), static_cast<int64_t>(k)});
    Value labels_v;
    labels_v.resize({static_cast<int64_t>(n)});
    labels_v.type = labels.type;
    for (std::size_t e = 0; e < n; ++e) {
      double* out = scores.data.data() + e * k;
      for (std::size_t r = 0; r < rows; ++r) {
        double s = 0.0;
        for (std::size_t f = 0; f < width; ++f) s += coefficients[r * width + f] * x.data[e * width + f];
        out[two_from_one ? 1 : r] = s + (r < intercepts.size() ? intercepts[r] : 0.0);
      }
      if (two_from_one) {
        out[0] = -out[1];
        labels_v.data[e] = labels.values[out[1] > 0.0 ? 1 : 0];
      } else if (classifier) {
        std::size_t best = 0;
        for (std::size_t i = 1; i < k; ++i)
          if (out[i] > out[best]) best = i;
        labels_v.data[e] = labels.values.empty() ? static_cast<double>(best) : labels.values[best];
      }
      transform_scores(post, out, k);
    }
    if (classifier) {
      *c.out[0] = std::move(labels_v);
      if (c.out.size() > 1 && c.out[1]) *c.out[1] = std::move(scores);
    } else {
      *c.out[0] = std::move(scores);
    }
  }
};

void scaler(Call& c, const std::vector<double>& offset, const std::vector<double>& scale) {
  const Value& x = c.input(0);
  auto [n, width] = rows_of(c, x);
  auto at = [](const std::vector<double>& v, std::size_t f, double fallback) {
    return v.empty() ? fallback : v.size() == 1 ? v[0] : v[f];
  };
  if ((offset.size() > 1 && offset.size() != width) || (scale.size() > 1 && scale.size() != width))
    c.fail("offset/scale do not match the " + std::to_string(width) + " features");
  Value y = x;
  y.type = dt::kFloat;
  for (std::size_t e = 0; e < n; ++e)
    for (std::size_t f = 0; f < width; ++f) y.data[e * width + f] = (x.data[e * width + f] - at(offset, f, 0.0)) * at(scale, f, 1.0);
  *c.out[0] = std::move(y);
}

void normalizer(Call& c, const std::string& norm) {
  const Value& x = c.input(0);
  auto [n, width] = rows_of(c, x);
  Value y = x;
  y.type = dt::kFloat;
  for (std::size_t e = 0; e < n; ++e) {
    double* r = y.data.data() + e * width;
    double s = 0.0;
    for (std::size_t f = 0; f < width; ++f)
      s = norm == "MAX" ? std::max(s, std::fabs(r[f])) : norm == "L1" ? s + std::fabs(r[f]) : s + r[f] * r[f];
    if (norm == "L2") s = std::sqrt(s);
    if (s != 0.0)
      for (std::size_t f = 0; f < width; ++f) r[f] /= s;
  }
  *c.out[0] = std::move(y);
}

void feature_extractor(Call& c) {
  const Value& x = c.input(0);
  const Value& idx = c.input(1);
  const int64_t width = x.shape.empty() ? 1 : x.shape.back();
  const int64_t outer = width ? static_cast<int64_t>(x.size()) / width : 0;
  std::vector<int64_t> shape = x.shape;
  if (shape.empty()) shape = {1};
  shape.back() = static_cast<int64_t>(idx.size());
  Value y;
  y.resize(shape);
  y.type = x.type;
  for (int64_t o = 0; o < outer; ++o)
    for (std::size_t q = 0; q < idx.size(); ++q) {
      const int64_t j = to_index(idx.data[q]);
      if (j < 0 || j >= width) c.fail("index " + std::to_string(j) + " out of range for " + std::to_string(width) + " columns");
      y.data[static_cast<std::size_t>(o) * idx.size() + q] = x.data[static_cast<std::size_t>(o * width + j)];
    }
  *c.out[0] = std::move(y);
}

}  // namespace

Kernel make_ml_kernel(const onnx::Node& node, const std::string& source) {
  const std::string& op = node.op_type;
  if (op == "TreeEnsembleClassifier" || op == "TreeEnsembleRegressor") {
    auto trees = std::make_shared<const TreeEnsemble>(node, op == "TreeEnsembleClassifier", source);
    return [trees](Call& c) { trees->run(c); };
  }
  if (op == "LinearClassifier" || op == "LinearRegressor") {
    auto model = std::make_shared<const Linear>(node, op == "LinearClassifier", source);
    return [model](Call& c) { model->run(c); };
  }
  if (op == "Scaler") {
    const std::vector<double> offset = floats_or_tensor(node, "offset"), scale = floats_or_tensor(node, "scale");
    return [offset, scale](Call& c) { scaler(c, offset, scale); };
  }
  if (op == "Normalizer") {
    const std::string norm = text(node, "norm", "MAX");
    if (norm != "MAX" && norm != "L1" && norm != "L2") refuse(node, source, "unknown norm '" + norm + "'");
    return [norm](Call& c) { normalizer(c, norm); };
  }
  if (op == "ArrayFeatureExtractor") return feature_extractor;
  return {};
}

}  // namespace rooml::graph
