// TensorProto -> Tensor, with external data resolved safely.
#pragma once
#include <string>

#include "core/tensor.hpp"
#include "onnx/onnx_pb.h"

namespace lithe::onnx {

/// Converts a TensorProto. `base_dir` resolves external data (empty: external data refused).
/// `what` names the tensor in errors.
Tensor tensor_from_proto(const ::onnx::TensorProto& p, const std::string& base_dir,
                         const std::string& what);

}  // namespace lithe::onnx
