// The elementwise op families (src/ops/unary.cpp, binary.cpp, softmax.cpp) driven directly
// through the op registry: integer edge cases that would be UB in C++ (division by zero,
// MIN / -1, overflow, over-wide shifts), legacy opset semantics, and hostile attributes that
// must give a lithe::Error rather than a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

namespace {

template <class T>
Tensor vec(std::vector<T> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return make<T>({n}, std::move(v));
}
template <class T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

using Case = test::OpCase;

constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();

}  // namespace

// ---- binary ----

TEST(OpsElementwise, IntegerDivisionAndModuloEdges) {
  Case zero("Div", 13, {vec<int32_t>({1, 2}), vec<int32_t>({1, 0})});
  EXPECT_FAILS(zero.run(), "division by zero");
  Case mzero("Mod", 13, {vec<int64_t>({1}), vec<int64_t>({0})});
  EXPECT_FAILS(mzero.run(), "modulo by zero");

  Case minus1("Div", 13, {vec<int32_t>({kI32Min, -7, 7}), vec<int32_t>({-1, 2, -2})});
  EXPECT_EQ(values<int32_t>(minus1.run()[0]), (std::vector<int32_t>{kI32Min, -3, -3}));

  Case py("Mod", 13, {vec<int32_t>({-7, 7, kI32Min, 6}), vec<int32_t>({3, -3, -1, 3})});
  EXPECT_EQ(values<int32_t>(py.run()[0]), (std::vector<int32_t>{2, -2, 0, 0}));
  Case c("Mod", 13, {vec<int32_t>({-7, 7}), vec<int32_t>({3, -3})});
  c.set("fmod", attr_i(1));
  EXPECT_EQ(values<int32_t>(c.run()[0]), (std::vector<int32_t>{-1, 1}));
  Case bad("Mod", 13, {vec<int32_t>({1}), vec<int32_t>({1})});
  bad.set("fmod", attr_i(2));
  EXPECT_FAILS(bad.infer(), "fmod");
}

TEST(OpsElementwise, IntegerArithmeticWraps) {
  Case add("Add", 14, {vec<int32_t>({kI32Max}), vec<int32_t>({1})});
  EXPECT_EQ(values<int32_t>(add.run()[0]), std::vector<int32_t>{kI32Min});
  Case mul("Mul", 14, {vec<uint16_t>({65535}), vec<uint16_t>({65535})});
  EXPECT_EQ(values<uint16_t>(mul.run()[0]), std::vector<uint16_t>{1});
  Case neg("Neg", 13, {vec<int32_t>({kI32Min, 5})});
  EXPECT_EQ(values<int32_t>(neg.run()[0]), (std::vector<int32_t>{kI32Min, -5}));
  Case abs("Abs", 13, {vec<int8_t>({-128, -3})});
  EXPECT_EQ(values<int8_t>(abs.run()[0]), (std::vector<int8_t>{-128, 3}));
}

TEST(OpsElementwise, IntegerPow) {
  Case p("Pow", 15, {vec<int64_t>({3, 2, -1, 1, 0}), vec<int64_t>({20, -1, -3, -5, 0})});
  EXPECT_EQ(values<int64_t>(p.run()[0]), (std::vector<int64_t>{3486784401, 0, -1, 1, 1}));
  Case mixed("Pow", 15, {vec<float>({2, 4}), vec<int32_t>({3, -1})});
  EXPECT_EQ(values<float>(mixed.run()[0]), (std::vector<float>{8, 0.25f}));
  Case old("Pow", 7, {vec<float>({2}), vec<int32_t>({3})});
  EXPECT_FAILS(old.infer(), "opset 12");
}

TEST(OpsElementwise, BitShiftPastWidth) {
  Case l("BitShift", 11, {vec<uint8_t>({1, 1, 255}), vec<uint8_t>({7, 8, 200})});
  l.set("direction", attr_s("LEFT"));
  EXPECT_EQ(values<uint8_t>(l.run()[0]), (std::vector<uint8_t>{128, 0, 0}));
  Case r("BitShift", 11, {vec<uint64_t>({~uint64_t{0}}), vec<uint64_t>({64})});
  r.set("direction", attr_s("RIGHT"));
  EXPECT_EQ(values<uint64_t>(r.run()[0]), std::vector<uint64_t>{0});
  Case bad("BitShift", 11, {vec<uint8_t>({1}), vec<uint8_t>({1})});
  bad.set("direction", attr_s("UP"));
  EXPECT_FAILS(bad.infer(), "direction");
  Case signed_in("BitShift", 11, {vec<int8_t>({1}), vec<int8_t>({1})});
  signed_in.set("direction", attr_s("LEFT"));
  EXPECT_FAILS(signed_in.infer(), "unsigned");
}

TEST(OpsElementwise, LegacyBroadcast) {
  Tensor a(DType::kFloat32, {2, 3, 4});
  // broadcast=1, axis=1: B [3] lines up with A's dim 1.
  Case ax("Add", 6, {a, make<float>({3}, {1, 2, 3})});
  ax.set("broadcast", attr_i(1)).set("axis", attr_i(1));
  std::vector<float> out = values<float>(ax.run()[0]);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[4], 2.0f);
  EXPECT_EQ(out[23], 3.0f);
  Case off("Add", 6, {a, make<float>({3}, {1, 2, 3})});
  off.set("broadcast", attr_i(1)).set("axis", attr_i(2));
  EXPECT_FAILS(off.infer(), "broadcast");
  Case none("Mul", 6, {a, make<float>({4}, {1, 2, 3, 4})});
  EXPECT_FAILS(none.infer(), "broadcast is 0");
  Case trailing("Sub", 6, {a, make<float>({4}, {1, 2, 3, 4})});
  trailing.set("broadcast", attr_i(1));
  EXPECT_EQ(trailing.infer()[0].dims, (Shape{2, 3, 4}));
  // Modern numpy broadcasting fails cleanly on incompatible shapes.
  Case bad("Add", 14, {a, Tensor(DType::kFloat32, {5})});
  EXPECT_FAILS(bad.infer(), "cannot be broadcast");
  Case types("Add", 14, {a, Tensor(DType::kFloat64, {4})});
  EXPECT_FAILS(types.infer(), "element type");
}

TEST(OpsElementwise, WhereAndVariadic) {
  Case w("Where", 16,
         {make<bool>({2, 1}, {true, false}), vec<int64_t>({1, 2, 3}), make<int64_t>({}, {9})});
  EXPECT_EQ(values<int64_t>(w.run()[0]), (std::vector<int64_t>{1, 2, 3, 9, 9, 9}));
  Case mean("Mean", 13, {vec<Half>({1, 2}), make<Half>({2, 1}, {3, 4})});
  std::vector<Tensor> m = mean.run();
  ASSERT_EQ(m[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(static_cast<float>(m[0].data<Half>()[3]), 3.0f);
  Case mx("Max", 13, {vec<float>({1, std::nanf("")}), vec<float>({2, 0})});
  std::vector<float> r = values<float>(mx.run()[0]);
  EXPECT_EQ(r[0], 2.0f);
  EXPECT_TRUE(std::isnan(r[1]));
  Case none("Sum", 13, {});
  EXPECT_FAILS(none.infer(), "at least one");
}

// ---- unary ----

TEST(OpsElementwise, CastConversions) {
  float nan = std::nanf("");
  Case c("Cast", 13, {vec<float>({nan, 1e20f, -1e20f, -2.7f})});
  c.set("to", attr_i(static_cast<int64_t>(DType::kInt32)));
  EXPECT_EQ(values<int32_t>(c.run()[0]), (std::vector<int32_t>{0, kI32Max, kI32Min, -2}));
  Case old("Cast", 1, {vec<int32_t>({3})});
  old.set("to", attr_s("DOUBLE"));
  EXPECT_EQ(values<double>(old.run()[0]), std::vector<double>{3.0});
  Case str("Cast", 13, {vec<float>({1})});
  str.set("to", attr_i(static_cast<int64_t>(DType::kString)));
  EXPECT_FAILS(str.infer(), "string");
  Case unknown("Cast", 13, {vec<float>({1})});
  unknown.set("to", attr_i(12345));
  EXPECT_FAILS(unknown.infer(), "unknown element type");
  Case like("CastLike", 15, {vec<float>({1.5f}), vec<bool>({false})});
  EXPECT_EQ(values<bool>(like.run()[0]), std::vector<bool>{true});
}

TEST(OpsElementwise, ClipBounds) {
  Case swapped("Clip", 13, {vec<float>({-5, 0, 5}), make<float>({}, {2}), make<float>({}, {1})});
  EXPECT_EQ(values<float>(swapped.run()[0]), (std::vector<float>{1, 1, 1}));
  Case ints("Clip", 13, {vec<int8_t>({-128, 0, 127}), make<int8_t>({}, {-1})});
  EXPECT_EQ(values<int8_t>(ints.run()[0]), (std::vector<int8_t>{-1, 0, 127}));
  Case old("Clip", 6, {vec<float>({-5, 0, 5})});
  old.set("min", attr_f(-1)).set("max", attr_f(1));
  EXPECT_EQ(values<float>(old.run()[0]), (std::vector<float>{-1, 0, 1}));
  Case wide("Clip", 13, {vec<float>({1}), vec<float>({0, 1})});
  EXPECT_FAILS(wide.infer(), "scalar");
}

TEST(OpsElementwise, RoundHalfToEvenAndPredicates) {
  Case r("Round", 11, {vec<float>({0.5f, 1.5f, 2.5f, -2.5f, -0.4f})});
  EXPECT_EQ(values<float>(r.run()[0]), (std::vector<float>{0, 2, 2, -2, -0.0f}));
  float inf = std::numeric_limits<float>::infinity();
  Case isinf("IsInf", 10, {vec<float>({inf, -inf, 1})});
  isinf.set("detect_positive", attr_i(0));
  EXPECT_EQ(values<bool>(isinf.run()[0]), (std::vector<bool>{false, true, false}));
  Case gelu("Gelu", 20, {vec<float>({1})});
  gelu.set("approximate", attr_s("fast"));
  EXPECT_FAILS(gelu.infer(), "approximate");
  Case ints("Sqrt", 13, {vec<int32_t>({4})});
  EXPECT_FAILS(ints.infer(), "float");
}

TEST(OpsElementwise, DropoutModes) {
  Case mask("Dropout", 13, {vec<float>({1, 2})}, 2);
  std::vector<Tensor> out = mask.run();
  EXPECT_EQ(values<float>(out[0]), (std::vector<float>{1, 2}));
  EXPECT_EQ(values<bool>(out[1]), (std::vector<bool>{true, true}));
  Case train("Dropout", 13, {vec<float>({1}), make<float>({}, {0.5f}), make<bool>({}, {true})});
  EXPECT_FAILS(train.run(), "training mode");
  Case zero("Dropout", 13, {vec<float>({1}), make<float>({}, {0.0f}), make<bool>({}, {true})});
  EXPECT_EQ(values<float>(zero.run()[0]), std::vector<float>{1});
}

// ---- softmax ----

TEST(OpsElementwise, SoftmaxAxisSemantics) {
  // Large inputs must not overflow: the max is subtracted first.
  Case big("Softmax", 13, {vec<float>({1000, 1000})});
  EXPECT_EQ(values<float>(big.run()[0]), (std::vector<float>{0.5f, 0.5f}));
  Case lbig("LogSoftmax", 13, {vec<float>({1000, 1000})});
  EXPECT_NEAR(values<float>(lbig.run()[0])[0], -std::log(2.0f), 1e-6);
  // Opset < 13 coerces to 2D at axis: axis 0 normalizes over all six elements.
  Tensor x = make<float>({2, 3}, {0, 0, 0, 0, 0, 0});
  Case legacy("Softmax", 11, {x});
  legacy.set("axis", attr_i(0));
  EXPECT_NEAR(values<float>(legacy.run()[0])[0], 1.0f / 6, 1e-6);
  Case modern("Softmax", 13, {x});
  modern.set("axis", attr_i(0));
  EXPECT_NEAR(values<float>(modern.run()[0])[0], 0.5f, 1e-6);
  Case range("Softmax", 13, {x});
  range.set("axis", attr_i(2));
  EXPECT_FAILS(range.infer(), "out of range");
  Case hard("Hardmax", 13, {vec<float>({3, 1, 3})});
  EXPECT_EQ(values<float>(hard.run()[0]), (std::vector<float>{1, 0, 0}));
}
