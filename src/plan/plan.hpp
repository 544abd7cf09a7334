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
  /// Per value: 0 for a value stored contiguously at `offset`; otherwise the value is a
  /// strided slice of its alias root: rows of row_bytes[v] bytes, one every row_stride[v]
  /// bytes from `offset` (a channel slice of a channels-last Concat output, written in place
  /// by its producer). Empty vectors mean every value is contiguous.
  std::vector<int64_t> row_stride;
  std::vector<int64_t> row_bytes;

  bool strided(int v) const {
    return v >= 0 && static_cast<size_t>(v) < row_stride.size() &&
           row_stride[static_cast<size_t>(v)] > 0;
  }
  /// Bytes from offset[v] to the end of v's last byte.
  int64_t extent(int v) const {
    const size_t i = static_cast<size_t>(v);
    if (!strided(v)) return bytes[i];
    const int64_t rows = row_bytes[i] > 0 ? bytes[i] / row_bytes[i] : 0;
    return rows > 0 ? (rows - 1) * row_stride[i] + row_bytes[i] : 0;
  }
};

struct PlanOptions {
  bool in_place = true;
  bool concat_alias = true;
  /// Concat inputs on an inner axis (channels-last channel concats) become strided slices
  /// of the output, written in place by their producers (ConvNhwc and the NHWC pools).
  bool strided_concat = true;
  int64_t alignment = 64;
};

/// Plans `g` (a verified, typed graph).
MemoryPlan plan_memory(const ir::Graph& g, const PlanOptions& opts = {});

/// Checks the plan: offsets and sizes in range, aliases inside their roots, and no two
/// values alive at the same step overlapping unless one aliases the other. Fails naming
/// the two values.
void check_plan(const ir::Graph& g, const MemoryPlan& p);

}  // namespace lithe::plan
