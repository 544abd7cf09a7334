// The avx2 level: the kernel bodies compiled with this folder's flags (see CMakeLists.txt).
// GEMM microkernel: 6 rows x 1 panel of 16 columns (two 8-float vectors: 12 accumulators).
#include <cstring>
#include <limits>

#include "kernels/kernels.hpp"

namespace lithe::kernels::avx2 {
namespace {
constexpr int kGemmMR = 6;
constexpr int kGemmNV = 1;
constexpr int kDirectMR = 6;  // rows of the unpacked-A microkernel
constexpr int kVecWidth = 8;  // floats per native vector
#include "kernels/body/f32_gemm.hpp"
#include "kernels/body/f32_dwconv.hpp"
#include "kernels/body/f32_pool.hpp"
#include "kernels/body/f32_winograd.hpp"
}  // namespace

const KernelTable& table() {
  static const KernelTable t{Isa::kAvx2, kGemmMR, kGemmNV, gemm_body::f32_gemm,
                             gemm_body::f32_gemm_direct,
                             dwconv_body::f32_dwconv, pool_body::f32_pool,
                             winograd_body::f32_winograd_input,
                             winograd_body::f32_winograd_output};
  return t;
}

}  // namespace lithe::kernels::avx2
