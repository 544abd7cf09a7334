// Body of the f32 depthwise convolution on NHWC data.
//
// 3x3 and 5x5 kernels at stride 1 or 2 without dilation (MobileNet's, BlazeFace's, PP-OCR's)
// go pixels outer, channels inner: four output pixels at a time, each load along a pixel's
// contiguous channels, the weights loaded per tap (channels past the last multiple of 4 one at
// a time). Other kernels go per channel block along the row with the taps' weights in
// registers: interior pixels, whose whole window lies inside the input columns, without
// bounds checks.
// Each output is the bias, then the taps in (ky, kx) order, then the residual and the
// activation: the reference kernel's order. The transcendental activations run in a second
// pass over the finished row, so no call is made while weights and accumulators are in
// registers.
//
// The pixel-outer order replaced the per-block sweep for the common kernels: a sweep strides
// by the whole pixel and reads the rows again from L2 once per block, and a lone pixel's taps
// are one chain of dependent FMAs. On AVX2 (Zen 3) MobileNetV2's 56x56x144 layer went 0.33 ->
// 0.17-0.28 ms and the whole model 11.3 -> 10.0 ms at 1 thread.
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

// What the pixel-outer path needs, copied out of DwConvArgs into locals the compiler can keep
// in registers across the channel loop (through the reference it reloaded them after every
// store).
struct Run {
  const float* x;  // tap row ky0, column of the first tap of the first pixel
  const float* w;  // weights of tap row ky0
  const float* bias;
  float* y;  // the first pixel's output
  int64_t xs, xrow, wrow, wc, ys, rows;
  ::lithe::ops::fused::Epilogue act;  // a copy: the stores cannot change it
};

// P output pixels (input columns S apart) of an interior run at channels [c, c + lanes of V):
// the row's taps x K, weights loaded per tap. A: the epilogue (with_epilogue; kGeneral, with a
// residual too, through finish()). Input column j of a tap row is at one of four
// bases (every third column) plus 0-2 pixel strides, so the addresses need few registers: with
// a register per column offset the loop spilled them and was bound by the reloads.
template <class V, int K, int P, int S, int A>
inline void pixels(const Run& r, const DwConvArgs& d, int64_t pix, int64_t c, bool cheap) {
  const V bias = r.bias ? loadv<V>(r.bias + c) : V{};
  V acc[P];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) acc[p] = bias;
  const float* xr = r.x + c;
  const float* wr = r.w + c;
  const int64_t xs = r.xs;
#pragma GCC unroll 8
  for (int64_t ky = 0; ky < r.rows; ++ky, xr += r.xrow, wr += r.wrow) {
    const float* base[4] = {xr, xr + 3 * xs, xr + 6 * xs, xr + 9 * xs};
#pragma GCC unroll 8
    for (int kx = 0; kx < K; ++kx) {
      const V w = loadv<V>(wr + kx * r.wc);
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        const int j = p * S + kx;
        acc[p] += loadv<V>(base[j / 3] + (j % 3) * xs) * w;
      }
    }
  }
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) {
    if constexpr (A == kGeneral)
      finish(d, pix + p, c, acc[p], cheap);
    else
      storev(r.y + p * r.ys + c, epilogue_of<A>(acc[p], r.act));
  }
}

template <int K, int S, int P, int A>
inline void pixel_channels(const Run& r, const DwConvArgs& d, int64_t pix, int64_t cend,
                           bool cheap) {
  int64_t c = 0;
  for (; c + kVecWidth <= cend; c += kVecWidth) pixels<VN, K, P, S, A>(r, d, pix, c, cheap);
  for (; c + 4 <= cend; c += 4) pixels<V4, K, P, S, A>(r, d, pix, c, cheap);
}

// P output pixels from column ox of an interior run (K x K kernel, stride S, no dilation) for
// channels [0, cend) (a multiple of 4): pixels outer, channels inner, so every load walks along
// a pixel's contiguous channels.
template <int K, int S, int P>
inline void pixel_run(const DwConvArgs& d, const Row& row, int64_t ox, int64_t cend, bool cheap) {
  Run r;
  r.xs = d.x_stride;
  r.xrow = d.iw * d.x_stride;
  r.wc = d.c;
  r.wrow = K * d.c;
  r.x = d.x + ((row.oy * d.sh - d.ph + row.ky0) * d.iw + ox * S - d.pw) * d.x_stride;
  r.w = d.w + row.ky0 * r.wrow;
  r.bias = d.ep.bias;
  const int64_t pix = row.oy * d.ow + ox;
  r.y = d.y + pix * d.y_stride;
  r.ys = d.y_stride;
  r.rows = row.ky1 - row.ky0;
  r.act = d.ep.act;
  // A row's last few pixels (P = 1) all through finish(): an instantiation per epilogue
  // there would double this body's code for little.
  if constexpr (P == 1)
    pixel_channels<K, S, P, kGeneral>(r, d, pix, cend, cheap);
  else
    with_epilogue(d.ep.act, d.ep.residual != nullptr,
                  [&]<int A>() { pixel_channels<K, S, P, A>(r, d, pix, cend, cheap); });
}

// A column whose window crosses the left or right edge: taps kx0..kx1 only, channels inner.
template <class V>
inline void edge(const DwConvArgs& d, const Row& row, int64_t ox, int64_t c, bool cheap) {
  const int64_t ix0 = ox * d.sw - d.pw;
  const int64_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = d.iw - ix0 < d.kw ? d.iw - ix0 : d.kw;
  V acc = d.ep.bias ? loadv<V>(d.ep.bias + c) : V{};
  for (int64_t ky = row.ky0; ky < row.ky1; ++ky) {
    const float* xr = d.x + ((row.oy * d.sh - d.ph + ky) * d.iw + ix0) * d.x_stride + c;
    const float* wr = d.w + ky * d.kw * d.c + c;
    for (int64_t kx = kx0; kx < kx1; ++kx)
      acc += loadv<V>(xr + kx * d.x_stride) * loadv<V>(wr + kx * d.c);
  }
  finish(d, row.oy * d.ow + ox, c, acc, cheap);
}

inline void edge_run(const DwConvArgs& d, const Row& row, int64_t ox, int64_t cend, bool cheap) {
  int64_t c = 0;
  for (; c + kVecWidth <= cend; c += kVecWidth) edge<VN>(d, row, ox, c, cheap);
  for (; c + 4 <= cend; c += 4) edge<V4>(d, row, ox, c, cheap);
}

// Every column of a row (K x K kernel, stride S, no dilation) for channels [0, cend) (a
// multiple of 4).
template <int K, int S>
inline void row_pixels(const DwConvArgs& d, const Row& row, int64_t cend, bool cheap) {
  int64_t ox = 0;
  for (; ox < row.ox_lo; ++ox) edge_run(d, row, ox, cend, cheap);
  // Four pixels at a time; a last partial group is the last four again (recomputing one to
  // three pixels, with the same operations): a single pixel's taps are one dependent chain
  // of FMAs, several times slower per pixel. Not with a residual, which may be the output
  // itself, already updated: then the last pixels go one at a time.
  for (; ox + 4 <= row.ox_hi; ox += 4) pixel_run<K, S, 4>(d, row, ox, cend, cheap);
  if (ox < row.ox_hi && ox - 4 >= row.ox_lo && !d.ep.residual) {
    pixel_run<K, S, 4>(d, row, row.ox_hi - 4, cend, cheap);
    ox = row.ox_hi;
  }
  for (; ox < row.ox_hi; ++ox) pixel_run<K, S, 1>(d, row, ox, cend, cheap);
  for (; ox < d.ow; ++ox) edge_run(d, row, ox, cend, cheap);
}

// Channels from c0 in blocks of W, every column of the row, for the kernels row_pixels() does
// not cover. The taps' weights stay in registers while the block sweeps the row.
template <class V, int W>
inline int64_t block(const DwConvArgs& d, const Row& row, int64_t c0, bool cheap) {
  const int64_t taps = d.kh * d.kw;
  int64_t c = c0;
  for (; c + W <= d.c; c += W) {
    V w[kMaxTaps];
    for (int64_t t = 0; t < taps; ++t) w[t] = loadv<V>(d.w + t * d.c + c);
    const V bias = d.ep.bias ? loadv<V>(d.ep.bias + c) : V{};
    for (int64_t ox = 0; ox < d.ow; ++ox) {
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
  const bool fast = d.kh == d.kw && d.dh == 1 && d.dw == 1 && (d.kh == 3 || d.kh == 5) &&
                    (d.sw == 1 || d.sw == 2);
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    row.oy = oy;
    row.ky0 = 0;
    row.ky1 = d.kh;
    while (row.ky0 < d.kh && oy * d.sh - d.ph + row.ky0 * d.dh < 0) ++row.ky0;
    while (row.ky1 > row.ky0 && oy * d.sh - d.ph + (row.ky1 - 1) * d.dh >= d.ih) --row.ky1;
    int64_t c = 0;
    if (fast) {
      c = d.c / 4 * 4;
      if (d.kh == 3)
        d.sw == 1 ? row_pixels<3, 1>(d, row, c, cheap) : row_pixels<3, 2>(d, row, c, cheap);
      else
        d.sw == 1 ? row_pixels<5, 1>(d, row, c, cheap) : row_pixels<5, 2>(d, row, c, cheap);
    } else if (d.kh * d.kw <= kMaxTaps) {
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
        activate_stored(d.y + (oy * d.ow + ox) * d.y_stride, d.c, d.ep.act);
  }
}

}  // namespace dwconv_body
