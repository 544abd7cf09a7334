// Helpers shared by the fast-step families (fast_*.cpp): graph queries a step's preparation
// makes, and aligned storage for packed weights.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/error.hpp"
#include "ir/graph.hpp"
#include "ops/fused_internal.hpp"
#include "ops/op.hpp"

namespace lithe::runtime::step_util {

/// 64-byte-aligned, zero-filled float storage for packed weights.
struct AlignedFloats {
  std::unique_ptr<float, void (*)(void*)> p{nullptr, std::free};
  int64_t bytes = 0;  ///< allocated (for memory figures)
  explicit AlignedFloats(int64_t count = 0) {
    if (count <= 0) return;
    const size_t n = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
    p.reset(static_cast<float*>(std::aligned_alloc(64, n)));
    if (!p) fail_runtime("out of memory packing weights (", n, " bytes)");
    std::memset(p.get(), 0, n);
    bytes = static_cast<int64_t>(n);
  }
  float* data() const { return p.get(); }
};

/// The constant data of value v, or null (v < 0 or computed at run time).
inline const Tensor* constant_of(const ir::Graph& g, int v) {
  if (v < 0) return nullptr;
  const ir::Value& val = g.values[static_cast<size_t>(v)];
  return val.constant ? &*val.constant : nullptr;
}

/// A float32 value with a fully known shape.
inline bool is_f32_static(const ir::Graph& g, int v) {
  if (v < 0) return false;
  const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
  return t.dtype == DType::kFloat32 && t.fully_known();
}

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
                                    a.attr_floats("activation_params", {}), e)
      .empty();
}

}  // namespace lithe::runtime::step_util
