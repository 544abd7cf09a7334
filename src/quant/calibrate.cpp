#include "quant/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "quant/requant.hpp"

namespace lithe::quant {

// ---------------------------------------------------------------------------- Histogram

double Histogram::edge(int i) const {
  if (i >= kBins) return max_;
  return min_ + (static_cast<double>(max_) - min_) * i / kBins;
}

int Histogram::bin_of(double x) const {
  if (!(max_ > min_)) return 0;
  const double t = std::floor((x - min_) / (static_cast<double>(max_) - min_) * kBins);
  return static_cast<int>(std::clamp(t, 0.0, static_cast<double>(kBins - 1)));
}

namespace {

// round(c * f) for f in [0, 1], as an integer no larger than c.
uint64_t share(uint64_t c, double f) {
  const double v = std::floor(static_cast<double>(c) * f + 0.5);
  if (!(v > 0)) return 0;
  return v >= static_cast<double>(c) ? c : static_cast<uint64_t>(v);
}

}  // namespace

// Each source bin is taken as uniform over its interval and its count split over the bins it
// overlaps in proportion to the overlap; rounding the cumulative share keeps the total exact.
void Histogram::add_rebinned(const std::vector<uint64_t>& src, float smin, float smax) {
  if (!(smax > smin)) {
    uint64_t sum = 0;
    for (uint64_t c : src) sum += c;
    counts_[bin_of(smin)] += sum;
    return;
  }
  const double w = (static_cast<double>(smax) - smin) / kBins;
  for (int i = 0; i < kBins; ++i) {
    const uint64_t c = src[i];
    if (c == 0) continue;
    const double a = smin + w * i;
    const double b = i + 1 == kBins ? static_cast<double>(smax) : smin + w * (i + 1);
    const int ja = bin_of(a), jb = bin_of(b);
    if (ja == jb) {
      counts_[ja] += c;
      continue;
    }
    uint64_t given = 0;
    for (int j = ja; j <= jb; ++j) {
      const uint64_t upto =
          j == jb ? c : std::max(given, share(c, (std::clamp(edge(j + 1), a, b) - a) / (b - a)));
      counts_[j] += upto - given;
      given = upto;
    }
  }
}

void Histogram::widen(float lo, float hi) {
  const std::vector<uint64_t> old = counts_;
  const float omin = min_, omax = max_;
  min_ = lo;
  max_ = hi;
  std::fill(counts_.begin(), counts_.end(), 0);
  add_rebinned(old, omin, omax);
}

void Histogram::add(const float* x, int64_t n) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (std::isnan(v)) {
      ++nan_;
    } else if (std::isinf(v)) {
      ++(v > 0 ? pos_inf_ : neg_inf_);
    } else {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!(lo <= hi)) return;  // nothing finite
  if (total_ == 0) {
    min_ = lo;
    max_ = hi;
    std::fill(counts_.begin(), counts_.end(), 0);
  } else if (lo < min_ || hi > max_) {
    widen(std::min(lo, min_), std::max(hi, max_));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(x[i])) {
      ++counts_[bin_of(x[i])];
      ++total_;
    }
  }
}

void Histogram::merge(const Histogram& other_in) {
  const Histogram other = other_in;  // a copy: `other_in` may be *this
  nan_ += other.nan_;
  pos_inf_ += other.pos_inf_;
  neg_inf_ += other.neg_inf_;
  if (other.total_ == 0) return;
  if (total_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
    counts_ = other.counts_;
    total_ = other.total_;
    return;
  }
  if (other.min_ < min_ || other.max_ > max_)
    widen(std::min(min_, other.min_), std::max(max_, other.max_));
  add_rebinned(other.counts_, other.min_, other.max_);
  total_ += other.total_;
}

bool Histogram::from_parts(float min, float max, std::vector<uint64_t> counts, uint64_t nan,
                           uint64_t pos_inf, uint64_t neg_inf, Histogram* out) {
  if (!std::isfinite(min) || !std::isfinite(max) || !(min <= max)) return false;
  if (counts.size() != static_cast<size_t>(kBins)) return false;
  uint64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > std::numeric_limits<uint64_t>::max() - total) return false;
    total += counts[i];
    if (counts[i] != 0 && i > 0 && min == max) return false;
  }
  Histogram h;
  h.min_ = total == 0 ? 0.0f : min;
  h.max_ = total == 0 ? 0.0f : max;
  h.counts_ = std::move(counts);
  h.total_ = total;
  h.nan_ = nan;
  h.pos_inf_ = pos_inf;
  h.neg_inf_ = neg_inf;
  *out = std::move(h);
  return true;
}

// ---------------------------------------------------------------------------- methods

CalibMethod parse_calib_method(std::string_view s) {
  if (s == "minmax") return CalibMethod::kMinMax;
  if (s == "percentile") return CalibMethod::kPercentile;
  if (s == "entropy") return CalibMethod::kEntropy;
  if (s == "mse") return CalibMethod::kMse;
  fail("unknown calibration method '", s, "' (expected minmax, percentile, entropy or mse)");
}

const char* calib_method_name(CalibMethod m) {
  switch (m) {
    case CalibMethod::kMinMax:
      return "minmax";
    case CalibMethod::kPercentile:
      return "percentile";
    case CalibMethod::kEntropy:
      return "entropy";
    case CalibMethod::kMse:
      return "mse";
  }
  return "?";
}

namespace {

// The range widened to contain 0, and given a positive width when it has none.
Range finalize(double lo, double hi) {
  Range r{static_cast<float>(std::min(lo, 0.0)), static_cast<float>(std::max(hi, 0.0))};
  if (!(static_cast<double>(r.hi) - r.lo >= kMinRangeWidth)) {
    if (r.hi > 0) {
      r.lo = r.hi - kMinRangeWidth;  // r.lo < 0 < r.hi keeps 0 inside
      if (r.lo > 0) r.lo = 0;
    } else {
      r.hi = r.lo + kMinRangeWidth;
    }
  }
  return r;
}

// The value below which a fraction `q` of the histogram's values lie, interpolating
// linearly inside the bin where the cumulative count crosses it.
double quantile(const Histogram& h, double q) {
  const double target = q * static_cast<double>(h.total());
  double cum = 0;
  const auto& c = h.counts();
  for (int i = 0; i < Histogram::kBins; ++i) {
    if (c[i] == 0) continue;
    const double ci = static_cast<double>(c[i]);
    if (cum + ci >= target) {
      const double f = std::clamp((target - cum) / ci, 0.0, 1.0);
      return h.edge(i) + f * (h.edge(i + 1) - h.edge(i));
    }
    cum += ci;
  }
  return h.max();
}

// The histogram of |x| as kBins fractional counts over [0, amax]: each source bin taken as
// uniform over its interval, its negative part mirrored, spread by overlap.
std::vector<double> magnitude_hist(const Histogram& h, double amax) {
  const int n = Histogram::kBins;
  std::vector<double> m(n, 0.0);
  const double w = amax / n;
  auto spread = [&](double a, double b, double c) {  // c values uniform over [a, b], a >= 0
    if (!(c > 0)) return;
    if (!(b > a)) {
      m[std::min(n - 1, static_cast<int>(a / w))] += c;
      return;
    }
    const int ja = std::min(n - 1, static_cast<int>(a / w));
    const int jb = std::min(n - 1, static_cast<int>(b / w));
    for (int j = ja; j <= jb; ++j) {
      const double lo = std::max(a, j * w), hi = j == jb ? b : std::min(b, (j + 1) * w);
      if (hi > lo) m[j] += c * (hi - lo) / (b - a);
    }
  };
  const auto& c = h.counts();
  for (int i = 0; i < n; ++i) {
    if (c[i] == 0) continue;
    const double a = h.edge(i), b = h.edge(i + 1), ci = static_cast<double>(c[i]);
    if (a >= 0) {
      spread(a, b, ci);
    } else if (b <= 0) {
      spread(-b, -a, ci);
    } else {
      const double neg = ci * (-a) / (b - a);
      spread(0, -a, neg);
      spread(0, b, ci - neg);
    }
  }
  return m;
}

// TensorRT's entropy calibration on the |x| histogram `m`: for each candidate threshold bin
// i, the reference distribution P is m[0, i) with everything beyond folded into bin i - 1,
// and Q is m[0, i) merged into `levels` quantization levels and expanded back over the
// non-empty bins of each level. Returns the i minimizing KL(P || Q) (the first on ties).
int kl_threshold_bin(const std::vector<double>& m, int levels) {
  const int n = static_cast<int>(m.size());
  // Within a level Q is constant over the level's non-empty bins, so the level's share of
  // sum p log(p / q) needs only its mass, its count of non-empty bins and its sum of m log m:
  // with prefix sums of those, a candidate costs O(levels) instead of O(bins) logarithms.
  std::vector<double> pm(n + 1, 0.0), pz(n + 1, 0.0), pml(n + 1, 0.0);
  for (int k = 0; k < n; ++k) {
    pm[k + 1] = pm[k] + m[k];
    pz[k + 1] = pz[k] + (m[k] > 0 ? 1 : 0);
    pml[k + 1] = pml[k] + (m[k] > 0 ? m[k] * std::log(m[k]) : 0.0);
  }
  const double total = pm[n];  // P holds every value
  if (!(total > 0)) return n;
  const double log_total = std::log(total);
  int best = n;
  double best_kl = std::numeric_limits<double>::infinity();
  for (int i = levels; i <= n; ++i) {
    const double q_total = pm[i];  // Q holds the ones below the threshold
    if (!(q_total > 0)) continue;
    const double folded = m[i - 1] + (total - pm[i]);  // P's last bin: outliers folded in
    double kl = 0;  // in units of mass; divided by the total at the end
    for (int l = 0; l < levels; ++l) {
      // Bin k is in level floor(k * levels / i): level l is bins [a, b).
      const int a = static_cast<int>((static_cast<int64_t>(l) * i + levels - 1) / levels);
      const int b = static_cast<int>((static_cast<int64_t>(l + 1) * i + levels - 1) / levels);
      const bool last = l == levels - 1;  // holds bin i - 1 (i >= levels)
      const double z = pz[b] - pz[a];
      if (z == 0) {
        if (last && folded > 0) kl = std::numeric_limits<double>::infinity();  // q = 0 < p
        continue;
      }
      const double log_q = std::log((pm[b] - pm[a]) / z / q_total);
      const int e = last ? i - 1 : b;  // the last bin's p differs from its m
      kl += (pml[e] - pml[a]) - (pm[e] - pm[a]) * (log_total + log_q);
      if (last && folded > 0) {
        if (m[i - 1] == 0)
          kl = std::numeric_limits<double>::infinity();
        else
          kl += folded * (std::log(folded) - log_total - log_q);
      }
    }
    kl /= total;
    if (kl < best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return best;
}

Range entropy_range(const Histogram& h) {
  const double lo = h.min(), hi = h.max();
  const bool one_sided = lo >= 0 || hi <= 0;
  const double amax = std::max(std::fabs(lo), std::fabs(hi));
  auto m = magnitude_hist(h, amax);
  // Zero is exact after quantization, so the spike of zeros a ReLU leaves in the first bin
  // costs nothing; left in, it dominates the divergence (merged with its neighbours into one
  // level) and drags the threshold to the smallest candidate. Like pytorch-quantization's
  // entropy calibrator, give the first bin its neighbour's count instead.
  m[0] = m[1];
  // Asymmetric uint8: one-signed data gets all 256 levels over [0, T]; mixed data is
  // searched over |x| with half of them, as a symmetric [-T, T] would have.
  const int i = kl_threshold_bin(m, one_sided ? 256 : 128);
  const double t = amax * i / Histogram::kBins;
  return finalize(std::max(lo, -t), std::min(hi, t));
}

// G(u) = integral from -1/2 to u of (t - round(t))^2 dt, in closed form.
double sawtooth_sq_integral(double u) {
  const double v = u + 0.5;
  const double whole = std::floor(v);
  const double r = v - whole - 0.5;  // in [-1/2, 1/2)
  return whole / 12.0 + (r * r * r + 0.125) / 3.0;
}

// The expected squared quantize-dequantize error summed over the histogram for the uint8
// parameters of `r`: each bin taken as uniform over its interval; values below/above the
// representable range are clipped, values inside rounded to the nearest multiple of scale
// (zero is a grid point).
double cube(double x) { return x * x * x; }

double quant_sq_error(const Histogram& h, Range r) {
  const QParams qp = uint8_params(r);
  const double d = qp.scale;
  const double qlo = -qp.zero_point * d, qhi = (255 - qp.zero_point) * d;
  const auto& c = h.counts();
  double total = 0;
  for (int i = 0; i < Histogram::kBins; ++i) {
    if (c[i] == 0) continue;
    const double a = h.edge(i), b = h.edge(i + 1);
    double e = 0;
    if (a < qlo) {
      const double x1 = std::min(b, qlo);
      e += (cube(qlo - a) - cube(qlo - x1)) / 3.0;
    }
    if (b > qhi) {
      const double x0 = std::max(a, qhi);
      e += (cube(b - qhi) - cube(x0 - qhi)) / 3.0;
    }
    const double ia = std::max(a, qlo), ib = std::min(b, qhi);
    if (ib > ia) e += d * d * d * (sawtooth_sq_integral(ib / d) - sawtooth_sq_integral(ia / d));
    total += static_cast<double>(c[i]) * e / (b - a);
  }
  return total;
}

// The k in [1, n] minimizing err(k): every 8th candidate, then every candidate near the best
// (the error curve is smooth at that scale). The first best on ties.
int search_min(int n, const std::function<double(int)>& err, double* best_err) {
  int best = n;
  double best_e = err(n);
  for (int k = 8; k < n; k += 8) {
    const double e = err(k);
    if (e < best_e) best_e = e, best = k;
  }
  const int from = std::max(1, best - 7), to = std::min(n, best + 7);
  for (int k = from; k <= to; ++k) {
    if (k == best) continue;
    const double e = err(k);
    if (e < best_e || (e == best_e && k < best)) best_e = e, best = k;
  }
  *best_err = best_e;
  return best;
}

Range mse_range(const Histogram& h) {
  const double lo = h.min(), hi = h.max();
  const int n = Histogram::kBins;
  double e = 0;
  if (lo >= 0) {
    const int k = search_min(
        n, [&](int c) { return quant_sq_error(h, finalize(0, hi * c / n)); }, &e);
    return finalize(0, hi * k / n);
  }
  if (hi <= 0) {
    const int k = search_min(
        n, [&](int c) { return quant_sq_error(h, finalize(lo * c / n, 0)); }, &e);
    return finalize(lo * k / n, 0);
  }
  // Mixed signs: a threshold over |x| first (intersected with [min, max]), then hi and lo
  // each searched with the other fixed, keeping a step only when it lowers the error.
  const double amax = std::max(-lo, hi);
  const int k = search_min(
      n,
      [&](int c) {
        const double t = amax * c / n;
        return quant_sq_error(h, finalize(std::max(lo, -t), std::min(hi, t)));
      },
      &e);
  Range r = finalize(std::max(lo, -amax * k / n), std::min(hi, amax * k / n));
  double e2 = 0;
  const int kh = search_min(
      n, [&](int c) { return quant_sq_error(h, finalize(r.lo, hi * c / n)); }, &e2);
  if (e2 < e) r = finalize(r.lo, hi * kh / n), e = e2;
  const int kl = search_min(
      n, [&](int c) { return quant_sq_error(h, finalize(lo * c / n, r.hi)); }, &e2);
  if (e2 < e) r = finalize(lo * kl / n, r.hi);
  return r;
}

}  // namespace

Range choose_range(const Histogram& h, CalibMethod method, double percentile) {
  if (method == CalibMethod::kPercentile && !(percentile > 50 && percentile <= 100))
    fail("calibration percentile ", percentile, " is not in (50, 100]");
  if (h.empty()) return finalize(0, 0);
  if (h.min() == h.max()) return finalize(h.min(), h.max());
  switch (method) {
    case CalibMethod::kMinMax:
      return finalize(h.min(), h.max());
    case CalibMethod::kPercentile: {
      if (percentile == 100) return finalize(h.min(), h.max());
      const double lo = quantile(h, (100 - percentile) / 100);
      const double hi = quantile(h, percentile / 100);
      return finalize(std::clamp<double>(lo, h.min(), h.max()),
                      std::clamp<double>(hi, h.min(), h.max()));
    }
    case CalibMethod::kEntropy:
      return entropy_range(h);
    case CalibMethod::kMse:
      return mse_range(h);
  }
  return finalize(h.min(), h.max());
}

// ---------------------------------------------------------------------------- parameters

QParams uint8_params(Range r) {
  const Range f = finalize(r.lo, r.hi);
  QParams p;
  p.scale = static_cast<float>((static_cast<double>(f.hi) - f.lo) / 255.0);
  const double z = std::nearbyint(-static_cast<double>(f.lo) / p.scale);
  p.zero_point = static_cast<int32_t>(std::clamp(z, 0.0, 255.0));
  return p;
}

void quantize_weights_per_channel(const float* w, int64_t channels, int64_t per_channel, int8_t* q,
                                  float* scales) {
  if (channels < 0 || per_channel < 0)
    fail("per-channel weight quantization: bad shape ", channels, " x ", per_channel);
  for (int64_t c = 0; c < channels; ++c) {
    const float* wc = w + c * per_channel;
    float m = 0;
    for (int64_t i = 0; i < per_channel; ++i) {
      if (!std::isfinite(wc[i]))
        fail("per-channel weight quantization: channel ", c, " holds a non-finite value");
      m = std::max(m, std::fabs(wc[i]));
    }
    float s = m / 127.0f;
    if (m == 0)
      s = 1;
    else if (!(s > 0))
      s = std::numeric_limits<float>::denorm_min();  // a subnormal max
    scales[c] = s;
    for (int64_t i = 0; i < per_channel; ++i)
      q[c * per_channel + i] = static_cast<int8_t>(quantize_value(wc[i], s, 0, -127, 127));
  }
}

void quantize_weights_with_scales(const float* w, int64_t channels, int64_t per_channel,
                                  const float* given, int8_t* q, float* scales) {
  for (int64_t c = 0; c < channels; ++c) {
    const float s = given[c];
    if (!(s > 0) || !std::isfinite(s))
      fail("weight quantization: channel ", c, " has scale ", s, " (expected positive and finite)");
    scales[c] = s;
    for (int64_t i = 0; i < per_channel; ++i) {
      if (!std::isfinite(w[c * per_channel + i]))
        fail("weight quantization: channel ", c, " holds a non-finite value");
      q[c * per_channel + i] = static_cast<int8_t>(quantize_value(w[c * per_channel + i], s, 0, -127, 127));
    }
  }
}

int32_t quantize_bias(float b, double scale) {
  if (!(scale > 0) || !std::isfinite(scale))
    fail("bias quantization: scale ", scale, " is not positive and finite");
  if (std::isnan(b)) fail("bias quantization: the bias holds NaN");
  const double v = std::nearbyint(static_cast<double>(b) / scale);
  if (v >= 2147483647.0) return INT32_MAX;
  if (v <= -2147483648.0) return INT32_MIN;
  return static_cast<int32_t>(v);
}

// ---------------------------------------------------------------------------- cache

namespace {

using json = nlohmann::ordered_json;
constexpr const char* kCacheFormat = "lithe-calibration-cache";
constexpr int kCacheVersion = 1;

// A float stored as a JSON number: finite and exactly a float.
float read_float(const json& t, const char* field, const std::string& where) {
  auto it = t.find(field);
  if (it == t.end() || !it->is_number()) fail(where, ": '", field, "' is missing or not a number");
  const double d = it->get<double>();
  const float f = static_cast<float>(d);
  if (!std::isfinite(d) || static_cast<double>(f) != d)
    fail(where, ": '", field, "' is ", d, ", not a finite float");
  return f;
}

uint64_t read_count(const json& v, const std::string& where, const char* what) {
  if (!v.is_number_unsigned()) fail(where, ": ", what, " is not a non-negative integer");
  return v.get<uint64_t>();
}

}  // namespace

std::string calib_cache_json(const std::map<std::string, Histogram>& hists, const std::string& key,
                             const std::map<std::string, std::vector<float>>& channel_scales) {
  json tensors = json::object();
  for (const auto& [name, h] : hists) {
    // Floats are stored as doubles (exact), which nlohmann prints with the fewest digits
    // that read back to the same double.
    tensors[name] = {{"min", static_cast<double>(h.min())},
                     {"max", static_cast<double>(h.max())},
                     {"nan", h.nan_count()},
                     {"pos_inf", h.pos_inf_count()},
                     {"neg_inf", h.neg_inf_count()},
                     {"counts", h.counts()}};
  }
  json j = {{"format", kCacheFormat},
            {"version", kCacheVersion},
            {"key", key},
            {"bins", Histogram::kBins},
            {"tensors", std::move(tensors)}};
  if (!channel_scales.empty()) {
    json scales = json::object();
    for (const auto& [name, v] : channel_scales) {
      json a = json::array();
      for (float f : v) a.push_back(static_cast<double>(f));
      scales[name] = std::move(a);
    }
    j["channel_scales"] = std::move(scales);
  }
  // Names need not be UTF-8 (they come from the model file): invalid bytes become U+FFFD
  // instead of nlohmann throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

bool parse_calib_cache(const std::string& text, const std::string& origin, const std::string& key,
                       std::map<std::string, Histogram>* out,
                       std::map<std::string, std::vector<float>>* channel_scales) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(origin, ": calibration cache is not valid JSON (", e.what(), ")");
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != kCacheFormat)
    fail(origin, ": not a lithe calibration cache (no \"format\": \"", kCacheFormat, "\")");
  if (!j.contains("version") || j["version"] != kCacheVersion)
    fail(origin, ": calibration cache version is not ", kCacheVersion);
  if (!j.contains("key") || !j["key"].is_string())
    fail(origin, ": calibration cache has no string 'key'");
  if (j["key"].get<std::string>() != key) return false;
  if (!j.contains("bins") || j["bins"] != Histogram::kBins)
    fail(origin, ": calibration cache 'bins' is not ", Histogram::kBins);
  if (!j.contains("tensors") || !j["tensors"].is_object())
    fail(origin, ": calibration cache has no 'tensors' object");
  std::map<std::string, Histogram> result;
  for (const auto& [name, t] : j["tensors"].items()) {
    const std::string where = str_cat(origin, ": calibration cache tensor '", name, "'");
    if (!t.is_object()) fail(where, ": not an object");
    const float mn = read_float(t, "min", where), mx = read_float(t, "max", where);
    if (!(mn <= mx)) fail(where, ": min ", mn, " > max ", mx);
    const uint64_t nan = read_count(t.value("nan", json()), where, "'nan'");
    const uint64_t pinf = read_count(t.value("pos_inf", json()), where, "'pos_inf'");
    const uint64_t ninf = read_count(t.value("neg_inf", json()), where, "'neg_inf'");
    auto cit = t.find("counts");
    if (cit == t.end() || !cit->is_array()) fail(where, ": 'counts' is missing or not an array");
    if (cit->size() != static_cast<size_t>(Histogram::kBins))
      fail(where, ": 'counts' has ", cit->size(), " entries, expected ", Histogram::kBins);
    std::vector<uint64_t> counts;
    counts.reserve(Histogram::kBins);
    for (const auto& v : *cit) counts.push_back(read_count(v, where, "a count"));
    Histogram h;
    if (!Histogram::from_parts(mn, mx, std::move(counts), nan, pinf, ninf, &h))
      fail(where,
           ": inconsistent histogram (counts overflow, or a single-value range with "
           "counts beyond bin 0)");
    result.emplace(name, std::move(h));
  }
  std::map<std::string, std::vector<float>> scales;
  if (j.contains("channel_scales")) {
    const json& cs = j["channel_scales"];
    if (!cs.is_object()) fail(origin, ": calibration cache 'channel_scales' is not an object");
    for (const auto& [name, a] : cs.items()) {
      const std::string where = str_cat(origin, ": calibration cache channel scales of '", name, "'");
      if (!a.is_array() || a.empty()) fail(where, ": not a non-empty array");
      std::vector<float> v;
      v.reserve(a.size());
      for (const json& e : a) {
        const json wrap = {{"scale", e}};
        const float f = read_float(wrap, "scale", where);
        if (!(f > 0)) fail(where, ": scale ", f, " is not positive");
        v.push_back(f);
      }
      scales.emplace(name, std::move(v));
    }
  }
  *out = std::move(result);
  if (channel_scales) *channel_scales = std::move(scales);
  return true;
}

bool read_calib_cache(const std::string& path, const std::string& key,
                      std::map<std::string, Histogram>* out,
                      std::map<std::string, std::vector<float>>* channel_scales) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open calibration cache");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail(path, ": cannot read calibration cache");
  return parse_calib_cache(ss.str(), path, key, out, channel_scales);
}

}  // namespace lithe::quant
