// ONNX model import. The only part of lithe that sees protobuf.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace lithe::onnx {

/// Largest model file lithe parses (protobuf's own limit is 2 GiB).
inline constexpr size_t kMaxModelBytes = size_t{2} << 30;
/// Largest number of nodes in one graph.
inline constexpr size_t kMaxNodes = 1'000'000;
/// Newest default-domain opset lithe knows.
inline constexpr int kMaxOpset = 21;
/// Newest ONNX IR version lithe reads: 10, the one opset 21 ships with (ONNX 1.16).
inline constexpr int64_t kMaxIrVersion = 10;

struct ImportOptions {
  /// Shapes for graph inputs by name; they fix symbolic and unknown dims.
  std::map<std::string, Shape> input_shapes;
  /// Value symbolic dims without a user shape get (a note is added when used).
  int64_t default_symbolic_dim = 1;
  /// Where notes go (e.g. a symbolic dim set to the default); nullptr: dropped.
  std::vector<std::string>* notes = nullptr;
};

/// Reads, checks and converts an ONNX model file: external data resolved beside it,
/// Constant nodes turned into constants, symbolic dims fixed, nodes sorted and verified,
/// types inferred. Fails with a one-line message naming the file and what is wrong.
std::shared_ptr<ir::Graph> import_model(const std::string& path, const ImportOptions& opts = {});

/// Same, from bytes; `base_dir` is where external data files are looked up.
std::shared_ptr<ir::Graph> import_model_bytes(const std::string& bytes, const std::string& base_dir,
                                              const std::string& what,
                                              const ImportOptions& opts = {});

/// Reads a serialized TensorProto (.pb file of the ONNX test suite). `name` gets its name.
Tensor read_tensor_pb(const std::string& path, std::string* name = nullptr);

}  // namespace lithe::onnx
