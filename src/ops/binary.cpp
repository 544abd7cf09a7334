// Op family: binary. Broadcasting elementwise ops of two inputs (arithmetic, comparisons,
// logic, bitwise), Where, and the variadic Max/Min/Sum/Mean. See ops/op.hpp for the contract.
//
// Like unary.cpp, most ops are one table row with a kernel lambda over the compute type C
// (float for float16/bfloat16); ops with attributes use a factory lambda that reads them once.
// Integer arithmetic wraps (two's complement) instead of overflowing, and integer division
// or modulo by zero fails instead of trapping.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "ops/families.hpp"
#include "ops/unary_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {

namespace {

using elementwise::check_dtype;
using elementwise::kIsInt;
using elementwise::to_elem;
using elementwise::Types;
using elementwise::visit_types;

// ---- shapes ----

enum class Rule {
  kMulti,  ///< numpy broadcast; before opset 7 the legacy `broadcast`/`axis` attributes
  kPRelu,  ///< slope broadcasts to X (unidirectional); before opset 7 a [C] slope is per-channel
};

/// Output shape and the shapes to read A and B with (B may be reshaped by legacy rules).
struct BinaryShapes {
  Shape out, a, b;
};

BinaryShapes binary_shapes(const NodeAttrs& ctx, const Shape& a, const Shape& b, Rule rule) {
  BinaryShapes s{{}, a, b};
  const int64_t ra = static_cast<int64_t>(a.size());
  const int64_t rb = static_cast<int64_t>(b.size());
  if (rule == Rule::kMulti && ctx.opset() < 7) {
    // Opset 1..6: B broadcasts to A only when broadcast=1, aligned at `axis` (default: the
    // trailing dims, which is what numpy alignment does).
    if (ctx.attr_int("broadcast", 0) == 0) {
      if (a != b)
        ctx.fail("input shapes ", shape_str(a), " and ", shape_str(b),
                 " differ and attribute broadcast is 0");
      s.out = a;
      return s;
    }
    if (ctx.has_attr("axis")) {
      int64_t axis = ctx.attr_int("axis");
      if (axis < 0) axis += ra;
      if (axis < 0 || axis > ra - rb)  // (axis + rb could overflow)
        ctx.fail("broadcast axis ", ctx.attr_int("axis"), " does not fit B of shape ", shape_str(b),
                 " into A of shape ", shape_str(a));
      s.b.assign(static_cast<size_t>(ra), 1);
      std::copy(b.begin(), b.end(), s.b.begin() + axis);
    }
    s.out = broadcast_shapes(a, s.b);
    if (s.out != a)
      ctx.fail("B of shape ", shape_str(b), " does not broadcast to A of shape ", shape_str(a));
    return s;
  }
  if (rule == Rule::kPRelu) {
    // Old models give a [C] slope for an NCHW input.
    if (ctx.opset() < 7 && rb == 1 && ra >= 2 && b[0] == a[1] && b[0] != a.back()) {
      s.b.assign(static_cast<size_t>(ra - 1), 1);
      s.b[0] = b[0];
    }
    s.out = broadcast_shapes(a, s.b);
    if (s.out != a)
      ctx.fail("slope of shape ", shape_str(b), " does not broadcast to X of shape ", shape_str(a));
    return s;
  }
  s.out = broadcast_shapes(a, b);
  return s;
}

/// Calls f(out_index, a_index, b_index) over the broadcast output.
template <class F>
void for_each_pair(const BinaryShapes& s, F&& f) {
  if (s.a == s.out && s.b == s.out) {
    const int64_t n = shape_numel(s.out);
    for (int64_t i = 0; i < n; ++i) f(i, i, i);
    return;
  }
  std::array<std::vector<int64_t>, 2> st{broadcast_strides(s.a, s.out),
                                         broadcast_strides(s.b, s.out)};
  for_each_broadcast(s.out, st, f);
}

// ---- UB-free integer arithmetic ----

// The unsigned type arithmetic on C wraps in: at least unsigned int, so that small types do
// not promote to (overflowing) signed int.
template <class C>
using wrap_t =
    std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, std::make_unsigned_t<C>>;

template <class C>
C wrap_add(C a, C b) {
  return static_cast<C>(static_cast<wrap_t<C>>(a) + static_cast<wrap_t<C>>(b));
}
template <class C>
C wrap_sub(C a, C b) {
  return static_cast<C>(static_cast<wrap_t<C>>(a) - static_cast<wrap_t<C>>(b));
}
template <class C>
C wrap_mul(C a, C b) {
  return static_cast<C>(static_cast<wrap_t<C>>(a) * static_cast<wrap_t<C>>(b));
}

template <class C>
bool is_negative(C v) {
  if constexpr (std::is_unsigned_v<C>) {
    return false;
  } else {
    return v < C(0);
  }
}

// Integer division truncating toward zero (C semantics); MIN / -1 wraps to MIN.
template <class C>
C int_div(C a, C b) {
  if (b == C(0)) fail("integer division by zero");
  if constexpr (std::is_signed_v<C>) {
    if (b == C(-1)) return static_cast<C>(wrap_sub(C(0), a));
  }
  return static_cast<C>(a / b);
}

// Remainder with the sign of the dividend (fmod=1) or of the divisor (fmod=0, Python style).
template <class C>
C int_mod(C a, C b, bool sign_of_dividend) {
  if (b == C(0)) fail("integer modulo by zero");
  if constexpr (std::is_signed_v<C>) {
    if (b == C(-1)) return C(0);  // avoids MIN % -1
  }
  C r = static_cast<C>(a % b);
  if (!sign_of_dividend && r != C(0) && is_negative(r) != is_negative(b)) r = static_cast<C>(r + b);
  return r;
}

template <class C>
C float_mod(C a, C b, bool sign_of_dividend) {
  C r = std::fmod(a, b);
  if (!sign_of_dividend && r != C(0) && (r < C(0)) != (b < C(0))) r += b;
  return r;
}

// Integer power by squaring, wrapping on overflow. Negative exponents give the truncated
// exact result: 1 for base 1, +-1 for base -1, 0 otherwise (including base 0).
template <class C, class E>
C int_pow(C base, E exp) {
  if (is_negative(exp)) {
    if (base == C(1)) return C(1);
    if constexpr (std::is_signed_v<C>) {
      if (base == C(-1)) return (exp % 2 == 0) ? C(1) : C(-1);
    }
    return C(0);
  }
  C result = C(1);
  auto e = static_cast<std::make_unsigned_t<E>>(exp);
  while (e) {
    if (e & 1u) result = wrap_mul(result, base);
    base = wrap_mul(base, base);
    e >>= 1;
  }
  return result;
}

// ---- the generic broadcasting map ----

/// Making the kernel validates the attributes at build time.
template <Types kT, bool kBoolOut, class Factory, Rule kRule = Rule::kMulti>
void infer_binary(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  DType dt = ctx.input_dtype(0);
  check_dtype<kT>(ctx, dt, "input A");
  (void)Factory{}(static_cast<const NodeAttrs&>(ctx));
  if (ctx.input_dtype(1) != dt)
    ctx.fail("input B has element type ", dtype_name(ctx.input_dtype(1)), ", expected A's ",
             dtype_name(dt));
  DType out = kBoolOut ? DType::kBool : dt;
  ctx.set_output_unknown(0, out);
  ctx.set_output(0, out, binary_shapes(ctx, ctx.input_shape(0), ctx.input_shape(1), kRule).out);
}

template <Types kT, bool kBoolOut, class Factory, Rule kRule = Rule::kMulti>
void compute_binary(ComputeContext& ctx) {
  auto kernel = Factory{}(static_cast<const NodeAttrs&>(ctx));
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  BinaryShapes s = binary_shapes(ctx, a.shape(), b.shape(), kRule);
  visit_types<kT>(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    using O = std::conditional_t<kBoolOut, bool, T>;
    O* out = y.data<O>();
    for_each_pair(s, [&](int64_t i, int64_t ia, int64_t ib) {
      out[i] = to_elem<O>(kernel(static_cast<C>(pa[ia]), static_cast<C>(pb[ib])));
    });
  });
}

template <class K>
struct Plain {
  K operator()(const NodeAttrs&) const { return K{}; }
};

template <Types kT, bool kBoolOut = false, class K>
OpDef plain(std::string_view name, int since, K) {
  return OpDef{name, "", since, &infer_binary<kT, kBoolOut, Plain<K>>,
               &compute_binary<kT, kBoolOut, Plain<K>>};
}

template <Types kT, bool kBoolOut = false, class Factory>
OpDef with_attrs(std::string_view name, int since, Factory) {
  return OpDef{name, "", since, &infer_binary<kT, kBoolOut, Factory>,
               &compute_binary<kT, kBoolOut, Factory>};
}

// ---- Pow: base and exponent may have different types (opset 12+) ----

void infer_pow(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  DType dt = ctx.input_dtype(0);
  DType et = ctx.input_dtype(1);
  check_dtype<Types::kNumeric>(ctx, dt, "base X");
  check_dtype<Types::kNumeric>(ctx, et, "exponent Y");
  if (ctx.opset() < 12 && et != dt)
    ctx.fail("exponent type ", dtype_name(et), " differs from base type ", dtype_name(dt),
             " (mixed types need opset 12)");
  ctx.set_output_unknown(0, dt);
  ctx.set_output(0, dt,
                 binary_shapes(ctx, ctx.input_shape(0), ctx.input_shape(1), Rule::kMulti).out);
}

void compute_pow(ComputeContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  BinaryShapes s = binary_shapes(ctx, a.shape(), b.shape(), Rule::kMulti);
  visit_types<Types::kNumeric>(a.dtype(), [&](auto atag) {
    using T = typename decltype(atag)::type;
    visit_types<Types::kNumeric>(b.dtype(), [&](auto btag) {
      using E = typename decltype(btag)::type;
      const T* pa = a.data<T>();
      const E* pb = b.data<E>();
      T* out = y.data<T>();
      for_each_pair(s, [&](int64_t i, int64_t ia, int64_t ib) {
        if constexpr (kIsInt<T> && kIsInt<E>) {
          out[i] = int_pow(pa[ia], pb[ib]);
        } else {
          // double keeps float32 results correctly rounded and integer bases exact.
          double r = std::pow(static_cast<double>(static_cast<compute_t<T>>(pa[ia])),
                              static_cast<double>(static_cast<compute_t<E>>(pb[ib])));
          out[i] = to_elem<T>(r);
        }
      });
    });
  });
}

// ---- BitwiseNot (unary, kept with the other bitwise ops) ----

void infer_bitwise_not(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType dt = ctx.input_dtype(0);
  check_dtype<Types::kInt>(ctx, dt, "input");
  ctx.set_output_unknown(0, dt);
  ctx.set_output(0, dt, ctx.input_shape(0));
}

void compute_bitwise_not(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  visit_types<Types::kInt>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) out[i] = static_cast<T>(~in[i]);
  });
}

// ---- Where ----

void infer_where(InferContext& ctx) {
  ctx.expect_inputs(3, 3);
  if (ctx.input_dtype(0) != DType::kBool)
    ctx.fail("condition has element type ", dtype_name(ctx.input_dtype(0)), ", expected bool");
  DType dt = ctx.input_dtype(1);
  check_dtype<Types::kAny>(ctx, dt, "X");
  if (ctx.input_dtype(2) != dt)
    ctx.fail("Y has element type ", dtype_name(ctx.input_dtype(2)), ", expected X's ",
             dtype_name(dt));
  ctx.set_output_unknown(0, dt);
  Shape s = broadcast_shapes(broadcast_shapes(ctx.input_shape(0), ctx.input_shape(1)),
                             ctx.input_shape(2));
  ctx.set_output(0, dt, s);
}

void compute_where(ComputeContext& ctx) {
  const Tensor& c = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& yv = ctx.input(2);
  Tensor& out = ctx.output(0);
  const Shape s = broadcast_shapes(broadcast_shapes(c.shape(), x.shape()), yv.shape());
  std::array<std::vector<int64_t>, 3> st{broadcast_strides(c.shape(), s),
                                         broadcast_strides(x.shape(), s),
                                         broadcast_strides(yv.shape(), s)};
  visit_types<Types::kAny>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool* pc = c.data<bool>();
    const T* px = x.data<T>();
    const T* py = yv.data<T>();
    T* po = out.data<T>();
    for_each_broadcast(s, st, [&](int64_t i, int64_t ic, int64_t ix, int64_t iy) {
      po[i] = pc[ic] ? px[ix] : py[iy];
    });
  });
}

// ---- variadic Max / Min / Sum / Mean ----

template <Types kT>
void infer_variadic(InferContext& ctx) {
  if (ctx.num_inputs() < 1) ctx.fail("expected at least one input");
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i)) ctx.fail("input ", i, " is missing");
  DType dt = ctx.input_dtype(0);
  check_dtype<kT>(ctx, dt, "input 0");
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.input_dtype(i) != dt)
      ctx.fail("input ", i, " has element type ", dtype_name(ctx.input_dtype(i)),
               ", expected input 0's ", dtype_name(dt));
  ctx.set_output_unknown(0, dt);
  Shape s = ctx.input_shape(0);
  for (size_t i = 1; i < ctx.num_inputs(); ++i) s = broadcast_shapes(s, ctx.input_shape(i));
  ctx.set_output(0, dt, s);
}

/// Folds the inputs with kernel(acc, x) in the compute type; kMean divides by the count.
template <Types kT, bool kMean, class K>
void compute_variadic(ComputeContext& ctx) {
  K kernel{};
  Tensor& y = ctx.output(0);
  Shape s = ctx.input(0).shape();
  for (size_t i = 1; i < ctx.num_inputs(); ++i) s = broadcast_shapes(s, ctx.input(i).shape());
  visit_types<kT>(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    std::vector<C> acc(static_cast<size_t>(shape_numel(s)));
    for (size_t k = 0; k < ctx.num_inputs(); ++k) {
      const Tensor& in = ctx.input(k);
      const T* p = in.data<T>();
      std::array<std::vector<int64_t>, 1> st{broadcast_strides(in.shape(), s)};
      for_each_broadcast(s, st, [&](int64_t i, int64_t j) {
        C v = static_cast<C>(p[j]);
        C& a = acc[static_cast<size_t>(i)];
        a = k == 0 ? v : kernel(a, v);
      });
    }
    T* out = y.data<T>();
    for (size_t i = 0; i < acc.size(); ++i) {
      C v = acc[i];
      if constexpr (kMean) v = v / static_cast<C>(ctx.num_inputs());
      out[i] = to_elem<T>(v);
    }
  });
}

template <bool kMax>
struct MinMax {
  template <class C>
  C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>) {
      if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<C>::quiet_NaN();
    }
    return kMax ? (b > a ? b : a) : (b < a ? b : a);
  }
};

struct Plus {
  template <class C>
  C operator()(C a, C b) const {
    return a + b;
  }
};

}  // namespace

void add_binary_ops(std::vector<OpDef>& ops) {
  using enum Types;

  // ---- arithmetic ----
  ops.push_back(plain<kNumeric>("Add", 1, [](auto a, auto b) {
    if constexpr (std::is_integral_v<decltype(a)>) {
      return wrap_add(a, b);
    } else {
      return a + b;
    }
  }));
  ops.push_back(plain<kNumeric>("Sub", 1, [](auto a, auto b) {
    if constexpr (std::is_integral_v<decltype(a)>) {
      return wrap_sub(a, b);
    } else {
      return a - b;
    }
  }));
  ops.push_back(plain<kNumeric>("Mul", 1, [](auto a, auto b) {
    if constexpr (std::is_integral_v<decltype(a)>) {
      return wrap_mul(a, b);
    } else {
      return a * b;
    }
  }));
  ops.push_back(plain<kNumeric>("Div", 1, [](auto a, auto b) {
    if constexpr (std::is_integral_v<decltype(a)>) {
      return int_div(a, b);
    } else {
      return a / b;
    }
  }));
  ops.push_back(with_attrs<kNumeric>("Mod", 10, [](const NodeAttrs& ctx) {
    int64_t fmod = ctx.attr_int("fmod", 0);
    if (fmod != 0 && fmod != 1) ctx.fail("attribute fmod is ", fmod, ", expected 0 or 1");
    return [dividend_sign = fmod == 1](auto a, auto b) {
      if constexpr (std::is_integral_v<decltype(a)>) {
        return int_mod(a, b, dividend_sign);
      } else {
        return float_mod(a, b, dividend_sign);
      }
    };
  }));
  ops.push_back({"Pow", "", 1, &infer_pow, &compute_pow});
  auto prelu = [](auto x, auto slope) {
    using C = decltype(x);
    if constexpr (std::is_unsigned_v<C>) {
      return x;
    } else if constexpr (std::is_integral_v<C>) {
      return x < C(0) ? wrap_mul(x, slope) : x;
    } else {
      return x < C(0) ? x * slope : x;
    }
  };
  ops.push_back({"PRelu", "", 1,
                 &infer_binary<kNumeric, false, Plain<decltype(prelu)>, Rule::kPRelu>,
                 &compute_binary<kNumeric, false, Plain<decltype(prelu)>, Rule::kPRelu>});

  // ---- comparisons ----
  ops.push_back(plain<kAny, true>("Equal", 1, [](auto a, auto b) { return a == b; }));
  ops.push_back(plain<kNumeric, true>("Less", 1, [](auto a, auto b) { return a < b; }));
  ops.push_back(plain<kNumeric, true>("LessOrEqual", 12, [](auto a, auto b) { return a <= b; }));
  ops.push_back(plain<kNumeric, true>("Greater", 1, [](auto a, auto b) { return a > b; }));
  ops.push_back(plain<kNumeric, true>("GreaterOrEqual", 12, [](auto a, auto b) { return a >= b; }));

  // ---- logic and bits ----
  ops.push_back(plain<kBool>("And", 1, [](bool a, bool b) { return a && b; }));
  ops.push_back(plain<kBool>("Or", 1, [](bool a, bool b) { return a || b; }));
  ops.push_back(plain<kBool>("Xor", 1, [](bool a, bool b) { return a != b; }));
  ops.push_back(with_attrs<kUnsigned>("BitShift", 11, [](const NodeAttrs& ctx) {
    std::string dir = ctx.attr_string("direction");
    if (dir != "LEFT" && dir != "RIGHT")
      ctx.fail("attribute direction is '", dir, "', expected 'LEFT' or 'RIGHT'");
    return [left = dir == "LEFT"](auto x, auto n) {
      using C = decltype(x);
      // Shifting by the bit width or more is UB in C++; every bit is shifted out instead.
      if (n >= C(sizeof(C) * 8)) return C(0);
      return static_cast<C>(left ? static_cast<wrap_t<C>>(x) << n : x >> n);
    };
  }));
  ops.push_back(plain<kInt>("BitwiseAnd", 18, [](auto a, auto b) { return decltype(a)(a & b); }));
  ops.push_back(plain<kInt>("BitwiseOr", 18, [](auto a, auto b) { return decltype(a)(a | b); }));
  ops.push_back(plain<kInt>("BitwiseXor", 18, [](auto a, auto b) { return decltype(a)(a ^ b); }));
  ops.push_back({"BitwiseNot", "", 18, &infer_bitwise_not, &compute_bitwise_not});

  // ---- selection and variadic ----
  ops.push_back({"Where", "", 9, &infer_where, &compute_where});
  ops.push_back(
      {"Max", "", 1, &infer_variadic<kNumeric>, &compute_variadic<kNumeric, false, MinMax<true>>});
  ops.push_back(
      {"Min", "", 1, &infer_variadic<kNumeric>, &compute_variadic<kNumeric, false, MinMax<false>>});
  ops.push_back({"Sum", "", 1, &infer_variadic<kFloat>, &compute_variadic<kFloat, false, Plus>});
  ops.push_back({"Mean", "", 1, &infer_variadic<kFloat>, &compute_variadic<kFloat, true, Plus>});
}

}  // namespace lithe::ops
