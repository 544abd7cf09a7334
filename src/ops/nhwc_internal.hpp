// The shapes and window of a channels-last conv, shared by lithe.ConvNhwc (nhwc.cpp) and
// lithe.QConvNhwc (qnhwc.cpp).
#pragma once
#include "ops/conv_pool_internal.hpp"
#include "ops/fused_internal.hpp"

namespace lithe::ops {

struct NhwcConv {
  int64_t n = 0, c = 0, m = 0, group = 1;
  conv_pool::Geometry g;
  Shape out_shape;
  fused::Epilogue e;  ///< the fused activation
};

/// Checks X [N, H, W, C] and W [M, C/group, kH, kW] against the node's group and
/// kernel_shape, and reads the window geometry and the fused activation; fails naming what
/// is wrong. Defined in nhwc.cpp.
NhwcConv nhwc_conv(const NodeAttrs& a, const Shape& xs, const Shape& ws);

}  // namespace lithe::ops
