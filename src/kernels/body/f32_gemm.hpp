// Body of the f32 GEMM with packed B and fused epilogue. The including level defines
// kGemmMR (rows per microkernel), kGemmNV (16-column panels per microkernel) and its native
// vector (VN, kVecWidth floats) before including it, inside its own namespace.
//
// The microkernel keeps an MR x (16 * NV) tile of C in registers for the whole K loop: per
// k it loads NV panel vectors of B and broadcasts MR values of packed A (one pointer, so the
// row addresses cost no registers). Every output element is
// the same sequence of operations (bias, then k = 0..K-1 in order, then residual and
// activation) whatever tile or thread computes it, so results do not depend on partitioning.
#pragma once
#include "kernels/body/vec.hpp"

namespace gemm_body {

using namespace ::lithe::kernels;
using namespace body;

// A tile row is NV panels of 16 columns = NV * kSub native vectors of kVecWidth floats.
constexpr int kSub = kPanel / kVecWidth;
// gemm_direct's tile of 1.5 panels (a level whose panel is an even number of vectors): kHalfNQ
// vectors a row, kHalfMR rows, the accumulators of kDirectMR rows of one panel.
constexpr bool kHalfTile = kSub % 2 == 0;
constexpr int kHalfNQ = kSub + kSub / 2, kHalfMR = kDirectMR * kSub / kHalfNQ;

// Accumulators start from the bias (the reference's order: bias, then k = 0..K-1).
template <int MR, int NQ>
[[gnu::always_inline]] inline void init(const GemmArgs& g, int64_t col0, VN (&acc)[MR][NQ]) {
#pragma GCC unroll 16
  for (int q = 0; q < NQ; ++q) {
    const VN b = g.ep.bias ? loadv<VN>(g.ep.bias + col0 + q * kVecWidth) : VN{};
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r][q] = b;
  }
}

// Epilogue and store of rows [m, m + MR) (rows past g.m are padding). Nothing here calls a
// function while accumulators are live and no accumulator is indexed at run time (either
// would make the compiler keep them in memory, in the K loop too).
//
// The general epilogue, out of line, from a tile stored to t (MR rows of NQ vectors, row r at
// t + r * NQ * kVecWidth): the valid rows and columns only, the residual, any activation (the
// transcendental ones in a second pass over the stored rows), the affine map.
__attribute__((noinline)) inline void store_general(const GemmArgs& g, int64_t m, int64_t col0,
                                                    const float* t, int mr, int nq) {
  const bool cheap = cheap_activation(g.ep.act);
  const int64_t rows = g.m - m < mr ? g.m - m : mr;
  for (int64_t r = 0; r < rows; ++r) {
    float* c = g.c + (m + r) * g.ldc + col0;
    const float* z = g.ep.residual ? g.ep.residual + (m + r) * g.ep.ldr + col0 : nullptr;
    for (int q = 0; q < nq; ++q) {
      const int64_t valid = g.n - col0 - q * kVecWidth;
      VN v = loadv<VN>(t + (r * nq + q) * kVecWidth);
      if (valid >= kVecWidth) {
        if (z) v += loadv<VN>(z + q * kVecWidth);
        if (cheap) activate(v, g.ep.act);
        storev(c + q * kVecWidth, v);
      } else if (valid > 0) {
        if (z) v += load_first(z + q * kVecWidth, valid);
        if (cheap) activate(v, g.ep.act);
        store_first(c + q * kVecWidth, v, valid);
      }
    }
  }
  if (cheap) return;
  const int64_t cols = g.n - col0 < nq * kVecWidth ? g.n - col0 : nq * kVecWidth;
  if (cols == g.ldc) {  // the rows are contiguous (N within the tile: a head's few channels)
    activate_stored(g.c + m * g.ldc + col0, rows * cols, g.ep.act);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) activate_stored(g.c + (m + r) * g.ldc + col0, cols, g.ep.act);
}

// A whole tile (all MR rows and NQ vectors valid), the residual added or not (Z), then
// `act`: no per-vector checks.
template <bool Z, int MR, int NQ, class F>
[[gnu::always_inline]] inline void store_rows(const GemmArgs& g, int64_t m, int64_t col0,
                                              VN (&acc)[MR][NQ], F act) {
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    float* c = g.c + (m + r) * g.ldc + col0;
    const float* z = Z ? g.ep.residual + (m + r) * g.ep.ldr + col0 : nullptr;
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q) {
      VN v = acc[r][q];
      if constexpr (Z) v += loadv<VN>(z + q * kVecWidth);
      storev(c + q * kVecWidth, act(v));
    }
  }
}

// Epilogue A (epilogue_of) on a whole tile, the residual added first if there is one.
template <int A, int MR, int NQ>
[[gnu::always_inline]] inline void store_whole(const GemmArgs& g, int64_t m, int64_t col0,
                                               VN (&acc)[MR][NQ]) {
  const ::lithe::ops::fused::Epilogue e = g.ep.act;  // a copy: C's stores cannot change it
  const auto act = [&e](VN v) { return epilogue_of<A>(v, e); };
  if (g.ep.residual)
    store_rows<true>(g, m, col0, acc, act);
  else
    store_rows<false>(g, m, col0, acc, act);
}

// A GEMM call's tiles share A, the epilogue (with_epilogue), so that each tile's store has
// one path. Whole tiles with a cheap activation take store_whole; the rest (edge tiles,
// kGeneral) store_general. Measured on Zen 3 (AVX2): with the checks per vector a 6 x 16 tile
// with K = 16 cost about 170 cycles for 96 of FMAs; pointwise GEMMs with K 16 / 32 / 64 went
// 49 / 66 / 80 -> 79 / 90 / 96 GFLOP/s. (Choosing among four or more epilogues per tile made
// GCC keep the accumulators in memory.)
template <int A, int MR, int NQ>
[[gnu::always_inline]] inline void store(const GemmArgs& g, int64_t m, int64_t col0,
                                         VN (&acc)[MR][NQ]) {
  if constexpr (A != kGeneral) {
    if (g.m - m >= MR && g.n - col0 >= NQ * kVecWidth) return store_whole<A>(g, m, col0, acc);
  }
  alignas(64) float t[MR * NQ * kVecWidth];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q) storev(t + (r * NQ + q) * kVecWidth, acc[r][q]);
  store_general(g, m, col0, t, MR, NQ);
}

// A K block after the first: the accumulators start from the sums stored so far (rows past
// g.m are padding and start from zero).
template <int MR, int NQ>
[[gnu::always_inline]] inline void resume(const GemmArgs& g, int64_t m, int64_t col0,
                                          VN (&acc)[MR][NQ]) {
  const int64_t rows = g.m - m;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    const float* c = g.c + (m + r) * g.ldc + col0;
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q) {
      const int64_t valid = g.n - col0 - q * kVecWidth;
      acc[r][q] = r >= rows || valid <= 0 ? VN{}
                  : valid >= kVecWidth    ? loadv<VN>(c + q * kVecWidth)
                                          : load_first(c + q * kVecWidth, valid);
    }
  }
}

// Packed A: MR values per k, one panel per MR rows; packed B: 16 values per k per panel.
// ROWS <= MR rows are computed (a last panel with few valid rows skips the padding).
// k in [k0, k1): a K block (C holds the sums of k < k0; the epilogue comes with k1 == K).
template <int A, int NV, int ROWS = kGemmMR>
[[gnu::always_inline]] inline void tile(const GemmArgs& g, int64_t m, int64_t p, int64_t k0,
                                        int64_t k1) {
  constexpr int MR = ROWS, NQ = NV * kSub;
  VN acc[MR][NQ];
  const int64_t col0 = p * kPanel;
  if (k0 == 0)
    init(g, col0, acc);
  else
    resume(g, m, col0, acc);
  const float* a = g.a + (m / kGemmMR) * kGemmMR * g.k + k0 * kGemmMR;
  const float* bp = g.bp + p * kPanel * g.k + k0 * kPanel;
  const int64_t pstride = kPanel * g.k;
#pragma GCC unroll 4
  for (int64_t kk = k0; kk < k1; ++kk, a += kGemmMR, bp += kPanel) {
    VN b[NQ];
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q)
      b[q] = loadv<VN>(bp + (q / kSub) * pstride + (q % kSub) * kVecWidth);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const float s = a[r];
#pragma GCC unroll 16
      for (int q = 0; q < NQ; ++q) acc[r][q] += s * b[q];
    }
  }
  if (k1 == g.k) {
    store<A>(g, m, col0, acc);
  } else {  // a K block before the last: the sums so far, without the epilogue
    GemmArgs sums = g;
    sums.ep = Epilogue{};
    store<static_cast<int>(::lithe::ops::fused::Activation::kNone)>(sums, m, col0, acc);
  }
}

// A read in place (row m at g.a + m * g.lda), MR rows through row pointers: no packing,
// which pays when few panels would share a packed tile (small N) or K is small. Each output
// is the same sequence of operations as in tile(), so both give identical results.
// NQ vectors a row from panel p on (the last may be half of panel p + 1's). KOFF: element k
// of a row at g.koff[k] from the row's start (a convolution window in place).
template <int A, int NQ, bool KOFF, int MR = kDirectMR>
[[gnu::always_inline]] inline void tile_direct(const GemmArgs& g, int64_t m, int64_t p) {
  VN acc[MR][NQ];
  const int64_t col0 = p * kPanel;
  init(g, col0, acc);
  const float* ar[MR];
  const int64_t last = g.m - 1;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) ar[r] = g.a + (m + r < last ? m + r : last) * g.lda;
  const float* bp = g.bp + p * kPanel * g.k;
  const int64_t k = g.k, pstride = kPanel * g.k;
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < k; ++kk, bp += kPanel) {
    const int64_t off = KOFF ? g.koff[kk] : kk;
    VN b[NQ];
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q)
      b[q] = loadv<VN>(bp + (q / kSub) * pstride + (q % kSub) * kVecWidth);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const float s = ar[r][off];
#pragma GCC unroll 16
      for (int q = 0; q < NQ; ++q) acc[r][q] += s * b[q];
    }
  }
  store<A>(g, m, col0, acc);
}

template <int A, int ROWS>
[[gnu::always_inline]] inline void panel_rows(const GemmArgs& g, int64_t m, int64_t p0, int64_t p1,
                                              int64_t k0, int64_t k1) {
  int64_t p = p0;
  for (; p + kGemmNV <= p1; p += kGemmNV) tile<A, kGemmNV, ROWS>(g, m, p, k0, k1);
  for (; p < p1; ++p) tile<A, 1, ROWS>(g, m, p, k0, k1);
}

// Panels of B per block: about 256 KiB of B, a whole number of microkernel widths.
inline int64_t panel_block(int64_t k) {
  const int64_t fit = (int64_t{1} << 18) / ((k > 0 ? k : 1) * kPanel * 4);
  return fit < kGemmNV ? kGemmNV : fit / kGemmNV * kGemmNV;
}

// K per block for rows [m0, m1): all of K unless their packed A is over 512 KiB and K is
// large, then even blocks of about 256 KiB of A (1024 values of K at least). A whole-K row
// tile that large and a block of B do not fit L2 together, so A came from L3 again for every
// block of panels: ResNet-50's 7x7 3x3 convs (49 rows x K 4608, 1.1 MiB of packed A) went
// 1.50 -> 1.46 ms, their GEMM alone (lithe_bench_kernels) about 185 -> 195 GFLOP/s. Many
// rows with a small K gain nothing from it (blocks of a few k would be all overhead). Not
// with a residual, which C may alias.
inline int64_t k_block(const GemmArgs& g, int64_t m0, int64_t m1) {
  const int64_t rows = (m1 - m0 + kGemmMR - 1) / kGemmMR * kGemmMR;
  if (g.ep.residual || rows * g.k * 4 <= (int64_t{1} << 19)) return g.k;
  const int64_t fit = (int64_t{1} << 18) / (rows * 4), want = fit < 1024 ? 1024 : fit;
  if (want * 2 > g.k) return g.k;
  const int64_t blocks = (g.k + want - 1) / want;
  return (g.k + blocks - 1) / blocks;
}

// Rows [m0, m1) (m0 a multiple of MR) x panels [p0, p1), packed A. The panels go in blocks of
// about 256 KiB of B, rows inside a block: a block of B stays in L2 while every row tile uses
// it (B, the weights, is often larger than L2 and comes from memory: read once per call), and
// each row tile still writes whole rows of the block (C and the residual stream in order).
// A last row tile with few valid rows runs a third or two thirds of the microkernel's rows.
// K blocks (k_block) go outside the panel blocks; every output still sees bias, then k in
// order, then the epilogue, its sums stored and loaded back unchanged between blocks.
template <int A>
[[gnu::noinline]] void gemm_packed(const GemmArgs& g, int64_t m0, int64_t m1, int64_t p0,
                                   int64_t p1) {
  static_assert(kGemmMR % 3 == 0, "the tail tiles take thirds of MR");
  const int64_t kb = k_block(g, m0, m1);
  const int64_t pb = panel_block(kb);
  for (int64_t k0 = 0; k0 < g.k; k0 += kb) {
    const int64_t k1 = k0 + kb < g.k ? k0 + kb : g.k;
    for (int64_t q0 = p0; q0 < p1; q0 += pb) {
      const int64_t q1 = q0 + pb < p1 ? q0 + pb : p1;
      for (int64_t m = m0; m < m1; m += kGemmMR) {
        const int64_t rows = m1 - m;
        if (rows <= kGemmMR / 3)
          panel_rows<A, kGemmMR / 3>(g, m, q0, q1, k0, k1);
        else if (rows <= 2 * kGemmMR / 3)
          panel_rows<A, 2 * kGemmMR / 3>(g, m, q0, q1, k0, k1);
        else
          panel_rows<A, kGemmMR>(g, m, q0, q1, k0, k1);
      }
    }
  }
}

inline void f32_gemm(const GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  with_epilogue(g.ep.act, false, [&]<int A>() { gemm_packed<A>(g, m0, m1, p0, p1); });
}

// Rows [m0, m1) x panels [p0, p1), A read in place with row stride g.lda. Rows past m1 are
// neither read nor written (another thread's share may hold them).
// Panel blocks outer, as in f32_gemm.
template <int A, bool KOFF>
[[gnu::noinline]] void gemm_direct(const GemmArgs& h, int64_t m0, int64_t p0, int64_t p1) {
  const int64_t pb = panel_block(h.k);
  for (int64_t q0 = p0; q0 < p1; q0 += pb) {
    const int64_t q1 = q0 + pb < p1 ? q0 + pb : p1;
    // A last panel with at most 8 valid columns goes with the panel before it (in this
    // block) as one tile of 1.5 panels and fewer rows, instead of 2 panels whose last quarter
    // is padding: MobileNetV2's 24-channel projections 0.33 -> 0.25 ms in isolation on AVX2
    // (4 x 24 columns: 7 loads per 12 FMAs against 8 for 6 x 16), BlazeFace 8% faster.
    const bool half =
        kHalfTile && q1 == p1 && q1 - q0 >= 2 && h.n - (p1 - 1) * kPanel <= kPanel / 2;
    const int64_t qf = half ? q1 - 2 : q1;
    for (int64_t m = m0; m < h.m; m += kDirectMR) {
      int64_t p = q0;
      for (; p + kGemmNV <= qf; p += kGemmNV) tile_direct<A, kGemmNV * kSub, KOFF>(h, m, p);
      for (; p < qf; ++p) tile_direct<A, kSub, KOFF>(h, m, p);
    }
    if (half)
      for (int64_t m = m0; m < h.m; m += kHalfMR) tile_direct<A, kHalfNQ, KOFF, kHalfMR>(h, m, qf);
  }
}

inline void f32_gemm_direct(const GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  GemmArgs h = g;
  h.m = m1 < g.m ? m1 : g.m;
  with_epilogue(g.ep.act, false, [&]<int A>() {
    if (g.koff)
      gemm_direct<A, true>(h, m0, p0, p1);
    else
      gemm_direct<A, false>(h, m0, p0, p1);
  });
}

// One row of A times B^T, B read in place as N rows of K (a batch-1 Linear layer's [N, K]
// weights: nothing to pack at load): c[j] = sum over i < K of a[i] * bp[j * K + i] for j in
// [n0, n1) (four vector accumulators over i in order, added in a fixed order, then the
// tail), plus the bias, then the residual and the activation. Which rows a call covers never
// changes a value. Memory-bound: each weight is read once.
inline void f32_gemv(const GemmArgs& g, int64_t n0, int64_t n1) {
  constexpr int64_t kStep = 4 * kVecWidth;
  const float* a = g.a;
  for (int64_t j = n0; j < n1; ++j) {
    const float* w = g.bp + j * g.k;
    VN acc[4] = {};
    int64_t kk = 0;
    for (; kk + kStep <= g.k; kk += kStep)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q)
        acc[q] += loadv<VN>(a + kk + q * kVecWidth) * loadv<VN>(w + kk + q * kVecWidth);
    for (; kk + kVecWidth <= g.k; kk += kVecWidth) acc[0] += loadv<VN>(a + kk) * loadv<VN>(w + kk);
    float lanes[kVecWidth];
    storev(lanes, (acc[0] + acc[1]) + (acc[2] + acc[3]));
    float sum = 0;
    for (int l = 0; l < kVecWidth; ++l) sum += lanes[l];
    for (; kk < g.k; ++kk) sum += a[kk] * w[kk];
    g.c[j] = g.ep.bias ? g.ep.bias[j] + sum : sum;
  }
  if (g.ep.residual || g.ep.act.act != ops::fused::Activation::kNone)
    epilogue_scalar(g.c + n0, n1 - n0, g.ep.residual ? g.ep.residual + n0 : nullptr, g.ep.act);
}

}  // namespace gemm_body
