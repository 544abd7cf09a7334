// Spatial geometry shared by the conv and pool families: reading the window attributes
// (kernel_shape, strides, dilations, pads, auto_pad, ceil_mode), validating them, computing
// output sizes and visiting the kernel taps of one output position.
//
// Layout convention: tensors are (N, C, D1, ..., Dk); "spatial" means D1..Dk.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "ops/op.hpp"

namespace lithe::ops::conv_pool {

/// Multiplication / addition that fail instead of overflowing int64 (hostile attributes
/// such as a 2^40 dilation must give an error, not a wrapped size).
inline int64_t mul_ck(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail(what, " overflows int64");
  return r;
}
inline int64_t add_ck(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) fail(what, " overflows int64");
  return r;
}

/// Floor / ceil division for a positive divisor and any sign of numerator.
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

inline AutoPad read_auto_pad(const NodeAttrs& a) {
  std::string s = a.attr_string("auto_pad", "NOTSET");
  if (s == "NOTSET" || s.empty()) return AutoPad::kNotSet;
  if (s == "SAME_UPPER") return AutoPad::kSameUpper;
  if (s == "SAME_LOWER") return AutoPad::kSameLower;
  if (s == "VALID") return AutoPad::kValid;
  a.fail("auto_pad '", s, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
}

/// Reads an ints attribute of exactly `n` values in [lo, kMaxTensorElements], or `def`
/// repeated n times when absent.
inline std::vector<int64_t> read_spatial_ints(const NodeAttrs& a, const std::string& name, size_t n,
                                              int64_t def, int64_t lo) {
  if (!a.has_attr(name)) return std::vector<int64_t>(n, def);
  std::vector<int64_t> v = a.attr_ints(name);
  if (v.size() != n)
    a.fail(name, " has ", v.size(), " values, expected ", n, " (one per spatial dim)");
  for (int64_t x : v)
    if (x < lo || x > kMaxTensorElements)
      a.fail(name, " value ", x, " is out of range, expected ", lo, "..", kMaxTensorElements);
  return v;
}

/// Window geometry of one conv/pool node over the spatial dims.
struct Geometry {
  std::vector<int64_t> in;      ///< input spatial sizes
  std::vector<int64_t> kernel;  ///< kernel taps per dim
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pad_begin;  ///< may be negative only for ConvTranspose
  std::vector<int64_t> pad_end;
  std::vector<int64_t> out;  ///< output spatial sizes

  size_t rank() const { return in.size(); }
  /// Extent of the dilated kernel in dim d: (k - 1) * dilation + 1.
  int64_t extent(size_t d) const { return (kernel[d] - 1) * dilations[d] + 1; }
};

/// Options of the forward (Conv, pools) geometry. Attributes an older op version lacks
/// (dilations before MaxPool-10/AveragePool-19, ceil_mode before 10) are read when present
/// and default to the old behaviour when absent, so one reader serves every version.
struct WindowOptions {
  bool ceil_mode = false;  ///< pools with ceil_mode=1
  /// Pools: each pad must be smaller than the kernel extent, else a window can lie wholly in
  /// the padding with nothing to pool (ONNX Runtime refuses such pads too).
  bool pads_below_extent = false;
};

/// Reads strides/dilations/pads/auto_pad for an op whose window of `kernel` slides over
/// `in` (Conv, ConvInteger, MaxPool, AveragePool, LpPool) and computes the output sizes.
/// Fails on bad attributes and on windows that do not fit (an output dim < 1).
inline Geometry forward_geometry(const NodeAttrs& a, const std::vector<int64_t>& in,
                                 const std::vector<int64_t>& kernel, WindowOptions opt = {}) {
  const size_t r = in.size();
  Geometry g;
  g.in = in;
  g.kernel = kernel;
  if (kernel.size() != r)
    a.fail("kernel has ", kernel.size(), " spatial dims but the input has ", r);
  for (int64_t k : kernel)
    if (k < 1 || k > kMaxTensorElements)
      a.fail("kernel_shape value ", k, " is out of range, expected 1..", kMaxTensorElements);
  g.strides = read_spatial_ints(a, "strides", r, 1, 1);
  g.dilations = read_spatial_ints(a, "dilations", r, 1, 1);
  AutoPad ap = read_auto_pad(a);
  g.pad_begin.assign(r, 0);
  g.pad_end.assign(r, 0);
  g.out.assign(r, 0);
  if (ap == AutoPad::kNotSet && a.has_attr("pads")) {
    std::vector<int64_t> p = a.attr_ints("pads");
    if (p.size() != 2 * r)
      a.fail("pads has ", p.size(), " values, expected ", 2 * r,
             " (begin and end per spatial dim)");
    for (int64_t x : p)
      if (x < 0 || x > kMaxTensorElements)
        a.fail("pads value ", x, " is out of range, expected 0..", kMaxTensorElements);
    for (size_t d = 0; d < r; ++d) {
      g.pad_begin[d] = p[d];
      g.pad_end[d] = p[d + r];
    }
  }
  for (size_t d = 0; d < r; ++d) {
    const int64_t ext =
        add_ck(mul_ck(kernel[d] - 1, g.dilations[d], "kernel extent"), 1, "kernel extent");
    if (opt.pads_below_extent && std::max(g.pad_begin[d], g.pad_end[d]) >= ext)
      a.fail("pads value ", std::max(g.pad_begin[d], g.pad_end[d]), " in spatial dim ", d,
             " is not smaller than the kernel extent ", ext,
             " (a window would lie wholly in the padding)");
    const int64_t s = g.strides[d];
    int64_t out = 0;
    switch (ap) {
      case AutoPad::kNotSet: {
        int64_t span = g.in[d] + g.pad_begin[d] + g.pad_end[d] - ext;
        // ceil_mode lets a window overhang the padded input (span > -stride still gives
        // one output, as in PyTorch and the ONNX reference); floor mode needs it to fit.
        if (span < 0 && !opt.ceil_mode)
          a.fail("kernel extent ", ext, " is larger than the padded input size ",
                 g.in[d] + g.pad_begin[d] + g.pad_end[d], " in spatial dim ", d);
        out = (opt.ceil_mode ? ceil_div(span, s) : floor_div(span, s)) + 1;
        // A window may not start inside the end padding only (PyTorch/ORT/ONNX rule): with
        // ceil_mode the last window is dropped when it starts past the input.
        if (opt.ceil_mode && (out - 1) * s >= g.in[d] + g.pad_begin[d]) --out;
        break;
      }
      case AutoPad::kValid: {
        int64_t span = g.in[d] - ext;
        if (span < 0)
          a.fail("kernel extent ", ext, " is larger than the input size ", g.in[d],
                 " in spatial dim ", d, " (auto_pad VALID)");
        // The spec's VALID size, ceil((in - extent + 1) / stride), whatever ceil_mode says.
        out = floor_div(span, s) + 1;
        break;
      }
      case AutoPad::kSameUpper:
      case AutoPad::kSameLower: {
        out = ceil_div(g.in[d], s);
        int64_t total = (out - 1) * s + ext - g.in[d];
        if (total < 0) total = 0;
        int64_t small = total / 2;
        g.pad_begin[d] = ap == AutoPad::kSameUpper ? small : total - small;
        g.pad_end[d] = total - g.pad_begin[d];
        break;
      }
    }
    if (out < 1)
      a.fail("output size ", out, " < 1 in spatial dim ", d, " (input ", g.in[d],
             ", kernel extent ", ext, ", stride ", s, ")");
    g.out[d] = out;
  }
  return g;
}

/// Spatial dims of an (N, C, D1..Dk) shape; fails unless rank >= min_rank.
inline std::vector<int64_t> spatial_of(const NodeAttrs& a, const Shape& s, size_t min_rank,
                                       const char* what) {
  if (s.size() < min_rank || s.size() > static_cast<size_t>(kMaxRank))
    a.fail(what, " has rank ", s.size(), ", expected (N, C, D1, ...) of rank ", min_rank, "..",
           kMaxRank);
  return std::vector<int64_t>(s.begin() + 2, s.end());
}

/// Calls f(coord) for every coordinate of `dims` in row-major order (coord has dims.size()
/// entries). Does nothing when some dim is 0.
template <class F>
void for_each_coord(const std::vector<int64_t>& dims, F&& f) {
  for (int64_t d : dims)
    if (d <= 0) return;
  std::vector<int64_t> c(dims.size(), 0);
  while (true) {
    f(static_cast<const std::vector<int64_t>&>(c));
    size_t d = dims.size();
    while (d > 0) {
      --d;
      if (++c[d] < dims[d]) break;
      c[d] = 0;
      if (d == 0) return;
    }
    if (dims.empty()) return;
  }
}

/// Taps k in [0, kernel) whose position base + k * dilation lies in [lo, hi): returns the
/// half-open range [first, last) (first >= last when none).
inline void tap_range(int64_t base, int64_t kernel, int64_t dilation, int64_t lo, int64_t hi,
                      int64_t& first, int64_t& last) {
  first = base >= lo ? 0 : ceil_div(lo - base, dilation);
  last = base >= hi ? 0 : floor_div(hi - 1 - base, dilation) + 1;
  if (first < 0) first = 0;
  if (last > kernel) last = kernel;
}

/// Visits the kernel taps of output position `oc` (spatial coords) that fall inside the
/// input, in row-major kernel order: f(in_offset, kernel_offset, in_coord) where in_offset
/// and kernel_offset are row-major spatial offsets and in_coord the input spatial coords.
/// Only in-range taps are visited, so the cost is bounded by the input, not the kernel.
template <class F>
void for_each_tap(const Geometry& g, const std::vector<int64_t>& oc, F&& f) {
  const size_t r = g.rank();
  std::vector<int64_t> base(r), first(r), last(r);
  for (size_t d = 0; d < r; ++d) {
    base[d] = oc[d] * g.strides[d] - g.pad_begin[d];
    tap_range(base[d], g.kernel[d], g.dilations[d], 0, g.in[d], first[d], last[d]);
    if (first[d] >= last[d]) return;
  }
  std::vector<int64_t> k(first), ic(r);
  while (true) {
    int64_t in_off = 0, k_off = 0;
    for (size_t d = 0; d < r; ++d) {
      ic[d] = base[d] + k[d] * g.dilations[d];
      in_off = in_off * g.in[d] + ic[d];
      k_off = k_off * g.kernel[d] + k[d];
    }
    f(in_off, k_off, static_cast<const std::vector<int64_t>&>(ic));
    size_t d = r;
    while (d > 0) {
      --d;
      if (++k[d] < last[d]) break;
      k[d] = first[d];
      if (d == 0) return;
    }
    if (r == 0) return;
  }
}

/// Number of taps of output position `oc` inside the padded input (begin pad .. end pad);
/// AveragePool's divisor with count_include_pad=1. A double: hostile pads can make the
/// product exceed int64 while every window stays cheap to visit.
inline double padded_tap_count(const Geometry& g, const std::vector<int64_t>& oc) {
  double n = 1;
  for (size_t d = 0; d < g.rank(); ++d) {
    int64_t base = oc[d] * g.strides[d] - g.pad_begin[d], first = 0, last = 0;
    tap_range(base, g.kernel[d], g.dilations[d], -g.pad_begin[d], g.in[d] + g.pad_end[d], first,
              last);
    n *= static_cast<double>(last > first ? last - first : 0);
  }
  return n;
}

/// Row-major offset of spatial coords `oc` in sizes `dims`.
inline int64_t spatial_offset(const std::vector<int64_t>& dims, const std::vector<int64_t>& oc) {
  int64_t off = 0;
  for (size_t d = 0; d < dims.size(); ++d) off = off * dims[d] + oc[d];
  return off;
}

inline int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

}  // namespace lithe::ops::conv_pool
