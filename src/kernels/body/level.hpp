// One kernel level: every body, then the level's table. Included once by each
// <level>/table_<level>.cpp inside namespace lithe::kernels::<level>, after that file has
// defined, in an anonymous namespace, kIsa, kGemmMR, kGemmNV, kDirectMR, kWindowPanels and
// kVecWidth (and included <cmath>, <cstring>, <limits> and kernels/kernels.hpp). The int8 entries
// are the level's q8_gemm / q8_dwconv / q8_binary (q8_<level>.cpp, declared in kernels.hpp). The
// bodies land in the anonymous namespace, so each level's copies are its own (see vec.hpp).
namespace {
#include "kernels/body/f32_dwconv.hpp"
#include "kernels/body/f32_gemm.hpp"
#include "kernels/body/f32_pool.hpp"
#include "kernels/body/f32_softmax.hpp"
#include "kernels/body/f32_winograd.hpp"
#include "kernels/body/q8_out.hpp"
#include "kernels/body/q8_pool.hpp"
#include "kernels/body/q8_resize.hpp"
}  // namespace

const KernelTable& table() {
  static const KernelTable t{kIsa,
                             kGemmMR,
                             kGemmNV,
                             kWindowPanels,
                             gemm_body::f32_gemm,
                             gemm_body::f32_gemm_direct,
                             gemm_body::f32_gemv,
                             dwconv_body::f32_dwconv,
                             pool_body::f32_pool,
                             softmax_body::f32_softmax,
                             winograd_body::f32_winograd_input,
                             winograd_body::f32_winograd_output,
                             q8_gemm,
                             q8_dwconv,
                             q8pool_body::q8_pool,
                             q8out_body::q8_float_out,
                             q8out_body::q8_quantize,
                             q8out_body::q8_lookup,
                             q8_binary,
                             q8resize_body::q8_resize};
  return t;
}
