// Op family: fused (domain "lithe"). Conv, ConvTranspose, Gemm and MatMul with the ONNX op's
// inputs and attributes plus an epilogue: an optional residual input Z (same shape as the
// output) and an activation, y = act(op(inputs) + Z). The passes fuse_activation and
// fuse_residual produce them; node.opset is the ONNX opset of the op they replaced.
//
// The reference kernel runs the ONNX op's own infer/compute on the base inputs and then the
// shared epilogue (fused_internal.hpp), so it is exactly the unfused computation.
#include <algorithm>
#include <string>
#include <vector>

#include "ops/families.hpp"
#include "ops/fused_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using fused::Epilogue;

// The ONNX op a fused node extends.
const OpDef& base_op(const NodeAttrs& ctx) {
  const OpDef* op = find_op("", ctx.node().op_type);
  if (!op || fused::residual_index(ctx.node().op_type) < 0)
    ctx.fail("no fused form of ", ctx.node().op_type);
  return *op;
}

// How many of the node's inputs belong to the base op: those before Z's index, without
// trailing omitted ones (so an omitted bias reads as absent, not as an empty slot).
size_t base_input_count(const NodeAttrs& ctx, size_t num_inputs) {
  const size_t z = static_cast<size_t>(fused::residual_index(ctx.node().op_type));
  if (num_inputs > z + 1) ctx.fail("expected at most ", z + 1, " inputs, got ", num_inputs);
  size_t n = std::min(num_inputs, z);
  const auto& ins = ctx.node().inputs;
  while (n > 0 && n <= ins.size() && ins[n - 1] < 0) --n;
  return n;
}

Epilogue parse_attrs(const NodeAttrs& ctx) {
  Epilogue e;
  std::string err = fused::parse_epilogue(ctx.attr_string("activation", ""),
                                          ctx.attr_floats("activation_params", {}),
                                          ctx.attr_floats("activation_affine", {}), &e);
  if (!err.empty()) ctx.fail(err);
  return e;
}

// Input i's type as far as it is known (the context exposes only full shapes).
ir::TensorType input_type(const InferContext& ctx, size_t i) {
  ir::TensorType t;
  t.dtype = ctx.input_dtype(i);
  try {
    t.dims = ctx.input_shape(i);
    t.has_shape = true;
  } catch (const InferUnknown&) {
    t.has_shape = false;
  }
  return t;
}

void infer_fused(InferContext& ctx) {
  const OpDef& op = base_op(ctx);
  if (ctx.num_outputs() != 1) ctx.fail("expected 1 output, got ", ctx.num_outputs());
  const Epilogue e = parse_attrs(ctx);
  const size_t nb = base_input_count(ctx, ctx.num_inputs());
  const size_t zi = static_cast<size_t>(fused::residual_index(ctx.node().op_type));
  // Rebuild the base op's view of its inputs from what this context exposes.
  std::vector<ir::TensorType> types(nb);
  std::vector<const ir::TensorType*> type_ptrs(nb, nullptr);
  std::vector<const Tensor*> values(nb, nullptr);
  for (size_t i = 0; i < nb; ++i) {
    if (!ctx.has_input(i)) continue;
    types[i] = input_type(ctx, i);
    type_ptrs[i] = &types[i];
    if (ctx.input_value_known(i)) values[i] = &ctx.input_value(i);
  }
  InferContext base(ctx.node(), type_ptrs, values, ctx.num_outputs());
  try {
    op.infer(base);
  } catch (const InferUnknown&) {
    // Keep the element types the base op set, as graph inference does.
    for (size_t i = 0; i < base.outputs().size(); ++i)
      if (base.outputs()[i].dtype != DType::kUndefined)
        ctx.set_output_unknown(i, base.outputs()[i].dtype);
    throw;
  }
  const ir::TensorType& y = base.outputs().at(0);
  for (size_t i = 0; i < base.outputs().size(); ++i) {
    const ir::TensorType& t = base.outputs()[i];
    if (t.has_shape)
      ctx.set_output(i, t.dtype, t.dims);
    else
      ctx.set_output_unknown(i, t.dtype);
  }
  const bool has_z = ctx.has_input(zi);
  if ((has_z || e.act != fused::Activation::kNone) && !is_float(y.dtype))
    ctx.fail("a fused activation or residual needs a float output, got ", dtype_name(y.dtype));
  if (has_z) {
    if (ctx.input_dtype(zi) != y.dtype)
      ctx.fail("residual Z is ", dtype_name(ctx.input_dtype(zi)), " but the output is ",
               dtype_name(y.dtype));
    // An unknown shape on either side is checked at run time (compute_fused) instead.
    const ir::TensorType zt = input_type(ctx, zi);
    if (y.fully_known() && zt.fully_known() && zt.dims != y.dims)
      ctx.fail("residual Z has shape ", shape_str(zt.dims), ", expected the output's ",
               shape_str(y.dims));
  }
}

void compute_fused(ComputeContext& ctx) {
  const OpDef& op = base_op(ctx);
  const Epilogue e = parse_attrs(ctx);
  const size_t nb = base_input_count(ctx, ctx.num_inputs());
  const size_t zi = static_cast<size_t>(fused::residual_index(ctx.node().op_type));
  std::vector<const Tensor*> ins(nb, nullptr);
  for (size_t i = 0; i < nb; ++i)
    if (ctx.has_input(i)) ins[i] = &ctx.input(i);
  std::vector<Tensor*> outs(ctx.num_outputs(), nullptr);
  for (size_t i = 0; i < outs.size(); ++i)
    if (ctx.has_output(i)) outs[i] = &ctx.output(i);
  ComputeContext base(ctx.node(), ins, outs, ctx.subgraphs());
  op.compute(base);

  const Tensor* z = ctx.has_input(zi) ? &ctx.input(zi) : nullptr;
  if (!z && e.act == fused::Activation::kNone) return;
  Tensor& y = ctx.output(0);
  if (z && (z->dtype() != y.dtype() || z->shape() != y.shape()))
    ctx.fail("residual Z is ", dtype_name(z->dtype()), " ", shape_str(z->shape()),
             ", expected the output's ", dtype_name(y.dtype()), " ", shape_str(y.shape()));
  visit_float_dtype(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    fused::apply_epilogue<T>(y.data<T>(), y.numel(), z ? z->data<T>() : nullptr, e);
  });
}

}  // namespace

void add_fused_ops(std::vector<OpDef>& ops) {
  for (const char* name : {"Conv", "ConvTranspose", "Gemm", "MatMul"})
    ops.push_back(OpDef{name, "lithe", 1, infer_fused, compute_fused});
}

}  // namespace lithe::ops
