// Bad input to the importer and runtime: every case is a lithe::Error whose one-line
// message names the file, node or tensor and what was expected. Never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "frontend/onnx/importer.hpp"
#include "lithe/lithe.hpp"
#include "model_builder.hpp"

using namespace lithe;
using namespace lithe::test;
namespace fs = std::filesystem;

namespace {

// Imports and returns the error message ("" if it loaded).
std::string import_error(const std::string& path) {
  try {
    lithe::onnx::ImportOptions o;
    lithe::onnx::import_model(path, o);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "message must be one line: " << m;
    return m;
  }
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

}  // namespace

TEST(ImportErrors, MissingFile) {
  EXPECT_CONTAINS(import_error("/nonexistent/model.onnx"), "/nonexistent/model.onnx: file not found");
}

TEST(ImportErrors, TruncatedAndRandomFiles) {
  auto dir = temp_dir("trunc");
  std::string full = save(relu_model(), dir / "full.onnx");
  std::ifstream f(full, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  int errors = 0;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto p = dir / "cut.onnx";
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
    std::string m = import_error(p.string());
    if (!m.empty()) {
      ++errors;
      EXPECT_CONTAINS(m, "cut.onnx");
    }
  }
  EXPECT_GT(errors, static_cast<int>(bytes.size()) / 2);
  std::mt19937 rng(1);
  for (int i = 0; i < 50; ++i) {
    std::string junk(200 + i * 13, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    auto p = dir / "junk.onnx";
    std::ofstream(p, std::ios::binary).write(junk.data(), static_cast<std::streamsize>(junk.size()));
    import_error(p.string());  // must not crash; error or (rarely) an empty model error
  }
  fs::remove_all(dir);
}

TEST(ImportErrors, DanglingInput) {
  auto m = relu_model();
  add_node(m, "Relu", {"nowhere"}, {"z"}, "bad_node");
  auto dir = temp_dir("dangling");
  std::string msg = import_error(save(m, dir / "m.onnx"));
  EXPECT_CONTAINS(msg, "node 'bad_node' (Relu): input 'nowhere' is not produced");
  fs::remove_all(dir);
}

TEST(ImportErrors, Cycle) {
  auto m = make_model();
  add_io(m.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {2});
  add_io(m.mutable_graph()->add_output(), "b", ::onnx::TensorProto::FLOAT, {2});
  add_node(m, "Add", {"x", "b"}, {"a"}, "n1");
  add_node(m, "Relu", {"a"}, {"b"}, "n2");
  auto dir = temp_dir("cycle");
  EXPECT_CONTAINS(import_error(save(m, dir / "m.onnx")), "cycle");
  fs::remove_all(dir);
}

TEST(ImportErrors, DuplicateNames) {
  auto m = relu_model();
  add_node(m, "Relu", {"x"}, {"y"}, "again");
  auto dir = temp_dir("dup");
  EXPECT_CONTAINS(import_error(save(m, dir / "m.onnx")), "node 'again' (Relu): output 'y' is already defined");
  fs::remove_all(dir);
}

TEST(ImportErrors, UnknownOp) {
  auto m = relu_model();
  m.mutable_graph()->mutable_node(0)->set_op_type("FrobnicateV2");
  auto dir = temp_dir("unknown");
  std::string msg = import_error(save(m, dir / "m.onnx"));
  EXPECT_CONTAINS(msg, "node 'relu1' (FrobnicateV2): unsupported operator FrobnicateV2 (domain ai.onnx, opset 13)");
  fs::remove_all(dir);
}

TEST(ImportErrors, NewerOpset) {
  auto m = relu_model();
  m.mutable_opset_import(0)->set_version(99);
  auto dir = temp_dir("opset");
  EXPECT_CONTAINS(import_error(save(m, dir / "m.onnx")), "opset 99 is newer");
  fs::remove_all(dir);
}

TEST(ImportErrors, ShapeOverflow) {
  auto m = relu_model();
  auto* t = add_init(m, "w", {int64_t{1} << 40, int64_t{1} << 40}, {});
  (void)t;
  auto dir = temp_dir("overflow");
  EXPECT_CONTAINS(import_error(save(m, dir / "m.onnx")), "initializer 'w'");
  auto m2 = relu_model();
  auto* dim = m2.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0);
  dim->set_dim_value(int64_t{1} << 62);
  EXPECT_CONTAINS(import_error(save(m2, dir / "m2.onnx")), "input 'x'");
  fs::remove_all(dir);
}

TEST(ImportErrors, InitializerSizeMismatch) {
  auto m = relu_model();
  add_init(m, "w", {2, 3}, {1, 2, 3});
  auto dir = temp_dir("size");
  EXPECT_CONTAINS(import_error(save(m, dir / "m.onnx")), "initializer 'w': float_data holds 3 values, expected 6");
  fs::remove_all(dir);
}

TEST(ImportErrors, ExternalDataEscapes) {
  auto dir = temp_dir("ext");
  fs::create_directories(dir / "model");
  std::ofstream(dir / "secret.bin", std::ios::binary) << std::string(24, 'x');
  std::ofstream(dir / "model" / "ok.bin", std::ios::binary) << std::string(24, '\0');
  fs::create_symlink(dir / "secret.bin", dir / "model" / "link.bin");
  auto with_location = [&](const std::string& loc, const std::string& offset = "0") {
    auto m = relu_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("w");
    t->set_data_type(::onnx::TensorProto::FLOAT);
    t->add_dims(2);
    t->add_dims(3);
    t->set_data_location(::onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value(loc);
    auto* ko = t->add_external_data();
    ko->set_key("offset");
    ko->set_value(offset);
    return import_error(save(m, dir / "model" / "m.onnx"));
  };
  EXPECT_EQ(with_location("ok.bin"), "");
  EXPECT_CONTAINS(with_location("../secret.bin"), "escapes the model's folder");
  EXPECT_CONTAINS(with_location((dir / "secret.bin").string()), "is absolute");
  EXPECT_CONTAINS(with_location("link.bin"), "outside the model's folder");
  EXPECT_CONTAINS(with_location("ok.bin", "8"), "past the end");
  EXPECT_CONTAINS(with_location("missing.bin"), "not found");
  fs::remove_all(dir);
}

TEST(RuntimeErrors, WrongShapeDtypeAndMissingInput) {
  auto dir = temp_dir("rt");
  std::string path = save(relu_model(), dir / "m.onnx");
  std::shared_ptr<Engine> e;
  try {
    e = Engine::load(path);
  } catch (const Error& err) {
    GTEST_SKIP() << "Relu not available yet: " << err.what();
  }
  auto c = e->create_context();
  EXPECT_THROW(c->run(), Error);  // missing input
  try {
    c->run();
  } catch (const Error& err) {
    EXPECT_CONTAINS(err.what(), "input 'x' was not set");
  }
  c->set_input("x", Tensor(DType::kFloat32, {3, 2}));
  try {
    c->run();
    ADD_FAILURE() << "wrong shape accepted";
  } catch (const Error& err) {
    EXPECT_CONTAINS(err.what(), "input 'x': expected shape 2x3, got 3x2");
  }
  c->set_input("x", Tensor(DType::kInt32, {2, 3}));
  try {
    c->run();
    ADD_FAILURE() << "wrong dtype accepted";
  } catch (const Error& err) {
    EXPECT_CONTAINS(err.what(), "input 'x': expected element type float32, got int32");
  }
  EXPECT_THROW(c->set_input("nope", Tensor(DType::kFloat32, {2, 3})), Error);
  Tensor x(DType::kFloat32, {2, 3});
  for (int i = 0; i < 6; ++i) x.data<float>()[i] = static_cast<float>(i) - 2.5f;
  c->set_input("x", x);
  c->run();
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(c->output("y").data<float>()[i], std::max(0.0f, static_cast<float>(i) - 2.5f));
  fs::remove_all(dir);
}
