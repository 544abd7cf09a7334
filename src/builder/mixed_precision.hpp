// Mixed precision chosen from an accuracy budget (`lithe build --precision best
// --max-accuracy-drop X`): every layer the quantizer can make INT8 is measured alone in INT8
// (its sensitivity), then the most sensitive ones are kept in FP32, as few as keep the whole
// model's output error within X. The error is measured against the FP32 graph's outputs on
// the calibration samples (model_error says how).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "builder/quantize.hpp"

namespace lithe::build {

/// The error of one output of a quantized graph against the FP32 graph, over all samples.
struct OutputError {
  std::string name;
  double cosine_error = 0;  ///< 100 x (1 - cosine) of all samples' values taken as one vector
  double top1 = -1;         ///< % of samples whose arg max differs; -1 when not class scores
  /// The output's error: the larger of the two (cosine_error alone without class scores).
  double error() const { return top1 > cosine_error ? top1 : cosine_error; }
};

/// The error of a whole graph: the largest of its outputs' errors.
struct ModelError {
  std::vector<OutputError> outputs;
  double error = 0;
};

/// The error of `got` against `want` (per sample, one tensor per graph output; output names
/// in `names`). A float32 output of rank 2 [rows, C] with C > 1 is taken as class scores
/// (one row per image of a batch): top1 compares each row's arg max. Bitwise-equal outputs
/// have error 0; a non-finite value where FP32 is finite makes the cosine error 100.
ModelError model_error(const std::vector<std::string>& names,
                       const std::vector<std::vector<Tensor>>& want,
                       const std::vector<std::vector<Tensor>>& got);

struct MixedPrecisionOptions {
  double max_accuracy_drop = 1.0;  ///< the budget, in model_error's units; finite and >= 0
  /// Samples each layer's sensitivity is measured on: it only orders the layers, and is the
  /// bulk of the cost (one run per layer and sample; ResNet-50: 54 layers).
  size_t sensitivity_samples = 8;
  /// Samples the budget is checked on (one top-1 flip in N samples is 100 / N points: with
  /// the default 100 calibration samples, 1 point).
  size_t eval_samples = 100;
  /// After each measurement: stage ("sensitivity" or "search"), done, total.
  std::function<void(const std::string&, size_t, size_t)> progress;
};

/// One quantizable layer (a conv or Gemm the quantizer can make INT8).
struct LayerSensitivity {
  std::string node;
  std::string precision;  ///< final: "int8", "fp32", or "fp16" (FP32 with half-stored weights)
  ModelError alone;       ///< the model's error with only this layer in INT8
  int rank = 0;           ///< 1 = the largest cosine error (the order layers are kept FP32)
};

/// What build_best did, for the build report.
struct MixedSummary {
  Int8Summary int8;  ///< the final quantization (as for --precision int8)
  double budget = 0;
  ModelError all_int8;  ///< every layer INT8 (plain --precision int8)
  ModelError final;     ///< the chosen mix (measured; zero with every layer in FP32)
  std::vector<LayerSensitivity> layers;  ///< every quantizable layer, in graph order
  size_t kept_fp32 = 0;
  /// The float weights left after quantization stored in half (mark_fp16_storage) because
  /// the error stayed within the budget: how many constants (0: not done), and the error
  /// measured with them in half (-1 when not measured).
  int fp16_constants = 0;
  bool fp16_used = false;
  double fp16_error = -1;
  size_t sensitivity_samples = 0, eval_samples = 0;
  int measurements = 0;  ///< graphs measured (sensitivities + search)
  /// "all-int8" (every layer INT8 fits), "mixed", "unreachable" (even one INT8 layer is over
  /// the budget: all FP32) or "none" (no layer can be INT8).
  std::string outcome;
};

/// The `--precision best` step of a build, in place of build_int8: equalizes, calibrates (or
/// reads the cache), measures, then quantizes `g` with the chosen layers kept in FP32 (their
/// weights stored in half when that too stays within the budget). Needs
/// opts.load even when the cache serves the histograms (the error is measured on the
/// samples).
MixedSummary build_best(ir::Graph& g, const CalibrationOptions& opts,
                        const std::string& model_sha256, const MixedPrecisionOptions& mo);

/// The build report's "mixed_precision" entry (JSON text) and its human form.
std::string mixed_report_json(const MixedSummary& s);
std::string format_mixed_report(const std::string& json_text);

}  // namespace lithe::build
