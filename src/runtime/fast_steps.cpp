#include "runtime/fast_steps.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "ops/conv_pool_internal.hpp"
#include "ops/conv_weight_layout.hpp"
#include "ops/fused_internal.hpp"
#include "ops/op.hpp"
#include "runtime/fast_step_util.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

using kernels::KernelTable;
using kernels::kPanel;
using kernels::panels_of;
using namespace step_util;

// For a pointwise conv, packing A pays for itself only when a packed tile serves many
// 16-column panels (more than 16: N > 256) and K is not tiny; otherwise the GEMM reads A in
// place (KxK convs: the window path, up to the level's window_panels). Measured on the Zen 5
// machine, per-layer medians against packing from N > 64: MobileNetV2 -3.3% in all (its
// projections 0.15 -> 0.11 ms), ResNet-50 -8.5% (1x1 expansions on 56x56 0.93 -> 0.60 ms),
// GoogLeNet -3.8%; ResNet-50's layers with N of 512 or more on 7x7 / 14x14 got slower in
// place (1x1 2048 -> 512 on 7x7: 0.75 -> 0.92 ms). `max_panels`: 16, or a KxK conv's
// window_panels.
bool use_direct(int64_t k, int64_t n, int max_panels = 16) {
  return panels_of(n) <= max_panels || k <= 32;
}

// Equal row tiles of at most `cap` rows (a multiple of mr) covering `rows`: the tiles a GEMM
// task takes, balanced so that a short last tile does not leave one thread most of the work.
// (Which tile computes a row never changes its value.)
int64_t balanced_tile(int64_t rows, int64_t cap, int mr) {
  const int64_t tiles = (rows + cap - 1) / cap;
  const int64_t even = (rows + tiles - 1) / tiles;
  return std::min(cap, (even + mr - 1) / mr * mr);
}

// Rows per GEMM task: the A tile (rows x K floats) stays within about 128 KiB, or 1.25 MiB
// when B (K x N weights) is over 1 MiB (more than L2): every task streams all of its panels
// of B, so with few rows (ResNet-50's 7x7 layers: 49 rows, 4-9 MiB of weights) tiles of 12
// rows read B from memory five times over where one tile of all the rows reads it once, and
// the threads then split the panels (layer4's 3x3 convs at 2 threads 1.04 -> 0.86 ms).
int64_t tile_rows(int64_t k, int64_t n, int mr) {
  const int64_t kk = std::max<int64_t>(k, 1);
  const bool big_b = kk * n * static_cast<int64_t>(sizeof(float)) > (int64_t{1} << 20);
  const int64_t fit = ((big_b ? 327680 : 32768) / kk) / mr * mr;
  return std::clamp<int64_t>(fit, mr, big_b ? 16 * mr : 8 * mr);
}

// ---- ConvNhwc --------------------------------------------------------------------------

class ConvStep final : public FastStep, public ConvShape {
 public:
  enum class Kind { kGemm1x1, kIm2col, kDepthwise, kWinograd };

  ConvStep(const KernelTable& kt, Kind kind) : kt_(kt), kind_(kind) {}

  int64_t scratch_floats() const override {
    if (kind_ == Kind::kWinograd)
      return 36 * tm_ * (c_ + m_) + (direct_ ? 0 : kernels::packed_a_floats(tm_, c_, kt_.gemm_mr));
    if (kind_ == Kind::kDepthwise || (direct_ && kind_ == Kind::kGemm1x1)) return 0;
    if (window()) return band_floats(band_rows_);
    return kernels::packed_a_floats(tm_, kdim_, kt_.gemm_mr);
  }
  int64_t macs() const override { return macs_; }
  std::vector<int> packed_constants() const override {
    if (weights_mapped_) return {b_};  // W is read from the engine at run time
    return {w_, b_};
  }
  int64_t owned_bytes() const override { return packed_.bytes + bias_.bytes; }
  const char* kind() const override {
    switch (kind_) {
      case Kind::kGemm1x1:
        return "conv-gemm";
      case Kind::kIm2col:
        return "conv-im2col";
      case Kind::kWinograd:
        return "conv-winograd";
      case Kind::kDepthwise:
        break;
    }
    return "dwconv";
  }

  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const float* x = static_cast<const float*>(vals[static_cast<size_t>(x_)]);
    float* y = static_cast<float*>(vals[static_cast<size_t>(y_)]);
    const float* z = z_ >= 0 ? static_cast<const float*>(vals[static_cast<size_t>(z_)]) : nullptr;
    // Y may be rows inside a Concat output (pixel stride ys_ >= m_); Z is always dense.
    const int64_t in_img = ih_ * iw_ * c_, out_img = oh_ * ow_ * m_, y_img = oh_ * ow_ * ys_;
    if (kind_ == Kind::kDepthwise) {
      int64_t b, e;
      static_range(nb_ * oh_, t, nt, &b, &e);
      for (int64_t r = b; r < e;) {
        const int64_t img = r / oh_, oy0 = r % oh_, oy1 = std::min(oh_, oy0 + (e - r));
        kernels::DwConvArgs d = dwa_;
        d.x = x + img * in_img;
        d.y = y + img * y_img;
        if (z) d.ep.residual = z + img * out_img;
        kt_.f32_dwconv(d, oy0, oy1);
        r += oy1 - oy0;
      }
      return;
    }
    if (kind_ == Kind::kWinograd) return run_winograd(x, y, z, t, nt, scratch);
    if (window()) return run_window(x, y, z, t, nt, scratch);
    const int64_t mrows = oh_ * ow_, tm = balanced_tile(mrows, tm_, kt_.gemm_mr);
    const int64_t mt = (mrows + tm - 1) / tm;
    const int64_t pg = panels_of(mg_), pc = (pg + pchunk_ - 1) / pchunk_;
    const int64_t tasks = nb_ * group_ * mt * pc;
    // Tasks cost rows x panels: the last row tile and panel chunk are often short.
    auto cost = [&](int64_t task) {
      const int64_t pi = task % pc, mi = task / pc % mt;
      return (std::min(mrows, (mi + 1) * tm) - mi * tm) *
             (std::min(pg, (pi + 1) * pchunk_) - pi * pchunk_);
    };
    int64_t b, e;
    weighted_range(tasks, cost, t, nt, &b, &e);
    int64_t built = -1;  // the (image, group, m tile) whose packed A rows are in scratch
    for (int64_t task = b; task < e; ++task) {
      const int64_t pi = task % pc, rest = task / pc;
      const int64_t mi = rest % mt, gi = (rest / mt) % group_, img = rest / mt / group_;
      const int64_t m0 = mi * tm, m1 = std::min(mrows, m0 + tm);
      const int64_t p0 = pi * pchunk_, p1 = std::min(pg, p0 + pchunk_);
      // C rows from `row0` of this image and group (Y at its pixel stride, Z dense).
      kernels::GemmArgs a = group_gemm(gi, ys_);
      auto rows_from = [&](int64_t row0) {
        a.c = y + img * y_img + row0 * ys_ + gi * mg_;
        a.ep.residual = z ? z + img * out_img + row0 * m_ + gi * mg_ : nullptr;
      };
      if (direct_ && kind_ == Kind::kGemm1x1) {  // A read in place: this image's pixels
        a.m = mrows;
        a.a = x + img * in_img + gi * cg_;
        a.lda = c_;
        rows_from(0);
        kt_.f32_gemm_direct(a, m0, m1, p0, p1);
        continue;
      }
      if (built != rest) {
        const float* xg = x + img * in_img + gi * cg_;
        if (kind_ == Kind::kGemm1x1)
          kernels::pack_a_f32(m1 - m0, cg_, xg + m0 * c_, c_, kt_.gemm_mr, scratch);
        else
          im2col_packed(xg, m0, m1, scratch);
        built = rest;
      }
      a.m = m1 - m0;
      a.a = scratch;
      a.lda = kdim_;
      rows_from(m0);
      kt_.f32_gemm(a, 0, m1 - m0, p0, p1);
    }
  }

  // The GEMM of group gi (its weights, bias and epilogue; the residual's rows dense), C's rows
  // `ldc` floats apart; the rows, A, C and the residual are the caller's.
  kernels::GemmArgs group_gemm(int64_t gi, int64_t ldc) const {
    const int64_t pg = panels_of(mg_);
    kernels::GemmArgs a;
    a.n = mg_;
    a.k = kdim_;
    a.bp = wptr_ + gi * pg * kPanel * kdim_;
    a.ldc = ldc;
    a.ep.act = act_;
    a.ep.bias = bias_.data() ? bias_.data() + gi * pg * kPanel : nullptr;
    a.ep.ldr = m_;
    return a;
  }

  // A pointwise conv (kGemm1x1, one group) on pixels [m0, m1) of the image at x (dense rows
  // of c_ floats): output pixel m at c + (m - m0) * ldc, its residual (if any) at
  // z + (m - m0) * m_. `pack`: scratch_floats() floats for the packed form. The same
  // products as run(): which rows a call covers never changes a value.
  void pointwise_rows(const float* x, int64_t m0, int64_t m1, float* c, int64_t ldc, const float* z,
                      float* pack) const {
    kernels::GemmArgs a = group_gemm(0, ldc);
    const int64_t pg = panels_of(m_);
    if (direct_) {
      a.m = m1 - m0;
      a.a = x + m0 * c_;
      a.lda = c_;
      a.c = c;
      a.ep.residual = z;
      kt_.f32_gemm_direct(a, 0, m1 - m0, 0, pg);
      return;
    }
    for (int64_t r0 = m0; r0 < m1; r0 += tm_) {
      const int64_t rows = std::min(tm_, m1 - r0);
      kernels::pack_a_f32(rows, c_, x + r0 * c_, c_, kt_.gemm_mr, pack);
      a.m = rows;
      a.a = pack;
      a.lda = kdim_;
      a.c = c + (r0 - m0) * ldc;
      a.ep.residual = z ? z + (r0 - m0) * m_ : nullptr;
      kt_.f32_gemm(a, 0, rows, 0, pg);
    }
  }

  // Winograd F(4x4, 3x3): per task a block of at most tm_ tiles of one image and a range of
  // output-channel panels: input transform (tiles x 36 x C: matrix xi's rows 36 x C apart), 36
  // GEMMs with the transformed weights, output transform. Every task streams its panels of all 36
  // weight matrices, so the threads get more blocks only while the tiles fill them; with fewer
  // blocks than threads (small images: ResNet-50's 14x14 layers are one block of 16 tiles)
  // they split the output channels instead (the input transform is then done per task).
  // The values do not depend on the split: each output is the same sum whatever the task.
  void run_winograd(const float* x, float* y, const float* z, int t, int nt, float* scratch) const {
    const int64_t th = (oh_ + 3) / 4, tw = (ow_ + 3) / 4, tiles = th * tw;
    const int64_t q = std::max(1, kt_.gemm_mr / 3);  // the GEMM's smallest row tile
    int64_t blocks = (tiles + tm_ - 1) / tm_;
    if (nb_ == 1 && blocks > 1) blocks = (blocks + nt - 1) / nt * nt;  // as many per thread
    const int64_t tb = ((tiles + blocks - 1) / blocks + q - 1) / q * q;
    blocks = (tiles + tb - 1) / tb;
    const int64_t pg = panels_of(m_);
    const int64_t pcs = std::clamp<int64_t>((nt + nb_ * blocks - 1) / (nb_ * blocks), 1, pg);
    const int64_t chunk = (pg + pcs - 1) / pcs;
    const int64_t pb = kernels::packed_b_floats(c_, m_);
    float* v = scratch;
    float* mm = v + 36 * tm_ * c_;
    float* pa = mm + 36 * tm_ * m_;
    int64_t b, e;
    static_range(nb_ * blocks * pcs, t, nt, &b, &e);
    for (int64_t task = b; task < e; ++task) {
      const int64_t pc = task % pcs, img = task / pcs / blocks;
      const int64_t t0 = (task / pcs % blocks) * tb, t1 = std::min(tiles, t0 + tb);
      const int64_t rows = t1 - t0, p0 = pc * chunk, p1 = std::min(pg, p0 + chunk);
      if (p0 >= p1) continue;
      const int64_t co0 = p0 * kPanel, width = std::min(m_, p1 * kPanel) - co0;
      kernels::WinogradArgs w;
      w.x = x + img * ih_ * iw_ * c_;
      w.ih = ih_;
      w.iw = iw_;
      w.x_stride = c_;
      w.c = c_;
      w.ph = ph_;
      w.pw = pw_;
      w.y = y + img * oh_ * ow_ * ys_ + co0;
      w.oh = oh_;
      w.ow = ow_;
      w.y_stride = ys_;
      w.cout = width;
      w.tiles_w = tw;
      w.ep.bias = bias_.data() ? bias_.data() + co0 : nullptr;
      w.ep.act = act_;
      if (z) {
        w.ep.residual = z + img * oh_ * ow_ * m_ + co0;
        w.ep.ldr = m_;
      }
      kt_.f32_winograd_input(w, t0, t1, v);
      for (int64_t xi = 0; xi < 36; ++xi) {
        kernels::GemmArgs a;
        a.m = rows;
        a.n = width;
        a.k = c_;
        a.bp = wptr_ + xi * pb + p0 * kPanel * c_;
        a.c = mm + xi * width;  // rows 36 * width apart (WinogradArgs)
        a.ldc = 36 * width;
        if (direct_) {  // the transformed rows read in place
          a.a = v + xi * c_;
          a.lda = 36 * c_;
          kt_.f32_gemm_direct(a, 0, rows, 0, p1 - p0);
          continue;
        }
        kernels::pack_a_f32(rows, c_, v + xi * c_, 36 * c_, kt_.gemm_mr, pa);
        a.a = pa;
        kt_.f32_gemm(a, 0, rows, 0, p1 - p0);
      }
      kt_.f32_winograd_output(w, t0, t1, mm);
    }
  }

  // The in-place window path: a KxK conv whose GEMM reads A in place (direct_) reads each
  // output pixel's window straight from a zero-padded copy of the input rows it needs (a
  // band), through the per-k offsets koff_, instead of copying every window (im2col). The
  // padding zeros enter the sums where im2col's zeros did, so the results are the same.
  bool window() const { return kind_ == Kind::kIm2col && direct_; }

  // Padded input columns the output row reads (from ix = -pw_) and the floats of a band of
  // `rows` output rows.
  int64_t band_width() const { return (ow_ - 1) * sw_ + (kw_ - 1) * dw_ + 1; }
  int64_t band_floats(int64_t rows) const {
    return ((rows - 1) * sh_ + (kh_ - 1) * dh_ + 1) * band_width() * c_;
  }

  // Tasks: bands of band_rows_ output rows of one image; per band, the padded input rows go
  // into scratch, then one GEMM per output row and group over all panels.
  void run_window(const float* x, float* y, const float* z, int t, int nt, float* band) const {
    const int64_t bw = band_width(), bands = (oh_ + band_rows_ - 1) / band_rows_;
    const int64_t pg = panels_of(mg_);
    const size_t fb = sizeof(float);
    int64_t b, e;
    static_range(nb_ * bands, t, nt, &b, &e);
    for (int64_t task = b; task < e; ++task) {
      const int64_t img = task / bands, oy0 = (task % bands) * band_rows_;
      const int64_t oy1 = std::min(oh_, oy0 + band_rows_);
      const int64_t hb = (oy1 - oy0 - 1) * sh_ + (kh_ - 1) * dh_ + 1;
      const float* xi = x + img * ih_ * iw_ * c_;
      // Input columns [u0, u1) of the band come from the image; the rest is padding.
      const int64_t u0 = std::min(bw, pw_), u1 = std::clamp<int64_t>(pw_ + iw_, u0, bw);
      for (int64_t j = 0; j < hb; ++j) {
        const int64_t iy = oy0 * sh_ - ph_ + j;
        float* dst = band + j * bw * c_;
        if (iy < 0 || iy >= ih_) {
          std::memset(dst, 0, static_cast<size_t>(bw * c_) * fb);
          continue;
        }
        std::memset(dst, 0, static_cast<size_t>(u0 * c_) * fb);
        std::memcpy(dst + u0 * c_, xi + (iy * iw_ + u0 - pw_) * c_,
                    static_cast<size_t>((u1 - u0) * c_) * fb);
        std::memset(dst + u1 * c_, 0, static_cast<size_t>((bw - u1) * c_) * fb);
      }
      for (int64_t oy = oy0; oy < oy1; ++oy)
        for (int64_t gi = 0; gi < group_; ++gi) {
          kernels::GemmArgs a = group_gemm(gi, ys_);
          a.m = ow_;
          a.a = band + (oy - oy0) * sh_ * bw * c_ + gi * cg_;
          a.lda = sw_ * c_;
          a.koff = koff_.data();
          a.c = y + img * oh_ * ow_ * ys_ + oy * ow_ * ys_ + gi * mg_;
          a.ep.residual = z ? z + img * oh_ * ow_ * m_ + oy * ow_ * m_ + gi * mg_ : nullptr;
          kt_.f32_gemm_direct(a, 0, ow_, 0, pg);
        }
    }
  }

  // Rows [m0, m1) of the (kh, kw, cg)-ordered patch matrix of one image and group, written
  // straight in the packed-A layout (MR rows interleaved per k; padding rows zero): per slab
  // of MR rows and per window tap, the rows' pixels (null where the tap is in the padding).
  void im2col_packed(const float* x, int64_t m0, int64_t m1, float* out) const {
    const int mr = kt_.gemm_mr;
    const float* src[64];
    for (int64_t r0 = m0; r0 < m1; r0 += mr, out += mr * kdim_) {
      for (int64_t ky = 0; ky < kh_; ++ky)
        for (int64_t kx = 0; kx < kw_; ++kx) {
          for (int r = 0; r < mr; ++r) {
            const int64_t m = r0 + r, oy = m / ow_, ox = m % ow_;
            const int64_t iy = oy * sh_ - ph_ + ky * dh_, ix = ox * sw_ - pw_ + kx * dw_;
            const bool in = m < m1 && iy >= 0 && iy < ih_ && ix >= 0 && ix < iw_;
            src[r] = in ? x + (iy * iw_ + ix) * c_ : nullptr;
          }
          kernels::pack_rows_f32(src, mr, cg_, mr, out + (ky * kw_ + kx) * cg_ * mr);
        }
    }
  }

  const KernelTable& kt_;
  Kind kind_;
  int x_ = -1, y_ = -1, z_ = -1, w_ = -1, b_ = -1;
  int64_t ys_ = 0;  // output pixel stride in floats (m_, or a Concat output's channels)
  int64_t kdim_ = 0, tm_ = 1, pchunk_ = 1;
  bool direct_ = false;  // A read in place (f32_gemm_direct): pointwise input or conv windows
  std::vector<int64_t> koff_;  // window path: offset of k = (ky, kx, ci) in a band row
  int64_t band_rows_ = 1;      // window path: output rows per task
  ops::fused::Epilogue act_;
  AlignedFloats packed_, bias_;
  // GEMM weights: packed_, or the engine's packed constant (Winograd: its stored transform)
  const float* wptr_ = nullptr;
  bool weights_mapped_ = false;  // wptr_ / dwa_.w point into the constant itself
  kernels::DwConvArgs dwa_;
};

// LITHE_WINOGRAD=0 turns the Winograd path off (for comparisons).
bool winograd_enabled() {
  const char* e = std::getenv("LITHE_WINOGRAD");
  return !(e && std::string(e) == "0");
}

// A stride-1 3x3 conv Winograd pays off for: GEMMs of some width and enough tiles.
bool winograd_shape(int64_t kh, int64_t kw, bool unit, int64_t group, int64_t c, int64_t m,
                    int64_t pixels) {
  return kh == 3 && kw == 3 && unit && group == 1 && c >= 8 && m >= 8 && pixels >= 64;
}

// A Winograd step's weights, bias, tile block and GEMM form. The weights, U = G g G^T for
// each (output, input) channel pair as 36 packed GEMM B matrices (K = C inputs, N = M
// outputs): the transform the builder stored in the engine (the node's winograd_weights, read
// where it lies: the weights W are then never read), else computed here from W (ONNX order).
void prepare_winograd(ConvStep& s, const Tensor* stored, const float* wd, const float* bd) {
  const int64_t c = s.c_, m = s.m_;
  if (stored) {
    s.wptr_ = stored->data<float>();
  } else {
    s.packed_ = AlignedFloats(ops::conv_layout::winograd_floats(c, m));
    kernels::winograd_weights_f32(wd, c, m, s.packed_.data());
    s.wptr_ = s.packed_.data();
  }
  if (bd) {
    s.bias_ = AlignedFloats(m);
    std::memcpy(s.bias_.data(), bd, static_cast<size_t>(m) * sizeof(float));
  }
  // Most tiles per task: the 36 transformed input and output matrices stay within about 2 MiB.
  // Many tiles per task let each transformed weight matrix serve many rows (with few rows,
  // streaming the 36 matrices costs more than the products).
  const int mr = s.kt_.gemm_mr;
  const int64_t fit = 524288 / (36 * (c + m) * mr);
  s.tm_ = mr * std::clamp<int64_t>(fit, 1, 16);
  // The 36 GEMMs read the transformed rows in place where a pointwise conv of the same K and
  // N would (few output panels to share a packed tile, or a small K): packing them cost as
  // much as it saved. PP-OCR det's 96 -> 24 convs at 160 x 160 (two panels) 10.4 -> 8.4 ms,
  // SqueezeNet's expand3x3 layers 4-22% faster, ResNet-50's 56 x 56 / 28 x 28 ones 6-13%
  // (per-layer profiles, 1 thread; 16-panel layers unchanged).
  s.direct_ = use_direct(c, m);
}

// The output pixel stride in floats: `channels`, or the row stride the plan gives a strided
// output (rows of exactly `channels` floats); -1 when the plan's rows do not fit.
int64_t output_stride(const plan::MemoryPlan* plan, int y, int64_t channels) {
  if (!plan || !plan->strided(y)) return channels;
  const size_t i = static_cast<size_t>(y);
  const int64_t es = static_cast<int64_t>(sizeof(float));
  if (plan->row_bytes[i] != channels * es || plan->row_stride[i] % es != 0) return -1;
  return plan->row_stride[i] / es;
}

std::unique_ptr<FastStep> make_conv(const ir::Graph& g, size_t node_index, const KernelTable& kt,
                                    const plan::MemoryPlan* plan,
                                    const std::vector<char>* winograd_ok) {
  const ir::Node& node = g.nodes[node_index];
  ConvOperands io;
  if (!conv_operands(g, node, 3, &io)) return nullptr;
  const int xv = io.x, wv = io.w, bv = io.b, zv = io.z, yv = io.y;
  const Tensor* w = io.weight;
  const Tensor* bias = io.bias;
  const Shape& xs = dims_of(g, xv);
  const Shape& ys = dims_of(g, yv);
  const Shape& ws = w->shape();
  ops::NodeAttrs attrs(node);
  ops::fused::Epilogue act;
  if (!parse_act(attrs, &act)) return nullptr;
  const int64_t group = attrs.attr_int("group", 1);
  const int64_t c = xs[3], m = ws[0];
  if (group < 1 || c % group || m % group || ws[1] * group != c || ys[3] != m) return nullptr;
  ops::conv_pool::Geometry geo =
      ops::conv_pool::forward_geometry(attrs, {xs[1], xs[2]}, {ws[2], ws[3]});
  if (geo.out[0] != ys[1] || geo.out[1] != ys[2]) return nullptr;
  const int64_t cg = c / group, mg = m / group, kh = ws[2], kw = ws[3];
  const bool depthwise = cg == 1 && mg == 1;
  // Pointwise: output pixel m is input pixel m (no stride, no padding on either side).
  const bool unit =
      geo.strides[0] == 1 && geo.strides[1] == 1 && geo.dilations[0] == 1 && geo.dilations[1] == 1;
  const bool pointwise = kh == 1 && kw == 1 && unit && ys[1] == xs[1] && ys[2] == xs[2] &&
                         geo.pad_begin[0] == 0 && geo.pad_begin[1] == 0;
  const bool winograd = winograd_shape(kh, kw, unit, group, c, m, ys[1] * ys[2]) &&
                        winograd_enabled() && (!winograd_ok || (*winograd_ok)[node_index]);
  auto s = std::make_unique<ConvStep>(kt, depthwise   ? ConvStep::Kind::kDepthwise
                                          : pointwise ? ConvStep::Kind::kGemm1x1
                                          : winograd  ? ConvStep::Kind::kWinograd
                                                      : ConvStep::Kind::kIm2col);
  s->x_ = xv;
  s->y_ = yv;
  s->z_ = zv;
  s->w_ = wv;
  s->b_ = bv;
  s->set_shape(xs, ys, ws, group, geo);
  s->ys_ = output_stride(plan, yv, m);
  if (s->ys_ < 0) return nullptr;
  s->act_ = act;
  const float* wd = w->data<float>();
  const float* bd = bias ? bias->data<float>() : nullptr;
  // Weights the builder stored packed (ops/conv_weight_layout.hpp) are used where they lie.
  using ops::conv_layout::WeightLayout;
  WeightLayout layout = WeightLayout::kOnnx;
  if (!ops::conv_layout::parse_layout(attrs.attr_string("weight_layout", ""), &layout) ||
      (layout == WeightLayout::kTapsC && !depthwise))
    return nullptr;
  // The Winograd transform the builder stored (its shape checked by the op's validation).
  const Tensor* stored_winograd = nullptr;
  if (auto it = node.attrs.find(ops::conv_layout::kWinogradAttr);
      winograd && it != node.attrs.end() && it->second.kind == ir::Attribute::Kind::kTensor) {
    stored_winograd = &it->second.t;
    if (stored_winograd->dtype() != DType::kFloat32 ||
        stored_winograd->numel() != ops::conv_layout::winograd_floats(c, m))
      return nullptr;
  }
  std::vector<float> unpacked;
  if (layout == WeightLayout::kPanels16 && winograd && !stored_winograd) {
    // The transform at load wants ONNX order.
    unpacked.resize(static_cast<size_t>(w->numel()));
    ops::conv_layout::for_each_weight(layout, group, mg, cg, kh * kw,
                                      [&](int64_t o, int64_t p) { unpacked[o] = wd[p]; });
    wd = unpacked.data();
    layout = WeightLayout::kOnnx;
  }
  if (depthwise) {
    if (layout == WeightLayout::kTapsC) {
      s->weights_mapped_ = true;
      s->dwa_.w = wd;
    } else {
      // Weights [C, 1, kh, kw] -> [kh * kw][C].
      s->packed_ = AlignedFloats(kh * kw * c);
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t tap = 0; tap < kh * kw; ++tap)
          s->packed_.data()[tap * c + ch] = wd[ch * kh * kw + tap];
      s->dwa_.w = s->packed_.data();
    }
    if (bd) {
      s->bias_ = AlignedFloats(c);
      std::memcpy(s->bias_.data(), bd, static_cast<size_t>(c) * sizeof(float));
    }
    kernels::DwConvArgs& d = s->dwa_;
    s->depthwise_geometry(d, s->ys_);
    d.ep.bias = s->bias_.data();
    d.ep.ldr = c;
    d.ep.act = act;
    return s;
  }
  if (winograd) {
    prepare_winograd(*s, stored_winograd, wd, bd);
    return s;
  }
  // GEMM weights per group: B[k = (ky * kw + kx) * cg + ci][n] = W[g * mg + n][ci][ky][kx].
  const int64_t kdim = kh * kw * cg, pg = panels_of(mg);
  s->kdim_ = kdim;
  if (layout == WeightLayout::kPanels16 && mg % kPanel == 0) {
    // Whole panels: the kernels' layout exactly, read from the engine.
    s->weights_mapped_ = true;
    s->wptr_ = wd;
  } else {
    s->packed_ = AlignedFloats(group * pg * kPanel * kdim);
    s->wptr_ = s->packed_.data();
    for (int64_t gi = 0; gi < group; ++gi)
      for (int64_t p = 0; p < pg; ++p) {
        float* panel = s->packed_.data() + (gi * pg + p) * kPanel * kdim;
        const int64_t n0 = p * kPanel, nn = std::min<int64_t>(kPanel, mg - n0);
        if (layout == WeightLayout::kPanels16) {
          // The builder's last panel of a group is nn wide: pad it to 16.
          const float* src = wd + gi * mg * kdim + n0 * kdim;
          for (int64_t k = 0; k < kdim; ++k)
            std::memcpy(panel + k * kPanel, src + k * nn, static_cast<size_t>(nn) * sizeof(float));
          continue;
        }
        // From ONNX order: for k = (tap, ci), the 16 values W[gi * mg + 16p + j][ci][tap].
        for (int64_t j = 0; j < nn; ++j) {
          const float* wrow = wd + (gi * mg + n0 + j) * cg * kh * kw;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t tap = 0; tap < kh * kw; ++tap)
              panel[(tap * cg + ci) * kPanel + j] = wrow[ci * kh * kw + tap];
        }
      }
  }
  if (bd) {
    s->bias_ = AlignedFloats(group * pg * kPanel);
    for (int64_t gi = 0; gi < group; ++gi)
      std::memcpy(s->bias_.data() + gi * pg * kPanel, bd + gi * mg,
                  static_cast<size_t>(mg) * sizeof(float));
  }
  s->tm_ = tile_rows(kdim, mg, kt.gemm_mr);
  // Pointwise: A in place when packing does not pay. Im2col: windows read in place up to the
  // level's window_panels (or for a small K), and always for few input channels, where the
  // packed layout's per-channel scatter costs most.
  const bool in_place =
      pointwise ? use_direct(kdim, mg) : use_direct(kdim, mg, kt.window_panels) || cg < 16;
  s->direct_ = !depthwise && (pointwise || !winograd) && in_place;
  if (s->window()) {
    // About tm_ output pixels per band, and at least four bands when the image has the rows.
    s->band_rows_ = std::clamp<int64_t>(s->tm_ / s->ow_, 1, std::max<int64_t>(1, s->oh_ / 4));
    const int64_t bw = s->band_width();
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx)
        for (int64_t ci = 0; ci < cg; ++ci)
          s->koff_.push_back((ky * s->dh_ * bw + kx * s->dw_) * s->c_ + ci);
  }
  // Enough tasks for the pool's threads: split the panels when the rows are few.
  const int64_t row_tasks = xs[0] * group * ((ys[1] * ys[2] + s->tm_ - 1) / s->tm_);
  int64_t chunks = std::clamp<int64_t>((16 + row_tasks - 1) / row_tasks, 1, pg);
  int64_t pchunk = (pg + chunks - 1) / chunks;
  pchunk = (pchunk + kt.gemm_panels - 1) / kt.gemm_panels * kt.gemm_panels;
  s->pchunk_ = std::max<int64_t>(1, pchunk);
  return s;
}

// ---- Inverted residual: pointwise expansion, depthwise, pointwise projection ---------------

// The three convs of a MobileNetV2-style block (E: 1x1 expansion, D: depthwise, P: 1x1
// projection, P maybe with the block's residual) run together, a few output rows at a time:
// E's rows go into a buffer the size of L2 instead of the arena, D reads them there and
// writes its rows into a second buffer, which P reads. The expanded tensors (4.8 MB at
// MobileNetV2's 112 x 112 x 96) then never travel through L3 or memory. Every value is the
// one the separate steps compute (the same kernels on the same inputs; only which rows a
// call covers differs), so the result is bitwise that of the three steps. Each thread takes
// a range of output rows; E's rows that two neighbouring ranges (or chunks) both need are
// computed by each (at most kh - 1 rows a range).
class InvertedResidualStep final : public FastStep {
 public:
  InvertedResidualStep(const ConvStep& e, const ConvStep& d, const ConvStep& p)
      : e_(e), d_(d), p_(p) {
    // Output rows per chunk: E's rows for them and D's rows within about 256 KiB.
    const int64_t erow = e_.iw_ * e_.m_, drow = d_.ow_ * d_.m_;
    chunk_ = 1;
    while (chunk_ < d_.oh_ && e_rows(chunk_ + 1) * erow + (chunk_ + 1) * drow <= 65536) ++chunk_;
    // Room for E's rows of two chunks: the rows the next chunk shares with this one move to
    // the front of the buffer only when a chunk's rows no longer fit behind them.
    e_cap_ = e_rows(chunk_) + chunk_ * d_.sh_;
    e_floats_ = e_cap_ * erow;
    d_floats_ = chunk_ * drow;
  }
  const char* kind() const override { return "fused-ir"; }
  /// Each chunk reads E's and P's weights again, where the separate steps write and read E's
  /// and D's outputs once. Worth it when the weights read per image come to at most half those
  /// tensors (MobileNetV2's blocks: a twelfth or less; PP-LCNet's 480-channel blocks on rows
  /// of 80 pixels: 6 times more).
  bool pays() const {
    const int64_t chunks = (d_.oh_ + chunk_ - 1) / chunk_;
    const int64_t weights = e_.c_ * e_.m_ + p_.c_ * p_.m_;
    const int64_t tensors = e_.oh_ * e_.ow_ * e_.m_ + d_.oh_ * d_.ow_ * d_.m_;
    return 2 * chunks * weights <= tensors;
  }
  int64_t macs() const override { return e_.macs() + d_.macs() + p_.macs(); }
  int64_t scratch_floats() const override {
    return e_floats_ + d_floats_ + std::max(e_.scratch_floats(), p_.scratch_floats());
  }

  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const float* x = static_cast<const float*>(vals[static_cast<size_t>(e_.x_)]);
    float* y = static_cast<float*>(vals[static_cast<size_t>(p_.y_)]);
    const float* z =
        p_.z_ >= 0 ? static_cast<const float*>(vals[static_cast<size_t>(p_.z_)]) : nullptr;
    float* eb = scratch;
    float* db = eb + e_floats_;
    float* pack = db + d_floats_;
    const int64_t oh = d_.oh_, ow = d_.ow_, n = p_.m_;
    int64_t b, e;
    static_range(d_.nb_ * oh, t, nt, &b, &e);
    // E's rows [have0, have1) of image have_img are in eb, row i at eb + (i - base) * erow.
    int64_t have0 = 0, have1 = 0, have_img = -1, base = 0;
    const int64_t erow = e_.iw_ * e_.m_;
    for (int64_t r = b; r < e;) {
      const int64_t img = r / oh, oy0 = r % oh, oy1 = std::min({oh, oy0 + chunk_, oy0 + (e - r)});
      const float* xi = x + img * e_.ih_ * e_.iw_ * e_.c_;
      // E's rows D reads for output rows [oy0, oy1).
      const int64_t e0 = std::max<int64_t>(0, oy0 * d_.sh_ - d_.ph_);
      const int64_t e1 = std::min(e_.oh_, (oy1 - 1) * d_.sh_ - d_.ph_ + (d_.kh_ - 1) * d_.dh_ + 1);
      int64_t from = e0;
      if (have_img == img && have0 <= e0 && e0 < have1) {  // keep the rows already there
        if (e1 - base > e_cap_) {  // no room behind them: move them to the front
          std::memmove(eb, eb + (e0 - base) * erow,
                       static_cast<size_t>((have1 - e0) * erow) * sizeof(float));
          base = e0;
        }
        from = have1;
      } else {
        base = e0;
      }
      if (from < e1)
        e_.pointwise_rows(xi, from * e_.iw_, e1 * e_.iw_, eb + (from - base) * erow, e_.m_, nullptr,
                          pack);
      have_img = img;
      have0 = e0;
      have1 = e1;
      // D on rows [oy0, oy1), its input rows [e0, e1): the window's top padding is whatever
      // of it lies above row e0, and rows past e1 are the image's bottom padding.
      kernels::DwConvArgs dw = d_.dwa_;
      dw.x = eb + (e0 - base) * erow;
      dw.ih = e1 - e0;
      dw.ph = d_.ph_ - oy0 * d_.sh_ + e0;
      dw.y = db;
      dw.y_stride = d_.m_;
      d_.kt_.f32_dwconv(dw, 0, oy1 - oy0);
      // P on those rows' pixels.
      const int64_t m0 = oy0 * ow, pix = (oy1 - oy0) * ow;
      p_.pointwise_rows(db, 0, pix, y + img * oh * ow * p_.ys_ + m0 * p_.ys_, p_.ys_,
                        z ? z + img * oh * ow * n + m0 * n : nullptr, pack);
      r += oy1 - oy0;
    }
  }

 private:
  // E's rows the depthwise kernel reads for `rows` output rows.
  int64_t e_rows(int64_t rows) const {
    return std::min(e_.oh_, (rows - 1) * d_.sh_ + (d_.kh_ - 1) * d_.dh_ + 1);
  }
  const ConvStep &e_, &d_, &p_;
  int64_t chunk_ = 1, e_cap_ = 1, e_floats_ = 0, d_floats_ = 0;
};

// ---- MaxPoolNhwc / AveragePoolNhwc / GlobalAveragePoolNhwc -----------------------------

// T: float, or uint8 (pooling of quantized values, which keeps their scale and zero point).
template <class T>
class PoolStep final : public FastStep {
 public:
  explicit PoolStep(const KernelTable& kt) : kt_(kt) {}
  const char* kind() const override {
    if constexpr (std::is_same_v<T, uint8_t>) return a_.max ? "q8-maxpool" : "q8-avgpool";
    return a_.max ? "maxpool" : "avgpool";
  }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    const T* x = static_cast<const T*>(vals[static_cast<size_t>(x_)]);
    T* y = static_cast<T*>(vals[static_cast<size_t>(y_)]);
    const int64_t in_img = a_.ih * a_.iw * a_.c, out_img = a_.oh * a_.ow * a_.y_stride;
    int64_t b, e;
    if constexpr (std::is_same_v<T, float>) {
      // Fewer output rows than threads (global pooling: one row per image): the threads
      // take ranges of channels instead, multiples of 16 (each channel's value is the same
      // whoever computes it).
      if (nb_ * a_.oh < nt && a_.c >= 32) {
        const int64_t per = (a_.c + nt - 1) / nt, cw = (per + 15) / 16 * 16;
        const int64_t chunks = (a_.c + cw - 1) / cw;
        static_range(nb_ * a_.oh * chunks, t, nt, &b, &e);
        for (int64_t u = b; u < e; ++u) {
          const int64_t r = u / chunks, c0 = u % chunks * cw, img = r / a_.oh, oy = r % a_.oh;
          kernels::PoolArgsT<T> a = a_;
          a.x = x + img * in_img + c0;
          a.y = y + img * out_img + c0;
          a.c = std::min(cw, a_.c - c0);
          kt_.f32_pool(a, oy, oy + 1);
        }
        return;
      }
    }
    static_range(nb_ * a_.oh, t, nt, &b, &e);
    for (int64_t r = b; r < e;) {
      const int64_t img = r / a_.oh, oy0 = r % a_.oh, oy1 = std::min(a_.oh, oy0 + (e - r));
      kernels::PoolArgsT<T> a = a_;
      a.x = x + img * in_img;
      a.y = y + img * out_img;
      if constexpr (std::is_same_v<T, uint8_t>)
        kt_.q8_pool(a, oy0, oy1);
      else
        kt_.f32_pool(a, oy0, oy1);
      r += oy1 - oy0;
    }
  }
  const KernelTable& kt_;
  int x_ = -1, y_ = -1;
  int64_t nb_ = 0;
  kernels::PoolArgsT<T> a_;
};

// The pool step of element type T with its geometry filled in, or null.
template <class T>
std::unique_ptr<PoolStep<T>> pool_step(const ir::Graph& g, const ir::Node& node, const KernelTable& kt,
                                       const plan::MemoryPlan* plan) {
  const int xv = input_at(node, 0), yv = node.outputs[0];
  const Shape& xs = dims_of(g, xv);
  const Shape& ys = dims_of(g, yv);
  if (xs.size() != 4 || ys.size() != 4 || xs[3] != ys[3] || xs[0] != ys[0]) return nullptr;
  auto s = std::make_unique<PoolStep<T>>(kt);
  kernels::PoolArgsT<T>& a = s->a_;
  a.ih = xs[1];
  a.iw = xs[2];
  a.x_stride = xs[3];
  a.oh = ys[1];
  a.ow = ys[2];
  if constexpr (std::is_same_v<T, uint8_t>)  // strided rows are float concat slices
    a.y_stride = plan && plan->strided(yv) ? -1 : ys[3];
  else
    a.y_stride = output_stride(plan, yv, ys[3]);
  if (a.y_stride < 0) return nullptr;
  a.c = xs[3];
  if (node.op_type == "GlobalAveragePoolNhwc") {
    if (ys[1] != 1 || ys[2] != 1) return nullptr;
    a.max = false;
    a.kh = xs[1];
    a.kw = xs[2];
  } else {
    ops::NodeAttrs attrs(node);
    std::vector<int64_t> kernel = attrs.attr_ints("kernel_shape", {});
    if (kernel.size() != 2) return nullptr;
    ops::conv_pool::WindowOptions opt;
    opt.ceil_mode = attrs.attr_int("ceil_mode", 0) == 1;
    ops::conv_pool::Geometry geo =
        ops::conv_pool::forward_geometry(attrs, {xs[1], xs[2]}, kernel, opt);
    if (geo.out[0] != ys[1] || geo.out[1] != ys[2]) return nullptr;
    a.max = node.op_type == "MaxPoolNhwc";
    a.count_include_pad = attrs.attr_int("count_include_pad", 0) == 1;
    a.kh = kernel[0];
    a.kw = kernel[1];
    a.sh = geo.strides[0];
    a.sw = geo.strides[1];
    a.ph = geo.pad_begin[0];
    a.pw = geo.pad_begin[1];
    a.dh = geo.dilations[0];
    a.dw = geo.dilations[1];
    a.pad_h_end = geo.pad_end[0];
    a.pad_w_end = geo.pad_end[1];
  }
  s->x_ = xv;
  s->y_ = yv;
  s->nb_ = xs[0];
  return s;
}

std::unique_ptr<FastStep> make_pool(const ir::Graph& g, const ir::Node& node, const KernelTable& kt,
                                    const plan::MemoryPlan* plan) {
  if (node.outputs.size() != 1) return nullptr;
  const int xv = input_at(node, 0), yv = node.outputs[0];
  if (is_f32_static(g, xv) && is_f32_static(g, yv)) return pool_step<float>(g, node, kt, plan);
  // uint8 pooling (the quantizer's), on values that keep their scale and zero point.
  if (is_static(g, xv, DType::kUInt8) && is_static(g, yv, DType::kUInt8) && kt.q8_pool) {
    const int64_t zx = ops::NodeAttrs(node).attr_int("zero_point", 0);
    if (zx < 0 || zx > 255) return nullptr;  // the reference kernel reports it
    auto s = pool_step<uint8_t>(g, node, kt, plan);
    if (s) s->a_.zx = static_cast<int32_t>(zx);
    return s;
  }
  return nullptr;
}

// ---- Gemm / MatMul with constant B --------------------------------------------------------

class GemmStep final : public FastStep {
 public:
  explicit GemmStep(const KernelTable& kt) : kt_(kt) {}
  int64_t macs() const override { return m_ * n_ * k_; }
  std::vector<int> packed_constants() const override {
    if (gemv_) return {};  // B and C are read from the engine at run time
    return {b_, c_};
  }
  int64_t owned_bytes() const override { return packed_.bytes + bias_.bytes; }
  int64_t scratch_floats() const override {
    return direct_ || gemv_ ? 0 : kernels::packed_a_floats(tm_, k_, kt_.gemm_mr);
  }
  const char* kind() const override { return gemv_ ? "gemv" : "gemm"; }
  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const float* x = static_cast<const float*>(vals[static_cast<size_t>(a_)]);
    if (gemv_) {  // outputs in runs of 16 (whole cache lines of C) over the threads
      kernels::GemmArgs a;
      a.m = 1;
      a.n = n_;
      a.k = k_;
      a.a = x;
      a.bp = bmap_;
      a.c = static_cast<float*>(vals[static_cast<size_t>(y_)]);
      a.ep.act = act_;
      a.ep.bias = cmap_;
      a.ep.residual = z_ >= 0 ? static_cast<const float*>(vals[static_cast<size_t>(z_)]) : nullptr;
      int64_t b, e;
      static_range(panels_of(n_), t, nt, &b, &e);
      if (b < e) kt_.f32_gemv(a, b * kPanel, std::min(n_, e * kPanel));
      return;
    }
    kernels::GemmArgs a;
    a.n = n_;
    a.k = k_;
    a.a = scratch;
    a.bp = packed_.data();
    float* y = static_cast<float*>(vals[static_cast<size_t>(y_)]);
    const float* z = z_ >= 0 ? static_cast<const float*>(vals[static_cast<size_t>(z_)]) : nullptr;
    a.ldc = n_;
    a.ep.act = act_;
    a.ep.bias = bias_.data();
    a.ep.ldr = n_;
    // Tasks: row tiles x panel chunks, split statically.
    const int64_t tm = balanced_tile(m_, tm_, kt_.gemm_mr);
    const int64_t mt = (m_ + tm - 1) / tm, pg = panels_of(n_), pc = (pg + pchunk_ - 1) / pchunk_;
    int64_t b, e;
    static_range(mt * pc, t, nt, &b, &e);
    int64_t built = -1;
    for (int64_t task = b; task < e; ++task) {
      const int64_t mi = task / pc, pi = task % pc;
      const int64_t m0 = mi * tm, m1 = std::min(m_, m0 + tm);
      if (direct_) {
        kernels::GemmArgs d = a;
        d.m = m_;
        d.a = x;
        d.lda = k_;
        d.c = y;
        d.ep.residual = z;
        kt_.f32_gemm_direct(d, m0, m1, pi * pchunk_, std::min(pg, (pi + 1) * pchunk_));
        continue;
      }
      if (built != mi) {
        kernels::pack_a_f32(m1 - m0, k_, x + m0 * k_, k_, kt_.gemm_mr, scratch);
        built = mi;
      }
      a.m = m1 - m0;
      a.c = y + m0 * n_;
      a.ep.residual = z ? z + m0 * n_ : nullptr;
      kt_.f32_gemm(a, 0, m1 - m0, pi * pchunk_, std::min(pg, (pi + 1) * pchunk_));
    }
  }
  const KernelTable& kt_;
  int a_ = -1, y_ = -1, z_ = -1, b_ = -1, c_ = -1;
  int64_t m_ = 0, n_ = 0, k_ = 0, tm_ = 1, pchunk_ = 1;
  bool direct_ = false;
  // One row against B^T (a batch-1 Linear layer): B [N, K] and C read where they lie.
  bool gemv_ = false;
  const float *bmap_ = nullptr, *cmap_ = nullptr;
  ops::fused::Epilogue act_;
  AlignedFloats packed_, bias_;
};

std::unique_ptr<FastStep> make_gemm(const ir::Graph& g, const ir::Node& node,
                                    const KernelTable& kt) {
  const bool matmul = node.op_type == "MatMul";
  const int av = input_at(node, 0), bv = input_at(node, 1);
  const int cv = matmul ? -1 : input_at(node, 2);
  const int zv = node.domain == "lithe" ? input_at(node, matmul ? 2 : 3) : -1;
  if (node.outputs.size() != 1) return nullptr;
  const int yv = node.outputs[0];
  const Tensor* b = constant_of(g, bv);
  const Tensor* c = constant_of(g, cv);
  if (!is_f32_static(g, av) || !is_f32_static(g, yv) || !b || b->dtype() != DType::kFloat32 ||
      (cv >= 0 && (!c || c->dtype() != DType::kFloat32)) || (zv >= 0 && !is_f32_static(g, zv)))
    return nullptr;
  ops::NodeAttrs attrs(node);
  ops::fused::Epilogue act;
  if (!parse_act(attrs, &act)) return nullptr;
  const Shape& as = dims_of(g, av);
  const Shape& bs = b->shape();
  const Shape& ys = dims_of(g, yv);
  if (bs.size() != 2 || as.empty()) return nullptr;
  int64_t m = 1, k = as.back(), n = 0;
  bool trans_b = false;
  if (matmul) {
    for (size_t i = 0; i + 1 < as.size(); ++i) m *= as[i];
    if (as.size() < 2 || bs[0] != k) return nullptr;
    n = bs[1];
  } else {
    if (as.size() != 2 || attrs.attr_int("transA", 0) != 0 ||
        attrs.attr_float("alpha", 1.0f) != 1.0f || attrs.attr_float("beta", 1.0f) != 1.0f)
      return nullptr;
    m = as[0];
    trans_b = attrs.attr_int("transB", 0) != 0;
    if ((trans_b ? bs[1] : bs[0]) != k) return nullptr;
    n = trans_b ? bs[0] : bs[1];
  }
  if (shape_numel(ys) != m * n || ys.back() != n) return nullptr;
  if (zv >= 0 && dims_of(g, zv) != ys) return nullptr;
  // The bias C must broadcast along rows: [N] or [1, N].
  if (c && !(c->shape() == Shape{n} || c->shape() == Shape{1, n})) return nullptr;
  auto s = std::make_unique<GemmStep>(kt);
  s->a_ = av;
  s->y_ = yv;
  s->z_ = zv;
  s->b_ = bv;
  s->c_ = cv;
  s->m_ = m;
  s->n_ = n;
  s->k_ = k;
  s->act_ = act;
  if (m == 1 && trans_b) {
    s->gemv_ = true;
    s->bmap_ = b->data<float>();
    s->cmap_ = c ? c->data<float>() : nullptr;
    return s;
  }
  s->packed_ = AlignedFloats(kernels::packed_b_floats(k, n));
  kernels::pack_b_f32(k, n, b->data<float>(), trans_b ? 1 : n, trans_b ? k : 1, s->packed_.data());
  if (c) {
    s->bias_ = AlignedFloats(panels_of(n) * kPanel);
    std::memcpy(s->bias_.data(), c->data<float>(), static_cast<size_t>(n) * sizeof(float));
  }
  s->tm_ = tile_rows(k, n, kt.gemm_mr);
  s->direct_ = use_direct(k, n);
  const int64_t pg = panels_of(n), row_tasks = (m + s->tm_ - 1) / s->tm_;
  const int64_t chunks = std::clamp<int64_t>((16 + row_tasks - 1) / row_tasks, 1, pg);
  int64_t pchunk = (pg + chunks - 1) / chunks;
  s->pchunk_ = (pchunk + kt.gemm_panels - 1) / kt.gemm_panels * kt.gemm_panels;
  return s;
}

// ---- MatMul of two computed tensors (attention) -------------------------------------------

// Y[b] = A[b] x B[b] over broadcast batch dims; each batch packs its B and A into the thread's
// scratch, then one GEMM. Batches are split statically over threads.
class BatchedMatMulStep final : public FastStep {
 public:
  explicit BatchedMatMulStep(const KernelTable& kt) : kt_(kt) {}
  int64_t macs() const override { return static_cast<int64_t>(a_off_.size()) * m_ * n_ * k_; }
  int64_t scratch_floats() const override {
    return kernels::packed_b_floats(k_, n_) + kernels::packed_a_floats(m_, k_, kt_.gemm_mr);
  }
  const char* kind() const override { return "batched-gemm"; }
  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const float* a = static_cast<const float*>(vals[static_cast<size_t>(a_)]);
    const float* b = static_cast<const float*>(vals[static_cast<size_t>(b_)]);
    float* y = static_cast<float*>(vals[static_cast<size_t>(y_)]);
    const float* z = z_ >= 0 ? static_cast<const float*>(vals[static_cast<size_t>(z_)]) : nullptr;
    float* pb = scratch;
    float* pa = scratch + kernels::packed_b_floats(k_, n_);
    int64_t lo, hi;
    static_range(static_cast<int64_t>(a_off_.size()), t, nt, &lo, &hi);
    for (int64_t i = lo; i < hi; ++i) {
      kernels::pack_b_f32(k_, n_, b + b_off_[static_cast<size_t>(i)], n_, 1, pb);
      kernels::pack_a_f32(m_, k_, a + a_off_[static_cast<size_t>(i)], k_, kt_.gemm_mr, pa);
      kernels::GemmArgs g;
      g.m = m_;
      g.n = n_;
      g.k = k_;
      g.a = pa;
      g.bp = pb;
      g.c = y + i * m_ * n_;
      g.ldc = n_;
      g.ep.act = act_;
      if (z) {
        g.ep.residual = z + i * m_ * n_;
        g.ep.ldr = n_;
      }
      kt_.f32_gemm(g, 0, m_, 0, panels_of(n_));
    }
  }
  const KernelTable& kt_;
  int a_ = -1, b_ = -1, y_ = -1, z_ = -1;
  int64_t m_ = 0, n_ = 0, k_ = 0;
  std::vector<int64_t> a_off_, b_off_;  // per output batch: element offsets of A[b] and B[b]
  ops::fused::Epilogue act_;
};

std::unique_ptr<FastStep> make_batched_matmul(const ir::Graph& g, const ir::Node& node,
                                              const KernelTable& kt) {
  const int av = input_at(node, 0), bv = input_at(node, 1);
  const int zv = node.domain == "lithe" ? input_at(node, 2) : -1;
  if (node.outputs.size() != 1) return nullptr;
  const int yv = node.outputs[0];
  if (!is_f32_static(g, av) || !is_f32_static(g, bv) || !is_f32_static(g, yv) ||
      (zv >= 0 && !is_f32_static(g, zv)))
    return nullptr;
  const Shape& as = dims_of(g, av);
  const Shape& bs = dims_of(g, bv);
  const Shape& ys = dims_of(g, yv);
  if (zv >= 0 && dims_of(g, zv) != ys) return nullptr;
  ops::NodeAttrs attrs(node);
  ops::fused::Epilogue act;
  if (!parse_act(attrs, &act)) return nullptr;
  auto s = std::make_unique<BatchedMatMulStep>(kt);
  if (!step_util::matmul_batches(as, bs, ys, &s->a_off_, &s->b_off_)) return nullptr;
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  s->a_ = av;
  s->b_ = bv;
  s->y_ = yv;
  s->z_ = zv;
  s->m_ = m;
  s->n_ = n;
  s->k_ = k;
  s->act_ = act;
  return s;
}

}  // namespace

std::vector<char> choose_winograd(const ir::Graph& g) {
  // At most half the model's weight bytes, or 12 MiB.
  const double budget_ratio = 0.5;
  const int64_t floor_bytes = int64_t{12} << 20;
  std::vector<char> ok(g.nodes.size(), 0);
  if (!winograd_enabled()) return ok;
  // Candidates with their transformed-weight bytes (36 x C x M floats) and output pixels.
  struct C {
    size_t n;
    int64_t bytes, pixels;
  };
  std::vector<C> cands;
  int64_t weights = 0;
  for (const ir::Value& v : g.values)
    if (v.constant) weights += static_cast<int64_t>(v.constant->nbytes());
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const ir::Node& node = g.nodes[n];
    if (node.domain != "lithe" || node.op_type != "ConvNhwc" || node.inputs.size() < 2 ||
        node.outputs.empty())
      continue;
    const int xv = node.inputs[0], wv = node.inputs[1], yv = node.outputs[0];
    const Tensor* w = constant_of(g, wv);
    if (!w || !is_f32_static(g, xv) || !is_f32_static(g, yv) || w->shape().size() != 4) continue;
    const Shape& xs = dims_of(g, xv);
    const Shape& ys = dims_of(g, yv);
    const Shape& ws = w->shape();
    if (xs.size() != 4 || ys.size() != 4) continue;
    ops::NodeAttrs a(node);
    auto all_one = [&](const char* name) {
      for (int64_t x : a.attr_ints(name, {1, 1}))
        if (x != 1) return false;
      return true;
    };
    const bool unit = all_one("strides") && all_one("dilations");
    if (winograd_shape(ws[2], ws[3], unit, a.attr_int("group", 1), xs[3], ws[0], ys[1] * ys[2]))
      cands.push_back({n, 36 * xs[3] * ws[0] * 4, ys[1] * ys[2]});
  }
  // Largest outputs first (the most FLOPs saved per transformed byte), within the budget.
  std::stable_sort(cands.begin(), cands.end(),
                   [](const C& a, const C& b) { return a.pixels > b.pixels; });
  int64_t left =
      std::max(floor_bytes, static_cast<int64_t>(budget_ratio * static_cast<double>(weights)));
  for (const C& c : cands) {
    if (c.bytes > left) continue;
    left -= c.bytes;
    ok[c.n] = 1;
  }
  return ok;
}

// LITHE_FUSE_IR=0 turns the fused inverted-residual step off (for comparisons).
bool fuse_ir_enabled() {
  const char* e = std::getenv("LITHE_FUSE_IR");
  return !(e && std::string(e) == "0");
}

std::unique_ptr<FastStep> fuse_inverted_residual(const ir::Graph& g, const plan::MemoryPlan& plan,
                                                 size_t n,
                                                 const std::vector<const FastStep*>& steps,
                                                 size_t* expand, size_t* depthwise) {
  if (!fuse_ir_enabled()) return nullptr;
  // The conv step of node i when that node is a ConvNhwc of kind k whose output only node
  // `consumer` reads (and is not a graph output), else null.
  auto conv_of = [&](size_t i, ConvStep::Kind k, int consumer) -> const ConvStep* {
    const auto* c = dynamic_cast<const ConvStep*>(steps[i]);
    if (!c || c->kind_ != k || c->group_ != (k == ConvStep::Kind::kDepthwise ? c->c_ : 1))
      return nullptr;
    if (consumer < 0) return c;
    const ir::Value& v = g.values[static_cast<size_t>(c->y_)];
    if (v.consumers != std::vector<int>{consumer} || c->ys_ != c->m_ || c->nb_ != 1 ||
        std::find(g.outputs.begin(), g.outputs.end(), c->y_) != g.outputs.end())
      return nullptr;
    return c;
  };
  const ConvStep* p = conv_of(n, ConvStep::Kind::kGemm1x1, -1);
  if (!p || p->nb_ != 1) return nullptr;
  const int dn = g.values[static_cast<size_t>(p->x_)].producer;
  if (dn < 0) return nullptr;
  const ConvStep* d =
      conv_of(static_cast<size_t>(dn), ConvStep::Kind::kDepthwise, static_cast<int>(n));
  if (!d || d->z_ >= 0) return nullptr;
  const int en = g.values[static_cast<size_t>(d->x_)].producer;
  if (en < 0) return nullptr;
  const ConvStep* e = conv_of(static_cast<size_t>(en), ConvStep::Kind::kGemm1x1, dn);
  if (!e || e->z_ >= 0) return nullptr;
  // Only where the expanded tensor is larger than L2 (smaller ones stay in cache anyway).
  if (e->oh_ * e->ow_ * e->m_ * static_cast<int64_t>(sizeof(float)) <= (int64_t{512} << 10))
    return nullptr;
  // The projection writes its rows while the expansion still reads the block's input: not
  // when the plan gives the output bytes of that input (free once the expansion ran, as the
  // separate steps run).
  const auto range = [&](int v) {
    const size_t i = static_cast<size_t>(v);
    return std::pair<int64_t, int64_t>{plan.offset[i], plan.offset[i] + plan.extent(v)};
  };
  const auto [x0, x1] = range(e->x_);
  const auto [y0, y1] = range(p->y_);
  if (x0 >= 0 && y0 >= 0 && x0 < y1 && y0 < x1) return nullptr;
  auto s = std::make_unique<InvertedResidualStep>(*e, *d, *p);
  if (!s->pays()) return nullptr;
  *expand = static_cast<size_t>(en);
  *depthwise = static_cast<size_t>(dn);
  return s;
}

std::unique_ptr<FastStep> make_fast_step(const ir::Graph& g, size_t n, const KernelTable& kt,
                                         const plan::MemoryPlan* plan,
                                         const std::vector<char>* winograd_ok) {
  const ir::Node& node = g.nodes[n];
  if (node.domain == "lithe") {
    if (node.op_type == "ConvNhwc") return make_conv(g, n, kt, plan, winograd_ok);
    if (node.op_type == "MaxPoolNhwc" || node.op_type == "AveragePoolNhwc" ||
        node.op_type == "GlobalAveragePoolNhwc")
      return make_pool(g, node, kt, plan);
    if (node.op_type == "Gemm") return make_gemm(g, node, kt);
    if (node.op_type == "MatMul") {
      if (auto s = make_gemm(g, node, kt)) return s;
      return make_batched_matmul(g, node, kt);
    }
    if (node.op_type == "ConvTranspose") return make_resize_step(g, n, kt);
    if (node.op_type == "QConvNhwc") return make_qconv(g, node, kt, plan);
    if (node.op_type == "LookupU8") return make_lookup_step(g, node, kt);
    if (node.op_type == "QBinaryU8") return make_qbinary_step(g, node, kt);
    if (node.op_type == "QResizeLinearU8") return make_qresize_step(g, node, kt);
    if (node.op_type == "QMatMulU8") return make_qmatmul_step(g, node, kt);
    if (node.op_type == "DepthToSpaceNhwc") return make_copy_step(g, n);
    return nullptr;
  }
  if (node.domain.empty() && (node.op_type == "Gemm" || node.op_type == "MatMul")) {
    if (auto s = make_gemm(g, node, kt)) return s;
    if (node.op_type == "MatMul") return make_batched_matmul(g, node, kt);
  }
  if (auto s = make_resize_step(g, n, kt)) return s;
  if (auto s = make_quant_step(g, node, kt)) return s;
  if (auto s = make_copy_step(g, n)) return s;
  if (auto s = make_norm_step(g, n)) return s;
  return make_elementwise_step(g, n, kt);
}

}  // namespace lithe::runtime
