// The fast executor's elementwise steps (runtime/fast_elementwise.cpp: broadcasting binary
// ops, unary ops, Transpose, Softmax) against the reference executor on one-node graphs:
// the node must get a fast step, match the reference (exactly for the arithmetic and data
// movement, within 1e-6 x max(1, |ref|) otherwise) and give bitwise the same output with 1
// and 3 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "fast_test_util.hpp"
#include "graph_test_util.hpp"
#include "kernels/cpu.hpp"
#include "kernels/kernels.hpp"
#include "ops/util.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"

namespace lithe {
namespace {

using test::GraphBuilder;

// `exact`: bitwise equal to the reference (NaN matches NaN); otherwise within
// 1e-6 x max(1, |ref|) per element.
void expect_match(const Tensor& want, const Tensor& got, bool exact) {
  ASSERT_EQ(want.dtype(), got.dtype());
  ASSERT_EQ(want.shape(), got.shape());
  const float* w = want.data<float>();
  const float* g = got.data<float>();
  for (int64_t i = 0; i < want.numel(); ++i) {
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      ASSERT_TRUE(std::isnan(w[i]) && std::isnan(g[i]))
          << "element " << i << ": want " << w[i] << ", got " << g[i];
      continue;
    }
    if (exact) {
      ASSERT_EQ(0, std::memcmp(&w[i], &g[i], sizeof(float)))
          << "element " << i << ": want " << w[i] << ", got " << g[i];
    } else {
      const double tol = 1e-6 * std::max(1.0, std::fabs(double(w[i])));
      ASSERT_LE(std::fabs(double(w[i]) - double(g[i])), tol)
          << "element " << i << ": want " << w[i] << ", got " << g[i];
    }
  }
}

// Runs `g` on the fast executor (best level) with 1 and 3 threads against the reference
// executor; the node producing `out` must run as a fast step. Returns the plan (for in-place
// checks).
plan::MemoryPlan check_graph(const std::shared_ptr<ir::Graph>& g, const std::string& out,
                             bool exact, const char* want_kind = nullptr,
                             const std::vector<kernels::Isa>& isas = {kernels::best_isa()}) {
  return test::check_fast_node(
      g, out, want_kind, isas,
      [exact](size_t, const Tensor& want, const Tensor& got) { expect_match(want, got, exact); });
}

struct Pair {
  Shape a, b;
};

// The broadcast patterns: same shape, scalars, per-channel NCHW / NHWC, SE scaling (A
// broadcast), row vectors, both sides broadcast, ranks 1-5, odd sizes, and big ones that
// split across threads.
std::vector<Pair> broadcast_pairs() {
  return {
      {{1}, {1}},
      {{3}, {3}},
      {{17}, {1}},
      {{1}, {33}},
      {{15}, {}},
      {{2, 3, 15, 17}, {2, 3, 15, 17}},
      {{2, 3, 17}, {}},
      {{1, 33, 3, 5}, {1, 33, 1, 1}},
      {{2, 15, 1, 1}, {2, 15, 3, 17}},
      {{1, 5, 3, 33}, {1, 1, 1, 33}},
      {{1, 5, 3, 33}, {33}},
      {{2, 15, 17}, {17}},
      {{3, 1, 5}, {1, 4, 1}},
      {{2, 1, 3, 1, 5}, {1, 4, 1, 6, 1}},
      {{2, 3, 1, 17, 15}, {3, 33, 1, 1}},
      {{1, 64, 64, 33}, {33}},
      {{1, 33, 64, 64}, {1, 33, 1, 1}},
      {{1, 8, 64, 65}, {1, 8, 64, 65}},
      {{1, 17, 1, 1}, {1, 17, 40, 33}},
      {{40, 33, 17}, {40, 1, 17}},
  };
}

std::shared_ptr<ir::Graph> binary_graph(const std::string& op, const Shape& a, const Shape& b,
                                        bool b_const = false, int opset = 13) {
  GraphBuilder gb(opset);
  gb.input("a", a);
  if (b_const)
    gb.constant("b", b);
  else
    gb.input("b", b);
  gb.node(op, {"a", "b"}, {"y"});
  gb.output("y");
  return gb.build();
}

TEST(FastElementwise, BinaryBroadcasts) {
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    for (const Pair& p : broadcast_pairs()) {
      for (bool b_const : {false, true}) {
        SCOPED_TRACE(std::string(op) + " " + shape_str(p.a) + " x " + shape_str(p.b) +
                     (b_const ? " (constant B)" : ""));
        check_graph(binary_graph(op, p.a, p.b, b_const), "y", true);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

TEST(FastElementwise, BinaryInPlaceChain) {
  // Elementwise chains let the planner write an output over its (dying) first input.
  int in_place = 0;
  for (const Pair& p : broadcast_pairs()) {
    SCOPED_TRACE(shape_str(p.a) + " x " + shape_str(p.b));
    const Shape out = ops::broadcast_shapes(p.a, p.b);
    GraphBuilder gb;
    gb.input("a", p.a).input("b", p.b).input("c", out);
    gb.node("Add", {"a", "b"}, {"t"});
    gb.node("Relu", {"t"}, {"r"});
    gb.node("Mul", {"r", "c"}, {"m"});
    gb.node("Sub", {"m", "b"}, {"y"});
    gb.output("y");
    auto g = gb.build();
    const plan::MemoryPlan plan = check_graph(g, "y", true);
    check_graph(g, "m", true);
    check_graph(g, "r", true);
    if (::testing::Test::HasFatalFailure()) return;
    for (char c : plan.in_place) in_place += c != 0;
  }
  EXPECT_GT(in_place, 0) << "no node ran in place: the in-place path is untested";
}

TEST(FastElementwise, PowAndPRelu) {
  for (const Pair& p : broadcast_pairs()) {
    SCOPED_TRACE(shape_str(p.a) + " x " + shape_str(p.b));
    check_graph(binary_graph("Pow", p.a, p.b), "y", false, "pow");
  }
  for (float e : {2.0f, 0.5f, 3.0f, -1.0f}) {
    for (Shape s : {Shape{1}, Shape{17}, Shape{2, 3, 33}, Shape{1, 64, 65, 5}}) {
      SCOPED_TRACE("exponent " + std::to_string(e) + " " + shape_str(s));
      GraphBuilder gb;
      gb.input("x", s).constant("e", {}, {e});
      gb.node("Pow", {"x", "e"}, {"y"});
      gb.output("y");
      check_graph(gb.build(), "y", false, "pow");
    }
  }
  for (Shape s : {Shape{2, 17, 3, 5}, Shape{1, 33, 64, 9}}) {
    SCOPED_TRACE(shape_str(s));
    GraphBuilder gb;
    gb.input("x", s).constant("slope", {s[1], 1, 1});
    gb.node("PRelu", {"x", "slope"}, {"y"});
    gb.output("y");
    check_graph(gb.build(), "y", true, "prelu");
  }
}

struct UnaryCase {
  const char* op;
  int opset;
  std::vector<std::pair<std::string, ir::Attribute>> attrs;
};

TEST(FastElementwise, Unary) {
  const std::vector<UnaryCase> cases = {
      {"Relu", 13, {}},
      {"Sigmoid", 13, {}},
      {"Tanh", 13, {}},
      {"Exp", 13, {}},
      {"Log", 13, {}},
      {"Sqrt", 13, {}},
      {"Neg", 13, {}},
      {"Abs", 13, {}},
      {"Reciprocal", 13, {}},
      {"Floor", 13, {}},
      {"Ceil", 13, {}},
      {"Erf", 13, {}},
      {"Softplus", 13, {}},
      {"Mish", 18, {}},
      {"HardSwish", 14, {}},
      {"HardSigmoid", 13, {}},
      {"HardSigmoid", 13, {{"alpha", GraphBuilder::f(0.3f)}, {"beta", GraphBuilder::f(0.4f)}}},
      {"LeakyRelu", 13, {{"alpha", GraphBuilder::f(0.2f)}}},
      {"Gelu", 20, {}},
      {"Gelu", 20, {{"approximate", GraphBuilder::s("tanh")}}},
      {"Clip", 6, {{"min", GraphBuilder::f(-0.25f)}, {"max", GraphBuilder::f(0.5f)}}},
      {"Identity", 13, {}},
  };
  for (const UnaryCase& c : cases) {
    for (Shape s : {Shape{1}, Shape{3}, Shape{15, 17}, Shape{2, 3, 33}, Shape{1, 3, 5, 7, 9},
                    Shape{1, 16, 64, 33}}) {
      SCOPED_TRACE(std::string(c.op) + " opset " + std::to_string(c.opset) + " " + shape_str(s));
      GraphBuilder gb(c.opset);
      gb.input("x", s);
      ir::Node& n = gb.node(c.op, {"x"}, {"y"});
      for (const auto& [name, a] : c.attrs) n.attrs[name] = a;
      gb.output("y");
      check_graph(gb.build(), "y", false);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(FastElementwise, ClipWithConstantBounds) {
  for (Shape s : {Shape{17}, Shape{1, 32, 33, 17}}) {
    GraphBuilder gb(13);
    gb.input("x", s).constant("lo", {}, {0.0f}).constant("hi", {}, {0.5f});
    gb.node("Clip", {"x", "lo", "hi"}, {"y"});
    gb.node("Clip", {"x", "", "hi"}, {"z"});
    gb.output("y").output("z");
    auto g = gb.build();
    check_graph(g, "y", true, "clip");
    check_graph(g, "z", true, "clip");
  }
}

TEST(FastElementwise, Transpose) {
  struct Case {
    Shape s;
    std::vector<int64_t> perm;  // empty: the default (reversed dims)
  };
  const std::vector<Case> cases = {
      {{17}, {0}},
      {{15, 17}, {}},
      {{1, 33}, {1, 0}},
      {{3, 15, 17}, {0, 2, 1}},
      {{3, 15, 17}, {2, 0, 1}},
      {{3, 15, 17}, {1, 2, 0}},
      {{3, 1, 17}, {2, 1, 0}},
      {{1, 3, 15, 17}, {0, 2, 3, 1}},
      {{1, 15, 17, 3}, {0, 3, 1, 2}},
      {{2, 33, 15, 17}, {0, 2, 3, 1}},
      {{2, 15, 17, 33}, {0, 3, 1, 2}},
      {{1, 64, 80, 80}, {0, 2, 3, 1}},
      {{1, 80, 80, 64}, {0, 3, 1, 2}},
      {{1, 3, 640, 33}, {0, 2, 3, 1}},
      {{2, 3, 5, 7, 9}, {4, 2, 0, 3, 1}},
      {{2, 3, 5, 7, 9}, {0, 1, 2, 4, 3}},
      {{2, 3, 5, 7, 9}, {1, 0, 2, 3, 4}},
      {{4, 40, 6, 32}, {0, 2, 1, 3}},
      {{2, 3, 1, 5, 1, 7}, {5, 4, 3, 2, 1, 0}},
      // Few output channels (the interleaving path), odd pixel counts, batches.
      {{2, 2, 9, 7}, {0, 2, 3, 1}},
      {{3, 4, 5, 13}, {0, 2, 3, 1}},
      {{2, 3, 1, 3}, {0, 2, 3, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(shape_str(c.s));
    GraphBuilder gb;
    gb.input("x", c.s);
    ir::Node& n = gb.node("Transpose", {"x"}, {"y"});
    if (!c.perm.empty()) n.attrs["perm"] = GraphBuilder::ints(c.perm);
    gb.output("y");
    check_graph(gb.build(), "y", true);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(FastElementwise, Softmax) {
  struct Case {
    const char* op;
    int opset;
    Shape s;
    int64_t axis;
    bool has_axis;
  };
  const std::vector<Case> cases = {
      {"Softmax", 13, {1, 40, 6625}, -1, false},  {"Softmax", 13, {17}, 0, true},
      {"Softmax", 13, {3, 15}, -1, true},         {"Softmax", 13, {2, 3, 5, 33}, 1, true},
      {"Softmax", 13, {2, 3, 5, 33}, 2, true},    {"Softmax", 13, {1, 8, 80, 80}, 3, true},
      {"Softmax", 13, {2, 1, 33}, 1, true},       {"Softmax", 11, {2, 3, 5, 7}, 1, false},
      {"Softmax", 11, {2, 3, 5, 7}, 2, true},     {"Softmax", 11, {3, 15}, -1, true},
      {"Softmax", 1, {2, 3, 5, 7, 9}, 0, true},   {"LogSoftmax", 13, {1, 40, 663}, -1, false},
      {"LogSoftmax", 13, {2, 3, 5, 33}, 1, true}, {"LogSoftmax", 11, {2, 3, 5, 7}, 1, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.op) + " opset " + std::to_string(c.opset) + " " + shape_str(c.s) +
                 " axis " + std::to_string(c.axis));
    GraphBuilder gb(c.opset);
    gb.input("x", c.s);
    ir::Node& n = gb.node(c.op, {"x"}, {"y"});
    if (c.has_axis) n.attrs["axis"] = GraphBuilder::i(c.axis);
    gb.output("y");
    // Contiguous rows run the level's kernel: every level this CPU has.
    check_graph(gb.build(), "y", false, nullptr, test::supported_isas());
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// The levels' softmax kernel on rows the random graphs do not reach, against softmax in
// double: {0, v} for v down to where e^v underflows (so y[1] is e^v / (1 + e^v): vexp over
// the whole range a softmax feeds it, subnormal results included), wide spreads, every tail
// length, and the special values (NaN in a row makes it all NaN, as in the reference; -inf
// gives 0).
TEST(FastElementwise, SoftmaxKernelRangeAndSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::vector<std::vector<float>> rows;
  for (float v = -104.5f; v <= 0.0f; v += 0.173f) rows.push_back({0.0f, v});
  for (int64_t n : {1, 2, 7, 8, 9, 15, 16, 17, 33, 6625}) {
    std::vector<float> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = 37.0f * std::sin(0.7f * i) - 5.0f;
    rows.push_back(r);
  }
  rows.push_back({-inf, 0.0f, 1.0f});
  rows.push_back({1e30f, -1e30f, 3.0f});
  for (kernels::Isa isa : test::supported_isas()) {
    SCOPED_TRACE(kernels::isa_name(isa));
    const kernels::KernelTable& kt = kernels::kernel_table(isa);
    for (bool log : {false, true})
      for (const std::vector<float>& r : rows) {
        const int64_t n = static_cast<int64_t>(r.size());
        // x - max in float, as the reference and the kernel compute it (its rounding is
        // theirs; the rest in double).
        float mx = r[0];
        for (float v : r) mx = std::max(mx, v);
        double sum = 0;
        for (float v : r) sum += std::exp(double(v - mx));
        std::vector<float> y(r.size());
        kt.f32_softmax(r.data(), y.data(), n, log);
        for (int64_t i = 0; i < n; ++i) {
          const double d = double(r[static_cast<size_t>(i)] - mx);
          const double want = log ? d - std::log(sum) : std::exp(d) / sum;
          const double got = y[static_cast<size_t>(i)];
          if (std::isinf(want)) {  // log of e^-inf
            ASSERT_EQ(got, want) << "element " << i;
            continue;
          }
          // Softmax: 5 ulp (vexp's 2, the sum's and the division's roundings), or a
          // subnormal's spacing.
          const double tol =
              log ? 1e-6 * std::max(1.0, std::fabs(want)) : std::max(3e-7 * want, 1.5e-45);
          ASSERT_LE(std::fabs(got - want), tol)
              << (log ? "log" : "") << "softmax row of " << n << " from " << r[0] << ", "
              << (n > 1 ? r[1] : 0.0f) << ": element " << i;
        }
      }
    std::vector<float> nan_inside(20, 1.0f);
    nan_inside[10] = nan;
    for (const std::vector<float>& r : {std::vector<float>{nan, 1.0f},
                                        {1.0f, 2.0f, nan},
                                        nan_inside,
                                        std::vector<float>(9, 1.0f),
                                        {inf, 0.0f}}) {
      std::vector<float> y(r.size());
      kt.f32_softmax(r.data(), y.data(), static_cast<int64_t>(r.size()), false);
      const bool all_nan = std::isinf(r[0]) ||
                           std::any_of(r.begin(), r.end(), [](float v) { return std::isnan(v); });
      for (size_t i = 0; i < r.size(); ++i)
        if (all_nan)
          EXPECT_TRUE(std::isnan(y[i])) << "element " << i;
        else
          EXPECT_FLOAT_EQ(y[i], 1.0f / 9.0f);
    }
  }
}

TEST(FastElementwise, ReduceMeanTrailingAxes) {
  struct Case {
    int opset;
    Shape s;
    std::vector<int64_t> axes;
    int64_t keepdims;
  };
  const std::vector<Case> cases = {
      {13, {1, 40, 120}, {-1}, 1},    {13, {1, 40, 120}, {2}, 0},   {13, {17}, {0}, 1},
      {13, {2, 3, 5, 33}, {2, 3}, 1}, {13, {2, 3, 5, 33}, {}, 0},   {13, {1, 1000, 33}, {-1}, 1},
      {18, {2, 15, 17}, {-1}, 1},     {18, {2, 15, 17}, {1, 2}, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("opset " + std::to_string(c.opset) + " " + shape_str(c.s));
    GraphBuilder gb(c.opset);
    gb.input("x", c.s);
    if (c.opset >= 18) {
      gb.constant_i64("axes", c.axes);
      ir::Node& n = gb.node("ReduceMean", {"x", "axes"}, {"y"});
      n.attrs["keepdims"] = GraphBuilder::i(c.keepdims);
    } else {
      ir::Node& n = gb.node("ReduceMean", {"x"}, {"y"});
      if (!c.axes.empty()) n.attrs["axes"] = GraphBuilder::ints(c.axes);
      n.attrs["keepdims"] = GraphBuilder::i(c.keepdims);
    }
    gb.output("y");
    check_graph(gb.build(), "y", true, "reducemean");
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(FastElementwise, NotFloat32StaysReference) {
  GraphBuilder gb;
  gb.input("a", {3, 5}, DType::kInt32).input("b", {3, 5}, DType::kInt32);
  gb.node("Add", {"a", "b"}, {"y"});
  gb.output("y");
  auto g = gb.build();
  auto p = plan::plan_memory(*g);
  runtime::Program prog(g, p, kernels::best_isa());
  EXPECT_EQ(prog.fast_step(0), nullptr);
}

}  // namespace
}  // namespace lithe

namespace lithe {
namespace {

// LayerNormalization over trailing axes with Scale / B constants (full or broadcasting): the
// fast step reproduces the reference's bits.
TEST(FastNorm, LayerNormalizationMatchesTheReferenceBitwise) {
  struct C {
    Shape x;
    int64_t axis;
    Shape scale, bias;  // bias {} = none
  };
  for (const C& c : std::vector<C>{{{2, 40, 120}, -1, {120}, {120}},
                                   {{1, 40, 120}, 2, {120}, {}},
                                   {{3, 5, 7}, 1, {5, 7}, {1, 7}},
                                   {{64, 384}, -1, {384}, {384}},
                                   {{4, 3, 16, 16}, 1, {3, 1, 1}, {16}}}) {
    SCOPED_TRACE("X " + shape_str(c.x) + " axis " + std::to_string(c.axis));
    GraphBuilder b(17);
    b.input("x", c.x);
    b.constant("scale", c.scale);
    std::vector<std::string> ins = {"x", "scale"};
    if (!c.bias.empty()) {
      b.constant("bias", c.bias);
      ins.push_back("bias");
    }
    ir::Node& n = b.node("LayerNormalization", ins, {"y"});
    n.attrs["axis"] = GraphBuilder::i(c.axis);
    n.attrs["epsilon"] = test::attr_f(1e-3f);
    b.output("y");
    check_graph(b.build(), "y", /*exact=*/true, "layernorm");
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace lithe
