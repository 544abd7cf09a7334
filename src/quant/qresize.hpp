// INT8 linear Resize (lithe.QResizeLinearU8, ops/qresize.cpp): the arithmetic the reference
// op and every kernel level share, so all compute each byte with the same operations.
// Output code = saturate(round_half_even(sum_k w_k * (q_k - z)) + z), the output keeping the
// input's scale and zero point (the weights of a linear interpolation sum to 1, so this is
// DequantizeLinear -> Resize -> QuantizeLinear in real arithmetic).
//
// Float order, fixed so that a vector lane reproduces it bit for bit whatever the compiler's
// FMA contraction setting: each axis's weight is the float32 of the FP32 Resize's (double)
// weight, a tap's weight is the float product of its axes' weights in axis order (starting
// from 1: for the two resized axes of a 4-D tensor, wy * wx), the taps are taken in row-major
// order of their axes' tap lists, and
//   acc = w_0 * d_0;  acc = fma(w_k, d_k, acc) for k = 1, 2, ...   (d_k = q_k - z, exact)
// with explicit FMAs only, so no multiply is left for the compiler to fuse with an add. Then
// acc is clamped to [-z, 255 - z] (integer bounds: the same result as clamping after
// rounding, and the conversion cannot overflow), rounded half to even and z added.
// A tap of weight 0 changes nothing (fma(0, d, acc) == acc up to the sign of a zero), so a
// kernel may pad an axis of one tap with a second tap of weight 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace lithe::quant {

/// The sum after its first tap.
inline float qresize_first(float w, int32_t d) { return w * static_cast<float>(d); }

/// The sum after one more tap.
inline float qresize_add(float acc, float w, int32_t d) {
  return std::fma(w, static_cast<float>(d), acc);
}

/// The output code of a sum, for zero point z.
inline uint8_t qresize_code(float acc, int32_t z) {
  const float v = std::min(std::max(acc, static_cast<float>(-z)), static_cast<float>(255 - z));
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + z);
}

}  // namespace lithe::quant
