// Fixed-point requantization shared by the INT8 reference ops and the INT8 kernels.
//
// A real multiplier r (for a conv: x_scale * w_scale[m] / y_scale) is stored as an integer
// mantissa `m` in [2^23, 2^24) and a right shift `s` in [1, 62], r ~= m * 2^-s: 24 significant
// bits, the precision of the float32 scales r comes from (a multiplier that is itself a
// float, such as w_scale when x_scale == y_scale, is kept exactly). An int32 accumulator `acc`
// is requantized as
//     q = round_half_even(acc * m / 2^s) + zero_point, saturated to [lo, hi]
// The scalar code computes it in 64-bit integers. The vector kernels compute the same value
// with one fused multiply-add of acc, m * 2^-s (a double, and a float too: 24 bits) and
// 1.5 * 2^52 + zero_point: the product inside the FMA is exact and the single rounding to
// nearest (ties to even) of the sum, where doubles are the integers, is the rounding above;
// the low 32 bits of the result are then q. Where |acc| <= 2^24 (a float exactly), the same
// holds in float with 1.5 * 2^23. All forms give the same bytes. Rounding half to even is
// ONNX QuantizeLinear's rounding.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace lithe::quant {

/// Significant bits of a multiplier's mantissa (m * 2^-s is then a float exactly).
inline constexpr int kMultiplierBits = 24;

struct Multiplier {
  int32_t m = 0;   ///< mantissa in [2^23, 2^24), or 0 (the multiplier rounds to 0)
  int32_t s = 31;  ///< right shift in [1, 62]
};

/// The fixed-point form of `real` (>= 0 and finite). Multipliers under 2^-39 give m = 0
/// (every product rounds to 0); multipliers of 2^23 and above saturate to (2^24 - 1) * 2^-1,
/// which saturates every nonzero accumulator as they would.
inline Multiplier make_multiplier(double real) {
  Multiplier q;
  if (!(real > 0) || !std::isfinite(real)) return q;
  int e = 0;
  const double f = std::frexp(real, &e);  // real = f * 2^e, f in [0.5, 1)
  int64_t m = static_cast<int64_t>(std::nearbyint(std::ldexp(f, kMultiplierBits)));
  if (m == (int64_t{1} << kMultiplierBits)) {
    m >>= 1;
    ++e;
  }
  const int s = kMultiplierBits - e;
  if (s > 62) return q;  // below 2^-39
  if (s < 1) {           // >= 2^23: saturate (no sane scale gives it)
    q.m = (1 << kMultiplierBits) - 1;
    q.s = 1;
    return q;
  }
  q.m = static_cast<int32_t>(m);
  q.s = s;
  return q;
}

/// round_half_even(acc * q.m / 2^q.s), exactly. 64-bit: with a multiplier above 1 the
/// product of a large accumulator does not fit int32, and requantize must saturate it.
/// |acc * m| < 2^55, so adding 2^(s-1) cannot overflow.
inline int64_t scale_round(int32_t acc, Multiplier q) {
  const int64_t p = static_cast<int64_t>(acc) * q.m;
  return (p + ((int64_t{1} << (q.s - 1)) - 1) + ((p >> q.s) & 1)) >> q.s;
}

/// The requantized value: scale_round + zero point, saturated to [lo, hi].
inline int32_t requantize(int32_t acc, Multiplier q, int32_t zero_point, int32_t lo, int32_t hi) {
  const int64_t v = scale_round(acc, q) + zero_point;
  return static_cast<int32_t>(std::clamp<int64_t>(v, lo, hi));
}

/// ONNX QuantizeLinear of one float to [lo, hi]: saturate(round_half_even(x / scale) + zp).
inline int32_t quantize_value(float x, float scale, int32_t zero_point, int32_t lo, int32_t hi) {
  const float v = std::nearbyint(x / scale) + static_cast<float>(zero_point);
  if (!(v >= static_cast<float>(lo))) return std::isnan(v) ? zero_point : lo;
  return v > static_cast<float>(hi) ? hi : static_cast<int32_t>(v);
}

}  // namespace lithe::quant
