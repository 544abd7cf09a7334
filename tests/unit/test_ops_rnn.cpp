// Unit tests for the rnn op family's reference kernels: results the backend suite
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
