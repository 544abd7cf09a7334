// Layouts of a ConvNhwc weight W [M, C/group, kh, kw] as stored in an engine. The builder packs
// conv weights into the layout the fast kernels read (so loading maps them instead of
// repacking), keeping W's element count and shape; the node's `weight_layout` attribute names
// the layout and the reference kernel unpacks it.
//   ""         ONNX order.
//   "kpanel16" per group, the GEMM B matrix (K = kh*kw*C/group rows in (ky, kx, c) order, N =
//              M/group columns) in panels of 16 columns: panel p holds, for each k, the
//              columns 16p .. 16p+w-1 with w = min(16, N - 16p) (the last panel is not padded).
//   "taps_c"   depthwise (C/group == M/group == 1): [kh*kw][M].
// A stride-1 3x3 conv (group 1) that runs as Winograd F(4x4, 3x3) may also carry its
// transformed weights (kernels::winograd_weights_f32) as the tensor attribute
// `winograd_weights`, float32 [36, winograd_floats(C, M) / 36]: the builder computes them
// once and the runtime maps them instead of transforming W at load. W stays as it is (the
// reference kernel and every other path read it).
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/kernels.hpp"

namespace lithe::ops::conv_layout {

enum class WeightLayout { kOnnx, kPanels16, kTapsC };

inline constexpr const char* kWinogradAttr = "winograd_weights";

/// Floats of the stored Winograd weights of a conv with C inputs and M outputs: 36 packed GEMM
/// B matrices of K = C rows and N = M columns.
inline int64_t winograd_floats(int64_t c, int64_t m) { return 36 * kernels::packed_b_floats(c, m); }

inline const char* layout_name(WeightLayout l) {
  return l == WeightLayout::kPanels16 ? "kpanel16" : l == WeightLayout::kTapsC ? "taps_c" : "";
}

/// Parses the attribute; false for an unknown name.
inline bool parse_layout(const std::string& s, WeightLayout* l) {
  for (WeightLayout c : {WeightLayout::kOnnx, WeightLayout::kPanels16, WeightLayout::kTapsC})
    if (s == layout_name(c)) {
      *l = c;
      return true;
    }
  return false;
}

/// Visits every weight once as (ONNX index, packed index) for W [group * mg, cg, taps].
template <class F>
inline void for_each_weight(WeightLayout l, int64_t group, int64_t mg, int64_t cg, int64_t taps,
                            F&& f) {
  const int64_t k = taps * cg;
  for (int64_t g = 0; g < group; ++g)
    for (int64_t n = 0; n < mg; ++n)
      for (int64_t ci = 0; ci < cg; ++ci)
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t onnx = ((g * mg + n) * cg + ci) * taps + t;
          int64_t packed = onnx;
          if (l == WeightLayout::kTapsC) {
            packed = t * group * mg + g * mg + n;  // cg == 1
          } else if (l == WeightLayout::kPanels16) {
            const int64_t p = n / 16, w = std::min<int64_t>(16, mg - 16 * p);
            packed = g * mg * k + p * 16 * k + (t * cg + ci) * w + n % 16;
          }
          f(onnx, packed);
        }
}

}  // namespace lithe::ops::conv_layout
