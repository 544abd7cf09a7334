// Shape and type inference over a whole graph, driven by each op's infer().
#pragma once
#include <vector>

#include "ir/graph.hpp"
#include "ops/op.hpp"

namespace lithe::ops {

/// Infers one node. `in_types`/`in_values` are per input (nullptr for omitted inputs or
/// unknown values). Returns one TensorType per node output. Errors carry the node label;
/// InferUnknown is turned into unknown output shapes.
std::vector<ir::TensorType> infer_node(const ir::Node& node, const OpDef& op,
                                       const std::vector<const ir::TensorType*>& in_types,
                                       const std::vector<const Tensor*>& in_values);

/// Runs inference over every node in order and stores the output types in the graph's
/// values. Fails on unsupported ops (naming op, domain, opset and node).
void infer_graph(ir::Graph& g);

}  // namespace lithe::ops
