// Op family: unary. Elementwise maps (math, activations, predicates) plus Identity, Dropout,
// Cast, CastLike and Clip. See ops/op.hpp for the contract.
//
// Most ops here are one table row: a name, the first opset, the accepted element types and a
// kernel lambda. A kernel is a generic lambda over the compute type C (float for float16 and
// bfloat16, the element type otherwise); ops with attributes are written as a factory lambda
// that reads the attributes once and returns the kernel.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "ops/families.hpp"
#include "ops/unary_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {

namespace {

using elementwise::check_dtype;
using elementwise::to_elem;
using elementwise::Types;
using elementwise::visit_types;

// ---- the generic elementwise map ----

/// Output dtype and shape follow the input; the input type must be in kT. Making the kernel
/// validates the attributes at build time.
template <Types kT, bool kBoolOut, class Factory>
void infer_map(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType dt = ctx.input_dtype(0);
  check_dtype<kT>(ctx, dt, "input");
  (void)Factory{}(static_cast<const NodeAttrs&>(ctx));
  DType out = kBoolOut ? DType::kBool : dt;
  ctx.set_output_unknown(0, out);
  ctx.set_output(0, out, ctx.input_shape(0));
}

/// Applies the kernel made by Factory{}(ctx) to every element.
template <Types kT, bool kBoolOut, class Factory>
void compute_map(ComputeContext& ctx) {
  auto kernel = Factory{}(static_cast<const NodeAttrs&>(ctx));
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  visit_types<kT>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* in = x.data<T>();
    const int64_t n = x.numel();
    if constexpr (kBoolOut) {
      bool* out = y.data<bool>();
      for (int64_t i = 0; i < n; ++i) out[i] = kernel(static_cast<C>(in[i]));
    } else {
      T* out = y.data<T>();
      for (int64_t i = 0; i < n; ++i) out[i] = to_elem<T>(kernel(static_cast<C>(in[i])));
    }
  });
}

/// Wraps an attribute-free kernel as a factory.
template <class K>
struct Plain {
  K operator()(const NodeAttrs&) const { return K{}; }
};

template <Types kT, bool kBoolOut = false, class K>
OpDef plain(std::string_view name, int since, K) {
  return OpDef{name, "", since, &infer_map<kT, kBoolOut, Plain<K>>,
               &compute_map<kT, kBoolOut, Plain<K>>};
}

template <Types kT, bool kBoolOut = false, class Factory>
OpDef with_attrs(std::string_view name, int since, Factory) {
  return OpDef{name, "", since, &infer_map<kT, kBoolOut, Factory>,
               &compute_map<kT, kBoolOut, Factory>};
}

// Two's-complement negation without signed-overflow UB (INT_MIN stays INT_MIN).
template <class C>
C wrap_neg(C x) {
  using U = std::make_unsigned_t<C>;
  return static_cast<C>(static_cast<U>(U(0) - static_cast<U>(x)));
}

// log(1 + exp(x)) without overflow for large x.
template <class C>
C softplus(C x) {
  return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

// ---- Identity ----

void infer_identity(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType dt = ctx.input_dtype(0);
  ctx.set_output_unknown(0, dt);
  ctx.set_output(0, dt, ctx.input_shape(0));
}

void copy_tensor(const Tensor& from, Tensor& to) {
  if (from.nbytes()) std::memcpy(to.raw(), from.raw(), from.nbytes());
}

void compute_identity(ComputeContext& ctx) { copy_tensor(ctx.input(0), ctx.output(0)); }

// ---- Dropout ----
// Inference only: the output is the input and the mask is all ones. Training mode (opset 12+
// `training_mode` input true) draws random numbers, which lithe does not do unless the ratio
// is 0, where training mode is the identity as well.

DType dropout_mask_dtype(const NodeAttrs& ctx, DType data) {
  return ctx.opset() >= 10 ? DType::kBool : data;
}

void infer_dropout(InferContext& ctx) {
  ctx.expect_inputs(1, ctx.opset() >= 12 ? 3 : 1);
  DType dt = ctx.input_dtype(0);
  check_dtype<Types::kFloat>(ctx, dt, "data");
  if (ctx.has_input(1)) check_dtype<Types::kFloat>(ctx, ctx.input_dtype(1), "ratio");
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::kBool)
    ctx.fail("training_mode must be bool, got ", dtype_name(ctx.input_dtype(2)));
  float ratio = ctx.attr_float("ratio", 0.5f);
  if (!(ratio >= 0.0f && ratio < 1.0f)) ctx.fail("ratio ", ratio, " must be in [0, 1)");
  DType mask = dropout_mask_dtype(ctx, dt);
  ctx.set_output_unknown(0, dt);
  if (ctx.num_outputs() > 1) ctx.set_output_unknown(1, mask);
  const Shape& s = ctx.input_shape(0);
  ctx.set_output(0, dt, s);
  if (ctx.num_outputs() > 1) ctx.set_output(1, mask, s);
}

void compute_dropout(ComputeContext& ctx) {
  bool training = false;
  if (ctx.has_input(2)) {
    const Tensor& t = ctx.input(2);
    if (t.numel() != 1) ctx.fail("training_mode must be a scalar, got ", shape_str(t.shape()));
    training = t.data<bool>()[0];
  }
  if (training) {
    double ratio = 0.5;
    if (ctx.has_input(1)) {
      const Tensor& r = ctx.input(1);
      if (r.numel() != 1) ctx.fail("ratio must be a scalar, got ", shape_str(r.shape()));
      ratio = r.at_double(0);
    }
    if (ratio != 0.0)
      ctx.fail("Dropout in training mode (training_mode=true, ratio ", ratio,
               ") is random and not supported; lithe runs inference only");
  }
  copy_tensor(ctx.input(0), ctx.output(0));
  if (ctx.has_output(1)) {
    Tensor& mask = ctx.output(1);
    visit_dtype(mask.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* m = mask.data<T>();
      for (int64_t i = 0; i < mask.numel(); ++i) m[i] = to_elem<T>(1.0f);
    });
  }
}

// ---- Cast / CastLike ----

DType cast_target(const NodeAttrs& ctx) {
  const ir::Attribute* a = ctx.attr("to");
  if (!a) ctx.fail("missing required attribute 'to'");
  if (a->kind == ir::Attribute::Kind::kString) {
    // Opset 1..5 spell the type as a TensorProto.DataType name.
    static const std::pair<const char*, DType> kNames[] = {
        {"FLOAT", DType::kFloat32},    {"UINT8", DType::kUInt8},   {"INT8", DType::kInt8},
        {"UINT16", DType::kUInt16},    {"INT16", DType::kInt16},   {"INT32", DType::kInt32},
        {"INT64", DType::kInt64},      {"BOOL", DType::kBool},     {"FLOAT16", DType::kFloat16},
        {"DOUBLE", DType::kFloat64},   {"UINT32", DType::kUInt32}, {"UINT64", DType::kUInt64},
        {"BFLOAT16", DType::kBFloat16}};
    for (const auto& [n, d] : kNames)
      if (a->s == n) return d;
    if (a->s == "STRING") ctx.fail("Cast to string is not supported (lithe has no string tensors)");
    ctx.fail("attribute 'to' names an unknown or unsupported type '", a->s, "'");
  }
  if (a->kind != ir::Attribute::Kind::kInt) ctx.fail("attribute 'to' should be an int");
  if (a->i == static_cast<int64_t>(DType::kString))
    ctx.fail("Cast to string is not supported (lithe has no string tensors)");
  if (a->i <= 0 || a->i > std::numeric_limits<int32_t>::max())
    ctx.fail("attribute 'to' has unknown element type ", a->i);
  DType to = dtype_from_onnx(static_cast<int32_t>(a->i), "attribute 'to'");
  if (to == DType::kComplex64 || to == DType::kComplex128)
    ctx.fail("Cast to ", dtype_name(to), " is not supported");
  return to;
}

void check_castable(const NodeAttrs& ctx, DType from) {
  if (!elementwise::dtype_in<Types::kAny>(from))
    ctx.fail("Cast from ", dtype_name(from), " is not supported");
}

void infer_cast(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  check_castable(ctx, ctx.input_dtype(0));
  DType to = cast_target(ctx);
  ctx.set_output_unknown(0, to);
  ctx.set_output(0, to, ctx.input_shape(0));
}

void infer_cast_like(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  check_castable(ctx, ctx.input_dtype(0));
  DType to = ctx.input_dtype(1);
  check_castable(ctx, to);
  ctx.set_output_unknown(0, to);
  ctx.set_output(0, to, ctx.input_shape(0));
}

// Tensor::cast implements ONNX numeric Cast (saturating float -> int, x != 0 -> bool).
void compute_cast(ComputeContext& ctx) {
  Tensor& y = ctx.output(0);
  copy_tensor(ctx.input(0).cast(y.dtype()), y);
}

// ---- Clip ----
// Opset 1 and 6: `min`/`max` float attributes. Opset 11+: optional scalar inputs 1 and 2 of
// the input's type. Missing bounds are the type's limits; min > max gives max everywhere.

void infer_clip(InferContext& ctx) {
  ctx.expect_inputs(1, ctx.opset() >= 11 ? 3 : 1);
  DType dt = ctx.input_dtype(0);
  if (ctx.opset() >= 12) {
    check_dtype<Types::kNumeric>(ctx, dt, "input");
  } else {
    check_dtype<Types::kFloat>(ctx, dt, "input");
  }
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    if (ctx.input_dtype(i) != dt)
      ctx.fail(i == 1 ? "min" : "max", " has element type ", dtype_name(ctx.input_dtype(i)),
               ", expected the input's ", dtype_name(dt));
  }
  ctx.set_output_unknown(0, dt);
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    const Shape& s = ctx.input_shape(i);
    if (shape_numel(s) != 1)
      ctx.fail(i == 1 ? "min" : "max", " must be a scalar, got shape ", shape_str(s));
  }
  ctx.set_output(0, dt, ctx.input_shape(0));
}

void compute_clip(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  visit_types<Types::kNumeric>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    C lo = std::numeric_limits<C>::lowest();
    C hi = std::numeric_limits<C>::max();
    if constexpr (std::is_floating_point_v<C>) {
      lo = -std::numeric_limits<C>::infinity();
      hi = std::numeric_limits<C>::infinity();
    }
    if (ctx.opset() < 11) {
      if constexpr (std::is_floating_point_v<C>) {
        lo = static_cast<C>(ctx.attr_float("min", -std::numeric_limits<float>::infinity()));
        hi = static_cast<C>(ctx.attr_float("max", std::numeric_limits<float>::infinity()));
      }
    } else {
      for (size_t i = 1; i < 3; ++i) {
        if (!ctx.has_input(i)) continue;
        const Tensor& b = ctx.input(i);
        if (b.numel() != 1)
          ctx.fail(i == 1 ? "min" : "max", " must be a scalar, got shape ", shape_str(b.shape()));
        C v = static_cast<C>(b.data<T>()[0]);
        (i == 1 ? lo : hi) = v;
      }
    }
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      C v = static_cast<C>(in[i]);
      // NaN passes through (comparisons are false), as numpy.clip does.
      if (v < lo) v = lo;
      if (v > hi) v = hi;
      out[i] = to_elem<T>(v);
    }
  });
}

}  // namespace

void add_unary_ops(std::vector<OpDef>& ops) {
  using enum Types;

  // ---- math ----
  ops.push_back(plain<kNumeric>("Abs", 1, [](auto x) {
    using C = decltype(x);
    if constexpr (std::is_unsigned_v<C>) {
      return x;
    } else if constexpr (std::is_integral_v<C>) {
      return x < C(0) ? wrap_neg(x) : x;
    } else {
      return std::abs(x);
    }
  }));
  ops.push_back(plain<kSignedOrFloat>("Neg", 1, [](auto x) {
    if constexpr (std::is_integral_v<decltype(x)>) {
      return wrap_neg(x);
    } else {
      return -x;
    }
  }));
  ops.push_back(plain<kFloat>("Floor", 1, [](auto x) { return std::floor(x); }));
  ops.push_back(plain<kFloat>("Ceil", 1, [](auto x) { return std::ceil(x); }));
  // nearbyint in the default rounding mode rounds half to even, as Round requires.
  ops.push_back(plain<kFloat>("Round", 11, [](auto x) { return std::nearbyint(x); }));
  ops.push_back(plain<kFloat>("Sqrt", 1, [](auto x) { return std::sqrt(x); }));
  ops.push_back(plain<kFloat>("Reciprocal", 1, [](auto x) { return decltype(x)(1) / x; }));
  ops.push_back(plain<kFloat>("Exp", 1, [](auto x) { return std::exp(x); }));
  ops.push_back(plain<kFloat>("Log", 1, [](auto x) { return std::log(x); }));
  ops.push_back(plain<kFloat>("Sin", 7, [](auto x) { return std::sin(x); }));
  ops.push_back(plain<kFloat>("Cos", 7, [](auto x) { return std::cos(x); }));
  ops.push_back(plain<kFloat>("Tan", 7, [](auto x) { return std::tan(x); }));
  ops.push_back(plain<kFloat>("Asin", 7, [](auto x) { return std::asin(x); }));
  ops.push_back(plain<kFloat>("Acos", 7, [](auto x) { return std::acos(x); }));
  ops.push_back(plain<kFloat>("Atan", 7, [](auto x) { return std::atan(x); }));
  ops.push_back(plain<kFloat>("Sinh", 9, [](auto x) { return std::sinh(x); }));
  ops.push_back(plain<kFloat>("Cosh", 9, [](auto x) { return std::cosh(x); }));
  ops.push_back(plain<kFloat>("Asinh", 9, [](auto x) { return std::asinh(x); }));
  ops.push_back(plain<kFloat>("Acosh", 9, [](auto x) { return std::acosh(x); }));
  ops.push_back(plain<kFloat>("Atanh", 9, [](auto x) { return std::atanh(x); }));
  // Erf accepts integer inputs too; they are computed in double and rounded back.
  ops.push_back(plain<kNumeric>("Erf", 9, [](auto x) {
    if constexpr (std::is_integral_v<decltype(x)>) {
      return std::nearbyint(std::erf(static_cast<double>(x)));
    } else {
      return std::erf(x);
    }
  }));
  ops.push_back(plain<kNumeric>("Sign", 9, [](auto x) {
    using C = decltype(x);
    if constexpr (std::is_unsigned_v<C>) {
      return x > C(0) ? C(1) : C(0);
    } else {
      return x > C(0) ? C(1) : x < C(0) ? C(-1) : x;  // 0 and NaN map to themselves
    }
  }));

  // ---- predicates ----
  ops.push_back(plain<kBool>("Not", 1, [](bool x) { return !x; }));
  ops.push_back(plain<kFloat, true>("IsNaN", 9, [](auto x) { return std::isnan(x); }));
  ops.push_back(with_attrs<kFloat, true>("IsInf", 10, [](const NodeAttrs& a) {
    bool pos = a.attr_int("detect_positive", 1) != 0;
    bool neg = a.attr_int("detect_negative", 1) != 0;
    return [pos, neg](auto x) { return std::isinf(x) && (x > 0 ? pos : neg); };
  }));

  // ---- activations ----
  ops.push_back(plain<kSignedOrFloat>("Relu", 1, [](auto x) {
    using C = decltype(x);
    return x > C(0) ? x : C(0);
  }));
  ops.push_back(with_attrs<kFloat>("LeakyRelu", 1, [](const NodeAttrs& a) {
    float alpha = a.attr_float("alpha", 0.01f);
    return [alpha](auto x) {
      using C = decltype(x);
      return x >= C(0) ? x : C(alpha) * x;
    };
  }));
  ops.push_back(with_attrs<kFloat>("Elu", 1, [](const NodeAttrs& a) {
    float alpha = a.attr_float("alpha", 1.0f);
    return [alpha](auto x) {
      using C = decltype(x);
      return x >= C(0) ? x : C(alpha) * std::expm1(x);
    };
  }));
  ops.push_back(with_attrs<kFloat>("Selu", 1, [](const NodeAttrs& a) {
    float alpha = a.attr_float("alpha", 1.67326319217681884765625f);
    float gamma = a.attr_float("gamma", 1.05070102214813232421875f);
    return [alpha, gamma](auto x) {
      using C = decltype(x);
      return x > C(0) ? C(gamma) * x : C(gamma) * C(alpha) * std::expm1(x);
    };
  }));
  ops.push_back(with_attrs<kFloat>("Celu", 12, [](const NodeAttrs& a) {
    float alpha = a.attr_float("alpha", 1.0f);
    if (alpha == 0.0f) a.fail("alpha must be non-zero");
    return [alpha](auto x) {
      using C = decltype(x);
      return std::max(C(0), x) + std::min(C(0), C(alpha) * std::expm1(x / C(alpha)));
    };
  }));
  ops.push_back(plain<kFloat>("Sigmoid", 1, [](auto x) {
    using C = decltype(x);
    // Both branches only ever take exp of a non-positive number.
    if (x >= C(0)) return C(1) / (C(1) + std::exp(-x));
    C e = std::exp(x);
    return e / (C(1) + e);
  }));
  ops.push_back(with_attrs<kFloat>("HardSigmoid", 1, [](const NodeAttrs& a) {
    float alpha = a.attr_float("alpha", 0.2f);
    float beta = a.attr_float("beta", 0.5f);
    return [alpha, beta](auto x) {
      using C = decltype(x);
      return std::max(C(0), std::min(C(1), C(alpha) * x + C(beta)));
    };
  }));
  ops.push_back(plain<kFloat>("HardSwish", 14, [](auto x) {
    using C = decltype(x);
    return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
  }));
  ops.push_back(plain<kFloat>("Softplus", 1, [](auto x) { return softplus(x); }));
  ops.push_back(plain<kFloat>("Softsign", 1, [](auto x) {
    using C = decltype(x);
    return x / (C(1) + std::abs(x));
  }));
  ops.push_back(plain<kFloat>("Tanh", 1, [](auto x) { return std::tanh(x); }));
  ops.push_back(with_attrs<kFloat>("ThresholdedRelu", 10, [](const NodeAttrs& a) {
    float alpha = a.attr_float("alpha", 1.0f);
    return [alpha](auto x) {
      using C = decltype(x);
      return x > C(alpha) ? x : C(0);
    };
  }));
  // Shrink accepts every numeric type; integers are computed in double and rounded back.
  ops.push_back(with_attrs<kNumeric>("Shrink", 9, [](const NodeAttrs& a) {
    double bias = a.attr_float("bias", 0.0f);
    double lambd = a.attr_float("lambd", 0.5f);
    return [bias, lambd](auto x) {
      using C = decltype(x);
      using R = std::conditional_t<std::is_integral_v<C>, double, C>;
      R v = static_cast<R>(x);
      R r = v < R(-lambd) ? v + R(bias) : v > R(lambd) ? v - R(bias) : R(0);
      if constexpr (std::is_integral_v<C>) r = std::nearbyint(r);
      return r;
    };
  }));
  ops.push_back(plain<kFloat>("Mish", 18, [](auto x) { return x * std::tanh(softplus(x)); }));
  ops.push_back(with_attrs<kFloat>("Gelu", 20, [](const NodeAttrs& a) {
    std::string approx = a.attr_string("approximate", "none");
    if (approx != "none" && approx != "tanh")
      a.fail("attribute 'approximate' is '", approx, "', expected 'none' or 'tanh'");
    bool use_tanh = approx == "tanh";
    return [use_tanh](auto x) {
      using C = decltype(x);
      if (use_tanh) {
        const C k = static_cast<C>(0.7978845608028654);  // sqrt(2 / pi)
        return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
      }
      return C(0.5) * x * (C(1) + std::erf(x * static_cast<C>(0.7071067811865476)));
    };
  }));

  // ---- copies and conversions ----
  ops.push_back({"Identity", "", 1, &infer_identity, &compute_identity});
  ops.push_back({"Dropout", "", 1, &infer_dropout, &compute_dropout});
  ops.push_back({"Cast", "", 1, &infer_cast, &compute_cast});
  ops.push_back({"CastLike", "", 15, &infer_cast_like, &compute_cast});
  ops.push_back({"Clip", "", 1, &infer_clip, &compute_clip});
}

}  // namespace lithe::ops
