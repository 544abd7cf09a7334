// Op family: quant, part 2: QLinearConv and QLinearMatMul (integer accumulation, then
// requantization). Registered through add_qlinear_ops from quant.cpp.
#include <algorithm>
#include <string>

#include "ops/quant_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using namespace quant_detail;

bool is_qlinear_int(DType t) { return t == DType::kUInt8 || t == DType::kInt8; }

void check_qlinear_dtype(const NodeAttrs& ctx, DType t, const char* name) {
  if (!is_qlinear_int(t))
    ctx.fail("input '", name, "' has type ", dtype_name(t), ", expected uint8 or int8");
}

// Checks a (scale, zero point) pair whose length must be 1 or `n` (n = 0: only 1).
// Returns the length (1 or n).
int64_t check_param_pair(const NodeAttrs& ctx, const Shape& scale, const Shape* zp,
                         const char* scale_name, const char* zp_name, int64_t n,
                         const char* what_n) {
  auto check = [&](const Shape& s, const char* name) {
    int64_t cnt = shape_numel(s);
    if (s.size() > 1 || !(cnt == 1 || (n > 0 && cnt == n))) {
      if (n > 0)
        ctx.fail("input '", name, "' has shape ", shape_str(s), ", expected a scalar or a 1-D ",
                 "tensor of length ", n, " (", what_n, ")");
      ctx.fail("input '", name, "' has shape ", shape_str(s), ", expected a scalar");
    }
    return cnt;
  };
  int64_t cs = check(scale, scale_name);
  if (zp) {
    int64_t cz = check(*zp, zp_name);
    if (cz != cs && cz != 1)
      ctx.fail("input '", zp_name, "' has ", cz, " elements but '", scale_name, "' has ", cs);
  }
  return cs;
}

// Values of an optional zero point (0 when omitted), broadcast to `n` entries.
std::vector<int64_t> zp_values(const Tensor* z, size_t n) {
  std::vector<int64_t> v = z ? zero_points(*z) : std::vector<int64_t>{0};
  if (v.size() == 1 && n > 1) v.assign(n, v[0]);
  return v;
}

std::vector<double> scale_values(const NodeAttrs& ctx, const Tensor& s, const char* name,
                                 size_t n) {
  std::vector<double> v = checked_scales(ctx, s, name);
  if (v.size() == 1 && n > 1) v.assign(n, v[0]);
  return v;
}

// Writes the requantized value: round(acc * multiplier) + y_zero_point, saturated. The
// multiplier and product are float, as in the ONNX reference and onnxruntime.
template <class Q>
Q requantize(int64_t acc, float multiplier, int64_t y_zp) {
  float v = static_cast<float>(acc) * multiplier;
  return round_saturate<Q>(static_cast<double>(v), y_zp);
}

// ---- QLinearConv ----

// Conv geometry from the attributes and the x / w shapes, validated.
struct ConvGeom {
  int64_t n = 0, c = 0, m = 0, group = 1;
  Shape in, kernel, out, strides, dilations, pad_begin;
};

ConvGeom conv_geom(const NodeAttrs& ctx, const Shape& xs, const Shape& ws) {
  if (xs.size() < 3)
    ctx.fail("input 'x' must have rank >= 3 (N, C, spatial...), got shape ", shape_str(xs));
  if (ws.size() != xs.size())
    ctx.fail("input 'w' has shape ", shape_str(ws), " but 'x' has shape ", shape_str(xs),
             "; ranks must match");
  const size_t sp = xs.size() - 2;
  ConvGeom g;
  g.n = xs[0];
  g.c = xs[1];
  g.m = ws[0];
  g.group = ctx.attr_int("group", 1);
  if (g.group < 1) ctx.fail("group must be >= 1, got ", g.group);
  if (g.c != ws[1] * g.group)
    ctx.fail("input 'x' has ", g.c, " channels but 'w' (shape ", shape_str(ws), ") with group ",
             g.group, " expects ", ws[1] * g.group);
  if (g.m % g.group != 0)
    ctx.fail("'w' has ", g.m, " output channels, not divisible by group ", g.group);
  g.in.assign(xs.begin() + 2, xs.end());
  g.kernel.assign(ws.begin() + 2, ws.end());
  std::vector<int64_t> ks = ctx.attr_ints("kernel_shape", g.kernel);
  if (ks != g.kernel)
    ctx.fail("kernel_shape ", shape_str(ks), " does not match the weight's spatial shape ",
             shape_str(g.kernel));
  for (int64_t k : g.kernel)
    if (k < 1) ctx.fail("kernel dims must be >= 1, got ", shape_str(g.kernel));
  g.strides = ctx.attr_ints("strides", Shape(sp, 1));
  g.dilations = ctx.attr_ints("dilations", Shape(sp, 1));
  std::vector<int64_t> pads = ctx.attr_ints("pads", Shape(2 * sp, 0));
  if (g.strides.size() != sp) ctx.fail("strides must have ", sp, " values, got ", g.strides.size());
  if (g.dilations.size() != sp)
    ctx.fail("dilations must have ", sp, " values, got ", g.dilations.size());
  if (pads.size() != 2 * sp) ctx.fail("pads must have ", 2 * sp, " values, got ", pads.size());
  for (size_t d = 0; d < sp; ++d) {
    if (g.strides[d] < 1) ctx.fail("strides must be >= 1, got ", shape_str(g.strides));
    if (g.dilations[d] < 1) ctx.fail("dilations must be >= 1, got ", shape_str(g.dilations));
    if (g.strides[d] > (int64_t{1} << 31) || g.dilations[d] > (int64_t{1} << 31))
      ctx.fail("strides/dilations are too large");
  }
  for (int64_t p : pads)
    if (p < 0 || p > (int64_t{1} << 31)) ctx.fail("pads must be in [0, 2^31], got ", p);
  std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  g.out.resize(sp);
  g.pad_begin.resize(sp);
  for (size_t d = 0; d < sp; ++d) {
    const int64_t eff = (g.kernel[d] - 1) * g.dilations[d] + 1;
    const int64_t in = g.in[d];
    if (auto_pad == "NOTSET" || auto_pad == "VALID") {
      int64_t pb = auto_pad == "VALID" ? 0 : pads[d];
      int64_t pe = auto_pad == "VALID" ? 0 : pads[d + sp];
      int64_t span = in + pb + pe - eff;
      if (span < 0)
        ctx.fail("the dilated kernel (", eff, ") is larger than the padded input (", in + pb + pe,
                 ") along spatial dim ", d);
      g.out[d] = span / g.strides[d] + 1;
      g.pad_begin[d] = pb;
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[d] = (in + g.strides[d] - 1) / g.strides[d];
      int64_t total = std::max<int64_t>(0, (g.out[d] - 1) * g.strides[d] + eff - in);
      g.pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else {
      ctx.fail("auto_pad '", auto_pad, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    }
  }
  return g;
}

Shape conv_out_shape(const ConvGeom& g) {
  Shape s{g.n, g.m};
  s.insert(s.end(), g.out.begin(), g.out.end());
  return s;
}

// Validates everything about a QLinearConv node that does not need values; returns the
// geometry.
ConvGeom qconv_check(const NodeAttrs& ctx, const std::vector<DType>& t,
                     const std::vector<const Shape*>& s) {
  check_qlinear_dtype(ctx, t[0], "x");
  check_qlinear_dtype(ctx, t[3], "w");
  check_scale_dtype(ctx, t[1], "x_scale");
  check_scale_dtype(ctx, t[4], "w_scale");
  check_scale_dtype(ctx, t[6], "y_scale");
  if (s[2] && t[2] != t[0])
    ctx.fail("input 'x_zero_point' has type ", dtype_name(t[2]), ", expected ", dtype_name(t[0]));
  if (s[5] && t[5] != t[3])
    ctx.fail("input 'w_zero_point' has type ", dtype_name(t[5]), ", expected ", dtype_name(t[3]));
  if (s[7]) check_qlinear_dtype(ctx, t[7], "y_zero_point");
  if (s[8] && t[8] != DType::kInt32)
    ctx.fail("input 'B' has type ", dtype_name(t[8]), ", expected int32");
  ConvGeom g = conv_geom(ctx, *s[0], *s[3]);
  check_param_pair(ctx, *s[1], s[2], "x_scale", "x_zero_point", 0, "");
  check_param_pair(ctx, *s[4], s[5], "w_scale", "w_zero_point", g.m, "output channels");
  check_param_pair(ctx, *s[6], s[7], "y_scale", "y_zero_point", 0, "");
  if (s[8] && (s[8]->size() != 1 || (*s[8])[0] != g.m))
    ctx.fail("input 'B' has shape ", shape_str(*s[8]), ", expected a 1-D tensor of length ", g.m);
  return g;
}

void infer_qconv(InferContext& ctx) {
  if (ctx.num_inputs() < 8 || ctx.num_inputs() > 9)
    ctx.fail("expected 8 or 9 inputs, got ", ctx.num_inputs());
  // The zero points are treated as optional (0 when omitted), like onnxruntime.
  for (size_t i : {0, 1, 3, 4, 6})
    if (!ctx.has_input(i)) ctx.fail("input ", i, " is required but missing");
  std::vector<DType> t(9, DType::kUndefined);
  std::vector<const Shape*> s(9, nullptr);
  for (size_t i = 0; i < 9; ++i) {
    if (!ctx.has_input(i)) continue;
    t[i] = ctx.input_dtype(i);
    s[i] = &ctx.input_shape(i);
  }
  ConvGeom g = qconv_check(ctx, t, s);
  for (size_t i : {1, 4, 6}) {
    static const char* const names[] = {"", "x_scale", "", "", "w_scale", "", "y_scale"};
    if (ctx.input_value_known(i)) checked_scales(ctx, ctx.input_value(i), names[i]);
  }
  ctx.set_output(0, s[7] ? t[7] : t[0], conv_out_shape(g));
}

void compute_qconv(ComputeContext& ctx) {
  for (size_t i : {0, 1, 3, 4, 6}) (void)ctx.input(i);  // fails if a required one is missing
  std::vector<DType> t(9, DType::kUndefined);
  std::vector<const Shape*> s(9, nullptr);
  for (size_t i = 0; i < 9; ++i) {
    if (!ctx.has_input(i)) continue;
    t[i] = ctx.input(i).dtype();
    s[i] = &ctx.input(i).shape();
  }
  ConvGeom g = qconv_check(ctx, t, s);
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(3);
  const size_t m = static_cast<size_t>(g.m);
  std::vector<double> xs = scale_values(ctx, ctx.input(1), "x_scale", 1);
  std::vector<double> ws = scale_values(ctx, ctx.input(4), "w_scale", m);
  std::vector<double> ys = scale_values(ctx, ctx.input(6), "y_scale", 1);
  std::vector<int64_t> xz = zp_values(ctx.has_input(2) ? &ctx.input(2) : nullptr, 1);
  std::vector<int64_t> wz = zp_values(ctx.has_input(5) ? &ctx.input(5) : nullptr, m);
  std::vector<int64_t> yz = zp_values(ctx.has_input(7) ? &ctx.input(7) : nullptr, 1);
  std::vector<int64_t> bias =
      ctx.has_input(8) ? ctx.input(8).to_int64_vector() : std::vector<int64_t>(m, 0);

  const int64_t w_per_m = shape_numel(w.shape()) / std::max<int64_t>(g.m, 1);
  const Q8Reader xr(x), wr(w);
  const int32_t x_zp = static_cast<int32_t>(xz[0]);

  const size_t sp = g.in.size();
  const int64_t in_size = shape_numel(g.in);
  const int64_t out_size = shape_numel(g.out);
  const int64_t k_size = shape_numel(g.kernel);
  const int64_t cpg = g.c / g.group;  // input channels per group
  const int64_t mpg = g.m / g.group;  // output channels per group
  // Kernel offsets as coordinates, decoded once.
  std::vector<int64_t> kcoord(static_cast<size_t>(k_size) * sp);
  for (int64_t k = 0; k < k_size; ++k) {
    int64_t r = k;
    for (size_t d = sp; d-- > 0;) {
      kcoord[static_cast<size_t>(k) * sp + d] = r % g.kernel[d];
      r /= g.kernel[d];
    }
  }
  std::vector<float> mult(m);
  for (size_t j = 0; j < m; ++j)
    mult[j] = static_cast<float>(xs[0]) * static_cast<float>(ws[j]) / static_cast<float>(ys[0]);

  Tensor& y = ctx.output(0);
  std::vector<int64_t> ocoord(sp), base(sp);
  visit_qint(y.dtype(), false, [&](auto tag) {
    using Q = typename decltype(tag)::type;
    Q* yp = y.data<Q>();
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t oc = 0; oc < g.m; ++oc) {
        const int64_t grp = oc / mpg;
        const int64_t w_base = oc * w_per_m;
        const int32_t w_zp = static_cast<int32_t>(wz[static_cast<size_t>(oc)]);
        Q* yo = yp + (n * g.m + oc) * out_size;
        for (int64_t o = 0; o < out_size; ++o) {
          int64_t r = o;
          for (size_t d = sp; d-- > 0;) {
            ocoord[d] = r % g.out[d];
            r /= g.out[d];
            base[d] = ocoord[d] * g.strides[d] - g.pad_begin[d];
          }
          int64_t acc = bias[static_cast<size_t>(oc)];
          for (int64_t k = 0; k < k_size; ++k) {
            // Input offset of this kernel tap, or -1 when it falls in the padding.
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < sp; ++d) {
              int64_t c = base[d] + kcoord[static_cast<size_t>(k) * sp + d] * g.dilations[d];
              if (c < 0 || c >= g.in[d]) {
                inside = false;
                break;
              }
              off = off * g.in[d] + c;
            }
            if (!inside) continue;
            for (int64_t ic = 0; ic < cpg; ++ic) {
              const int64_t xc = grp * cpg + ic;
              const int32_t xv = xr((n * g.c + xc) * in_size + off) - x_zp;
              const int32_t wv = wr(w_base + ic * k_size + k) - w_zp;
              acc += static_cast<int64_t>(xv) * wv;
            }
          }
          yo[o] = requantize<Q>(acc, mult[static_cast<size_t>(oc)], yz[0]);
        }
      }
    }
  });
}

// ---- QLinearMatMul ----

struct MatMulGeom {
  bool a_vec = false, b_vec = false;
  int64_t m = 1, k = 1, n = 1;
  Shape a_batch, b_batch, batch, out;
};

MatMulGeom matmul_geom(const NodeAttrs& ctx, const Shape& as, const Shape& bs) {
  if (as.empty() || bs.empty())
    ctx.fail("inputs 'a' and 'b' must have rank >= 1, got ", shape_str(as), " and ", shape_str(bs));
  MatMulGeom g;
  g.a_vec = as.size() == 1;
  g.b_vec = bs.size() == 1;
  Shape a = g.a_vec ? Shape{1, as[0]} : as;
  Shape b = g.b_vec ? Shape{bs[0], 1} : bs;
  g.m = a[a.size() - 2];
  g.k = a.back();
  g.n = b.back();
  if (b[b.size() - 2] != g.k)
    ctx.fail("inputs 'a' ", shape_str(as), " and 'b' ", shape_str(bs),
             " have mismatched inner dimensions");
  g.a_batch.assign(a.begin(), a.end() - 2);
  g.b_batch.assign(b.begin(), b.end() - 2);
  g.batch = broadcast_shapes(g.a_batch, g.b_batch);
  g.out = g.batch;
  if (!g.a_vec) g.out.push_back(g.m);
  if (!g.b_vec) g.out.push_back(g.n);
  return g;
}

MatMulGeom qmatmul_check(const NodeAttrs& ctx, const std::vector<DType>& t,
                         const std::vector<const Shape*>& s) {
  check_qlinear_dtype(ctx, t[0], "a");
  check_qlinear_dtype(ctx, t[3], "b");
  check_scale_dtype(ctx, t[1], "a_scale");
  check_scale_dtype(ctx, t[4], "b_scale");
  check_scale_dtype(ctx, t[6], "y_scale");
  if (s[2] && t[2] != t[0])
    ctx.fail("input 'a_zero_point' has type ", dtype_name(t[2]), ", expected ", dtype_name(t[0]));
  if (s[5] && t[5] != t[3])
    ctx.fail("input 'b_zero_point' has type ", dtype_name(t[5]), ", expected ", dtype_name(t[3]));
  if (s[7]) check_qlinear_dtype(ctx, t[7], "y_zero_point");
  MatMulGeom g = matmul_geom(ctx, *s[0], *s[3]);
  check_param_pair(ctx, *s[1], s[2], "a_scale", "a_zero_point", g.m, "rows of 'a'");
  check_param_pair(ctx, *s[4], s[5], "b_scale", "b_zero_point", g.n, "columns of 'b'");
  check_param_pair(ctx, *s[6], s[7], "y_scale", "y_zero_point", 0, "");
  return g;
}

void infer_qmatmul(InferContext& ctx) {
  if (ctx.num_inputs() != 8) ctx.fail("expected 8 inputs, got ", ctx.num_inputs());
  std::vector<DType> t(8, DType::kUndefined);
  std::vector<const Shape*> s(8, nullptr);
  for (size_t i = 0; i < 8; ++i) {
    if (!ctx.has_input(i)) {
      if (i != 2 && i != 5 && i != 7) ctx.fail("input ", i, " is required but missing");
      continue;
    }
    t[i] = ctx.input_dtype(i);
    s[i] = &ctx.input_shape(i);
  }
  MatMulGeom g = qmatmul_check(ctx, t, s);
  for (size_t i : {1, 4, 6}) {
    static const char* const names[] = {"", "a_scale", "", "", "b_scale", "", "y_scale"};
    if (ctx.input_value_known(i)) checked_scales(ctx, ctx.input_value(i), names[i]);
  }
  ctx.set_output(0, s[7] ? t[7] : t[0], g.out);
}

void compute_qmatmul(ComputeContext& ctx) {
  for (size_t i : {0, 1, 3, 4, 6}) (void)ctx.input(i);  // fails if a required one is missing
  std::vector<DType> t(8, DType::kUndefined);
  std::vector<const Shape*> s(8, nullptr);
  for (size_t i = 0; i < 8; ++i) {
    if (!ctx.has_input(i)) continue;
    t[i] = ctx.input(i).dtype();
    s[i] = &ctx.input(i).shape();
  }
  MatMulGeom g = qmatmul_check(ctx, t, s);
  const size_t m = static_cast<size_t>(g.m), n = static_cast<size_t>(g.n);
  std::vector<double> as = scale_values(ctx, ctx.input(1), "a_scale", m);
  std::vector<double> bs = scale_values(ctx, ctx.input(4), "b_scale", n);
  std::vector<double> ys = scale_values(ctx, ctx.input(6), "y_scale", 1);
  std::vector<int64_t> az = zp_values(ctx.has_input(2) ? &ctx.input(2) : nullptr, m);
  std::vector<int64_t> bz = zp_values(ctx.has_input(5) ? &ctx.input(5) : nullptr, n);
  std::vector<int64_t> yz = zp_values(ctx.has_input(7) ? &ctx.input(7) : nullptr, 1);
  const int64_t K = g.k, M = g.m, N = g.n;
  const Q8Reader ar(ctx.input(0)), br(ctx.input(3));
  std::array<std::vector<int64_t>, 2> st{broadcast_strides(g.a_batch, g.batch),
                                         broadcast_strides(g.b_batch, g.batch)};
  Tensor& y = ctx.output(0);
  visit_qint(y.dtype(), false, [&](auto tag) {
    using Q = typename decltype(tag)::type;
    Q* yp = y.data<Q>();
    for_each_broadcast<2>(g.batch, st, [&](int64_t bi, int64_t ao, int64_t bo) {
      const int64_t a_base = ao * M * K, b_base = bo * K * N;
      Q* ym = yp + bi * M * N;
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
          int64_t acc = 0;
          const int32_t a_zp = static_cast<int32_t>(az[static_cast<size_t>(i)]);
          const int32_t b_zp = static_cast<int32_t>(bz[static_cast<size_t>(j)]);
          for (int64_t kk = 0; kk < K; ++kk)
            acc += static_cast<int64_t>(ar(a_base + i * K + kk) - a_zp) *
                   (br(b_base + kk * N + j) - b_zp);
          float mult = static_cast<float>(as[static_cast<size_t>(i)]) *
                       static_cast<float>(bs[static_cast<size_t>(j)]) / static_cast<float>(ys[0]);
          ym[i * N + j] = requantize<Q>(acc, mult, yz[0]);
        }
      }
    });
  });
}

}  // namespace

void add_qlinear_ops(std::vector<OpDef>& ops) {
  ops.push_back({"QLinearConv", "", 10, infer_qconv, compute_qconv});
  ops.push_back({"QLinearMatMul", "", 10, infer_qmatmul, compute_qmatmul});
}

}  // namespace lithe::ops
