// The gather family (src/ops/gather*.cpp) driven directly through the op registry: bad
// indices and attributes give a lithe::Error (never a crash or an out-of-bounds access),
// plus edge cases the backend suite does not cover.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

using Case = test::OpCase;

TEST(OpsGather, GatherIndexOutOfRangeFailsAtCompute) {
  Case c("Gather", 13, {floats({3, 4}), ints({0, 3})});
  c.set("axis", attr_i(0));
  EXPECT_EQ(c.infer()[0].dims, (Shape{2, 4}));
  EXPECT_FAILS(c.run(), "out of range");
  Case neg("Gather", 13, {floats({3, 4}), ints({-4})});
  neg.set("axis", attr_i(1));
  std::vector<Tensor> out = neg.run();
  ASSERT_EQ(out[0].shape(), (Shape{3, 1}));
  EXPECT_EQ(out[0].data<float>()[1], 4.0f);
  Case low("Gather", 13, {floats({3, 4}), ints({-5})});
  low.set("axis", attr_i(1));
  EXPECT_FAILS(low.run(), "out of range");
  Case axis("Gather", 13, {floats({3, 4}), ints({0})});
  axis.set("axis", attr_i(2));
  EXPECT_FAILS(axis.infer(), "axis");
  Case fidx("Gather", 13, {floats({3, 4}), floats({1})});
  EXPECT_FAILS(fidx.infer(), "int32 or int64");
}

TEST(OpsGather, GatherElementsAndNdValidate) {
  Case big("GatherElements", 13, {floats({2, 2}), make<int64_t>({3, 1}, {0, 0, 0})});
  big.set("axis", attr_i(1));  // along the axis any length is fine; dim 0 must fit
  EXPECT_FAILS(big.infer(), "exceeds");
  Case oor("GatherElements", 13, {floats({2, 2}), make<int64_t>({1, 2}, {0, 2})});
  oor.set("axis", attr_i(1));
  EXPECT_FAILS(oor.run(), "out of range");
  Case bd("GatherND", 13, {floats({2, 3}), make<int64_t>({2, 1}, {0, 1})});
  bd.set("batch_dims", attr_i(2));
  EXPECT_FAILS(bd.infer(), "batch_dims");
  Case last("GatherND", 13, {floats({2, 3}), make<int64_t>({1, 3}, {0, 0, 0})});
  EXPECT_FAILS(last.infer(), "last dim");
  Case nd("GatherND", 13, {floats({2, 3}), make<int64_t>({1, 2}, {1, 7})});
  EXPECT_FAILS(nd.run(), "out of range");
}

TEST(OpsGather, ScatterValidatesAndReduces) {
  Case oor("ScatterElements", 13,
           {floats({2, 2}), make<int64_t>({1, 1}, {5}), make<float>({1, 1}, {1})});
  EXPECT_FAILS(oor.run(), "out of range");
  Case red16("ScatterElements", 16,
             {floats({2, 2}), make<int64_t>({1, 1}, {0}), make<float>({1, 1}, {1})});
  red16.set("reduction", attr_s("max"));
  EXPECT_FAILS(red16.infer(), "reduction");
  Case mx("ScatterElements", 18,
          {floats({2, 2}), make<int64_t>({1, 2}, {1, 1}), make<float>({1, 2}, {7, -7})});
  mx.set("reduction", attr_s("max"));
  std::vector<Tensor> out = mx.run();
  EXPECT_EQ(out[0].data<float>()[2], 7.0f);  // max(2, 7)
  EXPECT_EQ(out[0].data<float>()[3], 3.0f);  // max(3, -7)
  Case nd("ScatterND", 13, {floats({4}), make<int64_t>({1, 1}, {4}), make<float>({1}, {1})});
  EXPECT_FAILS(nd.run(), "out of range");
  Case shape("ScatterND", 13, {floats({4}), make<int64_t>({1, 1}, {0}), make<float>({2}, {1, 1})});
  EXPECT_FAILS(shape.infer(), "updates shape");
}

TEST(OpsGather, CompressAndNonZero) {
  Case longer("Compress", 11, {floats({3}), make<bool>({4}, {true, false, false, true})});
  EXPECT_FAILS(longer.infer(), "only 3");
  Case shorter("Compress", 11, {floats({2, 3}), make<bool>({2}, {false, true})});
  shorter.set("axis", attr_i(-1));
  std::vector<Tensor> out = shorter.run();
  ASSERT_EQ(out[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(out[0].data<float>()[1], 4.0f);
  Case nz("NonZero", 13, {make<float>({2, 2}, {0, 1, 2, 0})});
  out = nz.run();
  ASSERT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(std::vector<int64_t>(out[0].data<int64_t>(), out[0].data<int64_t>() + 4),
            (std::vector<int64_t>{0, 1, 1, 0}));
  Case scalar("NonZero", 13, {make<int32_t>({}, {5})});
  EXPECT_EQ(scalar.run()[0].shape(), (Shape{1, 1}));
}

TEST(OpsGather, OneHotDepthAndRange) {
  Case neg("OneHot", 11, {ints({0}), make<int64_t>({}, {-3}), make<float>({2}, {0, 1})});
  EXPECT_FAILS(neg.infer(), "depth");
  Case huge("OneHot", 11, {ints({0, 1}), make<double>({}, {1e300}), make<float>({2}, {0, 1})});
  EXPECT_FAILS(huge.infer(), "depth");
  Case vals("OneHot", 11, {ints({0}), make<int64_t>({}, {3}), make<float>({3}, {0, 1, 2})});
  EXPECT_FAILS(vals.infer(), "values");
  // Out-of-range indices leave their row all `off`; -1 counts from the end.
  Case c("OneHot", 11, {ints({5, -1}), make<int64_t>({1}, {3}), make<float>({2}, {-1, 9})});
  std::vector<Tensor> out = c.run();
  ASSERT_EQ(out[0].shape(), (Shape{2, 3}));
  std::vector<float> got(out[0].data<float>(), out[0].data<float>() + 6);
  EXPECT_EQ(got, (std::vector<float>{-1, -1, -1, -1, -1, 9}));
}

TEST(OpsGather, TopKValidatesAndBreaksTiesByIndex) {
  Case big("TopK", 11, {floats({2, 3}), ints({4})}, 2);
  EXPECT_FAILS(big.infer(), "k = 4");
  Case neg("TopK", 11, {floats({2, 3}), ints({-1})}, 2);
  EXPECT_FAILS(neg.infer(), "k = -1");
  Case old("TopK", 1, {floats({2, 3})}, 2);
  old.set("k", attr_i(9));
  EXPECT_FAILS(old.infer(), "k = 9");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Case c("TopK", 11, {make<float>({5}, {1, 3, nan, 3, 1}), ints({4})}, 2);
  std::vector<Tensor> out = c.run();
  std::vector<int64_t> idx(out[1].data<int64_t>(), out[1].data<int64_t>() + 4);
  EXPECT_EQ(idx, (std::vector<int64_t>{2, 1, 3, 0}));
  Case s("TopK", 11, {make<float>({5}, {1, 3, 2, 3, 1}), ints({3})}, 2);
  s.set("largest", attr_i(0));
  out = s.run();
  idx.assign(out[1].data<int64_t>(), out[1].data<int64_t>() + 3);
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 4, 2}));
}

TEST(OpsGather, ArgAndUnique) {
  Case empty("ArgMax", 13, {floats({2, 0})});
  empty.set("axis", attr_i(1));
  EXPECT_FAILS(empty.infer(), "empty");
  Case last("ArgMin", 13, {make<int32_t>({4}, {2, 1, 5, 1})});
  last.set("select_last_index", attr_i(1));
  EXPECT_EQ(last.run()[0].data<int64_t>()[0], 3);
  Case ax("Unique", 11, {floats({2, 2})}, 4);
  ax.set("axis", attr_i(2));
  EXPECT_FAILS(ax.infer(), "axis");
  Case u("Unique", 11, {make<float>({6}, {3, 1, 3, 2, 1, 3})}, 4);
  u.set("sorted", attr_i(0));
  std::vector<Tensor> out = u.run();
  ASSERT_EQ(out[0].shape(), Shape{3});
  EXPECT_EQ(std::vector<float>(out[0].data<float>(), out[0].data<float>() + 3),
            (std::vector<float>{3, 1, 2}));
  EXPECT_EQ(std::vector<int64_t>(out[2].data<int64_t>(), out[2].data<int64_t>() + 6),
            (std::vector<int64_t>{0, 1, 0, 2, 1, 0}));
  EXPECT_EQ(std::vector<int64_t>(out[3].data<int64_t>(), out[3].data<int64_t>() + 3),
            (std::vector<int64_t>{3, 2, 1}));
}
