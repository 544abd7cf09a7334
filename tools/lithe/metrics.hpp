// Agreement between two tensors (`lithe eval --reference`, `lithe compare`) and top-k.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lithe/tensor.hpp"

namespace lithe::cli {

/// How far `got` is from `ref` (same element count; compared as doubles):
///   cosine   dot(ref, got) / (|ref| |got|); 1 when both are all zero, 0 when only one is;
///   max_abs  max |ref - got|;
///   snr_db   10 log10(sum ref^2 / sum (ref - got)^2): +inf when equal, -inf when ref is all
///            zero and got is not.
/// A NaN in either makes all three NaN.
struct Agreement {
  double cosine = 1, max_abs = 0, snr_db = 0;
  int64_t count = 0;
};
Agreement agreement(const Tensor& ref, const Tensor& got);

/// Running mean and worst (lowest cosine and SNR, highest max abs error) over many pairs.
struct AgreementStats {
  int64_t n = 0;
  double sum_cosine = 0, sum_max_abs = 0, sum_snr_db = 0;
  double worst_cosine = 1, worst_max_abs = 0, worst_snr_db = 0;
  int64_t finite_snr = 0;  ///< pairs whose SNR is finite (the SNR mean is over these)
  bool any_nan = false;
  void add(const Agreement& a);
  double mean_cosine() const { return n ? sum_cosine / static_cast<double>(n) : 1; }
  double mean_max_abs() const { return n ? sum_max_abs / static_cast<double>(n) : 0; }
  /// Mean SNR over the finite ones; +inf when every pair was equal.
  double mean_snr_db() const;
};

/// Indices of the k largest elements (ties: lower index first), largest first.
std::vector<int64_t> top_k(const Tensor& scores, int k);

/// "12.3", "inf", "-inf", "nan" (for tables).
std::string format_db(double db);

}  // namespace lithe::cli
