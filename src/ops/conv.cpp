// Op family: conv (Conv, ConvTranspose, ConvInteger). See ops/op.hpp for the contract.
//
// The kernels are direct: for every output position they walk the kernel taps that land
// inside the input (padding contributes nothing, so padded taps are skipped rather than
// read as zeros). They are the oracle for optimized kernels, so they favour plain loops.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/conv_pool_internal.hpp"
#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using conv_pool::Geometry;

/// Everything a forward convolution needs besides the data.
struct ConvSetup {
  int64_t n = 0, c = 0, m = 0, group = 1;
  Geometry g;
  Shape out_shape;
};

int64_t read_group(const NodeAttrs& a) {
  int64_t group = a.attr_int("group", 1);
  if (group < 1 || group > kMaxTensorElements) a.fail("group ", group, " must be >= 1");
  return group;
}

/// Checks that the kernel_shape attribute, when present, agrees with W's spatial dims.
void check_kernel_shape_attr(const NodeAttrs& a, const std::vector<int64_t>& kernel) {
  if (!a.has_attr("kernel_shape")) return;
  std::vector<int64_t> ks = a.attr_ints("kernel_shape");
  if (ks != kernel)
    a.fail("kernel_shape attribute ", shape_str(ks), " does not match the weight's spatial dims ",
           shape_str(kernel));
}

/// Validates Conv/ConvInteger shapes and attributes. W is (M, C/group, k1..kn).
ConvSetup conv_setup(const NodeAttrs& a, const Shape& xs, const Shape& ws) {
  ConvSetup s;
  std::vector<int64_t> in = conv_pool::spatial_of(a, xs, 3, "input X");
  if (ws.size() != xs.size())
    a.fail("weight W has rank ", ws.size(), " but X has rank ", xs.size(),
           " (expected W = (M, C/group, k1, ...))");
  s.n = xs[0];
  s.c = xs[1];
  s.m = ws[0];
  s.group = read_group(a);
  if (s.c % s.group != 0)
    a.fail("group ", s.group, " does not divide the ", s.c, " input channels");
  if (s.m % s.group != 0)
    a.fail("group ", s.group, " does not divide the ", s.m, " output channels (W dim 0)");
  if (ws[1] * s.group != s.c)
    a.fail("weight W has ", ws[1], " channels per group but X has ", s.c, " channels in ", s.group,
           " group(s) (expected W dim 1 = ", s.c / s.group, ")");
  std::vector<int64_t> kernel(ws.begin() + 2, ws.end());
  check_kernel_shape_attr(a, kernel);
  s.g = conv_pool::forward_geometry(a, in, kernel);
  s.out_shape = {s.n, s.m};
  s.out_shape.insert(s.out_shape.end(), s.g.out.begin(), s.g.out.end());
  return s;
}

void check_bias(const NodeAttrs& a, const Shape& bs, int64_t m) {
  if (bs.size() != 1 || bs[0] != m)
    a.fail("bias B has shape ", shape_str(bs), ", expected 1-D of ", m, " output channels");
}

// ---- Conv ------------------------------------------------------------------------------

// Conv and ConvTranspose: X, W and the optional B share one float type, which the output
// takes (set before the shapes, which may be unknown at build time).
DType infer_float_xwb_types(InferContext& ctx) {
  ctx.expect_inputs(2, 3);
  DType t = ctx.input_dtype(0);
  if (!is_float(t)) ctx.fail("X must be a float tensor, got ", dtype_name(t));
  if (ctx.input_dtype(1) != t)
    ctx.fail("W is ", dtype_name(ctx.input_dtype(1)), " but X is ", dtype_name(t));
  if (ctx.has_input(2) && ctx.input_dtype(2) != t)
    ctx.fail("B is ", dtype_name(ctx.input_dtype(2)), " but X is ", dtype_name(t));
  ctx.set_output_unknown(0, t);
  return t;
}

void conv_infer(InferContext& ctx) {
  const DType t = infer_float_xwb_types(ctx);
  ConvSetup s = conv_setup(ctx, ctx.input_shape(0), ctx.input_shape(1));
  if (ctx.has_input(2)) check_bias(ctx, ctx.input_shape(2), s.m);
  ctx.set_output(0, t, s.out_shape);
}

void conv_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  ConvSetup s = conv_setup(ctx, x.shape(), w.shape());
  if (b) check_bias(ctx, b->shape(), s.m);
  Tensor& y = ctx.output(0);
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    const T* wd = w.data<T>();
    const T* bd = b ? b->data<T>() : nullptr;
    T* yd = y.data<T>();
    const int64_t cg = s.c / s.group, mg = s.m / s.group;
    const int64_t in_sp = conv_pool::product(s.g.in), k_sp = conv_pool::product(s.g.kernel);
    const int64_t out_sp = conv_pool::product(s.g.out);
    for (int64_t n = 0; n < s.n; ++n) {
      for (int64_t m = 0; m < s.m; ++m) {
        const int64_t c0 = (m / mg) * cg;  // first input channel of m's group
        const T* xb = xd + (n * s.c + c0) * in_sp;
        const T* wb = wd + m * cg * k_sp;
        T* yb = yd + (n * s.m + m) * out_sp;
        conv_pool::for_each_coord(s.g.out, [&](const std::vector<int64_t>& oc) {
          Acc acc = 0;
          conv_pool::for_each_tap(s.g, oc, [&](int64_t xo, int64_t ko, const auto&) {
            for (int64_t ci = 0; ci < cg; ++ci)
              acc += static_cast<Acc>(xb[ci * in_sp + xo]) * static_cast<Acc>(wb[ci * k_sp + ko]);
          });
          if (bd) acc += static_cast<Acc>(bd[m]);  // bias last, as y = conv(x, w) + b
          yb[conv_pool::spatial_offset(s.g.out, oc)] = static_cast<T>(acc);
        });
      }
    }
  });
}

// ---- ConvInteger -----------------------------------------------------------------------

bool is_8bit(DType t) { return t == DType::kUInt8 || t == DType::kInt8; }

/// Checks the zero points: x's is a scalar (or one element); w's a scalar or one per output
/// channel.
void check_int_zero_points(const NodeAttrs& a, const Shape* xz, const Shape* wz, int64_t m) {
  if (xz && shape_numel(*xz) != 1)
    a.fail("x_zero_point has shape ", shape_str(*xz), ", expected a scalar");
  if (wz) {
    int64_t k = shape_numel(*wz);
    if (!(wz->size() <= 1 && (k == 1 || k == m)))
      a.fail("w_zero_point has shape ", shape_str(*wz), ", expected a scalar or 1-D of ", m,
             " output channels");
  }
}

void conv_integer_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 4);
  DType xt = ctx.input_dtype(0), wt = ctx.input_dtype(1);
  if (!is_8bit(xt)) ctx.fail("x must be uint8 or int8, got ", dtype_name(xt));
  if (!is_8bit(wt)) ctx.fail("w must be uint8 or int8, got ", dtype_name(wt));
  if (ctx.has_input(2) && ctx.input_dtype(2) != xt)
    ctx.fail("x_zero_point is ", dtype_name(ctx.input_dtype(2)), " but x is ", dtype_name(xt));
  if (ctx.has_input(3) && ctx.input_dtype(3) != wt)
    ctx.fail("w_zero_point is ", dtype_name(ctx.input_dtype(3)), " but w is ", dtype_name(wt));
  ctx.set_output_unknown(0, DType::kInt32);
  ConvSetup s = conv_setup(ctx, ctx.input_shape(0), ctx.input_shape(1));
  Shape xz, wz;
  if (ctx.has_input(2)) xz = ctx.input_shape(2);
  if (ctx.has_input(3)) wz = ctx.input_shape(3);
  check_int_zero_points(ctx, ctx.has_input(2) ? &xz : nullptr, ctx.has_input(3) ? &wz : nullptr,
                        s.m);
  ctx.set_output(0, DType::kInt32, s.out_shape);
}

/// Reads an 8-bit tensor as int32 values.
std::vector<int32_t> widen_8bit(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::kUInt8) {
    const uint8_t* p = t.data<uint8_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  } else {
    const int8_t* p = t.data<int8_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  }
  return v;
}

void conv_integer_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  ConvSetup s = conv_setup(ctx, x.shape(), w.shape());
  const Tensor* xzt = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* wzt = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  check_int_zero_points(ctx, xzt ? &xzt->shape() : nullptr, wzt ? &wzt->shape() : nullptr, s.m);
  const std::vector<int32_t> xv = widen_8bit(x), wv = widen_8bit(w);
  const int32_t xz = xzt ? widen_8bit(*xzt)[0] : 0;
  std::vector<int32_t> wz(static_cast<size_t>(s.m), 0);
  if (wzt) {
    std::vector<int32_t> z = widen_8bit(*wzt);
    for (int64_t m = 0; m < s.m; ++m)
      wz[static_cast<size_t>(m)] = z.size() == 1 ? z[0] : z[static_cast<size_t>(m)];
  }
  int32_t* yd = ctx.output(0).data<int32_t>();
  const int64_t cg = s.c / s.group, mg = s.m / s.group;
  const int64_t in_sp = conv_pool::product(s.g.in), k_sp = conv_pool::product(s.g.kernel);
  const int64_t out_sp = conv_pool::product(s.g.out);
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t m = 0; m < s.m; ++m) {
      const int64_t c0 = (m / mg) * cg;
      const int32_t* xb = xv.data() + (n * s.c + c0) * in_sp;
      const int32_t* wb = wv.data() + m * cg * k_sp;
      const int32_t wzm = wz[static_cast<size_t>(m)];
      int32_t* yb = yd + (n * s.m + m) * out_sp;
      conv_pool::for_each_coord(s.g.out, [&](const std::vector<int64_t>& oc) {
        // Padding holds x_zero_point, so padded taps add (xz - xz) * w = 0 and are skipped.
        // int64 accumulation; the int32 result wraps like a two's-complement int32 sum.
        int64_t acc = 0;
        conv_pool::for_each_tap(s.g, oc, [&](int64_t xo, int64_t ko, const auto&) {
          for (int64_t ci = 0; ci < cg; ++ci)
            acc += int64_t{xb[ci * in_sp + xo] - xz} * int64_t{wb[ci * k_sp + ko] - wzm};
        });
        yb[conv_pool::spatial_offset(s.g.out, oc)] = static_cast<int32_t>(acc);
      });
    }
  }
}

// ---- ConvTranspose ---------------------------------------------------------------------

/// ConvTranspose geometry: `g.in` is the input (the small side), `g.out` the output, and a
/// tap of input position i and kernel index k lands on output i * stride + k * dilation -
/// pad_begin. Pads may be negative when output_shape asks for more than the full result.
struct ConvTransposeSetup {
  int64_t n = 0, c = 0, m = 0, group = 1;
  Geometry g;
  Shape out_shape;
};

ConvTransposeSetup conv_transpose_setup(const NodeAttrs& a, const Shape& xs, const Shape& ws) {
  ConvTransposeSetup s;
  std::vector<int64_t> in = conv_pool::spatial_of(a, xs, 3, "input X");
  const size_t r = in.size();
  if (ws.size() != xs.size())
    a.fail("weight W has rank ", ws.size(), " but X has rank ", xs.size(),
           " (expected W = (C, M/group, k1, ...))");
  s.n = xs[0];
  s.c = xs[1];
  s.group = read_group(a);
  if (ws[0] != s.c) a.fail("weight W has ", ws[0], " input channels (dim 0) but X has ", s.c);
  if (s.c % s.group != 0)
    a.fail("group ", s.group, " does not divide the ", s.c, " input channels");
  s.m = conv_pool::mul_ck(ws[1], s.group, "output channel count");
  std::vector<int64_t> kernel(ws.begin() + 2, ws.end());
  check_kernel_shape_attr(a, kernel);
  for (int64_t k : kernel)
    if (k < 1) a.fail("weight W has spatial size ", k, ", expected >= 1");

  Geometry& g = s.g;
  g.in = in;
  g.kernel = kernel;
  g.strides = conv_pool::read_spatial_ints(a, "strides", r, 1, 1);
  g.dilations = conv_pool::read_spatial_ints(a, "dilations", r, 1, 1);
  std::vector<int64_t> out_pad = conv_pool::read_spatial_ints(a, "output_padding", r, 0, 0);
  conv_pool::AutoPad ap = conv_pool::read_auto_pad(a);
  g.pad_begin.assign(r, 0);
  g.pad_end.assign(r, 0);
  g.out.assign(r, 0);
  if (ap == conv_pool::AutoPad::kNotSet && a.has_attr("pads")) {
    std::vector<int64_t> p = a.attr_ints("pads");
    if (p.size() != 2 * r) a.fail("pads has ", p.size(), " values, expected ", 2 * r);
    for (int64_t v : p)
      if (v < 0 || v > kMaxTensorElements)
        a.fail("pads value ", v, " is out of range, expected 0..", kMaxTensorElements);
    for (size_t d = 0; d < r; ++d) {
      g.pad_begin[d] = p[d];
      g.pad_end[d] = p[d + r];
    }
  }
  std::vector<int64_t> req;  // requested output sizes (output_shape), empty if none
  if (a.has_attr("output_shape")) {
    std::vector<int64_t> os = a.attr_ints("output_shape");
    // Spatial sizes only, or the full (N, M, ...) shape: take the trailing spatial part.
    if (os.size() != r && os.size() != r + 2)
      a.fail("output_shape has ", os.size(), " values, expected ", r, " spatial sizes");
    req.assign(os.end() - static_cast<std::ptrdiff_t>(r), os.end());
    for (int64_t v : req)
      if (v < 1 || v > kMaxTensorElements) a.fail("output_shape value ", v, " must be >= 1");
  }
  for (size_t d = 0; d < r; ++d) {
    const int64_t s_ = g.strides[d];
    if (out_pad[d] >= s_ && out_pad[d] >= g.dilations[d])
      a.fail("output_padding ", out_pad[d], " must be smaller than the stride ", s_,
             " or the dilation ", g.dilations[d]);
    // Full (unpadded) result size: stride * (in - 1) + output_padding + kernel extent.
    const int64_t ext = conv_pool::add_ck(
        conv_pool::mul_ck(kernel[d] - 1, g.dilations[d], "kernel extent"), 1, "kernel extent");
    const int64_t full = conv_pool::add_ck(
        conv_pool::add_ck(conv_pool::mul_ck(s_, in[d] > 0 ? in[d] - 1 : 0, "output size"),
                          out_pad[d], "output size"),
        ext, "output size");
    const bool same = ap == conv_pool::AutoPad::kSameUpper || ap == conv_pool::AutoPad::kSameLower;
    if (!req.empty() || same) {
      const int64_t out = !req.empty() ? req[d] : conv_pool::mul_ck(in[d], s_, "output size");
      const int64_t total = full - out;
      // The spec's split: SAME_UPPER puts the odd unit at the end, otherwise at the
      // beginning. Floor division so a negative total (output_shape beyond the full
      // result) extends the end.
      const int64_t half = conv_pool::floor_div(total, 2);
      if (ap == conv_pool::AutoPad::kSameUpper) {
        g.pad_begin[d] = half;
        g.pad_end[d] = total - half;
      } else {
        g.pad_begin[d] = total - half;
        g.pad_end[d] = half;
      }
      g.out[d] = out;
    } else if (ap == conv_pool::AutoPad::kValid) {
      g.out[d] = full;
    } else {
      g.out[d] = full - g.pad_begin[d] - g.pad_end[d];
    }
    if (g.out[d] < 1)
      a.fail("output size ", g.out[d], " < 1 in spatial dim ", d, " (pads remove more than the ",
             full, " elements of the full result)");
  }
  s.out_shape = {s.n, s.m};
  s.out_shape.insert(s.out_shape.end(), g.out.begin(), g.out.end());
  return s;
}

void conv_transpose_infer(InferContext& ctx) {
  const DType t = infer_float_xwb_types(ctx);
  ConvTransposeSetup s = conv_transpose_setup(ctx, ctx.input_shape(0), ctx.input_shape(1));
  if (ctx.has_input(2)) check_bias(ctx, ctx.input_shape(2), s.m);
  ctx.set_output(0, t, s.out_shape);
}

void conv_transpose_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  ConvTransposeSetup s = conv_transpose_setup(ctx, x.shape(), w.shape());
  if (b) check_bias(ctx, b->shape(), s.m);
  const Geometry& g = s.g;
  const size_t r = g.rank();
  Tensor& y = ctx.output(0);
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    const T* wd = w.data<T>();
    const T* bd = b ? b->data<T>() : nullptr;
    const int64_t cg = s.c / s.group, mg = s.m / s.group;
    const int64_t in_sp = conv_pool::product(g.in), k_sp = conv_pool::product(g.kernel);
    const int64_t out_sp = conv_pool::product(g.out);
    // Scatter form, straight from the definition: input i reaches output
    // o = i * stride + k * dilation - pad_begin through tap k. Sums go to an Acc buffer so
    // half types round once.
    std::vector<Acc> acc(static_cast<size_t>(out_sp));
    std::vector<int64_t> oc(r);
    for (int64_t n = 0; n < s.n; ++n) {
      for (int64_t m = 0; m < s.m; ++m) {
        const int64_t grp = m / mg, mi = m % mg;
        std::fill(acc.begin(), acc.end(), Acc(0));
        for (int64_t ci = 0; ci < cg; ++ci) {
          const int64_t c = grp * cg + ci;
          const T* xb = xd + (n * s.c + c) * in_sp;
          const T* wb = wd + (c * mg + mi) * k_sp;
          conv_pool::for_each_coord(g.in, [&](const std::vector<int64_t>& icoord) {
            const Acc xv = static_cast<Acc>(xb[conv_pool::spatial_offset(g.in, icoord)]);
            conv_pool::for_each_coord(g.kernel, [&](const std::vector<int64_t>& kc) {
              for (size_t d = 0; d < r; ++d) {
                oc[d] = icoord[d] * g.strides[d] + kc[d] * g.dilations[d] - g.pad_begin[d];
                if (oc[d] < 0 || oc[d] >= g.out[d]) return;  // cropped by pads
              }
              acc[static_cast<size_t>(conv_pool::spatial_offset(g.out, oc))] +=
                  xv * static_cast<Acc>(wb[conv_pool::spatial_offset(g.kernel, kc)]);
            });
          });
        }
        const Acc bias = bd ? static_cast<Acc>(bd[m]) : Acc(0);
        T* yb = y.data<T>() + (n * s.m + m) * out_sp;
        for (int64_t i = 0; i < out_sp; ++i)
          yb[i] = static_cast<T>(acc[static_cast<size_t>(i)] + bias);
      }
    }
  });
}

}  // namespace

void add_conv_ops(std::vector<OpDef>& ops) {
  ops.push_back(OpDef{"Conv", "", 1, conv_infer, conv_compute});
  ops.push_back(OpDef{"ConvTranspose", "", 1, conv_transpose_infer, conv_transpose_compute});
  ops.push_back(OpDef{"ConvInteger", "", 10, conv_integer_infer, conv_integer_compute});
}

}  // namespace lithe::ops
