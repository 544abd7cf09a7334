#include "metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "lithe/error.hpp"

namespace lithe::cli {

Agreement agreement(const Tensor& ref, const Tensor& got) {
  if (ref.numel() != got.numel())
    fail("cannot compare tensors of ", ref.numel(), " and ", got.numel(), " elements");
  double dot = 0, rr = 0, gg = 0, err = 0, max_abs = 0;
  bool nan = false;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double r = ref.at_double(i), g = got.at_double(i);
    if (std::isnan(r) || std::isnan(g)) {
      nan = true;
      continue;
    }
    const double d = r - g;
    dot += r * g;
    rr += r * r;
    gg += g * g;
    err += d * d;
    max_abs = std::max(max_abs, std::abs(d));
  }
  Agreement a;
  a.count = ref.numel();
  if (nan) {
    const double q = std::numeric_limits<double>::quiet_NaN();
    a.cosine = a.max_abs = a.snr_db = q;
    return a;
  }
  const double inf = std::numeric_limits<double>::infinity();
  if (rr == 0 && gg == 0)
    a.cosine = 1;
  else if (rr == 0 || gg == 0)
    a.cosine = 0;
  else
    a.cosine = std::clamp(dot / (std::sqrt(rr) * std::sqrt(gg)), -1.0, 1.0);
  a.max_abs = max_abs;
  if (err == 0)
    a.snr_db = inf;
  else if (rr == 0)
    a.snr_db = -inf;
  else
    a.snr_db = 10 * std::log10(rr / err);
  return a;
}

void AgreementStats::add(const Agreement& a) {
  if (std::isnan(a.cosine) || std::isnan(a.max_abs) || std::isnan(a.snr_db)) {
    any_nan = true;
    return;
  }
  if (n == 0) {
    worst_cosine = a.cosine;
    worst_max_abs = a.max_abs;
    worst_snr_db = a.snr_db;
  }
  ++n;
  sum_cosine += a.cosine;
  sum_max_abs += a.max_abs;
  worst_cosine = std::min(worst_cosine, a.cosine);
  worst_max_abs = std::max(worst_max_abs, a.max_abs);
  worst_snr_db = std::min(worst_snr_db, a.snr_db);
  if (std::isfinite(a.snr_db)) {
    sum_snr_db += a.snr_db;
    ++finite_snr;
  } else if (a.snr_db < 0) {
    sum_snr_db = -std::numeric_limits<double>::infinity();
    ++finite_snr;
  }
}

double AgreementStats::mean_snr_db() const {
  if (finite_snr == 0) return std::numeric_limits<double>::infinity();
  return sum_snr_db / static_cast<double>(finite_snr);
}

std::vector<int64_t> top_k(const Tensor& scores, int k) {
  const int64_t n = scores.numel();
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t kk = std::min<int64_t>(std::max(k, 0), n);
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), [&](int64_t a, int64_t b) {
    const double x = scores.at_double(a), y = scores.at_double(b);
    return x > y || (x == y && a < b);
  });
  idx.resize(static_cast<size_t>(kk));
  return idx;
}

std::string format_db(double db) {
  if (std::isnan(db)) return "nan";
  if (std::isinf(db)) return db > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", db);
  return buf;
}

}  // namespace lithe::cli
