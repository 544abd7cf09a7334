// Helpers shared by the reference kernels: axes, strides, broadcasting, type dispatch.
#pragma once
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>
#include <cstdint>
#include <tuple>
#include <vector>

#include "core/tensor.hpp"
#include "ops/op.hpp"

namespace lithe::ops {

/// Converts a double result to T without UB: integers truncate toward zero (numpy astype),
/// NaN becomes 0 and out-of-range values saturate; bool is v != 0.
template <class T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::min()))
      return std::numeric_limits<T>::min();
    if (v >= static_cast<double>(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(static_cast<compute_t<T>>(v));
  }
}

/// Maps a possibly negative axis into [0, rank); fails if out of range.
inline int64_t normalize_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    fail("axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

/// Row-major strides in elements.
inline std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i)
    st[static_cast<size_t>(i)] = st[static_cast<size_t>(i) + 1] * s[static_cast<size_t>(i) + 1];
  return st;
}

/// Numpy-style multidirectional broadcast of two shapes; fails if incompatible.
inline Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      fail("shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// Strides (in elements) to read `in` as if broadcast to `out`: 0 along broadcast dims.
inline std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> s = strides_of(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[i + off] = in[i] == 1 ? 0 : s[i];
  return st;
}

/// Calls f(out_index, offset_0, ..., offset_{k-1}) for every element of `out`, where offset_j
/// indexes input j read through `strides[j]` (from broadcast_strides). Row-major order.
template <size_t K, class F>
void for_each_broadcast(const Shape& out, const std::array<std::vector<int64_t>, K>& strides,
                        F&& f) {
  const int64_t n = shape_numel(out);
  const size_t r = out.size();
  std::vector<int64_t> idx(r, 0);
  std::array<int64_t, K> off{};
  for (int64_t i = 0; i < n; ++i) {
    std::apply([&](auto... o) { f(i, o...); }, off);
    for (size_t d = r; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
      if (idx[d] < out[d]) break;
      for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * out[d];
      idx[d] = 0;
    }
  }
}

}  // namespace lithe::ops
