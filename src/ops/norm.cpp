// Op family: norm (BatchNormalization, InstanceNormalization, LayerNormalization,
// GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization).
// See ops/op.hpp for the contract.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

// All elements of a (small) parameter tensor as double, whatever its numeric type.
std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  visit_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<double>(static_cast<compute_t<T>>(p[i]));
  });
  return v;
}

// Writes doubles into a float tensor of any float type.
void from_doubles(const std::vector<double>& v, Tensor& out) {
  visit_float_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<T>(static_cast<compute_t<T>>(v[i]));
  });
}

void expect_float(const NodeAttrs& ctx, DType t, const char* what) {
  if (!is_float(t)) ctx.fail(what, " must be a float type, got ", dtype_name(t));
}

// `shape` with the dims flagged in `reduce` set to 1 (the shape of per-group statistics).
Shape reduced_shape(const Shape& shape, const std::vector<char>& reduce) {
  Shape r = shape;
  for (size_t i = 0; i < r.size(); ++i)
    if (reduce[i]) r[i] = 1;
  return r;
}

// Mean and (population) variance of x over the dims flagged in `reduce`, one pair per element
// of reduced_shape(). Two passes (mean, then squared deviations) in the accumulator type C:
// float for float32 and the 16-bit floats, double for float64.
template <class T, class C = compute_t<T>>
void moments(const T* x, const Shape& shape, const std::vector<char>& reduce, std::vector<C>& mean,
             std::vector<C>& var) {
  const Shape rs = reduced_shape(shape, reduce);
  const int64_t groups = shape_numel(rs);
  const int64_t total = shape_numel(shape);
  const C count = groups == 0 ? C(1) : static_cast<C>(total / groups);
  mean.assign(static_cast<size_t>(groups), C(0));
  var.assign(static_cast<size_t>(groups), C(0));
  const std::array<std::vector<int64_t>, 1> st{broadcast_strides(rs, shape)};
  for_each_broadcast<1>(shape, st, [&](int64_t i, int64_t g) {
    mean[static_cast<size_t>(g)] += static_cast<C>(x[i]);
  });
  for (auto& m : mean) m /= count;
  for_each_broadcast<1>(shape, st, [&](int64_t i, int64_t g) {
    const C d = static_cast<C>(x[i]) - mean[static_cast<size_t>(g)];
    var[static_cast<size_t>(g)] += d * d;
  });
  for (auto& v : var) v /= count;
}

// ---------------------------------------------------------------------------------------
// BatchNormalization.

struct BnDims {
  int64_t n, c, s;  // batch, channels, spatial size
};

BnDims bn_dims(const NodeAttrs& ctx, const Shape& x) {
  if (x.empty()) ctx.fail("X must have rank >= 1");
  BnDims d;
  if (x.size() == 1) {  // (C): a single sample
    d = {1, x[0], 1};
  } else {
    d.n = x[0];
    d.c = x[1];
    d.s = shape_numel(Shape(x.begin() + 2, x.end()));
  }
  return d;
}

// Whether the node computes batch statistics (training) rather than using the inputs.
bool bn_training(const NodeAttrs& ctx, size_t outputs_present) {
  if (ctx.opset() >= 14) return ctx.attr_int("training_mode", 0) != 0;
  // Before 14 the extra outputs exist only in training mode (opset < 7 also says is_test).
  if (outputs_present <= 1) return false;
  return ctx.opset() >= 7 || ctx.attr_int("is_test", 0) == 0;
}

// Parameters are per channel, or per (channel, spatial position) with spatial=0 (< opset 9).
int64_t bn_param_size(const NodeAttrs& ctx, const BnDims& d) {
  const bool spatial = ctx.opset() >= 9 || ctx.attr_int("spatial", 1) != 0;
  return spatial ? d.c : d.c * d.s;
}

void infer_batchnorm(InferContext& ctx) {
  ctx.expect_inputs(5, 5);
  const DType t = ctx.input_dtype(0);
  expect_float(ctx, t, "X");
  for (size_t i = 1; i < 5; ++i) expect_float(ctx, ctx.input_dtype(i), "scale/B/mean/var");
  // Running statistics have the mean/var type (opset 15 split it from X's).
  const DType st = ctx.opset() >= 14 ? ctx.input_dtype(3) : t;
  ctx.set_output_unknown(0, t);  // keeps dtypes if a shape below is unknown
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output_unknown(i, st);
  const Shape& x = ctx.input_shape(0);
  BnDims d = bn_dims(ctx, x);
  const int64_t ps = bn_param_size(ctx, d);
  static const char* kNames[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (size_t i = 1; i < 5; ++i) {
    const Shape& s = ctx.input_shape(i);
    if (shape_numel(s) != ps)
      ctx.fail(kNames[i], " has shape ", shape_str(s), " but ", ps,
               " elements were expected (channels of X ", shape_str(x), ")");
  }
  ctx.set_output(0, t, x);
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, st, ctx.input_shape(3));
}

template <class T>
void bn_kernel(ComputeContext& ctx, const BnDims& d, bool training, int64_t ps) {
  using C = compute_t<T>;
  const Tensor& xt = ctx.input(0);
  const T* x = xt.data<T>();
  T* y = ctx.output(0).data<T>();
  const std::vector<double> scale = to_doubles(ctx.input(1));
  const std::vector<double> bias = to_doubles(ctx.input(2));
  std::vector<double> mean = to_doubles(ctx.input(3));
  std::vector<double> var = to_doubles(ctx.input(4));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const bool per_channel = ps == d.c;
  std::vector<double> bmean, bvar;
  if (training && !per_channel) ctx.fail("training mode needs per-channel (spatial) parameters");
  if (training) {
    // Batch statistics over every dim but the channel.
    Shape s3{d.n, d.c, d.s};
    std::vector<C> m, v;
    moments<T>(x, s3, {1, 0, 1}, m, v);
    bmean.assign(m.begin(), m.end());
    bvar.assign(v.begin(), v.end());
  }
  const std::vector<double>& um = training ? bmean : mean;
  const std::vector<double>& uv = training ? bvar : var;
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t c = 0; c < d.c; ++c) {
      for (int64_t s = 0; s < d.s; ++s) {
        const size_t p = static_cast<size_t>(per_channel ? c : c * d.s + s);
        const int64_t i = (n * d.c + c) * d.s + s;
        const C inv = static_cast<C>(1.0 / std::sqrt(uv[p] + eps));
        const C v =
            (static_cast<C>(x[i]) - static_cast<C>(um[p])) * inv * static_cast<C>(scale[p]) +
            static_cast<C>(bias[p]);
        y[i] = static_cast<T>(v);
      }
    }
  }
  if (ctx.num_outputs() <= 1) return;
  if (training) {
    const double mom = ctx.attr_float("momentum", 0.9f);
    std::vector<double> rm(mean.size()), rv(var.size());
    for (size_t c = 0; c < rm.size(); ++c) {
      rm[c] = mean[c] * mom + bmean[c] * (1 - mom);
      rv[c] = var[c] * mom + bvar[c] * (1 - mom);
    }
    if (ctx.has_output(1)) from_doubles(rm, ctx.output(1));
    if (ctx.has_output(2)) from_doubles(rv, ctx.output(2));
    // Before opset 14: saved_mean, saved_var are the batch statistics.
    if (ctx.has_output(3)) from_doubles(bmean, ctx.output(3));
    if (ctx.has_output(4)) from_doubles(bvar, ctx.output(4));
  } else {
    // Inference mode: the statistics pass through unchanged.
    if (ctx.has_output(1)) from_doubles(mean, ctx.output(1));
    if (ctx.has_output(2)) from_doubles(var, ctx.output(2));
    if (ctx.has_output(3)) from_doubles(mean, ctx.output(3));
    if (ctx.has_output(4)) from_doubles(var, ctx.output(4));
  }
}

void compute_batchnorm(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  BnDims d = bn_dims(ctx, x.shape());
  const int64_t ps = bn_param_size(ctx, d);
  for (size_t i = 1; i < 5; ++i)
    if (ctx.input(i).numel() != ps)
      ctx.fail("parameter input ", i, " has ", ctx.input(i).numel(), " elements, expected ", ps);
  size_t present = 0;
  for (size_t i = 0; i < ctx.num_outputs(); ++i) present += ctx.has_output(i) ? 1 : 0;
  const bool training = bn_training(ctx, present);
  visit_float_dtype(
      x.dtype(), [&](auto tag) { bn_kernel<typename decltype(tag)::type>(ctx, d, training, ps); });
}

// ---------------------------------------------------------------------------------------
// InstanceNormalization: per (n, c) statistics over the spatial dims.

void infer_instancenorm(InferContext& ctx) {
  ctx.expect_inputs(3, 3);
  const DType t = ctx.input_dtype(0);
  expect_float(ctx, t, "input");
  ctx.set_output_unknown(0, t);
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 2) ctx.fail("input must have rank >= 2 (N, C, ...), got ", shape_str(x));
  for (size_t i = 1; i < 3; ++i)
    if (shape_numel(ctx.input_shape(i)) != x[1])
      ctx.fail(i == 1 ? "scale" : "B", " must have ", x[1], " elements (channels), got ",
               shape_str(ctx.input_shape(i)));
  ctx.set_output(0, t, x);
}

void compute_instancenorm(ComputeContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Shape& shape = xt.shape();
  if (shape.size() < 2) ctx.fail("input must have rank >= 2");
  const int64_t n = shape[0], c = shape[1];
  const int64_t s = shape_numel(Shape(shape.begin() + 2, shape.end()));
  const std::vector<double> scale = to_doubles(ctx.input(1));
  const std::vector<double> bias = to_doubles(ctx.input(2));
  if (static_cast<int64_t>(scale.size()) != c || static_cast<int64_t>(bias.size()) != c)
    ctx.fail("scale and B must have ", c, " elements");
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  visit_float_dtype(xt.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* x = xt.data<T>();
    T* y = ctx.output(0).data<T>();
    std::vector<C> mean, var;
    moments<T>(x, {n, c, s}, {0, 0, 1}, mean, var);
    for (int64_t g = 0; g < n * c; ++g) {
      const size_t ch = static_cast<size_t>(g % c);
      const C inv =
          static_cast<C>(1.0 / std::sqrt(static_cast<double>(var[static_cast<size_t>(g)]) + eps));
      const C sc = static_cast<C>(scale[ch]) * inv, b = static_cast<C>(bias[ch]);
      const C m = mean[static_cast<size_t>(g)];
      for (int64_t k = 0; k < s; ++k) {
        const int64_t i = g * s + k;
        y[i] = static_cast<T>((static_cast<C>(x[i]) - m) * sc + b);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// LayerNormalization (opset 17): statistics over dims [axis, rank).

// Checks `p` broadcasts unidirectionally to `x`.
void check_unidirectional(const NodeAttrs& ctx, const Shape& p, const Shape& x, const char* what) {
  if (p.size() > x.size())
    ctx.fail(what, " of shape ", shape_str(p), " has a higher rank than X ", shape_str(x));
  for (size_t i = 0; i < p.size(); ++i) {
    const int64_t xd = x[x.size() - p.size() + i];
    if (p[i] != 1 && p[i] != xd)
      ctx.fail(what, " of shape ", shape_str(p), " does not broadcast to X ", shape_str(x));
  }
}

DType layernorm_stash_type(const NodeAttrs& ctx) {
  const DType st = dtype_from_onnx(static_cast<int32_t>(ctx.attr_int("stash_type", 1)),
                                   "LayerNormalization stash_type");
  expect_float(ctx, st, "stash_type");
  return st;
}

void infer_layernorm(InferContext& ctx) {
  ctx.expect_inputs(2, 3);
  const DType t = ctx.input_dtype(0);
  expect_float(ctx, t, "X");
  const DType st = layernorm_stash_type(ctx);
  ctx.set_output_unknown(0, t);
  for (size_t i = 1; i < ctx.num_outputs() && i < 3; ++i) ctx.set_output_unknown(i, st);
  const Shape& x = ctx.input_shape(0);
  const int64_t axis = normalize_axis(ctx.attr_int("axis", -1), static_cast<int64_t>(x.size()));
  check_unidirectional(ctx, ctx.input_shape(1), x, "Scale");
  if (ctx.has_input(2)) check_unidirectional(ctx, ctx.input_shape(2), x, "B");
  ctx.set_output(0, t, x);
  Shape stat = x;
  for (size_t i = static_cast<size_t>(axis); i < stat.size(); ++i) stat[i] = 1;
  for (size_t i = 1; i < ctx.num_outputs() && i < 3; ++i) ctx.set_output(i, st, stat);
}

void compute_layernorm(ComputeContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Shape& shape = xt.shape();
  const int64_t axis = normalize_axis(ctx.attr_int("axis", -1), xt.rank());
  const Tensor& scale_t = ctx.input(1);
  const Tensor* bias_t = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  check_unidirectional(ctx, scale_t.shape(), shape, "Scale");
  if (bias_t) check_unidirectional(ctx, bias_t->shape(), shape, "B");
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  std::vector<char> reduce(shape.size(), 0);
  for (size_t i = static_cast<size_t>(axis); i < shape.size(); ++i) reduce[i] = 1;
  const std::vector<double> scale = to_doubles(scale_t);
  const std::vector<double> bias = bias_t ? to_doubles(*bias_t) : std::vector<double>{};
  const std::vector<int64_t> sst = broadcast_strides(scale_t.shape(), shape);
  const std::vector<int64_t> bst =
      bias_t ? broadcast_strides(bias_t->shape(), shape) : std::vector<int64_t>(shape.size(), 0);
  const std::vector<int64_t> gst = broadcast_strides(reduced_shape(shape, reduce), shape);
  visit_float_dtype(xt.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* x = xt.data<T>();
    T* y = ctx.output(0).data<T>();
    std::vector<C> mean, var;
    moments<T>(x, shape, reduce, mean, var);
    std::vector<double> inv(var.size());
    for (size_t g = 0; g < var.size(); ++g)
      inv[g] = 1.0 / std::sqrt(static_cast<double>(var[g]) + eps);
    for_each_broadcast<3>(shape, {gst, sst, bst},
                          [&](int64_t i, int64_t g, int64_t si, int64_t bi) {
                            const size_t gs = static_cast<size_t>(g);
                            C v = (static_cast<C>(x[i]) - mean[gs]) * static_cast<C>(inv[gs]) *
                                  static_cast<C>(scale[static_cast<size_t>(si)]);
                            if (bias_t) v += static_cast<C>(bias[static_cast<size_t>(bi)]);
                            y[i] = static_cast<T>(v);
                          });
    if (ctx.has_output(1))
      from_doubles(std::vector<double>(mean.begin(), mean.end()), ctx.output(1));
    if (ctx.has_output(2)) from_doubles(inv, ctx.output(2));
  });
}

// ---------------------------------------------------------------------------------------
// GroupNormalization: statistics per (n, group) over the group's channels and spatial dims.
// Opset 18 has one scale/bias per group; opset 21 one per channel.

int64_t groupnorm_groups(const NodeAttrs& ctx, int64_t c) {
  const int64_t g = ctx.attr_int("num_groups");
  if (g <= 0) ctx.fail("num_groups must be positive, got ", g);
  if (c % g != 0) ctx.fail("channels (", c, ") must be divisible by num_groups (", g, ")");
  return g;
}

// Whether scale/bias hold one value per channel (else per group); fails on other sizes.
bool groupnorm_per_channel(const NodeAttrs& ctx, int64_t n_scale, int64_t n_bias, int64_t c,
                           int64_t g) {
  if (n_scale != n_bias) ctx.fail("scale and bias must have the same size");
  if (n_scale == c) return true;
  if (ctx.opset() < 21 && n_scale == g) return false;
  ctx.fail("scale and bias must have ", ctx.opset() < 21 ? g : c, " elements, got ", n_scale);
}

void infer_groupnorm(InferContext& ctx) {
  ctx.expect_inputs(3, 3);
  const DType t = ctx.input_dtype(0);
  expect_float(ctx, t, "X");
  ctx.set_output_unknown(0, t);
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 2) ctx.fail("X must have rank >= 2 (N, C, ...), got ", shape_str(x));
  const int64_t g = groupnorm_groups(ctx, x[1]);
  groupnorm_per_channel(ctx, shape_numel(ctx.input_shape(1)), shape_numel(ctx.input_shape(2)), x[1],
                        g);
  ctx.set_output(0, t, x);
}

void compute_groupnorm(ComputeContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Shape& shape = xt.shape();
  if (shape.size() < 2) ctx.fail("X must have rank >= 2");
  const int64_t n = shape[0], c = shape[1];
  const int64_t s = shape_numel(Shape(shape.begin() + 2, shape.end()));
  const int64_t g = groupnorm_groups(ctx, c);
  const std::vector<double> scale = to_doubles(ctx.input(1));
  const std::vector<double> bias = to_doubles(ctx.input(2));
  const bool per_channel = groupnorm_per_channel(ctx, static_cast<int64_t>(scale.size()),
                                                 static_cast<int64_t>(bias.size()), c, g);
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const int64_t cg = c / g;
  visit_float_dtype(xt.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* x = xt.data<T>();
    T* y = ctx.output(0).data<T>();
    std::vector<C> mean, var;
    moments<T>(x, {n * g, cg * s}, {0, 1}, mean, var);
    for (int64_t ni = 0; ni < n; ++ni) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const size_t grp = static_cast<size_t>(ni * g + ch / cg);
        const size_t p = static_cast<size_t>(per_channel ? ch : ch / cg);
        const C inv = static_cast<C>(1.0 / std::sqrt(static_cast<double>(var[grp]) + eps));
        for (int64_t k = 0; k < s; ++k) {
          const int64_t i = (ni * c + ch) * s + k;
          y[i] =
              static_cast<T>((static_cast<C>(x[i]) - mean[grp]) * inv * static_cast<C>(scale[p]) +
                             static_cast<C>(bias[p]));
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// LRN: local response normalization across channels.

void infer_lrn(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  const DType t = ctx.input_dtype(0);
  expect_float(ctx, t, "X");
  ctx.set_output_unknown(0, t);
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 2) ctx.fail("X must have rank >= 2 (N, C, ...), got ", shape_str(x));
  if (ctx.attr_int("size") <= 0) ctx.fail("size must be positive, got ", ctx.attr_int("size"));
  ctx.set_output(0, t, x);
}

void compute_lrn(ComputeContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Shape& shape = xt.shape();
  if (shape.size() < 2) ctx.fail("X must have rank >= 2");
  const int64_t size = ctx.attr_int("size");
  if (size <= 0) ctx.fail("size must be positive, got ", size);
  const double alpha = ctx.attr_float("alpha", 1e-4f);
  const double beta = ctx.attr_float("beta", 0.75f);
  const double bias = ctx.attr_float("bias", 1.0f);
  const int64_t n = shape[0], c = shape[1];
  const int64_t s = shape_numel(Shape(shape.begin() + 2, shape.end()));
  // Window [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to the channels.
  // (Capped at c so a huge size cannot overflow the index arithmetic.)
  const int64_t lo = std::min((size - 1) / 2, shape[1]);
  const int64_t hi = std::min(size - 1 - (size - 1) / 2, shape[1]);
  visit_float_dtype(xt.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* x = xt.data<T>();
    T* y = ctx.output(0).data<T>();
    for (int64_t ni = 0; ni < n; ++ni) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t c0 = std::max<int64_t>(0, ch - lo);
        const int64_t c1 = std::min<int64_t>(c - 1, ch + hi);
        for (int64_t k = 0; k < s; ++k) {
          C sq = 0;
          for (int64_t j = c0; j <= c1; ++j) {
            const C v = static_cast<C>(x[(ni * c + j) * s + k]);
            sq += v * v;
          }
          const int64_t i = (ni * c + ch) * s + k;
          const double den = std::pow(bias + alpha / static_cast<double>(size) * sq, beta);
          y[i] = static_cast<T>(static_cast<C>(static_cast<double>(x[i]) / den));
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// MeanVarianceNormalization: (X - mean) / (std + 1e-9) over `axes` (opset 9+), or per
// (n, c) / per n with across_channels before opset 9.

struct MvnSpec {
  std::vector<char> reduce;
  bool normalize_variance = true;
};

MvnSpec mvn_spec(const NodeAttrs& ctx, const Shape& x) {
  MvnSpec m;
  const int64_t r = static_cast<int64_t>(x.size());
  m.reduce.assign(x.size(), 0);
  if (ctx.opset() < 9) {
    if (r < 2) ctx.fail("X must have rank >= 2 (N, C, ...), got ", shape_str(x));
    const bool across = ctx.attr_int("across_channels", 0) != 0;
    m.normalize_variance = ctx.attr_int("normalize_variance", 1) != 0;
    for (int64_t i = across ? 1 : 2; i < r; ++i) m.reduce[static_cast<size_t>(i)] = 1;
  } else {
    for (int64_t a : ctx.attr_ints("axes", {0, 2, 3})) {
      const size_t ax = static_cast<size_t>(normalize_axis(a, r));
      if (m.reduce[ax]) ctx.fail("axes repeats axis ", a);
      m.reduce[ax] = 1;
    }
  }
  return m;
}

void infer_mvn(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  const DType t = ctx.input_dtype(0);
  expect_float(ctx, t, "X");
  ctx.set_output_unknown(0, t);
  const Shape& x = ctx.input_shape(0);
  mvn_spec(ctx, x);
  ctx.set_output(0, t, x);
}

void compute_mvn(ComputeContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Shape& shape = xt.shape();
  const MvnSpec m = mvn_spec(ctx, shape);
  const std::vector<int64_t> gst = broadcast_strides(reduced_shape(shape, m.reduce), shape);
  visit_float_dtype(xt.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* x = xt.data<T>();
    T* y = ctx.output(0).data<T>();
    std::vector<C> mean, var;
    moments<T>(x, shape, m.reduce, mean, var);
    std::vector<C> den(var.size(), C(1));
    if (m.normalize_variance)
      for (size_t g = 0; g < var.size(); ++g) den[g] = std::sqrt(var[g]) + C(1e-9);
    for_each_broadcast<1>(shape, {gst}, [&](int64_t i, int64_t g) {
      const size_t gs = static_cast<size_t>(g);
      y[i] = static_cast<T>((static_cast<C>(x[i]) - mean[gs]) / den[gs]);
    });
  });
}

// ---------------------------------------------------------------------------------------
// LpNormalization: x / ||x||_p along one axis (p is 1 or 2).

void infer_lpnorm(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  const DType t = ctx.input_dtype(0);
  expect_float(ctx, t, "input");
  ctx.set_output_unknown(0, t);
  const Shape& x = ctx.input_shape(0);
  normalize_axis(ctx.attr_int("axis", -1), static_cast<int64_t>(x.size()));
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) ctx.fail("p must be 1 or 2, got ", p);
  ctx.set_output(0, t, x);
}

void compute_lpnorm(ComputeContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Shape& shape = xt.shape();
  const int64_t axis = normalize_axis(ctx.attr_int("axis", -1), xt.rank());
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) ctx.fail("p must be 1 or 2, got ", p);
  const int64_t len = shape[static_cast<size_t>(axis)];
  const int64_t inner = shape_numel(Shape(shape.begin() + axis + 1, shape.end()));
  const int64_t outer = shape_numel(Shape(shape.begin(), shape.begin() + axis));
  visit_float_dtype(xt.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* x = xt.data<T>();
    T* y = ctx.output(0).data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t in = 0; in < inner; ++in) {
        const int64_t base = o * len * inner + in;
        C norm = 0;
        for (int64_t k = 0; k < len; ++k) {
          const C v = static_cast<C>(x[base + k * inner]);
          norm += p == 1 ? std::abs(v) : v * v;
        }
        if (p == 2) norm = std::sqrt(norm);
        // A zero vector stays zero rather than becoming NaN.
        for (int64_t k = 0; k < len; ++k) {
          const int64_t i = base + k * inner;
          y[i] = norm == C(0) ? T(0) : static_cast<T>(static_cast<C>(x[i]) / norm);
        }
      }
    }
  });
}

}  // namespace

void add_norm_ops(std::vector<OpDef>& ops) {
  ops.push_back({"BatchNormalization", "", 1, infer_batchnorm, compute_batchnorm});
  ops.push_back({"InstanceNormalization", "", 1, infer_instancenorm, compute_instancenorm});
  ops.push_back({"LayerNormalization", "", 17, infer_layernorm, compute_layernorm});
  ops.push_back({"GroupNormalization", "", 18, infer_groupnorm, compute_groupnorm});
  ops.push_back({"LRN", "", 1, infer_lrn, compute_lrn});
  ops.push_back({"MeanVarianceNormalization", "", 1, infer_mvn, compute_mvn});
  ops.push_back({"LpNormalization", "", 1, infer_lpnorm, compute_lpnorm});
}

}  // namespace lithe::ops
