// The build driver end to end on the bundled example: deterministic engines, the report,
// and the engine giving the same outputs as the unoptimized ONNX graph.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/build.hpp"
#include "engine/engine.hpp"
#include "../real_models.hpp"
#include "graph_test_util.hpp"
#include "lithe/lithe.hpp"

using namespace lithe;

namespace {
const std::string kModel = std::string(LITHE_SOURCE_DIR) + "/examples/tiny_cnn.onnx";

build::BuildOptions opts() {
  build::BuildOptions o;
  o.input_shapes["image"] = {1, 3, 64, 64};
  return o;
}
}  // namespace

TEST(Build, TwoBuildsAreByteIdentical) {
  std::string a = engine::serialize(build::build_model(kModel, opts()).contents);
  std::string b = engine::serialize(build::build_model(kModel, opts()).contents);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

TEST(Build, ReportCountsFusionsAndMemory) {
  auto r = build::build_model(kModel, opts());
  auto j = nlohmann::json::parse(r.contents.report_json);
  EXPECT_EQ(j["nodes_before"].get<int>(), 18);
  EXPECT_LT(j["nodes_after"].get<int>(), 18);
  int bn = 0, act = 0;
  for (const auto& p : j["passes"]) {
    if (p["name"] == "fold-batchnorm") bn = p["fired"].get<int>();
    if (p["name"] == "fuse-activation") act = p["fired"].get<int>();
  }
  EXPECT_EQ(bn, 4);   // four Conv-BN pairs
  EXPECT_GE(act, 4);  // their Relus
  EXPECT_GT(j["memory"]["arena_bytes"].get<int64_t>(), 0);
  EXPECT_LT(j["memory"]["arena_bytes"].get<int64_t>(),
            j["memory"]["sum_intermediate_bytes"].get<int64_t>());
  EXPECT_EQ(test::count_ops(*r.contents.graph, "BatchNormalization"), 0);
  EXPECT_EQ(r.contents.info.source_sha256.size(), 64u);
}

TEST(Build, EngineFileMatchesUnoptimizedModel) {
  auto dir = std::filesystem::temp_directory_path() / ("lithe_build_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "tiny.lithe").string();
  engine::write_engine(path, build::build_model(kModel, opts()).contents);
  LoadOptions ref_opts;
  ref_opts.optimize = false;
  ref_opts.input_shapes["image"] = {1, 3, 64, 64};
  auto ref = Engine::load(kModel, ref_opts);
  auto eng = Engine::load(path);
  EXPECT_FALSE(eng->report_json().empty());
  std::vector<Tensor> x = {Tensor(DType::kFloat32, {1, 3, 64, 64})};
  for (int64_t i = 0; i < x[0].numel(); ++i)
    x[0].data<float>()[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  auto c1 = ref->create_context();
  auto c2 = eng->create_context();
  c1->set_input("image", x[0]);
  c2->set_input("image", x[0]);
  c1->run();
  c2->run();
  test::expect_same_outputs({c1->output(0)}, {c2->output(0)}, 1e-5);
  // A second run on the same context (arena reused) gives the same result.
  Tensor first = c2->output(0).clone();
  c2->run();
  test::expect_same_outputs({first}, {c2->output(0)}, 0);
  std::filesystem::remove_all(dir);
}

namespace lithe {
namespace {

// The inception modules of the real GoogLeNet (and SqueezeNet's fire modules) run
// channels-last after the build: their concats must cost no copy, each branch writing its
// channels straight into the concat output, next to sibling aggregation.
TEST(Build, InceptionConcatsAreElidedInChannelsLastRegions) {
  const std::filesystem::path dir = test::models_cache() / "models";
  struct M {
    const char* name;
    int concats;
    int merged_into;
  };
  int checked = 0;
  for (const M& m : {M{"googlenet", 9, 9}, M{"squeezenet1_0", 8, 0}}) {
    const auto path = dir / (std::string(m.name) + ".onnx");
    if (!std::filesystem::exists(path)) continue;
    SCOPED_TRACE(m.name);
    build::BuildOptions o;
    auto r = build::build_model(path.string(), o);
    const ir::Graph& g = *r.contents.graph;
    const plan::MemoryPlan& p = r.contents.plan;
    int concats = 0, elided = 0;
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      if (g.nodes[n].op_type != "Concat") continue;
      ++concats;
      elided += p.skip[n] != 0;
      for (int v : g.nodes[n].inputs)
        EXPECT_TRUE(p.strided(v)) << g.values[static_cast<size_t>(v)].name;
    }
    EXPECT_EQ(concats, m.concats);
    EXPECT_EQ(elided, m.concats);
    if (m.merged_into) {
      EXPECT_NE(r.contents.report_json.find("18 sibling convs merged into 9"), std::string::npos)
          << r.contents.report_json.substr(0, 400);
    }
    ++checked;
  }
  if (!checked) GTEST_SKIP() << "googlenet / squeezenet1_0 not in " << dir;
}

// Two builds of each real model give byte-identical engine files (no pointer order, hash
// order, timestamp or thread count leaks into the engine).
TEST(Build, RealModelsBuildByteIdentical) {
  int checked = 0;
  for (const test::RealModel& m : test::real_models()) {
    if (!test::selected(m.name, "LITHE_BUILD_MODELS")) continue;
    const auto path = test::real_model_path(m);
    if (!std::filesystem::exists(path)) continue;
    SCOPED_TRACE(m.name);
    build::BuildOptions o;
    o.input_shapes = m.load_options().input_shapes;
    const std::string a = engine::serialize(build::build_model(path.string(), o).contents);
    const std::string b = engine::serialize(build::build_model(path.string(), o).contents);
    ASSERT_GT(a.size(), 1000u);
    EXPECT_TRUE(a == b) << "the two engines differ";
    std::printf("[build] %-14s %zu bytes, two builds identical: %s\n", m.name, a.size(),
                a == b ? "yes" : "no");
    ++checked;
  }
  if (!checked) GTEST_SKIP() << "no real model in " << test::models_cache();
}

}  // namespace
}  // namespace lithe
