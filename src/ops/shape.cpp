// Op family: shape. See ops/op.hpp for the contract.
//
// Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size, Constant, ConstantOfShape, Range,
// EyeLike. The view-like ops copy bytes, so they work for every dtype. Shape/Size/Range/
// ConstantOfShape outputs are small and their values are computed in compute(); build-time
// inference gets constant inputs, so shape chains fold.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/families.hpp"
#include "ops/tensor_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using namespace tensor_detail;

// ---- Reshape ----

template <class Ctx>
Shape reshape_target(const Ctx& c) {
  const Shape& in = shape_of(c, 0);
  std::vector<int64_t> spec;
  if (c.opset() < 5) {
    spec = c.attr_ints("shape");
  } else {
    const Tensor& s = value_of(c, 1);
    if (s.rank() != 1) fail("shape input must be 1-D, got shape ", shape_str(s.shape()));
    spec = int_values(s, "shape input");
  }
  const bool allowzero = c.opset() >= 14 && c.attr_int("allowzero", 0) != 0;
  const int64_t in_n = checked_numel(in, "Reshape input");
  Shape out(spec.size());
  int64_t infer_at = -1;
  int64_t known = 1;
  bool has_zero = false;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == -1) {
      if (infer_at >= 0) fail("shape has more than one -1 dimension");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (d < -1) fail("shape dimension ", d, " is invalid (expected >= -1)");
    if (d == 0 && !allowzero) {
      if (i >= in.size())
        fail("shape dimension ", i, " is 0 (copy input dim) but the input has rank ", in.size());
      d = in[i];
    }
    if (d == 0) has_zero = true;
    out[i] = d;
    known = has_zero ? 0 : checked_mul(known, d, "Reshape shape");
  }
  if (infer_at >= 0) {
    if (allowzero && has_zero)
      fail("shape cannot contain both 0 and -1 when allowzero is set");
    if (known == 0) {
      // The -1 dim is ambiguous; an empty input is the only consistent case and gets 0.
      if (in_n != 0)
        fail("cannot reshape ", shape_str(in), " to a shape with a 0 dimension and -1");
      out[static_cast<size_t>(infer_at)] = 0;
    } else {
      if (in_n % known != 0)
        fail("cannot reshape ", shape_str(in), " (", in_n, " elements) with -1 into a multiple of ",
             known);
      out[static_cast<size_t>(infer_at)] = in_n / known;
    }
  } else if (known != in_n) {
    fail("cannot reshape ", shape_str(in), " (", in_n, " elements) to ", shape_str(out), " (",
         known, " elements)");
  }
  return out;
}

void reshape_infer(InferContext& c) {
  c.expect_inputs(c.opset() < 5 ? 1 : 2, c.opset() < 5 ? 1 : 2);
  c.set_output_unknown(0, c.input_dtype(0));
  c.set_output(0, c.input_dtype(0), reshape_target(c));
}

// Shared compute of the ops that only change the shape: the bytes are the same.
void copy_compute(ComputeContext& c) { copy_bytes(c.input(0), c.output(0)); }

// ---- Flatten ----

void flatten_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  c.set_output_unknown(0, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  const int64_t r = static_cast<int64_t>(in.size());
  int64_t axis = c.attr_int("axis", 1);
  if (c.opset() < 11 && axis < 0) fail("axis ", axis, " must be >= 0 before opset 11");
  if (axis < -r || axis > r) fail("axis ", axis, " is out of range for rank ", r);
  if (axis < 0) axis += r;
  Shape outer(in.begin(), in.begin() + axis), inner(in.begin() + axis, in.end());
  c.set_output(0, c.input_dtype(0),
               {checked_numel(outer, "Flatten outer"), checked_numel(inner, "Flatten inner")});
}

// ---- Squeeze / Unsqueeze ----

// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13.
template <class Ctx>
bool squeeze_axes(const Ctx& c, std::vector<int64_t>& axes) {
  if (c.opset() < 13) {
    if (!c.has_attr("axes")) return false;
    axes = c.attr_ints("axes");
    return true;
  }
  if (!c.has_input(1)) return false;
  const Tensor& t = value_of(c, 1);
  if (t.rank() > 1) fail("axes input must be 1-D, got shape ", shape_str(t.shape()));
  axes = int_values(t, "axes input");
  // An empty axes tensor means "not given" (Squeeze then drops every dim of size 1).
  return !axes.empty();
}

// Normalizes axes against `rank`, failing on out-of-range or repeated axes.
std::vector<char> axis_mask(const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<char> mask(static_cast<size_t>(rank), 0);
  for (int64_t a : axes) {
    int64_t n = normalize_axis(a, rank);
    if (mask[static_cast<size_t>(n)]) fail("axis ", a, " is repeated");
    mask[static_cast<size_t>(n)] = 1;
  }
  return mask;
}

template <class Ctx>
Shape squeeze_shape(const Ctx& c) {
  const Shape& in = shape_of(c, 0);
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> axes;
  Shape out;
  if (!squeeze_axes(c, axes)) {
    for (int64_t d : in)
      if (d != 1) out.push_back(d);
    return out;
  }
  std::vector<char> mask = axis_mask(axes, r);
  for (int64_t i = 0; i < r; ++i) {
    if (!mask[static_cast<size_t>(i)]) {
      out.push_back(in[static_cast<size_t>(i)]);
    } else if (in[static_cast<size_t>(i)] != 1) {
      fail("cannot squeeze axis ", i, " of size ", in[static_cast<size_t>(i)], " (must be 1)");
    }
  }
  return out;
}

void squeeze_infer(InferContext& c) {
  c.expect_inputs(1, c.opset() < 13 ? 1 : 2);
  c.set_output_unknown(0, c.input_dtype(0));
  c.set_output(0, c.input_dtype(0), squeeze_shape(c));
}

template <class Ctx>
Shape unsqueeze_shape(const Ctx& c) {
  const Shape& in = shape_of(c, 0);
  std::vector<int64_t> axes;
  if (!squeeze_axes(c, axes)) fail("Unsqueeze needs axes");
  const int64_t r = static_cast<int64_t>(in.size() + axes.size());
  if (r > kMaxRank) fail("output rank ", r, " exceeds the limit of ", kMaxRank);
  std::vector<char> mask = axis_mask(axes, r);
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) out.push_back(mask[static_cast<size_t>(i)] ? 1 : in[j++]);
  return out;
}

void unsqueeze_infer(InferContext& c) {
  c.expect_inputs(c.opset() < 13 ? 1 : 2, c.opset() < 13 ? 1 : 2);
  c.set_output_unknown(0, c.input_dtype(0));
  c.set_output(0, c.input_dtype(0), unsqueeze_shape(c));
}

// ---- Shape / Size ----

// [start, end) of the dims Shape reports (start/end attributes from opset 15), clamped.
std::pair<int64_t, int64_t> shape_range(const NodeAttrs& a, int64_t r) {
  int64_t start = 0, end = r;
  if (a.opset() >= 15) {
    start = a.attr_int("start", 0);
    end = a.attr_int("end", r);
  }
  auto clamp = [r](int64_t v) {
    if (v < 0) v = v < -r ? 0 : v + r;
    return std::min(v, r);
  };
  start = clamp(start);
  end = clamp(end);
  return {start, std::max(end, start)};
}

void shape_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  c.set_output_unknown(0, DType::kInt64);
  auto [s, e] = shape_range(c, c.input_rank(0));
  c.set_output(0, DType::kInt64, {e - s});
}

void shape_compute(ComputeContext& c) {
  const Shape& in = c.input(0).shape();
  auto [s, e] = shape_range(c, static_cast<int64_t>(in.size()));
  int64_t* o = c.output(0).data<int64_t>();
  for (int64_t i = s; i < e; ++i) o[i - s] = in[static_cast<size_t>(i)];
}

void size_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  // The output is always a scalar, whatever the input's shape.
  c.set_output(0, DType::kInt64, {});
}

void size_compute(ComputeContext& c) { c.output(0).data<int64_t>()[0] = c.input(0).numel(); }

// ---- Constant ----

// The tensor a Constant node produces, built from whichever value attribute it has.
Tensor constant_value(const NodeAttrs& a) {
  int count = 0;
  for (const char* n : {"value", "value_float", "value_floats", "value_int", "value_ints",
                        "value_string", "value_strings", "sparse_value"})
    count += a.has_attr(n) ? 1 : 0;
  if (count != 1) fail("Constant needs exactly one value attribute, got ", count);
  if (a.has_attr("value")) return a.attr_tensor("value");
  if (a.has_attr("value_float")) {
    Tensor t(DType::kFloat32, {});
    t.data<float>()[0] = a.attr_float("value_float");
    return t;
  }
  if (a.has_attr("value_floats")) {
    std::vector<float> v = a.attr_floats("value_floats");
    Tensor t(DType::kFloat32, {static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.data<float>());
    return t;
  }
  if (a.has_attr("value_int")) {
    Tensor t(DType::kInt64, {});
    t.data<int64_t>()[0] = a.attr_int("value_int");
    return t;
  }
  if (a.has_attr("value_ints")) {
    std::vector<int64_t> v = a.attr_ints("value_ints");
    Tensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.data<int64_t>());
    return t;
  }
  if (a.has_attr("sparse_value")) fail("Constant with sparse_value is not supported");
  fail("Constant with a string value is not supported (lithe has no string tensors)");
}

void constant_infer(InferContext& c) {
  Tensor t = constant_value(c);
  if (!t.defined()) fail("Constant value attribute holds no tensor");
  c.set_output(0, t.dtype(), t.shape());
}

void constant_compute(ComputeContext& c) { copy_bytes(constant_value(c), c.output(0)); }

// ---- ConstantOfShape ----

// The fill element: the `value` attribute (one element) or float32 zero.
Tensor constant_of_shape_value(const NodeAttrs& a) {
  if (!a.has_attr("value")) return Tensor(DType::kFloat32, {});
  const Tensor& v = a.attr_tensor("value");
  if (v.numel() != 1)
    fail("value attribute must hold exactly one element, got shape ", shape_str(v.shape()));
  return v;
}

template <class Ctx>
Shape constant_of_shape_shape(const Ctx& c) {
  const Tensor& s = value_of(c, 0);
  if (s.rank() != 1) fail("shape input must be 1-D, got shape ", shape_str(s.shape()));
  Shape out = int_values(s, "shape input");
  for (int64_t d : out)
    if (d < 0) fail("shape input has a negative dimension ", d);
  return out;
}

void constant_of_shape_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  Tensor v = constant_of_shape_value(c);
  c.set_output_unknown(0, v.dtype());
  c.set_output(0, v.dtype(), constant_of_shape_shape(c));
}

void constant_of_shape_compute(ComputeContext& c) {
  Tensor v = constant_of_shape_value(c);
  Tensor& out = c.output(0);
  const size_t es = dtype_size(out.dtype());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t i = 0; i < out.numel(); ++i)
    std::memcpy(dst + static_cast<size_t>(i) * es, v.raw(), es);
}

// ---- Range ----

bool range_dtype_ok(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kInt16 ||
         t == DType::kInt32 || t == DType::kInt64;
}

// Element count max(ceil((limit - start) / delta), 0), validated before anything is sized:
// a zero, NaN or infinite delta, or a count above the tensor cap, fails.
int64_t range_count(const Tensor& start, const Tensor& limit, const Tensor& delta) {
  for (const Tensor* t : {&start, &limit, &delta})
    if (t->numel() != 1) fail("Range inputs must be scalars, got shape ", shape_str(t->shape()));
  if (start.dtype() != limit.dtype() || start.dtype() != delta.dtype())
    fail("Range inputs must have the same element type");
  if (!range_dtype_ok(start.dtype()))
    fail("Range does not support element type ", dtype_name(start.dtype()));
  if (is_float(start.dtype())) {
    double s = start.at_double(0), l = limit.at_double(0), d = delta.at_double(0);
    if (!std::isfinite(s) || !std::isfinite(l) || !std::isfinite(d))
      fail("Range start, limit and delta must be finite");
    if (d == 0) fail("Range delta must not be zero");
    double q = std::ceil((l - s) / d);
    if (!(q > 0)) return 0;
    if (q > static_cast<double>(kMaxTensorElements))
      fail("Range would produce ", q, " elements, over the limit of ", kMaxTensorElements);
    return static_cast<int64_t>(q);
  }
  __int128 s = start.at_int(0), l = limit.at_int(0), d = delta.at_int(0);
  if (d == 0) fail("Range delta must not be zero");
  __int128 diff = l - s;
  if ((diff > 0) != (d > 0) || diff == 0) return 0;
  __int128 ad = d < 0 ? -d : d, adiff = diff < 0 ? -diff : diff;
  __int128 q = (adiff + ad - 1) / ad;
  if (q > kMaxTensorElements)
    fail("Range would produce more than ", kMaxTensorElements, " elements");
  return static_cast<int64_t>(q);
}

void range_infer(InferContext& c) {
  c.expect_inputs(3, 3);
  DType t = c.input_dtype(0);
  if (!range_dtype_ok(t)) fail("Range does not support element type ", dtype_name(t));
  c.set_output_unknown(0, t);
  c.set_output(0, t, {range_count(c.input_value(0), c.input_value(1), c.input_value(2))});
}

void range_compute(ComputeContext& c) {
  const Tensor &start = c.input(0), &delta = c.input(2);
  Tensor& out = c.output(0);
  const int64_t n = out.numel();
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      double s = start.at_double(0), d = delta.at_double(0);
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(s + static_cast<double>(i) * d);
    } else {
      // Every element lies between start and limit, so it fits T; only the product needs
      // the wider type.
      __int128 s = start.at_int(0), d = delta.at_int(0);
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(static_cast<int64_t>(s + i * d));
    }
  });
}

// ---- EyeLike ----

DType eye_like_dtype(const NodeAttrs& a, DType in) {
  if (!a.has_attr("dtype")) return in;
  return dtype_from_onnx(static_cast<int32_t>(a.attr_int("dtype")), "EyeLike dtype");
}

void eye_like_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  DType t = eye_like_dtype(c, c.input_dtype(0));
  if (t == DType::kComplex64 || t == DType::kComplex128)
    fail("EyeLike does not support element type ", dtype_name(t));
  c.set_output_unknown(0, t);
  const Shape& in = c.input_shape(0);
  if (in.size() != 2) fail("EyeLike input must be 2-D, got shape ", shape_str(in));
  c.set_output(0, t, in);
}

void eye_like_compute(ComputeContext& c) {
  Tensor& out = c.output(0);
  const int64_t rows = out.dim(0), cols = out.dim(1);
  const int64_t k = c.attr_int("k", 0);
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    const T one = static_cast<T>(compute_t<T>(1));
    // k can be anything: skip a diagonal that misses the matrix, so i + k cannot overflow.
    if (k >= cols || k <= -rows) return;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t j = i + k;
      if (j >= 0 && j < cols) o[i * cols + j] = one;
    }
  });
}

}  // namespace

void add_shape_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Reshape", "", 1, reshape_infer, copy_compute});
  ops.push_back({"Flatten", "", 1, flatten_infer, copy_compute});
  ops.push_back({"Squeeze", "", 1, squeeze_infer, copy_compute});
  ops.push_back({"Unsqueeze", "", 1, unsqueeze_infer, copy_compute});
  ops.push_back({"Shape", "", 1, shape_infer, shape_compute});
  ops.push_back({"Size", "", 1, size_infer, size_compute});
  ops.push_back({"Constant", "", 1, constant_infer, constant_compute});
  ops.push_back({"ConstantOfShape", "", 9, constant_of_shape_infer, constant_of_shape_compute});
  ops.push_back({"Range", "", 11, range_infer, range_compute});
  ops.push_back({"EyeLike", "", 9, eye_like_infer, eye_like_compute});
}

}  // namespace lithe::ops
