// Many contexts on one engine, driven from many threads at once, give exactly the results of a
// single context; repeated runs of one context are bitwise identical.
//
// Concurrency.ManyContextsManyThreadsMatchSingleContext: 16 contexts on one engine, 8 driver
// threads (each owns two contexts; half the contexts use 2 kernel threads of their own), 10,000
// inferences in all, each on one of 32 seeded inputs chosen by (thread, iteration): every
// output must be bitwise equal to what one context computed for that input beforehand.
// LITHE_CONCURRENCY_RUNS overrides the 10,000 (the TSan job runs fewer).
//
// Determinism.ThousandRepeatedRunsAreBitwiseIdentical: 1,000 runs of one context on one input,
// every output bitwise equal to the first; a context created afterwards agrees too.
//
// Both run the bundled example (tests/CMakeLists.txt builds it in memory) and, when present in
// models-cache, the PP-OCR orientation classifier (a real model with most of the fast kernels).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../real_models.hpp"
#include "graph_test_util.hpp"
#include "lithe/lithe.hpp"

namespace lithe {
namespace {

struct Model {
  std::string name;
  std::filesystem::path path;
  LoadOptions opts;
};

std::vector<Model> models() {
  std::vector<Model> out;
  Model tiny{"tiny_cnn", std::filesystem::path(LITHE_SOURCE_DIR) / "examples" / "tiny_cnn.onnx", {}};
  tiny.opts.input_shapes["image"] = {1, 3, 64, 64};
  out.push_back(tiny);
  const test::RealModel& cls = test::real_models().front();  // PP-OCR cls, the smallest
  if (std::filesystem::exists(test::real_model_path(cls)))
    out.push_back({cls.name, test::real_model_path(cls), cls.load_options()});
  return out;
}

// One seeded input per model input; floats uniform in [-1, 1).
std::vector<Tensor> seeded_inputs(const Engine& e, unsigned seed) {
  std::vector<Tensor> ins;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (const TensorInfo& info : e.inputs()) {
    Tensor t(DType::kFloat32, info.shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
    ins.push_back(info.dtype == DType::kFloat32 ? std::move(t) : t.cast(info.dtype));
  }
  return ins;
}

std::vector<Tensor> run_once(const Engine& e, Context& ctx, const std::vector<Tensor>& ins) {
  for (size_t i = 0; i < ins.size(); ++i) ctx.set_input(e.inputs()[i].name, ins[i]);
  ctx.run();
  std::vector<Tensor> outs;
  for (size_t k = 0; k < e.outputs().size(); ++k) outs.push_back(ctx.output(k).clone());
  return outs;
}

int runs_from_env(int fallback) {
  const char* env = std::getenv("LITHE_CONCURRENCY_RUNS");
  return env ? std::max(1, std::atoi(env)) : fallback;
}

TEST(Concurrency, ManyContextsManyThreadsMatchSingleContext) {
  constexpr int kContexts = 16, kDrivers = 8, kInputs = 32;
  const int total = runs_from_env(10000);
  for (const Model& m : models()) {
    SCOPED_TRACE(m.name);
    std::shared_ptr<Engine> e = Engine::load(m.path.string(), m.opts);
    std::vector<std::vector<Tensor>> inputs, expected;
    {
      auto single = e->create_context();
      for (int s = 0; s < kInputs; ++s) {
        inputs.push_back(seeded_inputs(*e, 1000u + static_cast<unsigned>(s)));
        expected.push_back(run_once(*e, *single, inputs.back()));
      }
    }
    // The inputs differ, so a context that mixed up another's state would be seen.
    ASSERT_FALSE(test::same_bits(expected[0], expected[1]));
    std::vector<std::unique_ptr<Context>> ctxs;
    for (int c = 0; c < kContexts; ++c) {
      ContextOptions co;
      co.threads = c % 2 ? 2 : 1;
      ctxs.push_back(e->create_context(co));
    }
    std::atomic<int> mismatches{0}, errors{0}, done{0};
    std::vector<std::thread> drivers;
    for (int t = 0; t < kDrivers; ++t) {
      drivers.emplace_back([&, t] {
        const int mine = total / kDrivers + (t < total % kDrivers ? 1 : 0);
        std::mt19937 pick(static_cast<unsigned>(t) * 7919u + 1u);
        for (int i = 0; i < mine; ++i) {
          Context& ctx = *ctxs[static_cast<size_t>(2 * t + i % 2)];
          const size_t s = pick() % kInputs;
          try {
            if (!test::same_bits(run_once(*e, ctx, inputs[s]), expected[s])) ++mismatches;
          } catch (const std::exception&) {
            ++errors;
          }
          ++done;
        }
      });
    }
    for (auto& d : drivers) d.join();
    EXPECT_EQ(done.load(), total);
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(mismatches.load(), 0) << "of " << total << " inferences";
    std::printf("[concurrency] %-10s isa %-8s %d inferences on %d contexts from %d threads: "
                "%d mismatches\n",
                m.name.c_str(), e->isa().c_str(), done.load(), kContexts, kDrivers,
                mismatches.load());
  }
}

TEST(Determinism, ThousandRepeatedRunsAreBitwiseIdentical) {
  const int runs = std::min(1000, runs_from_env(1000));
  for (const Model& m : models()) {
    SCOPED_TRACE(m.name);
    std::shared_ptr<Engine> e = Engine::load(m.path.string(), m.opts);
    const std::vector<Tensor> ins = seeded_inputs(*e, 7);
    auto ctx = e->create_context();
    const std::vector<Tensor> first = run_once(*e, *ctx, ins);
    int differing = 0;
    for (int r = 1; r < runs; ++r) differing += !test::same_bits(run_once(*e, *ctx, ins), first);
    EXPECT_EQ(differing, 0) << "of " << runs << " runs";
    auto fresh = e->create_context();
    EXPECT_TRUE(test::same_bits(run_once(*e, *fresh, ins), first)) << "a new context differs";
    std::printf("[determinism] %-10s %d runs, %d differing\n", m.name.c_str(), runs, differing);
  }
}

}  // namespace
}  // namespace lithe
