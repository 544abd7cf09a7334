// Explicit quantization: models that carry their own INT8 parameters (QDQ models, with
// QuantizeLinear / DequantizeLinear around float ops as ONNX Runtime's quantizer and PyTorch
// QAT export write them, and QLinearConv / QLinearMatMul models) built as INT8 from those
// parameters instead of from calibration.
//
// Before the graph passes, import_explicit_quant lowers each QLinearConv / QLinearMatMul to
// DequantizeLinear -> Conv / Gemm / MatMul -> QuantizeLinear, removes every Q -> DQ pair on a
// float activation (recording its scale and zero point by value name), and folds the
// DequantizeLinear of constant int8 weights and int32 biases into float constants (recording
// the weight scales). The passes then see a float graph. Afterwards, explicit_quantize maps
// the recorded names onto the optimized graph and calls quantize_graph with them. What does
// not fit that form (asymmetric weights, per-axis activations, int16 / fp8 types, a Q read by
// other ops than DQ, ...) stays as the ops it is, which the executors run.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "builder/quantize.hpp"
#include "ir/graph.hpp"
#include "passes/pass.hpp"

namespace lithe::build {

/// The per-output-channel scales of a folded int8 weight.
struct FoldedWeight {
  std::vector<float> scale;  ///< one per index along `axis`, or one value (per tensor)
  int axis = -1;             ///< the axis the scales run along; -1 per tensor
  Tensor value;              ///< the folded float values (a pass that changes them drops the scales)
};

/// What import_explicit_quant found and recorded (value names of the imported graph).
struct ExplicitQuant {
  std::map<std::string, quant::QParams> activations;  ///< uint8 parameters by float value name
  std::map<std::string, FoldedWeight> weights;         ///< by folded constant's name
  int pairs_removed = 0;     ///< Q -> DQ pairs on float activations removed
  int weights_folded = 0;    ///< DQ of constant int8 weights folded (scales recorded)
  int biases_folded = 0;     ///< DQ of constant int32 biases folded
  int qlinear_lowered = 0;   ///< QLinearConv / QLinearMatMul lowered to DQ -> op -> Q
  int left_as_ops = 0;       ///< QuantizeLinear / DequantizeLinear nodes left as they are
  /// Float values whose Q -> DQ pair was removed (their fp32 readers get it back after
  /// quantization: restore_fake_quant).
  std::set<std::string> removed_pairs;
  int fake_quant_restored = 0;  ///< values given a Q -> DQ again before fp32 readers
  /// True when the model gives INT8 parameters: a pair removed or a QLinear op lowered.
  bool any() const { return pairs_removed > 0 || qlinear_lowered > 0; }
};

/// Name of the explicit-quantization step for --disable-pass (keeps a QDQ model's Q/DQ ops:
/// the fp32 executors then compute the model's fake quantization as written).
inline constexpr const char* kExplicitQuantStep = "explicit-quantization";

/// Lowers the QLinear ops, removes the Q -> DQ pairs and folds the constant DQs of `g` (top
/// level only) in place. Checks every Q / DQ / QLinear node with constant parameters first:
/// a scale that is not positive and finite, a zero point of another type or shape than the
/// data's or its scale's, an axis out of range or a per-axis scale of the wrong length is a
/// one-line lithe::Error naming the node.
ExplicitQuant import_explicit_quant(ir::Graph& g);

/// The step in a build, before the passes: takes kExplicitQuantStep out of po->disabled (where
/// present, nothing is imported), runs import_explicit_quant (errors name `what`), and keeps
/// sibling aggregation off when the model gives INT8 parameters (merged convs would share one
/// output scale where the model gives each its own).
ExplicitQuant explicit_quant_step(ir::Graph& g, const std::string& what, passes::PipelineOptions* po);

/// The build report's note on what the import did.
std::string explicit_quant_note(const ExplicitQuant& eq);

/// The INT8 step of a build for a model with explicit quantization: `eq`'s names mapped onto
/// the optimized graph `g` (`<name>_nhwc`, through Reshape / Transpose / Flatten / MaxPool,
/// which keep the scale), then quantize_graph. When `calib` has data (load or a cache), the
/// histograms fill the values the model gives no range for; without, those layers stay fp32
/// ("no range in the model").
/// Sets eq.fake_quant_restored (restore_fake_quant).
Int8Summary build_explicit_int8(ir::Graph& g, ExplicitQuant& eq, const CalibrationOptions& calib,
                                const std::string& model_sha256);

/// After quantize_graph: a value whose Q -> DQ pair the import removed and that an fp32 node
/// computes with (not a data-movement op, not a QuantizeLinear) is read through a Q -> DQ
/// again, unless it already comes from a DequantizeLinear (through data movement): the fp32
/// layers then see the values the model gives them (as do graph outputs). Returns how many
/// values.
int restore_fake_quant(ir::Graph& g, const ExplicitQuant& eq);

/// The activation parameters and weight scales of `eq` as names of the optimized graph `g`
/// (QuantizeOptions::given and given_weight_scales).
void map_explicit_params(const ir::Graph& g, const ExplicitQuant& eq, QuantizeOptions* qo);

}  // namespace lithe::build
