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
