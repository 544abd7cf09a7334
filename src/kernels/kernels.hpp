// The optimized kernel families and the table that dispatches them per ISA level.
//
// One kernel body per family lives in body/*.hpp and is compiled once per level
// (portable/, x86_avx2/, x86_avx512/, each with its own compiler flags); a level's table
// names its instances. Kernels never allocate, lock or log: the caller gives them their part
// of the work (rows, panels) and a pre-sized workspace, so the thread pool's static
// partitioning decides who computes what and results do not depend on the thread count.
//
// Packed B (GEMM weights): ceil(N/16) panels of 16 columns; panel p holds, for k = 0..K-1,
// the 16 values B[k][16p .. 16p+15] (zero past N). The layout is the same for every level,
// so packed weights are portable between CPUs of one architecture.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu.hpp"
#include "ops/fused_internal.hpp"
#include "quant/qbinary.hpp"
#include "quant/qresize.hpp"
#include "quant/requant.hpp"

namespace lithe::kernels {

inline constexpr int64_t kPanel = 16;

static inline int64_t panels_of(int64_t n) { return (n + kPanel - 1) / kPanel; }
/// Floats of the packed form of a K x N matrix.
static inline int64_t packed_b_floats(int64_t k, int64_t n) { return panels_of(n) * kPanel * k; }
/// Packs B (element (k, n) at b[k * stride_k + n * stride_n]) into `out`
/// (packed_b_floats(k, n) floats).
void pack_b_f32(int64_t k, int64_t n, const float* b, int64_t stride_k, int64_t stride_n,
                float* out);

/// y = act(acc + residual), acc starting from the bias: what the fused ops compute
/// (ops/fused_internal.hpp), applied while the tile is in registers.
struct Epilogue {
  const float* bias = nullptr;  ///< padded to a whole panel (GEMM) or [C] (depthwise); may be null
  const float* residual = nullptr;  ///< element (m, n) at residual[m * ldr + n]; may be null
  int64_t ldr = 0;
  ops::fused::Epilogue act;
};

/// Residual then activation on n contiguous values, one at a time (apply_activation's
/// formulas); the kernels call it for the activations they do not vectorize.
void epilogue_scalar(float* y, int64_t n, const float* z, const ops::fused::Epilogue& e);

/// Packed A (GEMM activations), for a microkernel of `mr` rows: ceil(rows/mr) panels; panel i
/// holds, for k = 0..K-1, the mr values A[i*mr .. i*mr+mr-1][k] (zero past the last row).
static inline int64_t packed_a_floats(int64_t rows, int64_t k, int mr) {
  return (rows + mr - 1) / mr * mr * k;
}
/// Packs rows of A (row r at a + r * lda) for a microkernel of `mr` rows.
void pack_a_f32(int64_t rows, int64_t k, const float* a, int64_t lda, int mr, float* out);
/// One slab of packed A from row pointers: out[kk * mr + r] = rows[r][kk] for kk < k and
/// r < n (n <= mr; a null row gives zeros). Rows n..mr-1 of the slab are not written.
void pack_rows_f32(const float* const* rows, int n, int64_t k, int mr, float* out);

/// C (m x n, row stride ldc) = packed A (m x k) x packed B, with the epilogue.
struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;  ///< packed A (packed_a_floats(m, k, gemm_mr)), or A itself (direct)
  int64_t lda = 0;           ///< row stride of A for f32_gemm_direct
  /// f32_gemm_direct only: when set, A(m, k) is a[m * lda + koff[k]] (a convolution window
  /// read in place from a padded image: koff holds each (ky, kx, ci)'s offset); else a[m * lda + k].
  const int64_t* koff = nullptr;
  const float* bp = nullptr;
  float* c = nullptr;
  int64_t ldc = 0;
  Epilogue ep;
};
/// Computes rows [m0, m1) x panels [p0, p1) of C; m0 is a multiple of the table's gemm_mr.
using F32GemmFn = void (*)(const GemmArgs&, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
/// One row of A (m = 1) times B^T with B read in place as N rows of K (bp[j * k + kk], not
/// packed): elements [n0, n1) of the row c, with the bias, residual and activation.
using F32GemvFn = void (*)(const GemmArgs&, int64_t n0, int64_t n1);

/// Depthwise 2-D convolution on one NHWC image: y[oy, ox, c] over C channels.
struct DwConvArgs {
  const float* x = nullptr;  ///< pixel (iy, ix) at x + (iy * iw + ix) * x_stride
  int64_t ih = 0, iw = 0, x_stride = 0;
  const float* w = nullptr;  ///< packed [kh * kw][C]
  float* y = nullptr;        ///< pixel (oy, ox) at y + (oy * ow + ox) * y_stride
  int64_t oh = 0, ow = 0, y_stride = 0;
  int64_t c = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  Epilogue ep;  ///< residual pixel (oy, ox) at residual + (oy * ow + ox) * ldr
};
/// Computes output rows [oy0, oy1).
using F32DwConvFn = void (*)(const DwConvArgs&, int64_t oy0, int64_t oy1);

/// Max or average pooling on one NHWC image (also global average: kh = ih, kw = iw), of
/// float or of uint8 values (see Q8PoolArgs).
template <class T>
struct PoolArgsT {
  const T* x = nullptr;
  int64_t ih = 0, iw = 0, x_stride = 0;
  T* y = nullptr;
  int64_t oh = 0, ow = 0, y_stride = 0;
  int64_t c = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool max = true;
  bool count_include_pad = false;
  int64_t pad_h_end = 0, pad_w_end = 0;  ///< the padded extent counted with count_include_pad
  int32_t zx = 0;                        ///< uint8: the zero point (both sides)
};
using PoolArgs = PoolArgsT<float>;
using F32PoolFn = void (*)(const PoolArgs&, int64_t oy0, int64_t oy1);

/// Softmax (or LogSoftmax when `log`) of the n contiguous floats at x into y (y may be x).
using F32SoftmaxFn = void (*)(const float* x, float* y, int64_t n, bool log);

/// Winograd F(4x4, 3x3), stride 1, on one NHWC image: tiles of 4x4 outputs, numbered row-major
/// over tiles_h x tiles_w. The input transform of tiles [t0, t1) writes, per tile, its 36
/// transformed vectors of C floats one after another (tile t's vector xi at ((t - t0) * 36 +
/// xi) * C): matrix xi of the GEMMs is (t1 - t0) x C with row stride 36 * C. The output
/// transform reads the GEMM results laid out the same way (Cout for C) and writes the tiles'
/// outputs with bias, residual and activation. A tile's 36 vectors are contiguous, so each
/// transform walks one stream rather than 36.
struct WinogradArgs {
  const float* x = nullptr;
  int64_t ih = 0, iw = 0, x_stride = 0, c = 0, ph = 0, pw = 0;
  float* y = nullptr;
  int64_t oh = 0, ow = 0, y_stride = 0, cout = 0;
  int64_t tiles_w = 0;
  Epilogue ep;  ///< bias [Cout]; residual pixel (oy, ox) at residual + (oy * ow + ox) * ldr
};
using F32WinogradInFn = void (*)(const WinogradArgs&, int64_t t0, int64_t t1, float* v);
using F32WinogradOutFn = void (*)(const WinogradArgs&, int64_t t0, int64_t t1, const float* m);
/// The weight transform U = G g G^T of the M x C x 3 x 3 weights w (ONNX order), in float,
/// as 36 packed GEMM B matrices (K = C, N = M) packed_b_floats(C, M) floats apart at out:
/// matrix xi, panel co / 16, row ci, lane co % 16 (lanes past M zero). One portable function
/// for every level, so the builder can store the result in the engine (the runtime then maps
/// it) and a conv gives the same values whether its weights were transformed at build or at
/// load time.
void winograd_weights_f32(const float* w, int64_t c, int64_t m, float* out);

// ---- INT8: uint8 activations (zero point zx) x int8 weights (symmetric, per output channel),
// int32 accumulators, requantized per output channel to uint8 (quant::requantize: zero point
// zy, clamp [lo, hi] carrying a fused ReLU/Clip). Every level computes bitwise the same bytes.
//
// Packed int8 B: K4 = ceil(K/4); ceil(N/16) panels of 16 columns; panel p holds, for
// kg = 0..K4-1, 16 columns x 4 bytes: byte [(p * K4 + kg) * 64 + j * 4 + r] =
// B[4kg + r][16p + j] (0 past K and past N), the operand order of vpdpbusd. One layout for
// every level.

/// Bytes of the packed form of a K x N int8 matrix.
static inline int64_t packed_b_q8_bytes(int64_t k, int64_t n) {
  return panels_of(n) * kPanel * ((k + 3) / 4 * 4);
}
/// Packs B (element (k, n) at b[k * stride_k + n * stride_n]) into `out`
/// (packed_b_q8_bytes(k, n) bytes).
void pack_b_q8(int64_t k, int64_t n, const int8_t* b, int64_t stride_k, int64_t stride_n,
               int8_t* out);
/// Whether |bias| + 255 * sum_abs_w <= 2^24, so that every int32 sum of (x - zx) * w over uint8
/// x, plus bias, is an exact float (the condition of Q8GemmArgs::acc24).
static inline bool q8_acc_fits_float(int64_t bias, int64_t sum_abs_w) {
  return (bias < 0 ? -bias : bias) + 255 * sum_abs_w <= (int64_t{1} << 24);
}
/// Packs uint8 B (row-major, row k at b + k * ldb) as the int8 matrix B - 128 (exact: the
/// bytes with their top bit flipped) into `out` (packed_b_q8_bytes(k, n) bytes), and writes
/// colsum[n] = sum over k of (B[k][n] - 128): an activation operand packed at run time.
void pack_b_q8_u8(int64_t k, int64_t n, const uint8_t* b, int64_t ldb, int8_t* out,
                  int32_t* colsum);
/// out[n] = sum over k of B[k][n]: the caller folds -zx * colsum into the bias, since the
/// kernels multiply the raw uint8 activations.
void colsum_q8(int64_t k, int64_t n, const int8_t* b, int64_t stride_k, int64_t stride_n,
               int32_t* out);

/// C[m][n] = requantize(sum_k A[m][k] * B[k][n] + bias[n] + row_bias[m], mult[n], zy, lo, hi)
/// as uint8 (the sums wrap modulo 2^32).
struct Q8GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  /// Row m at a + m * lda; round_up(K, 4) bytes of each row must be readable (the bytes past
  /// K may hold anything: packed B is zero there).
  const uint8_t* a = nullptr;
  int64_t lda = 0;
  const int8_t* bp = nullptr;            ///< packed B (packed_b_q8_bytes(k, n))
  const int32_t* bias = nullptr;         ///< padded to whole panels; may be null (0)
  /// Row m's addend row_bias[m] (for m in [m0, m1) of the call), or null (0): the row term
  /// -zb * sum_k A[m][k] of a product whose B has a zero point (lithe.QMatMulU8).
  const int32_t* row_bias = nullptr;
  const quant::Multiplier* mult = nullptr;  ///< padded to whole panels
  int32_t zy = 0, lo = 0, hi = 255;
  uint8_t* c = nullptr;  ///< row m at c + m * ldc
  int64_t ldc = 0;
  /// When set, the int32 sums (bias included) are written here instead of requantized bytes:
  /// element (m, n) at c32 + m * ldc32 + n (the float output stage of quant/qconv.hpp).
  int32_t* c32 = nullptr;
  int64_t ldc32 = 0;
  /// Set when every column's sum (bias included) lies within +-2^24 for any A (for example
  /// |bias[n]| + 255 * sum over k of |B[k][n]| <= 2^24, see q8_acc_fits_float): the vector
  /// levels may then requantize in float, still exactly (quant/requant.hpp).
  bool acc24 = false;
};
/// Computes rows [m0, m1) (any m0) x panels [p0, p1) of C.
using Q8GemmFn = void (*)(const Q8GemmArgs&, int64_t m0, int64_t m1, int64_t p0, int64_t p1);

/// Depthwise 2-D convolution on one NHWC uint8 image:
/// y = requantize(bias[c] + sum over taps inside the image of (x - zx) * w, mult[c], zy, lo, hi)
/// (padding taps are skipped: they would contribute (zx - zx) * w = 0).
struct Q8DwConvArgs {
  const uint8_t* x = nullptr;  ///< pixel (iy, ix) at x + (iy * iw + ix) * x_stride
  int64_t ih = 0, iw = 0, x_stride = 0;
  const int8_t* w = nullptr;   ///< packed [kh * kw][C]
  const int32_t* bias = nullptr;  ///< [C]; may be null (0)
  const quant::Multiplier* mult = nullptr;  ///< [C]
  int32_t zx = 0, zy = 0, lo = 0, hi = 255;
  uint8_t* y = nullptr;  ///< pixel (oy, ox) at y + (oy * ow + ox) * y_stride
  int64_t oh = 0, ow = 0, y_stride = 0;
  int64_t c = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  /// When set, the int32 sums (bias included) go here instead of requantized bytes: pixel
  /// (oy, ox), channel c at y32 + (oy * ow + ox) * c + c (the float output stage).
  int32_t* y32 = nullptr;
  /// Scratch of q8_dw_rows_bytes(*this) bytes, or null: the 512-bit levels may then keep kh
  /// padded input rows of one block of 16 channels for the output rows of one call (requantized,
  /// no dilation): as bytes for 3x3 with stride 1 or 2 where the CPU has VNNI and VBMI, else
  /// widened to int32 for 3x3 and 5x5 with stride 1 and rows up to 16 pixels.
  int32_t* rows = nullptr;
  /// As Q8GemmArgs::acc24, for |bias[c]| + 255 * sum over taps of |w| <= 2^24.
  bool acc24 = false;
};
/// Computes output rows [oy0, oy1).
using Q8DwConvFn = void (*)(const Q8DwConvArgs&, int64_t oy0, int64_t oy1);
/// Bytes of one row of the VBMI 3x3 depthwise path's byte cache: 16 bytes per pixel of a
/// padded input row of `wrow` pixels, 8 pixels of slack for its 64-byte loads, whole 64 bytes.
static inline int64_t q8_dw_byte_row(int64_t wrow) { return ((wrow + 8) * 16 + 63) / 64 * 64; }
/// Bytes of Q8DwConvArgs::rows for d's geometry: kh rows of (pw + iw + right padding) pixels
/// of 16 int32s (one block of channels at a time).
int64_t q8_dw_rows_bytes(const Q8DwConvArgs& d);

/// Max or average pooling on one NHWC uint8 image whose input and output share scale and
/// zero point zx. Max: the largest byte of the taps inside the input. Average: zx + round half
/// to even of sum(x - zx) / count (count as for float; with count_include_pad the padded taps
/// count as the real value 0).
using Q8PoolArgs = PoolArgsT<uint8_t>;
using Q8PoolFn = void (*)(const Q8PoolArgs&, int64_t oy0, int64_t oy1);

/// The float output stage of an INT8 conv (quant/qconv.hpp, quant::float_output) on n values
/// of one pixel: y[j] = QuantizeLinear(act(acc[j] * acc_scale[j] + z_scale * (z[j] - z_zp))),
/// the residual term as one fused multiply-add. Bitwise equal to quant::float_output.
struct Q8FloatOutArgs {
  const int32_t* acc = nullptr;
  int64_t n = 0;
  const float* acc_scale = nullptr;  ///< [n]
  const uint8_t* z = nullptr;        ///< [n] residual bytes, or null
  float z_scale = 1;
  int32_t z_zp = 0;
  ops::fused::Epilogue act;
  float y_scale = 1;
  int32_t y_zp = 0;
  uint8_t* y = nullptr;  ///< [n]
};
using Q8FloatOutFn = void (*)(const Q8FloatOutArgs&);
/// QuantizeLinear of n floats to uint8 with one scale and zero point (quant::quantize_value).
using Q8QuantizeFn = void (*)(const float* x, int64_t n, float scale, int32_t zp, uint8_t* y);
/// y[i] = table[x[i]] for i < n (table: 256 bytes).
using Q8LookupFn = void (*)(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);
/// INT8 Add / Mul (quant/qbinary.hpp) over `rows` rows of n outputs: y[r * n + i] =
/// qbinary(a[r * a_row + i], b[r * b_row + (b_scalar ? 0 : i)]). y may be the same bytes as
/// a or b (in place), nothing else of them.
struct Q8BinaryArgs {
  quant::QBinary p;
  const uint8_t* a = nullptr;
  const uint8_t* b = nullptr;
  uint8_t* y = nullptr;
  int64_t rows = 1, n = 0;
  int64_t a_row = 0, b_row = 0;  ///< row strides in bytes (0: every row reads the same one)
  bool b_scalar = false;         ///< one b value per row
};
using Q8BinaryFn = void (*)(const Q8BinaryArgs&);
/// INT8 linear Resize of the two spatial axes (quant/qresize.hpp) on channels-last images of
/// ih x iw pixels of c bytes (NCHW: the N*C planes as images of one channel): output pixel
/// (oy, ox) of an image = the taps (iy_i[oy], ix_j[ox]) with weights wy_i[oy] * wx_j[ox],
/// i, j in {0, 1}, in the order (0,0) (0,1) (1,0) (1,1) (an axis of one tap has a second of
/// weight 0). Channels are the vector dimension, the weights of a pixel scalars; with one
/// channel and `rows` given, the vector levels take 16 or 8 output columns at a time instead,
/// gathering from the two source rows widened to floats in `rows` (2 * iw floats).
struct Q8ResizeArgs {
  const uint8_t* x = nullptr;
  uint8_t* y = nullptr;
  int64_t ih = 0, iw = 0, c = 0, oh = 0, ow = 0;
  const int32_t *iy0 = nullptr, *iy1 = nullptr;  ///< [oh] source rows
  const float *wy0 = nullptr, *wy1 = nullptr;    ///< [oh]
  const int32_t *ix0 = nullptr, *ix1 = nullptr;  ///< [ow] source columns
  const float *wx0 = nullptr, *wx1 = nullptr;    ///< [ow]
  int32_t zx = 0;                                ///< the zero point (input and output)
  float* rows = nullptr;                         ///< scratch for c == 1, or null
};
/// Computes output rows [r0, r1) counted over every image (row r: image r / oh, row r % oh).
using Q8ResizeFn = void (*)(const Q8ResizeArgs&, int64_t r0, int64_t r1);
/// The scalar form (the portable level's, and the vector levels' for tails and the
/// transcendental activations).
void q8_float_out_scalar(const Q8FloatOutArgs& a, int64_t j0, int64_t j1);

struct KernelTable {
  Isa isa;
  int gemm_mr;      ///< rows of the GEMM microkernel
  int gemm_panels;  ///< panels of 16 columns the microkernel computes at once
  /// The most 16-column panels (output channels per group) for which a KxK conv reads its
  /// windows in place (f32_gemm_direct over the input rows) rather than packing im2col rows:
  /// in place saves the copy, packed runs the faster microkernel, which pays over more panels.
  int window_panels;
  F32GemmFn f32_gemm;
  /// The same product reading A in place (row m at a + m * lda), any m0: no packing, for
  /// small N or small K where a packed tile would serve too few panels.
  F32GemmFn f32_gemm_direct;
  F32GemvFn f32_gemv;
  F32DwConvFn f32_dwconv;
  F32PoolFn f32_pool;
  F32SoftmaxFn f32_softmax;
  F32WinogradInFn f32_winograd_input;
  F32WinogradOutFn f32_winograd_output;
  Q8GemmFn q8_gemm;
  Q8DwConvFn q8_dwconv;
  Q8PoolFn q8_pool;  ///< the base level's (body/q8_pool.hpp) at the VNNI levels too
  Q8FloatOutFn q8_float_out;  ///< the base level's (body/q8_out.hpp) at the VNNI levels too
  Q8QuantizeFn q8_quantize;   ///< likewise
  Q8LookupFn q8_lookup;       ///< likewise (AVX512-VBMI permutes where the CPU has them)
  Q8BinaryFn q8_binary;
  Q8ResizeFn q8_resize;  ///< the base level's (body/q8_resize.hpp) at the VNNI levels too
};

/// The table of `isa` (which must be supported: see isa_supported).
const KernelTable& kernel_table(Isa isa);

// One table per level, defined in that level's folder.
namespace portable {
const KernelTable& table();
}
namespace avx2 {
const KernelTable& table();
}
namespace avx512 {
const KernelTable& table();
}
namespace avxvnni {
const KernelTable& table();
}
namespace avx512vnni {
const KernelTable& table();
}

// Each level's int8 kernels, defined in its q8_<level>.cpp (compiled with its own flags).
#define LITHE_Q8_DECLARE(level)                                                     \
  namespace level {                                                                 \
  void q8_gemm(const Q8GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1); \
  void q8_dwconv(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1);                  \
  void q8_binary(const Q8BinaryArgs& a);                                            \
  }
LITHE_Q8_DECLARE(portable)
LITHE_Q8_DECLARE(avx2)
LITHE_Q8_DECLARE(avx512)
LITHE_Q8_DECLARE(avxvnni)
LITHE_Q8_DECLARE(avx512vnni)
#undef LITHE_Q8_DECLARE

}  // namespace lithe::kernels
