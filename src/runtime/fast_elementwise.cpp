// Fast steps for elementwise ops, Transpose, Softmax and ReduceMean (see fast_steps.hpp).
//
// Every step is resolved at preparation into a small loop nest over float32 data with static
// shapes: broadcasting binary ops collapse their dims so the inner loop is one contiguous run
// with the other operand contiguous or a single broadcast value; Transpose collapses its
// permutation and copies contiguous runs or cache-blocked tiles; Softmax normalizes rows.
// Each output element is computed by the same expression as the reference kernel, whatever
// the thread split, so results are bitwise identical for any thread count (and to the
// reference wherever the reference computes in float the same way).
//
// Work is split statically into contiguous chunks (aligned to 16 elements where the unit is
// an element); tensors under kTinyElems elements run on thread 0 alone.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "ops/op.hpp"
#include "runtime/fast_step_util.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

// No loop-carried dependence (each iteration reads and writes element i only), even when the
// output is the same bytes as an input: lets the compiler vectorize without alias checks.
// (Clang's assume_safety hint warns where it cannot vectorize a call-bearing loop, so Clang
// gets none and vectorizes with its runtime alias checks.)
#if defined(__clang__)
#define LITHE_IVDEP
#elif defined(__GNUC__)
#define LITHE_IVDEP _Pragma("GCC ivdep")
#else
#define LITHE_IVDEP
#endif

using namespace step_util;

constexpr int64_t kTinyElems = 16384;
constexpr int kMaxRank = Nest::kMaxRank;

const float* in_ptr(const ValuePtrs& vals, int v) {
  return static_cast<const float*>(vals[static_cast<size_t>(v)]);
}
float* out_ptr(const ValuePtrs& vals, int v) {
  return static_cast<float*>(vals[static_cast<size_t>(v)]);
}

/// Thread t's share [b, e) of `units` work units of `unit_elems` elements each; a tiny job
/// goes to thread 0 alone so the pool's overhead does not exceed the work.
void share(int64_t units, int64_t unit_elems, int t, int nt, int64_t* b, int64_t* e) {
  if (units * unit_elems < kTinyElems || nt <= 1) {
    *b = 0;
    *e = t == 0 ? units : 0;
    return;
  }
  static_range(units, t, nt, b, e);
}

/// Thread t's element range of a flat array of n floats, in chunks aligned to 16 elements.
void share_elems(int64_t n, int t, int nt, int64_t* b, int64_t* e) {
  int64_t cb, ce;
  share((n + 15) / 16, 16, t, nt, &cb, &ce);
  *b = std::min(n, cb * 16);
  *e = std::min(n, ce * 16);
}

// ---- binary ops ----------------------------------------------------------------------------

enum class BinOp { kAdd, kSub, kMul, kDiv, kMax, kMin, kPow, kPow2, kPowHalf, kPRelu };

template <BinOp kOp>
inline float bin(float a, float b) {
  if constexpr (kOp == BinOp::kAdd) {
    return a + b;
  } else if constexpr (kOp == BinOp::kSub) {
    return a - b;
  } else if constexpr (kOp == BinOp::kMul) {
    return a * b;
  } else if constexpr (kOp == BinOp::kDiv) {
    return a / b;
  } else if constexpr (kOp == BinOp::kMax) {
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<float>::quiet_NaN();
    return b > a ? b : a;
  } else if constexpr (kOp == BinOp::kMin) {
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<float>::quiet_NaN();
    return b < a ? b : a;
  } else if constexpr (kOp == BinOp::kPow) {
    // As the reference: double keeps the float32 result correctly rounded.
    return static_cast<float>(std::pow(static_cast<double>(a), static_cast<double>(b)));
  } else if constexpr (kOp == BinOp::kPow2) {
    // The exact double square rounded once equals the float product.
    return a * a;
  } else if constexpr (kOp == BinOp::kPowHalf) {
    // pow(x, 0.5) is sqrt except at -0 (+0) and -inf (+inf); sqrt in double rounds to the
    // same float as the correctly rounded float sqrt.
    if (a == -std::numeric_limits<float>::infinity()) return std::numeric_limits<float>::infinity();
    return static_cast<float>(std::sqrt(static_cast<double>(a))) + 0.0f;
  } else {
    return a < 0.0f ? a * b : a;
  }
}

// Inner runs. The output may be the same bytes as `a` (in place); every iteration reads
// element i before writing element i and nothing else, so there is no loop-carried
// dependence and ivdep is safe.
template <BinOp kOp>
void run_vv(const float* a, const float* b, float* y, int64_t n) {
  LITHE_IVDEP
  for (int64_t i = 0; i < n; ++i) y[i] = bin<kOp>(a[i], b[i]);
}
template <BinOp kOp>
void run_vs(const float* a, float b, float* y, int64_t n) {
  LITHE_IVDEP
  for (int64_t i = 0; i < n; ++i) y[i] = bin<kOp>(a[i], b);
}
template <BinOp kOp>
void run_sv(float a, const float* b, float* y, int64_t n) {
  LITHE_IVDEP
  for (int64_t i = 0; i < n; ++i) y[i] = bin<kOp>(a, b[i]);
}

class BinaryStep final : public FastStep {
 public:
  using Fn = void (*)(const Nest&, const float*, const float*, float*, int64_t, int64_t);

  const char* kind() const override { return kind_; }

  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    int64_t b, e;
    share_elems(total_, t, nt, &b, &e);
    if (b < e) fn_(nest_, in_ptr(vals, a_), in_ptr(vals, b_), out_ptr(vals, y_), b, e);
  }

  // Elements [b, e) of the output in row-major order: rows of the inner dim, with an
  // odometer over the outer dims for the operands' offsets.
  template <BinOp kOp>
  static void apply(const Nest& n, const float* a, const float* bp, float* y, int64_t b,
                    int64_t e) {
    const int last = n.rank - 1;
    const int64_t inner = n.dims[last];
    const int64_t ia = n.sa[last], ib = n.sb[last];
    int64_t idx[kMaxRank] = {};
    int64_t row = b / inner, col = b % inner;
    int64_t oa = 0, ob = 0;
    for (int d = last - 1; d >= 0; --d) {
      idx[d] = row % n.dims[d];
      row /= n.dims[d];
      oa += idx[d] * n.sa[d];
      ob += idx[d] * n.sb[d];
    }
    for (int64_t i = b; i < e;) {
      const int64_t len = std::min(inner - col, e - i);
      const float* pa = a + oa + col * ia;
      const float* pb = bp + ob + col * ib;
      if (ia && ib)
        run_vv<kOp>(pa, pb, y + i, len);
      else if (ia)
        run_vs<kOp>(pa, *pb, y + i, len);
      else
        run_sv<kOp>(*pa, pb, y + i, len);
      i += len;
      col = 0;
      // Next row: advance the odometer over the outer dims.
      for (int d = last - 1; d >= 0; --d) {
        oa += n.sa[d];
        ob += n.sb[d];
        if (++idx[d] < n.dims[d]) break;
        oa -= n.sa[d] * n.dims[d];
        ob -= n.sb[d] * n.dims[d];
        idx[d] = 0;
      }
    }
  }

  Fn fn_ = nullptr;
  const char* kind_ = "binary";
  int a_ = -1, b_ = -1, y_ = -1;
  int64_t total_ = 0;
  Nest nest_;
};

std::unique_ptr<FastStep> make_binary(const ir::Graph& g, const ir::Node& node) {
  const std::string& op = node.op_type;
  if (node.inputs.size() != 2 || node.outputs.size() != 1) return nullptr;
  const int av = node.inputs[0], bv = node.inputs[1], yv = node.outputs[0];
  if (!is_f32_static(g, av) || !is_f32_static(g, bv) || !is_f32_static(g, yv)) return nullptr;
  const Shape& as = dims_of(g, av);
  const Shape& bs = dims_of(g, bv);
  const Shape& ys = dims_of(g, yv);
  // Legacy (opset < 7) broadcast attributes and PRelu's per-channel slope: same shapes only.
  if (node.opset < 7 && as != bs) return nullptr;
  if (!broadcasts_to(as, bs, ys)) return nullptr;
  if (op == "PRelu" && as != ys) return nullptr;
  const int64_t total = shape_numel(ys);
  if (total <= 0) return nullptr;
  auto s = std::make_unique<BinaryStep>();
  if (!build_nest(as, bs, ys, &s->nest_)) return nullptr;
  s->a_ = av;
  s->b_ = bv;
  s->y_ = yv;
  s->total_ = total;
  if (op == "Add") {
    s->fn_ = &BinaryStep::apply<BinOp::kAdd>;
    s->kind_ = "add";
  } else if (op == "Sub") {
    s->fn_ = &BinaryStep::apply<BinOp::kSub>;
    s->kind_ = "sub";
  } else if (op == "Mul") {
    s->fn_ = &BinaryStep::apply<BinOp::kMul>;
    s->kind_ = "mul";
  } else if (op == "Div") {
    s->fn_ = &BinaryStep::apply<BinOp::kDiv>;
    s->kind_ = "div";
  } else if (op == "Max") {
    s->fn_ = &BinaryStep::apply<BinOp::kMax>;
    s->kind_ = "max";
  } else if (op == "Min") {
    s->fn_ = &BinaryStep::apply<BinOp::kMin>;
    s->kind_ = "min";
  } else if (op == "PRelu") {
    s->fn_ = &BinaryStep::apply<BinOp::kPRelu>;
    s->kind_ = "prelu";
  } else if (op == "Pow") {
    s->kind_ = "pow";
    s->fn_ = &BinaryStep::apply<BinOp::kPow>;
    const Tensor* e = constant_of(g, bv);
    if (e && e->dtype() == DType::kFloat32 && e->numel() == 1) {
      const float ev = e->data<float>()[0];
      if (ev == 2.0f) s->fn_ = &BinaryStep::apply<BinOp::kPow2>;
      if (ev == 0.5f) s->fn_ = &BinaryStep::apply<BinOp::kPowHalf>;
    }
  } else {
    return nullptr;
  }
  return s;
}

// ---- unary ops -----------------------------------------------------------------------------

enum class UnOp {
  kRelu,
  kSigmoid,
  kTanh,
  kExp,
  kLog,
  kSqrt,
  kNeg,
  kAbs,
  kReciprocal,
  kFloor,
  kCeil,
  kHardSigmoid,
  kHardSwish,
  kErf,
  kGelu,
  kGeluTanh,
  kLeakyRelu,
  kClip,
  kSoftplus,
  kMish,
  kIdentity,
};

struct UnParams {
  float p0 = 0, p1 = 0;
};

inline float softplus(float x) {
  return x > 0.0f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

template <UnOp kOp>
inline float un(float x, UnParams p) {
  if constexpr (kOp == UnOp::kRelu) {
    return x > 0.0f ? x : 0.0f;
  } else if constexpr (kOp == UnOp::kSigmoid) {
    if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
    const float e = std::exp(x);
    return e / (1.0f + e);
  } else if constexpr (kOp == UnOp::kTanh) {
    return std::tanh(x);
  } else if constexpr (kOp == UnOp::kExp) {
    return std::exp(x);
  } else if constexpr (kOp == UnOp::kLog) {
    return std::log(x);
  } else if constexpr (kOp == UnOp::kSqrt) {
    return std::sqrt(x);
  } else if constexpr (kOp == UnOp::kNeg) {
    return -x;
  } else if constexpr (kOp == UnOp::kAbs) {
    return std::abs(x);
  } else if constexpr (kOp == UnOp::kReciprocal) {
    return 1.0f / x;
  } else if constexpr (kOp == UnOp::kFloor) {
    return std::floor(x);
  } else if constexpr (kOp == UnOp::kCeil) {
    return std::ceil(x);
  } else if constexpr (kOp == UnOp::kHardSigmoid) {
    return std::max(0.0f, std::min(1.0f, p.p0 * x + p.p1));
  } else if constexpr (kOp == UnOp::kHardSwish) {
    return x * std::max(0.0f, std::min(1.0f, x / 6.0f + 0.5f));
  } else if constexpr (kOp == UnOp::kErf) {
    return std::erf(x);
  } else if constexpr (kOp == UnOp::kGelu) {
    return 0.5f * x * (1.0f + std::erf(x * static_cast<float>(0.7071067811865476)));
  } else if constexpr (kOp == UnOp::kGeluTanh) {
    const float k = static_cast<float>(0.7978845608028654);
    return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
  } else if constexpr (kOp == UnOp::kLeakyRelu) {
    return x >= 0.0f ? x : p.p0 * x;
  } else if constexpr (kOp == UnOp::kClip) {
    // NaN passes through, as in the reference.
    float v = x;
    if (v < p.p0) v = p.p0;
    if (v > p.p1) v = p.p1;
    return v;
  } else if constexpr (kOp == UnOp::kSoftplus) {
    return softplus(x);
  } else if constexpr (kOp == UnOp::kMish) {
    return x * std::tanh(softplus(x));
  } else {
    return x;
  }
}

class UnaryStep final : public FastStep {
 public:
  using Fn = void (*)(const float*, float*, int64_t, UnParams);
  const char* kind() const override { return kind_; }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    int64_t b, e;
    share_elems(total_, t, nt, &b, &e);
    if (b < e) fn_(in_ptr(vals, x_) + b, out_ptr(vals, y_) + b, e - b, p_);
  }
  template <UnOp kOp>
  static void apply(const float* x, float* y, int64_t n, UnParams p) {
    if constexpr (kOp == UnOp::kIdentity) {
      if (x != y) std::memmove(y, x, static_cast<size_t>(n) * sizeof(float));
    } else {
      LITHE_IVDEP
      for (int64_t i = 0; i < n; ++i) y[i] = un<kOp>(x[i], p);
    }
  }
  Fn fn_ = nullptr;
  const char* kind_ = "unary";
  UnParams p_;
  int x_ = -1, y_ = -1;
  int64_t total_ = 0;
};

std::unique_ptr<FastStep> make_unary(const ir::Graph& g, const ir::Node& node) {
  const std::string& op = node.op_type;
  if (node.inputs.empty() || node.outputs.empty()) return nullptr;
  const int xv = node.inputs[0], yv = node.outputs[0];
  if (!is_f32_static(g, xv) || !is_f32_static(g, yv) || dims_of(g, xv) != dims_of(g, yv))
    return nullptr;
  const int64_t total = shape_numel(dims_of(g, yv));
  if (total <= 0) return nullptr;
  ops::NodeAttrs attrs(node);
  auto s = std::make_unique<UnaryStep>();
  s->x_ = xv;
  s->y_ = yv;
  s->total_ = total;
  auto set = [&](UnaryStep::Fn fn, const char* kind) {
    s->fn_ = fn;
    s->kind_ = kind;
  };
  // Ops with a single input only (Clip's bounds are checked below).
  if (op != "Clip" && node.inputs.size() != 1) return nullptr;
  if (op != "Dropout" && node.outputs.size() != 1) return nullptr;
  if (op == "Relu") {
    set(&UnaryStep::apply<UnOp::kRelu>, "relu");
  } else if (op == "Sigmoid") {
    set(&UnaryStep::apply<UnOp::kSigmoid>, "sigmoid");
  } else if (op == "Tanh") {
    set(&UnaryStep::apply<UnOp::kTanh>, "tanh");
  } else if (op == "Exp") {
    set(&UnaryStep::apply<UnOp::kExp>, "exp");
  } else if (op == "Log") {
    set(&UnaryStep::apply<UnOp::kLog>, "log");
  } else if (op == "Sqrt") {
    set(&UnaryStep::apply<UnOp::kSqrt>, "sqrt");
  } else if (op == "Neg") {
    set(&UnaryStep::apply<UnOp::kNeg>, "neg");
  } else if (op == "Abs") {
    set(&UnaryStep::apply<UnOp::kAbs>, "abs");
  } else if (op == "Reciprocal") {
    set(&UnaryStep::apply<UnOp::kReciprocal>, "reciprocal");
  } else if (op == "Floor") {
    set(&UnaryStep::apply<UnOp::kFloor>, "floor");
  } else if (op == "Ceil") {
    set(&UnaryStep::apply<UnOp::kCeil>, "ceil");
  } else if (op == "Erf") {
    set(&UnaryStep::apply<UnOp::kErf>, "erf");
  } else if (op == "Softplus") {
    set(&UnaryStep::apply<UnOp::kSoftplus>, "softplus");
  } else if (op == "Mish") {
    set(&UnaryStep::apply<UnOp::kMish>, "mish");
  } else if (op == "HardSwish") {
    set(&UnaryStep::apply<UnOp::kHardSwish>, "hardswish");
  } else if (op == "HardSigmoid") {
    s->p_ = {attrs.attr_float("alpha", 0.2f), attrs.attr_float("beta", 0.5f)};
    set(&UnaryStep::apply<UnOp::kHardSigmoid>, "hardsigmoid");
  } else if (op == "LeakyRelu") {
    s->p_ = {attrs.attr_float("alpha", 0.01f), 0.0f};
    set(&UnaryStep::apply<UnOp::kLeakyRelu>, "leakyrelu");
  } else if (op == "Gelu") {
    const std::string approx = attrs.attr_string("approximate", "none");
    if (approx == "none")
      set(&UnaryStep::apply<UnOp::kGelu>, "gelu");
    else if (approx == "tanh")
      set(&UnaryStep::apply<UnOp::kGeluTanh>, "gelu");
    else
      return nullptr;
  } else if (op == "Identity" ||
             (op == "Dropout" && node.inputs.size() == 1 && node.outputs.size() == 1)) {
    set(&UnaryStep::apply<UnOp::kIdentity>, "copy");
  } else if (op == "Clip") {
    UnParams p{-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()};
    if (node.opset < 11) {
      if (node.inputs.size() != 1) return nullptr;
      p.p0 = attrs.attr_float("min", p.p0);
      p.p1 = attrs.attr_float("max", p.p1);
    } else {
      if (node.inputs.size() > 3) return nullptr;
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        if (node.inputs[i] < 0) continue;
        const Tensor* c = constant_of(g, node.inputs[i]);
        if (!c || c->dtype() != DType::kFloat32 || c->numel() != 1) return nullptr;
        (i == 1 ? p.p0 : p.p1) = c->data<float>()[0];
      }
    }
    s->p_ = p;
    set(&UnaryStep::apply<UnOp::kClip>, "clip");
  } else {
    return nullptr;
  }
  return s;
}

// ---- Transpose -----------------------------------------------------------------------------

class TransposeStep final : public FastStep {
 public:
  static constexpr int64_t kTile = 16;
  const char* kind() const override { return tiled_ ? "transpose-tiled" : "transpose"; }

  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    const float* x = in_ptr(vals, x_);
    float* y = out_ptr(vals, y_);
    if (tiled_)
      run_tiled(x, y, t, nt);
    else
      run_rows(x, y, t, nt);
  }

  // The output's last dim is contiguous in the input too: copy runs of `inner` floats, one
  // per output row, the rows split across threads.
  void run_rows(const float* x, float* y, int t, int nt) const {
    const int last = rank_ - 1;
    const int64_t inner = dims_[last];
    int64_t b, e;
    if (rank_ == 1) {
      share_elems(inner, t, nt, &b, &e);
      if (b < e) std::memcpy(y + b, x + b, static_cast<size_t>(e - b) * sizeof(float));
      return;
    }
    share(total_ / inner, inner, t, nt, &b, &e);
    if (b >= e) return;
    int64_t idx[kMaxRank] = {};
    int64_t off = 0, row = b;
    for (int d = last - 1; d >= 0; --d) {
      idx[d] = row % dims_[d];
      row /= dims_[d];
      off += idx[d] * in_st_[d];
    }
    for (int64_t r = b; r < e; ++r) {
      std::memcpy(y + r * inner, x + off, static_cast<size_t>(inner) * sizeof(float));
      for (int d = last - 1; d >= 0; --d) {
        off += in_st_[d];
        if (++idx[d] < dims_[d]) break;
        off -= in_st_[d] * dims_[d];
        idx[d] = 0;
      }
    }
  }

  // The output's last dim (length n, input stride sn) and the output dim j that is the
  // input's contiguous one (length m, output stride sm): a 2-D transpose per batch (the other
  // dims), done in kTile x kTile tiles. Units: batch x tile rows of j.
  void run_tiled(const float* x, float* y, int t, int nt) const {
    const int64_t m = dims_[j_], n = dims_[rank_ - 1], sn = in_st_[rank_ - 1], sm = out_st_[j_];
    const int64_t mtiles = (m + kTile - 1) / kTile;
    int64_t b, e;
    share(batch_ * mtiles, kTile * n, t, nt, &b, &e);
    // Channels-last with few channels (an image's NCHW -> NHWC): this share's tiles of one
    // batch at a time, as one run.
    const bool few = n <= 4 && sm == n;
    for (int64_t u = b; u < e; ++u) {
      const int64_t bi = u / mtiles, i0 = (u % mtiles) * kTile;
      const int64_t ue = few ? std::min(e, (bi + 1) * mtiles) : u + 1;
      const int64_t i1 = std::min(m, (ue - bi * mtiles) * kTile);
      // Batch offsets: decode bi over the batch dims.
      int64_t xo = 0, yo = 0, rest = bi;
      for (int k = nbatch_ - 1; k >= 0; --k) {
        const int64_t d = batch_dims_[k];
        const int64_t ik = rest % d;
        rest /= d;
        xo += ik * batch_in_[k];
        yo += ik * batch_out_[k];
      }
      const float* xb = x + xo;
      float* yb = y + yo;
      if (few) {
        interleave(xb, sn, n, i0, i1, yb);
        u = ue - 1;
        continue;
      }
      for (int64_t c0 = 0; c0 < n; c0 += kTile) {
        const int64_t c1 = std::min(n, c0 + kTile);
        // y[i * sm + c] = x[i + c * sn]: read columns of x contiguous along i.
        for (int64_t i = i0; i < i1; ++i) {
          const float* xs = xb + i;
          float* yr = yb + i * sm;
          for (int64_t c = c0; c < c1; ++c) yr[c] = xs[c * sn];
        }
      }
    }
  }

  // y[i * n + c] = x[i + c * sn] for i in [i0, i1), c < n <= 4: four pixels at a time as a
  // 4 x 4 transpose of n input runs (the others zero), each pixel's row stored whole where
  // the next pixel's store overwrites its excess, the last pixel's n values exactly.
  static void interleave(const float* x, int64_t sn, int64_t n, int64_t i0, int64_t i1, float* y) {
    int64_t i = i0;
#if defined(__SSE2__)
    for (; i + 4 <= i1; i += 4) {
      __m128 r[4];
      for (int64_t c = 0; c < 4; ++c) r[c] = c < n ? _mm_loadu_ps(x + i + c * sn) : _mm_setzero_ps();
      _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
      float* yi = y + i * n;
      _mm_storeu_ps(yi, r[0]);
      _mm_storeu_ps(yi + n, r[1]);
      _mm_storeu_ps(yi + 2 * n, r[2]);
      if (n == 4) {
        _mm_storeu_ps(yi + 3 * n, r[3]);
      } else {
        alignas(16) float last[4];
        _mm_store_ps(last, r[3]);
        std::memcpy(yi + 3 * n, last, static_cast<size_t>(n) * sizeof(float));
      }
    }
#endif
    for (; i < i1; ++i)
      for (int64_t c = 0; c < n; ++c) y[i * n + c] = x[i + c * sn];
  }

  int x_ = -1, y_ = -1, rank_ = 0;
  bool tiled_ = false;
  int64_t total_ = 0;
  int64_t dims_[kMaxRank] = {}, in_st_[kMaxRank] = {}, out_st_[kMaxRank] = {};
  int j_ = -1, nbatch_ = 0;
  int64_t batch_ = 1;
  int64_t batch_dims_[kMaxRank] = {}, batch_in_[kMaxRank] = {}, batch_out_[kMaxRank] = {};
};

std::unique_ptr<FastStep> make_transpose(const ir::Graph& g, const ir::Node& node) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1) return nullptr;
  const int xv = node.inputs[0], yv = node.outputs[0];
  if (!is_f32_static(g, xv) || !is_f32_static(g, yv)) return nullptr;
  const Shape& xs = dims_of(g, xv);
  const int64_t rank = static_cast<int64_t>(xs.size());
  if (rank > kMaxRank) return nullptr;
  ops::NodeAttrs attrs(node);
  std::vector<int64_t> perm;
  if (attrs.has_attr("perm")) {
    perm = attrs.attr_ints("perm");
  } else {
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int64_t>(perm.size()) != rank) return nullptr;
  std::vector<char> seen(static_cast<size_t>(rank), 0);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[static_cast<size_t>(p)]) return nullptr;
    seen[static_cast<size_t>(p)] = 1;
  }
  const int64_t total = shape_numel(xs);
  if (total <= 0) return nullptr;
  std::vector<int64_t> ist(static_cast<size_t>(rank), 1);
  for (int64_t d = rank - 2; d >= 0; --d)
    ist[static_cast<size_t>(d)] = ist[static_cast<size_t>(d + 1)] * xs[static_cast<size_t>(d + 1)];
  // Output dims with their input strides; drop size-1 dims and merge dims that stay adjacent.
  std::vector<int64_t> cd, cs;
  for (int64_t p : perm) {
    const int64_t d = xs[static_cast<size_t>(p)], st = ist[static_cast<size_t>(p)];
    if (d == 1) continue;
    if (!cd.empty() && cs.back() == st * d) {
      cd.back() *= d;
      cs.back() = st;
      continue;
    }
    cd.push_back(d);
    cs.push_back(st);
  }
  if (cd.empty()) {
    cd.push_back(1);
    cs.push_back(1);
  }
  auto s = std::make_unique<TransposeStep>();
  s->x_ = xv;
  s->y_ = yv;
  s->total_ = total;
  s->rank_ = static_cast<int>(cd.size());
  int64_t ost = 1;
  for (int d = s->rank_ - 1; d >= 0; --d) {
    s->dims_[d] = cd[static_cast<size_t>(d)];
    s->in_st_[d] = cs[static_cast<size_t>(d)];
    s->out_st_[d] = ost;
    ost *= cd[static_cast<size_t>(d)];
  }
  if (s->in_st_[s->rank_ - 1] != 1) {
    // Some output dim is the input's contiguous one (the input's last non-1 dim).
    for (int d = 0; d < s->rank_ - 1; ++d)
      if (s->in_st_[d] == 1) s->j_ = d;
    if (s->j_ < 0) return nullptr;
    s->tiled_ = true;
    for (int d = 0; d < s->rank_ - 1; ++d) {
      if (d == s->j_) continue;
      s->batch_dims_[s->nbatch_] = s->dims_[d];
      s->batch_in_[s->nbatch_] = s->in_st_[d];
      s->batch_out_[s->nbatch_] = s->out_st_[d];
      s->batch_ *= s->dims_[d];
      ++s->nbatch_;
    }
  }
  return s;
}

// ---- Softmax / LogSoftmax ------------------------------------------------------------------

class SoftmaxStep final : public FastStep {
 public:
  explicit SoftmaxStep(const kernels::KernelTable& kt) : kt_(kt) {}
  const char* kind() const override { return log_ ? "logsoftmax" : "softmax"; }

  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    const float* x = in_ptr(vals, x_);
    float* y = out_ptr(vals, y_);
    int64_t b, e;
    // Units: one normalized row (outer x inner of them), n elements each.
    share(outer_ * inner_, n_, t, nt, &b, &e);
    for (int64_t u = b; u < e; ++u) {
      const int64_t o = u / inner_, i = u % inner_;
      const int64_t base = o * n_ * inner_ + i;
      if (inner_ == 1)
        kt_.f32_softmax(x + base, y + base, n_, log_);
      else
        row(x + base, y + base, inner_);
    }
  }

  // A row strided by st: the reference's formula, one element at a time: max, exp(x - max)
  // summed in double, exp / sum rounded to float (or x - max - log(sum)). y may be x (in
  // place): every x is read before its y is written. (Contiguous rows: the level's kernel.)
  void row(const float* x, float* y, int64_t st) const {
    const int64_t n = n_;
    float mx = x[0];
    for (int64_t k = 1; k < n; ++k)
      if (x[k * st] > mx) mx = x[k * st];
    double sum = 0;
    if (log_) {
      for (int64_t k = 0; k < n; ++k) sum += static_cast<double>(std::exp(x[k * st] - mx));
      const float log_sum = static_cast<float>(std::log(sum));
      for (int64_t k = 0; k < n; ++k) y[k * st] = x[k * st] - mx - log_sum;
      return;
    }
    for (int64_t k = 0; k < n; ++k) {
      const float ek = std::exp(x[k * st] - mx);
      sum += static_cast<double>(ek);
      y[k * st] = ek;
    }
    for (int64_t k = 0; k < n; ++k)
      y[k * st] = static_cast<float>(static_cast<double>(y[k * st]) / sum);
  }

  const kernels::KernelTable& kt_;
  bool log_ = false;
  int x_ = -1, y_ = -1;
  int64_t outer_ = 1, n_ = 1, inner_ = 1;
};

std::unique_ptr<FastStep> make_softmax(const ir::Graph& g, const ir::Node& node,
                                       const kernels::KernelTable& kt) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1) return nullptr;
  const int xv = node.inputs[0], yv = node.outputs[0];
  if (!is_f32_static(g, xv) || !is_f32_static(g, yv) || dims_of(g, xv) != dims_of(g, yv))
    return nullptr;
  const Shape& s = dims_of(g, xv);
  const int64_t rank = static_cast<int64_t>(s.size());
  if (rank == 0 || shape_numel(s) <= 0) return nullptr;
  const bool legacy = node.opset < 13;
  ops::NodeAttrs attrs(node);
  int64_t axis = attrs.attr_int("axis", legacy ? 1 : -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return nullptr;
  auto st = std::make_unique<SoftmaxStep>(kt);
  st->log_ = node.op_type == "LogSoftmax";
  st->x_ = xv;
  st->y_ = yv;
  st->n_ = 1;
  for (int64_t d = 0; d < axis; ++d) st->outer_ *= s[static_cast<size_t>(d)];
  if (legacy) {
    for (int64_t d = axis; d < rank; ++d) st->n_ *= s[static_cast<size_t>(d)];
  } else {
    st->n_ = s[static_cast<size_t>(axis)];
    for (int64_t d = axis + 1; d < rank; ++d) st->inner_ *= s[static_cast<size_t>(d)];
  }
  return st;
}

// ---- ReduceMean over trailing axes ---------------------------------------------------------

class ReduceMeanStep final : public FastStep {
 public:
  const char* kind() const override { return "reducemean"; }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    const float* x = in_ptr(vals, x_);
    float* y = out_ptr(vals, y_);
    int64_t b, e;
    share(rows_, n_, t, nt, &b, &e);
    // As the reference: a double sum in order, divided by the count, rounded to float.
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n_;
      double acc = 0;
      for (int64_t k = 0; k < n_; ++k) acc += static_cast<double>(xr[k]);
      y[r] = static_cast<float>(acc / static_cast<double>(n_));
    }
  }
  int x_ = -1, y_ = -1;
  int64_t rows_ = 1, n_ = 1;
};

std::unique_ptr<FastStep> make_reduce_mean(const ir::Graph& g, const ir::Node& node) {
  if (node.inputs.empty() || node.inputs.size() > 2 || node.outputs.size() != 1) return nullptr;
  const int xv = node.inputs[0], yv = node.outputs[0];
  if (!is_f32_static(g, xv) || !is_f32_static(g, yv)) return nullptr;
  const Shape& s = dims_of(g, xv);
  const int64_t rank = static_cast<int64_t>(s.size());
  if (rank == 0 || shape_numel(s) <= 0) return nullptr;
  ops::NodeAttrs attrs(node);
  std::vector<int64_t> axes;
  if (node.opset < 18) {
    if (node.inputs.size() != 1) return nullptr;
    axes = attrs.attr_ints("axes", {});
  } else {
    const int av = node.inputs.size() > 1 ? node.inputs[1] : -1;
    if (av >= 0) {
      const Tensor* a = constant_of(g, av);
      if (!a || a->dtype() != DType::kInt64 || a->rank() > 1) return nullptr;
      axes = a->to_int64_vector();
    }
    if (axes.empty() && attrs.attr_int("noop_with_empty_axes", 0) != 0) return nullptr;
  }
  std::vector<char> red(static_cast<size_t>(rank), axes.empty() ? 1 : 0);
  for (int64_t a : axes) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank || red[static_cast<size_t>(a)]) return nullptr;
    red[static_cast<size_t>(a)] = 1;
  }
  // Only a trailing block of reduced axes: each output is one contiguous run.
  int64_t first = rank;
  while (first > 0 && red[static_cast<size_t>(first - 1)]) --first;
  for (int64_t d = 0; d < first; ++d)
    if (red[static_cast<size_t>(d)]) return nullptr;
  auto st = std::make_unique<ReduceMeanStep>();
  st->x_ = xv;
  st->y_ = yv;
  for (int64_t d = 0; d < rank; ++d) (d < first ? st->rows_ : st->n_) *= s[static_cast<size_t>(d)];
  if (shape_numel(dims_of(g, yv)) != st->rows_) return nullptr;
  return st;
}

}  // namespace

std::unique_ptr<FastStep> make_elementwise_step(const ir::Graph& g, size_t n,
                                                const kernels::KernelTable& kt) {
  const ir::Node& node = g.nodes[n];
  if (!node.domain.empty()) return nullptr;
  const std::string& op = node.op_type;
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" || op == "PRelu" ||
      ((op == "Max" || op == "Min") && node.inputs.size() == 2))
    return make_binary(g, node);
  if (op == "Transpose") return make_transpose(g, node);
  if (op == "Softmax" || op == "LogSoftmax") return make_softmax(g, node, kt);
  if (op == "ReduceMean") return make_reduce_mean(g, node);
  return make_unary(g, node);
}

}  // namespace lithe::runtime
