// The INT8 step: lithe.QConvNhwc (ops/qnhwc.cpp) with the q8 kernels of kernels/. Weights
// are packed at preparation (GEMM panels of 16 output channels, 4 input values per column
// group, or [taps][C] for depthwise); the input zero point is folded into the bias as
// -x_zp * (column sum of W), and im2col pads with x_zp so padded taps add nothing. The output
// stage is quant/qconv.hpp: on the integer path the kernels requantize; on the float path
// (residual input, or an activation that is not a clamp) they hand back int32 sums, and the
// step applies the float output stage (kernels q8_float_out), as the reference kernel does.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ops/conv_pool_internal.hpp"
#include "ops/qnhwc.hpp"
#include "quant/qbinary.hpp"
#include "quant/qconv.hpp"
#include "runtime/fast_step_util.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

using kernels::KernelTable;
using kernels::kPanel;
using kernels::panels_of;
using namespace step_util;

// 64-byte-aligned storage of any trivially copyable element type.
template <class T>
struct Aligned {
  AlignedFloats mem;
  explicit Aligned(int64_t count = 0) : mem((count * static_cast<int64_t>(sizeof(T)) + 3) / 4) {}
  T* data() const { return reinterpret_cast<T*>(mem.data()); }
};

// With no residual and an activation that never decreases (Sigmoid, Tanh, HardSigmoid with
// alpha >= 0), the float output stage's byte never decreases as the accumulator grows (the
// multiply by a positive scale, the activation, the division and the rounding all keep
// order). Per channel, the least accumulator giving each code (found at load by bisection on
// quant::float_output itself) then turns the stage into a table lookup with exactly the
// reference's results: buckets of 2^shift accumulators, no wider than the closest two
// thresholds, so at most one threshold lies inside a bucket; a bucket holds the code at its
// start and the next threshold. Empty when the stage does not qualify, for more than 64
// channels (the bisection costs about 8,000 evaluations a channel) or when a channel would
// need more than kMaxBuckets buckets (thresholds packed very unevenly), or a layer more than
// kMaxTotal (9 bytes each).
struct CodeTable {
  static constexpr int64_t kMaxBuckets = 8192, kMaxTotal = 65536;
  struct Channel {
    int32_t first = 0;  // the least threshold above INT32_MIN
    uint8_t below = 0;  // the code under it
    uint8_t top = 0;    // the largest code
    int shift = 0;
    int64_t buckets = 0;
    size_t at = 0;  // its buckets in code / next
  };
  std::vector<Channel> ch;
  std::vector<uint8_t> code_at;  // per bucket: the code at its start
  std::vector<int64_t> next;     // per bucket: the next threshold (INT64_MAX: none)
  bool empty() const { return ch.empty(); }
  int64_t bytes() const { return static_cast<int64_t>(code_at.size() + next.size() * 8); }
  uint8_t code(int64_t c, int32_t acc) const {
    const Channel& h = ch[static_cast<size_t>(c)];
    if (acc < h.first) return h.below;
    const size_t b = h.at + static_cast<size_t>(
                                std::min<int64_t>((int64_t{acc} - h.first) >> h.shift, h.buckets - 1));
    return static_cast<uint8_t>(code_at[b] + (acc >= next[b]));
  }
};

CodeTable code_table(const quant::QConvOutput& o, int64_t channels) {
  using ops::fused::Activation;
  const Activation a = o.act.act;
  if (!o.float_path || o.has_z || o.act.affine || channels > 64 ||
      !(a == Activation::kSigmoid || a == Activation::kTanh ||
        (a == Activation::kHardSigmoid && o.act.p0 >= 0)))
    return {};
  CodeTable r;
  for (int64_t c = 0; c < channels; ++c) {
    const float scale = o.acc_scale[static_cast<size_t>(c)];
    if (!(scale > 0) || !std::isfinite(scale)) return {};
    auto code = [&](int64_t acc) {
      return quant::float_output(static_cast<int32_t>(acc), scale, nullptr, 0, 0, o.act, o.y_scale,
                                 o.y_zp);
    };
    CodeTable::Channel h;
    h.below = code(INT32_MIN);
    h.top = code(INT32_MAX);
    if (h.top < h.below) return {};
    // t[q]: the least accumulator of code >= q, for q in (below, top].
    std::vector<int64_t> t(256, INT64_MAX);
    int64_t lo = INT32_MIN;
    for (int q = h.below + 1; q <= h.top; ++q) {
      int64_t hi = INT32_MAX;  // code(hi) >= q
      while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (code(mid) >= q)
          hi = mid;
        else
          lo = mid + 1;
      }
      // A check that the order holds where it matters.
      if (code(lo) < q || code(lo - 1) >= q) return {};
      t[static_cast<size_t>(q)] = lo;
    }
    h.at = r.next.size();
    if (h.top == h.below) {  // one code throughout
      h.first = INT32_MAX;
      h.buckets = 1;
      r.code_at.push_back(h.top);
      r.next.push_back(INT64_MAX);
      r.ch.push_back(h);
      continue;
    }
    h.first = static_cast<int32_t>(t[static_cast<size_t>(h.below + 1)]);
    int64_t gap = INT64_MAX;
    for (int q = h.below + 1; q < h.top; ++q)
      gap = std::min(gap, t[static_cast<size_t>(q + 1)] - t[static_cast<size_t>(q)]);
    while (h.shift < 62 && (int64_t{2} << h.shift) <= gap) ++h.shift;
    h.buckets = ((t[h.top] - h.first) >> h.shift) + 1;
    if (h.buckets > CodeTable::kMaxBuckets ||
        static_cast<int64_t>(r.next.size()) + h.buckets > CodeTable::kMaxTotal)
      return {};
    for (int64_t b = 0, q = h.below + 1; b < h.buckets; ++b) {
      const int64_t start = h.first + (b << h.shift);
      while (q <= h.top && t[static_cast<size_t>(q)] <= start) ++q;  // q: the next code
      r.code_at.push_back(static_cast<uint8_t>(q - 1));
      r.next.push_back(q <= h.top ? t[static_cast<size_t>(q)] : INT64_MAX);
    }
    r.ch.push_back(h);
  }
  return r;
}

class QConvStep final : public FastStep, public ConvShape {
 public:
  enum class Kind { kGemm, kIm2col, kDepthwise };
  QConvStep(const KernelTable& kt, Kind kind) : kt_(kt), kind_(kind) {}

  int64_t scratch_floats() const override {
    // A row's sums (float path), or the kernel's widened input rows.
    if (kind_ == Kind::kDepthwise)
      return out_.float_path ? ow_ * c_ : (kernels::q8_dw_rows_bytes(dwa_) + 3) / 4;
    // The A tile (rows copied or gathered), then the float path's int32 sums (see run()).
    int64_t bytes = a_tile_bytes();
    if (out_.float_path) bytes += tm_ * pchunk_ * kPanel * 4;
    return (bytes + 3) / 4;
  }
  int64_t macs() const override { return macs_; }
  std::vector<int> packed_constants() const override { return {w_}; }
  int64_t owned_bytes() const override { return packed_.mem.bytes + extra_bytes_ + thr_.bytes(); }
  const char* kind() const override {
    return kind_ == Kind::kDepthwise ? "q8-dwconv"
           : kind_ == Kind::kGemm    ? "q8-conv-gemm"
                                     : "q8-conv-im2col";
  }

  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const auto* x = static_cast<const uint8_t*>(vals[static_cast<size_t>(x_)]);
    auto* y = static_cast<uint8_t*>(vals[static_cast<size_t>(y_)]);
    const auto* z = z_ >= 0 ? static_cast<const uint8_t*>(vals[static_cast<size_t>(z_)]) : nullptr;
    const int64_t in_img = ih_ * iw_ * c_, out_img = oh_ * ow_ * m_;
    if (kind_ == Kind::kDepthwise) return run_depthwise(x, y, z, t, nt, scratch);
    const int64_t mrows = oh_ * ow_;
    const int64_t mt = (mrows + tm_ - 1) / tm_;
    const int64_t pg = panels_of(mg_), pc = (pg + pchunk_ - 1) / pchunk_;
    int64_t b, e;
    static_range(nb_ * group_ * mt * pc, t, nt, &b, &e);
    auto* abuf = reinterpret_cast<uint8_t*>(scratch);
    auto* acc = reinterpret_cast<int32_t*>(abuf + a_tile_bytes());
    int64_t built = -1;
    for (int64_t task = b; task < e; ++task) {
      const int64_t pi = task % pc, rest = task / pc;
      const int64_t mi = rest % mt, gi = (rest / mt) % group_, img = rest / mt / group_;
      const int64_t m0 = mi * tm_, m1 = std::min(mrows, m0 + tm_);
      const int64_t p0 = pi * pchunk_, p1 = std::min(pg, p0 + pchunk_);
      const uint8_t* xg = x + img * in_img + gi * cg_;
      kernels::Q8GemmArgs a;
      a.n = mg_;
      a.k = kdim_;
      a.bp = packed_.data() + gi * kernels::packed_b_q8_bytes(kdim_, mg_);
      a.bias = bias_.data() + gi * pg * kPanel;
      a.mult = mult_.data() + gi * pg * kPanel;
      a.zy = out_.y_zp;
      a.lo = out_.lo;
      a.hi = out_.hi;
      a.acc24 = acc24_;
      int64_t r0 = m0;  // first row of A the kernel sees
      if (kind_ == Kind::kGemm && direct_) {
        a.a = xg;
        a.lda = c_;
      } else {
        if (built != rest) {
          build_rows(xg, x + nb_ * in_img, m0, m1, abuf);
          built = rest;
        }
        a.a = abuf - m0 * k4_;  // row r at a + r * lda for r in [m0, m1)
        a.lda = k4_;
      }
      a.m = m1;
      uint8_t* yrow = y + img * out_img + gi * mg_;
      if (!out_.float_path) {
        a.c = yrow;
        a.ldc = m_;
        kt_.q8_gemm(a, r0, m1, p0, p1);
        continue;
      }
      // Float path: int32 sums of this tile, then the output stage per value.
      const int64_t n0 = p0 * kPanel, n1 = std::min(mg_, p1 * kPanel), w = n1 - n0;
      a.c32 = acc - m0 * w - n0;
      a.ldc32 = w;
      kt_.q8_gemm(a, r0, m1, p0, p1);
      if (!thr_.empty()) {
        for (int64_t r = m0; r < m1; ++r)
          for (int64_t j = 0; j < w; ++j)
            yrow[r * m_ + n0 + j] = thr_.code(gi * mg_ + n0 + j, acc[(r - m0) * w + j]);
        continue;
      }
      kernels::Q8FloatOutArgs f = fout_;
      f.n = w;
      f.acc_scale = out_.acc_scale.data() + gi * mg_ + n0;
      for (int64_t r = m0; r < m1; ++r) {
        f.acc = acc + (r - m0) * w;
        f.y = yrow + r * m_ + n0;
        f.z = z ? z + img * out_img + r * m_ + gi * mg_ + n0 : nullptr;
        kt_.q8_float_out(f);
      }
    }
  }

  // Bytes of the A tile in the scratch: none when the kernel reads the input in place.
  int64_t a_tile_bytes() const {
    return kind_ == Kind::kGemm && direct_ ? 0 : (tm_ * k4_ + 64 + 63) / 64 * 64;
  }

  // Rows [m0, m1) of this image's (and group's) A: pixel r's input channels (1x1 with a
  // channel count the kernel cannot read in place) or its receptive field in (ky, kx, c) order,
  // x_zp where a tap falls outside the image; each row k4_ bytes (those past kdim_ are left as
  // they are: packed B is zero there). `end` is the input's end.
  void build_rows(const uint8_t* xg, const uint8_t* end, int64_t m0, int64_t m1, uint8_t* out) const {
    const auto pad = static_cast<uint8_t>(x_zp_);
    // One kernel row's taps are contiguous in the input without dilation or groups: a stem's
    // 3x3 over 3 channels is 3 copies of 9 bytes, done as 16-byte moves (the excess lands in
    // the next taps, the row's tail or the tile's 64 spare bytes, all written after).
    const int64_t span = kw_ * cg_;
    const bool contiguous = dw_ == 1 && cg_ == c_, runs = contiguous && span <= 16;
    int64_t oy = m0 / ow_, ox = m0 % ow_;  // pixel r, stepped along (no division per row)
    for (int64_t r = m0; r < m1; ++r, ox = ox + 1 == ow_ ? 0 : ox + 1, oy += ox == 0) {
      uint8_t* const start = out + (r - m0) * k4_;
      uint8_t* row = start;
      if (kind_ == Kind::kGemm) {
        std::memcpy(row, xg + r * c_, static_cast<size_t>(cg_));
      } else {
        const int64_t ix0 = ox * sw_ - pw_, iy0 = oy * sh_ - ph_;
        if (runs && ix0 >= 0 && ix0 + kw_ <= iw_ && iy0 >= 0 && iy0 + (kh_ - 1) * dh_ < ih_) {
          // This output row's next pixels whose windows lie inside the image: kh 16-byte
          // moves each, the sources stepping by sw pixels.
          const int64_t n = std::min({m1 - r, ow_ - ox, (iw_ - kw_ - ix0) / sw_ + 1});
          const uint8_t* src = xg + (iy0 * iw_ + ix0) * c_;
          const int64_t rstep = dh_ * iw_ * c_, last = (kh_ - 1) * rstep, step = sw_ * c_;
          int64_t j = 0;
          for (uint8_t* o = start; j < n && src + last + 16 <= end; ++j, src += step, o += k4_) {
            for (int64_t ky = 0; ky < kh_; ++ky) std::memcpy(o + ky * span, src + ky * rstep, 16);
          }
          if (j > 0) {  // the loop's step moves to the pixel after these j
            r += j - 1;
            ox += j - 1;
            continue;
          }
        }
        const bool inside_x = contiguous && ix0 >= 0 && ix0 + kw_ <= iw_;
        for (int64_t ky = 0; ky < kh_; ++ky) {
          const int64_t iy = iy0 + ky * dh_;
          if (iy < 0 || iy >= ih_) {
            std::memset(row, pad, static_cast<size_t>(span));
            row += span;
            continue;
          }
          if (inside_x) {
            const uint8_t* src = xg + (iy * iw_ + ix0) * c_;
            if (span <= 16 && src + 16 <= end)
              std::memcpy(row, src, 16);
            else
              std::memcpy(row, src, static_cast<size_t>(span));
            row += span;
            continue;
          }
          for (int64_t kx = 0; kx < kw_; ++kx, row += cg_) {
            const int64_t ix = ix0 + kx * dw_;
            if (ix < 0 || ix >= iw_)
              std::memset(row, pad, static_cast<size_t>(cg_));
            else
              std::memcpy(row, xg + (iy * iw_ + ix) * c_, static_cast<size_t>(cg_));
          }
        }
      }
    }
  }

  void run_depthwise(const uint8_t* x, uint8_t* y, const uint8_t* z, int t, int nt,
                     float* scratch) const {
    const int64_t in_img = ih_ * iw_ * c_, out_img = oh_ * ow_ * m_;
    int64_t b, e;
    static_range(nb_ * oh_, t, nt, &b, &e);
    for (int64_t r = b; r < e;) {
      const int64_t img = r / oh_, oy = r % oh_;
      kernels::Q8DwConvArgs d = dwa_;
      d.x = x + img * in_img;
      d.y = y + img * out_img;
      if (!out_.float_path) {  // this thread's rows of the image in one call (rows cached)
        const int64_t oy1 = std::min(oh_, oy + (e - r));
        d.rows = reinterpret_cast<int32_t*>(scratch);
        kt_.q8_dwconv(d, oy, oy1);
        r += oy1 - oy;
        continue;
      }
      dw_float_row(d, oy, z ? z + img * out_img : nullptr, reinterpret_cast<int32_t*>(scratch));
      ++r;
    }
  }

  // One output row of a depthwise conv with the float output stage (residual input or an
  // activation that is not a clamp): the kernel's int32 sums, then the output stage per pixel.
  void dw_float_row(const kernels::Q8DwConvArgs& dw, int64_t oy, const uint8_t* z,
                    int32_t* acc) const {
    kernels::Q8DwConvArgs d = dw;
    d.y32 = acc - oy * d.ow * d.c;
    kt_.q8_dwconv(d, oy, oy + 1);
    if (!thr_.empty()) {
      for (int64_t ox = 0; ox < d.ow; ++ox)
        for (int64_t ch = 0; ch < d.c; ++ch)
          d.y[(oy * d.ow + ox) * d.y_stride + ch] = thr_.code(ch, acc[ox * d.c + ch]);
      return;
    }
    kernels::Q8FloatOutArgs f = fout_;
    f.n = d.c;
    f.acc_scale = out_.acc_scale.data();
    for (int64_t ox = 0; ox < d.ow; ++ox) {
      f.acc = acc + ox * d.c;
      f.y = d.y + (oy * d.ow + ox) * d.y_stride;
      f.z = z ? z + (oy * d.ow + ox) * c_ : nullptr;
      kt_.q8_float_out(f);
    }
  }

  const KernelTable& kt_;
  Kind kind_;
  int x_ = -1, y_ = -1, z_ = -1, w_ = -1;
  int64_t kdim_ = 0, k4_ = 0, tm_ = 0, pchunk_ = 1, extra_bytes_ = 0;
  int32_t x_zp_ = 0;
  bool direct_ = false;
  bool acc24_ = true;  // Q8GemmArgs::acc24 for every group
  quant::QConvOutput out_;
  Aligned<int8_t> packed_;
  std::vector<int32_t> bias_;
  std::vector<quant::Multiplier> mult_;
  kernels::Q8DwConvArgs dwa_;
  kernels::Q8FloatOutArgs fout_;  // the float output stage's constant part
  CodeTable thr_;                 // the float output stage as a lookup, where it qualifies
};

// A uint8 NHWC value with a fully known shape.
bool u8_static(const ir::Graph& g, int v) {
  return is_static(g, v, DType::kUInt8) && dims_of(g, v).size() == 4;
}

}  // namespace

std::unique_ptr<FastStep> make_qconv(const ir::Graph& g, const ir::Node& node,
                                     const KernelTable& kt, const plan::MemoryPlan* plan) {
  using ops::QConvInput;
  if (!kt.q8_gemm || !kt.q8_dwconv || node.outputs.size() != 1) return nullptr;
  std::vector<const Tensor*> in(node.inputs.size(), nullptr);
  for (size_t i = 0; i < in.size(); ++i) {
    if (node.inputs[i] < 0) continue;
    in[i] = constant_of(g, node.inputs[i]);
    // Every input but X and Z is a constant the step reads once, here.
    if (!in[i] && i != ops::kQX && i != ops::kQZ) return nullptr;
  }
  const int xv = node.inputs[ops::kQX], yv = node.outputs[0];
  const int zv = input_at(node, ops::kQZ);
  const Tensor* w = in[ops::kQW];
  if (!u8_static(g, xv) || !u8_static(g, yv) || (zv >= 0 && !u8_static(g, zv)) || !w ||
      w->dtype() != DType::kInt8 || w->rank() != 4)
    return nullptr;
  if (plan && plan->strided(yv)) return nullptr;
  const Shape& xs = dims_of(g, xv);
  const Shape& ys = dims_of(g, yv);
  const Shape& ws = w->shape();
  ops::NodeAttrs attrs(node);
  const int64_t group = attrs.attr_int("group", 1);
  const int64_t c = xs[3], m = ws[0];
  if (group < 1 || c % group || m % group || ws[1] * group != c || ys[3] != m) return nullptr;
  if (zv >= 0 && dims_of(g, zv) != ys) return nullptr;
  ops::conv_pool::Geometry geo =
      ops::conv_pool::forward_geometry(attrs, {xs[1], xs[2]}, {ws[2], ws[3]});
  if (geo.out[0] != ys[1] || geo.out[1] != ys[2]) return nullptr;
  const int64_t cg = c / group, mg = m / group, kh = ws[2], kw = ws[3];
  const bool depthwise = cg == 1 && mg == 1;
  const bool pointwise = kh == 1 && kw == 1 && geo.strides[0] == 1 && geo.strides[1] == 1 &&
                         geo.pad_begin[0] == 0 && geo.pad_begin[1] == 0 && ys[1] == xs[1] &&
                         ys[2] == xs[2];
  auto s = std::make_unique<QConvStep>(kt, depthwise   ? QConvStep::Kind::kDepthwise
                                           : pointwise ? QConvStep::Kind::kGemm
                                                       : QConvStep::Kind::kIm2col);
  s->out_ = ops::qconv_output_stage(attrs, in, m);
  s->fout_.z_scale = s->out_.z_scale;
  s->fout_.z_zp = s->out_.z_zp;
  s->fout_.act = s->out_.act;
  s->fout_.y_scale = s->out_.y_scale;
  s->fout_.y_zp = s->out_.y_zp;
  // Worth its load-time bisection on layers of many pixels.
  if (ys[1] * ys[2] >= 1024) s->thr_ = code_table(s->out_, m);
  s->x_ = xv;
  s->y_ = yv;
  s->z_ = zv;
  s->w_ = node.inputs[ops::kQW];
  s->set_shape(xs, ys, ws, group, geo);
  s->x_zp_ = in[ops::kQXZp]->data<uint8_t>()[0];
  const int8_t* wd = w->data<int8_t>();
  const int32_t* bd =
      in.size() > ops::kQB && in[ops::kQB] ? in[ops::kQB]->data<int32_t>() : nullptr;
  if (depthwise) {
    s->packed_ = Aligned<int8_t>(kh * kw * c);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t tap = 0; tap < kh * kw; ++tap)
        s->packed_.data()[tap * c + ch] = wd[ch * kh * kw + tap];
    s->bias_.assign(static_cast<size_t>(c), 0);
    if (bd) std::copy(bd, bd + c, s->bias_.begin());
    s->mult_ = s->out_.mult;
    kernels::Q8DwConvArgs& d = s->dwa_;
    d.acc24 = true;
    for (int64_t ch = 0; ch < c; ++ch) {
      int64_t sum_abs = 0;
      for (int64_t tap = 0; tap < kh * kw; ++tap) sum_abs += std::abs(int64_t{wd[ch * kh * kw + tap]});
      d.acc24 = d.acc24 && kernels::q8_acc_fits_float(s->bias_[static_cast<size_t>(ch)], sum_abs);
    }
    d.w = s->packed_.data();
    d.bias = s->bias_.data();
    d.mult = s->mult_.data();
    d.zx = s->x_zp_;
    d.zy = s->out_.y_zp;
    d.lo = s->out_.lo;
    d.hi = s->out_.hi;
    s->depthwise_geometry(d, c);
    s->extra_bytes_ = c * 8 + c * 4;
    return s;
  }
  // GEMM B per group: K = kh*kw*cg rows in (ky, kx, c) order, N = mg columns.
  const int64_t k = kh * kw * cg, pg = panels_of(mg);
  s->kdim_ = k;
  s->k4_ = (k + 3) / 4 * 4;
  s->direct_ = pointwise && c % 4 == 0 && group == 1;
  const int64_t per_group = kernels::packed_b_q8_bytes(k, mg);
  s->packed_ = Aligned<int8_t>(per_group * group);
  s->bias_.assign(static_cast<size_t>(group * pg * kPanel), 0);
  s->mult_.assign(static_cast<size_t>(group * pg * kPanel), quant::Multiplier{});
  std::vector<int8_t> bmat(static_cast<size_t>(k * mg));
  std::vector<int32_t> colsum(static_cast<size_t>(mg));
  for (int64_t gi = 0; gi < group; ++gi) {
    for (int64_t n = 0; n < mg; ++n)
      for (int64_t ci = 0; ci < cg; ++ci)
        for (int64_t tap = 0; tap < kh * kw; ++tap)
          bmat[static_cast<size_t>((tap * cg + ci) * mg + n)] =
              wd[((gi * mg + n) * cg + ci) * kh * kw + tap];
    kernels::pack_b_q8(k, mg, bmat.data(), mg, 1, s->packed_.data() + gi * per_group);
    kernels::colsum_q8(k, mg, bmat.data(), mg, 1, colsum.data());
    for (int64_t n = 0; n < mg; ++n) {
      const size_t o = static_cast<size_t>(gi * pg * kPanel + n);
      // Wraps like the int32 accumulators; the quantizer keeps real sums far from 2^31.
      s->bias_[o] = static_cast<int32_t>(static_cast<uint32_t>(bd ? bd[gi * mg + n] : 0) -
                                         static_cast<uint32_t>(s->x_zp_ * colsum[n]));
      s->mult_[o] = s->out_.mult[static_cast<size_t>(gi * mg + n)];
      int64_t sum_abs = 0;
      for (int64_t kk = 0; kk < k; ++kk) sum_abs += std::abs(int64_t{bmat[static_cast<size_t>(kk * mg + n)]});
      s->acc24_ = s->acc24_ && kernels::q8_acc_fits_float(bd ? bd[gi * mg + n] : 0, sum_abs);
    }
  }
  // Row tiles: the A tile (tm x K bytes) within about 64 KiB; all panels of a group per task
  // unless that leaves threads idle (the tile is built once per task).
  s->tm_ = std::clamp<int64_t>((65536 / std::max<int64_t>(s->k4_, 1)) / 16 * 16, 16, 256);
  // Enough tasks for the pool's threads: split the panels when the row tiles are few (7x7
  // layers are one tile).
  const int64_t row_tasks = xs[0] * group * ((ys[1] * ys[2] + s->tm_ - 1) / s->tm_);
  const int64_t chunks = std::clamp<int64_t>((8 + row_tasks - 1) / row_tasks, 1, pg);
  // Chunks of an even number of panels: the kernels' widest tiles are two panels wide, and an
  // odd chunk leaves a one-panel tile (half the columns per broadcast of A) in each.
  s->pchunk_ = std::min(pg, ((pg + chunks - 1) / chunks + 1) / 2 * 2);
  s->extra_bytes_ = static_cast<int64_t>(s->bias_.size() * 4 + s->mult_.size() * 8);
  return s;
}

namespace {

// QuantizeLinear (float32 -> uint8) and DequantizeLinear (uint8 -> float32) with one scale and
// zero point, the borders between INT8 and FP32 nodes. The same expressions as the reference
// kernels (ops/quant.cpp): x / scale rounded half to even, and (q - zp) * scale, which for a
// uint8 input is a table of 256 floats.
class QuantStep final : public FastStep {
 public:
  int64_t macs() const override { return 0; }
  const char* kind() const override { return dequant_ ? "dequantize" : "quantize"; }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    int64_t b, e;
    static_range((n_ + 1023) / 1024, t, nt, &b, &e);
    b *= 1024;
    e = std::min(n_, e * 1024);
    if (dequant_) {
      const auto* x = static_cast<const uint8_t*>(vals[static_cast<size_t>(x_)]);
      auto* y = static_cast<float*>(vals[static_cast<size_t>(y_)]);
      for (int64_t i = b; i < e; ++i) y[i] = lut_[x[i]];
      return;
    }
    const auto* x = static_cast<const float*>(vals[static_cast<size_t>(x_)]);
    auto* y = static_cast<uint8_t*>(vals[static_cast<size_t>(y_)]);
    if (e > b) kt_->q8_quantize(x + b, e - b, scale_, zp_, y + b);
  }

  const KernelTable* kt_ = nullptr;
  bool dequant_ = false;
  int x_ = -1, y_ = -1;
  int64_t n_ = 0;
  float scale_ = 1;
  int32_t zp_ = 0;
  float lut_[256] = {};
};

// lithe.LookupU8: y = table[x] over the whole tensor, or per channel of the last axis through
// an index into T distinct tables. With a few tables (the equalization's power-of-two factors
// give a handful) each runs the whole-tensor kernel over a block of rows and its channels are
// merged in by a byte mask (both vectorize); with more, a scalar loop per byte.
class LookupStep final : public FastStep {
 public:
  // Rows of a block: about kBlock bytes.
  static constexpr int64_t kBlock = 4096;
  static constexpr size_t kMaxMasked = 8;

  const char* kind() const override { return c_ > 1 ? "lookup-u8-per-channel" : "lookup-u8"; }
  int64_t scratch_floats() const override { return masked() ? (rows_ * c_ + 3) / 4 : 0; }
  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const auto* x = static_cast<const uint8_t*>(vals[static_cast<size_t>(x_)]);
    auto* y = static_cast<uint8_t*>(vals[static_cast<size_t>(y_)]);
    int64_t b, e;
    if (c_ > 1) {
      const int64_t rows = n_ / c_;
      static_range((rows + rows_ - 1) / rows_, t, nt, &b, &e);
      auto* tmp = reinterpret_cast<uint8_t*>(scratch);
      for (int64_t r = b * rows_; r < std::min(rows, e * rows_); r += rows_) {
        const int64_t len = std::min(rows_, rows - r) * c_;
        const uint8_t* xr = x + r * c_;
        uint8_t* yr = y + r * c_;
        if (!masked()) {
          for (int64_t i = 0; i < len; ++i) yr[i] = tables_[offset_[static_cast<size_t>(i % c_)] + xr[i]];
          continue;
        }
        kt_->q8_lookup(xr, len, tables_.data(), yr);
        for (size_t k = 1; k < masks_.size(); ++k) {
          kt_->q8_lookup(xr, len, tables_.data() + 256 * k, tmp);
          const uint8_t* m = masks_[k].data();
          for (int64_t i = 0; i < len; ++i) yr[i] = static_cast<uint8_t>((tmp[i] & m[i]) | (yr[i] & ~m[i]));
        }
      }
      return;
    }
    static_range((n_ + 4095) / 4096, t, nt, &b, &e);
    b *= 4096;
    e = std::min(n_, e * 4096);
    if (e > b) kt_->q8_lookup(x + b, e - b, tables_.data(), y + b);
  }

  bool masked() const { return c_ > 1 && tables_.size() / 256 <= kMaxMasked; }

  // Tables [t, 256] and the index of each of the c channels (each < t).
  void set_tables(const uint8_t* tables, int64_t t, const uint8_t* index, int64_t c) {
    c_ = c;
    rows_ = std::max<int64_t>(1, kBlock / c);
    tables_.assign(tables, tables + 256 * t);
    offset_.resize(static_cast<size_t>(c));
    for (int64_t ch = 0; ch < c; ++ch) offset_[static_cast<size_t>(ch)] = 256 * index[ch];
    if (!masked()) return;
    masks_.assign(static_cast<size_t>(t), {});
    for (size_t k = 1; k < masks_.size(); ++k) {
      masks_[k].resize(static_cast<size_t>(rows_ * c));
      for (int64_t i = 0; i < rows_ * c; ++i)
        masks_[k][static_cast<size_t>(i)] = index[i % c] == k ? 0xff : 0;
    }
  }

  const KernelTable* kt_ = nullptr;
  int x_ = -1, y_ = -1;
  int64_t n_ = 0, c_ = 1, rows_ = 1;
  std::vector<uint8_t> tables_;               // tables of 256 entries
  std::vector<size_t> offset_;                // per channel: its table's offset in tables_
  std::vector<std::vector<uint8_t>> masks_;  // per table (from the second): its channels
};

// lithe.QBinaryU8: broadcasting INT8 Add / Mul over the collapsed broadcast nest. Its inner
// dim is one kernel row (a contiguous; b contiguous or one value, the operands swapped when
// a is the broadcast one: both forms are symmetric); threads split the rows, or the elements
// of a single row. Rows under two outer dims go to the kernel in one call.
class QBinaryStep final : public FastStep {
 public:
  const char* kind() const override { return mul_ ? "q8-mul" : "q8-add"; }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    kernels::Q8BinaryArgs g = args_;
    g.a = static_cast<const uint8_t*>(vals[static_cast<size_t>(a_)]);
    g.b = static_cast<const uint8_t*>(vals[static_cast<size_t>(b_)]);
    g.y = static_cast<uint8_t*>(vals[static_cast<size_t>(y_)]);
    const int64_t n = args_.n, rows = total_ / n;
    const int threads = total_ < 16384 ? 1 : nt;  // the pool's overhead would exceed the work
    if (t >= threads) return;
    int64_t r0, r1;
    if (rows == 1) {  // one row: split its elements in chunks of 64
      static_range((n + 63) / 64, t, threads, &r0, &r1);
      r0 *= 64;
      r1 = std::min(n, r1 * 64);
      if (r1 <= r0) return;
      g.a += r0;
      g.b += g.b_scalar ? 0 : r0;
      g.y += r0;
      g.n = r1 - r0;
      kt_->q8_binary(g);
      return;
    }
    static_range(rows, t, threads, &r0, &r1);
    if (r1 <= r0) return;
    const int last = nest_.rank - 1;
    if (last <= 1) {  // one outer dim: its strides are the kernel's row strides
      g.rows = r1 - r0;
      g.a += r0 * g.a_row;
      g.b += r0 * g.b_row;
      g.y += r0 * n;
      kt_->q8_binary(g);
      return;
    }
    g.rows = 1;
    const uint8_t* a = g.a;
    const uint8_t* b = g.b;
    for (int64_t r = r0; r < r1; ++r) {
      int64_t oa = 0, ob = 0;
      for (int64_t d = last - 1, rem = r; d >= 0; --d) {
        const int64_t i = rem % nest_.dims[d];
        rem /= nest_.dims[d];
        oa += i * nest_.sa[d];
        ob += i * nest_.sb[d];
      }
      g.a = a + oa;
      g.b = b + ob;
      g.y = static_cast<uint8_t*>(vals[static_cast<size_t>(y_)]) + r * n;
      kt_->q8_binary(g);
    }
  }

  const KernelTable* kt_ = nullptr;
  bool mul_ = false;
  int a_ = -1, b_ = -1, y_ = -1;
  int64_t total_ = 0;
  Nest nest_;  // a's strides in sa (after the swap)
  kernels::Q8BinaryArgs args_;
};

}  // namespace

std::unique_ptr<FastStep> make_qbinary_step(const ir::Graph& g, const ir::Node& node,
                                            const KernelTable& kt) {
  if (node.domain != "lithe" || node.op_type != "QBinaryU8" || node.inputs.size() != 8 ||
      node.outputs.size() != 1)
    return nullptr;
  const std::string op = ops::NodeAttrs(node).attr_string("op", "");
  if (op != "Add" && op != "Mul") return nullptr;
  float scale[3];
  int32_t zp[3];
  if (!u8_operand_params(g, node, scale, zp)) return nullptr;
  int a = node.inputs[0], b = node.inputs[3];
  const int y = node.outputs[0];
  if (!is_static(g, a, DType::kUInt8) || !is_static(g, b, DType::kUInt8) ||
      !is_static(g, y, DType::kUInt8) || !broadcasts_to(dims_of(g, a), dims_of(g, b), dims_of(g, y)))
    return nullptr;
  auto st = std::make_unique<QBinaryStep>();
  st->total_ = shape_numel(dims_of(g, y));
  if (st->total_ <= 0 || !build_nest(dims_of(g, a), dims_of(g, b), dims_of(g, y), &st->nest_))
    return nullptr;
  Nest& n = st->nest_;
  const int last = n.rank - 1;
  bool swap = n.sa[last] == 0 && n.sb[last] != 0;
  if (swap) {
    std::swap(a, b);
    std::swap(scale[0], scale[1]);
    std::swap(zp[0], zp[1]);
    std::swap(n.sa, n.sb);
  }
  kernels::Q8BinaryArgs& args = st->args_;
  args.p = quant::make_qbinary(op == "Mul", scale[0], zp[0], scale[1], zp[1], scale[2], zp[2]);
  args.n = n.dims[last];
  args.b_scalar = n.sb[last] == 0;
  args.a_row = last > 0 ? n.sa[last - 1] : 0;
  args.b_row = last > 0 ? n.sb[last - 1] : 0;
  st->kt_ = &kt;
  st->mul_ = op == "Mul";
  st->a_ = a;
  st->b_ = b;
  st->y_ = y;
  return st;
}

std::unique_ptr<FastStep> make_lookup_step(const ir::Graph& g, const ir::Node& node,
                                           const KernelTable& kt) {
  if (node.domain != "lithe" || node.op_type != "LookupU8" || node.inputs.size() < 2 ||
      node.inputs.size() > 3 || node.outputs.size() != 1)
    return nullptr;
  const Tensor* table = constant_of(g, node.inputs[1]);
  const Tensor* index = node.inputs.size() > 2 ? constant_of(g, node.inputs[2]) : nullptr;
  const int x = node.inputs[0], y = node.outputs[0];
  if (!table || table->dtype() != DType::kUInt8 || !is_static(g, x, DType::kUInt8) ||
      !is_static(g, y, DType::kUInt8) || dims_of(g, x) != dims_of(g, y))
    return nullptr;
  auto st = std::make_unique<LookupStep>();
  st->kt_ = &kt;
  st->x_ = x;
  st->y_ = y;
  st->n_ = shape_numel(dims_of(g, x));
  if (node.inputs.size() == 2) {
    if (table->numel() != 256) return nullptr;
    st->tables_.assign(table->data<uint8_t>(), table->data<uint8_t>() + 256);
    return st;
  }
  // Per channel: the reference kernel reports a bad shape or index.
  const Shape& xs = dims_of(g, x);
  if (!index || index->dtype() != DType::kUInt8 || table->rank() != 2 || table->shape()[1] != 256 ||
      xs.empty() || index->shape() != Shape{xs.back()})
    return nullptr;
  const int64_t t = table->shape()[0], c = xs.back();
  for (int64_t i = 0; i < c; ++i)
    if (index->data<uint8_t>()[i] >= t) return nullptr;
  st->set_tables(table->data<uint8_t>(), t, index->data<uint8_t>(), c);
  return st;
}

std::unique_ptr<FastStep> make_quant_step(const ir::Graph& g, const ir::Node& node,
                                          const KernelTable& kt) {
  const bool dequant = node.op_type == "DequantizeLinear";
  if (!node.domain.empty() || (!dequant && node.op_type != "QuantizeLinear")) return nullptr;
  if (node.inputs.size() != 3 || node.outputs.size() != 1 || node.attrs.count("axis") ||
      node.attrs.count("block_size") || node.attrs.count("output_dtype") ||
      node.attrs.count("saturate"))
    return nullptr;
  const Tensor* s = constant_of(g, node.inputs[1]);
  const Tensor* z = constant_of(g, node.inputs[2]);
  const int x = node.inputs[0], y = node.outputs[0];
  if (!s || !z || s->numel() != 1 || z->numel() != 1 || s->dtype() != DType::kFloat32 ||
      z->dtype() != DType::kUInt8 || x < 0 || y < 0)
    return nullptr;
  const ir::TensorType& xt = g.values[static_cast<size_t>(x)].type;
  const ir::TensorType& yt = g.values[static_cast<size_t>(y)].type;
  const DType want_x = dequant ? DType::kUInt8 : DType::kFloat32;
  const DType want_y = dequant ? DType::kFloat32 : DType::kUInt8;
  if (xt.dtype != want_x || yt.dtype != want_y || !xt.fully_known() || xt.dims != yt.dims)
    return nullptr;
  const float scale = s->data<float>()[0];
  if (!(scale > 0) || !std::isfinite(scale)) return nullptr;  // the reference kernel reports it
  auto st = std::make_unique<QuantStep>();
  st->kt_ = &kt;
  st->dequant_ = dequant;
  st->x_ = x;
  st->y_ = y;
  st->n_ = shape_numel(xt.dims);
  st->scale_ = scale;
  st->zp_ = z->data<uint8_t>()[0];
  for (int q = 0; q < 256; ++q)
    st->lut_[q] = (static_cast<float>(q) - static_cast<float>(st->zp_)) * scale;
  return st;
}

}  // namespace lithe::runtime
