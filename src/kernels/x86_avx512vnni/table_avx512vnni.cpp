// The avx512vnni level: the avx512 level's fp32 kernels (its table, copied) with int8 kernels that
// use AVX512-VNNI vpdpbusd (q8_avx512vnni.cpp, compiled with this folder's flags; see
// CMakeLists.txt). This file holds no kernel code, so it builds with the baseline flags.
#include "kernels/kernels.hpp"

namespace lithe::kernels::avx512vnni {

const KernelTable& table() {
  static const KernelTable t = [] {
    KernelTable k = avx512::table();
    k.isa = Isa::kAvx512Vnni;
    k.q8_gemm = q8_gemm;
    k.q8_dwconv = q8_dwconv;
    return k;
  }();
  return t;
}

}  // namespace lithe::kernels::avx512vnni
