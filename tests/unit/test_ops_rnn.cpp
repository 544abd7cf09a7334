// Unit tests for the rnn op family's reference kernels: results the backend suite
// does not cover and hostile attributes/shapes (each must be a lithe::Error, never a crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops/infer.hpp"
#include "ops/op.hpp"

using namespace lithe;

namespace {

// Runs one node through infer_node and its reference kernel, like the executor does.
struct OpCase {
  ir::Node node;
  explicit OpCase(const std::string& op, int opset, size_t outputs = 1) {
    node.name = "n";
    node.op_type = op;
    node.opset = opset;
    for (size_t i = 0; i < outputs; ++i) node.outputs.push_back(static_cast<int>(i));
  }
  OpCase& i(const std::string& name, int64_t v) {
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::kInt;
    a.i = v;
    node.attrs[name] = a;
    return *this;
  }
  OpCase& f(const std::string& name, float v) {
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::kFloat;
    a.f = v;
    node.attrs[name] = a;
    return *this;
  }
  OpCase& s(const std::string& name, const std::string& v) {
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::kString;
    a.s = v;
    node.attrs[name] = a;
    return *this;
  }
  OpCase& ss(const std::string& name, const std::vector<std::string>& v) {
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::kStrings;
    a.strings = v;
    node.attrs[name] = a;
    return *this;
  }
  /// Undefined tensors stand for omitted optional inputs.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) {
    node.inputs.clear();
    std::vector<ir::TensorType> types(inputs.size());
    std::vector<const ir::TensorType*> tp(inputs.size(), nullptr);
    std::vector<const Tensor*> vals(inputs.size(), nullptr);
    for (size_t k = 0; k < inputs.size(); ++k) {
      node.inputs.push_back(inputs[k].defined() ? static_cast<int>(k) : -1);
      if (!inputs[k].defined()) continue;
      types[k] = {inputs[k].dtype(), true, inputs[k].shape()};
      tp[k] = &types[k];
      vals[k] = &inputs[k];
    }
    const ops::OpDef& op = ops::require_op(node);
    std::vector<ir::TensorType> out_types = ops::infer_node(node, op, tp, vals);
    std::vector<Tensor> outs(node.outputs.size());
    std::vector<Tensor*> ptrs(node.outputs.size(), nullptr);
    for (size_t k = 0; k < outs.size(); ++k) {
      if (node.outputs[k] < 0) continue;
      outs[k] = Tensor(out_types[k].dtype, out_types[k].dims);
      ptrs[k] = &outs[k];
    }
    ops::ComputeContext ctx(node, vals, ptrs);
    op.compute(ctx);
    return outs;
  }
};

template <class T>
Tensor make(const Shape& shape, std::vector<T> v) {
  Tensor t(dtype_of<T>(), shape);
  std::copy(v.begin(), v.end(), t.data<T>());
  return t;
}

// Runs and returns the error message; fails the test if it ran without one.
std::string error_of(OpCase c, const std::vector<Tensor>& inputs) {
  try {
    c.run(inputs);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

}  // namespace

TEST(OpsRnn, ReluRnnWithIdentityWeights) {
  // hidden 1, W = 1, R = 0: Y_t = relu(x_t).
  OpCase c("RNN", 14, 2);
  c.i("hidden_size", 1).ss("activations", {"Relu"});
  auto out = c.run({make<float>({3, 1, 1}, {1, -2, 3}), make<float>({1, 1, 1}, {1}),
                    make<float>({1, 1, 1}, {0})});
  EXPECT_EQ(out[0].shape(), (Shape{3, 1, 1, 1}));
  EXPECT_FLOAT_EQ(out[0].data<float>()[1], 0.0f);
  EXPECT_FLOAT_EQ(out[1].data<float>()[0], 3.0f);
}

TEST(OpsRnn, ZeroLengthSequenceKeepsInitialState) {
  OpCase c("GRU", 14, 2);
  c.i("hidden_size", 1);
  auto out = c.run({make<float>({2, 1, 1}, {1, 1}), make<float>({1, 3, 1}, {1, 1, 1}),
                    make<float>({1, 3, 1}, {1, 1, 1}), Tensor(), make<int32_t>({1}, {0}),
                    make<float>({1, 1, 1}, {0.25f})});
  EXPECT_FLOAT_EQ(out[0].data<float>()[0], 0.0f);
  EXPECT_FLOAT_EQ(out[1].data<float>()[0], 0.25f);
}

TEST(OpsRnn, HostileShapesAndAttributes) {
  Tensor x = make<float>({2, 1, 3}, std::vector<float>(6));
  Tensor w = Tensor(DType::kFloat32, {1, 16, 3});
  Tensor r = Tensor(DType::kFloat32, {1, 16, 4});
  EXPECT_CONTAINS(error_of(OpCase("LSTM", 14).i("hidden_size", 5), {x, w, r}), "hidden_size");
  EXPECT_CONTAINS(error_of(OpCase("LSTM", 14).s("direction", "up"), {x, w, r}), "direction");
  EXPECT_CONTAINS(error_of(OpCase("LSTM", 14).s("direction", "bidirectional"), {x, w, r}), "W has");
  EXPECT_CONTAINS(
      error_of(OpCase("LSTM", 14).ss("activations", {"Sigmoid", "Tanh", "Nope"}), {x, w, r}),
      "unknown activation");
  EXPECT_CONTAINS(error_of(OpCase("LSTM", 14).i("layout", 2), {x, w, r}), "layout");
  EXPECT_CONTAINS(error_of(OpCase("LSTM", 14), {x, w, r, Tensor(), make<int32_t>({1}, {3})}),
                  "sequence_lens");
  EXPECT_CONTAINS(error_of(OpCase("GRU", 14), {x, w, r}), "W has");
}
