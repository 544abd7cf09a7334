#include "core/file_io.hpp"

#include <cstdio>
#include <fstream>

#include "core/error.hpp"

namespace lithe {

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(path, ": cannot write file");
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f.flush()) {
      std::remove(tmp.c_str());
      fail_runtime(path, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail_runtime(path, ": cannot rename temporary file");
  }
}

}  // namespace lithe
