// The memory figures of the API (Engine::memory, Context::arena_bytes) against the build's own
// plan and constants: a context's arena is the planned one, an ONNX file's weights are on the
// heap, an engine file's are served from its mapping.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "builder/build.hpp"
#include "engine/engine.hpp"
#include "lithe/lithe.hpp"

using namespace lithe;

namespace {
const std::string kModel = std::string(LITHE_SOURCE_DIR) + "/examples/tiny_cnn.onnx";

int64_t constant_bytes(const ir::Graph& g) {
  int64_t n = 0;
  for (const ir::Value& v : g.values)
    if (v.constant) n += static_cast<int64_t>(v.constant->nbytes());
  return n;
}

struct EngineFile {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("lithe_memory_" + std::to_string(::getpid()));
  std::string path = (dir / "tiny.lithe").string();
  build::BuildResult built = build::build_model(kModel, {});
  EngineFile() {
    std::filesystem::create_directories(dir);
    engine::write_engine(path, built.contents);
  }
  ~EngineFile() { std::filesystem::remove_all(dir); }
};
}  // namespace

TEST(EngineMemory, ReferenceArenaIsThePlannedArena) {
  const build::BuildResult r = build::build_model(kModel, {});
  LoadOptions o;
  o.isa = "reference";
  auto e = Engine::load(kModel, o);
  ASSERT_EQ(e->isa(), "reference");
  auto c = e->create_context();
  EXPECT_GT(c->arena_bytes(), 0);
  EXPECT_EQ(c->arena_bytes(), r.contents.plan.arena_bytes);
}

TEST(EngineMemory, FastArenaIsThePlannedArenaPlusScratch) {
  const build::BuildResult r = build::build_model(kModel, {});
  auto e = Engine::load(kModel);
  ASSERT_NE(e->isa(), "reference");
  const int64_t one = e->create_context({.threads = 1})->arena_bytes();
  const int64_t two = e->create_context({.threads = 2})->arena_bytes();
  EXPECT_GE(one, r.contents.plan.arena_bytes);
  // Scratch is per thread: a second thread adds exactly one more share.
  EXPECT_EQ(two - one, one - r.contents.plan.arena_bytes - int64_t{16 * sizeof(float)});
}

TEST(EngineMemory, OnnxWeightsAreOnTheHeap) {
  const build::BuildResult r = build::build_model(kModel, {});
  LoadOptions o;
  o.isa = "reference";
  EngineMemory m = Engine::load(kModel, o)->memory();
  EXPECT_EQ(m.file_bytes, static_cast<int64_t>(std::filesystem::file_size(kModel)));
  EXPECT_EQ(m.mapped_weight_bytes, 0);
  EXPECT_GT(m.heap_weight_bytes, 0);
  EXPECT_EQ(m.heap_weight_bytes, constant_bytes(*r.contents.graph));
  // The fast path adds what its steps packed at load to the heap.
  EngineMemory f = Engine::load(kModel)->memory();
  EXPECT_EQ(f.mapped_weight_bytes, 0);
  EXPECT_GE(f.heap_weight_bytes, m.heap_weight_bytes);
}

TEST(EngineMemory, EngineWeightsAreMapped) {
  EngineFile f;
  const int64_t weights = constant_bytes(*f.built.contents.graph);
  ASSERT_GT(weights, 0);
  LoadOptions o;
  o.isa = "reference";
  EngineMemory ref = Engine::load(f.path, o)->memory();
  EXPECT_EQ(ref.file_bytes, static_cast<int64_t>(std::filesystem::file_size(f.path)));
  EXPECT_EQ(ref.heap_weight_bytes, 0);
  EXPECT_EQ(ref.mapped_weight_bytes, weights);
  // Fast path: mapped weights the steps packed (and released) move to the heap side; the
  // convs' weights arrive packed in the engine and stay mapped.
  EngineMemory fast = Engine::load(f.path)->memory();
  EXPECT_GT(fast.mapped_weight_bytes, 0);
  EXPECT_LE(fast.mapped_weight_bytes, weights);
  EXPECT_LT(fast.heap_weight_bytes, weights);
}

TEST(EngineMemory, ProfileNamesThePrecision) {
  auto e = Engine::load(kModel);
  auto c = e->create_context();
  Tensor x(DType::kFloat32, e->inputs()[0].shape);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.01f * static_cast<float>(i % 97);
  c->set_input(e->inputs()[0].name, x);
  c->set_profiling(true);
  c->run();
  auto p = c->profile();
  ASSERT_FALSE(p.empty());
  for (const auto& n : p) EXPECT_EQ(n.precision, "fp32") << n.node;
}
