// Quant family reference kernels: behaviour the backend suite does not cover (blocked and
// 16-bit quantization, rounding ties, per-channel QLinearConv) and hostile parameters, which
// must give a lithe::Error naming the input rather than a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

TEST(QuantOps, QuantizeRoundsHalfToEvenAndSaturates) {
  auto y = run_op("QuantizeLinear", 13, {},
                  {make<float>({6}, {2.5f, 3.5f, -2.5f, 1000.f, -1000.f, NAN}),
                   make<float>({}, {1.f}), make<int8_t>({}, {0})});
  ASSERT_EQ(y[0].dtype(), DType::kInt8);
  const int8_t* p = y[0].data<int8_t>();
  EXPECT_EQ(p[0], 2);
  EXPECT_EQ(p[1], 4);
  EXPECT_EQ(p[2], -2);
  EXPECT_EQ(p[3], 127);
  EXPECT_EQ(p[4], -128);
  EXPECT_EQ(p[5], 0);
}

TEST(QuantOps, QuantizeDefaultsToUint8AndSupports16Bit) {
  auto y =
      run_op("QuantizeLinear", 13, {}, {make<float>({2}, {-1.f, 3.f}), make<float>({}, {1.f})});
  ASSERT_EQ(y[0].dtype(), DType::kUInt8);
  EXPECT_EQ(y[0].data<uint8_t>()[0], 0);
  EXPECT_EQ(y[0].data<uint8_t>()[1], 3);
  auto z =
      run_op("QuantizeLinear", 21, {},
             {make<float>({2}, {-70000.f, 300.f}), make<float>({}, {1.f}), make<int16_t>({}, {5})});
  ASSERT_EQ(z[0].dtype(), DType::kInt16);
  EXPECT_EQ(z[0].data<int16_t>()[0], -32768);
  EXPECT_EQ(z[0].data<int16_t>()[1], 305);
  auto o = run_op("QuantizeLinear", 21, {{"output_dtype", attr_i(4)}},
                  {make<float>({1}, {70000.f}), make<float>({}, {1.f})});
  ASSERT_EQ(o[0].dtype(), DType::kUInt16);
  EXPECT_EQ(o[0].data<uint16_t>()[0], 65535);
}

TEST(QuantOps, BlockedQuantizeAndDequantize) {
  // x [2, 4], blocks of 2 along axis 1: scale [2, 2].
  Tensor x = make<float>({2, 4}, {2, 4, 30, 60, -8, 8, 100, 200});
  Tensor s = make<float>({2, 2}, {2, 30, 8, 100});
  Tensor z = make<int8_t>({2, 2}, {0, 1, -1, 0});
  auto q =
      run_op("QuantizeLinear", 21, {{"axis", attr_i(1)}, {"block_size", attr_i(2)}}, {x, s, z});
  std::vector<int8_t> want = {1, 2, 2, 3, -2, 0, 1, 2};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(q[0].data<int8_t>()[i], want[i]) << i;
  auto d = run_op("DequantizeLinear", 21, {{"axis", attr_i(1)}, {"block_size", attr_i(2)}},
                  {q[0], s, z});
  for (int64_t i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(d[0].data<float>()[i], x.data<float>()[i]);
  // A huge block_size is one block per row (no overflow computing the block count).
  auto big = run_op("QuantizeLinear", 21, {{"axis", attr_i(1)}, {"block_size", attr_i(INT64_MAX)}},
                    {x, make<float>({2, 1}, {2, 8}), make<int8_t>({2, 1}, {0, 0})});
  EXPECT_EQ(big[0].data<int8_t>()[3], 30);
  // Scale with the wrong block count.
  EXPECT_CONTAINS(
      op_error("QuantizeLinear", 21, {{"axis", attr_i(1)}, {"block_size", attr_i(1)}}, {x, s, z}),
      "y_scale");
}

TEST(QuantOps, DequantizeInt32AndPerAxis) {
  auto y = run_op("DequantizeLinear", 13, {},
                  {make<int32_t>({3}, {-5, 0, 100000}), make<float>({}, {0.5f})});
  EXPECT_FLOAT_EQ(y[0].data<float>()[0], -2.5f);
  EXPECT_FLOAT_EQ(y[0].data<float>()[2], 50000.f);
  auto a = run_op("DequantizeLinear", 13, {{"axis", attr_i(0)}},
                  {make<uint8_t>({2, 2}, {10, 20, 10, 20}), make<float>({2}, {1.f, 2.f}),
                   make<uint8_t>({2}, {10, 0})});
  EXPECT_FLOAT_EQ(a[0].data<float>()[1], 10.f);
  EXPECT_FLOAT_EQ(a[0].data<float>()[2], 20.f);
  EXPECT_FLOAT_EQ(a[0].data<float>()[3], 40.f);
}

TEST(QuantOps, HostileScalesAndZeroPoints) {
  Tensor x = make<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  for (float bad : {0.f, -1.f, NAN, INFINITY}) {
    EXPECT_CONTAINS(op_error("QuantizeLinear", 13, {}, {x, make<float>({}, {bad})}), "y_scale");
    EXPECT_CONTAINS(
        op_error("DequantizeLinear", 13, {}, {make<uint8_t>({2}, {1, 2}), make<float>({}, {bad})}),
        "x_scale");
  }
  // Per-axis length mismatch, axis out of range, per-axis before opset 13.
  EXPECT_CONTAINS(op_error("QuantizeLinear", 13, {}, {x, make<float>({2}, {1, 1})}), "y_scale");
  EXPECT_CONTAINS(
      op_error("QuantizeLinear", 13, {{"axis", attr_i(5)}}, {x, make<float>({3}, {1, 1, 1})}),
      "axis");
  EXPECT_CONTAINS(op_error("QuantizeLinear", 10, {}, {x, make<float>({3}, {1, 1, 1})}), "y_scale");
  // Zero point of the wrong type / shape.
  EXPECT_CONTAINS(
      op_error("QuantizeLinear", 13, {}, {x, make<float>({}, {1}), make<float>({}, {0})}),
      "y_zero_point");
  EXPECT_CONTAINS(op_error("QuantizeLinear", 13, {},
                           {x, make<float>({3}, {1, 1, 1}), make<uint8_t>({2}, {0, 0})}),
                  "y_zero_point");
  EXPECT_CONTAINS(
      op_error("DequantizeLinear", 13, {},
               {make<uint8_t>({2}, {1, 2}), make<float>({}, {1}), make<int8_t>({}, {0})}),
      "x_zero_point");
  EXPECT_CONTAINS(
      op_error("DequantizeLinear", 13, {},
               {make<int32_t>({2}, {1, 2}), make<float>({}, {1}), make<int32_t>({}, {3})}),
      "x_zero_point");
  EXPECT_CONTAINS(op_error("QuantizeLinear", 21, {{"block_size", attr_i(-1)}},
                           {x, make<float>({2, 3}, {1, 1, 1, 1, 1, 1})}),
                  "block_size");
}

TEST(QuantOps, DynamicQuantizeAllZeros) {
  auto y = run_op("DynamicQuantizeLinear", 11, {}, {make<float>({3}, {0, 0, 0})}, 3);
  EXPECT_EQ(y[0].data<uint8_t>()[0], 0);
  EXPECT_EQ(y[1].data<float>()[0], 0.f);
  EXPECT_EQ(y[2].data<uint8_t>()[0], 0);
  EXPECT_NE(op_error("DynamicQuantizeLinear", 11, {}, {make<float>({2}, {1, NAN})}, 3), "");
}

namespace {
std::vector<std::optional<Tensor>> qconv_inputs(Tensor x, Tensor w, Tensor ws, Tensor wz) {
  return {x,  make<float>({}, {1.f}), make<uint8_t>({}, {0}), w, ws,
          wz, make<float>({}, {1.f}), make<uint8_t>({}, {0})};
}
}  // namespace

TEST(QuantOps, QLinearConvPerChannelGroupsPadsStrides) {
  // x [1, 2, 3, 3], depthwise (group 2) 2x2 kernels, per-channel weight scale/zero point.
  Tensor x = make<uint8_t>({1, 2, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  Tensor w = make<int8_t>({2, 1, 2, 2}, {1, 1, 1, 1, 3, 3, 3, 3});
  auto y =
      run_op("QLinearConv", 10,
             {{"group", attr_i(2)}, {"pads", attr_is({1, 1, 0, 0})}, {"strides", attr_is({2, 2})}},
             qconv_inputs(x, w, make<float>({2}, {1.f, 0.5f}), make<int8_t>({2}, {0, 1})));
  ASSERT_EQ(y[0].shape(), (Shape{1, 2, 2, 2}));
  // Channel 0: windows at (-1,-1),( -1,1),(1,-1),(1,1) over padded 3x3.
  std::vector<uint8_t> want = {1, 5, 11, 28, 1, 2, 2, 4};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y[0].data<uint8_t>()[i], want[i]) << i;
  // SAME_UPPER keeps the spatial size with stride 1.
  auto s = run_op("QLinearConv", 10, {{"group", attr_i(2)}, {"auto_pad", attr_s("SAME_UPPER")}},
                  qconv_inputs(x, w, make<float>({}, {1.f}), make<int8_t>({}, {0})));
  EXPECT_EQ(s[0].shape(), (Shape{1, 2, 3, 3}));
}

TEST(QuantOps, QLinearConvHostileAttributes) {
  Tensor x = make<uint8_t>({1, 2, 3, 3}, std::vector<uint8_t>(18, 1));
  Tensor w = make<int8_t>({2, 1, 2, 2}, std::vector<int8_t>(8, 1));
  auto in = qconv_inputs(x, w, make<float>({}, {1.f}), make<int8_t>({}, {0}));
  EXPECT_CONTAINS(
      op_error("QLinearConv", 10, {{"group", attr_i(2)}, {"strides", attr_is({0, 1})}}, in),
      "strides");
  EXPECT_CONTAINS(op_error("QLinearConv", 10, {}, in), "group");
  EXPECT_CONTAINS(op_error("QLinearConv", 10, {{"group", attr_i(0)}}, in), "group");
  EXPECT_CONTAINS(
      op_error("QLinearConv", 10, {{"group", attr_i(2)}, {"auto_pad", attr_s("FOO")}}, in),
      "auto_pad");
  EXPECT_CONTAINS(
      op_error("QLinearConv", 10, {{"group", attr_i(2)}, {"pads", attr_is({-1, 0, 0, 0})}}, in),
      "pads");
  EXPECT_CONTAINS(
      op_error("QLinearConv", 10, {{"group", attr_i(2)}, {"dilations", attr_is({5, 5})}}, in),
      "kernel");
  EXPECT_CONTAINS(
      op_error("QLinearConv", 10, {{"group", attr_i(2)}, {"kernel_shape", attr_is({3, 3})}}, in),
      "kernel_shape");
  auto bad_ws = qconv_inputs(x, w, make<float>({3}, {1.f, 1.f, 1.f}), make<int8_t>({}, {0}));
  EXPECT_CONTAINS(op_error("QLinearConv", 10, {{"group", attr_i(2)}}, bad_ws), "w_scale");
  auto zero_ys = in;
  zero_ys[6] = make<float>({}, {0.f});
  EXPECT_CONTAINS(op_error("QLinearConv", 10, {{"group", attr_i(2)}}, zero_ys), "y_scale");
}

TEST(QuantOps, QLinearMatMulBroadcastAndVectors) {
  auto in = [](Tensor a, Tensor b) -> std::vector<std::optional<Tensor>> {
    return {a,
            make<float>({}, {1.f}),
            make<int8_t>({}, {0}),
            b,
            make<float>({}, {1.f}),
            make<int8_t>({}, {0}),
            make<float>({}, {1.f}),
            make<int8_t>({}, {0})};
  };
  // a [2, 1, 1, 2] x b [3, 2, 1] -> [2, 3, 1, 1].
  auto y = run_op(
      "QLinearMatMul", 10, {},
      in(make<int8_t>({2, 1, 1, 2}, {1, 2, 3, 4}), make<int8_t>({3, 2, 1}, {1, 1, 1, 0, 0, 1})));
  ASSERT_EQ(y[0].shape(), (Shape{2, 3, 1, 1}));
  std::vector<int8_t> want = {3, 1, 2, 7, 3, 4};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y[0].data<int8_t>()[i], want[i]) << i;
  auto v =
      run_op("QLinearMatMul", 10, {}, in(make<int8_t>({2}, {1, 2}), make<int8_t>({2}, {3, 4})));
  EXPECT_EQ(v[0].shape(), Shape{});
  EXPECT_EQ(v[0].data<int8_t>()[0], 11);
  EXPECT_NE(op_error("QLinearMatMul", 10, {},
                     in(make<int8_t>({2, 3}, {1, 2, 3, 4, 5, 6}), make<int8_t>({2}, {1, 2}))),
            "");
}
