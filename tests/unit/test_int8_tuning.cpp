// Data-driven per-channel equalization of INT8 activations (builder/int8_tuning.cpp), the
// per-channel lookup tables it leads to (lithe.LookupU8 with a [C, 256] table) and the
// calibration cache that carries its scales.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "builder/int8_tuning.hpp"
#include "conv_test_util.hpp"
#include "fast_test_util.hpp"

namespace lithe {
namespace {

std::vector<std::vector<Tensor>> samples_for(const ir::Graph& g, int count) {
  std::vector<std::vector<Tensor>> s;
  for (int i = 0; i < count; ++i) s.push_back(test::seeded_inputs(g, 200u + static_cast<unsigned>(i)));
  return s;
}

ir::Node& nhwc_conv(test::GraphBuilder& b, const std::string& x, const std::string& w,
                    const std::string& y, int group = 1) {
  ir::Node& n = b.lithe_node("ConvNhwc", {x, w}, {y});
  if (group > 1) {
    n.attrs["group"] = test::GraphBuilder::i(group);
    n.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
  }
  return n;
}

// Conv (HardSwish; output channel 2 thirty times wider) -> x * 0.5 + 0.25 -> depthwise conv,
// as PP-OCR det's blocks. `cut`: the affine map's output is the graph output instead.
std::shared_ptr<ir::Graph> affine_graph(bool cut) {
  test::GraphBuilder b;
  b.input("x", {1, 6, 6, 8});
  Tensor w1 = test::random_tensor({8, 8, 1, 1}, 31);
  for (int64_t i = 0; i < 8; ++i) w1.data<float>()[2 * 8 + i] *= 30.f;
  b.constant_tensor("w1", w1);
  b.constant("a", {}, {0.5f});
  b.constant("c", {}, {0.25f});
  b.constant_tensor("wd", test::random_tensor({8, 1, 3, 3}, 32));
  nhwc_conv(b, "x", "w1", "h").attrs["activation"] = test::GraphBuilder::s("HardSwish");
  b.node("Mul", {"h", "a"}, {"m"});
  b.node("Add", {"m", "c"}, {"s"});
  if (cut) {
    b.output("s");
  } else {
    nhwc_conv(b, "s", "wd", "y", 8);
    b.output("y");
  }
  return b.build();
}

// Depthwise conv (linear; channel 3 forty times wider) -> 1x1 conv, as BlazeFace's blocks.
std::shared_ptr<ir::Graph> conv_pair_graph(bool cut) {
  test::GraphBuilder b;
  b.input("x", {1, 6, 6, 8});
  Tensor wd = test::random_tensor({8, 1, 3, 3}, 41);
  for (int64_t t = 0; t < 9; ++t) wd.data<float>()[3 * 9 + t] *= 40.f;
  b.constant_tensor("wd", wd);
  b.constant_tensor("bd", test::random_tensor({8}, 42));
  b.constant_tensor("wp", test::random_tensor({5, 8, 1, 1}, 43));
  ir::Node& d = b.lithe_node("ConvNhwc", {"x", "wd", "bd"}, {"h"});
  d.attrs["group"] = test::GraphBuilder::i(8);
  d.attrs["pads"] = test::GraphBuilder::ints({1, 1, 1, 1});
  if (cut) {
    b.output("h");
  } else {
    nhwc_conv(b, "h", "wp", "y");
    b.output("y");
  }
  return b.build();
}

// The factors the header specifies, from the value's per-channel ranges over the samples
// (taken from the cut graph): max(lo_c / L, hi_c / H) in [1/64, 1], square-rooted for a
// group-1 reader, rounded to a power of two.
std::vector<float> expected_scales(const std::shared_ptr<ir::Graph>& cut,
                                   const std::vector<std::vector<Tensor>>& samples, bool dense) {
  std::vector<float> lo(8, 0.f), hi(8, 0.f);
  for (const auto& s : samples) {
    const Tensor v = test::run_graph(cut, s)[0];
    for (int64_t i = 0; i < v.numel(); ++i) {
      lo[static_cast<size_t>(i % 8)] = std::min(lo[static_cast<size_t>(i % 8)], v.data<float>()[i]);
      hi[static_cast<size_t>(i % 8)] = std::max(hi[static_cast<size_t>(i % 8)], v.data<float>()[i]);
    }
  }
  const float l = *std::min_element(lo.begin(), lo.end()), h = *std::max_element(hi.begin(), hi.end());
  std::vector<float> s(8);
  for (size_t c = 0; c < 8; ++c) {
    double f = std::max(l < 0 ? lo[c] / l : 0.f, h > 0 ? hi[c] / h : 0.f);
    f = std::clamp(f, 1.0 / 64, 1.0);
    if (dense) f = std::sqrt(f);
    s[c] = static_cast<float>(std::pow(2.0, std::round(std::log2(f))));
  }
  return s;
}

void expect_same_function(const std::shared_ptr<ir::Graph>& a, const std::shared_ptr<ir::Graph>& b) {
  const auto in = test::seeded_inputs(*a, 5u);
  const Tensor want = test::run_graph(a, in)[0], got = test::run_graph(b, in)[0];
  ASSERT_EQ(want.numel(), got.numel());
  for (int64_t i = 0; i < want.numel(); ++i)
    EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i],
                1e-5 * std::max(1.f, std::fabs(want.data<float>()[i])));
}

// An affine map before a depthwise conv: one site, the factors of its ranges, the function
// kept (powers of two), the constants made per channel and the depthwise weights scaled back.
TEST(Int8Tuning, EqualizesAffineBeforeDepthwise) {
  auto before = affine_graph(false);
  const auto samples = samples_for(*before, 4);
  const std::vector<build::ChannelScaling> sites = build::measure_equalization(*before, samples, 1);
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].value, "s");
  EXPECT_EQ(sites[0].producer, sites[0].add);
  EXPECT_FALSE(sites[0].mul.empty());
  ASSERT_EQ(sites[0].readers.size(), 1u);
  const std::vector<float> want = expected_scales(affine_graph(true), samples, false);
  ASSERT_EQ(sites[0].scales.size(), want.size());
  for (size_t c = 0; c < want.size(); ++c) EXPECT_EQ(sites[0].scales[c], want[c]) << "channel " << c;
  EXPECT_EQ(want[2], 1.f);  // the widest channel keeps its range
  EXPECT_LT(*std::min_element(want.begin(), want.end()), 0.25f);
  auto after = std::make_shared<ir::Graph>(*before);
  build::apply_equalization(*after, sites);
  expect_same_function(before, after);
  const Tensor& a = *after->values[static_cast<size_t>(after->find_value("a"))].constant;
  ASSERT_EQ(a.shape(), Shape{8});
  for (int64_t c = 0; c < 8; ++c) EXPECT_EQ(a.data<float>()[c], 0.5f / want[static_cast<size_t>(c)]);
  const Tensor& wd0 = *before->values[static_cast<size_t>(before->find_value("wd"))].constant;
  const Tensor& wd1 = *after->values[static_cast<size_t>(after->find_value("wd"))].constant;
  for (int64_t i = 0; i < 72; ++i)
    EXPECT_EQ(wd1.data<float>()[i], wd0.data<float>()[i] * want[static_cast<size_t>(i / 9)]);
  // Another graph (no such nodes) is refused with the value's name.
  auto other = conv_pair_graph(false);
  try {
    build::apply_equalization(*other, sites);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'s'"), std::string::npos) << e.what();
  }
}

// A linear depthwise conv before a 1x1 conv: the factors are square-rooted (the reader's
// columns pay the rest), the producer's weights and bias divided, the reader's columns
// multiplied.
TEST(Int8Tuning, EqualizesConvBeforeDenseConv) {
  auto before = conv_pair_graph(false);
  const auto samples = samples_for(*before, 4);
  const auto sites = build::measure_equalization(*before, samples, 1);
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].value, "h");
  EXPECT_TRUE(sites[0].mul.empty());
  const std::vector<float> want = expected_scales(conv_pair_graph(true), samples, true);
  for (size_t c = 0; c < want.size(); ++c) EXPECT_EQ(sites[0].scales[c], want[c]) << "channel " << c;
  auto after = std::make_shared<ir::Graph>(*before);
  build::apply_equalization(*after, sites);
  expect_same_function(before, after);
  const Tensor& b0 = *before->values[static_cast<size_t>(before->find_value("bd"))].constant;
  const Tensor& b1 = *after->values[static_cast<size_t>(after->find_value("bd"))].constant;
  for (int64_t c = 0; c < 8; ++c)
    EXPECT_EQ(b1.data<float>()[c], b0.data<float>()[c] * (1.0f / want[static_cast<size_t>(c)]));
}

// A Relu6-like (Clip) output or a second reader that is not a conv: no site.
TEST(Int8Tuning, SkipsValuesItCannotRescale) {
  auto g = conv_pair_graph(false);
  g->nodes[0].attrs["activation"] = test::GraphBuilder::s("HardSwish");
  EXPECT_TRUE(build::equalization_sites(*g).empty());
  test::GraphBuilder b;
  b.input("x", {1, 6, 6, 8});
  b.constant("a", {}, {0.5f});
  b.constant_tensor("wd", test::random_tensor({8, 1, 3, 3}, 5));
  b.node("Mul", {"x", "a"}, {"m"});
  nhwc_conv(b, "m", "wd", "y", 8);
  b.node("Relu", {"m"}, {"r"});
  b.output("y");
  b.output("r");
  EXPECT_TRUE(build::equalization_sites(*b.build()).empty());
}

// After equalization the affine map is per channel: quantized, its chain becomes one
// LookupU8 with per-channel tables (the distinct ones and an index) whose entries are the
// chain in float for each channel and code, and whose fast step matches the reference at
// every level.
TEST(Int8Tuning, PerChannelLookupTable) {
  auto fp32 = affine_graph(false);
  const auto samples = samples_for(*fp32, 4);
  const auto sites = build::measure_equalization(*fp32, samples, 1);
  auto g = std::make_shared<ir::Graph>(*fp32);
  build::apply_equalization(*g, sites);
  auto eq = std::make_shared<ir::Graph>(*g);
  const auto hist = build::calibrate(*g, samples, 1);
  const auto report = build::quantize_graph(*g, hist, {});
  for (const auto& l : report) EXPECT_EQ(l.precision, "int8") << l.node << ": " << l.reason;
  const ir::Node* lut = nullptr;
  for (const ir::Node& n : g->nodes)
    if (n.op_type == "LookupU8") lut = &n;
  ASSERT_NE(lut, nullptr);
  ASSERT_EQ(lut->inputs.size(), 3u);
  const Tensor& table = *g->values[static_cast<size_t>(lut->inputs[1])].constant;
  const Tensor& index = *g->values[static_cast<size_t>(lut->inputs[2])].constant;
  ASSERT_EQ(table.rank(), 2);
  ASSERT_EQ(table.shape()[1], 256);
  ASSERT_EQ(index.shape(), (Shape{8}));
  // As many tables as distinct factors.
  std::set<float> factors(sites[0].scales.begin(), sites[0].scales.end());
  EXPECT_EQ(table.shape()[0], static_cast<int64_t>(factors.size()));
  const ir::Node& conv1 = g->nodes[static_cast<size_t>(g->values[static_cast<size_t>(lut->inputs[0])].producer)];
  const ir::Node& conv2 = g->nodes[static_cast<size_t>(g->values[static_cast<size_t>(lut->outputs[0])].consumers[0])];
  auto scalar = [&](int v) { return g->values[static_cast<size_t>(v)].constant->raw(); };
  const float hs = *static_cast<const float*>(scalar(conv1.inputs[5]));
  const int hz = *static_cast<const uint8_t*>(scalar(conv1.inputs[6]));
  const float ss = *static_cast<const float*>(scalar(conv2.inputs[1]));
  const int sz = *static_cast<const uint8_t*>(scalar(conv2.inputs[2]));
  for (int64_t c = 0; c < 8; ++c)
    for (int q = 0; q < 256; ++q) {
      const float h = (static_cast<float>(q) - static_cast<float>(hz)) * hs;
      const float s = h * (0.5f / sites[0].scales[static_cast<size_t>(c)]) +
                      0.25f / sites[0].scales[static_cast<size_t>(c)];
      const float want = std::clamp(std::nearbyint(s / ss) + static_cast<float>(sz), 0.0f, 255.0f);
      ASSERT_LT(index.data<uint8_t>()[c], table.shape()[0]);
      EXPECT_LE(std::abs(static_cast<int>(want) - table.data<uint8_t>()[index.data<uint8_t>()[c] * 256 + q]), 1)
          << "channel " << c << " code " << q;
    }
  const std::string lut_out = g->values[static_cast<size_t>(lut->outputs[0])].name;
  test::check_fast_node(g, lut_out, "lookup-u8-per-channel", test::supported_isas(),
                        [](size_t k, const Tensor& want, const Tensor& got) {
                          ASSERT_EQ(want.nbytes(), got.nbytes()) << "output " << k;
                          EXPECT_EQ(std::memcmp(want.raw(), got.raw(), want.nbytes()), 0) << "output " << k;
                        });
  // The INT8 graph stays close to FP32.
  const auto in = test::seeded_inputs(*fp32, 9u);
  const Tensor want = test::run_graph(fp32, in)[0], got = test::run_graph(g, in)[0];
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double x = want.data<float>()[i], y = got.data<float>()[i];
    ab += x * y, aa += x * x, bb += y * y;
  }
  EXPECT_GE(ab / std::sqrt(aa * bb), 0.99);
}

// The cache keeps the scales: a build from it applies the same factors and histograms
// without loading data; a cache naming a value the graph cannot equalize is refused.
TEST(Int8Tuning, CacheCarriesScales) {
  const std::string path = ::testing::TempDir() + "/lithe_int8_tuning.calib";
  std::remove(path.c_str());
  auto fp32 = affine_graph(false);
  const auto samples = samples_for(*fp32, 4);
  build::CalibrationOptions opts;
  opts.cache = path;
  opts.key = "test";
  int loads = 0;
  opts.load = [&](const ir::Graph&) {
    ++loads;
    return samples;
  };
  ir::Graph g1 = *fp32, g2 = *fp32;
  build::Int8Summary s1, s2;
  const auto h1 = build::tuned_calibration(g1, opts, "sha", &s1);
  const auto h2 = build::tuned_calibration(g2, opts, "sha", &s2);
  EXPECT_EQ(loads, 1);
  EXPECT_FALSE(s1.from_cache);
  EXPECT_TRUE(s2.from_cache);
  EXPECT_EQ(h1, h2);
  ASSERT_EQ(s1.channel_scaling.size(), 1u);
  ASSERT_EQ(s2.channel_scaling.size(), 1u);
  EXPECT_EQ(s1.channel_scaling[0].scales, s2.channel_scaling[0].scales);
  for (const char* name : {"a", "c", "wd"}) {
    const Tensor& t1 = *g1.values[static_cast<size_t>(g1.find_value(name))].constant;
    const Tensor& t2 = *g2.values[static_cast<size_t>(g2.find_value(name))].constant;
    ASSERT_EQ(t1.nbytes(), t2.nbytes()) << name;
    EXPECT_EQ(std::memcmp(t1.raw(), t2.raw(), t1.nbytes()), 0) << name;
  }
  // The same cache read by another model with the same key.
  ir::Graph other = *conv_pair_graph(false);
  build::Int8Summary s3;
  EXPECT_THROW(build::tuned_calibration(other, opts, "sha", &s3), Error);
  // Text round trip of the scales; a non-positive scale is refused.
  std::map<std::string, quant::Histogram> hist;
  std::map<std::string, std::vector<float>> scales;
  const std::map<std::string, std::vector<float>> want{{"v", {1.f, 0.125f, 0.015625f}}};
  ASSERT_TRUE(quant::parse_calib_cache(quant::calib_cache_json(h1, "k", want), "t", "k", &hist, &scales));
  EXPECT_EQ(scales, want);
  const std::map<std::string, std::vector<float>> bad{{"v", {1.f, -2.f}}};
  EXPECT_THROW(quant::parse_calib_cache(quant::calib_cache_json(h1, "k", bad), "t", "k", &hist, &scales),
               Error);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lithe
