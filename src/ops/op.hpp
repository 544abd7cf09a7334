// The op contract. Every supported op has one OpDef: shape/type inference and a portable
// reference kernel. The reference kernels are the oracle for every optimized kernel.
//
// infer(): computes output element types and shapes from the inputs' types, shapes and
//   (when known) values. Write it as if everything were known: input_shape() and
//   input_value() throw InferUnknown when the shape or value is not known at build time,
//   and graph inference then marks the outputs unknown. When every input is known (always
//   at run time) infer() must give every output a full shape, except ops whose output
//   shape depends on computing the result (NonZero, Unique...), which call
//   set_output_unknown() and let compute() call ComputeContext::set_output().
//   Set output element types before reading anything that may be unknown: when
//   InferUnknown escapes, graph inference keeps only the dtypes already set.
// compute(): reads inputs and writes the pre-allocated outputs (zero-filled). It never
//   sees protobuf; attributes come through NodeAttrs.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.hpp"
#include "ir/graph.hpp"

namespace lithe::ops {

/// Thrown by InferContext accessors when a needed shape or value is unknown at build time.
struct InferUnknown {};

/// Typed attribute access with defaults; fails naming the node and attribute.
class NodeAttrs {
 public:
  explicit NodeAttrs(const ir::Node& node) : node_(node) {}
  const ir::Node& node() const { return node_; }
  int opset() const { return node_.opset; }
  bool has_attr(const std::string& name) const { return node_.attrs.count(name) != 0; }

  int64_t attr_int(const std::string& name) const;
  int64_t attr_int(const std::string& name, int64_t def) const;
  float attr_float(const std::string& name) const;
  float attr_float(const std::string& name, float def) const;
  std::string attr_string(const std::string& name) const;
  std::string attr_string(const std::string& name, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> def) const;
  std::vector<float> attr_floats(const std::string& name) const;
  std::vector<float> attr_floats(const std::string& name, std::vector<float> def) const;
  std::vector<std::string> attr_strings(const std::string& name) const;
  const Tensor& attr_tensor(const std::string& name) const;
  const ir::Attribute* attr(const std::string& name) const;

  /// Fails with a bad-input error; the caller (graph inference, executor) prefixes the
  /// node's label, so messages read "node 'n' (Op): <message>".
  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    ::lithe::fail(std::forward<Args>(args)...);
  }

 private:
  const ir::Attribute& get(const std::string& name, ir::Attribute::Kind kind) const;
  const ir::Node& node_;
};

class InferContext : public NodeAttrs {
 public:
  InferContext(const ir::Node& node, std::vector<const ir::TensorType*> in_types,
               std::vector<const Tensor*> in_values, size_t num_outputs);

  size_t num_inputs() const { return in_types_.size(); }
  /// False for an omitted optional input (empty name) and past the end.
  bool has_input(size_t i) const { return i < in_types_.size() && in_types_[i] != nullptr; }
  DType input_dtype(size_t i) const;
  /// Full static shape; throws InferUnknown if any dim is unknown.
  const Shape& input_shape(size_t i) const;
  int64_t input_rank(size_t i) const { return static_cast<int64_t>(input_shape(i).size()); }
  /// Constant (or, at run time, actual) value; throws InferUnknown if not known.
  const Tensor& input_value(size_t i) const;
  /// True when input_value(i) would succeed.
  bool input_value_known(size_t i) const { return has_input(i) && in_values_[i] != nullptr; }

  size_t num_outputs() const { return out_.size(); }
  bool has_output(size_t i) const { return i < out_.size() && out_present_[i]; }
  void set_output(size_t i, DType dtype, Shape shape);
  void set_output_unknown(size_t i, DType dtype);
  void set_output_present(size_t i, bool present) { out_present_.at(i) = present; }
  const std::vector<ir::TensorType>& outputs() const { return out_; }

  /// Checks the input count is within [min, max] and the required inputs are present.
  void expect_inputs(size_t min, size_t max) const;

 private:
  std::vector<const ir::TensorType*> in_types_;
  std::vector<const Tensor*> in_values_;
  std::vector<ir::TensorType> out_;
  std::vector<char> out_present_;
};

/// Runs a subgraph (If/Loop/Scan bodies) with the given inputs; supplied by the executor.
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  /// `inputs` bind the subgraph's formal inputs in order; outer-scope values are resolved
  /// by name through the executor that owns this runner.
  virtual std::vector<Tensor> run(const ir::Graph& body, const std::vector<Tensor>& inputs) = 0;
};

class ComputeContext : public NodeAttrs {
 public:
  ComputeContext(const ir::Node& node, std::vector<const Tensor*> inputs,
                 std::vector<Tensor*> outputs, SubgraphRunner* sub = nullptr)
      : NodeAttrs(node), in_(std::move(inputs)), out_(std::move(outputs)), sub_(sub) {}

  size_t num_inputs() const { return in_.size(); }
  bool has_input(size_t i) const { return i < in_.size() && in_[i] != nullptr; }
  const Tensor& input(size_t i) const;
  size_t num_outputs() const { return out_.size(); }
  bool has_output(size_t i) const { return i < out_.size() && out_[i] != nullptr; }
  Tensor& output(size_t i);
  /// Replaces an output (for ops whose shape is known only after computing).
  void set_output(size_t i, Tensor t);
  SubgraphRunner* subgraphs() const { return sub_; }

 private:
  std::vector<const Tensor*> in_;
  std::vector<Tensor*> out_;
  SubgraphRunner* sub_;
};

using InferFn = void (*)(InferContext&);
using ComputeFn = void (*)(ComputeContext&);

/// One supported op. `since` is the first default-domain opset version lithe implements
/// it for; versions differences are handled inside infer/compute through opset().
struct OpDef {
  std::string_view name;
  std::string_view domain;  ///< "" = ai.onnx
  int since;
  InferFn infer;
  ComputeFn compute;
};

/// The registry of every op (built once from the family lists in registry.cpp).
const std::vector<OpDef>& all_ops();
/// Finds an op; nullptr if lithe does not implement it.
const OpDef* find_op(std::string_view domain, std::string_view name);
/// Like find_op, but fails with the op, domain, opset and node named.
const OpDef& require_op(const ir::Node& node);
/// True for the ONNX elementwise ops of one float input (Relu, Sigmoid, Clip, HardSwish...):
/// output[i] depends only on input[i] (Clip's bounds are further inputs).
bool is_unary_elementwise(std::string_view op);

}  // namespace lithe::ops
