#include "core/tensor.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/tensor_check.hpp"

namespace lithe {

int64_t checked_numel(const Shape& shape, const std::string& what) {
  if (shape.size() > static_cast<size_t>(kMaxRank))
    fail(what, ": rank ", shape.size(), " exceeds the limit of ", kMaxRank);
  int64_t n = 1;
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0) fail(what, ": negative dimension ", d, " in shape ", shape_str(shape));
    if (d == 0) zero = true;
  }
  if (zero) return 0;
  for (int64_t d : shape) {
    if (n > kMaxTensorElements / d)
      fail(what, ": shape ", shape_str(shape), " has more than ", kMaxTensorElements,
           " elements (the per-tensor limit)");
    n *= d;
  }
  return n;
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += 'x';
    s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return s;
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  if (!dtype_supported(dtype_)) fail("cannot create a tensor of element type ", dtype_name(dtype_));
  numel_ = checked_numel(shape_, "tensor");
  size_t bytes = nbytes();
  if (static_cast<int64_t>(bytes) > kMaxTensorBytes)
    fail("tensor of shape ", shape_str(shape_), " needs ", bytes, " bytes, over the limit");
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  if (!p) fail_runtime("out of memory allocating ", alloc, " bytes");
  std::memset(p, 0, alloc);
  owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  data_ = p;
}

Tensor Tensor::borrow(DType dtype, Shape shape, std::shared_ptr<const void> owner,
                      const void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = checked_numel(t.shape_, "tensor");
  t.owner_ = std::move(owner);
  t.data_ = const_cast<void*>(data);
  return t;
}

void Tensor::check_type(DType t) const {
  if (t != dtype_)
    fail_runtime("tensor holds ", dtype_name(dtype_), ", accessed as ", dtype_name(t));
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  int64_t n = checked_numel(shape, "reshape");
  if (n != numel_)
    fail("cannot reshape ", shape_str(shape_), " to ", shape_str(shape), ": element counts differ");
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::bitcast(DType to) const {
  if (dtype_size(to) != dtype_size(dtype_))
    fail("cannot reinterpret ", dtype_name(dtype_), " as ", dtype_name(to), ": sizes differ");
  Tensor t = *this;
  t.dtype_ = to;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

double Tensor::at_double(int64_t i) const {
  return visit_dtype(dtype_, [&](auto tag) -> double {
    using T = typename decltype(tag)::type;
    return static_cast<double>(static_cast<compute_t<T>>(static_cast<const T*>(data_)[i]));
  });
}

int64_t Tensor::at_int(int64_t i) const {
  return visit_dtype(dtype_, [&](auto tag) -> int64_t {
    using T = typename decltype(tag)::type;
    return static_cast<int64_t>(static_cast<compute_t<T>>(static_cast<const T*>(data_)[i]));
  });
}

std::vector<int64_t> Tensor::to_int64_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[static_cast<size_t>(i)] = at_int(i);
  return v;
}

namespace {
// Float -> integer conversion that never invokes UB: NaN -> 0, out of range saturates.
template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return static_cast<compute_t<From>>(v) != compute_t<From>(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<compute_t<From>>) {
    double d = static_cast<double>(static_cast<compute_t<From>>(v));
    if (std::isnan(d)) return To(0);
    if (d <= static_cast<double>(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    if (d >= static_cast<double>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(d);
  } else {
    return static_cast<To>(static_cast<compute_t<To>>(static_cast<compute_t<From>>(v)));
  }
}
}  // namespace

Tensor Tensor::cast(DType to) const {
  Tensor out(to, shape_);
  visit_dtype(dtype_, [&](auto ftag) {
    using F = typename decltype(ftag)::type;
    visit_dtype(to, [&](auto ttag) {
      using T = typename decltype(ttag)::type;
      const F* src = static_cast<const F*>(data_);
      T* dst = static_cast<T*>(out.data_);
      for (int64_t i = 0; i < numel_; ++i) dst[i] = convert<T, F>(src[i]);
    });
  });
  return out;
}

void check_bool_bytes(const Tensor& t, const std::string& what) {
  if (t.dtype() != DType::kBool) return;
  const auto* b = static_cast<const unsigned char*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i)
    if (b[i] > 1)
      fail(what, ": bool element ", i, " is stored as byte ", static_cast<int>(b[i]),
           " (a bool must be 0 or 1)");
}

}  // namespace lithe
