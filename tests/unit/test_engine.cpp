// Engine file: round trip, determinism, alignment of mapped weights, atomic write, version
// refusal, checksum vectors, and (when the real models are present) size and load time.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/engine_format.hpp"
#include "engine_test_util.hpp"
#include "frontend/onnx/importer.hpp"

namespace lithe::test {
namespace {

namespace fs = std::filesystem;

std::string temp_dir() {
  fs::path d = fs::temp_directory_path() / ("lithe_engine_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

void expect_same_graph(const ir::Graph& a, const ir::Graph& b);

void expect_same_attr(const ir::Attribute& a, const ir::Attribute& b, const std::string& what) {
  ASSERT_EQ(a.kind, b.kind) << what;
  using K = ir::Attribute::Kind;
  switch (a.kind) {
    case K::kFloat: {
      uint32_t x, y;
      std::memcpy(&x, &a.f, 4);
      std::memcpy(&y, &b.f, 4);
      EXPECT_EQ(x, y) << what << " (bit pattern)";
      break;
    }
    case K::kInt:
      EXPECT_EQ(a.i, b.i) << what;
      break;
    case K::kString:
      EXPECT_EQ(a.s, b.s) << what;
      break;
    case K::kTensor:
      EXPECT_TRUE(same_bytes(a.t, b.t)) << what;
      break;
    case K::kGraph:
      expect_same_graph(*a.g, *b.g);
      break;
    case K::kFloats:
      EXPECT_EQ(a.floats, b.floats) << what;
      break;
    case K::kInts:
      EXPECT_EQ(a.ints, b.ints) << what;
      break;
    case K::kStrings:
      EXPECT_EQ(a.strings, b.strings) << what;
      break;
    case K::kTensors:
      ASSERT_EQ(a.tensors.size(), b.tensors.size()) << what;
      for (size_t k = 0; k < a.tensors.size(); ++k)
        EXPECT_TRUE(same_bytes(a.tensors[k], b.tensors[k])) << what << " " << k;
      break;
    case K::kGraphs:
      ASSERT_EQ(a.graphs.size(), b.graphs.size()) << what;
      for (size_t k = 0; k < a.graphs.size(); ++k) expect_same_graph(*a.graphs[k], *b.graphs[k]);
      break;
  }
}

void expect_same_graph(const ir::Graph& a, const ir::Graph& b) {
  EXPECT_EQ(a.name, b.name);
  ASSERT_EQ(a.values.size(), b.values.size()) << a.name;
  for (size_t v = 0; v < a.values.size(); ++v) {
    const ir::Value& x = a.values[v];
    const ir::Value& y = b.values[v];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type.dtype, y.type.dtype) << x.name;
    EXPECT_EQ(x.type.has_shape, y.type.has_shape) << x.name;
    EXPECT_EQ(x.type.dims, y.type.dims) << x.name;
    EXPECT_EQ(x.producer, y.producer) << x.name;
    EXPECT_EQ(x.consumers, y.consumers) << x.name;
    ASSERT_EQ(x.constant.has_value(), y.constant.has_value()) << x.name;
    if (x.constant) {
      EXPECT_TRUE(same_bytes(*x.constant, *y.constant)) << x.name;
    }
  }
  ASSERT_EQ(a.nodes.size(), b.nodes.size()) << a.name;
  for (size_t n = 0; n < a.nodes.size(); ++n) {
    const ir::Node& x = a.nodes[n];
    const ir::Node& y = b.nodes[n];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.op_type, y.op_type);
    EXPECT_EQ(x.domain, y.domain);
    EXPECT_EQ(x.opset, y.opset);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.outputs, y.outputs);
    ASSERT_EQ(x.attrs.size(), y.attrs.size()) << x.label();
    for (const auto& [name, attr] : x.attrs) {
      auto it = y.attrs.find(name);
      ASSERT_NE(it, y.attrs.end()) << x.label() << " " << name;
      expect_same_attr(attr, it->second, x.label() + " " + name);
    }
  }
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.outputs, b.outputs);
  EXPECT_EQ(a.outer_refs, b.outer_refs);
  EXPECT_EQ(a.opsets, b.opsets);
}

std::vector<Tensor> inputs_with(const ir::Graph& g, bool cond) {
  std::vector<Tensor> ins = seeded_inputs(g, 7);
  Tensor c(DType::kBool, {});
  c.data<bool>()[0] = cond;
  ins[1] = c;
  return ins;
}

TEST(Engine, RoundTripKeepsStructureAndOutputs) {
  engine::EngineContents e = engine_test_contents();
  auto bytes = std::make_shared<const std::string>(engine::serialize(e));
  engine::EngineContents r = engine::load_engine_bytes(bytes, "test.lithe");
  expect_same_graph(*e.graph, *r.graph);
  EXPECT_EQ(r.report_json, e.report_json);
  EXPECT_EQ(r.info.producer, e.info.producer);
  EXPECT_EQ(r.info.source_sha256, e.info.source_sha256);
  EXPECT_EQ(r.info.options_json, e.info.options_json);
  EXPECT_EQ(r.info.isa, e.info.isa);
  EXPECT_EQ(r.plan.arena_bytes, e.plan.arena_bytes);
  EXPECT_EQ(r.plan.offset, e.plan.offset);
  EXPECT_EQ(r.plan.bytes, e.plan.bytes);
  EXPECT_EQ(r.plan.alias_of, e.plan.alias_of);
  EXPECT_EQ(r.plan.in_place, e.plan.in_place);
  EXPECT_EQ(r.plan.skip, e.plan.skip);
  EXPECT_EQ(r.plan.sum_intermediate_bytes, e.plan.sum_intermediate_bytes);
  for (bool cond : {true, false}) {
    auto ins = inputs_with(*e.graph, cond);
    expect_same_outputs(run_graph(e.graph, ins), run_graph(r.graph, ins), 0);
  }
}

TEST(Engine, SerializeIsDeterministic) {
  engine::EngineContents e = engine_test_contents();
  std::string a = engine::serialize(e);
  std::string b = engine::serialize(engine_test_contents());  // rebuilt from scratch
  EXPECT_EQ(a, b);
  // A loaded engine serializes back to the very same bytes.
  auto r = engine::load_engine_bytes(std::make_shared<const std::string>(a), "a");
  EXPECT_EQ(engine::serialize(r), a);
}

TEST(Engine, EmptyPlanRoundTrips) {
  engine::EngineContents e = engine_test_contents();
  e.plan = {};
  auto r =
      engine::load_engine_bytes(std::make_shared<const std::string>(engine::serialize(e)), "x");
  EXPECT_TRUE(r.plan.offset.empty());
  EXPECT_TRUE(r.plan.skip.empty());
}

TEST(Engine, WriterRefusesPlanOfWrongSize) {
  engine::EngineContents e = engine_test_contents();
  e.plan.offset.pop_back();
  EXPECT_THROW(engine::serialize(e), Error);
}

TEST(Engine, ReaderRefusesPlanOutsideTheArena) {
  engine::EngineContents e = engine_test_contents();
  e.plan.offset[1] = e.plan.arena_bytes - 8;  // 24 bytes from here run past the end
  auto bytes = std::make_shared<const std::string>(engine::serialize(e));
  try {
    engine::load_engine_bytes(bytes, "plan.lithe");
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("plan.lithe: memory plan: value"), std::string::npos)
        << err.what();
    EXPECT_NE(std::string(err.what()).find("outside the arena"), std::string::npos) << err.what();
  }
}

// A chain of graphs `levels` deep below the main graph, nested through a kGraphs attribute
// (the deepest FlatBuffers path: Graph, nodes, Node, attrs, Attribute, graphs, per level).
std::shared_ptr<ir::Graph> nested(int levels) {
  std::shared_ptr<ir::Graph> inner = engine_branch("leaf", "Add", false);
  for (int depth = 0; depth < levels; ++depth) {
    auto g = std::make_shared<ir::Graph>();
    g->name = "level" + std::to_string(depth);
    g->opsets[""] = 13;
    int c = g->add_value("a", {DType::kFloat32, true, {2, 3}});
    if (depth + 1 < levels)
      g->outer_refs.push_back(c);
    else
      g->inputs.push_back(c);
    int o = g->add_value("o" + std::to_string(depth));
    ir::Node n;
    n.name = "wrap" + std::to_string(depth);
    n.op_type = "Wrap";
    n.domain = "test";
    n.opset = 1;
    n.inputs = {c};
    n.outputs = {o};
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::kGraphs;
    a.graphs = {inner};
    n.attrs["bodies"] = a;
    g->add_node(std::move(n));
    g->outputs = {o};
    inner = g;
  }
  return inner;
}

TEST(Engine, SubgraphDepthIsBounded) {
  engine::EngineContents e;
  e.graph = nested(engine::kMaxGraphDepth);  // the deepest allowed: round trips
  auto r = engine::load_engine_bytes(std::make_shared<const std::string>(engine::serialize(e)),
                                     "deep.lithe");
  EXPECT_EQ(r.graph->nodes.at(0).op_type, "Wrap");
  e.graph = nested(engine::kMaxGraphDepth + 1);
  try {
    engine::serialize(e);
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("nest deeper than"), std::string::npos) << err.what();
  }
}

TEST(Engine, MappedConstantsAre64ByteAlignedAndBorrowed) {
  std::string dir = temp_dir();
  std::string path = dir + "/aligned.lithe";
  engine::EngineContents e = engine_test_contents();
  engine::write_engine(path, e);
  EXPECT_TRUE(engine::is_engine_file(path));
  engine::EngineContents r = engine::load_engine(path);
  int checked = 0;
  auto aligned = [&](const Tensor& t, const std::string& what) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u) << what;
    ++checked;
  };
  std::function<void(const ir::Graph&)> walk = [&](const ir::Graph& g) {
    for (const auto& v : g.values)
      if (v.constant) aligned(*v.constant, v.name);
    for (const auto& n : g.nodes)
      for (const auto& [name, a] : n.attrs) {
        if (a.kind == ir::Attribute::Kind::kTensor) aligned(a.t, name);
        for (const auto& t : a.tensors) aligned(t, name);
        if (a.g) walk(*a.g);
        for (const auto& sg : a.graphs) walk(*sg);
      }
  };
  walk(*r.graph);
  EXPECT_EQ(checked, 7);  // w, else_k, g0_k, x_tensor and the three x_tensors
  // The weights live in the mapping: two constants are as far apart as their file offsets.
  const Tensor& w = *r.graph->values[static_cast<size_t>(r.graph->find_value("w"))].constant;
  const Tensor& x_t = r.graph->nodes[1].attrs.count("x_tensor")
                          ? r.graph->nodes[1].attrs.at("x_tensor").t
                          : r.graph->nodes[0].attrs.at("x_tensor").t;
  auto gap = reinterpret_cast<const char*>(x_t.raw()) - reinterpret_cast<const char*>(w.raw());
  EXPECT_NE(gap, 0);
  EXPECT_EQ(gap % 64, 0);
  // The graph keeps the mapping alive after the contents go away.
  auto g = r.graph;
  r = {};
  EXPECT_EQ(std::memcmp(
                w.raw(),
                e.graph->values[static_cast<size_t>(e.graph->find_value("w"))].constant->raw(), 24),
            0);
  fs::remove_all(dir);
}

TEST(Engine, WriteIsAtomic) {
  std::string dir = temp_dir();
  engine::EngineContents e = engine_test_contents();
  // Into a directory that does not exist: an error, and nothing is left behind.
  std::string bad = dir + "/missing/sub/model.lithe";
  try {
    engine::write_engine(bad, e);
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find(bad), std::string::npos) << err.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/missing"));
  // A failing serialization leaves an existing engine untouched.
  std::string path = dir + "/model.lithe";
  engine::write_engine(path, e);
  auto before = fs::file_size(path);
  engine::EngineContents broken = e;
  broken.graph = nullptr;
  EXPECT_THROW(engine::write_engine(path, broken), Error);
  EXPECT_EQ(fs::file_size(path), before);
  EXPECT_NO_THROW(engine::load_engine(path));
  // Overwriting works and leaves no temporary file.
  engine::write_engine(path, e);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(Engine, RefusesNewerFormatWithClearMessage) {
  std::string bytes = engine::serialize(engine_test_contents());
  bytes[8] = static_cast<char>(engine::kFormatVersion + 1);
  try {
    engine::load_engine_bytes(std::make_shared<const std::string>(bytes), "new.lithe");
    FAIL() << "expected an error";
  } catch (const Error& err) {
    std::string want = "new.lithe: engine format version " +
                       std::to_string(engine::kFormatVersion + 1) +
                       " is newer than this lithe supports (" +
                       std::to_string(engine::kFormatVersion) + "); rebuild the engine";
    EXPECT_EQ(std::string(err.what()), want);
  }
}

TEST(Engine, ErrorsNameTheFile) {
  std::string dir = temp_dir();
  std::string path = dir + "/junk.lithe";
  std::ofstream(path) << "definitely not an engine, but longer than sixty-four bytes of header...";
  EXPECT_FALSE(engine::is_engine_file(path));
  try {
    engine::load_engine(path);
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()), path + ": not a lithe engine file (bad magic)");
  }
  EXPECT_THROW(engine::load_engine(dir + "/none.lithe"), Error);
  EXPECT_FALSE(engine::is_engine_file(dir + "/none.lithe"));
  fs::remove_all(dir);
}

TEST(Engine, ChecksumCatchesAFlippedWeightBit) {
  std::string bytes = engine::serialize(engine_test_contents());
  bytes[bytes.size() - 1] ^= 1;
  try {
    engine::load_engine_bytes(std::make_shared<const std::string>(bytes), "m");
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()), "m: checksum mismatch: the file is corrupt");
  }
}

TEST(Engine, XxhashKnownValues) {
  EXPECT_EQ(engine::xxh64("", 0), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(engine::xxh64("abc", 3), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(engine::xxh3("", 0), 0x2D06800538D394C2ULL);
  EXPECT_EQ(engine::xxh3("abc", 3), 0x78AF5F94892F3950ULL);
}

// The writer stamps format 4 (XXH3 checksum); a file of format 3 with its XXH64 checksum
// still loads, and the checksum follows the version: the same bytes under the other
// algorithm's checksum are refused.
TEST(Engine, ChecksumFollowsTheFormatVersion) {
  const std::string v4 = engine::serialize(engine_test_contents());
  ASSERT_EQ(engine::decode_header(reinterpret_cast<const unsigned char*>(v4.data())).version,
            engine::kFormatVersion);
  std::string v3 = v4;
  v3[8] = 3;                     // version, little-endian u32
  const std::string stale = v3;  // format 3 with the XXH3 checksum
  engine::reseal(v3);
  EXPECT_NE(v3.substr(56, 8), stale.substr(56, 8));
  EXPECT_NO_THROW(engine::load_engine_bytes(std::make_shared<const std::string>(v3), "v3"));
  EXPECT_THROW(engine::load_engine_bytes(std::make_shared<const std::string>(stale), "v3"), Error);
}

// Engine size against the ONNX file and load time, for the real models when present. Set
// LITHE_ENGINE_MODELS=1 to run (imports every model: seconds).
TEST(EngineModels, SizeAndLoadTime) {
  fs::path dir = fs::path(LITHE_SOURCE_DIR) / "models-cache" / "models";
  if (!std::getenv("LITHE_ENGINE_MODELS") || !fs::exists(dir))
    GTEST_SKIP() << "set LITHE_ENGINE_MODELS=1 with models in " << dir;
  std::map<std::string, std::map<std::string, Shape>> shapes = {
      {"ppocr_det", {{"x", {1, 3, 640, 640}}}},
      {"ppocr_rec", {{"x", {1, 3, 48, 320}}}},
      {"ppocr_cls", {{"x", {1, 3, 48, 192}}}}};
  std::string tmp = temp_dir();
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".onnx") continue;
    std::string stem = entry.path().stem().string();
    onnx::ImportOptions opts;
    if (shapes.count(stem)) opts.input_shapes = shapes[stem];
    engine::EngineContents e;
    e.graph = onnx::import_model(entry.path().string(), opts);
    e.info = {"lithe 0.1.0", "", "{}", "generic"};
    std::string path = tmp + "/" + stem + ".lithe";
    engine::write_engine(path, e);
    double onnx_size = static_cast<double>(fs::file_size(entry.path()));
    double eng_size = static_cast<double>(fs::file_size(path));
    auto t0 = std::chrono::steady_clock::now();
    engine::EngineContents r = engine::load_engine(path);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::string head(engine::kHeaderSize, '\0');
    std::ifstream(path, std::ios::binary).read(head.data(), engine::kHeaderSize);
    auto h = engine::decode_header(reinterpret_cast<const unsigned char*>(head.data()));
    std::printf(
        "[engine] %-14s onnx %11.0f  engine %11.0f  ratio %.4f  (structure %8llu, data %11llu)"
        "  load %.1f ms\n",
        stem.c_str(), onnx_size, eng_size, eng_size / onnx_size,
        static_cast<unsigned long long>(h.fb_size), static_cast<unsigned long long>(h.data_size),
        ms);
    EXPECT_LE(eng_size, 1.02 * onnx_size) << stem;
    EXPECT_EQ(r.graph->nodes.size(), e.graph->nodes.size());
  }
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace lithe::test
