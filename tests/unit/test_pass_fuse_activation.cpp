// Tests for the fuse-activation pass: every activation it takes, the gated forms
// (x * HardSigmoid(x), x * Sigmoid(x)), and the cases where it must leave the graph alone.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "graph_test_util.hpp"
#include "passes/pass.hpp"

using namespace lithe;
using lithe::test::count_ops;
using lithe::test::GraphBuilder;

namespace {

const passes::Pass& the_pass() {
  const passes::Pass* p = passes::find_pass("fuse-activation");
  if (!p) throw std::runtime_error("fuse-activation is not in the pipeline");
  return *p;
}

// Runs the pass on a copy; checks outputs (values, names) are unchanged; returns the
// number of fusions and the rewritten graph.
struct Result {
  int fired = 0;
  std::shared_ptr<ir::Graph> after;
};

Result run_and_compare(const std::shared_ptr<ir::Graph>& before, double tol = 1e-6) {
  auto after = std::make_shared<ir::Graph>(*before);
  Result r;
  r.fired = passes::run_pass(*after, the_pass());
  r.after = after;
  auto ins = test::seeded_inputs(*before, 3);
  test::expect_same_outputs(test::run_graph(before, ins), test::run_graph(after, ins), tol);
  EXPECT_EQ(before->outputs.size(), after->outputs.size());
  for (size_t i = 0; i < before->outputs.size(); ++i)
    EXPECT_EQ(before->values[static_cast<size_t>(before->outputs[i])].name,
              after->values[static_cast<size_t>(after->outputs[i])].name);
  return r;
}

// x(1x3x5x5) -> Conv(4 out, 3x3 pad 1, bias) -> "c"; `tail` adds the rest and outputs.
std::shared_ptr<ir::Graph> conv_then(const std::function<void(GraphBuilder&)>& tail,
                                     int opset = 14) {
  GraphBuilder b(opset);
  b.input("x", {1, 3, 5, 5}).constant("w", {4, 3, 3, 3}).constant("b", {4});
  b.node("Conv", {"x", "w", "b"}, {"c"}, "conv").attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  tail(b);
  return b.build();
}

const ir::Node& fused_node(const ir::Graph& g) {
  for (const auto& n : g.nodes)
    if (n.domain == "lithe") return n;
  throw std::runtime_error("no lithe node");
}

std::string activation_of(const ir::Graph& g) {
  const ir::Node& n = fused_node(g);
  auto it = n.attrs.find("activation");
  return it == n.attrs.end() ? "<none>" : it->second.s;
}

}  // namespace

TEST(PassFuseActivation, EverySingleActivation) {
  struct Case {
    const char* op;
    std::function<void(ir::Node&)> attrs;
    std::vector<float> params;
  };
  const std::vector<Case> cases = {
      {"Relu", nullptr, {}},
      {"Sigmoid", nullptr, {}},
      {"Tanh", nullptr, {}},
      {"HardSwish", nullptr, {}},
      {"LeakyRelu", [](ir::Node& n) { n.attrs["alpha"] = GraphBuilder::f(0.3f); }, {0.3f}},
      {"LeakyRelu", nullptr, {0.01f}},
      {"HardSigmoid",
       [](ir::Node& n) {
         n.attrs["alpha"] = GraphBuilder::f(0.25f);
         n.attrs["beta"] = GraphBuilder::f(0.4f);
       },
       {0.25f, 0.4f}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    auto g = conv_then([&](GraphBuilder& b) {
      ir::Node& n = b.node(c.op, {"c"}, {"y"}, "act");
      if (c.attrs) c.attrs(n);
      b.output("y");
    });
    Result r = run_and_compare(g);
    EXPECT_EQ(r.fired, 1);
    ASSERT_EQ(r.after->nodes.size(), 1u);
    EXPECT_EQ(count_ops(*r.after, "Conv", "lithe"), 1);
    EXPECT_EQ(activation_of(*r.after), c.op);
    EXPECT_EQ(fused_node(*r.after).name, "conv");
    EXPECT_EQ(fused_node(*r.after).opset, 14);
    const auto* p = &fused_node(*r.after).attrs;
    if (c.params.empty()) {
      EXPECT_EQ(p->count("activation_params"), 0u);
    } else {
      ASSERT_EQ(p->count("activation_params"), 1u);
      EXPECT_EQ(p->at("activation_params").floats, c.params);
    }
  }
}

TEST(PassFuseActivation, ClipFromInputsAndFromAttributes) {
  // Opset 11+: bounds are constant inputs (max alone here: min omitted).
  auto g = conv_then([](GraphBuilder& b) {
    b.constant("lo", {}, {0.f}).constant("hi", {}, {6.f});
    b.node("Clip", {"c", "lo", "hi"}, {"y"});
    b.output("y");
  });
  Result r = run_and_compare(g);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(activation_of(*r.after), "Clip");
  EXPECT_EQ(fused_node(*r.after).attrs.at("activation_params").floats,
            (std::vector<float>{0.f, 6.f}));
  EXPECT_EQ(r.after->values.size(), 4u) << "the bound constants are dropped";

  auto g2 = conv_then([](GraphBuilder& b) {
    b.constant("hi", {}, {0.25f});
    b.node("Clip", {"c", "", "hi"}, {"y"});
    b.output("y");
  });
  r = run_and_compare(g2);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(fused_node(*r.after).attrs.at("activation_params").floats[1], 0.25f);

  // Opset 6: bounds are attributes.
  auto g3 = conv_then(
      [](GraphBuilder& b) {
        ir::Node& n = b.node("Clip", {"c"}, {"y"});
        n.attrs["min"] = GraphBuilder::f(-0.2f);
        n.attrs["max"] = GraphBuilder::f(0.3f);
        b.output("y");
      },
      6);
  r = run_and_compare(g3);
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(fused_node(*r.after).attrs.at("activation_params").floats,
            (std::vector<float>{-0.2f, 0.3f}));
}

TEST(PassFuseActivation, GatedFormsBecomeHardSwishAndSiLU) {
  for (bool swap : {false, true}) {
    auto g = conv_then([&](GraphBuilder& b) {
      ir::Node& h = b.node("HardSigmoid", {"c"}, {"h"});
      h.attrs["alpha"] = GraphBuilder::f(1.0f / 6);
      h.attrs["beta"] = GraphBuilder::f(0.5f);
      b.node("Mul", swap ? std::vector<std::string>{"h", "c"} : std::vector<std::string>{"c", "h"},
             {"y"});
      b.output("y");
    });
    Result r = run_and_compare(g, 1e-5);
    EXPECT_EQ(r.fired, 1);
    EXPECT_EQ(r.after->nodes.size(), 1u);
    EXPECT_EQ(activation_of(*r.after), "HardSwish");

    auto g2 = conv_then([&](GraphBuilder& b) {
      b.node("Sigmoid", {"c"}, {"s"});
      b.node("Mul", swap ? std::vector<std::string>{"s", "c"} : std::vector<std::string>{"c", "s"},
             {"y"});
      b.output("y");
    });
    r = run_and_compare(g2);
    EXPECT_EQ(r.fired, 1);
    EXPECT_EQ(r.after->nodes.size(), 1u);
    EXPECT_EQ(activation_of(*r.after), "SiLU");
  }
}

TEST(PassFuseActivation, DecomposedHardSwishBecomesHardSwish) {
  // paddle2onnx at opset 9: Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6); also Mul by 1/6 at opset 13.
  for (int opset : {9, 13}) {
    SCOPED_TRACE(opset);
    auto g = conv_then(
        [&](GraphBuilder& b) {
          b.constant("three", {}, {3.f})
              .constant("six", {}, {6.f})
              .constant("sixth", {1}, {1.f / 6});
          b.node("Add", {"c", "three"}, {"a"});
          if (opset < 11) {
            ir::Node& n = b.node("Clip", {"a"}, {"cl"});
            n.attrs["min"] = GraphBuilder::f(0.f);
            n.attrs["max"] = GraphBuilder::f(6.f);
          } else {
            b.constant("zero", {}, {0.f});
            b.node("Clip", {"a", "zero", "six"}, {"cl"});
          }
          b.node("Mul", {"cl", "c"}, {"m"});
          if (opset < 11)
            b.node("Div", {"m", "six"}, {"y"});
          else
            b.node("Mul", {"sixth", "m"}, {"y"});
          b.output("y");
        },
        opset);
    Result r = run_and_compare(g, 1e-5);
    EXPECT_EQ(r.fired, 1);
    ASSERT_EQ(r.after->nodes.size(), 1u);
    EXPECT_EQ(activation_of(*r.after), "HardSwish");
  }
}

// The pass to its fixed point (the affine map joins on the round after the activation).
Result run_to_fixed_point(const std::shared_ptr<ir::Graph>& before) {
  Result r = run_and_compare(before, 0);
  for (int f; (f = passes::run_pass(*r.after, the_pass())) > 0;) r.fired += f;
  auto ins = test::seeded_inputs(*before, 3);
  test::expect_same_outputs(test::run_graph(before, ins), test::run_graph(r.after, ins), 0);
  return r;
}

// The fused node's affine map, empty when it has none or there is no fused node.
std::vector<float> affine_of(const ir::Graph& g) {
  for (const auto& n : g.nodes)
    if (auto it = n.attrs.find("activation_affine"); it != n.attrs.end()) return it->second.floats;
  return {};
}

TEST(PassFuseActivation, ScalarAffineAfterTheActivation) {
  // PP-LCNet's learnable affine block: act(conv) * s + t, and its partial forms. The fused
  // graph's outputs are bitwise those of the unfused one.
  struct Case {
    const char* name;
    std::function<void(GraphBuilder&)> tail;
    std::vector<float> affine;
  };
  const std::vector<Case> cases = {
      {"mul add",
       [](GraphBuilder& b) {
         b.constant("s", {1}, {1.7f}).constant("t", {}, {-0.3f});
         b.node("HardSwish", {"c"}, {"h"});
         b.node("Mul", {"h", "s"}, {"m"});
         b.node("Add", {"t", "m"}, {"y"});
       },
       {1.7f, -0.3f}},
      {"mul only",
       [](GraphBuilder& b) {
         b.constant("s", {}, {-2.5f});
         b.node("Relu", {"c"}, {"h"});
         b.node("Mul", {"s", "h"}, {"y"});
       },
       {-2.5f, -0.0f}},
      {"sub only",
       [](GraphBuilder& b) {
         b.constant("t", {1, 1, 1, 1}, {0.25f});
         b.node("Sigmoid", {"c"}, {"h"});
         b.node("Sub", {"h", "t"}, {"y"});
       },
       {1.0f, -0.25f}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto g = conv_then([&](GraphBuilder& b) {
      c.tail(b);
      b.output("y");
    });
    Result r = run_to_fixed_point(g);
    ASSERT_EQ(r.after->nodes.size(), 1u);
    EXPECT_EQ(affine_of(*r.after), c.affine);
    EXPECT_EQ(r.after->values[static_cast<size_t>(r.after->outputs[0])].name, "y");
  }
  // Not taken: a per-channel scale, t - x, a scale whose input the graph also outputs, a Mul
  // without an activation before it. The conv (with its activation) and the binary op stay.
  struct Left {
    const char* why;
    Shape k_shape;
    std::vector<float> k;
    const char* act;  // "" for none
    const char* op;
    bool k_first, act_escapes;
  };
  for (const Left& c : std::vector<Left>{
           {"per-channel", {1, 4, 1, 1}, {1.f, 2.f, 3.f, 4.f}, "Relu", "Mul", false, false},
           {"t - x", {}, {1.f}, "Relu", "Sub", true, false},
           {"activation escapes", {}, {2.f}, "Relu", "Mul", false, true},
           {"no activation", {}, {2.f}, "", "Mul", false, false}}) {
    SCOPED_TRACE(c.why);
    Result r = run_to_fixed_point(conv_then([&](GraphBuilder& b) {
      b.constant("k", c.k_shape, c.k);
      const std::string h = *c.act ? "h" : "c";
      if (*c.act) b.node(c.act, {"c"}, {"h"});
      b.node(c.op, c.k_first ? std::vector<std::string>{"k", h} : std::vector<std::string>{h, "k"},
             {"y"});
      b.output("y");
      if (c.act_escapes) b.output("h");
    }));
    EXPECT_EQ(r.after->nodes.size(), 2u);
    EXPECT_TRUE(affine_of(*r.after).empty());
  }
}

TEST(PassFuseActivation, GemmMatMulConvTranspose) {
  GraphBuilder b(13);
  b.input("a", {2, 4}).constant("wt", {3, 4}).constant("c", {3}).constant("m", {3, 5});
  b.input("x", {1, 2, 3, 3}).constant("w", {2, 3, 2, 2});
  b.node("Gemm", {"a", "wt", "c"}, {"g"}).attrs["transB"] = GraphBuilder::i(1);
  b.node("Relu", {"g"}, {"gr"});
  b.node("MatMul", {"gr", "m"}, {"mm"});
  b.node("Tanh", {"mm"}, {"y1"});
  b.node("ConvTranspose", {"x", "w"}, {"ct"});
  b.node("Sigmoid", {"ct"}, {"y2"});
  auto g = b.output("y1").output("y2").build();
  Result r = run_and_compare(g);
  EXPECT_EQ(r.fired, 3);
  EXPECT_EQ(r.after->nodes.size(), 3u);
  EXPECT_EQ(count_ops(*r.after, "Gemm", "lithe"), 1);
  EXPECT_EQ(count_ops(*r.after, "MatMul", "lithe"), 1);
  EXPECT_EQ(count_ops(*r.after, "ConvTranspose", "lithe"), 1);
}

TEST(PassFuseActivation, AcceptsAFusedNodeWithAResidual) {
  auto g = conv_then([](GraphBuilder& b) {
    b.input("z", {1, 4, 5, 5});
    // Turn the conv into a lithe node with Z, as fuse-residual leaves it.
    ir::Node& n = b.node("Relu", {"c"}, {"y"});
    (void)n;
    b.output("y");
  });
  ir::Node& conv = g->nodes[0];
  conv.domain = "lithe";
  conv.inputs.push_back(g->find_value("z"));
  g->relink();
  ops::infer_graph(*g);
  Result r = run_and_compare(g);
  EXPECT_EQ(r.fired, 1);
  ASSERT_EQ(r.after->nodes.size(), 1u);
  EXPECT_EQ(r.after->nodes[0].inputs.size(), 4u);
  EXPECT_EQ(activation_of(*r.after), "Relu");
}

TEST(PassFuseActivation, MustNotFire) {
  auto expect_unchanged = [](const std::shared_ptr<ir::Graph>& g, const char* why) {
    SCOPED_TRACE(why);
    Result r = run_and_compare(g);
    EXPECT_EQ(r.fired, 0);
    EXPECT_EQ(r.after->nodes.size(), g->nodes.size());
  };
  // The conv output is used elsewhere too.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("Relu", {"c"}, {"y"});
                     b.node("Neg", {"c"}, {"y2"});
                     b.output("y").output("y2");
                   }),
                   "two consumers");
  // The conv output is a graph output.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("Relu", {"c"}, {"y"});
                     b.output("y").output("c");
                   }),
                   "graph output");
  // Clip bound not constant.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.input("lo", {});
                     b.node("Clip", {"c", "lo"}, {"y"});
                     b.output("y");
                   }),
                   "runtime Clip bound");
  // Not an activation the epilogue knows.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("Softplus", {"c"}, {"y"});
                     b.output("y");
                   }),
                   "Softplus");
  // x * HardSigmoid(x) with other constants is not HardSwish.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("HardSigmoid", {"c"}, {"h"});
                     b.node("Mul", {"c", "h"}, {"y"});
                     b.output("y");
                   }),
                   "HardSigmoid 0.2");
  // x * Clip(x + 2, 0, 6) / 6 is not HardSwish.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.constant("two", {}, {2.f}).constant("zero", {}, {0.f});
                     b.constant("six", {}, {6.f});
                     b.node("Add", {"c", "two"}, {"a"});
                     b.node("Clip", {"a", "zero", "six"}, {"cl"});
                     b.node("Mul", {"c", "cl"}, {"m"});
                     b.node("Div", {"m", "six"}, {"y"});
                     b.output("y");
                   }),
                   "x + 2");
  // The gate's output is used beyond the Mul.
  expect_unchanged(conv_then([](GraphBuilder& b) {
                     b.node("Sigmoid", {"c"}, {"s"});
                     b.node("Mul", {"c", "s"}, {"y"});
                     b.output("y").output("s");
                   }),
                   "gate output escapes");
  // An integer MatMul.
  {
    GraphBuilder b(13);
    b.input("a", {2, 3}, DType::kInt32).input("m", {3, 2}, DType::kInt32);
    b.node("MatMul", {"a", "m"}, {"p"});
    b.node("Relu", {"p"}, {"y"});
    expect_unchanged(b.output("y").build(), "int32");
  }
  // The conv already has an activation.
  {
    auto g = conv_then([](GraphBuilder& b) {
      b.node("Sigmoid", {"c"}, {"y"});
      b.output("y");
    });
    g->nodes[0].domain = "lithe";
    g->nodes[0].attrs["activation"] = GraphBuilder::s("Relu");
    expect_unchanged(g, "activation present");
  }
}
