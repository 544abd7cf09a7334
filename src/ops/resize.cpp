// Op family: resize. See ops/op.hpp for the contract.
//
// Resize (opsets 10-19) and its deprecated alias Upsample share one N-D kernel: every
// output coordinate along every axis maps to a short list of (input index, weight) taps,
// and an output element is the tensor-product sum of its axes' taps. This follows the
// ONNX reference implementation (taps nearest to the mapped coordinate, edge-clamped,
// optional exclude_outside renormalisation, antialias filters widened by 1/scale).
// GridSample and RoiAlign live in resize_sample.cpp.
#include <algorithm>
#include <cmath>

#include "ops/families.hpp"
#include "ops/resize_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using resize_detail::cubic_coeffs;

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize
};
// kLegacy is the pre-opset-11 rule: floor when upsampling, ceil when downsampling.
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kLegacy };

struct ResizePlan {
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kAsymmetric;
  NearestMode nearest = NearestMode::kLegacy;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
  double extrapolation = 0;
  std::vector<double> scales;  // per input dim
  Shape out;
  std::vector<double> roi;  // [starts..., ends...] per input dim (tf_crop_and_resize)
};

Mode parse_mode(const NodeAttrs& ctx, bool allow_cubic) {
  std::string m = ctx.attr_string("mode", "nearest");
  if (m == "nearest") return Mode::kNearest;
  if (m == "linear" || m == "bilinear") return Mode::kLinear;
  if (m == "cubic" && allow_cubic) return Mode::kCubic;
  ctx.fail("unsupported mode '", m, "' (expected nearest, linear", allow_cubic ? ", cubic" : "",
           ")");
}

Coord parse_coord(const NodeAttrs& ctx) {
  std::string c = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  if (c == "half_pixel") return Coord::kHalfPixel;
  if (c == "half_pixel_symmetric" && ctx.opset() >= 19) return Coord::kHalfPixelSymmetric;
  if (c == "pytorch_half_pixel") return Coord::kPytorchHalfPixel;
  if (c == "align_corners") return Coord::kAlignCorners;
  if (c == "asymmetric") return Coord::kAsymmetric;
  if (c == "tf_half_pixel_for_nn") return Coord::kTfHalfPixelForNn;
  if (c == "tf_crop_and_resize") return Coord::kTfCropAndResize;
  ctx.fail("unsupported coordinate_transformation_mode '", c, "' at opset ", ctx.opset());
}

NearestMode parse_nearest(const NodeAttrs& ctx) {
  std::string n = ctx.attr_string("nearest_mode", "round_prefer_floor");
  if (n == "round_prefer_floor") return NearestMode::kRoundPreferFloor;
  if (n == "round_prefer_ceil") return NearestMode::kRoundPreferCeil;
  if (n == "floor") return NearestMode::kFloor;
  if (n == "ceil") return NearestMode::kCeil;
  ctx.fail("unsupported nearest_mode '", n, "'");
}

bool parse_flag(const NodeAttrs& ctx, const char* name) {
  int64_t v = ctx.attr_int(name, 0);
  if (v != 0 && v != 1) ctx.fail(name, " must be 0 or 1, got ", v);
  return v == 1;
}

// Fills plan.scales and plan.out from per-dim scales (output = floor(in * scale)).
void apply_scales(const NodeAttrs& ctx, const Shape& in, std::vector<double> scales,
                  ResizePlan& p) {
  if (scales.size() != in.size())
    ctx.fail("scales has ", scales.size(), " entries, expected one per input dim (", in.size(),
             ")");
  p.scales = scales;
  p.out.resize(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    double s = scales[d];
    if (!(s > 0) || !std::isfinite(s)) ctx.fail("scale ", s, " for dim ", d, " must be > 0");
    double o = std::floor(s * static_cast<double>(in[d]));
    if (o > static_cast<double>(kMaxTensorElements))
      ctx.fail("scale ", s, " makes dim ", d, " too large");
    p.out[d] = static_cast<int64_t>(o);
  }
}

// `value(i)` returns input i's tensor, or nullptr when the input is absent or empty.
template <class GetValue>
ResizePlan plan_resize(const NodeAttrs& ctx, const Shape& in, GetValue&& value, bool need_roi) {
  ResizePlan p;
  const int opset = ctx.opset();
  const size_t rank = in.size();
  if (opset < 11) {  // Resize-10: X, scales; asymmetric coordinates.
    p.mode = parse_mode(ctx, false);
    const Tensor* s = value(1);
    if (!s) ctx.fail("scales input is required");
    if (s->dtype() != DType::kFloat32) ctx.fail("scales must be float32");
    std::vector<double> sc;
    for (int64_t i = 0; i < s->numel(); ++i) sc.push_back(s->at_double(i));
    apply_scales(ctx, in, sc, p);
    return p;
  }
  p.mode = parse_mode(ctx, true);
  p.coord = parse_coord(ctx);
  p.nearest = parse_nearest(ctx);
  p.cubic_a = ctx.attr_float("cubic_coeff_a", -0.75f);
  p.exclude_outside = parse_flag(ctx, "exclude_outside");
  p.extrapolation = ctx.attr_float("extrapolation_value", 0.0f);
  std::vector<int64_t> axes;
  std::string policy = "stretch";
  if (opset >= 18) {
    p.antialias = parse_flag(ctx, "antialias");
    if (p.antialias && p.mode == Mode::kNearest)
      ctx.fail("antialias is only defined for linear and cubic modes");
    policy = ctx.attr_string("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller")
      ctx.fail("unsupported keep_aspect_ratio_policy '", policy,
               "' (expected stretch, not_larger, not_smaller)");
    if (ctx.has_attr("axes")) {
      std::vector<char> seen(rank, 0);
      for (int64_t a : ctx.attr_ints("axes")) {
        int64_t n = normalize_axis(a, static_cast<int64_t>(rank));
        if (seen[static_cast<size_t>(n)]) ctx.fail("axis ", a, " appears twice in axes");
        seen[static_cast<size_t>(n)] = 1;
        axes.push_back(n);
      }
    }
  }
  if (axes.empty())
    for (size_t d = 0; d < rank; ++d) axes.push_back(static_cast<int64_t>(d));
  const size_t na = axes.size();

  const Tensor* scales = value(2);
  const Tensor* sizes = value(3);
  if ((scales != nullptr) == (sizes != nullptr))
    ctx.fail("exactly one of scales and sizes must be given (non-empty)");
  if (scales) {
    if (scales->dtype() != DType::kFloat32) ctx.fail("scales must be float32");
    if (static_cast<size_t>(scales->numel()) != na)
      ctx.fail("scales has ", scales->numel(), " entries, expected ", na);
    std::vector<double> sc(rank, 1.0);
    for (size_t i = 0; i < na; ++i)
      sc[static_cast<size_t>(axes[i])] = scales->at_double(static_cast<int64_t>(i));
    apply_scales(ctx, in, sc, p);
  } else {
    if (sizes->dtype() != DType::kInt64) ctx.fail("sizes must be int64");
    if (static_cast<size_t>(sizes->numel()) != na)
      ctx.fail("sizes has ", sizes->numel(), " entries, expected ", na);
    p.out = in;
    p.scales.assign(rank, 1.0);
    for (size_t i = 0; i < na; ++i) {
      size_t d = static_cast<size_t>(axes[i]);
      int64_t sz = sizes->at_int(static_cast<int64_t>(i));
      if (sz < 0) ctx.fail("sizes[", i, "] = ", sz, " must be >= 0");
      if (in[d] == 0 && sz != 0) ctx.fail("cannot resize an empty dim ", d, " to ", sz);
      p.out[d] = sz;
      p.scales[d] = in[d] == 0 ? 1.0 : static_cast<double>(sz) / static_cast<double>(in[d]);
    }
    if (policy != "stretch") {
      // One scale for every resized axis, chosen so the result fits inside / covers sizes.
      double s = p.scales[static_cast<size_t>(axes[0])];
      for (int64_t a : axes) {
        double v = p.scales[static_cast<size_t>(a)];
        s = policy == "not_larger" ? std::min(s, v) : std::max(s, v);
      }
      for (int64_t a : axes) {
        size_t d = static_cast<size_t>(a);
        p.scales[d] = s;
        double o = std::floor(s * static_cast<double>(in[d]) + 0.5);  // round half up
        if (o > static_cast<double>(kMaxTensorElements)) ctx.fail("output dim too large");
        p.out[d] = static_cast<int64_t>(o);
      }
    }
  }
  if (p.coord == Coord::kTfCropAndResize && need_roi) {
    p.roi.assign(2 * rank, 0.0);
    for (size_t d = 0; d < rank; ++d) p.roi[rank + d] = 1.0;
    const Tensor* roi = value(1);
    if (!roi) ctx.fail("roi input is required for tf_crop_and_resize");
    if (!is_float(roi->dtype())) ctx.fail("roi must be a float tensor");
    if (static_cast<size_t>(roi->numel()) != 2 * na)
      ctx.fail("roi has ", roi->numel(), " entries, expected ", 2 * na);
    for (size_t i = 0; i < na; ++i) {
      size_t d = static_cast<size_t>(axes[i]);
      p.roi[d] = roi->at_double(static_cast<int64_t>(i));
      p.roi[rank + d] = roi->at_double(static_cast<int64_t>(na + i));
    }
  }
  return p;
}

struct Tap {
  int64_t index;
  double weight;
};

double cubic_kernel(double x, double a) {
  x = std::abs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// Fills `taps` with the (input index, weight) pairs that make output coordinate `xi` of
// axis `d`; returns false when the coordinate maps outside the input (tf_crop_and_resize,
// or an empty axis) and takes the extrapolation value. Computed per coordinate rather than
// tabulated so memory stays O(taps) whatever the output size.
bool coord_taps(const ResizePlan& p, size_t d, int64_t in_len, int64_t out_len, int64_t xi,
                std::vector<Tap>& taps) {
  taps.clear();
  if (in_len == 0) return false;
  // Coordinates are mapped in float32, as ONNX Runtime and PyTorch do: the rounding
  // decides ties in nearest mode (e.g. (8 + 0.5) / 1.7f - 0.5 lands exactly on 4.5).
  const float scale = static_cast<float>(p.scales[d]);
  const float in = static_cast<float>(in_len);
  const float outf = static_cast<float>(out_len);
  // An axis left at its size maps straight through (as in ONNX Runtime), even under
  // tf_half_pixel_for_nn, whose half-pixel shift would otherwise move a scale-1 axis.
  if (in_len == out_len && scale == 1.0f && p.coord != Coord::kTfCropAndResize) {
    taps.push_back({xi, 1.0});
    return true;
  }
  const float x = static_cast<float>(xi);
  float xf = 0;
  switch (p.coord) {
    case Coord::kHalfPixel:
      xf = (x + 0.5f) / scale - 0.5f;
      break;
    case Coord::kHalfPixelSymmetric: {
      float adjustment = outf / (scale * in);
      float offset = in / 2 * (1 - adjustment);
      xf = offset + (x + 0.5f) / scale - 0.5f;
      break;
    }
    case Coord::kPytorchHalfPixel:
      xf = out_len > 1 ? (x + 0.5f) / scale - 0.5f : 0.f;
      break;
    case Coord::kAlignCorners: {
      // The reference divides by the unrounded output length (scale * in), which differs
      // from out_len when scale * in is not an integer.
      const float len = scale * in;
      xf = len == 1 ? 0.f : x * (in - 1) / (len - 1);
      break;
    }
    case Coord::kAsymmetric:
      xf = x / scale;
      break;
    case Coord::kTfHalfPixelForNn:
      xf = (x + 0.5f) / scale;
      break;
    case Coord::kTfCropAndResize: {
      const size_t r = p.scales.size();
      const float start = static_cast<float>(p.roi[d]), end = static_cast<float>(p.roi[r + d]);
      const float len = scale * in;  // unrounded, as in the reference
      xf = len == 1 ? 0.5f * (start + end) * (in - 1)
                    : start * (in - 1) + x * (end - start) * (in - 1) / (len - 1);
      if (!(xf >= 0 && xf <= in - 1)) return false;
      break;
    }
  }
  double xo = xf;
  if (!std::isfinite(xo)) xo = 0;
  // Keep far-out coordinates (hostile scales) from overflowing the index arithmetic.
  xo = std::clamp(xo, -2.0 - 4.0 * in_len, 4.0 * in_len + 2.0);
  const bool integral = xo == std::floor(xo);
  if (p.mode == Mode::kNearest) {
    int64_t fl = static_cast<int64_t>(std::floor(xo));
    double r = xo - std::floor(xo);
    int64_t idx = fl;
    if (!integral) {
      switch (p.nearest) {
        case NearestMode::kRoundPreferFloor:
          idx = r <= 0.5 ? fl : fl + 1;
          break;
        case NearestMode::kRoundPreferCeil:
          idx = r < 0.5 ? fl : fl + 1;
          break;
        case NearestMode::kFloor:
          idx = fl;
          break;
        case NearestMode::kCeil:
          idx = fl + 1;
          break;
        case NearestMode::kLegacy:
          idx = scale < 1 ? fl + 1 : fl;
          break;
      }
    }
    taps.push_back({std::clamp<int64_t>(idx, 0, in_len - 1), 1.0});
    return true;
  }
  // The taps are the n input positions nearest xo, preferring the left one, so the
  // fraction past the left-centre tap lies in (0, 1].
  const int64_t i0 = integral ? static_cast<int64_t>(xo) - 1 : static_cast<int64_t>(std::floor(xo));
  const double r = xo - static_cast<double>(i0);
  thread_local std::vector<Tap> raw;  // reused: this runs once per output element
  raw.clear();
  if (p.antialias && scale < 1) {
    // Filters stretched by 1/scale so downsampling averages every covered input.
    const double s = scale;
    const bool lin = p.mode == Mode::kLinear;
    int64_t start = static_cast<int64_t>(std::floor((lin ? -1.0 : -2.0) / s)) + 1;
    const int64_t end = 2 - start;  // taps at offsets [start, end) from i0
    double sum = 0;
    for (int64_t k = start; k < end; ++k) {
      double arg = s * (static_cast<double>(k) - r);
      double w = lin ? std::clamp(1 - std::abs(arg), 0.0, 1.0) : cubic_kernel(arg, p.cubic_a);
      raw.push_back({i0 + k, w});
      sum += w;
    }
    if (sum != 0)
      for (Tap& t : raw) t.weight /= sum;
  } else if (p.mode == Mode::kLinear) {
    raw.push_back({i0, 1 - r});
    raw.push_back({i0 + 1, r});
  } else {
    double c[4];
    cubic_coeffs(r, p.cubic_a, c);
    for (int k = 0; k < 4; ++k) raw.push_back({i0 - 1 + k, c[k]});
  }
  if (p.exclude_outside) {
    double sum = 0;
    for (Tap& t : raw) {
      if (t.index < 0 || t.index >= in_len) t.weight = 0;
      sum += t.weight;
    }
    if (sum != 0)
      for (Tap& t : raw) t.weight /= sum;
  }
  for (Tap t : raw) {
    if (t.weight == 0) continue;
    taps.push_back({std::clamp<int64_t>(t.index, 0, in_len - 1), t.weight});
  }
  return true;
}

void run_resize(const ResizePlan& p, const Tensor& x, Tensor& y) {
  const Shape& in = x.shape();
  const size_t rank = in.size();
  const std::vector<int64_t> istr = strides_of(in);
  const int64_t n = shape_numel(p.out);
  if (n == 0) return;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    std::vector<int64_t> oi(rank, 0), ti(rank, 0);
    // Each axis's taps for its current output coordinate; an axis is recomputed only when
    // its coordinate changes (the innermost every element, outer ones rarely).
    std::vector<std::vector<Tap>> cur(rank);
    std::vector<char> inside(rank, 1);
    for (size_t d = 0; d < rank; ++d) inside[d] = coord_taps(p, d, in[d], p.out[d], 0, cur[d]);
    for (int64_t o = 0; o < n; ++o) {
      bool extrap = false, empty = false;
      for (size_t d = 0; d < rank; ++d) {
        if (!inside[d]) extrap = true;
        if (cur[d].empty()) empty = true;  // every weight was zero
      }
      double acc = 0;
      if (extrap) {
        acc = p.extrapolation;
      } else if (!empty) {
        // Tensor-product sum over the taps of every axis.
        std::fill(ti.begin(), ti.end(), 0);
        while (true) {
          double w = 1;
          int64_t off = 0;
          for (size_t d = 0; d < rank; ++d) {
            const Tap& t = cur[d][static_cast<size_t>(ti[d])];
            w *= t.weight;
            off += t.index * istr[d];
          }
          acc += w * static_cast<double>(static_cast<compute_t<T>>(src[off]));
          size_t d = rank;
          while (d-- > 0) {
            if (++ti[d] < static_cast<int64_t>(cur[d].size())) break;
            ti[d] = 0;
          }
          if (d == static_cast<size_t>(-1)) break;
        }
      }
      dst[o] = from_double<T>(acc);
      for (size_t d = rank; d-- > 0;) {
        const bool more = ++oi[d] < p.out[d];
        if (!more) oi[d] = 0;
        inside[d] = coord_taps(p, d, in[d], p.out[d], oi[d], cur[d]);
        if (more) break;
      }
    }
  });
}

// ---------------------------------------------------------------- Resize

void resize_infer(InferContext& ctx) {
  if (ctx.opset() < 11)
    ctx.expect_inputs(2, 2);
  else
    ctx.expect_inputs(1, 4);
  ctx.set_output_unknown(0, ctx.input_dtype(0));  // the dtype stands if the shape must wait
  const Shape& in = ctx.input_shape(0);
  ResizePlan p = plan_resize(
      ctx, in,
      [&](size_t i) -> const Tensor* {
        if (!ctx.has_input(i)) return nullptr;
        // Empty scales/sizes count as absent; their shape says so without the value.
        if (ctx.input_rank(i) == 1 && ctx.input_shape(i)[0] == 0) return nullptr;
        return &ctx.input_value(i);
      },
      false);
  ctx.set_output(0, ctx.input_dtype(0), p.out);
}

void resize_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  ResizePlan p = plan_resize(
      ctx, x.shape(),
      [&](size_t i) -> const Tensor* {
        if (!ctx.has_input(i) || ctx.input(i).numel() == 0) return nullptr;
        return &ctx.input(i);
      },
      true);
  run_resize(p, x, ctx.output(0));
}

// ---------------------------------------------------------------- Upsample

ResizePlan plan_upsample(const NodeAttrs& ctx, const Shape& in, const Tensor* scales_input) {
  ResizePlan p;
  p.mode = parse_mode(ctx, false);
  std::vector<double> sc;
  if (ctx.opset() < 9) {
    for (float f : ctx.attr_floats("scales")) sc.push_back(f);
  } else {
    if (!scales_input) ctx.fail("scales input is required from opset 9");
    if (scales_input->dtype() != DType::kFloat32) ctx.fail("scales must be float32");
    for (int64_t i = 0; i < scales_input->numel(); ++i) sc.push_back(scales_input->at_double(i));
  }
  apply_scales(ctx, in, sc, p);
  return p;
}

void upsample_infer(InferContext& ctx) {
  if (ctx.opset() < 9)
    ctx.expect_inputs(1, 1);
  else
    ctx.expect_inputs(2, 2);
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  const Shape& in = ctx.input_shape(0);
  ResizePlan p = plan_upsample(ctx, in, ctx.opset() < 9 ? nullptr : &ctx.input_value(1));
  ctx.set_output(0, ctx.input_dtype(0), p.out);
}

void upsample_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  ResizePlan p = plan_upsample(ctx, x.shape(), ctx.opset() < 9 ? nullptr : &ctx.input(1));
  run_resize(p, x, ctx.output(0));
}

}  // namespace

ResizeMapping resize_mapping(const ir::Node& node, const Shape& in,
                             const std::vector<const Tensor*>& inputs) {
  NodeAttrs ctx(node);
  auto value = [&](size_t i) -> const Tensor* {
    return i < inputs.size() && inputs[i] && inputs[i]->numel() > 0 ? inputs[i] : nullptr;
  };
  const bool upsample = node.op_type == "Upsample";
  ResizePlan p = upsample ? plan_upsample(ctx, in, ctx.opset() < 9 ? nullptr : value(1))
                          : plan_resize(ctx, in, value, true);
  ResizeMapping m;
  m.nearest = p.mode == Mode::kNearest;
  m.linear = p.mode == Mode::kLinear;
  m.out = p.out;
  m.taps.resize(in.size());
  std::vector<Tap> taps;
  for (size_t d = 0; d < in.size(); ++d)
    for (int64_t xi = 0; xi < p.out[d]; ++xi) {
      m.taps[d].emplace_back();
      if (!coord_taps(p, d, in[d], p.out[d], xi, taps)) continue;
      for (const Tap& t : taps) m.taps[d].back().emplace_back(t.index, t.weight);
    }
  return m;
}

void add_resize_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Resize", "", 10, &resize_infer, &resize_compute});
  ops.push_back({"Upsample", "", 7, &upsample_infer, &upsample_compute});
  add_resize_sample_ops(ops);
  add_qresize_ops(ops);
}

}  // namespace lithe::ops
