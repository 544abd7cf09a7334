// Helpers shared by the fast-step families (fast_*.cpp): graph queries a step's preparation
// makes, and aligned storage for packed weights.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.hpp"
#include "core/memory.hpp"
#include "ir/graph.hpp"
#include "ops/conv_pool_internal.hpp"
#include "ops/fused_internal.hpp"
#include "ops/op.hpp"

namespace lithe::runtime::step_util {

/// 64-byte-aligned, zero-filled float storage for packed weights.
struct AlignedFloats {
  std::shared_ptr<void> p;
  int64_t bytes = 0;  ///< allocated (for memory figures)
  explicit AlignedFloats(int64_t count = 0) {
    if (count <= 0) return;
    const size_t n = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
    p = zeroed_memory(n);
    if (!p) fail_runtime("out of memory packing weights (", n, " bytes)");
    bytes = static_cast<int64_t>(n);
  }
  AlignedFloats(AlignedFloats&&) = default;
  AlignedFloats& operator=(AlignedFloats&&) = default;
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  float* data() const { return static_cast<float*>(p.get()); }
};

/// The constant data of value v, or null (v < 0 or computed at run time).
inline const Tensor* constant_of(const ir::Graph& g, int v) {
  if (v < 0) return nullptr;
  const ir::Value& val = g.values[static_cast<size_t>(v)];
  return val.constant ? &*val.constant : nullptr;
}

/// A value of element type `dtype` with a fully known shape.
inline bool is_static(const ir::Graph& g, int v, DType dtype) {
  if (v < 0) return false;
  const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
  return t.dtype == dtype && t.fully_known();
}
inline bool is_f32_static(const ir::Graph& g, int v) { return is_static(g, v, DType::kFloat32); }

inline const Shape& dims_of(const ir::Graph& g, int v) {
  return g.values[static_cast<size_t>(v)].type.dims;
}

/// Input i of the node, or -1 when absent.
inline int input_at(const ir::Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : -1; }

/// The operands of a 2-D conv-like node: X, constant W, optional constant bias, optional
/// residual Z (input `z_index`, -1 for none) and Y, all float32 4-D with static shapes, Z shaped
/// like Y.
struct ConvOperands {
  int x = -1, w = -1, b = -1, z = -1, y = -1;
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
};

/// Fills `o`; false when an operand is missing or not as above (the reference kernel runs).
inline bool conv_operands(const ir::Graph& g, const ir::Node& node, int z_index, ConvOperands* o) {
  o->x = input_at(node, 0);
  o->w = input_at(node, 1);
  o->b = input_at(node, 2);
  o->z = z_index >= 0 ? input_at(node, static_cast<size_t>(z_index)) : -1;
  o->y = node.outputs.size() == 1 ? node.outputs[0] : -1;
  o->weight = constant_of(g, o->w);
  o->bias = constant_of(g, o->b);
  if (!is_f32_static(g, o->x) || !is_f32_static(g, o->y) || !o->weight ||
      o->weight->dtype() != DType::kFloat32 || o->weight->rank() != 4 ||
      (o->b >= 0 && (!o->bias || o->bias->dtype() != DType::kFloat32)) ||
      (o->z >= 0 && !is_f32_static(g, o->z)))
    return false;
  const Shape& ys = dims_of(g, o->y);
  return dims_of(g, o->x).size() == 4 && ys.size() == 4 && (o->z < 0 || dims_of(g, o->z) == ys);
}

/// The fused epilogue of a lithe-domain op; false when its attributes are not valid.
inline bool parse_act(const ops::NodeAttrs& a, ops::fused::Epilogue* e) {
  return ops::fused::parse_epilogue(a.attr_string("activation", ""),
                                    a.attr_floats("activation_params", {}),
                                    a.attr_floats("activation_affine", {}), e)
      .empty();
}

/// The shapes and window of a channels-last conv step (fast_steps.cpp's ConvStep, fast_q8.cpp's
/// QConvStep), which derive from it.
struct ConvShape {
  int64_t nb_ = 0, ih_ = 0, iw_ = 0, c_ = 0, oh_ = 0, ow_ = 0, m_ = 0, group_ = 1, cg_ = 0, mg_ = 0;
  int64_t kh_ = 1, kw_ = 1, sh_ = 1, sw_ = 1, ph_ = 0, pw_ = 0, dh_ = 1, dw_ = 1;
  int64_t macs_ = 0;

  /// From X [N, H, W, C], Y [N, OH, OW, M], W [M, C/group, kH, kW] and the window.
  void set_shape(const Shape& xs, const Shape& ys, const Shape& ws, int64_t group,
                 const ops::conv_pool::Geometry& geo) {
    nb_ = xs[0];
    ih_ = xs[1];
    iw_ = xs[2];
    c_ = xs[3];
    oh_ = ys[1];
    ow_ = ys[2];
    m_ = ws[0];
    group_ = group;
    cg_ = c_ / group;
    mg_ = m_ / group;
    kh_ = ws[2];
    kw_ = ws[3];
    sh_ = geo.strides[0];
    sw_ = geo.strides[1];
    ph_ = geo.pad_begin[0];
    pw_ = geo.pad_begin[1];
    dh_ = geo.dilations[0];
    dw_ = geo.dilations[1];
    macs_ = nb_ * oh_ * ow_ * m_ * cg_ * kh_ * kw_;
  }

  /// The geometry of a depthwise kernel's arguments (DwConvArgs, Q8DwConvArgs).
  template <class A>
  void depthwise_geometry(A& d, int64_t y_stride) const {
    d.ih = ih_;
    d.iw = iw_;
    d.x_stride = c_;
    d.oh = oh_;
    d.ow = ow_;
    d.y_stride = y_stride;
    d.c = c_;
    d.kh = kh_;
    d.kw = kw_;
    d.sh = sh_;
    d.sw = sw_;
    d.ph = ph_;
    d.pw = pw_;
    d.dh = dh_;
    d.dw = dw_;
  }
};

/// The broadcast as a loop nest: out dims (outermost first, the last one the inner run) with
/// each operand's element strides (0 where it broadcasts).
struct Nest {
  static constexpr int kMaxRank = 6;
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t sa[kMaxRank] = {}, sb[kMaxRank] = {};
};

/// Whether out is the multidirectional broadcast of shapes a and b (rank at most 8).
inline bool broadcasts_to(const Shape& as, const Shape& bs, const Shape& out) {
  if (out.size() > 8 || as.size() > out.size() || bs.size() > out.size()) return false;
  for (size_t k = 0; k < out.size(); ++k) {
    const int64_t o = out[out.size() - 1 - k];
    const int64_t da = k < as.size() ? as[as.size() - 1 - k] : 1;
    const int64_t db = k < bs.size() ? bs[bs.size() - 1 - k] : 1;
    if ((da != o && da != 1) || (db != o && db != 1) || o != std::max(da, db)) return false;
  }
  return true;
}

/// Builds the collapsed nest of out = broadcast(a, b); false when more than kMaxRank dims
/// remain after collapsing.
inline bool build_nest(const Shape& as, const Shape& bs, const Shape& out, Nest* nest) {
  const size_t r = out.size();
  std::vector<int64_t> d(r), sa(r, 0), sb(r, 0);
  auto strides = [&](const Shape& s, std::vector<int64_t>& st) {
    int64_t stride = 1;
    for (size_t k = 0; k < s.size(); ++k) {
      const size_t i = s.size() - 1 - k, o = r - 1 - k;
      st[o] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
  };
  strides(as, sa);
  strides(bs, sb);
  for (size_t i = 0; i < r; ++i) d[i] = out[i];
  // Drop dims of size 1, then merge neighbours whose strides chain for both operands.
  std::vector<int64_t> cd, ca, cb;
  for (size_t i = 0; i < r; ++i) {
    if (d[i] == 1) continue;
    if (!cd.empty() && ca.back() == sa[i] * d[i] && cb.back() == sb[i] * d[i]) {
      cd.back() *= d[i];
      ca.back() = sa[i];
      cb.back() = sb[i];
      continue;
    }
    cd.push_back(d[i]);
    ca.push_back(sa[i]);
    cb.push_back(sb[i]);
  }
  if (cd.empty()) {
    cd.push_back(1);
    ca.push_back(1);
    cb.push_back(1);
  }
  if (cd.size() > static_cast<size_t>(Nest::kMaxRank)) return false;
  nest->rank = static_cast<int>(cd.size());
  for (size_t i = 0; i < cd.size(); ++i) {
    nest->dims[i] = cd[i];
    nest->sa[i] = ca[i];
    nest->sb[i] = cb[i];
  }
  return true;
}

/// The scales and zero points of an 8-input INT8 op (lithe.QBinaryU8, lithe.QMatMulU8:
/// a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp), for a, b and y: constant scalars, the
/// scales positive and finite. False otherwise (the reference reports it).
inline bool u8_operand_params(const ir::Graph& g, const ir::Node& node, float scale[3], int32_t zp[3]) {
  if (node.inputs.size() != 8) return false;
  for (int q = 0; q < 3; ++q) {
    const Tensor* s = constant_of(g, node.inputs[q == 0 ? 1 : q == 1 ? 4 : 6]);
    const Tensor* z = constant_of(g, node.inputs[q == 0 ? 2 : q == 1 ? 5 : 7]);
    if (!s || !z || s->dtype() != DType::kFloat32 || z->dtype() != DType::kUInt8 ||
        s->numel() != 1 || z->numel() != 1)
      return false;
    scale[q] = s->data<float>()[0];
    zp[q] = z->data<uint8_t>()[0];
    if (!(scale[q] > 0) || !std::isfinite(scale[q])) return false;
  }
  return true;
}

/// The batches of a MatMul A [..., M, K] x B [..., K, N] -> Y [..., M, N] with numpy
/// broadcasting of the batch dims (right-aligned; a dim of 1 broadcasts): per batch of Y, the
/// element offsets of its A and B matrices. False when the shapes are not of that form.
inline bool matmul_batches(const Shape& as, const Shape& bs, const Shape& ys,
                           std::vector<int64_t>* a_off, std::vector<int64_t>* b_off) {
  if (as.size() < 2 || bs.size() < 2 || as.back() != bs[bs.size() - 2]) return false;
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  const size_t rank = std::max(as.size(), bs.size());
  if (ys.size() != rank || ys[rank - 2] != m || ys[rank - 1] != n) return false;
  const size_t nb = rank - 2;
  std::vector<int64_t> adim(nb, 1), bdim(nb, 1);
  for (size_t i = 0; i + 2 < as.size(); ++i) adim[nb - (as.size() - 2) + i] = as[i];
  for (size_t i = 0; i + 2 < bs.size(); ++i) bdim[nb - (bs.size() - 2) + i] = bs[i];
  int64_t batches = 1;
  for (size_t d = 0; d < nb; ++d) {
    if (ys[d] != std::max(adim[d], bdim[d]) || (adim[d] != 1 && adim[d] != ys[d]) ||
        (bdim[d] != 1 && bdim[d] != ys[d]))
      return false;
    batches *= ys[d];
  }
  a_off->clear();
  b_off->clear();
  for (int64_t i = 0; i < batches; ++i) {
    int64_t rest = i, ao = 0, bo = 0, astride = m * k, bstride = k * n;
    for (size_t d = nb; d-- > 0;) {
      const int64_t idx = rest % ys[d];
      rest /= ys[d];
      if (adim[d] != 1) ao += idx * astride;
      if (bdim[d] != 1) bo += idx * bstride;
      astride *= adim[d];
      bstride *= bdim[d];
    }
    a_off->push_back(ao);
    b_off->push_back(bo);
  }
  return true;
}

}  // namespace lithe::runtime::step_util
