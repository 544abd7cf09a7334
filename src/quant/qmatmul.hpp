// INT8 MatMul of two uint8 activations (lithe.QMatMulU8, ops/qnhwc.cpp), shared by the
// reference op and the INT8 step (runtime/fast_qmatmul.cpp) so both compute each byte alike:
//   acc = sum_k (a[m][k] - za) * (b[k][n] - zb)   in int32 (exact: K <= kMaxQMatMulReduction)
//   y   = quant::requantize(acc, make_multiplier(a_scale * b_scale / y_scale), zy, 0, 255)
// ONNX QLinearMatMul's arithmetic with per-tensor parameters and the project's fixed-point
// requantization (quant/requant.hpp) instead of its float multiply.
#pragma once
#include <cstdint>

#include "quant/requant.hpp"

namespace lithe::quant {

/// The longest reduction whose sums fit int32: |(a - za)(b - zb)| <= 255 * 255.
inline constexpr int64_t kMaxQMatMulReduction = (int64_t{1} << 31) / (255 * 255);

/// The output multiplier for scales > 0 and finite (in double, rounded once).
inline Multiplier qmatmul_multiplier(float a_scale, float b_scale, float y_scale) {
  return make_multiplier(static_cast<double>(a_scale) * static_cast<double>(b_scale) /
                         static_cast<double>(y_scale));
}

}  // namespace lithe::quant
