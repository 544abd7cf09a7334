// INT8 post-training quantization of an optimized FP32 graph (`lithe build --precision
// int8`): calibration runs the graph on sample inputs and records a histogram of every float
// value; quantization turns each channels-last conv into lithe.QConvNhwc (uint8 activations,
// int8 per-channel weights, int32 bias) and puts QuantizeLinear / DequantizeLinear where int8
// and fp32 nodes meet. Nodes without an INT8 kernel stay FP32 and are listed in the report.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "quant/calibrate.hpp"

namespace lithe::runtime {
class Session;
}

namespace lithe::build {

/// A session of the fast executor on a copy of `g` (as the engine will run it); `what` names
/// the user in the error for a graph it cannot run.
std::unique_ptr<runtime::Session> fast_session(const ir::Graph& g, int threads, const char* what);

/// Histograms of every float32 value of `g` (by value name) over `samples` (each one tensor
/// per graph input, in input order), run with the fast executor on `threads` threads.
/// `progress(done, total)` is called after each sample.
std::map<std::string, quant::Histogram> calibrate(
    const ir::Graph& g, const std::vector<std::vector<Tensor>>& samples, int threads,
    const std::function<void(size_t, size_t)>& progress = {});

/// One node's precision after quantization, for the build report.
struct LayerPrecision {
  std::string node;       ///< node name in the FP32 graph
  std::string precision;  ///< "int8" or "fp32"
  std::string reason;     ///< why an FP32 node stayed FP32 ("no int8 kernel", "kept: ...")
};

struct QuantizeOptions {
  quant::CalibMethod method = quant::CalibMethod::kMinMax;
  double percentile = 99.99;
  std::set<std::string> keep_fp32;  ///< node names to leave in FP32 (mixed precision)
  /// Activation parameters fixed by the model (explicit quantization: a QDQ model's scales),
  /// by value name in the graph being quantized; they take precedence over the histograms.
  std::map<std::string, quant::QParams> given;
  /// Per-output-channel weight scales fixed by the model, by weight value name (one entry
  /// per output channel); weights without one get max|w| / 127 per channel.
  std::map<std::string, std::vector<float>> given_weight_scales;
};

/// What one INT8 layer computes with (for --emit-qdq-onnx and the report): value names are
/// those of the quantized (optimized) graph; z is empty without a residual input.
struct QuantizedLayer {
  /// node name; "conv", "gemm", "matmul", "maxpool", "avgpool", "resize", "resize-linear", or
  /// "concat", "add", "mul", "qmatmul" (MatMul of two activations) (one record per input, x: that input)
  std::string node, op;
  std::string x, y, z;
  quant::QParams xp, yp, zp;
  std::vector<float> w_scale;  ///< per output channel (conv, gemm)
};

/// Calibration for `lithe build --precision int8`.
struct CalibrationOptions {
  /// Loads the samples (one tensor per graph input, in input order) once the optimized
  /// graph's inputs are known; not called when the cache serves.
  std::function<std::vector<std::vector<Tensor>>(const ir::Graph&)> load;
  std::string method = "minmax";  ///< minmax, percentile, entropy or mse
  double percentile = 99.99;
  std::string cache;  ///< calibration cache file ("" for none): read when its key matches, else written
  std::string key;    ///< what the histograms depend on besides the model (data, preprocessing)
  std::function<void(size_t, size_t)> progress;  ///< after each calibration sample
  int threads = 1;
};

/// One equalized activation, named by the nodes it touches (names shared by the graph before
/// the layout pass, so --emit-qdq-onnx can replay it).
struct ChannelScaling {
  std::string value;                 ///< the activation (name in the quantized graph)
  std::string producer;              ///< the conv, or the affine map's last node
  std::string mul;                   ///< the affine map's Mul node ("" for a conv producer)
  std::string add;                   ///< the affine map's Add node ("" when none)
  std::vector<std::string> readers;  ///< the convs reading it
  std::vector<float> scales;         ///< s_c: channel c is divided by it
};

/// What build_int8 did, for the build report.
struct Int8Summary {
  std::string method;
  size_t samples = 0;
  bool from_cache = false;
  int equalized = 0;  ///< depthwise -> conv pairs equalized (equalize_depthwise_pairs)
  std::vector<LayerPrecision> layers;
  std::vector<QuantizedLayer> quantized;
  /// Activations equalized per channel from calibration data (builder/int8_tuning.hpp).
  std::vector<ChannelScaling> channel_scaling;
};

/// Cross-layer equalization before calibration (data free, so a calibration cache stays
/// valid): for a depthwise conv whose linear or Relu output only one group-1 conv reads,
/// channel c of the depthwise weights and bias is divided by s_c = sqrt(r1_c / r2_c) and the
/// reader's input channel c multiplied by it (r1, r2: the two weight ranges of that channel).
/// The same function; channel ranges closer together under one activation scale (BlazeFace's
/// 8x8 branch: cosine to FP32 0.976 -> 0.988). Returns the number of pairs.
int equalize_depthwise_pairs(ir::Graph& g);

/// The method and percentile of `opts` as quantizer options (a percentile outside (50, 100]
/// is a lithe::Error).
QuantizeOptions quantize_options(const CalibrationOptions& opts);

/// The INT8 step of a build: histograms from the cache (when its key is `model_sha256` +
/// opts.key) or by calibration (then written to the cache), then quantize_graph.
Int8Summary build_int8(ir::Graph& g, const CalibrationOptions& opts, const std::string& model_sha256,
                       const std::set<std::string>& keep_fp32 = {});

/// Replaces each chain DequantizeLinear -> pointwise float ops -> QuantizeLinear (per-tensor
/// uint8 at both ends; an activation, a scalar affine map...) by lithe.LookupU8 of the DQ's
/// input with the 256 results of the chain's reference kernels (per channel when an op has a
/// constant of one value per channel of the last axis, as equalized affine maps do: the
/// distinct tables [T, 256] and each channel's index). Returns the names of the float nodes it
/// folded (those read elsewhere too stay). quantize_graph calls it last.
std::vector<std::string> fold_lookup_chains(ir::Graph& g);

/// Quantizes `g` in place with the ranges chosen from `hist`. Returns the per-node report
/// (every node of the FP32 graph that computes something). Must run before conv weights
/// are packed (pack_conv_weights). `quantized`, when given, receives each INT8 layer.
std::vector<LayerPrecision> quantize_graph(ir::Graph& g,
                                           const std::map<std::string, quant::Histogram>& hist,
                                           const QuantizeOptions& opts,
                                           std::vector<QuantizedLayer>* quantized = nullptr);

}  // namespace lithe::build
