#include "runtime/ref_executor.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/memory.hpp"
#include "core/tensor_check.hpp"
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

// A planned run of the top-level graph: the plan, the arena and the Concats whose inputs
// are (partly) already in their slices.
struct Planned {
  const plan::MemoryPlan* plan;
  std::byte* arena;
  const std::vector<char>* concat_in_place;
};

std::vector<Tensor> run_graph(const ir::Graph& g, const std::vector<Tensor>& inputs,
                              const Scope* parent, const std::vector<int>* last_use,
                              const RefExecutor::Observer* observer,
                              const Planned* planned = nullptr);

class ScopedRunner : public ops::SubgraphRunner {
 public:
  explicit ScopedRunner(const Scope* scope) : scope_(scope) {}
  std::vector<Tensor> run(const ir::Graph& body, const std::vector<Tensor>& inputs) override {
    return run_graph(body, inputs, scope_, nullptr, nullptr);
  }

 private:
  const Scope* scope_;
};

bool same_type(const ir::TensorType& a, DType dtype, const Shape& dims) {
  return a.dtype == dtype && a.dims == dims;
}

// The arena view of planned value v (its static type from the graph).
Tensor arena_view(const ir::Graph& g, const Planned& pl, int v) {
  const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
  return Tensor::borrow(t.dtype, t.dims, nullptr,
                        pl.arena + pl.plan->offset[static_cast<size_t>(v)]);
}

bool in_arena(const Planned* pl, int v) {
  return pl && v >= 0 && pl->plan->offset[static_cast<size_t>(v)] >= 0;
}

// A value the plan stores as strided rows: computed densely, then scattered into its rows.
bool strided(const Planned* pl, int v) { return pl && pl->plan->strided(v); }

// Runs one node: infers its output types from the actual inputs, gives it outputs (arena
// views for planned values, fresh tensors otherwise) and computes them.
void run_node(const ir::Graph& g, const ir::Node& node, size_t n, Scope& scope,
              ScopedRunner& runner, const Planned* planned) {
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
      const int v = node.outputs[i];
      if (v < 0) continue;
      const ir::TensorType& ot = out_types[i];
      out_ptrs[i] = &outs[i];
      if (in_arena(planned, v) && !strided(planned, v)) {
        const ir::TensorType& pt = g.values[static_cast<size_t>(v)].type;
        if (ot.fully_known() && !same_type(pt, ot.dtype, ot.dims))
          fail_runtime("output '", g.values[static_cast<size_t>(v)].name, "' is ", ot.str(),
                       " at run time, but the memory plan holds ", pt.str());
        outs[i] = arena_view(g, *planned, v);
        // Kernels write into zero-filled outputs; an in-place output already holds input 0
        // and a Concat's output already holds the inputs written into their slices.
        const bool holds_data = planned->plan->in_place[n] || (*planned->concat_in_place)[n];
        if (!(i == 0 && holds_data)) std::memset(outs[i].raw(), 0, outs[i].nbytes());
        continue;
      }
      if (ot.fully_known() && ot.dtype != DType::kUndefined) outs[i] = Tensor(ot.dtype, ot.dims);
    }
    if (planned && (*planned->concat_in_place)[n]) {
      concat_into_slices(node, in_values, outs[0]);
    } else {
      ops::ComputeContext ctx(node, in_values, out_ptrs, &runner);
      op.compute(ctx);
    }
  } catch (const Error& e) {
    throw e.with_context(node.label());
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    int v = node.outputs[i];
    if (v < 0) continue;
    if (!outs[i].defined() && out_types[i].dtype != DType::kUndefined)
      fail_runtime(node.label(), ": output ", i, " was not produced");
    if (strided(planned, v)) {
      scatter_rows(outs[i], *planned->plan, v, planned->arena, g, node);
    } else if (in_arena(planned, v)) {
      // A kernel that replaced its output (ComputeContext::set_output) gets it copied into
      // its arena bytes, where the plan's aliases expect it.
      Tensor view = arena_view(g, *planned, v);
      if (outs[i].raw() != view.raw()) {
        if (!outs[i].defined() || outs[i].dtype() != view.dtype() ||
            outs[i].shape() != view.shape())
          fail_runtime(node.label(), ": output '", g.values[static_cast<size_t>(v)].name, "' is ",
                       outs[i].defined() ? dtype_name(outs[i].dtype()) : "undefined", "[",
                       shape_str(outs[i].shape()), "], but the memory plan holds ",
                       g.values[static_cast<size_t>(v)].type.str());
        if (view.nbytes()) std::memmove(view.raw(), outs[i].raw(), view.nbytes());
      }
      outs[i] = std::move(view);
    }
    scope.values[static_cast<size_t>(v)] = std::move(outs[i]);
  }
}

std::vector<Tensor> run_graph(const ir::Graph& g, const std::vector<Tensor>& inputs,
                              const Scope* parent, const std::vector<int>* last_use,
                              const RefExecutor::Observer* observer, const Planned* planned) {
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
    if (planned && planned->plan->skip[n]) {
      // Nothing to compute: the output bytes already hold the result.
      for (int v : node.outputs)
        if (v >= 0) scope.values[static_cast<size_t>(v)] = arena_view(g, *planned, v);
    } else {
      run_node(g, node, n, scope, runner, planned);
    }
    if (observer && *observer) {
      std::vector<Tensor> produced;
      for (int v : node.outputs) {
        if (v < 0) {
          produced.emplace_back();
          continue;
        }
        // Arena bytes are reused by later nodes: the observer gets a copy it may keep.
        const Tensor& t = scope.values[static_cast<size_t>(v)];
        produced.push_back(in_arena(planned, v) && !strided(planned, v) ? t.clone() : t);
      }
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
    if (!t.defined())
      fail("graph output '", g.values[static_cast<size_t>(v)].name, "' was not produced");
    outputs.push_back(t);
  }
  return outputs;
}

}  // namespace

void scatter_rows(const Tensor& dense, const plan::MemoryPlan& p, int v, std::byte* arena,
                  const ir::Graph& g, const ir::Node& producer) {
  const size_t i = static_cast<size_t>(v);
  if (!dense.defined() || static_cast<int64_t>(dense.nbytes()) != p.bytes[i])
    fail_runtime(producer.label(), ": output '", g.values[i].name,
                 "' does not match the memory plan (", p.bytes[i], " bytes)");
  const int64_t rb = p.row_bytes[i], rs = p.row_stride[i];
  const auto* src = static_cast<const unsigned char*>(dense.raw());
  auto* dst = reinterpret_cast<unsigned char*>(arena + p.offset[i]);
  for (int64_t r = 0; r * rb < p.bytes[i]; ++r)
    std::memcpy(dst + r * rs, src + r * rb, static_cast<size_t>(rb));
}

Tensor gather_rows(const plan::MemoryPlan& p, int v, const std::byte* arena, const ir::Graph& g) {
  const size_t i = static_cast<size_t>(v);
  Tensor dense(g.values[i].type.dtype, g.values[i].type.dims);
  if (static_cast<int64_t>(dense.nbytes()) != p.bytes[i])
    fail_runtime("value '", g.values[i].name, "' does not match the memory plan (", p.bytes[i],
                 " bytes)");
  const int64_t rb = p.row_bytes[i], rs = p.row_stride[i];
  const auto* src = reinterpret_cast<const unsigned char*>(arena + p.offset[i]);
  auto* dst = static_cast<unsigned char*>(dense.raw());
  for (int64_t r = 0; r * rb < p.bytes[i]; ++r)
    std::memcpy(dst + r * rb, src + r * rs, static_cast<size_t>(rb));
  return dense;
}

void concat_into_slices(const ir::Node& node, const std::vector<const Tensor*>& ins, Tensor& out) {
  const Shape& dims = out.shape();
  ops::NodeAttrs attrs(node);
  int64_t axis = attrs.opset() < 4 ? attrs.attr_int("axis", 1) : attrs.attr_int("axis");
  const int64_t rank = static_cast<int64_t>(dims.size());
  if (axis < -rank || axis >= rank) fail("Concat axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
  if (outer <= 0 || out.nbytes() == 0) return;
  const size_t row = out.nbytes() / static_cast<size_t>(outer);
  auto* dst = static_cast<unsigned char*>(out.raw());
  size_t at = 0;
  for (const Tensor* in : ins) {
    if (!in) fail("Concat input is missing");
    const size_t part = in->nbytes() / static_cast<size_t>(outer);
    const auto* src = static_cast<const unsigned char*>(in->raw());
    // An input the plan placed in its slice was written there by its producer.
    if (part && src != dst + at)
      for (int64_t o = 0; o < outer; ++o)
        std::memmove(dst + static_cast<size_t>(o) * row + at, src + static_cast<size_t>(o) * part,
                     part);
    at += part;
  }
}

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
  check_bool_bytes(t, str_cat("input '", what, "'"));
}

RefExecutor::RefExecutor(std::shared_ptr<const ir::Graph> graph, const plan::MemoryPlan* plan)
    : graph_(std::move(graph)) {
  const ir::Graph& g = *graph_;
  bool control_flow = false;
  for (const ir::Node& n : g.nodes) {
    ops_.push_back(&ops::require_op(n));
    control_flow |= ir::has_subgraph(n);
  }
  // Graphs with subgraphs keep every value alive (bodies read outer values by name).
  last_use_.assign(g.values.size(), control_flow ? static_cast<int>(g.nodes.size()) : -1);
  if (!control_flow) {
    for (size_t n = 0; n < g.nodes.size(); ++n)
      for (int v : g.nodes[n].inputs)
        if (v >= 0) last_use_[static_cast<size_t>(v)] = static_cast<int>(n);
    for (int v : g.outputs) last_use_[static_cast<size_t>(v)] = static_cast<int>(g.nodes.size());
  }
  if (plan) set_plan(*plan);
}

void RefExecutor::set_plan(const plan::MemoryPlan& p) {
  const ir::Graph& g = *graph_;
  const size_t nv = g.values.size(), nn = g.nodes.size();
  if (p.offset.size() != nv || p.bytes.size() != nv || p.alias_of.size() != nv ||
      p.in_place.size() != nn || p.skip.size() != nn)
    fail("memory plan does not match graph '", g.name, "' (", nv, " values, ", nn, " nodes)");
  // Alias chains must end: the Concat check below walks them. One pass over all values
  // (0 unseen, 1 on the current walk, 2 known to end), so a hostile chain costs linear time.
  std::vector<char> state(nv, 0);
  for (size_t v = 0; v < nv; ++v) {
    std::vector<size_t> walk;
    int u = static_cast<int>(v);
    while (u >= 0 && state[static_cast<size_t>(u)] == 0) {
      state[static_cast<size_t>(u)] = 1;
      walk.push_back(static_cast<size_t>(u));
      const int a = p.alias_of[static_cast<size_t>(u)];
      if (a < -1 || a >= static_cast<int>(nv))
        fail("memory plan: value '", g.values[static_cast<size_t>(u)].name,
             "' aliases value index ", a, ", out of range");
      u = a;
    }
    if (u >= 0 && state[static_cast<size_t>(u)] == 1)
      fail("memory plan: the aliases of value '", g.values[static_cast<size_t>(u)].name,
           "' form a cycle");
    for (size_t w : walk) state[w] = 2;
  }
  for (size_t v = 0; v < nv; ++v) {
    if (p.offset[v] < 0) continue;
    const ir::Value& val = g.values[v];
    const int64_t need =
        val.type.fully_known()
            ? static_cast<int64_t>(shape_numel(val.type.dims) * dtype_size(val.type.dtype))
            : -1;
    if (need < 0 || val.producer < 0 || val.constant || need > p.bytes[v] ||
        p.offset[v] + p.extent(static_cast<int>(v)) > p.arena_bytes)
      fail("memory plan: value '", val.name, "' cannot live at arena offset ", p.offset[v]);
    // Kernels read and write the value through typed pointers: its offset (and a strided
    // value's row stride) must keep every element aligned to its size.
    const auto elem = static_cast<int64_t>(dtype_size(val.type.dtype));
    const int64_t stride = p.strided(static_cast<int>(v)) ? p.row_stride[v] : 0;
    if (elem > 1 && (p.offset[v] % elem != 0 || stride % elem != 0))
      fail("memory plan: value '", val.name, "' at arena offset ", p.offset[v],
           stride ? str_cat(" with row stride ", stride) : std::string(), " is not aligned to its ",
           elem, "-byte elements");
  }
  concat_in_place_.assign(nn, 0);
  for (size_t n = 0; n < nn; ++n) {
    const ir::Node& node = g.nodes[n];
    const bool view_op =
        node.domain.empty() &&
        (node.op_type == "Reshape" || node.op_type == "Flatten" || node.op_type == "Squeeze" ||
         node.op_type == "Unsqueeze" || node.op_type == "Identity");
    const bool concat = node.domain.empty() && node.op_type == "Concat" && node.outputs.size() == 1;
    const bool split = node.domain.empty() && node.op_type == "Split";
    if (p.skip[n] && !view_op && !concat && !split)
      fail("memory plan: ", node.label(),
           " is marked skipped, but only views, Concat and Split can be");
    if (p.skip[n] && split) {
      for (int v : node.outputs)
        if (v < 0 || p.offset[static_cast<size_t>(v)] < 0)
          fail("memory plan: ", node.label(), " is skipped, but an output is not in the arena");
      continue;
    }
    const int out = node.outputs.empty() ? -1 : node.outputs[0];
    if ((p.skip[n] || p.in_place[n]) && (out < 0 || p.offset[static_cast<size_t>(out)] < 0))
      fail("memory plan: ", node.label(),
           " is skipped or in place, but its output is not in the arena");
    if (!concat || out < 0 || p.offset[static_cast<size_t>(out)] < 0) continue;
    bool any = false;
    for (int v : node.inputs) {
      for (int a = v >= 0 ? p.alias_of[static_cast<size_t>(v)] : -1; a >= 0 && !any;
           a = p.alias_of[static_cast<size_t>(a)])
        any = a == out;
    }
    if (any) concat_in_place_[n] = 1;
  }
  plan_ = p;
}

std::vector<Tensor> RefExecutor::run(const std::vector<Tensor>& inputs, std::byte* arena,
                                     const Observer* observer) const {
  const Observer* obs = observer ? observer : &observer_;
  const ir::Graph& g = *graph_;
  if (inputs.size() != g.inputs.size())
    fail("model expects ", g.inputs.size(), " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Value& v = g.values[static_cast<size_t>(g.inputs[i])];
    if (!inputs[i].defined()) fail("input '", v.name, "' is missing");
    check_tensor_type(inputs[i], v.type, v.name);
  }
  if (!plan_ || !arena) return run_graph(g, inputs, nullptr, &last_use_, obs);
  if (reinterpret_cast<std::uintptr_t>(arena) % 64 != 0)
    fail("the arena must be 64-byte aligned (use runtime::allocate_arena)");
  Planned planned{&*plan_, arena, &concat_in_place_};
  return run_graph(g, inputs, nullptr, &last_use_, obs, &planned);
}

std::shared_ptr<std::byte> allocate_arena(int64_t bytes) {
  if (bytes < 0 || bytes > kMaxTensorBytes) fail("arena of ", bytes, " bytes is out of range");
  const size_t alloc = (static_cast<size_t>(bytes) + 63) / 64 * 64 + 64;
  std::shared_ptr<void> p = zeroed_memory(alloc);
  if (!p) fail_runtime("out of memory allocating an arena of ", alloc, " bytes");
  return std::shared_ptr<std::byte>(p, static_cast<std::byte*>(p.get()));
}

}  // namespace lithe::runtime
