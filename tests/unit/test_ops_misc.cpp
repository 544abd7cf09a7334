// Misc family reference kernels: cases beyond the backend suite (DFT opset 20 inputs,
// onesided/inverse, windows of odd sizes, determinants) and hostile inputs, which must give a
// lithe::Error rather than a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

TEST(MiscOps, NonMaxSuppressionSelectsPerClass) {
  // Two overlapping boxes and one apart; two classes with different scores.
  Tensor boxes = make<float>({1, 3, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 5, 1, 6});
  Tensor scores = make<float>({1, 2, 3}, {0.9f, 0.8f, 0.7f, 0.1f, 0.6f, 0.2f});
  auto y = run_op("NonMaxSuppression", 11, {},
                  {boxes, scores, make<int64_t>({1}, {3}), make<float>({1}, {0.5f}),
                   make<float>({1}, {0.15f})});
  ASSERT_EQ(y[0].shape(), (Shape{4, 3}));
  std::vector<int64_t> want = {0, 0, 0, 0, 0, 2, 0, 1, 1, 0, 1, 2};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y[0].data<int64_t>()[i], want[i]) << i;
  // No max_output_boxes_per_class: nothing selected.
  auto none = run_op("NonMaxSuppression", 11, {}, {boxes, scores});
  EXPECT_EQ(none[0].shape(), (Shape{0, 3}));
}

TEST(MiscOps, NonMaxSuppressionHostile) {
  Tensor boxes = make<float>({1, 1, 4}, {0, 0, 1, 1});
  Tensor scores = make<float>({1, 1, 1}, {0.5f});
  EXPECT_CONTAINS(op_error("NonMaxSuppression", 11, {},
                           {boxes, scores, make<int64_t>({1}, {1}), make<float>({1}, {2.f})}),
                  "iou_threshold");
  EXPECT_CONTAINS(
      op_error("NonMaxSuppression", 11, {}, {make<float>({1, 1, 3}, {0, 0, 1}), scores}), "boxes");
  EXPECT_CONTAINS(
      op_error("NonMaxSuppression", 11, {}, {boxes, make<float>({1, 1, 2}, {0.5f, 0.5f})}),
      "scores");
  EXPECT_CONTAINS(
      op_error("NonMaxSuppression", 11, {{"center_point_box", attr_i(2)}}, {boxes, scores}),
      "center_point_box");
  EXPECT_CONTAINS(
      op_error("NonMaxSuppression", 11, {}, {boxes, scores, make<int64_t>({2}, {1, 1})}),
      "max_output_boxes_per_class");
}

TEST(MiscOps, DetOfBatchedMatrices) {
  auto y =
      run_op("Det", 11, {},
             {make<double>({2, 3, 3}, {2, 0, 1, 1, 3, 2, 1, 1, 2, 0, 1, 0, 1, 0, 0, 0, 0, 1})});
  ASSERT_EQ(y[0].shape(), Shape{2});
  EXPECT_NEAR(y[0].data<double>()[0], 6.0, 1e-12);
  EXPECT_NEAR(y[0].data<double>()[1], -1.0, 1e-12);
  EXPECT_NE(op_error("Det", 11, {}, {make<float>({2, 3}, {1, 2, 3, 4, 5, 6})}), "");
}

TEST(MiscOps, WindowsEdgeSizesAndTypes) {
  auto one = run_op("HannWindow", 17, {{"periodic", attr_i(0)}}, {make<int64_t>({}, {1})});
  ASSERT_EQ(one[0].shape(), Shape{1});
  EXPECT_EQ(one[0].data<float>()[0], 1.f);
  auto empty = run_op("BlackmanWindow", 17, {}, {make<int32_t>({}, {0})});
  EXPECT_EQ(empty[0].shape(), Shape{0});
  auto d = run_op("HammingWindow", 17, {{"output_datatype", attr_i(11)}}, {make<int32_t>({}, {4})});
  ASSERT_EQ(d[0].dtype(), DType::kFloat64);
  EXPECT_NEAR(d[0].data<double>()[2], 1.0, 1e-12);
  EXPECT_NEAR(d[0].data<double>()[0], 4.0 / 46.0, 1e-12);
  EXPECT_CONTAINS(op_error("HannWindow", 17, {}, {make<int32_t>({}, {-3})}), "size");
  EXPECT_CONTAINS(
      op_error("HannWindow", 17, {{"output_datatype", attr_i(99)}}, {make<int32_t>({}, {3})}),
      "output_datatype");
  EXPECT_NE(op_error("HannWindow", 17, {}, {make<int64_t>({}, {int64_t{1} << 40})}), "");
}

TEST(MiscOps, DftOpset20AxisInputLengthOnesidedInverse) {
  // Real signal along axis 1 of [1, 4, 1]: x = [1, 2, 3, 4].
  Tensor x = make<float>({1, 4, 1}, {1, 2, 3, 4});
  auto y = run_op("DFT", 20, {{"onesided", attr_i(1)}}, {x, std::nullopt, make<int64_t>({}, {1})});
  ASSERT_EQ(y[0].shape(), (Shape{1, 3, 2}));
  std::vector<float> want = {10, 0, -2, 2, -2, 0};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y[0].data<float>()[i], want[i], 1e-5) << i;
  // Default axis -2 and dft_length 2 (truncate): [1 + 2, 1 - 2].
  auto t = run_op("DFT", 20, {}, {x, make<int64_t>({}, {2})});
  ASSERT_EQ(t[0].shape(), (Shape{1, 2, 2}));
  EXPECT_NEAR(t[0].data<float>()[0], 3, 1e-5);
  EXPECT_NEAR(t[0].data<float>()[2], -1, 1e-5);
  // Full forward then inverse gives the signal back.
  auto f = run_op("DFT", 17, {}, {x});
  auto b = run_op("DFT", 17, {{"inverse", attr_i(1)}}, {f[0]});
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(b[0].data<float>()[2 * i], x.data<float>()[i], 1e-5);
    EXPECT_NEAR(b[0].data<float>()[2 * i + 1], 0, 1e-5);
  }
}

TEST(MiscOps, DftHostile) {
  Tensor x = make<float>({1, 4, 1}, {1, 2, 3, 4});
  EXPECT_CONTAINS(op_error("DFT", 17, {{"axis", attr_i(2)}}, {x}), "axis");
  EXPECT_CONTAINS(op_error("DFT", 20, {}, {x, std::nullopt, make<int64_t>({}, {-1})}), "axis");
  EXPECT_CONTAINS(op_error("DFT", 17, {}, {x, make<int64_t>({}, {0})}), "dft_length");
  EXPECT_NE(op_error("DFT", 17, {}, {make<float>({1, 4, 3}, std::vector<float>(12, 0))}), "");
  EXPECT_CONTAINS(op_error("DFT", 17, {{"onesided", attr_i(3)}}, {x}), "onesided");
}

TEST(MiscOps, StftHostile) {
  Tensor sig = make<float>({1, 8, 1}, std::vector<float>(8, 1));
  EXPECT_CONTAINS(
      op_error("STFT", 17, {}, {sig, make<int64_t>({}, {0}), std::nullopt, make<int64_t>({}, {4})}),
      "frame_step");
  EXPECT_CONTAINS(
      op_error("STFT", 17, {}, {sig, make<int64_t>({}, {2}), std::nullopt, make<int64_t>({}, {9})}),
      "frame_length");
  EXPECT_CONTAINS(
      op_error("STFT", 17, {},
               {sig, make<int64_t>({}, {2}), make<float>({3}, {1, 1, 1}), make<int64_t>({}, {4})}),
      "window");
  auto y = run_op("STFT", 17, {{"onesided", attr_i(0)}},
                  {sig, make<int64_t>({}, {2}), std::nullopt, make<int64_t>({}, {4})});
  ASSERT_EQ(y[0].shape(), (Shape{1, 3, 4, 2}));
  EXPECT_NEAR(y[0].data<float>()[0], 4, 1e-5);
  EXPECT_NEAR(y[0].data<float>()[2], 0, 1e-5);
}

TEST(MiscOps, MelWeightMatrixHostile) {
  auto in = [](int32_t bins, int32_t len, int32_t sr, float lo, float hi) {
    return std::vector<std::optional<Tensor>>{make<int32_t>({}, {bins}), make<int32_t>({}, {len}),
                                              make<int32_t>({}, {sr}), make<float>({}, {lo}),
                                              make<float>({}, {hi})};
  };
  EXPECT_CONTAINS(op_error("MelWeightMatrix", 17, {}, in(0, 16, 8192, 0, 4096)), "num_mel_bins");
  EXPECT_CONTAINS(op_error("MelWeightMatrix", 17, {}, in(8, -1, 8192, 0, 4096)), "dft_length");
  EXPECT_CONTAINS(op_error("MelWeightMatrix", 17, {}, in(8, 16, 0, 0, 4096)), "sample_rate");
  EXPECT_CONTAINS(op_error("MelWeightMatrix", 17, {}, in(8, 16, 8192, 0, 20000)),
                  "upper_edge_hertz");
  EXPECT_NE(op_error("MelWeightMatrix", 17, {}, in(8, 16, 8192, 100, 50)), "");
  auto y =
      run_op("MelWeightMatrix", 17, {{"output_datatype", attr_i(11)}}, in(8, 16, 8192, 0, 4096));
  EXPECT_EQ(y[0].dtype(), DType::kFloat64);
  EXPECT_EQ(y[0].shape(), (Shape{9, 8}));
}

TEST(MiscOps, RandomOpsRunAndAreSeeded) {
  std::map<std::string, ir::Attribute> a = {{"shape", attr_is({2, 3})},
                                            {"seed", attr_f(3.f)},
                                            {"low", attr_f(-1.f)},
                                            {"high", attr_f(1.f)}};
  auto u1 = run_op("RandomUniform", 1, a, {});
  auto u2 = run_op("RandomUniform", 1, a, {});
  ASSERT_EQ(u1[0].shape(), (Shape{2, 3}));
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(u1[0].data<float>()[i], u2[0].data<float>()[i]);
    EXPECT_GE(u1[0].data<float>()[i], -1.f);
    EXPECT_LE(u1[0].data<float>()[i], 1.f);
  }
  auto n = run_op("RandomNormalLike", 1, {{"dtype", attr_i(11)}}, {make<float>({4}, {0, 0, 0, 0})});
  EXPECT_EQ(n[0].dtype(), DType::kFloat64);
  auto b = run_op("Bernoulli", 15, {}, {make<float>({3}, {0, 1, 1})});
  EXPECT_EQ(b[0].data<float>()[0], 0.f);
  EXPECT_EQ(b[0].data<float>()[1], 1.f);
  EXPECT_NE(op_error("RandomUniform", 1, {{"shape", attr_is({-1})}}, {}), "");
  EXPECT_NE(op_error("RandomNormal", 1, {{"shape", attr_is({2})}, {"dtype", attr_i(6)}}, {}), "");
  EXPECT_NE(op_error("Bernoulli", 15, {}, {make<float>({1}, {1.5f})}), "");
}
