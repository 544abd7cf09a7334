// The avx512 level's int8 kernels: body/q8_x86_512.hpp with AVX-512BW vpmaddwd on int16-widened
// bytes (no VNNI), compiled with this folder's flags (see CMakeLists.txt). GCC 12's AVX-512
// intrinsics read a deliberately uninitialized __Y (GCC PR 105593), which -Wuninitialized /
// -Wmaybe-uninitialized report at the header's lines once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <cstring>

#include "kernels/kernels.hpp"

namespace lithe::kernels::avx512 {
namespace {
constexpr bool kVnni = false;
#include "kernels/body/q8_x86_512.hpp"
}  // namespace

void q8_gemm(const Q8GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  q8::gemm(g, m0, m1, p0, p1);
}

void q8_dwconv(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1) { q8::dwconv(d, oy0, oy1); }

}  // namespace lithe::kernels::avx512
