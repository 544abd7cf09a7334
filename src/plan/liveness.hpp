// Private to the planner (planner.cpp, check_plan.cpp): value sizes and lifetimes in steps
// (one step per node of the top-level graph, in order).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace lithe::plan::detail {

/// Bytes of a tensor of this type; -1 when the shape or element type is not known or not
/// storable.
int64_t static_bytes(const ir::TensorType& t);

/// Bytes of a value the arena can hold: produced by a node, not a constant, a fully known
/// static shape, a storable element type and at least one byte. -1 otherwise (graph
/// inputs, constants, run-time shapes, empty tensors: those are allocated at run time).
int64_t plannable_bytes(const ir::Value& v);

/// Per value: the step that produces it and the last step that needs it. Graph outputs and
/// values that If/Loop/Scan bodies read by name live to the end (step == nodes.size());
/// a value nobody reads dies at the step that produces it. -1 for values no node produces.
struct Lifetimes {
  std::vector<int> start, end;
};
Lifetimes compute_lifetimes(const ir::Graph& g);

/// Ops whose output is a view of input 0 (same bytes, another shape): planned as an alias
/// of the input and not computed.
bool is_view_op(const ir::Node& n);

/// Concat's axis, normalized against `rank`.
int64_t concat_axis(const ir::Node& n, int64_t rank);

}  // namespace lithe::plan::detail
