// libFuzzer target: ONNX model bytes -> import -> optimize, plan (lithe build in memory) ->
// one run on seeded inputs when every value is small (tests/model_probe.hpp,
// fuzz_onnx_input). Every input must build or fail with lithe::Error. External data is
// refused (no base directory).
#include <cstddef>
#include <cstdint>
#include <string>

#include "model_probe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lithe::test::fuzz_onnx_input(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const lithe::Error&) {
  }
  return 0;
}
