// INT8 post-training quantization of channels-last convs (builder/quantize.cpp) and the INT8
// conv (lithe.QConvNhwc): the reference kernel against a float emulation of
// dequantize -> conv -> quantize, the fast INT8 step against the reference kernel bit for bit
// at every kernel level (1 and 3 threads), and the quantized graph's outputs against FP32.
#include <algorithm>
#include <cmath>

#include "builder/quantize.hpp"
#include "ops/util.hpp"
#include "conv_test_util.hpp"
#include "fast_test_util.hpp"

namespace lithe {
namespace {

using test::ConvCase;
using test::cosine;
using test::count_any_domain;

// Calibration samples: seeded inputs of the graph.
std::vector<std::vector<Tensor>> samples_for(const ir::Graph& g, int count) {
  std::vector<std::vector<Tensor>> s;
  for (int i = 0; i < count; ++i) s.push_back(test::seeded_inputs(g, 100u + static_cast<unsigned>(i)));
  return s;
}

void expect_same_bytes(size_t k, const Tensor& want, const Tensor& got) {
  ASSERT_EQ(want.nbytes(), got.nbytes());
  int64_t diff = 0, first = -1;
  const auto* w = static_cast<const uint8_t*>(want.raw());
  const auto* g = static_cast<const uint8_t*>(got.raw());
  for (size_t i = 0; i < want.nbytes(); ++i)
    if (w[i] != g[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++diff;
    }
  EXPECT_EQ(diff, 0) << "output " << k << ": " << diff << " bytes differ, first at " << first
                     << " (want " << int(w[first < 0 ? 0 : first]) << ", got "
                     << int(g[first < 0 ? 0 : first]) << ")";
}

// Builds the FP32 conv, calibrates it on 8 seeded samples, quantizes it; checks the INT8 node
// against the reference bit for bit at every level and the output against FP32.
void check_quantized_conv(const ConvCase& k, const char* kind, double min_cosine = 0.995) {
  SCOPED_TRACE(k.str());
  const unsigned seed = static_cast<unsigned>(std::hash<std::string>()(k.str()));
  auto fp32 = test::conv_graph(k, seed);
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto samples = samples_for(*g, 8);
  std::map<std::string, quant::Histogram> hist;
  ASSERT_NO_THROW(hist = build::calibrate(*g, samples, 1));
  std::vector<build::LayerPrecision> report;
  ASSERT_NO_THROW(report = build::quantize_graph(*g, hist, {}));
  ASSERT_EQ(count_any_domain(*g, "QConvNhwc"), 1);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].precision, "int8");
  // The output keeps its name and type (dequantized at the end).
  ASSERT_EQ(g->outputs.size(), 1u);
  EXPECT_EQ(g->values[static_cast<size_t>(g->outputs[0])].name, "y");
  EXPECT_EQ(g->values[static_cast<size_t>(g->outputs[0])].type.dtype, DType::kFloat32);
  test::check_fast_node(g, "y/u8", kind, test::supported_isas(), expect_same_bytes);
  // Close to FP32 on an input it was not calibrated on.
  const auto in = test::seeded_inputs(*fp32, 7u);
  const auto want = test::run_graph(fp32, in);
  const auto got = test::run_graph(g, in);
  EXPECT_GE(cosine(want[0], got[0]), min_cosine);
}

TEST(Quantize, PointwiseConv) {
  ConvCase k;
  k.c = 16;
  k.m = 24;
  k.kh = k.kw = 1;
  k.h = k.w = 6;
  check_quantized_conv(k, "q8-conv-gemm");
  k.c = 6;  // not a multiple of 4: rows are copied to a padded buffer
  k.act = "Relu";
  check_quantized_conv(k, "q8-conv-gemm");
}

TEST(Quantize, KxKConv) {
  ConvCase k;
  k.c = 3;
  k.m = 20;
  k.h = 9;
  k.w = 7;
  k.pads = {1, 1, 1, 1};
  check_quantized_conv(k, "q8-conv-im2col");
  k.sh = k.sw = 2;
  k.act = "Clip";
  k.params = {0.f, 6.f};
  check_quantized_conv(k, "q8-conv-im2col");
  k.sh = 1;
  k.dh = 2;
  k.pads = {2, 0, 1, 1};
  k.m = 33;
  k.c = 8;
  check_quantized_conv(k, "q8-conv-im2col");
  // Kernel rows of at most 16 bytes (runs of whole-window pixels moved 16 bytes a tap), with
  // windows touching the input's last byte (no bottom / right padding) and stride 2 in x.
  k.c = 5;
  k.m = 17;
  k.dh = 1;
  k.h = 20;
  k.w = 23;
  k.pads = {1, 1, 0, 0};
  check_quantized_conv(k, "q8-conv-im2col");
  k.sw = 2;
  k.pads = {0, 2, 1, 0};
  check_quantized_conv(k, "q8-conv-im2col");
}

TEST(Quantize, GroupedAndDepthwiseConv) {
  ConvCase k;
  k.c = 8;
  k.m = 8;
  k.group = 2;
  k.pads = {1, 1, 1, 1};
  check_quantized_conv(k, "q8-conv-im2col");
  k.group = 8;
  k.act = "Relu";
  check_quantized_conv(k, "q8-dwconv");
  k.sh = k.sw = 2;
  k.c = k.m = k.group = 37;
  k.h = k.w = 11;
  check_quantized_conv(k, "q8-dwconv");
}

TEST(Quantize, FloatEpilogue) {
  // A residual input and an activation that is not a clamp take the float output stage.
  ConvCase k;
  k.c = 12;
  k.m = 20;
  k.pads = {1, 1, 1, 1};
  k.residual = true;
  k.act = "Relu";
  check_quantized_conv(k, "q8-conv-im2col");
  k.residual = false;
  k.act = "HardSwish";
  k.kh = k.kw = 1;
  k.pads = {0, 0, 0, 0};
  check_quantized_conv(k, "q8-conv-gemm");
  k.c = k.m = k.group = 16;
  k.kh = k.kw = 3;
  k.pads = {1, 1, 1, 1};
  k.residual = true;
  k.act = "Sigmoid";
  check_quantized_conv(k, "q8-dwconv");
  // An affine map after the activation (activation_affine) takes it too, even after Relu,
  // whose clamp it would otherwise be: a negative scale flips the range.
  k.residual = false;
  k.act = "Relu";
  k.affine = {-0.5f, 0.25f};
  check_quantized_conv(k, "q8-dwconv");
  k.c = 12;
  k.m = 20;
  k.group = 1;
  k.kh = k.kw = 1;
  k.pads = {0, 0, 0, 0};
  k.act = "HardSwish";
  k.affine = {1.25f, -0.5f};
  check_quantized_conv(k, "q8-conv-gemm");
}

// Fewer than 16 output channels (one partial panel) on the float output stage, as PP-OCR det's
// last conv (24 -> 4, Sigmoid, from its ConvTranspose): several row tiles and a partial last
// one (2 images of 23 x 23 pixels), with and without a residual, 1x1 and 3x3.
TEST(Quantize, FloatEpilogueFewChannels) {
  for (int64_t m : {1, 4, 5, 15})
    for (bool residual : {false, true})
      for (int64_t k : {1, 3}) {
        ConvCase c;
        c.n = 2;
        c.c = 24;
        c.m = m;
        c.h = c.w = 23;
        c.kh = c.kw = k;
        c.pads = k == 3 ? std::vector<int64_t>{1, 1, 1, 1} : std::vector<int64_t>{0, 0, 0, 0};
        c.residual = residual;
        c.act = "Sigmoid";
        check_quantized_conv(c, k == 1 ? "q8-conv-gemm" : "q8-conv-im2col", 0.99);
        if (HasFatalFailure()) return;
      }
}

// Monotone activations on the float output stage of a layer of 1024+ pixels run as a search
// over per-channel accumulator thresholds: bit for bit the reference at every level, for 1x1,
// 3x3 and depthwise convs; more than 64 channels keep the per-value stage.
TEST(Quantize, MonotoneActivationThresholds) {
  struct Act {
    const char* name;
    std::vector<float> params;
  };
  for (const Act& a : {Act{"Sigmoid", {}}, Act{"Tanh", {}}, Act{"HardSigmoid", {0.2f, 0.5f}}})
    for (int64_t m : {4, 20, 70})
      for (int64_t k : {1, 3}) {
        ConvCase c;
        c.c = 24;
        c.m = m;
        c.h = c.w = 33;
        c.kh = c.kw = k;
        c.pads = k == 3 ? std::vector<int64_t>{1, 1, 1, 1} : std::vector<int64_t>{0, 0, 0, 0};
        c.act = a.name;
        c.params = a.params;
        check_quantized_conv(c, k == 1 ? "q8-conv-gemm" : "q8-conv-im2col", 0.99);
        if (HasFatalFailure()) return;
      }
  ConvCase d;
  d.c = d.m = d.group = 24;
  d.h = d.w = 33;
  d.pads = {1, 1, 1, 1};
  d.act = "Sigmoid";
  check_quantized_conv(d, "q8-dwconv", 0.99);
}

TEST(Quantize, ReferenceMatchesFloatEmulation) {
  // QConvNhwc's reference = QuantizeLinear(conv(DequantizeLinear(x), dequantized W) + b):
  // within one step of the float computation (the fixed-point multiplier and the int32 bias
  // round differently from float), and mostly equal.
  ConvCase k;
  k.c = 10;
  k.m = 12;
  k.pads = {1, 0, 1, 0};
  auto g = test::conv_graph(k, 5u);
  const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
  build::quantize_graph(*g, hist, {});
  // Run to the uint8 output and, separately, emulate from the uint8 input.
  g->outputs = {g->find_value("y/u8"), g->find_value("x/u8")};
  const auto in = test::seeded_inputs(*g, 9u);
  const auto out = test::run_graph(g, in);
  const ir::Node* q = nullptr;
  for (const ir::Node& n : g->nodes)
    if (n.op_type == "QConvNhwc") q = &n;
  ASSERT_NE(q, nullptr);
  auto cval = [&](size_t i) -> const Tensor& {
    return *g->values[static_cast<size_t>(q->inputs[i])].constant;
  };
  const float sx = cval(1).data<float>()[0], sy = cval(5).data<float>()[0];
  const int zx = cval(2).data<uint8_t>()[0], zy = cval(6).data<uint8_t>()[0];
  const Tensor& w = cval(3);
  const Tensor& ws = cval(4);
  const int32_t* bias = cval(7).data<int32_t>();
  const uint8_t* x = out[1].data<uint8_t>();
  const uint8_t* y = out[0].data<uint8_t>();
  const int64_t oh = out[0].shape()[1], ow = out[0].shape()[2];
  int64_t equal = 0, total = 0;
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox)
      for (int64_t m = 0; m < k.m; ++m) {
        double acc = 0;
        for (int64_t ky = 0; ky < 3; ++ky)
          for (int64_t kx = 0; kx < 3; ++kx) {
            const int64_t iy = oy - 1 + ky, ix = ox + kx;
            if (iy < 0 || iy >= k.h || ix >= k.w) continue;
            for (int64_t c = 0; c < k.c; ++c)
              acc += double(x[(iy * k.w + ix) * k.c + c] - zx) *
                     w.data<int8_t>()[((m * k.c + c) * 3 + ky) * 3 + kx];
          }
        const double real = (acc + bias[m]) * sx * ws.data<float>()[m];
        const double want = std::clamp(std::nearbyint(real / sy) + zy, 0.0, 255.0);
        const int got = y[(oy * ow + ox) * k.m + m];
        EXPECT_LE(std::fabs(got - want), 1.0) << "pixel " << oy << "," << ox << " channel " << m;
        equal += got == want;
        ++total;
      }
  EXPECT_GE(equal, total * 95 / 100);
}

TEST(Quantize, KeepsListedNodesInFp32) {
  ConvCase k;
  auto g = test::conv_graph(k, 3u);
  const auto hist = build::calibrate(*g, samples_for(*g, 2), 1);
  build::QuantizeOptions o;
  o.keep_fp32 = {g->nodes[0].name};
  const auto report = build::quantize_graph(*g, hist, o);
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 0);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].precision, "fp32");
}

// Conv -> MaxPool -> Conv: the pool runs on the uint8 values (keeping the first conv's scale),
// with no dequantize / quantize between the convs.
TEST(Quantize, MaxPoolBetweenConvsStaysInt8) {
  test::GraphBuilder b;
  b.input("x", {1, 9, 9, 8});
  b.constant_tensor("w1", test::random_tensor({16, 8, 3, 3}, 1));
  b.constant_tensor("w2", test::random_tensor({12, 16, 1, 1}, 2));
  ir::Node& c1 = b.lithe_node("ConvNhwc", {"x", "w1"}, {"a"});
  c1.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
  c1.attrs["activation"] = test::GraphBuilder::s("Relu");
  ir::Node& p = b.lithe_node("MaxPoolNhwc", {"a"}, {"p"});
  p.attrs["kernel_shape"] = test::GraphBuilder::ints({3, 3});
  p.attrs["strides"] = test::GraphBuilder::ints({2, 2});
  p.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
  b.lithe_node("ConvNhwc", {"p", "w2"}, {"y"});
  b.output("y");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
  const auto report = build::quantize_graph(*g, hist, {});
  ASSERT_EQ(report.size(), 3u);
  for (const auto& l : report) EXPECT_EQ(l.precision, "int8") << l.node << ": " << l.reason;
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 2);
  EXPECT_EQ(count_any_domain(*g, "QuantizeLinear"), 1);    // the input
  EXPECT_EQ(count_any_domain(*g, "DequantizeLinear"), 1);  // the output
  test::check_fast_node(g, "p/u8", "q8-maxpool", test::supported_isas(), expect_same_bytes);
  test::check_fast_node(g, "y/u8", "q8-conv-gemm", test::supported_isas(), expect_same_bytes);
  const auto in = test::seeded_inputs(*fp32, 5u);
  EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.995);
}

// Conv (HardSwish) -> Mul by a scalar -> Add a scalar -> Sigmoid -> Conv, as PP-LCNet's
// learnable affine blocks: the elementwise chain between the convs becomes one uint8 lookup
// table (no dequantize / quantize between the convs), whose entries are the chain computed in
// float from each code, and whose fast step matches the reference at every level.
TEST(Quantize, ElementwiseChainBecomesLookupTable) {
  test::GraphBuilder b;
  b.input("x", {1, 7, 7, 8});
  b.constant_tensor("w1", test::random_tensor({16, 8, 3, 3}, 3));
  b.constant_tensor("w2", test::random_tensor({12, 16, 1, 1}, 4));
  b.constant("a", {}, {0.75f});
  b.constant("c", {1, 1, 1, 1}, {-0.25f});
  ir::Node& c1 = b.lithe_node("ConvNhwc", {"x", "w1"}, {"h"});
  c1.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
  c1.attrs["activation"] = test::GraphBuilder::s("HardSwish");
  b.node("Mul", {"h", "a"}, {"m"});
  b.node("Add", {"m", "c"}, {"s"});
  b.node("Sigmoid", {"s"}, {"t"});
  b.lithe_node("ConvNhwc", {"t", "w2"}, {"y"});
  b.output("y");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
  const auto report = build::quantize_graph(*g, hist, {});
  for (const auto& l : report) EXPECT_EQ(l.precision, "int8") << l.node << ": " << l.reason;
  EXPECT_EQ(count_any_domain(*g, "LookupU8"), 1);
  EXPECT_EQ(
      count_any_domain(*g, "Mul") + count_any_domain(*g, "Add") + count_any_domain(*g, "Sigmoid"),
      0);
  EXPECT_EQ(count_any_domain(*g, "QuantizeLinear"), 1);    // the input
  EXPECT_EQ(count_any_domain(*g, "DequantizeLinear"), 1);  // the output
  // Every entry: the chain in float on the dequantized code, quantized to t's parameters.
  const ir::Node* lut = nullptr;
  for (const ir::Node& n : g->nodes)
    if (n.op_type == "LookupU8") lut = &n;
  ASSERT_NE(lut, nullptr);
  const ir::Node& conv1 = g->nodes[static_cast<size_t>(g->values[static_cast<size_t>(lut->inputs[0])].producer)];
  const ir::Node& conv2 = g->nodes[static_cast<size_t>(g->values[static_cast<size_t>(lut->outputs[0])].consumers[0])];
  auto scalar = [&](int v) { return g->values[static_cast<size_t>(v)].constant->raw(); };
  const float hs = *static_cast<const float*>(scalar(conv1.inputs[5]));
  const int hz = *static_cast<const uint8_t*>(scalar(conv1.inputs[6]));
  const float ts = *static_cast<const float*>(scalar(conv2.inputs[1]));
  const int tz = *static_cast<const uint8_t*>(scalar(conv2.inputs[2]));
  const uint8_t* table = g->values[static_cast<size_t>(lut->inputs[1])].constant->data<uint8_t>();
  int off = 0;
  for (int q = 0; q < 256; ++q) {
    const float h = (static_cast<float>(q) - static_cast<float>(hz)) * hs;
    const float s = h * 0.75f + -0.25f;
    const float t = 1.0f / (1.0f + std::exp(-s));
    const float want = std::clamp(std::nearbyint(t / ts) + static_cast<float>(tz), 0.0f, 255.0f);
    off += std::abs(static_cast<int>(want) - table[q]) > 0;
    EXPECT_LE(std::abs(static_cast<int>(want) - table[q]), 1) << "code " << q;
  }
  EXPECT_LE(off, 2);  // only where exp's last bit decides a rounding
  const std::string lut_out = g->values[static_cast<size_t>(lut->outputs[0])].name;
  test::check_fast_node(g, lut_out, "lookup-u8", test::supported_isas(), expect_same_bytes);
  const auto in = test::seeded_inputs(*fp32, 6u);
  EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.99);
}

// A per-channel affine map with a different constant for every channel (more distinct tables
// than the masked path takes) becomes a LookupU8 with one table per channel; its fast step
// (the per-byte loop) matches the reference bit for bit. An index naming no table is refused.
TEST(Quantize, PerChannelLookupWithManyTables) {
  test::GraphBuilder b;
  b.input("x", {1, 24, 24, 8});
  b.constant_tensor("w1", test::random_tensor({16, 8, 1, 1}, 51));
  b.constant_tensor("w2", test::random_tensor({4, 16, 1, 1}, 52));
  std::vector<float> a(16), c(16);
  for (int i = 0; i < 16; ++i) a[static_cast<size_t>(i)] = 0.3f + 0.1f * static_cast<float>(i), c[static_cast<size_t>(i)] = -0.05f * static_cast<float>(i);
  b.constant("a", {16}, a);
  b.constant("c", {16}, c);
  b.lithe_node("ConvNhwc", {"x", "w1"}, {"h"});
  b.node("Mul", {"h", "a"}, {"m"});
  b.node("Add", {"m", "c"}, {"s"});
  b.lithe_node("ConvNhwc", {"s", "w2"}, {"y"});
  b.output("y");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
  build::quantize_graph(*g, hist, {});
  const ir::Node* lut = nullptr;
  for (const ir::Node& n : g->nodes)
    if (n.op_type == "LookupU8") lut = &n;
  ASSERT_NE(lut, nullptr);
  ASSERT_EQ(lut->inputs.size(), 3u);
  EXPECT_EQ(g->values[static_cast<size_t>(lut->inputs[1])].constant->shape(), (Shape{16, 256}));
  const std::string out = g->values[static_cast<size_t>(lut->outputs[0])].name;
  test::check_fast_node(g, out, "lookup-u8-per-channel", test::supported_isas(), expect_same_bytes);
  const auto in = test::seeded_inputs(*fp32, 4u);
  EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.99);
  // A hostile index: refused by shape inference with the node named.
  g->values[static_cast<size_t>(lut->inputs[2])].constant->data<uint8_t>()[3] = 16;
  try {
    test::run_graph(g, in);
    ADD_FAILURE() << "an index past the tables ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("names no table"), std::string::npos) << e.what();
  }
}

// A chain value that is also read elsewhere (here a graph output) keeps its float nodes for
// that reader; the INT8 reader still gets the lookup table.
TEST(Quantize, LookupTableKeepsChainWithOtherReaders) {
  test::GraphBuilder b;
  b.input("x", {1, 5, 5, 8});
  b.constant_tensor("w1", test::random_tensor({8, 8, 1, 1}, 5));
  b.constant_tensor("w2", test::random_tensor({4, 8, 1, 1}, 6));
  b.lithe_node("ConvNhwc", {"x", "w1"}, {"h"});
  b.node("Tanh", {"h"}, {"t"});
  b.lithe_node("ConvNhwc", {"t", "w2"}, {"y"});
  b.output("y");
  b.output("t");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
  build::quantize_graph(*g, hist, {});
  EXPECT_EQ(count_any_domain(*g, "LookupU8"), 1);
  EXPECT_EQ(count_any_domain(*g, "Tanh"), 1);
  const auto in = test::seeded_inputs(*fp32, 7u);
  const auto want = test::run_graph(fp32, in), got = test::run_graph(g, in);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_GE(cosine(want[0], got[0]), 0.99);
  EXPECT_GE(cosine(want[1], got[1]), 0.99);
}

// Two convs -> Concat (one input through a nearest Resize) -> conv: the Resize copies uint8
// pixels (keeping its input's scale), the Concat joins uint8 values with the inputs whose
// parameters differ from its output's requantized by a lookup table; nothing between the
// convs runs in float, and the fast steps match the reference at every level.
TEST(Quantize, ConcatAndNearestResizeStayInt8) {
  test::GraphBuilder b;
  b.input("x", {1, 4, 4, 8});
  b.constant_tensor("w1", test::random_tensor({8, 8, 1, 1}, 7));
  b.constant_tensor("w2", test::random_tensor({6, 8, 3, 3}, 8));
  b.constant_tensor("w3", test::random_tensor({5, 14, 1, 1}, 9));
  b.constant("scales", {4}, {1.f, 2.f, 2.f, 1.f});  // NHWC: H and W doubled
  b.input("x2", {1, 8, 8, 8});
  ir::Node& c1 = b.lithe_node("ConvNhwc", {"x", "w1"}, {"a"});
  c1.attrs["activation"] = test::GraphBuilder::s("Relu");
  b.node("Resize", {"a", "", "scales"}, {"up"}).attrs["mode"] = test::GraphBuilder::s("nearest");
  ir::Node& c2 = b.lithe_node("ConvNhwc", {"x2", "w2"}, {"c"});
  c2.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
  b.node("Concat", {"up", "c"}, {"cat"}).attrs["axis"] = test::GraphBuilder::i(3);
  b.lithe_node("ConvNhwc", {"cat", "w3"}, {"y"});
  b.output("y");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
  const auto report = build::quantize_graph(*g, hist, {});
  for (const auto& l : report) EXPECT_EQ(l.precision, "int8") << l.node << ": " << l.reason;
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 3);
  EXPECT_EQ(count_any_domain(*g, "QuantizeLinear"), 2);    // the inputs
  EXPECT_EQ(count_any_domain(*g, "DequantizeLinear"), 1);  // the output
  EXPECT_GE(count_any_domain(*g, "LookupU8"), 1);          // Relu and plain conv ranges differ
  for (const ir::Node& n : g->nodes)
    if (n.op_type == "Concat" || n.op_type == "Resize") {
      for (int v : n.inputs) {
        if (v < 0 || g->values[static_cast<size_t>(v)].constant) continue;
        EXPECT_EQ(g->values[static_cast<size_t>(v)].type.dtype, DType::kUInt8) << n.name;
      }
    }
  test::check_fast_node(g, "up/u8", "resize-nearest", test::supported_isas(), expect_same_bytes);
  test::check_fast_node(g, "y/u8", "q8-conv-gemm", test::supported_isas(), expect_same_bytes);
  const auto in = test::seeded_inputs(*fp32, 8u);
  EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.99);
}

// Conv -> AveragePool (both count_include_pad) -> conv -> GlobalAveragePool: the pools run on
// uint8 values at their input's scale, each output the input's dequantized mean rounded to
// the nearest code (within half a step, checked in float here), and the fast steps match the
// reference at every level.
TEST(Quantize, AveragePoolsStayInt8) {
  for (int include_pad : {0, 1}) {
    SCOPED_TRACE(include_pad);
    test::GraphBuilder b;
    b.input("x", {1, 9, 7, 8});
    b.constant_tensor("w1", test::random_tensor({20, 8, 1, 1}, 10));
    b.constant_tensor("w2", test::random_tensor({24, 20, 3, 3}, 11));
    b.lithe_node("ConvNhwc", {"x", "w1"}, {"a"});
    ir::Node& p = b.lithe_node("AveragePoolNhwc", {"a"}, {"p"});
    p.attrs["kernel_shape"] = test::GraphBuilder::ints({3, 3});
    p.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
    p.attrs["count_include_pad"] = test::GraphBuilder::i(include_pad);
    ir::Node& c2 = b.lithe_node("ConvNhwc", {"p", "w2"}, {"c"});
    c2.attrs["strides"] = test::GraphBuilder::ints({2, 2});
    b.lithe_node("GlobalAveragePoolNhwc", {"c"}, {"y"});
    b.output("y");
    auto fp32 = b.build();
    auto g = std::make_shared<ir::Graph>(*fp32);
    const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
    const auto report = build::quantize_graph(*g, hist, {});
    for (const auto& l : report) EXPECT_EQ(l.precision, "int8") << l.node << ": " << l.reason;
    EXPECT_EQ(count_any_domain(*g, "DequantizeLinear"), 1);  // the output only
    test::check_fast_node(g, "p/u8", "q8-avgpool", test::supported_isas(), expect_same_bytes);
    test::check_fast_node(g, "y/u8", "q8-avgpool", test::supported_isas(), expect_same_bytes);
    // The global pool against the float mean of its dequantized input.
    const ir::Node* gap = nullptr;
    for (const ir::Node& n : g->nodes)
      if (n.op_type == "GlobalAveragePoolNhwc") gap = &n;
    ASSERT_NE(gap, nullptr);
    const int zx = static_cast<int>(ops::NodeAttrs(*gap).attr_int("zero_point", -1));
    ASSERT_GE(zx, 0);
    auto probe = std::make_shared<ir::Graph>(*g);
    probe->outputs = {gap->inputs[0], gap->outputs[0]};
    const auto outs = test::run_graph(probe, test::seeded_inputs(*fp32, 9u));
    const Tensor& in = outs[0];
    const int64_t hw = in.shape()[1] * in.shape()[2], ch = in.shape()[3];
    for (int64_t c = 0; c < ch; ++c) {
      double sum = 0;
      for (int64_t i = 0; i < hw; ++i) sum += in.data<uint8_t>()[i * ch + c] - zx;
      EXPECT_LE(std::abs(outs[1].data<uint8_t>()[c] - zx - sum / hw), 0.5 + 1e-9) << "channel " << c;
    }
  }
}

// Add of two INT8 branches and Mul by a squeeze-excitation gate (its
// [1,1,1,C] output quantized) and by a [1,H,1,C] mean (broadcast along W, the first operand):
// lithe.QBinaryU8 steps bit for bit against the reference at every level, each output within
// one code of the float computation on the dequantized inputs, and the model close to FP32.
TEST(Quantize, AddAndMulOfActivationsStayInt8) {
  test::GraphBuilder b;
  b.input("x", {1, 32, 32, 8});
  b.constant_tensor("w1", test::random_tensor({16, 8, 3, 3}, 21));
  b.constant_tensor("w2", test::random_tensor({16, 8, 1, 1}, 22));
  b.constant_tensor("w3", test::random_tensor({16, 16, 1, 1}, 23));
  b.constant_tensor("w4", test::random_tensor({8, 16, 1, 1}, 24));
  auto conv = [&](const char* in, const char* w, const char* out, int pad) -> ir::Node& {
    ir::Node& c = b.lithe_node("ConvNhwc", {in, w}, {out});
    if (pad) c.attrs["pads"] = test::GraphBuilder::ints({pad, pad, pad, pad});
    return c;
  };
  conv("x", "w1", "h1", 1).attrs["activation"] = test::GraphBuilder::s("Relu");
  conv("x", "w2", "h2", 0);
  b.node("Add", {"h1", "h2"}, {"s"});
  b.lithe_node("GlobalAveragePoolNhwc", {"s"}, {"p"});
  conv("p", "w3", "e", 0).attrs["activation"] = test::GraphBuilder::s("Sigmoid");
  b.node("Mul", {"s", "e"}, {"m"});
  ir::Node& rm = b.node("ReduceMean", {"m"}, {"r"});
  rm.attrs["axes"] = test::GraphBuilder::ints({2});
  b.node("Mul", {"r", "m"}, {"t"});
  conv("t", "w4", "y", 0);
  b.output("y");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 4), 1);
  std::vector<build::QuantizedLayer> layers;
  const auto report = build::quantize_graph(*g, hist, {}, &layers);
  for (const ir::Node& n : fp32->nodes)
    if (n.op_type == "Add" || n.op_type == "Mul") {
      const auto it = std::find_if(report.begin(), report.end(), [&](const auto& l) { return l.node == n.name; });
      ASSERT_NE(it, report.end()) << n.name;
      EXPECT_EQ(it->precision, "int8") << n.name << ": " << it->reason;
    }
  EXPECT_EQ(count_any_domain(*g, "QBinaryU8"), 3);
  EXPECT_EQ(count_any_domain(*g, "Add") + count_any_domain(*g, "Mul"), 0);
  // One record per operand.
  EXPECT_EQ(std::count_if(layers.begin(), layers.end(), [](const auto& l) { return l.op == "add"; }), 2);
  EXPECT_EQ(std::count_if(layers.begin(), layers.end(), [](const auto& l) { return l.op == "mul"; }), 4);
  test::check_fast_node(g, "s/u8", "q8-add", test::supported_isas(), expect_same_bytes);
  test::check_fast_node(g, "m/u8", "q8-mul", test::supported_isas(), expect_same_bytes);
  test::check_fast_node(g, "t/u8", "q8-mul", test::supported_isas(), expect_same_bytes);
  // Each QBinaryU8 output against dequantize -> op -> quantize in double.
  auto probe = std::make_shared<ir::Graph>(*g);
  std::vector<const ir::Node*> qb;
  probe->outputs.clear();
  for (const ir::Node& n : g->nodes)
    if (n.op_type == "QBinaryU8") {
      qb.push_back(&n);
      probe->outputs.insert(probe->outputs.end(), {n.inputs[0], n.inputs[3], n.outputs[0]});
    }
  const auto outs = test::run_graph(probe, test::seeded_inputs(*fp32, 5u));
  auto scalar = [&](int v) { return g->values[static_cast<size_t>(v)].constant->raw(); };
  for (size_t k = 0; k < qb.size(); ++k) {
    const ir::Node& n = *qb[k];
    SCOPED_TRACE(n.name);
    double sc[3];
    int zp[3];
    for (int j = 0; j < 3; ++j) {
      sc[j] = *static_cast<const float*>(scalar(n.inputs[j == 0 ? 1 : j == 1 ? 4 : 6]));
      zp[j] = *static_cast<const uint8_t*>(scalar(n.inputs[j == 0 ? 2 : j == 1 ? 5 : 7]));
    }
    const bool mul = ops::NodeAttrs(n).attr_string("op") == "Mul";
    const Tensor &ta = outs[3 * k], &tb = outs[3 * k + 1], &ty = outs[3 * k + 2];
    const Shape ys = ty.shape();
    const auto sa = ops::broadcast_strides(ta.shape(), ys), sb = ops::broadcast_strides(tb.shape(), ys);
    int worst = 0;
    ops::for_each_broadcast<2>(ys, {sa, sb}, [&](int64_t i, int64_t oa, int64_t ob) {
      const double fa = (ta.data<uint8_t>()[oa] - zp[0]) * sc[0];
      const double fb = (tb.data<uint8_t>()[ob] - zp[1]) * sc[1];
      const double want = std::clamp(std::nearbyint((mul ? fa * fb : fa + fb) / sc[2]) + zp[2], 0.0, 255.0);
      worst = std::max(worst, std::abs(static_cast<int>(want) - ty.data<uint8_t>()[i]));
    });
    EXPECT_LE(worst, 1);
  }
  const auto in = test::seeded_inputs(*fp32, 6u);
  EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.99);
}

// Gemm (A [M, K] x B' + C) as a 1x1 QConvNhwc between Reshapes, for both B layouts.
TEST(Quantize, GemmAsPointwiseConv) {
  for (int trans : {0, 1}) {
    SCOPED_TRACE("transB " + std::to_string(trans));
    test::GraphBuilder b;
    b.input("x", {3, 40});
    b.constant_tensor("w", test::random_tensor(trans ? Shape{10, 40} : Shape{40, 10}, 4));
    b.constant_tensor("c", test::random_tensor({10}, 5));
    ir::Node& n = b.node("Gemm", {"x", "w", "c"}, {"y"});
    n.attrs["transB"] = test::GraphBuilder::i(trans);
    b.output("y");
    auto fp32 = b.build();
    auto g = std::make_shared<ir::Graph>(*fp32);
    const auto hist = build::calibrate(*g, samples_for(*g, 32), 1);  // 30 outputs a sample
    const auto report = build::quantize_graph(*g, hist, {});
    ASSERT_EQ(count_any_domain(*g, "QConvNhwc"), 1);
    EXPECT_EQ(report[0].precision, "int8");
    test::check_fast_node(g, "y/u8_nhwc", "q8-conv-gemm", test::supported_isas(), expect_same_bytes);
    const auto in = test::seeded_inputs(*fp32, 8u);
    EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.995);
  }
}

// MatMul of a 3-D activation by a constant matrix (a transformer's projection) as a 1x1
// QConvNhwc over its rows, the output reshaped back; a MatMul by a computed B stays FP32.
TEST(Quantize, MatMulByConstantAsPointwiseConv) {
  test::GraphBuilder b;
  b.input("x", {2, 6, 24});
  b.constant_tensor("w", test::random_tensor({24, 9}, 6));
  b.node("MatMul", {"x", "w"}, {"y"});
  b.output("y");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 16), 1);
  const auto report = build::quantize_graph(*g, hist, {});
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].precision, "int8");
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 1);
  EXPECT_EQ(g->values[static_cast<size_t>(g->outputs[0])].type.dims, (Shape{2, 6, 9}));
  test::check_fast_node(g, "y/u8_nhwc", "q8-conv-gemm", test::supported_isas(), expect_same_bytes);
  const auto in = test::seeded_inputs(*fp32, 9u);
  EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.995);

  test::GraphBuilder b2;
  b2.input("x", {2, 6, 24}).input("x2", {2, 24, 5});
  b2.node("MatMul", {"x", "x2"}, {"y"});
  b2.output("y");
  auto g2 = b2.build();
  const auto report2 = build::quantize_graph(*g2, build::calibrate(*g2, samples_for(*g2, 4), 1), {});
  ASSERT_EQ(report2.size(), 1u);
  EXPECT_EQ(report2[0].precision, "fp32");
  EXPECT_EQ(count_any_domain(*g2, "QConvNhwc"), 0);
}

// Depthwise (linear) -> 1x1 conv: equalization keeps the function (within float rounding) and
// brings each channel's two weight ranges to their geometric mean; a Clip output (not
// positively homogeneous) is left alone.
TEST(Quantize, EqualizesDepthwisePairs) {
  for (const char* act : {"", "Relu", "Clip"}) {
    SCOPED_TRACE(std::string("activation '") + act + "'");
    test::GraphBuilder b;
    b.input("x", {1, 6, 6, 8});
    Tensor wd = test::random_tensor({8, 1, 3, 3}, 11);
    for (int64_t t = 0; t < 9; ++t) wd.data<float>()[3 * 9 + t] *= 40.f;  // channel 3: large
    b.constant_tensor("wd", wd);
    b.constant_tensor("bd", test::random_tensor({8}, 12));
    b.constant_tensor("wp", test::random_tensor({5, 8, 1, 1}, 13));
    ir::Node& d = b.lithe_node("ConvNhwc", {"x", "wd", "bd"}, {"h"});
    d.attrs["group"] = test::GraphBuilder::i(8);
    d.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
    if (*act) d.attrs["activation"] = test::GraphBuilder::s(act);
    if (std::string(act) == "Clip") d.attrs["activation_params"] = test::attr_fs({0.f, 6.f});
    b.lithe_node("ConvNhwc", {"h", "wp"}, {"y"});
    b.output("y");
    auto before = b.build();
    auto after = std::make_shared<ir::Graph>(*before);
    const int pairs = build::equalize_depthwise_pairs(*after);
    EXPECT_EQ(pairs, std::string(act) == "Clip" ? 0 : 1);
    const auto in = test::seeded_inputs(*before, 3u);
    const Tensor want = test::run_graph(before, in)[0], got = test::run_graph(after, in)[0];
    for (int64_t i = 0; i < want.numel(); ++i)
      EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i],
                  1e-4 * std::max(1.f, std::fabs(want.data<float>()[i])));
    if (!pairs) continue;
    const Tensor& w1 = *after->values[static_cast<size_t>(after->find_value("wd"))].constant;
    const Tensor& w2 = *after->values[static_cast<size_t>(after->find_value("wp"))].constant;
    for (int64_t c = 0; c < 8; ++c) {
      float r1 = 0, r2 = 0;
      for (int64_t t = 0; t < 9; ++t) r1 = std::max(r1, std::fabs(w1.data<float>()[c * 9 + t]));
      for (int64_t m = 0; m < 5; ++m) r2 = std::max(r2, std::fabs(w2.data<float>()[m * 8 + c]));
      EXPECT_NEAR(r1, r2, 1e-5f * r2) << "channel " << c;
    }
  }
}

}  // namespace
}  // namespace lithe
