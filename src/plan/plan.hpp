// Memory planning: every intermediate lives in one arena per context, at an offset fixed at
// build time from value lifetimes, with in-place reuse and concat aliasing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace lithe::plan {

struct MemoryPlan {
  int64_t arena_bytes = 0;
  /// Per value id: byte offset in the arena, or -1 when the value does not live there
  /// (graph inputs, constants, values whose shape is known only at run time).
  std::vector<int64_t> offset;
  /// Per value id: bytes reserved at `offset` (0 when not in the arena).
  std::vector<int64_t> bytes;
  /// Per value id: the value whose memory this one shares (in-place or concat aliasing),
  /// or -1. An aliased value's offset lies inside its root's range.
  std::vector<int> alias_of;
  /// Per node: its output 0 overwrites its input 0 in place (the executor must not zero-fill
  /// the output before running it).
  std::vector<char> in_place;
  /// Per node: nothing to compute: the output already holds the result (a Concat whose
  /// inputs were written into their slices, a Reshape aliasing its input).
  std::vector<char> skip;
  /// Sum of the bytes of every intermediate value (what a plan-less runtime would hold).
  int64_t sum_intermediate_bytes = 0;
};

struct PlanOptions {
  bool in_place = true;
  bool concat_alias = true;
  int64_t alignment = 64;
};

/// Plans `g` (a verified, typed graph).
MemoryPlan plan_memory(const ir::Graph& g, const PlanOptions& opts = {});

/// Checks the plan: offsets and sizes in range, aliases inside their roots, and no two
/// values alive at the same step overlapping unless one aliases the other. Fails naming
/// the two values.
void check_plan(const ir::Graph& g, const MemoryPlan& p);

}  // namespace lithe::plan
