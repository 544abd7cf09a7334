// The build phase end to end: ONNX -> import -> passes -> memory plan -> engine contents,
// with the build report (stored in the engine, shown by `lithe build` and `lithe inspect`).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "builder/mixed_precision.hpp"
#include "builder/quantize.hpp"
#include "engine/engine.hpp"

namespace lithe::build {

struct BuildOptions {
  std::map<std::string, Shape> input_shapes;
  std::vector<std::string> disabled_passes;  ///< pass names (--disable-pass)
  bool optimize = true;                      ///< false: import and plan only
  /// Store conv weights in the layout the fast kernels read (ops/conv_weight_layout.hpp), so
  /// loading an engine maps them instead of repacking (with optimize).
  bool pack_weights = true;
  /// Also store the Winograd-transformed weights of the 3x3 convs that run as Winograd
  /// (store_winograd_weights; with pack_weights, not with precision fp16): a larger file,
  /// no transform at load.
  bool store_winograd = true;
  /// "fp32", or "fp16": float32 constants stored in half precision (half the file; decoded
  /// to fp32 at load, so every kernel runs unchanged), "int8" or "best" (INT8 where the error
  /// budget allows). Anything else fails.
  std::string precision = "fp32";
  /// INT8 calibration (precision "int8" and "best"): data, method, cache.
  CalibrationOptions calib;
  /// Precision "best": INT8 where the model's output error stays within a budget
  /// (builder/mixed_precision.hpp).
  MixedPrecisionOptions mixed;
  /// Precision "int8": also write what was quantized as an ONNX QDQ model to this path
  /// (builder/qdq_export.hpp); "" for none. The engine is the same as without it.
  std::string emit_qdq_onnx;
};

/// Marks for half storage (Value::storage = kFloat16) every float32 constant of `g` with at
/// least kFp16MinElements elements and two or more dims above 1 (not a bias or per-channel
/// vector) whose values are all finite and within the half range, except the weights of
/// the first kFp16Fp32Layers layers with such weights on any path from an input (while they
/// hold at most kFp16Fp32Share of those elements), and rounds its values to half; returns
/// how many. build_model does it last with precision "fp16".
inline constexpr int64_t kFp16MinElements = 16;
inline constexpr int kFp16Fp32Layers = 2;
inline constexpr double kFp16Fp32Share = 0.01;
int mark_fp16_storage(ir::Graph& g);

struct BuildResult {
  engine::EngineContents contents;
  std::vector<std::string> notes;  ///< loader notes (symbolic dims set to 1, ...)
};

/// Stores the constant weights of the graph's ConvNhwc nodes in the layout the fast kernels
/// read (ops/conv_weight_layout.hpp; the node's weight_layout attribute); returns how many.
/// build_model does it after the passes unless BuildOptions::pack_weights is off.
int pack_conv_weights(ir::Graph& g);

/// Stores the transformed weights of each conv the runtime runs as Winograd F(4x4, 3x3)
/// (runtime::choose_winograd) as its winograd_weights attribute (ops/conv_weight_layout.hpp),
/// so loading maps them instead of computing them; returns how many. Before pack_conv_weights
/// (it reads W in ONNX order). build_model does it with pack_weights, unless precision fp16.
/// Adds the bytes stored to *bytes when given.
int store_winograd_weights(ir::Graph& g, int64_t* bytes = nullptr);

/// Builds an engine from an ONNX file. Deterministic: the same file and options give the
/// same contents (no times or paths in the report).
BuildResult build_model(const std::string& onnx_path, const BuildOptions& opts);

/// Same from the bytes of an ONNX model in memory: `what` names them in errors, `base_dir` is
/// where external data files are looked up ("" refuses external data).
BuildResult build_model_bytes(const std::string& bytes, const std::string& base_dir,
                              const std::string& what, const BuildOptions& opts);

/// Lowercase hex SHA-256 of a file's bytes.
std::string sha256_file(const std::string& path);
/// Lowercase hex SHA-256 of `bytes`.
std::string sha256_bytes(const std::string& bytes);

/// The per-layer table (JSON array: op, fused activation, precision, shapes, arena
/// offsets), derived from the engine's graph and plan.
std::string layers_json(const engine::EngineContents& e);

/// Everything `lithe inspect --json` prints: header, build report and layers.
std::string inspect_json(const engine::EngineContents& e);

/// Human summary of a build report, with the layer table when `layers_json` is given (the
/// tables `lithe build` and `lithe inspect` print).
std::string format_report(const std::string& report_json, const std::string& layers_json = "");

}  // namespace lithe::build
