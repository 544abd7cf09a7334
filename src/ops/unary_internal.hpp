// Private helpers shared by the elementwise families (unary.cpp, binary.cpp, softmax.cpp):
// element-type sets, a visitor restricted to a set, and UB-free conversions.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/dtype.hpp"
#include "ops/op.hpp"

namespace lithe::ops::elementwise {

/// The element-type sets the ONNX type constraints use.
enum class Types {
  kFloat,          ///< float16, bfloat16, float, double
  kSignedOrFloat,  ///< floats and int8..int64
  kNumeric,        ///< floats and every integer type
  kInt,            ///< every integer type
  kUnsigned,       ///< uint8..uint64
  kBool,           ///< bool only
  kAny,            ///< numeric and bool
};

template <class T>
inline constexpr bool kIsFloat =
    std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <class T>
inline constexpr bool kIsInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;

template <Types kT, class T>
constexpr bool type_in() {
  switch (kT) {
    case Types::kFloat:
      return kIsFloat<T>;
    case Types::kSignedOrFloat:
      return kIsFloat<T> || (kIsInt<T> && std::is_signed_v<T>);
    case Types::kNumeric:
      return kIsFloat<T> || kIsInt<T>;
    case Types::kInt:
      return kIsInt<T>;
    case Types::kUnsigned:
      return kIsInt<T> && std::is_unsigned_v<T>;
    case Types::kBool:
      return std::is_same_v<T, bool>;
    case Types::kAny:
      return true;
  }
  return false;
}

inline const char* types_name(Types t) {
  switch (t) {
    case Types::kFloat:
      return "a float type";
    case Types::kSignedOrFloat:
      return "a float or signed integer type";
    case Types::kNumeric:
      return "a numeric type";
    case Types::kInt:
      return "an integer type";
    case Types::kUnsigned:
      return "an unsigned integer type";
    case Types::kBool:
      return "bool";
    case Types::kAny:
      return "a numeric or bool type";
  }
  return "?";
}

/// True when `d` belongs to the set (without instantiating anything per type).
template <Types kT>
bool dtype_in(DType d) {
  if (!dtype_supported(d) || d == DType::kComplex64 || d == DType::kComplex128) return false;
  return visit_dtype(d, [](auto tag) { return type_in<kT, typename decltype(tag)::type>(); });
}

/// Fails unless `d` is in the set; `what` names the input.
template <Types kT>
void check_dtype(const NodeAttrs& ctx, DType d, const char* what) {
  if (!dtype_in<kT>(d))
    ctx.fail(what, " has element type ", dtype_name(d), ", expected ", types_name(kT));
}

/// visit_dtype that only instantiates `f` for the types in the set and fails for others.
template <Types kT, class F>
void visit_types(DType d, F&& f) {
  visit_dtype(d, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (type_in<kT, T>()) {
      f(tag);
    } else {
      fail("element type ", dtype_name(d), " is not supported here, expected ", types_name(kT));
    }
  });
}

/// Converts an arithmetic result to element type T without UB: float -> integer maps NaN to
/// 0 and saturates out-of-range values (ONNX leaves these undefined).
template <class T, class V>
T to_elem(V v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != V(0);
  } else if constexpr (kIsInt<T> && std::is_floating_point_v<V>) {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<V>(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (v >= static_cast<V>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

}  // namespace lithe::ops::elementwise
