// Private helpers shared by the simplification passes (dead nodes, constant folding, no-op
// elimination, BatchNorm folding), the layout pass and the QDQ export. Read-only queries on a
// graph; nothing here edits it.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace lithe::passes::util {

/// Per value id of `g`: 1 if a subgraph body (at any depth) reads it by name. Such a value
/// cannot be renamed, replaced or removed: replace_uses() only rewires node inputs.
std::vector<char> values_read_by_subgraphs(const ir::Graph& g);

/// True if value `v` has a fully known static shape and a known element type.
bool type_known(const ir::Graph& g, int v);

/// True if two values have the same element type and the same fully known shape.
bool same_type(const ir::Graph& g, int a, int b);

/// True if no node reads `v`, it is not a graph output and no subgraph reads it.
bool unused(const ir::Graph& g, int v, const std::vector<char>& body_reads);

/// Every element as double (any numeric type).
std::vector<double> to_doubles(const Tensor& t);
/// A tensor of element type `dtype` and shape `shape` holding `v` (converted as Cast does).
Tensor from_doubles(const std::vector<double>& v, DType dtype, const Shape& shape);

/// True for a node with a fused form (Conv, ConvTranspose, Gemm, MatMul, ONNX or lithe
/// domain) and one output whose epilogue is still free: no `activation` set yet.
bool epilogue_free(const ir::Node& n);

/// True if every element of `t` equals `x` (numeric types only; false for empty tensors).
bool all_equal(const Tensor& t, double x);

/// A 2-D ConvTranspose (ONNX, or the fused lithe form without a residual input) whose output
/// blocks never overlap: stride == kernel, dilation 1, no pads, no output_padding, group 1,
/// output exactly input x stride, constant weights and bias, static shapes. It is then a 1x1
/// conv to kh*kw*M channels (shuffle_deconv_weights / _bias) and a pixel shuffle,
/// y[n, m, h*kh + i, w*kw + j] = taps[n, (i*kw + j)*M + m, h, w]; a fused activation, per
/// element, runs on the taps. The layout pass (layout_nhwc.cpp) and the QDQ export
/// (builder/qdq_export.cpp) rewrite it so.
bool is_shuffle_deconv(const ir::Graph& g, const ir::Node& n);
/// The 1x1 conv weights [kh*kw*M, C, 1, 1] of such a ConvTranspose's W [C, M, kh, kw]: output
/// channel (i*kw + j)*M + m reads W[c, m, i, j] (any element type).
Tensor shuffle_deconv_weights(const Tensor& w);
/// Its bias [M] repeated for each of the `taps` (kh*kw) blocks.
Tensor shuffle_deconv_bias(const Tensor& b, int64_t taps);

}  // namespace lithe::passes::util
