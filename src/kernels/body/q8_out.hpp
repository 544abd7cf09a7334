// The float output stage of INT8 convs (kernels.hpp Q8FloatOutArgs) in vectors of the
// level's width, instruction for instruction what quant::float_output computes per value:
// int32 -> float, one multiply, the residual as one FMA, the activation (Relu, Clip,
// LeakyRelu, HardSwish: the same comparisons and operations), the affine map as a multiply
// and an add, division by the output scale,
// round half to even, + zero point, NaN to the zero point, clamp; at 512 bits a row's tail
// as one masked block. AVX2 tails and the other activations go to the scalar
// q8_float_out_scalar (compiled without FMA contraction).
// Included by level.hpp inside the level's anonymous namespace; the portable level has no
// vector form and takes the scalar one whole.
namespace q8out_body {

using ::lithe::ops::fused::Activation;

inline bool vector_activation(Activation a) {
  return a == Activation::kNone || a == Activation::kRelu || a == Activation::kClip ||
         a == Activation::kLeakyRelu || a == Activation::kHardSwish;
}

#if defined(__AVX512F__)
constexpr int kW = 16;
// Lanes outside `m` (the tail of a row) are neither read nor written.
inline void block(const Q8FloatOutArgs& a, int64_t j, __mmask16 m = 0xffff) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  const __m512i acc = _mm512_maskz_loadu_epi32(m, a.acc + j);
  __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_maskz_loadu_ps(m, a.acc_scale + j));
  if (a.z) {
    const __m128i zb = _mm_maskz_loadu_epi8(m, a.z + j);
    const __m512i zi = _mm512_sub_epi32(_mm512_cvtepu8_epi32(zb), _mm512_set1_epi32(a.z_zp));
    y = _mm512_fmadd_ps(_mm512_set1_ps(a.z_scale), _mm512_cvtepi32_ps(zi), y);
  }
  switch (a.act.act) {
    case Activation::kRelu:  // x > 0 ? x : 0
      y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ), zero, y);
      break;
    case Activation::kClip: {  // x < p0 -> p0; x > p1 -> p1 (NaN stays)
      const __m512 lo = _mm512_set1_ps(a.act.p0), hi = _mm512_set1_ps(a.act.p1);
      y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, lo, _CMP_LT_OQ), y, lo);
      y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, hi, _CMP_GT_OQ), y, hi);
      break;
    }
    case Activation::kLeakyRelu:  // x >= 0 ? x : alpha * x
      y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, zero, _CMP_GE_OQ),
                               _mm512_mul_ps(_mm512_set1_ps(a.act.p0), y), y);
      break;
    case Activation::kHardSwish: {  // x * max(0, min(1, x / 6 + 0.5)), std::min/max order
      __m512 h = _mm512_add_ps(_mm512_div_ps(y, _mm512_set1_ps(6.0f)), _mm512_set1_ps(0.5f));
      h = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(h, one, _CMP_LT_OQ), one, h);   // min(1, h)
      h = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(zero, h, _CMP_LT_OQ), zero, h);  // max(0, h)
      y = _mm512_mul_ps(y, h);
      break;
    }
    default:
      break;
  }
  if (a.act.affine)  // two roundings, as apply_activation
    y = _mm512_add_ps(_mm512_mul_ps(y, _mm512_set1_ps(a.act.scale)), _mm512_set1_ps(a.act.shift));
  __m512 v = _mm512_roundscale_ps(_mm512_div_ps(y, _mm512_set1_ps(a.y_scale)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm512_add_ps(v, _mm512_set1_ps(static_cast<float>(a.y_zp)));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  v = _mm512_min_ps(_mm512_max_ps(v, zero), _mm512_set1_ps(255.0f));
  __m512i q = _mm512_cvtps_epi32(v);
  q = _mm512_mask_blend_epi32(nan, q, _mm512_set1_epi32(a.y_zp));
  _mm_mask_storeu_epi8(a.y + j, m, _mm512_cvtepi32_epi8(q));
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kW = 8;
inline __m256 blend_if(__m256 mask, __m256 a, __m256 b) { return _mm256_blendv_ps(a, b, mask); }
inline void block(const Q8FloatOutArgs& a, int64_t j) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.acc + j));
  __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(a.acc_scale + j));
  if (a.z) {
    const __m128i zb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a.z + j));
    const __m256i zi = _mm256_sub_epi32(_mm256_cvtepu8_epi32(zb), _mm256_set1_epi32(a.z_zp));
    y = _mm256_fmadd_ps(_mm256_set1_ps(a.z_scale), _mm256_cvtepi32_ps(zi), y);
  }
  switch (a.act.act) {
    case Activation::kRelu:
      y = blend_if(_mm256_cmp_ps(y, zero, _CMP_GT_OQ), zero, y);
      break;
    case Activation::kClip: {
      const __m256 lo = _mm256_set1_ps(a.act.p0), hi = _mm256_set1_ps(a.act.p1);
      y = blend_if(_mm256_cmp_ps(y, lo, _CMP_LT_OQ), y, lo);
      y = blend_if(_mm256_cmp_ps(y, hi, _CMP_GT_OQ), y, hi);
      break;
    }
    case Activation::kLeakyRelu:
      y = blend_if(_mm256_cmp_ps(y, zero, _CMP_GE_OQ), _mm256_mul_ps(_mm256_set1_ps(a.act.p0), y), y);
      break;
    case Activation::kHardSwish: {
      __m256 h = _mm256_add_ps(_mm256_div_ps(y, _mm256_set1_ps(6.0f)), _mm256_set1_ps(0.5f));
      h = blend_if(_mm256_cmp_ps(h, one, _CMP_LT_OQ), one, h);
      h = blend_if(_mm256_cmp_ps(zero, h, _CMP_LT_OQ), zero, h);
      y = _mm256_mul_ps(y, h);
      break;
    }
    default:
      break;
  }
  if (a.act.affine)
    y = _mm256_add_ps(_mm256_mul_ps(y, _mm256_set1_ps(a.act.scale)), _mm256_set1_ps(a.act.shift));
  __m256 v = _mm256_round_ps(_mm256_div_ps(y, _mm256_set1_ps(a.y_scale)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_add_ps(v, _mm256_set1_ps(static_cast<float>(a.y_zp)));
  const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  v = _mm256_min_ps(_mm256_max_ps(v, zero), _mm256_set1_ps(255.0f));
  v = _mm256_blendv_ps(v, _mm256_set1_ps(static_cast<float>(a.y_zp)), nan);
  const __m256i q = _mm256_cvtps_epi32(v);
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(a.y + j), _mm_packus_epi16(w, w));
}
#endif

// quant::quantize_value to [0, 255] with internal linkage: an inline function shared with
// other translation units could be linked as this level's copy into the portable path.
inline uint8_t quantize1(float x, float scale, int32_t zp) {
  const float v = std::nearbyint(x / scale) + static_cast<float>(zp);
  if (!(v >= 0.0f)) return static_cast<uint8_t>(std::isnan(v) ? zp : 0);
  return static_cast<uint8_t>(v > 255.0f ? 255.0f : v);
}

// QuantizeLinear of n floats with one scale and zero point (uint8): x / scale rounded half to
// even, + zero point, NaN to the zero point, saturated — quant::quantize_value per element.
void q8_quantize(const float* x, int64_t n, float scale, int32_t zp, uint8_t* y) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 s = _mm512_set1_ps(scale), z = _mm512_set1_ps(static_cast<float>(zp));
  const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), s),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_add_ps(v, z);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    v = _mm512_mask_blend_ps(nan, _mm512_min_ps(_mm512_max_ps(v, lo), hi), z);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
#elif defined(__AVX2__)
  const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(static_cast<float>(zp));
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_add_ps(v, z);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    v = _mm256_blendv_ps(_mm256_min_ps(_mm256_max_ps(v, lo), hi), z, nan);
    const __m256i q = _mm256_cvtps_epi32(v);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packus_epi16(w, w));
  }
#endif
  for (; i < n; ++i) y[i] = quantize1(x[i], scale, zp);
}

#if defined(__AVX512F__)
// 64 bytes per step: two 128-entry permutes (vpermi2b) and a blend on the index's top bit.
__attribute__((target("avx512vbmi,avx512bw"))) inline int64_t lookup_vbmi(const uint8_t* x, int64_t n,
                                                                          const uint8_t* table,
                                                                          uint8_t* y) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i idx = _mm512_loadu_si512(x + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, idx, t3);
    _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
  }
  return i;
}
#endif

void q8_lookup(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y) {
  int64_t i = 0;
#if defined(__AVX512F__)
  static const bool vbmi = cpu_features().avx512vbmi;
  if (vbmi) i = lookup_vbmi(x, n, table, y);
#endif
  for (; i < n; ++i) y[i] = table[x[i]];
}

void q8_float_out(const Q8FloatOutArgs& a) {
  int64_t j = 0;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  if (vector_activation(a.act.act)) {
    for (; j + kW <= a.n; j += kW) block(a, j);
#if defined(__AVX512F__)
    if (j < a.n) block(a, j, static_cast<__mmask16>((1u << (a.n - j)) - 1));  // the tail
    return;
#endif
  }
#endif
  q8_float_out_scalar(a, j, a.n);
}

}  // namespace q8out_body
