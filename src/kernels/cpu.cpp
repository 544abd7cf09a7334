#include "kernels/cpu.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define LITHE_X86 1
#endif

namespace lithe::kernels {
namespace {

#if LITHE_X86
uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if LITHE_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;       // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;  // plus opmask, ZMM_Hi256, Hi16_ZMM
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = avx && os_avx && (b & (1u << 5));
    f.avx512f = os_avx512 && (b & (1u << 16));
    f.avx512dq = os_avx512 && (b & (1u << 17));
    f.avx512bw = os_avx512 && (b & (1u << 30));
    f.avx512vl = os_avx512 && (b & (1u << 31));
    f.avx512vnni = os_avx512 && (c & (1u << 11));
    f.avx512vbmi = os_avx512 && (c & (1u << 1));
    __cpuid_count(7, 1, a, b, c, d);
    f.avx_vnni = os_avx && (a & (1u << 4));
    f.avx512bf16 = os_avx512 && (a & (1u << 5));
  }
  f.fma = f.fma && os_avx;
  f.f16c = f.f16c && os_avx;
  char brand[49] = {};
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000u, nullptr)) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002u + i, &a, &b, &c, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
  }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kPortable:
      return true;
    case Isa::kAvx2:
      return f.avx2 && f.fma && f.f16c;
    case Isa::kAvx512:
      return isa_supported(Isa::kAvx2) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
    case Isa::kAvxVnni:
      return isa_supported(Isa::kAvx2) && f.avx_vnni;
    case Isa::kAvx512Vnni:
      return isa_supported(Isa::kAvx512) && f.avx512vnni;
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::kAvx512Vnni)) return Isa::kAvx512Vnni;
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  if (isa_supported(Isa::kAvxVnni)) return Isa::kAvxVnni;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kPortable;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable:
      return "portable";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvxVnni:
      return "avxvnni";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  for (Isa i : kAllIsas)
    if (name == isa_name(i)) return i;
  fail("unknown ISA level '", name,
       "' (expected portable, avx2, avxvnni, avx512, avx512vnni, or reference for the reference "
       "kernels)");
}

Isa active_isa() {
  const char* env = std::getenv("LITHE_ISA");
  if (!env || !*env) return best_isa();
  Isa isa = parse_isa(env);
  if (!isa_supported(isa))
    fail("LITHE_ISA=", env, ": this CPU cannot run ", isa_name(isa), " kernels (best is ",
         isa_name(best_isa()), ")");
  return isa;
}

}  // namespace lithe::kernels
