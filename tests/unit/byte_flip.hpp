// Byte-flip sweeps shared by the engine corruption test and the ONNX/engine byte-flip test:
// each chosen byte of a good file set to its complement, then to zero, one at a time, and
// handed to a loader that must either succeed or throw lithe::Error with a one-line message;
// any other exception fails the test. The counts are printed so the figures are visible.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "lithe/error.hpp"

namespace lithe::test {

struct FlipCounts {
  int loaded = 0;       ///< the loader accepted the bytes
  int clear_error = 0;  ///< lithe::Error, one line, starting with the expected prefix
  int other = 0;        ///< anything else (each also fails the test)

  FlipCounts& operator+=(const FlipCounts& o) {
    loaded += o.loaded;
    clear_error += o.clear_error;
    other += o.other;
    return *this;
  }
};

/// Loads bytes; throws lithe::Error when they are refused.
using FlipLoader = std::function<void(const std::string& bytes)>;

/// Runs `load` on `bytes` and counts the outcome. A lithe::Error must be one line and start
/// with `prefix` (the name the loader gave the bytes; "" accepts any start).
inline void try_load(const FlipLoader& load, const std::string& bytes, const std::string& prefix,
                     const std::string& label, FlipCounts& c) {
  try {
    load(bytes);
    ++c.loaded;
    if (std::getenv("LITHE_SWEEP_VERBOSE")) std::printf("[sweep] loaded: %s\n", label.c_str());
  } catch (const Error& err) {
    const std::string msg = err.what();
    if (msg.rfind(prefix, 0) != 0 || msg.find('\n') != std::string::npos) {
      ADD_FAILURE() << label << ": unclear message: " << msg;
      ++c.other;
    } else {
      ++c.clear_error;
    }
  } catch (const std::exception& err) {
    ADD_FAILURE() << label << ": non-lithe exception: " << err.what();
    ++c.other;
  }
}

/// Byte positions to mutate in [from, size): every byte when there are at most `all`,
/// otherwise a stride that still gives at least `at_least` positions.
inline std::vector<size_t> flip_positions(size_t from, size_t size, size_t all = 8192,
                                          size_t at_least = 2000) {
  std::vector<size_t> p;
  if (size <= from) return p;
  const size_t n = size - from;
  const size_t stride = n <= all ? 1 : n / at_least;
  for (size_t i = from; i < size; i += stride) p.push_back(i);
  return p;
}

/// Each byte of `good` at `where` set to its complement, then to zero (where that changes
/// it), one at a time; `fix` (if set) adjusts each mutated copy before loading (e.g. a fresh
/// engine checksum).
inline FlipCounts flip_each(const std::string& good, const std::vector<size_t>& where,
                            const FlipLoader& load, const std::string& prefix,
                            const std::string& label,
                            const std::function<void(std::string&)>& fix = {}) {
  FlipCounts c;
  for (size_t i : where)
    for (int mode = 0; mode < 2; ++mode) {
      std::string b = good;
      const auto old = static_cast<unsigned char>(b[i]);
      const auto now = mode == 0 ? static_cast<unsigned char>(old ^ 0xFF) : 0;
      if (now == old) continue;
      b[i] = static_cast<char>(now);
      if (fix) fix(b);
      try_load(load, b, prefix, label + " " + std::to_string(i), c);
    }
  return c;
}

inline void print_counts(const char* tag, const std::string& what, const FlipCounts& c) {
  std::printf("[%s] %-40s loaded %6d  clear error %6d  other %d\n", tag, what.c_str(), c.loaded,
              c.clear_error, c.other);
}

}  // namespace lithe::test
