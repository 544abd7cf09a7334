// Body of f32 max / average pooling on NHWC data, channel vectors of 16, 4, then single
// channels. Window taps outside the input are skipped; the average divides by the taps
// inside the input, or with count_include_pad by the taps inside the padded extent, as the
// reference kernels do.
#pragma once
#include "kernels/body/vec.hpp"

namespace pool_body {

using namespace ::lithe::kernels;
using namespace body;

// Channels [c, c + NV * W) of output pixel (oy, ox) over a window of any size: the taps in
// (ky, kx) order found as they come (no list), NV vectors of channels per tap. A large
// window (global average pooling: every pixel) is read once in memory order, NV independent
// sums at a time. With no tap inside the input: the max is the lowest float, the average 0.
template <class V, int W, int NV>
inline void window_block(const PoolArgs& a, int64_t oy, int64_t ox, int64_t c, float div,
                         float* y) {
  V acc[NV];
  for (int v = 0; v < NV; ++v)
    acc[v] = a.max ? splat<V>(std::numeric_limits<float>::lowest()) : V{};
  bool first = true;
  for_each_tap(a, oy, ox, [&](int64_t pix) {
    const float* p = a.x + pix * a.x_stride + c;
    for (int v = 0; v < NV; ++v) {
      const V u = loadv<V>(p + v * W);
      // The first tap is taken as it is (a NaN there stays), later ones only if greater.
      acc[v] = a.max ? (first ? u : (u > acc[v] ? u : acc[v])) : acc[v] + u;
    }
    first = false;
  });
  for (int v = 0; v < NV; ++v) {
    V r = acc[v];
    if (!a.max) r = div > 0 ? r / splat<V>(div) : V{};
    storev(y + c + v * W, r);
  }
}

// Channels [0, NV * W) from x of one output pixel over the n >= 1 taps at offsets off[]: the
// taps outer, NV vectors of channels inner, so one address serves NV loads. The same
// arithmetic in the same order as window_block() (the sum starts from zero).
template <class V, int W, int NV>
inline void taps_block(const float* x, const int64_t* off, int n, bool max, float div, float* y) {
  V acc[NV];
  for (int v = 0; v < NV; ++v) {
    const V u = loadv<V>(x + off[0] + v * W);
    acc[v] = max ? u : V{} + u;
  }
  for (int t = 1; t < n; ++t) {
    const float* p = x + off[t];
    for (int v = 0; v < NV; ++v) {
      const V u = loadv<V>(p + v * W);
      acc[v] = max ? (u > acc[v] ? u : acc[v]) : acc[v] + u;
    }
  }
  for (int v = 0; v < NV; ++v) {
    V r = acc[v];
    if (!max) r = div > 0 ? r / splat<V>(div) : V{};
    storev(y + v * W, r);
  }
}

inline void f32_pool(const PoolArgs& a, int64_t oy0, int64_t oy1) {
  constexpr int kMaxTaps = 64;  // larger windows go through window_block()
  int64_t off[kMaxTaps];
  for (int64_t oy = oy0; oy < oy1; ++oy)
    for (int64_t ox = 0; ox < a.ow; ++ox) {
      // Taps inside the input (or inside the padded extent with count_include_pad).
      const int64_t lo_y = a.count_include_pad ? -a.ph : 0,
                    hi_y = a.count_include_pad ? a.ih + a.pad_h_end : a.ih;
      const int64_t lo_x = a.count_include_pad ? -a.pw : 0,
                    hi_x = a.count_include_pad ? a.iw + a.pad_w_end : a.iw;
      int64_t ny = 0, nx = 0;
      for (int64_t ky = 0; ky < a.kh; ++ky) {
        const int64_t iy = oy * a.sh - a.ph + ky * a.dh;
        ny += iy >= lo_y && iy < hi_y;
      }
      for (int64_t kx = 0; kx < a.kw; ++kx) {
        const int64_t ix = ox * a.sw - a.pw + kx * a.dw;
        nx += ix >= lo_x && ix < hi_x;
      }
      const float div = static_cast<float>(static_cast<double>(ny) * static_cast<double>(nx));
      float* y = a.y + (oy * a.ow + ox) * a.y_stride;
      // The taps inside the input, in (ky, kx) order.
      int n = 0;
      if (a.kh * a.kw <= kMaxTaps)
        for_each_tap(a, oy, ox, [&](int64_t pix) { off[n++] = pix * a.x_stride; });
      if (n == 0) {  // no tap inside (or too many taps to list)
        int64_t c = 0;
        for (; c + 8 * kVecWidth <= a.c; c += 8 * kVecWidth)
          window_block<VN, kVecWidth, 8>(a, oy, ox, c, div, y);
        for (; c + kVecWidth <= a.c; c += kVecWidth)
          window_block<VN, kVecWidth, 1>(a, oy, ox, c, div, y);
        for (; c + 4 <= a.c; c += 4) window_block<V4, 4, 1>(a, oy, ox, c, div, y);
        for (; c < a.c; ++c) window_block<float, 1, 1>(a, oy, ox, c, div, y);
        continue;
      }
      int64_t c = 0;
      for (; c + 8 * kVecWidth <= a.c; c += 8 * kVecWidth)
        taps_block<VN, kVecWidth, 8>(a.x + c, off, n, a.max, div, y + c);
      for (; c + kVecWidth <= a.c; c += kVecWidth)
        taps_block<VN, kVecWidth, 1>(a.x + c, off, n, a.max, div, y + c);
      for (; c + 4 <= a.c; c += 4) taps_block<V4, 4, 1>(a.x + c, off, n, a.max, div, y + c);
      for (; c < a.c; ++c) taps_block<float, 1, 1>(a.x + c, off, n, a.max, div, y + c);
    }
}

}  // namespace pool_body
