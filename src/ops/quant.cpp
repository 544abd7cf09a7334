// Op family: quant (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear here; the
// QLinear* ops live in quant_qlinear.cpp). See ops/op.hpp for the contract.
#include <algorithm>
#include <cmath>

#include "ops/families.hpp"
#include "ops/quant_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using namespace quant_detail;

// How a scale / zero-point tensor maps onto the elements of the data tensor: one value for
// everything, one per index along `axis`, or (opset 21) one per block of `block` indices
// along `axis`.
struct QuantLayout {
  bool per_tensor = true;
  int64_t axis_dim = 1;  // data extent along axis
  int64_t inner = 1;     // elements after axis
  int64_t block = 0;     // > 0 for blocked quantization
  int64_t nblocks = 1;   // ceil(axis_dim / block)

  size_t index(int64_t i) const {
    if (per_tensor) return 0;
    int64_t a = (i / inner) % axis_dim;
    if (block == 0) return static_cast<size_t>(a);
    int64_t outer = i / (inner * axis_dim);
    return static_cast<size_t>((outer * nblocks + a / block) * inner + i % inner);
  }
};

// Validates the scale (and zero point) shapes against the data shape and derives the
// layout. `scale_name` / `zp_name` name the inputs in messages.
QuantLayout quant_layout(const NodeAttrs& ctx, const Shape& x, const Shape& scale, const Shape* zp,
                         const char* scale_name, const char* zp_name) {
  if (zp && *zp != scale)
    ctx.fail("input '", zp_name, "' has shape ", shape_str(*zp), " but '", scale_name,
             "' has shape ", shape_str(scale), "; they must match");
  QuantLayout l;
  int64_t block = ctx.opset() >= 21 ? ctx.attr_int("block_size", 0) : 0;
  if (block < 0) ctx.fail("block_size must be >= 0, got ", block);
  bool scalar_like = scale.size() <= 1 && shape_numel(scale) == 1;
  if (scalar_like && (block == 0 || scale.size() != x.size())) return l;  // per tensor
  if (ctx.opset() < 13)
    ctx.fail("input '", scale_name, "' must be a scalar before opset 13, got shape ",
             shape_str(scale));
  const int64_t rank = static_cast<int64_t>(x.size());
  if (rank == 0)
    ctx.fail("input '", scale_name, "' has shape ", shape_str(scale),
             " but per-axis quantization needs a data tensor of rank >= 1");
  int64_t axis_attr = ctx.attr_int("axis", 1);
  if (axis_attr < -rank || axis_attr >= rank)
    ctx.fail("axis ", axis_attr, " is out of range for data of rank ", rank);
  const size_t axis = static_cast<size_t>(axis_attr < 0 ? axis_attr + rank : axis_attr);
  l.per_tensor = false;
  l.axis_dim = x[axis];
  for (size_t d = axis + 1; d < x.size(); ++d) l.inner *= x[d];
  if (block == 0) {
    if (scale.size() != 1 || scale[0] != x[axis])
      ctx.fail("input '", scale_name, "' has shape ", shape_str(scale),
               " but per-axis quantization along axis ", axis, " needs a 1-D tensor of length ",
               x[axis]);
    return l;
  }
  // Blocked: same rank as x, axis dim = ceil(x[axis] / block), other dims equal.
  l.block = block;
  l.nblocks = x[axis] / block + (x[axis] % block != 0);  // ceil, without overflow
  bool ok = scale.size() == x.size();
  for (size_t d = 0; ok && d < x.size(); ++d) ok = scale[d] == (d == axis ? l.nblocks : x[d]);
  if (!ok)
    ctx.fail("input '", scale_name, "' has shape ", shape_str(scale), " but blocked quantization",
             " of shape ", shape_str(x), " along axis ", axis, " with block_size ", block,
             " needs the same shape with ", l.nblocks, " along the axis");
  if (l.axis_dim == 0) l.per_tensor = true;  // nothing to index
  return l;
}

// ---- QuantizeLinear ----

bool quantize_input_ok(DType t) { return is_float(t) || t == DType::kInt32; }

// The output element type: the zero point's type, else output_dtype (opset 21), else uint8.
DType quantize_out_dtype(const NodeAttrs& ctx, bool has_zp, DType zp_type) {
  int64_t od = ctx.opset() >= 21 ? ctx.attr_int("output_dtype", 0) : 0;
  DType attr_type = DType::kUndefined;
  if (od != 0) {
    if (od < 0 || od > 1000) ctx.fail("output_dtype ", od, " is not a valid element type");
    attr_type = dtype_from_onnx(static_cast<int32_t>(od), "QuantizeLinear output_dtype");
    if (!is_quant_int(attr_type))
      ctx.fail("output_dtype ", dtype_name(attr_type),
               " is not supported (expected uint8, int8, uint16 or int16)");
  }
  if (has_zp) {
    if (!is_quant_int(zp_type))
      ctx.fail("input 'y_zero_point' has type ", dtype_name(zp_type),
               ", expected uint8, int8, uint16 or int16");
    if (attr_type != DType::kUndefined && attr_type != zp_type)
      ctx.fail("output_dtype ", dtype_name(attr_type), " differs from the type of 'y_zero_point' (",
               dtype_name(zp_type), ")");
    return zp_type;
  }
  return attr_type != DType::kUndefined ? attr_type : DType::kUInt8;
}

void infer_quantize(InferContext& ctx) {
  ctx.expect_inputs(2, 3);
  DType xt = ctx.input_dtype(0);
  if (!quantize_input_ok(xt))
    ctx.fail("input 'x' has type ", dtype_name(xt), ", expected a float type or int32");
  check_scale_dtype(ctx, ctx.input_dtype(1), "y_scale", true);
  bool has_zp = ctx.has_input(2);
  DType yt = quantize_out_dtype(ctx, has_zp, has_zp ? ctx.input_dtype(2) : DType::kUndefined);
  const Shape& xs = ctx.input_shape(0);
  quant_layout(ctx, xs, ctx.input_shape(1), has_zp ? &ctx.input_shape(2) : nullptr, "y_scale",
               "y_zero_point");
  if (ctx.input_value_known(1)) checked_scales(ctx, ctx.input_value(1), "y_scale");
  ctx.set_output(0, yt, xs);
}

void compute_quantize(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& s = ctx.input(1);
  const Tensor* z = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  QuantLayout l =
      quant_layout(ctx, x.shape(), s.shape(), z ? &z->shape() : nullptr, "y_scale", "y_zero_point");
  std::vector<double> scale = checked_scales(ctx, s, "y_scale");
  std::vector<int64_t> zp = z ? zero_points(*z) : std::vector<int64_t>(scale.size(), 0);
  Tensor& y = ctx.output(0);
  visit_dtype(x.dtype(), [&](auto xtag) {
    using X = typename decltype(xtag)::type;
    if constexpr (std::is_same_v<X, bool> ||
                  (std::is_integral_v<X> && !std::is_same_v<X, int32_t>)) {
      ctx.fail("input 'x' has type ", dtype_name(x.dtype()), ", expected a float type or int32");
    } else {
      // float32/16 data divide in float like the reference; double and int32 in double.
      using C = std::conditional_t<std::is_same_v<X, double> || std::is_same_v<X, int32_t>, double,
                                   float>;
      const X* xp = x.data<X>();
      visit_qint(y.dtype(), false, [&](auto qtag) {
        using Q = typename decltype(qtag)::type;
        Q* yp = y.data<Q>();
        for (int64_t i = 0; i < x.numel(); ++i) {
          size_t p = l.index(i);
          C v = static_cast<C>(static_cast<compute_t<X>>(xp[i])) / static_cast<C>(scale[p]);
          yp[i] = round_saturate<Q>(static_cast<double>(v), zp[p]);
        }
      });
    }
  });
}

// ---- DequantizeLinear ----

void check_dequant_types(const NodeAttrs& ctx, DType xt, DType st, bool has_zp, DType zt) {
  if (!is_quant_int(xt) && xt != DType::kInt32)
    ctx.fail("input 'x' has type ", dtype_name(xt),
             ", expected uint8, int8, uint16, int16 or int32");
  check_scale_dtype(ctx, st, "x_scale");
  if (has_zp && zt != xt)
    ctx.fail("input 'x_zero_point' has type ", dtype_name(zt), " but 'x' has type ", dtype_name(xt),
             "; they must match");
}

// int32 data has no zero point: the spec requires it to be 0 when given.
void check_int32_zero_point(const NodeAttrs& ctx, DType xt, const std::vector<int64_t>& zp) {
  if (xt != DType::kInt32) return;
  for (int64_t v : zp)
    if (v != 0) ctx.fail("input 'x_zero_point' must be 0 for int32 data, got ", v);
}

void infer_dequantize(InferContext& ctx) {
  ctx.expect_inputs(2, 3);
  bool has_zp = ctx.has_input(2);
  DType xt = ctx.input_dtype(0);
  DType st = ctx.input_dtype(1);
  check_dequant_types(ctx, xt, st, has_zp, has_zp ? ctx.input_dtype(2) : DType::kUndefined);
  const Shape& xs = ctx.input_shape(0);
  quant_layout(ctx, xs, ctx.input_shape(1), has_zp ? &ctx.input_shape(2) : nullptr, "x_scale",
               "x_zero_point");
  if (ctx.input_value_known(1)) checked_scales(ctx, ctx.input_value(1), "x_scale");
  if (has_zp && ctx.input_value_known(2))
    check_int32_zero_point(ctx, xt, zero_points(ctx.input_value(2)));
  ctx.set_output(0, st, xs);
}

void compute_dequantize(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& s = ctx.input(1);
  const Tensor* z = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  check_dequant_types(ctx, x.dtype(), s.dtype(), z != nullptr, z ? z->dtype() : DType::kUndefined);
  QuantLayout l =
      quant_layout(ctx, x.shape(), s.shape(), z ? &z->shape() : nullptr, "x_scale", "x_zero_point");
  std::vector<double> scale = checked_scales(ctx, s, "x_scale");
  std::vector<int64_t> zp = z ? zero_points(*z) : std::vector<int64_t>(scale.size(), 0);
  check_int32_zero_point(ctx, x.dtype(), zp);
  Tensor& y = ctx.output(0);
  visit_float_dtype(y.dtype(), [&](auto ytag) {
    using Y = typename decltype(ytag)::type;
    using C = compute_t<Y>;
    Y* yp = y.data<Y>();
    visit_qint(x.dtype(), true, [&](auto xtag) {
      using X = typename decltype(xtag)::type;
      const X* xp = x.data<X>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        size_t p = l.index(i);
        C v = (static_cast<C>(xp[i]) - static_cast<C>(zp[p])) * static_cast<C>(scale[p]);
        yp[i] = static_cast<Y>(v);
      }
    });
  });
}

// ---- DynamicQuantizeLinear ----

void infer_dynamic_quantize(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  if (ctx.input_dtype(0) != DType::kFloat32)
    ctx.fail("input 'x' has type ", dtype_name(ctx.input_dtype(0)), ", expected float32");
  ctx.set_output(0, DType::kUInt8, ctx.input_shape(0));
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kFloat32, {});
  if (ctx.num_outputs() > 2) ctx.set_output(2, DType::kUInt8, {});
}

void compute_dynamic_quantize(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const float* xp = x.data<float>();
  // The range always includes 0 so that 0 is exactly representable.
  float lo = 0, hi = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::isnan(xp[i])) ctx.fail("input 'x' contains NaN; cannot choose a quantization range");
    lo = std::min(lo, xp[i]);
    hi = std::max(hi, xp[i]);
  }
  if (std::isinf(lo) || std::isinf(hi))
    ctx.fail("input 'x' contains an infinity; cannot choose a quantization range");
  float scale = (hi - lo) / 255.0f;
  uint8_t zp = 0;
  uint8_t* yp = ctx.output(0).data<uint8_t>();
  if (scale > 0) {
    zp = round_saturate<uint8_t>(static_cast<double>((0.0f - lo) / scale), 0);
    for (int64_t i = 0; i < x.numel(); ++i)
      yp[i] = round_saturate<uint8_t>(static_cast<double>(xp[i] / scale), zp);
  }  // else: all zeros; y = 0, zero point 0, scale 0.
  if (ctx.has_output(1)) ctx.output(1).data<float>()[0] = scale;
  if (ctx.has_output(2)) ctx.output(2).data<uint8_t>()[0] = zp;
}

}  // namespace

void add_quant_ops(std::vector<OpDef>& ops) {
  ops.push_back({"QuantizeLinear", "", 10, infer_quantize, compute_quantize});
  ops.push_back({"DequantizeLinear", "", 10, infer_dequantize, compute_dequantize});
  ops.push_back(
      {"DynamicQuantizeLinear", "", 11, infer_dynamic_quantize, compute_dynamic_quantize});
  add_qlinear_ops(ops);
}

}  // namespace lithe::ops
