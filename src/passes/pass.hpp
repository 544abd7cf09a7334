// Graph passes. A pass matches on a read-only graph and records its changes in a Rewriter;
// the pipeline applies them, re-sorts, verifies and re-infers types after every pass, and
// re-runs the list until nothing fires (see pipeline.cpp).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace lithe::passes {

/// Records the changes one pass makes; apply() performs them all at once.
class Rewriter {
 public:
  explicit Rewriter(const ir::Graph& g) : g_(g) {}
  const ir::Graph& graph() const { return g_; }

  /// A new constant value; the name is made unique from `hint`. Returns its id (valid in
  /// this Rewriter and after apply()).
  int add_constant(const std::string& hint, Tensor t);
  /// A new intermediate value (a node added with add_node() must produce it).
  int add_value(const std::string& hint, ir::TensorType type = {});
  /// Adds a node (its position is fixed by the topological sort in apply()).
  void add_node(ir::Node n);
  /// Replaces node `id` by `n` (same or different op/inputs/outputs).
  void replace_node(int id, ir::Node n);
  /// Removes node `id`.
  void remove_node(int id);
  /// Every use of value `from` (node inputs, graph outputs) reads `to` instead.
  void replace_uses(int from, int to);
  /// True when replace_uses(from, to) keeps the model's output names: `from` is not a graph
  /// output, or `to` is an intermediate that can take `from`'s name.
  bool can_replace(int from, int to) const;
  /// A note for the build report ("googlenet: 9 concats elided").
  void note(std::string s) { notes_.push_back(std::move(s)); }

  bool empty() const;
  const std::vector<std::string>& notes() const { return notes_; }

  /// Applies the changes to `g` (the graph this Rewriter was made on), drops nodes whose
  /// outputs nobody needs only if a pass asked (remove_node), removes unused values,
  /// sorts, verifies and re-infers types.
  void apply(ir::Graph& g);

 private:
  std::string unique_name(const std::string& hint);
  const ir::Graph& g_;
  std::vector<std::pair<std::string, Tensor>> new_constants_;
  std::vector<std::pair<std::string, ir::TensorType>> new_values_;
  std::vector<ir::Node> new_nodes_;
  std::map<int, ir::Node> replaced_;
  std::vector<int> removed_;
  std::map<int, int> redirect_;
  std::vector<std::string> notes_;
  std::map<std::string, int> used_names_;
};

/// One pass: a name (used by --disable-pass and the report) and a function that records
/// its rewrites and returns how many times it fired.
struct Pass {
  const char* name;
  const char* why;  ///< why it sits where it does in the pipeline
  int (*run)(const ir::Graph& g, Rewriter& rw);
  /// 1: runs with the others to a fixed point; 2: runs only once phase 1 has settled (a
  /// rewrite the phase-1 passes no longer match, such as the NHWC layout), then
  /// everything runs again to a fixed point.
  int phase = 1;
};

struct PipelineOptions {
  std::vector<std::string> disabled;  ///< pass names not to run
  int max_rounds = 8;                 ///< fixed-point bound
  int stop_after = -1;                ///< stop after this many rewrites in total (bisecting)
  /// Called once phase 1 has reached its fixed point, before the phase-2 passes run (the
  /// optimized graph before the NHWC layout: `lithe build --emit-qdq-onnx` exports it).
  std::function<void(const ir::Graph&)> after_phase1;
};

struct PassStats {
  std::string name;
  int fired = 0;
};

struct PipelineReport {
  size_t nodes_before = 0, nodes_after = 0;
  int rounds = 0;
  std::vector<PassStats> passes;   ///< in pipeline order
  std::vector<std::string> notes;  ///< what the passes said they did
};

/// The ordered pass list (pipeline.cpp), each entry with its reason.
const std::vector<Pass>& default_pipeline();
/// Finds a pass by name (nullptr if none).
const Pass* find_pass(const std::string& name);
/// Runs the pipeline to a fixed point. Errors name the pass and node.
PipelineReport run_pipeline(ir::Graph& g, const PipelineOptions& opts = {});
/// Runs one pass once (tests).
int run_pass(ir::Graph& g, const Pass& p);

// ---- matching helpers (read-only) ----

/// The single node consuming value `v`, or -1 if it has none or several, or `v` is a graph
/// output.
int single_consumer(const ir::Graph& g, int v);
/// True if `v` is one of the graph's outputs.
bool is_graph_output(const ir::Graph& g, int v);
/// The constant data of value `v`, or nullptr.
const Tensor* constant_of(const ir::Graph& g, int v);

}  // namespace lithe::passes
