// Op family: resize (part). Sampling at arbitrary points: GridSample and RoiAlign.
// Registered from add_resize_ops in resize.cpp. Both follow the ONNX reference
// implementations (which mirror PyTorch grid_sample and the ORT/Caffe2 RoiAlign).
#include <algorithm>
#include <array>
#include <cmath>

#include "ops/resize_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {


// ---------------------------------------------------------------- GridSample

enum class GsMode { kLinear, kNearest, kCubic };
enum class GsPad { kZeros, kBorder, kReflection };

struct GsPlan {
  GsMode mode;
  GsPad pad;
  bool align_corners;
  Shape out;
};

GsPlan plan_grid_sample(const NodeAttrs& ctx, const Shape& x, const Shape& grid) {
  GsPlan p;
  std::string m = ctx.attr_string("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  // Opset 20 renamed bilinear/bicubic to linear/cubic; both spellings mean the same.
  if (m == "bilinear" || m == "linear")
    p.mode = GsMode::kLinear;
  else if (m == "nearest")
    p.mode = GsMode::kNearest;
  else if (m == "bicubic" || m == "cubic")
    p.mode = GsMode::kCubic;
  else
    ctx.fail("unsupported mode '", m, "' (expected linear/bilinear, nearest, cubic/bicubic)");
  std::string pad = ctx.attr_string("padding_mode", "zeros");
  if (pad == "zeros")
    p.pad = GsPad::kZeros;
  else if (pad == "border")
    p.pad = GsPad::kBorder;
  else if (pad == "reflection")
    p.pad = GsPad::kReflection;
  else
    ctx.fail("unsupported padding_mode '", pad, "' (expected zeros, border, reflection)");
  int64_t ac = ctx.attr_int("align_corners", 0);
  if (ac != 0 && ac != 1) ctx.fail("align_corners must be 0 or 1, got ", ac);
  p.align_corners = ac == 1;
  if (x.size() < 3) ctx.fail("X must have rank >= 3 (N, C, spatial...), got ", x.size());
  const size_t r = x.size() - 2;
  if (ctx.opset() < 20 && r != 2) ctx.fail("GridSample before opset 20 takes 4-D input");
  if (grid.size() != r + 2 || grid.back() != static_cast<int64_t>(r))
    ctx.fail("grid shape ", shape_str(grid), " must be (N, spatial_out..., ", r, ")");
  if (grid[0] != x[0]) ctx.fail("grid batch ", grid[0], " differs from X batch ", x[0]);
  p.out = {x[0], x[1]};
  p.out.insert(p.out.end(), grid.begin() + 1, grid.end() - 1);
  return p;
}

void grid_sample_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  if (!is_float(ctx.input_dtype(0)) || !is_float(ctx.input_dtype(1)))
    ctx.fail("X and grid must be float tensors");
  ctx.set_output_unknown(0, ctx.input_dtype(0));  // the dtype stands if the shape must wait
  GsPlan p = plan_grid_sample(ctx, ctx.input_shape(0), ctx.input_shape(1));
  ctx.set_output(0, ctx.input_dtype(0), p.out);
}

// Reflects x into [lo, hi] like PyTorch's reflect_coordinates.
double gs_reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (!(range > 0)) return lo;
  if (x < lo) {
    double dx = lo - x;
    double n = std::floor(dx / range);
    double r = dx - n * range;
    x = std::fmod(n, 2.0) == 0 ? lo + r : hi - r;
  } else if (x > hi) {
    double dx = x - hi;
    double n = std::floor(dx / range);
    double r = dx - n * range;
    x = std::fmod(n, 2.0) == 0 ? hi - r : lo + r;
  }
  return std::clamp(x, lo, hi);
}

void gs_cubic(double t, double c[4]) {
  const double a = -0.75;
  t = std::abs(t);
  c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
  c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
  c[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
}

void grid_sample_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  GsPlan p = plan_grid_sample(ctx, x.shape(), grid.shape());
  Tensor& y = ctx.output(0);
  const size_t r = x.shape().size() - 2;
  const int64_t N = x.dim(0), C = x.dim(1);
  Shape sp(x.shape().begin() + 2, x.shape().end());
  const int64_t in_plane = shape_numel(sp);
  const int64_t out_plane = shape_numel(Shape(p.out.begin() + 2, p.out.end()));
  const std::vector<int64_t> sstr = strides_of(sp);
  std::vector<double> lo(r), hi(r);
  for (size_t d = 0; d < r; ++d) {
    lo[d] = p.align_corners ? 0.0 : -0.5;
    hi[d] = p.align_corners ? static_cast<double>(sp[d]) - 1 : static_cast<double>(sp[d]) - 0.5;
  }
  // Index into one spatial dim under the padding mode; -1 reads as zero.
  auto fetch_index = [&](int64_t i, size_t d) -> int64_t {
    const int64_t n = sp[d];
    if (n == 0) return -1;
    switch (p.pad) {
      case GsPad::kZeros:
        return i >= 0 && i < n ? i : -1;
      case GsPad::kBorder:
        return std::clamp<int64_t>(i, 0, n - 1);
      case GsPad::kReflection: {
        double f = gs_reflect(static_cast<double>(i), lo[d], hi[d]);
        return std::clamp<int64_t>(static_cast<int64_t>(f), 0, n - 1);
      }
    }
    return -1;
  };
  const int taps = p.mode == GsMode::kCubic ? 4 : p.mode == GsMode::kLinear ? 2 : 1;
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    std::vector<double> coord(r);
    std::vector<std::array<int64_t, 4>> idx(r);
    std::vector<std::array<double, 4>> w(r);
    std::vector<int> ti(r);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t o = 0; o < out_plane; ++o) {
        const int64_t g = (n * out_plane + o) * static_cast<int64_t>(r);
        for (size_t d = 0; d < r; ++d) {
          // The grid lists coordinates innermost dim first (x, y, ...).
          double nv = grid.at_double(g + static_cast<int64_t>(r - 1 - d));
          const double len = static_cast<double>(sp[d]);
          double v = p.align_corners ? (nv + 1) / 2 * (len - 1) : ((nv + 1) * len - 1) / 2;
          if (std::isnan(v)) v = lo[d] - 10;  // reads padding
          if (p.mode == GsMode::kNearest) v = r == 3 ? std::round(v) : std::nearbyint(v);
          // Out-of-range coordinates are clamped or reflected; cubic with border padding (as
          // in PyTorch and ONNX Runtime) clamps each of its four taps instead.
          const bool tap_clamp = p.mode == GsMode::kCubic && p.pad == GsPad::kBorder;
          if (!tap_clamp && (v < lo[d] || v > hi[d])) {
            if (p.pad == GsPad::kBorder) v = std::clamp(v, 0.0, std::max(len - 1, 0.0));
            if (p.pad == GsPad::kReflection) v = gs_reflect(v, lo[d], hi[d]);
          }
          // Far outside only reads padding; bounding it keeps the casts defined.
          v = std::clamp(v, -8.0, len + 8.0);
          coord[d] = v;
          if (p.mode == GsMode::kNearest) {
            idx[d][0] = fetch_index(static_cast<int64_t>(v), d);
            w[d][0] = 1;
          } else {
            const double fl = std::floor(v);
            const double t = v - fl;
            const int64_t base = static_cast<int64_t>(fl) - (p.mode == GsMode::kCubic ? 1 : 0);
            if (p.mode == GsMode::kLinear) {
              w[d][0] = 1 - t;
              w[d][1] = t;
            } else {
              double c[4];
              gs_cubic(t, c);
              for (int k = 0; k < 4; ++k) w[d][static_cast<size_t>(k)] = c[k];
            }
            for (int k = 0; k < taps; ++k)
              idx[d][static_cast<size_t>(k)] = fetch_index(base + k, d);
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          const T* plane = src + (n * C + c) * in_plane;
          double acc = 0;
          std::fill(ti.begin(), ti.end(), 0);
          while (true) {
            double ww = 1;
            int64_t off = 0;
            bool zero = false;
            for (size_t d = 0; d < r; ++d) {
              size_t k = static_cast<size_t>(ti[d]);
              ww *= w[d][k];
              if (idx[d][k] < 0) zero = true;
              off += idx[d][k] * sstr[d];
            }
            if (!zero && ww != 0)
              acc += ww * static_cast<double>(static_cast<compute_t<T>>(plane[off]));
            size_t d = r;
            while (d-- > 0) {
              if (++ti[d] < taps) break;
              ti[d] = 0;
            }
            if (d == static_cast<size_t>(-1)) break;
          }
          dst[(n * C + c) * out_plane + o] = from_double<T>(acc);
        }
      }
    }
  });
}

// ---------------------------------------------------------------- RoiAlign

struct RoiPlan {
  bool max_mode;
  bool half_pixel;
  int64_t oh, ow, sampling;
  double spatial_scale;
  Shape out;
};

// Bound on bilinear samples per output bin (a hostile roi could otherwise ask for billions).
constexpr int64_t kMaxRoiSamples = int64_t{1} << 20;

RoiPlan plan_roi_align(const NodeAttrs& ctx, const Shape& x, const Shape& rois, const Shape& bidx) {
  RoiPlan p;
  std::string mode = ctx.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") ctx.fail("unsupported mode '", mode, "' (avg or max)");
  p.max_mode = mode == "max";
  p.half_pixel = false;
  if (ctx.opset() >= 16) {
    std::string c = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
    if (c != "half_pixel" && c != "output_half_pixel")
      ctx.fail("unsupported coordinate_transformation_mode '", c,
               "' (half_pixel or output_half_pixel)");
    p.half_pixel = c == "half_pixel";
  }
  p.oh = ctx.attr_int("output_height", 1);
  p.ow = ctx.attr_int("output_width", 1);
  p.sampling = ctx.attr_int("sampling_ratio", 0);
  p.spatial_scale = ctx.attr_float("spatial_scale", 1.0f);
  if (p.oh <= 0 || p.ow <= 0) ctx.fail("output_height/output_width must be > 0");
  if (p.sampling < 0 || p.sampling > 4096) ctx.fail("sampling_ratio must be in [0, 4096]");
  if (!std::isfinite(p.spatial_scale)) ctx.fail("spatial_scale must be finite");
  if (x.size() != 4) ctx.fail("X must be 4-D (N, C, H, W), got rank ", x.size());
  if (rois.size() != 2 || rois[1] != 4) ctx.fail("rois must have shape (num_rois, 4)");
  if (bidx.size() != 1 || bidx[0] != rois[0])
    ctx.fail("batch_indices must have shape (", rois[0], ")");
  p.out = {rois[0], x[1], p.oh, p.ow};
  return p;
}

void roi_align_infer(InferContext& ctx) {
  ctx.expect_inputs(3, 3);
  if (!is_float(ctx.input_dtype(0))) ctx.fail("X must be a float tensor");
  if (ctx.input_dtype(1) != ctx.input_dtype(0)) ctx.fail("rois must have X's element type");
  if (ctx.input_dtype(2) != DType::kInt64) ctx.fail("batch_indices must be int64");
  ctx.set_output_unknown(0, ctx.input_dtype(0));
  RoiPlan p = plan_roi_align(ctx, ctx.input_shape(0), ctx.input_shape(1), ctx.input_shape(2));
  ctx.set_output(0, ctx.input_dtype(0), p.out);
}

void roi_align_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const Tensor& bidx = ctx.input(2);
  RoiPlan p = plan_roi_align(ctx, x.shape(), rois.shape(), bidx.shape());
  Tensor& y = ctx.output(0);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t R = rois.dim(0);
  struct Sample {
    int64_t pos[4];
    double w[4];
  };
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    const int64_t* bi = bidx.data<int64_t>();
    for (int64_t n = 0; n < R; ++n) {
      const int64_t b = bi[n];
      if (b < 0 || b >= N) ctx.fail("batch index ", b, " of roi ", n, " is out of [0, ", N, ")");
      // Geometry is computed in the element type (float for float data), like ONNX Runtime:
      // the rounding decides how many samples ceil(bin size) gives.
      using F = compute_t<T>;
      const F offset = p.half_pixel ? F(0.5) : F(0);
      const F scale = static_cast<F>(p.spatial_scale);
      const T* roi = rois.data<T>() + n * 4;
      const F x0 = static_cast<F>(roi[0]) * scale - offset;
      const F y0 = static_cast<F>(roi[1]) * scale - offset;
      const F x1 = static_cast<F>(roi[2]) * scale - offset;
      const F y1 = static_cast<F>(roi[3]) * scale - offset;
      if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1))
        ctx.fail("roi ", n, " has a non-finite coordinate");
      F rw = x1 - x0, rh = y1 - y0;
      if (!p.half_pixel) {  // force malformed rois to 1x1
        rw = std::max(rw, F(1));
        rh = std::max(rh, F(1));
      }
      const F bh = rh / static_cast<F>(p.oh);
      const F bw = rw / static_cast<F>(p.ow);
      // A reversed roi (negative bin size) samples nothing.
      const double gh_d =
          p.sampling > 0 ? static_cast<double>(p.sampling) : std::max(std::ceil(bh), F(0));
      const double gw_d =
          p.sampling > 0 ? static_cast<double>(p.sampling) : std::max(std::ceil(bw), F(0));
      const double limit = static_cast<double>(kMaxRoiSamples);
      if (gh_d > limit || gw_d > limit || gh_d * gw_d > limit)
        ctx.fail("roi ", n, " needs ", gh_d * gw_d, " samples per bin (limit ", kMaxRoiSamples,
                 ")");
      const int64_t gh = std::max<int64_t>(static_cast<int64_t>(gh_d), 0);
      const int64_t gw = std::max<int64_t>(static_cast<int64_t>(gw_d), 0);
      const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
      for (int64_t ph = 0; ph < p.oh; ++ph) {
        for (int64_t pw = 0; pw < p.ow; ++pw) {
          // The bilinear samples of this bin, shared by every channel.
          std::vector<Sample> samples;
          for (int64_t iy = 0; iy < gh; ++iy) {
            const double yy = y0 + static_cast<F>(ph) * bh +
                              (static_cast<F>(iy) + F(0.5)) * bh / static_cast<F>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              const double xx = x0 + static_cast<F>(pw) * bw +
                                (static_cast<F>(ix) + F(0.5)) * bw / static_cast<F>(gw);
              Sample s{{0, 0, 0, 0}, {0, 0, 0, 0}};
              if (yy < -1.0 || yy > static_cast<double>(H) || xx < -1.0 ||
                  xx > static_cast<double>(W) || H == 0 || W == 0) {
                samples.push_back(s);
                continue;
              }
              double yv = std::max(yy, 0.0), xv = std::max(xx, 0.0);
              int64_t yl = static_cast<int64_t>(yv), xl = static_cast<int64_t>(xv), yhi, xhi;
              if (yl >= H - 1) {
                yhi = yl = H - 1;
                yv = static_cast<double>(yl);
              } else {
                yhi = yl + 1;
              }
              if (xl >= W - 1) {
                xhi = xl = W - 1;
                xv = static_cast<double>(xl);
              } else {
                xhi = xl + 1;
              }
              double ly = yv - static_cast<double>(yl), lx = xv - static_cast<double>(xl);
              double hy = 1 - ly, hx = 1 - lx;
              s = Sample{{yl * W + xl, yl * W + xhi, yhi * W + xl, yhi * W + xhi},
                         {hy * hx, hy * lx, ly * hx, ly * lx}};
              samples.push_back(s);
            }
          }
          for (int64_t c = 0; c < C; ++c) {
            const T* plane = src + (b * C + c) * H * W;
            double val = 0;
            bool first = true;
            for (const Sample& s : samples) {
              double v[4];
              for (int k = 0; k < 4; ++k)  // an empty plane has only zero-weight samples
                v[k] =
                    H * W == 0
                        ? 0.0
                        : s.w[k] * static_cast<double>(static_cast<compute_t<T>>(plane[s.pos[k]]));
              if (p.max_mode) {
                double m = std::max(std::max(v[0], v[1]), std::max(v[2], v[3]));
                val = first ? m : std::max(val, m);
                first = false;
              } else {
                val += v[0] + v[1] + v[2] + v[3];
              }
            }
            if (!p.max_mode) val /= count;
            dst[((n * C + c) * p.oh + ph) * p.ow + pw] = from_double<T>(val);
          }
        }
      }
    }
  });
}

}  // namespace

void add_resize_sample_ops(std::vector<OpDef>& ops) {
  ops.push_back({"GridSample", "", 16, &grid_sample_infer, &grid_sample_compute});
  ops.push_back({"RoiAlign", "", 10, &roi_align_infer, &roi_align_compute});
}

}  // namespace lithe::ops
