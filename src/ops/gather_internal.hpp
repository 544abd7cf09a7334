// Private to the gather family: the parts split off gather.cpp and helpers they share.
#pragma once
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/op.hpp"

namespace lithe::ops {

/// TopK, ArgMax, ArgMin, Unique (gather_select.cpp).
void add_gather_select_ops(std::vector<OpDef>& ops);

namespace gather_detail {

/// Product of shape[begin, end).
inline int64_t dims_product(const Shape& s, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end && i < s.size(); ++i) n *= s[i];
  return n;
}

/// A strict weak order on values where NaN sorts above every number and equals other NaNs,
/// so sorting data that holds NaN is well defined.
template <class C>
bool less_nan_last(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

template <class C>
bool equal_nan(C a, C b) {
  return !less_nan_last(a, b) && !less_nan_last(b, a);
}

}  // namespace gather_detail
}  // namespace lithe::ops
