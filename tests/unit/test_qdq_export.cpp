// IR -> ONNX export (frontend/onnx/exporter.cpp) and `--emit-qdq-onnx` (builder/qdq_export.cpp):
// optimized graphs written as ONNX, read back and run by the reference executor give the
// same outputs; the QDQ model of an INT8 build holds lithe's scales and codes, runs within
// rounding of the INT8 engine, and emitting it leaves the engine unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "builder/build.hpp"
#include "builder/qdq_export.hpp"
#include "engine/engine.hpp"
#include "frontend/onnx/exporter.hpp"
#include "frontend/onnx/importer.hpp"
#include "graph_test_util.hpp"
#include "lithe/lithe.hpp"
#include "model_builder.hpp"

namespace lithe {
namespace {

using test::cosine;
using test::count_ops;
using test::GraphBuilder;

int count_domain(const ir::Graph& g, const std::string& domain) {
  int n = 0;
  for (const ir::Node& node : g.nodes) n += node.domain == domain;
  return n;
}

// conv-bn-relu, a residual conv + add + relu, a depthwise conv + relu into a 1x1 conv (a
// pair cross-layer equalization takes), max pool, global pool, flatten, gemm, clip; and a
// second head with the other fused activations.
std::shared_ptr<ir::Graph> small_cnn(int opset = 14) {
  GraphBuilder b(opset);
  b.input("x", {1, 3, 10, 10});
  b.constant("w1", {8, 3, 3, 3}).constant("b1", {8});
  b.constant("bn_s", {8}, {1.5f, 0.5f, 1.f, 2.f}).constant("bn_b", {8}, {0.1f, -0.2f});
  b.constant("bn_m", {8}, {0.f, 0.3f}).constant("bn_v", {8}, {1.f, 2.f});
  b.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1").attrs["pads"] =
      GraphBuilder::ints({1, 1, 1, 1});
  b.node("BatchNormalization", {"c1", "bn_s", "bn_b", "bn_m", "bn_v"}, {"n1"}, "bn1");
  b.node("Relu", {"n1"}, {"r1"}, "relu1");
  b.constant("w2", {8, 8, 3, 3}).constant("b2", {8});
  b.node("Conv", {"r1", "w2", "b2"}, {"c2"}, "conv2").attrs["pads"] =
      GraphBuilder::ints({1, 1, 1, 1});
  b.node("Add", {"c2", "r1"}, {"s2"}, "add2");
  b.node("Relu", {"s2"}, {"r2"}, "relu2");
  b.constant("wd", {8, 1, 3, 3}).constant("bd", {8});
  auto& dw = b.node("Conv", {"r2", "wd", "bd"}, {"cd"}, "dwconv");
  dw.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  dw.attrs["group"] = GraphBuilder::i(8);
  b.node("Relu", {"cd"}, {"rd"}, "relud");
  b.constant("wp", {12, 8, 1, 1}).constant("bp", {12});
  b.node("Conv", {"rd", "wp", "bp"}, {"cp"}, "pwconv");
  b.node("Relu", {"cp"}, {"rp"}, "relup");
  auto& mp = b.node("MaxPool", {"rp"}, {"m"}, "pool");
  mp.attrs["kernel_shape"] = GraphBuilder::ints({2, 2});
  mp.attrs["strides"] = GraphBuilder::ints({2, 2});
  b.node("GlobalAveragePool", {"m"}, {"gp"}, "gap");
  b.node("Flatten", {"gp"}, {"f"}, "flatten");
  b.constant("wf", {5, 12}).constant("bf", {5});
  b.node("Gemm", {"f", "wf", "bf"}, {"gf"}, "fc").attrs["transB"] = GraphBuilder::i(1);
  b.constant("lo", {}, {-0.5f}).constant("hi", {}, {0.75f});
  b.node("Clip", {"gf", "lo", "hi"}, {"y"}, "clip");
  b.output("y");
  // MatMul by a constant (INT8 like Gemm, B's output axis 1), with a Relu.
  b.constant("wm", {12, 6});
  b.node("MatMul", {"f", "wm"}, {"mm"}, "matmul");
  b.node("Relu", {"mm"}, {"m2"}, "relum");
  b.output("m2");
  // Second head: every other activation the fusion knows, on 1x1 convs of r1.
  const char* acts[] = {"LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh"};
  std::vector<std::string> heads;
  for (const char* a : acts) {
    const std::string n = std::string(a);
    b.constant("w_" + n, {4, 8, 1, 1});
    b.node("Conv", {"r1", "w_" + n}, {"c_" + n}, "conv_" + n);
    b.node(a, {"c_" + n}, {"a_" + n}, "act_" + n);
    heads.push_back("a_" + n);
  }
  b.constant("w_silu", {4, 8, 1, 1});
  b.node("Conv", {"r1", "w_silu"}, {"c_silu"}, "conv_silu");
  b.node("Sigmoid", {"c_silu"}, {"g_silu"}, "sig_silu");
  b.node("Mul", {"c_silu", "g_silu"}, {"a_silu"}, "mul_silu");
  heads.push_back("a_silu");
  // HardSwish then a learnable affine block (scalar Mul, scalar Add), as PP-LCNet writes it.
  b.constant("w_lab", {4, 8, 1, 1}).constant("s_lab", {}, {0.8f}).constant("t_lab", {}, {-0.1f});
  b.node("Conv", {"r1", "w_lab"}, {"c_lab"}, "conv_lab");
  b.node("HardSwish", {"c_lab"}, {"h_lab"}, "act_lab");
  b.node("Mul", {"h_lab", "s_lab"}, {"m_lab"}, "scale_lab");
  b.node("Add", {"m_lab", "t_lab"}, {"a_lab"}, "shift_lab");
  heads.push_back("a_lab");
  b.node("Concat", heads, {"z"}, "cat").attrs["axis"] = GraphBuilder::i(1);
  b.output("z");
  return b.build();
}

void expect_close(const std::vector<Tensor>& want, const std::vector<Tensor>& got, double tol) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_EQ(want[k].shape(), got[k].shape()) << "output " << k;
    double worst = 0;
    for (int64_t i = 0; i < want[k].numel(); ++i)
      worst = std::max(worst, std::fabs(want[k].at_double(i) - got[k].at_double(i)));
    EXPECT_LE(worst, tol) << "output " << k;
  }
}

// Optimizes `g` without the layout pass, exports, reads back; both run alike.
void check_round_trip(std::shared_ptr<ir::Graph> g, int min_fused) {
  const auto ins = test::seeded_inputs(*g, 5u);
  const auto want = test::run_graph(g, ins);
  passes::PipelineOptions po;
  po.disabled = {"layout-nhwc"};
  passes::run_pipeline(*g, po);
  EXPECT_GE(count_domain(*g, "lithe"), min_fused);
  std::string bytes;
  ASSERT_NO_THROW(bytes = onnx::export_model_bytes(*g));
  std::shared_ptr<ir::Graph> back;
  ASSERT_NO_THROW(back = onnx::import_model_bytes(bytes, "", "exported"));
  EXPECT_EQ(count_domain(*back, "lithe"), 0);  // standard ONNX only
  ASSERT_EQ(back->outputs.size(), g->outputs.size());
  for (size_t k = 0; k < g->outputs.size(); ++k)
    EXPECT_EQ(back->values[static_cast<size_t>(back->outputs[k])].name,
              g->values[static_cast<size_t>(g->outputs[k])].name);
  // The optimized graph and its export compute the same thing as the source model (the
  // fusions round as the unfused ops do).
  expect_close(want, test::run_graph(back, ins), 1e-5);
  expect_close(test::run_graph(g, ins), test::run_graph(back, ins), 0);
}

TEST(OnnxExport, FusedGraphsRoundTrip) {
  // conv+relu (bn folded), conv+add+relu, depthwise, gemm+clip, matmul+relu, six activations,
  // HardSwish with an affine map.
  check_round_trip(small_cnn(), 11);
  for (const char* f : {"examples/fashion_mnist_cnn.onnx", "examples/tiny_cnn.onnx"})
    check_round_trip(onnx::import_model(std::string(LITHE_SOURCE_DIR) + "/" + f), 1);
}

TEST(OnnxExport, HardSwishBeforeOpset14IsExpanded) {
  // Opset 13 has no HardSwish: x * HardSigmoid(x; 1/6, 1/2), which fuse_activation reads back.
  GraphBuilder b(13);
  b.input("x", {1, 2, 4, 4}).constant("w", {3, 2, 1, 1});
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  auto& hs = b.node("HardSigmoid", {"c"}, {"h"}, "hsig");
  hs.attrs["alpha"] = GraphBuilder::f(1.f / 6.f);
  hs.attrs["beta"] = GraphBuilder::f(0.5f);
  b.node("Mul", {"c", "h"}, {"y"}, "mul");
  b.output("y");
  auto g = b.build();
  const auto ins = test::seeded_inputs(*g, 2u);
  const auto want = test::run_graph(g, ins);
  passes::PipelineOptions po;
  po.disabled = {"layout-nhwc"};
  passes::run_pipeline(*g, po);
  ASSERT_EQ(count_ops(*g, "Conv", "lithe"), 1);
  auto back = onnx::import_model_bytes(onnx::export_model_bytes(*g), "", "exported");
  EXPECT_EQ(count_ops(*back, "HardSigmoid"), 1);
  EXPECT_EQ(count_ops(*back, "Mul"), 1);
  expect_close(want, test::run_graph(back, ins), 1e-6);
}

TEST(OnnxExport, RefusesWhatOnnxCannotHold) {
  // After the layout pass: lithe.ConvNhwc has no ONNX form.
  auto g = small_cnn();
  passes::run_pipeline(*g);
  ASSERT_GT(count_ops(*g, "ConvNhwc", "lithe"), 0);
  try {
    onnx::export_model_bytes(*g);
    ADD_FAILURE() << "exported a ConvNhwc";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ConvNhwc"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("node '"), std::string::npos) << e.what();
  }
  // A node with a subgraph.
  GraphBuilder b;
  b.input("x", {2});
  auto& n = b.node("Identity", {"x"}, {"y"}, "has_body");
  n.attrs["body"].kind = ir::Attribute::Kind::kGraph;
  n.attrs["body"].g = std::make_shared<ir::Graph>();
  b.output("y");
  try {
    onnx::export_model_bytes(*b.build());
    ADD_FAILURE() << "exported a subgraph";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has_body"), std::string::npos) << e.what();
  }
}

// ---- --emit-qdq-onnx

build::BuildOptions int8_options(const std::string& emit) {
  build::BuildOptions o;
  o.precision = "int8";
  o.emit_qdq_onnx = emit;
  o.calib.load = [](const ir::Graph& g) {
    std::vector<std::vector<Tensor>> s;
    for (unsigned i = 0; i < 6; ++i) s.push_back(test::seeded_inputs(g, 40u + i));
    return s;
  };
  return o;
}

std::vector<Tensor> run_engine(const std::string& path, const ir::Graph& g,
                               const std::vector<Tensor>& ins) {
  auto e = Engine::load(path);
  auto c = e->create_context();
  for (size_t i = 0; i < ins.size(); ++i)
    c->set_input(g.values[static_cast<size_t>(g.inputs[i])].name, ins[i]);
  c->run();
  std::vector<Tensor> out;
  for (size_t k = 0; k < g.outputs.size(); ++k) out.push_back(c->output(k).clone());
  return out;
}

TEST(QdqExport, EmittedModelIsWhatTheInt8EngineComputes) {
  const auto dir = test::temp_dir("qdq_export");
  const std::string model = (dir / "m.onnx").string(), qdq = (dir / "m.qdq.onnx").string();
  auto src = small_cnn();
  onnx::export_model(*src, model);
  const build::BuildResult with = build::build_model(model, int8_options(qdq));
  const build::BuildResult without = build::build_model(model, int8_options(""));
  // The engine does not depend on the export.
  EXPECT_EQ(engine::serialize(with.contents), engine::serialize(without.contents));
  engine::write_engine((dir / "m.lithe").string(), with.contents);
  // The depthwise -> 1x1 pair was equalized in the engine, so the export had to follow it.
  EXPECT_GE(nlohmann::json::parse(with.contents.report_json)["int8"]["equalized_pairs"].get<int>(),
            1);
  ASSERT_TRUE(std::filesystem::exists(qdq));

  auto q = onnx::import_model(qdq);
  EXPECT_GE(q->opsets.at(""), 13);
  // Convs (conv1, conv2, dwconv, pwconv, six heads) and the Gemm: weights and biases each
  // through a per-channel DequantizeLinear; no float weight is left.
  int weight_dq = 0, bias_dq = 0;
  for (const ir::Node& n : q->nodes) {
    if (n.op_type != "DequantizeLinear") continue;
    const ir::Value& in = q->values[static_cast<size_t>(n.inputs[0])];
    if (!in.constant) continue;
    const int64_t axis = n.attrs.count("axis") ? n.attrs.at("axis").i : 1;
    const Tensor& codes = *in.constant;
    const Tensor& scale = *q->values[static_cast<size_t>(n.inputs[1])].constant;
    if (codes.dtype() == DType::kInt8) {
      ++weight_dq;
      // Symmetric per output channel with the range's max at code +-127 (minmax scales).
      const int64_t channels = codes.shape()[static_cast<size_t>(axis)];
      ASSERT_EQ(scale.numel(), channels) << in.name;
      std::vector<int> peak(static_cast<size_t>(channels), 0);
      const int64_t inner = axis == 0 ? codes.numel() / channels : 1;
      for (int64_t i = 0; i < codes.numel(); ++i) {
        const int64_t c = axis == 0 ? i / inner : i % channels;
        peak[static_cast<size_t>(c)] =
            std::max(peak[static_cast<size_t>(c)], std::abs(int{codes.data<int8_t>()[i]}));
      }
      for (int p : peak) EXPECT_EQ(p, 127) << in.name;
    } else {
      ASSERT_EQ(codes.dtype(), DType::kInt32) << in.name;
      ++bias_dq;
    }
  }
  // One per INT8 conv / gemm of the engine (sibling aggregation may have merged head convs).
  EXPECT_EQ(weight_dq, count_ops(*with.contents.graph, "QConvNhwc", "lithe"));
  EXPECT_GE(weight_dq, 5);
  EXPECT_GE(bias_dq, 5);  // conv1 (with the folded BatchNorm), conv2, dwconv, pwconv, fc
  for (const ir::Value& v : q->values)
    if (v.constant && v.constant->dtype() == DType::kFloat32) {
      EXPECT_LE(v.constant->numel(), 12) << v.name;
    }

  // Activations: one QuantizeLinear -> DequantizeLinear per recorded value, uint8 per tensor,
  // with the scale and zero point of lithe's engine (its QuantizeLinear constants).
  const ir::Graph& eg = *with.contents.graph;
  int checked = 0;
  for (const ir::Node& n : q->nodes) {
    if (n.op_type != "QuantizeLinear") continue;
    const std::string x = q->values[static_cast<size_t>(n.inputs[0])].name;
    const Tensor& s = *q->values[static_cast<size_t>(n.inputs[1])].constant;
    const Tensor& z = *q->values[static_cast<size_t>(n.inputs[2])].constant;
    ASSERT_EQ(s.numel(), 1);
    ASSERT_EQ(z.dtype(), DType::kUInt8);
    // The engine names its constants "<value>[_nhwc]/scale" (an output keeps its name).
    for (const std::string& en : {x, x + "_nhwc"}) {
      const int ev = eg.find_value(en + "/scale");
      if (ev < 0) continue;
      EXPECT_EQ(eg.values[static_cast<size_t>(ev)].constant->data<float>()[0], s.data<float>()[0])
          << x;
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);
  // An output the engine computes in INT8 (its scale constant exists) comes out of a
  // DequantizeLinear in the QDQ model too (z: the INT8 Concat of the heads).
  int int8_outputs = 0;
  for (int o : q->outputs) {
    const std::string& name = q->values[static_cast<size_t>(o)].name;
    if (eg.find_value(name + "/scale") < 0 && eg.find_value(name + "_nhwc/scale") < 0) continue;
    ++int8_outputs;
    const int p = q->values[static_cast<size_t>(o)].producer;
    ASSERT_GE(p, 0);
    EXPECT_EQ(q->nodes[static_cast<size_t>(p)].op_type, "DequantizeLinear") << name;
  }
  EXPECT_EQ(int8_outputs, 3);  // y (Gemm + Clip), m2 (MatMul + Relu) and z

  // Run: the QDQ model (reference executor) against the INT8 engine on unseen inputs.
  for (unsigned seed : {7u, 8u}) {
    const auto ins = test::seeded_inputs(*src, seed);
    const auto fp32 = test::run_graph(src, ins);
    const auto engine_out = run_engine((dir / "m.lithe").string(), *src, ins);
    const auto qdq_out = test::run_graph(q, ins);
    for (size_t k = 0; k < fp32.size(); ++k) {
      SCOPED_TRACE("output " + std::to_string(k) + " seed " + std::to_string(seed));
      EXPECT_GE(cosine(engine_out[k], qdq_out[k]), 0.9999);
      EXPECT_GE(cosine(fp32[k], qdq_out[k]), 0.99);
      // Both are dequantized uint8 codes of the same scale: at most one code apart
      // (requantization rounding), most identical.
      const int ov = eg.find_value(eg.values[static_cast<size_t>(eg.outputs[k])].name + "/scale");
      const float step =
          ov >= 0 ? eg.values[static_cast<size_t>(ov)].constant->data<float>()[0] : 0.f;
      double worst = 0;
      for (int64_t i = 0; i < qdq_out[k].numel(); ++i)
        worst = std::max(worst, std::fabs(engine_out[k].at_double(i) - qdq_out[k].at_double(i)));
      if (step > 0) {
        EXPECT_LE(worst, 1.01 * step);
      }
    }
  }
  std::filesystem::remove_all(dir);
}

// Opset 11 models are written as opset 13 (per-axis DequantizeLinear): Split's sizes become
// an input, Softmax (last axis only) gets its axis spelled out.
TEST(QdqExport, Opset11IsWrittenAsOpset13) {
  GraphBuilder b(11);
  b.input("x", {1, 4, 6, 6}).constant("w0", {8, 4, 1, 1}).constant("b0", {8});
  b.node("Conv", {"x", "w0", "b0"}, {"c0"}, "conv0");
  b.node("Relu", {"c0"}, {"r0"}, "relu0");
  auto& sp = b.node("Split", {"r0"}, {"sa", "sb"}, "split");
  sp.attrs["axis"] = GraphBuilder::i(1);
  sp.attrs["split"] = GraphBuilder::ints({3, 5});
  b.constant("wa", {4, 3, 3, 3}).constant("wb", {4, 5, 1, 1});
  b.node("Conv", {"sa", "wa"}, {"ca"}, "conva").attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  b.node("Conv", {"sb", "wb"}, {"cb"}, "convb");
  b.node("Add", {"ca", "cb"}, {"s"}, "add");
  b.node("Relu", {"s"}, {"r"}, "relu");
  b.node("GlobalAveragePool", {"r"}, {"gp"}, "gap");
  b.node("Flatten", {"gp"}, {"f"}, "flatten");
  b.constant("wf", {4, 3}).constant("bf", {3});
  b.node("Gemm", {"f", "wf", "bf"}, {"g"}, "fc");
  b.node("Softmax", {"g"}, {"y"}, "softmax");
  b.output("y");
  auto src = b.build();
  const auto dir = test::temp_dir("qdq_export_opset11");
  const std::string model = (dir / "m.onnx").string(), qdq = (dir / "m.qdq.onnx").string();
  onnx::export_model(*src, model);
  const build::BuildResult r = build::build_model(model, int8_options(qdq));
  engine::write_engine((dir / "m.lithe").string(), r.contents);
  auto q = onnx::import_model(qdq);
  EXPECT_EQ(q->opsets.at(""), 13);
  for (const ir::Node& n : q->nodes) {
    if (n.op_type == "Split") {
      EXPECT_FALSE(n.attrs.count("split"));
      ASSERT_EQ(n.inputs.size(), 2u);
      const Tensor& sizes = *q->values[static_cast<size_t>(n.inputs[1])].constant;
      EXPECT_EQ(sizes.to_int64_vector(), (std::vector<int64_t>{3, 5}));
    }
    if (n.op_type == "Softmax") {
      EXPECT_EQ(n.attrs.at("axis").i, 1);
    }
  }
  EXPECT_EQ(count_ops(*q, "Split"), 1);
  EXPECT_GE(count_ops(*q, "QuantizeLinear"), 4);
  for (unsigned seed : {3u, 4u}) {
    const auto ins = test::seeded_inputs(*src, seed);
    const auto engine_out = run_engine((dir / "m.lithe").string(), *src, ins);
    const auto qdq_out = test::run_graph(q, ins);
    EXPECT_GE(cosine(engine_out[0], qdq_out[0]), 0.9999);
    EXPECT_GE(cosine(test::run_graph(src, ins)[0], qdq_out[0]), 0.99);
  }
  std::filesystem::remove_all(dir);
}

// Opset 9 (PP-OCR cls / rec): Pad, Clip and Slice take their attributes as inputs in the
// opset-13 file. The input is NHWC and transposed to NCHW, as in BlazeFace: the channels-last
// engine's first conv reads the graph input itself, the exported one its transpose.
TEST(QdqExport, Opset9AndTransposedInput) {
  GraphBuilder b(9);
  b.input("x", {1, 6, 6, 3});
  b.node("Transpose", {"x"}, {"xt"}, "to_nchw").attrs["perm"] = GraphBuilder::ints({0, 3, 1, 2});
  b.constant("w0", {8, 3, 3, 3}).constant("b0", {8});
  b.node("Conv", {"xt", "w0", "b0"}, {"c0"}, "conv0").attrs["pads"] =
      GraphBuilder::ints({1, 1, 1, 1});
  auto& clip = b.node("Clip", {"c0"}, {"r0"}, "clip0");
  clip.attrs["min"] = GraphBuilder::f(0.f);
  clip.attrs["max"] = GraphBuilder::f(6.f);
  b.constant("w1", {4, 8, 1, 1});
  b.node("Conv", {"r0", "w1"}, {"c1"}, "conv1");
  auto& pad = b.node("Pad", {"c1"}, {"cp"}, "pad");
  pad.attrs["pads"] = GraphBuilder::ints({0, 0, 1, 1, 0, 0, 1, 1});
  pad.attrs["value"] = GraphBuilder::f(0.25f);
  auto& sl = b.node("Slice", {"cp"}, {"y"}, "slice");
  sl.attrs["starts"] = GraphBuilder::ints({1});
  sl.attrs["ends"] = GraphBuilder::ints({5});
  sl.attrs["axes"] = GraphBuilder::ints({2});
  b.output("y");
  auto src = b.build();
  const auto dir = test::temp_dir("qdq_export_opset9");
  const std::string model = (dir / "m.onnx").string(), qdq = (dir / "m.qdq.onnx").string();
  onnx::export_model(*src, model);
  const build::BuildResult r = build::build_model(model, int8_options(qdq));
  engine::write_engine((dir / "m.lithe").string(), r.contents);
  EXPECT_GE(count_ops(*r.contents.graph, "QConvNhwc", "lithe"), 2);
  auto q = onnx::import_model(qdq);
  EXPECT_EQ(q->opsets.at(""), 13);
  for (const ir::Node& n : q->nodes) {
    if (n.op_type == "Pad" || n.op_type == "Slice" || n.op_type == "Clip") {
      EXPECT_TRUE(n.attrs.empty() || (n.attrs.size() == 1 && n.attrs.count("mode"))) << n.name;
    }
    if (n.op_type == "Slice") {
      ASSERT_GE(n.inputs.size(), 4u);
      EXPECT_EQ(q->values[static_cast<size_t>(n.inputs[1])].constant->to_int64_vector(),
                (std::vector<int64_t>{1}));
    }
  }
  // The first conv's input: through QuantizeLinear -> DequantizeLinear.
  bool conv0_quantized = false;
  for (const ir::Node& n : q->nodes)
    if (n.name == "conv0") {
      const int p = q->values[static_cast<size_t>(n.inputs[0])].producer;
      conv0_quantized = p >= 0 && q->nodes[static_cast<size_t>(p)].op_type == "DequantizeLinear";
    }
  EXPECT_TRUE(conv0_quantized);
  for (unsigned seed : {3u, 4u}) {
    const auto ins = test::seeded_inputs(*src, seed);
    const auto engine_out = run_engine((dir / "m.lithe").string(), *src, ins);
    const auto qdq_out = test::run_graph(q, ins);
    EXPECT_GE(cosine(engine_out[0], qdq_out[0]), 0.9999);
    EXPECT_GE(cosine(test::run_graph(src, ins)[0], qdq_out[0]), 0.99);
  }
  std::filesystem::remove_all(dir);
}

// ConvTransposes with stride == kernel run in the engine as a 1x1 conv and a pixel shuffle
// (layout-nhwc); the export rewrites them alike (Conv + DepthToSpace for square blocks,
// Reshape-Transpose-Reshape for 2x1) and runs as the INT8 engine does.
TEST(QdqExport, ShuffleConvTransposes) {
  GraphBuilder b(13);
  b.input("x", {1, 3, 6, 5});
  b.constant("w0", {8, 3, 3, 3}).constant("b0", {8});
  b.node("Conv", {"x", "w0", "b0"}, {"c0"}, "conv0").attrs["pads"] =
      GraphBuilder::ints({1, 1, 1, 1});
  b.node("Relu", {"c0"}, {"r0"}, "relu0");
  b.constant("wd", {8, 6, 2, 2}).constant("bd", {6});
  b.node("ConvTranspose", {"r0", "wd", "bd"}, {"d"}, "deconv").attrs["strides"] =
      GraphBuilder::ints({2, 2});
  b.node("Relu", {"d"}, {"rd"}, "relud");
  b.constant("we", {6, 2, 2, 1});
  b.node("ConvTranspose", {"rd", "we"}, {"e"}, "deconv21").attrs["strides"] =
      GraphBuilder::ints({2, 1});
  b.node("Sigmoid", {"e"}, {"y"}, "sigmoid");
  b.output("y");
  auto src = b.build();
  const auto dir = test::temp_dir("qdq_export_deconv");
  const std::string model = (dir / "m.onnx").string(), qdq = (dir / "m.qdq.onnx").string();
  onnx::export_model(*src, model);
  const build::BuildResult r = build::build_model(model, int8_options(qdq));
  EXPECT_EQ(count_ops(*r.contents.graph, "DepthToSpaceNhwc", "lithe"), 2);
  EXPECT_EQ(count_ops(*r.contents.graph, "QConvNhwc", "lithe"), 3);
  engine::write_engine((dir / "m.lithe").string(), r.contents);
  auto q = onnx::import_model(qdq);
  EXPECT_EQ(count_ops(*q, "ConvTranspose"), 0);
  EXPECT_EQ(count_ops(*q, "DepthToSpace"), 1);
  EXPECT_EQ(count_ops(*q, "Conv"), 3);
  for (unsigned seed : {3u, 4u}) {
    const auto ins = test::seeded_inputs(*src, seed);
    const auto engine_out = run_engine((dir / "m.lithe").string(), *src, ins);
    const auto qdq_out = test::run_graph(q, ins);
    EXPECT_GE(cosine(engine_out[0], qdq_out[0]), 0.9999);
    EXPECT_GE(cosine(test::run_graph(src, ins)[0], qdq_out[0]), 0.99);
  }
  std::filesystem::remove_all(dir);
}

TEST(QdqExport, BadUse) {
  const auto dir = test::temp_dir("qdq_export_bad");
  const std::string model = (dir / "m.onnx").string();
  onnx::export_model(*small_cnn(), model);
  build::BuildOptions o;
  o.emit_qdq_onnx = (dir / "x.onnx").string();
  try {
    build::build_model(model, o);
    ADD_FAILURE() << "fp32 build with --emit-qdq-onnx";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--precision int8"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(o.emit_qdq_onnx));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lithe
