// `lithe build --precision int8 --emit-qdq-onnx FILE`: what lithe quantized, as an ONNX QDQ
// model (ONNX Runtime's explicit-quantization format) that other runtimes can run and
// compare against lithe's INT8 engine. Made from the optimized FP32 graph before the layout
// pass (standard ONNX ops once the fused ones are expanded) and the quantizer's record.
#pragma once
#include <set>
#include <string>

#include "builder/quantize.hpp"
#include "ir/graph.hpp"

namespace lithe::build {

/// A copy of `g` that shares no constant storage with it (equalize_depthwise_pairs later
/// edits the engine graph's weights in place).
ir::Graph clone_graph(const ir::Graph& g);

/// Names of the lithe.ConvNhwc nodes of `g` (the convs the quantizer and the cross-layer
/// equalization see), taken before quantization.
std::set<std::string> nhwc_conv_names(const ir::Graph& g);

/// The QDQ form of `fp32` (the optimized graph before the layout pass, default opset 11 or
/// newer; written as opset 13 or newer) with exactly what `q` records:
/// - the weights as equalize_depthwise_pairs left them (run again here on the convs named in
///   `nhwc_convs`, which must match q.equalized pairs), then q.channel_scaling applied
///   (apply_equalization: weights, and affine maps made per channel);
/// - QuantizeLinear -> DequantizeLinear (uint8, per tensor) on every recorded activation:
///   an INT8 layer's output for all its readers (lithe's float readers see the dequantized
///   value too), a float value only where an INT8 layer reads it (input X, residual Z);
///   value names map from the quantized graph by dropping the layout pass's "_nhwc" /
///   "_to_nhwc" suffix (pools, nearest Resize and Concat are INT8 layers too: their inputs
///   and output get the same pairs, so a Concat requantizes its inputs as lithe's does);
/// - weights as int8 initializers with DequantizeLinear by lithe's per-output-channel scales
///   (axis 0 for Conv, the output axis of B for Gemm), biases as int32 with DequantizeLinear
///   at x_scale * w_scale[c].
/// A record that does not fit the graph is a lithe::Error naming the layer.
ir::Graph make_qdq_graph(const ir::Graph& fp32, const std::set<std::string>& nhwc_convs,
                         const Int8Summary& q);

}  // namespace lithe::build
