// Tests for the layout-nhwc pass and the nhwc op family: conv/pool/elementwise/concat regions
// run channels-last with one Transpose per region border and unchanged outputs; the pass
// leaves regions without a conv, 5-D convs and unknown shapes alone; the NHWC reference
// kernels match the NCHW ones over strides, pads, dilations, groups, bias, activation and
// residual.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "graph_test_util.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"

namespace lithe::passes {
int convert_layout_nhwc(const ir::Graph& g, Rewriter& rw);
}

using namespace lithe;
using lithe::test::count_ops;
using lithe::test::GraphBuilder;

namespace {

bool nhwc_registered() { return ops::find_op("lithe", "ConvNhwc") != nullptr; }

#define REQUIRE_NHWC() \
  if (!nhwc_registered()) GTEST_SKIP() << "nhwc op family not registered"

int run_layout(ir::Graph& g) {
  static const passes::Pass p{"layout-nhwc", "", passes::convert_layout_nhwc};
  return passes::run_pass(g, p);
}

struct Result {
  int fired = 0;
  std::shared_ptr<ir::Graph> after;
};

// Runs the fusions, the pass (then noop-elimination, which cancels inverse Transpose pairs) on a
// copy and checks values and output names are unchanged.
Result convert(const std::shared_ptr<ir::Graph>& before) {
  auto after = std::make_shared<ir::Graph>(*before);
  Result r;
  // The fusions first, as in the pipeline: the pass waits for a conv's activation to fuse.
  for (const char* name : {"fuse-activation", "fuse-residual", "fuse-activation"})
    if (const passes::Pass* p = passes::find_pass(name)) passes::run_pass(*after, *p);
  r.fired = run_layout(*after);
  if (const passes::Pass* noop = passes::find_pass("noop-elimination"))
    passes::run_pass(*after, *noop);
  r.after = after;
  auto ins = test::seeded_inputs(*before, 7);
  test::expect_same_outputs(test::run_graph(before, ins), test::run_graph(after, ins), 1e-5);
  EXPECT_EQ(before->outputs.size(), after->outputs.size());
  for (size_t i = 0; i < before->outputs.size() && i < after->outputs.size(); ++i)
    EXPECT_EQ(before->values[static_cast<size_t>(before->outputs[i])].name,
              after->values[static_cast<size_t>(after->outputs[i])].name);
  return r;
}

void conv(GraphBuilder& b, const std::string& x, const std::string& w, const std::string& y,
          std::vector<int64_t> pads = {0, 0, 0, 0}, const std::string& bias = "") {
  std::vector<std::string> ins = {x, w};
  if (!bias.empty()) ins.push_back(bias);
  b.node("Conv", ins, {y}).attrs["pads"] = GraphBuilder::ints(std::move(pads));
}

int transposes(const ir::Graph& g) { return count_ops(g, "Transpose"); }

TEST(PassLayoutNhwc, ConvReluPoolChain) {
  REQUIRE_NHWC();
  GraphBuilder b;
  b.input("x", {1, 3, 8, 8}).constant("w", {4, 3, 3, 3}).constant("b", {4});
  conv(b, "x", "w", "c", {1, 1, 1, 1}, "b");
  b.node("Relu", {"c"}, {"r"});
  auto& mp = b.node("MaxPool", {"r"}, {"y"});
  mp.attrs["kernel_shape"] = GraphBuilder::ints({2, 2});
  mp.attrs["strides"] = GraphBuilder::ints({2, 2});
  b.output("y");
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(transposes(*r.after), 2);
  EXPECT_EQ(count_ops(*r.after, "Conv"), 0);
  EXPECT_EQ(count_ops(*r.after, "ConvNhwc", "lithe"), 1);
  EXPECT_EQ(count_ops(*r.after, "MaxPoolNhwc", "lithe"), 1);
  const auto& y = r.after->values[static_cast<size_t>(r.after->outputs[0])];
  EXPECT_EQ(y.type.dims, (Shape{1, 4, 4, 4}));
}

TEST(PassLayoutNhwc, ResidualBlock) {
  REQUIRE_NHWC();
  GraphBuilder b;
  b.input("x", {1, 4, 6, 6}).constant("w1", {4, 4, 3, 3}).constant("w2", {4, 4, 3, 3});
  b.constant("s", {4, 1, 1});
  conv(b, "x", "w1", "c1", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  conv(b, "r1", "w2", "c2", {1, 1, 1, 1});
  b.node("Mul", {"c2", "s"}, {"m"});  // per-channel constant
  b.node("Add", {"m", "x"}, {"a"});
  b.node("Relu", {"a"}, {"y"});
  b.output("y");
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(transposes(*r.after), 2);  // x enters once (both convs' reads share it)
  EXPECT_EQ(count_ops(*r.after, "Conv"), 0);
  EXPECT_EQ(count_ops(*r.after, "ConvNhwc", "lithe"), 2);
}

TEST(PassLayoutNhwc, FusedConvWithResidual) {
  REQUIRE_NHWC();
  GraphBuilder b;
  b.input("x", {1, 4, 5, 5}).input("z", {1, 4, 5, 5}).constant("w", {4, 4, 3, 3});
  b.constant("bias", {4});
  auto& n = b.node("Conv", {"x", "w", "bias", "z"}, {"y"});
  n.domain = "lithe";
  n.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  n.attrs["activation"] = GraphBuilder::s("Relu");
  b.output("y");
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(transposes(*r.after), 3);  // x and z in, y out
}

TEST(PassLayoutNhwc, InceptionConcat) {
  REQUIRE_NHWC();
  GraphBuilder b;
  b.input("x", {1, 3, 7, 7}).constant("w1", {2, 3, 1, 1}).constant("w2", {3, 3, 3, 3});
  b.constant("w3", {2, 3, 1, 1}).constant("k", {1, 7, 1, 1});
  conv(b, "x", "w1", "c1");
  conv(b, "x", "w2", "c2", {1, 1, 1, 1});
  auto& mp = b.node("MaxPool", {"x"}, {"p"});
  mp.attrs["kernel_shape"] = GraphBuilder::ints({3, 3});
  mp.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  conv(b, "p", "w3", "c3");
  b.node("Concat", {"c1", "c2", "c3"}, {"cat"}).attrs["axis"] = GraphBuilder::i(1);
  b.node("Add", {"cat", "k"}, {"s"});
  auto& ap = b.node("AveragePool", {"s"}, {"ap"});
  ap.attrs["kernel_shape"] = GraphBuilder::ints({3, 3});
  ap.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  ap.attrs["count_include_pad"] = GraphBuilder::i(1);
  b.node("GlobalAveragePool", {"ap"}, {"g"});
  b.output("g").output("cat");  // a region value that is also a graph output
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(transposes(*r.after), 3);  // x in; g and cat out
  EXPECT_EQ(count_ops(*r.after, "Conv"), 0);
  EXPECT_EQ(count_ops(*r.after, "Concat"), 1);
  EXPECT_EQ(count_ops(*r.after, "GlobalAveragePoolNhwc", "lithe"), 1);
  EXPECT_EQ(count_ops(*r.after, "AveragePoolNhwc", "lithe"), 1);
}

// An FPN's upsampling: Conv -> Resize x2 (scales, then sizes) -> Add with a lateral conv.
// The Resizes run inside the region with their per-axis inputs permuted; a Resize that
// changes the channel count's axis or crops stays NCHW.
TEST(PassLayoutNhwc, SpatialResizeStaysInside) {
  REQUIRE_NHWC();
  for (const char* mode : {"nearest", "linear"}) {
    SCOPED_TRACE(mode);
    GraphBuilder b;
    b.input("x", {1, 3, 4, 5}).input("x2", {1, 3, 16, 20}).constant("w1", {4, 3, 1, 1});
    b.constant("w2", {4, 3, 3, 3}).constant("scales", {4}, {1.f, 1.f, 2.f, 2.f});
    b.constant_i64("sizes", {1, 4, 16, 20});
    conv(b, "x", "w1", "c1");
    auto& r1 = b.node("Resize", {"c1", "", "scales"}, {"u1"});
    r1.attrs["mode"] = GraphBuilder::s(mode);
    auto& r2 = b.node("Resize", {"u1", "", "", "sizes"}, {"u2"});
    r2.attrs["mode"] = GraphBuilder::s(mode);
    conv(b, "x2", "w2", "c2", {1, 1, 1, 1});
    b.node("Add", {"u2", "c2"}, {"y"});
    b.output("y");
    Result r = convert(b.build());
    EXPECT_EQ(r.fired, 1);
    EXPECT_EQ(transposes(*r.after), 3);  // x and x2 in, y out
    EXPECT_EQ(count_ops(*r.after, "Resize"), 2);
  }
  GraphBuilder b;
  b.input("x", {1, 3, 4, 5}).constant("w1", {4, 3, 1, 1});
  b.constant("scales", {4}, {1.f, 2.f, 2.f, 2.f});
  conv(b, "x", "w1", "c1");
  b.node("Resize", {"c1", "", "scales"}, {"y"}).attrs["mode"] = GraphBuilder::s("nearest");
  b.output("y");
  Result r = convert(b.build());
  EXPECT_EQ(transposes(*r.after), 2);  // the channel-scaling Resize reads NCHW
}

TEST(PassLayoutNhwc, SplitAfterWideConvStaysInside) {
  REQUIRE_NHWC();
  // Sibling aggregation's shape: one wider conv, a channel Split, then per-branch convs.
  GraphBuilder b;
  b.input("x", {1, 3, 6, 6}).constant("w", {5, 3, 1, 1}).constant("w2", {2, 2, 3, 3});
  b.constant_i64("sp", {2, 3});
  conv(b, "x", "w", "c");
  b.node("Split", {"c", "sp"}, {"s0", "s1"}).attrs["axis"] = GraphBuilder::i(1);
  conv(b, "s0", "w2", "d", {1, 1, 1, 1});
  b.node("Relu", {"s1"}, {"r"});
  b.node("Concat", {"d", "r"}, {"y"}).attrs["axis"] = GraphBuilder::i(1);
  b.output("y").output("s1");
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 1);
  EXPECT_EQ(transposes(*r.after), 3);  // x in; y and s1 out
  EXPECT_EQ(count_ops(*r.after, "Split"), 1);
}

TEST(PassLayoutNhwc, TwoRegionsAcrossFlattenKeepBorders) {
  REQUIRE_NHWC();
  // A Reshape splits two regions: each gets its own border Transposes.
  GraphBuilder b;
  b.input("x", {1, 2, 4, 4}).constant("w", {2, 2, 1, 1}).constant("w2", {2, 2, 1, 1});
  b.constant_i64("shape", {1, 2, 2, 8});
  conv(b, "x", "w", "c");
  b.node("Reshape", {"c", "shape"}, {"rs"});
  conv(b, "rs", "w2", "y");
  b.output("y");
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 2);
  EXPECT_EQ(transposes(*r.after), 4);
  // A second run finds nothing new.
  EXPECT_EQ(run_layout(*r.after), 0);
}

TEST(PassLayoutNhwc, NoConvNoFire) {
  REQUIRE_NHWC();
  GraphBuilder b;
  b.input("x", {1, 3, 8, 8});
  b.node("Relu", {"x"}, {"r"});
  auto& mp = b.node("MaxPool", {"r"}, {"y"});
  mp.attrs["kernel_shape"] = GraphBuilder::ints({2, 2});
  b.output("y");
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(transposes(*r.after), 0);
}

TEST(PassLayoutNhwc, Conv3dNoFire) {
  REQUIRE_NHWC();
  GraphBuilder b;
  b.input("x", {1, 2, 4, 4, 4}).constant("w", {2, 2, 3, 3, 3});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Relu", {"c"}, {"y"});
  b.output("y");
  Result r = convert(b.build());
  EXPECT_EQ(r.fired, 0);
  EXPECT_EQ(count_ops(*r.after, "ConvNhwc", "lithe"), 0);
  EXPECT_EQ(transposes(*r.after), 0);
}

TEST(PassLayoutNhwc, UnknownShapeNoFire) {
  REQUIRE_NHWC();
  GraphBuilder b;
  b.input("x", {1, 3, -1, 8}).constant("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Relu", {"c"}, {"y"});
  b.output("y");
  auto g = b.build();
  ir::Graph after = *g;
  EXPECT_EQ(run_layout(after), 0);
  EXPECT_EQ(count_ops(after, "Conv"), 1);
}

// ---- kernels: NHWC against NCHW ---------------------------------------------------------

struct ConvCase {
  int64_t n, c, h, w, m, group, kh, kw, stride, pad, dil;
  bool bias, residual;
  std::string act;
};

// Runs an NCHW op and the same op as its NHWC form between Transposes; compares.
void compare_kernels(const std::function<void(GraphBuilder&, const std::string&, bool)>& body,
                     const Shape& xs) {
  std::shared_ptr<ir::Graph> ref, alt;
  {
    GraphBuilder b;
    b.input("x", xs);
    body(b, "x", false);
    b.output("y");
    ref = b.build();
  }
  {
    GraphBuilder b;
    b.input("x", xs);
    b.node("Transpose", {"x"}, {"xt"}).attrs["perm"] = GraphBuilder::ints({0, 2, 3, 1});
    body(b, "xt", true);
    b.node("Transpose", {"yt"}, {"y"}).attrs["perm"] = GraphBuilder::ints({0, 3, 1, 2});
    b.output("y");
    alt = b.build();
  }
  auto ins = test::seeded_inputs(*ref, 3);
  test::expect_same_outputs(test::run_graph(ref, ins), test::run_graph(alt, ins), 1e-5);
}

TEST(OpsNhwc, ConvMatchesNchwOnRandomShapes) {
  REQUIRE_NHWC();
  std::mt19937 rng(42);
  auto pick = [&](int lo, int hi) {
    return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng));
  };
  const char* acts[] = {"", "Relu", "Clip", "Sigmoid", "LeakyRelu"};
  std::vector<ConvCase> cases;
  for (int t = 0; t < 40; ++t) {
    ConvCase k;
    k.group = t % 4 == 0 ? 1 : (t % 4 == 1 ? 2 : (t % 4 == 2 ? 3 : 1));
    k.c = k.group * pick(1, 3);
    k.m = k.group * pick(1, 3);
    if (t % 5 == 4) {  // depthwise
      k.c = pick(2, 6);
      k.group = k.c;
      k.m = k.c * pick(1, 2);
    }
    k.n = pick(1, 2);
    k.kh = pick(1, 3);
    k.kw = pick(1, 3);
    k.stride = pick(1, 2);
    k.pad = pick(0, 2);
    k.dil = pick(1, 2);
    k.h = (k.kh - 1) * k.dil + 1 + pick(0, 5);
    k.w = (k.kw - 1) * k.dil + 1 + pick(0, 5);
    k.bias = t % 2 == 0;
    k.residual = t % 3 == 0;
    k.act = acts[t % 5];
    cases.push_back(k);
  }
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const ConvCase k = cases[ci];
    SCOPED_TRACE("case " + std::to_string(ci));
    // Output spatial size, for the residual's shape.
    const int64_t oh = (k.h + 2 * k.pad - ((k.kh - 1) * k.dil + 1)) / k.stride + 1;
    const int64_t ow = (k.w + 2 * k.pad - ((k.kw - 1) * k.dil + 1)) / k.stride + 1;
    compare_kernels(
        [&](GraphBuilder& b, const std::string& x, bool nhwc) {
          b.constant("w", {k.m, k.c / k.group, k.kh, k.kw});
          std::vector<std::string> ins = {x, "w", k.bias ? "b" : ""};
          if (k.bias) b.constant("b", {k.m});
          if (k.residual) {
            b.constant("z", {k.n, k.m, oh, ow});
            if (nhwc) {
              b.node("Transpose", {"z"}, {"zt"}).attrs["perm"] = GraphBuilder::ints({0, 2, 3, 1});
              ins.push_back("zt");
            } else {
              ins.push_back("z");
            }
          }
          auto& n = b.node(nhwc ? "ConvNhwc" : "Conv", ins, {nhwc ? "yt" : "y"});
          n.domain = "lithe";
          n.opset = nhwc ? 1 : 13;
          n.attrs["group"] = GraphBuilder::i(k.group);
          n.attrs["strides"] = GraphBuilder::ints({k.stride, k.stride});
          n.attrs["pads"] = GraphBuilder::ints({k.pad, k.pad, k.pad, k.pad});
          n.attrs["dilations"] = GraphBuilder::ints({k.dil, k.dil});
          if (!k.act.empty()) {
            n.attrs["activation"] = GraphBuilder::s(k.act);
            if (k.act == "Clip") {
              ir::Attribute p;
              p.kind = ir::Attribute::Kind::kFloats;
              p.floats = {-0.3f, 0.4f};
              n.attrs["activation_params"] = p;
            }
          }
        },
        {k.n, k.c, k.h, k.w});
  }
}

TEST(OpsNhwc, PoolsMatchNchwOnRandomShapes) {
  REQUIRE_NHWC();
  std::mt19937 rng(7);
  auto pick = [&](int lo, int hi) {
    return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng));
  };
  for (int t = 0; t < 30; ++t) {
    SCOPED_TRACE("case " + std::to_string(t));
    const std::string op =
        t % 3 == 0 ? "MaxPool" : (t % 3 == 1 ? "AveragePool" : "GlobalAveragePool");
    const int64_t k = pick(1, 3), s = pick(1, 3), p = std::min<int64_t>(pick(0, 1), k - 1);
    const int64_t ceil = pick(0, 1), cip = pick(0, 1);
    const Shape xs = {pick(1, 2), pick(1, 5), k + pick(0, 6), k + pick(0, 6)};
    compare_kernels(
        [&](GraphBuilder& b, const std::string& x, bool nhwc) {
          auto& n = b.node(nhwc ? op + "Nhwc" : op, {x}, {nhwc ? "yt" : "y"});
          if (nhwc) {
            n.domain = "lithe";
            n.opset = 1;
          }
          if (op == "GlobalAveragePool") return;
          n.attrs["kernel_shape"] = GraphBuilder::ints({k, k});
          n.attrs["strides"] = GraphBuilder::ints({s, s});
          n.attrs["pads"] = GraphBuilder::ints({p, p, p, p});
          n.attrs["ceil_mode"] = GraphBuilder::i(ceil);
          if (op == "AveragePool") n.attrs["count_include_pad"] = GraphBuilder::i(cip);
        },
        xs);
  }
}

}  // namespace
