// Op family: gather. See ops/op.hpp for the contract.
//
// Index-driven data movement: Gather, GatherElements, GatherND, the Scatter ops, Compress,
// NonZero and OneHot. TopK, ArgMax/ArgMin and Unique live in gather_select.cpp.
// Indices are always validated before any element moves, so a bad index is an Error, never
// an out-of-bounds access.
#include <cstring>

#include "ops/families.hpp"
#include "ops/gather_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using gather_detail::dims_product;

void check_index_dtype(const NodeAttrs& ctx, DType t, const char* what) {
  if (t != DType::kInt32 && t != DType::kInt64)
    ctx.fail(what, " must be int32 or int64, got ", dtype_name(t));
}

// Resolves a possibly negative index against `dim`; fails when out of [-dim, dim).
int64_t resolve_index(const NodeAttrs& ctx, int64_t v, int64_t dim, const char* what) {
  if (v < -dim || v >= dim)
    ctx.fail(what, " value ", v, " is out of range [", -dim, ", ", dim - 1, "]");
  return v < 0 ? v + dim : v;
}

const char* bytes_of(const Tensor& t) { return static_cast<const char*>(t.raw()); }
char* bytes_of(Tensor& t) { return static_cast<char*>(t.raw()); }

// Advances a row-major multi-index over `shape`; returns false after the last element.
bool next_index(std::vector<int64_t>& idx, const Shape& shape) {
  for (size_t d = shape.size(); d-- > 0;) {
    if (++idx[d] < shape[d]) return true;
    idx[d] = 0;
  }
  return false;
}

// ---------------------------------------------------------------- Gather

void gather_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.set_output_unknown(0, ctx.input_dtype(0));  // the dtype stands if the shape must wait
  check_index_dtype(ctx, ctx.input_dtype(1), "indices");
  const Shape& data = ctx.input_shape(0);
  const Shape& ind = ctx.input_shape(1);
  if (data.empty()) ctx.fail("data must have rank >= 1");
  size_t axis = static_cast<size_t>(
      normalize_axis(ctx.attr_int("axis", 0), static_cast<int64_t>(data.size())));
  Shape out(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(axis));
  out.insert(out.end(), ind.begin(), ind.end());
  out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(axis) + 1, data.end());
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void gather_compute(ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  Tensor& out = ctx.output(0);
  size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", 0), data.rank()));
  const int64_t dim = data.dim(static_cast<int64_t>(axis));
  std::vector<int64_t> idx = ind.to_int64_vector();
  for (int64_t& v : idx) v = resolve_index(ctx, v, dim, "Gather index");
  const int64_t outer = dims_product(data.shape(), 0, axis);
  const size_t esz = dtype_size(data.dtype());
  const int64_t inner = dims_product(data.shape(), axis + 1, data.shape().size());
  const size_t inner_bytes = static_cast<size_t>(inner) * esz;
  const char* src = bytes_of(data);
  char* dst = bytes_of(out);
  if (inner_bytes == 0) return;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t v : idx) {
      std::memcpy(dst, src + static_cast<size_t>(o * dim + v) * inner_bytes, inner_bytes);
      dst += inner_bytes;
    }
  }
}

// ---------------------------------------------------------------- GatherElements

// Checks indices/updates against data for the *Elements ops: same rank, and every dim
// other than `axis` no larger than data's so positions stay in bounds.
void check_elements_shapes(const NodeAttrs& ctx, const Shape& data, const Shape& ind, size_t axis) {
  if (ind.size() != data.size())
    ctx.fail("indices rank ", ind.size(), " must equal data rank ", data.size());
  for (size_t d = 0; d < data.size(); ++d)
    if (d != axis && ind[d] > data[d])
      ctx.fail("indices dim ", d, " (", ind[d], ") exceeds data dim (", data[d], ")");
}

void gather_elements_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  check_index_dtype(ctx, ctx.input_dtype(1), "indices");
  const Shape& data = ctx.input_shape(0);
  const Shape& ind = ctx.input_shape(1);
  if (data.empty()) ctx.fail("data must have rank >= 1");
  size_t axis = static_cast<size_t>(
      normalize_axis(ctx.attr_int("axis", 0), static_cast<int64_t>(data.size())));
  check_elements_shapes(ctx, data, ind, axis);
  ctx.set_output(0, ctx.input_dtype(0), ind);
}

// Calls f(position_in_indices, offset_in_data) for every element of `ind_shape`, where the
// data offset takes `idx[pos]` along `axis` and the index's own coordinates elsewhere.
template <class F>
void for_each_element_index(const NodeAttrs& ctx, const Shape& data_shape, const Shape& ind_shape,
                            const std::vector<int64_t>& idx, size_t axis, F&& f) {
  const std::vector<int64_t> dstr = strides_of(data_shape);
  const int64_t dim = data_shape[axis];
  const int64_t n = shape_numel(ind_shape);
  std::vector<int64_t> pos(ind_shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < pos.size(); ++d)
      off += (d == axis ? resolve_index(ctx, idx[static_cast<size_t>(i)], dim, "index") : pos[d]) *
             dstr[d];
    f(i, off);
    next_index(pos, ind_shape);
  }
}

void gather_elements_compute(ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  Tensor& out = ctx.output(0);
  size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", 0), data.rank()));
  check_elements_shapes(ctx, data.shape(), ind.shape(), axis);
  std::vector<int64_t> idx = ind.to_int64_vector();
  const size_t esz = dtype_size(data.dtype());
  const char* src = bytes_of(data);
  char* dst = bytes_of(out);
  for_each_element_index(ctx, data.shape(), ind.shape(), idx, axis, [&](int64_t i, int64_t off) {
    std::memcpy(dst + static_cast<size_t>(i) * esz, src + static_cast<size_t>(off) * esz, esz);
  });
}

// ---------------------------------------------------------------- GatherND

struct NdPlan {
  int64_t batch = 1;                   // product of the batch dims
  int64_t tuples = 1;                  // index tuples per batch
  int64_t last = 0;                    // tuple length
  int64_t slice = 1;                   // elements copied per tuple
  int64_t batch_stride = 1;            // data elements per batch
  std::vector<int64_t> tuple_strides;  // data strides of the indexed dims
  Shape indexed_dims;
};

NdPlan plan_nd(const NodeAttrs& ctx, const Shape& data, const Shape& ind, int64_t b) {
  const int64_t r = static_cast<int64_t>(data.size());
  const int64_t q = static_cast<int64_t>(ind.size());
  if (r < 1 || q < 1) ctx.fail("data and indices must have rank >= 1");
  if (b < 0 || b >= std::min(r, q))
    ctx.fail("batch_dims ", b, " must be in [0, min(data rank, indices rank))");
  for (int64_t i = 0; i < b; ++i)
    if (data[static_cast<size_t>(i)] != ind[static_cast<size_t>(i)])
      ctx.fail("batch dim ", i, " differs between data (", data[static_cast<size_t>(i)],
               ") and indices (", ind[static_cast<size_t>(i)], ")");
  NdPlan p;
  p.last = ind.back();
  if (p.last < 1 || p.last > r - b)
    ctx.fail("indices last dim ", p.last, " must be in [1, ", r - b, "]");
  const size_t bs = static_cast<size_t>(b);
  const size_t ls = static_cast<size_t>(p.last);
  p.batch = dims_product(data, 0, bs);
  p.tuples = dims_product(ind, bs, ind.size() - 1);
  p.slice = dims_product(data, bs + ls, data.size());
  p.batch_stride = dims_product(data, bs, data.size());
  std::vector<int64_t> st = strides_of(data);
  for (size_t k = 0; k < ls; ++k) {
    p.tuple_strides.push_back(st[bs + k]);
    p.indexed_dims.push_back(data[bs + k]);
  }
  return p;
}

// Resolves every tuple of `idx` into a data element offset (validated).
std::vector<int64_t> nd_offsets(const NodeAttrs& ctx, const NdPlan& p,
                                const std::vector<int64_t>& idx) {
  std::vector<int64_t> offs(static_cast<size_t>(p.batch * p.tuples));
  for (int64_t t = 0; t < p.batch * p.tuples; ++t) {
    int64_t off = (t / std::max<int64_t>(p.tuples, 1)) * p.batch_stride;
    for (int64_t k = 0; k < p.last; ++k) {
      int64_t v = idx[static_cast<size_t>(t * p.last + k)];
      off += resolve_index(ctx, v, p.indexed_dims[static_cast<size_t>(k)], "index") *
             p.tuple_strides[static_cast<size_t>(k)];
    }
    offs[static_cast<size_t>(t)] = off;
  }
  return offs;
}

void gather_nd_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  if (ctx.input_dtype(1) != DType::kInt64) ctx.fail("indices must be int64");
  const Shape& data = ctx.input_shape(0);
  const Shape& ind = ctx.input_shape(1);
  int64_t b = ctx.attr_int("batch_dims", 0);
  NdPlan p = plan_nd(ctx, data, ind, b);
  Shape out(ind.begin(), ind.end() - 1);
  out.insert(out.end(), data.begin() + b + p.last, data.end());
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void gather_nd_compute(ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  NdPlan p = plan_nd(ctx, data.shape(), ind.shape(), ctx.attr_int("batch_dims", 0));
  std::vector<int64_t> offs = nd_offsets(ctx, p, ind.to_int64_vector());
  const size_t esz = dtype_size(data.dtype());
  const size_t bytes = static_cast<size_t>(p.slice) * esz;
  const char* src = bytes_of(data);
  char* dst = bytes_of(ctx.output(0));
  if (bytes == 0) return;
  for (size_t t = 0; t < offs.size(); ++t)
    std::memcpy(dst + t * bytes, src + static_cast<size_t>(offs[t]) * esz, bytes);
}

// ---------------------------------------------------------------- Scatter*

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Reduction parse_reduction(const NodeAttrs& ctx) {
  std::string r = ctx.attr_string("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (ctx.opset() >= 16) {
    if (r == "add") return Reduction::kAdd;
    if (r == "mul") return Reduction::kMul;
  }
  if (ctx.opset() >= 18) {
    if (r == "max") return Reduction::kMax;
    if (r == "min") return Reduction::kMin;
  }
  ctx.fail("unsupported reduction '", r, "' at opset ", ctx.opset(),
           " (expected none, add, mul from 16, max, min from 18)");
}

template <class T>
void apply_reduction(T& dst, T src, Reduction r) {
  using C = compute_t<T>;
  C a = static_cast<C>(dst), b = static_cast<C>(src);
  switch (r) {
    case Reduction::kNone:
      dst = src;
      return;
    case Reduction::kAdd:
    case Reduction::kMul:
      if constexpr (std::is_floating_point_v<C>) {
        dst = static_cast<T>(r == Reduction::kAdd ? a + b : a * b);
      } else {
        // Integer add/mul in uint64 (defined overflow), wrapping back like the element type.
        uint64_t ua = static_cast<uint64_t>(a), ub = static_cast<uint64_t>(b);
        dst = static_cast<T>(static_cast<C>(r == Reduction::kAdd ? ua + ub : ua * ub));
      }
      return;
    case Reduction::kMax:
      dst = static_cast<T>(b > a ? b : a);
      return;
    case Reduction::kMin:
      dst = static_cast<T>(b < a ? b : a);
      return;
  }
}

void scatter_elements_infer(InferContext& ctx) {
  ctx.expect_inputs(3, 3);
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  check_index_dtype(ctx, ctx.input_dtype(1), "indices");
  if (ctx.input_dtype(2) != ctx.input_dtype(0)) ctx.fail("updates type must match data type");
  parse_reduction(ctx);
  const Shape& data = ctx.input_shape(0);
  const Shape& ind = ctx.input_shape(1);
  const Shape& upd = ctx.input_shape(2);
  if (data.empty()) ctx.fail("data must have rank >= 1");
  size_t axis = static_cast<size_t>(
      normalize_axis(ctx.attr_int("axis", 0), static_cast<int64_t>(data.size())));
  check_elements_shapes(ctx, data, ind, axis);
  if (upd != ind)
    ctx.fail("updates shape ", shape_str(upd), " must equal indices shape ", shape_str(ind));
  ctx.set_output(0, ctx.input_dtype(0), data);
}

void scatter_elements_compute(ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  const Tensor& upd = ctx.input(2);
  Tensor& out = ctx.output(0);
  Reduction red = parse_reduction(ctx);
  size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", 0), data.rank()));
  check_elements_shapes(ctx, data.shape(), ind.shape(), axis);
  if (upd.shape() != ind.shape()) ctx.fail("updates shape must equal indices shape");
  std::vector<int64_t> idx = ind.to_int64_vector();
  // Resolve every position first so a bad index leaves no partial write behind.
  std::vector<int64_t> offs(idx.size());
  for_each_element_index(ctx, data.shape(), ind.shape(), idx, axis,
                         [&](int64_t i, int64_t off) { offs[static_cast<size_t>(i)] = off; });
  if (data.nbytes()) std::memcpy(out.raw(), data.raw(), data.nbytes());
  visit_dtype(data.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dst = out.data<T>();
    const T* u = upd.data<T>();
    for (size_t i = 0; i < offs.size(); ++i) apply_reduction(dst[offs[i]], u[i], red);
  });
}

void scatter_nd_infer(InferContext& ctx) {
  ctx.expect_inputs(3, 3);
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  if (ctx.input_dtype(1) != DType::kInt64) ctx.fail("indices must be int64");
  if (ctx.input_dtype(2) != ctx.input_dtype(0)) ctx.fail("updates type must match data type");
  parse_reduction(ctx);
  const Shape& data = ctx.input_shape(0);
  const Shape& ind = ctx.input_shape(1);
  const Shape& upd = ctx.input_shape(2);
  NdPlan p = plan_nd(ctx, data, ind, 0);
  Shape want(ind.begin(), ind.end() - 1);
  want.insert(want.end(), data.begin() + p.last, data.end());
  if (upd != want) ctx.fail("updates shape ", shape_str(upd), " must be ", shape_str(want));
  ctx.set_output(0, ctx.input_dtype(0), data);
}

void scatter_nd_compute(ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  const Tensor& upd = ctx.input(2);
  Tensor& out = ctx.output(0);
  Reduction red = parse_reduction(ctx);
  NdPlan p = plan_nd(ctx, data.shape(), ind.shape(), 0);
  if (upd.numel() != p.tuples * p.slice) ctx.fail("updates has the wrong element count");
  std::vector<int64_t> offs = nd_offsets(ctx, p, ind.to_int64_vector());
  if (data.nbytes()) std::memcpy(out.raw(), data.raw(), data.nbytes());
  visit_dtype(data.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dst = out.data<T>();
    const T* u = upd.data<T>();
    for (size_t t = 0; t < offs.size(); ++t)
      for (int64_t j = 0; j < p.slice; ++j)
        apply_reduction(dst[offs[t] + j], u[static_cast<int64_t>(t) * p.slice + j], red);
  });
}

// ---------------------------------------------------------------- Compress

// Number of selected slices; fails on a true past the end of the selectable range.
int64_t compress_count(const NodeAttrs& ctx, const Tensor& cond, int64_t limit) {
  if (cond.dtype() != DType::kBool) ctx.fail("condition must be bool");
  if (cond.rank() != 1) ctx.fail("condition must be 1-D, got shape ", shape_str(cond.shape()));
  const bool* c = cond.data<bool>();
  int64_t n = 0;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (!c[i]) continue;
    if (i >= limit)
      ctx.fail("condition selects index ", i, " but the axis has only ", limit, " entries");
    ++n;
  }
  return n;
}

void compress_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  const Shape& data = ctx.input_shape(0);
  const Tensor& cond = ctx.input_value(1);
  if (ctx.has_attr("axis")) {
    size_t axis = static_cast<size_t>(
        normalize_axis(ctx.attr_int("axis"), static_cast<int64_t>(data.size())));
    Shape out = data;
    out[axis] = compress_count(ctx, cond, data[axis]);
    ctx.set_output(0, ctx.input_dtype(0), out);
  } else {
    ctx.set_output(0, ctx.input_dtype(0), {compress_count(ctx, cond, shape_numel(data))});
  }
}

void compress_compute(ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  Tensor& out = ctx.output(0);
  int64_t outer = 1, dim = data.numel(), inner = 1;
  if (ctx.has_attr("axis")) {
    size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis"), data.rank()));
    outer = dims_product(data.shape(), 0, axis);
    dim = data.shape()[axis];
    inner = dims_product(data.shape(), axis + 1, data.shape().size());
  }
  int64_t n = compress_count(ctx, cond, dim);
  if (out.numel() != outer * n * inner) ctx.fail("output size does not match condition");
  const bool* c = cond.data<bool>();
  const size_t bytes = static_cast<size_t>(inner) * dtype_size(data.dtype());
  const char* src = bytes_of(data);
  char* dst = bytes_of(out);
  const int64_t len = std::min(dim, cond.numel());
  if (bytes == 0) return;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < len; ++i)
      if (c[i]) {
        std::memcpy(dst, src + static_cast<size_t>(o * dim + i) * bytes, bytes);
        dst += bytes;
      }
}

// ---------------------------------------------------------------- NonZero

void nonzero_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  if (!dtype_supported(ctx.input_dtype(0))) ctx.fail("unsupported input type");
  ctx.set_output_unknown(0, DType::kInt64);
}

void nonzero_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  // A scalar behaves as a 1-element vector (numpy.nonzero does the same).
  Shape shape = x.rank() == 0 ? Shape{1} : x.shape();
  std::vector<int64_t> hits;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* p = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (static_cast<C>(p[i]) != C(0)) hits.push_back(i);
  });
  const int64_t nnz = static_cast<int64_t>(hits.size());
  const int64_t r = static_cast<int64_t>(shape.size());
  Tensor out(DType::kInt64, {r, nnz});
  int64_t* o = out.data<int64_t>();
  std::vector<int64_t> st = strides_of(shape);
  for (int64_t j = 0; j < nnz; ++j) {
    int64_t rem = hits[static_cast<size_t>(j)];
    for (int64_t d = 0; d < r; ++d) {
      o[d * nnz + j] = rem / st[static_cast<size_t>(d)];
      rem %= st[static_cast<size_t>(d)];
    }
  }
  ctx.set_output(0, std::move(out));
}

// ---------------------------------------------------------------- OneHot

int64_t onehot_depth(const NodeAttrs& ctx, const Tensor& depth) {
  if (depth.numel() != 1) ctx.fail("depth must hold exactly one element, got ", depth.numel());
  double d = depth.at_double(0);
  if (!(d >= 0) || d > static_cast<double>(kMaxTensorElements))
    ctx.fail("depth ", d, " must be a non-negative number within the tensor size limit");
  return static_cast<int64_t>(d);
}

void onehot_infer(InferContext& ctx) {
  ctx.expect_inputs(3, 3);
  ctx.set_output_unknown(0, ctx.input_dtype(2));
  const Shape& ind = ctx.input_shape(0);
  const Shape& values = ctx.input_shape(2);
  if (shape_numel(values) != 2 || values.size() != 1)
    ctx.fail("values must be a 2-element vector [off, on], got shape ", shape_str(values));
  int64_t depth = onehot_depth(ctx, ctx.input_value(1));
  const int64_t r = static_cast<int64_t>(ind.size());
  size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", -1), r + 1));
  Shape out = ind;
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(axis), depth);
  ctx.set_output(0, ctx.input_dtype(2), out);
}

void onehot_compute(ComputeContext& ctx) {
  const Tensor& ind = ctx.input(0);
  const Tensor& values = ctx.input(2);
  Tensor& out = ctx.output(0);
  const int64_t depth = onehot_depth(ctx, ctx.input(1));
  size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", -1), ind.rank() + 1));
  const int64_t outer = dims_product(ind.shape(), 0, axis);
  const int64_t inner = dims_product(ind.shape(), axis, ind.shape().size());
  if (values.numel() != 2) ctx.fail("values must hold 2 elements");
  visit_dtype(values.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T off = values.data<T>()[0];
    const T on = values.data<T>()[1];
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = off;
    for (int64_t a = 0; a < outer; ++a) {
      for (int64_t b = 0; b < inner; ++b) {
        double dv = ind.at_double(a * inner + b);
        if (!(dv > -static_cast<double>(depth) - 1 && dv < static_cast<double>(depth)))
          continue;  // out of range (or NaN): the whole row stays `off`, per the spec
        int64_t v = static_cast<int64_t>(dv);
        if (v < 0) v += depth;
        if (v < 0 || v >= depth) continue;
        o[(a * depth + v) * inner + b] = on;
      }
    }
  });
}

}  // namespace

void add_gather_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Gather", "", 1, &gather_infer, &gather_compute});
  ops.push_back({"GatherElements", "", 11, &gather_elements_infer, &gather_elements_compute});
  ops.push_back({"GatherND", "", 11, &gather_nd_infer, &gather_nd_compute});
  ops.push_back({"Scatter", "", 9, &scatter_elements_infer, &scatter_elements_compute});
  ops.push_back({"ScatterElements", "", 11, &scatter_elements_infer, &scatter_elements_compute});
  ops.push_back({"ScatterND", "", 11, &scatter_nd_infer, &scatter_nd_compute});
  ops.push_back({"Compress", "", 9, &compress_infer, &compress_compute});
  ops.push_back({"NonZero", "", 9, &nonzero_infer, &nonzero_compute});
  ops.push_back({"OneHot", "", 9, &onehot_infer, &onehot_compute});
  add_gather_select_ops(ops);
}

}  // namespace lithe::ops
