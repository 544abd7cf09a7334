// Body of the int8 kernels on 512-bit vectors (AVX-512 F/BW/VL/DQ), with AVX512-VNNI vpdpbusd
// when kVnni is true and vpmaddwd on bytes widened to int16 otherwise (vpmaddubsw would
// saturate). Included by x86_avx512/q8_avx512.cpp and x86_avx512vnni/q8_avx512vnni.cpp inside
// an anonymous namespace after `constexpr bool kVnni`, so each level's copies are its own
// (nothing here calls an inline function from outside: see body/vec.hpp).
//
// Requantization (requant16) is one fused multiply-add per value of acc, m * 2^-s and a magic
// number plus the zero point, in float where the layer's sums fit 24 bits (acc24) and else in
// two halves of 8 doubles, then the clamp: the FMA's single rounding is the round half to even
// (quant/requant.hpp), so the bytes equal quant::requantize's.
// The including file has included <immintrin.h>, <cstring> and kernels/kernels.hpp.
#pragma once

namespace q8 {

using namespace ::lithe::kernels;
using ::lithe::quant::Multiplier;

// quant::requantize for one value, with internal linkage (see above).
inline int32_t requant1(int32_t acc, Multiplier q, int32_t zy, int32_t lo, int32_t hi) {
  const int64_t p = static_cast<int64_t>(acc) * q.m;
  const int64_t r = (p + ((int64_t{1} << (q.s - 1)) - 1) + ((p >> q.s) & 1)) >> q.s;
  const int64_t v = r + zy;
  return static_cast<int32_t>(v < lo ? lo : v > hi ? hi : v);
}

// kMagic = 1.5 * 2^52: for |v| < 2^51, kMagic + v lies in [2^52, 2^53), where doubles are
// the integers, so rounding the sum rounds v to an integer and the low 32 bits of the
// double's bits are that integer (two's complement).
constexpr double kMagic = 6755399441055744.0;
// The same in float: 1.5 * 2^23, for |v| < 2^22.
constexpr float kMagicF = 12582912.0f;

struct Bounds {
  __m512d mz;          // kMagic + zy
  __m512d lo, hi;      // kMagic + lo, kMagic + hi
  __m512i lo32, hi32;  // lo, hi
  __m512 mzf, lof, hif;  // kMagicF + zy, kMagicF + lo, kMagicF + hi
  bool acc24;            // the accumulators are exact floats (Q8GemmArgs::acc24)
  Bounds(int32_t z, int32_t l, int32_t h, bool a24)
      : mz(_mm512_set1_pd(kMagic + z)),
        lo(_mm512_set1_pd(kMagic + l)),
        hi(_mm512_set1_pd(kMagic + h)),
        lo32(_mm512_set1_epi32(l)),
        hi32(_mm512_set1_epi32(h)),
        mzf(_mm512_set1_ps(kMagicF + static_cast<float>(z))),
        lof(_mm512_set1_ps(kMagicF + static_cast<float>(l))),
        hif(_mm512_set1_ps(kMagicF + static_cast<float>(h))),
        acc24(a24) {}
};

// The multipliers m * 2^-s of 16 columns as doubles (columns 0..7 and 8..15) and as floats
// (exact: 24-bit mantissas); `wide` when one of them is 1/2 or more.
struct Rq {
  __m512d r0, r1;
  __m512 rf;
  bool wide;
};

// 8 multipliers (m in the low 32 bits of each 64-bit lane, s in the high ones) -> m * 2^-s.
inline __m512d rq_double(__m512i x) {
  const __m512d m = _mm512_cvtepi64_pd(_mm512_and_si512(x, _mm512_set1_epi64(0xffffffff)));
  return _mm512_scalef_pd(m, _mm512_cvtepi64_pd(_mm512_sub_epi64(_mm512_setzero_si512(),
                                                                 _mm512_srli_epi64(x, 32))));
}

// `lanes` (1..16) multipliers from q; the others are not read.
inline Rq rq_load(const Multiplier* q, const Bounds&, int lanes = 16) {
  static_assert(sizeof(Multiplier) == 8);
  __m512i x, y;
  if (lanes >= 16) {
    x = _mm512_loadu_si512(q);
    y = _mm512_loadu_si512(q + 8);
  } else {
    const __mmask8 kx = static_cast<__mmask8>(lanes >= 8 ? 0xff : (1u << lanes) - 1);
    const __mmask8 ky = static_cast<__mmask8>(lanes <= 8 ? 0 : (1u << (lanes - 8)) - 1);
    x = _mm512_maskz_loadu_epi64(kx, q);
    y = _mm512_maskz_loadu_epi64(ky, q + 8);
  }
  // m * 2^-s >= 1/2 <=> m != 0 and s <= kMultiplierBits (m in [2^(bits-1), 2^bits)).
  const __m512i bits = _mm512_set1_epi64(::lithe::quant::kMultiplierBits + 1), low = _mm512_set1_epi64(0xffffffff);
  const bool wide =
      (_mm512_mask_cmplt_epi64_mask(_mm512_test_epi64_mask(x, low), _mm512_srli_epi64(x, 32), bits) |
       _mm512_mask_cmplt_epi64_mask(_mm512_test_epi64_mask(y, low), _mm512_srli_epi64(y, 32), bits)) != 0;
  const __m512d r0 = rq_double(x), r1 = rq_double(y);
  const __m512 rf = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(r0)), _mm512_cvtpd_ps(r1), 1);
  return {r0, r1, rf, wide};
}

// 8 accumulators: kMagic + zy + acc * r in one fused multiply-add, rounded to nearest even
// once (the product inside it is exact, see quant/requant.hpp). While |acc * r| < 2^51 the
// value is kMagic + round_half_even(acc * r) + zy, and its low 32 bits are
// round_half_even(acc * r) + zy.
inline __m512d rq_fma(__m256i acc, __m512d r, const Bounds& b) {
  return _mm512_fmadd_round_pd(_mm512_cvtepi32_pd(acc), r, b.mz, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// 16 int32 accumulators (column order) -> 16 requantized bytes, equal to quant::requantize's.
// With every multiplier under 1/2, |acc * r + zy| < 2^30 + 2^8 and the sums' low 32 bits are
// the exact int32 values, clamped as integers. Otherwise the clamp to kMagic + [lo, hi] is done
// on the doubles (it commutes with the rounding: its bounds are integers): a sum that left
// the binade of kMagic (|acc * r| >= 2^51) lies beyond it on the same side, so it saturates.
inline __m128i requant16(__m512i acc, const Rq& q, const Bounds& b) {
  if (b.acc24) {
    // acc is an exact float, and the double form's argument holds in float: kMagicF + zy +
    // acc * r rounded once is kMagicF + round_half_even(acc * r) + zy while that is under
    // 2^22 away from kMagicF, and beyond the clamp on the same side otherwise. The low byte
    // of the clamped float is the result.
    __m512 v = _mm512_fmadd_round_ps(_mm512_cvtepi32_ps(acc), q.rf, b.mzf,
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, b.lof), b.hif);
    return _mm512_cvtepi32_epi8(_mm512_castps_si512(v));
  }
  __m512d lo = rq_fma(_mm512_castsi512_si256(acc), q.r0, b);
  __m512d hi = rq_fma(_mm512_extracti64x4_epi64(acc, 1), q.r1, b);
  if (q.wide) {
    lo = _mm512_min_pd(_mm512_max_pd(lo, b.lo), b.hi);
    hi = _mm512_min_pd(_mm512_max_pd(hi, b.lo), b.hi);
  }
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512i v = _mm512_permutex2var_epi32(_mm512_castpd_si512(lo), even, _mm512_castpd_si512(hi));
  if (!q.wide) v = _mm512_min_epi32(_mm512_max_epi32(v, b.lo32), b.hi32);
  return _mm512_cvtepi32_epi8(v);
}

inline __m512i bcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// ---- GEMM ------------------------------------------------------------------------------

// Register tile: MR rows x NV panels of 16 int32 accumulators. Without VNNI each product
// needs the even and odd bytes of A and B as int16 (two vpmaddwd), so fewer rows fit.
constexpr int kMR = kVnni ? 12 : 8;
constexpr int kNV = 2;

// acc += a . b (vpdpbusd) in place: GCC 12's intrinsic copies the accumulator around each
// product and then spills the tile; the asm form keeps every accumulator in its register.
inline __m512i dot(__m512i acc, __m512i a, __m512i b) {
#if defined(__AVX512VNNI__)
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
#else
  (void)a;
  (void)b;  // not reached: only the VNNI level takes this path
#endif
  return acc;
}

// acc += the int16-pair products of x and w (vpdpwssd with VNNI, else vpmaddwd + add): the
// depthwise taps, one product per int32 lane (the high int16 of each w lane is 0).
inline __m512i dot16(__m512i acc, __m512i x, __m512i w) {
#if defined(__AVX512VNNI__)
  __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
  return acc;
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(x, w));
#endif
}

// Not inlined: one function per tile shape keeps the register allocation to the tile.
template <int MR, int NV>
__attribute__((noinline)) void tile(const Q8GemmArgs& g, int64_t m, int64_t p, int64_t k4,
                                    const Bounds& bd) {
  // The sums start at the column bias (padded to whole panels).
  __m512i acc[MR][NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __m512i bias = g.bias ? _mm512_loadu_si512(g.bias + (p + v) * kPanel) : _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r][v] = bias;
  }
  const int8_t* b = g.bp + p * k4 * 64;
  const uint8_t* a = g.a + m * g.lda;
  const int64_t lda = g.lda, bstride = k4 * 64;
  [[maybe_unused]] const __m512i low_bytes = _mm512_set1_epi16(0x00ff);
  for (int64_t kg = 0; kg < k4; ++kg, a += 4, b += 64) {
    if constexpr (kVnni) {
      __m512i bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + v * bstride);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512i av = bcast4(a + r * lda);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = dot(acc[r][v], av, bv[v]);
      }
    } else {
      // Per 32-bit lane: bytes k0 k1 k2 k3 -> int16 pairs (k0, k2) and (k1, k3).
      __m512i be[NV], bo[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const __m512i x = _mm512_loadu_si512(b + v * bstride);
        be[v] = _mm512_srai_epi16(_mm512_slli_epi16(x, 8), 8);
        bo[v] = _mm512_srai_epi16(x, 8);
      }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512i av = bcast4(a + r * lda);
        const __m512i ae = _mm512_and_si512(av, low_bytes), ao = _mm512_srli_epi16(av, 8);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          acc[r][v] = _mm512_add_epi32(acc[r][v], _mm512_add_epi32(_mm512_madd_epi16(ae, be[v]),
                                                                   _mm512_madd_epi16(ao, bo[v])));
      }
    }
  }
  if (g.row_bias) {  // row m's addend (lithe.QMatMulU8)
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i rb = _mm512_set1_epi32(g.row_bias[m + r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_add_epi32(acc[r][v], rb);
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int64_t col0 = (p + v) * kPanel, valid = g.n - col0;
    const Rq q = rq_load(g.mult + col0, bd);
    const __mmask16 mask = static_cast<__mmask16>(valid >= 16 ? 0xffff : (1u << valid) - 1);
    if (g.c32) {  // int32 sums for the caller's float output stage
      for (int r = 0; r < MR; ++r)
        _mm512_mask_storeu_epi32(g.c32 + (m + r) * g.ldc32 + col0, mask, acc[r][v]);
      continue;
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m128i y = requant16(acc[r][v], q, bd);
      uint8_t* c = g.c + (m + r) * g.ldc + col0;
      if (valid >= 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(c), y);
      else
        _mm_mask_storeu_epi8(c, mask, y);
    }
  }
}

// `rows` (1..kMR) rows from m: the tile of exactly that many rows.
template <int NV, int R = kMR>
inline void tile_rows(int rows, const Q8GemmArgs& g, int64_t m, int64_t p, int64_t k4,
                      const Bounds& bd) {
  if constexpr (R == 1) {
    tile<1, NV>(g, m, p, k4, bd);
  } else {
    if (rows == R)
      tile<R, NV>(g, m, p, k4, bd);
    else
      tile_rows<NV, R - 1>(rows, g, m, p, k4, bd);
  }
}

inline void gemm(const Q8GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const int64_t k4 = (g.k + 3) / 4;
  const Bounds bd(g.zy, g.lo, g.hi, g.acc24);
  // Panels in chunks whose packed B stays in L2 while all rows sweep them; within a chunk,
  // one row tile of A (MR x K bytes, in L1) meets every panel.
  int64_t chunk = (int64_t{192} << 10) / (k4 * 64);
  chunk = chunk < kNV ? kNV : chunk / kNV * kNV;
  for (int64_t pc = p0; pc < p1; pc += chunk) {
    const int64_t pe = pc + chunk < p1 ? pc + chunk : p1;
    for (int64_t m = m0; m < m1; m += kMR) {
      const int rows = static_cast<int>(m1 - m < kMR ? m1 - m : kMR);
      int64_t p = pc;
      for (; p + kNV <= pe; p += kNV) tile_rows<kNV>(rows, g, m, p, k4, bd);
      for (; p < pe; ++p) tile_rows<1>(rows, g, m, p, k4, bd);
    }
  }
}

// ---- depthwise convolution --------------------------------------------------------------

constexpr int kMaxTaps = 25;

// One output pixel of 16 (FULL) or `mask` channels from c: bias + (x - zx) * w over the taps
// of rows [ky0, ky1) and, unless INTERIOR, the columns inside the image. Weights are int32
// lanes whose high int16 is 0, so vpmaddwd on (x - zx) (in [-255, 255]) gives the exact
// product in each lane.
template <bool FULL, bool INTERIOR>
inline __m512i pixel(const Q8DwConvArgs& d, const uint8_t* xc, int64_t oy, int64_t ox, int64_t ky0,
                     int64_t ky1, const __m512i* w, __m512i acc, __mmask16 mask, __m512i zx) {
  const int64_t xs = d.x_stride, ix0 = ox * d.sw - d.pw;
  for (int64_t ky = ky0; ky < ky1; ++ky) {
    const uint8_t* row = xc + (oy * d.sh - d.ph + ky * d.dh) * d.iw * xs;
    for (int64_t kx = 0; kx < d.kw; ++kx) {
      const int64_t ix = ix0 + kx * d.dw;
      if (!INTERIOR && (ix < 0 || ix >= d.iw)) continue;
      const __m128i xb = FULL ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + ix * xs))
                              : _mm_maskz_loadu_epi8(mask, row + ix * xs);
      const __m512i xv = _mm512_sub_epi32(_mm512_cvtepu8_epi32(xb), zx);
      acc = dot16(acc, xv, w[ky * d.kw + kx]);
    }
  }
  return acc;
}

// Interior 3 x 3 pixels four at a time, stride SW: each input column of the window rows is
// widened once for the (up to 3) outputs that read it instead of once per output (stride 1:
// 18 widenings for 4 pixels instead of 36). Returns the first column it did not do.
template <int SW, bool FULL>
inline int64_t strip(const Q8DwConvArgs& d, const uint8_t* top, int64_t ox_lo, int64_t ox_hi,
                     const __m512i* w, __m512i start, const Rq& q, const Bounds& bd, __mmask16 mask,
                     uint8_t* yc) {
  constexpr int P = 4, K = 3, kCols = (P - 1) * SW + K;
  const int64_t xs = d.x_stride, rs = d.iw * xs;
  int64_t ox = ox_lo;
  for (; ox + P <= ox_hi; ox += P) {
    const uint8_t* px = top + (ox * SW - d.pw) * xs;
    __m512i acc[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) acc[p] = start;
#pragma GCC unroll 3
    for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 9
      for (int j = 0; j < kCols; ++j) {
        const uint8_t* src = px + ky * rs + j * xs;
        const __m128i xb = FULL ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(src))
                                : _mm_maskz_loadu_epi8(mask, src);
        const __m512i xv = _mm512_cvtepu8_epi32(xb);
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) {
          const int kx = j - p * SW;
          if (kx >= 0 && kx < K) acc[p] = dot16(acc[p], xv, w[ky * K + kx]);
        }
      }
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) {
      const __m128i y = requant16(acc[p], q, bd);
      uint8_t* out = yc + (ox + p) * d.y_stride;
      if (FULL)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), y);
      else
        _mm_mask_storeu_epi8(out, mask, y);
    }
  }
  return ox;
}

// Interior columns [ox_lo, ox_hi) of a row whose whole K x K window (no dilation) lies in
// the input: taps unrolled, weights in registers, and zx folded into the start value
// (bias - zx * sum w, equal to the reference's sum of (x - zx) * w modulo 2^32).
template <int K, bool FULL>
inline void interior(const Q8DwConvArgs& d, const uint8_t* xc, int64_t oy, int64_t ox_lo,
                     int64_t ox_hi, const __m512i* wt, __m512i start, const Rq& q, const Bounds& bd,
                     __mmask16 mask, uint8_t* yc, int32_t* y32c) {
  __m512i w[K * K];
#pragma GCC unroll 25
  for (int t = 0; t < K * K; ++t) w[t] = wt[t];
  const int64_t xs = d.x_stride, rs = d.iw * xs, sw = d.sw;
  const uint8_t* top = xc + (oy * d.sh - d.ph) * rs;
  int64_t ox = ox_lo;
  if constexpr (K == 3) {
    if (!y32c && (sw == 1 || sw == 2)) {
      ox = sw == 1 ? strip<1, FULL>(d, top, ox_lo, ox_hi, w, start, q, bd, mask, yc)
                   : strip<2, FULL>(d, top, ox_lo, ox_hi, w, start, q, bd, mask, yc);
    }
  }
  for (; ox < ox_hi; ++ox) {
    const uint8_t* px = top + (ox * sw - d.pw) * xs;
    __m512i acc = start;
#pragma GCC unroll 5
    for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 5
      for (int kx = 0; kx < K; ++kx) {
        const uint8_t* src = px + ky * rs + kx * xs;
        const __m128i xb = FULL ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(src))
                                : _mm_maskz_loadu_epi8(mask, src);
        acc = dot16(acc, _mm512_cvtepu8_epi32(xb), w[ky * K + kx]);
      }
    if (y32c) {
      _mm512_mask_storeu_epi32(y32c + ox * d.c, mask, acc);
      continue;
    }
    const __m128i y = requant16(acc, q, bd);
    uint8_t* out = yc + ox * d.y_stride;
    if (FULL)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), y);
    else
      _mm_mask_storeu_epi8(out, mask, y);
  }
}

template <bool FULL>
inline void block(const Q8DwConvArgs& d, int64_t oy, int64_t ky0, int64_t ky1, int64_t ox_lo,
                  int64_t ox_hi, int64_t c, const Bounds& bd) {
  const int64_t taps = d.kh * d.kw;
  const int lanes = static_cast<int>(d.c - c < 16 ? d.c - c : 16);
  const __mmask16 mask = static_cast<__mmask16>(FULL ? 0xffff : (1u << lanes) - 1);
  const __m512i low16 = _mm512_set1_epi32(0xffff), zx = _mm512_set1_epi32(d.zx);
  __m512i w[kMaxTaps];
  for (int64_t t = 0; t < taps; ++t) {
    const __m128i wb = FULL ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(d.w + t * d.c + c))
                            : _mm_maskz_loadu_epi8(mask, d.w + t * d.c + c);
    w[t] = _mm512_and_si512(_mm512_cvtepi8_epi32(wb), low16);
  }
  const __m512i bias = !d.bias ? _mm512_setzero_si512()
                       : FULL  ? _mm512_loadu_si512(d.bias + c)
                               : _mm512_maskz_loadu_epi32(mask, d.bias + c);
  const Rq q = rq_load(d.mult + c, bd, lanes);
  const uint8_t* xc = d.x + c;
  const bool fast = ky0 == 0 && ky1 == d.kh && d.kh == d.kw && d.dh == 1 && d.dw == 1 &&
                    (d.kh == 3 || d.kh == 5) && ox_lo < ox_hi;
  __m512i start = bias;
  if (fast) {
    __m512i sum = _mm512_setzero_si512();
    for (int64_t t = 0; t < taps; ++t)
      sum = _mm512_add_epi32(sum, _mm512_srai_epi32(_mm512_slli_epi32(w[t], 16), 16));
    start = _mm512_sub_epi32(bias, _mm512_mullo_epi32(zx, sum));
  }
  for (int64_t ox = 0; ox < d.ow; ++ox) {
    if (fast && ox == ox_lo) {
      uint8_t* yc = d.y + oy * d.ow * d.y_stride + c;
      int32_t* y32c = d.y32 ? d.y32 + oy * d.ow * d.c + c : nullptr;
      if (d.kh == 3)
        interior<3, FULL>(d, xc, oy, ox_lo, ox_hi, w, start, q, bd, mask, yc, y32c);
      else
        interior<5, FULL>(d, xc, oy, ox_lo, ox_hi, w, start, q, bd, mask, yc, y32c);
      ox = ox_hi - 1;
      continue;
    }
    const bool inside = ox >= ox_lo && ox < ox_hi;
    const __m512i acc = inside ? pixel<FULL, true>(d, xc, oy, ox, ky0, ky1, w, bias, mask, zx)
                               : pixel<FULL, false>(d, xc, oy, ox, ky0, ky1, w, bias, mask, zx);
    if (d.y32) {
      _mm512_mask_storeu_epi32(d.y32 + (oy * d.ow + ox) * d.c + c, mask, acc);
      continue;
    }
    const __m128i y = requant16(acc, q, bd);
    uint8_t* out = d.y + (oy * d.ow + ox) * d.y_stride + c;
    if (FULL)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), y);
    else
      _mm_mask_storeu_epi8(out, mask, y);
  }
}

// The row-cached path (d.rows): per block of 16 channels, input rows widened once to int32
// lanes (x in the low 16 bits) with zx in the padding columns and for rows outside the image,
// so every output pixel is the same K x K sum of vpdpwssd / vpmaddwd on rows that stay in L1
// for the K output rows reading each; the start value bias - zx * sum(w) cancels the padding,
// as in interior(). Channel blocks outermost: their weights, bias and multipliers are set up
// once per call, not once per output row (7x7 and 14x14 rows are short).
template <int K>
inline void dw_rows(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1) {
  const Bounds bd(d.zy, d.lo, d.hi, d.acc24);
  const int64_t right = (d.ow - 1) * d.sw - d.pw + (K - 1) - (d.iw - 1);
  const int64_t wrow = d.pw + d.iw + (right > 0 ? right : 0), rstride = wrow * 16;
  const __m512i zx = _mm512_set1_epi32(d.zx), low16 = _mm512_set1_epi32(0xffff);
  for (int64_t c = 0; c < d.c; c += 16) {
    const int lanes = static_cast<int>(d.c - c < 16 ? d.c - c : 16);
    const __mmask16 mask = static_cast<__mmask16>(lanes == 16 ? 0xffff : (1u << lanes) - 1);
    __m512i w[K * K];
    __m512i sum = _mm512_setzero_si512();
    for (int t = 0; t < K * K; ++t) {
      const __m512i wv = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, d.w + t * d.c + c));
      sum = _mm512_add_epi32(sum, wv);
      w[t] = _mm512_and_si512(wv, low16);
    }
    const __m512i bias = d.bias ? _mm512_maskz_loadu_epi32(mask, d.bias + c) : _mm512_setzero_si512();
    const __m512i start = _mm512_sub_epi32(bias, _mm512_mullo_epi32(zx, sum));
    const Rq q = rq_load(d.mult + c, bd, lanes);
    int64_t held[K];
    for (int k = 0; k < K; ++k) held[k] = -(int64_t{1} << 62);
    // Cached row iy of this channel block (slot iy mod K: the K rows of one output row never
    // share a slot).
    auto row = [&](int64_t iy) -> const int32_t* {
      const int64_t slot = ((iy % K) + K) % K;
      int32_t* r = d.rows + slot * rstride;
      if (held[slot] == iy) return r;
      held[slot] = iy;
      if (iy < 0 || iy >= d.ih) {
        for (int64_t i = 0; i < rstride; i += 16) _mm512_storeu_si512(r + i, zx);
        return r;
      }
      for (int64_t i = 0; i < d.pw * 16; i += 16) _mm512_storeu_si512(r + i, zx);
      for (int64_t i = (d.pw + d.iw) * 16; i < rstride; i += 16) _mm512_storeu_si512(r + i, zx);
      const uint8_t* src = d.x + iy * d.iw * d.x_stride + c;
      int32_t* dst = r + d.pw * 16;
      for (int64_t ix = 0; ix < d.iw; ++ix, src += d.x_stride, dst += 16)
        _mm512_storeu_si512(dst, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, src)));
      return r;
    };
    for (int64_t oy = oy0; oy < oy1; ++oy) {
      const int32_t* rows[K];
      for (int k = 0; k < K; ++k) rows[k] = row(oy * d.sh - d.ph + k);
      uint8_t* out = d.y + oy * d.ow * d.y_stride + c;
      // Pixels ox.. ox + P - 1: P independent chains of K * K dependent products (one chain
      // leaves the core waiting on each product's latency), four, then two, then one.
      auto pixels = [&]<int P>(int64_t ox) {
        __m512i acc[P];
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) acc[p] = start;
#pragma GCC unroll 5
        for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 5
          for (int kx = 0; kx < K; ++kx)
#pragma GCC unroll 4
            for (int p = 0; p < P; ++p)
              acc[p] = dot16(acc[p], _mm512_loadu_si512(rows[ky] + ((ox + p) * d.sw + kx) * 16), w[ky * K + kx]);
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p)
          _mm_mask_storeu_epi8(out + (ox + p) * d.y_stride, mask, requant16(acc[p], q, bd));
      };
      int64_t ox = 0;
      if constexpr (K == 3)
        for (; ox + 4 <= d.ow; ox += 4) pixels.template operator()<4>(ox);
      for (; ox + 2 <= d.ow; ox += 2) pixels.template operator()<2>(ox);
      if (ox < d.ow) pixels.template operator()<1>(ox);
    }
  }
}

// 3 x 3 depthwise with VNNI and VBMI (d.rows, stride 1 or 2, no dilation, requantized): per
// block of 16 channels, the window's input rows are copied once as bytes, 16 per pixel, with
// zx in the padding, so that any pixel's three taps of a row are bytes 0, 16 and 32 of one
// unaligned load. One byte permute gathers them into each channel's
// 32-bit lane as (x0, x1, x2, 0) and one vpdpbusd adds the row's three products: three
// instructions per pixel and row where the widening path needs six, and no border pixels
// (the start value bias - zx * sum(w) cancels the padding, as in interior()).
template <int SW>
__attribute__((target("avx512vbmi"))) void dw_bytes(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1) {
  constexpr int K = 3;
  const Bounds bd(d.zy, d.lo, d.hi, d.acc24);
  const int64_t right = (d.ow - 1) * SW - d.pw + (K - 1) - (d.iw - 1);
  const int64_t wrow = d.pw + d.iw + (right > 0 ? right : 0), rstride = q8_dw_byte_row(wrow);
  auto* const cache = reinterpret_cast<uint8_t*>(d.rows);
  alignas(64) uint8_t idx_bytes[64];
  for (int j = 0; j < 16; ++j)
    for (int t = 0; t < 4; ++t) idx_bytes[4 * j + t] = static_cast<uint8_t>(t < 3 ? t * 16 + j : 0);
  const __m512i idx = _mm512_load_si512(idx_bytes);
  constexpr __mmask64 kTaps = 0x7777777777777777ull;  // byte 3 of each lane is 0
  const __m512i zx8 = _mm512_set1_epi8(static_cast<char>(d.zx));
  for (int64_t c = 0; c < d.c; c += 16) {
    const int lanes = static_cast<int>(d.c - c < 16 ? d.c - c : 16);
    const __mmask16 mask = static_cast<__mmask16>(lanes == 16 ? 0xffff : (1u << lanes) - 1);
    // Row ky's weights as lanes (w0, w1, w2, 0), and the start value.
    alignas(64) int8_t wq[K][64] = {};
    int32_t sum[16] = {};
    for (int j = 0; j < lanes; ++j)
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx) {
          const int8_t wv = d.w[(ky * K + kx) * d.c + c + j];
          wq[ky][4 * j + kx] = wv;
          sum[j] += wv;
        }
    __m512i w[K];
    for (int ky = 0; ky < K; ++ky) w[ky] = _mm512_load_si512(wq[ky]);
    const __m512i bias = d.bias ? _mm512_maskz_loadu_epi32(mask, d.bias + c) : _mm512_setzero_si512();
    const __m512i start =
        _mm512_sub_epi32(bias, _mm512_mullo_epi32(_mm512_set1_epi32(d.zx), _mm512_loadu_si512(sum)));
    const Rq q = rq_load(d.mult + c, bd, lanes);
    int64_t held[K];
    for (int k = 0; k < K; ++k) held[k] = -(int64_t{1} << 62);
    auto row = [&](int64_t iy) -> const uint8_t* {
      const int64_t slot = ((iy % K) + K) % K;
      uint8_t* r = cache + slot * rstride;
      if (held[slot] == iy) return r;
      held[slot] = iy;
      if (iy < 0 || iy >= d.ih) {
        for (int64_t i = 0; i < rstride; i += 64) _mm512_storeu_si512(r + i, zx8);
        return r;
      }
      for (int64_t i = 0; i < d.pw; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(r + i * 16), _mm512_castsi512_si128(zx8));
      for (int64_t i = (d.pw + d.iw) * 16; i < rstride; i += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(r + i), _mm512_castsi512_si128(zx8));
      const uint8_t* src = d.x + iy * d.iw * d.x_stride + c;
      uint8_t* dst = r + d.pw * 16;
      for (int64_t ix = 0; ix < d.iw; ++ix, src += d.x_stride, dst += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_maskz_loadu_epi8(mask, src));
      return r;
    };
    for (int64_t oy = oy0; oy < oy1; ++oy) {
      const uint8_t* rows[K];
      for (int k = 0; k < K; ++k) rows[k] = row(oy * d.sh - d.ph + k);
      uint8_t* out = d.y + oy * d.ow * d.y_stride + c;
      // Pixels ox .. ox + P - 1, P independent chains.
      auto pixels = [&]<int P>(int64_t ox) __attribute__((target("avx512vbmi"))) {
        __m512i acc[P];
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) acc[p] = start;
#pragma GCC unroll 3
        for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 4
          for (int p = 0; p < P; ++p) {
            const uint8_t* px = rows[ky] + (ox + p) * SW * 16;
            const __m512i taps = _mm512_maskz_permutexvar_epi8(kTaps, idx, _mm512_loadu_si512(px));
            acc[p] = dot(acc[p], taps, w[ky]);
          }
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p)
          _mm_mask_storeu_epi8(out + (ox + p) * d.y_stride, mask, requant16(acc[p], q, bd));
      };
      int64_t ox = 0;
      for (; ox + 4 <= d.ow; ox += 4) pixels.template operator()<4>(ox);
      for (; ox < d.ow; ++ox) pixels.template operator()<1>(ox);
    }
  }
}

inline void dwconv(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1) {
  const Bounds bd(d.zy, d.lo, d.hi, d.acc24);
  if constexpr (kVnni) {
    static const bool vbmi = ::lithe::kernels::cpu_features().avx512vbmi;
    if (vbmi && d.rows && !d.y32 && d.kh == 3 && d.kw == 3 && d.dh == 1 && d.dw == 1 &&
        (d.sw == 1 || d.sw == 2))
      return d.sw == 1 ? dw_bytes<1>(d, oy0, oy1) : dw_bytes<2>(d, oy0, oy1);
  }
  // Measured (bench_kernels q8_dwconv_rows/...): faster where borders are a large share of the
  // row (ow <= 16: 7x7x960 1.6x, 14x14x576 1.2x), slower on wider rows (28x28x192 0.8x) and
  // with stride 2, where the 3 x 3 strips widen each column once for several pixels.
  if (d.rows && !d.y32 && d.kh == d.kw && d.dh == 1 && d.dw == 1 && (d.kh == 3 || d.kh == 5) &&
      d.sh == 1 && d.sw == 1 && d.ow <= 16)
    return d.kh == 3 ? dw_rows<3>(d, oy0, oy1) : dw_rows<5>(d, oy0, oy1);
  // Output columns whose window lies inside the input columns.
  const int64_t ox_lo = (d.pw + d.sw - 1) / d.sw;
  const int64_t last = d.iw - 1 - (d.kw - 1) * d.dw + d.pw;
  int64_t ox_hi = last < 0 ? 0 : last / d.sw + 1;
  if (ox_hi > d.ow) ox_hi = d.ow;
  if (ox_hi < ox_lo) ox_hi = ox_lo;
  const bool vector = d.kh * d.kw <= kMaxTaps;
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    int64_t ky0 = 0, ky1 = d.kh;
    while (ky0 < d.kh && oy * d.sh - d.ph + ky0 * d.dh < 0) ++ky0;
    while (ky1 > ky0 && oy * d.sh - d.ph + (ky1 - 1) * d.dh >= d.ih) --ky1;
    int64_t c = 0;
    if (vector) {
      for (; c + 16 <= d.c; c += 16) block<true>(d, oy, ky0, ky1, ox_lo, ox_hi, c, bd);
      if (c < d.c) block<false>(d, oy, ky0, ky1, ox_lo, ox_hi, c, bd);
      continue;
    }
    // More taps than registers hold (no real model): one channel at a time.
    for (; c < d.c; ++c)
      for (int64_t ox = 0; ox < d.ow; ++ox) {
        int32_t acc = d.bias ? d.bias[c] : 0;
        for (int64_t ky = ky0; ky < ky1; ++ky) {
          const int64_t iy = oy * d.sh - d.ph + ky * d.dh;
          for (int64_t kx = 0; kx < d.kw; ++kx) {
            const int64_t ix = ox * d.sw - d.pw + kx * d.dw;
            if (ix < 0 || ix >= d.iw) continue;
            const int32_t xv = d.x[(iy * d.iw + ix) * d.x_stride + c];
            acc += (xv - d.zx) * d.w[(ky * d.kw + kx) * d.c + c];
          }
        }
        if (d.y32)
          d.y32[(oy * d.ow + ox) * d.c + c] = acc;
        else
          d.y[(oy * d.ow + ox) * d.y_stride + c] =
              static_cast<uint8_t>(requant1(acc, d.mult[c], d.zy, d.lo, d.hi));
      }
  }
}

// ---- Add / Mul -------------------------------------------------------------------------

// quant::qbinary on 16 lanes of a and b (int32): the int32 accumulator, then the float
// multiply, clamp and round half to even of the scalar form.
struct BinaryConsts {
  __m512i za, zb, ka, kb, zy;
  __m512 scale, lo, hi;
  explicit BinaryConsts(const ::lithe::quant::QBinary& p)
      : za(_mm512_set1_epi32(p.za)),
        zb(_mm512_set1_epi32(p.zb)),
        ka(_mm512_set1_epi32(p.ka)),
        kb(_mm512_set1_epi32(p.kb)),
        zy(_mm512_set1_epi32(p.zy)),
        scale(_mm512_set1_ps(p.scale)),
        lo(_mm512_set1_ps(static_cast<float>(-p.zy))),
        hi(_mm512_set1_ps(static_cast<float>(255 - p.zy))) {}
};

template <bool kMul>
inline __m128i binary16(__m512i a, __m512i b, const BinaryConsts& c) {
  const __m512i da = _mm512_sub_epi32(a, c.za), db = _mm512_sub_epi32(b, c.zb);
  const __m512i acc = kMul ? _mm512_mullo_epi32(da, db)
                           : _mm512_add_epi32(_mm512_mullo_epi32(da, c.ka), _mm512_mullo_epi32(db, c.kb));
  __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), c.scale);
  v = _mm512_min_ps(_mm512_max_ps(v, c.lo), c.hi);
  const __m512i q = _mm512_add_epi32(
      _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), c.zy);
  return _mm512_cvtepi32_epi8(q);
}

template <bool kMul>
void binary_rows(const Q8BinaryArgs& g) {
  const BinaryConsts c(g.p);
  for (int64_t r = 0; r < g.rows; ++r) {
    const uint8_t* a = g.a + r * g.a_row;
    const uint8_t* b = g.b + r * g.b_row;
    uint8_t* y = g.y + r * g.n;
    const __m512i bs = _mm512_set1_epi32(b[0]);
    int64_t i = 0;
    for (; i + 16 <= g.n; i += 16) {
      const __m512i av = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
      const __m512i bv =
          g.b_scalar ? bs : _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), binary16<kMul>(av, bv, c));
    }
    if (i < g.n) {
      const __mmask16 k = static_cast<__mmask16>((1u << (g.n - i)) - 1);
      const __m512i av = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, a + i));
      const __m512i bv = g.b_scalar ? bs : _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, b + i));
      _mm_mask_storeu_epi8(y + i, k, binary16<kMul>(av, bv, c));
    }
  }
}

inline void binary(const Q8BinaryArgs& g) {
  if (g.n <= 0) return;
  if (g.p.mul)
    binary_rows<true>(g);
  else
    binary_rows<false>(g);
}

}  // namespace q8
