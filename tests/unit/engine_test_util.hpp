// A small graph that exercises every part of the engine format: a constant, attributes of
// every kind, an If with two bodies (one reading an outer value, one with its own constant)
// and a memory plan. Shared by test_engine.cpp and test_engine_corruption.cpp.
#pragma once
#include <cstring>

#include "engine/engine.hpp"
#include "graph_test_util.hpp"

namespace lithe::test {

inline std::shared_ptr<ir::Graph> engine_branch(const std::string& name, const std::string& op,
                                                bool own_constant) {
  auto g = std::make_shared<ir::Graph>();
  g->name = name;
  g->opsets[""] = 13;
  int a = g->add_value("a", {DType::kFloat32, true, {2, 3}});
  g->outer_refs.push_back(a);
  int b = a;
  if (own_constant) {
    b = g->add_value(name + "_k", {DType::kFloat32, true, {2, 3}});
    Tensor k(DType::kFloat32, {2, 3});
    for (int i = 0; i < 6; ++i) k.data<float>()[i] = 0.25f * static_cast<float>(i) - 0.5f;
    g->values[static_cast<size_t>(b)].constant = k;
  }
  int o = g->add_value(name + "_out", {DType::kFloat32, true, {2, 3}});
  ir::Node n;
  n.name = name + "_" + op;
  n.op_type = op;
  n.opset = 13;
  n.inputs = {a, b};
  n.outputs = {o};
  g->add_node(std::move(n));
  g->outputs = {o};
  return g;
}

/// y = If(cond, then: a*a, else: a - k) with a = x + w; the If node also carries one
/// attribute of every kind (ignored by the kernel, kept by the engine).
inline std::shared_ptr<ir::Graph> engine_test_graph() {
  GraphBuilder b;
  b.input("x", {2, 3}).input("cond", {}, DType::kBool).constant("w", {2, 3});
  b.node("Add", {"x", "w"}, {"a"}, "add");
  ir::Node& n = b.node("If", {"cond"}, {"y"}, "if");
  ir::Attribute g;
  g.kind = ir::Attribute::Kind::kGraph;
  g.g = engine_branch("then", "Mul", false);
  n.attrs["then_branch"] = g;
  g.g = engine_branch("else", "Sub", true);
  n.attrs["else_branch"] = g;
  n.attrs["x_float"] = GraphBuilder::f(-0.0f);
  n.attrs["x_int"] = GraphBuilder::i(-1234567890123);
  n.attrs["x_string"] = GraphBuilder::s(std::string("nul\0inside", 10));
  n.attrs["x_ints"] = GraphBuilder::ints({1, -2, 3});
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kFloats;
  a.floats = {1.5f, -2.25f};
  n.attrs["x_floats"] = a;
  a = {};
  a.kind = ir::Attribute::Kind::kStrings;
  a.strings = {"p", "", "q"};
  n.attrs["x_strings"] = a;
  a = {};
  a.kind = ir::Attribute::Kind::kTensor;
  a.t = Tensor(DType::kInt64, {3});
  for (int i = 0; i < 3; ++i) a.t.data<int64_t>()[i] = 10 * i - 7;
  n.attrs["x_tensor"] = a;
  a = {};
  a.kind = ir::Attribute::Kind::kTensors;
  a.tensors = {Tensor(DType::kUInt8, {5}), Tensor(DType::kFloat16, {2, 2}),
               Tensor(DType::kFloat32, {0})};
  a.tensors[0].data<uint8_t>()[4] = 200;
  n.attrs["x_tensors"] = a;
  a = {};
  a.kind = ir::Attribute::Kind::kGraphs;
  a.graphs = {engine_branch("g0", "Add", true), engine_branch("g1", "Mul", false)};
  n.attrs["x_graphs"] = a;
  b.output("y");
  return b.build();
}

/// A plan of the right sizes with arbitrary in-range numbers (the format stores, it does
/// not judge a plan).
inline plan::MemoryPlan engine_test_plan(const ir::Graph& g) {
  plan::MemoryPlan p;
  p.arena_bytes = 4096;
  for (size_t v = 0; v < g.values.size(); ++v) {
    bool in = v % 2 == 1;
    p.offset.push_back(in ? static_cast<int64_t>(64 * v) : -1);
    p.bytes.push_back(in ? 24 : 0);
    p.alias_of.push_back(v == 3 ? 1 : -1);
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    p.in_place.push_back(static_cast<char>(n == 0));
    p.skip.push_back(static_cast<char>(n == 1));
  }
  p.sum_intermediate_bytes = 48;
  return p;
}

inline engine::EngineContents engine_test_contents() {
  engine::EngineContents e;
  e.graph = engine_test_graph();
  e.plan = engine_test_plan(*e.graph);
  e.report_json = R"({"passes":{"fold":2}})";
  e.info = {"lithe 0.1.0", std::string(64, 'a'), R"({"precision":"fp32"})", "generic"};
  return e;
}

}  // namespace lithe::test
