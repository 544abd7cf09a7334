// NumPy .npy files (format versions 1.0-3.0, little-endian, C order).
#pragma once
#include <string>

#include "core/tensor.hpp"

namespace lithe {

/// Reads a .npy file; fails with a message naming the file on anything malformed.
Tensor read_npy(const std::string& path);
/// Parses .npy bytes (`what` names the source in errors).
Tensor parse_npy(const std::string& bytes, const std::string& what);
/// Writes a .npy file (version 1.0), via a temporary file and a rename.
void write_npy(const std::string& path, const Tensor& t);
/// Serialises to .npy bytes.
std::string to_npy(const Tensor& t);

}  // namespace lithe
