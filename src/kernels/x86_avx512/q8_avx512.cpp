// The avx512 level's int8 kernels: body/q8_x86_512.hpp with AVX-512BW vpmaddwd on int16-widened
// bytes (no VNNI), compiled with this folder's flags (see CMakeLists.txt).
#include <cstdint>
#include <cstring>

#include "kernels/cpu.hpp"
#include "kernels/kernels.hpp"
#include "kernels/x86_intrin.hpp"

namespace lithe::kernels::avx512 {
namespace {
constexpr bool kVnni = false;
#include "kernels/body/q8_x86_512.hpp"
}  // namespace

#include "kernels/body/q8_entry.hpp"

}  // namespace lithe::kernels::avx512
