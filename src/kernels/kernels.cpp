#include "kernels/kernels.hpp"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "core/error.hpp"
#include "quant/qconv.hpp"

namespace lithe::kernels {

void pack_b_f32(int64_t k, int64_t n, const float* b, int64_t stride_k, int64_t stride_n,
                float* out) {
  for (int64_t p = 0; p < panels_of(n); ++p)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < kPanel; ++j) {
        const int64_t col = p * kPanel + j;
        *out++ = col < n ? b[kk * stride_k + col * stride_n] : 0.0f;
      }
}

// U = G g G^T per (output, input) channel pair, 16 output channels (one panel's lanes) at a
// time so that each of the 36 matrices gets 64-byte rows. G's rows: (1/4, 0, 0),
// -(1, 1, 1)/6, -(1, -1, 1)/6, (1/24, 1/12, 1/6), (1/24, -1/12, 1/6), (0, 0, 1) (Lavin & Gray's
// F(4x4, 3x3)). Plain float arithmetic in a fixed order: the same values on every machine
// without FMA contraction (this file is built without -ffp-contract=fast).
void winograd_weights_f32(const float* w, int64_t c, int64_t m, float* out) {
  using Lanes = float[kPanel];
  const int64_t pb = packed_b_floats(c, m);
  // Three values at stride gs -> six at stride us (G times a column of three), per lane.
  auto g3 = [](const Lanes* g, int gs, Lanes* u, int us) {
    for (int64_t l = 0; l < kPanel; ++l) {
      const float g0 = g[0][l], g1 = g[gs][l], g2 = g[2 * gs][l];
      const float s = g0 + g2, t = (1.0f / 24) * g0 + (1.0f / 6) * g2, h = (1.0f / 12) * g1;
      u[0][l] = 0.25f * g0;
      u[us][l] = (-1.0f / 6) * (s + g1);
      u[2 * us][l] = (-1.0f / 6) * (s - g1);
      u[3 * us][l] = t + h;
      u[4 * us][l] = t - h;
      u[5 * us][l] = g2;
    }
  };
  for (int64_t co0 = 0; co0 < m; co0 += kPanel) {
    const int64_t lanes = std::min<int64_t>(kPanel, m - co0);
    for (int64_t ci = 0; ci < c; ++ci) {
      Lanes g[9] = {}, t[18], u[36];
      for (int64_t l = 0; l < lanes; ++l)
        for (int k = 0; k < 9; ++k) g[k][l] = w[((co0 + l) * c + ci) * 9 + k];
      for (int j = 0; j < 3; ++j) g3(g + j, 3, t + j, 3);          // columns: 6 x 3
      for (int i = 0; i < 6; ++i) g3(t + i * 3, 1, u + i * 6, 1);  // rows: 6 x 6
      float* dst = out + co0 * c + ci * kPanel;
      for (int xi = 0; xi < 36; ++xi) std::memcpy(dst + xi * pb, u[xi], sizeof(Lanes));
    }
  }
}

void pack_rows_f32(const float* const* rows, int n, int64_t k, int mr, float* out) {
  auto one_row = [&](int r) {
    const float* src = rows[r];
    if (!src) {
      for (int64_t kk = 0; kk < k; ++kk) out[kk * mr + r] = 0.0f;
      return;
    }
    for (int64_t kk = 0; kk < k; ++kk) out[kk * mr + r] = src[kk];
  };
  int r = 0;
#if defined(__SSE2__)
  // Four rows at a time: 4x4 blocks transposed in registers (a copy: the values are exact).
  for (; r + 4 <= n; r += 4) {
    const float *a0 = rows[r], *a1 = rows[r + 1], *a2 = rows[r + 2], *a3 = rows[r + 3];
    if (!a0 || !a1 || !a2 || !a3) {
      for (int i = 0; i < 4; ++i) one_row(r + i);
      continue;
    }
    int64_t kk = 0;
    for (; kk + 4 <= k; kk += 4) {
      __m128 x0 = _mm_loadu_ps(a0 + kk), x1 = _mm_loadu_ps(a1 + kk);
      __m128 x2 = _mm_loadu_ps(a2 + kk), x3 = _mm_loadu_ps(a3 + kk);
      _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
      float* o = out + kk * mr + r;
      _mm_storeu_ps(o, x0);
      _mm_storeu_ps(o + mr, x1);
      _mm_storeu_ps(o + 2 * mr, x2);
      _mm_storeu_ps(o + 3 * mr, x3);
    }
    for (; kk < k; ++kk) {
      float* o = out + kk * mr + r;
      o[0] = a0[kk];
      o[1] = a1[kk];
      o[2] = a2[kk];
      o[3] = a3[kk];
    }
  }
#endif
  for (; r < n; ++r) one_row(r);
}

void pack_a_f32(int64_t rows, int64_t k, const float* a, int64_t lda, int mr, float* out) {
  const float* src[64];
  if (mr > 64) fail_runtime("pack_a_f32: microkernel of ", mr, " rows (at most 64)");
  for (int64_t r0 = 0; r0 < rows; r0 += mr, out += mr * k) {
    const int nr = static_cast<int>(std::min<int64_t>(mr, rows - r0));
    for (int r = 0; r < mr; ++r) src[r] = r < nr ? a + (r0 + r) * lda : nullptr;
    pack_rows_f32(src, mr, k, mr, out);  // rows past the matrix: zeros
  }
}

void pack_b_q8(int64_t k, int64_t n, const int8_t* b, int64_t stride_k, int64_t stride_n,
               int8_t* out) {
  const int64_t k4 = (k + 3) / 4;
  for (int64_t p = 0; p < panels_of(n); ++p)
    for (int64_t kg = 0; kg < k4; ++kg)
      for (int64_t j = 0; j < kPanel; ++j)
        for (int64_t r = 0; r < 4; ++r) {
          const int64_t col = p * kPanel + j, kk = 4 * kg + r;
          *out++ = col < n && kk < k ? b[kk * stride_k + col * stride_n] : int8_t{0};
        }
}

void pack_b_q8_u8(int64_t k, int64_t n, const uint8_t* b, int64_t ldb, int8_t* out,
                  int32_t* colsum) {
  const int64_t k4 = (k + 3) / 4;
  for (int64_t p = 0; p < panels_of(n); ++p) {
    const int64_t col0 = p * kPanel, cols = std::min<int64_t>(kPanel, n - col0);
    int32_t sum[kPanel] = {};
    for (int64_t kg = 0; kg < k4; ++kg, out += kPanel * 4) {
      std::memset(out, 0, kPanel * 4);  // past N and past K
      for (int64_t r = 0; r < 4 && 4 * kg + r < k; ++r) {
        const uint8_t* row = b + (4 * kg + r) * ldb + col0;
        for (int64_t j = 0; j < cols; ++j) {
          const auto v = static_cast<int8_t>(row[j] ^ 0x80);  // row[j] - 128
          out[j * 4 + r] = v;
          sum[j] += v;
        }
      }
    }
    for (int64_t j = 0; j < cols; ++j) colsum[col0 + j] = sum[j];
  }
}

void colsum_q8(int64_t k, int64_t n, const int8_t* b, int64_t stride_k, int64_t stride_n,
               int32_t* out) {
  for (int64_t col = 0; col < n; ++col) {
    int32_t s = 0;
    for (int64_t kk = 0; kk < k; ++kk) s += b[kk * stride_k + col * stride_n];
    out[col] = s;
  }
}

void epilogue_scalar(float* y, int64_t n, const float* z, const ops::fused::Epilogue& e) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = z ? y[i] + z[i] : y[i];
    y[i] = ops::fused::apply_activation<float>(v, e);
  }
}

const KernelTable& kernel_table(Isa isa) {
  if (!isa_supported(isa)) fail("this CPU cannot run ", isa_name(isa), " kernels");
#if defined(__x86_64__)
  if (isa == Isa::kAvx512Vnni) return avx512vnni::table();
  if (isa == Isa::kAvx512) return avx512::table();
  if (isa == Isa::kAvxVnni) return avxvnni::table();
  if (isa == Isa::kAvx2) return avx2::table();
#endif
  return portable::table();
}

int64_t q8_dw_rows_bytes(const Q8DwConvArgs& d) {
  const int64_t right = std::max<int64_t>(0, (d.ow - 1) * d.sw - d.pw + (d.kw - 1) * d.dw - (d.iw - 1));
  const int64_t wrow = d.pw + d.iw + right;
  // Rows of 16 int32 lanes per pixel, or the VBMI 3x3 path's rows of bytes.
  return std::max(d.kh * wrow * 16 * 4, d.kh * q8_dw_byte_row(wrow));
}

void q8_float_out_scalar(const Q8FloatOutArgs& a, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; ++j)
    a.y[j] = quant::float_output(a.acc[j], a.acc_scale[j], a.z ? a.z + j : nullptr, a.z_scale,
                                 a.z_zp, a.act, a.y_scale, a.y_zp);
}

}  // namespace lithe::kernels
