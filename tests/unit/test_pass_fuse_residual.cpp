// Tests for the fuse-residual pass: Conv/Gemm/MatMul + Add (either operand order) becomes
// one lithe node with the residual input, ResNet's Conv + Add + Relu ends as one node through
// the pipeline, and the cases where the pass must leave the graph alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "frontend/onnx/importer.hpp"
#include "graph_test_util.hpp"
#include "passes/pass.hpp"

using namespace lithe;
using lithe::test::count_ops;
using lithe::test::GraphBuilder;

namespace {

const passes::Pass& the_pass() {
  const passes::Pass* p = passes::find_pass("fuse-residual");
  if (!p) throw std::runtime_error("fuse-residual is not in the pipeline");
  return *p;
}

struct Result {
  int fired = 0;
  std::shared_ptr<ir::Graph> after;
};

// Runs `run` on a copy and checks the outputs (values, names) are unchanged.
Result compare(const std::shared_ptr<ir::Graph>& before,
               const std::function<int(ir::Graph&)>& run) {
  auto after = std::make_shared<ir::Graph>(*before);
  Result r;
  r.fired = run(*after);
  r.after = after;
  auto ins = test::seeded_inputs(*before, 5);
  test::expect_same_outputs(test::run_graph(before, ins), test::run_graph(after, ins), 1e-6);
  for (size_t i = 0; i < before->outputs.size(); ++i)
    EXPECT_EQ(before->values[static_cast<size_t>(before->outputs[i])].name,
              after->values[static_cast<size_t>(after->outputs[i])].name);
  return r;
}

Result run_once(const std::shared_ptr<ir::Graph>& g) {
  return compare(g, [](ir::Graph& a) { return passes::run_pass(a, the_pass()); });
}

// x, r: 1x4x5x5; Conv(x) -> "c" (4 out, 3x3 pad 1, bias); `tail` adds the rest.
std::shared_ptr<ir::Graph> conv_then(const std::function<void(GraphBuilder&)>& tail) {
  GraphBuilder b(13);
  b.input("x", {1, 4, 5, 5}).input("r", {1, 4, 5, 5});
  b.constant("w", {4, 4, 3, 3}).constant("b", {4});
  b.node("Conv", {"x", "w", "b"}, {"c"}, "conv").attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  tail(b);
  return b.build();
}

}  // namespace

TEST(PassFuseResidual, ConvAddEitherOrder) {
  for (bool swap : {false, true}) {
    auto g = conv_then([&](GraphBuilder& b) {
      b.node("Add", swap ? std::vector<std::string>{"r", "c"} : std::vector<std::string>{"c", "r"},
             {"y"});
      b.output("y");
    });
    Result r = run_once(g);
    EXPECT_EQ(r.fired, 1);
    ASSERT_EQ(r.after->nodes.size(), 1u);
    const ir::Node& n = r.after->nodes[0];
    EXPECT_EQ(n.domain, "lithe");
    EXPECT_EQ(n.name, "conv");
    ASSERT_EQ(n.inputs.size(), 4u);
    EXPECT_EQ(r.after->values[static_cast<size_t>(n.inputs[3])].name, "r");
  }
}

TEST(PassFuseResidual, ConvWithoutBiasGemmAndMatMul) {
  GraphBuilder b(13);
  b.input("x", {1, 2, 4, 4}).input("r", {1, 3, 4, 4}).constant("w", {3, 2, 1, 1});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Add", {"c", "r"}, {"y1"});
  b.input("a", {3, 4}).input("ra", {3, 5}).constant("wt", {4, 5}).constant("mm", {5, 5});
  b.node("Gemm", {"a", "wt"}, {"g"});
  b.node("Add", {"ra", "g"}, {"g2"});
  b.node("MatMul", {"g2", "mm"}, {"m"});
  b.node("Add", {"m", "g2"}, {"y2"});  // the residual is the MatMul's own input: legal
  auto g = b.output("y1").output("y2").build();
  Result r = run_once(g);
  EXPECT_EQ(r.fired, 3);
  EXPECT_EQ(count_ops(*r.after, "Add"), 0);
  EXPECT_EQ(count_ops(*r.after, "Conv", "lithe"), 1);
  EXPECT_EQ(count_ops(*r.after, "Gemm", "lithe"), 1);
  EXPECT_EQ(count_ops(*r.after, "MatMul", "lithe"), 1);
  for (const auto& n : r.after->nodes) {
    if (n.op_type == "Conv") {
      EXPECT_EQ(n.inputs[2], -1);
    }
    if (n.op_type == "Gemm") {
      EXPECT_EQ(n.inputs.size(), 4u);
    }
    if (n.op_type == "MatMul") {
      EXPECT_EQ(n.inputs.size(), 3u);
    }
  }
}

TEST(PassFuseResidual, ResNetBlockEndsAsOneNodePerConvThroughThePipeline) {
  // r -> Conv+Relu -> Conv -> Add(., r) -> Relu: two fused nodes, no Add, no Relu.
  GraphBuilder b(13);
  b.input("x", {1, 4, 6, 6}).constant("w1", {4, 4, 3, 3}).constant("b1", {4});
  b.constant("w2", {4, 4, 3, 3}).constant("b2", {4});
  b.node("Relu", {"x"}, {"r"});
  b.node("Conv", {"r", "w1", "b1"}, {"c1"}).attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"a1"});
  b.node("Conv", {"a1", "w2", "b2"}, {"c2"}).attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  b.node("Add", {"c2", "r"}, {"s"});
  b.node("Relu", {"s"}, {"y"});
  auto g = b.output("y").build();
  Result r = compare(g, [](ir::Graph& a) {
    // The structure asserted below is the NCHW one; layout-nhwc would turn the convs into
    // ConvNhwc (its own tests cover that).
    passes::PipelineOptions opts;
    opts.disabled = {"layout-nhwc"};
    passes::PipelineReport rep = passes::run_pipeline(a, opts);
    int n = 0;
    for (const auto& p : rep.passes)
      if (p.name == std::string("fuse-residual")) n = p.fired;
    return n;
  });
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(count_ops(*r.after, "Add"), 0);
  EXPECT_EQ(count_ops(*r.after, "Relu"), 1);  // the graph-input Relu has no producer to join
  EXPECT_EQ(count_ops(*r.after, "Conv", "lithe"), 2);
  for (const auto& n : r.after->nodes)
    if (n.op_type == "Conv") {
      EXPECT_EQ(n.attrs.at("activation").s, "Relu");
    }
}

TEST(PassFuseResidual, MustNotFire) {
  auto expect_unchanged = [](const std::shared_ptr<ir::Graph>& g, const char* why) {
    SCOPED_TRACE(why);
    Result r = run_once(g);
    EXPECT_EQ(r.fired, 0);
    EXPECT_EQ(r.after->nodes.size(), g->nodes.size());
  };
  // The conv output is used twice.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("Add", {"c", "r"}, {"y"});
                     b.node("Neg", {"c"}, {"y2"});
                     b.output("y").output("y2");
                   }),
                   "two consumers");
  // Broadcasting Add: the residual is 1x4x1x1.
  {
    GraphBuilder b(13);
    b.input("x", {1, 4, 5, 5}).input("r", {1, 4, 1, 1}).constant("w", {4, 4, 1, 1});
    b.node("Conv", {"x", "w"}, {"c"});
    b.node("Add", {"c", "r"}, {"y"});
    expect_unchanged(b.output("y").build(), "broadcast");
  }
  // Add of a constant bias-like vector (broadcast) also stays.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.constant("k", {4, 1, 1});
                     b.node("Add", {"c", "k"}, {"y"});
                     b.output("y");
                   }),
                   "broadcast constant");
  // The residual depends on the conv output.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("Sigmoid", {"c"}, {"s"});
                     b.node("Add", {"c", "s"}, {"y"});
                     b.output("y");
                   }),
                   "residual from the conv");
  // The conv already has an activation (it would run before the Add).
  {
    auto g = conv_then([](GraphBuilder& b) {
      b.node("Add", {"c", "r"}, {"y"});
      b.output("y");
    });
    g->nodes[0].domain = "lithe";
    g->nodes[0].attrs["activation"] = GraphBuilder::s("Relu");
    expect_unchanged(g, "activation present");
  }
  // The conv already has a residual.
  {
    auto g = conv_then([](GraphBuilder& b) {
      b.input("r2", {1, 4, 5, 5});
      b.node("Add", {"c", "r2"}, {"y"});
      b.output("y");
    });
    g->nodes[0].domain = "lithe";
    g->nodes[0].inputs.push_back(g->find_value("r"));
    g->relink();
    ops::infer_graph(*g);
    expect_unchanged(g, "residual present");
  }
  // The conv output is a graph output.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("Add", {"c", "r"}, {"y"});
                     b.output("y").output("c");
                   }),
                   "graph output");
}

// ---- real models (run with --gtest_also_run_disabled_tests; slow with reference kernels) ----

namespace {

struct Agreement {
  double cosine = 1, max_abs = 0;
};

Agreement agreement(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  Agreement r;
  double dot = 0, na = 0, nb = 0;
  for (size_t k = 0; k < a.size(); ++k)
    for (int64_t i = 0; i < a[k].numel(); ++i) {
      double x = a[k].at_double(i), y = b[k].at_double(i);
      dot += x * y;
      na += x * x;
      nb += y * y;
      r.max_abs = std::max(r.max_abs, std::abs(x - y));
    }
  r.cosine = na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : (na == nb ? 1 : 0);
  return r;
}

int fired(const passes::PipelineReport& rep, const char* name) {
  for (const auto& p : rep.passes)
    if (p.name == std::string(name)) return p.fired;
  return 0;
}

int standalone_activations(const ir::Graph& g) {
  int n = 0;
  for (const char* op :
       {"Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh"})
    n += count_ops(g, op);
  return n;
}

// Full pipeline against the original graph and against the pipeline without the two fusion
// passes (which isolates what they change). Returns the fused graph.
std::shared_ptr<ir::Graph> check_model(const std::string& file, Shape x_shape = {}) {
  std::string path = std::string(LITHE_SOURCE_DIR) + "/models-cache/models/" + file;
  if (!std::ifstream(path)) return nullptr;
  onnx::ImportOptions opts;
  if (!x_shape.empty()) opts.input_shapes["x"] = x_shape;
  auto g = onnx::import_model(path, opts);
  auto ins = test::seeded_inputs(*g, 1);
  auto full = std::make_shared<ir::Graph>(*g);
  passes::PipelineReport rep = passes::run_pipeline(*full);
  auto unfused = std::make_shared<ir::Graph>(*g);
  passes::PipelineOptions off;
  off.disabled = {"fuse-activation", "fuse-residual"};
  passes::run_pipeline(*unfused, off);
  for (const auto& n : rep.notes) std::printf("  %s\n", n.c_str());
  auto ref = test::run_graph(g, ins);
  auto out_unfused = test::run_graph(unfused, ins);
  auto out_full = test::run_graph(full, ins);
  Agreement a = agreement(ref, out_full), b = agreement(out_unfused, out_full);
  int with_z = 0;
  for (const auto& n : full->nodes) {
    const int zi = n.op_type == "MatMul" ? 2 : 3;
    with_z += n.domain == "lithe" && n.inputs.size() > static_cast<size_t>(zi) &&
              n.inputs[static_cast<size_t>(zi)] >= 0;
  }
  std::printf(
      "%s: nodes %zu -> %zu (%zu without the fusions); activations fused %d, residuals fused "
      "%d (lithe nodes with Z %d); left: %d standalone activations, %d Add, %d Mul; vs original: "
      "cosine %.9f max abs %.3g; vs pipeline without the fusions: cosine %.9f max abs %.3g\n",
      file.c_str(), rep.nodes_before, rep.nodes_after, unfused->nodes.size(),
      fired(rep, "fuse-activation"), fired(rep, "fuse-residual"), with_z,
      standalone_activations(*full), count_ops(*full, "Add"), count_ops(*full, "Mul"), a.cosine,
      a.max_abs, b.cosine, b.max_abs);
  EXPECT_GT(a.cosine, 0.99999);
  EXPECT_GT(b.cosine, 0.999999);
  return full;
}

}  // namespace

TEST(PassFuseResidual, DISABLED_ResNet50) {
  auto g = check_model("resnet50.onnx");
  if (!g) GTEST_SKIP() << "resnet50.onnx not present";
  // Every bottleneck ends as Conv(+Add+Relu) in one node: no Add and no Relu left.
  EXPECT_EQ(count_ops(*g, "Add"), 0);
  EXPECT_EQ(count_ops(*g, "Relu"), 0);
}
TEST(PassFuseResidual, DISABLED_MobileNetV2) {
  auto g = check_model("mobilenet_v2.onnx");
  if (!g) GTEST_SKIP() << "mobilenet_v2.onnx not present";
  EXPECT_EQ(count_ops(*g, "Add"), 0);
  EXPECT_EQ(count_ops(*g, "Clip"), 0);
}
TEST(PassFuseResidual, DISABLED_BlazeFace) {
  auto g = check_model("blazeface.onnx");
  if (!g) GTEST_SKIP() << "blazeface.onnx not present";
}
TEST(PassFuseResidual, DISABLED_PpocrCls) {
  if (!check_model("ppocr_cls.onnx", {1, 3, 48, 192})) GTEST_SKIP() << "ppocr_cls.onnx not present";
}
TEST(PassFuseResidual, DISABLED_PpocrRec) {
  if (!check_model("ppocr_rec.onnx", {1, 3, 48, 320})) GTEST_SKIP() << "ppocr_rec.onnx not present";
}
