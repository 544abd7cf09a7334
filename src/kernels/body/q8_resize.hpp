// INT8 linear Resize (kernels.hpp Q8ResizeArgs) with channels as the vector dimension: per
// output pixel four source pixels and four scalar weights (wy_i * wx_j), then per block of
// channels the sum of quant/qresize.hpp, operation for operation: bytes - zero point to
// float (exact), one multiply and three explicit FMAs (no multiply left for FMA contraction
// to fuse, so the levels' flags do not matter), clamp to [-z, 255 - z], round half to even,
// + z. 512 bits: 16 channels a block, the tail one masked block; 256 bits: 8 a block, the
// tail scalar. One channel (NCHW planes) with a scratch row pair: output columns are the
// vector dimension, the two source rows widened to q - z floats once per output row and
// gathered, the weights wy_i * wx_j per lane (the same products). The portable level and
// rows of 2 to 7 channels take the scalar form. Included by level.hpp inside the level's
// anonymous namespace.
namespace q8resize_body {

// Channels [c0, c1) of one output pixel from its four source pixels, one value at a time.
inline void pixel_scalar(const uint8_t* const p[4], const float w[4], int32_t z, uint8_t* y,
                         int64_t c0, int64_t c1) {
  using ::lithe::quant::qresize_add;
  for (int64_t c = c0; c < c1; ++c) {
    float acc = ::lithe::quant::qresize_first(w[0], int32_t{p[0][c]} - z);
    acc = qresize_add(acc, w[1], int32_t{p[1][c]} - z);
    acc = qresize_add(acc, w[2], int32_t{p[2][c]} - z);
    acc = qresize_add(acc, w[3], int32_t{p[3][c]} - z);
    y[c] = ::lithe::quant::qresize_code(acc, z);
  }
}

// The four source pixels and weights of output pixel (oy, ox) of a row whose source rows
// are s0, s1.
struct Taps {
  const uint8_t* p[4];
  float w[4];
  Taps(const Q8ResizeArgs& a, const uint8_t* s0, const uint8_t* s1, int64_t oy, int64_t ox) {
    const int64_t x0 = a.ix0[ox] * a.c, x1 = a.ix1[ox] * a.c;
    const float wy0 = a.wy0[oy], wy1 = a.wy1[oy], wx0 = a.wx0[ox], wx1 = a.wx1[ox];
    p[0] = s0 + x0;
    p[1] = s0 + x1;
    p[2] = s1 + x0;
    p[3] = s1 + x1;
    w[0] = wy0 * wx0;
    w[1] = wy0 * wx1;
    w[2] = wy1 * wx0;
    w[3] = wy1 * wx1;
  }
};

// Widens source rows s0, s1 (iw bytes each) to q - z floats at rows[0, iw) and [iw, 2 iw).
inline void widen_rows(const Q8ResizeArgs& a, const uint8_t* s0, const uint8_t* s1) {
  for (int64_t i = 0; i < a.iw; ++i) {
    a.rows[i] = static_cast<float>(int32_t{s0[i]} - a.zx);
    a.rows[a.iw + i] = static_cast<float>(int32_t{s1[i]} - a.zx);
  }
}

#if defined(__AVX512F__)
constexpr int64_t kMinVector = 8;
// Lanes outside m are neither read nor written.
inline __m512 tap16(const uint8_t* p, __m512i z, __mmask16 m) {
  const __m128i b = m == 0xffff ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                                : _mm_maskz_loadu_epi8(m, p);
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(b), z));
}

inline __m128i code16(__m512 acc, int32_t zx) {
  acc = _mm512_min_ps(_mm512_max_ps(acc, _mm512_set1_ps(static_cast<float>(-zx))),
                      _mm512_set1_ps(static_cast<float>(255 - zx)));
  const __m512i q =
      _mm512_add_epi32(_mm512_cvt_roundps_epi32(acc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                       _mm512_set1_epi32(zx));
  return _mm512_cvtepi32_epi8(q);
}

inline void pixel(const uint8_t* const p[4], const float w[4], int32_t zx, uint8_t* y, int64_t c) {
  const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]);
  const __m512 w2 = _mm512_set1_ps(w[2]), w3 = _mm512_set1_ps(w[3]);
  const __m512i z = _mm512_set1_epi32(zx);
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m =
        c - j >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (c - j)) - 1);
    __m512 acc = _mm512_mul_ps(w0, tap16(p[0] + j, z, m));
    acc = _mm512_fmadd_ps(w1, tap16(p[1] + j, z, m), acc);
    acc = _mm512_fmadd_ps(w2, tap16(p[2] + j, z, m), acc);
    acc = _mm512_fmadd_ps(w3, tap16(p[3] + j, z, m), acc);
    const __m128i b = code16(acc, zx);
    if (m == 0xffff)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + j), b);
    else
      _mm_mask_storeu_epi8(y + j, m, b);
  }
}

// One output row of one channel from the widened source rows.
inline void row_one_channel(const Q8ResizeArgs& a, int64_t oy, uint8_t* y) {
  const __m512 wy0 = _mm512_set1_ps(a.wy0[oy]), wy1 = _mm512_set1_ps(a.wy1[oy]);
  const __m512 zero = _mm512_setzero_ps();
  const float* r0 = a.rows;
  const float* r1 = a.rows + a.iw;
  for (int64_t ox = 0; ox < a.ow; ox += 16) {
    const __mmask16 m =
        a.ow - ox >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (a.ow - ox)) - 1);
    const __m512i i0 = _mm512_maskz_loadu_epi32(m, a.ix0 + ox);
    const __m512i i1 = _mm512_maskz_loadu_epi32(m, a.ix1 + ox);
    const __m512 wx0 = _mm512_maskz_loadu_ps(m, a.wx0 + ox);
    const __m512 wx1 = _mm512_maskz_loadu_ps(m, a.wx1 + ox);
    __m512 acc =
        _mm512_mul_ps(_mm512_mul_ps(wy0, wx0), _mm512_mask_i32gather_ps(zero, m, i0, r0, 4));
    acc =
        _mm512_fmadd_ps(_mm512_mul_ps(wy0, wx1), _mm512_mask_i32gather_ps(zero, m, i1, r0, 4), acc);
    acc =
        _mm512_fmadd_ps(_mm512_mul_ps(wy1, wx0), _mm512_mask_i32gather_ps(zero, m, i0, r1, 4), acc);
    acc =
        _mm512_fmadd_ps(_mm512_mul_ps(wy1, wx1), _mm512_mask_i32gather_ps(zero, m, i1, r1, 4), acc);
    _mm_mask_storeu_epi8(y + ox, m, code16(acc, a.zx));
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int64_t kMinVector = 8;
inline __m256 tap8(const uint8_t* p, __m256i z) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(b), z));
}

// Round half to even (the default MXCSR mode, as std::nearbyint), + z, 8 bytes to y.
inline void store8(__m256 acc, int32_t zx, uint8_t* y) {
  acc = _mm256_min_ps(_mm256_max_ps(acc, _mm256_set1_ps(static_cast<float>(-zx))),
                      _mm256_set1_ps(static_cast<float>(255 - zx)));
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(acc), _mm256_set1_epi32(zx));
  const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(y), _mm_packus_epi16(h, h));
}

inline void pixel(const uint8_t* const p[4], const float w[4], int32_t zx, uint8_t* y, int64_t c) {
  const __m256 w0 = _mm256_set1_ps(w[0]), w1 = _mm256_set1_ps(w[1]);
  const __m256 w2 = _mm256_set1_ps(w[2]), w3 = _mm256_set1_ps(w[3]);
  const __m256i z = _mm256_set1_epi32(zx);
  int64_t j = 0;
  for (; j + 8 <= c; j += 8) {
    __m256 acc = _mm256_mul_ps(w0, tap8(p[0] + j, z));
    acc = _mm256_fmadd_ps(w1, tap8(p[1] + j, z), acc);
    acc = _mm256_fmadd_ps(w2, tap8(p[2] + j, z), acc);
    acc = _mm256_fmadd_ps(w3, tap8(p[3] + j, z), acc);
    store8(acc, zx, y + j);
  }
  if (j < c) pixel_scalar(p, w, zx, y, j, c);
}

// One output row of one channel from the widened source rows; returns the columns done
// (whole blocks of 8), the rest for the scalar form.
inline int64_t row_one_channel(const Q8ResizeArgs& a, int64_t oy, uint8_t* y) {
  const __m256 wy0 = _mm256_set1_ps(a.wy0[oy]), wy1 = _mm256_set1_ps(a.wy1[oy]);
  const float* r0 = a.rows;
  const float* r1 = a.rows + a.iw;
  int64_t ox = 0;
  for (; ox + 8 <= a.ow; ox += 8) {
    const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ix0 + ox));
    const __m256i i1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ix1 + ox));
    const __m256 wx0 = _mm256_loadu_ps(a.wx0 + ox), wx1 = _mm256_loadu_ps(a.wx1 + ox);
    __m256 acc = _mm256_mul_ps(_mm256_mul_ps(wy0, wx0), _mm256_i32gather_ps(r0, i0, 4));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(wy0, wx1), _mm256_i32gather_ps(r0, i1, 4), acc);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(wy1, wx0), _mm256_i32gather_ps(r1, i0, 4), acc);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(wy1, wx1), _mm256_i32gather_ps(r1, i1, 4), acc);
    store8(acc, a.zx, y + ox);
  }
  return ox;
}
#else
constexpr int64_t kMinVector = 0;
inline void pixel(const uint8_t* const p[4], const float w[4], int32_t zx, uint8_t* y, int64_t c) {
  pixel_scalar(p, w, zx, y, 0, c);
}
#endif

inline void q8_resize(const Q8ResizeArgs& a, int64_t r0, int64_t r1) {
  const int64_t c = a.c, row = a.iw * c;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t img = r / a.oh, oy = r % a.oh;
    const uint8_t* src = a.x + img * a.ih * row;
    const uint8_t* s0 = src + a.iy0[oy] * row;
    const uint8_t* s1 = src + a.iy1[oy] * row;
    uint8_t* dst = a.y + r * a.ow * c;
    int64_t ox = 0;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
    if (c == 1 && a.rows) {
      widen_rows(a, s0, s1);
#if defined(__AVX512F__)
      row_one_channel(a, oy, dst);
      ox = a.ow;
#else
      ox = row_one_channel(a, oy, dst);
#endif
    }
#endif
    for (; ox < a.ow; ++ox) {
      const Taps t(a, s0, s1, oy, ox);
      if (c < kMinVector)
        pixel_scalar(t.p, t.w, a.zx, dst + ox * c, 0, c);
      else
        pixel(t.p, t.w, a.zx, dst + ox * c, c);
    }
  }
}

}  // namespace q8resize_body
