// Checks on the bytes of a tensor that arrive from outside (model files, .npy files, inputs).
#pragma once
#include <string>

#include "core/tensor.hpp"

namespace lithe {

/// Fails (naming `what`) when a bool tensor stores a byte other than 0 or 1: the kernels read
/// bool elements as C++ bool, for which any other byte is undefined behaviour. Every way bytes
/// become a tensor (ONNX raw data, engine constants, .npy files, run inputs) checks it. No-op
/// for other element types.
void check_bool_bytes(const Tensor& t, const std::string& what);

}  // namespace lithe
