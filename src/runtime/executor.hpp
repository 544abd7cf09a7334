// The fast executor: a flat array of prepared steps over one arena, run with the optimized
// kernels of kernels/ where a step has one and the reference kernels elsewhere.
//
// Program (one per engine, immutable, shared by its contexts) resolves every node once: the
// fast step with its packed weights, or the reference op; views, Split views and Concats
// whose inputs sit in their slices cost nothing (plan::MemoryPlan::skip). Session (one per
// context) owns the arena, the thread pool, the per-thread scratch and the tensor views, all
// made when it is created, so Session::run allocates nothing on the fast path.
//
// A graph the fast executor cannot run (control flow, values whose shapes are known only at
// run time) stays on the reference executor: Program::supports() says which.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kernels/cpu.hpp"
#include "plan/plan.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/ref_executor.hpp"

namespace lithe::runtime {

class Program {
 public:
  /// Prepares `graph` (planned by `plan`) for kernels of `isa`. Constants inside
  /// [mapped, mapped + mapped_bytes) live in a read-only file mapping (an engine file): the
  /// pages of those that were packed and are never read again are handed back to the OS.
  Program(std::shared_ptr<const ir::Graph> graph, const plan::MemoryPlan& plan, kernels::Isa isa,
          const void* mapped = nullptr, size_t mapped_bytes = 0);

  /// True when every value a node produces has a place in the plan's arena and no node
  /// has a subgraph: then a Program can run the graph.
  static bool supports(const ir::Graph& g, const plan::MemoryPlan& p);

  const ir::Graph& graph() const { return ref_.graph(); }
  const plan::MemoryPlan& plan() const { return *ref_.plan(); }
  kernels::Isa isa() const { return isa_; }
  /// Per node: its fast step, or null (reference kernel or nothing to compute).
  const FastStep* fast_step(size_t n) const { return fast_[n].get(); }
  /// Per node: the step that runs it and the nodes it absorbed (fuse_inverted_residual), or
  /// null; such a step replaces the node's own when no observer is set.
  const FastStep* fused_step(size_t n) const { return fused_[n].get(); }
  /// Per node: true when a fused step of a later node computes it (no observer set).
  bool absorbed(size_t n) const { return absorbed_[n] != 0; }
  /// Per-thread scratch floats: the largest any step needs.
  int64_t scratch_floats() const { return scratch_floats_; }
  /// Heap bytes of the weights the steps copied or packed at preparation.
  int64_t packed_bytes() const { return packed_bytes_; }
  /// Bytes of mapped constants whose pages were handed back after packing (never read again).
  int64_t released_bytes() const { return released_bytes_; }

 private:
  friend class Session;
  RefExecutor ref_;  // checks the plan against the graph; owns both
  kernels::Isa isa_;
  std::vector<std::unique_ptr<FastStep>> fast_;
  std::vector<std::unique_ptr<FastStep>> fused_;
  std::vector<char> absorbed_;
  std::vector<const ops::OpDef*> ops_;
  int64_t scratch_floats_ = 0;
  int64_t packed_bytes_ = 0, released_bytes_ = 0;
};

class Session {
 public:
  Session(std::shared_ptr<const Program> program, int threads);
  ~Session();

  /// The tensor bound to graph input i (set it, then run()).
  Tensor& input(size_t i) { return inputs_[i]; }
  /// Runs the graph on the bound inputs (checked against the declared types).
  void run();
  /// Called by run() after every node (skipped views and Concats included) once per output
  /// it produced: the value id and the value as a dense tensor, valid during the call only.
  /// A value stored as strided rows (plan::MemoryPlan::row_stride) is gathered into a copy
  /// first, so observing allocates; without an observer run() does not.
  using Observer = std::function<void(int value, const Tensor& dense)>;
  void set_observer(Observer obs) { observer_ = std::move(obs); }
  /// The outputs of the last run, in graph output order; arena views valid until the next run.
  const std::vector<Tensor>& outputs() const { return outputs_; }

  /// When on, run() adds each node's wall time (ns) to node_ns().
  void set_profiling(bool on);
  const std::vector<int64_t>& node_ns() const { return node_ns_; }
  /// Bytes this session owns for running: the planned arena plus the threads' scratch.
  int64_t arena_bytes() const;

 private:
  struct RefStep;
  void run_reference(size_t n);
  void run_fast(const FastStep* step);
  void observe(size_t n);

  std::shared_ptr<const Program> program_;
  std::shared_ptr<std::byte> arena_;
  std::unique_ptr<class ThreadPool> pool_;
  std::shared_ptr<void> scratch_;  // per thread: scratch_floats() of the program
  int64_t scratch_bytes_ = 0;
  std::vector<Tensor> inputs_;
  std::vector<Tensor> views_;                        // per value: the arena view (planned values)
  std::vector<const Tensor*> tensor_;                // per value: where a reference kernel reads it
  ValuePtrs vals_;                                   // per value: its data pointer
  std::vector<std::unique_ptr<RefStep>> ref_steps_;  // per node (reference kernels)
  std::vector<Tensor> outputs_;
  std::vector<int64_t> node_ns_;
  bool profiling_ = false;
  Observer observer_;
};

}  // namespace lithe::runtime
