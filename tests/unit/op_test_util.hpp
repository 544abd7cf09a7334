// The one harness the op unit tests share: run a single node straight through the op
// registry (infer_node, then the reference kernel into outputs allocated from the inferred
// types, as the executor does), plus tensor and attribute makers and error assertions.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lithe/error.hpp"
#include "ops/infer.hpp"
#include "ops/op.hpp"

namespace lithe::test {

// ---- tensors ----

/// A tensor of `shape` holding `vals` (element-wise copy, so it works for bool too).
template <class T>
Tensor make(Shape shape, std::vector<T> vals) {
  Tensor t(dtype_of<T>(), std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), vals.size());
  T* d = t.data<T>();
  const size_t n = std::min(vals.size(), static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < n; ++i) d[i] = vals[i];
  return t;
}
/// A 1-D int64 tensor (shape-like inputs: axes, sizes, indices...).
inline Tensor ints(std::vector<int64_t> v) {
  const auto n = static_cast<int64_t>(v.size());
  return make<int64_t>({n}, std::move(v));
}
/// A float32 tensor of `shape` holding 0, 1, 2...
inline Tensor floats(Shape shape) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

// ---- attributes ----

inline ir::Attribute attr_i(int64_t v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInt;
  a.i = v;
  return a;
}
inline ir::Attribute attr_f(float v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
inline ir::Attribute attr_is(std::vector<int64_t> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}
inline ir::Attribute attr_fs(std::vector<float> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kFloats;
  a.floats = std::move(v);
  return a;
}
inline ir::Attribute attr_s(std::string v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}
inline ir::Attribute attr_ss(std::vector<std::string> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kStrings;
  a.strings = std::move(v);
  return a;
}

// ---- running one node ----

/// A default-domain node named `name` with `outputs` outputs and no inputs yet.
inline ir::Node op_node(const std::string& op, int opset, size_t outputs = 1,
                        const std::string& name = "n") {
  ir::Node node;
  node.name = name;
  node.op_type = op;
  node.opset = opset;
  for (size_t i = 0; i < outputs; ++i) node.outputs.push_back(static_cast<int>(100 + i));
  return node;
}

namespace detail {

// `node` with its inputs set from `inputs` (an undefined Tensor = an omitted input), and the
// per-input views infer_node and compute take.
struct Bound {
  ir::Node node;
  std::vector<ir::TensorType> types;
  std::vector<const ir::TensorType*> type_ptrs;
  std::vector<const Tensor*> infer_values;  // nullptr where infer may not see the value
  std::vector<const Tensor*> values;

  Bound(const ir::Node& n, const std::vector<Tensor>& inputs, bool values_known)
      : node(n),
        types(inputs.size()),
        type_ptrs(inputs.size(), nullptr),
        infer_values(inputs.size(), nullptr),
        values(inputs.size(), nullptr) {
    node.inputs.clear();
    for (size_t k = 0; k < inputs.size(); ++k) {
      const Tensor& t = inputs[k];
      node.inputs.push_back(t.defined() ? static_cast<int>(k) : -1);
      if (!t.defined()) continue;
      types[k] = {t.dtype(), true, t.shape()};
      type_ptrs[k] = &types[k];
      values[k] = &t;
      if (values_known) infer_values[k] = &t;
    }
  }
  Bound(const Bound&) = delete;
  Bound& operator=(const Bound&) = delete;

  std::vector<ir::TensorType> infer(const ops::OpDef& op) const {
    return ops::infer_node(node, op, type_ptrs, infer_values);
  }
};

}  // namespace detail

/// Infers one node's output types. With `values_known` false, infer sees only the inputs'
/// types and shapes (as for graph inputs); outputs it cannot shape come back unknown.
inline std::vector<ir::TensorType> infer_one(const ir::Node& node,
                                             const std::vector<Tensor>& inputs,
                                             bool values_known = true) {
  detail::Bound b(node, inputs, values_known);
  return b.infer(ops::require_op(b.node));
}

/// Infers, then computes one node into outputs allocated from the inferred types (zero
/// filled); an output whose shape is unknown is left undefined for the kernel to set.
inline std::vector<Tensor> run_one(const ir::Node& node, const std::vector<Tensor>& inputs,
                                   bool values_known = true) {
  detail::Bound b(node, inputs, values_known);
  const ops::OpDef& op = ops::require_op(b.node);
  std::vector<ir::TensorType> out_types = b.infer(op);
  const size_t nout = b.node.outputs.size();
  std::vector<Tensor> outs(nout);
  std::vector<Tensor*> ptrs(nout, nullptr);
  for (size_t k = 0; k < nout; ++k) {
    if (b.node.outputs[k] < 0) continue;
    ptrs[k] = &outs[k];
    const ir::TensorType& t = out_types[k];
    if (t.fully_known() && t.dtype != DType::kUndefined) outs[k] = Tensor(t.dtype, t.dims);
  }
  ops::ComputeContext ctx(b.node, b.values, ptrs);
  op.compute(ctx);
  return outs;
}

/// run_one with std::nullopt marking an omitted input.
inline std::vector<Tensor> run_op(const std::string& op, int opset,
                                  std::map<std::string, ir::Attribute> attrs,
                                  const std::vector<std::optional<Tensor>>& ins, size_t nout = 1,
                                  bool values_known = true) {
  ir::Node node = op_node(op, opset, nout);
  node.attrs = std::move(attrs);
  std::vector<Tensor> inputs;
  for (const std::optional<Tensor>& t : ins) inputs.push_back(t ? *t : Tensor());
  return run_one(node, inputs, values_known);
}

// ---- errors ----

/// Calls `f` and returns the message of the lithe::Error it throws (checking it is a
/// bad-input error); fails the test if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a lithe::Error";
  return "";
}

inline std::string op_error(const std::string& op, int opset,
                            std::map<std::string, ir::Attribute> attrs,
                            const std::vector<std::optional<Tensor>>& ins, size_t nout = 1) {
  return error_of([&] { run_op(op, opset, std::move(attrs), ins, nout); });
}

inline ::testing::AssertionResult contains_format(const char* haystack_expr,
                                                  const char* needle_expr,
                                                  const std::string& haystack,
                                                  const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << haystack_expr << " is '" << haystack << "', which lacks "
                                       << needle_expr << " ('" << needle << "')";
}

/// One node plus its inputs, built fluently: Case-style (inputs given up front; infer() and
/// run()) or OpCase-style (attributes chained, then run(inputs)).
struct OpCase {
  ir::Node node;
  std::vector<Tensor> inputs;
  bool values_known = true;

  explicit OpCase(const std::string& op, int opset, size_t outputs = 1)
      : node(op_node(op, opset, outputs)) {}
  OpCase(const std::string& op, int opset, std::vector<Tensor> in, size_t outputs = 1)
      : node(op_node(op, opset, outputs)), inputs(std::move(in)) {}

  OpCase& set(const std::string& name, ir::Attribute a) {
    node.attrs[name] = std::move(a);
    return *this;
  }
  OpCase& i(const std::string& name, int64_t v) { return set(name, attr_i(v)); }
  OpCase& f(const std::string& name, float v) { return set(name, attr_f(v)); }
  OpCase& s(const std::string& name, std::string v) { return set(name, attr_s(std::move(v))); }
  OpCase& ss(const std::string& name, std::vector<std::string> v) {
    return set(name, attr_ss(std::move(v)));
  }

  std::vector<ir::TensorType> infer() const { return infer_one(node, inputs, values_known); }
  std::vector<Tensor> run() const { return run_one(node, inputs, values_known); }
  std::vector<Tensor> run(const std::vector<Tensor>& in) const {
    return run_one(node, in, values_known);
  }
};

/// The error of running `c` on `inputs` (see error_of).
inline std::string error_of(const OpCase& c, const std::vector<Tensor>& inputs) {
  return error_of([&] { c.run(inputs); });
}

}  // namespace lithe::test

/// `haystack` (a string) contains `needle`; each is evaluated once.
#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_PRED_FORMAT2(::lithe::test::contains_format, haystack, needle)

/// `expr` throws a bad-input lithe::Error whose message contains `needle`.
#define EXPECT_FAILS(expr, needle) \
  EXPECT_CONTAINS(::lithe::test::error_of([&] { (void)(expr); }), needle)
