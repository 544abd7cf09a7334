#include "runtime/ref_executor.hpp"

#include "ops/infer.hpp"

namespace lithe::runtime {
namespace {

// Values of one graph activation, with a link to the enclosing graph's scope for the
// outer-scope names that If/Loop/Scan bodies read.
struct Scope {
  const ir::Graph* graph;
  std::vector<Tensor> values;
  const Scope* parent;

  const Tensor* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      int id = s->graph->find_value(name);
      if (id >= 0) {
        const Tensor& t = s->values[static_cast<size_t>(id)];
        if (t.defined()) return &t;
        const ir::Value& v = s->graph->values[static_cast<size_t>(id)];
        if (v.constant) return &*v.constant;
      }
    }
    return nullptr;
  }
};

bool has_subgraph(const ir::Node& n) {
  for (const auto& [name, a] : n.attrs)
    if (a.kind == ir::Attribute::Kind::kGraph || a.kind == ir::Attribute::Kind::kGraphs)
      return true;
  return false;
}

std::vector<Tensor> run_graph(const ir::Graph& g, const std::vector<Tensor>& inputs,
                              const Scope* parent, const std::vector<int>* last_use,
                              const RefExecutor::Observer* observer);

class ScopedRunner : public ops::SubgraphRunner {
 public:
  explicit ScopedRunner(const Scope* scope) : scope_(scope) {}
  std::vector<Tensor> run(const ir::Graph& body, const std::vector<Tensor>& inputs) override {
    return run_graph(body, inputs, scope_, nullptr, nullptr);
  }

 private:
  const Scope* scope_;
};

std::vector<Tensor> run_graph(const ir::Graph& g, const std::vector<Tensor>& inputs,
                              const Scope* parent, const std::vector<int>* last_use,
                              const RefExecutor::Observer* observer) {
  Scope scope{&g, std::vector<Tensor>(g.values.size()), parent};
  if (inputs.size() != g.inputs.size())
    fail("graph '", g.name, "' expects ", g.inputs.size(), " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    scope.values[static_cast<size_t>(g.inputs[i])] = inputs[i];
  for (size_t id = 0; id < g.values.size(); ++id)
    if (g.values[id].constant) scope.values[id] = *g.values[id].constant;
  // Outer-scope references are resolved by name.
  for (int id : g.outer_refs) {
    const std::string& name = g.values[static_cast<size_t>(id)].name;
    const Tensor* t = parent ? parent->lookup(name) : nullptr;
    if (!t) fail("graph '", g.name, "': outer-scope value '", name, "' is not available");
    scope.values[static_cast<size_t>(id)] = *t;
  }
  ScopedRunner runner(&scope);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const ir::Node& node = g.nodes[n];
    const ops::OpDef& op = ops::require_op(node);
    std::vector<ir::TensorType> in_types(node.inputs.size());
    std::vector<const ir::TensorType*> type_ptrs(node.inputs.size(), nullptr);
    std::vector<const Tensor*> in_values(node.inputs.size(), nullptr);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      int v = node.inputs[i];
      if (v < 0) continue;
      const Tensor& t = scope.values[static_cast<size_t>(v)];
      if (!t.defined())
        fail(node.label(), ": input '", g.values[static_cast<size_t>(v)].name,
             "' has no value (an optional output that was not produced?)");
      in_types[i] = {t.dtype(), true, t.shape()};
      type_ptrs[i] = &in_types[i];
      in_values[i] = &t;
    }
    std::vector<ir::TensorType> out_types = ops::infer_node(node, op, type_ptrs, in_values);
    std::vector<Tensor> outs(node.outputs.size());
    std::vector<Tensor*> out_ptrs(node.outputs.size(), nullptr);
    try {
      for (size_t i = 0; i < node.outputs.size(); ++i) {
        if (node.outputs[i] < 0) continue;
        const ir::TensorType& ot = out_types[i];
        if (ot.fully_known() && ot.dtype != DType::kUndefined) outs[i] = Tensor(ot.dtype, ot.dims);
        out_ptrs[i] = &outs[i];
      }
      ops::ComputeContext ctx(node, in_values, out_ptrs, &runner);
      op.compute(ctx);
    } catch (const Error& e) {
      throw e.with_context(node.label());
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      int v = node.outputs[i];
      if (v < 0) continue;
      if (!outs[i].defined() && out_types[i].dtype != DType::kUndefined)
        fail_runtime(node.label(), ": output ", i, " was not produced");
      scope.values[static_cast<size_t>(v)] = std::move(outs[i]);
    }
    if (observer && *observer) {
      std::vector<Tensor> produced;
      for (int v : node.outputs) produced.push_back(v >= 0 ? scope.values[static_cast<size_t>(v)] : Tensor());
      (*observer)(node, produced);
    }
    // Free intermediates after their last use.
    if (last_use) {
      for (int v : node.inputs)
        if (v >= 0 && (*last_use)[static_cast<size_t>(v)] == static_cast<int>(n) &&
            !g.values[static_cast<size_t>(v)].constant)
          scope.values[static_cast<size_t>(v)] = Tensor();
    }
  }
  std::vector<Tensor> outputs;
  for (int v : g.outputs) {
    const Tensor& t = scope.values[static_cast<size_t>(v)];
    if (!t.defined()) fail("graph output '", g.values[static_cast<size_t>(v)].name, "' was not produced");
    outputs.push_back(t);
  }
  return outputs;
}

}  // namespace

void check_tensor_type(const Tensor& t, const ir::TensorType& expected, const std::string& what) {
  if (expected.dtype != DType::kUndefined && t.dtype() != expected.dtype)
    fail("input '", what, "': expected element type ", dtype_name(expected.dtype), ", got ",
         dtype_name(t.dtype()));
  if (!expected.has_shape) return;
  bool ok = t.shape().size() == expected.dims.size();
  for (size_t i = 0; ok && i < expected.dims.size(); ++i)
    ok = expected.dims[i] < 0 || expected.dims[i] == t.shape()[i];
  if (!ok)
    fail("input '", what, "': expected shape ", shape_str(expected.dims), ", got ",
         shape_str(t.shape()));
}

RefExecutor::RefExecutor(std::shared_ptr<const ir::Graph> graph) : graph_(std::move(graph)) {
  const ir::Graph& g = *graph_;
  bool control_flow = false;
  for (const ir::Node& n : g.nodes) {
    ops_.push_back(&ops::require_op(n));
    control_flow |= has_subgraph(n);
  }
  // Graphs with subgraphs keep every value alive (bodies read outer values by name).
  last_use_.assign(g.values.size(), control_flow ? static_cast<int>(g.nodes.size()) : -1);
  if (!control_flow) {
    for (size_t n = 0; n < g.nodes.size(); ++n)
      for (int v : g.nodes[n].inputs)
        if (v >= 0) last_use_[static_cast<size_t>(v)] = static_cast<int>(n);
    for (int v : g.outputs) last_use_[static_cast<size_t>(v)] = static_cast<int>(g.nodes.size());
  }
}

std::vector<Tensor> RefExecutor::run(const std::vector<Tensor>& inputs) const {
  const ir::Graph& g = *graph_;
  if (inputs.size() != g.inputs.size())
    fail("model expects ", g.inputs.size(), " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Value& v = g.values[static_cast<size_t>(g.inputs[i])];
    if (!inputs[i].defined()) fail("input '", v.name, "' is missing");
    check_tensor_type(inputs[i], v.type, v.name);
  }
  return run_graph(g, inputs, nullptr, &last_use_, &observer_);
}

}  // namespace lithe::runtime
