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

#include "../real_models.hpp"
#include <unistd.h>

#include "builder/build.hpp"
#include "lithe/lithe.hpp"

namespace lithe {
namespace {

Tensor seeded_input(const TensorInfo& info, unsigned seed) {
  Tensor t(DType::kFloat32, info.shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return info.dtype == DType::kFloat32 ? t : t.cast(info.dtype);
}

// Runs `e` with 1, 2, 3 and 4 threads on seeded inputs; every run must give the 1-thread bits.
void check_thread_counts(const Engine& e, const char* name) {
  EXPECT_NE(e.isa(), "reference") << "the model does not run on the fast executor";
  std::vector<Tensor> ins;
  for (size_t i = 0; i < e.inputs().size(); ++i) {
    const TensorInfo& info = e.inputs()[i];
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
    auto ctx = e.create_context(co);
    for (size_t i = 0; i < ins.size(); ++i) ctx->set_input(e.inputs()[i].name, ins[i]);
    ctx->set_profiling(threads == 1);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_NO_THROW(ctx->run());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (threads == 1)
      for (const auto& nt : ctx->profile()) (nt.kernel == "reference" ? ref : fast)++;
    std::vector<Tensor> outs;
    for (size_t k = 0; k < e.outputs().size(); ++k) outs.push_back(ctx->output(k).clone());
    std::printf("[threads] %-14s isa %-8s threads %d: %8.1f ms\n", name, e.isa().c_str(),
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
          << "output " << k << " (" << e.outputs()[k].name << ") differs from the 1-thread run";
    }
  }
  std::printf("[threads] %-14s %d fast steps, %d reference nodes\n", name, fast, ref);
}

TEST(FastThreads, RealModelsBitwiseIdenticalAcrossThreadCounts) {
  int checked = 0;
  for (const test::RealModel& mc : test::real_models()) {
    if (!test::selected(mc.name, "LITHE_THREAD_MODELS")) continue;
    const auto path = test::real_model_path(mc);
    if (!std::filesystem::exists(path)) {
      std::printf("[threads] %-14s absent (%s), skipped\n", mc.name, path.c_str());
      continue;
    }
    SCOPED_TRACE(mc.name);
    std::shared_ptr<Engine> e;
    ASSERT_NO_THROW(e = Engine::load(path.string(), mc.load_options()));
    check_thread_counts(*e, mc.name);
    ++checked;
  }
  std::printf("[threads] %d models checked\n", checked);
}

// The same for INT8 engines (calibrated on 4 seeded inputs) of the models with INT8 convs in
// every form: PP-OCR cls (SE blocks, HardSwish), BlazeFace (residuals), MobileNetV2 (Clip,
// depthwise, Gemm), PP-OCRv4 det (float output stage, many fp32 islands).
TEST(FastThreads, Int8RealModelsBitwiseIdenticalAcrossThreadCounts) {
  int checked = 0;
  for (const test::RealModel& mc : test::real_models()) {
    const std::string name = mc.name;
    if (name != "ppocr_cls" && name != "blazeface" && name != "mobilenet_v2" && name != "ppocr_det")
      continue;
    if (!test::selected(mc.name, "LITHE_THREAD_MODELS")) continue;
    const auto path = test::real_model_path(mc);
    if (!std::filesystem::exists(path)) continue;
    SCOPED_TRACE(name + " int8");
    build::BuildOptions o;
    if (*mc.input) o.input_shapes[mc.input] = mc.shape;
    o.precision = "int8";
    o.calib.load = [](const ir::Graph& g) {
      std::vector<std::vector<Tensor>> samples(4);
      for (size_t s = 0; s < samples.size(); ++s)
        for (int v : g.inputs) {
          const ir::Value& in = g.values[static_cast<size_t>(v)];
          samples[s].push_back(seeded_input({in.name, in.type.dtype, in.type.dims, true},
                                            100 + static_cast<unsigned>(s)));
        }
      return samples;
    };
    const auto file = std::filesystem::temp_directory_path() /
                      ("lithe_threads_int8_" + std::to_string(::getpid()) + "_" + name + ".lithe");
    ASSERT_NO_THROW(engine::write_engine(file.string(), build::build_model(path.string(), o).contents));
    std::shared_ptr<Engine> e;
    ASSERT_NO_THROW(e = Engine::load(file.string()));
    std::filesystem::remove(file);
    check_thread_counts(*e, (name + "/int8").c_str());
    ++checked;
  }
  std::printf("[threads] %d int8 models checked\n", checked);
}

}  // namespace
}  // namespace lithe
