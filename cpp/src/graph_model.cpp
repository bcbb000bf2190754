// GraphModel: plan, constant folding, probing, dense-chain fusion and block-parallel evaluation.
#include "rooml/graph_model.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "graph_ops.h"
#include "rooml/dispatch.h"
#include "rooml/error.h"
#include "rooml/flow_model.h"  // default_threads
#include "rooml/kernels.h"
#include "rooml/onnx_reader.h"
#include "rooml/parallel.h"
#include "rooml/vecmath.h"

namespace rooml {

using graph::Activation;
using graph::Call;
using graph::Kernel;
using graph::Value;

namespace {

/// A run of dense layers and element-wise activations evaluated on structure-of-arrays blocks.
struct Chain {
  struct Op {
    enum class Kind { Dense, Activation, Silu } kind;
    Dense dense;
    Activation activation;
  };
  std::vector<Op> ops;
  std::size_t in_width = 0, max_width = 0;
};

struct Step {
  const onnx::Node* node = nullptr;
  Kernel kernel;
  int64_t opset = 0;
  std::vector<int> in, out;  // value ids, -1 for an omitted one
  int chain = -1;            // >= 0: this step is fused chain `chain` (in[0] -> out[0])
};

bool is_op(const Step& s, const char* op) {
  return s.chain < 0 && (s.node->domain.empty() || s.node->domain == "ai.onnx") && s.node->op_type == op;
}

}  // namespace

struct GraphModel::Impl {
  onnx::Model model;
  std::string source;
  std::map<std::string, int> ids;
  std::vector<std::string> names;
  std::vector<Value> constants;
  std::vector<bool> is_const;
  std::vector<int> input_ids, output_ids;
  std::vector<std::string> input_names, output_names, unavailable;  // unavailable[k]: why output k cannot run
  std::vector<std::vector<long>> input_shapes, output_shapes;
  std::vector<int32_t> input_types;
  std::vector<Step> steps;
  std::vector<Chain> chains;
  std::vector<std::vector<bool>> needed;  // per output: steps it needs
  std::size_t fused_nodes = 0;

  int id_of(const std::string& name) {
    auto it = ids.find(name);
    if (it != ids.end()) return it->second;
    const int id = static_cast<int>(names.size());
    ids[name] = id;
    names.push_back(name);
    constants.emplace_back();
    is_const.push_back(false);
    return id;
  }

  void build();
  void fold_constants();
  void probe(std::size_t n, std::vector<std::vector<int64_t>>& shapes) const;
  void fuse(const std::vector<std::vector<int64_t>>& shape2, const std::vector<std::vector<int64_t>>& shape3);
  void compute_needed();
  void run_steps(std::vector<Value>& env, const std::vector<bool>& mask, std::size_t count,
                 std::vector<std::vector<double>>& scratch) const;
  const Value& get(const std::vector<Value>& env, int id) const { return is_const[id] ? constants[id] : env[id]; }
};

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

}  // namespace

void GraphModel::Impl::build() {
  for (const auto& [name, tensor] : model.initializers) {
    const int id = id_of(name);
    constants[id] = graph::from_tensor(tensor);
    is_const[id] = true;
  }
  for (const onnx::ValueInfo& v : model.non_initializer_inputs()) {
    if (!v.has_shape || v.dims.empty())
      throw Error(source + ": graph input '" + v.name + "' has no declared shape (rooml needs (events, ...))");
    if (v.dims[0] >= 0)
      throw Error(source + ": graph input '" + v.name + "' has a fixed batch size of " + std::to_string(v.dims[0]) +
                  " (export the model with a dynamic batch axis, e.g. dynamic_axes={'" + v.name + "': {0: 'batch'}})");
    std::vector<long> shape;
    for (std::size_t d = 1; d < v.dims.size(); ++d) {
      if (v.dims[d] < 0)
        throw Error(source + ": graph input '" + v.name + "' has an unknown size on axis " + std::to_string(d) +
                    " (only the batch axis may be dynamic)");
      shape.push_back(static_cast<long>(v.dims[d]));
    }
    input_ids.push_back(id_of(v.name));
    input_names.push_back(v.name);
    input_shapes.push_back(shape);
    input_types.push_back(v.elem_type);
  }
  std::map<int, std::size_t> producer;
  std::vector<std::string> node_problem;
  for (const onnx::Node& node : model.nodes) {
    Step s;
    s.node = &node;
    s.opset = model.opset_version(node.domain);
    s.kernel = graph::make_kernel(node, source);
    for (const std::string& name : node.inputs) s.in.push_back(name.empty() ? -1 : id_of(name));
    for (const std::string& name : node.outputs) s.out.push_back(name.empty() ? -1 : id_of(name));
    node_problem.push_back(s.kernel ? "" : "unsupported ONNX operator '" + node.op_type + "'" +
                                               (node.domain.empty() ? "" : " (domain " + node.domain + ")") + " in node '" +
                                               node.name + "' of " + source);
    for (int o : s.out)
      if (o >= 0) producer[o] = steps.size();
    steps.push_back(std::move(s));
  }
  // Which tensor outputs can run: every node they depend on must be supported.
  std::vector<bool> keep(steps.size(), false);
  for (const onnx::ValueInfo& v : model.outputs) {
    if (v.elem_type == 0) continue;  // a sequence or map (ZipMap): not a tensor output
    const int id = id_of(v.name);
    std::string problem;
    std::vector<bool> seen(steps.size(), false);
    std::vector<int> stack{id};
    while (!stack.empty() && problem.empty()) {
      const int value = stack.back();
      stack.pop_back();
      auto p = producer.find(value);
      if (p == producer.end()) {
        if (!is_const[value] && std::find(input_ids.begin(), input_ids.end(), value) == input_ids.end())
          problem = "tensor '" + names[value] + "' is neither produced by a node nor a graph input or initializer";
        continue;
      }
      if (seen[p->second]) continue;
      seen[p->second] = true;
      problem = node_problem[p->second];
      for (int i : steps[p->second].in)
        if (i >= 0) stack.push_back(i);
    }
    output_ids.push_back(id);
    output_names.push_back(v.name);
    unavailable.push_back(problem);
    if (problem.empty())
      for (std::size_t i = 0; i < steps.size(); ++i) keep[i] = keep[i] || seen[i];
  }
  if (output_ids.empty()) throw Error(source + ": the graph has no tensor outputs");
  if (std::find(unavailable.begin(), unavailable.end(), std::string()) == unavailable.end()) throw Error(unavailable[0]);
  std::vector<Step> kept;
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (keep[i]) kept.push_back(std::move(steps[i]));
  steps = std::move(kept);
  // Nodes are topologically sorted in a valid ONNX graph; check it, for a clear error.
  std::vector<bool> ready = is_const;
  for (int id : input_ids) ready[id] = true;
  for (const Step& s : steps) {
    for (int i : s.in)
      if (i >= 0 && !ready[i])
        throw Error(source + ": node '" + s.node->name + "' (" + s.node->op_type + ") reads '" + names[i] +
                    "' before it is computed (nodes not in topological order)");
    for (int o : s.out)
      if (o >= 0) ready[o] = true;
  }
}

void GraphModel::Impl::fold_constants() {
  std::vector<Step> rest;
  for (Step& s : steps) {
    bool constant = true;
    for (int i : s.in) constant = constant && (i < 0 || is_const[i]);
    if (!constant) {
      rest.push_back(std::move(s));
      continue;
    }
    Call call{*s.node, s.opset, {}, {}};
    for (int i : s.in) call.in.push_back(i < 0 ? nullptr : &constants[i]);
    std::vector<Value> outs(s.out.size());
    for (auto& v : outs) call.out.push_back(&v);
    try {
      s.kernel(call);
    } catch (const Error& e) {
      throw Error(source + ": " + e.what());
    }
    for (std::size_t k = 0; k < s.out.size(); ++k)
      if (s.out[k] >= 0) {
        constants[s.out[k]] = std::move(outs[k]);
        is_const[s.out[k]] = true;
      }
  }
  steps = std::move(rest);
}

void GraphModel::Impl::run_steps(std::vector<Value>& env, const std::vector<bool>& mask, std::size_t count,
                                 std::vector<std::vector<double>>& scratch) const {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (!mask.empty() && !mask[i]) continue;
    const Step& s = steps[i];
    if (s.chain >= 0) {
      const Chain& chain = chains[s.chain];
      const Value& x = get(env, s.in[0]);
      if (scratch.size() < 2) scratch.resize(2);
      for (auto& b : scratch) b.resize(chain.max_width * kBlock);
      double* a = scratch[0].data();
      double* b = scratch[1].data();
      const std::size_t w = chain.in_width;
      for (std::size_t e = 0; e < count; ++e)
        for (std::size_t f = 0; f < w; ++f) a[f * kBlock + e] = x.data[e * w + f];
      std::size_t width = w;
      for (const Chain::Op& op : chain.ops) {
        if (op.kind == Chain::Op::Kind::Dense) {
          op.dense.apply(a, b, count, kBlock);
          std::swap(a, b);
          width = op.dense.out;
        } else {
          // Whole SIMD groups of lanes (the padding is scratch), so every event is rounded the same way.
          const std::size_t lanes = std::min(kBlock, (count + 7) / 8 * 8);
          for (std::size_t r = 0; r < width; ++r) {
            if (op.kind == Chain::Op::Kind::Silu)
              kernels().silu_inplace(a + r * kBlock, lanes);
            else
              op.activation(a + r * kBlock, lanes);
          }
        }
      }
      Value& y = env[s.out[0]];
      y.resize({static_cast<int64_t>(count), static_cast<int64_t>(width)});
      y.type = x.type;
      for (std::size_t e = 0; e < count; ++e)
        for (std::size_t f = 0; f < width; ++f) y.data[e * width + f] = a[f * kBlock + e];
      continue;
    }
    Call call{*s.node, s.opset, {}, {}};
    for (int id : s.in) call.in.push_back(id < 0 ? nullptr : &get(env, id));
    for (int id : s.out) call.out.push_back(id < 0 ? nullptr : &env[id]);
    s.kernel(call);
  }
}

void GraphModel::Impl::probe(std::size_t n, std::vector<std::vector<int64_t>>& shapes) const {
  std::vector<Value> env(names.size());
  for (std::size_t k = 0; k < input_ids.size(); ++k) {
    std::vector<int64_t> dims{static_cast<int64_t>(n)};
    for (long d : input_shapes[k]) dims.push_back(d);
    Value& v = env[input_ids[k]];
    v.resize(dims);
    std::fill(v.data.begin(), v.data.end(), 0.0);
    v.type = input_types[k];
  }
  std::vector<std::vector<double>> scratch;
  try {
    run_steps(env, {}, n, scratch);
  } catch (const Error& e) {
    throw Error(source + ": evaluating the graph on a probe batch of " + std::to_string(n) + " events failed: " + e.what());
  }
  shapes.assign(names.size(), {});
  for (std::size_t id = 0; id < names.size(); ++id) shapes[id] = get(env, static_cast<int>(id)).shape;
}

void GraphModel::Impl::fuse(const std::vector<std::vector<int64_t>>& shape2,
                            const std::vector<std::vector<int64_t>>& shape3) {
  std::vector<std::vector<std::size_t>> consumers(names.size());
  for (std::size_t i = 0; i < steps.size(); ++i)
    for (int id : steps[i].in)
      if (id >= 0) consumers[id].push_back(i);
  std::vector<bool> is_output(names.size(), false);
  for (int id : output_ids) is_output[id] = true;
  auto batched_matrix = [&](int id) {
    return shape2[id].size() == 2 && shape3[id].size() == 2 && shape2[id][0] == 2 && shape3[id][0] == 3 &&
           shape2[id][1] == shape3[id][1];
  };
  auto only_consumer = [&](int id) -> long {
    if (is_output[id] || consumers[id].size() != 1) return -1;
    return static_cast<long>(consumers[id][0]);
  };
  auto other_outputs_unused = [&](const Step& s) {
    for (std::size_t k = 1; k < s.out.size(); ++k)
      if (s.out[k] >= 0 && (!consumers[s.out[k]].empty() || is_output[s.out[k]])) return false;
    return true;
  };
  // A dense layer from Gemm (transA = 0, constant B and C) or MatMul (constant 2-D B) on batched `x`.
  auto as_dense = [&](const Step& s, int x, Dense& d) {
    if (s.chain >= 0 || s.in.size() < 2 || s.in[0] != x || s.in[1] < 0 || !is_const[s.in[1]] || !batched_matrix(x))
      return false;
    if (!other_outputs_unused(s)) return false;
    const Value& b = constants[s.in[1]];
    if (b.shape.size() != 2) return false;
    const bool gemm = is_op(s, "Gemm");
    if (!gemm && !is_op(s, "MatMul")) return false;
    const Call c{*s.node, s.opset, {}, {}};
    if (gemm && c.attr_int("transA", 0) != 0) return false;
    const bool tb = gemm && c.attr_int("transB", 0) != 0;
    const double alpha = gemm ? c.attr_float("alpha", 1.0) : 1.0, beta = gemm ? c.attr_float("beta", 1.0) : 1.0;
    const auto k = static_cast<std::size_t>(tb ? b.shape[1] : b.shape[0]), n = static_cast<std::size_t>(tb ? b.shape[0] : b.shape[1]);
    if (static_cast<int64_t>(k) != shape2[x][1]) return false;
    d.in = k;
    d.out = n;
    d.weight.assign(n * k, 0.0);
    d.bias.assign(n, 0.0);
    for (std::size_t o = 0; o < n; ++o)
      for (std::size_t i = 0; i < k; ++i) d.weight[o * k + i] = alpha * (tb ? b.data[o * k + i] : b.data[i * n + o]);
    if (gemm && s.in.size() > 2 && s.in[2] >= 0) {
      if (!is_const[s.in[2]]) return false;
      const Value& cv = constants[s.in[2]];
      if (cv.size() == 1) {
        std::fill(d.bias.begin(), d.bias.end(), beta * cv.data[0]);
      } else if (cv.size() == n && (cv.shape.size() == 1 || (cv.shape.size() == 2 && cv.shape[0] == 1))) {
        for (std::size_t o = 0; o < n; ++o) d.bias[o] = beta * cv.data[o];
      } else {
        return false;
      }
    }
    return true;
  };
  std::vector<bool> absorbed(steps.size(), false);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (absorbed[i] || steps[i].chain >= 0) continue;
    Chain chain;
    Dense first;
    if (!as_dense(steps[i], steps[i].in.empty() ? -1 : steps[i].in[0], first)) continue;
    const int input = steps[i].in[0];
    chain.in_width = first.in;
    chain.max_width = std::max(first.in, first.out);
    std::vector<std::size_t> members{i};
    chain.ops.push_back({Chain::Op::Kind::Dense, std::move(first), {}});
    int cur = steps[i].out[0];
    bool bias_open = steps[i].node->op_type == "MatMul";
    for (;;) {
      if (is_output[cur]) break;
      const std::vector<std::size_t>& users = consumers[cur];
      if (users.size() == 1) {
        const std::size_t t = users[0];
        const Step& s = steps[t];
        Dense next;
        if (bias_open && is_op(s, "Add") && s.in.size() == 2) {
          const int other = s.in[0] == cur ? s.in[1] : s.in[0];
          const std::size_t width = chain.ops.back().dense.out;
          if (other >= 0 && is_const[other] && (s.in[0] == cur) != (s.in[1] == cur)) {
            const Value& bv = constants[other];
            if (bv.size() == width && (bv.shape.size() == 1 || (bv.shape.size() == 2 && bv.shape[0] == 1))) {
              for (std::size_t o = 0; o < width; ++o) chain.ops.back().dense.bias[o] += bv.data[o];
              members.push_back(t);
              cur = s.out[0];
              bias_open = false;
              continue;
            }
          }
          break;
        }
        if (Activation f = s.chain < 0 && s.in.size() == 1 ? graph::make_activation(*s.node) : Activation{}) {
          if (!other_outputs_unused(s)) break;
          chain.ops.push_back({Chain::Op::Kind::Activation, {}, std::move(f)});
          members.push_back(t);
          cur = s.out[0];
          bias_open = false;
          continue;
        }
        if (as_dense(s, cur, next)) {
          bias_open = s.node->op_type == "MatMul";
          chain.max_width = std::max(chain.max_width, next.out);
          chain.ops.push_back({Chain::Op::Kind::Dense, std::move(next), {}});
          members.push_back(t);
          cur = s.out[0];
          continue;
        }
        break;
      }
      if (users.size() == 2) {  // SiLU written as x * Sigmoid(x)
        std::size_t sig = users[0], mul = users[1];
        if (!is_op(steps[sig], "Sigmoid")) std::swap(sig, mul);
        if (is_op(steps[sig], "Sigmoid") && is_op(steps[mul], "Mul") && only_consumer(steps[sig].out[0]) == static_cast<long>(mul)) {
          const Step& m = steps[mul];
          const int s_out = steps[sig].out[0];
          if ((m.in[0] == cur && m.in[1] == s_out) || (m.in[1] == cur && m.in[0] == s_out)) {
            chain.ops.push_back({Chain::Op::Kind::Silu, {}, {}});
            members.push_back(sig);
            members.push_back(mul);
            cur = m.out[0];
            bias_open = false;
            continue;
          }
        }
      }
      break;
    }
    for (std::size_t m : members) absorbed[m] = true;
    const std::size_t last = *std::max_element(members.begin(), members.end());
    Step fused;
    fused.node = steps[last].node;
    fused.in = {input};
    fused.out = {cur};
    fused.chain = static_cast<int>(chains.size());
    fused_nodes += members.size();
    chains.push_back(std::move(chain));
    steps[last] = std::move(fused);
    absorbed[last] = false;
    for (std::size_t m : members)
      if (m != last) steps[m].chain = -2;  // removed below
  }
  std::vector<Step> rest;
  for (Step& s : steps)
    if (s.chain != -2) rest.push_back(std::move(s));
  steps = std::move(rest);
}

void GraphModel::Impl::compute_needed() {
  std::map<int, std::size_t> producer;
  for (std::size_t i = 0; i < steps.size(); ++i)
    for (int o : steps[i].out)
      if (o >= 0) producer[o] = i;
  needed.assign(output_ids.size(), std::vector<bool>(steps.size(), false));
  for (std::size_t k = 0; k < output_ids.size(); ++k) {
    if (!unavailable[k].empty()) continue;
    std::vector<int> stack{output_ids[k]};
    while (!stack.empty()) {
      const int v = stack.back();
      stack.pop_back();
      auto p = producer.find(v);
      if (p == producer.end() || needed[k][p->second]) continue;
      needed[k][p->second] = true;
      for (int i : steps[p->second].in)
        if (i >= 0) stack.push_back(i);
    }
  }
}

GraphModel::GraphModel() : impl_(std::make_unique<Impl>()) {}
GraphModel::~GraphModel() = default;

std::shared_ptr<const GraphModel> GraphModel::from_model(const onnx::Model& model) {
  std::shared_ptr<GraphModel> g(new GraphModel());
  Impl& m = *g->impl_;
  m.model = model;
  m.source = model.source_name;
  m.build();
  m.fold_constants();
  std::vector<std::vector<int64_t>> shape2, shape3;
  m.probe(2, shape2);
  m.probe(3, shape3);
  for (std::size_t k = 0; k < m.output_ids.size(); ++k) {
    m.output_shapes.emplace_back();
    if (!m.unavailable[k].empty()) continue;
    const auto& a = shape2[m.output_ids[k]];
    const auto& b = shape3[m.output_ids[k]];
    const bool batched = !a.empty() && a.size() == b.size() && a[0] == 2 && b[0] == 3 &&
                         std::equal(a.begin() + 1, a.end(), b.begin() + 1);
    if (!batched) {
      m.unavailable[k] = m.source + ": graph output '" + m.output_names[k] + "' has no batch axis first (shape " +
                         shape_text(a) + " for 2 events, " + shape_text(b) + " for 3)";
      continue;
    }
    for (std::size_t d = 1; d < a.size(); ++d) m.output_shapes[k].push_back(static_cast<long>(a[d]));
  }
  m.fuse(shape2, shape3);
  m.compute_needed();
  return g;
}

std::shared_ptr<const GraphModel> GraphModel::from_bytes(const std::string& bytes, const std::string& source) {
  return from_model(onnx::parse_model(bytes, source));
}

std::shared_ptr<const GraphModel> GraphModel::from_file(const std::string& path) {
  return from_model(onnx::read_model_file(path));
}

const std::vector<std::string>& GraphModel::input_names() const { return impl_->input_names; }
const std::vector<std::string>& GraphModel::output_names() const { return impl_->output_names; }
const std::vector<long>& GraphModel::input_shape(std::size_t k) const { return impl_->input_shapes.at(k); }
const std::vector<long>& GraphModel::output_shape(std::size_t k) const { return impl_->output_shapes.at(k); }
std::size_t GraphModel::n_fused_nodes() const { return impl_->fused_nodes; }
const std::string& GraphModel::source() const { return impl_->source; }

namespace {
std::size_t width_of(const std::vector<long>& shape) {
  std::size_t w = 1;
  for (long d : shape) w *= static_cast<std::size_t>(d);
  return w;
}
std::size_t find_name(const std::vector<std::string>& names, const std::string& name, const std::string& what,
                      const std::string& source) {
  for (std::size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return k;
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "'" : ", '") + n + "'";
  throw Error(source + ": the graph has no " + what + " '" + name + "' (its " + what + "s: " + known + ")");
}
}  // namespace

std::size_t GraphModel::input_width(std::size_t k) const { return width_of(input_shape(k)); }
std::size_t GraphModel::output_width(std::size_t k) const { return width_of(output_shape(k)); }
std::size_t GraphModel::output_index(const std::string& name) const {
  return find_name(impl_->output_names, name, "output", impl_->source);
}
std::size_t GraphModel::input_index(const std::string& name) const {
  return find_name(impl_->input_names, name, "input", impl_->source);
}

struct GraphModel::Scratch {
  std::vector<Value> env;
  std::vector<std::vector<double>> buffers;
};

std::shared_ptr<GraphModel::Scratch> GraphModel::make_scratch() const {
  auto s = std::make_shared<Scratch>();
  s->env.resize(impl_->names.size());
  return s;
}

namespace {
// Runs the steps `mask` selects on one block; the inputs start at event `begin` of each input array.
void run_block(const GraphModel::Impl& m, const GraphModel& g, std::vector<Value>& env,
               std::vector<std::vector<double>>& buffers, const std::vector<const double*>& inputs,
               std::size_t begin, std::size_t count, const std::vector<bool>& mask) {
  for (std::size_t k = 0; k < m.input_ids.size(); ++k) {
    Value& v = env[m.input_ids[k]];
    v.shape.assign(1, static_cast<int64_t>(count));
    for (long d : m.input_shapes[k]) v.shape.push_back(d);
    v.type = m.input_types[k];
    const std::size_t w = g.input_width(k);
    v.data.assign(inputs[k] + begin * w, inputs[k] + (begin + count) * w);
  }
  try {
    m.run_steps(env, mask, count, buffers);
  } catch (const Error& e) {
    throw Error(m.source + ": events " + std::to_string(begin) + ".." + std::to_string(begin + count - 1) + ": " + e.what());
  }
}

const Value& checked_output(const GraphModel::Impl& m, const std::vector<Value>& env, std::size_t k, std::size_t count,
                            std::size_t w) {
  const Value& v = m.get(env, m.output_ids[k]);
  if (v.type == onnx::data_type::kString)
    throw Error(m.source + ": graph output '" + m.output_names[k] + "' holds strings, not numbers");
  if (v.data.size() != count * w || v.shape.empty() || v.shape[0] != static_cast<int64_t>(count))
    throw Error(m.source + ": graph output '" + m.output_names[k] + "' has shape " + shape_text(v.shape) +
                " for a block of " + std::to_string(count) + " events");
  return v;
}
}  // namespace

void GraphModel::evaluate_block(Scratch& scratch, const std::vector<const double*>& inputs, std::size_t n,
                                std::size_t output, double* out) const {
  const Impl& m = *impl_;
  if (output >= m.output_ids.size()) throw Error(m.source + ": output index " + std::to_string(output) + " out of range");
  if (!m.unavailable[output].empty()) throw Error(m.unavailable[output]);
  run_block(m, *this, scratch.env, scratch.buffers, inputs, 0, n, m.needed[output]);
  const std::size_t w = output_width(output);
  const Value& v = checked_output(m, scratch.env, output, n, w);
  std::copy(v.data.begin(), v.data.end(), out);
}

void GraphModel::evaluate(const std::vector<const double*>& inputs, std::size_t n, const std::vector<std::size_t>& outputs,
                          const std::vector<double*>& out, int threads) const {
  const Impl& m = *impl_;
  if (inputs.size() != m.input_ids.size())
    throw Error(m.source + ": " + std::to_string(inputs.size()) + " inputs given, the graph has " +
                std::to_string(m.input_ids.size()));
  if (outputs.size() != out.size()) throw Error(m.source + ": output list and buffers differ in length");
  std::vector<bool> mask(m.steps.size(), false);
  for (std::size_t k : outputs) {
    if (k >= m.output_ids.size()) throw Error(m.source + ": output index " + std::to_string(k) + " out of range");
    if (!m.unavailable[k].empty()) throw Error(m.unavailable[k]);
    for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = mask[i] || m.needed[k][i];
  }
  const int workers = threads > 0 ? threads : default_threads();
  std::vector<std::shared_ptr<Scratch>> spaces(static_cast<std::size_t>(workers));
  for_each_block(n, workers, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    if (!spaces[worker]) spaces[worker] = make_scratch();
    Scratch& sp = *spaces[worker];
    run_block(m, *this, sp.env, sp.buffers, inputs, begin, count, mask);
    for (std::size_t j = 0; j < outputs.size(); ++j) {
      const std::size_t w = output_width(outputs[j]);
      const Value& v = checked_output(m, sp.env, outputs[j], count, w);
      std::copy(v.data.begin(), v.data.end(), out[j] + begin * w);
    }
  });
}

}  // namespace rooml
