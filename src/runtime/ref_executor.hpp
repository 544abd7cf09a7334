// The reference executor: runs a graph node by node with the reference kernels,
// inferring every node's output shapes from the actual inputs. Simple and obviously
// correct; it is the oracle the optimized runtime is tested against.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "ops/op.hpp"

namespace lithe::runtime {

class RefExecutor {
 public:
  explicit RefExecutor(std::shared_ptr<const ir::Graph> graph);

  /// Runs with `inputs` in the order of graph.inputs; returns outputs in graph.outputs
  /// order. Checks every input's dtype and shape against the graph's declared input types.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) const;

  /// Called after every node with the node and its output tensors (for per-layer
  /// comparison tools).
  using Observer = std::function<void(const ir::Node&, const std::vector<Tensor>&)>;
  void set_observer(Observer obs) { observer_ = std::move(obs); }

  const ir::Graph& graph() const { return *graph_; }

 private:
  std::shared_ptr<const ir::Graph> graph_;
  std::vector<const ops::OpDef*> ops_;  // per node, resolved once
  std::vector<int> last_use_;           // per value: index of the last node reading it
  Observer observer_;
};

/// Checks `t` against a declared type; fails naming `what` (an input's name).
void check_tensor_type(const Tensor& t, const ir::TensorType& expected, const std::string& what);

}  // namespace lithe::runtime
