// Unit tests for the fused lithe-domain ops (ops/fused.cpp): each must compute exactly what
// the unfused ONNX graph computes (op, Add of the residual, activation), and reject bad
// activations and residuals with a lithe::Error at inference.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "graph_test_util.hpp"
#include "ops/fused_internal.hpp"

using namespace lithe;
using lithe::test::GraphBuilder;

namespace {

struct Act {
  std::string name;
  std::vector<float> params;
};

const std::vector<Act>& all_acts() {
  static const std::vector<Act> acts = {{"", {}},
                                        {"Relu", {}},
                                        {"Clip", {-0.5f, 0.5f}},
                                        {"LeakyRelu", {0.1f}},
                                        {"HardSigmoid", {0.3f, 0.4f}},
                                        {"HardSwish", {}},
                                        {"Sigmoid", {}},
                                        {"SiLU", {}},
                                        {"Tanh", {}}};
  return acts;
}

void set_epilogue(ir::Node& n, const Act& a) {
  n.domain = "lithe";
  n.attrs["activation"] = GraphBuilder::s(a.name);
  if (!a.params.empty()) {
    ir::Attribute p;
    p.kind = ir::Attribute::Kind::kFloats;
    p.floats = a.params;
    n.attrs["activation_params"] = p;
  }
}

// Appends the ONNX ops that compute activation `a` from `in` into `out`.
void onnx_activation(GraphBuilder& b, const Act& a, const std::string& in, const std::string& out) {
  if (a.name.empty()) {
    b.node("Identity", {in}, {out});
  } else if (a.name == "Clip") {
    b.constant("clip_lo", {}, {a.params[0]}).constant("clip_hi", {}, {a.params[1]});
    b.node("Clip", {in, "clip_lo", "clip_hi"}, {out});
  } else if (a.name == "LeakyRelu") {
    b.node("LeakyRelu", {in}, {out}).attrs["alpha"] = GraphBuilder::f(a.params[0]);
  } else if (a.name == "HardSigmoid") {
    auto& n = b.node("HardSigmoid", {in}, {out});
    n.attrs["alpha"] = GraphBuilder::f(a.params[0]);
    n.attrs["beta"] = GraphBuilder::f(a.params[1]);
  } else if (a.name == "SiLU") {
    b.node("Sigmoid", {in}, {in + "_sig"});
    b.node("Mul", {in, in + "_sig"}, {out});
  } else {
    b.node(a.name, {in}, {out});
  }
}

// Conv 1x4x6x6 -> 1x5x6x6 (3x3, pad 1), bias optional, residual optional.
std::shared_ptr<ir::Graph> conv_graph(bool fused, const Act& a, bool bias, bool residual,
                                      DType dt = DType::kFloat32) {
  GraphBuilder b(14);
  b.input("x", {1, 4, 6, 6}, dt);
  if (residual) b.input("z", {1, 5, 6, 6}, dt);
  Tensor w(DType::kFloat32, {5, 4, 3, 3}), bb(DType::kFloat32, {5});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = std::sin(0.37f * float(i)) * 0.4f;
  for (int64_t i = 0; i < bb.numel(); ++i) bb.data<float>()[i] = 0.1f * float(i) - 0.2f;
  b.constant_tensor("w", w.cast(dt)).constant_tensor("b", bb.cast(dt));
  const std::string bn = bias ? "b" : "";
  if (fused) {
    std::vector<std::string> ins = {"x", "w", bn};
    if (residual) ins.push_back("z");
    auto& n = b.node("Conv", ins, {"y"});
    n.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
    set_epilogue(n, a);
  } else {
    auto& n = b.node(
        "Conv", bias ? std::vector<std::string>{"x", "w", "b"} : std::vector<std::string>{"x", "w"},
        {"c"});
    n.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
    std::string pre = "c";
    if (residual) {
      b.node("Add", {"c", "z"}, {"s"});
      pre = "s";
    }
    onnx_activation(b, a, pre, "y");
  }
  b.output("y");
  return b.build();
}

void expect_equivalent(const std::shared_ptr<ir::Graph>& plain,
                       const std::shared_ptr<ir::Graph>& fused, double tol = 1e-6) {
  auto ins = test::seeded_inputs(*plain, 7);
  test::expect_same_outputs(test::run_graph(plain, ins), test::run_graph(fused, ins), tol);
}

}  // namespace

TEST(OpsFused, ConvEveryActivationWithAndWithoutResidual) {
  for (const Act& a : all_acts())
    for (bool residual : {false, true}) {
      SCOPED_TRACE(a.name + (residual ? " +Z" : ""));
      expect_equivalent(conv_graph(false, a, true, residual), conv_graph(true, a, true, residual));
    }
}

TEST(OpsFused, ConvOmittedBiasKeepsResidualAtIndexThree) {
  Act relu{"Relu", {}};
  auto fused = conv_graph(true, relu, false, true);
  ASSERT_EQ(fused->nodes[0].inputs.size(), 4u);
  EXPECT_EQ(fused->nodes[0].inputs[2], -1);
  expect_equivalent(conv_graph(false, relu, false, true), fused);
}

TEST(OpsFused, Float64AndFloat16) {
  Act silu{"SiLU", {}};
  expect_equivalent(conv_graph(false, silu, true, true, DType::kFloat64),
                    conv_graph(true, silu, true, true, DType::kFloat64), 1e-12);
  expect_equivalent(conv_graph(false, silu, true, true, DType::kFloat16),
                    conv_graph(true, silu, true, true, DType::kFloat16), 2e-3);
}

TEST(OpsFused, GemmAndMatMulWithResidualAndActivation) {
  Act leaky{"LeakyRelu", {0.2f}};
  auto gemm = [&](bool fused) {
    GraphBuilder b(13);
    b.input("a", {3, 4}).input("r", {3, 5}).constant("wt", {5, 4}).constant("c", {5});
    if (fused) {
      auto& n = b.node("Gemm", {"a", "wt", "c", "r"}, {"y"});
      n.attrs["transB"] = GraphBuilder::i(1);
      set_epilogue(n, leaky);
    } else {
      b.node("Gemm", {"a", "wt", "c"}, {"g"}).attrs["transB"] = GraphBuilder::i(1);
      b.node("Add", {"r", "g"}, {"s"});
      onnx_activation(b, leaky, "s", "y");
    }
    return b.output("y").build();
  };
  expect_equivalent(gemm(false), gemm(true));

  Act tanh{"Tanh", {}};
  auto matmul = [&](bool fused) {
    GraphBuilder b(13);
    b.input("a", {2, 3, 4}).input("r", {2, 3, 6}).constant("m", {4, 6});
    if (fused) {
      set_epilogue(b.node("MatMul", {"a", "m", "r"}, {"y"}), tanh);
    } else {
      b.node("MatMul", {"a", "m"}, {"g"});
      b.node("Add", {"g", "r"}, {"s"});
      onnx_activation(b, tanh, "s", "y");
    }
    return b.output("y").build();
  };
  expect_equivalent(matmul(false), matmul(true));
}

TEST(OpsFused, ConvTransposeWithActivation) {
  Act hs{"HardSwish", {}};
  auto g = [&](bool fused) {
    GraphBuilder b(14);
    b.input("x", {1, 3, 4, 4}).constant("w", {3, 2, 3, 3}).constant("b", {2});
    auto& n = b.node("ConvTranspose", {"x", "w", "b"}, {fused ? "y" : "c"});
    n.attrs["strides"] = GraphBuilder::ints({2, 2});
    if (fused)
      set_epilogue(n, hs);
    else
      onnx_activation(b, hs, "c", "y");
    return b.output("y").build();
  };
  auto fused = g(true);
  EXPECT_EQ(fused->values[static_cast<size_t>(fused->outputs[0])].type.dims, (Shape{1, 2, 9, 9}));
  expect_equivalent(g(false), fused);
}

TEST(OpsFused, NoEpilogueIsTheBaseOp) {
  // Without activation or residual a lithe node is the ONNX op, integers included.
  GraphBuilder b(13);
  b.input("a", {2, 3}, DType::kInt32).input("m", {3, 2}, DType::kInt32);
  b.node("MatMul", {"a", "m"}, {"y"}).domain = "lithe";
  auto g = b.output("y").build();
  EXPECT_EQ(g->values[static_cast<size_t>(g->outputs[0])].type.dtype, DType::kInt32);
  auto outs = test::run_graph(g, test::seeded_inputs(*g));
  EXPECT_EQ(outs[0].shape(), (Shape{2, 2}));
}

TEST(OpsFused, RejectsBadEpilogues) {
  auto bad = [](const std::function<void(GraphBuilder&)>& make) {
    GraphBuilder b(13);
    make(b);
    b.output("y");
    EXPECT_THROW(b.build(), Error);
  };
  // Unknown activation name.
  bad([](GraphBuilder& b) {
    b.input("a", {2, 3}).constant("m", {3, 4});
    set_epilogue(b.node("MatMul", {"a", "m"}, {"y"}), {"Gelu", {}});
  });
  // Clip needs two params.
  bad([](GraphBuilder& b) {
    b.input("a", {2, 3}).constant("m", {3, 4});
    set_epilogue(b.node("MatMul", {"a", "m"}, {"y"}), {"Clip", {0.f}});
  });
  // Relu takes none.
  bad([](GraphBuilder& b) {
    b.input("a", {2, 3}).constant("m", {3, 4});
    set_epilogue(b.node("MatMul", {"a", "m"}, {"y"}), {"Relu", {1.f}});
  });
  // Residual of another shape (no broadcasting).
  bad([](GraphBuilder& b) {
    b.input("a", {2, 3}).constant("m", {3, 4}).input("z", {1, 4});
    set_epilogue(b.node("MatMul", {"a", "m", "z"}, {"y"}), {"Relu", {}});
  });
  // Residual of another dtype.
  bad([](GraphBuilder& b) {
    b.input("a", {2, 3}).constant("m", {3, 4}).input("z", {2, 4}, DType::kFloat64);
    set_epilogue(b.node("MatMul", {"a", "m", "z"}, {"y"}), {"", {}});
  });
  // Too many inputs.
  bad([](GraphBuilder& b) {
    b.input("a", {2, 3}).constant("m", {3, 4}).input("z", {2, 4});
    set_epilogue(b.node("MatMul", {"a", "m", "z", "z"}, {"y"}), {"", {}});
  });
  // An activation on an integer output.
  bad([](GraphBuilder& b) {
    b.input("a", {2, 3}, DType::kInt32).input("m", {3, 4}, DType::kInt32);
    set_epilogue(b.node("MatMul", {"a", "m"}, {"y"}), {"Relu", {}});
  });
}

TEST(OpsFused, EpilogueMatchesFormulas) {
  using namespace ops::fused;
  std::vector<float> y = {-2.f, -0.5f, 0.f, 0.5f, 3.f, 7.f};
  const std::vector<float> z = {1.f, 1.f, 1.f, 1.f, 1.f, -10.f};
  Epilogue e;
  ASSERT_EQ(parse_epilogue("Clip", {0.f, 2.f}, {}, &e), "");
  apply_epilogue(y.data(), static_cast<int64_t>(y.size()), z.data(), e);
  EXPECT_EQ(y, (std::vector<float>{0.f, 0.5f, 1.f, 1.5f, 2.f, 0.f}));
  ASSERT_EQ(parse_epilogue("HardSigmoid", {}, {}, &e), "");  // ONNX defaults
  EXPECT_FLOAT_EQ(e.p0, 0.2f);
  EXPECT_FLOAT_EQ(e.p1, 0.5f);
  ASSERT_EQ(parse_epilogue("SiLU", {}, {}, &e), "");
  EXPECT_NEAR(apply_activation(1.0f, e), 1.0f / (1.0f + std::exp(-1.0f)), 1e-7);
  EXPECT_NE(parse_epilogue("Clip", {0.f, std::nanf("")}, {}, &e), "");
  EXPECT_NE(parse_epilogue("Swish", {}, {}, &e), "");
  // The affine map after the activation: Relu(y + z) * 2 - 0.75, each step rounded.
  y = {-2.f, -0.5f, 0.f, 0.5f, 3.f, 7.f};
  ASSERT_EQ(parse_epilogue("Relu", {}, {2.f, -0.75f}, &e), "");
  EXPECT_TRUE(e.affine);
  apply_epilogue(y.data(), static_cast<int64_t>(y.size()), z.data(), e);
  EXPECT_EQ(y, (std::vector<float>{-0.75f, 0.25f, 1.25f, 2.25f, 7.25f, -0.75f}));
  EXPECT_EQ(apply_activation(-1.0f, e), -0.75f);
  EXPECT_NE(parse_epilogue("Relu", {}, {2.f}, &e), "");
  EXPECT_NE(parse_epilogue("", {}, {2.f, 1.f}, &e), "");  // an affine map needs an activation
  EXPECT_NE(parse_epilogue("Relu", {}, {std::nanf(""), 1.f}, &e), "");
  EXPECT_NE(parse_epilogue("Relu", {}, {1.f, INFINITY}, &e), "");
  EXPECT_EQ(residual_index("Conv"), 3);
  EXPECT_EQ(residual_index("MatMul"), 2);
  EXPECT_EQ(residual_index("Add"), -1);
}
