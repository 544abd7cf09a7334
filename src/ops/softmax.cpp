// Op family: softmax. Softmax, LogSoftmax and Hardmax. See ops/op.hpp for the contract.
//
// Before opset 13 these ops coerce the input to 2D at `axis` (default 1) and normalize each
// row of prod(dims[axis:]) elements; from opset 13 they normalize along the single dim `axis`
// (default -1). Both reduce to rows of n elements spaced `inner` apart.
#include <cmath>
#include <vector>

#include "ops/families.hpp"
#include "ops/unary_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {

namespace {

using elementwise::check_dtype;
using elementwise::Types;
using elementwise::visit_types;

/// The input seen as [outer, n, inner], normalized along n.
struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
};

Rows rows_of(const NodeAttrs& ctx, const Shape& s) {
  const int64_t rank = static_cast<int64_t>(s.size());
  const bool legacy = ctx.opset() < 13;
  int64_t axis = ctx.attr_int("axis", legacy ? 1 : -1);
  if (rank == 0) ctx.fail("input must have rank >= 1, got a scalar");
  axis = normalize_axis(axis, rank);
  Rows r;
  for (int64_t d = 0; d < axis; ++d) r.outer *= s[static_cast<size_t>(d)];
  if (legacy) {
    for (int64_t d = axis; d < rank; ++d) r.n *= s[static_cast<size_t>(d)];
  } else {
    r.n = s[static_cast<size_t>(axis)];
    for (int64_t d = axis + 1; d < rank; ++d) r.inner *= s[static_cast<size_t>(d)];
  }
  return r;
}

void infer_softmax(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType dt = ctx.input_dtype(0);
  check_dtype<Types::kFloat>(ctx, dt, "input");
  ctx.set_output_unknown(0, dt);
  const Shape& s = ctx.input_shape(0);
  rows_of(ctx, s);  // validates the axis
  ctx.set_output(0, dt, s);
}

enum class Kind { kSoftmax, kLogSoftmax, kHardmax };

template <Kind kKind>
void compute_softmax(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const Rows r = rows_of(ctx, x.shape());
  visit_types<Types::kFloat>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    std::vector<C> row(static_cast<size_t>(r.n));
    for (int64_t o = 0; o < r.outer; ++o) {
      for (int64_t i = 0; i < r.inner; ++i) {
        const int64_t base = o * r.n * r.inner + i;
        if (r.n == 0) continue;
        for (int64_t k = 0; k < r.n; ++k)
          row[static_cast<size_t>(k)] = static_cast<C>(in[base + k * r.inner]);
        // The max is subtracted so exp never overflows; Hardmax needs its (first) index.
        int64_t arg = 0;
        for (int64_t k = 1; k < r.n; ++k)
          if (row[static_cast<size_t>(k)] > row[static_cast<size_t>(arg)]) arg = k;
        const C mx = row[static_cast<size_t>(arg)];
        if constexpr (kKind == Kind::kHardmax) {
          for (int64_t k = 0; k < r.n; ++k) out[base + k * r.inner] = T(k == arg ? C(1) : C(0));
        } else {
          double sum = 0;
          for (int64_t k = 0; k < r.n; ++k)
            sum += static_cast<double>(std::exp(row[static_cast<size_t>(k)] - mx));
          if constexpr (kKind == Kind::kSoftmax) {
            for (int64_t k = 0; k < r.n; ++k)
              out[base + k * r.inner] = T(static_cast<C>(
                  static_cast<double>(std::exp(row[static_cast<size_t>(k)] - mx)) / sum));
          } else {
            const C log_sum = static_cast<C>(std::log(sum));
            for (int64_t k = 0; k < r.n; ++k)
              out[base + k * r.inner] = T(row[static_cast<size_t>(k)] - mx - log_sum);
          }
        }
      }
    }
  });
}

}  // namespace

void add_softmax_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Softmax", "", 1, &infer_softmax, &compute_softmax<Kind::kSoftmax>});
  ops.push_back({"LogSoftmax", "", 1, &infer_softmax, &compute_softmax<Kind::kLogSoftmax>});
  ops.push_back({"Hardmax", "", 1, &infer_softmax, &compute_softmax<Kind::kHardmax>});
}

}  // namespace lithe::ops
