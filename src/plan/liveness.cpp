// Value sizes and lifetimes for the memory planner.
#include "plan/liveness.hpp"

#include <algorithm>

#include "ops/op.hpp"

namespace lithe::plan::detail {

int64_t static_bytes(const ir::TensorType& type) {
  if (!type.fully_known()) return -1;
  const DType t = type.dtype;
  if (t == DType::kUndefined || !dtype_supported(t) || dtype_size(t) == 0) return -1;
  int64_t n = 1;
  for (int64_t d : type.dims) {
    if (d == 0) return 0;
  }
  for (int64_t d : type.dims) {
    if (n > kMaxTensorElements / d) return -1;  // refused at run time anyway
    n *= d;
  }
  return n * static_cast<int64_t>(dtype_size(t));
}

int64_t plannable_bytes(const ir::Value& v) {
  if (v.producer < 0 || v.constant) return -1;
  const int64_t b = static_bytes(v.type);
  return b > 0 ? b : -1;
}

Lifetimes compute_lifetimes(const ir::Graph& g) {
  const int steps = static_cast<int>(g.nodes.size());
  Lifetimes lt;
  lt.start.assign(g.values.size(), -1);
  lt.end.assign(g.values.size(), -1);
  for (int n = 0; n < steps; ++n)
    for (int v : g.nodes[static_cast<size_t>(n)].outputs)
      if (v >= 0) lt.start[static_cast<size_t>(v)] = lt.end[static_cast<size_t>(v)] = n;
  for (int n = 0; n < steps; ++n)
    for (int v : g.nodes[static_cast<size_t>(n)].inputs)
      if (v >= 0) lt.end[static_cast<size_t>(v)] = std::max(lt.end[static_cast<size_t>(v)], n);
  for (int v : g.outputs)
    if (v >= 0) lt.end[static_cast<size_t>(v)] = steps;
  std::vector<std::string> outer;
  ir::outer_names_read_by(g, outer);
  for (const std::string& name : outer) {
    int v = g.find_value(name);
    if (v >= 0) lt.end[static_cast<size_t>(v)] = steps;
  }
  return lt;
}

bool is_view_op(const ir::Node& n) {
  if (!n.domain.empty() || n.inputs.empty() || n.outputs.size() != 1) return false;
  const std::string& op = n.op_type;
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" ||
         op == "Identity";
}

int64_t concat_axis(const ir::Node& n, int64_t rank) {
  ops::NodeAttrs a(n);
  // Opset 1 defaulted the axis to 1; from opset 4 it is required.
  int64_t axis = a.opset() < 4 ? a.attr_int("axis", 1) : a.attr_int("axis");
  if (axis < -rank || axis >= rank)
    fail(n.label(), ": axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

}  // namespace lithe::plan::detail
