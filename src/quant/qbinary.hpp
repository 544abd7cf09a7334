// INT8 Add and Mul of two uint8 tensors (lithe.QBinaryU8, ops/qnhwc.cpp), shared by the
// reference op and every kernel level so all compute each byte with the same expression
// (what ONNX Runtime's QLinearAdd / QLinearMul compute, to within a small fraction of a code):
//   Add: acc = ka * (a - za) + kb * (b - zb) in int32; ka : kb = a_scale : b_scale, the larger
//        2^21 (|acc| < 2^30); scale = max(a_scale, b_scale) / (2^21 * y_scale).
//   Mul: acc = (a - za) * (b - zb) (|acc| <= 255^2); scale = a_scale * b_scale / y_scale.
//   y = saturate(round_half_even(float(acc) * scale) + zy) to [0, 255]: one conversion and
//   one float multiply, so every level rounds the same product. Rounding ka : kb moves an Add
//   result by at most 255 * 2^-21 * max(a_scale, b_scale) / y_scale codes before rounding.
// Both forms are symmetric in (a, b), so a kernel may swap the operands with their parameters.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace lithe::quant {

struct QBinary {
  bool mul = false;
  int32_t za = 0, zb = 0;  ///< input zero points
  int32_t ka = 0, kb = 0;  ///< Add: the inputs' weights (<= 2^21)
  float scale = 1;         ///< accumulator -> output codes
  int32_t zy = 0;          ///< output zero point
};

inline constexpr int kQBinaryWeightBits = 21;

/// The form for scales (> 0, finite) and zero points of a, b and y; a, b swapped gives the
/// same form with the operands' fields swapped.
inline QBinary make_qbinary(bool mul, float sa, int32_t za, float sb, int32_t zb, float sy,
                            int32_t zy) {
  QBinary p;
  p.mul = mul;
  p.za = za;
  p.zb = zb;
  p.zy = zy;
  const double a = sa, b = sb, y = sy;
  if (mul) {
    p.scale = static_cast<float>(a * b / y);
    return p;
  }
  const double big = std::max(a, b), one = std::ldexp(1.0, kQBinaryWeightBits);
  p.ka = static_cast<int32_t>(std::nearbyint(a / big * one));
  p.kb = static_cast<int32_t>(std::nearbyint(b / big * one));
  p.scale = static_cast<float>(big / (one * y));
  return p;
}

/// One output byte.
inline uint8_t qbinary(uint8_t a, uint8_t b, const QBinary& p) {
  const int32_t da = a - p.za, db = b - p.zb;
  const int32_t acc = p.mul ? da * db : p.ka * da + p.kb * db;
  // Clamped before rounding (to integer bounds: the same result) so the conversion cannot
  // overflow; the vector kernels do the same.
  const float v = std::clamp(static_cast<float>(acc) * p.scale, static_cast<float>(-p.zy),
                             static_cast<float>(255 - p.zy));
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + p.zy);
}

}  // namespace lithe::quant
