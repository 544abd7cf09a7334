// Body of the f32 GEMM with packed B and fused epilogue. The including level defines
// kGemmMR (rows per microkernel) and kGemmNV (16-column panels per microkernel) before
// including it, inside its own namespace.
//
// The microkernel keeps an MR x (16 * NV) tile of C in registers for the whole K loop: per
// k it loads NV panel vectors of B and broadcasts MR values of A. Every output element is
// the same sequence of operations (bias, then k = 0..K-1 in order, then residual and
// activation) whatever tile or thread computes it, so results do not depend on partitioning.
#pragma once
#include "kernels/body/vec.hpp"

namespace gemm_body {

using namespace ::lithe::kernels;
using namespace body;

template <int MR, int NV>
inline void tile(const GemmArgs& g, int64_t m, int64_t p) {
  V16 acc[MR][NV];
  const int64_t col0 = p * kPanel;
#pragma GCC unroll 16
  for (int j = 0; j < NV; ++j) {
    const V16 b = g.ep.bias ? loadv<V16>(g.ep.bias + col0 + j * kPanel) : V16{};
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r][j] = b;
  }
  const float* a = g.a + m * g.lda;
  const float* bp = g.bp + p * kPanel * g.k;
  const int64_t lda = g.lda, k = g.k, pstride = kPanel * g.k;
  for (int64_t kk = 0; kk < k; ++kk) {
    V16 b[NV];
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) b[j] = loadv<V16>(bp + j * pstride + kk * kPanel);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const float s = a[r * lda + kk];
#pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) acc[r][j] += s * b[j];
    }
  }
  // Epilogue and store, one row of NV panels at a time.
  const bool cheap = cheap_activation(g.ep.act);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    float* c = g.c + (m + r) * g.ldc + col0;
    const float* z = g.ep.residual ? g.ep.residual + (m + r) * g.ep.ldr + col0 : nullptr;
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) {
      const int64_t valid = g.n - col0 - j * kPanel;
      V16 v = acc[r][j];
      if (valid >= kPanel) {
        if (z) v += loadv<V16>(z + j * kPanel);
        if (cheap) {
          activate(v, g.ep.act);
          storev(c + j * kPanel, v);
        } else {
          storev(c + j * kPanel, v);
          epilogue_scalar(c + j * kPanel, kPanel, nullptr, g.ep.act);
        }
      } else if (valid > 0) {
        float tmp[kPanel];
        storev(tmp, v);
        epilogue_scalar(tmp, valid, z ? z + j * kPanel : nullptr, g.ep.act);
        std::memcpy(c + j * kPanel, tmp, static_cast<size_t>(valid) * sizeof(float));
      }
    }
  }
}

template <int MR>
inline void rows(const GemmArgs& g, int64_t m, int64_t p0, int64_t p1) {
  int64_t p = p0;
  for (; p + kGemmNV <= p1; p += kGemmNV) tile<MR, kGemmNV>(g, m, p);
  for (; p < p1; ++p) tile<MR, 1>(g, m, p);
}

template <int MR>
inline void rows_tail(const GemmArgs& g, int64_t m, int64_t left, int64_t p0, int64_t p1) {
  if constexpr (MR > 0) {
    if (left == MR) return rows<MR>(g, m, p0, p1);
    rows_tail<MR - 1>(g, m, left, p0, p1);
  }
}

inline void f32_gemm(const GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  int64_t m = m0;
  for (; m + kGemmMR <= m1; m += kGemmMR) rows<kGemmMR>(g, m, p0, p1);
  if (m < m1) rows_tail<kGemmMR - 1>(g, m, m1 - m, p0, p1);
}

}  // namespace gemm_body
