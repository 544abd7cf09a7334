// The avx2 level, compiled with this folder's flags (see CMakeLists.txt).
// GEMM microkernel: AVX2 + FMA: 6 rows x 1 panel of 16 columns (two 8-float vectors, 12
// accumulators).
#include <cstring>
#include <limits>

#include "kernels/kernels.hpp"
#include "kernels/x86_intrin.hpp"

namespace lithe::kernels::avx2 {
namespace {
constexpr Isa kIsa = Isa::kAvx2;
constexpr int kGemmMR = 6;
constexpr int kGemmNV = 1;
constexpr int kDirectMR = 6;  // rows of the microkernel reading A in place
constexpr int kVecWidth = 8;  // floats per native vector
}  // namespace

#include "kernels/body/level.hpp"

}  // namespace lithe::kernels::avx2
