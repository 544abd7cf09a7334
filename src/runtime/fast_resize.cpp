// Fast steps for Resize and ConvTranspose (see fast_steps.hpp).
//
// Resize (and Upsample): 4-D float tensors whose resized axes are the two spatial ones, in
// NCHW (axes 2, 3) or NHWC (axes 1, 2) order, modes nearest and linear (and nearest NHWC on
// uint8, a copy of pixels). Every output row and
// column gets its source indices and weights once at preparation, with the reference's
// coordinate formulas (ops/resize.cpp coord_taps, float32 coordinate mapping); the run loop
// is table lookups, contiguous over the innermost axis.
//
// ConvTranspose (ONNX and the fused lithe form, 2-D NCHW, any group): GEMM + col2im.
// cols[m = input pixel][n = (co, ky, kx)] = sum_ci X[ci][m] * W[ci][n] with the weights
// packed once as B, then a scatter-add into Y. Threads own disjoint output rows of each
// (image, group) and each recomputes the GEMM rows of the input rows its outputs need, so
// no two threads write one element and the order of the sums per element (input row, then
// kernel column) is fixed: results do not depend on the thread count. kernel == stride
// without pads or dilation (no overlap) writes every output once with the epilogue fused.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ops/conv_pool_internal.hpp"
#include "ops/fused_internal.hpp"
#include "ops/op.hpp"
#include "ops/resize_internal.hpp"
#include "runtime/fast_step_util.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

using kernels::KernelTable;
using kernels::kPanel;
using kernels::panels_of;
using namespace step_util;

// ---- Resize ---------------------------------------------------------------------------

struct AxisTaps {
  std::vector<int64_t> i0, i1;  // source indices (i1 == i0 for nearest)
  std::vector<float> w0, w1;    // weights (linear)
};

// One axis of the reference's mapping as at most two taps per output; false when an output
// needs more (antialias, cubic) or takes the extrapolation value.
bool axis_taps(const std::vector<std::vector<std::pair<int64_t, double>>>& m, AxisTaps* t) {
  const size_t n = m.size();
  t->i0.assign(n, 0);
  t->i1.assign(n, 0);
  t->w0.assign(n, 1.0f);
  t->w1.assign(n, 0.0f);
  for (size_t o = 0; o < n; ++o) {
    if (m[o].empty() || m[o].size() > 2) return false;
    t->i0[o] = t->i1[o] = m[o][0].first;
    t->w0[o] = static_cast<float>(m[o][0].second);
    if (m[o].size() == 2) {
      t->i1[o] = m[o][1].first;
      t->w1[o] = static_cast<float>(m[o][1].second);
    }
  }
  return true;
}

class ResizeStep final : public FastStep {
 public:
  const char* kind() const override { return linear_ ? "resize-linear" : "resize-nearest"; }

  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    if (nhwc_ && !linear_)
      return run_nhwc_nearest(static_cast<const unsigned char*>(vals[static_cast<size_t>(x_)]),
                              static_cast<unsigned char*>(vals[static_cast<size_t>(y_)]), t, nt);
    const float* x = static_cast<const float*>(vals[static_cast<size_t>(x_)]);
    float* y = static_cast<float*>(vals[static_cast<size_t>(y_)]);
    if (nhwc_)
      run_nhwc(x, y, t, nt);
    else
      run_nchw(x, y, t, nt);
  }

  // Nearest on channels-last pixels of pixel_ bytes (any element type: float32, or the
  // uint8 values of an INT8 graph, which keep their scale).
  void run_nhwc_nearest(const unsigned char* x, unsigned char* y, int t, int nt) const {
    int64_t b, e;
    static_range(planes_ * oh_, t, nt, &b, &e);
    const int64_t px = pixel_;
    for (int64_t r = b; r < e; ++r) {
      const int64_t img = r / oh_, oy = r % oh_;
      const unsigned char* r0 = x + (img * ih_ + ty_.i0[static_cast<size_t>(oy)]) * iw_ * px;
      unsigned char* dst = y + r * ow_ * px;
      for (int64_t ox = 0; ox < ow_; ++ox)
        std::memcpy(dst + ox * px, r0 + tx_.i0[static_cast<size_t>(ox)] * px, static_cast<size_t>(px));
    }
  }

  // Planes of H x W; thread share over (plane, output row).
  void run_nchw(const float* x, float* y, int t, int nt) const {
    int64_t b, e;
    static_range(planes_ * oh_, t, nt, &b, &e);
    const int64_t* ix0 = tx_.i0.data();
    const int64_t* ix1 = tx_.i1.data();
    const float* wx0 = tx_.w0.data();
    const float* wx1 = tx_.w1.data();
    for (int64_t r = b; r < e; ++r) {
      const int64_t plane = r / oh_, oy = r % oh_;
      float* dst = y + r * ow_;
      const size_t yo = static_cast<size_t>(oy);
      const int64_t iy0 = ty_.i0[yo], iy1 = ty_.i1[yo];
      // A row with the same sources as the previous row of this plane is a copy.
      if (r > b && oy > 0 && ty_.i0[yo - 1] == iy0 && ty_.i1[yo - 1] == iy1 &&
          ty_.w0[yo - 1] == ty_.w0[yo] && ty_.w1[yo - 1] == ty_.w1[yo]) {
        std::memcpy(dst, dst - ow_, static_cast<size_t>(ow_) * sizeof(float));
        continue;
      }
      const float* src = x + plane * ih_ * iw_;
      const float* r0 = src + iy0 * iw_;
      if (!linear_) {
        if (identity_x_) {
          std::memcpy(dst, r0, static_cast<size_t>(ow_) * sizeof(float));
        } else {
          for (int64_t ox = 0; ox < ow_; ++ox) dst[ox] = r0[ix0[ox]];
        }
        continue;
      }
      const float wy0 = ty_.w0[yo], wy1 = ty_.w1[yo];
      const float* r1 = src + iy1 * iw_;
      for (int64_t ox = 0; ox < ow_; ++ox) {
        const float top = wx0[ox] * r0[ix0[ox]] + wx1[ox] * r0[ix1[ox]];
        const float bot = wx0[ox] * r1[ix0[ox]] + wx1[ox] * r1[ix1[ox]];
        dst[ox] = wy0 * top + wy1 * bot;
      }
    }
  }

  // Linear on images of H x W pixels of C channels; thread share over (image, output row).
  void run_nhwc(const float* x, float* y, int t, int nt) const {
    int64_t b, e;
    static_range(planes_ * oh_, t, nt, &b, &e);
    const int64_t c = c_;
    for (int64_t r = b; r < e; ++r) {
      const int64_t img = r / oh_, oy = r % oh_;
      const size_t yo = static_cast<size_t>(oy);
      const float* src = x + img * ih_ * iw_ * c;
      float* dst = y + r * ow_ * c;
      const float* r0 = src + ty_.i0[yo] * iw_ * c;
      const float* r1 = src + ty_.i1[yo] * iw_ * c;
      const float wy0 = ty_.w0[yo], wy1 = ty_.w1[yo];
      for (int64_t ox = 0; ox < ow_; ++ox) {
        const size_t xo = static_cast<size_t>(ox);
        const float wx0 = tx_.w0[xo], wx1 = tx_.w1[xo];
        const float* a = r0 + tx_.i0[xo] * c;
        const float* bb = r0 + tx_.i1[xo] * c;
        const float* cc = r1 + tx_.i0[xo] * c;
        const float* d = r1 + tx_.i1[xo] * c;
        float* o = dst + ox * c;
        for (int64_t ch = 0; ch < c; ++ch)
          o[ch] = wy0 * (wx0 * a[ch] + wx1 * bb[ch]) + wy1 * (wx0 * cc[ch] + wx1 * d[ch]);
      }
    }
  }

  int x_ = -1, y_ = -1;
  bool linear_ = false, nhwc_ = false, identity_x_ = false;
  int64_t planes_ = 0, c_ = 1, pixel_ = 0, ih_ = 0, iw_ = 0, oh_ = 0, ow_ = 0;
  AxisTaps ty_, tx_;
};

std::unique_ptr<FastStep> make_resize(const ir::Graph& g, const ir::Node& node) {
  const int xv = input_at(node, 0);
  if (node.outputs.size() != 1) return nullptr;
  const int yv = node.outputs[0];
  // float32, or uint8 (nearest channels-last only, checked below).
  const bool u8 = is_static(g, xv, DType::kUInt8) && is_static(g, yv, DType::kUInt8);
  if (!u8 && (!is_f32_static(g, xv) || !is_f32_static(g, yv))) return nullptr;
  const Shape& xs = dims_of(g, xv);
  const Shape& ys = dims_of(g, yv);
  if (xs.size() != 4 || ys.size() != 4) return nullptr;
  for (size_t d = 0; d < 4; ++d)
    if (xs[d] <= 0 || ys[d] <= 0) return nullptr;
  // The reference's own mapping (ops/resize.cpp), with its constant scales / sizes / roi.
  std::vector<const Tensor*> inputs(node.inputs.size(), nullptr);
  for (size_t i = 1; i < node.inputs.size(); ++i) {
    if (node.inputs[i] < 0) continue;
    inputs[i] = constant_of(g, node.inputs[i]);
    if (!inputs[i]) return nullptr;  // scales or sizes known only at run time
  }
  ops::ResizeMapping m;
  try {
    m = ops::resize_mapping(node, xs, inputs);
  } catch (const Error&) {
    return nullptr;  // the reference kernel reports it, with context, at run time
  }
  if ((!m.nearest && !m.linear) || m.out != ys) return nullptr;
  auto pass = [&](size_t d) { return ops::resize_axis_passes(m, xs, d); };

  auto s = std::make_unique<ResizeStep>();
  size_t ay, ax;
  if (pass(0) && pass(1)) {
    ay = 2;
    ax = 3;
    s->planes_ = xs[0] * xs[1];
  } else if (pass(0) && pass(3)) {
    ay = 1;
    ax = 2;
    s->nhwc_ = true;
    s->planes_ = xs[0];
    s->c_ = xs[3];
    s->pixel_ = xs[3] * static_cast<int64_t>(u8 ? 1 : sizeof(float));
  } else {
    return nullptr;
  }
  s->x_ = xv;
  s->y_ = yv;
  s->linear_ = m.linear;
  if (u8 && (s->linear_ || !s->nhwc_)) return nullptr;
  s->ih_ = xs[ay];
  s->iw_ = xs[ax];
  s->oh_ = ys[ay];
  s->ow_ = ys[ax];
  if (!axis_taps(m.taps[ay], &s->ty_) || !axis_taps(m.taps[ax], &s->tx_)) return nullptr;
  s->identity_x_ = pass(ax);
  return s;
}

// ---- ConvTranspose ---------------------------------------------------------------------

class DeconvStep final : public FastStep {
 public:
  explicit DeconvStep(const KernelTable& kt) : kt_(kt) {}

  int64_t scratch_floats() const override { return bpack_floats_ + cols_floats_ + 32; }
  int64_t macs() const override { return macs_; }
  const char* kind() const override { return direct_ ? "deconv-gemm-direct" : "deconv-gemm"; }
  int64_t owned_bytes() const override { return packed_.bytes + bias_.bytes; }

  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const float* x = static_cast<const float*>(vals[static_cast<size_t>(x_)]);
    float* y = static_cast<float*>(vals[static_cast<size_t>(y_)]);
    const float* z = z_ >= 0 ? static_cast<const float*>(vals[static_cast<size_t>(z_)]) : nullptr;
    int64_t b, e;
    static_range(nb_ * group_ * oh_, t, nt, &b, &e);
    for (int64_t r = b; r < e;) {
      const int64_t seg = r / oh_, oy0 = r % oh_, oy1 = std::min(oh_, oy0 + (e - r));
      segment(x, y, z, seg / group_, seg % group_, oy0, oy1, scratch);
      r += oy1 - oy0;
    }
  }

  // Bias, residual and activation on n contiguous outputs of channel `co`.
  void finish(float* y, int64_t n, const float* z, float bias) const {
    if (has_bias_)
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] + bias;
    if (!z && act_.act == ops::fused::Activation::kRelu && !act_.affine) {
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
      return;
    }
    ops::fused::apply_epilogue<float>(y, n, z, act_);
  }

  // Output rows [oy0, oy1) of every channel of group gi of image img.
  void segment(const float* x, float* y, const float* z, int64_t img, int64_t gi, int64_t oy0,
               int64_t oy1, float* scratch) const {
    const int64_t hw = ih_ * iw_, ohw = oh_ * ow_, kk = kh_ * kw_;
    const float* xg = x + (img * c_ + gi * cg_) * hw;
    const int64_t ych = (img * m_ + gi * mg_) * ohw;
    float* yg = y + ych;
    const float* zg = z ? z + ych : nullptr;
    const float* bias = has_bias_ ? bias_.data() + gi * mg_ : nullptr;
    const float* ap = packed_.data() + gi * packed_a_floats_;
    const int64_t rows = oy1 - oy0;
    if (!direct_)
      for (int64_t co = 0; co < mg_; ++co)
        std::memset(yg + co * ohw + oy0 * ow_, 0, static_cast<size_t>(rows * ow_) * sizeof(float));
    // Input rows whose taps reach [oy0, oy1): iy * sh - ph + ky * dh in range for some ky.
    const int64_t lo =
        std::max<int64_t>(0, ops::conv_pool::ceil_div(oy0 + ph_ - (kh_ - 1) * dh_, sh_));
    const int64_t hi = std::min<int64_t>(ih_ - 1, ops::conv_pool::floor_div(oy1 - 1 + ph_, sh_));
    // Packed X on a 64-byte boundary (the scratch area is only float-aligned).
    float* bpack =
        scratch + ((64 - reinterpret_cast<uintptr_t>(scratch) % 64) % 64) / sizeof(float);
    float* cols = bpack + (bpack_floats_ + 15) / 16 * 16;
    for (int64_t c0 = lo; c0 <= hi; c0 += chunk_) {
      const int64_t c1 = std::min(hi + 1, c0 + chunk_), m = (c1 - c0) * iw_;
      // cols[(co, ky, kx)][pixel] = W^T (packed A) x X (the chunk's pixels as packed B).
      pack_x(xg + c0 * iw_, m, hw, bpack);
      kernels::GemmArgs a;
      a.m = ncols_;
      a.n = m;
      a.k = cg_;
      a.a = ap;
      a.bp = bpack;
      a.c = cols;
      a.ldc = m;
      kt_.f32_gemm(a, 0, ncols_, 0, panels_of(m));
      for (int64_t co = 0; co < mg_; ++co) {
        float* ych_p = yg + co * ohw;
        const float bco = bias ? bias[co] : 0.0f;
        for (int64_t iy = c0; iy < c1; ++iy) {
          for (int64_t ky = 0; ky < kh_; ++ky) {
            const int64_t oy = iy * sh_ - ph_ + ky * dh_;
            if (oy < oy0 || oy >= oy1) continue;
            float* yrow = ych_p + oy * ow_;
            // Row (co, ky, kx) of cols, at input row iy.
            const float* crow = cols + (co * kk + ky * kw_) * m + (iy - c0) * iw_;
            if (direct_) {
              // kernel == stride, no pads: output column ix * sw + kx, each written once.
              const float* zrow = zg ? zg + co * ohw + oy * ow_ : nullptr;
              if (kw_ == 2) {
                const float* c0p = crow;
                const float* c1p = crow + m;
                if (!zrow && !act_.affine &&
                    (act_.act == ops::fused::Activation::kRelu ||
                     act_.act == ops::fused::Activation::kNone)) {
                  // Bias and Relu in the same pass (what finish() computes).
                  const bool relu = act_.act == ops::fused::Activation::kRelu;
                  for (int64_t ix = 0; ix < iw_; ++ix) {
                    float v0 = c0p[ix] + bco, v1 = c1p[ix] + bco;
                    if (relu) {
                      v0 = v0 > 0.0f ? v0 : 0.0f;
                      v1 = v1 > 0.0f ? v1 : 0.0f;
                    }
                    yrow[2 * ix] = v0;
                    yrow[2 * ix + 1] = v1;
                  }
                  continue;
                }
                for (int64_t ix = 0; ix < iw_; ++ix) {
                  yrow[2 * ix] = c0p[ix];
                  yrow[2 * ix + 1] = c1p[ix];
                }
              } else {
                for (int64_t kx = 0; kx < kw_; ++kx) {
                  const float* cp = crow + kx * m;
                  for (int64_t ix = 0; ix < iw_; ++ix) yrow[ix * sw_ + kx] = cp[ix];
                }
              }
              finish(yrow, ow_, zrow, bco);
              continue;
            }
            for (int64_t kx = 0; kx < kw_; ++kx) {
              const int64_t off = kx * dw_ - pw_;
              const int64_t ix0 = std::max<int64_t>(0, ops::conv_pool::ceil_div(-off, sw_));
              const int64_t ix1 =
                  std::min<int64_t>(iw_ - 1, ops::conv_pool::floor_div(ow_ - 1 - off, sw_));
              const float* cp = crow + kx * m;
              float* yo = yrow + off;
              for (int64_t ix = ix0; ix <= ix1; ++ix) yo[ix * sw_] += cp[ix];
            }
          }
        }
      }
    }
    if (direct_) return;
    for (int64_t co = 0; co < mg_; ++co)
      finish(yg + co * ohw + oy0 * ow_, rows * ow_, zg ? zg + co * ohw + oy0 * ow_ : nullptr,
             bias ? bias[co] : 0.0f);
  }

  // Packs m consecutive pixels of the group's channels as B (k = channel, n = pixel):
  // panels of 16 pixels, zero past m.
  void pack_x(const float* x, int64_t m, int64_t hw, float* out) const {
    const int64_t k = cg_;
    for (int64_t p0 = 0; p0 < m; p0 += kPanel, out += kPanel * k) {
      const int64_t np = std::min<int64_t>(kPanel, m - p0);
      for (int64_t kk = 0; kk < k; ++kk) {
        const float* src = x + kk * hw + p0;
        float* dst = out + kk * kPanel;
        if (np == kPanel) {
          std::memcpy(dst, src, sizeof(float) * kPanel);
        } else {
          for (int64_t j = 0; j < kPanel; ++j) dst[j] = j < np ? src[j] : 0.0f;
        }
      }
    }
  }

  const KernelTable& kt_;
  int x_ = -1, y_ = -1, z_ = -1;
  bool direct_ = false, has_bias_ = false;
  int64_t nb_ = 0, c_ = 0, ih_ = 0, iw_ = 0, m_ = 0, oh_ = 0, ow_ = 0, group_ = 1, cg_ = 0, mg_ = 0;
  int64_t kh_ = 1, kw_ = 1, sh_ = 1, sw_ = 1, ph_ = 0, pw_ = 0, dh_ = 1, dw_ = 1;
  int64_t ncols_ = 0, chunk_ = 1, packed_a_floats_ = 0, bpack_floats_ = 0, cols_floats_ = 0,
          macs_ = 0;
  ops::fused::Epilogue act_;
  AlignedFloats packed_, bias_;
};

std::unique_ptr<FastStep> make_deconv(const ir::Graph& g, const ir::Node& node,
                                      const KernelTable& kt) {
  const bool fused = node.domain == "lithe";
  if (node.inputs.size() > (fused ? 4u : 3u)) return nullptr;
  ConvOperands io;
  if (!conv_operands(g, node, fused ? 3 : -1, &io)) return nullptr;
  const int xv = io.x, zv = io.z, yv = io.y;
  const Tensor* w = io.weight;
  const Tensor* bias = io.bias;
  const Shape& xs = dims_of(g, xv);
  const Shape& ys = dims_of(g, yv);
  const Shape& ws = w->shape();
  for (int64_t d : xs)
    if (d <= 0) return nullptr;
  ops::NodeAttrs a(node);
  ops::fused::Epilogue act;
  if (!ops::fused::parse_epilogue(a.attr_string("activation", ""),
                                  a.attr_floats("activation_params", {}),
                                  a.attr_floats("activation_affine", {}), &act)
           .empty())
    return nullptr;
  const int64_t group = a.attr_int("group", 1);
  const int64_t c = xs[1];
  if (group < 1 || ws[0] != c || c % group) return nullptr;
  const int64_t mg = ws[1], m = mg * group, cg = c / group, kh = ws[2], kw = ws[3];
  if (ys[0] != xs[0] || ys[1] != m || kh < 1 || kw < 1) return nullptr;
  if (bias && bias->numel() != m) return nullptr;
  // The reference's geometry (ops/conv.cpp conv_transpose_setup).
  namespace cp = ops::conv_pool;
  const std::vector<int64_t> in = {xs[2], xs[3]}, kernel = {kh, kw};
  const std::vector<int64_t> strides = cp::read_spatial_ints(a, "strides", 2, 1, 1);
  const std::vector<int64_t> dil = cp::read_spatial_ints(a, "dilations", 2, 1, 1);
  const std::vector<int64_t> out_pad = cp::read_spatial_ints(a, "output_padding", 2, 0, 0);
  const cp::AutoPad ap = cp::read_auto_pad(a);
  int64_t pb[2] = {0, 0}, pe[2] = {0, 0}, out[2] = {0, 0};
  if (ap == cp::AutoPad::kNotSet && a.has_attr("pads")) {
    std::vector<int64_t> p = a.attr_ints("pads");
    if (p.size() != 4) return nullptr;
    for (size_t d = 0; d < 2; ++d) {
      pb[d] = p[d];
      pe[d] = p[d + 2];
    }
  }
  std::vector<int64_t> req;
  if (a.has_attr("output_shape")) {
    std::vector<int64_t> os = a.attr_ints("output_shape");
    if (os.size() != 2 && os.size() != 4) return nullptr;
    req.assign(os.end() - 2, os.end());
  }
  for (size_t d = 0; d < 2; ++d) {
    const int64_t s = strides[d];
    const int64_t full = s * (in[d] - 1) + out_pad[d] + (kernel[d] - 1) * dil[d] + 1;
    const bool same = ap == cp::AutoPad::kSameUpper || ap == cp::AutoPad::kSameLower;
    if (!req.empty() || same) {
      const int64_t o = !req.empty() ? req[d] : in[d] * s;
      const int64_t total = full - o, half = cp::floor_div(total, 2);
      if (ap == cp::AutoPad::kSameUpper) {
        pb[d] = half;
        pe[d] = total - half;
      } else {
        pb[d] = total - half;
        pe[d] = half;
      }
      out[d] = o;
    } else if (ap == cp::AutoPad::kValid) {
      pb[d] = pe[d] = 0;
      out[d] = full;
    } else {
      out[d] = full - pb[d] - pe[d];
    }
  }
  if (out[0] != ys[2] || out[1] != ys[3]) return nullptr;
  auto s = std::make_unique<DeconvStep>(kt);
  s->x_ = xv;
  s->y_ = yv;
  s->z_ = zv;
  s->nb_ = xs[0];
  s->c_ = c;
  s->ih_ = xs[2];
  s->iw_ = xs[3];
  s->m_ = m;
  s->oh_ = ys[2];
  s->ow_ = ys[3];
  s->group_ = group;
  s->cg_ = cg;
  s->mg_ = mg;
  s->kh_ = kh;
  s->kw_ = kw;
  s->sh_ = strides[0];
  s->sw_ = strides[1];
  s->ph_ = pb[0];
  s->pw_ = pb[1];
  s->dh_ = dil[0];
  s->dw_ = dil[1];
  s->act_ = act;
  s->direct_ = kh == strides[0] && kw == strides[1] && dil[0] == 1 && dil[1] == 1 && pb[0] == 0 &&
               pb[1] == 0 && out[0] == in[0] * strides[0] && out[1] == in[1] * strides[1];
  const int64_t ncols = mg * kh * kw;
  s->ncols_ = ncols;
  s->macs_ = xs[0] * xs[2] * xs[3] * c * ncols;
  // A per group: the transposed weights, row (co, ky, kx), k = input channel (W is
  // [C, M/group, kh, kw], so row ci of a group holds its M/group * kh * kw columns).
  const int mr = kt.gemm_mr;
  s->packed_a_floats_ = kernels::packed_a_floats(ncols, cg, mr);
  s->packed_ = AlignedFloats(group * s->packed_a_floats_);
  const float* wd = w->data<float>();
  std::vector<float> wt(static_cast<size_t>(ncols * cg));
  for (int64_t gi = 0; gi < group; ++gi) {
    for (int64_t ci = 0; ci < cg; ++ci)
      for (int64_t n = 0; n < ncols; ++n)
        wt[static_cast<size_t>(n * cg + ci)] = wd[(gi * cg + ci) * ncols + n];
    kernels::pack_a_f32(ncols, cg, wt.data(), cg, mr, s->packed_.data() + gi * s->packed_a_floats_);
  }
  if (bias) {
    s->has_bias_ = true;
    s->bias_ = AlignedFloats(m);
    std::memcpy(s->bias_.data(), bias->data<float>(), static_cast<size_t>(m) * sizeof(float));
  }
  // Input rows per GEMM: packed X and cols within about 192 KiB.
  const int64_t per_row = xs[3] * (ncols + cg);
  s->chunk_ = std::clamp<int64_t>(49152 / std::max<int64_t>(per_row, 1), 1, xs[2]);
  const int64_t mrows = s->chunk_ * xs[3];
  s->bpack_floats_ = kernels::packed_b_floats(cg, mrows);
  s->cols_floats_ = (ncols + mr) * mrows;
  return s;
}

}  // namespace

std::unique_ptr<FastStep> make_resize_step(const ir::Graph& g, size_t n, const KernelTable& kt) {
  const ir::Node& node = g.nodes[n];
  if (node.op_type == "ConvTranspose" && (node.domain.empty() || node.domain == "lithe"))
    return make_deconv(g, node, kt);
  if (node.domain.empty() && (node.op_type == "Resize" || node.op_type == "Upsample"))
    return make_resize(g, node);
  return nullptr;
}

}  // namespace lithe::runtime
