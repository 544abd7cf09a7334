// The portable level, compiled with this folder's flags (see CMakeLists.txt).
// GEMM microkernel: baseline C++ (SSE2 on x86-64, NEON on AArch64): 3 rows x 1 panel of 16 columns
// (four 4-float vectors, 12 accumulators).
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/kernels.hpp"

namespace lithe::kernels::portable {
namespace {
constexpr Isa kIsa = Isa::kPortable;
constexpr int kGemmMR = 3;
constexpr int kGemmNV = 1;
constexpr int kDirectMR = 3;  // rows of the microkernel reading A in place
constexpr int kWindowPanels = 4;
constexpr int kVecWidth = 4;  // floats per native vector
}  // namespace

#include "kernels/body/level.hpp"

}  // namespace lithe::kernels::portable
