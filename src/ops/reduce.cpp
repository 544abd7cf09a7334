// Op family: reduce. See ops/op.hpp for the contract.
//
// All ten Reduce* ops share one driver: it resolves the axes (attribute or input depending
// on the op and opset), computes the output shape, and walks every output element's group
// of input elements. Each op only supplies how a group folds into one value.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

enum class ReduceKind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };


// The resolved reduction: which dims are reduced and the output shape.
struct ReducePlan {
  std::vector<char> reduced;  // per input dim
  Shape out_shape;
};

ReducePlan make_plan(const NodeAttrs& attrs, const Shape& in, const std::vector<int64_t>& axes,
                     bool noop_with_empty_axes) {
  const int64_t rank = static_cast<int64_t>(in.size());
  int64_t keepdims = attrs.attr_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) attrs.fail("keepdims must be 0 or 1, got ", keepdims);
  ReducePlan p;
  p.reduced.assign(in.size(), 0);
  if (axes.empty()) {
    if (!noop_with_empty_axes) p.reduced.assign(in.size(), 1);
  } else {
    for (int64_t a : axes) {
      int64_t n = normalize_axis(a, rank);
      if (p.reduced[static_cast<size_t>(n)]) attrs.fail("axis ", a, " appears twice in axes");
      p.reduced[static_cast<size_t>(n)] = 1;
    }
  }
  for (size_t d = 0; d < in.size(); ++d) {
    if (!p.reduced[d])
      p.out_shape.push_back(in[d]);
    else if (keepdims)
      p.out_shape.push_back(1);
  }
  return p;
}

// Folds one group of elements. `each(f)` calls f(value) for every element of the group.
template <class T, class Each>
T fold_group(ReduceKind kind, int64_t count, const Each& each) {
  using C = compute_t<T>;
  constexpr bool kFloat = std::is_floating_point_v<C>;
  // Floats accumulate in double. Integers accumulate in uint64, where overflow is defined,
  // and the final narrowing wraps like arithmetic in the element type would.
  using A = std::conditional_t<kFloat, double, uint64_t>;
  auto to_acc = [](C v, bool abs) -> A {
    if constexpr (kFloat) {
      return abs ? std::abs(static_cast<double>(v)) : static_cast<double>(v);
    } else if constexpr (std::is_signed_v<C>) {
      A a = static_cast<A>(static_cast<int64_t>(v));
      return abs && v < 0 ? A(0) - a : a;
    } else {
      return static_cast<A>(v);
    }
  };
  switch (kind) {
    case ReduceKind::kSum:
    case ReduceKind::kL1:
    case ReduceKind::kSumSquare: {
      A acc = 0;
      each([&](C v) {
        A a = to_acc(v, kind == ReduceKind::kL1);
        if (kind == ReduceKind::kSumSquare) a = a * a;
        acc += a;
      });
      return static_cast<T>(static_cast<C>(acc));
    }
    case ReduceKind::kProd: {
      A acc = 1;
      each([&](C v) { acc *= to_acc(v, false); });
      return static_cast<T>(static_cast<C>(acc));
    }
    case ReduceKind::kMax:
    case ReduceKind::kMin: {
      bool is_max = kind == ReduceKind::kMax;
      C acc;
      if constexpr (kFloat) {
        acc = is_max ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::infinity();
      } else {
        acc = is_max ? std::numeric_limits<C>::lowest() : std::numeric_limits<C>::max();
      }
      bool nan = false;
      each([&](C v) {
        if constexpr (kFloat) {
          if (std::isnan(v)) nan = true;
        }
        if (is_max ? v > acc : v < acc) acc = v;
      });
      if constexpr (kFloat) {
        if (nan) acc = std::numeric_limits<C>::quiet_NaN();
      }
      return static_cast<T>(acc);
    }
    case ReduceKind::kMean: {
      double acc = 0;
      each([&](C v) { acc += static_cast<double>(v); });
      return from_double<T>(count == 0 ? std::numeric_limits<double>::quiet_NaN()
                                       : acc / static_cast<double>(count));
    }
    case ReduceKind::kL2: {
      double acc = 0;
      each([&](C v) { acc += static_cast<double>(v) * static_cast<double>(v); });
      return from_double<T>(std::sqrt(acc));
    }
    case ReduceKind::kLogSum: {
      double acc = 0;
      each([&](C v) { acc += static_cast<double>(v); });
      return from_double<T>(std::log(acc));
    }
    case ReduceKind::kLogSumExp: {
      // Shift by the maximum so large inputs do not overflow exp().
      double mx = -std::numeric_limits<double>::infinity();
      each([&](C v) { mx = std::max(mx, static_cast<double>(v)); });
      if (std::isinf(mx)) return from_double<T>(mx);
      double acc = 0;
      each([&](C v) { acc += std::exp(static_cast<double>(v) - mx); });
      return from_double<T>(mx + std::log(acc));
    }
  }
  return T{};
}

// Runs the reduction described by `plan` from `in` into `out`.
void run_reduce(ReduceKind kind, const ReducePlan& plan, const Tensor& in, Tensor& out) {
  const Shape& shape = in.shape();
  const std::vector<int64_t> strides = strides_of(shape);
  Shape kept_dims, red_dims;
  std::vector<int64_t> kept_strides, red_strides;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (plan.reduced[d]) {
      red_dims.push_back(shape[d]);
      red_strides.push_back(strides[d]);
    } else {
      kept_dims.push_back(shape[d]);
      kept_strides.push_back(strides[d]);
    }
  }
  const int64_t group = shape_numel(red_dims);
  const int64_t n_out = shape_numel(kept_dims);
  visit_dtype(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    std::vector<int64_t> kidx(kept_dims.size(), 0);
    std::vector<int64_t> ridx(red_dims.size(), 0);
    int64_t base = 0;
    for (int64_t o = 0; o < n_out; ++o) {
      auto each = [&](auto&& f) {
        if (group == 0) return;
        std::fill(ridx.begin(), ridx.end(), 0);
        int64_t off = base;
        for (int64_t g = 0; g < group; ++g) {
          f(static_cast<C>(src[off]));
          for (size_t d = red_dims.size(); d-- > 0;) {
            off += red_strides[d];
            if (++ridx[d] < red_dims[d]) break;
            off -= red_strides[d] * red_dims[d];
            ridx[d] = 0;
          }
        }
      };
      dst[o] = fold_group<T>(kind, group, each);
      for (size_t d = kept_dims.size(); d-- > 0;) {
        base += kept_strides[d];
        if (++kidx[d] < kept_dims[d]) break;
        base -= kept_strides[d] * kept_dims[d];
        kidx[d] = 0;
      }
    }
  });
}

// Resolves axes and the plan for either context; `axes_input_since` is the opset from
// which axes is input 1.
template <class Ctx, class GetAxesValue>
ReducePlan plan_for(const Ctx& ctx, const Shape& in, int axes_input_since,
                    GetAxesValue&& axes_value) {
  std::vector<int64_t> axes;
  bool noop = false;
  if (ctx.opset() < axes_input_since) {
    axes = ctx.attr_ints("axes", {});
    if (ctx.num_inputs() > 1)
      ctx.fail("expected 1 input before opset ", axes_input_since, ", got ", ctx.num_inputs());
  } else {
    if (ctx.has_attr("axes"))
      ctx.fail("attribute 'axes' is not allowed from opset ", axes_input_since, "; use input 1");
    int64_t n = ctx.attr_int("noop_with_empty_axes", 0);
    if (n != 0 && n != 1) ctx.fail("noop_with_empty_axes must be 0 or 1, got ", n);
    noop = n == 1;
    if (ctx.has_input(1)) {
      const Tensor& t = axes_value();
      if (t.dtype() != DType::kInt64)
        ctx.fail("axes input must be int64, got ", dtype_name(t.dtype()));
      if (t.rank() > 1) ctx.fail("axes input must be 1-D, got shape ", shape_str(t.shape()));
      axes = t.to_int64_vector();
    }
  }
  return make_plan(ctx, in, axes, noop);
}

template <ReduceKind K, int AxesInputSince>
void reduce_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 2);
  DType t = ctx.input_dtype(0);
  if (t == DType::kBool && K != ReduceKind::kMax && K != ReduceKind::kMin)
    ctx.fail("bool input is only allowed for ReduceMax/ReduceMin");
  ctx.set_output_unknown(0, t);  // the dtype stands even if the shape must wait
  const Shape& in = ctx.input_shape(0);
  ReducePlan p =
      plan_for(ctx, in, AxesInputSince, [&]() -> const Tensor& { return ctx.input_value(1); });
  ctx.set_output(0, t, p.out_shape);
}

template <ReduceKind K, int AxesInputSince>
void reduce_compute(ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  ReducePlan p =
      plan_for(ctx, in.shape(), AxesInputSince, [&]() -> const Tensor& { return ctx.input(1); });
  run_reduce(K, p, in, ctx.output(0));
}

template <ReduceKind K, int AxesInputSince>
OpDef reduce_def(std::string_view name) {
  return OpDef{name, "", 1, &reduce_infer<K, AxesInputSince>, &reduce_compute<K, AxesInputSince>};
}

}  // namespace

void add_reduce_ops(std::vector<OpDef>& ops) {
  ops.push_back(reduce_def<ReduceKind::kSum, 13>("ReduceSum"));
  ops.push_back(reduce_def<ReduceKind::kMean, 18>("ReduceMean"));
  ops.push_back(reduce_def<ReduceKind::kMax, 18>("ReduceMax"));
  ops.push_back(reduce_def<ReduceKind::kMin, 18>("ReduceMin"));
  ops.push_back(reduce_def<ReduceKind::kProd, 18>("ReduceProd"));
  ops.push_back(reduce_def<ReduceKind::kL1, 18>("ReduceL1"));
  ops.push_back(reduce_def<ReduceKind::kL2, 18>("ReduceL2"));
  ops.push_back(reduce_def<ReduceKind::kLogSum, 18>("ReduceLogSum"));
  ops.push_back(reduce_def<ReduceKind::kLogSumExp, 18>("ReduceLogSumExp"));
  ops.push_back(reduce_def<ReduceKind::kSumSquare, 18>("ReduceSumSquare"));
}

}  // namespace lithe::ops
