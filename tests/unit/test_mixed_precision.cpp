// Mixed precision from an accuracy budget (builder/mixed_precision.cpp): the error measure
// against a scalar computation, a layer made sensitive ends FP32 while the others go INT8
// within the budget, budget 0 keeps everything FP32, a huge budget equals plain int8.
#include <cmath>
#include <limits>
#include <random>

#include "builder/build.hpp"
#include "builder/mixed_precision.hpp"
#include "conv_test_util.hpp"
#include "graph_test_util.hpp"

namespace lithe {
namespace {

using test::count_any_domain;

ir::Node& nhwc_conv(test::GraphBuilder& b, const std::string& x, const std::string& w,
                    const std::string& y, const std::string& name, bool relu, int64_t pad) {
  ir::Node& c = b.node("ConvNhwc", {x, w}, {y});
  c.name = name;
  c.domain = "lithe";
  c.opset = 1;
  c.attrs["pads"] = test::GraphBuilder::ints({pad, pad, pad, pad});
  if (relu) c.attrs["activation"] = test::GraphBuilder::s("Relu");
  return c;
}

// x [1, 8, 8, 4] -> conv1 3x3 (Relu) -> conv2 1x1 (Relu) -> conv3 1x1 -> y [1, 8, 8, 6]. The
// input's channel 0 is 1000x the others (sensitive_samples) and conv1 reads it with weights
// 1000x smaller: in FP32 every channel counts alike, but one uint8 scale for the whole input
// leaves channels 1-3 a few levels at most, so conv1 in INT8 ruins the output; conv2 and
// conv3 read ordinary ranges.
std::shared_ptr<ir::Graph> sensitive_graph() {
  test::GraphBuilder b;
  b.input("x", {1, 8, 8, 4});
  Tensor w1 = test::random_tensor({8, 4, 3, 3}, 21);
  for (int64_t m = 0; m < 8; ++m)
    for (int64_t t = 0; t < 9; ++t) w1.data<float>()[(m * 4 + 0) * 9 + t] *= 1e-3f;
  b.constant_tensor("w1", w1);
  b.constant_tensor("w2", test::random_tensor({8, 8, 1, 1}, 22));
  b.constant_tensor("w3", test::random_tensor({6, 8, 1, 1}, 23));
  nhwc_conv(b, "x", "w1", "a", "conv1", true, 1);
  nhwc_conv(b, "a", "w2", "c", "conv2", true, 0);
  nhwc_conv(b, "c", "w3", "y", "conv3", false, 0);
  b.output("y");
  return b.build();
}

std::vector<std::vector<Tensor>> sensitive_samples(int count) {
  std::vector<std::vector<Tensor>> s;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (int i = 0; i < count; ++i) {
    Tensor x(DType::kFloat32, {1, 8, 8, 4});
    for (int64_t k = 0; k < x.numel(); ++k)
      x.data<float>()[k] = normal(rng) * (k % 4 == 0 ? 1000.f : 1.f);
    s.push_back({std::move(x)});
  }
  return s;
}

build::CalibrationOptions calib_of(const std::vector<std::vector<Tensor>>& samples) {
  build::CalibrationOptions c;
  c.load = [samples](const ir::Graph&) { return samples; };
  return c;
}

// 100 x (1 - cosine) of output 0 of `got` against `want` over all samples, by the definition
// (reference executor, double sums); the cosine with an all-zero output is 0.
double cosine_error(const std::shared_ptr<ir::Graph>& want, const std::shared_ptr<ir::Graph>& got,
                    const std::vector<std::vector<Tensor>>& samples) {
  double ab = 0, aa = 0, bb = 0;
  for (const auto& s : samples) {
    const Tensor a = test::run_graph(want, s)[0], b = test::run_graph(got, s)[0];
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double x = a.data<float>()[i], y = b.data<float>()[i];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
  }
  return aa > 0 && bb > 0 ? 100 * (1 - ab / std::sqrt(aa * bb)) : 100;
}

TEST(MixedPrecision, ErrorMeasure) {
  auto t = [](std::vector<float> v, Shape s) {
    Tensor x(DType::kFloat32, std::move(s));
    for (size_t i = 0; i < v.size(); ++i) x.data<float>()[i] = v[i];
    return x;
  };
  // Two samples of [2, 3] class scores: rows 0-3; rows 1 and 3 change their arg max.
  const std::vector<std::vector<Tensor>> want = {{t({1, 2, 3, 3, 2, 1}, {2, 3})},
                                                 {t({0, 5, 1, 2, 0, 0}, {2, 3})}};
  const std::vector<std::vector<Tensor>> got = {{t({1, 2, 3, 1, 2, 1.5f}, {2, 3})},
                                                {t({0, 5, 1, 2, 0, 4}, {2, 3})}};
  const build::ModelError e = build::model_error({"p"}, want, got);
  double ab = 0, aa = 0, bb = 0;
  for (size_t s = 0; s < 2; ++s)
    for (int64_t i = 0; i < 6; ++i) {
      const double x = want[s][0].data<float>()[i], y = got[s][0].data<float>()[i];
      ab += x * y, aa += x * x, bb += y * y;
    }
  ASSERT_EQ(e.outputs.size(), 1u);
  EXPECT_NEAR(e.outputs[0].cosine_error, 100 * (1 - ab / std::sqrt(aa * bb)), 1e-9);
  EXPECT_DOUBLE_EQ(e.outputs[0].top1, 50.0);  // 2 of 4 rows
  EXPECT_DOUBLE_EQ(e.error, 50.0);
  // Identical: 0; not class scores (rank 4): no top-1; a NaN where FP32 is finite: 100.
  EXPECT_EQ(build::model_error({"p"}, want, want).error, 0.0);
  const std::vector<std::vector<Tensor>> img = {{t({1, 2, 3, 4}, {1, 1, 2, 2})}};
  std::vector<std::vector<Tensor>> nan = {
      {t({1, 2, std::numeric_limits<float>::quiet_NaN(), 4}, {1, 1, 2, 2})}};
  EXPECT_LT(build::model_error({"y"}, img, img).outputs[0].top1, 0);
  EXPECT_EQ(build::model_error({"y"}, img, nan).error, 100.0);
}

// The sensitive conv stays FP32, the other two go INT8, and the error (measured again here
// with the reference executor) is within the budget, while plain int8 is far over it.
TEST(MixedPrecision, SensitiveLayerStaysFp32) {
  auto fp32 = sensitive_graph();
  const auto samples = sensitive_samples(12);
  auto g = std::make_shared<ir::Graph>(*fp32);
  build::MixedPrecisionOptions mo;
  mo.max_accuracy_drop = 1.0;
  mo.sensitivity_samples = 4;
  const build::MixedSummary s = build::build_best(*g, calib_of(samples), "test", mo);
  ASSERT_EQ(s.layers.size(), 3u);
  for (const auto& l : s.layers) {
    SCOPED_TRACE(l.node);
    // conv1: FP32, its weights stored in half when that keeps the error within budget.
    if (l.node == "conv1")
      EXPECT_TRUE(l.precision == "fp32" || l.precision == "fp16") << l.precision;
    else
      EXPECT_EQ(l.precision, "int8");
    if (l.node == "conv1") {
      EXPECT_EQ(l.rank, 1);
    }
  }
  EXPECT_EQ(s.outcome, "mixed");
  EXPECT_EQ(s.kept_fp32, 1u);
  EXPECT_EQ(s.eval_samples, 12u);
  EXPECT_EQ(s.sensitivity_samples, 4u);
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 2);
  const double err = cosine_error(fp32, g, samples);
  EXPECT_LE(err, mo.max_accuracy_drop);
  EXPECT_NEAR(s.final.error, err, 1e-3 + 1e-3 * err);
  // Plain int8 of the same model: far over the budget, as the summary says (conv1's weights
  // on channel 0 round to 0 in int8 and its other channels to the zero point: all zeros).
  auto int8 = std::make_shared<ir::Graph>(*fp32);
  build::build_int8(*int8, calib_of(samples), "test");
  const double int8_err = cosine_error(fp32, int8, samples);
  EXPECT_GT(int8_err, 10 * mo.max_accuracy_drop);
  EXPECT_NEAR(s.all_int8.error, int8_err, 1e-3 * int8_err);
  // The report names every layer with its precision and error.
  const std::string text = build::format_mixed_report(build::mixed_report_json(s));
  for (const char* n :
       {"conv1", "conv2", "conv3", "budget 1.000", "of 3 conv/Gemm layers 2 int8, 1 kept in fp32"})
    EXPECT_NE(text.find(n), std::string::npos) << n << " not in:\n" << text;
}

TEST(MixedPrecision, ZeroBudgetKeepsEverythingFp32) {
  auto fp32 = sensitive_graph();
  const auto samples = sensitive_samples(6);
  auto g = std::make_shared<ir::Graph>(*fp32);
  build::MixedPrecisionOptions mo;
  mo.max_accuracy_drop = 0;
  const build::MixedSummary s = build::build_best(*g, calib_of(samples), "test", mo);
  EXPECT_EQ(s.outcome, "unreachable");
  EXPECT_EQ(s.kept_fp32, 3u);
  EXPECT_EQ(s.final.error, 0.0);
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 0);
  for (const auto& l : s.layers) EXPECT_EQ(l.precision, "fp32") << l.node;
  for (const auto& in : samples)
    EXPECT_TRUE(test::same_bits(test::run_graph(fp32, in), test::run_graph(g, in)));
}

// A budget no int8 error reaches: the same graph as plain int8, bit for bit.
TEST(MixedPrecision, HugeBudgetEqualsPlainInt8) {
  auto fp32 = sensitive_graph();
  const auto samples = sensitive_samples(6);
  auto g = std::make_shared<ir::Graph>(*fp32);
  build::MixedPrecisionOptions mo;
  mo.max_accuracy_drop = 1e9;
  const build::MixedSummary s = build::build_best(*g, calib_of(samples), "test", mo);
  EXPECT_EQ(s.outcome, "all-int8");
  EXPECT_EQ(s.kept_fp32, 0u);
  auto int8 = std::make_shared<ir::Graph>(*fp32);
  build::build_int8(*int8, calib_of(samples), "test");
  ASSERT_EQ(g->nodes.size(), int8->nodes.size());
  for (size_t n = 0; n < g->nodes.size(); ++n)
    EXPECT_EQ(g->nodes[n].op_type, int8->nodes[n].op_type);
  EXPECT_EQ(count_any_domain(*g, "QConvNhwc"), 3);
  for (const auto& in : samples)
    EXPECT_TRUE(test::same_bits(test::run_graph(int8, in), test::run_graph(g, in)));
}

// Through build_model (examples/tiny_cnn.onnx): the engine's report holds the mixed
// precision entry, every quantizable layer once with its precision, and the text form lists
// them; a zero budget gives no INT8 op in the engine's graph.
TEST(MixedPrecision, BuildReport) {
  const std::string model = std::string(LITHE_SOURCE_DIR) + "/examples/tiny_cnn.onnx";
  for (double budget : {1.0, 0.0}) {
    SCOPED_TRACE("budget " + std::to_string(budget));
    build::BuildOptions o;
    o.precision = "best";
    o.mixed.max_accuracy_drop = budget;
    o.calib.load = [](const ir::Graph& g) {
      std::vector<std::vector<Tensor>> s;
      for (unsigned i = 0; i < 6; ++i) s.push_back(test::seeded_inputs(g, 40 + i));
      return s;
    };
    const build::BuildResult r = build::build_model(model, o);
    const std::string text = build::format_report(r.contents.report_json);
    EXPECT_NE(text.find("precision: best"), std::string::npos) << text;
    EXPECT_NE(text.find("mixed precision: budget"), std::string::npos) << text;
    // Every conv of the engine's graph is named in the report's layer table, with the
    // precision it has in the graph.
    int convs = 0;
    for (const ir::Node& n : r.contents.graph->nodes) {
      if (n.op_type != "ConvNhwc" && n.op_type != "QConvNhwc") continue;
      ++convs;
      const std::string want = n.op_type == "QConvNhwc" ? " int8 " : " fp32 ";
      const size_t at = text.find(" " + n.name + " ");
      ASSERT_NE(at, std::string::npos) << n.name << " not in:\n" << text;
      EXPECT_NE(text.substr(at, 48 + want.size()).find(want), std::string::npos)
          << text.substr(at, 60);
    }
    EXPECT_GT(convs, 0);
    EXPECT_EQ(count_any_domain(*r.contents.graph, "QConvNhwc") == 0, budget == 0.0);
  }
}

TEST(MixedPrecision, BadBudgetIsRefused) {
  for (double b : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto g = sensitive_graph();
    build::MixedPrecisionOptions mo;
    mo.max_accuracy_drop = b;
    EXPECT_THROW(build::build_best(*g, calib_of(sensitive_samples(2)), "test", mo), Error);
  }
}

}  // namespace
}  // namespace lithe
