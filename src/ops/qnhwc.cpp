// Op family: qnhwc (domain "lithe"). The INT8 channels-last convolution the quantizer
// (passes/quantize.cpp) puts in place of a ConvNhwc:
//
//   QConvNhwc(X u8[N,H,W,C], x_scale f32[], x_zero_point u8[], W i8[M,C/group,kH,kQW],
//             w_scale f32[M], y_scale f32[], y_zero_point u8[], B i32[M]?,
//             Z u8[N,OH,OW,M]?, z_scale f32[]?, z_zero_point u8[]?) -> Y u8[N,OH,OW,M]
//
// Conv's attributes plus the fused epilogue of ConvNhwc (activation, activation_params).
// Weights are symmetric per output channel (no zero point); B is the bias quantized with
// scale x_scale * w_scale[m]. The output stage is quant/qconv.hpp: fixed-point
// requantization, or the float epilogue when there is a residual Z or an activation that is
// not a clamp. The reference kernel below is the oracle of the INT8 runtime step.
//
//   LookupU8(X u8[any], table u8[256] or u8[T, 256], index u8[C]?) -> Y u8[same as X]:
//   Y = table[X], or per channel of X's last axis (size C) Y[..., c] = table[index[c], X[..., c]]
//   (T distinct tables: an equalized affine map has a few). The quantizer makes
//   it from a chain of elementwise float ops between a DequantizeLinear and a QuantizeLinear
//   (an activation, a scalar or per-channel affine map...), whose result depends only on the
//   uint8 code (and the channel).
//
//   QBinaryU8(A u8, a_scale f32[], a_zero_point u8[], B u8, b_scale f32[], b_zero_point u8[],
//             y_scale f32[], y_zero_point u8[]) -> Y u8[broadcast(A, B)]
//   Attribute op: "Add" or "Mul". Multidirectional broadcasting; each byte is
//   quant/qbinary.hpp's integer form of DequantizeLinear -> op -> QuantizeLinear.
//
//   QMatMulU8(A u8[..., M, K], a_scale f32[], a_zero_point u8[], B u8[..., K, N],
//             b_scale f32[], b_zero_point u8[], y_scale f32[], y_zero_point u8[])
//     -> Y u8[broadcast(A's and B's leading dims), M, N]
//   MatMul of two activations (both of rank >= 2), batches broadcast as ONNX MatMul; each
//   byte is quant/qmatmul.hpp's: int32 sum of (a - za)(b - zb), then fixed-point
//   requantization by a_scale * b_scale / y_scale.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/conv_pool_internal.hpp"
#include "ops/families.hpp"
#include "ops/fused_internal.hpp"
#include "ops/nhwc_internal.hpp"
#include "ops/qnhwc.hpp"
#include "ops/util.hpp"
#include "quant/qbinary.hpp"
#include "quant/qconv.hpp"
#include "quant/qmatmul.hpp"

namespace lithe::ops {
namespace {

// The conv's shapes and window, and weights whose sums fit int32.
NhwcConv qconv_setup(const NodeAttrs& a, const Shape& xs, const Shape& ws) {
  NhwcConv s = nhwc_conv(a, xs, ws);
  // At most quant::kMaxReduction products per output.
  const int64_t per = conv_pool::mul_ck(conv_pool::mul_ck(ws[1], ws[2], "W"), ws[3], "W");
  if (per > quant::kMaxReduction)
    a.fail("weight W ", shape_str(ws), ": ", per, " products per output can overflow the int32 sums");
  return s;
}

void expect_type(const InferContext& ctx, size_t i, DType t, const char* what) {
  if (ctx.input_dtype(i) != t)
    ctx.fail(what, " must be ", dtype_name(t), ", got ", dtype_name(ctx.input_dtype(i)));
}

void expect_scalar(const InferContext& ctx, size_t i, DType t, const char* what) {
  expect_type(ctx, i, t, what);
  const Shape& s = ctx.input_shape(i);
  if (shape_numel(s) != 1) ctx.fail(what, " must hold one value, has shape ", shape_str(s));
}

void qconv_infer(InferContext& ctx) {
  ctx.expect_inputs(7, 11);
  expect_type(ctx, kQX, DType::kUInt8, "X");
  ctx.set_output_unknown(0, DType::kUInt8);
  expect_scalar(ctx, kQXScale, DType::kFloat32, "x_scale");
  expect_scalar(ctx, kQXZp, DType::kUInt8, "x_zero_point");
  expect_type(ctx, kQW, DType::kInt8, "W");
  expect_type(ctx, kQWScale, DType::kFloat32, "w_scale");
  expect_scalar(ctx, kQYScale, DType::kFloat32, "y_scale");
  expect_scalar(ctx, kQYZp, DType::kUInt8, "y_zero_point");
  NhwcConv s = qconv_setup(ctx, ctx.input_shape(kQX), ctx.input_shape(kQW));
  if (ctx.input_shape(kQWScale) != Shape{s.m})
    ctx.fail("w_scale has shape ", shape_str(ctx.input_shape(kQWScale)), ", expected [", s.m, "]");
  if (ctx.has_input(kQB)) {
    expect_type(ctx, kQB, DType::kInt32, "bias B");
    if (ctx.input_shape(kQB) != Shape{s.m})
      ctx.fail("bias B has shape ", shape_str(ctx.input_shape(kQB)), ", expected [", s.m, "]");
  }
  if (ctx.has_input(kQZ)) {
    expect_type(ctx, kQZ, DType::kUInt8, "residual Z");
    if (ctx.input_shape(kQZ) != s.out_shape)
      ctx.fail("residual Z has shape ", shape_str(ctx.input_shape(kQZ)), ", expected ",
               shape_str(s.out_shape));
    if (!ctx.has_input(kQZScale) || !ctx.has_input(kQZZp))
      ctx.fail("residual Z needs z_scale and z_zero_point");
    expect_scalar(ctx, kQZScale, DType::kFloat32, "z_scale");
    expect_scalar(ctx, kQZZp, DType::kUInt8, "z_zero_point");
  }
  ctx.set_output(0, DType::kUInt8, s.out_shape);
}

float positive_scale(const NodeAttrs& a, const Tensor& t, int64_t i, const char* what) {
  const float v = t.data<float>()[i];
  if (!(v > 0) || !std::isfinite(v)) a.fail(what, " value ", v, " must be positive and finite");
  return v;
}

}  // namespace

quant::QConvOutput qconv_output_stage(const NodeAttrs& a, const std::vector<const Tensor*>& in,
                                      int64_t channels) {
  const Tensor& ws = *in[kQWScale];
  std::vector<float> w_scale(static_cast<size_t>(channels));
  for (int64_t m = 0; m < channels; ++m) w_scale[m] = positive_scale(a, ws, m, "w_scale");
  fused::Epilogue act;
  std::string err =
      fused::parse_epilogue(a.attr_string("activation", ""), a.attr_floats("activation_params", {}),
                            a.attr_floats("activation_affine", {}), &act);
  if (!err.empty()) a.fail(err);
  const auto& node_in = a.node().inputs;
  const bool has_z = node_in.size() > kQZ && node_in[kQZ] >= 0;
  return quant::make_qconv_output(
      positive_scale(a, *in[kQXScale], 0, "x_scale"), w_scale.data(), channels,
      positive_scale(a, *in[kQYScale], 0, "y_scale"), in[kQYZp]->data<uint8_t>()[0], has_z,
      has_z ? positive_scale(a, *in[kQZScale], 0, "z_scale") : 1.0f,
      has_z ? in[kQZZp]->data<uint8_t>()[0] : 0, act);
}

namespace {

void qconv_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(kQX);
  const Tensor& w = ctx.input(kQW);
  NhwcConv s = qconv_setup(ctx, x.shape(), w.shape());
  std::vector<const Tensor*> in(ctx.num_inputs(), nullptr);
  for (size_t i = 0; i < in.size(); ++i)
    if (ctx.has_input(i)) in[i] = &ctx.input(i);
  const quant::QConvOutput out = qconv_output_stage(ctx, in, s.m);
  const int32_t xz = ctx.input(kQXZp).data<uint8_t>()[0];
  const int32_t* bias = ctx.has_input(kQB) ? ctx.input(kQB).data<int32_t>() : nullptr;
  const uint8_t* z = ctx.has_input(kQZ) ? ctx.input(kQZ).data<uint8_t>() : nullptr;
  const uint8_t* xd = x.data<uint8_t>();
  const int8_t* wd = w.data<int8_t>();
  uint8_t* yd = ctx.output(0).data<uint8_t>();
  const int64_t cg = s.c / s.group, mg = s.m / s.group;
  const int64_t kh = s.g.kernel[0], kw = s.g.kernel[1];
  const int64_t ih = s.g.in[0], iw = s.g.in[1], oh = s.g.out[0], ow = s.g.out[1];
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t m = 0; m < s.m; ++m) {
          const int64_t c0 = (m / mg) * cg;
          int64_t acc = bias ? bias[m] : 0;
          for (int64_t ky = 0; ky < kh; ++ky) {
            const int64_t iy = oy * s.g.strides[0] - s.g.pad_begin[0] + ky * s.g.dilations[0];
            if (iy < 0 || iy >= ih) continue;
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t ix = ox * s.g.strides[1] - s.g.pad_begin[1] + kx * s.g.dilations[1];
              if (ix < 0 || ix >= iw) continue;
              const uint8_t* xp = xd + ((n * ih + iy) * iw + ix) * s.c + c0;
              for (int64_t c = 0; c < cg; ++c)
                acc += (int64_t{xp[c]} - xz) * wd[((m * cg + c) * kh + ky) * kw + kx];
            }
          }
          // The runtime accumulates in int32 (it wraps like the kernels would); the quantizer
          // keeps |acc| far below 2^31 (at most 255 * 127 per tap).
          const int64_t pix = (n * oh + oy) * ow + ox;
          yd[pix * s.m + m] = quant::qconv_output(static_cast<int32_t>(static_cast<uint32_t>(acc)),
                                                  m, z ? z[pix * s.m + m] : 0, out);
        }
}

void lookup_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 3);
  expect_type(ctx, 0, DType::kUInt8, "X");
  expect_type(ctx, 1, DType::kUInt8, "table");
  ctx.set_output_unknown(0, DType::kUInt8);
  const Shape& ts = ctx.input_shape(1);
  const Shape& xs = ctx.input_shape(0);
  if (ctx.num_inputs() == 2) {
    if (ts != Shape{256}) ctx.fail("table must have shape [256] (or [T, 256] with an index), has ", shape_str(ts));
  } else {
    expect_type(ctx, 2, DType::kUInt8, "index");
    const Shape& is = ctx.input_shape(2);
    if (ts.size() != 2 || ts[1] != 256 || ts[0] < 1)
      ctx.fail("table must have shape [T, 256] with an index, has ", shape_str(ts));
    if (xs.empty() || is != Shape{xs.back()})
      ctx.fail("index must have shape [C] (C: the last axis of X, ", shape_str(xs), "), has ", shape_str(is));
    if (ctx.input_value_known(2)) {
      const Tensor& idx = ctx.input_value(2);
      for (int64_t i = 0; i < idx.numel(); ++i)
        if (idx.data<uint8_t>()[i] >= ts[0])
          ctx.fail("index[", i, "] = ", int(idx.data<uint8_t>()[i]), " names no table of ", ts[0]);
    }
  }
  ctx.set_output(0, DType::kUInt8, xs);
}

void lookup_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const uint8_t* table = ctx.input(1).data<uint8_t>();
  const uint8_t* xd = x.data<uint8_t>();
  uint8_t* yd = ctx.output(0).data<uint8_t>();
  if (!ctx.has_input(2)) {
    for (int64_t i = 0; i < x.numel(); ++i) yd[i] = table[xd[i]];
    return;
  }
  const Tensor& index = ctx.input(2);
  const int64_t c = index.numel(), tables = ctx.input(1).shape()[0];
  for (int64_t i = 0; i < c; ++i)
    if (index.data<uint8_t>()[i] >= tables)
      ctx.fail("index[", i, "] = ", int(index.data<uint8_t>()[i]), " names no table of ", tables);
  for (int64_t i = 0; i < x.numel(); ++i) yd[i] = table[index.data<uint8_t>()[i % c] * 256 + xd[i]];
}

// The inputs of the two-operand INT8 ops, lithe.QBinaryU8 and lithe.QMatMulU8.
enum { kOA, kOAScale, kOAZp, kOB, kOBScale, kOBZp, kOYScale, kOYZp };

// Their operand types and scalar scales / zero points; the output is uint8.
void expect_two_operand_u8(InferContext& ctx) {
  ctx.expect_inputs(8, 8);
  expect_type(ctx, kOA, DType::kUInt8, "A");
  expect_type(ctx, kOB, DType::kUInt8, "B");
  ctx.set_output_unknown(0, DType::kUInt8);
  expect_scalar(ctx, kOAScale, DType::kFloat32, "a_scale");
  expect_scalar(ctx, kOAZp, DType::kUInt8, "a_zero_point");
  expect_scalar(ctx, kOBScale, DType::kFloat32, "b_scale");
  expect_scalar(ctx, kOBZp, DType::kUInt8, "b_zero_point");
  expect_scalar(ctx, kOYScale, DType::kFloat32, "y_scale");
  expect_scalar(ctx, kOYZp, DType::kUInt8, "y_zero_point");
}

// Their scales (checked positive and finite) and zero points, for a, b and y.
struct OperandParams {
  float a_scale, b_scale, y_scale;
  int32_t a_zp, b_zp, y_zp;
};
OperandParams operand_params(ComputeContext& ctx) {
  auto scale = [&](size_t i, const char* what) {
    const float s = ctx.input(i).data<float>()[0];
    if (!(s > 0) || !std::isfinite(s)) ctx.fail(what, " must be positive and finite, got ", s);
    return s;
  };
  auto zp = [&](size_t i) { return static_cast<int32_t>(ctx.input(i).data<uint8_t>()[0]); };
  return {scale(kOAScale, "a_scale"),
          scale(kOBScale, "b_scale"),
          scale(kOYScale, "y_scale"),
          zp(kOAZp),
          zp(kOBZp),
          zp(kOYZp)};
}

bool qbinary_mul(const NodeAttrs& a) {
  const std::string op = a.attr_string("op", "");
  if (op != "Add" && op != "Mul") a.fail("attribute op must be Add or Mul, got '", op, "'");
  return op == "Mul";
}

void qbinary_infer(InferContext& ctx) {
  ctx.expect_inputs(8, 8);
  qbinary_mul(ctx);
  expect_two_operand_u8(ctx);
  ctx.set_output(0, DType::kUInt8, broadcast_shapes(ctx.input_shape(kOA), ctx.input_shape(kOB)));
}

void qbinary_compute(ComputeContext& ctx) {
  const OperandParams o = operand_params(ctx);
  const quant::QBinary p = quant::make_qbinary(qbinary_mul(ctx), o.a_scale, o.a_zp, o.b_scale,
                                               o.b_zp, o.y_scale, o.y_zp);
  const Tensor& a = ctx.input(kOA);
  const Tensor& b = ctx.input(kOB);
  Tensor& y = ctx.output(0);
  const uint8_t* ad = a.data<uint8_t>();
  const uint8_t* bd = b.data<uint8_t>();
  uint8_t* yd = y.data<uint8_t>();
  for_each_broadcast<2>(
      y.shape(), {broadcast_strides(a.shape(), y.shape()), broadcast_strides(b.shape(), y.shape())},
      [&](int64_t i, int64_t oa, int64_t ob) { yd[i] = quant::qbinary(ad[oa], bd[ob], p); });
}

// The output shape for A and B (rank >= 2, inner dims agree, K short enough for int32).
Shape qmatmul_shape(const NodeAttrs& ctx, const Shape& as, const Shape& bs) {
  if (as.size() < 2 || bs.size() < 2)
    ctx.fail("A ", shape_str(as), " and B ", shape_str(bs), " must both have rank >= 2");
  const int64_t k = as.back();
  if (bs[bs.size() - 2] != k)
    ctx.fail("A ", shape_str(as), " and B ", shape_str(bs), " have mismatched inner dimensions");
  if (k > quant::kMaxQMatMulReduction)
    ctx.fail("A ", shape_str(as), ": ", k, " products per output can overflow the int32 sums");
  Shape out = broadcast_shapes(Shape(as.begin(), as.end() - 2), Shape(bs.begin(), bs.end() - 2));
  out.push_back(as[as.size() - 2]);
  out.push_back(bs.back());
  return out;
}

void qmatmul_infer(InferContext& ctx) {
  expect_two_operand_u8(ctx);
  ctx.set_output(0, DType::kUInt8, qmatmul_shape(ctx, ctx.input_shape(kOA), ctx.input_shape(kOB)));
}

void qmatmul_compute(ComputeContext& ctx) {
  const OperandParams o = operand_params(ctx);
  const quant::Multiplier mult = quant::qmatmul_multiplier(o.a_scale, o.b_scale, o.y_scale);
  const int32_t za = o.a_zp, zb = o.b_zp, zy = o.y_zp;
  const Tensor& a = ctx.input(kOA);
  const Tensor& b = ctx.input(kOB);
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const Shape out = qmatmul_shape(ctx, as, bs);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  const Shape batch(out.begin(), out.end() - 2);
  const std::array<std::vector<int64_t>, 2> st{
      broadcast_strides(Shape(as.begin(), as.end() - 2), batch),
      broadcast_strides(Shape(bs.begin(), bs.end() - 2), batch)};
  const uint8_t* ad = a.data<uint8_t>();
  const uint8_t* bd = b.data<uint8_t>();
  uint8_t* yd = ctx.output(0).data<uint8_t>();
  for_each_broadcast<2>(batch, st, [&](int64_t bi, int64_t ao, int64_t bo) {
    const uint8_t* am = ad + ao * m * k;
    const uint8_t* bm = bd + bo * k * n;
    uint8_t* ym = yd + bi * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        int32_t acc = 0;  // exact: k <= kMaxQMatMulReduction
        for (int64_t kk = 0; kk < k; ++kk) acc += (am[i * k + kk] - za) * (bm[kk * n + j] - zb);
        ym[i * n + j] = static_cast<uint8_t>(quant::requantize(acc, mult, zy, 0, 255));
      }
  });
}

}  // namespace

void add_qnhwc_ops(std::vector<OpDef>& ops) {
  ops.push_back(OpDef{"QConvNhwc", "lithe", 1, qconv_infer, qconv_compute});
  ops.push_back(OpDef{"LookupU8", "lithe", 1, lookup_infer, lookup_compute});
  ops.push_back(OpDef{"QBinaryU8", "lithe", 1, qbinary_infer, qbinary_compute});
  ops.push_back(OpDef{"QMatMulU8", "lithe", 1, qmatmul_infer, qmatmul_compute});
}

}  // namespace lithe::ops
