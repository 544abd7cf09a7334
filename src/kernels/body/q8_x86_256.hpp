// Body of the int8 kernels on 256-bit vectors (AVX2), with AVX-VNNI vpdpbusd when kVnni is
// true and vpmaddwd on bytes widened to int16 otherwise (vpmaddubsw would saturate).
// Included by x86_avx2/q8_avx2.cpp and x86_avxvnni/q8_avxvnni.cpp inside an anonymous
// namespace after `constexpr bool kVnni` (and <immintrin.h>, <cstring>, kernels/kernels.hpp),
// so each level's copies are its own (nothing here calls an inline function from outside:
// see body/vec.hpp).
//
// Requantization (requant8) is one fused multiply-add per value of acc, m * 2^-s and a magic
// number plus the zero point, in float where the layer's sums fit 24 bits (acc24) and else in
// two halves of 4 doubles, then the clamp: the FMA's single rounding is the round half to even
// (quant/requant.hpp), so the bytes equal quant::requantize's.
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
  __m256d mz;            // kMagic + zy
  __m256d lo, hi;        // kMagic + lo, kMagic + hi
  __m256 mzf, lof, hif;  // kMagicF + zy, kMagicF + lo, kMagicF + hi
  bool acc24;            // the accumulators are exact floats (Q8GemmArgs::acc24)
  Bounds(int32_t z, int32_t l, int32_t h, bool a24)
      : mz(_mm256_set1_pd(kMagic + z)),
        lo(_mm256_set1_pd(kMagic + l)),
        hi(_mm256_set1_pd(kMagic + h)),
        mzf(_mm256_set1_ps(kMagicF + static_cast<float>(z))),
        lof(_mm256_set1_ps(kMagicF + static_cast<float>(l))),
        hif(_mm256_set1_ps(kMagicF + static_cast<float>(h))),
        acc24(a24) {}
};

// The multipliers m * 2^-s of 8 columns as doubles: columns 0..3 and 4..7.
struct Rq {
  __m256d r0, r1;
  __m256 rf;  // the same as floats (exact: 24-bit mantissas)
};

// 4 multipliers (m in the low 32 bits of each 64-bit lane, s in the high ones) -> m * 2^-s:
// m converted from int32, 2^-s built from its exponent bits (s <= 62: a normal double).
inline __m256d rq_double(__m256i x) {
  const __m256i ms = _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  const __m256d m = _mm256_cvtepi32_pd(_mm256_castsi256_si128(ms));
  const __m256i e = _mm256_sub_epi64(_mm256_set1_epi64x(1023), _mm256_srli_epi64(x, 32));
  return _mm256_mul_pd(m, _mm256_castsi256_pd(_mm256_slli_epi64(e, 52)));
}

inline Rq rq_load(const Multiplier* q, const Bounds&) {
  static_assert(sizeof(Multiplier) == 8);
  const __m256d r0 = rq_double(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
  const __m256d r1 = rq_double(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 4)));
  return {r0, r1, _mm256_set_m128(_mm256_cvtpd_ps(r1), _mm256_cvtpd_ps(r0))};
}

// 4 accumulators: kMagic + zy + acc * r in one fused multiply-add, rounded once in the
// current rounding mode (to nearest even: the library never changes it; the product is
// exact, see quant/requant.hpp), clamped to kMagic + [lo, hi]. In range the value is
// kMagic + round_half_even(acc * r) + zy; a sum that leaves the binade of kMagic
// (|acc * r| >= 2^51) lies beyond the clamp on the same side. -> the 4 low 32-bit words.
inline __m128i rq_half(__m128i acc, __m256d r, const Bounds& b) {
  const __m256d v = _mm256_min_pd(_mm256_max_pd(_mm256_fmadd_pd(_mm256_cvtepi32_pd(acc), r, b.mz), b.lo), b.hi);
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(v), even));
}

// 8 int32 accumulators (column order) -> 8 requantized bytes (the low half), equal to
// quant::requantize's (the clamp commutes with the rounding: its bounds are integers).
inline __m128i requant8(__m256i acc, const Rq& q, const Bounds& b) {
  if (b.acc24) {
    // acc is an exact float and the argument above holds in float with kMagicF (|v| < 2^22):
    // the low byte of each clamped float is the result.
    __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), q.rf, b.mzf);
    v = _mm256_min_ps(_mm256_max_ps(v, b.lof), b.hif);
    const __m256i x = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0xff));
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    return _mm_packus_epi16(w, w);
  }
  const __m128i lo = rq_half(_mm256_castsi256_si128(acc), q.r0, b);
  const __m128i hi = rq_half(_mm256_extracti128_si256(acc, 1), q.r1, b);
  const __m128i w = _mm_packus_epi32(lo, hi);  // values in [lo, hi], inside [0, 255]
  return _mm_packus_epi16(w, w);
}

inline void store_bytes(uint8_t* p, __m128i v, int64_t n) {
  if (n >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), v);
    return;
  }
  uint8_t t[16];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(t), v);
  for (int64_t i = 0; i < n; ++i) p[i] = t[i];
}

inline __m256i bcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// ---- GEMM ------------------------------------------------------------------------------

// Register tile: MR rows x NV panels of 16 columns (2 vectors of 8 int32 each). Without VNNI
// each product needs the even and odd bytes of A and B as int16 (two vpmaddwd), so fewer
// rows fit in the 16 registers.
constexpr int kMR = kVnni ? 6 : 4;
constexpr int kNV = 1;

// acc += a . b (VEX vpdpbusd) in place: GCC 12's intrinsic copies the accumulator around
// each product and then spills the tile; the asm form keeps every accumulator in its register.
inline __m256i dot(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVXVNNI__)
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
#else
  (void)a;
  (void)b;  // not reached: only the VNNI level takes this path
#endif
  return acc;
}

// acc += the int16-pair products of x and w (VEX vpdpwssd with AVX-VNNI, else vpmaddwd +
// add): the depthwise taps, one product per int32 lane (the high int16 of each w lane is 0).
inline __m256i dot16(__m256i acc, __m256i x, __m256i w) {
#if defined(__AVXVNNI__)
  __asm__("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w));
  return acc;
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w));
#endif
}

// Not inlined: one function per tile shape keeps the register allocation to the tile.
template <int MR, int NV>
__attribute__((noinline)) void tile(const Q8GemmArgs& g, int64_t m, int64_t p, int64_t k4,
                                    const Bounds& bd) {
  constexpr int NQ = 2 * NV;
  __m256i acc[MR][NQ];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int q = 0; q < NQ; ++q) acc[r][q] = _mm256_setzero_si256();
  const int8_t* b = g.bp + p * k4 * 64;
  const uint8_t* a = g.a + m * g.lda;
  const int64_t lda = g.lda, bstride = k4 * 64;
  [[maybe_unused]] const __m256i low_bytes = _mm256_set1_epi16(0x00ff);
  for (int64_t kg = 0; kg < k4; ++kg, a += 4, b += 64) {
    if constexpr (kVnni) {
      __m256i bv[NQ];
#pragma GCC unroll 8
      for (int q = 0; q < NQ; ++q)
        bv[q] = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(b + (q / 2) * bstride + (q % 2) * 32));
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m256i av = bcast4(a + r * lda);
#pragma GCC unroll 8
        for (int q = 0; q < NQ; ++q) acc[r][q] = dot(acc[r][q], av, bv[q]);
      }
    } else {
      // Per 32-bit lane: bytes k0 k1 k2 k3 -> int16 pairs (k0, k2) and (k1, k3).
      __m256i be[NQ], bo[NQ];
#pragma GCC unroll 8
      for (int q = 0; q < NQ; ++q) {
        const __m256i x = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(b + (q / 2) * bstride + (q % 2) * 32));
        be[q] = _mm256_srai_epi16(_mm256_slli_epi16(x, 8), 8);
        bo[q] = _mm256_srai_epi16(x, 8);
      }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m256i av = bcast4(a + r * lda);
        const __m256i ae = _mm256_and_si256(av, low_bytes), ao = _mm256_srli_epi16(av, 8);
#pragma GCC unroll 8
        for (int q = 0; q < NQ; ++q)
          acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_add_epi32(_mm256_madd_epi16(ae, be[q]),
                                                                   _mm256_madd_epi16(ao, bo[q])));
      }
    }
  }
  if (g.row_bias) {  // row m's addend (lithe.QMatMulU8)
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256i rb = _mm256_set1_epi32(g.row_bias[m + r]);
#pragma GCC unroll 8
      for (int q = 0; q < NQ; ++q) acc[r][q] = _mm256_add_epi32(acc[r][q], rb);
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < NQ; ++q) {
    const int64_t col0 = p * kPanel + q * 8, valid = g.n - col0;
    if (valid <= 0) continue;
    const Rq rq = rq_load(g.mult + col0, bd);
    const __m256i bias = g.bias
                             ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.bias + col0))
                             : _mm256_setzero_si256();
    if (g.c32) {  // int32 sums for the caller's float output stage
      for (int r = 0; r < MR; ++r) {
        alignas(32) int32_t t[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_add_epi32(acc[r][q], bias));
        int32_t* c = g.c32 + (m + r) * g.ldc32 + col0;
        for (int64_t j = 0; j < valid && j < 8; ++j) c[j] = t[j];
      }
      continue;
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      store_bytes(g.c + (m + r) * g.ldc + col0, requant8(_mm256_add_epi32(acc[r][q], bias), rq, bd),
                  valid);
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
      for (int64_t p = pc; p < pe; ++p) tile_rows<kNV>(rows, g, m, p, k4, bd);
    }
  }
}

// ---- depthwise convolution --------------------------------------------------------------

constexpr int kMaxTaps = 25;

// One output pixel of 8 channels from c: bias + (x - zx) * w over the taps of rows
// [ky0, ky1) and, unless INTERIOR, the columns inside the image. Weights are int32 lanes
// whose high int16 is 0, so vpmaddwd on (x - zx) (in [-255, 255]) gives the exact product.
template <bool INTERIOR>
inline __m256i pixel(const Q8DwConvArgs& d, const uint8_t* xc, int64_t oy, int64_t ox, int64_t ky0,
                     int64_t ky1, const __m256i* w, __m256i acc, __m256i zx) {
  const int64_t xs = d.x_stride, ix0 = ox * d.sw - d.pw;
  for (int64_t ky = ky0; ky < ky1; ++ky) {
    const uint8_t* row = xc + (oy * d.sh - d.ph + ky * d.dh) * d.iw * xs;
    for (int64_t kx = 0; kx < d.kw; ++kx) {
      const int64_t ix = ix0 + kx * d.dw;
      if (!INTERIOR && (ix < 0 || ix >= d.iw)) continue;
      const __m128i xb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + ix * xs));
      const __m256i xv = _mm256_sub_epi32(_mm256_cvtepu8_epi32(xb), zx);
      acc = dot16(acc, xv, w[ky * d.kw + kx]);
    }
  }
  return acc;
}

// Interior columns [ox_lo, ox_hi) of a row whose whole K x K window (no dilation) lies in
// the input: taps unrolled and zx folded into the start value (bias - zx * sum w, equal to
// the reference's sum of (x - zx) * w modulo 2^32).
template <int K>
inline void interior(const Q8DwConvArgs& d, const uint8_t* xc, int64_t oy, int64_t ox_lo,
                     int64_t ox_hi, const __m256i* w, __m256i start, const Rq& q, const Bounds& bd,
                     uint8_t* yc, int32_t* y32c) {
  const int64_t xs = d.x_stride, rs = d.iw * xs, sw = d.sw;
  const uint8_t* top = xc + (oy * d.sh - d.ph) * rs;
  for (int64_t ox = ox_lo; ox < ox_hi; ++ox) {
    const uint8_t* px = top + (ox * sw - d.pw) * xs;
    __m256i acc = start;
#pragma GCC unroll 5
    for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 5
      for (int kx = 0; kx < K; ++kx) {
        const __m128i xb =
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(px + ky * rs + kx * xs));
        acc = dot16(acc, _mm256_cvtepu8_epi32(xb), w[ky * K + kx]);
      }
    if (y32c)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y32c + ox * d.c), acc);
    else
      _mm_storel_epi64(reinterpret_cast<__m128i*>(yc + ox * d.y_stride), requant8(acc, q, bd));
  }
}

inline void block(const Q8DwConvArgs& d, int64_t oy, int64_t ky0, int64_t ky1, int64_t ox_lo,
                  int64_t ox_hi, int64_t c, const Bounds& bd) {
  const int64_t taps = d.kh * d.kw;
  const __m256i low16 = _mm256_set1_epi32(0xffff), zx = _mm256_set1_epi32(d.zx);
  __m256i w[kMaxTaps];
  for (int64_t t = 0; t < taps; ++t) {
    const __m128i wb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(d.w + t * d.c + c));
    w[t] = _mm256_and_si256(_mm256_cvtepi8_epi32(wb), low16);
  }
  const __m256i bias = d.bias ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d.bias + c))
                              : _mm256_setzero_si256();
  const Rq q = rq_load(d.mult + c, bd);
  const uint8_t* xc = d.x + c;
  const bool fast = ky0 == 0 && ky1 == d.kh && d.kh == d.kw && d.dh == 1 && d.dw == 1 &&
                    (d.kh == 3 || d.kh == 5) && ox_lo < ox_hi;
  __m256i start = bias;
  if (fast) {
    __m256i sum = _mm256_setzero_si256();
    for (int64_t t = 0; t < taps; ++t)
      sum = _mm256_add_epi32(sum, _mm256_srai_epi32(_mm256_slli_epi32(w[t], 16), 16));
    start = _mm256_sub_epi32(bias, _mm256_mullo_epi32(zx, sum));
  }
  for (int64_t ox = 0; ox < d.ow; ++ox) {
    if (fast && ox == ox_lo) {
      uint8_t* yc = d.y + oy * d.ow * d.y_stride + c;
      int32_t* y32c = d.y32 ? d.y32 + oy * d.ow * d.c + c : nullptr;
      if (d.kh == 3)
        interior<3>(d, xc, oy, ox_lo, ox_hi, w, start, q, bd, yc, y32c);
      else
        interior<5>(d, xc, oy, ox_lo, ox_hi, w, start, q, bd, yc, y32c);
      ox = ox_hi - 1;
      continue;
    }
    const bool inside = ox >= ox_lo && ox < ox_hi;
    const __m256i acc = inside ? pixel<true>(d, xc, oy, ox, ky0, ky1, w, bias, zx)
                               : pixel<false>(d, xc, oy, ox, ky0, ky1, w, bias, zx);
    if (d.y32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d.y32 + (oy * d.ow + ox) * d.c + c), acc);
    else
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d.y + (oy * d.ow + ox) * d.y_stride + c),
                       requant8(acc, q, bd));
  }
}

inline void dwconv(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1) {
  const Bounds bd(d.zy, d.lo, d.hi, d.acc24);
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
    if (vector)
      for (; c + 8 <= d.c; c += 8) block(d, oy, ky0, ky1, ox_lo, ox_hi, c, bd);
    // The last channels (fewer than 8), or every channel past kMaxTaps taps: one at a time.
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

// quant::qbinary on 8 lanes of a and b (int32): the int32 accumulator, then the float
// multiply, clamp and round half to even of the scalar form.
struct BinaryConsts {
  __m256i za, zb, ka, kb, zy;
  __m256 scale, lo, hi;
  explicit BinaryConsts(const ::lithe::quant::QBinary& p)
      : za(_mm256_set1_epi32(p.za)),
        zb(_mm256_set1_epi32(p.zb)),
        ka(_mm256_set1_epi32(p.ka)),
        kb(_mm256_set1_epi32(p.kb)),
        zy(_mm256_set1_epi32(p.zy)),
        scale(_mm256_set1_ps(p.scale)),
        lo(_mm256_set1_ps(static_cast<float>(-p.zy))),
        hi(_mm256_set1_ps(static_cast<float>(255 - p.zy))) {}
};

// 8 outputs (the low 8 bytes) from 8 bytes of a and b.
template <bool kMul>
inline __m128i binary8(__m128i a8, __m256i b, const BinaryConsts& c) {
  const __m256i a = _mm256_cvtepu8_epi32(a8);
  const __m256i da = _mm256_sub_epi32(a, c.za), db = _mm256_sub_epi32(b, c.zb);
  const __m256i acc = kMul ? _mm256_mullo_epi32(da, db)
                           : _mm256_add_epi32(_mm256_mullo_epi32(da, c.ka), _mm256_mullo_epi32(db, c.kb));
  __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), c.scale);
  v = _mm256_min_ps(_mm256_max_ps(v, c.lo), c.hi);
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), c.zy);  // MXCSR: nearest even
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packus_epi16(w, w);
}

template <bool kMul>
void binary_rows(const Q8BinaryArgs& g) {
  const BinaryConsts c(g.p);
  for (int64_t r = 0; r < g.rows; ++r) {
    const uint8_t* a = g.a + r * g.a_row;
    const uint8_t* b = g.b + r * g.b_row;
    uint8_t* y = g.y + r * g.n;
    const __m256i bs = _mm256_set1_epi32(b[0]);
    auto b_of = [&](const uint8_t* p) {
      return g.b_scalar ? bs : _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    };
    int64_t i = 0;
    for (; i + 8 <= g.n; i += 8)
      store_bytes(y + i,
                  binary8<kMul>(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i)), b_of(b + i), c),
                  8);
    if (i < g.n) {  // the tail through 8-byte copies (y may be the same bytes as a)
      uint8_t ta[8] = {}, tb[8] = {};
      std::memcpy(ta, a + i, static_cast<size_t>(g.n - i));
      if (!g.b_scalar) std::memcpy(tb, b + i, static_cast<size_t>(g.n - i));
      store_bytes(y + i, binary8<kMul>(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ta)), b_of(tb), c),
                  g.n - i);
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
