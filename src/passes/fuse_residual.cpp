// Pass: fuse_residual (see pass_list.hpp for its place in the pipeline).
//
// Add(x, other) (either operand order), where x is the only use of the output of a Conv /
// ConvTranspose / Gemm / MatMul (ONNX, or lithe-domain without an activation or residual),
// becomes one lithe-domain node with the residual input Z = other (ops/fused.cpp): the
// epilogue adds Z while the output tile is still in registers. `other` must have exactly the
// Add's shape and dtype (the epilogue does not broadcast). A Relu after the Add is taken by
// fuse_activation on the next round, which accepts a node with a residual.
#include <string>
#include <vector>

#include "ops/fused_internal.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::passes {
namespace {

// True for a producer whose epilogue can still take a residual: no activation (it would
// run before the Add) and no residual yet.
bool can_take_residual(const ir::Node& n) {
  if (!util::epilogue_free(n)) return false;
  const int zi = ops::fused::residual_index(n.op_type);
  if (n.domain == "lithe" && n.inputs.size() > static_cast<size_t>(zi) &&
      n.inputs[static_cast<size_t>(zi)] >= 0)
    return false;
  // An ONNX node with more inputs than its base op takes is malformed; leave it to the op.
  return n.inputs.size() <= static_cast<size_t>(zi);
}

// True when value `to` is computed from value `from` (walking producers back from `to`).
// Fusing such an `other` into `from`'s producer would make the node read its own result.
bool depends_on(const ir::Graph& g, int to, int from) {
  std::vector<char> seen(g.nodes.size(), 0);
  std::vector<int> stack = {to};
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    if (v == from) return true;
    const int p = g.values[static_cast<size_t>(v)].producer;
    if (p < 0 || seen[static_cast<size_t>(p)]) continue;
    seen[static_cast<size_t>(p)] = 1;
    for (int in : g.nodes[static_cast<size_t>(p)].inputs)
      if (in >= 0) stack.push_back(in);
  }
  return false;
}

}  // namespace

int fuse_residual(const ir::Graph& g, Rewriter& rw) {
  int fired = 0;
  std::vector<char> taken(g.nodes.size(), 0);
  for (size_t ai = 0; ai < g.nodes.size(); ++ai) {
    const ir::Node& a = g.nodes[ai];
    if (a.op_type != "Add" || a.domain != "" || a.inputs.size() != 2) continue;
    if (a.outputs.size() != 1 || a.outputs[0] < 0) continue;
    if (a.inputs[0] < 0 || a.inputs[1] < 0 || a.inputs[0] == a.inputs[1]) continue;
    const ir::TensorType& yt = g.values[static_cast<size_t>(a.outputs[0])].type;
    if (!yt.fully_known() || !is_float(yt.dtype)) continue;
    for (int k = 0; k < 2; ++k) {
      const int x = a.inputs[static_cast<size_t>(k)];
      const int other = a.inputs[static_cast<size_t>(1 - k)];
      const int p = g.values[static_cast<size_t>(x)].producer;
      if (p < 0 || taken[static_cast<size_t>(p)]) continue;
      const ir::Node& prod = g.nodes[static_cast<size_t>(p)];
      if (!can_take_residual(prod) || prod.outputs[0] != x) continue;
      if (single_consumer(g, x) != static_cast<int>(ai)) continue;
      if (!util::same_type(g, x, a.outputs[0]) || !util::same_type(g, other, a.outputs[0]))
        continue;
      if (depends_on(g, other, x)) continue;

      const size_t zi = static_cast<size_t>(ops::fused::residual_index(prod.op_type));
      ir::Node f = prod;
      f.domain = "lithe";
      f.inputs.resize(zi + 1, -1);
      f.inputs[zi] = other;
      f.outputs = {a.outputs[0]};
      rw.replace_node(p, std::move(f));
      rw.remove_node(static_cast<int>(ai));
      taken[static_cast<size_t>(p)] = 1;
      ++fired;
      break;
    }
  }
  if (fired) rw.note(std::to_string(fired) + " residual Add(s) fused into their producer");
  return fired;
}

}  // namespace lithe::passes
