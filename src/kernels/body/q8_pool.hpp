// Body of uint8 max / average pooling on NHWC data (input and output share scale and zero
// point, so no requantization): plain loops over channel chunks that the compiler
// vectorizes at the level's width. Max: the largest byte over the taps inside the input.
// Average: zx + round half to even of sum(x - zx) / count, with count the taps inside the
// input, or with count_include_pad the taps inside the padded extent (padded taps are the
// real value 0).
#pragma once
#include "kernels/body/vec.hpp"

namespace q8pool_body {

using namespace ::lithe::kernels;
using namespace body;

constexpr int64_t kChunk = 64;

inline void q8_pool(const Q8PoolArgs& a, int64_t oy0, int64_t oy1) {
  for (int64_t oy = oy0; oy < oy1; ++oy)
    for (int64_t ox = 0; ox < a.ow; ++ox) {
      uint8_t* y = a.y + (oy * a.ow + ox) * a.y_stride;
      int64_t inside = 0, extent = 0;
      for (int64_t ky = 0; ky < a.kh; ++ky) {
        const int64_t iy = oy * a.sh - a.ph + ky * a.dh;
        const bool row_in = iy >= 0 && iy < a.ih;
        const bool row_ext = iy >= -a.ph && iy < a.ih + a.pad_h_end;
        for (int64_t kx = 0; kx < a.kw; ++kx) {
          const int64_t ix = ox * a.sw - a.pw + kx * a.dw;
          inside += row_in && ix >= 0 && ix < a.iw;
          extent += row_ext && ix >= -a.pw && ix < a.iw + a.pad_w_end;
        }
      }
      for (int64_t c0 = 0; c0 < a.c; c0 += kChunk) {
        const int64_t n = a.c - c0 < kChunk ? a.c - c0 : kChunk;
        int32_t acc[kChunk];
        for (int64_t i = 0; i < n; ++i) acc[i] = 0;
        for_each_tap(a, oy, ox, [&](int64_t pix) {
          const uint8_t* x = a.x + pix * a.x_stride + c0;
          if (a.max)
            for (int64_t i = 0; i < n; ++i) acc[i] = acc[i] > x[i] ? acc[i] : x[i];
          else
            for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
        });
        if (a.max) {
          for (int64_t i = 0; i < n; ++i) y[c0 + i] = static_cast<uint8_t>(acc[i]);
          continue;
        }
        const int32_t count = static_cast<int32_t>(a.count_include_pad ? extent : inside);
        if (count <= 0) {
          for (int64_t i = 0; i < n; ++i) y[c0 + i] = static_cast<uint8_t>(a.zx);
          continue;
        }
        // The mean of the real values in zero-point units, rounded, then + zx (rounding
        // sum(x) / count instead would move ties by the odd zero points).
        const int32_t off = static_cast<int32_t>(inside) * a.zx;
        for (int64_t i = 0; i < n; ++i) {
          const int32_t s = acc[i] - off;
          int32_t q = s / count, r = s - q * count;
          if (r < 0) {  // floor division
            --q;
            r += count;
          }
          q += 2 * r > count || (2 * r == count && (q & 1));
          y[c0 + i] = static_cast<uint8_t>(q + a.zx);
        }
      }
    }
}

}  // namespace q8pool_body
