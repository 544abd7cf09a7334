// `--precision fp16`: float32 weights stored in half precision in the engine file and decoded
// to float32 at load. Checks the storage decision, the exact round trip (half rounding to
// nearest even, decoded with F16C or the scalar path), the outputs against a scalar
// reference, hostile engines, and on the real models the engine size and the cosine against
// the fp32 engine.
#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "../real_models.hpp"
#include "builder/build.hpp"
#include "byte_flip.hpp"
#include "core/half.hpp"
#include "engine/engine.hpp"
#include "engine/engine_format.hpp"
#include "engine_generated.h"
#include "lithe/lithe.hpp"
#include "model_builder.hpp"

namespace lithe {
namespace {

// Odd sizes: the F16C loop's tail runs too. kHid makes W3 hold over 99% of the weights, so
// the first two layers stay within build::kFp16Fp32Share.
constexpr int kIn = 37, kOut = 29, kHid = 7001, kBatch = 3;

float half_round(float x) { return half_bits_to_float(float_to_half_bits(x)); }

struct SmallModel {
  std::vector<float> w1, b1, w2, w3, w4;
  std::string path;
};

// y = ((Relu(x W1 + B1) W2) W3) W4, four weighted layers. W1 and W2 are the first two
// layers from the input and stay float32 (build::kFp16Fp32Layers), B1 is a vector (stays
// float32), W4 holds 7e4 (above the half range: stays float32); only W3 [29, 7001] is
// stored as half.
SmallModel small_model(const std::filesystem::path& dir) {
  SmallModel s;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto fill = [&](std::vector<float>& v, int n, float scale) {
    for (int i = 0; i < n; ++i) v.push_back(u(rng) * scale);
  };
  fill(s.w1, kIn * kOut, 0.3f);
  fill(s.b1, kOut, 1.f);
  fill(s.w2, kOut * kOut, 0.3f);
  fill(s.w3, kOut * kHid, 0.3f);
  fill(s.w4, kHid * kOut, 0.03f);
  s.w4[5] = 7e4f;
  auto m = test::make_model();
  test::add_io(m.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {kBatch, kIn});
  test::add_io(m.mutable_graph()->add_output(), "y", ::onnx::TensorProto::FLOAT, {kBatch, kOut});
  test::add_init(m, "W1", {kIn, kOut}, s.w1);
  test::add_init(m, "B1", {kOut}, s.b1);
  test::add_init(m, "W2", {kOut, kOut}, s.w2);
  test::add_init(m, "W3", {kOut, kHid}, s.w3);
  test::add_init(m, "W4", {kHid, kOut}, s.w4);
  test::add_node(m, "MatMul", {"x", "W1"}, {"h1"}, "mm1");
  test::add_node(m, "Add", {"h1", "B1"}, {"h1b"}, "bias1");
  test::add_node(m, "Relu", {"h1b"}, {"r1"}, "relu1");
  test::add_node(m, "MatMul", {"r1", "W2"}, {"h2"}, "mm2");
  test::add_node(m, "MatMul", {"h2", "W3"}, {"h3"}, "mm3");
  test::add_node(m, "MatMul", {"h3", "W4"}, {"y"}, "mm4");
  s.path = test::save(m, dir / "small.onnx");
  return s;
}

build::BuildOptions with_precision(const std::string& p) {
  build::BuildOptions o;
  o.precision = p;
  return o;
}

int64_t report_weight_bytes(const engine::EngineContents& c) {
  return nlohmann::json::parse(c.report_json)["memory"]["weight_bytes"].get<int64_t>();
}

std::vector<float> run_engine(const std::string& path, const std::string& input, const Tensor& x,
                              size_t output = 0) {
  auto e = Engine::load(path);
  auto c = e->create_context();
  c->set_input(input, x);
  c->run();
  const Tensor& y = c->output(output);
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  if (aa == 0 && bb == 0) return 1;
  return ab / std::sqrt(aa * bb);
}

uint32_t header_version(const std::string& bytes) {
  return engine::decode_header(reinterpret_cast<const unsigned char*>(bytes.data())).version;
}

TEST(Fp16, StoresLargeInRangeConstantsAsHalfAndRoundTripsExactly) {
  auto dir = test::temp_dir("fp16_small");
  SmallModel s = small_model(dir);
  auto r32 = build::build_model(s.path, with_precision("fp32"));
  auto r16 = build::build_model(s.path, with_precision("fp16"));

  // The storage decision, value by value, on the graph the passes left: only W3 is half.
  int half = 0;
  int64_t halved_elements = 0;
  for (const ir::Value& v : r16.contents.graph->values) {
    if (!v.constant) continue;
    const bool want_half = v.name == "W3";
    EXPECT_EQ(v.storage, want_half ? DType::kFloat16 : DType::kUndefined) << v.name;
    if (v.storage == DType::kFloat16) {
      ++half;
      halved_elements += v.constant->numel();
    }
  }
  ASSERT_EQ(half, 1);
  ASSERT_EQ(halved_elements, kOut * kHid);
  for (const ir::Value& v : r32.contents.graph->values) EXPECT_EQ(v.storage, DType::kUndefined);

  // Weight bytes as stored: each halved constant takes exactly half.
  EXPECT_EQ(report_weight_bytes(r16.contents),
            report_weight_bytes(r32.contents) - 2 * halved_elements);
  auto rep = nlohmann::json::parse(r16.contents.report_json);
  EXPECT_EQ(rep["precision"], "fp16");
  EXPECT_EQ(rep["fp16_constants"].get<int>(), half);
  EXPECT_EQ(nlohmann::json::parse(r16.contents.info.options_json)["precision"], "fp16");
  EXPECT_EQ(nlohmann::json::parse(r32.contents.info.options_json)["precision"], "fp32");

  const std::string b32 = engine::serialize(r32.contents), b16 = engine::serialize(r16.contents);
  // Blobs are 64-byte aligned: the file shrinks by the halved bytes, give or take padding.
  EXPECT_NEAR(static_cast<double>(b32.size() - b16.size()), 2.0 * halved_elements,
              64.0 * (half + 1));
  EXPECT_EQ(header_version(b32), engine::kFormatVersion);  // 4 (XXH3) with or without half
  EXPECT_EQ(header_version(b16), engine::kFormatVersion);
  EXPECT_EQ(engine::serialize(build::build_model(s.path, with_precision("fp16")).contents), b16)
      << "fp16 builds are deterministic";

  // Loaded back: every halved constant is the half rounding of the fp32 build's value, bit
  // for bit (the same graph: storage is decided after the passes), and is marked fp16 again.
  auto loaded = engine::load_engine_bytes(std::make_shared<const std::string>(b16), "fp16.lithe");
  const ir::Graph& g32 = *r32.contents.graph;
  int checked = 0;
  for (const ir::Value& v : loaded.graph->values) {
    if (!v.constant) continue;
    int id = g32.find_value(v.name);
    ASSERT_GE(id, 0) << v.name;
    const Tensor& orig = *g32.values[static_cast<size_t>(id)].constant;
    ASSERT_EQ(orig.numel(), v.constant->numel()) << v.name;
    ASSERT_EQ(v.constant->dtype(), DType::kFloat32) << v.name;
    const bool is_half = v.storage == DType::kFloat16;
    for (int64_t i = 0; i < orig.numel(); ++i) {
      const float want = is_half ? half_round(orig.data<float>()[i]) : orig.data<float>()[i];
      ASSERT_EQ(std::bit_cast<uint32_t>(v.constant->data<float>()[i]),
                std::bit_cast<uint32_t>(want))
          << v.name << " element " << i;
    }
    checked += is_half;
  }
  EXPECT_EQ(checked, half);
  // Write, load, write again: the same bytes (the decoded values round to themselves).
  EXPECT_EQ(engine::serialize(loaded), b16);

  // Layers reading a half weight say so.
  auto layers = nlohmann::json::parse(build::layers_json(loaded));
  int fp16_layers = 0;
  for (const auto& l : layers) fp16_layers += l["precision"] == "fp16";
  EXPECT_GE(fp16_layers, 1);
  for (const auto& l : nlohmann::json::parse(build::layers_json(r32.contents)))
    EXPECT_EQ(l["precision"], "fp32");

  // Outputs: against a scalar reference on the half-rounded weights (tight), and against
  // the fp32 engine (close).
  const std::string p32 = (dir / "m32.lithe").string(), p16 = (dir / "m16.lithe").string();
  engine::write_engine(p32, r32.contents);
  engine::write_engine(p16, r16.contents);
  Tensor x(DType::kFloat32, {kBatch, kIn});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  std::vector<float> y32 = run_engine(p32, "x", x), y16 = run_engine(p16, "x", x);
  ASSERT_EQ(y16.size(), size_t{kBatch * kOut});
  // The scalar reference in double: layer by layer, W3 half-rounded. `mag` runs the same
  // layers on absolute values: float32 rounding anywhere in the chain is bounded relative to
  // it (W4's 7e4 amplifies the error of the earlier layers).
  auto layer = [](const std::vector<double>& in, int k, int cols, const std::vector<float>& w,
                  bool half, bool absolute) {
    std::vector<double> out(size_t{kBatch} * cols, 0.0);
    for (int n = 0; n < kBatch; ++n)
      for (int o = 0; o < cols; ++o)
        for (int i = 0; i < k; ++i) {
          const double wv = half ? half_round(w[size_t(i * cols + o)]) : w[size_t(i * cols + o)];
          out[size_t(n * cols + o)] +=
              absolute ? std::fabs(in[size_t(n * k + i)] * wv) : in[size_t(n * k + i)] * wv;
        }
    return out;
  };
  std::vector<double> h(x.data<float>(), x.data<float>() + x.numel()), mag = h;
  for (double& v : mag) v = std::fabs(v);
  h = layer(h, kIn, kOut, s.w1, false, false);
  mag = layer(mag, kIn, kOut, s.w1, false, true);
  for (int n = 0; n < kBatch; ++n)
    for (int o = 0; o < kOut; ++o) {
      const size_t i = size_t(n * kOut + o);
      h[i] = std::max(0.0, h[i] + s.b1[size_t(o)]);
      mag[i] += std::fabs(s.b1[size_t(o)]);
    }
  h = layer(h, kOut, kOut, s.w2, false, false);
  mag = layer(mag, kOut, kOut, s.w2, false, true);
  h = layer(h, kOut, kHid, s.w3, true, false);
  mag = layer(mag, kOut, kHid, s.w3, true, true);
  h = layer(h, kHid, kOut, s.w4, false, false);
  mag = layer(mag, kHid, kOut, s.w4, false, true);
  for (size_t i = 0; i < h.size(); ++i)
    EXPECT_NEAR(y16[i], h[i], 1e-5 * (1 + mag[i])) << "element " << i;
  EXPECT_GE(cosine(y32, y16), 0.9999);

  // Decoded weights live on the heap, not in the mapping.
  auto e16 = Engine::load(p16), e32 = Engine::load(p32);
  EXPECT_GT(e16->memory().heap_weight_bytes, e32->memory().heap_weight_bytes);
  EXPECT_LT(e16->memory().file_bytes, e32->memory().file_bytes);
  std::filesystem::remove_all(dir);
}

TEST(Fp16, HalfRoundingIsToNearestEven) {
  // Independent of half.hpp: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 (even: 1);
  // 1 + 3 * 2^-11 halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  EXPECT_EQ(half_round(1.f + std::ldexp(1.f, -11)), 1.f);
  EXPECT_EQ(half_round(1.f + 3 * std::ldexp(1.f, -11)), 1.f + std::ldexp(1.f, -9));
  EXPECT_EQ(half_round(65504.f), 65504.f);
  EXPECT_EQ(half_round(std::ldexp(1.f, -24)), std::ldexp(1.f, -24));  // smallest subnormal
}

TEST(Fp16, UnknownPrecisionIsRefused) {
  auto dir = test::temp_dir("fp16_bad");
  const std::string path = test::save(test::relu_model(), dir / "relu.onnx");
  try {
    // best is known, but measures its error on calibration data, which is not given here.
    build::build_model(path, with_precision("best"));
    ADD_FAILURE() << "best without calibration data accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("precision best needs calibration data", 0), 0u)
        << e.what();
  }
  try {
    build::build_model(path, with_precision("fp8"));
    ADD_FAILURE() << "fp8 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("unknown precision 'fp8' (expected fp32", 0), 0u)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

// A minimal engine, written with the schema directly so the writer's checks do not stand in
// the way: y = x + w over float32[4, 4] (dtype `w_dtype`), w in blob 0 of `blob_bytes`
// bytes with the given storage_dtype.
std::string handmade_engine(int32_t storage, size_t blob_bytes, uint32_t version,
                            int32_t w_dtype = 1) {
  namespace fb = lithe::fb;
  flatbuffers::FlatBufferBuilder fbb;
  auto dims = fbb.CreateVector(std::vector<int32_t>{4, 4});
  auto nx = fbb.CreateString("x"), nw = fbb.CreateString("w"), ny = fbb.CreateString("y");
  std::vector<flatbuffers::Offset<fb::Value>> values;
  values.push_back(fb::CreateValue(fbb, nx, 1, true, dims, -1, 0));
  values.push_back(fb::CreateValue(fbb, nw, w_dtype, true, dims, 0, storage));
  values.push_back(fb::CreateValue(fbb, ny, 1, true, dims, -1, 0));
  auto vv = fbb.CreateVector(values);
  auto nname = fbb.CreateString("add"), op = fbb.CreateString("Add");
  auto ins = fbb.CreateVector(std::vector<int32_t>{0, 1});
  auto outs = fbb.CreateVector(std::vector<int32_t>{2});
  std::vector<flatbuffers::Offset<fb::Node>> nodes = {
      fb::CreateNode(fbb, nname, op, 0, 13, ins, outs)};
  auto nv = fbb.CreateVector(nodes);
  auto gin = fbb.CreateVector(std::vector<int32_t>{0});
  auto gout = fbb.CreateVector(std::vector<int32_t>{2});
  auto dom = fbb.CreateString("");
  std::vector<flatbuffers::Offset<fb::Opset>> opsets = {fb::CreateOpset(fbb, dom, 13)};
  auto ov = fbb.CreateVector(opsets);
  auto gname = fbb.CreateString("g");
  auto graph = fb::CreateGraph(fbb, gname, vv, nv, gin, gout, 0, ov);
  std::vector<fb::Blob> blobs = {fb::Blob(0, blob_bytes)};
  auto bv = fbb.CreateVectorOfStructs(blobs);
  fbb.Finish(fb::CreateEngine(fbb, 0, graph, bv));

  engine::FileHeader h;
  h.version = version;
  h.fb_offset = engine::kHeaderSize;
  h.fb_size = fbb.GetSize();
  h.data_offset = (h.fb_offset + h.fb_size + 63) / 64 * 64;
  h.data_size = blob_bytes;
  h.file_size = h.data_offset + h.data_size;
  std::string out(h.file_size, '\0');
  std::memcpy(out.data() + h.fb_offset, fbb.GetBufferPointer(), h.fb_size);
  auto* half = reinterpret_cast<uint16_t*>(out.data() + h.data_offset);
  for (size_t i = 0; i < blob_bytes / 2; ++i)
    half[i] = float_to_half_bits(0.125f * static_cast<float>(i) - 1.f);
  engine::encode_header(h, reinterpret_cast<unsigned char*>(out.data()));
  engine::reseal(out);
  return out;
}

std::string load_error(const std::string& bytes) {
  try {
    engine::load_engine_bytes(std::make_shared<const std::string>(bytes), "bad.lithe");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Fp16, HandmadeEngineWithHalfBlobLoads) {
  const std::string good = handmade_engine(10, 32, engine::kFormatVersionHalfStorage);
  auto e = engine::load_engine_bytes(std::make_shared<const std::string>(good), "good.lithe");
  const ir::Value& w = e.graph->values[1];
  ASSERT_TRUE(w.constant);
  EXPECT_EQ(w.storage, DType::kFloat16);
  ASSERT_EQ(w.constant->dtype(), DType::kFloat32);
  for (int i = 0; i < 16; ++i)  // 0.125 steps are exact in half
    EXPECT_EQ(w.constant->data<float>()[i], 0.125f * static_cast<float>(i) - 1.f) << i;
}

TEST(Fp16, HostileHalfStorageIsRefusedNamingTheValue) {
  const uint32_t v3 = engine::kFormatVersionHalfStorage;
  // float16[4, 4] needs 32 bytes.
  EXPECT_EQ(load_error(handmade_engine(10, 64, v3)),
            "bad.lithe: graph 'g': value 1 'w': blob 0 holds 64 bytes but float16[4x4] needs 32");
  EXPECT_EQ(load_error(handmade_engine(10, 30, v3)),
            "bad.lithe: graph 'g': value 1 'w': blob 0 holds 30 bytes but float16[4x4] needs 32");
  EXPECT_EQ(load_error(handmade_engine(7, 32, v3)),
            "bad.lithe: graph 'g': value 1 'w': storage type 7 is not supported for a constant "
            "of type float32 (only float16 storage of float32)");
  EXPECT_EQ(load_error(handmade_engine(10, 32, v3, /*int16*/ 5)),
            "bad.lithe: graph 'g': value 1 'w': storage type 10 is not supported for a constant "
            "of type int16 (only float16 storage of float32)");
  EXPECT_EQ(load_error(handmade_engine(10, 32, 2)),
            "bad.lithe: graph 'g': value 1 'w': half storage in a format-2 file (it needs format "
            "3)");
}

// Every byte of a small fp16 engine flipped and zeroed, checksum recomputed: the half path
// (storage_dtype, blob size, decode) loads or refuses with one line, never crashes; what
// loads has readable float32 constants.
TEST(Fp16, EveryByteOfAHalfEngineResealed) {
  const std::string good = handmade_engine(10, 32, engine::kFormatVersionHalfStorage);
  auto load = [](const std::string& bytes) {
    auto e = engine::load_engine_bytes(std::make_shared<const std::string>(bytes), "sweep");
    double sum = 0;
    for (const auto& v : e.graph->values)
      if (v.constant && v.constant->dtype() == DType::kFloat32)
        for (int64_t i = 0; i < v.constant->numel(); ++i) sum += v.constant->data<float>()[i];
    (void)sum;
  };
  test::FlipCounts c = test::flip_each(good, test::flip_positions(0, good.size()), load,
                                       "sweep: ", "fp16 byte", engine::reseal);
  std::printf("[fp16] byte sweep: %d loaded, %d refused with one line, %d other\n", c.loaded,
              c.clear_error, c.other);
  EXPECT_EQ(c.other, 0);
  EXPECT_GT(c.clear_error, 0);
}

// Each real model built with fp16: about half the engine, and outputs within cosine 0.9999
// of the fp32 engine's on a random input. LITHE_FP16_MODELS=a,b limits the models.
TEST(Fp16, RealModelsHalveTheEngineAndKeepTheOutputs) {
  auto dir = test::temp_dir("fp16_real");
  int checked = 0;
  std::printf("[fp16] %-14s %12s %12s %7s %12s\n", "model", "fp32 bytes", "fp16 bytes", "ratio",
              "min cosine");
  for (const test::RealModel& m : test::real_models()) {
    if (!test::selected(m.name, "LITHE_FP16_MODELS")) continue;
    const auto path = test::real_model_path(m);
    if (!std::filesystem::exists(path)) continue;
    SCOPED_TRACE(m.name);
    std::string engines[2];
    for (int k = 0; k < 2; ++k) {
      build::BuildOptions o = with_precision(k ? "fp16" : "fp32");
      o.input_shapes = m.load_options().input_shapes;
      engines[k] = (dir / (std::string(m.name) + (k ? ".fp16" : ".fp32") + ".lithe")).string();
      engine::write_engine(engines[k], build::build_model(path.string(), o).contents);
    }
    auto e32 = Engine::load(engines[0]), e16 = Engine::load(engines[1]);
    auto c32 = e32->create_context(), c16 = e16->create_context();
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (const TensorInfo& in : e32->inputs()) {
      ASSERT_EQ(in.dtype, DType::kFloat32) << in.name;
      Tensor x(DType::kFloat32, in.shape);
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
      c32->set_input(in.name, x);
      c16->set_input(in.name, x);
    }
    c32->run();
    c16->run();
    double min_cos = 1;
    for (size_t k = 0; k < e32->outputs().size(); ++k) {
      const Tensor &a = c32->output(k), &b = c16->output(k);
      ASSERT_EQ(a.shape(), b.shape());
      std::vector<float> va(a.data<float>(), a.data<float>() + a.numel());
      std::vector<float> vb(b.data<float>(), b.data<float>() + b.numel());
      const double c = cosine(va, vb);
      EXPECT_GE(c, 0.9999) << "output " << e32->outputs()[k].name;
      min_cos = std::min(min_cos, c);
    }
    const auto s32 = std::filesystem::file_size(engines[0]);
    const auto s16 = std::filesystem::file_size(engines[1]);
    const double ratio = static_cast<double>(s16) / static_cast<double>(s32);
    EXPECT_LE(ratio, 0.55);
    std::printf("[fp16] %-14s %12ju %12ju %7.4f %12.8f\n", m.name, static_cast<uintmax_t>(s32),
                static_cast<uintmax_t>(s16), ratio, min_cos);
    std::filesystem::remove(engines[0]);
    std::filesystem::remove(engines[1]);
    ++checked;
  }
  std::filesystem::remove_all(dir);
  if (!checked) GTEST_SKIP() << "no real model in " << test::models_cache();
}

}  // namespace
}  // namespace lithe
