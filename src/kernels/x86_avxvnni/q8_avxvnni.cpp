// The avxvnni level's int8 kernels: body/q8_x86_256.hpp with AVX-VNNI vpdpbusd,
// compiled with this folder's flags (see CMakeLists.txt).
#include <cstdint>
#include <cstring>

#include "kernels/kernels.hpp"
#include "kernels/x86_intrin.hpp"

namespace lithe::kernels::avxvnni {
namespace {
constexpr bool kVnni = true;
#include "kernels/body/q8_x86_256.hpp"
}  // namespace

#include "kernels/body/q8_entry.hpp"

}  // namespace lithe::kernels::avxvnni
