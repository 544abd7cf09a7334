// The reference executor: runs a graph node by node with the reference kernels,
// inferring every node's output shapes from the actual inputs. Simple and obviously
// correct; it is the oracle the optimized runtime is tested against.
//
// With a memory plan (plan/plan.hpp) and an arena, every planned value is a view into the
// arena at its planned offset, as the optimized runtime will run: views (skipped Reshape...)
// and Concats whose inputs were written into their slices are not computed, in-place
// outputs are not zero-filled. Planned and unplanned runs give bitwise the same outputs.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "ops/op.hpp"
#include "plan/plan.hpp"

namespace lithe::runtime {

class RefExecutor {
 public:
  /// `plan`, when given, is copied; it must be a plan of `graph` (table sizes and ranges are
  /// checked here; plan::check_plan checks the rest at build time).
  explicit RefExecutor(std::shared_ptr<const ir::Graph> graph,
                       const plan::MemoryPlan* plan = nullptr);

  /// Called after every node with the node and its output tensors (for per-layer
  /// comparison tools). Tensors that live in the arena are passed as copies, so an observer
  /// may keep them.
  using Observer = std::function<void(const ir::Node&, const std::vector<Tensor>&)>;
  void set_observer(Observer obs) { observer_ = std::move(obs); }

  /// Runs with `inputs` in the order of graph.inputs; returns outputs in graph.outputs
  /// order. Checks every input's dtype and shape against the graph's declared input types.
  /// With a plan and an `arena` (plan().arena_bytes bytes, 64-byte aligned, e.g. from
  /// allocate_arena) planned values live in the arena; the returned outputs that were
  /// planned are views into it, valid until the next run with the same arena (clone them to
  /// keep them). Without an arena, or without a plan, every value is allocated as it is
  /// produced and the outputs own their storage.
  /// `observer`, when given, is called instead of the one set with set_observer (a
  /// per-call observer for callers that share one executor).
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, std::byte* arena = nullptr,
                          const Observer* observer = nullptr) const;

  /// The plan given at construction, or nullptr.
  const plan::MemoryPlan* plan() const { return plan_ ? &*plan_ : nullptr; }

  const ir::Graph& graph() const { return *graph_; }
  /// True for a planned Concat whose inputs are (some of them) already in their slices:
  /// running it copies only the others.
  bool concat_in_place(size_t n) const {
    return n < concat_in_place_.size() && concat_in_place_[n];
  }

 private:
  std::shared_ptr<const ir::Graph> graph_;
  std::vector<const ops::OpDef*> ops_;  // per node, resolved once
  std::vector<int> last_use_;           // per value: index of the last node reading it
  Observer observer_;
  void set_plan(const plan::MemoryPlan& p);

  std::optional<plan::MemoryPlan> plan_;
  std::vector<char> concat_in_place_;  // per node: a Concat with inputs already in its slices
};

/// Runs a Concat whose output is in an arena: copies each input into its slice (rows of it
/// when something precedes the axis), except inputs whose data already sits there.
void concat_into_slices(const ir::Node& node, const std::vector<const Tensor*>& ins, Tensor& out);

/// Copies `dense` (value v computed densely) into the rows the plan gives v in `arena` (a
/// strided slice: plan::MemoryPlan::row_stride); fails naming the producer and the value when
/// its size differs from the plan's.
void scatter_rows(const Tensor& dense, const plan::MemoryPlan& p, int v, std::byte* arena,
                  const ir::Graph& g, const ir::Node& producer);

/// The inverse of scatter_rows: a dense copy of value v (of graph `g`) stored as strided rows.
Tensor gather_rows(const plan::MemoryPlan& p, int v, const std::byte* arena, const ir::Graph& g);

/// Zero-filled, 64-byte-aligned memory of `bytes` bytes (at least one) for RefExecutor::run.
std::shared_ptr<std::byte> allocate_arena(int64_t bytes);

/// Checks `t` against a declared type; fails naming `what` (an input's name).
void check_tensor_type(const Tensor& t, const ir::TensorType& expected, const std::string& what);

}  // namespace lithe::runtime
