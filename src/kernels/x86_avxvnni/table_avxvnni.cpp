// The avxvnni level: the avx2 level's fp32 kernels (its table, copied) with int8 kernels that
// use AVX-VNNI vpdpbusd (q8_avxvnni.cpp, compiled with this folder's flags; see CMakeLists.txt).
// This file holds no kernel code, so it builds with the baseline flags.
#include "kernels/kernels.hpp"

namespace lithe::kernels::avxvnni {

const KernelTable& table() {
  static const KernelTable t = [] {
    KernelTable k = avx2::table();
    k.isa = Isa::kAvxVnni;
    k.q8_gemm = q8_gemm;
    k.q8_dwconv = q8_dwconv;
    return k;
  }();
  return t;
}

}  // namespace lithe::kernels::avxvnni
