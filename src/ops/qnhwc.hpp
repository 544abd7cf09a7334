// lithe.QConvNhwc's output stage from its inputs (ops/qnhwc.cpp), for the INT8 runtime step.
#pragma once
#include <vector>

#include "ops/op.hpp"
#include "quant/qconv.hpp"

namespace lithe::ops {

/// Input indices of lithe.QConvNhwc.
enum QConvInput { kQX, kQXScale, kQXZp, kQW, kQWScale, kQYScale, kQYZp, kQB, kQZ, kQZScale, kQZZp };

/// The output stage of a QConvNhwc node from its scale and zero-point inputs (`in[i]`, null
/// for an omitted one; X, W, B and Z are not read): scales checked positive and finite,
/// `channels` weight scales.
quant::QConvOutput qconv_output_stage(const NodeAttrs& a, const std::vector<const Tensor*>& in,
                                      int64_t channels);

}  // namespace lithe::ops
