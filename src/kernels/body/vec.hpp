// Vector helpers for the kernel bodies: GCC/Clang vector extensions, so one body compiles to
// ZMM code in x86_avx512/, YMM pairs in x86_avx2/ and the baseline (SSE2, NEON) in portable/.
//
// Included only by a level's table_<level>.cpp, inside that level's anonymous namespace, after
// <cstring>, <limits> and kernels/kernels.hpp: every function here then has internal linkage
// and is compiled with the level's flags. (An inline function shared between levels would be
// one symbol, and the linker could hand the portable path the AVX-512 copy.) For the same
// reason the bodies call nothing inline from outside: the scalar epilogue is out of line.
#pragma once

namespace body {

using ::lithe::kernels::epilogue_scalar;

// The level's native vector (kVecWidth floats, defined by the including level: wider generic
// vectors than the hardware has are lowered through memory), and a 4-float one for tails.
typedef float VN __attribute__((vector_size(kVecWidth * 4)));
typedef float V4 __attribute__((vector_size(16)));

template <class V>
inline V loadv(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V>
inline void storev(float* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}
// The first n (0 < n < kVecWidth) floats at p, the rest zero; and their store. One masked
// instruction where the level has them (AVX-512, AVX2), else a copy through a temporary
// (a channel tail: N = 24 or 40 leaves 8 columns in every tile).
inline VN load_first(const float* p, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (sizeof(VN) == 64)
    return reinterpret_cast<VN>(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p));
#elif defined(__AVX2__)
  if constexpr (sizeof(VN) == 32) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return reinterpret_cast<VN>(_mm256_maskload_ps(p, m));
  }
#endif
  float t[kVecWidth] = {};
  for (int64_t i = 0; i < n; ++i) t[i] = p[i];
  return loadv<VN>(t);
}
inline void store_first(float* p, VN v, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (sizeof(VN) == 64) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), reinterpret_cast<__m512>(v));
    return;
  }
#elif defined(__AVX2__)
  if constexpr (sizeof(VN) == 32) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(p, m, reinterpret_cast<__m256>(v));
    return;
  }
#endif
  float t[kVecWidth];
  storev(t, v);
  for (int64_t i = 0; i < n; ++i) p[i] = t[i];
}

template <class V>
inline V splat(float s) {
  return V{} + s;
}
template <>
inline float splat<float>(float s) {
  return s;
}
template <class V>
inline V vmax(V a, V b) {
  return a > b ? a : b;
}
template <class V>
inline V vmin(V a, V b) {
  return a < b ? a : b;
}

/// Calls f(p) for each tap of output pixel (oy, ox)'s window that lies inside the input, in
/// (ky, kx) order, with p = iy * iw + ix the tap's input pixel. A: kernel arguments with the
/// window's geometry (kh, kw, sh, sw, ph, pw, dh, dw, ih, iw: the pools' PoolArgsT).
template <class A, class F>
inline void for_each_tap(const A& a, int64_t oy, int64_t ox, F&& f) {
  for (int64_t ky = 0; ky < a.kh; ++ky) {
    const int64_t iy = oy * a.sh - a.ph + ky * a.dh;
    if (iy < 0 || iy >= a.ih) continue;
    for (int64_t kx = 0; kx < a.kw; ++kx) {
      const int64_t ix = ox * a.sw - a.pw + kx * a.dw;
      if (ix >= 0 && ix < a.iw) f(iy * a.iw + ix);
    }
  }
}

/// e^x per lane, within a few ulp of std::exp (the softmax tests bound it over x <= 0, where
/// softmax and sigmoid call it: 2.6 ulp on a softmax's outputs). x = n ln2 + r with n the
/// nearest integer to x log2(e) and |r| <= ln2 / 2 (ln2 in two parts, so r is exact), e^r by a
/// degree-6 polynomial (the Cephes expf coefficients), times 2^n as 2^(n/2) 2^(n - n/2) from
/// exponent bits. x is first clamped to [-104, 89], where the product rounds to 0 and
/// overflows to +inf: subnormal results, 0 and +inf come out of the last multiply, and NaN
/// passes the clamp (its comparisons are false) and the arithmetic.
inline VN vexp(VN x) {
  typedef int VI __attribute__((vector_size(sizeof(VN))));
  const VN lo = splat<VN>(-104.0f), hi = splat<VN>(89.0f);
  const VN c = vmin(hi, vmax(lo, x));
  const VN magic = splat<VN>(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const VN nf = (c * splat<VN>(1.44269504f) + magic) - magic;
  const VN r = (c - nf * splat<VN>(0.693359375f)) - nf * splat<VN>(-2.12194440e-4f);
  VN p = splat<VN>(1.9875691500e-4f);
  p = p * r + splat<VN>(1.3981999507e-3f);
  p = p * r + splat<VN>(8.3334519073e-3f);
  p = p * r + splat<VN>(4.1665795894e-2f);
  p = p * r + splat<VN>(1.6666665459e-1f);
  p = p * r + splat<VN>(5.0000001201e-1f);
  p = p * (r * r) + r + splat<VN>(1.0f);
  const VI n = __builtin_convertvector(nf, VI), n1 = n >> 1, n2 = n - n1;
  return p * reinterpret_cast<VN>((n1 + 127) << 23) * reinterpret_cast<VN>((n2 + 127) << 23);
}

/// The affine map after the activation (Epilogue::affine): x * scale + shift.
template <class V>
inline V affine(V x, const ::lithe::ops::fused::Epilogue& e) {
  return x * splat<V>(e.scale) + splat<V>(e.shift);
}

/// The activations `activate` leaves to the caller, on n values already stored: Sigmoid and
/// SiLU a vector at a time, apply_activation's branches with vexp (sigmoid(x) = 1 / (1 + t)
/// for x >= 0, t / (1 + t) below, t = e^-|x|), within a few ulp of it; Tanh and the tail one
/// at a time (epilogue_scalar). Out of line: a caller keeps its accumulators in registers.
__attribute__((noinline)) inline void activate_stored(float* y, int64_t n,
                                                      const ::lithe::ops::fused::Epilogue& e) {
  using ::lithe::ops::fused::Activation;
  int64_t i = 0;
  if (e.act == Activation::kSigmoid || e.act == Activation::kSiLU) {
    const VN one = splat<VN>(1.0f);
    for (; i + kVecWidth <= n; i += kVecWidth) {
      const VN x = loadv<VN>(y + i);
      const VN t = vexp(vmin(x, -x));  // NaN stays NaN
      VN s = (x >= VN{} ? one : t) / (one + t);
      if (e.act == Activation::kSiLU) s = x * s;
      if (e.affine) s = affine(s, e);
      storev(y + i, s);
    }
  }
  epilogue_scalar(y + i, n - i, nullptr, e);
}

/// Cheap activation A on a vector (or a float), formula for formula as apply_activation (NaN
/// handling included); the transcendental ones (Sigmoid, SiLU, Tanh) are not here.
template <::lithe::ops::fused::Activation A, class V>
inline V activation_of(V x, const ::lithe::ops::fused::Epilogue& e) {
  using ::lithe::ops::fused::Activation;
  const V zero = V{}, one = splat<V>(1.0f);
  if constexpr (A == Activation::kRelu) {
    return x > zero ? x : zero;
  } else if constexpr (A == Activation::kClip) {
    x = x < splat<V>(e.p0) ? splat<V>(e.p0) : x;
    return x > splat<V>(e.p1) ? splat<V>(e.p1) : x;
  } else if constexpr (A == Activation::kLeakyRelu) {
    return x >= zero ? x : splat<V>(e.p0) * x;
  } else if constexpr (A == Activation::kHardSigmoid) {
    return vmax(zero, vmin(one, splat<V>(e.p0) * x + splat<V>(e.p1)));
  } else if constexpr (A == Activation::kHardSwish) {
    return x * vmax(zero, vmin(one, x / splat<V>(6.0f) + splat<V>(0.5f)));
  } else {
    static_assert(A == Activation::kNone, "not a cheap activation");
    return x;
  }
}

/// Stands for an epilogue with no cheap activation_of: a transcendental activation, or
/// whatever else a kernel leaves to its general path.
constexpr int kGeneral = -1;
/// Added to a cheap activation's value: the affine map follows it (see with_activation).
constexpr int kAffine = 0x100;

/// Calls f.template operator()<A>() once, A the cheap activation of e as an int (see
/// activation_of), plus kAffine if e has the affine map; or kGeneral if e has no cheap
/// activation. A kernel instantiated per activation chooses once per call rather than per
/// vector.
template <class F>
inline void with_activation(const ::lithe::ops::fused::Epilogue& e, F&& f) {
  using ::lithe::ops::fused::Activation;
  const auto call = [&]<int A>() {
    if (e.affine)
      f.template operator()<A + kAffine>();
    else
      f.template operator()<A>();
  };
  switch (e.act) {
    case Activation::kNone:
      return call.template operator()<static_cast<int>(Activation::kNone)>();
    case Activation::kRelu:
      return call.template operator()<static_cast<int>(Activation::kRelu)>();
    case Activation::kClip:
      return call.template operator()<static_cast<int>(Activation::kClip)>();
    case Activation::kLeakyRelu:
      return call.template operator()<static_cast<int>(Activation::kLeakyRelu)>();
    case Activation::kHardSigmoid:
      return call.template operator()<static_cast<int>(Activation::kHardSigmoid)>();
    case Activation::kHardSwish:
      return call.template operator()<static_cast<int>(Activation::kHardSwish)>();
    default:
      return f.template operator()<kGeneral>();
  }
}

/// The epilogues a kernel is instantiated for, chosen once per call: with_activation's A, but
/// the affine map only after ReLU or HardSwish (what PP-LCNet's learnable affine blocks
/// follow), the portable level always kGeneral, and with LITHE_FEW_EPILOGUES (the sanitizer
/// and fuzz presets) none and ReLU only: each instantiation of a kernel body costs build time,
/// the instrumented builds' most of all. kGeneral (also whenever `general` is set) is whatever
/// a kernel's general path does (activate(), activate_stored()).
template <class F>
inline void with_epilogue(const ::lithe::ops::fused::Epilogue& e, bool general, F&& f) {
  using ::lithe::ops::fused::Activation;
#ifdef LITHE_FEW_EPILOGUES
  constexpr bool few = true;
#else
  constexpr bool few = false;
#endif
  if constexpr (kIsa == ::lithe::kernels::Isa::kPortable) {
    f.template operator()<kGeneral>();
  } else if (general) {
    f.template operator()<kGeneral>();
  } else {
    with_activation(e, [&]<int A>() {
      constexpr int act = A & (kAffine - 1);
      constexpr bool relu = act == static_cast<int>(Activation::kRelu);
      constexpr bool kept =
          few ? A == static_cast<int>(Activation::kNone) || (A == act && relu)
              : (A & kAffine) == 0 || relu || act == static_cast<int>(Activation::kHardSwish);
      if constexpr (A == kGeneral || !kept)
        f.template operator()<kGeneral>();
      else
        f.template operator()<A>();
    });
  }
}

/// What with_activation's A stands for, on a whole vector: the cheap activation, then the
/// affine map if A has kAffine.
template <int A, class V>
inline V epilogue_of(V x, const ::lithe::ops::fused::Epilogue& e) {
  constexpr auto act = static_cast<::lithe::ops::fused::Activation>(A & (kAffine - 1));
  if constexpr ((A & kAffine) != 0)
    return affine(activation_of<act>(x, e), e);
  else
    return activation_of<act>(x, e);
}

/// The cheap activations, then the affine map if there is one (epilogue_of), on a vector or
/// a float; false (nothing applied) for the others, which the caller applies per element
/// after storing.
template <class V>
inline bool activate(V& x, const ::lithe::ops::fused::Epilogue& e) {
  bool cheap = false;
  with_activation(e, [&]<int A>() {
    if constexpr (A != kGeneral) {
      x = epilogue_of<A>(x, e);
      cheap = true;
    }
  });
  return cheap;
}

inline bool cheap_activation(const ::lithe::ops::fused::Epilogue& e) {
  V4 probe{};
  return activate(probe, e);
}

}  // namespace body
