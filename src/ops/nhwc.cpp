// Op family: nhwc (domain "lithe"). Channels-last forms of the 2-D conv and pool ops that the
// layout pass convert_layout_nhwc (passes/layout_nhwc.cpp) puts inside convolutional regions:
//
//   ConvNhwc(X[N,H,W,C], W[M,C/group,kH,kW], B[M]?, Z[N,OH,OW,M]?) -> Y[N,OH,OW,M]
//     Conv's attributes plus the fused epilogue (activation, activation_params, residual Z
//     at index 3) of the lithe-domain Conv. W keeps its ONNX shape; its data is in ONNX
//     order, or (attribute weight_layout, set by the builder) packed for the fast kernels
//     (ops/conv_weight_layout.hpp), which the reference kernel unpacks.
//   MaxPoolNhwc / AveragePoolNhwc (X[N,H,W,C]) -> Y[N,OH,OW,C]   (no Indices output)
//   GlobalAveragePoolNhwc (X[N,H,W,C]) -> Y[N,1,1,C]
//   DepthToSpaceNhwc (X[N,H,W,bh*bw*C]) -> Y[N,H*bh,W*bw,C]   (attributes bh, bw; any element
//     type) Y[n, h*bh + i, w*bw + j, c] = X[n, h, w, (i*bw + j)*C + c]: the pixel shuffle that
//     follows the 1x1 conv a ConvTranspose with stride == kernel becomes in NHWC regions.
//
// The reference kernels are plain loops over NHWC indexing with the window geometry of
// conv_pool_internal.hpp, so they are checked against the NCHW kernels rather than built on
// them.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/conv_pool_internal.hpp"
#include "ops/conv_weight_layout.hpp"
#include "ops/families.hpp"
#include "ops/fused_internal.hpp"
#include "ops/nhwc_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using conv_pool::Geometry;

const Shape& nhwc_shape(const NodeAttrs& a, const Shape& s, const char* what) {
  if (s.size() != 4) a.fail(what, " has rank ", s.size(), ", expected 4 (N, H, W, C)");
  return s;
}

void check_float(const InferContext& ctx, size_t i, const char* what) {
  if (!is_float(ctx.input_dtype(i)))
    ctx.fail(what, " must be a float tensor, got ", dtype_name(ctx.input_dtype(i)));
}

// ---- ConvNhwc -------------------------------------------------------------------------

}  // namespace

NhwcConv nhwc_conv(const NodeAttrs& a, const Shape& xs_in, const Shape& ws) {
  const Shape& xs = nhwc_shape(a, xs_in, "input X");
  if (ws.size() != 4) a.fail("weight W has rank ", ws.size(), ", expected 4 (M, C/group, kH, kW)");
  NhwcConv s;
  s.n = xs[0];
  s.c = xs[3];
  s.m = ws[0];
  s.group = a.attr_int("group", 1);
  if (s.group < 1 || s.group > kMaxTensorElements) a.fail("group ", s.group, " must be >= 1");
  if (s.c % s.group != 0 || s.m % s.group != 0 || ws[1] * s.group != s.c)
    a.fail("weight W ", shape_str(ws), " does not fit ", s.c, " input channels in ", s.group,
           " group(s)");
  std::vector<int64_t> kernel = {ws[2], ws[3]};
  if (a.has_attr("kernel_shape") && a.attr_ints("kernel_shape") != kernel)
    a.fail("kernel_shape attribute does not match the weight's spatial dims ", shape_str(kernel));
  s.g = conv_pool::forward_geometry(a, {xs[1], xs[2]}, kernel);
  s.out_shape = {s.n, s.g.out[0], s.g.out[1], s.m};
  std::string err =
      fused::parse_epilogue(a.attr_string("activation", ""), a.attr_floats("activation_params", {}),
                            a.attr_floats("activation_affine", {}), &s.e);
  if (!err.empty()) a.fail(err);
  return s;
}

namespace {

struct ConvSetup : NhwcConv {
  conv_layout::WeightLayout layout = conv_layout::WeightLayout::kOnnx;
};

ConvSetup conv_setup(const NodeAttrs& a, const Shape& xs, const Shape& ws) {
  ConvSetup s;
  static_cast<NhwcConv&>(s) = nhwc_conv(a, xs, ws);
  const std::string layout = a.attr_string("weight_layout", "");
  if (!conv_layout::parse_layout(layout, &s.layout))
    a.fail("weight_layout '", layout, "' is not one of '', 'kpanel16', 'taps_c'");
  if (s.layout == conv_layout::WeightLayout::kTapsC && (ws[1] != 1 || s.m != s.group))
    a.fail("weight_layout 'taps_c' is for depthwise weights, W is ", shape_str(ws));
  if (a.has_attr(conv_layout::kWinogradAttr)) {  // ignored here, read by the fast kernel
    const Tensor& u = a.attr_tensor(conv_layout::kWinogradAttr);
    const Shape want{36, conv_layout::winograd_floats(s.c, s.m) / 36};
    if (ws[2] != 3 || ws[3] != 3 || s.group != 1)
      a.fail(conv_layout::kWinogradAttr, " is for 3x3 convs of one group, W is ", shape_str(ws),
             " in ", s.group, " group(s)");
    if (u.dtype() != DType::kFloat32 || u.shape() != want)
      a.fail(conv_layout::kWinogradAttr, " is ", dtype_name(u.dtype()), "[", shape_str(u.shape()),
             "], expected float32[", shape_str(want), "]");
  }
  return s;
}

// W in ONNX order: `w` itself, or unpacked from the engine's packed layout into `tmp`.
const Tensor& onnx_weights(const ConvSetup& s, const Tensor& w, Tensor& tmp) {
  if (s.layout == conv_layout::WeightLayout::kOnnx) return w;
  const Shape& ws = w.shape();
  tmp = Tensor(w.dtype(), ws);
  const size_t es = dtype_size(w.dtype());
  const auto* src = static_cast<const unsigned char*>(w.raw());
  auto* dst = static_cast<unsigned char*>(tmp.raw());
  conv_layout::for_each_weight(s.layout, s.group, s.m / s.group, ws[1], ws[2] * ws[3],
                               [&](int64_t onnx, int64_t packed) {
                                 std::memcpy(dst + static_cast<size_t>(onnx) * es,
                                             src + static_cast<size_t>(packed) * es, es);
                               });
  return tmp;
}

void conv_nhwc_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 4);
  check_float(ctx, 0, "X");
  const DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t) ctx.fail("W must have X's element type ", dtype_name(t));
  ctx.set_output_unknown(0, t);
  ConvSetup s = conv_setup(ctx, ctx.input_shape(0), ctx.input_shape(1));
  if (ctx.has_input(2) && ctx.input_shape(2) != Shape{s.m})
    ctx.fail("bias B has shape ", shape_str(ctx.input_shape(2)), ", expected [", s.m, "]");
  if (ctx.has_input(3) && ctx.input_shape(3) != s.out_shape)
    ctx.fail("residual Z has shape ", shape_str(ctx.input_shape(3)), ", expected ",
             shape_str(s.out_shape));
  ctx.set_output(0, t, s.out_shape);
}

void conv_nhwc_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  ConvSetup s = conv_setup(ctx, x.shape(), ctx.input(1).shape());
  Tensor unpacked;
  const Tensor& w = onnx_weights(s, ctx.input(1), unpacked);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (z && z->shape() != s.out_shape) ctx.fail("residual Z has the wrong shape");
  Tensor& y = ctx.output(0);
  const int64_t cg = s.c / s.group, mg = s.m / s.group;
  const int64_t kh = s.g.kernel[0], kw = s.g.kernel[1];
  const int64_t ih = s.g.in[0], iw = s.g.in[1], oh = s.g.out[0], ow = s.g.out[1];
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    const T* wd = w.data<T>();
    const T* bd = b ? b->data<T>() : nullptr;
    T* yd = y.data<T>();
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t m = 0; m < s.m; ++m) {
            const int64_t c0 = (m / mg) * cg;
            Acc acc = bd ? static_cast<Acc>(bd[m]) : Acc(0);
            for (int64_t ky = 0; ky < kh; ++ky) {
              const int64_t iy = oy * s.g.strides[0] - s.g.pad_begin[0] + ky * s.g.dilations[0];
              if (iy < 0 || iy >= ih) continue;
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t ix = ox * s.g.strides[1] - s.g.pad_begin[1] + kx * s.g.dilations[1];
                if (ix < 0 || ix >= iw) continue;
                const T* xp = xd + ((n * ih + iy) * iw + ix) * s.c + c0;
                for (int64_t c = 0; c < cg; ++c)
                  acc += static_cast<Acc>(xp[c]) *
                         static_cast<Acc>(wd[((m * cg + c) * kh + ky) * kw + kx]);
              }
            }
            yd[((n * oh + oy) * ow + ox) * s.m + m] = static_cast<T>(acc);
          }
    fused::apply_epilogue<T>(yd, y.numel(), z ? z->data<T>() : nullptr, s.e);
  });
}

// ---- MaxPoolNhwc / AveragePoolNhwc ------------------------------------------------------

struct PoolSetup {
  Geometry g;
  Shape out_shape;
};

PoolSetup pool_setup(const NodeAttrs& a, const Shape& xs_in) {
  const Shape& xs = nhwc_shape(a, xs_in, "input X");
  if (!a.has_attr("kernel_shape")) a.fail("kernel_shape attribute is required");
  std::vector<int64_t> kernel = a.attr_ints("kernel_shape");
  if (kernel.size() != 2) a.fail("kernel_shape has ", kernel.size(), " values, expected 2");
  const int64_t ceil_mode = a.attr_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) a.fail("ceil_mode ", ceil_mode, " must be 0 or 1");
  conv_pool::WindowOptions opt;
  opt.ceil_mode = ceil_mode == 1;
  opt.pads_below_extent = true;
  PoolSetup s;
  s.g = conv_pool::forward_geometry(a, {xs[1], xs[2]}, kernel, opt);
  s.out_shape = {xs[0], s.g.out[0], s.g.out[1], xs[3]};
  return s;
}

// uint8 pooling (the quantizer's) is on activations whose scale and zero point it keeps; the
// average needs the zero point (attribute zero_point, default 0).
void check_pool_input(const InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kUInt8) return check_float(ctx, 0, "X");
  const int64_t z = ctx.attr_int("zero_point", 0);
  if (z < 0 || z > 255) ctx.fail("zero_point ", z, " must be in [0, 255]");
}

// The uint8 average: zx + round half to even of (sum - inside * zx) / count, the mean of the
// real values in zero-point units (kernels/body/q8_pool.hpp computes the same).
uint8_t q8_mean(int64_t sum, int64_t inside, int64_t count, int64_t zx) {
  if (count <= 0) return static_cast<uint8_t>(zx);
  const int64_t s = sum - inside * zx;
  int64_t q = s / count, r = s - q * count;
  if (r < 0) {
    --q;
    r += count;
  }
  q += 2 * r > count || (2 * r == count && (q & 1));
  return static_cast<uint8_t>(std::clamp<int64_t>(q + zx, 0, 255));
}

void pool_nhwc_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  check_pool_input(ctx);
  if (ctx.num_outputs() != 1) ctx.fail("expected 1 output, got ", ctx.num_outputs());
  const DType t = ctx.input_dtype(0);
  ctx.set_output_unknown(0, t);
  const int64_t cip = ctx.attr_int("count_include_pad", 0);
  if (cip != 0 && cip != 1) ctx.fail("count_include_pad ", cip, " must be 0 or 1");
  ctx.set_output(0, t, pool_setup(ctx, ctx.input_shape(0)).out_shape);
}

template <bool kMax>
void pool_nhwc_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  PoolSetup s = pool_setup(ctx, x.shape());
  const bool include_pad = ctx.attr_int("count_include_pad", 0) == 1;
  const Shape& xs = x.shape();
  const int64_t nb = xs[0], ih = xs[1], iw = xs[2], c = xs[3];
  const int64_t oh = s.g.out[0], ow = s.g.out[1];
  Tensor& y = ctx.output(0);
  // f(iy * iw + ix) for each tap of output (oy, ox) inside the input.
  auto for_taps = [&](int64_t oy, int64_t ox, auto&& f) {
    for (int64_t ky = 0; ky < s.g.kernel[0]; ++ky) {
      const int64_t iy = oy * s.g.strides[0] - s.g.pad_begin[0] + ky * s.g.dilations[0];
      if (iy < 0 || iy >= ih) continue;
      for (int64_t kx = 0; kx < s.g.kernel[1]; ++kx) {
        const int64_t ix = ox * s.g.strides[1] - s.g.pad_begin[1] + kx * s.g.dilations[1];
        if (ix >= 0 && ix < iw) f(iy * iw + ix);
      }
    }
  };
  if (x.dtype() == DType::kUInt8) {  // the largest byte, or the mean, over the taps in the input
    const uint8_t* xd = x.data<uint8_t>();
    uint8_t* yd = y.data<uint8_t>();
    const int64_t zx = ctx.attr_int("zero_point", 0);
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t ch = 0; ch < c; ++ch) {
            int64_t best = 0, sum = 0, inside = 0;
            for_taps(oy, ox, [&](int64_t p) {
              const int64_t v = xd[(n * ih * iw + p) * c + ch];
              best = std::max(best, v);
              sum += v;
              ++inside;
            });
            const int64_t count =
                include_pad ? static_cast<int64_t>(conv_pool::padded_tap_count(s.g, {oy, ox})) : inside;
            yd[((n * oh + oy) * ow + ox) * c + ch] =
                kMax ? static_cast<uint8_t>(best) : q8_mean(sum, inside, count, zx);
          }
    return;
  }
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = y.data<T>();
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          const std::vector<int64_t> oc = {oy, ox};
          for (int64_t ch = 0; ch < c; ++ch) {
            Acc best = std::numeric_limits<Acc>::lowest(), sum = 0;
            int64_t cnt = 0;
            for_taps(oy, ox, [&](int64_t p) {
              const Acc v = static_cast<Acc>(xd[(n * ih * iw + p) * c + ch]);
              if (cnt == 0 || v > best) best = v;
              sum += v;
              ++cnt;
            });
            Acc r;
            if (kMax) {
              r = best;
            } else {
              const double div = include_pad ? conv_pool::padded_tap_count(s.g, oc) : double(cnt);
              r = div > 0 ? sum / static_cast<Acc>(div) : Acc(0);
            }
            yd[((n * oh + oy) * ow + ox) * c + ch] = static_cast<T>(r);
          }
        }
  });
}

// ---- GlobalAveragePoolNhwc ---------------------------------------------------------------

void global_avg_nhwc_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  check_pool_input(ctx);
  const DType t = ctx.input_dtype(0);
  ctx.set_output_unknown(0, t);
  const Shape& xs = nhwc_shape(ctx, ctx.input_shape(0), "input X");
  ctx.set_output(0, t, {xs[0], 1, 1, xs[3]});
}

void global_avg_nhwc_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Shape& xs = nhwc_shape(ctx, x.shape(), "input X");
  const int64_t nb = xs[0], hw = xs[1] * xs[2], c = xs[3];
  Tensor& y = ctx.output(0);
  if (x.dtype() == DType::kUInt8) {
    const uint8_t* xd = x.data<uint8_t>();
    const int64_t zx = ctx.attr_int("zero_point", 0);
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t ch = 0; ch < c; ++ch) {
        int64_t sum = 0;
        for (int64_t p = 0; p < hw; ++p) sum += xd[(n * hw + p) * c + ch];
        y.data<uint8_t>()[n * c + ch] = q8_mean(sum, hw, hw, zx);
      }
    return;
  }
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = y.data<T>();
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t ch = 0; ch < c; ++ch) {
        Acc sum = 0;
        for (int64_t p = 0; p < hw; ++p) sum += static_cast<Acc>(xd[(n * hw + p) * c + ch]);
        yd[n * c + ch] = static_cast<T>(hw > 0 ? sum / static_cast<Acc>(hw) : Acc(0));
      }
  });
}

// ---- DepthToSpaceNhwc ---------------------------------------------------------------------

void depth_to_space_nhwc_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  if (ctx.num_outputs() != 1) ctx.fail("expected 1 output, got ", ctx.num_outputs());
  const DType t = ctx.input_dtype(0);
  if (dtype_size(t) == 0) ctx.fail("X must have a fixed-size element type, got ", dtype_name(t));
  ctx.set_output_unknown(0, t);
  ctx.set_output(0, t, nhwc_depth_to_space(ctx, ctx.input_shape(0)).out_shape);
}

// One element at a time by its bytes: the oracle for the fast step (runtime/fast_copy.cpp).
void depth_to_space_nhwc_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const NhwcDepthToSpace s = nhwc_depth_to_space(ctx, x.shape());
  Tensor& y = ctx.output(0);
  const size_t es = dtype_size(x.dtype());
  if (es == 0) ctx.fail("X must have a fixed-size element type, got ", dtype_name(x.dtype()));
  const auto* xd = static_cast<const unsigned char*>(x.raw());
  auto* yd = static_cast<unsigned char*>(y.raw());
  const int64_t oh = s.h * s.bh, ow = s.w * s.bw, xc = s.bh * s.bw * s.c;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t c = 0; c < s.c; ++c) {
          const int64_t i = oy % s.bh, j = ox % s.bw;
          const int64_t src =
              ((n * s.h + oy / s.bh) * s.w + ox / s.bw) * xc + (i * s.bw + j) * s.c + c;
          const int64_t dst = ((n * oh + oy) * ow + ox) * s.c + c;
          std::memcpy(yd + static_cast<size_t>(dst) * es, xd + static_cast<size_t>(src) * es, es);
        }
}

}  // namespace

NhwcDepthToSpace nhwc_depth_to_space(const NodeAttrs& a, const Shape& xs_in) {
  const Shape& xs = nhwc_shape(a, xs_in, "input X");
  NhwcDepthToSpace s;
  s.bh = a.attr_int("bh", 0);
  s.bw = a.attr_int("bw", 0);
  // Each block size at most the channel count first, so bh * bw cannot overflow.
  if (s.bh < 1 || s.bw < 1 || s.bh > xs[3] || s.bw > xs[3] || xs[3] % (s.bh * s.bw) != 0)
    a.fail("block sizes bh ", s.bh, " and bw ", s.bw, " must be >= 1 and their product divide the ",
           xs[3], " channels of X");
  s.n = xs[0];
  s.h = xs[1];
  s.w = xs[2];
  s.c = xs[3] / (s.bh * s.bw);
  s.out_shape = {s.n, conv_pool::mul_ck(s.h, s.bh, "output height"),
                 conv_pool::mul_ck(s.w, s.bw, "output width"), s.c};
  return s;
}

void add_nhwc_ops(std::vector<OpDef>& ops) {
  ops.push_back(OpDef{"ConvNhwc", "lithe", 1, conv_nhwc_infer, conv_nhwc_compute});
  ops.push_back(OpDef{"MaxPoolNhwc", "lithe", 1, pool_nhwc_infer, pool_nhwc_compute<true>});
  ops.push_back(OpDef{"AveragePoolNhwc", "lithe", 1, pool_nhwc_infer, pool_nhwc_compute<false>});
  ops.push_back(
      OpDef{"GlobalAveragePoolNhwc", "lithe", 1, global_avg_nhwc_infer, global_avg_nhwc_compute});
  ops.push_back(OpDef{"DepthToSpaceNhwc", "lithe", 1, depth_to_space_nhwc_infer,
                      depth_to_space_nhwc_compute});
}

}  // namespace lithe::ops
