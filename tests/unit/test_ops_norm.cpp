// Unit tests for the norm op family's reference kernels: results the backend suite
// does not cover and hostile attributes/shapes (each must be a lithe::Error, never a crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

namespace {

std::vector<float> iota_f(size_t n) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = static_cast<float>(k);
  return v;
}

}  // namespace

TEST(OpsNorm, BatchNormTrainingUpdatesRunningStats) {
  // One channel, values 0..3: batch mean 1.5, var 1.25.
  OpCase c("BatchNormalization", 15, 3);
  c.i("training_mode", 1).f("momentum", 0.5f);
  auto out = c.run({make<float>({4, 1}, iota_f(4)), make<float>({1}, {1}), make<float>({1}, {0}),
                    make<float>({1}, {0.5f}), make<float>({1}, {1})});
  EXPECT_NEAR(out[1].data<float>()[0], 0.5f * 0.5f + 0.5f * 1.5f, 1e-6);
  EXPECT_NEAR(out[2].data<float>()[0], 0.5f * 1.0f + 0.5f * 1.25f, 1e-6);
  EXPECT_NEAR(out[0].data<float>()[0], -1.5f / std::sqrt(1.25f + 1e-5f), 1e-5);
}

TEST(OpsNorm, LayerNormStatisticsShapes) {
  OpCase c("LayerNormalization", 17, 3);
  c.i("axis", 1);
  auto out = c.run({make<float>({2, 3, 2}, iota_f(12)), make<float>({2}, {1, 1})});
  EXPECT_EQ(out[1].shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(out[2].shape(), (Shape{2, 1, 1}));
  EXPECT_NEAR(out[1].data<float>()[1], 8.5f, 1e-5);
}

TEST(OpsNorm, GroupNormScalePerGroupThenPerChannel) {
  // Four channels in two groups, one value each: normalized values are -1, 1, -1, 1.
  Tensor x = make<float>({1, 4, 1}, {0, 2, 0, 2});
  auto g18 = OpCase("GroupNormalization", 18)
                 .i("num_groups", 2)
                 .f("epsilon", 0)
                 .run({x, make<float>({2}, {1, 3}), make<float>({2}, {0, 0})});
  EXPECT_NEAR(g18[0].data<float>()[3], 3.0f, 1e-5);
  auto g21 = OpCase("GroupNormalization", 21)
                 .i("num_groups", 2)
                 .f("epsilon", 0)
                 .run({x, make<float>({4}, {1, 2, 3, 4}), make<float>({4}, {0, 0, 0, 0})});
  EXPECT_NEAR(g21[0].data<float>()[3], 4.0f, 1e-5);
  EXPECT_CONTAINS(error_of(OpCase("GroupNormalization", 21).i("num_groups", 2),
                           {x, make<float>({2}, {1, 3}), make<float>({2}, {0, 0})}),
                  "4 elements");
  EXPECT_CONTAINS(error_of(OpCase("GroupNormalization", 21).i("num_groups", 3),
                           {x, make<float>({4}, {1, 2, 3, 4}), make<float>({4}, {0, 0, 0, 0})}),
                  "divisible");
}

TEST(OpsNorm, HostileAttributes) {
  Tensor x = make<float>({1, 3, 2}, iota_f(6));
  EXPECT_CONTAINS(error_of(OpCase("LRN", 13).i("size", 0), {x}), "size");
  // A huge window is clipped to the channels, not overflowed.
  auto y = OpCase("LRN", 13).i("size", int64_t{1} << 62).run({x});
  EXPECT_TRUE(std::isfinite(y[0].data<float>()[5]));
  EXPECT_CONTAINS(error_of(OpCase("LpNormalization", 1).i("p", 3), {x}), "p must be");
  EXPECT_CONTAINS(error_of(OpCase("MeanVarianceNormalization", 13), {x}), "out of range");
  EXPECT_CONTAINS(
      error_of(OpCase("LayerNormalization", 17).i("axis", 3), {x, make<float>({2}, {1, 1})}),
      "out of range");
  EXPECT_CONTAINS(error_of(OpCase("BatchNormalization", 15),
                           {x, make<float>({2}, {1, 1}), make<float>({3}, {0, 0, 0}),
                            make<float>({3}, {0, 0, 0}), make<float>({3}, {1, 1, 1})}),
                  "scale");
}
