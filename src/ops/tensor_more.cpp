// Op family: tensor, second part (see tensor.cpp): Pad, CenterCropPad, DepthToSpace,
// SpaceToDepth, Trilu, CumSum, ReverseSequence.
#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

#include "ops/families.hpp"
#include "ops/tensor_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using namespace tensor_detail;

// ---- Pad ----

struct PadPlan {
  std::vector<int64_t> before, after;  // per input dim; negative crops
  std::string mode;
};

template <class Ctx>
PadPlan pad_plan(const Ctx& c) {
  const Shape& in = shape_of(c, 0);
  const int64_t r = static_cast<int64_t>(in.size());
  PadPlan p;
  p.mode = c.attr_string("mode", "constant");
  if (p.mode != "constant" && p.mode != "reflect" && p.mode != "edge" &&
      !(p.mode == "wrap" && c.opset() >= 19))
    fail("unknown pad mode '", p.mode, "' (expected constant, reflect, edge",
         c.opset() >= 19 ? " or wrap)" : ")");
  std::vector<int64_t> pads, axes;
  if (c.opset() < 2) {
    pads = c.attr_ints("paddings");
  } else if (c.opset() < 11) {
    pads = c.attr_ints("pads");
  } else {
    const Tensor& t = value_of(c, 1);
    if (t.rank() != 1) fail("pads must be 1-D, got shape ", shape_str(t.shape()));
    pads = int_values(t, "pads");
  }
  if (c.opset() >= 18 && c.has_input(3)) {
    const Tensor& t = value_of(c, 3);
    if (t.rank() != 1) fail("axes must be 1-D, got shape ", shape_str(t.shape()));
    axes = int_values(t, "axes");
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  const size_t na = axes.size();
  if (pads.size() != 2 * na)
    fail("pads has ", pads.size(), " entries, expected ", 2 * na, " (begin and end per axis)");
  p.before.assign(static_cast<size_t>(r), 0);
  p.after.assign(static_cast<size_t>(r), 0);
  std::vector<char> seen(static_cast<size_t>(r), 0);
  for (size_t i = 0; i < na; ++i) {
    const size_t a = static_cast<size_t>(normalize_axis(axes[i], r));
    if (seen[a]) fail("axis ", axes[i], " is repeated");
    seen[a] = 1;
    p.before[a] = pads[i];
    p.after[a] = pads[i + na];
  }
  for (size_t d = 0; d < in.size(); ++d) {
    const int64_t o = checked_add(checked_add(in[d], p.before[d], "Pad"), p.after[d], "Pad");
    if (o < 0)
      fail("pads ", p.before[d], ", ", p.after[d], " crop more than the size ", in[d], " of axis ",
           d);
    if (p.mode != "constant" && in[d] == 0 && o > 0)
      fail("cannot pad an empty axis ", d, " in ", p.mode, " mode");
  }
  return p;
}

Shape pad_shape(const Shape& in, const PadPlan& p) {
  Shape out(in.size());
  for (size_t d = 0; d < in.size(); ++d) out[d] = in[d] + p.before[d] + p.after[d];
  return out;
}

void pad_infer(InferContext& c) {
  if (c.opset() < 11)
    c.expect_inputs(1, 1);
  else
    c.expect_inputs(2, c.opset() >= 18 ? 4 : 3);
  if (c.opset() >= 11 && c.has_input(2) && c.input_dtype(2) != c.input_dtype(0))
    fail("constant_value must have the input's element type");
  c.set_output_unknown(0, c.input_dtype(0));
  PadPlan p = pad_plan(c);
  c.set_output(0, c.input_dtype(0), pad_shape(c.input_shape(0), p));
}

// Maps an input coordinate i (possibly outside [0, n)) to the one the mode reads, or kFill.
int64_t pad_source(int64_t i, int64_t n, const std::string& mode) {
  if (i >= 0 && i < n) return i;
  if (mode == "constant") return kFill;
  if (mode == "edge") return i < 0 ? 0 : n - 1;
  if (mode == "wrap") return ((i % n) + n) % n;
  // reflect (numpy): mirror without repeating the edge, period 2(n-1).
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  const int64_t m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

void pad_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  PadPlan p = pad_plan(c);
  // The constant as one element of the input's type.
  Tensor fill(in.dtype(), {});
  if (c.opset() < 11) {
    Tensor v(DType::kFloat32, {});
    v.data<float>()[0] = c.attr_float("value", 0.0f);
    fill = v.cast(in.dtype());
  } else if (c.has_input(2) && c.input(2).numel() > 0) {
    std::memcpy(fill.raw(), c.input(2).raw(), dtype_size(in.dtype()));
  }
  std::vector<int64_t> st = strides_of(in.shape());
  std::vector<std::vector<int64_t>> tables(in.shape().size());
  for (size_t d = 0; d < tables.size(); ++d) {
    for (int64_t o = 0; o < out.shape()[d]; ++o) {
      const int64_t s = pad_source(o - p.before[d], in.shape()[d], p.mode);
      tables[d].push_back(s == kFill ? kFill : s * st[d]);
    }
  }
  gather_by_tables(in, out, tables, fill.raw());
}

// ---- CenterCropPad ----

// Per input dim: the target size (unchanged for dims not in axes).
template <class Ctx>
Shape center_crop_pad_shape(const Ctx& c) {
  const Shape& in = shape_of(c, 0);
  const int64_t r = static_cast<int64_t>(in.size());
  const Tensor& t = value_of(c, 1);
  if (t.rank() != 1) fail("shape must be 1-D, got shape ", shape_str(t.shape()));
  std::vector<int64_t> target = int_values(t, "shape");
  std::vector<int64_t> axes;
  if (c.has_attr("axes")) {
    axes = c.attr_ints("axes");
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  if (target.size() != axes.size())
    fail("shape has ", target.size(), " entries, expected ", axes.size());
  Shape out = in;
  std::vector<char> seen(static_cast<size_t>(r), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(normalize_axis(axes[i], r));
    if (seen[a]) fail("axis ", axes[i], " is repeated");
    seen[a] = 1;
    if (target[i] < 0) fail("shape must be >= 0, got ", target[i]);
    out[a] = target[i];
  }
  return out;
}

void center_crop_pad_infer(InferContext& c) {
  c.expect_inputs(2, 2);
  c.set_output_unknown(0, c.input_dtype(0));
  c.set_output(0, c.input_dtype(0), center_crop_pad_shape(c));
}

void center_crop_pad_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  std::vector<int64_t> st = strides_of(in.shape());
  std::vector<std::vector<int64_t>> tables(in.shape().size());
  for (size_t d = 0; d < tables.size(); ++d) {
    const int64_t n = in.shape()[d], m = out.shape()[d];
    // Cropping starts floor((n - m) / 2) in; padding puts floor((m - n) / 2) before.
    const int64_t shift = n >= m ? (n - m) / 2 : -((m - n) / 2);
    for (int64_t o = 0; o < m; ++o) {
      const int64_t i = o + shift;
      tables[d].push_back(i >= 0 && i < n ? i * st[d] : kFill);
    }
  }
  gather_by_tables(in, out, tables);
}

// ---- DepthToSpace / SpaceToDepth ----

int64_t block_size(const NodeAttrs& a) {
  const int64_t b = a.attr_int("blocksize");
  if (b <= 0) fail("blocksize must be > 0, got ", b);
  return b;
}

bool depth_to_space_crd(const NodeAttrs& a) {
  if (a.opset() < 11) return false;
  const std::string mode = a.attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") fail("unknown mode '", mode, "' (expected DCR or CRD)");
  return mode == "CRD";
}

void depth_to_space_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  c.set_output_unknown(0, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  if (in.size() != 4) fail("input must be 4-D (NCHW), got shape ", shape_str(in));
  const int64_t b = block_size(c);
  depth_to_space_crd(c);
  // b * b cannot overflow past C unnoticed: check b against C first.
  if (b > in[1] || in[1] % (b * b) != 0)
    fail("channels ", in[1], " are not divisible by blocksize^2 (blocksize ", b, ")");
  c.set_output(0, c.input_dtype(0),
               {in[0], in[1] / (b * b), checked_mul(in[2], b, "DepthToSpace height"),
                checked_mul(in[3], b, "DepthToSpace width")});
}

void depth_to_space_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  const int64_t b = block_size(c);
  const bool crd = depth_to_space_crd(c);
  const int64_t C = out.dim(1), H = in.dim(2), W = in.dim(3), hw = H * W;
  // out[n, c, h*b + bh, w*b + bw] = in[n, ch, h, w], where the input channel ch is
  // bh*b*C + bw*C + c (DCR) or c*b*b + bh*b + bw (CRD); each term belongs to one output dim.
  std::vector<std::vector<int64_t>> t(4);
  for (int64_t n = 0; n < out.dim(0); ++n) t[0].push_back(n * in.dim(1) * hw);
  for (int64_t ch = 0; ch < C; ++ch) t[1].push_back((crd ? ch * b * b : ch) * hw);
  for (int64_t y = 0; y < out.dim(2); ++y) {
    const int64_t h = y / b, bh = y % b;
    t[2].push_back((crd ? bh * b : bh * b * C) * hw + h * W);
  }
  for (int64_t x = 0; x < out.dim(3); ++x) {
    const int64_t w = x / b, bw = x % b;
    t[3].push_back((crd ? bw : bw * C) * hw + w);
  }
  gather_by_tables(in, out, t);
}

void space_to_depth_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  c.set_output_unknown(0, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  if (in.size() != 4) fail("input must be 4-D (NCHW), got shape ", shape_str(in));
  const int64_t b = block_size(c);
  if (in[2] % b != 0 || in[3] % b != 0)
    fail("height ", in[2], " and width ", in[3], " must be divisible by blocksize ", b);
  const int64_t bb = checked_mul(b, b, "SpaceToDepth blocksize^2");
  c.set_output(0, c.input_dtype(0),
               {in[0], checked_mul(in[1], bb, "SpaceToDepth channels"), in[2] / b, in[3] / b});
}

void space_to_depth_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  const int64_t b = block_size(c);
  const int64_t C = in.dim(1), W = in.dim(3), hw = in.dim(2) * W;
  // out[n, (bh*b + bw)*C + c, h, w] = in[n, c, h*b + bh, w*b + bw].
  std::vector<std::vector<int64_t>> t(4);
  for (int64_t n = 0; n < out.dim(0); ++n) t[0].push_back(n * C * hw);
  for (int64_t ch = 0; ch < out.dim(1); ++ch) {
    const int64_t cc = ch % C, bw = (ch / C) % b, bh = ch / C / b;
    t[1].push_back(cc * hw + bh * W + bw);
  }
  for (int64_t h = 0; h < out.dim(2); ++h) t[2].push_back(h * b * W);
  for (int64_t w = 0; w < out.dim(3); ++w) t[3].push_back(w * b);
  gather_by_tables(in, out, t);
}

// ---- Trilu ----

void trilu_infer(InferContext& c) {
  c.expect_inputs(1, 2);
  c.set_output_unknown(0, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  if (in.size() < 2) fail("input must have rank >= 2, got shape ", shape_str(in));
  c.set_output(0, c.input_dtype(0), in);
}

void trilu_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  const bool upper = c.attr_int("upper", 1) != 0;
  const int64_t k = c.has_input(1) ? int_scalar(c.input(1), "k") : 0;
  const int64_t rows = in.dim(in.rank() - 2), cols = in.dim(in.rank() - 1);
  const int64_t mats = rows * cols == 0 ? 0 : in.numel() / (rows * cols);
  visit_elem_size(dtype_size(in.dtype()), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = static_cast<const U*>(in.raw());
    U* dst = static_cast<U*>(out.raw());
    // Keeps j - i >= k (upper) or j - i <= k (lower); the rest stays zero.
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t e = (m * rows + i) * cols + j;
          if (upper ? j - i >= k : j - i <= k) dst[e] = src[e];
        }
  });
}

// ---- CumSum ----

template <class Ctx>
int64_t cumsum_axis(const Ctx& c, int64_t rank) {
  return normalize_axis(int_scalar(value_of(c, 1), "axis"), rank);
}

void cumsum_infer(InferContext& c) {
  c.expect_inputs(2, 2);
  const DType t = c.input_dtype(0);
  if (t == DType::kBool || t == DType::kComplex64 || t == DType::kComplex128)
    fail("CumSum does not support element type ", dtype_name(t));
  c.set_output_unknown(0, t);
  const Shape& in = c.input_shape(0);
  // The axis only matters to compute(); check it now when it is a constant.
  if (c.input_value_known(1)) cumsum_axis(c, static_cast<int64_t>(in.size()));
  c.set_output(0, t, in);
}

// Integer sums wrap (through the unsigned type) instead of overflowing into UB.
template <class A>
A add_wrapping(A a, A b) {
  if constexpr (std::is_integral_v<A>) {
    using U = std::make_unsigned_t<A>;
    return static_cast<A>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}

void cumsum_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  if (in.rank() == 0) fail("CumSum input must have rank >= 1");
  const size_t axis = static_cast<size_t>(cumsum_axis(c, in.rank()));
  const bool exclusive = c.attr_int("exclusive", 0) != 0;
  const bool reverse = c.attr_int("reverse", 0) != 0;
  int64_t outer = 1, inner = 1;
  const int64_t len = in.shape()[axis];
  for (size_t d = 0; d < axis; ++d) outer *= in.shape()[d];
  for (size_t d = axis + 1; d < in.shape().size(); ++d) inner *= in.shape()[d];
  visit_dtype(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      fail("CumSum does not support element type bool");
    } else {
      using A = compute_t<T>;
      const T* src = in.data<T>();
      T* dst = out.data<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          A acc = A(0);
          for (int64_t s = 0; s < len; ++s) {
            const int64_t j = reverse ? len - 1 - s : s;
            const int64_t e = (o * len + j) * inner + i;
            const A x = static_cast<A>(src[e]);
            if (exclusive) {
              dst[e] = static_cast<T>(acc);
              acc = add_wrapping(acc, x);
            } else {
              acc = add_wrapping(acc, x);
              dst[e] = static_cast<T>(acc);
            }
          }
        }
    }
  });
}

// ---- ReverseSequence ----

struct ReverseSeqAxes {
  size_t batch, time;
};

ReverseSeqAxes reverse_sequence_axes(const NodeAttrs& a) {
  const int64_t b = a.attr_int("batch_axis", 1), t = a.attr_int("time_axis", 0);
  if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
    fail("batch_axis and time_axis must be 0 and 1 in some order, got ", b, " and ", t);
  return {static_cast<size_t>(b), static_cast<size_t>(t)};
}

void reverse_sequence_infer(InferContext& c) {
  c.expect_inputs(2, 2);
  c.set_output_unknown(0, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  if (in.size() < 2) fail("input must have rank >= 2, got shape ", shape_str(in));
  ReverseSeqAxes ax = reverse_sequence_axes(c);
  const Shape& ls = c.input_shape(1);
  if (ls.size() != 1 || ls[0] != in[ax.batch])
    fail("sequence_lens must have shape [", in[ax.batch], "], got ", shape_str(ls));
  c.set_output(0, c.input_dtype(0), in);
}

void reverse_sequence_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  ReverseSeqAxes ax = reverse_sequence_axes(c);
  std::vector<int64_t> lens = int_values(c.input(1), "sequence_lens");
  const int64_t B = in.shape()[ax.batch], T = in.shape()[ax.time];
  for (int64_t l : lens)
    if (l < 0 || l > T) fail("sequence length ", l, " is outside [0, ", T, "]");
  int64_t inner = 1;
  for (size_t d = 2; d < in.shape().size(); ++d) inner *= in.shape()[d];
  const size_t block = static_cast<size_t>(inner) * dtype_size(in.dtype());
  if (block == 0) return;
  const auto* src = static_cast<const unsigned char*>(in.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  // The first two dims are batch and time in some order; the rest is one contiguous block.
  auto offset = [&](int64_t b, int64_t t) {
    const int64_t row = ax.batch == 0 ? b * T + t : t * B + b;
    return static_cast<size_t>(row) * block;
  };
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lens[static_cast<size_t>(b)];
    for (int64_t t = 0; t < T; ++t) {
      const int64_t s = t < len ? len - 1 - t : t;
      std::memcpy(dst + offset(b, t), src + offset(b, s), block);
    }
  }
}

}  // namespace

void add_tensor_more_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Pad", "", 1, pad_infer, pad_compute});
  ops.push_back({"CenterCropPad", "", 18, center_crop_pad_infer, center_crop_pad_compute});
  ops.push_back({"DepthToSpace", "", 1, depth_to_space_infer, depth_to_space_compute});
  ops.push_back({"SpaceToDepth", "", 1, space_to_depth_infer, space_to_depth_compute});
  ops.push_back({"Trilu", "", 14, trilu_infer, trilu_compute});
  ops.push_back({"CumSum", "", 11, cumsum_infer, cumsum_compute});
  ops.push_back({"ReverseSequence", "", 10, reverse_sequence_infer, reverse_sequence_compute});
}

}  // namespace lithe::ops
