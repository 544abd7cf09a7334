// dead-node-elimination: nodes none of whose outputs reach a graph output go; values read
// by name inside a live subgraph body keep their producers.
#include <gtest/gtest.h>

#include "graph_test_util.hpp"
#include "passes/pass.hpp"

using namespace lithe;
using test::count_ops;
using test::GraphBuilder;

namespace {

using Result = test::PassRun;

// Runs the pass once, with the graph run before and after on the same seeded inputs.
Result run_checked(const std::shared_ptr<ir::Graph>& g) {
  return test::run_pass_checked(g, "dead-node-elimination");
}

ir::Attribute graph_attr(std::shared_ptr<ir::Graph> body) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kGraph;
  a.g = std::move(body);
  return a;
}

// A branch body with no inputs that returns Neg(outer) (or Abs), reading `outer` by name.
std::shared_ptr<ir::Graph> branch(const std::string& outer, const std::string& op,
                                  const std::string& out) {
  auto b = std::make_shared<ir::Graph>();
  b->name = out + "_body";
  b->opsets[""] = 13;
  int o = b->add_value(outer);
  b->outer_refs.push_back(o);
  int y = b->add_value(out);
  ir::Node n;
  n.name = out + "_op";
  n.op_type = op;
  n.opset = 13;
  n.inputs = {o};
  n.outputs = {y};
  b->add_node(std::move(n));
  b->outputs.push_back(y);
  return b;
}

}  // namespace

TEST(PassDeadNodes, RemovesBranchesThatReachNoOutput) {
  GraphBuilder b;
  b.input("x", {2, 3});
  b.node("Relu", {"x"}, {"r"});
  b.node("Sigmoid", {"x"}, {"s"});  // dead
  b.node("Neg", {"s"}, {"n"});      // dead
  b.constant("c", {3});
  b.node("Add", {"r", "c"}, {"y"});
  b.node("Mul", {"r", "c"}, {"unused"});  // dead, shares a live input
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 3);
  EXPECT_EQ(g->nodes.size(), 2u);
  EXPECT_EQ(count_ops(*g, "Sigmoid"), 0);
  EXPECT_EQ(count_ops(*g, "Neg"), 0);
  EXPECT_EQ(count_ops(*g, "Mul"), 0);
  EXPECT_EQ(g->find_value("s"), -1);  // unused values go with their producers
  test::expect_same_outputs(r.before, r.after);
}

TEST(PassDeadNodes, NothingToRemove) {
  GraphBuilder b;
  b.input("x", {4});
  b.node("Relu", {"x"}, {"r"});
  b.node("Neg", {"r"}, {"y"});
  b.node("Abs", {"r"}, {"z"});
  auto g = b.output("y").output("z").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(g->nodes.size(), 3u);
}

TEST(PassDeadNodes, KeepsMultiOutputNodeWithOneLiveOutput) {
  GraphBuilder b;
  b.input("x", {4, 2});
  b.constant_i64("split", {1, 3});
  b.node("Split", {"x", "split"}, {"a", "unused_b"}).attrs["axis"] = GraphBuilder::i(0);
  b.node("Neg", {"a"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(count_ops(*g, "Split"), 1);
  test::expect_same_outputs(r.before, r.after);
}

TEST(PassDeadNodes, GraphOutputReadByAnotherNodeStays) {
  GraphBuilder b;
  b.input("x", {3});
  b.node("Relu", {"x"}, {"y"});
  b.node("Neg", {"y"}, {"dead"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(count_ops(*g, "Relu"), 1);
  EXPECT_EQ(count_ops(*g, "Neg"), 0);
}

TEST(PassDeadNodes, KeepsValuesReadByLiveSubgraphBodies) {
  GraphBuilder b;
  b.input("x", {3});
  Tensor cond(DType::kBool, {});
  cond.data<bool>()[0] = true;
  b.constant_tensor("cond", cond);
  // "hidden" has no explicit reader: only the If's bodies read it, by name.
  b.node("Sigmoid", {"x"}, {"hidden"});
  b.node("Exp", {"x"}, {"dead"});
  ir::Node& n = b.node("If", {"cond"}, {"y"});
  n.attrs["then_branch"] = graph_attr(branch("hidden", "Neg", "then_out"));
  n.attrs["else_branch"] = graph_attr(branch("hidden", "Abs", "else_out"));
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(count_ops(*g, "Sigmoid"), 1);
  EXPECT_EQ(count_ops(*g, "If"), 1);
  EXPECT_EQ(count_ops(*g, "Exp"), 0);
  test::expect_same_outputs(r.before, r.after);
}

TEST(PassDeadNodes, RemovesDeadIfTogetherWithWhatOnlyItsBodiesRead) {
  GraphBuilder b;
  b.input("x", {3});
  Tensor cond(DType::kBool, {});
  cond.data<bool>()[0] = false;
  b.constant_tensor("cond", cond);
  b.node("Sigmoid", {"x"}, {"hidden"});
  ir::Node& n = b.node("If", {"cond"}, {"unused"});
  n.attrs["then_branch"] = graph_attr(branch("hidden", "Neg", "then_out"));
  n.attrs["else_branch"] = graph_attr(branch("hidden", "Abs", "else_out"));
  b.node("Relu", {"x"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 2);
  EXPECT_EQ(count_ops(*g, "If"), 0);
  EXPECT_EQ(count_ops(*g, "Sigmoid"), 0);
  test::expect_same_outputs(r.before, r.after);
}

TEST(PassDeadNodes, PipelineReportsTheCount) {
  GraphBuilder b;
  b.input("x", {3});
  b.node("Relu", {"x"}, {"y"});
  b.node("Exp", {"x"}, {"dead"});
  auto g = b.output("y").build();
  passes::PipelineReport rep = passes::run_pipeline(*g);
  EXPECT_EQ(rep.nodes_before, 2u);
  EXPECT_EQ(rep.nodes_after, 1u);
  EXPECT_EQ(rep.passes.front().name, "dead-node-elimination");
  EXPECT_EQ(rep.passes.front().fired, 1);
}
