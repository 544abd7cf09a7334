// The pipeline: one entry per pass, in the order they run, each with why it sits there.
// X(function, "name", "why"). Each pass lives in src/passes/<name with _>.cpp and defines
// `int function(const ir::Graph&, Rewriter&)`. This list is the single source: the
// pipeline, --disable-pass and the build report come from it.
#pragma once

#define LITHE_PASSES(X)                                                                      \
  X(eliminate_dead_nodes, "dead-node-elimination",                                           \
    "first: later passes match on fewer nodes; the graph outputs are the roots")             \
  X(fold_constants, "constant-folding",                                                      \
    "before no-op elimination: folded shape chains turn Reshape/Slice targets into constants") \
  X(eliminate_noops, "noop-elimination",                                                     \
    "after folding: Reshape-to-same-shape, Mul by 1 etc. are only visible once constant")    \
  X(fold_batchnorm, "fold-batchnorm",                                                        \
    "before activation fusion: Conv-BN-Relu must become Conv-Relu first")                    \
  X(fuse_activation, "fuse-activation",                                                      \
    "after BN folding, before residual fusion: the conv epilogue takes the activation")      \
  X(fuse_residual, "fuse-residual",                                                          \
    "after activation fusion: Conv + Add (+ Relu) becomes one conv with a residual input")   \
  X(aggregate_siblings, "sibling-aggregation",                                               \
    "last: merges the fused convs that read one tensor into one wider conv")
