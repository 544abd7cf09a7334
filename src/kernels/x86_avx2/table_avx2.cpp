// The avx2 level, compiled with this folder's flags (see CMakeLists.txt).
// GEMM microkernel: AVX2 + FMA: 6 rows x 1 panel of 16 columns (two 8-float vectors, 12
// accumulators).
#include <cmath>
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
// KxK convs read windows in place up to 4 panels (N <= 64). Measured on Zen 3 (AVX2): from 16
// panels, GoogLeNet's 14x14 3x3 convs (N 224, 256) ran 1.4 -> 1.1 and 1.8 -> 1.4 ms packed,
// ResNet-50's 3x3 convs with N 256 on 14x14 5.0 -> 3.9 ms; the layers at N <= 64 did not move.
constexpr int kWindowPanels = 4;
constexpr int kVecWidth = 8;  // floats per native vector
}  // namespace

#include "kernels/body/level.hpp"

}  // namespace lithe::kernels::avx2
