// A dense tensor: element type, shape and shared storage (owned or borrowed).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lithe/dtype.hpp"

namespace lithe {

using Shape = std::vector<int64_t>;

/// Largest element count of one tensor (2^31 - 1) and largest byte size (8 GiB). A shape
/// beyond these is refused before anything is allocated; see docs/limits.md.
inline constexpr int64_t kMaxTensorElements = (int64_t{1} << 31) - 1;
inline constexpr int64_t kMaxTensorBytes = int64_t{8} << 30;
/// Largest rank lithe accepts.
inline constexpr int kMaxRank = 8;

/// Element count of `shape`; fails (naming `what`) on negative dims, int64 overflow or a
/// count above kMaxTensorElements.
int64_t checked_numel(const Shape& shape, const std::string& what);
/// Product of dims, no checks (for shapes already validated).
int64_t shape_numel(const Shape& shape);
/// "1x3x224x224" ("scalar" for rank 0).
std::string shape_str(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  /// Allocates zero-filled, 64-byte-aligned storage after checking the shape.
  Tensor(DType dtype, Shape shape);
  /// Wraps memory owned by `owner` (a mapped file, a protobuf buffer...). No copy.
  static Tensor borrow(DType dtype, Shape shape, std::shared_ptr<const void> owner,
                       const void* data);

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[static_cast<size_t>(i)]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <class T>
  T* data() {
    check_type(dtype_of<T>());
    return static_cast<T*>(data_);
  }
  template <class T>
  const T* data() const {
    check_type(dtype_of<T>());
    return static_cast<const T*>(data_);
  }

  /// Same storage, another shape of the same element count.
  Tensor reshaped(Shape shape) const;
  /// Same storage read as another element type of the same size (e.g. uint16 bits as
  /// bfloat16).
  Tensor bitcast(DType to) const;
  /// Deep copy.
  Tensor clone() const;
  /// Element i converted to double / int64 (for small shape tensors and tests).
  double at_double(int64_t i) const;
  int64_t at_int(int64_t i) const;
  /// All elements as int64 (for shape-like inputs: Reshape shape, Slice starts...).
  std::vector<int64_t> to_int64_vector() const;
  /// All elements converted to another element type (ONNX Cast semantics for numerics).
  Tensor cast(DType to) const;

 private:
  void check_type(DType t) const;
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<const void> owner_;
  void* data_ = nullptr;
};

}  // namespace lithe
