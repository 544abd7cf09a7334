// Data-driven tuning of the INT8 build: per-channel equalization of activations from their
// measured ranges (a first pass over the calibration data) before the histograms are taken.
//
// A per-tensor uint8 activation whose channels have very different ranges spends most of
// its 256 codes on the widest channel: the narrow ones get a few codes each (PP-OCR det's
// learnable-affine outputs before a depthwise conv, BlazeFace's depthwise output with one
// channel 15x wider than the rest). Where the producer is homogeneous per channel and every
// reader is a conv reading the value as its input X, channel c can be divided by s_c at the
// producer and multiplied back into the readers' weights (FP32 result unchanged up to
// rounding):
//   producer  a conv with a linear or Relu output (its weights and bias of channel c / s_c),
//             or a scalar affine map x * a (+ b) (made per channel: a / s_c, b / s_c; the
//             quantizer folds it into a per-channel lookup table);
//   readers   depthwise convs (weights of channel c * s_c: per-channel weight scales absorb
//             it at no cost) or group-1 convs (input column c * s_c, which takes precision
//             from those columns: the factor is halved in the log domain there).
// s_c = max(lo_c / L, hi_c / H) over the per-channel range [lo_c, hi_c] and the tensor's
// [L, H] (both containing 0), within [1/64, 1]: each channel then fills the tensor's range.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "builder/quantize.hpp"
#include "core/tensor.hpp"
#include "ir/graph.hpp"

namespace lithe::build {

/// The activations of `g` (channels-last, after equalize_depthwise_pairs) that can be
/// equalized, with unit scales.
std::vector<ChannelScaling> equalization_sites(const ir::Graph& g);

/// The scales of each site from its per-channel ranges over `samples` (one FP32 run each).
/// Sites whose scales would all be 1 are dropped.
std::vector<ChannelScaling> measure_equalization(const ir::Graph& g,
                                                 const std::vector<std::vector<Tensor>>& samples,
                                                 int threads);

/// Applies the scales to `g` in place (new constants; shared storage is not written). A site
/// that does not match `g` (another model, a stale cache) is a lithe::Error naming it.
/// `nchw`: the graph before the layout pass (the affine map's constants become [C, 1, 1]
/// instead of [C]).
void apply_equalization(ir::Graph& g, const std::vector<ChannelScaling>& sites, bool nchw = false);

/// build_int8's histograms with data-driven equalization: from the cache (its histograms and
/// scales, applied to `g`), else a first pass for the scales, then calibration of the
/// equalized graph, both written to the cache. Fills sum->channel_scaling. `samples`
/// defaults to opts.load.
std::map<std::string, quant::Histogram> tuned_calibration(
    ir::Graph& g, const CalibrationOptions& opts, const std::string& model_sha256, Int8Summary* sum,
    const std::function<std::vector<std::vector<Tensor>>()>& samples = {});

}  // namespace lithe::build
