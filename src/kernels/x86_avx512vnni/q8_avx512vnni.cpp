// The avx512vnni level's int8 kernels: body/q8_x86_512.hpp with AVX512-VNNI vpdpbusd,
// compiled with this folder's flags (see CMakeLists.txt).
#include <cstdint>
#include <cstring>

#include "kernels/cpu.hpp"
#include "kernels/kernels.hpp"
#include "kernels/x86_intrin.hpp"

namespace lithe::kernels::avx512vnni {
namespace {
constexpr bool kVnni = true;
#include "kernels/body/q8_x86_512.hpp"
}  // namespace

#include "kernels/body/q8_entry.hpp"

}  // namespace lithe::kernels::avx512vnni
