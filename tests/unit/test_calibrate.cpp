// INT8 calibration (src/quant/calibrate.hpp): histograms, the four range methods, uint8 and
// int8 parameters, the calibration cache. References are computed here from the samples
// (sorting, brute-force quantize-dequantize error, analytic quantiles), never taken from the
// code under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "lithe/error.hpp"
#include "quant/calibrate.hpp"
#include "quant/requant.hpp"

using namespace lithe;
using namespace lithe::quant;

namespace {

// Deterministic samples: uniform from the generator's bits, normal by Box-Muller.
struct Sampler {
  std::mt19937_64 rng;
  explicit Sampler(uint64_t seed) : rng(seed) {}
  double uniform() { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; }
  double normal() {
    const double u = uniform(), v = uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

std::vector<float> normal_sample(int64_t n, uint64_t seed, double sigma = 1, double mean = 0) {
  Sampler s(seed);
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(mean + sigma * s.normal());
  return x;
}

Histogram hist_of(const std::vector<float>& x) {
  Histogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  return h;
}

// The empirical quantile of a sample (nearest rank).
double sample_quantile(std::vector<float> x, double q) {
  std::sort(x.begin(), x.end());
  const size_t k = std::min(x.size() - 1, static_cast<size_t>(q * static_cast<double>(x.size())));
  return x[k];
}

// Sum over the sample of (x - dequantize(quantize(x)))^2 with the uint8 parameters of r, by
// ONNX QuantizeLinear itself.
double sample_sq_error(const std::vector<float>& x, Range r) {
  const QParams p = uint8_params(r);
  double e = 0;
  for (float v : x) {
    const int32_t q = quantize_value(v, p.scale, p.zero_point, 0, 255);
    const double d = (static_cast<double>(q) - p.zero_point) * p.scale - v;
    e += d * d;
  }
  return e;
}

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no lithe::Error (expected one mentioning '" << part << "')";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

}  // namespace

TEST(Calibrate, HistogramCountsAndExactMinMax) {
  const std::vector<float> x = {0.5f, -1.25f, 3.75f, NAN, INFINITY, -INFINITY, INFINITY, 2.0f};
  Histogram h = hist_of(x);
  EXPECT_EQ(h.min(), -1.25f);
  EXPECT_EQ(h.max(), 3.75f);
  EXPECT_EQ(h.total(), 4u);
  EXPECT_EQ(h.nan_count(), 1u);
  EXPECT_EQ(h.pos_inf_count(), 2u);
  EXPECT_EQ(h.neg_inf_count(), 1u);
  uint64_t sum = 0;
  for (uint64_t c : h.counts()) sum += c;
  EXPECT_EQ(sum, 4u);
  EXPECT_EQ(h.counts()[0], 1u);                     // -1.25 is the min
  EXPECT_EQ(h.counts()[Histogram::kBins - 1], 1u);  // 3.75 is the max
  // 0.5 lies at (0.5 + 1.25) / 5 of the range.
  EXPECT_EQ(h.counts()[static_cast<int>(1.75 / 5 * Histogram::kBins)], 1u);

  Histogram only_bad;
  const float bad[] = {NAN, INFINITY};
  only_bad.add(bad, 2);
  EXPECT_TRUE(only_bad.empty());
  EXPECT_EQ(only_bad.nan_count(), 1u);
}

TEST(Calibrate, MinMaxIsTheObservedRange) {
  auto x = normal_sample(10000, 1, 2.0, 0.5);
  const float lo = *std::min_element(x.begin(), x.end());
  const float hi = *std::max_element(x.begin(), x.end());
  const Range r = choose_range(hist_of(x), CalibMethod::kMinMax);
  EXPECT_EQ(r.lo, lo);
  EXPECT_EQ(r.hi, hi);
  // All-positive data: widened down to 0.
  const std::vector<float> pos = {2.0f, 3.0f, 5.5f};
  const Range rp = choose_range(hist_of(pos), CalibMethod::kMinMax);
  EXPECT_EQ(rp.lo, 0.0f);
  EXPECT_EQ(rp.hi, 5.5f);
}

TEST(Calibrate, PercentileOfUniformAndNormal) {
  // Uniform on [-1, 3]: the p-th percentile is -1 + 4p.
  Sampler s(7);
  std::vector<float> u(1000000);
  for (auto& v : u) v = static_cast<float>(-1 + 4 * s.uniform());
  const Histogram hu = hist_of(u);
  const double wu = (static_cast<double>(hu.max()) - hu.min()) / Histogram::kBins;
  const Range ru = choose_range(hu, CalibMethod::kPercentile, 99.0);
  EXPECT_NEAR(ru.hi, 2.96, wu);
  EXPECT_NEAR(ru.lo, -0.96, wu);
  EXPECT_NEAR(ru.hi, sample_quantile(u, 0.99), wu);
  EXPECT_NEAR(ru.lo, sample_quantile(u, 0.01), wu);

  // Standard normal: the 99.9th percentile is 3.0902 (the sampling error at 10^6 samples is
  // about 0.01, so the bin-width comparison is against the sample's own quantile).
  const auto x = normal_sample(1000000, 11);
  const Histogram hn = hist_of(x);
  const double wn = (static_cast<double>(hn.max()) - hn.min()) / Histogram::kBins;
  const Range rn = choose_range(hn, CalibMethod::kPercentile, 99.9);
  EXPECT_NEAR(rn.hi, sample_quantile(x, 0.999), wn);
  EXPECT_NEAR(rn.lo, sample_quantile(x, 0.001), wn);
  EXPECT_NEAR(rn.hi, 3.0902, 0.03);
  EXPECT_NEAR(rn.lo, -3.0902, 0.03);
  // 100 is minmax.
  const Range r100 = choose_range(hn, CalibMethod::kPercentile, 100.0);
  EXPECT_EQ(r100.lo, hn.min());
  EXPECT_EQ(r100.hi, hn.max());
  expect_error([&] { choose_range(hn, CalibMethod::kPercentile, 40.0); }, "percentile 40");
  expect_error([&] { choose_range(hn, CalibMethod::kPercentile, NAN); }, "percentile");
}

// A standard normal sample with a few huge outliers: entropy and mse clip far below them.
// (MSE weighs an outlier's clipping error against every value's rounding error, so it clips
// only with enough values: at 10^6 it keeps hi near 11 for these three.)
std::vector<float> normal_with_outliers(int64_t n = 1000000) {
  auto x = normal_sample(n, 3);
  x.push_back(25.0f);
  x.push_back(-24.0f);
  x.push_back(23.5f);
  return x;
}

TEST(Calibrate, EntropyClipsOutliers) {
  const auto x = normal_with_outliers();
  const Range r = choose_range(hist_of(x), CalibMethod::kEntropy);
  EXPECT_GT(r.hi, 3.0f);
  EXPECT_LT(r.hi, 5.5f);
  EXPECT_LT(r.lo, -3.0f);
  EXPECT_GT(r.lo, -5.5f);
  // The clipped tail is tiny, the outliers aside.
  int64_t clipped = 0;
  for (float v : x) clipped += v < r.lo || v > r.hi;
  EXPECT_LT(clipped, 1000);

  // All non-negative data (a ReLU output): [0, T] with T in the body of the distribution.
  std::vector<float> relu;
  for (float v : normal_sample(1000000, 4)) relu.push_back(std::max(v, 0.0f));
  relu.push_back(15.0f);  // the smallest candidate threshold is 256 bins: 15 / 8
  const Range rr = choose_range(hist_of(relu), CalibMethod::kEntropy);
  EXPECT_EQ(rr.lo, 0.0f);
  EXPECT_GT(rr.hi, 3.0f);
  EXPECT_LT(rr.hi, 5.5f);
}

TEST(Calibrate, MseClipsOutliersAndMinimizesTheSampleError) {
  const auto x = normal_with_outliers(4000000);
  const Histogram h = hist_of(x);
  const Range r = choose_range(h, CalibMethod::kMse);
  EXPECT_GT(r.hi, 3.0f);
  EXPECT_LT(r.hi, 5.5f);
  EXPECT_LT(r.lo, -3.0f);
  EXPECT_GT(r.lo, -5.5f);
  // Brute force on the samples themselves: the chosen range beats minmax and is no worse
  // (within 1%, the histogram's resolution) than nearby ranges.
  const double e = sample_sq_error(x, r);
  EXPECT_LT(e, sample_sq_error(x, choose_range(h, CalibMethod::kMinMax)));
  for (double f : {0.8, 0.9, 1.1, 1.25}) {
    EXPECT_LE(e, 1.01 * sample_sq_error(x, {static_cast<float>(r.lo * f), r.hi})) << f;
    EXPECT_LE(e, 1.01 * sample_sq_error(x, {r.lo, static_cast<float>(r.hi * f)})) << f;
  }

  // Skewed non-negative data: [0, T], again no worse than its neighbours.
  std::vector<float> y;
  for (float v : normal_sample(200000, 5)) y.push_back(v * v);  // chi-square, 1 dof
  const Range ry = choose_range(hist_of(y), CalibMethod::kMse);
  EXPECT_EQ(ry.lo, 0.0f);
  const double ey = sample_sq_error(y, ry);
  for (double f : {0.8, 0.9, 1.1, 1.25})
    EXPECT_LE(ey, 1.01 * sample_sq_error(y, {0.0f, static_cast<float>(ry.hi * f)})) << f;
}

TEST(Calibrate, EveryRangeContainsZeroAndHasWidth) {
  const std::vector<std::vector<float>> cases = {
      {2.0f, 3.0f, 4.0f, 7.0f}, {-7.0f, -3.0f, -2.5f}, {0.0f, 0.0f}, {3.0f, 3.0f}, {-2.0f}, {}};
  for (CalibMethod m :
       {CalibMethod::kMinMax, CalibMethod::kPercentile, CalibMethod::kEntropy, CalibMethod::kMse}) {
    for (const auto& x : cases) {
      Histogram h = hist_of(x);
      const Range r = choose_range(h, m);
      EXPECT_LE(r.lo, 0.0f) << calib_method_name(m);
      EXPECT_GE(r.hi, 0.0f) << calib_method_name(m);
      EXPECT_GT(r.hi - r.lo, 0.0f) << calib_method_name(m);
      const QParams p = uint8_params(r);
      EXPECT_TRUE(std::isfinite(1.0f / p.scale) && p.scale > 0);
      EXPECT_EQ(quantize_value(0.0f, p.scale, p.zero_point, 0, 255), p.zero_point);
    }
  }
  // Single values keep their value as the far end.
  EXPECT_EQ(choose_range(hist_of({3.0f, 3.0f}), CalibMethod::kEntropy).hi, 3.0f);
  EXPECT_EQ(choose_range(hist_of({-2.0f}), CalibMethod::kMse).lo, -2.0f);
  const Range z = choose_range(hist_of({0.0f}), CalibMethod::kMinMax);
  EXPECT_EQ(z.lo, 0.0f);
  EXPECT_EQ(z.hi, kMinRangeWidth);
}

TEST(Calibrate, Uint8ParamsRoundTrip) {
  const std::vector<Range> ranges = {{-1.0f, 3.0f},   {0.0f, 6.0f},    {-4.5f, 0.0f},
                                     {-0.37f, 12.9f}, {-1e-3f, 2e-3f}, {-250.0f, 0.25f}};
  for (const Range& r : ranges) {
    const QParams p = uint8_params(r);
    const float scale = static_cast<float>((static_cast<double>(r.hi) - r.lo) / 255);
    EXPECT_EQ(p.scale, scale);
    EXPECT_EQ(p.zero_point,
              static_cast<int32_t>(std::nearbyint(-r.lo / static_cast<double>(scale))));
    EXPECT_EQ(quantize_value(r.lo, p.scale, p.zero_point, 0, 255), 0) << r.lo;
    EXPECT_EQ(quantize_value(r.hi, p.scale, p.zero_point, 0, 255), 255) << r.hi;
    const int32_t qz = quantize_value(0.0f, p.scale, p.zero_point, 0, 255);
    EXPECT_EQ(qz, p.zero_point);
    EXPECT_EQ((qz - p.zero_point) * p.scale, 0.0f);  // zero is exact
  }
}

TEST(Calibrate, PerChannelWeights) {
  Sampler s(9);
  const int64_t channels = 4, k = 37;
  std::vector<float> w(channels * k);
  for (auto& v : w) v = static_cast<float>(s.normal());
  for (int64_t i = 0; i < k; ++i) w[2 * k + i] = 0.0f;  // an all-zero channel
  w[3 * k + 5] = -9.0f;                                 // a negative max
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(channels);
  quantize_weights_per_channel(w.data(), channels, k, q.data(), scales.data());
  for (int64_t c = 0; c < channels; ++c) {
    float m = 0;
    for (int64_t i = 0; i < k; ++i) m = std::max(m, std::fabs(w[c * k + i]));
    const float scale = m == 0 ? 1.0f : m / 127.0f;
    EXPECT_EQ(scales[c], scale) << c;
    for (int64_t i = 0; i < k; ++i) {
      const float r = std::nearbyint(w[c * k + i] / scale);
      EXPECT_EQ(q[c * k + i], static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f))) << c << " " << i;
    }
  }
  EXPECT_EQ(q[3 * k + 5], -127);
  std::vector<float> bad = {1.0f, NAN};
  expect_error([&] { quantize_weights_per_channel(bad.data(), 2, 1, q.data(), scales.data()); },
               "channel 1");
}

TEST(Calibrate, BiasRoundsHalfToEvenAndSaturates) {
  EXPECT_EQ(quantize_bias(2.5f, 1.0), 2);
  EXPECT_EQ(quantize_bias(3.5f, 1.0), 4);
  EXPECT_EQ(quantize_bias(-2.5f, 1.0), -2);
  EXPECT_EQ(quantize_bias(0.3f, 0.1), static_cast<int32_t>(std::nearbyint(0.3f / 0.1)));
  EXPECT_EQ(quantize_bias(1e30f, 1e-3), INT32_MAX);
  EXPECT_EQ(quantize_bias(-1e30f, 1e-3), INT32_MIN);
  EXPECT_EQ(quantize_bias(INFINITY, 1.0), INT32_MAX);
  expect_error([] { quantize_bias(NAN, 1.0); }, "NaN");
  expect_error([] { quantize_bias(1.0f, 0.0); }, "scale");
}

TEST(Calibrate, MethodNames) {
  for (CalibMethod m :
       {CalibMethod::kMinMax, CalibMethod::kPercentile, CalibMethod::kEntropy, CalibMethod::kMse})
    EXPECT_EQ(parse_calib_method(calib_method_name(m)), m);
  EXPECT_EQ(std::string(calib_method_name(CalibMethod::kEntropy)), "entropy");
  expect_error([] { parse_calib_method("kl"); }, "'kl'");
  expect_error([] { parse_calib_method("kl"); }, "minmax, percentile, entropy or mse");
}

// Coarse shapes of two histograms (kBins / 64 groups, each as a fraction of the total)
// differ by this much in L1.
double shape_distance(const Histogram& a, const Histogram& b) {
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
  double d = 0;
  for (int g = 0; g < Histogram::kBins / 64; ++g) {
    double sa = 0, sb = 0;
    for (int i = 64 * g; i < 64 * (g + 1); ++i) sa += a.counts()[i], sb += b.counts()[i];
    d += std::fabs(sa / a.total() - sb / b.total());
  }
  return d;
}

TEST(Calibrate, HistogramGrowthKeepsCountAndShape) {
  // Batches whose range keeps growing on both sides (and one that grows nothing).
  std::vector<float> all;
  Histogram grown;
  for (int b = 0; b < 6; ++b) {
    const auto x = normal_sample(100000, 20 + b, b == 5 ? 0.5 : 1 << b, b * 0.3);
    grown.add(x.data(), static_cast<int64_t>(x.size()));
    all.insert(all.end(), x.begin(), x.end());
  }
  const Histogram once = hist_of(all);
  EXPECT_EQ(grown.total(), once.total());
  EXPECT_EQ(grown.total(), all.size());
  EXPECT_LT(shape_distance(grown, once), 0.01);
  // Percentiles agree within a few bins.
  const double w = (static_cast<double>(once.max()) - once.min()) / Histogram::kBins;
  const Range rg = choose_range(grown, CalibMethod::kPercentile, 99.0);
  const Range ro = choose_range(once, CalibMethod::kPercentile, 99.0);
  EXPECT_NEAR(rg.hi, ro.hi, 3 * w);
  EXPECT_NEAR(rg.lo, ro.lo, 3 * w);

  // Merge: two halves collected apart, then merged.
  Histogram a, b;
  const size_t half = all.size() / 2;
  a.add(all.data(), static_cast<int64_t>(half));
  b.add(all.data() + half, static_cast<int64_t>(all.size() - half));
  const float nan = NAN;
  b.add(&nan, 1);
  a.merge(b);
  EXPECT_EQ(a.total(), once.total());
  EXPECT_EQ(a.nan_count(), 1u);
  EXPECT_LT(shape_distance(a, once), 0.01);
  // Merging into an empty histogram copies.
  Histogram e;
  e.merge(once);
  EXPECT_EQ(e, once);
}

namespace {

std::map<std::string, Histogram> sample_hists() {
  std::map<std::string, Histogram> m;
  m["conv1_out"] = hist_of(normal_sample(5000, 31, 0.1f, 0.01));
  m["relu/odd \"name\"\n"] = hist_of({0.0f, 0.1f, 1e-7f, 3.4e38f, -1.17549435e-38f});
  m["const"] = hist_of({4.0f, 4.0f, 4.0f});
  m["empty"] = Histogram();
  m["inf_nan"] = hist_of({NAN, INFINITY, -INFINITY, 0.3f, -0.7f});
  return m;
}

}  // namespace

TEST(Calibrate, CacheRoundTripIsExactAndDeterministic) {
  const auto m = sample_hists();
  const std::string text = calib_cache_json(m, "model-sha:abc|mean=0.5");
  std::map<std::string, Histogram> back;
  ASSERT_TRUE(parse_calib_cache(text, "cache.json", "model-sha:abc|mean=0.5", &back));
  ASSERT_EQ(back.size(), m.size());
  for (const auto& [name, h] : m) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back.at(name), h) << name;
    EXPECT_EQ(back.at(name).min(), h.min());  // bit-exact floats
  }
  EXPECT_EQ(calib_cache_json(back, "model-sha:abc|mean=0.5"), text);
  // Another key (other model or preprocessing): not used.
  std::map<std::string, Histogram> other;
  EXPECT_FALSE(parse_calib_cache(text, "cache.json", "model-sha:def", &other));
  EXPECT_TRUE(other.empty());

  // Through a file.
  const std::string path = ::testing::TempDir() + "lithe_calib_cache_test.json";
  {
    std::ofstream f(path, std::ios::binary);
    f << text;
  }
  std::map<std::string, Histogram> from_file;
  ASSERT_TRUE(read_calib_cache(path, "model-sha:abc|mean=0.5", &from_file));
  EXPECT_EQ(from_file, m);
  std::remove(path.c_str());
  expect_error([&] { read_calib_cache(path, "k", &from_file); }, path);
}

TEST(Calibrate, HostileCachesAreRefused) {
  using json = nlohmann::ordered_json;
  const std::string key = "k";
  const json good = json::parse(calib_cache_json(sample_hists(), key));
  auto with = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "not valid JSON"},
      {"[]", "not a lithe calibration cache"},
      {with([](json& j) { j["format"] = "other"; }), "not a lithe calibration cache"},
      {with([](json& j) { j["version"] = 2; }), "version"},
      {with([](json& j) { j.erase("key"); }), "key"},
      {with([](json& j) { j["bins"] = 1024; }), "bins"},
      {with([](json& j) { j["tensors"] = json::array(); }), "tensors"},
      {with([](json& j) { j["tensors"]["conv1_out"]["counts"].erase(0); }), "2047 entries"},
      {with([](json& j) { j["tensors"]["conv1_out"]["counts"].push_back(0); }), "2049 entries"},
      {with([](json& j) { j["tensors"]["conv1_out"]["counts"][5] = -3; }), "non-negative"},
      {with([](json& j) { j["tensors"]["conv1_out"]["counts"][5] = 1.5; }), "non-negative"},
      {with([](json& j) { j["tensors"]["conv1_out"]["counts"][5] = "7"; }), "non-negative"},
      {with([](json& j) { j["tensors"]["conv1_out"]["counts"] = 3; }), "'counts'"},
      {with([](json& j) { j["tensors"]["conv1_out"]["min"] = 5.0; }), "min 5 > max"},
      {with([](json& j) { j["tensors"]["conv1_out"]["min"] = nullptr; }), "'min'"},
      {with([](json& j) { j["tensors"]["conv1_out"]["max"] = 1e39; }), "not a finite float"},
      {with([](json& j) { j["tensors"]["conv1_out"]["max"] = 0.1; }), "not a finite float"},
      {with([](json& j) { j["tensors"]["conv1_out"]["nan"] = -1; }), "'nan'"},
      {with([](json& j) { j["tensors"]["conv1_out"].erase("pos_inf"); }), "'pos_inf'"},
      {with([](json& j) { j["tensors"]["const"]["counts"][7] = 1; }), "inconsistent"},
      {with([](json& j) {
         j["tensors"]["conv1_out"]["counts"][0] = std::numeric_limits<uint64_t>::max();
         j["tensors"]["conv1_out"]["counts"][1] = 2;
       }),
       "inconsistent"},
      {with([](json& j) { j["tensors"]["conv1_out"] = 1; }), "not an object"},
      {"{\"format\": \"lithe-calibration-cache\", \"version\": 1, \"key\": \"k\", \"bins\": "
       "2048, \"tensors\": {\"t\": {\"min\": NaN}}}",
       "not valid JSON"},
      {std::string(100000, '['), "not valid JSON"},
  };
  for (const auto& c : cases) {
    const std::string& text = c.first;  // (clang 14 lambdas cannot capture structured bindings)
    const auto& part = c.second;
    std::map<std::string, Histogram> out;
    SCOPED_TRACE(text.substr(0, 120));
    expect_error([&] { parse_calib_cache(text, "hostile.json", key, &out); }, part);
    expect_error([&] { parse_calib_cache(text, "hostile.json", key, &out); }, "hostile.json");
    EXPECT_TRUE(out.empty());
  }
}
