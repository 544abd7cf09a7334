// The reduce family (src/ops/reduce.cpp) driven directly through the op registry: bad axes
// give a lithe::Error, and empty reductions give each op's identity value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op.hpp"

using namespace lithe;

namespace {

template <class T>
Tensor make(Shape shape, std::vector<T> vals) {
  Tensor t(dtype_of<T>(), std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), vals.size());
  T* d = static_cast<T*>(t.raw());  // element-wise: std::vector<bool> has no data()
  for (size_t i = 0; i < vals.size(); ++i) d[i] = vals[i];
  return t;
}
[[maybe_unused]] Tensor ints(std::vector<int64_t> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return make<int64_t>({n}, std::move(v));
}
[[maybe_unused]] Tensor floats(Shape s) {
  Tensor t(DType::kFloat32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

[[maybe_unused]] ir::Attribute attr_i(int64_t v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInt;
  a.i = v;
  return a;
}
[[maybe_unused]] ir::Attribute attr_f(float v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
[[maybe_unused]] ir::Attribute attr_is(std::vector<int64_t> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}
[[maybe_unused]] ir::Attribute attr_s(std::string v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}

// One node run straight through the registry: infer() over all-known inputs, then compute()
// into outputs allocated from the inferred shapes (as the executor does). A missing input
// is an undefined Tensor.
struct Case {
  ir::Node node;
  std::vector<Tensor> inputs;

  Case(const std::string& op, int opset, std::vector<Tensor> in, size_t outputs = 1)
      : inputs(std::move(in)) {
    node.name = "n";
    node.op_type = op;
    node.opset = opset;
    for (size_t i = 0; i < inputs.size(); ++i)
      node.inputs.push_back(inputs[i].defined() ? static_cast<int>(i) : -1);
    for (size_t i = 0; i < outputs; ++i) node.outputs.push_back(static_cast<int>(100 + i));
  }
  Case& set(const std::string& name, ir::Attribute a) {
    node.attrs[name] = std::move(a);
    return *this;
  }

  std::vector<ir::TensorType> infer() {
    types.clear();
    types.reserve(inputs.size());
    std::vector<const ir::TensorType*> tp;
    std::vector<const Tensor*> vp;
    for (const Tensor& t : inputs) {
      types.push_back({t.dtype(), true, t.shape()});
      tp.push_back(t.defined() ? &types.back() : nullptr);
      vp.push_back(t.defined() ? &t : nullptr);
    }
    ops::InferContext ctx(node, tp, vp, node.outputs.size());
    const ops::OpDef* op = ops::find_op("", node.op_type);
    if (!op) throw std::runtime_error("no op " + node.op_type);
    op->infer(ctx);
    return ctx.outputs();
  }

  std::vector<Tensor> run() {
    std::vector<ir::TensorType> out_types = infer();
    std::vector<Tensor> outs;
    for (const auto& t : out_types) outs.emplace_back(t.dtype, t.has_shape ? t.dims : Shape{});
    std::vector<const Tensor*> ip;
    for (const Tensor& t : inputs) ip.push_back(t.defined() ? &t : nullptr);
    std::vector<Tensor*> op_out;
    for (Tensor& t : outs) op_out.push_back(&t);
    ops::ComputeContext ctx(node, ip, op_out);
    ops::find_op("", node.op_type)->compute(ctx);
    return outs;
  }

  std::vector<ir::TensorType> types;
};

#define EXPECT_FAILS(expr, needle)                                                  \
  do {                                                                              \
    try {                                                                           \
      (void)(expr);                                                                 \
      ADD_FAILURE() << "expected an error containing '" << (needle) << "'";         \
    } catch (const Error& e) {                                                      \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what(); \
    }                                                                               \
  } while (0)

}  // namespace

TEST(OpsReduce, AxesValidation) {
  Case dup("ReduceSum", 13, {floats({2, 3}), ints({1, -1})});
  EXPECT_FAILS(dup.infer(), "twice");
  Case oor("ReduceMax", 18, {floats({2, 3}), ints({2})});
  EXPECT_FAILS(oor.infer(), "out of range");
  Case attr("ReduceMean", 18, {floats({2, 3})});
  attr.set("axes", attr_is({0}));
  EXPECT_FAILS(attr.infer(), "not allowed");
  Case kd("ReduceL1", 11, {floats({2, 3})});
  kd.set("keepdims", attr_i(2));
  EXPECT_FAILS(kd.infer(), "keepdims");
  Case axes_type("ReduceSum", 13, {floats({2, 3}), make<int32_t>({1}, {0})});
  EXPECT_FAILS(axes_type.infer(), "int64");
  Case b("ReduceSum", 13, {make<bool>({2}, {true, false})});
  EXPECT_FAILS(b.infer(), "bool");
}

TEST(OpsReduce, EmptyReductionsGiveIdentities) {
  const float inf = std::numeric_limits<float>::infinity();
  struct Want {
    const char* op;
    float value;
  };
  for (Want w :
       {Want{"ReduceSum", 0.f}, Want{"ReduceProd", 1.f}, Want{"ReduceMax", -inf},
        Want{"ReduceMin", inf}, Want{"ReduceL1", 0.f}, Want{"ReduceL2", 0.f},
        Want{"ReduceSumSquare", 0.f}, Want{"ReduceLogSum", -inf}, Want{"ReduceLogSumExp", -inf}}) {
    Case c(w.op, 18, {floats({2, 0, 3}), ints({1})});
    std::vector<Tensor> out = c.run();
    ASSERT_EQ(out[0].shape(), (Shape{2, 1, 3})) << w.op;
    for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(out[0].data<float>()[i], w.value) << w.op;
  }
  Case mean("ReduceMean", 18, {floats({2, 0}), ints({1})});
  EXPECT_TRUE(std::isnan(mean.run()[0].data<float>()[0]));
  Case imax("ReduceMax", 18, {make<int32_t>({0}, {}), ints({0})});
  EXPECT_EQ(imax.run()[0].data<int32_t>()[0], std::numeric_limits<int32_t>::min());
}

TEST(OpsReduce, NoopAndKeepdims) {
  Case noop("ReduceSumSquare", 18, {floats({2, 2}), ints({})});
  noop.set("noop_with_empty_axes", attr_i(1));
  std::vector<Tensor> out = noop.run();
  ASSERT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(out[0].data<float>()[3], 9.0f);  // each element reduced alone: 3^2
  Case all("ReduceSum", 13, {floats({2, 3}), ints({})});
  all.set("keepdims", attr_i(0));
  out = all.run();
  ASSERT_EQ(out[0].shape(), Shape{});
  EXPECT_EQ(out[0].data<float>()[0], 15.0f);
  Case lse("ReduceLogSumExp", 11, {make<float>({2}, {1000, 1000})});
  EXPECT_NEAR(lse.run()[0].data<float>()[0], 1000 + std::log(2.0f), 1e-3);
  Case wrap("ReduceSum", 11, {make<int8_t>({2}, {100, 100})});
  EXPECT_EQ(wrap.run()[0].data<int8_t>()[0], static_cast<int8_t>(-56));
}
