// Model bytes loaded and run the way lithe loads and runs a model file, for the fuzz targets
// (fuzz/), their regression test and the byte-flip sweep (tests/unit/test_byte_flip.cpp),
// and what each fuzz target does with one input. An engine is verified and
// loaded, an ONNX model imported (no external data), optimized, planned and checked; then, when
// every value of the graph is small and no window op needs much work, it runs once on seeded
// inputs with the executor
// Engine::load would pick. Failures are lithe::Error; anything else is a bug.
#pragma once
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "builder/build.hpp"
#include "core/npy.hpp"
#include "engine/engine.hpp"
#include "engine/engine_format.hpp"
#include "kernels/cpu.hpp"
#include "runtime/executor.hpp"
#include "runtime/ref_executor.hpp"

namespace lithe::test {

/// What a probe may run: graphs whose every value is at most this many elements, planned in
/// an arena of at most this many bytes (bigger ones are only loaded).
struct ProbeLimits {
  int64_t max_value_elements = int64_t{1} << 18;
  int64_t max_arena_bytes = int64_t{64} << 20;
  /// Window ops (a `kernel_shape`, or a conv's weights): output elements x window taps (x input
  /// channels per group for a conv). Small tensors can still need much work: a max pool over a
  /// 220,000-long row with a 200-tap window took 11 s under the sanitizers.
  int64_t max_window_work = int64_t{1} << 22;
};

enum class ProbeResult { kLoaded, kRan };

inline bool is_engine_bytes(const std::string& bytes) {
  return bytes.size() >= sizeof engine::kMagic &&
         std::memcmp(bytes.data(), engine::kMagic, sizeof engine::kMagic) == 0;
}

/// An engine's contents from its bytes, checked as Engine::load checks a file: verified and
/// loaded, then the memory plan checked for overlaps (plan::check_plan).
inline engine::EngineContents probe_engine(std::shared_ptr<const std::string> bytes,
                                           const std::string& what) {
  engine::EngineContents c = engine::load_engine_bytes(std::move(bytes), what);
  try {
    plan::check_plan(*c.graph, c.plan);
  } catch (const Error& e) {
    throw e.with_context(what);
  }
  return c;
}

/// Engine contents from bytes: an engine file's bytes (kept alive by the constants that
/// borrow them), else an ONNX model's, built with the default options.
inline engine::EngineContents probe_load(const std::string& bytes, const std::string& what) {
  if (is_engine_bytes(bytes)) return probe_engine(std::make_shared<const std::string>(bytes), what);
  return build::build_model_bytes(bytes, "", what, build::BuildOptions{}).contents;
}

/// Output elements x window taps of a node with a window (x input channels per group when its
/// weights are a constant), saturating; 0 for other nodes or unknown shapes.
inline int64_t window_work(const ir::Graph& g, const ir::Node& n) {
  std::vector<int64_t> factors;
  if (auto it = n.attrs.find("kernel_shape"); it != n.attrs.end()) factors = it->second.ints;
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    const ir::Value& w = g.values[static_cast<size_t>(n.inputs[1])];
    if (w.constant && w.constant->rank() >= 3 &&
        (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "ConvNhwc")) {
      const Shape& ws = w.constant->shape();
      factors.assign(ws.begin() + 1, ws.end());  // channels per group, then the window
    }
  }
  if (factors.empty() || n.outputs.empty() || n.outputs[0] < 0) return 0;
  const ir::TensorType& t = g.values[static_cast<size_t>(n.outputs[0])].type;
  if (!t.fully_known()) return 0;
  for (int64_t d : t.dims) factors.push_back(d);
  constexpr int64_t kCap = int64_t{1} << 40;
  int64_t work = 1;
  for (int64_t f : factors) {
    if (f <= 0) return 0;
    work = work > kCap / f ? kCap : work * f;
  }
  return work;
}

/// True when every value of `g` (constants aside) has a known shape within the limits, and no
/// node loops (a Loop or Scan may legitimately run for as long as its trip count says).
inline bool probe_small(const ir::Graph& g, const plan::MemoryPlan& p, const ProbeLimits& lim) {
  if (p.arena_bytes > lim.max_arena_bytes) return false;
  for (const ir::Node& n : g.nodes) {
    if (n.op_type == "Loop" || n.op_type == "Scan") return false;
    if (window_work(g, n) > lim.max_window_work) return false;
  }
  for (const ir::Value& v : g.values) {
    if (v.constant) continue;
    if (!v.type.fully_known() || !dtype_supported(v.type.dtype) || v.type.dtype == DType::kString)
      return false;
    // Shape inference may give a value dims whose product overflows: multiply with a bound.
    int64_t n = 1;
    for (int64_t d : v.type.dims) {
      if (d != 0 && n > lim.max_value_elements / d) return false;
      n *= d;
    }
  }
  return true;
}

/// A seeded input of `v`'s type: values in [-1, 3) cast to its element type, so integer
/// inputs are small non-negative or -1 (indices and sizes that are often, not always, valid).
inline Tensor probe_input(const ir::Value& v, unsigned seed) {
  Tensor t(DType::kFloat32, v.type.dims);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 3.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return v.type.dtype == DType::kFloat32 ? t : t.cast(v.type.dtype);
}

/// Runs loaded contents once when the graph is small (probe_small).
inline ProbeResult probe_run(const engine::EngineContents& c, const ProbeLimits& lim = {}) {
  std::shared_ptr<const ir::Graph> g = c.graph;
  if (!probe_small(*g, c.plan, lim)) return ProbeResult::kLoaded;
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < g->inputs.size(); ++i)
    inputs.push_back(
        probe_input(g->values[static_cast<size_t>(g->inputs[i])], 17 + static_cast<unsigned>(i)));
  if (runtime::Program::supports(*g, c.plan)) {
    auto program = std::make_shared<const runtime::Program>(g, c.plan, kernels::best_isa(),
                                                            c.mapped, c.mapped_bytes);
    runtime::Session s(program, 1);
    for (size_t i = 0; i < inputs.size(); ++i) s.input(i) = inputs[i];
    s.run();
  } else {
    runtime::RefExecutor exec(g, &c.plan);
    auto arena = runtime::allocate_arena(c.plan.arena_bytes);
    exec.run(inputs, arena.get());
  }
  return ProbeResult::kRan;
}

/// Loads `bytes` (probe_load) and runs them when small (probe_run).
inline ProbeResult probe_model(const std::string& bytes, const std::string& what,
                               const ProbeLimits& lim = {}) {
  return probe_run(probe_load(bytes, what), lim);
}

// ---- What each libFuzzer target (fuzz/) does with one input; the regression test
// (tests/unit/test_fuzz_regressions.cpp) replays the findings with the same functions.
// Each returns or throws lithe::Error; anything else is a bug.

/// fuzz_onnx: ONNX bytes -> import (no external data) -> optimize, plan -> run when small.
inline void fuzz_onnx_input(const std::string& bytes) {
  probe_run(build::build_model_bytes(bytes, "", "fuzz.onnx", build::BuildOptions{}).contents);
}

/// fuzz_engine and fuzz_engine_semantics: the checksum recomputed (a mutated byte would
/// otherwise stop at the checksum every time; the unit tests cover that check), then verify,
/// load and run when small.
inline void fuzz_engine_input(std::string bytes) {
  engine::reseal(bytes);
  probe_run(probe_engine(std::make_shared<const std::string>(std::move(bytes)), "fuzz.lithe"));
}

/// fuzz_npy: .npy bytes -> parse_npy; what parsed is read end to end (ASan checks its extent)
/// and must survive a round trip through to_npy: false when it does not.
inline bool fuzz_npy_input(const std::string& bytes) {
  Tensor t = parse_npy(bytes, "fuzz.npy");
  unsigned sum = 0;
  for (size_t i = 0; i < t.nbytes(); ++i) sum += static_cast<const unsigned char*>(t.raw())[i];
  (void)sum;
  Tensor back = parse_npy(to_npy(t), "fuzz round trip");
  return back.dtype() == t.dtype() && back.shape() == t.shape() && back.nbytes() == t.nbytes() &&
         (t.nbytes() == 0 || std::memcmp(back.raw(), t.raw(), t.nbytes()) == 0);
}

}  // namespace lithe::test
