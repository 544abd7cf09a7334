// Private to the resize family: the parts split off resize.cpp and helpers they share.
#pragma once
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/op.hpp"

namespace lithe::ops {

/// GridSample and RoiAlign (resize_sample.cpp).
void add_resize_sample_ops(std::vector<OpDef>& ops);
/// lithe.QResizeLinearU8, the INT8 linear Resize (qresize.cpp).
void add_qresize_ops(std::vector<OpDef>& ops);

/// How a Resize or Upsample node maps output coordinates to input taps, exactly as its
/// reference kernel does, for an input of shape `in` and the node's inputs (`inputs[i]` null
/// when absent; scales / sizes / roi must be given). Per axis and output coordinate: the
/// (input index, weight) taps, or no taps where the coordinate takes the extrapolation value
/// (tf_crop_and_resize). Fails as the reference kernel would on bad attributes or inputs.
struct ResizeMapping {
  bool nearest = false, linear = false;  ///< the mode (neither: cubic)
  Shape out;
  std::vector<std::vector<std::vector<std::pair<int64_t, double>>>> taps;  ///< [axis][out]
};
ResizeMapping resize_mapping(const ir::Node& node, const Shape& in,
                             const std::vector<const Tensor*>& inputs);

/// Whether axis d of a mapping from `in` to m.out passes through: each output reads the same
/// input index with weight 1.
inline bool resize_axis_passes(const ResizeMapping& m, const Shape& in, size_t d) {
  if (in[d] != m.out[d]) return false;
  for (int64_t o = 0; o < m.out[d]; ++o) {
    const auto& t = m.taps[d][static_cast<size_t>(o)];
    if (t.size() != 1 || t[0].first != o || t[0].second != 1.0) return false;
  }
  return true;
}

/// lithe.QResizeLinearU8's mapping for an input of shape `in` (node: its attributes, those of
/// an opset-19 Resize in mode linear; scales or sizes: its constant inputs, one of them null):
/// resize_mapping of that Resize. Fails on tf_crop_and_resize and as resize_mapping would.
ResizeMapping qresize_mapping(const ir::Node& node, const Shape& in, const Tensor* scales,
                              const Tensor* sizes);

namespace resize_detail {

/// Keys' cubic convolution weights for the four taps around a point at fraction `r`
/// past the second tap (r in [0, 1]), with coefficient `a`.
inline void cubic_coeffs(double r, double a, double c[4]) {
  c[0] = ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a;
  c[1] = ((a + 2) * r - (a + 3)) * r * r + 1;
  c[2] = ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1;
  c[3] = ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a;
}

}  // namespace resize_detail
}  // namespace lithe::ops
