// Pass: constant_folding (see pass_list.hpp for its place in the pipeline).
//
// Runs every deterministic node whose inputs are all constants once, at build time, with
// the op's own infer() and compute() (the reference kernels are the oracle, so a folded
// value is exactly what the node would have computed), and replaces its outputs by
// constants. Shape and Size of any value with a fully known static shape fold as well, so
// the Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains that exporters emit collapse
// in one run: nodes are visited in topological order and values folded earlier in the run
// feed later nodes.
#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ops/infer.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::passes {
namespace {

/// A folded result may always take this many bytes: shape arithmetic, small tables. Kept
/// small so folding never makes the engine file much larger than the ONNX file (BlazeFace's
/// 16 KiB ConstantOfShape zero tensors made its engine 1.4x the model at 1 MiB).
constexpr size_t kFoldFreeBytes = size_t{4} << 10;  // 4 KiB
/// Past kFoldFreeBytes, a fold may grow its constant inputs by at most this factor. 2 lets
/// a Cast of fp16 weights to fp32 or a Transpose of a weight fold (the engine stores the
/// result instead of the input), but stops ConstantOfShape/Expand/Tile/Range of a few
/// bytes from writing megabytes into the engine file that the runtime makes in microseconds.
constexpr size_t kFoldMaxGrowth = 2;

// Ops whose result is not a function of their inputs.
bool nondeterministic(const ir::Node& n) {
  static const char* kRandom[] = {"RandomUniform",    "RandomNormal", "RandomUniformLike",
                                  "RandomNormalLike", "Bernoulli",    "Multinomial"};
  if (!n.domain.empty()) return false;
  for (const char* r : kRandom)
    if (n.op_type == r) return true;
  return false;
}

// Ops left alone although their inputs are constant: a DequantizeLinear of constant int8
// weights is the explicit-quantization (QDQ) form the quantizer matches; folding it would
// turn int8 weights back into fp32.
bool kept_for_later_passes(const ir::Node& n) {
  return n.domain.empty() && n.op_type == "DequantizeLinear";
}

// Bytes of a value's static type, or -1 if unknown.
int64_t static_bytes(const ir::Graph& g, int v) {
  if (!util::type_known(g, v)) return -1;
  const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
  if (dtype_size(t.dtype) == 0) return -1;
  return shape_numel(t.dims) * static_cast<int64_t>(dtype_size(t.dtype));
}

bool within_cap(size_t out_bytes, size_t in_bytes) {
  return out_bytes <= kFoldFreeBytes || out_bytes <= kFoldMaxGrowth * in_bytes;
}

// Runs `n` on constant inputs as the reference executor does. Returns false (and leaves
// `outs` empty) when the result would exceed the size cap. An op that rejects its constant
// inputs (an out-of-range Gather index, a zero Range delta...) fails the build: the pass
// sees only the main graph, whose every node runs on every inference, so the model could
// never run.
bool evaluate(const ir::Graph& g, const ir::Node& n, const ops::OpDef& op,
              const std::vector<const Tensor*>& in_values, std::vector<Tensor>& outs) {
  std::vector<ir::TensorType> in_types(n.inputs.size());
  std::vector<const ir::TensorType*> type_ptrs(n.inputs.size(), nullptr);
  size_t in_bytes = 0;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (!in_values[i]) continue;
    in_types[i] = {in_values[i]->dtype(), true, in_values[i]->shape()};
    type_ptrs[i] = &in_types[i];
    in_bytes += in_values[i]->nbytes();
  }
  // Check the cap on the graph's static types before allocating anything.
  size_t declared = 0;
  for (int v : n.outputs) {
    int64_t b = static_bytes(g, v);
    if (b > 0) declared += static_cast<size_t>(b);
  }
  if (!within_cap(declared, in_bytes)) return false;
  std::vector<ir::TensorType> out_types = ops::infer_node(n, op, type_ptrs, in_values);
  size_t planned = 0;
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && out_types[i].fully_known() &&
        out_types[i].dtype != DType::kUndefined)
      planned +=
          static_cast<size_t>(shape_numel(out_types[i].dims)) * dtype_size(out_types[i].dtype);
  if (!within_cap(planned, in_bytes)) return false;
  outs.assign(n.outputs.size(), Tensor());
  std::vector<Tensor*> out_ptrs(n.outputs.size(), nullptr);
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (n.outputs[i] < 0) continue;
    const ir::TensorType& ot = out_types[i];
    if (ot.fully_known() && ot.dtype != DType::kUndefined) outs[i] = Tensor(ot.dtype, ot.dims);
    out_ptrs[i] = &outs[i];
  }
  try {
    ops::ComputeContext ctx(n, in_values, out_ptrs, nullptr);
    op.compute(ctx);
  } catch (const Error& e) {
    throw e.with_context(n.label());
  }
  size_t produced = 0;
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (n.outputs[i] < 0) continue;
    if (!outs[i].defined()) {
      outs.clear();
      return false;
    }
    produced += outs[i].nbytes();
  }
  if (!within_cap(produced, in_bytes)) {
    outs.clear();
    return false;
  }
  return true;
}

}  // namespace

int fold_constants(const ir::Graph& g, Rewriter& rw) {
  const std::vector<char> body_reads = util::values_read_by_subgraphs(g);
  std::map<int, Tensor> folded;  // values folded earlier in this run
  auto value_of = [&](int v) -> const Tensor* {
    if (const Tensor* t = constant_of(g, v)) return t;
    auto it = folded.find(v);
    return it == folded.end() ? nullptr : &it->second;
  };
  int fired = 0, shape_folds = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const ir::Node& n = g.nodes[ni];
    if (ir::has_subgraph(n) || nondeterministic(n) || kept_for_later_passes(n)) continue;
    // Every output must be replaceable: not read by name from a body (replace_uses does not
    // reach there), and not an output whose constant would only come back as an Identity
    // that the next round folds again.
    bool replaceable = !n.outputs.empty();
    bool present = false;
    for (int v : n.outputs) {
      if (v < 0) continue;
      present = true;
      if (body_reads[static_cast<size_t>(v)]) replaceable = false;
      if (is_graph_output(g, v) && n.op_type == "Identity") replaceable = false;
    }
    if (!replaceable || !present) continue;

    std::vector<Tensor> outs;
    const bool shape_op = n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size") &&
                          n.inputs.size() == 1 && n.outputs.size() == 1;
    if (shape_op && util::type_known(g, n.inputs[0]) && !value_of(n.inputs[0])) {
      // Only the static shape matters: the op's own kernel runs on a stand-in with the
      // value's type and no data (Shape and Size never read the elements).
      const ir::TensorType& t = g.values[static_cast<size_t>(n.inputs[0])].type;
      const Tensor stand_in = Tensor::borrow(t.dtype, t.dims, nullptr, nullptr);
      const ops::OpDef* op = ops::find_op(n.domain, n.op_type);
      if (!op || !evaluate(g, n, *op, {&stand_in}, outs)) continue;
      ++shape_folds;
    } else {
      std::vector<const Tensor*> in_values(n.inputs.size(), nullptr);
      bool all_const = true;
      for (size_t i = 0; i < n.inputs.size() && all_const; ++i) {
        if (n.inputs[i] < 0) continue;
        in_values[i] = value_of(n.inputs[i]);
        all_const = in_values[i] != nullptr;
      }
      if (!all_const) continue;
      const ops::OpDef* op = ops::find_op(n.domain, n.op_type);
      if (!op || !evaluate(g, n, *op, in_values, outs)) continue;
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      int v = n.outputs[i];
      if (v < 0) continue;
      const std::string& name = g.values[static_cast<size_t>(v)].name;
      int c = rw.add_constant(name, outs[i]);
      rw.replace_uses(v, c);
      folded[v] = std::move(outs[i]);
    }
    rw.remove_node(static_cast<int>(ni));
    ++fired;
  }
  if (fired)
    rw.note(str_cat(fired, " nodes folded to constants (", shape_folds,
                    " Shape/Size of static shapes)"));
  return fired;
}

}  // namespace lithe::passes
