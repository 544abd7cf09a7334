// The shapes and window of a channels-last conv, shared by lithe.ConvNhwc (nhwc.cpp) and
// lithe.QConvNhwc (qnhwc.cpp), and the geometry of lithe.DepthToSpaceNhwc, shared with its fast
// step (runtime/fast_copy.cpp).
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

/// lithe.DepthToSpaceNhwc: X [N, H, W, bh*bw*C] -> Y [N, H*bh, W*bw, C] with
/// Y[n, h*bh + i, w*bw + j, c] = X[n, h, w, (i*bw + j)*C + c].
struct NhwcDepthToSpace {
  int64_t n = 0, h = 0, w = 0, c = 0;  ///< input N, H, W and the output's C
  int64_t bh = 1, bw = 1;
  Shape out_shape;
};

/// Checks X (rank 4) and the block sizes (attributes bh, bw >= 1 dividing X's channels) and
/// computes the output shape; fails naming what is wrong. Defined in nhwc.cpp.
NhwcDepthToSpace nhwc_depth_to_space(const NodeAttrs& a, const Shape& xs);

}  // namespace lithe::ops
