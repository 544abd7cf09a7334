// IR -> ONNX: writes a graph back as a standard ONNX model (`lithe build --emit-qdq-onnx`,
// and tests that round-trip optimized graphs). With the importer, the only part of lithe
// that sees protobuf.
#pragma once
#include <string>

#include "ir/graph.hpp"

namespace lithe::onnx {

/// Serializes `g` as an ONNX ModelProto: graph inputs and outputs with their element types
/// and shapes, constants as initializers (raw_data), every node with its attributes, and
/// the graph's opset imports. The lithe-domain fused ops (Conv, ConvTranspose, Gemm, MatMul
/// with an `activation` and a residual input Z) are written as the ONNX op followed by Add(Z)
/// and the activation's ONNX op(s), so any ONNX runtime loads the result. A graph that
/// cannot be written (If/Loop/Scan bodies, other lithe-domain ops, string tensors) is a
/// one-line lithe::Error naming the node or value.
std::string export_model_bytes(const ir::Graph& g);

/// export_model_bytes written to `path` atomically (a temporary file and a rename).
void export_model(const ir::Graph& g, const std::string& path);

}  // namespace lithe::onnx
