// Builds small IR graphs in code and checks a pass keeps their outputs (the pass test
// contract: build, run before and after on the same seeded inputs, compare, assert on
// structure).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "op_test_util.hpp"
#include "ops/infer.hpp"
#include "passes/pass.hpp"
#include "runtime/ref_executor.hpp"

namespace lithe::test {

/// A graph under construction. Values are referred to by name.
class GraphBuilder {
 public:
  explicit GraphBuilder(int opset = 13) : opset_(opset) { g_->opsets[""] = opset; }

  GraphBuilder& input(const std::string& name, Shape shape, DType t = DType::kFloat32) {
    g_->inputs.push_back(g_->add_value(name, {t, true, std::move(shape)}));
    return *this;
  }
  /// A constant filled with seeded values in [-1, 1) (or `fill` when given).
  GraphBuilder& constant(const std::string& name, Shape shape, std::vector<float> fill = {}) {
    Tensor t(DType::kFloat32, shape);
    std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>()(name)));
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data<float>()[i] = fill.empty() ? u(rng) : fill[static_cast<size_t>(i) % fill.size()];
    return constant_tensor(name, std::move(t));
  }
  GraphBuilder& constant_tensor(const std::string& name, Tensor t) {
    int id = g_->add_value(name, {t.dtype(), true, t.shape()});
    g_->values[static_cast<size_t>(id)].constant = std::move(t);
    return *this;
  }
  GraphBuilder& constant_i64(const std::string& name, std::vector<int64_t> v) {
    Tensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
    return constant_tensor(name, std::move(t));
  }
  /// A node of lithe's own domain (version 1), as node().
  ir::Node& lithe_node(const std::string& op, const std::vector<std::string>& ins,
                       const std::vector<std::string>& outs, const std::string& name = "") {
    ir::Node& n = node(op, ins, outs, name);
    n.domain = "lithe";
    n.opset = 1;
    return n;
  }
  /// Adds a node; outputs that do not exist yet are created. "" is an omitted input.
  ir::Node& node(const std::string& op, const std::vector<std::string>& ins,
                 const std::vector<std::string>& outs, const std::string& name = "") {
    ir::Node n;
    n.op_type = op;
    n.opset = opset_;
    n.name = name.empty() ? op + "_" + std::to_string(g_->nodes.size()) : name;
    for (const auto& i : ins) {
      int id = i.empty() ? -1 : g_->find_value(i);
      if (!i.empty() && id < 0) ADD_FAILURE() << "unknown value " << i;
      n.inputs.push_back(id);
    }
    for (const auto& o : outs) {
      int id = g_->find_value(o);
      n.outputs.push_back(id >= 0 ? id : g_->add_value(o));
    }
    g_->add_node(std::move(n));
    return g_->nodes.back();
  }
  static ir::Attribute ints(std::vector<int64_t> v) { return attr_is(std::move(v)); }
  static ir::Attribute i(int64_t v) { return attr_i(v); }
  static ir::Attribute f(float v) { return attr_f(v); }
  static ir::Attribute s(std::string v) { return attr_s(std::move(v)); }
  GraphBuilder& output(const std::string& name) {
    g_->outputs.push_back(g_->find_value(name));
    return *this;
  }
  /// Verifies, infers types and returns the graph.
  std::shared_ptr<ir::Graph> build() {
    g_->topo_sort();
    ir::verify(*g_);
    ops::infer_graph(*g_);
    return g_;
  }

 private:
  int opset_;
  std::shared_ptr<ir::Graph> g_ = std::make_shared<ir::Graph>();
};

/// Seeded inputs in [-1, 1) for every graph input (floats; ints get small values).
inline std::vector<Tensor> seeded_inputs(const ir::Graph& g, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<Tensor> ins;
  for (int id : g.inputs) {
    const auto& t = g.values[static_cast<size_t>(id)].type;
    Tensor x(DType::kFloat32, t.dims);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
    ins.push_back(t.dtype == DType::kFloat32 ? x : x.cast(t.dtype));
  }
  return ins;
}

/// Same count, dtypes, shapes and bytes.
inline bool same_bits(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].dtype() != b[k].dtype() || a[k].shape() != b[k].shape() ||
        std::memcmp(a[k].raw(), b[k].raw(), a[k].nbytes()) != 0)
      return false;
  return true;
}

inline std::vector<Tensor> run_graph(const std::shared_ptr<const ir::Graph>& g,
                                     const std::vector<Tensor>& ins) {
  runtime::RefExecutor ex(g);
  return ex.run(ins);
}

/// Expects every output of `after` to match `before` within `tol` (absolute, scaled by the
/// output's range) and to have the same shape and dtype.
inline void expect_same_outputs(const std::vector<Tensor>& before, const std::vector<Tensor>& after,
                                double tol = 1e-5) {
  ASSERT_EQ(before.size(), after.size());
  for (size_t k = 0; k < before.size(); ++k) {
    ASSERT_EQ(before[k].dtype(), after[k].dtype()) << "output " << k;
    ASSERT_EQ(before[k].shape(), after[k].shape()) << "output " << k;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < before[k].numel(); ++i) {
      lo = std::min(lo, before[k].at_double(i));
      hi = std::max(hi, before[k].at_double(i));
    }
    double scale = std::max(1.0, hi - lo);
    for (int64_t i = 0; i < before[k].numel(); ++i)
      ASSERT_NEAR(before[k].at_double(i), after[k].at_double(i), tol * scale)
          << "output " << k << " element " << i;
  }
}

/// What run_pass_checked saw: how often the pass fired, and the graph's outputs before and after.
struct PassRun {
  int fired = 0;
  std::vector<Tensor> before, after;
};

/// Runs pass `name` `times` times on `g` and verifies the graph; with `compare`, also runs the
/// graph before and after on the same seeded inputs.
inline PassRun run_pass_checked(const std::shared_ptr<ir::Graph>& g, const std::string& name,
                                int times = 1, bool compare = true) {
  PassRun r;
  auto ins = seeded_inputs(*g);
  if (compare) r.before = run_graph(g, ins);
  for (int i = 0; i < times; ++i) r.fired += passes::run_pass(*g, *passes::find_pass(name));
  ir::verify(*g);
  if (compare) r.after = run_graph(g, ins);
  return r;
}

/// Number of nodes with this op type.
inline int count_ops(const ir::Graph& g, const std::string& op, const std::string& domain = "") {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op_type == op && node.domain == domain;
  return n;
}

/// Number of nodes with this op type in any domain (count_ops: in one domain).
inline int count_any_domain(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node& node : g.nodes) n += node.op_type == op;
  return n;
}

/// The cosine of the angle between two tensors' values (as doubles).
inline double cosine(const Tensor& a, const Tensor& b) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    ab += a.at_double(i) * b.at_double(i);
    aa += a.at_double(i) * a.at_double(i);
    bb += b.at_double(i) * b.at_double(i);
  }
  return ab / std::sqrt(aa * bb + 1e-30);
}

}  // namespace lithe::test
