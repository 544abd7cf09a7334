// fold-batchnorm: an inference BatchNormalization or a per-channel constant Mul/Add/Sub/Div
// after a Conv/ConvTranspose/Gemm with constant weights folds into the weights and bias;
// nothing fires when any condition fails.
#include <gtest/gtest.h>

#include "graph_test_util.hpp"
#include "passes/pass.hpp"

using namespace lithe;
using test::count_ops;
using test::GraphBuilder;

namespace {

using Result = test::PassRun;

Result run_checked(const std::shared_ptr<ir::Graph>& g, int times = 1) {
  Result r = test::run_pass_checked(g, "fold-batchnorm", times);
  test::expect_same_outputs(r.before, r.after, 1e-5);
  return r;
}

int fire_once(const std::shared_ptr<ir::Graph>& g) {
  return passes::run_pass(*g, *passes::find_pass("fold-batchnorm"));
}

// Positive variances, varied scales: the fold must not be a near-identity.
std::vector<float> variances(int64_t c) {
  std::vector<float> v;
  for (int64_t i = 0; i < c; ++i) v.push_back(0.2f + 0.37f * static_cast<float>(i % 5));
  return v;
}

// BatchNormalization(x) -> y with seeded parameters named after `p`.
ir::Node& add_bn(GraphBuilder& b, const std::string& x, const std::string& y, int64_t c,
                 const std::string& p = "bn") {
  b.constant(p + "_scale", {c});
  b.constant(p + "_bias", {c});
  b.constant(p + "_mean", {c});
  b.constant(p + "_var", {c}, variances(c));
  ir::Node& n =
      b.node("BatchNormalization", {x, p + "_scale", p + "_bias", p + "_mean", p + "_var"}, {y}, p);
  n.attrs["epsilon"] = GraphBuilder::f(1e-3f);
  return n;
}

const ir::Node* producer(const ir::Graph& g, const std::string& name) {
  int v = g.find_value(name);
  if (v < 0 || g.values[static_cast<size_t>(v)].producer < 0) return nullptr;
  return &g.nodes[static_cast<size_t>(g.values[static_cast<size_t>(v)].producer)];
}

// x (1x3x8x8) -> Conv (4 output channels, 3x3, pad 1, with bias) -> "c".
GraphBuilder conv_graph(bool bias = true) {
  GraphBuilder b;
  b.input("x", {1, 3, 8, 8});
  b.constant("w", {4, 3, 3, 3});
  std::vector<std::string> ins = {"x", "w"};
  if (bias) {
    b.constant("b", {4});
    ins.push_back("b");
  }
  b.node("Conv", ins, {"c"}, "conv").attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  return b;
}

}  // namespace

TEST(PassFoldBatchnorm, ConvBatchNorm) {
  GraphBuilder b = conv_graph();
  add_bn(b, "c", "y", 4);
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(count_ops(*g, "BatchNormalization"), 0);
  EXPECT_EQ(g->nodes.size(), 1u);
  const ir::Node* conv = producer(*g, "y");  // the conv writes the BN's output name
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->op_type, "Conv");
  EXPECT_EQ(g->find_value("c"), -1);
}

TEST(PassFoldBatchnorm, ConvWithoutBiasGetsOne) {
  GraphBuilder b = conv_graph(false);
  add_bn(b, "c", "bn_out", 4);
  b.node("Relu", {"bn_out"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 1);
  const ir::Node* conv = producer(*g, "bn_out");
  ASSERT_NE(conv, nullptr);
  ASSERT_EQ(conv->inputs.size(), 3u);
  EXPECT_EQ(passes::constant_of(*g, conv->inputs[2])->shape(), (Shape{4}));
}

TEST(PassFoldBatchnorm, GroupedConv) {
  GraphBuilder b;
  b.input("x", {2, 4, 6, 6});
  b.constant("w", {6, 2, 3, 3});
  b.constant("b", {6});
  b.node("Conv", {"x", "w", "b"}, {"c"}).attrs["group"] = GraphBuilder::i(2);
  add_bn(b, "c", "y", 6);
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 1);
  EXPECT_EQ(count_ops(*g, "BatchNormalization"), 0);
}

TEST(PassFoldBatchnorm, GroupedConvTransposeWeightLayout) {
  // W is (C_in, C_out/group, k, k): output channel g*3 + j for input channel block g.
  GraphBuilder b;
  b.input("x", {1, 4, 5, 5});
  b.constant("w", {4, 3, 3, 3});
  ir::Node& n = b.node("ConvTranspose", {"x", "w"}, {"c"});
  n.attrs["group"] = GraphBuilder::i(2);
  n.attrs["strides"] = GraphBuilder::ints({2, 2});
  add_bn(b, "c", "y", 6);
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 1);
  EXPECT_EQ(count_ops(*g, "BatchNormalization"), 0);
  EXPECT_EQ(count_ops(*g, "ConvTranspose"), 1);
}

TEST(PassFoldBatchnorm, GemmTransBWithBias) {
  GraphBuilder b;
  b.input("x", {3, 5});
  b.constant("w", {4, 5});
  b.constant("bias", {4});
  ir::Node& n = b.node("Gemm", {"x", "w", "bias"}, {"g"});
  n.attrs["transB"] = GraphBuilder::i(1);
  n.attrs["alpha"] = GraphBuilder::f(1.5f);
  n.attrs["beta"] = GraphBuilder::f(0.5f);
  add_bn(b, "g", "y", 4);
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 1);
  EXPECT_EQ(count_ops(*g, "BatchNormalization"), 0);
  EXPECT_FLOAT_EQ(producer(*g, "y")->attrs.at("beta").f, 1.0f);
}

TEST(PassFoldBatchnorm, GemmWithoutBiasAndRowBias) {
  GraphBuilder b;
  b.input("x", {3, 5});
  b.constant("w1", {5, 4});
  b.node("Gemm", {"x", "w1"}, {"g1"});
  add_bn(b, "g1", "y1", 4, "bn1");
  b.constant("w2", {5, 4});
  b.constant("row", {1, 4});
  b.node("Gemm", {"x", "w2", "row"}, {"g2"});
  add_bn(b, "g2", "y2", 4, "bn2");
  auto g = b.output("y1").output("y2").build();
  EXPECT_EQ(run_checked(g).fired, 2);
  EXPECT_EQ(count_ops(*g, "BatchNormalization"), 0);
}

TEST(PassFoldBatchnorm, PerChannelMulAddSubDiv) {
  GraphBuilder b = conv_graph();
  b.constant("k", {4, 1, 1});
  b.node("Mul", {"c", "k"}, {"m"});
  b.constant("a", {1, 4, 1, 1});
  b.node("Add", {"a", "m"}, {"s"});
  b.constant("sc", {}, {0.25f});
  b.node("Sub", {"s", "sc"}, {"d"});
  b.constant("dv", {4, 1, 1}, {2.f, -4.f, 0.5f, 8.f});
  b.node("Div", {"d", "dv"}, {"y"});
  auto g = b.output("y").build();
  // One link of the chain folds per run (each fold makes the next one's producer a conv).
  Result r = run_checked(g, 4);
  EXPECT_EQ(r.fired, 4);
  EXPECT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(producer(*g, "y")->op_type, "Conv");
}

TEST(PassFoldBatchnorm, ConvOutputWithTwoReadersStays) {
  GraphBuilder b = conv_graph();
  add_bn(b, "c", "y", 4);
  b.node("Relu", {"c"}, {"z"});
  auto g = b.output("y").output("z").build();
  EXPECT_EQ(run_checked(g).fired, 0);
  EXPECT_EQ(count_ops(*g, "BatchNormalization"), 1);
}

TEST(PassFoldBatchnorm, ConvOutputThatIsAGraphOutputStays) {
  GraphBuilder b = conv_graph();
  add_bn(b, "c", "y", 4);
  auto g = b.output("y").output("c").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassFoldBatchnorm, TrainingModeStays) {
  GraphBuilder b(14);
  b.input("x", {2, 3, 4, 4});
  b.constant("w", {4, 3, 1, 1});
  b.node("Conv", {"x", "w"}, {"c"});
  add_bn(b, "c", "y", 4).attrs["training_mode"] = GraphBuilder::i(1);
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassFoldBatchnorm, ExtraOutputsStay) {
  GraphBuilder b(9);
  b.input("x", {2, 3, 4, 4});
  b.constant("w", {4, 3, 1, 1});
  b.node("Conv", {"x", "w"}, {"c"});
  b.constant("s", {4});
  b.constant("bb", {4});
  b.constant("m", {4});
  b.constant("v", {4}, variances(4));
  b.node("BatchNormalization", {"c", "s", "bb", "m", "v"}, {"y", "run_mean", "run_var"});
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassFoldBatchnorm, RuntimeWeightsStay) {
  GraphBuilder b;
  b.input("x", {1, 3, 8, 8});
  b.input("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, {"c"});
  add_bn(b, "c", "y", 4);
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassFoldBatchnorm, NonChannelConstantsStay) {
  GraphBuilder b = conv_graph();
  b.constant("row", {1, 1, 1, 8});  // varies along the width
  b.node("Mul", {"c", "row"}, {"y"});
  b.constant("x2", {2, 4, 1, 1});  // broadcasting would add a batch of 2
  b.node("Add", {"y", "x2"}, {"z"});
  auto g = b.output("z").build();
  EXPECT_EQ(run_checked(g).fired, 0);
  b = conv_graph();
  b.constant("k", {4, 1, 1});
  b.node("Sub", {"k", "c"}, {"y"});  // k - conv: not an affine map of the conv with slope 1
  g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassFoldBatchnorm, GemmRowVaryingBiasStays) {
  GraphBuilder b;
  b.input("x", {3, 5});
  b.constant("w", {5, 4});
  b.constant("cm", {3, 4});
  b.node("Gemm", {"x", "w", "cm"}, {"g"});
  add_bn(b, "g", "y", 4);
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassFoldBatchnorm, UnknownShapesStay) {
  GraphBuilder b;
  b.input("x", {-1, 3, 8, 8});
  b.constant("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, {"c"});
  add_bn(b, "c", "y", 4);
  auto g = b.output("y").build();
  EXPECT_EQ(fire_once(g), 0);
  EXPECT_EQ(count_ops(*g, "BatchNormalization"), 1);
}
