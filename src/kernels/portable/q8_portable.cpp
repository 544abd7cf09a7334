// The portable level's int8 kernels: plain C++ with int32 accumulators and the scalar
// quant::requantize, compiled with this folder's flags. They define the results every other
// level must reproduce bit for bit.
#include <cstdint>

#include "kernels/kernels.hpp"

namespace lithe::kernels::portable {

void q8_gemm(const Q8GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const int64_t k4 = (g.k + 3) / 4;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* bp = g.bp + p * k4 * 64;
    const int64_t col0 = p * kPanel;
    const int64_t cols = g.n - col0 < kPanel ? g.n - col0 : kPanel;
    for (int64_t m = m0; m < m1; ++m) {
      const uint8_t* a = g.a + m * g.lda;
      int32_t acc[kPanel] = {};
      for (int64_t kg = 0; kg < k4; ++kg) {
        const int8_t* b = bp + kg * 64;
        for (int r = 0; r < 4; ++r) {
          // Bytes of A past K multiply zeros of packed B, whatever they hold.
          const int32_t av = a[4 * kg + r];
          for (int j = 0; j < kPanel; ++j) acc[j] += av * b[j * 4 + r];
        }
      }
      // Wrapping sums, as the vector levels' int32 lanes.
      if (g.row_bias)
        for (int j = 0; j < kPanel; ++j)
          acc[j] = static_cast<int32_t>(static_cast<uint32_t>(acc[j]) + static_cast<uint32_t>(g.row_bias[m]));
      for (int64_t j = 0; j < cols; ++j) {
        const int32_t sum = static_cast<int32_t>(static_cast<uint32_t>(acc[j]) +
                                                 static_cast<uint32_t>(g.bias ? g.bias[col0 + j] : 0));
        if (g.c32)
          g.c32[m * g.ldc32 + col0 + j] = sum;
        else
          g.c[m * g.ldc + col0 + j] =
              static_cast<uint8_t>(quant::requantize(sum, g.mult[col0 + j], g.zy, g.lo, g.hi));
      }
    }
  }
}

void q8_dwconv(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1) {
  // Per output pixel, channels in chunks of int32 accumulators, taps outer: the channel loop
  // is contiguous and vectorizes. (x - zx) * w fits int16 (|255 * -128| < 2^15).
  constexpr int64_t kChunk = 64;
  for (int64_t oy = oy0; oy < oy1; ++oy)
    for (int64_t ox = 0; ox < d.ow; ++ox) {
      uint8_t* y = d.y + (oy * d.ow + ox) * d.y_stride;
      for (int64_t c0 = 0; c0 < d.c; c0 += kChunk) {
        const int64_t n = d.c - c0 < kChunk ? d.c - c0 : kChunk;
        int32_t acc[kChunk];
        for (int64_t i = 0; i < n; ++i) acc[i] = d.bias ? d.bias[c0 + i] : 0;
        for (int64_t ky = 0; ky < d.kh; ++ky) {
          const int64_t iy = oy * d.sh - d.ph + ky * d.dh;
          if (iy < 0 || iy >= d.ih) continue;
          for (int64_t kx = 0; kx < d.kw; ++kx) {
            const int64_t ix = ox * d.sw - d.pw + kx * d.dw;
            if (ix < 0 || ix >= d.iw) continue;
            const uint8_t* x = d.x + (iy * d.iw + ix) * d.x_stride + c0;
            const int8_t* w = d.w + (ky * d.kw + kx) * d.c + c0;
            const int16_t zx = static_cast<int16_t>(d.zx);
            for (int64_t i = 0; i < n; ++i)
              acc[i] += static_cast<int16_t>(static_cast<int16_t>(x[i] - zx) *
                                             static_cast<int16_t>(w[i]));
          }
        }
        for (int64_t i = 0; i < n; ++i)
          if (d.y32)
            d.y32[(oy * d.ow + ox) * d.c + c0 + i] = acc[i];
          else
            y[c0 + i] =
                static_cast<uint8_t>(quant::requantize(acc[i], d.mult[c0 + i], d.zy, d.lo, d.hi));
      }
    }
}

void q8_binary(const Q8BinaryArgs& g) {
  for (int64_t r = 0; r < g.rows; ++r) {
    const uint8_t* a = g.a + r * g.a_row;
    const uint8_t* b = g.b + r * g.b_row;
    uint8_t* y = g.y + r * g.n;
    for (int64_t i = 0; i < g.n; ++i) y[i] = quant::qbinary(a[i], b[g.b_scalar ? 0 : i], g.p);
  }
}

}  // namespace lithe::kernels::portable
