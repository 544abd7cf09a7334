// Op family: resize (part). lithe.QResizeLinearU8, the INT8 linear Resize the quantizer
// (builder/quantize.cpp) puts in place of a Resize in mode linear whose input is uint8:
//
//   QResizeLinearU8(X u8[any rank], x_zero_point u8[], scales f32[rank or len(axes)]?,
//                   sizes i64[same]?) -> Y u8
//
// Attributes: those of an opset-19 Resize (coordinate_transformation_mode, exclude_outside,
// antialias, axes, keep_aspect_ratio_policy; mode is linear, tf_crop_and_resize is not
// supported: its extrapolation value would need the scale). Exactly one of scales and sizes.
// The output keeps X's scale and zero point; each byte is quant/qresize.hpp's sum over the
// taps of the FP32 Resize's own mapping (resize_mapping, ops/resize.cpp). The reference
// kernel below is the oracle of the INT8 runtime step (runtime/fast_q8_resize.cpp).
#include "quant/qresize.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "ops/resize_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {

// QResizeLinearU8's inputs.
enum { kRX, kRZp, kRScales, kRSizes };

ResizeMapping qresize_mapping(const ir::Node& node, const Shape& in, const Tensor* scales,
                              const Tensor* sizes) {
  NodeAttrs a(node);
  if (a.attr_string("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize")
    a.fail("coordinate_transformation_mode tf_crop_and_resize is not supported");
  if (a.has_attr("mode") && a.attr_string("mode") != "linear")
    a.fail("mode must be linear, got '", a.attr_string("mode"), "'");
  // The float op's own mapping: an opset-19 Resize node with these attributes.
  ir::Node r;
  r.name = node.name;
  r.op_type = "Resize";
  r.opset = 19;
  r.attrs = node.attrs;
  r.attrs["mode"] = ir::Attribute::of_string("linear");
  return resize_mapping(r, in, {nullptr, nullptr, scales, sizes});
}

namespace {

void qresize_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 4);
  if (ctx.input_dtype(kRX) != DType::kUInt8) ctx.fail("X must be uint8");
  ctx.set_output_unknown(0, DType::kUInt8);
  if (ctx.input_dtype(kRZp) != DType::kUInt8 || shape_numel(ctx.input_shape(kRZp)) != 1)
    ctx.fail("x_zero_point must be one uint8 value");
  auto value = [&](size_t i) -> const Tensor* {
    if (!ctx.has_input(i)) return nullptr;
    if (ctx.input_rank(i) == 1 && ctx.input_shape(i)[0] == 0) return nullptr;
    return &ctx.input_value(i);
  };
  const ResizeMapping m =
      qresize_mapping(ctx.node(), ctx.input_shape(kRX), value(kRScales), value(kRSizes));
  ctx.set_output(0, DType::kUInt8, m.out);
}

void qresize_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(kRX);
  auto value = [&](size_t i) -> const Tensor* {
    return ctx.has_input(i) && ctx.input(i).numel() > 0 ? &ctx.input(i) : nullptr;
  };
  const ResizeMapping m = qresize_mapping(ctx.node(), x.shape(), value(kRScales), value(kRSizes));
  const int32_t z = ctx.input(kRZp).data<uint8_t>()[0];
  const Shape& in = x.shape();
  const size_t rank = in.size();
  const std::vector<int64_t> istr = strides_of(in);
  const uint8_t* src = x.data<uint8_t>();
  uint8_t* dst = ctx.output(0).data<uint8_t>();
  const int64_t n = shape_numel(m.out);
  std::vector<int64_t> oi(rank, 0), ti(rank, 0);
  for (int64_t o = 0; o < n; ++o) {
    bool empty = false;  // every weight zero (all taps outside under exclude_outside): real 0
    for (size_t d = 0; d < rank; ++d)
      if (m.taps[d][static_cast<size_t>(oi[d])].empty()) empty = true;
    float acc = 0;
    if (!empty) {
      // The tensor product of the axes' taps, row-major (quant/qresize.hpp's order).
      std::fill(ti.begin(), ti.end(), 0);
      for (bool first = true;; first = false) {
        float w = 1;
        int64_t off = 0;
        for (size_t d = 0; d < rank; ++d) {
          const auto& t = m.taps[d][static_cast<size_t>(oi[d])][static_cast<size_t>(ti[d])];
          w *= static_cast<float>(t.second);
          off += t.first * istr[d];
        }
        const int32_t dv = int32_t{src[off]} - z;
        acc = first ? quant::qresize_first(w, dv) : quant::qresize_add(acc, w, dv);
        size_t d = rank;
        while (d-- > 0) {
          if (++ti[d] < static_cast<int64_t>(m.taps[d][static_cast<size_t>(oi[d])].size())) break;
          ti[d] = 0;
        }
        if (d == static_cast<size_t>(-1)) break;
      }
    }
    dst[o] = quant::qresize_code(acc, z);
    for (size_t d = rank; d-- > 0;) {
      if (++oi[d] < m.out[d]) break;
      oi[d] = 0;
    }
  }
}

}  // namespace

void add_qresize_ops(std::vector<OpDef>& ops) {
  ops.push_back(OpDef{"QResizeLinearU8", "lithe", 1, qresize_infer, qresize_compute});
}

}  // namespace lithe::ops
