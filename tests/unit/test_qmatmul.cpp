// lithe.QMatMulU8, the INT8 MatMul of two activations (ops/qnhwc.cpp, quant/qmatmul.hpp,
// runtime/fast_qmatmul.cpp): the reference op against exact integer sums and a double
// multiplier, the q8-matmul step bit for bit against the reference at every kernel level and
// at 1-4 threads (odd M / N / K, broadcast batches, both zero points away from 0 and 128),
// the quantizer on a small attention block, and the --emit-qdq-onnx round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "builder/build.hpp"
#include "builder/quantize.hpp"
#include "fast_test_util.hpp"
#include "frontend/onnx/exporter.hpp"
#include "frontend/onnx/importer.hpp"
#include "model_builder.hpp"
#include "ops/util.hpp"
#include "quant/qmatmul.hpp"

namespace lithe {
namespace {

using test::cosine;
using test::count_any_domain;
using test::GraphBuilder;

Tensor scalar_f32(float v) {
  Tensor t(DType::kFloat32, Shape{});
  t.data<float>()[0] = v;
  return t;
}
Tensor scalar_u8(int v) {
  Tensor t(DType::kUInt8, Shape{});
  t.data<uint8_t>()[0] = static_cast<uint8_t>(v);
  return t;
}

struct Case {
  Shape a, b;
  int za, zb, zy;
};

// Float inputs fa, fb in [-1, 1) quantized (QuantizeLinear at 1/120 and the case's zero
// points: codes spread over most of 0..255) into a, b; y = QMatMulU8(a, b) with y_scale
// putting typical sums some 60 codes from zy.
std::shared_ptr<ir::Graph> qmatmul_graph(const Case& c) {
  GraphBuilder b;
  b.input("fa", c.a).input("fb", c.b);
  const float s = 1.f / 120.f, sy = 0.0045f * std::sqrt(static_cast<float>(c.a.back()));
  b.constant_tensor("sa", scalar_f32(s)).constant_tensor("za", scalar_u8(c.za));
  b.constant_tensor("sb", scalar_f32(s)).constant_tensor("zb", scalar_u8(c.zb));
  b.constant_tensor("sy", scalar_f32(sy)).constant_tensor("zy", scalar_u8(c.zy));
  b.node("QuantizeLinear", {"fa", "sa", "za"}, {"a"});
  b.node("QuantizeLinear", {"fb", "sb", "zb"}, {"b"});
  b.lithe_node("QMatMulU8", {"a", "sa", "za", "b", "sb", "zb", "sy", "zy"}, {"y"});
  b.output("y");
  return b.build();
}

const Case kCases[] = {
    {{2, 1, 5, 7}, {3, 7, 9}, 131, 97, 120},    // both batches broadcast
    {{1, 13, 33}, {33, 17}, 3, 250, 60},         // B 2-D: one B' for every batch
    {{4, 6, 40}, {4, 40, 20}, 200, 17, 128},     // K a multiple of 4: A read in place
    {{2, 37, 19}, {2, 19, 70}, 90, 160, 5},      // N over four panels
    {{3, 1, 1}, {1, 1, 33}, 128, 128, 128},      // K = 1, M = 1
    {{1, 2, 50, 15}, {1, 2, 15, 50}, 77, 141, 100},  // PP-OCR-like heads
};

// The reference against the exact integer sum requantized in double: equal, except near a
// rounding tie (within |v| * 2^-(kMultiplierBits - 1) of it: the fixed-point multiplier is
// within a relative 2^-kMultiplierBits of the double one), where one code either way is
// allowed.
TEST(QMatMul, ReferenceMatchesIntegerSumAndDoubleScale) {
  for (const Case& c : kCases) {
    SCOPED_TRACE("A " + shape_str(c.a) + " B " + shape_str(c.b));
    auto g = qmatmul_graph(c);
    auto probe = std::make_shared<ir::Graph>(*g);
    probe->outputs = {g->find_value("a"), g->find_value("b"), g->find_value("y")};
    const auto outs = test::run_graph(probe, test::seeded_inputs(*g, 3u));
    const Tensor &ta = outs[0], &tb = outs[1], &ty = outs[2];
    const int64_t m = c.a[c.a.size() - 2], k = c.a.back(), n = c.b.back();
    const Shape& ys = ty.shape();
    ASSERT_EQ(ys[ys.size() - 2], m);
    ASSERT_EQ(ys.back(), n);
    const Shape batch(ys.begin(), ys.end() - 2);
    const auto sa = ops::broadcast_strides(Shape(c.a.begin(), c.a.end() - 2), batch);
    const auto sb = ops::broadcast_strides(Shape(c.b.begin(), c.b.end() - 2), batch);
    // The op's multiplier in double, from the float scales the graph holds.
    const float fs = 1.f / 120.f, fy = 0.0045f * std::sqrt(static_cast<float>(k));
    const double scale = static_cast<double>(fs) * static_cast<double>(fs) / static_cast<double>(fy);
    int64_t ties = 0, inside = 0, total = 0;
    ops::for_each_broadcast<2>(batch, {sa, sb}, [&](int64_t bi, int64_t ao, int64_t bo) {
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          int64_t acc = 0;
          for (int64_t kk = 0; kk < k; ++kk)
            acc += (int64_t{ta.data<uint8_t>()[ao * m * k + i * k + kk]} - c.za) *
                   (int64_t{tb.data<uint8_t>()[bo * k * n + kk * n + j]} - c.zb);
          const double v = static_cast<double>(acc) * scale;
          const double want = std::clamp(std::nearbyint(v) + c.zy, 0.0, 255.0);
          const int got = ty.data<uint8_t>()[bi * m * n + i * n + j];
          const bool near_tie =
              std::fabs(std::fabs(v - std::floor(v)) - 0.5) <=
              std::fabs(v) * std::ldexp(1.0, 1 - quant::kMultiplierBits) + 1e-12;
          ++total;
          inside += want > 0.0 && want < 255.0;
          if (near_tie) {
            ++ties;
            EXPECT_LE(std::fabs(want - got), 1.0) << "batch " << bi << " (" << i << ", " << j << ")";
          } else {
            ASSERT_EQ(static_cast<int>(want), got) << "batch " << bi << " (" << i << ", " << j << ")";
          }
        }
    });
    EXPECT_LE(ties, total / 100);
    EXPECT_GE(inside, total / 4);  // not a test of saturation alone
  }
}

void expect_same_bytes(size_t k, const Tensor& want, const Tensor& got) {
  ASSERT_EQ(want.nbytes(), got.nbytes());
  const auto* w = static_cast<const uint8_t*>(want.raw());
  const auto* g = static_cast<const uint8_t*>(got.raw());
  for (size_t i = 0; i < want.nbytes(); ++i)
    ASSERT_EQ(w[i], g[i]) << "output " << k << " byte " << i;
}

// The fast step at every level (1 and 3 threads against the reference), then 2 and 4 threads
// against 1 at the active level.
TEST(QMatMul, FastStepMatchesReferenceBitwise) {
  for (const Case& c : kCases) {
    SCOPED_TRACE("A " + shape_str(c.a) + " B " + shape_str(c.b));
    auto g = qmatmul_graph(c);
    const plan::MemoryPlan p = test::check_fast_node(g, "y", "q8-matmul", test::supported_isas(), expect_same_bytes);
    auto prog = std::make_shared<runtime::Program>(g, p, kernels::active_isa());
    const auto ins = test::seeded_inputs(*g, 31u);
    runtime::Session s1(prog, 1);
    const Tensor one = test::run_session(s1, ins)[0];
    for (int threads : {2, 4}) {
      runtime::Session s(prog, threads);
      const Tensor got = test::run_session(s, ins)[0];
      EXPECT_EQ(0, std::memcmp(one.raw(), got.raw(), one.nbytes())) << threads << " threads";
    }
  }
}

// Extreme codes (each 0 or 255, zero points at the ends): the largest sums, requantized to
// saturate (y_scale 50000) or not (2e6), every level against the reference.
TEST(QMatMul, FastStepExtremeCodes) {
  for (int hi : {0, 1}) {
    GraphBuilder b;
    const int64_t m = 9, k = 301, n = 21;
    b.input("fa", {2, m, k}).input("fb", {k, n});
    b.constant_tensor("sa", scalar_f32(1.f)).constant_tensor("za", scalar_u8(hi ? 0 : 255));
    b.constant_tensor("sb", scalar_f32(1.f)).constant_tensor("zb", scalar_u8(hi ? 255 : 0));
    b.constant_tensor("sy", scalar_f32(hi ? 50000.f : 2e6f)).constant_tensor("zy", scalar_u8(128));
    // fa, fb in [-1, 1) at a scale of 1/1000: nearly every code saturates to 0 or 255.
    b.constant_tensor("sq", scalar_f32(1e-3f)).constant_tensor("zq", scalar_u8(hi ? 255 : 0));
    b.constant_tensor("zr", scalar_u8(hi ? 0 : 255));
    b.node("QuantizeLinear", {"fa", "sq", "zq"}, {"a"});
    b.node("QuantizeLinear", {"fb", "sq", "zr"}, {"b"});
    b.lithe_node("QMatMulU8", {"a", "sa", "za", "b", "sb", "zb", "sy", "zy"}, {"y"});
    b.output("y");
    test::check_fast_node(b.build(), "y", "q8-matmul", test::supported_isas(), expect_same_bytes);
  }
}

// Two-head attention over 20 tokens of 24 features: Q, K, V projections, heads split by
// Reshape + Transpose, softmax(Q K^T) V, heads merged, an output projection.
std::shared_ptr<ir::Graph> attention() {
  GraphBuilder b;
  b.input("x", {1, 20, 24});
  for (const char* w : {"wq", "wk", "wv", "wo"}) b.constant(w, {24, 24});
  b.constant_i64("heads", {1, 20, 2, 12}).constant_i64("merged", {1, 20, 24});
  b.node("MatMul", {"x", "wq"}, {"q"});
  b.node("MatMul", {"x", "wk"}, {"k"});
  b.node("MatMul", {"x", "wv"}, {"v"});
  for (const char* t : {"q", "k", "v"}) {
    const std::string s(t);
    b.node("Reshape", {s, "heads"}, {s + "4"});
    b.node("Transpose", {s + "4"}, {s + "h"}).attrs["perm"] =
        GraphBuilder::ints(s == "k" ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3});
  }
  b.node("MatMul", {"qh", "kh"}, {"s"}, "scores");  // [1, 2, 20, 20]
  b.node("Softmax", {"s"}, {"p"}).attrs["axis"] = GraphBuilder::i(-1);
  b.node("MatMul", {"p", "vh"}, {"o"}, "mix");  // [1, 2, 20, 12]
  b.node("Transpose", {"o"}, {"ot"}).attrs["perm"] = GraphBuilder::ints({0, 2, 1, 3});
  b.node("Reshape", {"ot", "merged"}, {"om"});
  b.node("MatMul", {"om", "wo"}, {"y"});
  b.output("y");
  return b.build();
}

std::vector<std::vector<Tensor>> samples_for(const ir::Graph& g, int count) {
  std::vector<std::vector<Tensor>> s;
  for (int i = 0; i < count; ++i) s.push_back(test::seeded_inputs(g, 100u + static_cast<unsigned>(i)));
  return s;
}

// The quantizer makes both activation MatMuls lithe.QMatMulU8 (the report says int8), the
// steps equal the reference bitwise at every level, and the output stays within cosine 0.995
// of FP32 on unseen inputs.
TEST(QMatMul, AttentionMatMulsQuantized) {
  auto fp32 = attention();
  auto g = std::make_shared<ir::Graph>(*fp32);
  const auto hist = build::calibrate(*g, samples_for(*g, 8), 1);
  std::vector<build::QuantizedLayer> layers;
  const auto report = build::quantize_graph(*g, hist, {}, &layers);
  for (const char* name : {"scores", "mix"}) {
    const auto it = std::find_if(report.begin(), report.end(), [&](const auto& l) { return l.node == name; });
    ASSERT_NE(it, report.end()) << name;
    EXPECT_EQ(it->precision, "int8") << name << ": " << it->reason;
  }
  EXPECT_EQ(count_any_domain(*g, "QMatMulU8"), 2);
  EXPECT_EQ(count_any_domain(*g, "MatMul"), 0);  // the projections are INT8 convs
  EXPECT_EQ(std::count_if(layers.begin(), layers.end(), [](const auto& l) { return l.op == "qmatmul"; }), 4);
  // The two INT8 MatMul outputs as the graph's outputs: fast == reference byte for byte.
  auto probe = std::make_shared<ir::Graph>(*g);
  probe->outputs = {g->find_value("s/u8"), g->find_value("o/u8")};
  test::check_fast_node(probe, "s/u8", "q8-matmul", test::supported_isas(), expect_same_bytes);
  test::check_fast_node(probe, "o/u8", "q8-matmul", test::supported_isas(), expect_same_bytes);
  for (unsigned seed : {5u, 6u}) {
    const auto in = test::seeded_inputs(*fp32, seed);
    EXPECT_GE(cosine(test::run_graph(fp32, in)[0], test::run_graph(g, in)[0]), 0.995) << "seed " << seed;
  }
}

// --emit-qdq-onnx writes DQ(A), DQ(B) -> MatMul -> Q for both activation MatMuls, and that
// model builds back (explicit quantization) to lithe.QMatMulU8 with the same outputs.
TEST(QMatMul, QdqExportRoundTrips) {
  const auto dir = test::temp_dir("qmatmul_qdq");
  const std::string model = (dir / "att.onnx").string(), qdq = (dir / "att.qdq.onnx").string();
  onnx::export_model(*attention(), model);
  build::BuildOptions o;
  o.precision = "int8";
  o.emit_qdq_onnx = qdq;
  o.calib.load = [](const ir::Graph& g) { return samples_for(g, 8); };
  const build::BuildResult ptq = build::build_model(model, o);
  EXPECT_EQ(count_any_domain(*ptq.contents.graph, "QMatMulU8"), 2);
  auto q = onnx::import_model(qdq);
  int qdq_matmuls = 0;
  for (const ir::Node& n : q->nodes) {
    if (n.op_type != "MatMul" || n.inputs.size() != 2) continue;
    auto producer = [&](int v) {
      const int p = q->values[static_cast<size_t>(v)].producer;
      return p >= 0 ? q->nodes[static_cast<size_t>(p)].op_type : std::string();
    };
    // Activation operands: DequantizeLinear of a computed value (weights are constants).
    auto activation = [&](int v) {
      const int p = q->values[static_cast<size_t>(v)].producer;
      return p >= 0 && !q->values[static_cast<size_t>(q->nodes[static_cast<size_t>(p)].inputs[0])].constant;
    };
    if (!activation(n.inputs[0]) || !activation(n.inputs[1])) continue;
    const ir::Value& out = q->values[static_cast<size_t>(n.outputs[0])];
    bool quantized_out = false;
    for (int c : out.consumers) quantized_out = quantized_out || q->nodes[static_cast<size_t>(c)].op_type == "QuantizeLinear";
    if (producer(n.inputs[0]) == "DequantizeLinear" && producer(n.inputs[1]) == "DequantizeLinear" && quantized_out)
      ++qdq_matmuls;
  }
  EXPECT_EQ(qdq_matmuls, 2);
  const build::BuildResult back = build::build_model(qdq, {});
  EXPECT_EQ(count_any_domain(*back.contents.graph, "QMatMulU8"), 2);
  auto run = [](const build::BuildResult& r, const std::vector<Tensor>& ins) {
    auto prog = std::make_shared<runtime::Program>(r.contents.graph, r.contents.plan, kernels::active_isa());
    runtime::Session s(prog, 1);
    return test::run_session(s, ins);
  };
  for (unsigned seed : {3u, 4u}) {
    const auto ins = test::seeded_inputs(*ptq.contents.graph, seed);
    EXPECT_TRUE(test::same_bits(run(ptq, ins), run(back, ins))) << "seed " << seed;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lithe
