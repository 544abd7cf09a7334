// Op family: misc (NonMaxSuppression, Det, the random generators here; the signal ops
// live in misc_signal.cpp). See ops/op.hpp for the contract.
#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <random>

#include "ops/families.hpp"
#include "ops/misc_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using namespace misc_detail;

// ---- NonMaxSuppression ----

struct NmsShapes {
  int64_t batches = 0, classes = 0, boxes = 0;
};

NmsShapes nms_check(const NodeAttrs& ctx, DType bt, const Shape& b, DType st, const Shape& s) {
  if (!is_float(bt)) ctx.fail("input 'boxes' must be float, got ", dtype_name(bt));
  if (st != bt)
    ctx.fail("input 'scores' has type ", dtype_name(st), " but 'boxes' has ", dtype_name(bt));
  if (b.size() != 3 || b[2] != 4)
    ctx.fail("input 'boxes' must have shape [batches, boxes, 4], got ", shape_str(b));
  if (s.size() != 3 || s[0] != b[0] || s[2] != b[1])
    ctx.fail("input 'scores' must have shape [", b[0], ", classes, ", b[1], "], got ",
             shape_str(s));
  int64_t cpb = ctx.attr_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) ctx.fail("center_point_box must be 0 or 1, got ", cpb);
  return {b[0], s[1], b[1]};
}

void infer_nms(InferContext& ctx) {
  ctx.expect_inputs(2, 5);
  nms_check(ctx, ctx.input_dtype(0), ctx.input_shape(0), ctx.input_dtype(1), ctx.input_shape(1));
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::kInt64)
    ctx.fail("input 'max_output_boxes_per_class' must be int64, got ",
             dtype_name(ctx.input_dtype(2)));
  for (size_t i : {2, 3, 4})
    if (ctx.has_input(i))
      expect_scalar(ctx, ctx.input_shape(i),
                    i == 2   ? "max_output_boxes_per_class"
                    : i == 3 ? "iou_threshold"
                             : "score_threshold");
  ctx.set_output_unknown(0, DType::kInt64);
}

// Box as (y1, x1, y2, x2) with y1 <= y2, x1 <= x2.
struct Box {
  double y1, x1, y2, x2;
};

Box make_box(const double* c, bool center) {
  if (center) {  // [x_center, y_center, width, height]
    double hw = c[2] / 2, hh = c[3] / 2;
    return {c[1] - hh, c[0] - hw, c[1] + hh, c[0] + hw};
  }
  return {std::min(c[0], c[2]), std::min(c[1], c[3]), std::max(c[0], c[2]), std::max(c[1], c[3])};
}

double iou(const Box& a, const Box& b) {
  double area_a = (a.y2 - a.y1) * (a.x2 - a.x1);
  double area_b = (b.y2 - b.y1) * (b.x2 - b.x1);
  if (!(area_a > 0) || !(area_b > 0)) return 0;
  double ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  double iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  if (!(ih > 0) || !(iw > 0)) return 0;
  double inter = ih * iw;
  return inter / (area_a + area_b - inter);
}

void compute_nms(ComputeContext& ctx) {
  const Tensor& bt = ctx.input(0);
  const Tensor& st = ctx.input(1);
  NmsShapes sh = nms_check(ctx, bt.dtype(), bt.shape(), st.dtype(), st.shape());
  int64_t max_out = 0;
  double iou_thr = 0;
  bool has_score_thr = false;
  double score_thr = 0;
  if (ctx.has_input(2)) max_out = scalar_int(ctx, ctx.input(2), "max_output_boxes_per_class");
  if (ctx.has_input(3)) iou_thr = scalar_double(ctx, ctx.input(3), "iou_threshold");
  if (ctx.has_input(4)) {
    has_score_thr = true;
    score_thr = scalar_double(ctx, ctx.input(4), "score_threshold");
    if (std::isnan(score_thr)) ctx.fail("score_threshold is NaN");
  }
  if (!(iou_thr >= 0 && iou_thr <= 1)) ctx.fail("iou_threshold must be in [0, 1], got ", iou_thr);
  if (max_out < 0) max_out = 0;
  const bool center = ctx.attr_int("center_point_box", 0) == 1;

  const std::vector<double> boxes = [&] {
    std::vector<double> v(static_cast<size_t>(bt.numel()));
    for (int64_t i = 0; i < bt.numel(); ++i) v[static_cast<size_t>(i)] = bt.at_double(i);
    return v;
  }();
  std::vector<int64_t> selected_flat;
  std::vector<size_t> order;
  std::vector<Box> kept;
  for (int64_t b = 0; b < sh.batches; ++b) {
    for (int64_t c = 0; c < sh.classes; ++c) {
      const int64_t score_base = (b * sh.classes + c) * sh.boxes;
      std::vector<double> sc(static_cast<size_t>(sh.boxes));
      order.clear();
      for (int64_t i = 0; i < sh.boxes; ++i) {
        sc[static_cast<size_t>(i)] = st.at_double(score_base + i);
        // NaN scores never pass a threshold and are never selected.
        if (std::isnan(sc[static_cast<size_t>(i)])) continue;
        if (has_score_thr && !(sc[static_cast<size_t>(i)] > score_thr)) continue;
        order.push_back(static_cast<size_t>(i));
      }
      // Highest score first; ties keep the lower box index first.
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t x, size_t y) { return sc[x] > sc[y]; });
      kept.clear();
      int64_t count = 0;
      for (size_t i : order) {
        if (count >= max_out) break;
        Box cand = make_box(&boxes[(static_cast<size_t>(b * sh.boxes) + i) * 4], center);
        bool suppressed = false;
        for (const Box& k : kept)
          if (iou(cand, k) > iou_thr) {
            suppressed = true;
            break;
          }
        if (suppressed) continue;
        kept.push_back(cand);
        selected_flat.insert(selected_flat.end(), {b, c, static_cast<int64_t>(i)});
        ++count;
      }
    }
  }
  Tensor out(DType::kInt64, {static_cast<int64_t>(selected_flat.size() / 3), 3});
  std::copy(selected_flat.begin(), selected_flat.end(), out.data<int64_t>());
  ctx.set_output(0, std::move(out));
}

// ---- Det ----

void infer_det(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType t = ctx.input_dtype(0);
  if (!is_float(t)) ctx.fail("input 'X' must be float, got ", dtype_name(t));
  const Shape& s = ctx.input_shape(0);
  if (s.size() < 2 || s[s.size() - 1] != s[s.size() - 2])
    ctx.fail("input 'X' must have shape [*, M, M], got ", shape_str(s));
  ctx.set_output(0, t, Shape(s.begin(), s.end() - 2));
}

// Determinant by LU decomposition with partial pivoting, in double.
double determinant(std::vector<double>& a, int64_t n) {
  double det = 1;
  for (int64_t c = 0; c < n; ++c) {
    int64_t piv = c;
    for (int64_t r = c + 1; r < n; ++r)
      if (std::abs(a[static_cast<size_t>(r * n + c)]) >
          std::abs(a[static_cast<size_t>(piv * n + c)]))
        piv = r;
    double p = a[static_cast<size_t>(piv * n + c)];
    if (p == 0) return 0;
    if (piv != c) {
      for (int64_t k = 0; k < n; ++k)
        std::swap(a[static_cast<size_t>(piv * n + k)], a[static_cast<size_t>(c * n + k)]);
      det = -det;
    }
    det *= p;
    for (int64_t r = c + 1; r < n; ++r) {
      double f = a[static_cast<size_t>(r * n + c)] / p;
      if (f == 0) continue;
      for (int64_t k = c; k < n; ++k)
        a[static_cast<size_t>(r * n + k)] -= f * a[static_cast<size_t>(c * n + k)];
    }
  }
  return det;
}

void compute_det(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t n = x.rank() >= 2 ? x.dim(x.rank() - 1) : 0;
  const int64_t mats = y.numel();
  std::vector<double> a(static_cast<size_t>(n * n));
  with_writer(y, [&](auto put) {
    for (int64_t m = 0; m < mats; ++m) {
      for (int64_t i = 0; i < n * n; ++i) a[static_cast<size_t>(i)] = x.at_double(m * n * n + i);
      put(m, determinant(a, n));
    }
  });
}

// ---- Random generators ----
// Non-deterministic in ONNX; here a std::mt19937 seeded from the `seed` attribute (a fixed
// default without one) so runs are reproducible.

std::mt19937 make_rng(const NodeAttrs& ctx) {
  if (!ctx.has_attr("seed")) return std::mt19937(5489u);
  return std::mt19937(std::bit_cast<uint32_t>(ctx.attr_float("seed")));
}

DType random_out_dtype(const NodeAttrs& ctx, DType like) {
  DType t = ctx.has_attr("dtype") ? dtype_attr(ctx, "dtype", ctx.attr_int("dtype")) : like;
  if (!is_float(t))
    ctx.fail("output element type must be float16, bfloat16, float or double, got ", dtype_name(t));
  return t;
}

Shape random_shape_attr(const NodeAttrs& ctx) {
  Shape s = ctx.attr_ints("shape");
  if (s.size() > static_cast<size_t>(kMaxRank))
    ctx.fail("shape has rank ", s.size(), ", more than ", kMaxRank);
  for (int64_t d : s)
    if (d < 0) ctx.fail("shape ", shape_str(s), " has a negative dim");
  return s;
}

void infer_random(InferContext& ctx) {
  ctx.expect_inputs(0, 0);
  ctx.set_output(0, random_out_dtype(ctx, DType::kFloat32), random_shape_attr(ctx));
}

void infer_random_like(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.set_output(0, random_out_dtype(ctx, ctx.input_dtype(0)), ctx.input_shape(0));
}

template <bool kNormal>
void compute_random(ComputeContext& ctx) {
  Tensor& y = ctx.output(0);
  std::mt19937 rng = make_rng(ctx);
  const int64_t count = y.numel();
  if constexpr (kNormal) {
    double mean = ctx.attr_float("mean", 0.0f), scale = ctx.attr_float("scale", 1.0f);
    if (!std::isfinite(mean) || !std::isfinite(scale) || scale < 0)
      ctx.fail("mean must be finite and scale finite and >= 0, got ", mean, ", ", scale);
    std::normal_distribution<double> dist(0.0, 1.0);
    with_writer(y, [&](auto put) {
      for (int64_t i = 0; i < count; ++i) put(i, mean + scale * dist(rng));
    });
  } else {
    double low = ctx.attr_float("low", 0.0f), high = ctx.attr_float("high", 1.0f);
    if (!std::isfinite(low) || !std::isfinite(high) || low > high)
      ctx.fail("low and high must be finite with low <= high, got ", low, ", ", high);
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    with_writer(y, [&](auto put) {
      for (int64_t i = 0; i < count; ++i) put(i, low + (high - low) * dist(rng));
    });
  }
}

void infer_bernoulli(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType in = ctx.input_dtype(0);
  if (!is_float(in)) ctx.fail("input must be float, got ", dtype_name(in));
  DType out = ctx.has_attr("dtype") ? dtype_attr(ctx, "dtype", ctx.attr_int("dtype")) : in;
  ctx.set_output(0, out, ctx.input_shape(0));
}

void compute_bernoulli(ComputeContext& ctx) {
  const Tensor& p = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::mt19937 rng = make_rng(ctx);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  with_writer(y, [&](auto put) {
    for (int64_t i = 0; i < p.numel(); ++i) {
      double prob = p.at_double(i);
      if (!(prob >= 0 && prob <= 1))
        ctx.fail("input probabilities must be in [0, 1], got ", prob, " at index ", i);
      put(i, dist(rng) < prob ? 1.0 : 0.0);
    }
  });
}

}  // namespace

void add_misc_ops(std::vector<OpDef>& ops) {
  ops.push_back({"NonMaxSuppression", "", 10, infer_nms, compute_nms});
  ops.push_back({"Det", "", 11, infer_det, compute_det});
  ops.push_back({"RandomUniform", "", 1, infer_random, compute_random<false>});
  ops.push_back({"RandomNormal", "", 1, infer_random, compute_random<true>});
  ops.push_back({"RandomUniformLike", "", 1, infer_random_like, compute_random<false>});
  ops.push_back({"RandomNormalLike", "", 1, infer_random_like, compute_random<true>});
  ops.push_back({"Bernoulli", "", 15, infer_bernoulli, compute_bernoulli});
  add_misc_signal_ops(ops);
}

}  // namespace lithe::ops
