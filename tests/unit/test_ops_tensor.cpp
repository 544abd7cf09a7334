// The shape and tensor op families (src/ops/shape.cpp, tensor*.cpp) driven directly through
// the op registry: hostile attributes and inputs give a lithe::Error from infer() (before any
// allocation), never a crash; a few edge cases the backend suite does not cover.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

using Case = test::OpCase;

#define EXPECT_INFER_FAILS(c, needle) EXPECT_FAILS((c).infer(), needle)

}  // namespace

TEST(OpsTensor, ExpandTileHugeFailInInfer) {
  Case e("Expand", 13, {floats({3, 4}), ints({int64_t{1} << 40, int64_t{1} << 40, 3, 4})});
  EXPECT_INFER_FAILS(e, "elements");
  Case t("Tile", 13, {floats({3, 4}), ints({int64_t{1} << 62, int64_t{1} << 62})});
  EXPECT_INFER_FAILS(t, "overflows");
  Case tn("Tile", 13, {floats({3, 4}), ints({-1, 2})});
  EXPECT_INFER_FAILS(tn, ">= 0");
}

TEST(OpsTensor, ConstantOfShapeHostile) {
  Case big("ConstantOfShape", 13, {ints({int64_t{1} << 62, 4})});
  EXPECT_INFER_FAILS(big, "elements");
  Case neg("ConstantOfShape", 13, {ints({-1, 4})});
  EXPECT_INFER_FAILS(neg, "negative");
}

TEST(OpsTensor, RangeHostileDelta) {
  auto f = [](float s, float l, float d) {
    return Case("Range", 11, {make<float>({}, {s}), make<float>({}, {l}), make<float>({}, {d})});
  };
  Case zero = f(0, 10, 0);
  EXPECT_INFER_FAILS(zero, "zero");
  Case nan = f(0, 10, std::nanf(""));
  EXPECT_INFER_FAILS(nan, "finite");
  Case huge = f(0, 1e30f, 1e-30f);
  EXPECT_INFER_FAILS(huge, "over the limit");
  Case wide("Range", 11,
            {make<int64_t>({}, {kI64Min}), make<int64_t>({}, {kI64Max}), make<int64_t>({}, {1})});
  EXPECT_INFER_FAILS(wide, "more than");
  Case empty = f(1, 0, 1);
  EXPECT_EQ(empty.infer()[0].dims, Shape{0});
}

TEST(OpsTensor, ReshapeValidation) {
  Case two("Reshape", 13, {floats({3, 4}), ints({-1, -1})});
  EXPECT_INFER_FAILS(two, "more than one -1");
  Case count("Reshape", 13, {floats({3, 4}), ints({5, 2})});
  EXPECT_INFER_FAILS(count, "element");
  Case ovf("Reshape", 13, {floats({3, 4}), ints({int64_t{1} << 62, int64_t{1} << 62})});
  EXPECT_INFER_FAILS(ovf, "overflows");
  Case az("Reshape", 14, {floats({0, 3}), ints({0, -1})});
  az.set("allowzero", attr_i(1));
  EXPECT_INFER_FAILS(az, "allowzero");
  Case ok("Reshape", 13, {floats({2, 3, 4}), ints({0, -1})});
  EXPECT_EQ(ok.infer()[0].dims, (Shape{2, 12}));
}

TEST(OpsTensor, SliceExtremeSteps) {
  // step INT64_MIN from the last element takes exactly that element.
  Case c("Slice", 13, {floats({5}), ints({-1}), ints({kI64Min}), ints({0}), ints({kI64Min})});
  std::vector<Tensor> out = c.run();
  ASSERT_EQ(out[0].shape(), Shape{1});
  EXPECT_EQ(out[0].data<float>()[0], 4.0f);
  Case z("Slice", 13, {floats({5}), ints({0}), ints({3}), ints({0}), ints({0})});
  EXPECT_INFER_FAILS(z, "zero");
  Case empty_dim("Slice", 13, {floats({0}), ints({-1}), ints({kI64Min}), ints({0}), ints({-1})});
  EXPECT_EQ(empty_dim.infer()[0].dims, Shape{0});
}

TEST(OpsTensor, PadValidationAndCrop) {
  Case big("Pad", 13, {floats({3, 4}), ints({kI64Max, 0, kI64Max, 0})});
  EXPECT_INFER_FAILS(big, "overflows");
  Case crop("Pad", 13, {floats({3, 4}), ints({-2, 0, -2, 0})});
  EXPECT_INFER_FAILS(crop, "crop");
  Case mode("Pad", 13, {floats({3, 4}), ints({1, 0, 1, 0})});
  mode.set("mode", attr_s("wrap"));
  EXPECT_INFER_FAILS(mode, "unknown pad mode");
  // Negative pads crop: row 0 and the last column go, one zero row is added at the end.
  Case c("Pad", 13, {floats({3, 4}), ints({-1, 0, 1, -1})});
  std::vector<Tensor> out = c.run();
  ASSERT_EQ(out[0].shape(), (Shape{3, 3}));
  const float* o = out[0].data<float>();
  EXPECT_EQ(o[0], 4.0f);
  EXPECT_EQ(o[5], 10.0f);
  EXPECT_EQ(o[8], 0.0f);
}

TEST(OpsTensor, PermutationAndAxesValidation) {
  Case t("Transpose", 13, {floats({3, 4})});
  t.set("perm", attr_is({0, 0}));
  EXPECT_INFER_FAILS(t, "permutation");
  Case s("Squeeze", 13, {floats({3, 4}), ints({0})});
  EXPECT_INFER_FAILS(s, "must be 1");
  Case u("Unsqueeze", 13, {floats({3, 4}), ints({0, 1, 2, 3, 4, 5, 6, 7})});
  EXPECT_INFER_FAILS(u, "limit");
  Case d("DepthToSpace", 13, {floats({1, 0, 2, 2})});
  d.set("blocksize", attr_i(int64_t{1} << 32));
  EXPECT_INFER_FAILS(d, "blocksize");
  Case sd("SpaceToDepth", 13, {floats({1, 1, 0, 0})});
  sd.set("blocksize", attr_i(int64_t{1} << 32));
  EXPECT_INFER_FAILS(sd, "overflows");
  Case sp("Split", 13, {floats({3, 4}), ints({1, 2})}, 2);
  sp.set("axis", attr_i(1));
  EXPECT_INFER_FAILS(sp, "sum");
}

TEST(OpsTensor, DtypeKnownWhenShapeIsNot) {
  // Graph inference keeps dtypes set before InferUnknown; a runtime shape input must not
  // lose ConstantOfShape's element type.
  ir::Attribute v;
  v.kind = ir::Attribute::Kind::kTensor;
  v.t = make<int64_t>({1}, {1});
  Case c("ConstantOfShape", 13, {ints({2, 3})});
  c.set("value", v);
  c.values_known = false;
  std::vector<ir::TensorType> out = c.infer();
  EXPECT_FALSE(out[0].has_shape);  // InferUnknown: the shape waits for run time
  EXPECT_EQ(out[0].dtype, DType::kInt64);
}

TEST(OpsTensor, CumSumIntegerOverflowWraps) {
  Case c("CumSum", 14, {make<int64_t>({2}, {kI64Max, kI64Max}), make<int64_t>({}, {0})});
  std::vector<Tensor> out = c.run();
  EXPECT_EQ(out[0].data<int64_t>()[1], -2);  // wrapped, not UB
}

TEST(OpsTensor, EyeLikeExtremeK) {
  Case c("EyeLike", 9, {floats({3, 4})});
  c.set("k", attr_i(kI64Min));
  std::vector<Tensor> out = c.run();
  for (int64_t i = 0; i < out[0].numel(); ++i) EXPECT_EQ(out[0].data<float>()[i], 0.0f);
}
