// The INT8 kernels (q8_gemm with and without row_bias, q8_dwconv, q8_pool, q8_binary, pack_b_q8,
// pack_b_q8_u8, colsum_q8) at every ISA level this CPU
// runs, against plain scalar references written here with quant::requantize, bitwise, on
// many random shapes, zero points, clamps and multipliers; and quant::make_multiplier /
// quant::requantize against long-double computations of round_half_even(acc * real) for
// exactly representable multipliers, ties included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu.hpp"
#include "kernels/kernels.hpp"
#include "quant/qbinary.hpp"
#include "quant/requant.hpp"

namespace lithe {
namespace {

using kernels::Isa;
using quant::Multiplier;

std::vector<Isa> levels() {
  std::vector<Isa> v;
  for (Isa i : kernels::kAllIsas)
    if (kernels::isa_supported(i)) v.push_back(i);
  return v;
}

// round_half_even(acc * m / 2^s) in long double: acc * m < 2^55 is exact in its 64-bit
// mantissa, the division by 2^s is exact, and nearbyintl rounds ties to even.
int64_t round_ld(int64_t acc, int64_t m, int s) {
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  const long double v = std::ldexp(static_cast<long double>(acc) * static_cast<long double>(m), -s);
  return static_cast<int64_t>(std::nearbyintl(v));
}

// ---- make_multiplier / requantize ------------------------------------------------------

TEST(Q8Requant, ExactMultipliersRoundTripAndRoundHalfToEven) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    constexpr int kBits = quant::kMultiplierBits;
    const int64_t m = (int64_t{1} << (kBits - 1)) + static_cast<int64_t>(rng() % (1u << (kBits - 1)));
    const int s = 1 + static_cast<int>(rng() % 62);
    const double real = std::ldexp(static_cast<double>(m), -s);  // exact: 24 bits
    const Multiplier q = quant::make_multiplier(real);
    if (real >= std::ldexp(1.0, kBits - 1)) continue;  // outside the documented range
    ASSERT_EQ(q.m, m) << "real " << real;
    ASSERT_EQ(q.s, s) << "real " << real;
    int32_t acc = static_cast<int32_t>(rng());
    if (i % 3 == 0) acc >>= rng() % 31;  // small accumulators too
    const int64_t want = round_ld(acc, m, s);
    ASSERT_EQ(quant::scale_round(acc, q), want) << acc << " * " << m << " / 2^" << s;
    const int32_t zp = static_cast<int32_t>(rng() % 256);
    const int64_t clamped = std::min<int64_t>(255, std::max<int64_t>(0, want + zp));
    ASSERT_EQ(quant::requantize(acc, q, zp, 0, 255), clamped);
  }
}

// The vector kernels' forms: one fused multiply-add of acc, m * 2^-s and 1.5 * 2^52 (in
// double), or 1.5 * 2^23 (in float, where acc is a float exactly), rounds to nearest even
// once, so the sum less the magic number is scale_round, for every accumulator and multiplier.
TEST(Q8Requant, FusedMultiplyAddFormsAreExact) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> e(-45.0, 25.0);
  const int32_t edges[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX};
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  const float magic_f = 12582912.0f;        // 1.5 * 2^23
  int floats = 0;
  for (int i = 0; i < 200000; ++i) {
    const Multiplier q = quant::make_multiplier(std::exp2(e(rng)));
    ASSERT_LT(q.m, 1 << quant::kMultiplierBits);
    int32_t acc = i % 50 == 0 ? edges[(i / 50) % 7] : static_cast<int32_t>(rng());
    if (i % 3 == 0) acc >>= rng() % 31;
    const int64_t want = quant::scale_round(acc, q);
    const double r = std::ldexp(static_cast<double>(q.m), -q.s);
    if (std::fabs(static_cast<double>(want)) < std::ldexp(1.0, 50)) {
      ASSERT_EQ(static_cast<int64_t>(std::fma(static_cast<double>(acc), r, magic) - magic), want)
          << acc << " * " << q.m << " / 2^" << q.s;
    }
    const auto rf = static_cast<float>(r);
    ASSERT_EQ(static_cast<double>(rf), r);  // 24-bit mantissas: a float exactly
    if (std::abs(int64_t{acc}) <= (int64_t{1} << 24) && std::abs(want) < (int64_t{1} << 21)) {
      ++floats;
      ASSERT_EQ(static_cast<int64_t>(std::fma(static_cast<float>(acc), rf, magic_f) - magic_f), want)
          << acc << " * " << q.m << " / 2^" << q.s << " (float)";
    }
  }
  EXPECT_GT(floats, 10000);
}

TEST(Q8Requant, TiesGoToEven) {
  // real = 2^-k: acc * real has a fraction of exactly .5 for acc = odd * 2^(k-1).
  for (int k = 1; k <= 20; ++k) {
    const Multiplier q = quant::make_multiplier(std::ldexp(1.0, -k));
    for (int64_t odd = -41; odd <= 41; odd += 2) {
      const int64_t acc = odd * (int64_t{1} << (k - 1));
      if (acc < INT32_MIN || acc > INT32_MAX) continue;
      // acc * 2^-k = odd / 2 lies halfway between lo = floor(odd / 2) and lo + 1.
      const int64_t lo = odd >= 0 ? (odd - 1) / 2 : -((-odd + 1) / 2);
      const int64_t even = lo % 2 == 0 ? lo : lo + 1;
      EXPECT_EQ(quant::scale_round(static_cast<int32_t>(acc), q), even) << acc << " * 2^-" << k;
      EXPECT_EQ(quant::scale_round(static_cast<int32_t>(acc), q), round_ld(acc, q.m, q.s));
    }
  }
  // 1.5 * 3 = 4.5 -> 4, 1.5 * 5 = 7.5 -> 8, -4.5 -> -4.
  const Multiplier q = quant::make_multiplier(1.5);
  EXPECT_EQ(quant::scale_round(3, q), 4);
  EXPECT_EQ(quant::scale_round(5, q), 8);
  EXPECT_EQ(quant::scale_round(-3, q), -4);
}

TEST(Q8Requant, RangeEdges) {
  // Under 2^-39: every product rounds to 0, the output is the zero point.
  const Multiplier tiny = quant::make_multiplier(std::ldexp(1.0, -42));
  EXPECT_EQ(tiny.m, 0);
  EXPECT_EQ(quant::requantize(INT32_MAX, tiny, 17, 0, 255), 17);
  EXPECT_EQ(quant::make_multiplier(0.0).m, 0);
  // Above 1 and large accumulators: saturates to the clamp, never wraps.
  const Multiplier big = quant::make_multiplier(1000.0);
  EXPECT_EQ(quant::requantize(INT32_MAX, big, 128, 0, 255), 255);
  EXPECT_EQ(quant::requantize(INT32_MIN, big, 128, 0, 255), 0);
  EXPECT_EQ(quant::requantize(100, big, 0, 3, 250), 250);
  // Saturating multipliers (2^23 and above) still saturate every nonzero accumulator.
  const Multiplier huge = quant::make_multiplier(1e9);
  EXPECT_EQ(quant::requantize(1, huge, 128, 0, 255), 255);
  EXPECT_EQ(quant::requantize(-1, huge, 128, 0, 255), 0);
  EXPECT_EQ(quant::requantize(0, huge, 128, 0, 255), 128);
  // A multiplier that is not representable is within 2^-24 (relative) of the real one.
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> e(-38.0, 20.0);
  for (int i = 0; i < 1000; ++i) {
    const double real = std::exp2(e(rng));
    const Multiplier q = quant::make_multiplier(real);
    const double back = std::ldexp(static_cast<double>(q.m), -q.s);
    EXPECT_LE(std::fabs(back - real), real * std::ldexp(1.0, -quant::kMultiplierBits)) << real;
    EXPECT_GE(q.m, 1 << (quant::kMultiplierBits - 1));
    EXPECT_LT(q.m, 1 << quant::kMultiplierBits);
  }
}

// ---- shared helpers for the kernel cases -----------------------------------------------

// A multiplier for column/channel j: mostly around 1 / `typical` (outputs spread over the
// uint8 range), some tiny (under 2^-39: all zero point), some above 1 (mostly saturated),
// some anywhere in the range of shifts.
Multiplier random_multiplier(std::mt19937& rng, double typical) {
  const unsigned kind = rng() % 10;
  if (kind == 0) return quant::make_multiplier(std::ldexp(1.0, -32 - static_cast<int>(rng() % 14)));
  if (kind == 1) return quant::make_multiplier(1.0 + (rng() % 1000) * 0.37);
  if (kind == 2) {  // any shift from 62 (2^-39) to 1, and saturating ones (2^23 up)
    std::uniform_real_distribution<double> any(-41.0, 24.0);
    return quant::make_multiplier(std::exp2(any(rng)));
  }
  std::uniform_real_distribution<double> e(-3.0, 3.0);
  return quant::make_multiplier(std::exp2(e(rng)) / typical);
}

struct Quant {
  int32_t zy = 0, lo = 0, hi = 255;
};
Quant random_quant(std::mt19937& rng) {
  const int32_t zps[] = {0, 128, 255};
  Quant q;
  q.zy = rng() % 4 == 0 ? static_cast<int32_t>(rng() % 256) : zps[rng() % 3];
  switch (rng() % 3) {
    case 0:  // plain uint8
      break;
    case 1:  // fused ReLU: [zy, 255]
      q.lo = q.zy;
      break;
    default:  // Clip(a, b) in some scale
      q.lo = static_cast<int32_t>(rng() % 100);
      q.hi = q.lo + static_cast<int32_t>(rng() % (256 - q.lo));
  }
  return q;
}
int32_t random_zx(std::mt19937& rng) {
  const int32_t zps[] = {0, 128, 255};
  return rng() % 4 == 0 ? static_cast<int32_t>(rng() % 256) : zps[rng() % 3];
}

// ---- pack_b_q8 / colsum_q8 ------------------------------------------------------------

TEST(Q8Kernels, PackBLayoutAndColumnSums) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 50; ++iter) {
    const int64_t k = 1 + rng() % 70, n = 1 + rng() % 70;
    const bool transposed = rng() % 2;  // B given as N x K
    std::vector<int8_t> b(static_cast<size_t>(k * n));
    for (auto& v : b) v = static_cast<int8_t>(rng());
    const int64_t sk = transposed ? 1 : n, sn = transposed ? k : 1;
    std::vector<int8_t> packed(static_cast<size_t>(kernels::packed_b_q8_bytes(k, n)), 99);
    kernels::pack_b_q8(k, n, b.data(), sk, sn, packed.data());
    const int64_t k4 = (k + 3) / 4;
    ASSERT_EQ(static_cast<int64_t>(packed.size()), kernels::panels_of(n) * k4 * 64);
    for (int64_t p = 0; p < kernels::panels_of(n); ++p)
      for (int64_t kg = 0; kg < k4; ++kg)
        for (int64_t j = 0; j < 16; ++j)
          for (int64_t r = 0; r < 4; ++r) {
            const int64_t row = 4 * kg + r, col = 16 * p + j;
            const int8_t want = row < k && col < n ? b[row * sk + col * sn] : 0;
            ASSERT_EQ(packed[(p * k4 + kg) * 64 + j * 4 + r], want);
          }
    std::vector<int32_t> cs(static_cast<size_t>(n));
    kernels::colsum_q8(k, n, b.data(), sk, sn, cs.data());
    for (int64_t col = 0; col < n; ++col) {
      int32_t s = 0;
      for (int64_t row = 0; row < k; ++row) s += b[row * sk + col * sn];
      ASSERT_EQ(cs[col], s);
    }
  }
}

// pack_b_q8_u8: uint8 B packed as B - 128 in pack_b_q8's layout, with its column sums.
TEST(Q8Kernels, PackBFromUint8) {
  std::mt19937 rng(12);
  for (int iter = 0; iter < 50; ++iter) {
    const int64_t k = 1 + rng() % 70, n = 1 + rng() % 70, ldb = n + rng() % 5;
    std::vector<uint8_t> b(static_cast<size_t>(k * ldb));
    for (auto& v : b) v = static_cast<uint8_t>(rng());
    std::vector<int8_t> shifted(static_cast<size_t>(k * n));
    for (int64_t row = 0; row < k; ++row)
      for (int64_t col = 0; col < n; ++col)
        shifted[row * n + col] = static_cast<int8_t>(static_cast<int32_t>(b[row * ldb + col]) - 128);
    std::vector<int8_t> want(static_cast<size_t>(kernels::packed_b_q8_bytes(k, n)));
    kernels::pack_b_q8(k, n, shifted.data(), n, 1, want.data());
    std::vector<int8_t> got(want.size(), 99);
    std::vector<int32_t> cs(static_cast<size_t>(n), -1);
    kernels::pack_b_q8_u8(k, n, b.data(), ldb, got.data(), cs.data());
    ASSERT_EQ(got, want);
    for (int64_t col = 0; col < n; ++col) {
      int32_t s = 0;
      for (int64_t row = 0; row < k; ++row) s += static_cast<int32_t>(b[row * ldb + col]) - 128;
      ASSERT_EQ(cs[col], s);
    }
  }
}

// ---- q8_gemm ---------------------------------------------------------------------------

// One GEMM case: C = requantize(sum (A - zx) * B + bias, ...) in the reference; the kernel
// gets raw A and bias - zx * colsum(B), as the caller folds the zero point. Then the same
// product with int32 output (c32).
void check_gemm(Isa isa, std::mt19937& rng, int64_t m, int64_t n, int64_t k) {
  SCOPED_TRACE("isa " + std::string(kernels::isa_name(isa)) + " M " + std::to_string(m) + " N " +
               std::to_string(n) + " K " + std::to_string(k));
  const int32_t zx = random_zx(rng);
  const Quant qo = random_quant(rng);
  const int64_t lda = (k + 3) / 4 * 4 + rng() % 9, ldc = n + rng() % 5;
  // Bytes past K (up to lda) hold garbage: packed B is zero there.
  std::vector<uint8_t> a(static_cast<size_t>(m * lda + 4));
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  std::vector<int8_t> b(static_cast<size_t>(k * n));
  for (auto& v : b) v = static_cast<int8_t>(rng());
  const int64_t npad = kernels::panels_of(n) * 16;
  std::vector<int32_t> bias0(static_cast<size_t>(npad), 0), bias(static_cast<size_t>(npad), 0);
  std::vector<int32_t> cs(static_cast<size_t>(n));
  kernels::colsum_q8(k, n, b.data(), n, 1, cs.data());
  std::vector<Multiplier> mult(static_cast<size_t>(npad));
  const double typical = 64.0 * 74.0 * std::sqrt(static_cast<double>(k)) + 1.0;
  for (int64_t j = 0; j < n; ++j) {
    bias0[j] = static_cast<int32_t>(rng() % 200001) - 100000;
    bias[j] = bias0[j] - zx * cs[j];
    mult[j] = random_multiplier(rng, typical);
  }
  std::vector<int8_t> bp(static_cast<size_t>(kernels::packed_b_q8_bytes(k, n)));
  kernels::pack_b_q8(k, n, b.data(), n, 1, bp.data());
  const bool null_bias = rng() % 8 == 0;
  // Half the cases add a per-row term (row_bias, as lithe.QMatMulU8 passes -zb * rowsum(A)),
  // wide enough to reach both ends of the output range.
  const bool with_rows = rng() % 2 == 0;
  std::vector<int32_t> row_bias(static_cast<size_t>(m), 0);
  if (with_rows)
    for (auto& v : row_bias) v = static_cast<int32_t>(rng() % 400001) - 200000;

  std::vector<uint8_t> want(static_cast<size_t>(m * ldc), 0xa5);
  std::vector<int32_t> want32(static_cast<size_t>(m * ldc), -7);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int32_t acc = null_bias ? 0 : bias0[j];
      if (null_bias)
        for (int64_t kk = 0; kk < k; ++kk)
          acc += static_cast<int32_t>(a[i * lda + kk]) * b[kk * n + j];
      else
        for (int64_t kk = 0; kk < k; ++kk)
          acc += (static_cast<int32_t>(a[i * lda + kk]) - zx) * b[kk * n + j];
      acc += row_bias[i];
      want32[i * ldc + j] = acc;
      want[i * ldc + j] =
          static_cast<uint8_t>(quant::requantize(acc, mult[j], qo.zy, qo.lo, qo.hi));
    }

  kernels::Q8GemmArgs g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a.data();
  g.lda = lda;
  g.bp = bp.data();
  g.bias = null_bias ? nullptr : bias.data();
  g.row_bias = with_rows ? row_bias.data() : nullptr;
  g.mult = mult.data();
  g.zy = qo.zy;
  g.lo = qo.lo;
  g.hi = qo.hi;
  // Half the cases that may requantize in float do (acc24), checking the bound helper too.
  bool fits = true;
  for (int64_t j = 0; j < n; ++j) {
    int64_t sum_abs = 0, worst = 0;
    for (int64_t kk = 0; kk < k; ++kk) {
      sum_abs += std::abs(int64_t{b[kk * n + j]});
      worst += int64_t{b[kk * n + j]} * (b[kk * n + j] < 0 ? -255 : 255);
    }
    const int64_t b0 = null_bias ? 0 : bias0[j];
    fits = fits && kernels::q8_acc_fits_float(b0, sum_abs);
    ASSERT_EQ(kernels::q8_acc_fits_float(b0, sum_abs), std::abs(b0) + worst <= (int64_t{1} << 24));
  }
  g.acc24 = fits && rng() % 2;
  SCOPED_TRACE(g.acc24 ? "acc24" : "");
  std::vector<uint8_t> got(static_cast<size_t>(m * ldc), 0xa5);
  g.c = got.data();
  g.ldc = ldc;
  // Rows and panels in a few random parts (any m0), as threads would split them.
  const kernels::KernelTable& t = kernels::kernel_table(isa);
  const int64_t panels = kernels::panels_of(n);
  const int64_t msplit = rng() % (m + 1), psplit = rng() % (panels + 1);
  for (auto [m0, m1] : {std::pair{int64_t{0}, msplit}, std::pair{msplit, m}})
    for (auto [p0, p1] : {std::pair{int64_t{0}, psplit}, std::pair{psplit, panels}})
      if (m0 < m1 && p0 < p1) t.q8_gemm(g, m0, m1, p0, p1);
  for (int64_t i = 0; i < m * ldc; ++i)
    ASSERT_EQ(got[i], want[i]) << "row " << i / ldc << " col " << i % ldc;

  // The int32 output (c32): the sums with the bias, nothing written to c.
  std::vector<int32_t> got32(static_cast<size_t>(m * ldc), -7);
  std::vector<uint8_t> untouched(static_cast<size_t>(m * ldc), 0x3c);
  g.c = untouched.data();
  g.c32 = got32.data();
  g.ldc32 = ldc;
  t.q8_gemm(g, 0, m, 0, panels);
  for (int64_t i = 0; i < m * ldc; ++i) {
    ASSERT_EQ(got32[i], want32[i]) << "int32 row " << i / ldc << " col " << i % ldc;
    ASSERT_EQ(untouched[i], 0x3c);
  }
}

TEST(Q8Kernels, GemmMatchesScalarReferenceBitwise) {
  for (Isa isa : levels()) {
    std::mt19937 rng(1234);
    // Edges: one row / column / k, panel and tile boundaries.
    const int64_t fixed[][3] = {{1, 1, 1},    {1, 16, 4},  {13, 17, 5},  {12, 32, 64},
                                {25, 33, 3},  {7, 300, 1}, {1, 1, 600},  {50, 64, 576},
                                {3, 48, 599}, {24, 15, 7}, {9, 100, 33}, {49, 97, 512},
                                {5, 40, 1100}};
    for (const auto& s : fixed) check_gemm(isa, rng, s[0], s[1], s[2]);
    for (int iter = 0; iter < 60; ++iter) {
      const int64_t m = 1 + rng() % 40, n = 1 + rng() % 300, k = 1 + rng() % 600;
      check_gemm(isa, rng, m, n, k);
    }
  }
}

// Extreme data: all A = 255 and B = -128 or 127 (the largest accumulators), multipliers
// above 1 and tiny: the kernels must saturate exactly as the reference, not wrap.
// K = 512 keeps every sum within 2^24, where the kernels requantize in float (acc24).
TEST(Q8Kernels, GemmExtremeValues) {
  for (Isa isa : levels())
    for (const int64_t k : {600, 512}) {
      SCOPED_TRACE(std::string(kernels::isa_name(isa)) + " K " + std::to_string(k));
      const int64_t m = 14, n = 40, lda = 600, ldc = 40;
      std::vector<uint8_t> a(static_cast<size_t>(m * lda), 255);
      std::vector<int8_t> b(static_cast<size_t>(k * n));
      for (int64_t i = 0; i < k * n; ++i) b[i] = (i / n + i % n) % 3 ? -128 : 127;
      std::vector<int8_t> bp(static_cast<size_t>(kernels::packed_b_q8_bytes(k, n)));
      kernels::pack_b_q8(k, n, b.data(), n, 1, bp.data());
      std::vector<int32_t> bias(48, 0);
      std::vector<Multiplier> mult(48);
      for (int64_t j = 0; j < n; ++j)
        mult[j] = quant::make_multiplier(j % 4 == 0   ? 1e3
                                         : j % 4 == 1 ? 1e-10
                                         : j % 4 == 2 ? 1.0 / 19584000.0
                                                      : 0.5);
      kernels::Q8GemmArgs g;
      g.m = m;
      g.n = n;
      g.k = k;
      g.a = a.data();
      g.lda = lda;
      g.bp = bp.data();
      g.bias = bias.data();
      g.mult = mult.data();
      g.zy = 128;
      g.acc24 = kernels::q8_acc_fits_float(0, 128 * k);
      ASSERT_EQ(g.acc24, k == 512);
      std::vector<uint8_t> got(static_cast<size_t>(m * ldc));
      g.c = got.data();
      g.ldc = ldc;
      kernels::kernel_table(isa).q8_gemm(g, 0, m, 0, kernels::panels_of(n));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          int32_t acc = 0;
          for (int64_t kk = 0; kk < k; ++kk) acc += 255 * b[kk * n + j];
          ASSERT_EQ(got[i * ldc + j], quant::requantize(acc, mult[j], 128, 0, 255)) << i << "," << j;
        }
    }
}

// ---- q8_dwconv -------------------------------------------------------------------------

void check_dwconv(Isa isa, std::mt19937& rng) {
  kernels::Q8DwConvArgs d;
  d.c = 1 + rng() % 70;
  const int64_t ks[] = {1, 3, 3, 3, 5, 7};
  d.kh = ks[rng() % 6];
  d.kw = rng() % 5 == 0 ? ks[rng() % 6] : d.kh;
  d.sh = 1 + rng() % 3;
  d.sw = rng() % 3 == 0 ? 1 + rng() % 3 : d.sh;
  d.dh = rng() % 5 == 0 ? 2 : 1;
  d.dw = rng() % 5 == 0 ? 2 : 1;
  d.ph = rng() % d.kh;
  d.pw = rng() % d.kw;
  const int64_t ph_end = rng() % d.kh, pw_end = rng() % d.kw;
  d.ih = 1 + rng() % 20;
  d.iw = 1 + rng() % 20;
  const int64_t eh = d.dh * (d.kh - 1) + 1, ew = d.dw * (d.kw - 1) + 1;
  if (d.ih + d.ph + ph_end < eh) d.ih = eh;
  if (d.iw + d.pw + pw_end < ew) d.iw = ew;
  d.oh = (d.ih + d.ph + ph_end - eh) / d.sh + 1;
  d.ow = (d.iw + d.pw + pw_end - ew) / d.sw + 1;
  d.x_stride = d.c + rng() % 3;
  d.y_stride = d.c + rng() % 3;
  d.zx = random_zx(rng);
  const Quant qo = random_quant(rng);
  d.zy = qo.zy;
  d.lo = qo.lo;
  d.hi = qo.hi;
  SCOPED_TRACE("isa " + std::string(kernels::isa_name(isa)) + " C " + std::to_string(d.c) + " in " +
               std::to_string(d.ih) + "x" + std::to_string(d.iw) + " k " + std::to_string(d.kh) +
               "x" + std::to_string(d.kw) + " s " + std::to_string(d.sh) + "," +
               std::to_string(d.sw) + " p " + std::to_string(d.ph) + "," + std::to_string(d.pw) +
               " d " + std::to_string(d.dh) + "," + std::to_string(d.dw));
  const int64_t taps = d.kh * d.kw;
  std::vector<uint8_t> x(static_cast<size_t>(d.ih * d.iw * d.x_stride));
  for (auto& v : x) v = static_cast<uint8_t>(rng());
  std::vector<int8_t> w(static_cast<size_t>(taps * d.c));
  for (auto& v : w) v = static_cast<int8_t>(rng());
  std::vector<int32_t> bias(static_cast<size_t>(d.c));
  std::vector<Multiplier> mult(static_cast<size_t>(d.c));
  const double typical = 128.0 * 74.0 * std::sqrt(static_cast<double>(taps)) + 1.0;
  for (int64_t c = 0; c < d.c; ++c) {
    bias[c] = static_cast<int32_t>(rng() % 40001) - 20000;
    mult[c] = random_multiplier(rng, typical);
  }
  const bool null_bias = rng() % 8 == 0;
  d.x = x.data();
  d.w = w.data();
  d.bias = null_bias ? nullptr : bias.data();
  d.mult = mult.data();
  // Small kernels: every case may requantize in float (acc24); half of them do.
  for (int64_t c = 0; c < d.c; ++c) {
    int64_t sum_abs = 0;
    for (int64_t t = 0; t < taps; ++t) sum_abs += std::abs(int64_t{w[t * d.c + c]});
    ASSERT_TRUE(kernels::q8_acc_fits_float(null_bias ? 0 : bias[c], sum_abs));
  }
  d.acc24 = rng() % 2;

  std::vector<uint8_t> want(static_cast<size_t>(d.oh * d.ow * d.y_stride), 0x5a);
  for (int64_t oy = 0; oy < d.oh; ++oy)
    for (int64_t ox = 0; ox < d.ow; ++ox)
      for (int64_t c = 0; c < d.c; ++c) {
        int32_t acc = null_bias ? 0 : bias[c];
        for (int64_t ky = 0; ky < d.kh; ++ky)
          for (int64_t kx = 0; kx < d.kw; ++kx) {
            const int64_t iy = oy * d.sh - d.ph + ky * d.dh, ix = ox * d.sw - d.pw + kx * d.dw;
            const int32_t xv = iy >= 0 && iy < d.ih && ix >= 0 && ix < d.iw
                                   ? x[(iy * d.iw + ix) * d.x_stride + c]
                                   : d.zx;  // padding is the zero point
            acc += (xv - d.zx) * w[(ky * d.kw + kx) * d.c + c];
          }
        want[(oy * d.ow + ox) * d.y_stride + c] =
            static_cast<uint8_t>(quant::requantize(acc, mult[c], d.zy, d.lo, d.hi));
      }
  std::vector<uint8_t> got(want.size(), 0x5a);
  d.y = got.data();
  // Half the cases with the row scratch (the 512-bit levels' cached path where it applies).
  std::vector<int32_t> rows;
  if (rng() % 2) {
    rows.assign(static_cast<size_t>(kernels::q8_dw_rows_bytes(d) / 4), 0x7f7f7f7f);
    d.rows = rows.data();
  }
  SCOPED_TRACE(d.rows ? "row scratch" : "no row scratch");
  const int64_t split = rng() % (d.oh + 1);
  const kernels::KernelTable& t = kernels::kernel_table(isa);
  if (split > 0) t.q8_dwconv(d, 0, split);
  if (split < d.oh) t.q8_dwconv(d, split, d.oh);
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << "pixel " << i / d.y_stride << " channel " << i % d.y_stride;
}

TEST(Q8Kernels, DwConvMatchesScalarReferenceBitwise) {
  for (Isa isa : levels()) {
    std::mt19937 rng(99);
    for (int iter = 0; iter < 300; ++iter) check_dwconv(isa, rng);
  }
}

// ---- q8_pool ---------------------------------------------------------------------------

void check_pool(Isa isa, std::mt19937& rng) {
  kernels::Q8PoolArgs a;
  a.c = 1 + rng() % 150;
  a.max = rng() % 2;
  a.count_include_pad = rng() % 2;
  a.kh = 1 + rng() % 4;
  a.kw = 1 + rng() % 4;
  a.sh = 1 + rng() % 3;
  a.sw = 1 + rng() % 3;
  a.dh = rng() % 5 == 0 ? 2 : 1;
  a.dw = rng() % 5 == 0 ? 2 : 1;
  a.ph = rng() % a.kh;
  a.pw = rng() % a.kw;
  a.pad_h_end = rng() % a.kh;
  a.pad_w_end = rng() % a.kw;
  a.ih = 1 + rng() % 12;
  a.iw = 1 + rng() % 12;
  const int64_t eh = a.dh * (a.kh - 1) + 1, ew = a.dw * (a.kw - 1) + 1;
  if (a.ih + a.ph + a.pad_h_end < eh) a.ih = eh;
  if (a.iw + a.pw + a.pad_w_end < ew) a.iw = ew;
  a.oh = (a.ih + a.ph + a.pad_h_end - eh) / a.sh + 1;
  a.ow = (a.iw + a.pw + a.pad_w_end - ew) / a.sw + 1;
  a.x_stride = a.c + rng() % 3;
  a.y_stride = a.c + rng() % 3;
  a.zx = random_zx(rng);
  SCOPED_TRACE("isa " + std::string(kernels::isa_name(isa)) + (a.max ? " max" : " avg") + " C " +
               std::to_string(a.c) + " k " + std::to_string(a.kh) + "x" + std::to_string(a.kw));
  std::vector<uint8_t> x(static_cast<size_t>(a.ih * a.iw * a.x_stride));
  for (auto& v : x) v = static_cast<uint8_t>(rng());
  a.x = x.data();
  std::vector<uint8_t> want(static_cast<size_t>(a.oh * a.ow * a.y_stride), 0x33);
  for (int64_t oy = 0; oy < a.oh; ++oy)
    for (int64_t ox = 0; ox < a.ow; ++ox)
      for (int64_t c = 0; c < a.c; ++c) {
        // Dequantized: (x - zx) * scale; the output has the same scale and zero point, so
        // y = round_half_even(mean(x - zx)) + zx, computed here in long double.
        long double sum = 0;
        int64_t count = 0;
        int mx = -1;
        for (int64_t ky = 0; ky < a.kh; ++ky)
          for (int64_t kx = 0; kx < a.kw; ++kx) {
            const int64_t iy = oy * a.sh - a.ph + ky * a.dh, ix = ox * a.sw - a.pw + kx * a.dw;
            const bool in = iy >= 0 && iy < a.ih && ix >= 0 && ix < a.iw;
            const bool ext =
                iy >= -a.ph && iy < a.ih + a.pad_h_end && ix >= -a.pw && ix < a.iw + a.pad_w_end;
            if (in) {
              const int v = x[(iy * a.iw + ix) * a.x_stride + c];
              sum += v - a.zx;
              ++count;
              mx = std::max(mx, v);
            } else if (ext && a.count_include_pad) {
              ++count;  // a padded tap: real value 0
            }
          }
        uint8_t y;
        if (a.max)
          y = static_cast<uint8_t>(mx < 0 ? 0 : mx);
        else
          y = static_cast<uint8_t>(count ? std::nearbyintl(sum / count) + a.zx : a.zx);
        want[(oy * a.ow + ox) * a.y_stride + c] = y;
      }
  std::vector<uint8_t> got(want.size(), 0x33);
  a.y = got.data();
  const int64_t split = rng() % (a.oh + 1);
  const kernels::KernelTable& t = kernels::kernel_table(isa);
  if (split > 0) t.q8_pool(a, 0, split);
  if (split < a.oh) t.q8_pool(a, split, a.oh);
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << "pixel " << i / a.y_stride << " channel " << i % a.y_stride;
}

TEST(Q8Kernels, PoolMatchesScalarReferenceBitwise) {
  for (Isa isa : levels()) {
    std::mt19937 rng(5);
    for (int iter = 0; iter < 300; ++iter) check_pool(isa, rng);
  }
}

// A scale in [2^-10, 2^2), log-uniform.
float random_scale(std::mt19937& rng) {
  return std::ldexp(1.0f + static_cast<float>(rng() % 1000) / 1000.0f, -10 + static_cast<int>(rng() % 12));
}

// quant::qbinary against DequantizeLinear -> op -> QuantizeLinear computed in long double:
// equal, except near a rounding tie (within the documented error of the Add weights, or
// 1e-4 of a code), where they may differ by one.
TEST(Q8Binary, ScalarFormMatchesRealArithmetic) {
  std::mt19937 rng(11);
  int near_ties = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    const bool mul = iter % 2;
    const float sa = random_scale(rng), sb = random_scale(rng), sy = random_scale(rng);
    const int32_t za = random_zx(rng), zb = random_zx(rng), zy = random_zx(rng);
    const quant::QBinary p = quant::make_qbinary(mul, sa, za, sb, zb, sy, zy);
    const long double tie =
        1e-4L + (mul ? 0 : 255.0L * std::ldexp(1.0L, -21) * std::max(sa, sb) / sy);
    for (int k = 0; k < 64; ++k) {
      const int a = static_cast<int>(rng() % 256), b = static_cast<int>(rng() % 256);
      const long double fa = static_cast<long double>(a - za) * sa;
      const long double fb = static_cast<long double>(b - zb) * sb;
      const long double r = (mul ? fa * fb : fa + fb) / sy;
      const long double want = std::clamp<long double>(std::nearbyintl(r) + zy, 0, 255);
      const int got = quant::qbinary(static_cast<uint8_t>(a), static_cast<uint8_t>(b), p);
      const long double frac = r - std::floor(r);
      if (std::fabs(frac - 0.5L) < tie && r + zy > -1 && r + zy < 256) {
        ++near_ties;
        ASSERT_LE(std::fabs(static_cast<long double>(got) - want), 1) << a << ", " << b;
      } else {
        ASSERT_EQ(got, static_cast<int>(want)) << (mul ? "mul " : "add ") << a << ", " << b
                                               << " r " << static_cast<double>(r);
      }
    }
  }
  EXPECT_LT(near_ties, 2000 * 64 / 20);
}

void check_binary(Isa isa, std::mt19937& rng) {
  kernels::Q8BinaryArgs g;
  g.p = quant::make_qbinary(rng() % 2, random_scale(rng), random_zx(rng), random_scale(rng),
                            random_zx(rng), random_scale(rng), random_zx(rng));
  g.rows = 1 + rng() % 4;
  g.n = 1 + rng() % 100;
  g.b_scalar = rng() % 3 == 0;
  const bool in_place = rng() % 4 == 0;
  g.a_row = in_place ? g.n : rng() % 2 ? g.n + rng() % 5 : 0;
  g.b_row = rng() % 2 ? (g.b_scalar ? 1 : g.n) + rng() % 5 : 0;
  SCOPED_TRACE("isa " + std::string(kernels::isa_name(isa)) + (g.p.mul ? " mul" : " add") +
               " rows " + std::to_string(g.rows) + " n " + std::to_string(g.n) +
               (g.b_scalar ? " b scalar" : "") + (in_place ? " in place" : ""));
  std::vector<uint8_t> a(static_cast<size_t>(g.rows * (g.a_row + g.n))),
      b(static_cast<size_t>(g.rows * (g.b_row + g.n)));
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  std::vector<uint8_t> want(static_cast<size_t>(g.rows * g.n));
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t i = 0; i < g.n; ++i)
      want[static_cast<size_t>(r * g.n + i)] = quant::qbinary(
          a[static_cast<size_t>(r * g.a_row + i)], b[static_cast<size_t>(r * g.b_row + (g.b_scalar ? 0 : i))], g.p);
  std::vector<uint8_t> got(want.size() + 16, 0x33);
  g.a = a.data();
  g.b = b.data();
  g.y = in_place ? a.data() : got.data();
  kernels::kernel_table(isa).q8_binary(g);
  const uint8_t* y = in_place ? a.data() : got.data();
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(y[i], want[i]) << "output " << i;
  if (!in_place) {
    for (size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 0x33) << "wrote past the end";
  }
}

TEST(Q8Kernels, BinaryMatchesScalarFormBitwise) {
  for (Isa isa : levels()) {
    std::mt19937 rng(9);
    for (int iter = 0; iter < 2000; ++iter) check_binary(isa, rng);
  }
}

TEST(Q8Kernels, EveryLevelHasInt8Kernels) {
  for (Isa isa : levels()) {
    const kernels::KernelTable& t = kernels::kernel_table(isa);
    EXPECT_EQ(t.isa, isa);
    EXPECT_NE(t.q8_gemm, nullptr);
    EXPECT_NE(t.q8_dwconv, nullptr);
    EXPECT_NE(t.q8_pool, nullptr);
    EXPECT_NE(t.q8_binary, nullptr);
    EXPECT_NE(t.f32_gemm, nullptr);
  }
}

}  // namespace
}  // namespace lithe
