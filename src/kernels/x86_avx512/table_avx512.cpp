// The avx512 level, compiled with this folder's flags (see CMakeLists.txt).
// GEMM microkernel: AVX-512: 12 rows x 2 panels of 16 columns (two 16-float vectors, 24
// accumulators).
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/kernels.hpp"
#include "kernels/x86_intrin.hpp"

namespace lithe::kernels::avx512 {
namespace {
constexpr Isa kIsa = Isa::kAvx512;
constexpr int kGemmMR = 12;
constexpr int kGemmNV = 2;
constexpr int kDirectMR = 8;   // rows of the microkernel reading A in place
// KxK convs read windows in place up to 16 panels (N <= 256), as measured on Zen 5.
constexpr int kWindowPanels = 16;
constexpr int kVecWidth = 16;  // floats per native vector
}  // namespace

#include "kernels/body/level.hpp"

}  // namespace lithe::kernels::avx512
