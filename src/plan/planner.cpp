// Memory planner: one arena for every intermediate of the top-level graph, at offsets fixed
// from value lifetimes (subgraph bodies of If/Loop/Scan keep allocating at run time).
//
// 1. Aliasing, decided in node order:
//    - views (Reshape, Flatten, Squeeze, Unsqueeze, Identity of an arena value) share their
//      input's bytes and are not computed;
//    - elementwise ops write over input 0 when nothing else still needs those bytes;
//    - a Concat with nothing outside its axis (outer size 1) hands each single-use input a
//      slice of its output, so the producers write straight into the concat result;
//    - a Split with outer size 1 makes each output a view of its slice of the input (the
//      sibling-aggregation pass splits a merged conv's channels this way) and is not
//      computed.
//    Aliased values form trees; a tree's root owns a range that lives from the first
//    member's production to the last member's last use.
// 2. Offsets: the roots are placed greedily by size, each into the smallest gap left by the
//    roots already placed whose lifetimes intersect its own (TFLite's greedy-by-size
//    ArenaPlanner, XNNPACK's memory planner).
#include <algorithm>
#include <limits>
#include <numeric>

#include "ops/op.hpp"
#include "plan/liveness.hpp"
#include "plan/plan.hpp"

namespace lithe::plan {
namespace {

// Elementwise ops whose reference kernel reads element i of input 0 before writing element i
// of the output, and nothing else of input 0 (ops/unary.cpp compute_map and compute_clip,
// ops/binary.cpp compute_binary), so the output may overwrite input 0.
bool in_place_op(const ir::Node& n) {
  static const char* const kOps[] = {
      "Relu",       "LeakyRelu", "Elu",      "Selu",  "Celu", "Sigmoid", "HardSigmoid", "HardSwish",
      "Tanh",       "Softplus",  "Softsign", "Mish",  "Gelu", "Exp",     "Log",         "Sqrt",
      "Reciprocal", "Neg",       "Abs",      "Floor", "Ceil", "Round",   "Erf",         "Sign",
      "Sin",        "Cos",       "Clip",     "Add",   "Sub",  "Mul",     "Div",         "PRelu"};
  if (!n.domain.empty() || n.inputs.empty() || n.outputs.size() != 1) return false;
  for (const char* op : kOps)
    if (n.op_type == op) return true;
  return false;
}

int64_t align_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

class Planner {
 public:
  Planner(const ir::Graph& g, const PlanOptions& opts)
      : g_(g), opts_(opts), lt_(detail::compute_lifetimes(g)) {
    const size_t nv = g.values.size();
    p_.offset.assign(nv, -1);
    p_.bytes.assign(nv, 0);
    p_.alias_of.assign(nv, -1);
    p_.in_place.assign(g.nodes.size(), 0);
    p_.skip.assign(g.nodes.size(), 0);
    p_.row_stride.assign(nv, 0);
    p_.row_bytes.assign(nv, 0);
    rel_.assign(nv, 0);
    for (size_t v = 0; v < nv; ++v) {
      int64_t b = detail::plannable_bytes(g.values[v]);
      if (b < 0) continue;
      p_.bytes[v] = b;
      p_.sum_intermediate_bytes += b;
    }
  }

  MemoryPlan run() {
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      const ir::Node& node = g_.nodes[n];
      const int step = static_cast<int>(n);
      if (detail::is_view_op(node) && try_view(node, step)) continue;
      if (opts_.in_place && in_place_op(node) && try_in_place(node, step)) continue;
      if (opts_.concat_alias && node.domain.empty() && node.op_type == "Concat")
        try_concat(node, step);
      if (opts_.concat_alias && node.domain.empty() && node.op_type == "Split")
        try_split(node, step);
    }
    assign_offsets();
    return std::move(p_);
  }

 private:
  bool planned(int v) const { return v >= 0 && p_.bytes[static_cast<size_t>(v)] > 0; }
  int64_t bytes(int v) const { return p_.bytes[static_cast<size_t>(v)]; }
  int start(int v) const { return lt_.start[static_cast<size_t>(v)]; }
  int end(int v) const { return lt_.end[static_cast<size_t>(v)]; }
  const ir::TensorType& type(int v) const { return g_.values[static_cast<size_t>(v)].type; }

  int root(int v) const {
    while (p_.alias_of[static_cast<size_t>(v)] >= 0) v = p_.alias_of[static_cast<size_t>(v)];
    return v;
  }
  // Offset of v inside its root's range.
  int64_t offset_in_root(int v) const {
    int64_t o = 0;
    for (; p_.alias_of[static_cast<size_t>(v)] >= 0; v = p_.alias_of[static_cast<size_t>(v)])
      o += rel_[static_cast<size_t>(v)];
    return o;
  }
  void alias(int v, int parent, int64_t rel) {
    p_.alias_of[static_cast<size_t>(v)] = parent;
    rel_[static_cast<size_t>(v)] = rel;
  }

  // A view shares its input's bytes; the input's tree then lives as long as the view.
  bool try_view(const ir::Node& node, int step) {
    const int in = node.inputs[0], out = node.outputs[0];
    if (!planned(in) || !planned(out) || bytes(in) != bytes(out)) return false;
    if (type(in).dtype != type(out).dtype) return false;
    alias(out, in, 0);
    p_.skip[static_cast<size_t>(step)] = 1;
    return true;
  }

  // The output overwrites input 0 when input 0 dies here and no other value that shares
  // those bytes (a view of it, a tree member) is read at or after this step.
  bool try_in_place(const ir::Node& node, int step) {
    const int in = node.inputs[0], out = node.outputs[0];
    if (!planned(in) || !planned(out)) return false;
    if (type(in).dtype != type(out).dtype || type(in).dims != type(out).dims) return false;
    if (end(in) != step) return false;
    const int r = root(in);
    const int64_t lo = offset_in_root(in), hi = lo + bytes(in);
    auto overlaps = [&](int w) {
      if (!planned(w) || root(w) != r) return false;
      int64_t wlo = offset_in_root(w);
      return wlo < hi && lo < wlo + p_.extent(w);
    };
    for (size_t k = 1; k < node.inputs.size(); ++k) {
      int w = node.inputs[k];
      if (w >= 0 && w != in && overlaps(w)) return false;
    }
    for (size_t w = 0; w < g_.values.size(); ++w) {
      int wi = static_cast<int>(w);
      if (wi != in && end(wi) >= step && overlaps(wi)) return false;
    }
    alias(out, in, 0);
    p_.in_place[static_cast<size_t>(step)] = 1;
    return true;
  }

  // Producers that can write their output as a strided slice (rows of channels at a pixel
  // stride): the channels-last conv and pools, whose fast kernels take an output pixel stride
  // (the executors scatter a reference kernel's result into the rows).
  static bool writes_rows(const ir::Node& n) {
    return n.domain == "lithe" && n.outputs.size() == 1 &&
           (n.op_type == "ConvNhwc" || n.op_type == "MaxPoolNhwc" ||
            n.op_type == "AveragePoolNhwc");
  }

  // No value aliases v (nothing was placed inside it).
  bool alias_free(int v) const {
    for (int a : p_.alias_of)
      if (a == v) return false;
    return true;
  }

  // With outer size 1 every input is one contiguous slice of the output. An input takes its
  // slice (with the whole alias tree it heads) when only this Concat reads it. With an outer
  // size above 1 (a channel concat in NHWC) an input is a strided slice: rows of its inner
  // bytes at the output's row stride; it takes it when a row-writing producer makes it, only
  // this Concat reads it, and nothing else lives in its bytes.
  void try_concat(const ir::Node& node, int step) {
    const int out = node.outputs.empty() ? -1 : node.outputs[0];
    if (!planned(out) || node.inputs.empty()) return;
    const Shape& dims = type(out).dims;
    const int64_t axis = detail::concat_axis(node, static_cast<int64_t>(dims.size()));
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
    const bool rows = outer != 1;
    if (rows && (!opts_.strided_concat || outer <= 0 || bytes(out) % outer != 0 || p_.strided(out)))
      return;
    const int64_t row = rows ? bytes(out) / outer : 0;
    std::vector<char> is_graph_output(g_.values.size(), 0);
    for (int v : g_.outputs)
      if (v >= 0) is_graph_output[static_cast<size_t>(v)] = 1;
    int64_t prefix = 0;
    bool all = true;
    for (int v : node.inputs) {
      if (v < 0) {
        all = false;
        continue;
      }
      const ir::Value& val = g_.values[static_cast<size_t>(v)];
      const int64_t b = detail::static_bytes(val.type);
      const int r = planned(v) ? root(v) : -1;
      bool ok = planned(v) && val.consumers.size() == 1 &&
                !is_graph_output[static_cast<size_t>(v)] && end(v) == step && r != root(out) &&
                offset_in_root(v) == 0 && bytes(r) == b && type(v).dtype == type(out).dtype;
      if (rows)
        ok = ok && r == v && val.producer >= 0 &&
             writes_rows(g_.nodes[static_cast<size_t>(val.producer)]) && alias_free(v) &&
             b % outer == 0;
      // A run-time-shaped input leaves the slices after it unknown.
      if (b < 0) return;
      const int64_t part = rows ? b / outer : b;
      if (ok) {
        alias(r, out, prefix);
        if (rows) {
          p_.row_stride[static_cast<size_t>(v)] = row;
          p_.row_bytes[static_cast<size_t>(v)] = part;
        }
      } else {
        all = false;
      }
      prefix += part;
    }
    if (all) p_.skip[static_cast<size_t>(step)] = 1;
  }

  // With outer size 1 every output is one contiguous slice of the input: views, like
  // Reshape's, at the slice's offset. All or nothing, so the node is either skipped or run.
  void try_split(const ir::Node& node, int step) {
    const int in = node.inputs.empty() ? -1 : node.inputs[0];
    if (!planned(in)) return;
    const Shape& dims = type(in).dims;
    ops::NodeAttrs a(node);
    int64_t axis = a.attr_int("axis", 0);
    const int64_t rank = static_cast<int64_t>(dims.size());
    if (axis < -rank || axis >= rank) return;
    if (axis < 0) axis += rank;
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
    if (outer != 1) return;
    int64_t total = 0;
    for (int v : node.outputs) {
      if (!planned(v) || type(v).dtype != type(in).dtype) return;
      total += bytes(v);
    }
    if (total != bytes(in)) return;
    int64_t prefix = 0;
    for (int v : node.outputs) {
      alias(v, in, prefix);
      prefix += bytes(v);
    }
    p_.skip[static_cast<size_t>(step)] = 1;
  }

  void assign_offsets() {
    const size_t nv = g_.values.size();
    std::vector<int> gs(nv, std::numeric_limits<int>::max()), ge(nv, -1);
    for (size_t v = 0; v < nv; ++v) {
      if (!planned(static_cast<int>(v))) continue;
      size_t r = static_cast<size_t>(root(static_cast<int>(v)));
      gs[r] = std::min(gs[r], lt_.start[v]);
      ge[r] = std::max(ge[r], lt_.end[v]);
    }
    std::vector<int> roots;
    for (size_t v = 0; v < nv; ++v)
      if (planned(static_cast<int>(v)) && p_.alias_of[v] < 0) roots.push_back(static_cast<int>(v));
    std::stable_sort(roots.begin(), roots.end(), [&](int a, int b) {
      if (bytes(a) != bytes(b)) return bytes(a) > bytes(b);
      return gs[static_cast<size_t>(a)] < gs[static_cast<size_t>(b)];
    });
    const int64_t align = std::max<int64_t>(opts_.alignment, 1);
    std::vector<int> placed;
    int64_t arena = 0;
    for (int u : roots) {
      const size_t ui = static_cast<size_t>(u);
      std::vector<int> live;
      for (int w : placed) {
        const size_t wi = static_cast<size_t>(w);
        if (gs[wi] <= ge[ui] && gs[ui] <= ge[wi]) live.push_back(w);
      }
      std::sort(live.begin(), live.end(), [&](int a, int b) {
        return p_.offset[static_cast<size_t>(a)] < p_.offset[static_cast<size_t>(b)];
      });
      // Best fit: the smallest gap between live ranges that holds u, else past the last one.
      int64_t best = -1, best_gap = std::numeric_limits<int64_t>::max(), cursor = 0;
      for (int w : live) {
        const int64_t wo = p_.offset[static_cast<size_t>(w)];
        const int64_t gap = wo - cursor;
        if (gap >= bytes(u) && gap < best_gap) {
          best = cursor;
          best_gap = gap;
        }
        cursor = std::max(cursor, align_up(wo + bytes(w), align));
      }
      if (best < 0) best = cursor;
      p_.offset[ui] = best;
      arena = std::max(arena, best + bytes(u));
      placed.push_back(u);
    }
    p_.arena_bytes = align_up(arena, align);
    for (size_t v = 0; v < nv; ++v) {
      const int vi = static_cast<int>(v);
      if (planned(vi) && p_.alias_of[v] >= 0)
        p_.offset[v] = p_.offset[static_cast<size_t>(root(vi))] + offset_in_root(vi);
    }
  }

  const ir::Graph& g_;
  PlanOptions opts_;
  detail::Lifetimes lt_;
  MemoryPlan p_;
  std::vector<int64_t> rel_;  // per value: offset inside alias_of's range
};

}  // namespace

MemoryPlan plan_memory(const ir::Graph& g, const PlanOptions& opts) {
  if (opts.alignment <= 0) fail("memory plan: alignment must be positive, got ", opts.alignment);
  return Planner(g, opts).run();
}

}  // namespace lithe::plan
