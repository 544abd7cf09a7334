// Byte-flip sweep over small real files: examples/tiny_cnn.onnx and a few ONNX backend test
// models (Debian's libonnx-testdata), and the engines built from them. Every byte (or, in
// the larger files, an even spread of at least 1500) is set to its complement, then to zero;
// each result is loaded the way lithe loads a model file (ONNX: import, optimize, plan;
// engine: verify and load) and, when small, run once on seeded inputs
// (tests/model_probe.hpp). Each must load or fail with a one-line lithe::Error; the
// {loaded, clear error} counts are printed. Engines are swept as they are (the checksum must
// catch every flip) and with the checksum recomputed (the verifier and semantic checks must).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../model_probe.hpp"
#include "byte_flip.hpp"

namespace lithe::test {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Small files of several op families, with and without constants and subgraphs.
std::vector<fs::path> sweep_files() {
  std::vector<fs::path> files = {fs::path(LITHE_SOURCE_DIR) / "examples" / "tiny_cnn.onnx"};
  const fs::path node = "/usr/share/libonnx-testdata/data/node";
  for (const char* t :
       {"test_conv_with_strides_padding", "test_gather_0", "test_slice",
        "test_reshape_reordered_all_dims", "test_maxpool_2d_pads", "test_batchnorm_example",
        "test_resize_upsample_scales_linear", "test_lstm_defaults", "test_if"})
    if (fs::exists(node / t / "model.onnx")) files.push_back(node / t / "model.onnx");
  return files;
}

// Load (ONNX or engine) and run when small; a run error gets the same prefix as a load error.
void load_and_run(const std::string& bytes) {
  engine::EngineContents c = probe_load(bytes, "flip");
  try {
    probe_run(c);
  } catch (const Error& e) {
    throw e.with_context("flip: run");
  }
}

std::string short_name(const fs::path& p) {
  return p.filename() == "model.onnx" ? p.parent_path().filename().string() + ".onnx"
                                      : p.filename().string();
}

// The sweep's first finding: a flipped byte turned a graph output's name into "\n", and the
// error naming it took two lines. Every lithe::Error message is now one line.
TEST(ByteFlip, ErrorMessagesStayOnOneLine) {
  try {
    fail("graph output '", std::string("a\nb\0c\x7f", 6), "' is not produced");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "graph output 'a\\nb\\x00c\\x7f' is not produced");
    EXPECT_STREQ(e.with_context("m.onnx\r").what(),
                 "m.onnx\\r: graph output 'a\\nb\\x00c\\x7f' is not produced");
  }
}

TEST(ByteFlip, OnnxFiles) {
  FlipCounts total;
  for (const fs::path& p : sweep_files()) {
    const std::string good = read_file(p);
    ASSERT_FALSE(good.empty()) << p;
    ASSERT_NO_THROW(load_and_run(good)) << p;  // the intact file loads
    FlipCounts c = flip_each(good, flip_positions(0, good.size(), 4096, 1500), load_and_run,
                             "flip: ", short_name(p));
    print_counts("byte-flip", short_name(p), c);
    EXPECT_EQ(c.other, 0) << p;
    EXPECT_GT(c.clear_error, 0) << p;
    total += c;
  }
  print_counts("byte-flip", "all ONNX files", total);
}

TEST(ByteFlip, EnginesBuiltFromThem) {
  FlipCounts as_is, resealed;
  for (const fs::path& p : sweep_files()) {
    const std::string good =
        engine::serialize(build::build_model_bytes(read_file(p), "", p.string(), {}).contents);
    ASSERT_NO_THROW(load_and_run(good)) << p;
    const std::string name = short_name(p) + " engine";
    const std::vector<size_t> all = flip_positions(0, good.size(), 4096, 1500);
    FlipCounts a = flip_each(good, all, load_and_run, "flip: ", name);
    // Resealed: every position but the checksum field itself (the last 8 header bytes).
    std::vector<size_t> sealed;
    for (size_t i : all)
      if (i < engine::kHeaderSize - 8 || i >= engine::kHeaderSize) sealed.push_back(i);
    FlipCounts r = flip_each(good, sealed, load_and_run, "flip: ", name, engine::reseal);
    print_counts("byte-flip", name + " (as is)", a);
    print_counts("byte-flip", name + " (resealed)", r);
    EXPECT_EQ(a.loaded, 0) << p << ": the checksum must catch every flipped byte";
    EXPECT_EQ(a.other + r.other, 0) << p;
    EXPECT_GT(r.clear_error, 0) << p;
    as_is += a;
    resealed += r;
  }
  print_counts("byte-flip", "all engines (as is)", as_is);
  print_counts("byte-flip", "all engines (resealed)", resealed);
}

}  // namespace
}  // namespace lithe::test
