// The fast executor's Resize and ConvTranspose steps (runtime/fast_resize.cpp) against the
// reference executor on one-node graphs: the node must get a fast step (so the reference is
// not compared with itself), match the reference within 1e-4 x max(1, |ref|) per element and
// give bitwise the same output with 1 and 3 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fast_test_util.hpp"
#include "graph_test_util.hpp"
#include "kernels/cpu.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"

namespace lithe {
namespace {

using test::GraphBuilder;

void expect_close(const Tensor& want, const Tensor& got, double rel) {
  ASSERT_EQ(want.dtype(), got.dtype());
  ASSERT_EQ(want.shape(), got.shape());
  const float* w = want.data<float>();
  const float* g = got.data<float>();
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double tol = rel * std::max(1.0, std::fabs(double(w[i])));
    ASSERT_LE(std::fabs(double(w[i]) - double(g[i])), tol)
        << "element " << i << ": want " << w[i] << ", got " << g[i];
  }
}

// The node producing `out` runs as a fast step of kind `want_kind` (when given) and matches
// the reference within rel x max(1, |ref|) per element; 1 and 3 threads agree bitwise.
void check_graph(const std::shared_ptr<ir::Graph>& g, const std::string& out,
                 const char* want_kind = nullptr, double rel = 1e-4) {
  test::check_fast_node(
      g, out, want_kind, {kernels::best_isa()},
      [rel](size_t, const Tensor& want, const Tensor& got) { expect_close(want, got, rel); });
}

const runtime::FastStep* fast_step_of(const std::shared_ptr<ir::Graph>& g, const std::string& out,
                                      std::shared_ptr<runtime::Program>* keep) {
  const int ov = g->find_value(out);
  const int node = g->values[static_cast<size_t>(ov)].producer;
  plan::MemoryPlan p = plan::plan_memory(*g);
  *keep = std::make_shared<runtime::Program>(g, p, kernels::best_isa());
  return (*keep)->fast_step(static_cast<size_t>(node));
}

// ---- Resize ------------------------------------------------------------------------------

struct ResizeCase {
  std::string mode, coord, nearest;
  Shape in;
  std::vector<float> scales;   // per input dim, or empty when sizes are given
  std::vector<int64_t> sizes;  // per input dim
  int opset = 19;
};

std::shared_ptr<ir::Graph> resize_graph(const ResizeCase& c) {
  GraphBuilder b(c.opset);
  b.input("x", c.in);
  std::vector<std::string> ins = {"x"};
  if (c.opset < 11) {
    b.constant("scales", {4}, c.scales);
    ins.push_back("scales");
  } else if (!c.scales.empty()) {
    b.constant("scales", {4}, c.scales);
    ins = {"x", "", "scales"};
  } else {
    b.constant_i64("sizes", c.sizes);
    ins = {"x", "", "", "sizes"};
  }
  ir::Node& n = b.node("Resize", ins, {"y"});
  n.attrs["mode"] = GraphBuilder::s(c.mode);
  if (c.opset >= 11) {
    n.attrs["coordinate_transformation_mode"] = GraphBuilder::s(c.coord);
    n.attrs["nearest_mode"] = GraphBuilder::s(c.nearest);
  }
  b.output("y");
  return b.build();
}

const char* kCoords[] = {"half_pixel",    "half_pixel_symmetric", "pytorch_half_pixel",
                         "align_corners", "asymmetric",           "tf_half_pixel_for_nn"};
const char* kNearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

// Up, down, mixed and non-integer scales on the spatial axes of NCHW data.
const std::vector<std::vector<float>> kNchwScales = {
    {1, 1, 2, 2}, {1, 1, 3, 1.5f}, {1, 1, 0.5f, 0.5f}, {1, 1, 1.7f, 0.6f}, {1, 1, 1, 2.5f}};

TEST(FastResize, NearestEveryCoordinateAndNearestMode) {
  for (const char* coord : kCoords)
    for (const char* nm : kNearest)
      for (const auto& sc : kNchwScales) {
        ResizeCase c{"nearest", coord, nm, {2, 3, 7, 9}, sc, {}};
        SCOPED_TRACE(std::string(coord) + " " + nm + " scales " + std::to_string(sc[2]) + "," +
                     std::to_string(sc[3]));
        check_graph(resize_graph(c), "y", "resize-nearest");
        if (HasFatalFailure()) return;
      }
}

TEST(FastResize, LinearEveryCoordinateMode) {
  for (const char* coord : kCoords)
    for (const auto& sc : kNchwScales) {
      ResizeCase c{"linear", coord, "round_prefer_floor", {2, 3, 7, 9}, sc, {}};
      SCOPED_TRACE(std::string(coord) + " scales " + std::to_string(sc[2]) + "," +
                   std::to_string(sc[3]));
      check_graph(resize_graph(c), "y", "resize-linear");
      if (HasFatalFailure()) return;
    }
}

TEST(FastResize, SizesInput) {
  for (const char* mode : {"nearest", "linear"})
    for (const char* coord : kCoords) {
      for (std::vector<int64_t> sz : {std::vector<int64_t>{1, 4, 13, 5}, {1, 4, 3, 20}}) {
        ResizeCase c{mode, coord, "round_prefer_ceil", {1, 4, 6, 8}, {}, sz};
        SCOPED_TRACE(std::string(mode) + " " + coord);
        check_graph(resize_graph(c), "y");
        if (HasFatalFailure()) return;
      }
    }
}

TEST(FastResize, NhwcStyleSpatialAxes12) {
  for (const char* mode : {"nearest", "linear"})
    for (const char* coord : {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"})
      for (std::vector<float> sc : {std::vector<float>{1, 2, 2, 1}, {1, 0.5f, 1.7f, 1}}) {
        ResizeCase c{mode, coord, "floor", {2, 8, 6, 5}, sc, {}};
        SCOPED_TRACE(std::string(mode) + " " + coord);
        check_graph(resize_graph(c), "y");
        if (HasFatalFailure()) return;
      }
}

TEST(FastResize, OlderOpsetsAndUpsample) {
  for (const char* mode : {"nearest", "linear"}) {
    for (int opset : {10, 11, 13}) {
      ResizeCase c{mode, "asymmetric", "round_prefer_floor", {1, 2, 5, 6}, {1, 1, 2, 1.5f},
                   {},   opset};
      SCOPED_TRACE(std::string(mode) + " opset " + std::to_string(opset));
      check_graph(resize_graph(c), "y");
      if (HasFatalFailure()) return;
    }
    GraphBuilder b(9);
    b.input("x", {1, 2, 5, 6}).constant("scales", {4}, {1, 1, 3, 0.5f});
    b.node("Upsample", {"x", "scales"}, {"y"}).attrs["mode"] = GraphBuilder::s(mode);
    b.output("y");
    check_graph(b.build(), "y");
  }
}

TEST(FastResize, LargeSplitsAcrossThreads) {
  // The det model's case (nearest, asymmetric, floor, x2 / x4 / x8) and a big linear one.
  for (float s : {2.f, 4.f, 8.f}) {
    ResizeCase c{"nearest", "asymmetric", "floor", {1, 24, 20, 20}, {1, 1, s, s}, {}, 11};
    check_graph(resize_graph(c), "y", "resize-nearest", 0);
  }
  ResizeCase c{"linear", "half_pixel", "floor", {1, 5, 33, 47}, {1, 1, 2, 2}, {}};
  check_graph(resize_graph(c), "y", "resize-linear");
}

TEST(FastResize, UnsupportedCasesStayOnTheReference) {
  std::shared_ptr<runtime::Program> keep;
  {
    ResizeCase c{"cubic", "half_pixel", "floor", {1, 2, 5, 6}, {1, 1, 2, 2}, {}};
    EXPECT_EQ(fast_step_of(resize_graph(c), "y", &keep), nullptr) << "cubic";
  }
  {
    ResizeCase c{"linear", "half_pixel", "floor", {1, 2, 5, 6}, {1, 1, 2, 2}, {}};
    auto g = resize_graph(c);
    // Upscaling with antialias or exclude_outside still has two taps per output: the fast
    // step runs on the reference's own taps and must match it.
    g->nodes[0].attrs["antialias"] = GraphBuilder::i(1);
    check_graph(g, "y", "resize-linear");
    g->nodes[0].attrs.erase("antialias");
    g->nodes[0].attrs["exclude_outside"] = GraphBuilder::i(1);
    check_graph(g, "y", "resize-linear");
  }
  {
    // Downscaling with antialias widens the filter past two taps: reference only.
    ResizeCase c{"linear", "half_pixel", "floor", {1, 2, 8, 8}, {1, 1, 0.5f, 0.5f}, {}};
    auto g = resize_graph(c);
    g->nodes[0].attrs["antialias"] = GraphBuilder::i(1);
    EXPECT_EQ(fast_step_of(g, "y", &keep), nullptr) << "antialias downscale";
  }
  {
    // Resizing the channel axis: neither NCHW nor NHWC spatial.
    ResizeCase c{"nearest", "asymmetric", "floor", {1, 2, 5, 6}, {1, 2, 2, 2}, {}};
    EXPECT_EQ(fast_step_of(resize_graph(c), "y", &keep), nullptr) << "channel axis";
  }
}

// ---- ConvTranspose -----------------------------------------------------------------------

struct DeconvCase {
  Shape x;  // N, C, H, W
  Shape w;  // C, M/group, kh, kw
  std::vector<int64_t> strides = {1, 1}, pads = {0, 0, 0, 0}, dil = {1, 1}, out_pad = {0, 0};
  int64_t group = 1;
  bool bias = true;
  std::string act = {};   // lithe-domain activation ("" and !residual: ONNX node)
  bool residual = false;  // lithe-domain residual Z
  std::string auto_pad = {};
  std::vector<int64_t> output_shape = {};
};

std::shared_ptr<ir::Graph> deconv_graph(const DeconvCase& c) {
  GraphBuilder b;
  b.input("x", c.x).constant("w", c.w);
  const int64_t m = c.w[1] * c.group;
  std::vector<std::string> ins = {"x", "w", ""};
  if (c.bias) {
    b.constant("b", {m});
    ins[2] = "b";
  }
  const bool fused = !c.act.empty() || c.residual;
  if (c.residual) {
    // Z's shape is the output's: infer it from a first build without Z.
    DeconvCase plain = c;
    plain.act.clear();
    plain.residual = false;
    auto g0 = deconv_graph(plain);
    b.input("z", g0->values[static_cast<size_t>(g0->find_value("y"))].type.dims);
    ins.push_back("z");
  }
  if (!c.bias && !c.residual) ins.pop_back();
  ir::Node& n = b.node("ConvTranspose", ins, {"y"});
  n.attrs["kernel_shape"] = GraphBuilder::ints({c.w[2], c.w[3]});
  n.attrs["strides"] = GraphBuilder::ints(c.strides);
  n.attrs["dilations"] = GraphBuilder::ints(c.dil);
  n.attrs["group"] = GraphBuilder::i(c.group);
  if (c.auto_pad.empty())
    n.attrs["pads"] = GraphBuilder::ints(c.pads);
  else
    n.attrs["auto_pad"] = GraphBuilder::s(c.auto_pad);
  if (c.out_pad != std::vector<int64_t>{0, 0})
    n.attrs["output_padding"] = GraphBuilder::ints(c.out_pad);
  if (!c.output_shape.empty()) n.attrs["output_shape"] = GraphBuilder::ints(c.output_shape);
  if (fused) {
    n.domain = "lithe";
    n.attrs["activation"] = GraphBuilder::s(c.act);
  }
  b.output("y");
  return b.build();
}

TEST(FastConvTranspose, K2S2DirectPath) {
  for (bool bias : {true, false}) {
    DeconvCase c{{1, 8, 9, 11}, {8, 6, 2, 2}};
    c.strides = {2, 2};
    c.bias = bias;
    SCOPED_TRACE(bias ? "bias" : "no bias");
    check_graph(deconv_graph(c), "y", "deconv-gemm-direct");
    if (HasFatalFailure()) return;
  }
  // The det model's shapes, scaled down: many input channels, one output channel.
  DeconvCase c{{2, 24, 20, 17}, {24, 1, 2, 2}};
  c.strides = {2, 2};
  c.act = "Sigmoid";
  check_graph(deconv_graph(c), "y", "deconv-gemm-direct");
}

TEST(FastConvTranspose, K3S2P1OutputPadding1) {
  for (bool bias : {true, false}) {
    DeconvCase c{{1, 5, 7, 6}, {5, 7, 3, 3}};
    c.strides = {2, 2};
    c.pads = {1, 1, 1, 1};
    c.out_pad = {1, 1};
    c.bias = bias;
    check_graph(deconv_graph(c), "y", "deconv-gemm");
    if (HasFatalFailure()) return;
  }
}

TEST(FastConvTranspose, K4S2P1) {
  DeconvCase c{{2, 6, 8, 5}, {6, 4, 4, 4}};
  c.strides = {2, 2};
  c.pads = {1, 1, 1, 1};
  check_graph(deconv_graph(c), "y", "deconv-gemm");
}

TEST(FastConvTranspose, Dilation2AndAsymmetricPads) {
  DeconvCase c{{1, 4, 6, 7}, {4, 3, 3, 2}};
  c.strides = {1, 2};
  c.dil = {2, 2};
  c.pads = {0, 1, 2, 0};
  check_graph(deconv_graph(c), "y", "deconv-gemm");
  DeconvCase d{{1, 3, 5, 5}, {3, 5, 3, 3}};
  d.dil = {2, 1};
  d.bias = false;
  check_graph(deconv_graph(d), "y", "deconv-gemm");
}

TEST(FastConvTranspose, GroupsAutoPadAndOutputShape) {
  DeconvCase c{{1, 6, 5, 7}, {6, 2, 3, 3}};
  c.group = 3;
  c.strides = {2, 2};
  c.pads = {1, 1, 1, 1};
  check_graph(deconv_graph(c), "y", "deconv-gemm");
  if (HasFatalFailure()) return;
  DeconvCase d{{1, 4, 5, 6}, {4, 2, 2, 2}};
  d.group = 2;
  d.strides = {2, 2};
  check_graph(deconv_graph(d), "y", "deconv-gemm-direct");
  if (HasFatalFailure()) return;
  for (const char* ap : {"SAME_UPPER", "SAME_LOWER"}) {
    DeconvCase e{{1, 3, 5, 6}, {3, 4, 3, 3}};
    e.strides = {2, 2};
    e.auto_pad = ap;
    check_graph(deconv_graph(e), "y");
    if (HasFatalFailure()) return;
  }
  DeconvCase f{{1, 3, 5, 6}, {3, 4, 3, 3}};
  f.strides = {2, 2};
  f.output_shape = {10, 13};
  check_graph(deconv_graph(f), "y", "deconv-gemm");
}

TEST(FastConvTranspose, LitheActivationAndResidual) {
  for (bool direct : {true, false})
    for (const char* act : {"Relu", "Sigmoid", ""})
      for (bool residual : {false, true}) {
        if (!*act && !residual) continue;
        DeconvCase c{{1, 7, 6, 9}, {7, 5, direct ? 2 : 3, direct ? 2 : 3}};
        c.strides = {2, 2};
        if (!direct) {
          c.pads = {1, 1, 1, 1};
          c.out_pad = {1, 1};
        }
        c.act = act;
        c.residual = residual;
        SCOPED_TRACE(std::string(direct ? "direct " : "overlap ") + act + (residual ? " +Z" : ""));
        check_graph(deconv_graph(c), "y", direct ? "deconv-gemm-direct" : "deconv-gemm");
        if (HasFatalFailure()) return;
      }
}

TEST(FastConvTranspose, LargeSplitsAcrossThreads) {
  // Enough rows that every thread owns several segments and GEMM chunks.
  DeconvCase c{{1, 24, 40, 40}, {24, 24, 2, 2}};
  c.strides = {2, 2};
  c.act = "Relu";
  check_graph(deconv_graph(c), "y", "deconv-gemm-direct");
  if (HasFatalFailure()) return;
  DeconvCase d{{1, 16, 37, 45}, {16, 8, 3, 3}};
  d.strides = {2, 2};
  d.pads = {1, 1, 1, 1};
  d.out_pad = {1, 1};
  check_graph(deconv_graph(d), "y", "deconv-gemm");
}

}  // namespace
}  // namespace lithe
