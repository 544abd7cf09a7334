// The pipeline: one entry per pass, in the order they run, each with why it sits there.
// X(function, "name", phase, "why"): phase-1 passes run together to a fixed point; phase-2
// passes run after that, and then every pass again to a fixed point (pass.hpp). Each pass lives in src/passes/<name with _>.cpp and defines
// `int function(const ir::Graph&, Rewriter&)`. This list is the single source: the
// pipeline, --disable-pass and the build report come from it.
#pragma once

#define LITHE_PASSES(X)                                                                      \
  X(eliminate_dead_nodes, "dead-node-elimination", 1,                                           \
    "first: later passes match on fewer nodes; the graph outputs are the roots")             \
  X(fold_constants, "constant-folding", 1,                                                      \
    "before no-op elimination: folded shape chains turn Reshape/Slice targets into constants") \
  X(eliminate_noops, "noop-elimination", 1,                                                     \
    "after folding: Reshape-to-same-shape, Mul by 1 etc. are only visible once constant")    \
  X(fold_batchnorm, "fold-batchnorm", 1,                                                        \
    "before activation fusion: Conv-BN-Relu must become Conv-Relu first")                    \
  X(fuse_activation, "fuse-activation", 1,                                                      \
    "after BN folding, before residual fusion: the conv epilogue takes the activation")      \
  X(fuse_residual, "fuse-residual", 1,                                                          \
    "after activation fusion: Conv + Add (+ Relu) becomes one conv with a residual input")   \
  X(aggregate_siblings, "sibling-aggregation", 1,                                               \
    "after the fusions: merges the fused convs that read one tensor into one wider conv")    \
  X(convert_layout_nhwc, "layout-nhwc", 2,                                                      \
    "last: after every fusion, so the NHWC convs carry their final epilogues")
