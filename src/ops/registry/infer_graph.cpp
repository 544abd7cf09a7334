#include "ops/infer.hpp"

namespace lithe::ops {

std::vector<ir::TensorType> infer_node(const ir::Node& node, const OpDef& op,
                                       const std::vector<const ir::TensorType*>& in_types,
                                       const std::vector<const Tensor*>& in_values) {
  InferContext ctx(node, in_types, in_values, node.outputs.size());
  // An input whose element type is not known yet (the output of a control-flow op at
  // build time) makes every output unknown; run-time inference sees the real tensors.
  for (const ir::TensorType* t : in_types)
    if (t && t->dtype == DType::kUndefined) return std::vector<ir::TensorType>(node.outputs.size());
  try {
    op.infer(ctx);
  } catch (const InferUnknown&) {
    // Something the op needs is only known at run time: keep dtypes the op already set,
    // mark shapes unknown.
    std::vector<ir::TensorType> out = ctx.outputs();
    for (auto& t : out) {
      t.has_shape = false;
      t.dims.clear();
    }
    return out;
  } catch (const Error& e) {
    throw e.with_context(node.label());
  }
  return ctx.outputs();
}

void infer_graph(ir::Graph& g) {
  for (const ir::Node& node : g.nodes) {
    const OpDef& op = require_op(node);
    std::vector<const ir::TensorType*> types;
    std::vector<const Tensor*> values;
    for (int v : node.inputs) {
      if (v < 0) {
        types.push_back(nullptr);
        values.push_back(nullptr);
        continue;
      }
      const ir::Value& val = g.values[static_cast<size_t>(v)];
      types.push_back(&val.type);
      values.push_back(val.constant ? &*val.constant : nullptr);
    }
    std::vector<ir::TensorType> out = infer_node(node, op, types, values);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      int v = node.outputs[i];
      if (v < 0) continue;
      ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
      if (i < out.size() && out[i].dtype != DType::kUndefined) t = out[i];
    }
  }
}

}  // namespace lithe::ops
