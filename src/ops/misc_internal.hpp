// Shared pieces of the misc family (misc.cpp, misc_signal.cpp). Private to these files.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/op.hpp"

namespace lithe::ops {

void add_misc_signal_ops(std::vector<OpDef>& ops);

namespace misc_detail {

/// Converts a double to T without undefined behaviour: NaN -> 0 and saturation for
/// integers, rounding through float for the 16-bit float types.
template <class T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(static_cast<compute_t<T>>(v));
  }
}

/// Calls f(put) once, where put(i, v) stores double v as element i of `out` converted to its
/// element type; this writes results straight into the output without a double-sized copy.
/// Callers keep i < out.numel().
template <class F>
void with_writer(Tensor& out, F&& f) {
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    f([p](int64_t i, double v) { p[i] = from_double<T>(v); });
  });
}

/// Checks that `t` holds exactly one element (a scalar or a 1-element 1-D tensor).
inline void expect_scalar(const NodeAttrs& ctx, const Shape& s, const char* name) {
  if (s.size() > 1 || shape_numel(s) != 1)
    ctx.fail("input '", name, "' must be a scalar, got shape ", shape_str(s));
}

/// The single integer in `t` (int32/int64 required).
inline int64_t scalar_int(const NodeAttrs& ctx, const Tensor& t, const char* name) {
  expect_scalar(ctx, t.shape(), name);
  if (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64)
    ctx.fail("input '", name, "' must be int32 or int64, got ", dtype_name(t.dtype()));
  return t.at_int(0);
}

/// The single number in `t` as double (any numeric type).
inline double scalar_double(const NodeAttrs& ctx, const Tensor& t, const char* name) {
  expect_scalar(ctx, t.shape(), name);
  return t.at_double(0);
}

/// An output element type from an `output_datatype`/`dtype` attribute value.
inline DType dtype_attr(const NodeAttrs& ctx, const char* attr, int64_t v) {
  if (v <= 0 || v > 1000) ctx.fail("attribute '", attr, "' has invalid element type ", v);
  DType t = dtype_from_onnx(static_cast<int32_t>(v), attr);
  if (!dtype_supported(t) || t == DType::kString || t == DType::kComplex64 ||
      t == DType::kComplex128)
    ctx.fail("attribute '", attr, "': element type ", dtype_name(t), " is not supported");
  return t;
}

}  // namespace misc_detail
}  // namespace lithe::ops
