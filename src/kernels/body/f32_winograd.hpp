// Body of the Winograd F(4x4, 3x3) transforms for stride-1 3x3 convolutions on NHWC data
// (Lavin & Gray's matrices). A 6x6 input patch becomes 36 values per channel (B^T d B); the 36
// products with the transformed weights (kernels::winograd_weights_f32, the same for every
// level) are 36 GEMMs (f32_gemm_direct on the rows in place, or f32_gemm on packed rows); a
// 6x6 block of GEMM results becomes a 4x4 output tile (A^T m A), to which the bias, residual
// and activation are applied. Channels are processed in vectors of 16, then 4, then one at a time.
#pragma once
#include "kernels/body/vec.hpp"

namespace winograd_body {

using namespace ::lithe::kernels;
using namespace body;

// t = B^T d along one axis, for six values at stride s.
template <class V>
inline void bt6(const V* d, int s, V* t, int ts) {
  const V d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
  const V four = splat<V>(4.0f), five = splat<V>(5.0f), two = splat<V>(2.0f);
  t[0] = four * d0 - five * d2 + d4;
  t[ts] = d3 + d4 - four * (d1 + d2);
  t[2 * ts] = four * (d1 - d2) + d4 - d3;
  t[3 * ts] = two * (d3 - d1) + d4 - d2;
  t[4 * ts] = two * (d1 - d3) + d4 - d2;
  t[5 * ts] = four * d1 - five * d3 + d5;
}

// s = A^T m along one axis: six values at stride ms -> four at stride ss.
template <class V>
inline void at6(const V* m, int ms, V* s, int ss) {
  const V m0 = m[0], m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms], m4 = m[4 * ms], m5 = m[5 * ms];
  const V a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4;
  s[0] = m0 + a + c;
  s[ss] = b + splat<V>(2.0f) * e;
  s[2 * ss] = a + splat<V>(4.0f) * c;
  s[3 * ss] = b + splat<V>(8.0f) * e + m5;
}

template <class V, int W>
inline int64_t input_block(const WinogradArgs& w, int64_t tile, int64_t row, int64_t c0, float* v) {
  const int64_t ty = tile / w.tiles_w, tx = tile % w.tiles_w;
  const int64_t iy0 = ty * 4 - w.ph, ix0 = tx * 4 - w.pw;
  int64_t c = c0;
  for (; c + W <= w.c; c += W) {
    V d[36], t[36];
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 6; ++j) {
        const int64_t iy = iy0 + i, ix = ix0 + j;
        d[i * 6 + j] = (iy >= 0 && iy < w.ih && ix >= 0 && ix < w.iw)
                           ? loadv<V>(w.x + (iy * w.iw + ix) * w.x_stride + c)
                           : V{};
      }
    for (int j = 0; j < 6; ++j) bt6(d + j, 6, t + j, 6);          // columns
    for (int i = 0; i < 6; ++i) bt6(t + i * 6, 1, d + i * 6, 1);  // rows
    // v[row][xi][c] (WinogradArgs).
    for (int xi = 0; xi < 36; ++xi) storev(v + (row * 36 + xi) * w.c + c, d[xi]);
  }
  return c;
}

/// Input transform of tiles [t0, t1) of one image into v ((t1 - t0) x 36 x C, WinogradArgs).
inline void f32_winograd_input(const WinogradArgs& w, int64_t t0, int64_t t1, float* v) {
  for (int64_t t = t0; t < t1; ++t) {
    int64_t c = input_block<VN, kVecWidth>(w, t, t - t0, 0, v);
    c = input_block<V4, 4>(w, t, t - t0, c, v);
    input_block<float, 1>(w, t, t - t0, c, v);
  }
}

// A: the epilogue (with_epilogue, epilogue_of); with kGeneral, activate() if `cheap`, else the
// caller's second pass.
template <int A, class V, int W>
inline int64_t output_block(const WinogradArgs& w, int64_t tile, int64_t row, int64_t c0,
                            const float* m, const ::lithe::ops::fused::Epilogue& e, bool cheap) {
  const int64_t ty = tile / w.tiles_w, tx = tile % w.tiles_w;
  int64_t c = c0;
  for (; c + W <= w.cout; c += W) {
    V a[36], s[24], o[16];
    for (int xi = 0; xi < 36; ++xi) a[xi] = loadv<V>(m + (row * 36 + xi) * w.cout + c);
    for (int j = 0; j < 6; ++j) at6(a + j, 6, s + j, 6);          // columns: 4 x 6
    for (int i = 0; i < 4; ++i) at6(s + i * 6, 1, o + i * 4, 1);  // rows: 4 x 4
    const V bias = w.ep.bias ? loadv<V>(w.ep.bias + c) : V{};
    for (int i = 0; i < 4; ++i) {
      const int64_t oy = ty * 4 + i;
      if (oy >= w.oh) break;
      for (int j = 0; j < 4; ++j) {
        const int64_t ox = tx * 4 + j;
        if (ox >= w.ow) break;
        const int64_t pix = oy * w.ow + ox;
        V r = o[i * 4 + j] + bias;
        if (w.ep.residual) r += loadv<V>(w.ep.residual + pix * w.ep.ldr + c);
        if constexpr (A != kGeneral)
          r = epilogue_of<A>(r, e);
        else if (cheap)
          activate(r, e);
        storev(w.y + pix * w.y_stride + c, r);
      }
    }
  }
  return c;
}

/// Output transform of tiles [t0, t1) of one image from m ((t1 - t0) x 36 x Cout).
inline void f32_winograd_output(const WinogradArgs& w, int64_t t0, int64_t t1, const float* m) {
  const ::lithe::ops::fused::Epilogue e = w.ep.act;  // a copy: the stores cannot change it
  const bool cheap = cheap_activation(e);
  with_epilogue(e, false, [&]<int A>() {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t c = output_block<A, VN, kVecWidth>(w, t, t - t0, 0, m, e, cheap);
      c = output_block<A, V4, 4>(w, t, t - t0, c, m, e, cheap);
      output_block<A, float, 1>(w, t, t - t0, c, m, e, cheap);
    }
  });
  if (cheap) return;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t ty = t / w.tiles_w, tx = t % w.tiles_w;
    for (int64_t oy = ty * 4; oy < ty * 4 + 4 && oy < w.oh; ++oy)
      for (int64_t ox = tx * 4; ox < tx * 4 + 4 && ox < w.ow; ++ox)
        activate_stored(w.y + (oy * w.ow + ox) * w.y_stride, w.cout, w.ep.act);
  }
}

}  // namespace winograd_body
