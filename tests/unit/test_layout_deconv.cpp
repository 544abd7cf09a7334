// ConvTranspose with stride == kernel in channels-last regions (passes/layout_nhwc.cpp): it
// becomes a 1x1 lithe.ConvNhwc to kh*kw*M channels and the pixel shuffle
// lithe.DepthToSpaceNhwc. The rewritten graph is checked against the reference ConvTranspose
// over kernels 2x2, 3x3 and 2x1, 1 and 24 output channels, Relu / Sigmoid / no activation, with
// and without bias; ConvTransposes that do not qualify are left alone. The shuffle's reference
// kernel is checked against an index formula, its fast step bit for bit against the reference
// (float and uint8, 1 and 3 threads), hostile attributes fail cleanly (also from an engine
// file), and the quantizer runs it on uint8 values at its input's scale.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "builder/quantize.hpp"
#include "conv_test_util.hpp"
#include "engine/engine.hpp"
#include "fast_test_util.hpp"
#include "graph_test_util.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"

namespace lithe {
namespace {

using test::count_ops;
using test::GraphBuilder;

struct DeconvCase {
  int64_t n = 1, c = 5, h = 3, w = 4, m = 24, kh = 2, kw = 2;
  std::string act;  ///< "", "Relu" or "Sigmoid" after the ConvTranspose
  bool bias = true;
  std::string str() const {
    return "n" + std::to_string(n) + " c" + std::to_string(c) + " " + std::to_string(h) + "x" +
           std::to_string(w) + " m" + std::to_string(m) + " k" + std::to_string(kh) + "x" +
           std::to_string(kw) + " act '" + act + "' bias " + std::to_string(bias);
  }
};

// x -> Conv 3x3 (pads 1) -> Relu -> ConvTranspose (stride == kernel) [-> act] -> y.
std::shared_ptr<ir::Graph> deconv_graph(const DeconvCase& k) {
  GraphBuilder b;
  b.input("x", {k.n, 3, k.h, k.w});
  b.constant_tensor("cw", test::random_tensor({k.c, 3, 3, 3}, 3));
  b.constant_tensor("dw", test::random_tensor({k.c, k.m, k.kh, k.kw}, 4));
  b.constant_tensor("db", test::random_tensor({k.m}, 5));
  b.node("Conv", {"x", "cw"}, {"c"}).attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"});
  std::vector<std::string> ins = {"r", "dw"};
  if (k.bias) ins.push_back("db");
  const std::string out = k.act.empty() ? "y" : "d";
  ir::Node& d = b.node("ConvTranspose", ins, {out});
  d.attrs["strides"] = GraphBuilder::ints({k.kh, k.kw});
  d.attrs["kernel_shape"] = GraphBuilder::ints({k.kh, k.kw});
  if (!k.act.empty()) b.node(k.act, {"d"}, {"y"});
  b.output("y");
  return b.build();
}

// The pipeline's order: fusions to a fixed point, the layout pass, noop-elimination (which
// cancels inverse Transpose pairs). Returns the optimized copy.
std::shared_ptr<ir::Graph> optimize(const std::shared_ptr<ir::Graph>& before) {
  auto after = std::make_shared<ir::Graph>(*before);
  for (const char* name : {"fold-batchnorm", "fuse-activation", "fuse-residual", "fuse-activation",
                           "layout-nhwc", "noop-elimination"})
    passes::run_pass(*after, *passes::find_pass(name));
  ir::verify(*after);
  return after;
}

int deconvs(const ir::Graph& g) {
  return count_ops(g, "ConvTranspose") + count_ops(g, "ConvTranspose", "lithe");
}

TEST(LayoutDeconv, ShuffleMatchesReferenceConvTranspose) {
  std::vector<DeconvCase> cases;
  for (auto [kh, kw] : std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {3, 3}, {2, 1}})
    for (int64_t m : {1, 24})
      for (const char* act : {"", "Relu", "Sigmoid"})
        for (bool bias : {true, false}) {
          DeconvCase k;
          k.kh = kh;
          k.kw = kw;
          k.m = m;
          k.act = act;
          k.bias = bias;
          cases.push_back(k);
        }
  DeconvCase batch;  // two images, odd sizes
  batch.n = 2;
  batch.h = 5;
  batch.w = 3;
  batch.c = 7;
  batch.kh = 1;
  batch.kw = 3;
  cases.push_back(batch);
  for (const DeconvCase& k : cases) {
    SCOPED_TRACE(k.str());
    auto before = deconv_graph(k);
    auto after = optimize(before);
    EXPECT_EQ(deconvs(*after), 0);
    EXPECT_EQ(count_ops(*after, "DepthToSpaceNhwc", "lithe"), 1);
    EXPECT_EQ(count_ops(*after, "ConvNhwc", "lithe"), 2);
    EXPECT_EQ(count_ops(*after, "Relu") + count_ops(*after, "Sigmoid"), 0);  // fused
    EXPECT_EQ(count_ops(*after, "Transpose"), 2);  // x in, y out: one region
    for (const ir::Node& n : after->nodes)
      if (n.op_type == "DepthToSpaceNhwc") {
        EXPECT_EQ(ops::NodeAttrs(n).attr_int("bh"), k.kh);
        EXPECT_EQ(ops::NodeAttrs(n).attr_int("bw"), k.kw);
      }
    for (unsigned seed : {7u, 8u}) {
      const auto ins = test::seeded_inputs(*before, seed);
      test::expect_same_outputs(test::run_graph(before, ins), test::run_graph(after, ins), 1e-5);
      if (HasFatalFailure()) return;
    }
    EXPECT_EQ(after->values[static_cast<size_t>(after->outputs[0])].name, "y");
  }
}

// Each disqualifier on its own: the ConvTranspose stays (and, the only conv-like node of its
// graph, keeps the graph NCHW).
TEST(LayoutDeconv, OtherConvTransposesAreLeftAlone) {
  struct Variant {
    const char* what;
    std::function<void(GraphBuilder&, ir::Node&)> edit;
    Shape w = {4, 6, 2, 2};
  };
  const std::vector<Variant> variants = {
      {"pads",
       [](GraphBuilder&, ir::Node& n) {
         n.attrs["pads"] = GraphBuilder::ints({1, 0, 1, 0});
       }},
      {"stride 2, kernel 3", [](GraphBuilder&, ir::Node&) {}, {4, 6, 3, 3}},
      {"stride 1",
       [](GraphBuilder&, ir::Node& n) {
         n.attrs["strides"] = GraphBuilder::ints({1, 1});
       }},
      {"group 2",
       [](GraphBuilder&, ir::Node& n) { n.attrs["group"] = GraphBuilder::i(2); },
       {4, 3, 2, 2}},
      {"dilation 2",
       [](GraphBuilder&, ir::Node& n) {
         n.attrs["dilations"] = GraphBuilder::ints({2, 2});
       }},
      {"output_padding",
       [](GraphBuilder&, ir::Node& n) {
         n.attrs["output_padding"] = GraphBuilder::ints({1, 1});
       }},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.what);
    GraphBuilder b;
    b.input("x", {1, 4, 5, 6});
    b.constant_tensor("w", test::random_tensor(v.w, 9));
    ir::Node& d = b.node("ConvTranspose", {"x", "w"}, {"y"});
    d.attrs["strides"] = GraphBuilder::ints({2, 2});
    v.edit(b, d);
    b.output("y");
    auto before = b.build();
    auto after = optimize(before);
    EXPECT_EQ(deconvs(*after), 1);
    EXPECT_EQ(count_ops(*after, "DepthToSpaceNhwc", "lithe"), 0);
    const auto ins = test::seeded_inputs(*before, 3);
    test::expect_same_outputs(test::run_graph(before, ins), test::run_graph(after, ins), 1e-5);
  }
  {
    SCOPED_TRACE("weights not constant");
    GraphBuilder b;
    b.input("x", {1, 4, 5, 6}).input("w", {4, 6, 2, 2});
    b.node("ConvTranspose", {"x", "w"}, {"y"}).attrs["strides"] = GraphBuilder::ints({2, 2});
    b.output("y");
    auto after = optimize(b.build());
    EXPECT_EQ(deconvs(*after), 1);
  }
  {
    // A residual Add fuses into lithe.ConvTranspose (input Z): not a plain shuffle.
    SCOPED_TRACE("fused residual");
    GraphBuilder b;
    b.input("x", {1, 4, 5, 6}).input("z", {1, 6, 10, 12});
    b.constant_tensor("w", test::random_tensor({4, 6, 2, 2}, 9));
    b.node("ConvTranspose", {"x", "w"}, {"d"}).attrs["strides"] = GraphBuilder::ints({2, 2});
    b.node("Add", {"d", "z"}, {"y"});
    b.output("y");
    auto before = b.build();
    auto after = optimize(before);
    EXPECT_EQ(count_ops(*after, "ConvTranspose", "lithe"), 1);
    EXPECT_EQ(count_ops(*after, "Add"), 0);
    EXPECT_EQ(count_ops(*after, "DepthToSpaceNhwc", "lithe"), 0);
    const auto ins = test::seeded_inputs(*before, 3);
    test::expect_same_outputs(test::run_graph(before, ins), test::run_graph(after, ins), 1e-5);
  }
}

// ---- lithe.DepthToSpaceNhwc ----------------------------------------------------------------

std::shared_ptr<ir::Graph> shuffle_graph(Shape xs, int64_t bh, int64_t bw, DType t) {
  GraphBuilder b;
  b.input("x", xs, t);
  ir::Node& n = b.lithe_node("DepthToSpaceNhwc", {"x"}, {"y"});
  n.attrs["bh"] = GraphBuilder::i(bh);
  n.attrs["bw"] = GraphBuilder::i(bw);
  b.output("y");
  return b.build();
}

Tensor random_bytes(DType t, const Shape& s, unsigned seed) {
  Tensor x(t, s);
  std::mt19937 rng(seed);
  auto* p = static_cast<unsigned char*>(x.raw());
  for (size_t i = 0; i < x.nbytes(); ++i) p[i] = static_cast<unsigned char>(rng());
  return x;
}

// The reference kernel against Y[n, h*bh + i, w*bw + j, c] = X[n, h, w, (i*bw + j)*C + c],
// element by element (int32 elements holding their own input index).
TEST(LayoutDeconv, DepthToSpaceNhwcReferenceFormula) {
  const int64_t n = 2, h = 3, w = 2, bh = 2, bw = 3, c = 5;
  auto g = shuffle_graph({n, h, w, bh * bw * c}, bh, bw, DType::kInt32);
  Tensor x(DType::kInt32, {n, h, w, bh * bw * c});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<int32_t>()[i] = static_cast<int32_t>(i);
  const Tensor y = test::run_graph(g, {x})[0];
  ASSERT_EQ(y.shape(), (Shape{n, h * bh, w * bw, c}));
  for (int64_t ni = 0; ni < n; ++ni)
    for (int64_t oy = 0; oy < h * bh; ++oy)
      for (int64_t ox = 0; ox < w * bw; ++ox)
        for (int64_t ci = 0; ci < c; ++ci) {
          const int64_t want = ((ni * h + oy / bh) * w + ox / bw) * bh * bw * c +
                               ((oy % bh) * bw + ox % bw) * c + ci;
          ASSERT_EQ(y.data<int32_t>()[((ni * h * bh + oy) * w * bw + ox) * c + ci], want)
              << "at " << ni << "," << oy << "," << ox << "," << ci;
        }
}

// The fast step bit for bit against the reference, float32 and uint8, 1 and 3 threads, on run
// sizes with and without a fixed-size copy and on outputs large enough to be split.
TEST(LayoutDeconv, DepthToSpaceNhwcFastStepMatchesReference) {
  struct Case {
    Shape xs;
    int64_t bh, bw;
  };
  const std::vector<Case> cases = {
      {{1, 3, 4, 4}, 2, 2},    {{1, 5, 7, 96}, 2, 2},  {{2, 3, 5, 27}, 3, 3},
      {{1, 4, 3, 10}, 2, 1},   {{1, 1, 1, 6}, 1, 3},   {{1, 160, 40, 4}, 2, 2},
      {{1, 33, 17, 96}, 2, 2}, {{2, 9, 11, 15}, 1, 5}, {{1, 64, 64, 24}, 2, 3}};
  for (DType t : {DType::kFloat32, DType::kUInt8})
    for (const Case& k : cases) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + shape_str(k.xs) + " bh " +
                   std::to_string(k.bh) + " bw " + std::to_string(k.bw));
      auto g = shuffle_graph(k.xs, k.bh, k.bw, t);
      const plan::MemoryPlan p = plan::plan_memory(*g);
      for (kernels::Isa isa : test::supported_isas()) {
        auto prog = std::make_shared<runtime::Program>(g, p, isa);
        const runtime::FastStep* step = prog->fast_step(0);
        ASSERT_NE(step, nullptr);
        EXPECT_STREQ(step->kind(), "depth-to-space");
        runtime::Session s1(prog, 1), s3(prog, 3);
        for (unsigned seed : {1u, 2u}) {
          const Tensor x = random_bytes(t, k.xs, seed);
          const Tensor want = test::run_graph(g, {x})[0];
          const Tensor got1 = test::run_session(s1, {x})[0];
          const Tensor got3 = test::run_session(s3, {x})[0];
          ASSERT_EQ(want.shape(), got1.shape());
          EXPECT_EQ(0, std::memcmp(want.raw(), got1.raw(), want.nbytes()));
          EXPECT_EQ(0, std::memcmp(want.raw(), got3.raw(), want.nbytes()));
        }
      }
    }
}

// A graph whose DepthToSpaceNhwc carries `bh` / `bw` as given and the types of a valid one
// (x [1, 2, 3, 8], y [1, 4, 6, 2]), so nothing before the loader checks the attributes.
std::shared_ptr<ir::Graph> hostile_shuffle(const ir::Attribute& bh, const ir::Attribute& bw) {
  auto g = shuffle_graph({1, 2, 3, 8}, 2, 2, DType::kFloat32);
  g->nodes[0].attrs["bh"] = bh;
  g->nodes[0].attrs["bw"] = bw;
  return g;
}

TEST(LayoutDeconv, DepthToSpaceNhwcHostileAttributes) {
  const ir::Attribute two = GraphBuilder::i(2);
  struct Bad {
    ir::Attribute bh, bw;
    bool refused_alone;  ///< shape inference refuses the attributes themselves
  };
  const std::vector<Bad> bad = {
      {GraphBuilder::i(0), two, true},
      {two, GraphBuilder::i(-1), true},
      {GraphBuilder::i(3), two, true},  // 6 does not divide 8 channels
      {GraphBuilder::i(int64_t{1} << 40), GraphBuilder::i(int64_t{1} << 40), true},
      {two, GraphBuilder::f(2.0f), true},               // wrong kind
      {GraphBuilder::i(1), GraphBuilder::i(1), false},  // valid, but not the stored output shape
  };
  for (const Bad& k : bad) {
    auto g = hostile_shuffle(k.bh, k.bw);
    if (k.refused_alone) {
      auto copy = std::make_shared<ir::Graph>(*g);
      EXPECT_THROW(ops::infer_graph(*copy), Error);
    }
    // An engine holding it fails to load with one line, and nothing crashes.
    engine::EngineContents e;
    e.graph = g;
    e.plan = plan::plan_memory(*shuffle_graph({1, 2, 3, 8}, 2, 2, DType::kFloat32));
    e.info = {"lithe 0.1.0", std::string(64, 'a'), "{}", "generic"};
    std::string bytes;
    try {
      bytes = engine::serialize(e);
    } catch (const Error&) {
      continue;  // the writer refused it already
    }
    try {
      engine::load_engine_bytes(std::make_shared<const std::string>(bytes), "hostile");
      ADD_FAILURE() << "engine with a hostile DepthToSpaceNhwc loaded";
    } catch (const Error& err) {
      EXPECT_EQ(std::string(err.what()).find('\n'), std::string::npos) << err.what();
    }
  }
  // Rank and element type.
  EXPECT_THROW(shuffle_graph({2, 3, 8}, 2, 2, DType::kFloat32), Error);
}

// ---- INT8 ------------------------------------------------------------------------------------

// Conv -> ConvTranspose (2x2, stride 2) -> Relu -> Conv, quantized after the layout pass: the
// shuffle runs on the uint8 output of the tap conv at its scale (no requantization, no
// dequantize around it), its fast step matches the reference bit for bit, and the output stays
// close to FP32.
TEST(LayoutDeconv, QuantizedShuffleStaysInt8) {
  GraphBuilder b;
  b.input("x", {1, 3, 6, 5});
  b.constant_tensor("w1", test::random_tensor({8, 3, 3, 3}, 1));
  b.constant_tensor("dw", test::random_tensor({8, 6, 2, 2}, 2));
  b.constant_tensor("db", test::random_tensor({6}, 3));
  b.constant_tensor("w2", test::random_tensor({4, 6, 1, 1}, 4));
  b.node("Conv", {"x", "w1"}, {"c"}).attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"});
  b.node("ConvTranspose", {"r", "dw", "db"}, {"d"}).attrs["strides"] = GraphBuilder::ints({2, 2});
  b.node("Relu", {"d"}, {"dr"});
  b.node("Conv", {"dr", "w2"}, {"y"});
  b.output("y");
  auto fp32 = optimize(b.build());
  ASSERT_EQ(count_ops(*fp32, "DepthToSpaceNhwc", "lithe"), 1);
  auto g = std::make_shared<ir::Graph>(*fp32);
  std::vector<std::vector<Tensor>> samples;
  for (unsigned i = 0; i < 4; ++i) samples.push_back(test::seeded_inputs(*g, 100u + i));
  const auto hist = build::calibrate(*g, samples, 1);
  const auto report = build::quantize_graph(*g, hist, {});
  for (const auto& l : report) {
    if (l.node.find("Conv") == 0) {
      EXPECT_EQ(l.precision, "int8") << l.node << ": " << l.reason;
    }
  }
  const ir::Node* shuffle = nullptr;
  for (const ir::Node& n : g->nodes)
    if (n.op_type == "DepthToSpaceNhwc") shuffle = &n;
  ASSERT_NE(shuffle, nullptr);
  const int in = shuffle->inputs[0], out = shuffle->outputs[0];
  EXPECT_EQ(g->values[static_cast<size_t>(in)].type.dtype, DType::kUInt8);
  EXPECT_EQ(g->values[static_cast<size_t>(out)].type.dtype, DType::kUInt8);
  const int producer = g->values[static_cast<size_t>(in)].producer;
  ASSERT_GE(producer, 0);
  EXPECT_EQ(g->nodes[static_cast<size_t>(producer)].op_type, "QConvNhwc");
  EXPECT_EQ(count_ops(*g, "DequantizeLinear"), 1);  // the graph output only
  test::check_fast_node(
      g, g->values[static_cast<size_t>(out)].name, "depth-to-space", test::supported_isas(),
      [](size_t k, const Tensor& want, const Tensor& got) {
        ASSERT_EQ(want.nbytes(), got.nbytes());
        EXPECT_EQ(0, std::memcmp(want.raw(), got.raw(), want.nbytes())) << "output " << k;
      });
  const auto ins = test::seeded_inputs(*fp32, 9u);
  const Tensor a = test::run_graph(fp32, ins)[0], q = test::run_graph(g, ins)[0];
  double dot = 0, na = 0, nq = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    dot += double(a.data<float>()[i]) * q.data<float>()[i];
    na += double(a.data<float>()[i]) * a.data<float>()[i];
    nq += double(q.data<float>()[i]) * q.data<float>()[i];
  }
  EXPECT_GE(dot / std::sqrt(na * nq), 0.99);
}

}  // namespace
}  // namespace lithe
