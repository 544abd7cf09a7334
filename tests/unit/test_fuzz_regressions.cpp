// Every input a fuzz target crashed on, replayed after the fix: tests/fuzz_regressions/<target>/
// holds the reproducers (scripts/fuzz.sh keeps them in build-fuzz/work/artifacts/<target>/),
// each fed to the same function the target calls (tests/model_probe.hpp). Each must be
// handled: success or lithe::Error, nothing else.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../model_probe.hpp"

namespace lithe::test {
namespace {

namespace fs = std::filesystem;

// The reproducers of one target, sorted.
std::vector<fs::path> reproducers(const char* target) {
  std::vector<fs::path> files;
  const fs::path dir = fs::path(LITHE_SOURCE_DIR) / "tests" / "fuzz_regressions" / target;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

template <class F>
void replay(const char* target, F&& input) {
  int n = 0, errors = 0;
  for (const fs::path& p : reproducers(target)) {
    SCOPED_TRACE(p.string());
    ++n;
    try {
      input(read_file(p));
    } catch (const Error& e) {
      ++errors;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-lithe exception: " << e.what();
    }
  }
  std::printf("[fuzz-regressions] %-17s %d reproducers, %d refused with lithe::Error\n", target, n,
              errors);
}

TEST(FuzzRegressions, Onnx) { replay("onnx", fuzz_onnx_input); }
TEST(FuzzRegressions, Engine) { replay("engine", fuzz_engine_input); }
TEST(FuzzRegressions, EngineSemantics) { replay("engine_semantics", fuzz_engine_input); }
TEST(FuzzRegressions, Npy) {
  replay("npy", [](const std::string& b) { EXPECT_TRUE(fuzz_npy_input(b)) << "round trip"; });
}

}  // namespace
}  // namespace lithe::test
