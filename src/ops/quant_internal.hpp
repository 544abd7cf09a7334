// Shared pieces of the quant family (quant.cpp, quant_qlinear.cpp): parameter validation,
// saturating rounding, integer loading. Private to these files.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/op.hpp"

namespace lithe::ops {

void add_qlinear_ops(std::vector<OpDef>& ops);

namespace quant_detail {

/// The integer types a quantized tensor can have (float8 and 4-bit types do not exist in
/// lithe).
inline bool is_quant_int(DType t) {
  return t == DType::kUInt8 || t == DType::kInt8 || t == DType::kUInt16 || t == DType::kInt16;
}

/// Calls f(TypeTag<T>{}) for the quantized integer types (plus int32 when allowed).
template <class F>
decltype(auto) visit_qint(DType t, bool allow_int32, F&& f) {
  switch (t) {
    case DType::kUInt8:
      return f(TypeTag<uint8_t>{});
    case DType::kInt8:
      return f(TypeTag<int8_t>{});
    case DType::kUInt16:
      return f(TypeTag<uint16_t>{});
    case DType::kInt16:
      return f(TypeTag<int16_t>{});
    case DType::kInt32:
      if (allow_int32) return f(TypeTag<int32_t>{});
      [[fallthrough]];
    default:
      fail("unsupported quantized element type ", dtype_name(t),
           " (expected uint8, int8, uint16 or int16)");
  }
}

/// Rounds half to even (the default FE_TONEAREST mode of nearbyint), adds the zero point and
/// saturates to Q. NaN maps to the zero point; never undefined behaviour. Callers compute v in
/// the data's precision (float for float32), so ties are decided as the ONNX reference does.
template <class Q>
Q round_saturate(double v, int64_t zero_point) {
  double r = std::isnan(v) ? 0.0 : std::nearbyint(v);
  r += static_cast<double>(zero_point);
  constexpr double lo = static_cast<double>(std::numeric_limits<Q>::lowest());
  constexpr double hi = static_cast<double>(std::numeric_limits<Q>::max());
  if (!(r >= lo)) return std::numeric_limits<Q>::lowest();
  if (r > hi) return std::numeric_limits<Q>::max();
  return static_cast<Q>(r);
}

/// Checks that a scale tensor has a float (or, where allowed, int32) type.
inline void check_scale_dtype(const NodeAttrs& ctx, DType t, const char* name,
                              bool allow_int32 = false) {
  if (!is_float(t) && !(allow_int32 && t == DType::kInt32))
    ctx.fail("input '", name, "' must be a float tensor, got ", dtype_name(t));
}

/// Fails unless every scale is finite and strictly positive (a zero, negative, NaN or
/// infinite scale makes the quantization meaningless or divides by zero).
inline std::vector<double> checked_scales(const NodeAttrs& ctx, const Tensor& s, const char* name) {
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (int64_t i = 0; i < s.numel(); ++i) {
    double d = s.at_double(i);
    if (!std::isfinite(d) || d <= 0)
      ctx.fail("input '", name, "' must hold finite scales > 0, got ", d, " at index ", i);
    v[static_cast<size_t>(i)] = d;
  }
  return v;
}

/// Zero points as int64 (the tensor's integer type bounds their range).
inline std::vector<int64_t> zero_points(const Tensor& z) { return z.to_int64_vector(); }

/// Fails unless `shape` holds exactly one element in a scalar or 1-D tensor.
inline void expect_per_tensor(const NodeAttrs& ctx, const Shape& shape, const char* name) {
  if (shape.size() > 1 || shape_numel(shape) != 1)
    ctx.fail("input '", name, "' must be a scalar or a 1-element 1-D tensor, got shape ",
             shape_str(shape));
}

/// Reads element i of a uint8 or int8 tensor as int32, without copying the tensor. The
/// caller has checked the element type.
class Q8Reader {
 public:
  explicit Q8Reader(const Tensor& t) : p_(t.raw()), signed_(t.dtype() == DType::kInt8) {}
  int32_t operator()(int64_t i) const {
    return signed_ ? static_cast<const int8_t*>(p_)[i] : static_cast<const uint8_t*>(p_)[i];
  }

 private:
  const void* p_;
  bool signed_;
};

}  // namespace quant_detail
}  // namespace lithe::ops
