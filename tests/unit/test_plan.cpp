// Memory planner: offsets, reuse, in-place, views, concat aliasing, the checker, and planned
// execution (arena views) against unplanned execution, bitwise, on small graphs and on the
// real models in models-cache.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "frontend/onnx/importer.hpp"
#include "../real_models.hpp"
#include "graph_test_util.hpp"
#include "passes/pass.hpp"
#include "plan/plan.hpp"

namespace lithe {
namespace {

using test::GraphBuilder;

int vid(const ir::Graph& g, const std::string& name) {
  int v = g.find_value(name);
  EXPECT_GE(v, 0) << name;
  return v;
}

int node_of(const ir::Graph& g, const std::string& output) {
  return g.values[static_cast<size_t>(vid(g, output))].producer;
}

void expect_bitwise_equal(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].dtype(), b[k].dtype()) << "output " << k;
    ASSERT_EQ(a[k].shape(), b[k].shape()) << "output " << k;
    ASSERT_EQ(0, std::memcmp(a[k].raw(), b[k].raw(), a[k].nbytes())) << "output " << k;
  }
}

// Runs `g` without a plan and with `p` on an arena full of garbage (twice, so leftovers of
// the first run cannot help the second) and expects bitwise-equal outputs.
void expect_planned_run_matches(const std::shared_ptr<const ir::Graph>& g,
                                const plan::MemoryPlan& p, unsigned seed = 1) {
  auto ins = test::seeded_inputs(*g, seed);
  auto want = test::run_graph(g, ins);
  runtime::RefExecutor ex(g, &p);
  auto arena = runtime::allocate_arena(p.arena_bytes);
  for (int rep = 0; rep < 2; ++rep) {
    std::memset(arena.get(), 0xA5 + rep, static_cast<size_t>(p.arena_bytes));
    auto got = ex.run(ins, arena.get());
    expect_bitwise_equal(want, got);
  }
  // A plan without an arena allocates as before.
  expect_bitwise_equal(want, ex.run(ins));
}

TEST(PlanMemory, ChainReusesMemoryWithoutInPlace) {
  GraphBuilder b;
  b.input("x", {1, 64});
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"a"}, {"b"});
  b.node("Tanh", {"b"}, {"c"});
  b.node("Neg", {"c"}, {"d"});
  b.output("d");
  auto g = b.build();
  plan::PlanOptions opts;
  opts.in_place = false;
  auto p = plan::plan_memory(*g, opts);
  plan::check_plan(*g, p);
  EXPECT_EQ(p.sum_intermediate_bytes, 4 * 256);
  EXPECT_EQ(p.arena_bytes, 512);
  EXPECT_EQ(p.offset[static_cast<size_t>(vid(*g, "x"))], -1);
  EXPECT_NE(p.offset[static_cast<size_t>(vid(*g, "a"))],
            p.offset[static_cast<size_t>(vid(*g, "b"))]);
  EXPECT_EQ(p.offset[static_cast<size_t>(vid(*g, "a"))],
            p.offset[static_cast<size_t>(vid(*g, "c"))]);
  for (int64_t o : p.offset) EXPECT_EQ(o % 64 == 0 || o == -1, true);
  for (char f : p.in_place) EXPECT_EQ(f, 0);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, ChainInPlace) {
  GraphBuilder b;
  b.input("x", {1, 64});
  b.node("Relu", {"x"}, {"a"});  // x is a graph input: not overwritten
  b.node("Sigmoid", {"a"}, {"b"});
  b.node("Tanh", {"b"}, {"c"});
  b.node("Neg", {"c"}, {"d"});
  b.output("d");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  EXPECT_EQ(p.arena_bytes, 256);
  EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, "a"))], 0);
  for (const char* v : {"b", "c", "d"}) {
    EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, v))], 1) << v;
    EXPECT_EQ(p.offset[static_cast<size_t>(vid(*g, v))],
              p.offset[static_cast<size_t>(vid(*g, "a"))]);
  }
  EXPECT_EQ(p.alias_of[static_cast<size_t>(vid(*g, "b"))], vid(*g, "a"));
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, DiamondKeepsSharedInputAlive) {
  GraphBuilder b;
  b.input("x", {2, 32});
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"a"}, {"s"});   // a is still read by Tanh: no in-place here
  b.node("Tanh", {"a"}, {"t"});      // a's last use: in place
  b.node("Add", {"s", "t"}, {"y"});  // s's last use: in place over s
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  auto off = [&](const char* n) { return p.offset[static_cast<size_t>(vid(*g, n))]; };
  EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, "s"))], 0);
  EXPECT_NE(off("a"), off("s"));
  EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, "t"))], 1);
  EXPECT_EQ(off("t"), off("a"));
  EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, "y"))], 1);
  EXPECT_EQ(off("y"), off("s"));
  EXPECT_LT(p.arena_bytes, p.sum_intermediate_bytes);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, BinaryInPlaceNeedsInputZeroShape) {
  GraphBuilder b;
  b.input("x", {1, 16});
  b.input("z", {4, 16});
  b.node("Relu", {"x"}, {"a"});
  b.node("Add", {"a", "z"}, {"y"});  // a broadcasts to a bigger output: not in place
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, "y"))], 0);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, ReshapeIsAView) {
  GraphBuilder b;
  b.input("x", {2, 3, 4});
  b.constant_i64("shape", {6, 4});
  b.node("Relu", {"x"}, {"a"});
  b.node("Reshape", {"a", "shape"}, {"r"});
  b.node("Sigmoid", {"r"}, {"s"});
  b.node("Reshape", {"x", "shape"}, {"rx"});  // view of a graph input: computed
  b.node("Add", {"s", "rx"}, {"y"});
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  const int a = vid(*g, "a"), r = vid(*g, "r");
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "r"))], 1);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(r)], a);
  EXPECT_EQ(p.offset[static_cast<size_t>(r)], p.offset[static_cast<size_t>(a)]);
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "rx"))], 0);
  EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, "s"))], 1);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, NoInPlaceWhileAViewIsAlive) {
  GraphBuilder b;
  b.input("x", {2, 3, 4});
  b.constant_i64("shape", {6, 4});
  b.node("Relu", {"x"}, {"a"});
  b.node("Reshape", {"a", "shape"}, {"r"});
  b.node("Sigmoid", {"a"}, {"s"});  // a's last use, but its view r is read later
  b.node("Reshape", {"s", "shape"}, {"rs"});
  b.node("Add", {"rs", "r"}, {"y"});
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  EXPECT_EQ(p.in_place[static_cast<size_t>(node_of(*g, "s"))], 0);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, ConcatAliasWithBatchOne) {
  GraphBuilder b;
  b.input("x", {1, 4, 8, 8});
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"x"}, {"b"});
  b.node("Concat", {"a", "b"}, {"c"}).attrs["axis"] = GraphBuilder::i(1);
  b.node("Tanh", {"c"}, {"y"});
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  const int a = vid(*g, "a"), bb = vid(*g, "b"), c = vid(*g, "c");
  EXPECT_EQ(p.alias_of[static_cast<size_t>(a)], c);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(bb)], c);
  EXPECT_EQ(p.offset[static_cast<size_t>(a)], p.offset[static_cast<size_t>(c)]);
  EXPECT_EQ(p.offset[static_cast<size_t>(bb)], p.offset[static_cast<size_t>(c)] + 4 * 64 * 4);
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "c"))], 1);
  EXPECT_EQ(p.arena_bytes, 2 * 4 * 64 * 4);  // Tanh runs in place over c
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, SplitOutputsAreViewsWithBatchOne) {
  GraphBuilder b;
  b.input("x", {1, 6, 4, 4});
  b.constant_i64("sizes", {2, 4});
  b.node("Relu", {"x"}, {"a"});
  b.node("Split", {"a", "sizes"}, {"s0", "s1"}).attrs["axis"] = GraphBuilder::i(1);
  b.node("Sigmoid", {"s1"}, {"t"});  // s0 and s1 are disjoint slices of a
  b.node("Tanh", {"s0"}, {"u"});
  b.node("Concat", {"t", "u"}, {"y"}).attrs["axis"] = GraphBuilder::i(1);
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  const int a = vid(*g, "a"), s0 = vid(*g, "s0"), s1 = vid(*g, "s1");
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "s0"))], 1);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(s0)], a);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(s1)], a);
  EXPECT_EQ(p.offset[static_cast<size_t>(s0)], p.offset[static_cast<size_t>(a)]);
  EXPECT_EQ(p.offset[static_cast<size_t>(s1)], p.offset[static_cast<size_t>(a)] + 2 * 16 * 4);
  expect_planned_run_matches(g, p);

  // Outer size 2: slices are not contiguous, the Split runs.
  GraphBuilder b2;
  b2.input("x", {2, 6, 4});
  b2.constant_i64("sizes", {2, 4});
  b2.node("Relu", {"x"}, {"a"});
  b2.node("Split", {"a", "sizes"}, {"s0", "s1"}).attrs["axis"] = GraphBuilder::i(1);
  b2.node("Add", {"s0", "s0"}, {"y0"});
  b2.node("Add", {"s1", "s1"}, {"y1"});
  b2.output("y0").output("y1");
  auto g2 = b2.build();
  auto p2 = plan::plan_memory(*g2);
  plan::check_plan(*g2, p2);
  EXPECT_EQ(p2.skip[static_cast<size_t>(node_of(*g2, "s0"))], 0);
  expect_planned_run_matches(g2, p2);
}

TEST(PlanMemory, ConcatAliasTakesInPlaceChain) {
  // Conv -> Relu (in place) -> Concat: the whole chain writes into the slice.
  GraphBuilder b;
  b.input("x", {1, 4, 8, 8});
  b.node("Sigmoid", {"x"}, {"a"});
  b.node("Relu", {"a"}, {"ar"});
  b.node("Tanh", {"x"}, {"t"});
  b.node("Concat", {"t", "ar"}, {"c"}).attrs["axis"] = GraphBuilder::i(-3);
  b.output("c");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  const int64_t oc = p.offset[static_cast<size_t>(vid(*g, "c"))];
  EXPECT_EQ(p.offset[static_cast<size_t>(vid(*g, "t"))], oc);
  EXPECT_EQ(p.offset[static_cast<size_t>(vid(*g, "a"))], oc + 1024);
  EXPECT_EQ(p.offset[static_cast<size_t>(vid(*g, "ar"))], oc + 1024);
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "c"))], 1);
  EXPECT_EQ(p.arena_bytes, 2048);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, ConcatPartlyAliasedCopiesTheRest) {
  GraphBuilder b;
  b.input("x", {1, 4, 8});
  b.input("z", {1, 2, 8});
  b.node("Relu", {"x"}, {"a"});
  b.node("Concat", {"z", "a", "z"}, {"c"}).attrs["axis"] = GraphBuilder::i(1);
  b.node("Neg", {"c"}, {"y"});
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  const int a = vid(*g, "a"), c = vid(*g, "c");
  EXPECT_EQ(p.alias_of[static_cast<size_t>(a)], c);
  EXPECT_EQ(p.offset[static_cast<size_t>(a)], p.offset[static_cast<size_t>(c)] + 2 * 8 * 4);
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "c"))], 0);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, ConcatNotAliasedWhenOuterSizeIsNotOne) {
  GraphBuilder b;
  b.input("x", {2, 4, 8});
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"x"}, {"s"});
  b.node("Concat", {"a", "s"}, {"c"}).attrs["axis"] = GraphBuilder::i(1);
  b.output("c");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(vid(*g, "a"))], -1);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(vid(*g, "s"))], -1);
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "c"))], 0);
  expect_planned_run_matches(g, p);
}

// A channels-last inception block: two ConvNhwc and a MaxPoolNhwc feed a Concat on the
// channel axis (outer size N*H*W > 1). Their outputs become strided slices of the Concat
// output, written in place; a Relu input (not a row writer) is copied.
std::shared_ptr<ir::Graph> nhwc_concat_graph(bool all_row_writers) {
  GraphBuilder b;
  b.input("x", {2, 5, 6, 3});
  b.constant("w1", {4, 3, 1, 1});  // seeded random weights
  b.constant("w2", {5, 3, 3, 3});
  ir::Node& c1 = b.node("ConvNhwc", {"x", "w1"}, {"a"});
  c1.domain = "lithe";
  ir::Node& c2 = b.node("ConvNhwc", {"x", "w2"}, {"bb"});
  c2.domain = "lithe";
  c2.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  ir::Node& mp = b.node("MaxPoolNhwc", {"x"}, {"m"});
  mp.domain = "lithe";
  mp.attrs["kernel_shape"] = GraphBuilder::ints({3, 3});
  mp.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  mp.attrs["strides"] = GraphBuilder::ints({1, 1});
  std::vector<std::string> ins = {"a", "bb", "m"};
  if (!all_row_writers) {
    b.node("Relu", {"x"}, {"r"});
    ins.push_back("r");
  }
  b.node("Concat", ins, {"c"}).attrs["axis"] = GraphBuilder::i(3);
  b.node("Neg", {"c"}, {"y"});
  b.output("y");
  return b.build();
}

TEST(PlanMemory, ChannelConcatInNhwcWritesStridedSlices) {
  for (bool all : {true, false}) {
    SCOPED_TRACE(all ? "all inputs from row writers" : "one input from a Relu");
    auto g = nhwc_concat_graph(all);
    auto p = plan::plan_memory(*g);
    plan::check_plan(*g, p);
    const int c = vid(*g, "c");
    const int64_t row = (all ? 12 : 15) * 4;  // output channels x float
    int64_t at = 0;
    for (auto [name, ch] :
         std::vector<std::pair<std::string, int64_t>>{{"a", 4}, {"bb", 5}, {"m", 3}}) {
      const size_t v = static_cast<size_t>(vid(*g, name));
      EXPECT_EQ(p.alias_of[v], c) << name;
      EXPECT_EQ(p.offset[v], p.offset[static_cast<size_t>(c)] + at) << name;
      EXPECT_EQ(p.row_stride[v], row) << name;
      EXPECT_EQ(p.row_bytes[v], ch * 4) << name;
      at += ch * 4;
    }
    if (!all) {
      EXPECT_EQ(p.alias_of[static_cast<size_t>(vid(*g, "r"))], -1);
    }
    EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "c"))], all ? 1 : 0);
    expect_planned_run_matches(g, p);
    // Off: the same graph copies every input.
    plan::PlanOptions off;
    off.strided_concat = false;
    auto q = plan::plan_memory(*g, off);
    plan::check_plan(*g, q);
    EXPECT_EQ(q.alias_of[static_cast<size_t>(vid(*g, "a"))], -1);
    expect_planned_run_matches(g, q);
  }
}

TEST(CheckPlan, StridedSlicesMustNotInterleave) {
  auto g = nhwc_concat_graph(true);
  auto good = plan::plan_memory(*g);
  plan::check_plan(*g, good);
  const size_t a = static_cast<size_t>(vid(*g, "a")), bb = static_cast<size_t>(vid(*g, "bb"));
  auto bad = good;
  bad.offset[bb] = bad.offset[a] + 4;  // bb's rows start inside a's rows: a is still needed
  EXPECT_THROW(plan::check_plan(*g, bad), Error);
  bad = good;
  bad.row_bytes[a] = 3 * 4;  // rows that do not make the value
  EXPECT_THROW(plan::check_plan(*g, bad), Error);
  bad = good;
  bad.row_stride[a] = 1 << 20;  // rows running past the arena
  EXPECT_THROW(plan::check_plan(*g, bad), Error);
}

TEST(PlanMemory, ConcatInputThatIsAGraphOutputIsNotAliased) {
  GraphBuilder b;
  b.input("x", {1, 4, 8});
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"x"}, {"s"});
  b.node("Concat", {"a", "s"}, {"c"}).attrs["axis"] = GraphBuilder::i(1);
  b.output("c");
  b.output("a");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  const int a = vid(*g, "a"), s = vid(*g, "s"), c = vid(*g, "c");
  EXPECT_EQ(p.alias_of[static_cast<size_t>(a)], -1);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(s)], c);
  EXPECT_EQ(p.skip[static_cast<size_t>(node_of(*g, "c"))], 0);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, ConcatInputWithTwoConsumersIsNotAliased) {
  GraphBuilder b;
  b.input("x", {1, 4, 8});
  b.node("Relu", {"x"}, {"a"});
  b.node("Concat", {"a", "a"}, {"c"}).attrs["axis"] = GraphBuilder::i(1);
  b.output("c");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  EXPECT_EQ(p.alias_of[static_cast<size_t>(vid(*g, "a"))], -1);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, OptionsDisableAliasing) {
  GraphBuilder b;
  b.input("x", {1, 4, 8});
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"x"}, {"s"});
  b.node("Concat", {"a", "s"}, {"c"}).attrs["axis"] = GraphBuilder::i(1);
  b.node("Exp", {"c"}, {"y"});
  b.output("y");
  auto g = b.build();
  plan::PlanOptions opts;
  opts.in_place = false;
  opts.concat_alias = false;
  opts.alignment = 128;
  auto p = plan::plan_memory(*g, opts);
  plan::check_plan(*g, p);
  for (int a : p.alias_of) EXPECT_EQ(a, -1);
  for (int64_t o : p.offset) EXPECT_TRUE(o == -1 || o % 128 == 0);
  expect_planned_run_matches(g, p);
}

TEST(PlanMemory, RunTimeShapesStayOutOfTheArena) {
  GraphBuilder b;
  b.input("x", {8});
  b.node("Relu", {"x"}, {"a"});
  b.node("NonZero", {"a"}, {"nz"});
  b.output("nz");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  EXPECT_GE(p.offset[static_cast<size_t>(vid(*g, "a"))], 0);
  EXPECT_EQ(p.offset[static_cast<size_t>(vid(*g, "nz"))], -1);
  expect_planned_run_matches(g, p);
}

// An If branch that reads `name` from the enclosing graph and negates it.
std::shared_ptr<ir::Graph> negate_outer(const std::string& name, const std::string& out) {
  auto body = std::make_shared<ir::Graph>();
  body->name = out + "_body";
  body->opsets[""] = 13;
  int in = body->add_value(name, {DType::kFloat32, true, {4}});
  body->outer_refs.push_back(in);
  ir::Node n;
  n.op_type = "Neg";
  n.opset = 13;
  n.name = out + "_neg";
  n.inputs = {in};
  n.outputs = {body->add_value(out, {DType::kFloat32, true, {4}})};
  body->add_node(std::move(n));
  body->outputs.push_back(body->find_value(out));
  return body;
}

TEST(PlanMemory, ValuesReadBySubgraphsLiveToTheEnd) {
  GraphBuilder b;
  b.input("x", {4});
  Tensor cond(DType::kBool, {});
  cond.data<bool>()[0] = true;
  b.constant_tensor("cond", cond);
  b.node("Relu", {"x"}, {"a"});     // read only inside the If branches
  b.node("Sigmoid", {"x"}, {"s"});  // must not take a's bytes
  ir::Node& n = b.node("If", {"cond"}, {"y"});
  ir::Attribute then_b, else_b;
  then_b.kind = else_b.kind = ir::Attribute::Kind::kGraph;
  then_b.g = negate_outer("a", "t");
  else_b.g = negate_outer("a", "e");
  n.attrs["then_branch"] = then_b;
  n.attrs["else_branch"] = else_b;
  b.node("Add", {"y", "s"}, {"z"});
  b.output("z");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  plan::check_plan(*g, p);
  const int64_t oa = p.offset[static_cast<size_t>(vid(*g, "a"))];
  const int64_t os = p.offset[static_cast<size_t>(vid(*g, "s"))];
  ASSERT_GE(oa, 0);
  ASSERT_GE(os, 0);
  EXPECT_TRUE(oa + 16 <= os || os + 16 <= oa) << oa << " " << os;
  expect_planned_run_matches(g, p);
}

TEST(CheckPlan, CatchesOverlapsAndBadAliases) {
  GraphBuilder b;
  b.input("x", {1, 64});
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"a"}, {"s"});
  b.node("Add", {"a", "s"}, {"y"});
  b.output("y");
  auto g = b.build();
  auto good = plan::plan_memory(*g);
  plan::check_plan(*g, good);
  const size_t a = static_cast<size_t>(vid(*g, "a")), s = static_cast<size_t>(vid(*g, "s"));

  auto bad = good;
  bad.offset[s] = bad.offset[a];  // a is still read when s is written
  try {
    plan::check_plan(*g, bad);
    FAIL() << "overlap not caught";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'s'"), std::string::npos) << m;
    EXPECT_NE(m.find("'a'"), std::string::npos) << m;
    EXPECT_NE(m.find("step 1"), std::string::npos) << m;
  }

  bad = good;
  bad.offset[a] = bad.arena_bytes;  // past the end
  EXPECT_THROW(plan::check_plan(*g, bad), Error);

  bad = good;
  bad.alias_of[s] = static_cast<int>(a);  // claims to alias, but lies elsewhere
  EXPECT_THROW(plan::check_plan(*g, bad), Error);

  bad = good;
  bad.in_place[static_cast<size_t>(node_of(*g, "s"))] = 1;  // no alias behind the flag
  EXPECT_THROW(plan::check_plan(*g, bad), Error);

  bad = good;
  bad.skip[static_cast<size_t>(node_of(*g, "s"))] = 1;  // Sigmoid must compute
  EXPECT_THROW(plan::check_plan(*g, bad), Error);

  bad = good;
  bad.bytes[a] = 4;  // too small a reservation
  EXPECT_THROW(plan::check_plan(*g, bad), Error);

  bad = good;
  bad.offset.pop_back();
  EXPECT_THROW(plan::check_plan(*g, bad), Error);
  EXPECT_THROW(runtime::RefExecutor(g, &bad), Error);
}

TEST(PlanExecutor, ObserverGetsCopiesAndArenaMustBeAligned) {
  GraphBuilder b;
  b.input("x", {1, 16});
  b.node("Relu", {"x"}, {"a"});
  b.node("Neg", {"a"}, {"n"});
  b.node("Exp", {"n"}, {"y"});
  b.output("y");
  auto g = b.build();
  auto p = plan::plan_memory(*g);
  runtime::RefExecutor ex(g, &p);
  std::map<std::string, Tensor> seen;
  ex.set_observer(
      [&](const ir::Node& n, const std::vector<Tensor>& outs) { seen[n.name] = outs[0]; });
  auto ins = test::seeded_inputs(*g);
  auto arena = runtime::allocate_arena(p.arena_bytes + 64);
  auto got = ex.run(ins, arena.get());
  // Every node wrote the same bytes (in place); the observer's copies kept each result.
  ASSERT_EQ(seen.count("Relu_0"), 1u);
  const Tensor& relu = seen["Relu_0"];
  for (int64_t i = 0; i < relu.numel(); ++i) {
    float x = ins[0].data<float>()[i];
    EXPECT_EQ(relu.data<float>()[i], x > 0 ? x : 0.f);
  }
  EXPECT_THROW(ex.run(ins, arena.get() + 4), Error);
}

// ---- real models ----

// Plans `g`, checks the plan, prints its figures and runs it planned vs unplanned.
void plan_and_run(const char* name, const char* which, const std::shared_ptr<const ir::Graph>& g) {
  auto p = plan::plan_memory(*g);
  ASSERT_NO_THROW(plan::check_plan(*g, p));
  EXPECT_LT(p.arena_bytes, p.sum_intermediate_bytes);
  int in_place = 0, skipped = 0, aliased = 0;
  for (char f : p.in_place) in_place += f;
  for (char f : p.skip) skipped += f;
  for (int a : p.alias_of) aliased += a >= 0;
  std::printf(
      "[plan] %-14s %-9s %4zu nodes: arena %10lld B, intermediates %11lld B (%.1f%%), %d in "
      "place, %d skipped, %d aliased\n",
      name, which, g->nodes.size(), static_cast<long long>(p.arena_bytes),
      static_cast<long long>(p.sum_intermediate_bytes),
      100.0 * static_cast<double>(p.arena_bytes) /
          static_cast<double>(std::max<int64_t>(p.sum_intermediate_bytes, 1)),
      in_place, skipped, aliased);
  std::fflush(stdout);
  auto ins = test::seeded_inputs(*g, 7);
  auto want = test::run_graph(g, ins);
  runtime::RefExecutor ex(g, &p);
  auto arena = runtime::allocate_arena(p.arena_bytes);
  std::memset(arena.get(), 0x5A, static_cast<size_t>(p.arena_bytes));
  auto got = ex.run(ins, arena.get());
  expect_bitwise_equal(want, got);
}

TEST(PlanModels, PlanCheckAndRunRealModels) {
  // LITHE_PLAN_MODELS=name,name limits the set (the big ones take a while on the
  // reference kernels).
  int planned = 0;
  for (const test::RealModel& mc : test::real_models()) {
    if (!test::selected(mc.name, "LITHE_PLAN_MODELS")) continue;
    auto path = test::real_model_path(mc);
    if (!std::filesystem::exists(path)) {
      std::printf("[plan] %-14s absent (%s), skipped\n", mc.name, path.c_str());
      continue;
    }
    SCOPED_TRACE(mc.name);
    onnx::ImportOptions io;
    if (*mc.input) io.input_shapes[mc.input] = mc.shape;
    std::shared_ptr<ir::Graph> g = onnx::import_model(path.string(), io);
    plan_and_run(mc.name, "imported", g);
    if (std::getenv("LITHE_PLAN_PIPELINE")) {
      // The same after the pass pipeline (fused ops, fewer values).
      try {
        passes::run_pipeline(*g);
      } catch (const Error& e) {
        std::printf("[plan] %-14s pass pipeline failed (%s), optimized graph skipped\n", mc.name,
                    e.what());
        continue;
      }
      plan_and_run(mc.name, "optimized", g);
    }
    ++planned;
  }
  std::printf("[plan] %d models planned and run\n", planned);
}

// ---- every ONNX backend case the reference executor passes, planned ----

std::vector<std::filesystem::path> numbered(const std::filesystem::path& dir,
                                            const std::string& prefix) {
  std::vector<std::filesystem::path> v;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) v.push_back(e.path());
  auto num = [](const std::filesystem::path& p) {
    std::string st = p.stem().string();
    return std::stoi(st.substr(st.rfind('_') + 1));
  };
  std::sort(v.begin(), v.end(), [&](const auto& a, const auto& b) { return num(a) < num(b); });
  return v;
}

TEST(PlanConformance, BackendCasesRunPlanned) {
  const std::filesystem::path data = "/usr/share/libonnx-testdata/data";
  std::ifstream list(std::filesystem::path(LITHE_SOURCE_DIR) /
                     "tests/conformance/expected_pass.txt");
  if (!std::filesystem::exists(data) || !list) GTEST_SKIP() << "no ONNX backend test data";
  int cases = 0, with_arena = 0, in_place = 0, skipped = 0, aliased = 0;
  std::string line;
  while (std::getline(list, line)) {
    const std::filesystem::path dir = data / line;
    if (line.empty() || !std::filesystem::exists(dir / "model.onnx")) continue;
    SCOPED_TRACE(line);
    std::vector<Tensor> ins;
    for (auto& f : numbered(dir / "test_data_set_0", "input_"))
      ins.push_back(onnx::read_tensor_pb(f.string()));
    std::shared_ptr<ir::Graph> g;
    std::vector<Tensor> want;
    try {
      auto probe = onnx::import_model((dir / "model.onnx").string());
      onnx::ImportOptions io;
      for (size_t i = 0; i < probe->inputs.size() && i < ins.size(); ++i)
        io.input_shapes[probe->values[static_cast<size_t>(probe->inputs[i])].name] = ins[i].shape();
      g = onnx::import_model((dir / "model.onnx").string(), io);
      for (size_t i = 0; i < ins.size() && i < g->inputs.size(); ++i)
        if (g->values[static_cast<size_t>(g->inputs[i])].type.dtype == DType::kBFloat16 &&
            ins[i].dtype() == DType::kUInt16)
          ins[i] = ins[i].bitcast(DType::kBFloat16);
      want = test::run_graph(g, ins);
    } catch (const Error&) {
      continue;  // the conformance runner covers these cases' own failures
    }
    auto p = plan::plan_memory(*g);
    ASSERT_NO_THROW(plan::check_plan(*g, p));
    ++cases;
    if (p.arena_bytes == 0) continue;
    ++with_arena;
    for (char f : p.in_place) in_place += f;
    for (char f : p.skip) skipped += f;
    for (int a : p.alias_of) aliased += a >= 0;
    runtime::RefExecutor ex(g, &p);
    auto arena = runtime::allocate_arena(p.arena_bytes);
    std::memset(arena.get(), 0xC3, static_cast<size_t>(p.arena_bytes));
    std::vector<Tensor> got;
    ASSERT_NO_THROW(got = ex.run(ins, arena.get()));
    // Random ops differ between any two runs; only a difference the plan causes counts.
    if (!test::same_bits(want, got) && test::same_bits(want, test::run_graph(g, ins)))
      ADD_FAILURE() << line << ": planned run differs from the unplanned run";
  }
  std::printf(
      "[plan] %d backend cases planned and checked, %d with an arena (%d in place, "
      "%d skipped, %d aliased values)\n",
      cases, with_arena, in_place, skipped, aliased);
}

}  // namespace
}  // namespace lithe
