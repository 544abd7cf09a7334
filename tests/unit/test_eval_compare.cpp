// lithe eval / lithe compare cores (tools/lithe): agreement metrics on known vectors, image
// preprocessing on tiny generated PNGs, an eval run whose accuracy follows from its data, and
// compare runs: reference vs optimized (everything near-identical) and a model with one
// perturbed layer (that layer is the one marked).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "builder/build.hpp"
#include "core/npy.hpp"
#include "engine/engine.hpp"
#include "evaluate.hpp"
#include "graph_test_util.hpp"
#include "image.hpp"
#include "lithe/lithe.hpp"
#include "metrics.hpp"
#include "model_builder.hpp"

using namespace lithe;
using namespace lithe::cli;
namespace fs = std::filesystem;

namespace {

Tensor vec(std::vector<float> v) {
  Tensor t(DType::kFloat32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

Image solid(int w, int h, std::vector<uint8_t> rgb) {
  Image img{w, h, 3, {}};
  for (int i = 0; i < w * h; ++i) img.pixels.insert(img.pixels.end(), rgb.begin(), rgb.end());
  return img;
}

const std::string kTiny = std::string(LITHE_SOURCE_DIR) + "/examples/tiny_cnn.onnx";

}  // namespace

// ---- metrics

TEST(Metrics, KnownVectors) {
  Agreement same = agreement(vec({1, 2, 3}), vec({1, 2, 3}));
  EXPECT_DOUBLE_EQ(same.cosine, 1.0);
  EXPECT_EQ(same.max_abs, 0.0);
  EXPECT_TRUE(std::isinf(same.snr_db) && same.snr_db > 0);

  // |ref|^2 = 25, |err|^2 = 0.25: SNR 20 dB; cosine 27 / (5 sqrt(29.25)).
  Agreement a = agreement(vec({3, 4}), vec({3, 4.5f}));
  EXPECT_NEAR(a.snr_db, 20.0, 1e-9);
  EXPECT_NEAR(a.cosine, 27.0 / (5.0 * std::sqrt(29.25)), 1e-12);
  EXPECT_DOUBLE_EQ(a.max_abs, 0.5);

  // Orthogonal unit vectors: cosine 0, error power 2 over signal 1: -3.0103 dB.
  Agreement o = agreement(vec({1, 0}), vec({0, 1}));
  EXPECT_NEAR(o.cosine, 0.0, 1e-15);
  EXPECT_NEAR(o.snr_db, -10 * std::log10(2.0), 1e-9);
  EXPECT_DOUBLE_EQ(o.max_abs, 1.0);

  // Opposite: cosine -1, max abs 2 x 2.
  Agreement n = agreement(vec({1, -2}), vec({-1, 2}));
  EXPECT_NEAR(n.cosine, -1.0, 1e-15);
  EXPECT_DOUBLE_EQ(n.max_abs, 4.0);

  Agreement zero = agreement(vec({0, 0}), vec({0, 0}));
  EXPECT_EQ(zero.cosine, 1.0);
  Agreement one_zero = agreement(vec({0, 0}), vec({0, 1}));
  EXPECT_EQ(one_zero.cosine, 0.0);
  EXPECT_TRUE(std::isinf(one_zero.snr_db) && one_zero.snr_db < 0);

  Agreement nan = agreement(vec({1, std::numeric_limits<float>::quiet_NaN()}), vec({1, 2}));
  EXPECT_TRUE(std::isnan(nan.cosine) && std::isnan(nan.snr_db));
  EXPECT_THROW(agreement(vec({1, 2}), vec({1})), Error);
}

TEST(Metrics, StatsMeanAndWorst) {
  AgreementStats s;
  s.add(agreement(vec({3, 4}), vec({3, 4.5f})));  // 20 dB, max abs 0.5
  s.add(agreement(vec({1, 0}), vec({1, 0})));     // inf dB, max abs 0
  s.add(agreement(vec({10, 0}), vec({10, 1})));   // 20 dB (100 / 1), max abs 1
  EXPECT_EQ(s.n, 3);
  EXPECT_NEAR(s.mean_snr_db(), 20.0, 1e-9);  // over the finite ones
  EXPECT_NEAR(s.worst_snr_db, 20.0, 1e-9);
  EXPECT_DOUBLE_EQ(s.worst_max_abs, 1.0);
  EXPECT_NEAR(s.mean_max_abs(), 0.5, 1e-12);
  EXPECT_NEAR(s.worst_cosine, 10.0 / std::sqrt(101.0), 1e-12);  // the third pair's
}

TEST(Metrics, TopK) {
  EXPECT_EQ(top_k(vec({0.1f, 0.5f, 0.2f, 0.5f}), 3), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(top_k(vec({3, 1}), 5), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(format_db(12.345), "12.3");
  EXPECT_EQ(format_db(std::numeric_limits<double>::infinity()), "inf");
}

// ---- preprocessing

TEST(Preprocess, PngRoundTripAndGray) {
  fs::path d = test::temp_dir("pre_png");
  Image img{2, 1, 3, {255, 0, 0, 10, 20, 30}};
  write_png((d / "a.png").string(), img);
  Image rgb = load_image((d / "a.png").string(), 3);
  EXPECT_EQ(rgb.width, 2);
  EXPECT_EQ(rgb.height, 1);
  EXPECT_EQ(rgb.pixels, img.pixels);
  // stb's gray: (77 R + 150 G + 29 B) >> 8.
  Image gray = load_image((d / "a.png").string(), 1);
  ASSERT_EQ(gray.pixels.size(), 2u);
  EXPECT_EQ(gray.pixels[0], (255 * 77) >> 8);
  EXPECT_EQ(gray.pixels[1], (10 * 77 + 20 * 150 + 30 * 29) >> 8);
  EXPECT_THROW(load_image((d / "missing.png").string(), 3), Error);
  std::ofstream((d / "bad.png").string()) << "not an image";
  EXPECT_THROW(load_image((d / "bad.png").string(), 3), Error);
  fs::remove_all(d);
}

TEST(Preprocess, JpegDecodes) {
  // A solid colour survives JPEG (quality 95) within a few levels: the decoder is wired up.
  fs::path d = test::temp_dir("pre_jpg");
  write_jpg((d / "c.jpg").string(), solid(16, 16, {200, 40, 120}), 95);
  Image rgb = load_image((d / "c.jpg").string(), 3);
  ASSERT_EQ(rgb.width, 16);
  ASSERT_EQ(rgb.height, 16);
  const int want[3] = {200, 40, 120};
  for (size_t i = 0; i < rgb.pixels.size(); ++i) EXPECT_NEAR(rgb.pixels[i], want[i % 3], 4) << i;
  fs::remove_all(d);
}

TEST(Preprocess, ResizeCrop) {
  FloatImage row{2, 1, 1, {0, 100}};
  // Half-pixel centers: source x = (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped).
  FloatImage up = resize_bilinear(row, 4, 1);
  EXPECT_EQ(up.data, (std::vector<float>{0, 25, 75, 100}));
  FloatImage down = resize_bilinear(FloatImage{4, 1, 1, {0, 10, 20, 30}}, 2, 1);
  EXPECT_EQ(down.data, (std::vector<float>{5, 25}));  // source 0.5 and 2.5
  FloatImage grid{4, 2, 1, {0, 1, 2, 3, 4, 5, 6, 7}};
  FloatImage c = center_crop(grid, 2, 2);
  EXPECT_EQ(c.data, (std::vector<float>{1, 2, 5, 6}));
  EXPECT_THROW(center_crop(grid, 5, 1), Error);
}

TEST(Preprocess, ScaleMeanStdLayoutOrder) {
  // 2x1 RGB image: pixel 0 = (10, 20, 30), pixel 1 = (40, 50, 60).
  Image img{2, 1, 3, {10, 20, 30, 40, 50, 60}};
  Preprocess p;
  p.scale = 0.1;
  p.mean = {1, 2, 3};
  p.std = {1, 2, 4};
  Tensor nchw = preprocess(img, p, {1, 3, 1, 2}, "img");
  // (x * 0.1 - mean[c]) / std[c], channel planes.
  const std::vector<float> want_nchw = {0, 3, 0, 1.5f, 0, 0.75f};
  for (size_t i = 0; i < want_nchw.size(); ++i)
    EXPECT_NEAR(nchw.data<float>()[i], want_nchw[i], 1e-6) << i;
  p.layout = "nhwc";
  Tensor nhwc = preprocess(img, p, {1, 1, 2, 3}, "img");
  const std::vector<float> want_nhwc = {0, 0, 0, 3, 1.5f, 0.75f};
  for (size_t i = 0; i < want_nhwc.size(); ++i)
    EXPECT_NEAR(nhwc.data<float>()[i], want_nhwc[i], 1e-6) << i;
  // bgr: channel 0 of the tensor is the image's blue.
  Preprocess b;
  b.bgr = true;
  Tensor bgr = preprocess(img, b, {1, 3, 1, 2}, "img");
  EXPECT_EQ(bgr.data<float>()[0], 30);
  EXPECT_EQ(bgr.data<float>()[1], 60);
  EXPECT_EQ(bgr.data<float>()[4], 10);
  // resize-short then crop: 4x2 -> short side 1 -> 2x1 -> crop 1x1 (left pixel of the resize).
  Image wide{4, 2, 1, {0, 10, 20, 30, 0, 10, 20, 30}};
  Preprocess rs;
  rs.resize_short = 1;
  rs.crop_w = rs.crop_h = 1;
  Tensor one = preprocess(wide, rs, {1, 1, 1, 1}, "wide");
  EXPECT_NEAR(one.data<float>()[0], 5.0f, 1e-6);  // source x 0.5 between 0 and 10
  // No resize or crop: resized to the input size.
  Tensor fit = preprocess(wide, Preprocess{}, {1, 1, 1, 2}, "wide");
  EXPECT_NEAR(fit.data<float>()[0], 5.0f, 1e-6);
  EXPECT_NEAR(fit.data<float>()[1], 25.0f, 1e-6);
  // A crop that does not give the input size fails naming the file.
  Preprocess bad;
  bad.crop_w = bad.crop_h = 1;
  try {
    preprocess(wide, bad, {1, 1, 2, 2}, "wide.png");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wide.png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(preprocess(img, Preprocess{}, {1, 1, 1, 2}, "img"), Error);  // 3 vs 1 channels
}

TEST(Preprocess, FlagParsing) {
  EXPECT_NEAR(parse_number("1/255", "--scale"), 1.0 / 255, 1e-15);
  EXPECT_EQ(parse_number_list("0.5,1,2", "--mean"), (std::vector<double>{0.5, 1, 2}));
  EXPECT_EQ(parse_size("224x200", "--resize"), (std::array<int, 2>{224, 200}));
  EXPECT_THROW(parse_number("abc", "--scale"), Error);
  EXPECT_THROW(parse_number("1/0", "--scale"), Error);
  EXPECT_THROW(parse_size("224", "--crop"), Error);
  EXPECT_THROW(parse_size("0x3", "--crop"), Error);
}

// ---- eval

namespace {
// scores[c] = mean of channel c over the image: [1,3,4,4] -> GlobalAveragePool -> [1,3].
std::string channel_mean_model(const fs::path& dir) {
  auto m = test::make_model();
  test::add_io(m.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {1, 3, 4, 4});
  test::add_io(m.mutable_graph()->add_output(), "y", ::onnx::TensorProto::FLOAT, {1, 3});
  test::add_node(m, "GlobalAveragePool", {"x"}, {"g"});
  test::add_node(m, "Flatten", {"g"}, {"y"});
  return test::save(m, dir / "argmax.onnx");
}
}  // namespace

TEST(Eval, AccuracyFollowsFromTheData) {
  fs::path d = test::temp_dir("eval");
  const std::string model = channel_mean_model(d);
  // Folder labels: 0_red, 1_green, 2_blue (sorted). Each image is one colour (R, G, B); its
  // top-1 is its largest channel, top-2 adds the second largest.
  struct Img {
    const char* folder;
    std::vector<uint8_t> rgb;
  };
  const std::vector<Img> imgs = {
      {"0_red", {200, 100, 0}}, {"0_red", {250, 0, 10}},   {"0_red", {90, 100, 10}},  // top2
      {"1_green", {0, 200, 0}}, {"1_green", {100, 0, 50}},                            // miss
      {"2_blue", {0, 10, 200}}, {"2_blue", {120, 0, 110}},                            // top2
  };
  for (size_t i = 0; i < imgs.size(); ++i) {
    fs::create_directories(d / "set" / imgs[i].folder);
    write_png((d / "set" / imgs[i].folder / ("img" + std::to_string(i) + ".png")).string(),
              solid(6, 6, imgs[i].rgb));
  }
  Dataset ds = load_dataset({(d / "set").string()}, "", "");
  EXPECT_EQ(ds.label_source, "folder names");
  ASSERT_EQ(ds.classes, (std::vector<std::string>{"0_red", "1_green", "2_blue"}));
  ASSERT_EQ(ds.samples.size(), imgs.size());

  auto engine = Engine::load(model);
  EvalOptions opts;
  opts.top_k = 2;
  opts.pre.scale = 1.0 / 255;  // (6x6 images resized to 4x4: solid colours stay exact)
  EvalResult r = run_eval(*engine, nullptr, ds, opts);
  EXPECT_EQ(r.count, 7);
  EXPECT_EQ(r.labelled, 7);
  EXPECT_EQ(r.top1, 4);  // img0, img1, img3, img5
  EXPECT_EQ(r.topk, 6);  // + img2 (green 100 > red 90), img6 (blue second); img4 misses
  EXPECT_EQ(r.layout, "nchw");
  EXPECT_EQ(r.latency_ms.size(), 7u);

  // The same labels from a file, by class name; and against a reference (the unoptimized
  // graph): full agreement.
  {
    std::ofstream names(d / "names.txt");
    names << "0_red\n1_green\n2_blue\n";
    std::ofstream labels(d / "labels.txt");
    labels << "# path label\n";
    for (size_t i = 0; i < imgs.size(); ++i)
      labels << imgs[i].folder << "/img" << i << ".png " << imgs[i].folder << "\n";
  }
  Dataset byfile =
      load_dataset({(d / "set").string()}, (d / "labels.txt").string(), (d / "names.txt").string());
  EXPECT_EQ(byfile.label_source, "labels file");
  LoadOptions ref_opts;
  ref_opts.optimize = false;
  ref_opts.isa = "reference";
  auto ref = Engine::load(model, ref_opts);
  EvalResult rr = run_eval(*engine, ref.get(), byfile, opts);
  EXPECT_EQ(rr.top1, 4);
  EXPECT_EQ(rr.topk, 6);
  EXPECT_EQ(rr.agree_top1, 7);
  ASSERT_EQ(rr.outputs.size(), 1u);
  EXPECT_EQ(rr.outputs[0].stats.n, 7);
  EXPECT_GT(rr.outputs[0].stats.worst_cosine, 0.999999);
  EXPECT_GT(rr.outputs[0].stats.worst_snr_db, 100);

  // Bad label files fail naming the file and line.
  {
    std::ofstream bad(d / "bad.txt");
    bad << "0_red/img0.png purple\n";
  }
  try {
    load_dataset({(d / "set").string()}, (d / "bad.txt").string(), (d / "names.txt").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:1: label 'purple'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_dataset({(d / "set").string()}, (d / "bad.txt").string(), ""), Error);
  EXPECT_THROW(load_dataset({(d / "nothere").string()}, "", ""), Error);
  fs::remove_all(d);
}

TEST(Eval, NpySamples) {
  fs::path d = test::temp_dir("eval_npy");
  const std::string model = channel_mean_model(d);
  // Two samples without the batch dim; the labels file gives class indices.
  for (int c = 0; c < 2; ++c) {
    Tensor t(DType::kFloat32, {3, 4, 4});
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = (i / 16 == c + 1) ? 1.f : 0.f;
    lithe::write_npy((d / ("s" + std::to_string(c) + ".npy")).string(), t);
  }
  {
    std::ofstream labels(d / "labels.txt");
    labels << "s0.npy 1\ns1.npy 0\n";  // s0's largest channel is 1 (hit), s1's is 2 (miss)
  }
  Dataset ds = load_dataset({(d / "s0.npy").string(), (d / "s1.npy").string()},
                            (d / "labels.txt").string(), "");
  auto engine = Engine::load(model);
  EvalOptions opts;
  EvalResult r = run_eval(*engine, nullptr, ds, opts);
  EXPECT_EQ(r.count, 2);
  EXPECT_EQ(r.top1, 1);
  EXPECT_EQ(r.top_k, 3);  // k = 5 capped at the 3 scores
  EXPECT_EQ(r.topk, 2);
  fs::remove_all(d);
}

// ---- compare

TEST(Compare, ReferenceVsOptimizedTinyCnn) {
  LoadOptions ref_opts;
  ref_opts.optimize = false;
  ref_opts.isa = "reference";  // A on the reference executor, B on the fast one
  LoadOptions opt_opts;
  auto a = Engine::load(kTiny, ref_opts);
  auto b = Engine::load(kTiny, opt_opts);
  Tensor x(DType::kFloat32, {1, 3, 64, 64});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.37f * i);
  CompareResult r = compare_models(*a, *b, {{"image", x}}, {});
  // Every Conv-BN-Relu keeps its Relu output name (the convs and BNs are folded away);
  // the convs run channels-last in B and are transposed back.
  std::vector<std::string> names;
  for (const auto& row : r.rows) {
    names.push_back(row.name);
    EXPECT_TRUE(row.skipped.empty()) << row.name << ": " << row.skipped;
    EXPECT_GT(row.agreement.snr_db, 100) << row.name;
    EXPECT_GT(row.agreement.cosine, 0.999999) << row.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"stem.out", "dw.out", "pw.out", "res", "down.out",
                                             "pool", "gap", "flat", "logits", "probs"}));
  EXPECT_EQ(r.first_jump, -1);
  EXPECT_EQ(r.only_a, 8);  // the 4 conv and 4 BN outputs
}

// An INT8 engine against its FP32 build: the uint8 values the quantizer made ("NAME/u8")
// are reported dequantized under the ONNX names, in NCHW, so every Relu output matches.
TEST(Compare, Int8EngineValuesAreReportedDequantized) {
  const fs::path dir = fs::temp_directory_path() / ("lithe_cmp_int8_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  build::BuildOptions o;
  o.precision = "int8";
  o.calib.load = [](const ir::Graph& g) {
    std::vector<std::vector<Tensor>> s;
    for (unsigned i = 0; i < 8; ++i) s.push_back(test::seeded_inputs(g, 60 + i));
    return s;
  };
  engine::write_engine((dir / "q.lithe").string(), build::build_model(kTiny, o).contents);
  auto a = Engine::load(kTiny);
  auto b = Engine::load((dir / "q.lithe").string());
  Tensor x(DType::kFloat32, {1, 3, 64, 64});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.37f * i);
  CompareResult r = compare_models(*a, *b, {{"image", x}}, {});
  std::map<std::string, double> cos;
  for (const auto& row : r.rows) {
    EXPECT_TRUE(row.skipped.empty()) << row.name << ": " << row.skipped;
    cos[row.name] = row.agreement.cosine;
  }
  for (const char* name : {"stem.out", "dw.out", "pw.out", "res", "down.out", "logits"}) {
    ASSERT_TRUE(cos.count(name)) << name;
    // dw.out is the depthwise output that cross-layer equalization rescaled per channel.
    if (std::string(name) == "dw.out") continue;
    EXPECT_GT(cos[name], 0.98) << name;
  }
  fs::remove_all(dir);
}

TEST(Compare, PerturbedLayerIsTheOneMarked) {
  // B is tiny_cnn with the weights of conv 'down' perturbed: the first tensor that depends on
  // them (down.out; down.conv and down.bn are folded into it in B) is marked, nothing before.
  ::onnx::ModelProto m;
  {
    std::ifstream f(kTiny, std::ios::binary);
    ASSERT_TRUE(m.ParseFromIstream(&f));
  }
  bool found = false;
  for (auto& init : *m.mutable_graph()->mutable_initializer()) {
    if (init.name() != "down.w") continue;
    found = true;
    if (!init.raw_data().empty()) {
      std::string raw = init.raw_data();
      auto* w = reinterpret_cast<float*>(raw.data());
      for (size_t i = 0; i < raw.size() / 4; i += 3) w[i] = -w[i] * 2;
      init.set_raw_data(raw);
    } else {
      for (int i = 0; i < init.float_data_size(); i += 3)
        init.set_float_data(i, -init.float_data(i) * 2);
    }
  }
  ASSERT_TRUE(found);
  fs::path d = test::temp_dir("compare_perturbed");
  const std::string bad = test::save(m, d / "perturbed.onnx");
  LoadOptions o;
  LoadOptions ref = o;
  ref.optimize = false;
  auto a = Engine::load(kTiny, ref);
  auto b = Engine::load(bad, o);
  Tensor x(DType::kFloat32, {1, 3, 64, 64});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::cos(0.11f * i);
  CompareResult r = compare_models(*a, *b, {{"image", x}}, {});
  ASSERT_GE(r.first_jump, 0);
  EXPECT_EQ(r.rows[static_cast<size_t>(r.first_jump)].name, "down.out");
  EXPECT_LT(r.rows[static_cast<size_t>(r.first_jump)].agreement.snr_db, 40);
  for (int i = 0; i < r.first_jump; ++i)
    EXPECT_GT(r.rows[static_cast<size_t>(i)].agreement.snr_db, 100);
  fs::remove_all(d);
}

TEST(Compare, RealModelReferenceVsOptimized) {
  const char* env = std::getenv("LITHE_MODELS_CACHE");
  const fs::path cache = env ? fs::path(env) : fs::path(LITHE_SOURCE_DIR) / "models-cache";
  // GoogLeNet: channels-last regions and channel Concats whose inputs are strided slices.
  const fs::path model = cache / "models" / "googlenet.onnx";
  if (!fs::exists(model)) GTEST_SKIP() << model << " not present";
  LoadOptions ref;
  ref.optimize = false;
  auto a = Engine::load(model.string(), ref);
  auto b = Engine::load(model.string());
  const TensorInfo& in = a->inputs()[0];
  Tensor x(DType::kFloat32, in.shape);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.001f * i);
  CompareResult r = compare_models(*a, *b, {{in.name, x}}, {});
  EXPECT_GE(r.rows.size(), 50u);
  for (const auto& row : r.rows) {
    EXPECT_TRUE(row.skipped.empty()) << row.name << ": " << row.skipped;
    EXPECT_GT(row.agreement.snr_db, 60) << row.name;
  }
  EXPECT_EQ(r.first_jump, -1);
  std::printf("googlenet: %zu tensors matched, %lld only in the reference, %lld only optimized\n",
              r.rows.size(), static_cast<long long>(r.only_a), static_cast<long long>(r.only_b));
}

// ---- the observer hook itself

TEST(Observer, OnnxNamesAndLayoutThenOff) {
  auto e = Engine::load(kTiny);  // optimized: the convs run channels-last
  auto ctx = e->create_context();
  Tensor x(DType::kFloat32, {1, 3, 64, 64});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.05f * i);
  ctx->set_input("image", x);
  std::map<std::string, Shape> seen;
  int calls = 0;
  ctx->set_observer([&](const std::string& name, const Tensor& t) {
    ++calls;
    seen[name] = t.shape();
  });
  ctx->run();
  for (const auto& [name, shape] : seen)
    EXPECT_EQ(name.find("_nhwc"), std::string::npos) << name << " was reported in NHWC";
  ASSERT_TRUE(seen.count("stem.out"));
  EXPECT_EQ(seen["stem.out"], (Shape{1, 16, 32, 32}));  // N,C,H,W as in the ONNX model
  ASSERT_TRUE(seen.count("probs"));
  EXPECT_EQ(static_cast<size_t>(calls), seen.size());  // each value once
  const int first = calls;
  ctx->set_observer(nullptr);
  ctx->run();
  EXPECT_EQ(calls, first);
}
