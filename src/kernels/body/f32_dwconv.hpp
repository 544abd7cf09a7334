// Body of the f32 depthwise convolution on NHWC data: for each output pixel, channel vectors
// of 16 (then 4, then single channels) accumulate the taps in (ky, kx) order, starting from
// the bias, then take the residual and the activation: the reference kernel's order.
#pragma once
#include "kernels/body/vec.hpp"

namespace dwconv_body {

using namespace ::lithe::kernels;
using namespace body;

template <class V, int W>
inline int64_t channels(const DwConvArgs& d, int64_t oy, int64_t ox, int64_t c0, float* y,
                        const float* z, bool cheap) {
  int64_t c = c0;
  for (; c + W <= d.c; c += W) {
    V acc = d.ep.bias ? loadv<V>(d.ep.bias + c) : V{};
    for (int64_t ky = 0; ky < d.kh; ++ky) {
      const int64_t iy = oy * d.sh - d.ph + ky * d.dh;
      if (iy < 0 || iy >= d.ih) continue;
      const float* xrow = d.x + iy * d.iw * d.x_stride + c;
      const float* wrow = d.w + ky * d.kw * d.c + c;
      for (int64_t kx = 0; kx < d.kw; ++kx) {
        const int64_t ix = ox * d.sw - d.pw + kx * d.dw;
        if (ix < 0 || ix >= d.iw) continue;
        acc += loadv<V>(xrow + ix * d.x_stride) * loadv<V>(wrow + kx * d.c);
      }
    }
    if (z) acc += loadv<V>(z + c);
    if (cheap) {
      activate(acc, d.ep.act);
      storev(y + c, acc);
    } else {
      storev(y + c, acc);
      epilogue_scalar(y + c, W, nullptr, d.ep.act);
    }
  }
  return c;
}

inline void f32_dwconv(const DwConvArgs& d, int64_t oy0, int64_t oy1) {
  const bool cheap = cheap_activation(d.ep.act);
  for (int64_t oy = oy0; oy < oy1; ++oy)
    for (int64_t ox = 0; ox < d.ow; ++ox) {
      float* y = d.y + (oy * d.ow + ox) * d.y_stride;
      const float* z = d.ep.residual ? d.ep.residual + (oy * d.ow + ox) * d.ep.ldr : nullptr;
      int64_t c = channels<V16, 16>(d, oy, ox, 0, y, z, cheap);
      c = channels<V4, 4>(d, oy, ox, c, y, z, cheap);
      for (; c < d.c; ++c) {
        float acc = d.ep.bias ? d.ep.bias[c] : 0.0f;
        for (int64_t ky = 0; ky < d.kh; ++ky) {
          const int64_t iy = oy * d.sh - d.ph + ky * d.dh;
          if (iy < 0 || iy >= d.ih) continue;
          for (int64_t kx = 0; kx < d.kw; ++kx) {
            const int64_t ix = ox * d.sw - d.pw + kx * d.dw;
            if (ix < 0 || ix >= d.iw) continue;
            acc += d.x[(iy * d.iw + ix) * d.x_stride + c] * d.w[(ky * d.kw + kx) * d.c + c];
          }
        }
        y[c] = acc;
        epilogue_scalar(y + c, 1, z ? z + c : nullptr, d.ep.act);
      }
    }
}

}  // namespace dwconv_body
