// Writing whole files safely.
#pragma once
#include <string>

namespace lithe {

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so a failure
/// never leaves a partial file at `path`. Fails naming the path: cannot open (bad input) or
/// write / rename failed (runtime).
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace lithe
