// The intermediate representation: a Graph owns Values and Nodes in topological order.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace lithe::ir {

class Graph;

/// Element type and shape of a value. Dims are static after import (symbolic dims are fixed
/// from the shapes the user gives); -1 marks a dim that is only known at run time, and
/// `has_shape == false` an unknown rank.
struct TensorType {
  DType dtype = DType::kUndefined;
  bool has_shape = false;
  Shape dims;

  bool fully_known() const {
    if (!has_shape) return false;
    for (int64_t d : dims)
      if (d < 0) return false;
    return true;
  }
  std::string str() const;
};

/// A typed node attribute (the ONNX attribute kinds lithe supports).
struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings, kTensors, kGraphs };
  Kind kind = Kind::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;

  /// Attributes of one kind, for passes that write them.
  static Attribute of_int(int64_t v) {
    Attribute a;
    a.kind = Kind::kInt;
    a.i = v;
    return a;
  }
  static Attribute of_ints(std::vector<int64_t> v) {
    Attribute a;
    a.kind = Kind::kInts;
    a.ints = std::move(v);
    return a;
  }
  static Attribute of_floats(std::vector<float> v) {
    Attribute a;
    a.kind = Kind::kFloats;
    a.floats = std::move(v);
    return a;
  }
  static Attribute of_string(std::string v) {
    Attribute a;
    a.kind = Kind::kString;
    a.s = std::move(v);
    return a;
  }
  static Attribute of_tensor(Tensor v) {
    Attribute a;
    a.kind = Kind::kTensor;
    a.t = std::move(v);
    return a;
  }
};
const char* attr_kind_name(Attribute::Kind k);

struct Value {
  std::string name;
  TensorType type;
  int producer = -1;            ///< node index, -1 for graph inputs and constants
  std::vector<int> consumers;   ///< node indices (a node appears once per use)
  std::optional<Tensor> constant;  ///< initializer / folded constant data
  /// The constant is stored in the engine as this type (kFloat16: an fp32 constant written
  /// as half by `--precision fp16` and decoded back to fp32 at load); kUndefined: as its
  /// own dtype.
  DType storage = DType::kUndefined;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  ///< "" for the default ONNX domain
  int opset = 0;       ///< opset version of `domain` the model imports
  std::map<std::string, Attribute> attrs;
  std::vector<int> inputs;   ///< value ids; -1 for an omitted optional input
  std::vector<int> outputs;  ///< value ids; -1 for an omitted optional output

  /// "node 'name' (Op)" for messages.
  std::string label() const;
};

class Graph {
 public:
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes;     ///< in topological order once verified
  std::vector<int> inputs;     ///< runtime inputs (not initializers)
  std::vector<int> outputs;
  std::map<std::string, int> opsets;  ///< domain -> version
  /// Value ids visible from an enclosing graph (subgraphs of If/Loop/Scan).
  std::vector<int> outer_refs;

  /// Adds a value; fails on a duplicate name (names are unique within a graph).
  int add_value(const std::string& name, TensorType type = {});
  /// Value id by name, or -1.
  int find_value(const std::string& name) const;
  /// Appends a node and wires producer/consumer links.
  int add_node(Node node);
  /// Recomputes producer/consumer links from the node lists.
  void relink();
  /// Sorts nodes topologically; fails naming a node on a cycle.
  void topo_sort();
  /// Renames a value (the new name must be unused).
  void rename_value(int id, const std::string& name);
  /// Drops the nodes marked in `drop_node` and every value no longer referenced by a node,
  /// a graph input/output, an outer reference or (by name) a subgraph; remaps ids.
  void compact(const std::vector<char>& drop_node);

 private:
  std::map<std::string, int> by_name_;
};

/// True if the node carries a subgraph (If/Loop/Scan bodies).
bool has_subgraph(const Node& n);
/// Appends the names that `n`'s subgraph bodies (at any depth) read from enclosing scopes.
/// A nested body's reference may name a value of an intermediate body rather than of the
/// graph holding `n`; callers look names up in their own graph, so an extra name only keeps
/// a value alive.
void outer_names_read_by(const Node& n, std::vector<std::string>& out);
/// The same for every node of `g`.
void outer_names_read_by(const Graph& g, std::vector<std::string>& out);

/// Checks the invariants: ids in range, one producer per value, producers before consumers,
/// unique names, outputs produced. Fails with a message naming the offending node or value.
void verify(const Graph& g);

}  // namespace lithe::ir
