// Body of the f32 depthwise convolution on NHWC data.
//
// Per output row and channel block (16 channels, then 4, then single channels) the taps'
// weights are loaded once and the row's pixels are swept: interior pixels, whose whole window
// lies inside the input columns, run without bounds checks. Each output is the bias, then the
// taps in (ky, kx) order, then the residual and the activation: the reference kernel's order.
// The transcendental activations run in a second pass over the finished row, so no call is
// made while weights and accumulators are in registers.
#pragma once
#include "kernels/body/vec.hpp"

namespace dwconv_body {

using namespace ::lithe::kernels;
using namespace body;

constexpr int kMaxTaps = 25;

struct Row {
  int64_t oy, ky0, ky1, ox_lo, ox_hi;
};

template <class V>
inline V pixel(const DwConvArgs& d, const Row& row, int64_t ox, int64_t c, const V* w, V acc,
               bool interior) {
  for (int64_t ky = row.ky0; ky < row.ky1; ++ky) {
    const int64_t iy = row.oy * d.sh - d.ph + ky * d.dh;
    const float* xrow = d.x + iy * d.iw * d.x_stride + c;
    const int64_t ix0 = ox * d.sw - d.pw;
    for (int64_t kx = 0; kx < d.kw; ++kx) {
      const int64_t ix = ix0 + kx * d.dw;
      if (!interior && (ix < 0 || ix >= d.iw)) continue;
      acc += loadv<V>(xrow + ix * d.x_stride) * w[ky * d.kw + kx];
    }
  }
  return acc;
}

template <class V>
inline void finish(const DwConvArgs& d, int64_t pix, int64_t c, V acc, bool cheap) {
  if (d.ep.residual) acc += loadv<V>(d.ep.residual + pix * d.ep.ldr + c);
  if (cheap) activate(acc, d.ep.act);
  storev(d.y + pix * d.y_stride + c, acc);
}

// Interior columns [ox_lo, ox_hi) of a row whose whole kernel height is inside the input,
// for a K x K kernel without dilation: four output pixels at a time, taps unrolled.
template <class V, int K>
inline void interior(const DwConvArgs& d, const Row& row, int64_t c, const V* w, V bias,
                     bool cheap) {
  const int64_t xs = d.x_stride, sw = d.sw;
  const float* xtop = d.x + (row.oy * d.sh - d.ph) * d.iw * xs + c;
  int64_t ox = row.ox_lo;
  for (; ox + 4 <= row.ox_hi; ox += 4) {
    V a0 = bias, a1 = bias, a2 = bias, a3 = bias;
#pragma GCC unroll 8
    for (int ky = 0; ky < K; ++ky) {
      const float* xr = xtop + (ky * d.iw + ox * sw - d.pw) * xs;
#pragma GCC unroll 8
      for (int kx = 0; kx < K; ++kx) {
        const V wv = w[ky * K + kx];
        a0 += loadv<V>(xr + kx * xs) * wv;
        a1 += loadv<V>(xr + (sw + kx) * xs) * wv;
        a2 += loadv<V>(xr + (2 * sw + kx) * xs) * wv;
        a3 += loadv<V>(xr + (3 * sw + kx) * xs) * wv;
      }
    }
    const int64_t pix = row.oy * d.ow + ox;
    finish(d, pix, c, a0, cheap);
    finish(d, pix + 1, c, a1, cheap);
    finish(d, pix + 2, c, a2, cheap);
    finish(d, pix + 3, c, a3, cheap);
  }
  for (; ox < row.ox_hi; ++ox) {
    V a = bias;
    const float* xr = xtop + (ox * sw - d.pw) * xs;
#pragma GCC unroll 8
    for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 8
      for (int kx = 0; kx < K; ++kx) a += loadv<V>(xr + (ky * d.iw + kx) * xs) * w[ky * K + kx];
    finish(d, row.oy * d.ow + ox, c, a, cheap);
  }
}

template <class V, int W>
inline int64_t block(const DwConvArgs& d, const Row& row, int64_t c0, bool cheap) {
  const int64_t taps = d.kh * d.kw;
  int64_t c = c0;
  for (; c + W <= d.c; c += W) {
    V w[kMaxTaps];
    for (int64_t t = 0; t < taps; ++t) w[t] = loadv<V>(d.w + t * d.c + c);
    const V bias = d.ep.bias ? loadv<V>(d.ep.bias + c) : V{};
    const bool full = row.ky0 == 0 && row.ky1 == d.kh && d.kh == d.kw && d.dh == 1 && d.dw == 1;
    const bool fast = full && (d.kh == 3 || d.kh == 5);
    for (int64_t ox = 0; ox < d.ow; ++ox) {
      if (fast && ox == row.ox_lo) {
        if (d.kh == 3)
          interior<V, 3>(d, row, c, w, bias, cheap);
        else
          interior<V, 5>(d, row, c, w, bias, cheap);
        ox = row.ox_hi - 1;
        continue;
      }
      const bool inside = ox >= row.ox_lo && ox < row.ox_hi;
      finish(d, row.oy * d.ow + ox, c, pixel<V>(d, row, ox, c, w, bias, inside), cheap);
    }
  }
  return c;
}

inline void f32_dwconv(const DwConvArgs& d, int64_t oy0, int64_t oy1) {
  const bool cheap = cheap_activation(d.ep.act);
  Row row{};
  // Output columns whose window lies inside the input: ox * sw - pw >= 0 and
  // ox * sw - pw + (kw - 1) * dw <= iw - 1.
  row.ox_lo = (d.pw + d.sw - 1) / d.sw;
  const int64_t last = d.iw - 1 - (d.kw - 1) * d.dw + d.pw;
  row.ox_hi = last < 0 ? 0 : last / d.sw + 1;
  if (row.ox_hi > d.ow) row.ox_hi = d.ow;
  if (row.ox_hi < row.ox_lo) row.ox_hi = row.ox_lo;
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    row.oy = oy;
    row.ky0 = 0;
    row.ky1 = d.kh;
    while (row.ky0 < d.kh && oy * d.sh - d.ph + row.ky0 * d.dh < 0) ++row.ky0;
    while (row.ky1 > row.ky0 && oy * d.sh - d.ph + (row.ky1 - 1) * d.dh >= d.ih) --row.ky1;
    int64_t c = 0;
    if (d.kh * d.kw <= kMaxTaps) {
      c = block<VN, kVecWidth>(d, row, 0, cheap);
      c = block<V4, 4>(d, row, c, cheap);
    }
    for (; c < d.c; ++c) {
      for (int64_t ox = 0; ox < d.ow; ++ox) {
        float acc = d.ep.bias ? d.ep.bias[c] : 0.0f;
        for (int64_t ky = row.ky0; ky < row.ky1; ++ky) {
          const int64_t iy = oy * d.sh - d.ph + ky * d.dh;
          for (int64_t kx = 0; kx < d.kw; ++kx) {
            const int64_t ix = ox * d.sw - d.pw + kx * d.dw;
            if (ix < 0 || ix >= d.iw) continue;
            acc += d.x[(iy * d.iw + ix) * d.x_stride + c] * d.w[(ky * d.kw + kx) * d.c + c];
          }
        }
        const int64_t pix = oy * d.ow + ox;
        if (d.ep.residual) acc += d.ep.residual[pix * d.ep.ldr + c];
        d.y[pix * d.y_stride + c] = acc;
        if (cheap) epilogue_scalar(d.y + pix * d.y_stride + c, 1, nullptr, d.ep.act);
      }
    }
    if (!cheap)
      for (int64_t ox = 0; ox < d.ow; ++ox)
        epilogue_scalar(d.y + (oy * d.ow + ox) * d.y_stride, d.c, nullptr, d.ep.act);
  }
}

}  // namespace dwconv_body
