// Element types. The numeric values match ONNX TensorProto.DataType so the importer and
// the engine file need no mapping table.
#pragma once
#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "lithe/error.hpp"
#include "lithe/half.hpp"

namespace lithe {

enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
};

/// Bytes per element; 0 for types lithe cannot hold (string, undefined).
size_t dtype_size(DType t);
/// Short name: "float32", "int64", ...
const char* dtype_name(DType t);
/// True for the types a Tensor can store.
bool dtype_supported(DType t);
/// Converts an ONNX enum value, failing with `what` in the message when unknown.
DType dtype_from_onnx(int32_t v, const std::string& what);

inline bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 ||
         t == DType::kBFloat16;
}
inline bool is_signed_int(DType t) {
  return t == DType::kInt8 || t == DType::kInt16 || t == DType::kInt32 || t == DType::kInt64;
}
inline bool is_unsigned_int(DType t) {
  return t == DType::kUInt8 || t == DType::kUInt16 || t == DType::kUInt32 || t == DType::kUInt64;
}
inline bool is_int(DType t) { return is_signed_int(t) || is_unsigned_int(t); }

template <class T>
struct TypeTag {
  using type = T;
};

template <class T>
constexpr DType dtype_of();
#define LITHE_DTYPE_OF(T, D) \
  template <>                \
  constexpr DType dtype_of<T>() { return D; }
LITHE_DTYPE_OF(float, DType::kFloat32)
LITHE_DTYPE_OF(double, DType::kFloat64)
LITHE_DTYPE_OF(Half, DType::kFloat16)
LITHE_DTYPE_OF(BFloat16, DType::kBFloat16)
LITHE_DTYPE_OF(int8_t, DType::kInt8)
LITHE_DTYPE_OF(uint8_t, DType::kUInt8)
LITHE_DTYPE_OF(int16_t, DType::kInt16)
LITHE_DTYPE_OF(uint16_t, DType::kUInt16)
LITHE_DTYPE_OF(int32_t, DType::kInt32)
LITHE_DTYPE_OF(uint32_t, DType::kUInt32)
LITHE_DTYPE_OF(int64_t, DType::kInt64)
LITHE_DTYPE_OF(uint64_t, DType::kUInt64)
LITHE_DTYPE_OF(bool, DType::kBool)
LITHE_DTYPE_OF(std::complex<float>, DType::kComplex64)
LITHE_DTYPE_OF(std::complex<double>, DType::kComplex128)
#undef LITHE_DTYPE_OF

/// Calls f(TypeTag<T>{}) with the C++ type of `t`, for every storable non-complex type.
/// Usage: visit_dtype(t, [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <class F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: return f(TypeTag<float>{});
    case DType::kFloat64: return f(TypeTag<double>{});
    case DType::kFloat16: return f(TypeTag<Half>{});
    case DType::kBFloat16: return f(TypeTag<BFloat16>{});
    case DType::kInt8: return f(TypeTag<int8_t>{});
    case DType::kUInt8: return f(TypeTag<uint8_t>{});
    case DType::kInt16: return f(TypeTag<int16_t>{});
    case DType::kUInt16: return f(TypeTag<uint16_t>{});
    case DType::kInt32: return f(TypeTag<int32_t>{});
    case DType::kUInt32: return f(TypeTag<uint32_t>{});
    case DType::kInt64: return f(TypeTag<int64_t>{});
    case DType::kUInt64: return f(TypeTag<uint64_t>{});
    case DType::kBool: return f(TypeTag<bool>{});
    default: fail("unsupported element type ", dtype_name(t));
  }
}

/// Like visit_dtype, but only for float types (float32/64, float16, bfloat16).
template <class F>
decltype(auto) visit_float_dtype(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: return f(TypeTag<float>{});
    case DType::kFloat64: return f(TypeTag<double>{});
    case DType::kFloat16: return f(TypeTag<Half>{});
    case DType::kBFloat16: return f(TypeTag<BFloat16>{});
    default: fail("expected a float element type, got ", dtype_name(t));
  }
}

/// The type arithmetic is done in for T: float for the 16-bit floats, T otherwise.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>,
                                     float, T>;

}  // namespace lithe
