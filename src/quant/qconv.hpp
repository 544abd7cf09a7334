// The output stage of lithe.QConvNhwc (ops/qnhwc.cpp), shared by its reference kernel and the
// INT8 runtime step so both compute every output byte with the same expression.
//
// acc is the exact int32 sum of (x - x_zp) * w plus the int32 bias (bias / (x_scale *
// w_scale[m]), rounded half to even). Two paths:
//  - integer (no residual, activation none / Relu / Clip): fixed-point requantization
//    (quant/requant.hpp) with the activation as a clamp of the uint8 result;
//  - float (a residual input or any other activation): y = acc * (x_scale * w_scale[m])
//    + z_scale * (z - z_zp), then the activation in float (ops/fused_internal.hpp), then
//    QuantizeLinear to the output scale and zero point. This is what the DequantizeLinear ->
//    float op -> QuantizeLinear sequence of a QDQ model computes.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/fused_internal.hpp"
#include "quant/requant.hpp"

namespace lithe::quant {

/// Products of uint8 by int8 values an int32 sum holds without overflow: 2^31 / (255 * 128).
inline constexpr int64_t kMaxReduction = (int64_t{1} << 31) / (255 * 128);

struct QConvOutput {
  bool float_path = false;
  std::vector<Multiplier> mult;  ///< per output channel (integer path)
  std::vector<float> acc_scale;  ///< per output channel: x_scale * w_scale[m] (float path)
  float y_scale = 1;
  int32_t y_zp = 0;
  int32_t lo = 0, hi = 255;  ///< uint8 clamp (the fused Relu / Clip on the integer path)
  bool has_z = false;
  float z_scale = 1;
  int32_t z_zp = 0;
  ops::fused::Epilogue act;
};

/// The output stage for `channels` channels. w_scale has one value per channel.
inline QConvOutput make_qconv_output(float x_scale, const float* w_scale, int64_t channels,
                                     float y_scale, int32_t y_zp, bool has_z, float z_scale,
                                     int32_t z_zp, const ops::fused::Epilogue& act) {
  using ops::fused::Activation;
  QConvOutput o;
  o.y_scale = y_scale;
  o.y_zp = y_zp;
  o.has_z = has_z;
  o.z_scale = z_scale;
  o.z_zp = z_zp;
  o.act = act;
  o.float_path = has_z || act.affine ||
                 (act.act != Activation::kNone && act.act != Activation::kRelu &&
                  act.act != Activation::kClip);
  o.mult.resize(static_cast<size_t>(channels));
  o.acc_scale.resize(static_cast<size_t>(channels));
  for (int64_t m = 0; m < channels; ++m) {
    o.acc_scale[static_cast<size_t>(m)] = x_scale * w_scale[m];
    o.mult[static_cast<size_t>(m)] =
        make_multiplier(static_cast<double>(x_scale) * w_scale[m] / y_scale);
  }
  if (act.affine) return o;  // the clamp below is the activation's, before the affine map
  if (act.act == Activation::kRelu) o.lo = std::max(0, y_zp);
  if (act.act == Activation::kClip) {
    o.lo = quantize_value(act.p0, y_scale, y_zp, 0, 255);
    o.hi = quantize_value(act.p1, y_scale, y_zp, 0, 255);
  }
  return o;
}

/// The float output stage for one value: acc * acc_scale, plus the residual as one fused
/// multiply-add (a single rounding, so vector kernels reproduce it with an FMA instruction),
/// the activation, QuantizeLinear.
inline uint8_t float_output(int32_t acc, float acc_scale, const uint8_t* z, float z_scale,
                            int32_t z_zp, const ops::fused::Epilogue& act, float y_scale,
                            int32_t y_zp) {
  float y = static_cast<float>(acc) * acc_scale;
  if (z) y = std::fma(z_scale, static_cast<float>(static_cast<int32_t>(*z) - z_zp), y);
  y = ops::fused::apply_activation<float>(y, act);
  return static_cast<uint8_t>(quantize_value(y, y_scale, y_zp, 0, 255));
}

/// Output byte of channel m for accumulator `acc` (bias included) and residual byte z.
inline uint8_t qconv_output(int32_t acc, int64_t m, uint8_t z, const QConvOutput& o) {
  if (!o.float_path)
    return static_cast<uint8_t>(requantize(acc, o.mult[static_cast<size_t>(m)], o.y_zp, o.lo, o.hi));
  return float_output(acc, o.acc_scale[static_cast<size_t>(m)], o.has_z ? &z : nullptr, o.z_scale,
                      o.z_zp, o.act, o.y_scale, o.y_zp);
}

}  // namespace lithe::quant
