// The fast runtime's results do not depend on the thread count: every real model present in
// models-cache (scripts/fetch_models.sh), loaded as `lithe run` does (ONNX, optimized), gives
// bitwise the same outputs with 1, 2, 3 and 4 threads on the same seeded input.
// LITHE_THREAD_MODELS=name,name limits the set; absent models are skipped.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lithe/lithe.hpp"

namespace lithe {
namespace {

struct ModelCase {
  const char* name;
  const char* input;  // "" when the model's shapes are static
  Shape shape;
};

// The list and shapes of tests/models/run_model_checks.sh.
const ModelCase kModels[] = {
    {"squeezenet1_0", "input", {1, 3, 224, 224}},
    {"mobilenet_v2", "input", {1, 3, 224, 224}},
    {"blazeface", "", {}},
    {"ppocr_cls", "x", {1, 3, 48, 192}},
    {"ppocr_rec", "x", {1, 3, 48, 320}},
    {"googlenet", "input", {1, 3, 224, 224}},
    {"resnet50", "input", {1, 3, 224, 224}},
    {"ppocr_det", "x", {1, 3, 640, 640}},
};

std::filesystem::path models_dir() {
  if (const char* env = std::getenv("LITHE_MODELS_CACHE"))
    return std::filesystem::path(env) / "models";
  return std::filesystem::path(LITHE_SOURCE_DIR) / "models-cache" / "models";
}

bool selected(const char* name) {
  const char* only = std::getenv("LITHE_THREAD_MODELS");
  if (!only) return true;
  return (std::string(",") + only + ",").find(std::string(",") + name + ",") != std::string::npos;
}

Tensor seeded_input(const TensorInfo& info, unsigned seed) {
  Tensor t(DType::kFloat32, info.shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return info.dtype == DType::kFloat32 ? t : t.cast(info.dtype);
}

TEST(FastThreads, RealModelsBitwiseIdenticalAcrossThreadCounts) {
  int checked = 0;
  for (const ModelCase& mc : kModels) {
    if (!selected(mc.name)) continue;
    const auto path = models_dir() / (std::string(mc.name) + ".onnx");
    if (!std::filesystem::exists(path)) {
      std::printf("[threads] %-14s absent (%s), skipped\n", mc.name, path.c_str());
      continue;
    }
    SCOPED_TRACE(mc.name);
    LoadOptions lo;
    if (*mc.input) lo.input_shapes[mc.input] = mc.shape;
    std::shared_ptr<Engine> e;
    ASSERT_NO_THROW(e = Engine::load(path.string(), lo));
    EXPECT_NE(e->isa(), "reference") << "the model does not run on the fast executor";
    std::vector<Tensor> ins;
    for (size_t i = 0; i < e->inputs().size(); ++i) {
      const TensorInfo& info = e->inputs()[i];
      ASSERT_TRUE(info.has_shape) << info.name;
      for (int64_t d : info.shape) ASSERT_GE(d, 1) << info.name;
      ins.push_back(seeded_input(info, 17 + static_cast<unsigned>(i)));
    }
    std::vector<Tensor> first;
    int fast = 0, ref = 0;
    for (int threads : {1, 2, 3, 4}) {
      SCOPED_TRACE("threads " + std::to_string(threads));
      ContextOptions co;
      co.threads = threads;
      auto ctx = e->create_context(co);
      for (size_t i = 0; i < ins.size(); ++i) ctx->set_input(e->inputs()[i].name, ins[i]);
      ctx->set_profiling(threads == 1);
      const auto t0 = std::chrono::steady_clock::now();
      ASSERT_NO_THROW(ctx->run());
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (threads == 1)
        for (const auto& nt : ctx->profile()) (nt.kernel == "reference" ? ref : fast)++;
      std::vector<Tensor> outs;
      for (size_t k = 0; k < e->outputs().size(); ++k) outs.push_back(ctx->output(k).clone());
      std::printf("[threads] %-14s isa %-8s threads %d: %8.1f ms\n", mc.name, e->isa().c_str(),
                  threads, ms);
      std::fflush(stdout);
      if (first.empty()) {
        first = std::move(outs);
        continue;
      }
      ASSERT_EQ(first.size(), outs.size());
      for (size_t k = 0; k < outs.size(); ++k) {
        ASSERT_EQ(first[k].dtype(), outs[k].dtype()) << "output " << k;
        ASSERT_EQ(first[k].shape(), outs[k].shape()) << "output " << k;
        ASSERT_EQ(0, std::memcmp(first[k].raw(), outs[k].raw(), first[k].nbytes()))
            << "output " << k << " (" << e->outputs()[k].name << ") differs from the 1-thread run";
      }
    }
    std::printf("[threads] %-14s %d fast steps, %d reference nodes\n", mc.name, fast, ref);
    ++checked;
  }
  std::printf("[threads] %d models checked\n", checked);
}

}  // namespace
}  // namespace lithe
