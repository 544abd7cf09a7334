// The reduce family (src/ops/reduce.cpp) driven directly through the op registry: bad axes
// give a lithe::Error, and empty reductions give each op's identity value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

using Case = test::OpCase;

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
