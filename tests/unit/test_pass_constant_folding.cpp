// constant-folding: nodes fed only by constants run once at build time; Shape/Size of
// static shapes fold; random ops, oversized results and subgraph nodes stay.
#include <gtest/gtest.h>

#include "graph_test_util.hpp"
#include "passes/pass.hpp"

using namespace lithe;
using test::count_ops;
using test::GraphBuilder;

namespace {

using Result = test::PassRun;

Result run_checked(const std::shared_ptr<ir::Graph>& g, bool compare = true) {
  return test::run_pass_checked(g, "constant-folding", 1, compare);
}

Tensor scalar_i64(int64_t v) {
  Tensor t(DType::kInt64, {});
  t.data<int64_t>()[0] = v;
  return t;
}

// The node producing value `name`, or nullptr.
const ir::Node* producer(const ir::Graph& g, const std::string& name) {
  int v = g.find_value(name);
  if (v < 0 || g.values[static_cast<size_t>(v)].producer < 0) return nullptr;
  return &g.nodes[static_cast<size_t>(g.values[static_cast<size_t>(v)].producer)];
}

}  // namespace

TEST(PassConstantFolding, FoldsAConstantSubgraph) {
  GraphBuilder b;
  b.input("x", {2, 3});
  b.constant("w", {3});
  b.constant("s", {3});
  b.node("Exp", {"w"}, {"ew"});
  b.node("Add", {"ew", "s"}, {"k"});
  b.node("Transpose", {"k"}, {"kt"});
  b.node("Mul", {"x", "kt"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 3);
  EXPECT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(count_ops(*g, "Mul"), 1);
  // The Mul now reads a constant.
  EXPECT_TRUE(g->values[static_cast<size_t>(g->nodes[0].inputs[1])].constant.has_value());
  test::expect_same_outputs(r.before, r.after, 0);
}

TEST(PassConstantFolding, ShapeChainCollapsesToAConstantReshapeTarget) {
  // What exporters emit for x.view(x.size(0), -1).
  GraphBuilder b;
  b.input("x", {2, 3, 4});
  b.constant_tensor("zero", scalar_i64(0));
  b.constant_i64("axes0", {0});
  b.constant_i64("minus1", {-1});
  b.node("Shape", {"x"}, {"shape"});
  b.node("Gather", {"shape", "zero"}, {"n"}).attrs["axis"] = GraphBuilder::i(0);
  b.node("Unsqueeze", {"n", "axes0"}, {"n1"});
  b.node("Concat", {"n1", "minus1"}, {"target"}).attrs["axis"] = GraphBuilder::i(0);
  b.node("Reshape", {"x", "target"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 4);
  EXPECT_EQ(g->nodes.size(), 1u);
  for (const char* op : {"Shape", "Gather", "Unsqueeze", "Concat"})
    EXPECT_EQ(count_ops(*g, op), 0) << op;
  const ir::Node* reshape = producer(*g, "y");
  ASSERT_NE(reshape, nullptr);
  const Tensor* target = passes::constant_of(*g, reshape->inputs[1]);
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->to_int64_vector(), (std::vector<int64_t>{2, -1}));
  test::expect_same_outputs(r.before, r.after, 0);
}

TEST(PassConstantFolding, ShapeWithStartEndAndSize) {
  GraphBuilder b(15);
  b.input("x", {2, 3, 4, 5});
  ir::Node& s = b.node("Shape", {"x"}, {"hw"});
  s.attrs["start"] = GraphBuilder::i(-2);
  b.node("Size", {"x"}, {"numel"});
  b.node("Cast", {"numel"}, {"numel_f"}).attrs["to"] = GraphBuilder::i(1);
  b.node("Add", {"x", "numel_f"}, {"y"});
  b.node("ReduceProd", {"hw"}, {"hw_prod"}).attrs["keepdims"] = GraphBuilder::i(0);
  auto g = b.output("y").output("hw_prod").build();
  Result r = run_checked(g);
  EXPECT_EQ(count_ops(*g, "Shape"), 0);
  EXPECT_EQ(count_ops(*g, "Size"), 0);
  EXPECT_EQ(count_ops(*g, "Cast"), 0);
  EXPECT_EQ(count_ops(*g, "ReduceProd"), 0);
  // The folded graph output keeps its name through an Identity of the constant.
  const ir::Node* out = producer(*g, "hw_prod");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->op_type, "Identity");
  EXPECT_EQ(r.fired, 4);
  test::expect_same_outputs(r.before, r.after, 0);
  // ... and that Identity is not folded again (the pipeline would otherwise never settle).
  EXPECT_EQ(passes::run_pass(*g, *passes::find_pass("constant-folding")), 0);
}

TEST(PassConstantFolding, MultiOutputNodeFolds) {
  GraphBuilder b;
  b.input("x", {2});
  b.constant("c", {4});
  b.node("Split", {"c"}, {"c0", "c1"}).attrs["axis"] = GraphBuilder::i(0);
  b.node("Add", {"x", "c0"}, {"y0"});
  b.node("Sub", {"x", "c1"}, {"y1"});
  auto g = b.output("y0").output("y1").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(count_ops(*g, "Split"), 0);
  test::expect_same_outputs(r.before, r.after, 0);
}

TEST(PassConstantFolding, DoesNotFoldRuntimeValues) {
  GraphBuilder b;
  b.input("x", {2, 3});
  b.constant("c", {3});
  b.node("Relu", {"x"}, {"r"});
  b.node("Add", {"r", "c"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(g->nodes.size(), 2u);
}

TEST(PassConstantFolding, RandomOpsStay) {
  GraphBuilder b;
  b.input("x", {2, 3});
  b.constant("c", {2, 3});
  ir::Node& n = b.node("RandomNormalLike", {"c"}, {"noise"});
  n.attrs["seed"] = GraphBuilder::f(3);
  b.node("Add", {"x", "noise"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g, /*compare=*/false);
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(count_ops(*g, "RandomNormalLike"), 1);
}

TEST(PassConstantFolding, LargeResultsOfSmallInputsStay) {
  // ConstantOfShape of 8 bytes making 4 MiB: computing it at run time is cheaper than
  // storing it in the engine file. A small one folds.
  GraphBuilder b;
  b.input("x", {1024, 1024});
  b.input("z", {4, 4});
  b.constant_i64("big_shape", {1024, 1024});
  b.constant_i64("small_shape", {4, 4});
  b.node("ConstantOfShape", {"big_shape"}, {"big"});
  b.node("ConstantOfShape", {"small_shape"}, {"small"});
  b.node("Add", {"x", "big"}, {"y"});
  b.node("Add", {"z", "small"}, {"w"});
  auto g = b.output("y").output("w").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(count_ops(*g, "ConstantOfShape"), 1);
  const ir::Node* big = producer(*g, "big");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->op_type, "ConstantOfShape");
  test::expect_same_outputs(r.before, r.after, 0);
}

TEST(PassConstantFolding, LargeResultsOfLargeInputsFold) {
  // A transpose of a 4 MiB weight: the folded weight replaces the original.
  GraphBuilder b;
  b.input("x", {1, 1024});
  b.constant("w", {1024, 1024});
  b.node("Transpose", {"w"}, {"wt"});
  b.node("MatMul", {"x", "wt"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(count_ops(*g, "Transpose"), 0);
  EXPECT_EQ(g->find_value("w"), -1);  // the unused original is gone
  test::expect_same_outputs(r.before, r.after, 0);
}

TEST(PassConstantFolding, DequantizeOfConstantWeightsStaysForTheQuantizer) {
  GraphBuilder b;
  b.input("x", {2, 4});
  Tensor q(DType::kInt8, {4});
  for (int i = 0; i < 4; ++i) q.data<int8_t>()[i] = static_cast<int8_t>(i * 10 - 15);
  b.constant_tensor("wq", q);
  b.constant("scale", {}, {0.05f});
  b.node("DequantizeLinear", {"wq", "scale"}, {"w"});
  b.node("Mul", {"x", "w"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(count_ops(*g, "DequantizeLinear"), 1);
}

TEST(PassConstantFolding, FoldedOutputReadByASubgraphStays) {
  GraphBuilder b;
  b.input("x", {3});
  b.constant("c", {3});
  Tensor cond(DType::kBool, {});
  cond.data<bool>()[0] = true;
  b.constant_tensor("cond", cond);
  b.node("Neg", {"c"}, {"negc"});  // read only by name from the If's bodies
  auto body = std::make_shared<ir::Graph>();
  body->opsets[""] = 13;
  int o = body->add_value("negc");
  body->outer_refs.push_back(o);
  int bo = body->add_value("b_out");
  ir::Node id;
  id.name = "b_id";
  id.op_type = "Identity";
  id.opset = 13;
  id.inputs = {o};
  id.outputs = {bo};
  body->add_node(id);
  body->outputs.push_back(bo);
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kGraph;
  a.g = body;
  ir::Node& n = b.node("If", {"cond"}, {"sel"});
  n.attrs["then_branch"] = a;
  n.attrs["else_branch"] = a;
  b.node("Add", {"x", "sel"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(count_ops(*g, "Neg"), 1);
  EXPECT_EQ(count_ops(*g, "If"), 1);
  test::expect_same_outputs(r.before, r.after, 0);
}

TEST(PassConstantFolding, PipelineSettles) {
  GraphBuilder b;
  b.input("x", {2, 3, 4});
  b.constant_tensor("one", scalar_i64(1));
  b.node("Shape", {"x"}, {"shape"});
  b.node("Gather", {"shape", "one"}, {"c"}).attrs["axis"] = GraphBuilder::i(0);
  b.node("Cast", {"c"}, {"cf"}).attrs["to"] = GraphBuilder::i(1);
  b.node("Mul", {"x", "cf"}, {"y"});
  auto g = b.output("y").build();
  auto ins = test::seeded_inputs(*g);
  auto before = test::run_graph(g, ins);
  passes::PipelineReport rep = passes::run_pipeline(*g);
  EXPECT_LT(rep.rounds, 4);
  EXPECT_EQ(g->nodes.size(), 1u);
  test::expect_same_outputs(before, test::run_graph(g, ins), 0);
}
