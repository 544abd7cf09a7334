// INT8 linear Resize (lithe.QResizeLinearU8, ops/qresize.cpp; kernels q8_resize; quantizer):
// the reference kernel against DequantizeLinear -> Resize -> QuantizeLinear computed in double
// precision (the float Resize reference on a float64 tensor) for many modes and scales, equal
// except at exact ties of the real result; the fast step against the reference bit for bit at
// every kernel level this CPU runs (channel tails, NCHW planes, downscaling, extreme zero
// points); and the quantizer keeping conv -> Resize(linear) -> conv in INT8 close to FP32.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "builder/quantize.hpp"
#include "conv_test_util.hpp"
#include "fast_test_util.hpp"
#include "graph_test_util.hpp"
#include "op_test_util.hpp"

namespace lithe {
namespace {

using test::count_any_domain;
using test::GraphBuilder;

struct ResizeCase {
  Shape x;                     // input shape
  std::vector<float> scales;   // per dim (empty: sizes)
  std::vector<int64_t> sizes;  // per dim
  std::string coord = "half_pixel";
  bool exclude_outside = false, antialias = false;
  std::string str() const {
    std::string s = "x " + shape_str(x) + " " + coord;
    for (float f : scales) s += " s" + std::to_string(f);
    for (int64_t v : sizes) s += " n" + std::to_string(v);
    if (exclude_outside) s += " exclude_outside";
    if (antialias) s += " antialias";
    return s;
  }
};

void set_attrs(ir::Node& n, const ResizeCase& k) {
  n.attrs["coordinate_transformation_mode"] = GraphBuilder::s(k.coord);
  if (k.exclude_outside) n.attrs["exclude_outside"] = GraphBuilder::i(1);
  if (k.antialias) n.attrs["antialias"] = GraphBuilder::i(1);
}

Tensor scales_of(const ResizeCase& k) {
  return test::make<float>({static_cast<int64_t>(k.scales.size())}, k.scales);
}

// The reference op on uint8 codes x with zero point z.
Tensor run_qresize(const ResizeCase& k, const Tensor& x, uint8_t z) {
  ir::Node n = test::op_node("QResizeLinearU8", 1);
  n.domain = "lithe";
  set_attrs(n, k);
  std::vector<Tensor> in = {x, test::make<uint8_t>({}, {z})};
  if (k.scales.empty()) {
    in.push_back(Tensor());
    in.push_back(test::ints(k.sizes));
  } else {
    in.push_back(scales_of(k));
  }
  return test::run_one(n, in).at(0);
}

// DequantizeLinear (scale s, zero point z) -> Resize (opset 19, linear) on float64 -> the
// real result in steps, y / s, before QuantizeLinear rounds it and adds z.
std::vector<double> real_codes(const ResizeCase& k, const Tensor& x, uint8_t z, double s) {
  Tensor xd(DType::kFloat64, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i)
    xd.data<double>()[i] = (static_cast<double>(x.data<uint8_t>()[i]) - z) * s;
  ir::Node n = test::op_node("Resize", 19);
  n.attrs["mode"] = GraphBuilder::s("linear");
  set_attrs(n, k);
  std::vector<Tensor> in = {xd, Tensor()};
  if (k.scales.empty()) {
    in.push_back(Tensor());
    in.push_back(test::ints(k.sizes));
  } else {
    in.push_back(scales_of(k));
  }
  const Tensor y = test::run_one(n, in).at(0);
  std::vector<double> out(static_cast<size_t>(y.numel()));
  for (int64_t i = 0; i < y.numel(); ++i) out[static_cast<size_t>(i)] = y.data<double>()[i] / s;
  return out;
}

Tensor random_codes(const Shape& s, unsigned seed) {
  std::mt19937 rng(seed);
  Tensor t(DType::kUInt8, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(rng() & 255);
  return t;
}

std::vector<ResizeCase> reference_cases() {
  std::vector<ResizeCase> v;
  for (const char* coord : {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                            "align_corners", "asymmetric", "tf_half_pixel_for_nn"}) {
    v.push_back({{1, 3, 5, 7}, {1, 1, 2, 2}, {}, coord});        // NCHW x2
    v.push_back({{1, 6, 7, 5}, {1, 1.7f, 2.5f, 1}, {}, coord});  // NHWC, odd scales
    v.push_back({{2, 9, 8, 3}, {1, 0.5f, 0.6f, 1}, {}, coord});  // NHWC downscale
    v.push_back({{1, 2, 6, 9}, {}, {1, 2, 13, 4}, coord});       // NCHW sizes, up and down
  }
  v.push_back({{1, 4, 7, 6}, {1, 1, 3, 3}, {}, "half_pixel", true});  // exclude_outside
  v.push_back({{1, 12, 11, 4}, {1, 0.4f, 0.3f, 1}, {}, "half_pixel", false, true});  // antialias
  v.push_back({{2, 3, 4, 5}, {1, 2, 1.5f, 1.5f}, {}, "align_corners"});              // three axes
  return v;
}

// Equal to QuantizeLinear of the real result, saturate(round_half_even(y / s) + z), except
// where y / s is a tie (k + 1/2): the double computation lands within rounding noise of it
// on either side, so there either neighbour is accepted (exact ties, told apart by the same
// computation at scale 1, where y / s is within 1e-9 of them, are common: x2 has weights
// 1/4 and 3/4; QResizeLinear.ExactTiesRoundHalfToEven checks them). Results within 3e-5 of a
// tie that are not ties (mostly the ties of scales like 2.5 or align_corners, moved by about
// 1e-6 by the float32 coordinate mapping, where the float32 weights and sum, within about
// 255 * 2^-22 of the double one, may round to the other side) are accepted likewise; every
// other result is equal. Measured: about 0.2% of the values round the other way, all within
// 1.2e-5 of a tie.
TEST(QResizeLinear, ReferenceMatchesDoublePrecisionQdq) {
  unsigned seed = 1;
  int64_t total = 0, ties = 0, near_ties = 0, near_diff = 0;
  double widest = 0;  // the largest distance from a tie of a value rounded the other way
  for (const ResizeCase& k : reference_cases()) {
    for (uint8_t z : {uint8_t{0}, uint8_t{128}, uint8_t{255}, uint8_t{37}}) {
      SCOPED_TRACE(k.str() + " z " + std::to_string(z));
      const double s = 0.0137;  // any positive scale: the codes do not depend on it
      const Tensor x = random_codes(k.x, ++seed);
      const Tensor y = run_qresize(k, x, z);
      const std::vector<double> want = real_codes(k, x, z, s);
      const std::vector<double> unit = real_codes(k, x, z, 1.0);
      ASSERT_EQ(static_cast<size_t>(y.numel()), want.size());
      auto code = [&](double r) { return static_cast<int>(std::clamp(r + z, 0.0, 255.0)); };
      for (size_t i = 0; i < want.size(); ++i) {
        const double v = want[i];
        const int got = y.data<uint8_t>()[i];
        ++total;
        const double u = unit[i];
        const bool tie = std::abs(u - std::floor(u) - 0.5) < 1e-9;
        if (tie || std::abs(v - std::floor(v) - 0.5) < 3e-5) {
          ++(tie ? ties : near_ties);
          if (!tie && got != code(std::nearbyint(v))) {
            ++near_diff;
            widest = std::max(widest, std::abs(v - std::floor(v) - 0.5));
          }
          ASSERT_TRUE(got == code(std::floor(v)) || got == code(std::ceil(v)))
              << "element " << i << ": real " << v << ", got " << got;
          continue;
        }
        ASSERT_EQ(got, code(std::nearbyint(v))) << "element " << i << ": real " << v;
      }
    }
  }
  EXPECT_LT(near_diff, total / 200) << near_diff << " of " << total;
  EXPECT_GT(ties, 0);
  std::printf(
      "%lld values, %lld ties, %lld within 3e-5 of a tie (%lld rounded the other way, "
      "at most %.2g from the tie)\n",
      static_cast<long long>(total), static_cast<long long>(ties),
      static_cast<long long>(near_ties), static_cast<long long>(near_diff), widest);
}

// Ties: x2 half_pixel has weights 1/4 and 3/4 in both axes (exact in float and double), so
// sum w * (q - z) is exact and many results are k + 1/2: they round to even before z is
// added (as QuantizeLinear rounds y / s), so with an odd z the code is odd.
TEST(QResizeLinear, ExactTiesRoundHalfToEven) {
  const ResizeCase k{{1, 8, 8, 16}, {1, 2, 2, 1}, {}};
  const uint8_t z = 91;
  const Tensor x = random_codes(k.x, 5);
  const Tensor y = run_qresize(k, x, z);
  const std::vector<double> real = real_codes(k, x, z, 1.0);  // scale 1: exact in double
  int ties = 0;
  for (size_t i = 0; i < real.size(); ++i) {
    const double v = real[i];
    if (v - std::floor(v) == 0.5) ++ties;
    ASSERT_EQ(y.data<uint8_t>()[i], static_cast<int>(std::nearbyint(v)) + z) << "element " << i;
  }
  EXPECT_GT(ties, 100);
}

TEST(QResizeLinear, RejectsCropAndResizeAndOtherModes) {
  ResizeCase k{{1, 2, 3, 3}, {1, 1, 2, 2}, {}, "tf_crop_and_resize"};
  EXPECT_THROW(run_qresize(k, random_codes(k.x, 1), 0), Error);
  k.coord = "half_pixel";
  ir::Node n = test::op_node("QResizeLinearU8", 1);
  n.domain = "lithe";
  n.attrs["mode"] = GraphBuilder::s("cubic");
  EXPECT_THROW(test::run_one(n, {random_codes(k.x, 1), test::make<uint8_t>({}, {0}), scales_of(k)}),
               Error);
}

// ---- fast step == reference, every level ------------------------------------------------

// x (float, seeded in [-1, 1)) -> QuantizeLinear (codes over the whole byte range) ->
// QResizeLinearU8 with zero point z -> y (uint8).
std::shared_ptr<ir::Graph> qresize_graph(const ResizeCase& k, uint8_t z, uint8_t qz = 128) {
  GraphBuilder b;
  b.input("x", k.x);
  b.constant_tensor("qs", test::make<float>({}, {2.0f / 255}));
  b.constant_tensor("qz", test::make<uint8_t>({}, {qz}));
  b.constant_tensor("z", test::make<uint8_t>({}, {z}));
  b.node("QuantizeLinear", {"x", "qs", "qz"}, {"xq"});
  std::vector<std::string> ins = {"xq", "z"};
  if (k.scales.empty()) {
    b.constant_i64("sizes", k.sizes);
    ins.insert(ins.end(), {"", "sizes"});
  } else {
    b.constant_tensor("scales", scales_of(k));
    ins.push_back("scales");
  }
  set_attrs(b.lithe_node("QResizeLinearU8", ins, {"y"}), k);
  b.output("y");
  return b.build();
}

void same_bytes(size_t k, const Tensor& want, const Tensor& got) {
  ASSERT_EQ(want.nbytes(), got.nbytes());
  const auto* w = static_cast<const uint8_t*>(want.raw());
  const auto* g = static_cast<const uint8_t*>(got.raw());
  int64_t diff = 0, first = -1;
  for (size_t i = 0; i < want.nbytes(); ++i)
    if (w[i] != g[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++diff;
    }
  EXPECT_EQ(diff, 0) << "output " << k << ": " << diff << " bytes differ, first at " << first;
}

TEST(Q8Kernels, ResizeMatchesReferenceBitwise) {
  std::vector<ResizeCase> cases;
  // NHWC, channel counts around the 16- and 8-lane blocks.
  for (int64_t c : {1, 3, 7, 8, 15, 16, 17, 24, 33, 64})
    cases.push_back({{1, 5, 6, c}, {1, 2, 2, 1}, {}});
  for (const char* coord : {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                            "tf_half_pixel_for_nn", "half_pixel_symmetric"}) {
    cases.push_back({{2, 7, 5, 19}, {1, 1.7f, 2.3f, 1}, {}, coord});   // NHWC up
    cases.push_back({{1, 9, 12, 21}, {1, 0.5f, 0.4f, 1}, {}, coord});  // NHWC down
    cases.push_back({{2, 3, 6, 5}, {1, 1, 2, 3}, {}, coord});          // NCHW up
    cases.push_back({{1, 2, 11, 9}, {1, 1, 0.6f, 0.5f}, {}, coord});   // NCHW down
  }
  cases.push_back({{1, 6, 5, 40}, {}, {1, 13, 3, 40}});  // sizes, H up W down
  cases.push_back({{1, 4, 4, 32}, {1, 3, 1, 1}, {}});    // only H (a W of one tap)
  cases.push_back({{1, 4, 7, 18}, {1, 1, 2, 1}, {}});    // only W
  cases.push_back({{1, 5, 5, 16}, {1, 3, 3, 1}, {}, "half_pixel", true});  // exclude_outside
  for (const ResizeCase& k : cases)
    for (auto [z, qz] : {std::pair<uint8_t, uint8_t>{128, 128}, {0, 128}, {255, 0}, {7, 250}}) {
      SCOPED_TRACE(k.str() + " z " + std::to_string(z) + " qz " + std::to_string(qz));
      test::check_fast_node(qresize_graph(k, z, qz), "y", "q8-resize-linear",
                            test::supported_isas(), same_bytes);
    }
}

// Antialias downscaling has more than two taps an axis: the reference kernel runs it.
TEST(Q8Kernels, ResizeAntialiasStaysOnTheReference) {
  const ResizeCase k{{1, 8, 8, 16}, {1, 0.5f, 0.25f, 1}, {}, "half_pixel", false, true};
  auto g = qresize_graph(k, 128);
  const plan::MemoryPlan p = plan::plan_memory(*g);
  auto prog = std::make_shared<runtime::Program>(g, p, kernels::active_isa());
  const int node = g->values[static_cast<size_t>(g->find_value("y"))].producer;
  EXPECT_EQ(prog->fast_step(static_cast<size_t>(node)), nullptr);
  runtime::Session s(prog, 1);
  const auto in = test::seeded_inputs(*g, 3);
  EXPECT_TRUE(test::same_bits(test::run_session(s, in), test::run_graph(g, in)));
}

// ---- quantizer ---------------------------------------------------------------------------

// conv -> Resize(linear, x2, NHWC region) -> conv: the Resize becomes lithe.QResizeLinearU8
// at its input's scale and zero point and runs as the fast INT8 step. Its output (a graph
// output too, dequantized) is within half a quantization step of the FP32 Resize of its own
// dequantized input (only the final rounding), and within two steps of the FP32 model's on a
// calibration input (the conv's own INT8 error comes on top: 1.1 to 1.4 steps measured).
// opset 10: the Resize reads scales as input 1 (asymmetric coordinates); `sizes`: sizes
// instead of scales.
void check_conv_resize_conv(const std::string& mode, const std::string& coord, int opset = 13,
                            bool sizes = false) {
  SCOPED_TRACE(mode + " " + coord + " opset " + std::to_string(opset) + (sizes ? " sizes" : ""));
  GraphBuilder b(opset);
  b.input("x", {1, 6, 5, 8});
  b.constant_tensor("w1", test::random_tensor({16, 8, 3, 3}, 3));
  b.constant_tensor("w2", test::random_tensor({4, 16, 1, 1}, 4));
  b.constant("scales", {4}, {1.f, 2.f, 2.f, 1.f});
  b.constant_i64("sizes", {1, 11, 9, 16});
  ir::Node& c1 = b.lithe_node("ConvNhwc", {"x", "w1"}, {"a"});
  c1.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  ir::Node& r = b.node("Resize",
                       opset < 11 ? std::vector<std::string>{"a", "scales"}
                       : sizes    ? std::vector<std::string>{"a", "", "", "sizes"}
                                  : std::vector<std::string>{"a", "", "scales"},
                       {"up"});
  r.attrs["mode"] = GraphBuilder::s(mode);
  if (opset >= 11) r.attrs["coordinate_transformation_mode"] = GraphBuilder::s(coord);
  b.lithe_node("ConvNhwc", {"up", "w2"}, {"y"});
  b.output("y");
  b.output("up");
  b.output("a");
  auto fp32 = b.build();
  auto g = std::make_shared<ir::Graph>(*fp32);
  std::vector<std::vector<Tensor>> samples;
  for (unsigned i = 0; i < 4; ++i) samples.push_back(test::seeded_inputs(*g, 100u + i));
  const auto hist = build::calibrate(*g, samples, 1);
  std::vector<build::QuantizedLayer> layers;
  const auto report = build::quantize_graph(*g, hist, {}, &layers);
  for (const auto& l : report) EXPECT_EQ(l.precision, "int8") << l.node << ": " << l.reason;
  EXPECT_EQ(count_any_domain(*g, "QResizeLinearU8"), 1);
  EXPECT_EQ(count_any_domain(*g, "Resize"), 0);
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 2);
  bool recorded = false;
  for (const auto& l : layers) recorded = recorded || l.op == "resize-linear";
  EXPECT_TRUE(recorded);
  test::check_fast_node(g, "up/u8", "q8-resize-linear", test::supported_isas(), same_bytes);
  const int sv = g->find_value("a/scale");
  ASSERT_GE(sv, 0);
  const double step = g->values[static_cast<size_t>(sv)].constant->data<float>()[0];
  const auto want = test::run_graph(fp32, samples[0]);
  const auto got = test::run_graph(g, samples[0]);
  ASSERT_EQ(got.size(), 3u);
  // The float Resize node itself on the INT8 graph's dequantized input.
  const ir::Node& rn = fp32->nodes[static_cast<size_t>(
      fp32->values[static_cast<size_t>(fp32->find_value("up"))].producer)];
  std::vector<Tensor> rin = {got[2]};
  for (size_t i = 1; i < rn.inputs.size(); ++i)
    rin.push_back(rn.inputs[i] < 0
                      ? Tensor()
                      : fp32->values[static_cast<size_t>(rn.inputs[i])].constant->clone());
  const Tensor own = test::run_one(rn, rin).at(0);
  ASSERT_EQ(own.shape(), want[1].shape());
  double worst_own = 0, worst = 0;
  for (int64_t i = 0; i < want[1].numel(); ++i) {
    const double v = got[1].data<float>()[i];
    worst_own = std::max(worst_own, std::abs(v - own.data<float>()[i]));
    worst = std::max(worst, std::abs(v - want[1].data<float>()[i]));
  }
  EXPECT_LE(worst_own, step * (0.5 + 1e-4)) << "step " << step;
  EXPECT_LE(worst, step * 2) << "step " << step;
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < want[0].numel(); ++i) {
    const double p = want[0].data<float>()[i], q = got[0].data<float>()[i];
    ab += p * q;
    aa += p * p;
    bb += q * q;
  }
  EXPECT_GE(ab / std::sqrt(aa * bb), 0.995);
}

TEST(Quantize, LinearResizeStaysInt8) {
  check_conv_resize_conv("linear", "half_pixel");
  check_conv_resize_conv("linear", "align_corners");
  check_conv_resize_conv("linear", "pytorch_half_pixel");
  check_conv_resize_conv("linear", "half_pixel", 13, true);
  check_conv_resize_conv("linear", "asymmetric", 10);
  check_conv_resize_conv("bilinear", "half_pixel", 18);
}

TEST(Quantize, CubicResizeStaysFp32) {
  GraphBuilder b;
  b.input("x", {1, 6, 5, 8});
  b.constant_tensor("w1", test::random_tensor({16, 8, 1, 1}, 3));
  b.constant("scales", {4}, {1.f, 2.f, 2.f, 1.f});
  b.lithe_node("ConvNhwc", {"x", "w1"}, {"a"});
  b.node("Resize", {"a", "", "scales"}, {"y"}).attrs["mode"] = GraphBuilder::s("cubic");
  b.output("y");
  auto g = b.build();
  const auto hist = build::calibrate(*g, {test::seeded_inputs(*g, 1)}, 1);
  const auto report = build::quantize_graph(*g, hist, {});
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report[1].precision, "fp32");
  EXPECT_EQ(count_any_domain(*g, "QResizeLinearU8"), 0);
  EXPECT_EQ(count_any_domain(*g, "Resize"), 1);
}

}  // namespace
}  // namespace lithe
