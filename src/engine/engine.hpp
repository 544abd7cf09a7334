// The engine file: an optimized graph, its memory plan, its build report and a header,
// serialized with FlatBuffers (schema: engine.fbs). Constants are 64-byte-aligned blobs in
// a data section so a mapped file serves weights without copies.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "ir/graph.hpp"
#include "plan/plan.hpp"

namespace lithe::engine {

// 2: strided plan slices; 3: constants stored in half precision (Value.storage_dtype);
// 4: the checksum is XXH3-64 (engine_format.hpp), not XXH64. The writer stamps version 4;
// the reader still reads versions 1-3 (their XXH64 checksum included).
inline constexpr uint32_t kFormatVersion = 4;
inline constexpr uint32_t kFormatVersionHalfStorage = 3;
inline constexpr uint32_t kFormatVersionXxh3 = 4;

struct BuildInfo {
  std::string producer;       ///< "lithe 0.1.0"
  std::string source_sha256;  ///< hex SHA-256 of the source model file
  std::string options_json;   ///< build options
  std::string isa;            ///< kernel family the weights were packed for ("generic")
};

struct EngineContents {
  std::shared_ptr<ir::Graph> graph;
  plan::MemoryPlan plan;
  std::string report_json;  ///< the build report (passes, layers, memory)
  BuildInfo info;
  /// The read-only file mapping the constants borrow (load_engine), else null / 0.
  const void* mapped = nullptr;
  size_t mapped_bytes = 0;
};

/// True if the file starts with the engine magic (cheap; no verification).
bool is_engine_file(const std::string& path);
/// Serializes deterministically (the same contents give the same bytes).
std::string serialize(const EngineContents& e);
/// Writes to a temporary file beside `path` and renames it, so a failure never leaves a
/// partial file.
void write_engine(const std::string& path, const EngineContents& e);
/// Maps `path` and verifies everything (FlatBuffers verifier, then semantic checks: every
/// index, offset and size in range, dtypes and shapes consistent, checksum) before
/// returning. Constants borrow the mapping. Fails with one line naming the file.
EngineContents load_engine(const std::string& path);
/// Same from bytes in memory (`what` names them in errors); constants borrow `bytes`.
EngineContents load_engine_bytes(std::shared_ptr<const std::string> bytes, const std::string& what);

}  // namespace lithe::engine
