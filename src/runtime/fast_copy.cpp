// Fast steps that only move bytes: Concat and Split on any axis (the planner makes the
// outer-size-1 cases free; these are the others, e.g. channel concats in NHWC regions),
// ConstantOfShape (refilled every run: its arena bytes are shared with other values), and
// index maps for the other pure data-movement ops (Slice, Gather with constant indices,
// Expand, Tile, DepthToSpace, SpaceToDepth): at preparation the reference kernel runs once on
// a tensor holding each element's own index, which yields, for every output element, the
// input element it copies; a run is then one gather. Exact by construction, for every
// attribute combination the reference handles. lithe.DepthToSpaceNhwc (the pixel shuffle after
// a stride == kernel ConvTranspose's 1x1 conv) copies runs of bw x C contiguous elements.
#include <algorithm>
#include <cstring>

#include "ops/nhwc_internal.hpp"
#include "ops/op.hpp"
#include "plan/liveness.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

// Copies between one whole tensor and its slice of a tensor split or concatenated along an
// axis: outer rows of `inner` bytes each, at `offset` bytes into rows of `row` bytes.
struct Slab {
  int value = -1;
  int64_t inner = 0, offset = 0;
};

class ConcatSplitStep final : public FastStep {
 public:
  const char* kind() const override { return concat_ ? "concat" : "split"; }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    auto* whole = static_cast<unsigned char*>(vals[static_cast<size_t>(whole_)]);
    // Small copies run on thread 0 only: waking threads costs more than the copy.
    if (outer_ * row_ < (1 << 16) && t != 0) return;
    if (outer_ * row_ < (1 << 16)) nt = 1;
    int64_t b, e;
    static_range(outer_, t, nt, &b, &e);
    for (const Slab& s : slabs_) {
      auto* part = static_cast<unsigned char*>(vals[static_cast<size_t>(s.value)]);
      // A part the planner placed in its slice already is there (outer size 1).
      if (part == whole + s.offset) continue;
      for (int64_t o = b; o < e; ++o) {
        unsigned char* w = whole + o * row_ + s.offset;
        unsigned char* p = part + o * s.inner;
        if (concat_)
          std::memcpy(w, p, static_cast<size_t>(s.inner));
        else
          std::memcpy(p, w, static_cast<size_t>(s.inner));
      }
    }
  }
  bool concat_ = true;
  int whole_ = -1;
  int64_t outer_ = 1, row_ = 0;
  std::vector<Slab> slabs_;
};

bool static_type(const ir::Graph& g, int v) {
  return v >= 0 && g.values[static_cast<size_t>(v)].type.fully_known();
}

std::unique_ptr<FastStep> make_concat_split(const ir::Graph& g, const ir::Node& node, bool concat) {
  const int whole = concat ? (node.outputs.size() == 1 ? node.outputs[0] : -1)
                           : (node.inputs.empty() ? -1 : node.inputs[0]);
  if (!static_type(g, whole)) return nullptr;
  const ir::TensorType& wt = g.values[static_cast<size_t>(whole)].type;
  const int64_t rank = static_cast<int64_t>(wt.dims.size());
  int64_t axis = 0;
  if (concat) {
    axis = plan::detail::concat_axis(node, rank);
  } else {
    axis = ops::NodeAttrs(node).attr_int("axis", 0);
    if (axis < -rank || axis >= rank) return nullptr;
    if (axis < 0) axis += rank;
  }
  const int64_t es = static_cast<int64_t>(dtype_size(wt.dtype));
  int64_t outer = 1, inner = es;
  for (int64_t d = 0; d < axis; ++d) outer *= wt.dims[static_cast<size_t>(d)];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= wt.dims[static_cast<size_t>(d)];
  auto s = std::make_unique<ConcatSplitStep>();
  s->concat_ = concat;
  s->whole_ = whole;
  s->outer_ = outer;
  s->row_ = inner * wt.dims[static_cast<size_t>(axis)];
  int64_t offset = 0;
  for (int v : concat ? node.inputs : node.outputs) {
    if (!static_type(g, v)) return nullptr;
    const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
    if (t.dtype != wt.dtype || static_cast<int64_t>(t.dims.size()) != rank) return nullptr;
    const int64_t part = inner * t.dims[static_cast<size_t>(axis)];
    s->slabs_.push_back({v, part, offset});
    offset += part;
  }
  if (offset != s->row_) return nullptr;
  return s;
}

class FillStep final : public FastStep {
 public:
  const char* kind() const override { return "fill"; }
  void run(const ValuePtrs& vals, int t, int, float*) const override {
    if (t != 0) return;
    auto* dst = static_cast<unsigned char*>(vals[static_cast<size_t>(out_)]);
    if (zero_) {
      std::memset(dst, 0, static_cast<size_t>(count_ * es_));
      return;
    }
    for (int64_t i = 0; i < count_; ++i)
      std::memcpy(dst + i * es_, value_, static_cast<size_t>(es_));
  }
  int out_ = -1;
  int64_t count_ = 0, es_ = 0;
  bool zero_ = true;
  unsigned char value_[16] = {};
};

std::unique_ptr<FastStep> make_fill(const ir::Graph& g, const ir::Node& node) {
  if (node.outputs.size() != 1 || !static_type(g, node.outputs[0])) return nullptr;
  const ir::TensorType& t = g.values[static_cast<size_t>(node.outputs[0])].type;
  auto s = std::make_unique<FillStep>();
  s->out_ = node.outputs[0];
  s->count_ = shape_numel(t.dims);
  s->es_ = static_cast<int64_t>(dtype_size(t.dtype));
  ops::NodeAttrs a(node);
  if (a.has_attr("value")) {
    const Tensor& v = a.attr_tensor("value");
    if (v.numel() != 1 || v.dtype() != t.dtype || v.nbytes() > sizeof(s->value_)) return nullptr;
    std::memcpy(s->value_, v.raw(), v.nbytes());
    s->zero_ =
        std::all_of(s->value_, s->value_ + v.nbytes(), [](unsigned char c) { return c == 0; });
  } else if (t.dtype != DType::kFloat32) {
    return nullptr;
  }
  return s;
}

class IndexMapStep final : public FastStep {
 public:
  const char* kind() const override { return "index-map"; }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    const auto* in = static_cast<const unsigned char*>(vals[static_cast<size_t>(in_)]);
    auto* out = static_cast<unsigned char*>(vals[static_cast<size_t>(out_)]);
    const int64_t n = static_cast<int64_t>(map_.size());
    if (n < (1 << 15) && t != 0) return;
    int64_t b, e;
    static_range(n, t, n < (1 << 15) ? 1 : nt, &b, &e);
    const int32_t* m = map_.data();
    switch (es_) {
      case 4:
        for (int64_t i = b; i < e; ++i)
          reinterpret_cast<uint32_t*>(out)[i] = reinterpret_cast<const uint32_t*>(in)[m[i]];
        break;
      case 8:
        for (int64_t i = b; i < e; ++i)
          reinterpret_cast<uint64_t*>(out)[i] = reinterpret_cast<const uint64_t*>(in)[m[i]];
        break;
      default:
        for (int64_t i = b; i < e; ++i)
          std::memcpy(out + i * es_, in + static_cast<int64_t>(m[i]) * es_,
                      static_cast<size_t>(es_));
    }
  }
  int in_ = -1, out_ = -1;
  int64_t es_ = 0;
  std::vector<int32_t> map_;
};

// Maps larger than this many elements stay on the reference kernel (the map costs 4 bytes per
// output element).
constexpr int64_t kMaxIndexMap = 1 << 22;

std::unique_ptr<FastStep> make_index_map(const ir::Graph& g, const ir::Node& node) {
  if (node.inputs.empty() || node.outputs.size() != 1) return nullptr;
  const int in = node.inputs[0], out = node.outputs[0];
  if (!static_type(g, in) || !static_type(g, out)) return nullptr;
  const ir::TensorType& it = g.values[static_cast<size_t>(in)].type;
  const ir::TensorType& ot = g.values[static_cast<size_t>(out)].type;
  if (it.dtype != ot.dtype || shape_numel(it.dims) > kMaxIndexMap ||
      shape_numel(ot.dims) > kMaxIndexMap)
    return nullptr;
  Tensor idx(DType::kInt64, it.dims);
  for (int64_t i = 0; i < idx.numel(); ++i) idx.data<int64_t>()[i] = i;
  std::vector<const Tensor*> ins = {&idx};
  for (size_t i = 1; i < node.inputs.size(); ++i) {
    const int v = node.inputs[i];
    if (v < 0) {
      ins.push_back(nullptr);
      continue;
    }
    const ir::Value& val = g.values[static_cast<size_t>(v)];
    if (!val.constant) return nullptr;
    ins.push_back(&*val.constant);
  }
  Tensor mapped(DType::kInt64, ot.dims);
  std::vector<Tensor*> outs = {&mapped};
  try {
    ops::ComputeContext ctx(node, ins, outs);
    ops::require_op(node).compute(ctx);
  } catch (const Error&) {
    return nullptr;  // the reference kernel will report it, with context, at run time
  }
  if (mapped.shape() != ot.dims) return nullptr;
  auto s = std::make_unique<IndexMapStep>();
  s->in_ = in;
  s->out_ = out;
  s->es_ = static_cast<int64_t>(dtype_size(ot.dtype));
  s->map_.resize(static_cast<size_t>(mapped.numel()));
  for (int64_t i = 0; i < mapped.numel(); ++i) {
    const int64_t src = mapped.data<int64_t>()[i];
    if (src < 0 || src >= idx.numel()) return nullptr;
    s->map_[static_cast<size_t>(i)] = static_cast<int32_t>(src);
  }
  return s;
}

// `count` runs of `bytes` bytes each: from src every `src_stride` bytes to dst back to back. The
// common small run sizes get a fixed-size copy (one load and store each) instead of a call.
template <size_t kBytes>
void copy_runs_fixed(unsigned char* dst, const unsigned char* src, int64_t count,
                     int64_t src_stride) {
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(dst + i * static_cast<int64_t>(kBytes), src + i * src_stride, kBytes);
}

void copy_runs(unsigned char* dst, const unsigned char* src, int64_t count, int64_t bytes,
               int64_t src_stride) {
  switch (bytes) {
    case 1: return copy_runs_fixed<1>(dst, src, count, src_stride);
    case 2: return copy_runs_fixed<2>(dst, src, count, src_stride);
    case 4: return copy_runs_fixed<4>(dst, src, count, src_stride);
    case 8: return copy_runs_fixed<8>(dst, src, count, src_stride);
    case 16: return copy_runs_fixed<16>(dst, src, count, src_stride);
    case 32: return copy_runs_fixed<32>(dst, src, count, src_stride);
    default:
      for (int64_t i = 0; i < count; ++i)
        std::memcpy(dst + i * bytes, src + i * src_stride, static_cast<size_t>(bytes));
  }
}

// lithe.DepthToSpaceNhwc: output row (n, h*bh + i) is, for each input pixel (n, h, w), the bw*C
// elements of X[n, h, w] from channel i*bw*C on, back to back. Rows are split over threads.
class DepthToSpaceNhwcStep final : public FastStep {
 public:
  const char* kind() const override { return "depth-to-space"; }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    const auto* x = static_cast<const unsigned char*>(vals[static_cast<size_t>(in_)]);
    auto* y = static_cast<unsigned char*>(vals[static_cast<size_t>(out_)]);
    const int64_t rows = n_ * h_ * bh_, run = bw_ * c_ * es_, xpix = bh_ * run;
    // Small copies run on thread 0 only: waking threads costs more than the copy.
    const bool small = rows * w_ * run < (1 << 16);
    if (small && t != 0) return;
    int64_t b, e;
    static_range(rows, t, small ? 1 : nt, &b, &e);
    for (int64_t r = b; r < e; ++r) {
      const int64_t img_row = r / bh_, i = r % bh_;  // (n, h) and the row within the block
      copy_runs(y + r * w_ * run, x + img_row * w_ * xpix + i * run, w_, run, xpix);
    }
  }
  int in_ = -1, out_ = -1;
  int64_t n_ = 0, h_ = 0, w_ = 0, c_ = 0, bh_ = 1, bw_ = 1, es_ = 0;
};

std::unique_ptr<FastStep> make_depth_to_space_nhwc(const ir::Graph& g, const ir::Node& node) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1) return nullptr;
  const int in = node.inputs[0], out = node.outputs[0];
  if (!static_type(g, in) || !static_type(g, out)) return nullptr;
  const ir::TensorType& it = g.values[static_cast<size_t>(in)].type;
  const ir::TensorType& ot = g.values[static_cast<size_t>(out)].type;
  ops::NhwcDepthToSpace s;
  try {
    s = ops::nhwc_depth_to_space(ops::NodeAttrs(node), it.dims);
  } catch (const Error&) {
    return nullptr;  // the reference kernel will report it, with context, at run time
  }
  if (it.dtype != ot.dtype || dtype_size(it.dtype) == 0 || s.out_shape != ot.dims) return nullptr;
  auto st = std::make_unique<DepthToSpaceNhwcStep>();
  st->in_ = in;
  st->out_ = out;
  st->n_ = s.n;
  st->h_ = s.h;
  st->w_ = s.w;
  st->c_ = s.c;
  st->bh_ = s.bh;
  st->bw_ = s.bw;
  st->es_ = static_cast<int64_t>(dtype_size(it.dtype));
  return st;
}

}  // namespace

std::unique_ptr<FastStep> make_copy_step(const ir::Graph& g, size_t n) {
  const ir::Node& node = g.nodes[n];
  if (node.domain == "lithe" && node.op_type == "DepthToSpaceNhwc")
    return make_depth_to_space_nhwc(g, node);
  if (!node.domain.empty()) return nullptr;
  if (node.op_type == "Concat") return make_concat_split(g, node, true);
  if (node.op_type == "Split") return make_concat_split(g, node, false);
  if (node.op_type == "ConstantOfShape") return make_fill(g, node);
  static const char* const kMoves[] = {"Slice", "Gather",       "Expand",
                                       "Tile",  "DepthToSpace", "SpaceToDepth"};
  for (const char* op : kMoves)
    if (node.op_type == op) return make_index_map(g, node);
  return nullptr;
}

}  // namespace lithe::runtime
