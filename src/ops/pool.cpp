// Op family: pool (MaxPool, AveragePool, LpPool, the Global* pools, MaxUnpool, MaxRoiPool).
// See ops/op.hpp for the contract.
//
// The kernels are direct: for every output position they visit the window taps that land
// inside the input (conv_pool::for_each_tap), so padding never holds a value: MaxPool and
// LpPool ignore it and AveragePool only counts it in the divisor (count_include_pad=1).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/conv_pool_internal.hpp"
#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using conv_pool::Geometry;

/// Shapes and geometry of a windowed pool.
struct PoolSetup {
  int64_t planes = 0;  ///< N * C: every (n, c) plane is pooled independently
  Geometry g;
  Shape out_shape;
};

/// Validates X and the window attributes of MaxPool / AveragePool / LpPool.
PoolSetup pool_setup(const NodeAttrs& a, const Shape& xs) {
  PoolSetup s;
  std::vector<int64_t> in = conv_pool::spatial_of(a, xs, 3, "input X");
  if (!a.has_attr("kernel_shape")) a.fail("kernel_shape attribute is required");
  std::vector<int64_t> kernel = a.attr_ints("kernel_shape");
  if (kernel.size() != in.size())
    a.fail("kernel_shape has ", kernel.size(), " values but X has ", in.size(), " spatial dims");
  int64_t ceil_mode = a.attr_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) a.fail("ceil_mode ", ceil_mode, " must be 0 or 1");
  conv_pool::WindowOptions opt;
  opt.ceil_mode = ceil_mode == 1;
  opt.pads_below_extent = true;
  s.g = conv_pool::forward_geometry(a, in, kernel, opt);
  s.planes = xs[0] * xs[1];
  s.out_shape = {xs[0], xs[1]};
  s.out_shape.insert(s.out_shape.end(), s.g.out.begin(), s.g.out.end());
  return s;
}

/// Calls f(plane, oc, out_offset) for every plane and output position, out_offset being
/// the flat index into Y.
template <class F>
void for_each_output(const PoolSetup& s, F&& f) {
  const int64_t out_sp = conv_pool::product(s.g.out);
  for (int64_t p = 0; p < s.planes; ++p)
    conv_pool::for_each_coord(s.g.out, [&](const std::vector<int64_t>& oc) {
      f(p, oc, p * out_sp + conv_pool::spatial_offset(s.g.out, oc));
    });
}

void check_float_input(const InferContext& ctx, size_t i, const char* what) {
  DType t = ctx.input_dtype(i);
  if (!is_float(t)) ctx.fail(what, " must be a float tensor, got ", dtype_name(t));
}

// ---- MaxPool ---------------------------------------------------------------------------

int64_t read_storage_order(const NodeAttrs& a) {
  int64_t so = a.attr_int("storage_order", 0);
  if (so != 0 && so != 1)
    a.fail("storage_order ", so, " must be 0 (row major) or 1 (column major)");
  return so;
}

void max_pool_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType t = ctx.input_dtype(0);
  const bool int8ok = ctx.opset() >= 12 && (t == DType::kInt8 || t == DType::kUInt8);
  if (!is_float(t) && !int8ok)
    ctx.fail("X must be a float tensor", ctx.opset() >= 12 ? " or int8/uint8" : "", ", got ",
             dtype_name(t));
  read_storage_order(ctx);
  ctx.set_output_unknown(0, t);
  if (ctx.num_outputs() > 1) ctx.set_output_unknown(1, DType::kInt64);
  PoolSetup s = pool_setup(ctx, ctx.input_shape(0));
  ctx.set_output(0, t, s.out_shape);
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kInt64, s.out_shape);
}

void max_pool_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  PoolSetup s = pool_setup(ctx, x.shape());
  const bool col_major = read_storage_order(ctx) == 1;
  const int64_t in_sp = conv_pool::product(s.g.in);
  int64_t* ind = ctx.has_output(1) ? ctx.output(1).data<int64_t>() : nullptr;
  Tensor& y = ctx.output(0);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      ctx.fail("MaxPool does not support bool");
    } else {
      using Acc = compute_t<T>;
      const T* xd = x.data<T>();
      T* yd = y.data<T>();
      for_each_output(s, [&](int64_t p, const std::vector<int64_t>& oc, int64_t yo) {
        // A window entirely in padding (possible with dilations) yields lowest() and -1.
        Acc best = std::numeric_limits<Acc>::lowest();
        int64_t best_idx = -1;  // spatial index of the max in storage order
        conv_pool::for_each_tap(s.g, oc, [&](int64_t xo, int64_t, const std::vector<int64_t>& ic) {
          const Acc v = static_cast<Acc>(xd[p * in_sp + xo]);
          // Strictly greater: ties keep the first tap in row-major window order.
          if (best_idx < 0 || v > best) {
            best = v;
            best_idx = xo;
            if (col_major) {
              // Column-major over the spatial dims; the plane offset stays row-major.
              best_idx = 0;
              for (size_t d = ic.size(); d-- > 0;) best_idx = best_idx * s.g.in[d] + ic[d];
            }
          }
        });
        yd[yo] = static_cast<T>(best);
        if (ind) ind[yo] = best_idx < 0 ? -1 : p * in_sp + best_idx;
      });
    }
  });
}

// ---- AveragePool -----------------------------------------------------------------------

void average_pool_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  check_float_input(ctx, 0, "X");
  DType t = ctx.input_dtype(0);
  ctx.set_output_unknown(0, t);
  int64_t cip = ctx.attr_int("count_include_pad", 0);
  if (cip != 0 && cip != 1) ctx.fail("count_include_pad ", cip, " must be 0 or 1");
  PoolSetup s = pool_setup(ctx, ctx.input_shape(0));
  ctx.set_output(0, t, s.out_shape);
}

void average_pool_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  PoolSetup s = pool_setup(ctx, x.shape());
  const bool include_pad = ctx.attr_int("count_include_pad", 0) == 1;
  const int64_t in_sp = conv_pool::product(s.g.in);
  Tensor& y = ctx.output(0);
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = y.data<T>();
    for_each_output(s, [&](int64_t p, const std::vector<int64_t>& oc, int64_t yo) {
      Acc sum = 0;
      int64_t n = 0;
      conv_pool::for_each_tap(s.g, oc, [&](int64_t xo, int64_t, const std::vector<int64_t>&) {
        sum += static_cast<Acc>(xd[p * in_sp + xo]);
        ++n;
      });
      // count_include_pad counts the taps over explicit/auto padding, never those past
      // the padded input that ceil_mode adds.
      const double div = include_pad ? conv_pool::padded_tap_count(s.g, oc) : double(n);
      yd[yo] = static_cast<T>(div > 0 ? sum / static_cast<Acc>(div) : Acc(0));
    });
  });
}

// ---- LpPool / GlobalLpPool -------------------------------------------------------------

/// p: a float attribute in opset 1, an int from opset 2; default 2. Must be > 0.
double read_p(const NodeAttrs& a) {
  const ir::Attribute* at = a.attr("p");
  double p = 2;
  if (at) {
    if (at->kind == ir::Attribute::Kind::kInt)
      p = static_cast<double>(at->i);
    else if (at->kind == ir::Attribute::Kind::kFloat)
      p = at->f;
    else
      a.fail("attribute p must be an int (or a float before opset 2)");
  }
  if (!(p > 0) || !std::isfinite(p)) a.fail("p ", p, " must be a positive number");
  return p;
}

void lp_pool_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  check_float_input(ctx, 0, "X");
  DType t = ctx.input_dtype(0);
  read_p(ctx);
  ctx.set_output_unknown(0, t);
  PoolSetup s = pool_setup(ctx, ctx.input_shape(0));
  ctx.set_output(0, t, s.out_shape);
}

void lp_pool_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  PoolSetup s = pool_setup(ctx, x.shape());
  const double p = read_p(ctx);
  const int64_t in_sp = conv_pool::product(s.g.in);
  Tensor& y = ctx.output(0);
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = y.data<T>();
    const Acc pa = static_cast<Acc>(p);
    for_each_output(s, [&](int64_t pl, const std::vector<int64_t>& oc, int64_t yo) {
      Acc sum = 0;
      conv_pool::for_each_tap(s.g, oc, [&](int64_t xo, int64_t, const std::vector<int64_t>&) {
        sum += std::pow(std::abs(static_cast<Acc>(xd[pl * in_sp + xo])), pa);
      });
      yd[yo] = static_cast<T>(std::pow(sum, Acc(1) / pa));
    });
  });
}

// ---- Global pools ----------------------------------------------------------------------

Shape global_out_shape(const NodeAttrs& a, const Shape& xs) {
  conv_pool::spatial_of(a, xs, 2, "input X");
  Shape out = xs;
  for (size_t d = 2; d < out.size(); ++d) out[d] = 1;
  return out;
}

void global_pool_infer(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  check_float_input(ctx, 0, "X");
  DType t = ctx.input_dtype(0);
  if (ctx.node().op_type == "GlobalLpPool") read_p(ctx);
  ctx.set_output_unknown(0, t);
  ctx.set_output(0, t, global_out_shape(ctx, ctx.input_shape(0)));
}

enum class GlobalKind { kAverage, kMax, kLp };

/// Reduces every (n, c) plane of X to one value.
template <GlobalKind K>
void global_pool_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  global_out_shape(ctx, x.shape());
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t sp = planes > 0 ? x.numel() / planes : 0;
  const double p = K == GlobalKind::kLp ? read_p(ctx) : 2.0;
  Tensor& y = ctx.output(0);
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = y.data<T>();
    const Acc pa = static_cast<Acc>(p);
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* xp = xd + pl * sp;
      Acc r = 0;
      if constexpr (K == GlobalKind::kMax) {
        r = sp > 0 ? static_cast<Acc>(xp[0]) : std::numeric_limits<Acc>::lowest();
        for (int64_t i = 1; i < sp; ++i) r = std::max(r, static_cast<Acc>(xp[i]));
      } else if constexpr (K == GlobalKind::kAverage) {
        for (int64_t i = 0; i < sp; ++i) r += static_cast<Acc>(xp[i]);
        r = sp > 0 ? r / static_cast<Acc>(sp) : Acc(0);
      } else {
        for (int64_t i = 0; i < sp; ++i) r += std::pow(std::abs(static_cast<Acc>(xp[i])), pa);
        r = std::pow(r, Acc(1) / pa);
      }
      yd[pl] = static_cast<T>(r);
    }
  });
}

// ---- MaxUnpool -------------------------------------------------------------------------

/// MaxUnpool's shapes. `inferred` inverts MaxPool's size, (in - 1) * stride + kernel -
/// pad_begin - pad_end, and is the shape the indices address; `out` is the output_shape
/// input when given (each dim at least the inferred one: the unpooled block sits at the
/// origin and the rest is zero), else `inferred`.
struct UnpoolShapes {
  Shape inferred, out;
};

UnpoolShapes max_unpool_shapes(const NodeAttrs& a, const Shape& xs, const Shape& is,
                               const Tensor* output_shape) {
  std::vector<int64_t> in = conv_pool::spatial_of(a, xs, 3, "input X");
  const size_t r = in.size();
  if (is != xs)
    a.fail("indices I have shape ", shape_str(is), ", expected X's shape ", shape_str(xs));
  if (!a.has_attr("kernel_shape")) a.fail("kernel_shape attribute is required");
  std::vector<int64_t> kernel = a.attr_ints("kernel_shape");
  if (kernel.size() != r)
    a.fail("kernel_shape has ", kernel.size(), " values but X has ", r, " spatial dims");
  for (int64_t k : kernel)
    if (k < 1 || k > kMaxTensorElements)
      a.fail("kernel_shape value ", k, " is out of range, expected 1..", kMaxTensorElements);
  std::vector<int64_t> strides = conv_pool::read_spatial_ints(a, "strides", r, 1, 1);
  std::vector<int64_t> pads = a.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  if (pads.size() != 2 * r) a.fail("pads has ", pads.size(), " values, expected ", 2 * r);
  for (int64_t v : pads)
    if (v < 0 || v > kMaxTensorElements)
      a.fail("pads value ", v, " is out of range, expected 0..", kMaxTensorElements);
  UnpoolShapes u;
  u.inferred = {xs[0], xs[1]};
  for (size_t d = 0; d < r; ++d) {
    int64_t o = conv_pool::mul_ck(in[d] > 0 ? in[d] - 1 : 0, strides[d], "output size") +
                kernel[d] - pads[d] - pads[d + r];
    if (o < 1) a.fail("output size ", o, " < 1 in spatial dim ", d, " (pads too large)");
    u.inferred.push_back(o);
  }
  checked_numel(u.inferred, "MaxUnpool's unpooled shape");
  u.out = u.inferred;
  if (output_shape) {
    std::vector<int64_t> os = output_shape->to_int64_vector();
    if (output_shape->rank() != 1 || os.size() != xs.size())
      a.fail("output_shape has shape ", shape_str(output_shape->shape()), ", expected 1-D of ",
             xs.size(), " values");
    for (size_t d = 0; d < os.size(); ++d)
      if (os[d] < u.inferred[d] || (d < 2 && os[d] != u.inferred[d]))
        a.fail("output_shape ", shape_str(os), " must keep N and C and be at least the unpooled ",
               "shape ", shape_str(u.inferred));
    u.out = os;
  }
  return u;
}

void max_unpool_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 3);
  check_float_input(ctx, 0, "X");
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != DType::kInt64)
    ctx.fail("indices I must be int64, got ", dtype_name(ctx.input_dtype(1)));
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::kInt64)
    ctx.fail("output_shape must be int64, got ", dtype_name(ctx.input_dtype(2)));
  ctx.set_output_unknown(0, t);
  const Tensor* os = ctx.has_input(2) ? &ctx.input_value(2) : nullptr;
  ctx.set_output(0, t, max_unpool_shapes(ctx, ctx.input_shape(0), ctx.input_shape(1), os).out);
}

void max_unpool_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  UnpoolShapes u =
      max_unpool_shapes(ctx, x.shape(), ind.shape(), ctx.has_input(2) ? &ctx.input(2) : nullptr);
  Tensor& y = ctx.output(0);
  const int64_t* id = ind.data<int64_t>();
  const int64_t total = shape_numel(u.inferred);
  const std::vector<int64_t> in_st = strides_of(u.inferred), out_st = strides_of(u.out);
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xd = x.data<T>();
    T* yd = y.data<T>();
    // Indices are flat over the whole unpooled shape (as MaxPool's Indices are over its
    // input); they are re-addressed into the output, which may be larger. The rest of Y
    // stays zero; later writes win on duplicate indices.
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (id[i] < 0 || id[i] >= total)
        ctx.fail("index ", id[i], " at position ", i, " is out of range for the unpooled shape ",
                 shape_str(u.inferred));
      int64_t rem = id[i], off = 0;
      for (size_t d = 0; d < in_st.size(); ++d) {
        off += (rem / in_st[d]) * out_st[d];
        rem %= in_st[d];
      }
      yd[off] = xd[i];
    }
  });
}

// ---- MaxRoiPool ------------------------------------------------------------------------

struct RoiSetup {
  int64_t ph = 0, pw = 0;
  float scale = 1;
  Shape out_shape;
};

RoiSetup roi_setup(const NodeAttrs& a, const Shape& xs, const Shape& rs) {
  RoiSetup s;
  if (xs.size() != 4) a.fail("X has rank ", xs.size(), ", expected (N, C, H, W)");
  if (rs.size() != 2 || rs[1] != 5)
    a.fail("rois has shape ", shape_str(rs), ", expected (num_rois, 5)");
  if (!a.has_attr("pooled_shape")) a.fail("pooled_shape attribute is required");
  std::vector<int64_t> ps = a.attr_ints("pooled_shape");
  if (ps.size() != 2) a.fail("pooled_shape has ", ps.size(), " values, expected 2");
  for (int64_t v : ps)
    if (v < 1 || v > kMaxTensorElements) a.fail("pooled_shape value ", v, " must be >= 1");
  s.ph = ps[0];
  s.pw = ps[1];
  s.scale = a.attr_float("spatial_scale", 1.0f);
  if (!std::isfinite(s.scale)) a.fail("spatial_scale must be finite");
  s.out_shape = {rs[0], xs[1], s.ph, s.pw};
  return s;
}

void max_roi_pool_infer(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  check_float_input(ctx, 0, "X");
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t)
    ctx.fail("rois is ", dtype_name(ctx.input_dtype(1)), " but X is ", dtype_name(t));
  ctx.set_output_unknown(0, t);
  ctx.set_output(0, t, roi_setup(ctx, ctx.input_shape(0), ctx.input_shape(1)).out_shape);
}

/// Rounds a box coordinate to an int64, failing on non-finite values and clamping huge
/// ones (they only make the box empty or clamp it to the image).
int64_t roi_coord(const NodeAttrs& a, double v) {
  if (!std::isfinite(v)) a.fail("rois holds a non-finite coordinate");
  v = std::round(v);
  constexpr double kLim = 1e15;
  return static_cast<int64_t>(std::clamp(v, -kLim, kLim));
}

void max_roi_pool_compute(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  RoiSetup s = roi_setup(ctx, x.shape(), rois.shape());
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor& y = ctx.output(0);
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = compute_t<T>;
    const T* xd = x.data<T>();
    const T* rd = rois.data<T>();
    T* yd = y.data<T>();
    for (int64_t r = 0; r < rois.dim(0); ++r) {
      // Caffe's ROI pooling: box [x1, y1, x2, y2] scaled and rounded, inclusive ends, each
      // bin [floor(i * bin), ceil((i + 1) * bin)) clamped to the image; empty bins give 0.
      const T* roi = rd + r * 5;
      const double bf = static_cast<double>(static_cast<Acc>(roi[0]));
      if (!std::isfinite(bf) || bf < 0 || bf >= static_cast<double>(n))
        ctx.fail("roi ", r, " has batch index ", bf, ", expected 0..", n - 1);
      const int64_t b = static_cast<int64_t>(bf);
      const int64_t x1 = roi_coord(ctx, static_cast<Acc>(roi[1]) * double(s.scale));
      const int64_t y1 = roi_coord(ctx, static_cast<Acc>(roi[2]) * double(s.scale));
      const int64_t x2 = roi_coord(ctx, static_cast<Acc>(roi[3]) * double(s.scale));
      const int64_t y2 = roi_coord(ctx, static_cast<Acc>(roi[4]) * double(s.scale));
      const int64_t rh = std::max<int64_t>(y2 - y1 + 1, 1), rw = std::max<int64_t>(x2 - x1 + 1, 1);
      const double bin_h = double(rh) / double(s.ph), bin_w = double(rw) / double(s.pw);
      for (int64_t ch = 0; ch < c; ++ch) {
        const T* plane = xd + (b * c + ch) * h * w;
        T* out = yd + (r * c + ch) * s.ph * s.pw;
        for (int64_t i = 0; i < s.ph; ++i) {
          int64_t hs = static_cast<int64_t>(std::floor(double(i) * bin_h)) + y1;
          int64_t he = static_cast<int64_t>(std::ceil(double(i + 1) * bin_h)) + y1;
          hs = std::clamp<int64_t>(hs, 0, h);
          he = std::clamp<int64_t>(he, 0, h);
          for (int64_t j = 0; j < s.pw; ++j) {
            int64_t ws = static_cast<int64_t>(std::floor(double(j) * bin_w)) + x1;
            int64_t we = static_cast<int64_t>(std::ceil(double(j + 1) * bin_w)) + x1;
            ws = std::clamp<int64_t>(ws, 0, w);
            we = std::clamp<int64_t>(we, 0, w);
            Acc best = 0;
            if (he > hs && we > ws) {
              best = std::numeric_limits<Acc>::lowest();
              for (int64_t yy = hs; yy < he; ++yy)
                for (int64_t xx = ws; xx < we; ++xx)
                  best = std::max(best, static_cast<Acc>(plane[yy * w + xx]));
            }
            out[i * s.pw + j] = static_cast<T>(best);
          }
        }
      }
    }
  });
}

}  // namespace

void add_pool_ops(std::vector<OpDef>& ops) {
  ops.push_back(OpDef{"MaxPool", "", 1, max_pool_infer, max_pool_compute});
  ops.push_back(OpDef{"AveragePool", "", 1, average_pool_infer, average_pool_compute});
  ops.push_back(OpDef{"LpPool", "", 1, lp_pool_infer, lp_pool_compute});
  ops.push_back(OpDef{"GlobalAveragePool", "", 1, global_pool_infer,
                      global_pool_compute<GlobalKind::kAverage>});
  ops.push_back(
      OpDef{"GlobalMaxPool", "", 1, global_pool_infer, global_pool_compute<GlobalKind::kMax>});
  ops.push_back(
      OpDef{"GlobalLpPool", "", 1, global_pool_infer, global_pool_compute<GlobalKind::kLp>});
  ops.push_back(OpDef{"MaxUnpool", "", 9, max_unpool_infer, max_unpool_compute});
  ops.push_back(OpDef{"MaxRoiPool", "", 1, max_roi_pool_infer, max_roi_pool_compute});
}

}  // namespace lithe::ops
