// The fast executor (runtime::Program + runtime::Session) against the reference executor on
// single-node graphs, at every ISA level this CPU runs: ConvNhwc (pointwise GEMM, im2col,
// grouped, depthwise), MaxPoolNhwc / AveragePoolNhwc / GlobalAveragePoolNhwc, Gemm and MatMul
// with a constant B. Each case asserts that the node really runs on a fast step, matches the
// reference within 1e-4 x max(1, max |reference|), gives bitwise the same outputs with 1 and 3
// threads, and (run a second time on other inputs) leaves nothing of the first run behind.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <tuple>

#include "builder/build.hpp"
#include "conv_test_util.hpp"
#include "fast_test_util.hpp"
#include "graph_test_util.hpp"
#include "kernels/cpu.hpp"
#include "kernels/kernels.hpp"
#include "lithe/lithe.hpp"
#include "ops/conv_weight_layout.hpp"
#include "ops/infer.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"

namespace lithe {
namespace {

using test::ConvCase;
using test::conv_graph;
using test::GraphBuilder;
using test::out_dim;
using test::random_tensor;

// Max abs error of `got` against `want` within 1e-4 x max(1, max |want|); NaN must match NaN.
void expect_close(size_t k, const Tensor& want, const Tensor& got) {
  const float* w = want.data<float>();
  const float* g = got.data<float>();
  double ref_max = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    if (std::isfinite(w[i])) ref_max = std::max(ref_max, std::fabs(double(w[i])));
  const double tol = 1e-4 * std::max(1.0, ref_max);
  double worst = 0;
  int64_t worst_i = -1;
  for (int64_t i = 0; i < want.numel(); ++i) {
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      ASSERT_TRUE(std::isnan(w[i]) && std::isnan(g[i]))
          << "output " << k << " element " << i << ": want " << w[i] << ", got " << g[i];
      continue;
    }
    const double e = std::fabs(double(w[i]) - double(g[i]));
    if (!(e <= worst)) {
      worst = e;
      worst_i = i;
    }
  }
  ASSERT_LE(worst, tol) << "output " << k << " element " << worst_i << ": want " << w[worst_i]
                        << ", got " << g[worst_i] << " (max |ref| " << ref_max << ")";
}

// Runs `g` on the fast executor at every supported level, with 1 and 3 threads, on two sets of
// seeded inputs, against the reference executor. The node producing `out` must be a fast step.
void check_fast(const std::shared_ptr<ir::Graph>& g, const std::string& out,
                const char* want_kind = nullptr) {
  test::check_fast_node(g, out, want_kind, test::supported_isas(), expect_close);
}

// ---- ConvNhwc -------------------------------------------------------------------------

void check_conv(const ConvCase& k, const char* kind = nullptr) {
  SCOPED_TRACE(k.str());
  const unsigned seed = static_cast<unsigned>(std::hash<std::string>()(k.str()));
  std::shared_ptr<ir::Graph> g;
  ASSERT_NO_THROW(g = conv_graph(k, seed));
  if (k.c == k.group && k.m == k.group) kind = "dwconv";  // C == M == group: depthwise
  check_fast(g, "y", kind);
}

const int64_t kChannels[] = {1, 3, 4, 5, 15, 16, 17, 31, 33};
// Output channels around the 16-column panels, the 2-panel (32) tiles of avx512 and the
// 1.5-panel tiles (a last panel of at most 8 columns: 17, 24, 33, 40, 49).
const int64_t kOutChannels[] = {1, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 49};

TEST(FastKernels, ConvPointwiseChannelSweep) {
  for (int64_t c : kChannels)
    for (int64_t m : kOutChannels) {
      ConvCase k;
      k.c = c;
      k.m = m;
      k.kh = k.kw = 1;
      k.h = 5;  // 25 rows: not a multiple of 3, 6 or 12
      k.w = 5;
      check_conv(k, "conv-gemm");
      if (HasFatalFailure()) return;
    }
}

TEST(FastKernels, ConvPointwiseRowTiles) {
  // Rows around MR multiples and past the row-tile size (up to 8 x MR rows per task).
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{1, 1},
                                                              {1, 2},
                                                              {1, 3},
                                                              {2, 3},
                                                              {1, 11},
                                                              {1, 12},
                                                              {1, 13},
                                                              {5, 7},
                                                              {7, 7},
                                                              {11, 11},
                                                              {12, 8},
                                                              {13, 8},
                                                              {10, 29}})
    for (int64_t m : {17, 33}) {
      ConvCase k;
      k.c = 16;
      k.m = m;
      k.kh = k.kw = 1;
      k.h = h;
      k.w = w;
      check_conv(k, "conv-gemm");
      if (HasFatalFailure()) return;
    }
  // Both GEMM forms: A read in place (few panels or small K) and packed A (K 40, 80 outputs:
  // five panels), over rows around the tiles.
  for (auto [c, m] : std::vector<std::pair<int64_t, int64_t>>{{40, 80}, {33, 65}, {16, 96}})
    for (int64_t h : {1, 5, 13}) {
      ConvCase k;
      k.c = c;
      k.m = m;
      k.kh = k.kw = 1;
      k.h = h;
      k.w = 7;
      k.residual = h == 5;
      check_conv(k, "conv-gemm");
      if (HasFatalFailure()) return;
    }
  // Large K: the row tile shrinks to MR.
  ConvCase k;
  k.c = 1500;
  k.m = 20;
  k.kh = k.kw = 1;
  k.h = 7;
  k.w = 5;
  check_conv(k, "conv-gemm");
}

TEST(FastKernels, Conv3x3ChannelSweep) {
  for (int64_t c : kChannels)
    for (int64_t m : kOutChannels)
      for (int64_t s : {1, 2}) {
        if (s == 2 && m % 2 == 0) continue;  // fewer stride-2 cases
        ConvCase k;
        k.c = c;
        k.m = m;
        k.sh = k.sw = s;
        k.pads = {1, 1, 1, 1};
        k.h = 6;
        k.w = 5;
        check_conv(k, "conv-im2col");
        if (HasFatalFailure()) return;
      }
}

TEST(FastKernels, ConvIm2colBothForms) {
  // Row-major patches read in place (few input channels or few panels) and the packed
  // layout (16+ input channels, 5+ panels), strided, padded and dilated.
  struct P {
    int64_t c, m, s, d;
  };
  for (const P& v : std::vector<P>{
           {3, 80, 2, 1}, {20, 80, 2, 1}, {20, 96, 1, 2}, {17, 70, 2, 2}, {16, 33, 2, 1}}) {
    ConvCase k;
    k.c = v.c;
    k.m = v.m;
    k.sh = k.sw = v.s;
    k.dh = k.dw = v.d;
    k.pads = {1, 2, 2, 1};
    k.h = 11;
    k.w = 9;
    k.residual = v.c == 20;
    check_conv(k, "conv-im2col");
    if (HasFatalFailure()) return;
  }
}

TEST(FastKernels, ConvIm2colKBlocks) {
  // A 7x7 3x3 conv with 512 input channels (K = 4608) and enough output channels for the
  // packed path: one row tile of 49 rows holds over 512 KiB of packed A, so f32_gemm splits K
  // into blocks and stores the sums between them (partial last panel, activations). With a
  // residual it runs K whole.
  struct P {
    int64_t m;
    bool residual;
    std::string act;
  };
  for (const P& v :
       std::vector<P>{{300, false, "Relu"}, {272, false, "Sigmoid"}, {288, true, "Relu"}}) {
    ConvCase k;
    k.c = 512;
    k.m = v.m;
    k.h = k.w = 7;
    k.pads = {1, 1, 1, 1};
    k.residual = v.residual;
    k.act = v.act;
    check_conv(k, "conv-im2col");
    if (HasFatalFailure()) return;
  }
}

TEST(FastKernels, ConvWinograd3x3) {
  // Stride-1 3x3 with at least 64 output pixels and 8 channels each way: Winograd F(4x4, 3x3).
  // Output sizes not a multiple of the 4x4 tile, pads 0/1/asymmetric, channel tails, bias,
  // residual and activations, batch 2.
  struct W {
    int64_t h, w, c, m;
    std::vector<int64_t> pads;
    bool bias, residual;
    std::string act;
    int64_t n;
  };
  for (const W& v : std::vector<W>{{8, 8, 8, 8, {1, 1, 1, 1}, true, false, "", 1},
                                   {10, 9, 17, 33, {1, 1, 1, 1}, true, true, "Relu", 1},
                                   {13, 11, 16, 20, {0, 0, 0, 0}, false, false, "", 2},
                                   {9, 14, 35, 9, {0, 1, 2, 0}, true, false, "Sigmoid", 1},
                                   {29, 31, 24, 48, {1, 1, 1, 1}, true, true, "HardSwish", 1},
                                   // 1.5 panels, read in place; 17 panels, packed rows
                                   {11, 12, 40, 24, {1, 1, 1, 1}, true, false, "", 1},
                                   {12, 10, 40, 264, {1, 1, 1, 1}, true, true, "Relu", 1}}) {
    ConvCase k;
    k.n = v.n;
    k.h = v.h;
    k.w = v.w;
    k.c = v.c;
    k.m = v.m;
    k.pads = v.pads;
    k.bias = v.bias;
    k.residual = v.residual;
    k.act = v.act;
    if (v.act == "HardSwish") k.affine = {0.75f, -0.125f};
    check_conv(k, "conv-winograd");
    if (HasFatalFailure()) return;
  }
}

TEST(FastKernels, ConvGeometry) {
  std::vector<ConvCase> cases;
  auto add = [&](auto f) {
    ConvCase k;
    f(k);
    cases.push_back(k);
  };
  add([](ConvCase& k) {  // 7x7 stride 2 stem
    k.c = 3, k.m = 16, k.h = 15, k.w = 13, k.kh = k.kw = 7, k.sh = k.sw = 2, k.pads = {3, 3, 3, 3};
  });
  add([](ConvCase& k) {
    k.c = 3, k.m = 17, k.h = 16, k.w = 16, k.kh = k.kw = 7, k.sh = k.sw = 2, k.pads = {3, 3, 3, 3};
  });
  add([](ConvCase& k) {  // dilation 2
    k.c = 5, k.m = 17, k.h = 9, k.w = 8, k.dh = k.dw = 2, k.pads = {2, 2, 2, 2};
  });
  add([](ConvCase& k) {
    k.c = 16, k.m = 33, k.h = 9, k.w = 9, k.dh = 2, k.dw = 3, k.pads = {1, 0, 2, 3};
  });
  add([](ConvCase& k) {  // asymmetric pads
    k.c = 4, k.m = 16, k.h = 6, k.w = 7, k.pads = {0, 1, 2, 0};
  });
  add([](ConvCase& k) { k.c = 17, k.m = 31, k.h = 5, k.w = 6, k.pads = {2, 0, 0, 1}, k.sh = 2; });
  add([](ConvCase& k) {  // no padding, stride 2
    k.c = 8, k.m = 24, k.h = 9, k.w = 7, k.sh = k.sw = 2;
  });
  add([](ConvCase& k) {  // rectangular kernels, asymmetric strides
    k.c = 6, k.m = 20, k.h = 7, k.w = 9, k.kh = 1, k.kw = 3, k.sw = 2, k.pads = {0, 1, 0, 1};
  });
  add([](ConvCase& k) {
    k.c = 6, k.m = 20, k.h = 9, k.w = 7, k.kh = 3, k.kw = 1, k.sh = 2, k.pads = {1, 0, 1, 0};
  });
  add([](ConvCase& k) {  // 1x1 stride 2 (not the pointwise path)
    k.c = 16, k.m = 32, k.h = 9, k.w = 8, k.kh = k.kw = 1, k.sh = k.sw = 2;
  });
  add([](ConvCase& k) {  // 1x1 with pads on every side
    k.c = 8, k.m = 17, k.h = 5, k.w = 4, k.kh = k.kw = 1, k.pads = {1, 1, 1, 1};
  });
  add([](ConvCase& k) {  // 5x5 on a bigger image: several row tiles per image
    k.c = 3, k.m = 16, k.h = 24, k.w = 21, k.kh = k.kw = 5, k.pads = {2, 2, 2, 2};
  });
  add([](ConvCase& k) {  // kernel as big as the padded input
    k.c = 2, k.m = 5, k.h = 3, k.w = 3, k.kh = k.kw = 5, k.pads = {1, 1, 1, 1};
  });
  add([](ConvCase& k) {  // batch 2
    k.n = 2, k.c = 5, k.m = 33, k.h = 7, k.w = 5, k.pads = {1, 1, 1, 1}, k.residual = true;
  });
  for (const ConvCase& k : cases) {
    check_conv(k);
    if (HasFatalFailure()) return;
  }
}

// 1x1, stride 1, no begin padding but end padding: the output is larger than the input, so
// it is not a plain GEMM over the input pixels.
TEST(FastKernels, ConvPointwiseWithEndPadsOnly) {
  for (auto pads : std::vector<std::vector<int64_t>>{{0, 0, 1, 1}, {0, 0, 0, 2}, {0, 0, 1, 0}}) {
    ConvCase k;
    k.c = 4;
    k.m = 16;
    k.kh = k.kw = 1;
    k.h = 4;
    k.w = 5;
    k.pads = pads;
    check_conv(k);
  }
}

TEST(FastKernels, ConvGrouped) {
  struct G {
    int64_t c, m, group;
  };
  for (G gc : {G{8, 8, 2}, G{8, 16, 2}, G{6, 34, 2}, G{8, 12, 4}, G{16, 32, 4}, G{12, 68, 4},
               G{4, 8, 4}, G{3, 6, 3}})
    for (int64_t kk : {1, 3})
      for (int64_t s : {1, 2}) {
        ConvCase k;
        k.c = gc.c;
        k.m = gc.m;
        k.group = gc.group;
        k.kh = k.kw = kk;
        k.sh = k.sw = s;
        k.pads = kk == 3 ? std::vector<int64_t>{1, 1, 1, 1} : std::vector<int64_t>{0, 0, 0, 0};
        k.h = 7;
        k.w = 6;
        k.n = s == 2 ? 2 : 1;
        k.residual = s == 2;
        check_conv(k);
        if (HasFatalFailure()) return;
      }
}

// A depthwise K x K conv over C channels, stride s, "same" padding, on an h x w image.
ConvCase depthwise_case(int64_t c, int64_t kk, int64_t s, int64_t h, int64_t w) {
  ConvCase k;
  k.c = k.m = k.group = c;
  k.kh = k.kw = kk;
  k.sh = k.sw = s;
  const int64_t p = kk / 2;
  k.pads = {p, p, p, p};
  k.h = h;
  k.w = w;
  return k;
}

TEST(FastKernels, ConvDepthwise) {
  for (int64_t c : kChannels)
    for (int64_t kk : {3, 5})
      for (int64_t s : {1, 2}) {
        check_conv(depthwise_case(c, kk, s, 9, 7), "dwconv");
        if (HasFatalFailure()) return;
      }
  std::vector<ConvCase> extra;
  ConvCase k;
  k.c = k.m = k.group = 33;
  k.dh = k.dw = 2;
  k.pads = {2, 2, 2, 2};
  k.h = 8;
  k.w = 9;
  extra.push_back(k);  // dilation 2
  k.dh = k.dw = 1;
  k.pads = {0, 1, 2, 0};
  extra.push_back(k);  // asymmetric pads
  k.pads = {0, 0, 0, 0};
  k.n = 2;
  k.residual = true;
  k.bias = false;
  extra.push_back(k);  // batch 2, residual, no bias
  k.c = k.m = k.group = 48;
  k.kh = 5;
  k.kw = 3;
  k.sh = 2;
  k.pads = {2, 1, 2, 1};
  extra.push_back(k);
  for (const ConvCase& e : extra) {
    check_conv(e, "dwconv");
    if (HasFatalFailure()) return;
  }
  // Rows wide enough for groups of four pixels with a partial last group, channels in 8- and
  // 4-wide blocks plus single ones, under each epilogue of the pixel-outer path (the cheap
  // activations and ReLU + affine inline; Clip + affine, residuals and the transcendental
  // activations through the general one).
  for (const char* act : {"", "Relu", "Clip", "HardSwish", "Relu+affine", "Clip+affine", "Sigmoid"})
    for (int64_t c : {20, 22})
      for (int64_t kk : {3, 5})
        for (int64_t s : {1, 2}) {
          ConvCase w = depthwise_case(c, kk, s, 6, 23);
          const std::string a = act;
          w.act = a.substr(0, a.find('+'));
          if (a.find("+affine") != std::string::npos) w.affine = {-1.25f, 0.5f};
          if (w.act == "Clip") w.params = {-0.25f, 0.5f};
          w.residual = c == 22;
          check_conv(w, "dwconv");
          if (HasFatalFailure()) return;
        }
  // group == C with a channel multiplier (M = 2C): not depthwise, GEMM per group.
  ConvCase mult;
  mult.c = mult.group = 5;
  mult.m = 10;
  mult.pads = {1, 1, 1, 1};
  check_conv(mult, "conv-im2col");
}

struct Act {
  const char* name;
  std::vector<float> params;
  std::vector<float> affine = {};
};
const Act kActs[] = {{"", {}},
                     {"Relu", {}},
                     {"Clip", {-0.5f, 0.75f}},
                     {"Clip", {0.0f, 6.0f}},
                     {"LeakyRelu", {}},
                     {"LeakyRelu", {0.2f}},
                     {"HardSigmoid", {}},
                     {"HardSigmoid", {0.3f, 0.4f}},
                     {"HardSwish", {}},
                     {"Sigmoid", {}},
                     {"SiLU", {}},
                     {"Tanh", {}},
                     // With the affine map after the activation (vector and scalar paths).
                     {"Clip", {0.0f, 6.0f}, {0.5f, 1.0f}},
                     {"HardSwish", {}, {1.5f, -0.25f}},
                     {"Sigmoid", {}, {-2.0f, 0.5f}},
                     {"Tanh", {}, {3.0f, -0.0f}}};

TEST(FastKernels, ConvActivationsBiasResidualBatch) {
  for (const Act& a : kActs)
    for (int shape = 0; shape < 3; ++shape)
      for (int br = 0; br < 4; ++br) {
        ConvCase k;
        k.n = 2;
        k.act = a.name;
        k.params = a.params;
        k.affine = a.affine;
        k.bias = br & 1;
        k.residual = br & 2;
        k.h = 5;
        k.w = 7;
        if (shape == 0) {  // pointwise
          k.c = 17;
          k.m = 33;
          k.kh = k.kw = 1;
        } else if (shape == 1) {  // im2col
          k.c = 5;
          k.m = 17;
          k.pads = {1, 1, 1, 1};
        } else {  // depthwise
          k.c = k.m = k.group = 21;
          k.pads = {1, 1, 1, 1};
        }
        check_conv(k);
        if (HasFatalFailure()) return;
      }
}

// The residual produced inside the arena by an earlier node (not a graph input).
TEST(FastKernels, ConvResidualFromArena) {
  for (int64_t kk : {1, 3}) {
    GraphBuilder b;
    b.input("x", {1, 6, 5, 8}).input("z0", {1, 6, 5, 16});
    b.constant_tensor("w", random_tensor({16, 8, kk, kk}, 5));
    b.constant_tensor("b", random_tensor({16}, 6));
    b.node("Relu", {"z0"}, {"z"});
    ir::Node& n = b.node("ConvNhwc", {"x", "w", "b", "z"}, {"y"});
    n.domain = "lithe";
    n.opset = 1;
    n.attrs["pads"] = GraphBuilder::ints(kk == 3 ? std::vector<int64_t>{1, 1, 1, 1}
                                                 : std::vector<int64_t>{0, 0, 0, 0});
    n.attrs["activation"] = GraphBuilder::s("Relu");
    b.output("y");
    SCOPED_TRACE("ConvNhwc k" + std::to_string(kk) + " with residual from Relu");
    check_fast(b.build(), "y");
  }
}

// ---- pools ------------------------------------------------------------------------------

struct PoolCase {
  std::string op;
  int64_t n = 1, c = 4, h = 7, w = 7, kh = 3, kw = 3, sh = 1, sw = 1, dh = 1, dw = 1;
  std::vector<int64_t> pads = {0, 0, 0, 0};
  int64_t ceil_mode = 0, count_include_pad = 0;
  std::string str() const {
    std::ostringstream o;
    o << op << " n" << n << " c" << c << " h" << h << " w" << w << " k" << kh << "x" << kw << " s"
      << sh << "x" << sw << " d" << dh << "x" << dw << " pads [" << pads[0] << "," << pads[1] << ","
      << pads[2] << "," << pads[3] << "] ceil_mode " << ceil_mode << " count_include_pad "
      << count_include_pad;
    return o.str();
  }
};

void check_pool(const PoolCase& k) {
  SCOPED_TRACE(k.str());
  GraphBuilder b;
  b.input("x", {k.n, k.h, k.w, k.c});
  ir::Node& n = b.node(k.op, {"x"}, {"y"});
  n.domain = "lithe";
  n.opset = 1;
  if (k.op != "GlobalAveragePoolNhwc") {
    n.attrs["kernel_shape"] = GraphBuilder::ints({k.kh, k.kw});
    n.attrs["strides"] = GraphBuilder::ints({k.sh, k.sw});
    n.attrs["pads"] = GraphBuilder::ints(k.pads);
    n.attrs["ceil_mode"] = GraphBuilder::i(k.ceil_mode);
    if (k.dh != 1 || k.dw != 1) n.attrs["dilations"] = GraphBuilder::ints({k.dh, k.dw});
    if (k.op == "AveragePoolNhwc")
      n.attrs["count_include_pad"] = GraphBuilder::i(k.count_include_pad);
  }
  b.output("y");
  std::shared_ptr<ir::Graph> g;
  ASSERT_NO_THROW(g = b.build());
  check_fast(g, "y");
}

// Adds lithe.ConvNhwc node `out` = conv(in): random k x k weights (and bias), stride s, pads
// k / 2, optionally Clip(0, 6) and a residual input.
void add_conv(GraphBuilder& b, const std::string& in, const std::string& out, int64_t ci,
              int64_t co, int64_t k, int64_t s, int64_t group, unsigned seed, bool bias = false,
              bool clip = false, const std::string& residual = "") {
  b.constant_tensor(out + "_w", random_tensor({co, ci / group, k, k}, seed + co + k));
  std::vector<std::string> ins = {in, out + "_w"};
  if (bias) {
    b.constant_tensor(out + "_b", random_tensor({co}, seed + co + 7));
    ins.push_back(out + "_b");
  }
  if (!residual.empty()) {
    if (!bias) ins.push_back("");
    ins.push_back(residual);
  }
  ir::Node& n = b.node("ConvNhwc", ins, {out});
  n.domain = "lithe";
  n.opset = 1;
  n.attrs["group"] = GraphBuilder::i(group);
  n.attrs["strides"] = GraphBuilder::ints({s, s});
  n.attrs["dilations"] = GraphBuilder::ints({1, 1});
  n.attrs["pads"] = GraphBuilder::ints({k / 2, k / 2, k / 2, k / 2});
  if (clip) {
    n.attrs["activation"] = GraphBuilder::s("Clip");
    n.attrs["activation_params"] = test::attr_fs({0.0f, 6.0f});
  }
}

// Runs `prog` with an observer set (every node on its own step) and without (the fused
// steps) at 1 and 3 threads: the output must match the reference `want` and be bitwise the
// same either way. Returns how many node outputs the observer saw.
int check_fused_run(const std::shared_ptr<runtime::Program>& prog, const std::vector<Tensor>& ins,
                    const Tensor& want) {
  runtime::Session steps(prog, 1);
  int observed = 0;
  steps.set_observer([&](int, const Tensor&) { ++observed; });
  const std::vector<Tensor> separate = test::run_session(steps, ins);
  expect_close(0, want, separate[0]);
  for (int threads : {1, 3}) {
    runtime::Session fused(prog, threads);
    const std::vector<Tensor> got = test::run_session(fused, ins);
    EXPECT_EQ(0, std::memcmp(got[0].raw(), separate[0].raw(), got[0].nbytes()))
        << threads << " thread(s): the fused steps differ from the separate steps";
  }
  return observed;
}

// An inverted residual block (1x1 expansion with Clip -> depthwise with Clip -> 1x1
// projection, maybe with a residual) whose expanded tensor exceeds L2 runs as one fused step
// (runtime::fuse_inverted_residual). Its output must be bitwise that of the three steps (the
// path taken with an observer set), with 1 and 3 threads, and match the reference executor.
TEST(FastKernels, InvertedResidualFusedStep) {
  struct B {
    int64_t h, w, c, m, n, k, s;
    bool residual;
  };
  for (const B& v : std::vector<B>{{40, 40, 16, 96, 24, 3, 1, true},
                                   {37, 45, 7, 100, 24, 3, 2, false},
                                   {30, 33, 24, 144, 40, 5, 1, false},
                                   {29, 31, 32, 160, 32, 5, 2, true},
                                   {24, 24, 40, 264, 16, 3, 1, false}}) {  // packed A (K 40, N 264)
    const int64_t pad = v.k / 2, oh = out_dim(v.h, v.k, v.s, 1, pad, pad),
                  ow = out_dim(v.w, v.k, v.s, 1, pad, pad);
    SCOPED_TRACE(std::to_string(v.h) + "x" + std::to_string(v.w) + " C " + std::to_string(v.c) +
                 " M " + std::to_string(v.m) + " N " + std::to_string(v.n) + " k " +
                 std::to_string(v.k) + " s " + std::to_string(v.s));
    const unsigned seed = static_cast<unsigned>(v.h * 131 + v.m);
    GraphBuilder b;
    b.input("x", {1, v.h, v.w, v.c});
    if (v.residual) b.input("z", {1, oh, ow, v.n});
    add_conv(b, "x", "e", v.c, v.m, 1, 1, 1, seed, true, true);
    add_conv(b, "e", "d", v.m, v.m, v.k, v.s, v.m, seed, true, true);
    add_conv(b, "d", "y", v.m, v.n, 1, 1, 1, seed, true, false, v.residual ? "z" : "");
    b.output("y");
    std::shared_ptr<ir::Graph> g = b.build();
    const plan::MemoryPlan plan = plan::plan_memory(*g);
    const std::vector<Tensor> ins = test::seeded_inputs(*g, seed);
    const std::vector<Tensor> want = test::run_graph(g, ins);
    for (kernels::Isa isa : test::supported_isas()) {
      SCOPED_TRACE(kernels::isa_name(isa));
      auto prog = std::make_shared<runtime::Program>(g, plan, isa);
      ASSERT_NE(prog->fused_step(2), nullptr) << "the projection is not fused";
      EXPECT_STREQ(prog->fused_step(2)->kind(), "fused-ir");
      EXPECT_TRUE(prog->absorbed(0) && prog->absorbed(1));
      EXPECT_EQ(check_fused_run(prog, ins, want[0]), 3);  // the observed run: every node
      if (HasFailure()) return;
    }
  }
}

// A chain pointwise -> depthwise -> pointwise -> depthwise -> pointwise (MobileNetV1's
// pattern) holds two overlapping blocks; the middle pointwise conv is the first block's
// projection and the second's expansion. Only the first block is fused, and the output is
// the separate steps'.
TEST(FastKernels, InvertedResidualChainFusesEveryOtherBlock) {
  GraphBuilder b;
  b.input("x", {1, 36, 36, 8});
  add_conv(b, "x", "p1", 8, 128, 1, 1, 1, 17);
  add_conv(b, "p1", "d2", 128, 128, 3, 1, 128, 17);
  add_conv(b, "d2", "p2", 128, 128, 1, 1, 1, 17);
  add_conv(b, "p2", "d3", 128, 128, 3, 1, 128, 17);
  add_conv(b, "d3", "y", 128, 64, 1, 1, 1, 17);
  b.output("y");
  std::shared_ptr<ir::Graph> g = b.build();
  const plan::MemoryPlan plan = plan::plan_memory(*g);
  auto prog = std::make_shared<runtime::Program>(g, plan, kernels::best_isa());
  EXPECT_NE(prog->fused_step(2), nullptr);
  EXPECT_EQ(prog->fused_step(4), nullptr);
  EXPECT_FALSE(prog->absorbed(2));
  const std::vector<Tensor> ins = test::seeded_inputs(*g, 3);
  const std::vector<Tensor> want = test::run_graph(g, ins);
  EXPECT_EQ(check_fused_run(prog, ins, want[0]), 5);
}

// A plan that puts the projection's output over the block's input (legal: the input is dead
// once the expansion ran) keeps the three steps: the fused step would overwrite input rows
// the expansion has yet to read.
TEST(FastKernels, InvertedResidualNotFusedOverItsInput) {
  GraphBuilder b;
  b.input("a", {1, 40, 40, 16});
  b.node("Relu", {"a"}, {"x"});
  add_conv(b, "x", "e", 16, 96, 1, 1, 1, 91);
  add_conv(b, "e", "d", 96, 96, 3, 1, 96, 91);
  add_conv(b, "d", "y", 96, 16, 1, 1, 1, 91);
  b.output("y");
  std::shared_ptr<ir::Graph> g = b.build();
  plan::MemoryPlan plan = plan::plan_memory(*g);
  const int x = g->find_value("x"), y = g->find_value("y");
  ASSERT_GE(plan.offset[static_cast<size_t>(x)], 0);
  const std::vector<Tensor> ins = test::seeded_inputs(*g, 5);
  const std::vector<Tensor> want = test::run_graph(g, ins);
  {  // as planned, the block is fused (the check below is not vacuous)
    auto prog = std::make_shared<runtime::Program>(g, plan, kernels::best_isa());
    ASSERT_NE(prog->fused_step(3), nullptr);
  }
  // y over x, and d (which took x's bytes once x was dead) moved to a new end of the arena.
  const size_t d = static_cast<size_t>(g->find_value("d"));
  plan.offset[static_cast<size_t>(y)] = plan.offset[static_cast<size_t>(x)];
  plan.offset[d] = (plan.arena_bytes + 63) / 64 * 64;
  plan.arena_bytes = plan.offset[d] + plan.bytes[d];
  ASSERT_NO_THROW(plan::check_plan(*g, plan));
  auto prog = std::make_shared<runtime::Program>(g, plan, kernels::best_isa());
  EXPECT_EQ(prog->fused_step(3), nullptr);
  for (int threads : {1, 3}) {
    runtime::Session s(prog, threads);
    expect_close(0, want[0], test::run_session(s, ins)[0]);
  }
}

// PP-LCNet's blocks: 384-channel 1x1 convs around a 5x5 depthwise on rows of 64 pixels. Each
// chunk of one output row would read all of both convs' weights again (2.4 M floats per image
// against 0.4 M of expanded and depthwise outputs), so the three steps stay separate; with 48
// channels (the weights 64 times smaller) the same block is fused.
TEST(FastKernels, InvertedResidualNotFusedWhenWeightsDominate) {
  for (int64_t ch : {384, 48}) {
    SCOPED_TRACE(ch);
    const int64_t w = ch == 384 ? 64 : 512;  // the expanded tensor over 512 KiB either way
    GraphBuilder b;
    b.input("x", {1, 8, w, ch});
    add_conv(b, "x", "e", ch, ch, 1, 1, 1, 17);
    add_conv(b, "e", "d", ch, ch, 5, 1, ch, 17);
    add_conv(b, "d", "y", ch, ch, 1, 1, 1, 17);
    b.output("y");
    std::shared_ptr<ir::Graph> g = b.build();
    auto prog = std::make_shared<runtime::Program>(g, plan::plan_memory(*g), kernels::best_isa());
    EXPECT_EQ(prog->fused_step(2) != nullptr, ch == 48);
  }
}

TEST(FastKernels, Pools) {
  struct Geo {
    int64_t h, w, kh, kw, s;
    std::vector<int64_t> pads;
  };
  const Geo geos[] = {{7, 7, 3, 3, 1, {1, 1, 1, 1}}, {8, 7, 3, 3, 2, {1, 1, 1, 1}},
                      {8, 8, 2, 2, 2, {0, 0, 0, 0}}, {9, 6, 3, 2, 2, {0, 1, 2, 0}},
                      {6, 6, 3, 3, 2, {0, 0, 0, 0}}, {5, 9, 5, 5, 3, {2, 2, 2, 2}}};
  for (const char* op : {"MaxPoolNhwc", "AveragePoolNhwc"})
    for (int64_t c : kChannels)
      for (size_t gi = 0; gi < std::size(geos); ++gi)
        for (int64_t ceil_mode : {0, 1})
          for (int64_t cip : {0, 1}) {
            if (std::string(op) == "MaxPoolNhwc" && cip) continue;
            const Geo& geo = geos[gi];
            PoolCase k;
            k.op = op;
            k.c = c;
            k.h = geo.h;
            k.w = geo.w;
            k.kh = geo.kh;
            k.kw = geo.kw;
            k.sh = k.sw = geo.s;
            k.pads = geo.pads;
            k.ceil_mode = ceil_mode;
            k.count_include_pad = cip;
            k.n = gi % 3 == 1 ? 2 : 1;
            check_pool(k);
            if (HasFatalFailure()) return;
          }
  // Dilated max pool.
  PoolCase k;
  k.op = "MaxPoolNhwc";
  k.c = 17;
  k.h = 9;
  k.w = 8;
  k.dh = k.dw = 2;
  k.pads = {1, 1, 1, 1};
  check_pool(k);
  // Wide channels (blocks of 8 vectors at every level, then the tails) and a window of more
  // than 64 taps (the per-vector path).
  for (const char* op : {"MaxPoolNhwc", "AveragePoolNhwc"})
    for (int64_t c : {133, 200}) {
      PoolCase w;
      w.op = op;
      w.c = c;
      w.h = 11;
      w.w = 10;
      w.sh = w.sw = 2;
      w.pads = {1, 0, 1, 1};
      check_pool(w);
      w.kh = w.kw = 9;
      w.sh = w.sw = 1;
      w.pads = {4, 4, 4, 4};
      check_pool(w);
    }
}

TEST(FastKernels, GlobalAveragePool) {
  // Small windows (a list of taps), and windows of more than 64 taps (read in memory order, 8
  // vectors of channels at a time, then the tails) with fewer images than threads (the
  // threads split the channels).
  using Shapes = std::vector<std::tuple<int64_t, int64_t, int64_t>>;  // n, h, w
  const std::vector<std::pair<std::vector<int64_t>, Shapes>> sets = {
      {{std::begin(kChannels), std::end(kChannels)}, {{1, 1, 1}, {1, 7, 7}, {2, 5, 3}, {1, 13, 1}}},
      {{33, 150, 200}, {{1, 20, 20}, {2, 9, 9}, {1, 1, 70}}}};
  for (const auto& [channels, shapes] : sets)
    for (int64_t c : channels)
      for (auto [n, h, w] : shapes) {
        PoolCase k;
        k.op = "GlobalAveragePoolNhwc";
        k.n = n;
        k.c = c;
        k.h = h;
        k.w = w;
        check_pool(k);
        if (HasFatalFailure()) return;
      }
}

// ---- Gemm / MatMul ----------------------------------------------------------------------

TEST(FastKernels, Gemm) {
  unsigned seed = 500;
  for (int64_t m : {1, 7, 13})
    for (int64_t n : {1, 16, 17, 100})
      for (int64_t k : {3, 37, 150})  // 150: whole AVX-512 steps of 64 and a tail (gemv)
        for (int trans_b : {0, 1})
          for (int bias : {0, 1, 2}) {  // none, [N], [1, N]
            std::ostringstream d;
            d << "Gemm M" << m << " N" << n << " K" << k << " transB " << trans_b << " bias "
              << (bias == 0   ? "none"
                  : bias == 1 ? "[N]"
                              : "[1,N]");
            SCOPED_TRACE(d.str());
            GraphBuilder b;
            b.input("a", {m, k});
            b.constant_tensor("b", random_tensor(trans_b ? Shape{n, k} : Shape{k, n}, ++seed));
            std::vector<std::string> ins = {"a", "b"};
            if (bias) {
              b.constant_tensor("c", random_tensor(bias == 1 ? Shape{n} : Shape{1, n}, ++seed));
              ins.push_back("c");
            }
            b.node("Gemm", ins, {"y"}).attrs["transB"] = GraphBuilder::i(trans_b);
            b.output("y");
            // One row against B^T reads B in place (a batch-1 Linear layer).
            check_fast(b.build(), "y", m == 1 && trans_b ? "gemv" : "gemm");
            if (HasFatalFailure()) return;
          }
}

TEST(FastKernels, GemmFusedActivationAndResidual) {
  unsigned seed = 900;
  for (const Act& a : kActs)
    for (int64_t m : {1, 13})
      for (int64_t n : {17, 100})
        for (int res : {0, 1}) {
          std::ostringstream d;
          d << "lithe.Gemm M" << m << " N" << n << " K 20 act '" << a.name << "' residual " << res
            << " affine " << !a.affine.empty();
          SCOPED_TRACE(d.str());
          GraphBuilder b;
          b.input("a", {m, 20});
          b.constant_tensor("b", random_tensor({n, 20}, ++seed));
          b.constant_tensor("c", random_tensor({n}, ++seed));
          std::vector<std::string> ins = {"a", "b", "c"};
          if (res) {
            b.input("z", {m, n});
            ins.push_back("z");
          }
          ir::Node& node = b.node("Gemm", ins, {"y"});
          node.domain = "lithe";
          node.opset = 13;
          node.attrs["transB"] = GraphBuilder::i(1);
          if (*a.name) node.attrs["activation"] = GraphBuilder::s(a.name);
          if (!a.params.empty()) node.attrs["activation_params"] = test::attr_fs(a.params);
          if (!a.affine.empty()) node.attrs["activation_affine"] = test::attr_fs(a.affine);
          b.output("y");
          check_fast(b.build(), "y", m == 1 ? "gemv" : "gemm");
          if (HasFatalFailure()) return;
        }
}

TEST(FastKernels, MatMulConstantB) {
  unsigned seed = 700;
  for (Shape as : std::vector<Shape>{{1, 9}, {7, 9}, {13, 9}, {2, 7, 9}, {3, 5, 9}, {1, 1, 9}})
    for (int64_t n : {1, 16, 17, 100}) {
      std::ostringstream d;
      d << "MatMul A " << shape_str(as) << " B [9," << n << "]";
      SCOPED_TRACE(d.str());
      GraphBuilder b;
      b.input("a", as);
      b.constant_tensor("b", random_tensor({9, n}, ++seed));
      b.node("MatMul", {"a", "b"}, {"y"});
      b.output("y");
      check_fast(b.build(), "y", "gemm");
      if (HasFatalFailure()) return;
    }
  // lithe-domain MatMul with an activation and the residual at index 2.
  for (int res : {0, 1}) {
    SCOPED_TRACE("lithe.MatMul A [2,7,9] B [9,33] SiLU residual " + std::to_string(res));
    GraphBuilder b;
    b.input("a", {2, 7, 9});
    b.constant_tensor("b", random_tensor({9, 33}, 77));
    std::vector<std::string> ins = {"a", "b"};
    if (res) {
      b.input("z", {2, 7, 33});
      ins.push_back("z");
    }
    ir::Node& node = b.node("MatMul", ins, {"y"});
    node.domain = "lithe";
    node.attrs["activation"] = GraphBuilder::s("SiLU");
    b.output("y");
    check_fast(b.build(), "y", "gemm");
  }
}

// ---- ISA selection --------------------------------------------------------------------

TEST(FastKernels, ParseIsaRejectsUnknownLevelNamingIt) {
  try {
    kernels::parse_isa("sse9");
    ADD_FAILURE() << "parse_isa(\"sse9\") did not fail";
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), "sse9");
  }
  for (kernels::Isa i : {kernels::Isa::kPortable, kernels::Isa::kAvx2, kernels::Isa::kAvx512})
    EXPECT_EQ(kernels::parse_isa(kernels::isa_name(i)), i);
  EXPECT_TRUE(kernels::isa_supported(kernels::Isa::kPortable));
  EXPECT_TRUE(kernels::isa_supported(kernels::best_isa()));
}

// Sets an environment variable for the scope, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(FastKernels, EngineIsaOption) {
  const std::string model = std::string(LITHE_SOURCE_DIR) + "/examples/tiny_cnn.onnx";
  {
    ScopedEnv env("LITHE_ISA", nullptr);
    LoadOptions o;
    o.isa = "reference";
    EXPECT_EQ(Engine::load(model, o)->isa(), "reference");
    EXPECT_EQ(Engine::load(model)->isa(), kernels::isa_name(kernels::best_isa()));
    for (kernels::Isa i : test::supported_isas()) {
      o.isa = kernels::isa_name(i);
      EXPECT_EQ(Engine::load(model, o)->isa(), kernels::isa_name(i));
    }
    o.isa = "sse9";
    try {
      Engine::load(model, o);
      ADD_FAILURE() << "isa sse9 was accepted";
    } catch (const Error& e) {
      EXPECT_CONTAINS(std::string(e.what()), "sse9");
    }
  }
  {
    ScopedEnv env("LITHE_ISA", "reference");
    EXPECT_EQ(Engine::load(model)->isa(), "reference");
    LoadOptions o;
    o.isa = "portable";  // the option wins over the environment
    EXPECT_EQ(Engine::load(model, o)->isa(), "portable");
  }
  {
    ScopedEnv env("LITHE_ISA", "portable");
    EXPECT_EQ(Engine::load(model)->isa(), "portable");
  }
  {
    ScopedEnv env("LITHE_ISA", "sse9");
    try {
      Engine::load(model);
      ADD_FAILURE() << "LITHE_ISA=sse9 was accepted";
    } catch (const Error& e) {
      EXPECT_CONTAINS(std::string(e.what()), "sse9");
    }
  }
}

}  // namespace
}  // namespace lithe

// ---- MatMul of two computed tensors, data movement -------------------------------------

namespace lithe {
namespace {

TEST(FastKernels, MatMulBothComputedBroadcastBatches) {
  // Attention-style products with batch broadcasting both ways.
  struct C {
    Shape a, b;
  };
  for (const C& c : std::vector<C>{{{8, 40, 15}, {8, 15, 40}},
                                   {{1, 8, 40, 15}, {1, 8, 15, 40}},
                                   {{2, 3, 5, 7}, {1, 7, 17}},
                                   {{5, 7}, {4, 7, 33}},
                                   {{3, 1, 13, 9}, {1, 2, 9, 16}}}) {
    SCOPED_TRACE("MatMul A " + shape_str(c.a) + " B " + shape_str(c.b));
    GraphBuilder b;
    b.input("a", c.a);
    b.input("b", c.b);
    b.node("MatMul", {"a", "b"}, {"y"});
    b.output("y");
    check_fast(b.build(), "y", "batched-gemm");
    if (HasFatalFailure()) return;
  }
}

Tensor i64(Shape shape, std::vector<int64_t> v) {
  Tensor t(DType::kInt64, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

TEST(FastKernels, DataMovementIndexMaps) {
  {
    SCOPED_TRACE("Slice axes 0 and 2, negative step");
    GraphBuilder b;
    b.input("x", {3, 4, 10});
    b.constant_tensor("s", i64({2}, {1, 8}));
    b.constant_tensor("e", i64({2}, {3, 1}));
    b.constant_tensor("a", i64({2}, {0, 2}));
    b.constant_tensor("p", i64({2}, {1, -3}));
    b.node("Slice", {"x", "s", "e", "a", "p"}, {"y"});
    b.output("y");
    check_fast(b.build(), "y", "index-map");
    if (HasFatalFailure()) return;
  }
  {
    SCOPED_TRACE("Gather axis 1 with negative indices");
    GraphBuilder b;
    b.input("x", {2, 5, 3});
    b.constant_tensor("i", i64({2, 2}, {0, -1, 3, 3}));
    ir::Node& n = b.node("Gather", {"x", "i"}, {"y"});
    n.attrs["axis"] = GraphBuilder::i(1);
    b.output("y");
    check_fast(b.build(), "y", "index-map");
    if (HasFatalFailure()) return;
  }
  {
    SCOPED_TRACE("Expand and Tile");
    GraphBuilder b;
    b.input("x", {3, 1});
    b.constant_tensor("s", i64({3}, {2, 3, 4}));
    b.node("Expand", {"x", "s"}, {"y"});
    b.constant_tensor("r", i64({3}, {2, 1, 3}));
    b.node("Tile", {"y", "r"}, {"t"});
    b.output("t");
    check_fast(b.build(), "t", "index-map");
    if (HasFatalFailure()) return;
  }
}

TEST(FastKernels, ConcatSplitInnerAxesAndConstantOfShape) {
  // Axis 1 of a 4-D tensor (outer size 2): not an alias, a strided copy.
  GraphBuilder b;
  b.input("x", {2, 3, 4, 5});
  b.input("z", {2, 6, 4, 5});
  ir::Node& c = b.node("Concat", {"x", "z"}, {"y"});
  c.attrs["axis"] = GraphBuilder::i(1);
  ir::Node& s = b.node("Split", {"y"}, {"p", "q", "r"});
  s.attrs["axis"] = GraphBuilder::i(3);
  s.opset = 11;  // split sizes as an attribute
  s.attrs["split"] = GraphBuilder::ints({1, 3, 1});
  b.output("p");
  b.output("q");
  b.output("r");
  auto g = b.build();
  check_fast(g, "y", "concat");
  if (HasFatalFailure()) return;
  check_fast(g, "q", "split");
  if (HasFatalFailure()) return;
  // ConstantOfShape refills its (shared) arena bytes on every run.
  GraphBuilder f;
  f.input("x", {2, 3});
  f.constant_tensor("shape", i64({2}, {2, 3}));
  ir::Node& k = f.node("ConstantOfShape", {"shape"}, {"c"});
  Tensor v(DType::kFloat32, {1});
  v.data<float>()[0] = 2.5f;
  ir::Attribute va;
  va.kind = ir::Attribute::Kind::kTensor;
  va.t = v;
  k.attrs["value"] = va;
  f.node("Mul", {"x", "c"}, {"y"});
  f.output("y");
  check_fast(f.build(), "c", "fill");
}

}  // namespace
}  // namespace lithe

namespace lithe {
namespace {

// Concat elision inside a channels-last region: each producer (pointwise, Winograd, depthwise
// conv, max pool) writes its channels straight into the Concat output at the output's pixel
// stride (the plan's strided slices).
TEST(FastKernels, ProducersWriteStridedConcatSlices) {
  GraphBuilder b;
  b.input("x", {2, 10, 9, 16});
  b.constant_tensor("w1", random_tensor({8, 16, 1, 1}, 1));
  b.constant_tensor("w2", random_tensor({12, 16, 3, 3}, 2));
  b.constant_tensor("b2", random_tensor({12}, 3));
  b.constant_tensor("wd", random_tensor({16, 1, 3, 3}, 4));
  ir::Node& c1 = b.node("ConvNhwc", {"x", "w1"}, {"a"});
  c1.domain = "lithe";
  c1.attrs["activation"] = GraphBuilder::s("Relu");
  ir::Node& c2 = b.node("ConvNhwc", {"x", "w2", "b2"}, {"bb"});
  c2.domain = "lithe";
  c2.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  ir::Node& dw = b.node("ConvNhwc", {"x", "wd"}, {"d"});
  dw.domain = "lithe";
  dw.attrs["group"] = GraphBuilder::i(16);
  dw.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  ir::Node& mp = b.node("MaxPoolNhwc", {"x"}, {"m"});
  mp.domain = "lithe";
  mp.attrs["kernel_shape"] = GraphBuilder::ints({3, 3});
  mp.attrs["pads"] = GraphBuilder::ints({1, 1, 1, 1});
  b.node("Concat", {"a", "bb", "d", "m"}, {"c"}).attrs["axis"] = GraphBuilder::i(3);
  b.node("Neg", {"c"}, {"y"});
  b.output("y");
  auto g = b.build();
  const plan::MemoryPlan p = plan::plan_memory(*g);
  for (const char* v : {"a", "bb", "d", "m"})
    ASSERT_TRUE(p.strided(g->find_value(v))) << v << " is not a strided slice of the Concat";
  const std::pair<const char*, const char*> steps[] = {
      {"a", "conv-gemm"}, {"bb", "conv-winograd"}, {"d", "dwconv"}, {"m", "maxpool"}};
  for (auto [v, kind] : steps) {
    SCOPED_TRACE(v);
    check_fast(g, v, kind);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace lithe

namespace lithe {
namespace {

// Weights the builder stored in the kernels' layout (build::pack_conv_weights): the fast steps
// read them where they lie (whole panels, depthwise taps) or pad the last panel; Winograd
// unpacks them; the reference kernel unpacks them. Every path against the unpacked graph's
// reference run.
TEST(FastKernels, ConvWithBuilderPackedWeights) {
  struct P {
    int64_t c, m, k, s, group, h;
    const char* kind;
  };
  for (const P& v : std::vector<P>{{8, 32, 1, 1, 1, 6, "conv-gemm"},     // whole panels, mapped
                                   {8, 20, 1, 1, 1, 6, "conv-gemm"},     // padded last panel
                                   {20, 80, 3, 2, 1, 9, "conv-im2col"},  // packed A path
                                   {3, 17, 3, 2, 1, 9, "conv-im2col"},   // row-major patches
                                   {16, 48, 3, 1, 1, 10, "conv-winograd"},
                                   {12, 24, 3, 1, 3, 7, "conv-im2col"},  // grouped
                                   {24, 24, 3, 1, 24, 7, "dwconv"}}) {
    ConvCase k;
    k.c = v.c;
    k.m = v.m;
    k.kh = k.kw = v.k;
    k.sh = k.sw = v.s;
    k.group = v.group;
    k.h = v.h;
    k.w = v.h + 1;
    k.pads = v.k == 3 ? std::vector<int64_t>{1, 1, 1, 1} : std::vector<int64_t>{0, 0, 0, 0};
    k.residual = v.m == 20;
    SCOPED_TRACE(k.str());
    const unsigned seed = static_cast<unsigned>(std::hash<std::string>()(k.str()));
    std::shared_ptr<ir::Graph> g = conv_graph(k, seed);
    // The reference run of the graph as built, before packing.
    std::vector<Tensor> ins = test::seeded_inputs(*g, 7);
    std::vector<Tensor> want = test::run_graph(g, ins);
    ASSERT_EQ(build::pack_conv_weights(*g), 1);
    const ir::Node& n =
        g->nodes[static_cast<size_t>(g->values[static_cast<size_t>(g->find_value("y"))].producer)];
    ASSERT_TRUE(n.attrs.count("weight_layout"));
    // The reference kernel unpacks: bitwise the same as before packing.
    std::vector<Tensor> ref = test::run_graph(g, ins);
    ASSERT_EQ(0, std::memcmp(want[0].raw(), ref[0].raw(), want[0].nbytes()));
    check_fast(g, "y", v.kind);
    if (HasFatalFailure()) return;
  }
}

// Winograd weights the builder stored (build::store_winograd_weights): the fast step reads
// them instead of W (W poisoned with NaN after storing changes nothing) and gives bitwise
// what the transform at load gave, at every level; the reference kernel ignores them; and a
// stored tensor of the wrong shape is refused by the node's validation, naming it.
TEST(FastKernels, ConvWithStoredWinogradWeights) {
  for (int64_t m : {48, 20}) {  // whole panels; a last panel of 4 lanes
    ConvCase k;
    k.c = 24;
    k.m = m;
    k.kh = k.kw = 3;
    k.h = 10;
    k.w = 11;
    k.pads = {1, 1, 1, 1};
    k.residual = m == 20;
    SCOPED_TRACE(k.str());
    std::shared_ptr<ir::Graph> g = conv_graph(k, 5);
    const int yv = g->find_value("y");
    const size_t node = static_cast<size_t>(g->values[static_cast<size_t>(yv)].producer);
    const std::vector<Tensor> ins = test::seeded_inputs(*g, 7);
    const std::vector<Tensor> ref = test::run_graph(g, ins);
    const plan::MemoryPlan p = plan::plan_memory(*g);
    auto fast = [&](kernels::Isa isa) {
      auto prog = std::make_shared<runtime::Program>(g, p, isa);
      const runtime::FastStep* step = prog->fast_step(node);
      EXPECT_TRUE(step && std::string(step->kind()) == "conv-winograd");
      runtime::Session s(prog, 2);
      return test::run_session(s, ins)[0];
    };
    std::vector<Tensor> at_load;
    for (kernels::Isa isa : test::supported_isas()) at_load.push_back(fast(isa));
    ASSERT_EQ(build::store_winograd_weights(*g), 1);
    ASSERT_EQ(build::store_winograd_weights(*g), 0);  // once
    ir::Node& n = g->nodes[node];
    const Tensor& u = n.attrs.at(ops::conv_layout::kWinogradAttr).t;
    EXPECT_EQ(u.shape(), (Shape{36, 16 * ((m + 15) / 16) * k.c}));
    // The reference kernel reads W as before.
    const std::vector<Tensor> ref2 = test::run_graph(g, ins);
    ASSERT_EQ(0, std::memcmp(ref[0].raw(), ref2[0].raw(), ref[0].nbytes()));
    Tensor& w = *g->values[static_cast<size_t>(n.inputs[1])].constant;
    w = w.clone();
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = std::nanf("");
    size_t level = 0;
    for (kernels::Isa isa : test::supported_isas()) {
      SCOPED_TRACE(kernels::isa_name(isa));
      const Tensor got = fast(isa);
      EXPECT_EQ(0, std::memcmp(got.raw(), at_load[level++].raw(), got.nbytes()));
    }
    Tensor bad(DType::kFloat32, Shape{36, u.shape()[1] - 16});
    n.attrs[ops::conv_layout::kWinogradAttr] = ir::Attribute::of_tensor(bad);
    try {
      ops::infer_graph(*g);
      ADD_FAILURE() << "a winograd_weights tensor of the wrong shape was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("winograd_weights is float32["), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace lithe
