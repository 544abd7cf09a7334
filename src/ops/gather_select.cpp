// Op family: gather (part). Ops that select by value: TopK, ArgMax, ArgMin, Unique.
// Registered from add_gather_ops in gather.cpp.
#include <algorithm>
#include <numeric>

#include "ops/gather_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using gather_detail::dims_product;
using gather_detail::equal_nan;
using gather_detail::less_nan_last;

// ---------------------------------------------------------------- TopK

int64_t topk_k(const NodeAttrs& ctx, const Tensor* k_input) {
  if (ctx.opset() < 10) return ctx.attr_int("k");
  if (!k_input) ctx.fail("input K is required from opset 10");
  if (k_input->dtype() != DType::kInt64) ctx.fail("K must be int64");
  if (k_input->numel() != 1 || k_input->rank() > 1)
    ctx.fail("K must be a 1-element 1-D tensor, got shape ", shape_str(k_input->shape()));
  return k_input->at_int(0);
}

bool topk_flag(const NodeAttrs& ctx, const char* name) {
  int64_t v = ctx.opset() >= 11 ? ctx.attr_int(name, 1) : 1;
  if (v != 0 && v != 1) ctx.fail(name, " must be 0 or 1, got ", v);
  return v == 1;
}

Shape topk_shape(const NodeAttrs& ctx, const Shape& x, int64_t k, size_t* axis_out) {
  if (x.empty()) ctx.fail("input must have rank >= 1");
  size_t axis =
      static_cast<size_t>(normalize_axis(ctx.attr_int("axis", -1), static_cast<int64_t>(x.size())));
  if (k < 0 || k > x[axis])
    ctx.fail("k = ", k, " must be in [0, ", x[axis], "] (the size of axis ", axis, ")");
  Shape out = x;
  out[axis] = k;
  *axis_out = axis;
  return out;
}

void topk_infer(InferContext& ctx) {
  ctx.expect_inputs(ctx.opset() < 10 ? 1 : 2, ctx.opset() < 10 ? 1 : 2);
  topk_flag(ctx, "largest");
  topk_flag(ctx, "sorted");
  ctx.set_output_unknown(0, ctx.input_dtype(0));  // dtypes stand if K must wait
  ctx.set_output_unknown(1, DType::kInt64);
  const Shape& x = ctx.input_shape(0);
  int64_t k = topk_k(ctx, ctx.opset() < 10 ? nullptr : &ctx.input_value(1));
  size_t axis = 0;
  Shape out = topk_shape(ctx, x, k, &axis);
  ctx.set_output(0, ctx.input_dtype(0), out);
  ctx.set_output(1, DType::kInt64, out);
}

void topk_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t k = topk_k(ctx, ctx.opset() < 10 ? nullptr : &ctx.input(1));
  size_t axis = 0;
  topk_shape(ctx, x.shape(), k, &axis);
  const bool largest = topk_flag(ctx, "largest");
  const int64_t outer = dims_product(x.shape(), 0, axis);
  const int64_t dim = x.shape()[axis];
  const int64_t inner = dims_product(x.shape(), axis + 1, x.shape().size());
  int64_t* out_idx = ctx.has_output(1) ? ctx.output(1).data<int64_t>() : nullptr;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* src = x.data<T>();
    T* out_val = ctx.has_output(0) ? ctx.output(0).data<T>() : nullptr;
    std::vector<C> vals(static_cast<size_t>(dim));
    std::vector<int64_t> order(static_cast<size_t>(dim));
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t in = 0; in < inner; ++in) {
        for (int64_t i = 0; i < dim; ++i)
          vals[static_cast<size_t>(i)] = static_cast<C>(src[(o * dim + i) * inner + in]);
        std::iota(order.begin(), order.end(), 0);
        // Ties go to the lower index, so the order is total and the result deterministic.
        auto before = [&](int64_t a, int64_t b) {
          C va = vals[static_cast<size_t>(a)], vb = vals[static_cast<size_t>(b)];
          if (largest ? less_nan_last(vb, va) : less_nan_last(va, vb)) return true;
          if (equal_nan(va, vb)) return a < b;
          return false;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t j = 0; j < k; ++j) {
          int64_t dst = (o * k + j) * inner + in;
          int64_t from = order[static_cast<size_t>(j)];
          if (out_val) out_val[dst] = src[(o * dim + from) * inner + in];
          if (out_idx) out_idx[dst] = from;
        }
      }
    }
  });
}

// ---------------------------------------------------------------- ArgMax / ArgMin

struct ArgPlan {
  size_t axis;
  bool keepdims;
  bool last;
  Shape out;
};

ArgPlan arg_plan(const NodeAttrs& ctx, const Shape& x) {
  ArgPlan p;
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0) ctx.fail("input must have rank >= 1");
  p.axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", 0), r));
  int64_t kd = ctx.attr_int("keepdims", 1);
  int64_t sl = ctx.opset() >= 12 ? ctx.attr_int("select_last_index", 0) : 0;
  if (kd != 0 && kd != 1) ctx.fail("keepdims must be 0 or 1, got ", kd);
  if (sl != 0 && sl != 1) ctx.fail("select_last_index must be 0 or 1, got ", sl);
  p.keepdims = kd == 1;
  p.last = sl == 1;
  if (x[p.axis] == 0) ctx.fail("cannot take the arg-extremum of an empty axis");
  for (size_t d = 0; d < x.size(); ++d) {
    if (d != p.axis)
      p.out.push_back(x[d]);
    else if (p.keepdims)
      p.out.push_back(1);
  }
  return p;
}

template <bool kMax>
void arg_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.set_output_unknown(0, DType::kInt64);
  ArgPlan p = arg_plan(ctx, ctx.input_shape(0));
  ctx.set_output(0, DType::kInt64, p.out);
}

template <bool kMax>
void arg_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  ArgPlan p = arg_plan(ctx, x.shape());
  const int64_t outer = dims_product(x.shape(), 0, p.axis);
  const int64_t dim = x.shape()[p.axis];
  const int64_t inner = dims_product(x.shape(), p.axis + 1, x.shape().size());
  int64_t* out = ctx.output(0).data<int64_t>();
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* src = x.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t in = 0; in < inner; ++in) {
        int64_t best = 0;
        C bv = static_cast<C>(src[o * dim * inner + in]);
        for (int64_t i = 1; i < dim; ++i) {
          C v = static_cast<C>(src[(o * dim + i) * inner + in]);
          // NaN wins over numbers (as in numpy); among equals the flag picks first or last.
          bool better = kMax ? less_nan_last(bv, v) : less_nan_last(v, bv);
          if constexpr (!kMax && std::is_floating_point_v<C>) {
            if (std::isnan(v) && !std::isnan(bv)) better = true;
            if (std::isnan(bv)) better = false;
          }
          if (better || (p.last && equal_nan(v, bv))) {
            best = i;
            bv = v;
          }
        }
        out[o * inner + in] = best;
      }
    }
  });
}

// ---------------------------------------------------------------- Unique

void unique_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  int64_t s = ctx.attr_int("sorted", 1);
  if (s != 0 && s != 1) ctx.fail("sorted must be 0 or 1, got ", s);
  // The output sizes depend on the data; compute() sets them.
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  for (size_t i = 1; i < 4; ++i) ctx.set_output_unknown(i, DType::kInt64);
  if (ctx.has_attr("axis")) normalize_axis(ctx.attr_int("axis"), ctx.input_rank(0));
}

void unique_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const bool sorted = ctx.attr_int("sorted", 1) == 1;
  const bool has_axis = ctx.has_attr("axis");
  size_t axis = 0;
  int64_t outer = 1, n = x.numel(), inner = 1;
  if (has_axis) {
    axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis"), x.rank()));
    outer = dims_product(x.shape(), 0, axis);
    n = x.shape()[axis];
    inner = dims_product(x.shape(), axis + 1, x.shape().size());
  }
  const int64_t slice = outer * inner;  // elements per slice along the axis
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* src = x.data<T>();
    auto at = [&](int64_t s, int64_t e) {  // element e of slice s
      int64_t o = e / inner, in = e % inner;
      return static_cast<C>(src[(o * n + s) * inner + in]);
    };
    auto slice_less = [&](int64_t a, int64_t b) {
      for (int64_t e = 0; e < slice; ++e) {
        C va = at(a, e), vb = at(b, e);
        if (less_nan_last(va, vb)) return true;
        if (less_nan_last(vb, va)) return false;
      }
      return false;
    };
    // Stable sort keeps equal slices in input order, so each group's head is its first
    // occurrence.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), slice_less);
    std::vector<int64_t> first, counts, inverse(static_cast<size_t>(n));
    for (size_t i = 0; i < order.size(); ++i) {
      if (i == 0 || slice_less(order[i - 1], order[i])) {
        first.push_back(order[i]);
        counts.push_back(0);
      }
      ++counts.back();
      inverse[static_cast<size_t>(order[i])] = static_cast<int64_t>(first.size()) - 1;
    }
    const int64_t u = static_cast<int64_t>(first.size());
    std::vector<int64_t> rank(static_cast<size_t>(u));  // group -> output position
    std::iota(rank.begin(), rank.end(), 0);
    if (!sorted) {
      // Output in order of first occurrence.
      std::vector<int64_t> by_first(static_cast<size_t>(u));
      std::iota(by_first.begin(), by_first.end(), 0);
      std::sort(by_first.begin(), by_first.end(), [&](int64_t a, int64_t b) {
        return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
      });
      for (int64_t j = 0; j < u; ++j)
        rank[static_cast<size_t>(by_first[static_cast<size_t>(j)])] = j;
    }
    Shape yshape = has_axis ? x.shape() : Shape{u};
    if (has_axis) yshape[axis] = u;
    Tensor y(x.dtype(), yshape), ind(DType::kInt64, {u}), inv(DType::kInt64, {n}),
        cnt(DType::kInt64, {u});
    T* yd = y.data<T>();
    for (int64_t g = 0; g < u; ++g) {
      int64_t pos = rank[static_cast<size_t>(g)];
      int64_t s = first[static_cast<size_t>(g)];
      for (int64_t e = 0; e < slice; ++e) {
        int64_t o = e / inner, in = e % inner;
        yd[(o * u + pos) * inner + in] = src[(o * n + s) * inner + in];
      }
      ind.data<int64_t>()[pos] = s;
      cnt.data<int64_t>()[pos] = counts[static_cast<size_t>(g)];
    }
    for (int64_t i = 0; i < n; ++i)
      inv.data<int64_t>()[i] = rank[static_cast<size_t>(inverse[static_cast<size_t>(i)])];
    ctx.set_output(0, std::move(y));
    ctx.set_output(1, std::move(ind));
    ctx.set_output(2, std::move(inv));
    ctx.set_output(3, std::move(cnt));
  });
}

}  // namespace

void add_gather_select_ops(std::vector<OpDef>& ops) {
  ops.push_back({"TopK", "", 1, &topk_infer, &topk_compute});
  ops.push_back({"ArgMax", "", 1, &arg_infer<true>, &arg_compute<true>});
  ops.push_back({"ArgMin", "", 1, &arg_infer<false>, &arg_compute<false>});
  ops.push_back({"Unique", "", 11, &unique_infer, &unique_compute});
}

}  // namespace lithe::ops
