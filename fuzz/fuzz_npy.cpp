// libFuzzer target: .npy bytes -> lithe::parse_npy (tests/model_probe.hpp, fuzz_npy_input).
// Every input must parse or fail with lithe::Error, and what parses must round-trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model_probe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    if (!lithe::test::fuzz_npy_input(std::string(reinterpret_cast<const char*>(data), size)))
      __builtin_trap();  // the round trip changed the tensor
  } catch (const lithe::Error&) {
  }
  return 0;
}
