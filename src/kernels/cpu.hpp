// CPU feature detection and the kernel level the runtime dispatches to.
//
// Detected once at load time with CPUID and XGETBV (the OS must have enabled the AVX and
// AVX-512 register state, not only the CPU support it). LITHE_ISA=portable|avx2|avxvnni|avx512|
// avx512vnni forces
// a level for tests and comparisons; a level this CPU cannot run is refused with an error.
// AArch64 has its place in the enum (NEON, dotprod) for the backend that comes later.
#pragma once
#include <string>

namespace lithe::kernels {

enum class Isa {
  kPortable,    ///< plain C++ (the compiler's baseline vectorization); always available
  kAvx2,        ///< x86-64 AVX2 + FMA + F16C
  kAvx512,      ///< x86-64 AVX-512 F/BW/VL/DQ
  kAvxVnni,     ///< avx2 + AVX-VNNI (VEX vpdpbusd): the avx2 fp32 kernels, VNNI int8 kernels
  kAvx512Vnni,  ///< avx512 + AVX512-VNNI: the avx512 fp32 kernels, VNNI int8 kernels
};

/// What this CPU and OS support.
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx_vnni = false, avx512bf16 = false, avx512vbmi = false;
  std::string brand;  ///< CPUID brand string, for reports
};

const CpuFeatures& cpu_features();

/// The best level the CPU supports (avx512vnni > avx512 > avxvnni > avx2 > portable).
Isa best_isa();
/// The level kernels run at: best_isa(), or LITHE_ISA when set (fails if unsupported).
Isa active_isa();
/// True when the CPU can run kernels of `isa`.
bool isa_supported(Isa isa);
const char* isa_name(Isa isa);
/// Every level, in the order above (tests and benchmarks iterate over it).
inline constexpr Isa kAllIsas[] = {Isa::kPortable, Isa::kAvx2, Isa::kAvx512, Isa::kAvxVnni,
                                   Isa::kAvx512Vnni};
/// Parses "portable", "avx2", "avxvnni", "avx512", "avx512vnni"; fails naming the bad value
/// otherwise.
Isa parse_isa(const std::string& name);

}  // namespace lithe::kernels
