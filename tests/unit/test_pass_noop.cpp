// noop-elimination: nodes that return their input go (readers rewired, output names kept);
// Transpose and reshape-like chains shorten; look-alikes that move data stay.
#include <gtest/gtest.h>

#include "graph_test_util.hpp"
#include "passes/pass.hpp"

using namespace lithe;
using test::count_ops;
using test::GraphBuilder;

namespace {

using Result = test::PassRun;

// Runs no-op elimination once and checks the values are unchanged (bit for bit: a no-op
// does no arithmetic).
Result run_checked(const std::shared_ptr<ir::Graph>& g) {
  Result r = test::run_pass_checked(g, "noop-elimination");
  test::expect_same_outputs(r.before, r.after, 0);
  return r;
}

const ir::Node* producer(const ir::Graph& g, const std::string& name) {
  int v = g.find_value(name);
  if (v < 0 || g.values[static_cast<size_t>(v)].producer < 0) return nullptr;
  return &g.nodes[static_cast<size_t>(g.values[static_cast<size_t>(v)].producer)];
}

// x -> Relu -> r -> <op under test> -> ... so that `r` is an intermediate the output name
// can move to.
GraphBuilder relu_input(Shape s, int opset = 13) {
  GraphBuilder b(opset);
  b.input("x", std::move(s));
  b.node("Relu", {"x"}, {"r"});
  return b;
}

}  // namespace

TEST(PassNoop, IdentityBeforeTheOutputGoesAndTheNameStays) {
  GraphBuilder b = relu_input({2, 3});
  b.node("Identity", {"r"}, {"i"});
  b.node("Identity", {"i"}, {"y"});
  auto g = b.output("y").build();
  Result r = run_checked(g);
  EXPECT_EQ(r.fired, 2);
  EXPECT_EQ(count_ops(*g, "Identity"), 0);
  ASSERT_NE(producer(*g, "y"), nullptr);
  EXPECT_EQ(producer(*g, "y")->op_type, "Relu");
}

TEST(PassNoop, IdentityFromInputToOutputStays) {
  GraphBuilder b;
  b.input("x", {3});
  b.node("Identity", {"x"}, {"y"});
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
  EXPECT_EQ(count_ops(*g, "Identity"), 1);
}

TEST(PassNoop, IdentityBetweenTwoOutputsStays) {
  GraphBuilder b = relu_input({3});
  b.node("Identity", {"r"}, {"y"});
  auto g = b.output("r").output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassNoop, DropoutAtInference) {
  GraphBuilder b = relu_input({2, 3});
  b.node("Dropout", {"r"}, {"d"});  // opset 13, no training_mode: inference
  Tensor f(DType::kBool, {});
  b.constant_tensor("train_false", f);
  b.constant("ratio", {}, {0.3f});
  b.node("Dropout", {"d", "ratio", "train_false"}, {"d2"});
  b.node("Neg", {"d2"}, {"y"});
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 2);
  EXPECT_EQ(count_ops(*g, "Dropout"), 0);
}

TEST(PassNoop, DropoutWithUsedMaskOrUnknownModeStays) {
  GraphBuilder b = relu_input({2, 3});
  b.input("train", {}, DType::kBool);
  b.node("Dropout", {"r"}, {"d", "mask"});
  b.node("Dropout", {"r", "", "train"}, {"d2"});
  b.node("Cast", {"mask"}, {"maskf"}).attrs["to"] = GraphBuilder::i(1);
  b.node("Mul", {"d", "maskf"}, {"y"});
  b.node("Neg", {"d2"}, {"z"});
  auto g = b.output("y").output("z").build();
  // seeded_inputs gives the bool input a nonzero value; that Dropout would fail at run time
  // with ratio 0.5, so check the structure only.
  EXPECT_EQ(passes::run_pass(*g, *passes::find_pass("noop-elimination")), 0);
  EXPECT_EQ(count_ops(*g, "Dropout"), 2);
}

TEST(PassNoop, ViewsAndCastsThatChangeNothing) {
  GraphBuilder b = relu_input({2, 3, 4});
  b.constant_i64("same", {2, 0, -1});
  b.node("Reshape", {"r", "same"}, {"a"});
  b.node("Cast", {"a"}, {"c"}).attrs["to"] = GraphBuilder::i(1);
  b.constant_i64("shape", {2, 3, 4});
  b.node("Expand", {"c", "shape"}, {"e"});
  b.constant_i64("ones", {1, 1, 1});
  b.node("Tile", {"e", "ones"}, {"t"});
  b.node("Transpose", {"t"}, {"tr"}).attrs["perm"] = GraphBuilder::ints({0, 1, 2});
  b.node("Neg", {"tr"}, {"y"});
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 5);
  EXPECT_EQ(g->nodes.size(), 2u);
}

TEST(PassNoop, ViewsThatChangeTheShapeOrTypeStay) {
  GraphBuilder b = relu_input({2, 3, 4});
  b.constant_i64("shape", {6, 4});
  b.node("Reshape", {"r", "shape"}, {"a"});
  b.node("Cast", {"a"}, {"c"}).attrs["to"] = GraphBuilder::i(11);  // float64
  b.constant_i64("big", {2, 6, 4});
  b.node("Expand", {"c", "big"}, {"y"});
  b.node("Transpose", {"r"}, {"z"}).attrs["perm"] = GraphBuilder::ints({0, 2, 1});
  auto g = b.output("y").output("z").build();
  EXPECT_EQ(run_checked(g).fired, 0);
  EXPECT_EQ(g->nodes.size(), 5u);
}

TEST(PassNoop, PadOnlyWhenEveryPadIsZero) {
  GraphBuilder b = relu_input({2, 3});
  b.constant_i64("zero_pads", {0, 0, 0, 0});
  b.constant_i64("shift_pads", {0, 1, 0, -1});  // same shape, data shifted
  b.node("Pad", {"r", "zero_pads"}, {"p"});
  b.node("Pad", {"p", "shift_pads"}, {"y"});
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 1);
  EXPECT_EQ(count_ops(*g, "Pad"), 1);
}

TEST(PassNoop, SliceOfTheFullRangeButNotAReversal) {
  GraphBuilder b = relu_input({4, 3});
  b.constant_i64("starts", {0});
  b.constant_i64("ends", {INT64_MAX});
  b.constant_i64("axes", {0});
  b.constant_i64("steps1", {1});
  b.node("Slice", {"r", "starts", "ends", "axes", "steps1"}, {"s"});
  b.constant_i64("rstarts", {-1});
  b.constant_i64("rends", {INT64_MIN});
  b.constant_i64("steps_rev", {-1});
  b.node("Slice", {"s", "rstarts", "rends", "axes", "steps_rev"}, {"y"});
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 1);
  EXPECT_EQ(count_ops(*g, "Slice"), 1);
  EXPECT_EQ(producer(*g, "y")->op_type, "Slice");
}

TEST(PassNoop, ArithmeticIdentities) {
  GraphBuilder b = relu_input({2, 3});
  b.constant("one", {3}, {1.f});
  b.constant("zero", {1, 3}, {0.f});
  b.constant("scalar_one", {}, {1.f});
  b.node("Mul", {"one", "r"}, {"m"});
  b.node("Add", {"m", "zero"}, {"a"});
  b.node("Sub", {"a", "zero"}, {"s"});
  b.node("Div", {"s", "scalar_one"}, {"d"});
  b.node("Neg", {"d"}, {"y"});
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 4);
  EXPECT_EQ(g->nodes.size(), 2u);
}

TEST(PassNoop, ArithmeticThatBroadcastsOrIsNotAUnitStays) {
  GraphBuilder b = relu_input({3});
  b.constant("ones", {2, 3}, {1.f});  // broadcasting makes the output 2x3
  b.constant("zero", {3}, {0.f});
  b.constant("almost", {3}, {1.f, 1.f, 0.5f});
  b.node("Mul", {"r", "ones"}, {"y"});
  b.node("Sub", {"zero", "r"}, {"z"});  // 0 - x is not x
  b.node("Mul", {"r", "almost"}, {"w"});
  auto g = b.output("y").output("z").output("w").build();
  EXPECT_EQ(run_checked(g).fired, 0);
}

TEST(PassNoop, OneInputVariadics) {
  GraphBuilder b = relu_input({2, 3});
  b.node("Concat", {"r"}, {"c"}).attrs["axis"] = GraphBuilder::i(1);
  b.node("Sum", {"c"}, {"s"});
  b.node("Max", {"s"}, {"m"});
  b.node("Mean", {"m"}, {"y"});
  b.node("Concat", {"r", "r"}, {"z"}).attrs["axis"] = GraphBuilder::i(0);
  auto g = b.output("y").output("z").build();
  EXPECT_EQ(run_checked(g).fired, 4);
  EXPECT_EQ(count_ops(*g, "Concat"), 1);
}

TEST(PassNoop, TransposePairsCancelOrCompose) {
  GraphBuilder b = relu_input({2, 3, 4});
  b.node("Transpose", {"r"}, {"t1"}).attrs["perm"] = GraphBuilder::ints({0, 2, 1});
  b.node("Transpose", {"t1"}, {"t2"}).attrs["perm"] = GraphBuilder::ints({0, 2, 1});
  b.node("Neg", {"t2"}, {"y"});
  b.node("Transpose", {"r"}, {"u1"}).attrs["perm"] = GraphBuilder::ints({1, 2, 0});
  b.node("Transpose", {"u1"}, {"z"}).attrs["perm"] = GraphBuilder::ints({2, 1, 0});
  auto g = b.output("y").output("z").build();
  EXPECT_EQ(run_checked(g).fired, 2);
  EXPECT_EQ(count_ops(*g, "Transpose"), 1);
  const ir::Node* t = producer(*g, "z");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->op_type, "Transpose");
  EXPECT_EQ(g->values[static_cast<size_t>(t->inputs[0])].name, "r");
  EXPECT_EQ(t->attrs.at("perm").ints, (std::vector<int64_t>{0, 2, 1}));
}

TEST(PassNoop, TransposeChainOfThreeCollapses) {
  GraphBuilder b = relu_input({2, 3, 4});
  b.node("Transpose", {"r"}, {"t1"}).attrs["perm"] = GraphBuilder::ints({1, 0, 2});
  b.node("Transpose", {"t1"}, {"t2"}).attrs["perm"] = GraphBuilder::ints({0, 2, 1});
  b.node("Transpose", {"t2"}, {"y"}).attrs["perm"] = GraphBuilder::ints({2, 1, 0});
  auto g = b.output("y").build();
  run_checked(g);
  EXPECT_EQ(count_ops(*g, "Transpose"), 1);
}

TEST(PassNoop, TransposeWithAnotherReaderKeepsIt) {
  GraphBuilder b = relu_input({2, 3});
  b.node("Transpose", {"r"}, {"t1"});
  b.node("Transpose", {"t1"}, {"t2"});
  b.node("Neg", {"t2"}, {"y"});
  b.node("Abs", {"t1"}, {"z"});
  auto g = b.output("y").output("z").build();
  EXPECT_EQ(run_checked(g).fired, 1);
  EXPECT_EQ(count_ops(*g, "Transpose"), 1);
  EXPECT_EQ(g->values[static_cast<size_t>(producer(*g, "y")->inputs[0])].name, "r");
}

TEST(PassNoop, ReshapeChainsBecomeOneReshapeOrNothing) {
  GraphBuilder b = relu_input({2, 3, 4});
  b.constant_i64("s1", {6, 4});
  b.constant_i64("ax0", {0});
  b.node("Reshape", {"r", "s1"}, {"a"});
  b.node("Flatten", {"a"}, {"f"}).attrs["axis"] = GraphBuilder::i(0);  // 1x24
  b.node("Squeeze", {"f", "ax0"}, {"y"});                              // 24
  b.node("Unsqueeze", {"r", "ax0"}, {"u"});                            // 1x2x3x4
  b.node("Squeeze", {"u", "ax0"}, {"back"});                           // 2x3x4
  b.node("Neg", {"back"}, {"z"});
  auto g = b.output("y").output("z").build();
  run_checked(g);
  EXPECT_EQ(count_ops(*g, "Flatten"), 0);
  EXPECT_EQ(count_ops(*g, "Squeeze"), 0);
  EXPECT_EQ(count_ops(*g, "Unsqueeze"), 0);
  EXPECT_EQ(count_ops(*g, "Reshape"), 1);
  const ir::Node* rs = producer(*g, "y");
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->op_type, "Reshape");
  EXPECT_EQ(g->values[static_cast<size_t>(rs->inputs[0])].name, "r");
  EXPECT_EQ(passes::constant_of(*g, rs->inputs[1])->to_int64_vector(), (std::vector<int64_t>{24}));
  EXPECT_EQ(g->values[static_cast<size_t>(producer(*g, "z")->inputs[0])].name, "r");
}

TEST(PassNoop, PipelineRemovesEverything) {
  GraphBuilder b = relu_input({2, 3, 4});
  b.node("Shape", {"r"}, {"shape"});
  b.node("Reshape", {"r", "shape"}, {"a"});
  b.node("Identity", {"a"}, {"y"});
  auto g = b.output("y").build();
  auto ins = test::seeded_inputs(*g);
  auto before = test::run_graph(g, ins);
  passes::run_pipeline(*g);
  EXPECT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(producer(*g, "y")->op_type, "Relu");
  test::expect_same_outputs(before, test::run_graph(g, ins), 0);
}

TEST(PassNoop, ValueReadByNameInASubgraphStays) {
  // The If's bodies read "i" by name; rewiring node inputs would not reach them.
  GraphBuilder b = relu_input({3});
  b.node("Identity", {"r"}, {"i"});
  Tensor cond(DType::kBool, {});
  cond.data<bool>()[0] = true;
  b.constant_tensor("cond", cond);
  auto body = std::make_shared<ir::Graph>();
  body->opsets[""] = 13;
  int o = body->add_value("i");
  body->outer_refs.push_back(o);
  int bo = body->add_value("b_out");
  ir::Node neg;
  neg.name = "b_neg";
  neg.op_type = "Neg";
  neg.opset = 13;
  neg.inputs = {o};
  neg.outputs = {bo};
  body->add_node(neg);
  body->outputs.push_back(bo);
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kGraph;
  a.g = body;
  ir::Node& n = b.node("If", {"cond"}, {"y"});
  n.attrs["then_branch"] = a;
  n.attrs["else_branch"] = a;
  auto g = b.output("y").build();
  EXPECT_EQ(run_checked(g).fired, 0);
  EXPECT_EQ(count_ops(*g, "Identity"), 1);
}
