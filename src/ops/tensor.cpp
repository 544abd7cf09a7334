// Op family: tensor. See ops/op.hpp for the contract.
//
// Data-movement ops: Transpose, Concat, Split, Slice, Expand, Tile here; Pad, CenterCropPad,
// DepthToSpace, SpaceToDepth, Trilu, CumSum and ReverseSequence in tensor_more.cpp. They move
// bytes (gather_by_tables), so every dtype works without a per-type instantiation.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ops/families.hpp"
#include "ops/tensor_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using namespace tensor_detail;

// ---- Transpose ----

std::vector<int64_t> transpose_perm(const NodeAttrs& a, int64_t rank) {
  std::vector<int64_t> perm;
  if (!a.has_attr("perm")) {
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
    return perm;
  }
  perm = a.attr_ints("perm");
  if (static_cast<int64_t>(perm.size()) != rank)
    fail("perm has ", perm.size(), " entries, expected the input rank ", rank);
  std::vector<char> seen(static_cast<size_t>(rank), 0);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[static_cast<size_t>(p)])
      fail("perm must be a permutation of 0..", rank - 1);
    seen[static_cast<size_t>(p)] = 1;
  }
  return perm;
}

void transpose_infer(InferContext& c) {
  c.expect_inputs(1, 1);
  c.set_output_unknown(0, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  std::vector<int64_t> perm = transpose_perm(c, static_cast<int64_t>(in.size()));
  Shape out;
  for (int64_t p : perm) out.push_back(in[static_cast<size_t>(p)]);
  c.set_output(0, c.input_dtype(0), out);
}

void transpose_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  std::vector<int64_t> perm = transpose_perm(c, in.rank());
  std::vector<int64_t> st = strides_of(in.shape());
  std::vector<std::vector<int64_t>> tables(perm.size());
  for (size_t d = 0; d < perm.size(); ++d)
    for (int64_t i = 0; i < out.dim(static_cast<int64_t>(d)); ++i)
      tables[d].push_back(i * st[static_cast<size_t>(perm[d])]);
  gather_by_tables(in, out, tables);
}

// ---- Concat ----

int64_t concat_axis(const NodeAttrs& a, int64_t rank) {
  // Opset 1 defaulted the axis to 1; from opset 4 it is required.
  int64_t axis = a.opset() < 4 ? a.attr_int("axis", 1) : a.attr_int("axis");
  return normalize_axis(axis, rank);
}

void concat_infer(InferContext& c) {
  if (c.num_inputs() < 1) fail("Concat needs at least one input");
  c.expect_inputs(1, c.num_inputs());
  const DType t = c.input_dtype(0);
  c.set_output_unknown(0, t);
  Shape out = c.input_shape(0);
  const int64_t r = static_cast<int64_t>(out.size());
  if (r == 0) fail("Concat inputs must have rank >= 1");
  const size_t axis = static_cast<size_t>(concat_axis(c, r));
  for (size_t k = 1; k < c.num_inputs(); ++k) {
    if (!c.has_input(k)) fail("input ", k, " is missing");
    if (c.input_dtype(k) != t) fail("input ", k, " has a different element type");
    const Shape& s = c.input_shape(k);
    if (s.size() != out.size())
      fail("input ", k, " has shape ", shape_str(s), ", expected rank ", r, " like input 0");
    for (size_t d = 0; d < s.size(); ++d) {
      if (d == axis) continue;
      if (s[d] != out[d])
        fail("input ", k, " has shape ", shape_str(s), ", incompatible with ",
             shape_str(c.input_shape(0)), " outside axis ", axis);
    }
    out[axis] = checked_add(out[axis], s[axis], "Concat axis size");
  }
  c.set_output(0, t, out);
}

void concat_compute(ComputeContext& c) {
  Tensor& out = c.output(0);
  const size_t axis = static_cast<size_t>(concat_axis(c, out.rank()));
  const size_t es = dtype_size(out.dtype());
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= out.shape()[d];
  for (size_t d = axis + 1; d < out.shape().size(); ++d) inner *= out.shape()[d];
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t k = 0; k < c.num_inputs(); ++k) {
      const Tensor& in = c.input(k);
      const size_t block = static_cast<size_t>(in.shape()[axis] * inner) * es;
      if (block == 0) continue;
      std::memcpy(dst, static_cast<const unsigned char*>(in.raw()) + o * block, block);
      dst += block;
    }
  }
}

// ---- Split ----

// The sizes of Split's outputs along `axis` (dim = the input's size there).
template <class Ctx>
std::vector<int64_t> split_sizes(const Ctx& c, int64_t dim) {
  const size_t n = c.node().outputs.size();
  if (n == 0) fail("Split needs at least one output");
  std::vector<int64_t> sizes;
  bool given = false;
  if (c.opset() < 13) {
    if (c.has_attr("split")) {
      sizes = c.attr_ints("split");
      given = true;
    } else if (c.opset() < 2 && c.has_input(1)) {  // Split-1 also took it as an input
      sizes = int_values(value_of(c, 1), "split input");
      given = true;
    }
  } else if (c.has_input(1) && value_of(c, 1).numel() > 0) {
    // An empty split tensor is treated like an omitted one, as exporters emit both.
    sizes = int_values(value_of(c, 1), "split input");
    given = true;
  }
  if (given) {
    if (sizes.size() != n)
      fail("split has ", sizes.size(), " entries but the node has ", n, " outputs");
    int64_t sum = 0;
    for (int64_t s : sizes) {
      if (s < 0) fail("split sizes must be >= 0, got ", s);
      sum = checked_add(sum, s, "split sizes");
    }
    if (sum != dim) fail("split sizes sum to ", sum, ", expected the axis size ", dim);
    return sizes;
  }
  const int64_t parts = static_cast<int64_t>(n);
  if (c.opset() >= 18 && c.has_attr("num_outputs")) {
    if (c.attr_int("num_outputs") != parts)
      fail("num_outputs is ", c.attr_int("num_outputs"), " but the node has ", n, " outputs");
    // Equal chunks of ceil(dim / n); the last one takes what is left.
    const int64_t chunk = dim / parts + (dim % parts != 0 ? 1 : 0);
    if (chunk * (parts - 1) > dim)
      fail("cannot split an axis of size ", dim, " into ", parts, " chunks of ", chunk);
    sizes.assign(n, chunk);
    sizes.back() = dim - chunk * (parts - 1);
    return sizes;
  }
  if (dim % parts != 0)
    fail("cannot split an axis of size ", dim, " into ", parts, " equal parts");
  sizes.assign(n, dim / parts);
  return sizes;
}

void split_infer(InferContext& c) {
  c.expect_inputs(1, 2);
  for (size_t i = 0; i < c.num_outputs(); ++i) c.set_output_unknown(i, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  const int64_t axis = normalize_axis(c.attr_int("axis", 0), static_cast<int64_t>(in.size()));
  std::vector<int64_t> sizes = split_sizes(c, in[static_cast<size_t>(axis)]);
  for (size_t i = 0; i < sizes.size(); ++i) {
    Shape s = in;
    s[static_cast<size_t>(axis)] = sizes[i];
    c.set_output(i, c.input_dtype(0), s);
  }
}

void split_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const size_t axis = static_cast<size_t>(normalize_axis(c.attr_int("axis", 0), in.rank()));
  std::vector<int64_t> sizes = split_sizes(c, in.shape()[axis]);
  const size_t es = dtype_size(in.dtype());
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= in.shape()[d];
  for (size_t d = axis + 1; d < in.shape().size(); ++d) inner *= in.shape()[d];
  const auto* src = static_cast<const unsigned char*>(in.raw());
  const size_t row = static_cast<size_t>(in.shape()[axis] * inner) * es;
  size_t offset = 0;  // bytes into each input row where output i's block starts
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t block = static_cast<size_t>(sizes[i] * inner) * es;
    if (c.has_output(i) && block != 0) {
      auto* dst = static_cast<unsigned char*>(c.output(i).raw());
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + o * block, src + o * row + offset, block);
    }
    offset += block;
  }
}

// ---- Slice ----

struct SliceDim {
  int64_t start = 0, step = 1, len = 0;
};

// Per input dim: first index, step and output length after clamping starts/ends as the spec
// says (ends like INT64_MAX / INT64_MIN mean "to the end").
template <class Ctx>
std::vector<SliceDim> slice_plan(const Ctx& c) {
  const Shape& in = shape_of(c, 0);
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> starts, ends, axes, steps;
  bool has_axes = false, has_steps = false;
  if (c.opset() < 10) {
    starts = c.attr_ints("starts");
    ends = c.attr_ints("ends");
    if (c.has_attr("axes")) {
      axes = c.attr_ints("axes");
      has_axes = true;
    }
  } else {
    auto read = [&](size_t i, const char* what) {
      const Tensor& t = value_of(c, i);
      if (t.rank() != 1) fail(what, " must be 1-D, got shape ", shape_str(t.shape()));
      return int_values(t, what);
    };
    starts = read(1, "starts");
    ends = read(2, "ends");
    if (c.has_input(3)) {
      axes = read(3, "axes");
      has_axes = true;
    }
    if (c.has_input(4)) {
      steps = read(4, "steps");
      has_steps = true;
    }
  }
  if (starts.size() != ends.size())
    fail("starts has ", starts.size(), " entries but ends has ", ends.size());
  if (!has_axes)
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (!has_steps) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size()) fail("axes and starts differ in length");
  if (steps.size() != starts.size()) fail("steps and starts differ in length");

  std::vector<SliceDim> plan(static_cast<size_t>(r));
  for (size_t d = 0; d < plan.size(); ++d) plan[d].len = in[d];
  std::vector<char> seen(static_cast<size_t>(r), 0);
  for (size_t i = 0; i < starts.size(); ++i) {
    const size_t a = static_cast<size_t>(normalize_axis(axes[i], r));
    if (seen[a]) fail("axis ", axes[i], " is repeated");
    seen[a] = 1;
    const int64_t dim = in[a], step = steps[i];
    if (step == 0) fail("slice step must not be zero");
    int64_t s = starts[i], e = ends[i];
    // Adding dim to a negative value cannot overflow.
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    SliceDim& p = plan[a];
    p.step = step;
    if (dim == 0) {
      p.start = 0;
      p.len = 0;
    } else if (step > 0) {
      s = std::min(std::max(s, int64_t{0}), dim);
      e = std::min(std::max(e, int64_t{0}), dim);
      p.start = s;
      p.len = e > s ? (e - s - 1) / step + 1 : 0;
    } else {
      s = std::min(std::max(s, int64_t{0}), dim - 1);
      e = std::min(std::max(e, int64_t{-1}), dim - 1);
      p.start = s;
      // |step| as unsigned: step may be INT64_MIN.
      const uint64_t mag = uint64_t{0} - static_cast<uint64_t>(step);
      p.len = e < s ? static_cast<int64_t>(static_cast<uint64_t>(s - e - 1) / mag + 1) : 0;
    }
  }
  return plan;
}

void slice_infer(InferContext& c) {
  if (c.opset() < 10)
    c.expect_inputs(1, 1);
  else
    c.expect_inputs(3, 5);
  c.set_output_unknown(0, c.input_dtype(0));
  std::vector<SliceDim> plan = slice_plan(c);
  Shape out;
  for (const SliceDim& p : plan) out.push_back(p.len);
  c.set_output(0, c.input_dtype(0), out);
}

void slice_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  std::vector<SliceDim> plan = slice_plan(c);
  std::vector<int64_t> st = strides_of(in.shape());
  std::vector<std::vector<int64_t>> tables(plan.size());
  for (size_t d = 0; d < plan.size(); ++d)
    for (int64_t i = 0; i < plan[d].len; ++i)
      tables[d].push_back((plan[d].start + i * plan[d].step) * st[d]);
  gather_by_tables(in, c.output(0), tables);
}

// ---- Expand ----

void expand_infer(InferContext& c) {
  c.expect_inputs(2, 2);
  c.set_output_unknown(0, c.input_dtype(0));
  const Tensor& s = c.input_value(1);
  if (s.rank() != 1) fail("shape input must be 1-D, got shape ", shape_str(s.shape()));
  Shape target = int_values(s, "shape input");
  for (int64_t d : target)
    if (d < 0) fail("shape input has a negative dimension ", d);
  if (target.size() > static_cast<size_t>(kMaxRank))
    fail("shape input has rank ", target.size(), ", over the limit of ", kMaxRank);
  c.set_output(0, c.input_dtype(0), broadcast_shapes(c.input_shape(0), target));
}

// Tables reading `in` broadcast (numpy-style, right-aligned) to `out`'s shape.
std::vector<std::vector<int64_t>> broadcast_tables(const Shape& in, const Shape& out) {
  std::vector<int64_t> st = broadcast_strides(in, out);
  std::vector<std::vector<int64_t>> tables(out.size());
  for (size_t d = 0; d < out.size(); ++d)
    for (int64_t i = 0; i < out[d]; ++i) tables[d].push_back(i * st[d]);
  return tables;
}

void expand_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  gather_by_tables(in, out, broadcast_tables(in.shape(), out.shape()));
}

// ---- Tile ----

// Tile-6+ takes one repeat count per dim; Tile-1 took a count and an axis (both scalars).
std::vector<int64_t> tile_repeats(const Shape& in, const Tensor& a, const Tensor* axis_t,
                                  int opset) {
  std::vector<int64_t> reps;
  if (opset < 6) {
    reps.assign(in.size(), 1);
    const int64_t axis = normalize_axis(int_scalar(*axis_t, "axis"), static_cast<int64_t>(in.size()));
    reps[static_cast<size_t>(axis)] = int_scalar(a, "tiles");
    return reps;
  }
  if (a.rank() != 1) fail("repeats must be 1-D, got shape ", shape_str(a.shape()));
  reps = int_values(a, "repeats");
  if (reps.size() != in.size())
    fail("repeats has ", reps.size(), " entries, expected the input rank ", in.size());
  return reps;
}

void tile_infer(InferContext& c) {
  if (c.opset() < 6)
    c.expect_inputs(3, 3);
  else
    c.expect_inputs(2, 2);
  c.set_output_unknown(0, c.input_dtype(0));
  const Shape& in = c.input_shape(0);
  std::vector<int64_t> reps = tile_repeats(in, c.input_value(1),
                                           c.opset() < 6 ? &c.input_value(2) : nullptr, c.opset());
  Shape out(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    if (reps[d] < 0) fail("repeats must be >= 0, got ", reps[d]);
    out[d] = checked_mul(in[d], reps[d], "Tile output dim");
  }
  c.set_output(0, c.input_dtype(0), out);
}

void tile_compute(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.output(0);
  if (out.numel() == 0) return;
  std::vector<int64_t> st = strides_of(in.shape());
  std::vector<std::vector<int64_t>> tables(in.shape().size());
  for (size_t d = 0; d < tables.size(); ++d)
    for (int64_t i = 0; i < out.shape()[d]; ++i)
      tables[d].push_back((i % in.shape()[d]) * st[d]);
  gather_by_tables(in, out, tables);
}

}  // namespace

void add_tensor_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Transpose", "", 1, transpose_infer, transpose_compute});
  ops.push_back({"Concat", "", 1, concat_infer, concat_compute});
  ops.push_back({"Split", "", 1, split_infer, split_compute});
  ops.push_back({"Slice", "", 1, slice_infer, slice_compute});
  ops.push_back({"Expand", "", 8, expand_infer, expand_compute});
  ops.push_back({"Tile", "", 1, tile_infer, tile_compute});
  add_tensor_more_ops(ops);
}

}  // namespace lithe::ops
