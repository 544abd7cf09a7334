// INT8 calibration: per-tensor range collection, the four range-choosing methods, uint8 / int8
// quantization parameters and the calibration cache. Pure functions over float data; the
// builder runs the FP32 graph on calibration samples and feeds every activation here.
//
// A Histogram keeps the exact min and max of the finite values seen and 2048 bins over
// [min, max]. When new data falls outside, the old counts are re-binned into the wider range
// (as ONNX Runtime's and TensorRT's collectors do), each old bin's count split between the
// (at most two) new bins it overlaps in proportion to the overlap, in integers, so totals are
// exact and the result depends only on the order of the adds.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lithe::quant {

class Histogram {
 public:
  static constexpr int kBins = 2048;

  Histogram() : counts_(kBins, 0) {}

  /// Adds `n` values. NaN is counted and ignored; +-inf is counted but kept out of the range
  /// and the bins (one inf must not stretch the range to infinity).
  void add(const float* x, int64_t n);
  /// Adds every value `other` has seen, as if this one had seen them too (within re-binning).
  void merge(const Histogram& other);

  bool empty() const { return total_ == 0; }
  float min() const { return min_; }  ///< smallest finite value seen (0 when empty)
  float max() const { return max_; }  ///< largest finite value seen (0 when empty)
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const { return total_; }  ///< finite values in the bins
  uint64_t nan_count() const { return nan_; }
  uint64_t pos_inf_count() const { return pos_inf_; }
  uint64_t neg_inf_count() const { return neg_inf_; }
  /// Left edge of bin `i` (i in [0, kBins]; edge(kBins) == max()).
  double edge(int i) const;

  /// A histogram from stored parts (the cache); `counts` must have kBins entries, min <= max,
  /// both finite, and a single-value range (min == max) holds everything in bin 0.
  /// Returns false (and leaves *out alone) when the parts are inconsistent.
  static bool from_parts(float min, float max, std::vector<uint64_t> counts, uint64_t nan,
                         uint64_t pos_inf, uint64_t neg_inf, Histogram* out);

  bool operator==(const Histogram& o) const = default;

 private:
  // Re-bins the counts into [lo, hi] (which contains [min_, max_]) and sets min_/max_.
  void widen(float lo, float hi);
  // Adds the counts of a histogram over [smin, smax] (inside this one's range).
  void add_rebinned(const std::vector<uint64_t>& src, float smin, float smax);
  int bin_of(double x) const;

  float min_ = 0, max_ = 0;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0, nan_ = 0, pos_inf_ = 0, neg_inf_ = 0;
};

enum class CalibMethod { kMinMax, kPercentile, kEntropy, kMse };

/// "minmax", "percentile", "entropy" or "mse"; anything else is a one-line lithe::Error.
CalibMethod parse_calib_method(std::string_view s);
const char* calib_method_name(CalibMethod m);

struct Range {
  float lo = 0, hi = 0;
};

/// The range to quantize a tensor to, chosen from its histogram:
///   minmax      the observed min and max;
///   percentile  lo at the (100 - p)th and hi at the pth percentile (p in (50, 100]);
///   entropy     TensorRT's KL-divergence threshold search, adapted to asymmetric uint8;
///   mse         the range minimizing the expected squared quantize-dequantize error.
/// Every range contains 0 (so zero is exact) and has a positive width (a tensor that is
/// all zeros, or empty, gets [0, kMinWidth]).
Range choose_range(const Histogram& h, CalibMethod method, double percentile = 99.99);

/// Width given to a degenerate range: 255 * 2^-100, so the scale is a normal float whose
/// reciprocal is finite.
inline constexpr float kMinRangeWidth = 255.0f * 7.888609052210118e-31f;

struct QParams {
  float scale = 1;
  int32_t zero_point = 0;
};

/// uint8 asymmetric parameters of a range (first widened to contain 0, as choose_range's are):
/// scale = (hi - lo) / 255, zero_point = round_half_even(-lo / scale) clamped to [0, 255].
QParams uint8_params(Range r);

/// Symmetric per-channel int8 weights in [-127, 127]: w is `channels` rows of `per_channel`
/// values; scales[c] = max|w_c| / 127 (1 for an all-zero channel), q = QuantizeLinear.
/// A non-finite weight is a lithe::Error naming the channel.
void quantize_weights_per_channel(const float* w, int64_t channels, int64_t per_channel, int8_t* q,
                                  float* scales);

/// The same with scales fixed by the model (explicit quantization): a scale that is not
/// positive and finite is a lithe::Error naming the channel; codes saturate to [-127, 127].
void quantize_weights_with_scales(const float* w, int64_t channels, int64_t per_channel,
                                  const float* given, int8_t* q, float* scales);

/// A bias as int32 at `scale` (x_scale * w_scale): round half to even, saturated to int32.
/// NaN, or a scale that is not positive and finite, is a lithe::Error.
int32_t quantize_bias(float b, double scale);

/// The calibration cache: every tensor's histogram (not its range, so any method can be
/// applied again) under `key` (which names the model and preprocessing). Same histograms,
/// same bytes; floats round-trip exactly. `channel_scales` (when not empty): per-channel
/// factors measured from the same data (the builder's data-driven equalization, by value
/// name), stored as "channel_scales".
std::string calib_cache_json(const std::map<std::string, Histogram>& hists, const std::string& key,
                             const std::map<std::string, std::vector<float>>& channel_scales = {});
/// Parses a cache's text into *out (and its channel scales into *channel_scales when given;
/// empty when the cache has none). False when its key differs from `key`; a malformed or
/// hostile text is a one-line lithe::Error naming `origin`.
bool parse_calib_cache(const std::string& text, const std::string& origin, const std::string& key,
                       std::map<std::string, Histogram>* out,
                       std::map<std::string, std::vector<float>>* channel_scales = nullptr);
/// Reads the cache file at `path` (parse_calib_cache with the path as origin).
bool read_calib_cache(const std::string& path, const std::string& key,
                      std::map<std::string, Histogram>* out,
                      std::map<std::string, std::vector<float>>* channel_scales = nullptr);

}  // namespace lithe::quant
