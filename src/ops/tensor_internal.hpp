// Helpers shared by the shape and tensor op families (src/ops/shape.cpp, src/ops/tensor*.cpp):
// reading shape-like inputs, checked index arithmetic and a dtype-agnostic "gather by
// per-dimension offset tables" copy that Transpose, Slice, Pad, Expand, Tile and the
// depth/space ops reduce to.
//
// Convention: every infer() in these families sets its output dtypes (set_output_unknown) before
// touching anything that may throw InferUnknown, so graph inference keeps the dtype even
// when the shape is only known at run time.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "ops/util.hpp"

namespace lithe::ops::tensor_detail {

/// Marks a table entry whose output coordinate lies outside the input (the fill value).
inline constexpr int64_t kFill = -1;

// Infer and compute read inputs through different accessors; these overloads let one
// templated "plan" function serve both.
inline const Tensor& value_of(const InferContext& c, size_t i) { return c.input_value(i); }
inline const Tensor& value_of(const ComputeContext& c, size_t i) { return c.input(i); }
inline const Shape& shape_of(const InferContext& c, size_t i) { return c.input_shape(i); }
inline const Shape& shape_of(const ComputeContext& c, size_t i) { return c.input(i).shape(); }
inline DType dtype_in(const InferContext& c, size_t i) { return c.input_dtype(i); }
inline DType dtype_in(const ComputeContext& c, size_t i) { return c.input(i).dtype(); }

/// a * b, failing (naming `what`) instead of overflowing. Both must be >= 0.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail(what, ": ", a, " * ", b, " overflows");
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) fail(what, ": ", a, " + ", b, " overflows");
  return r;
}

/// The elements of an integer tensor (shape-like inputs: Reshape's shape, Slice's starts...).
/// Float inputs are refused: converting NaN or a huge float to an index is meaningless.
inline std::vector<int64_t> int_values(const Tensor& t, const char* what) {
  if (!is_int(t.dtype()))
    fail(what, " must be an integer tensor, got ", dtype_name(t.dtype()));
  if (t.dtype() == DType::kUInt64) {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (t.data<uint64_t>()[i] > static_cast<uint64_t>(INT64_MAX))
        fail(what, " value ", t.data<uint64_t>()[i], " is out of range");
  }
  return t.to_int64_vector();
}

/// A scalar (or one-element) integer input.
inline int64_t int_scalar(const Tensor& t, const char* what) {
  if (t.numel() != 1) fail(what, " must have exactly one element, got shape ", shape_str(t.shape()));
  return int_values(t, what)[0];
}

/// A 16-byte element (complex128) for byte-moving kernels.
struct Bytes16 {
  uint64_t lo, hi;
};
/// Calls f(TypeTag<U>{}) with an unsigned integer type U of `size` bytes (or Bytes16), so
/// data-movement kernels copy elements of any dtype by size.
template <class F>
void visit_elem_size(size_t size, F&& f) {
  switch (size) {
    case 1: f(TypeTag<uint8_t>{}); break;
    case 2: f(TypeTag<uint16_t>{}); break;
    case 4: f(TypeTag<uint32_t>{}); break;
    case 8: f(TypeTag<uint64_t>{}); break;
    case 16: f(TypeTag<Bytes16>{}); break;
    default: fail_runtime("unexpected element size ", size);
  }
}

/// out[idx] = in[sum_d tables[d][idx[d]]] for every output index, where tables[d] has
/// out.dim(d) entries giving the input element offset contributed by that output
/// coordinate. An entry of kFill makes the element `fill` (one element of out's dtype,
/// or nullptr for zero). Works for any dtype because it only moves bytes.
inline void gather_by_tables(const Tensor& in, Tensor& out,
                             const std::vector<std::vector<int64_t>>& tables,
                             const void* fill = nullptr) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const size_t r = out.shape().size();
  const size_t es = dtype_size(out.dtype());
  visit_elem_size(es, [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = static_cast<const U*>(in.raw());
    U* dst = static_cast<U*>(out.raw());
    U fv{};
    if (fill) std::memcpy(&fv, fill, sizeof(U));
    if (r == 0) {
      dst[0] = src[0];
      return;
    }
    const int64_t inner = out.shape()[r - 1];
    const std::vector<int64_t>& last = tables[r - 1];
    std::vector<int64_t> idx(r - 1, 0);
    for (int64_t base_i = 0; base_i < n; base_i += inner) {
      int64_t base = 0;
      bool filled = false;
      for (size_t d = 0; d + 1 < r; ++d) {
        int64_t t = tables[d][static_cast<size_t>(idx[d])];
        if (t == kFill) filled = true;
        base += t;
      }
      U* o = dst + base_i;
      for (int64_t j = 0; j < inner; ++j) {
        int64_t t = last[static_cast<size_t>(j)];
        o[j] = (filled || t == kFill) ? fv : src[base + t];
      }
      for (size_t d = r - 1; d-- > 0;) {
        if (++idx[d] < out.shape()[d]) break;
        idx[d] = 0;
      }
    }
  });
}

/// Copies all bytes of `in` into `out` (same element count; Reshape-like ops).
inline void copy_bytes(const Tensor& in, Tensor& out) {
  if (in.nbytes() != out.nbytes())
    fail_runtime("internal: copy of ", in.nbytes(), " bytes into ", out.nbytes());
  if (in.nbytes()) std::memcpy(out.raw(), in.raw(), in.nbytes());
}

}  // namespace lithe::ops::tensor_detail

namespace lithe::ops {
/// The second half of the tensor family (tensor_more.cpp); called from add_tensor_ops.
void add_tensor_more_ops(std::vector<OpDef>& ops);
}  // namespace lithe::ops
