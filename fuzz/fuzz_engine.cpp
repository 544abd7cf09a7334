// libFuzzer target: engine file bytes -> checksum recomputed -> verify -> load -> one run on
// seeded inputs when every value is small (tests/model_probe.hpp, fuzz_engine_input). The
// byte mutations reach the FlatBuffers verifier and the header checks; the structure-aware
// target (fuzz_engine_semantics.cpp) goes past the verifier.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model_probe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lithe::test::fuzz_engine_input(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const lithe::Error&) {
  }
  return 0;
}
