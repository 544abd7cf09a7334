// Checks the malformed-model corpus (tests/malformed/) first found missing: an ONNX IR
// version lithe does not know, int32_data values outside their element type, a node that
// reads its own output, a main-graph node rejecting its constant inputs at build time, and an
// engine whose stored shapes disagree with what its nodes compute.
#include <gtest/gtest.h>

#include <string>

#include "builder/build.hpp"
#include "engine/engine.hpp"
#include "frontend/onnx/importer.hpp"
#include "model_builder.hpp"

using namespace lithe;
using namespace lithe::test;
namespace fs = std::filesystem;

namespace {

// The message of the lithe::Error `f` throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string import_error(const ::onnx::ModelProto& m, const std::string& tag) {
  auto dir = temp_dir(tag);
  std::string path = save(m, dir / "m.onnx");
  std::string msg = error_of([&] { lithe::onnx::import_model(path, {}); });
  fs::remove_all(dir);
  return msg;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

}  // namespace

TEST(MalformedChecks, IrVersionOutsideTheKnownRange) {
  auto m = relu_model();
  EXPECT_EQ(import_error(m, "ir_ok"), "");
  m.set_ir_version(lithe::onnx::kMaxIrVersion + 1);
  EXPECT_CONTAINS(import_error(m, "ir_new"), "IR version 11 is not supported");
  m.set_ir_version(-1);
  EXPECT_CONTAINS(import_error(m, "ir_neg"), "IR version -1");
}

TEST(MalformedChecks, Int32DataValueOutsideItsElementType) {
  for (int value : {255, 300, -1}) {
    auto m = make_model();
    add_io(m.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {1, 4});
    add_io(m.mutable_graph()->add_output(), "y", ::onnx::TensorProto::UINT8, {1, 4});
    add_init(m, "s", {}, {0.5f});
    auto* z = m.mutable_graph()->add_initializer();
    z->set_name("z");
    z->set_data_type(::onnx::TensorProto::UINT8);
    z->add_int32_data(value);
    add_node(m, "QuantizeLinear", {"x", "s", "z"}, {"y"}, "q");
    std::string msg = import_error(m, "zp" + std::to_string(value));
    if (value == 255) {
      EXPECT_EQ(msg, "");
    } else {
      EXPECT_CONTAINS(msg, "initializer 'z': int32_data value " + std::to_string(value) +
                               " at index 0 does not fit uint8 (0 to 255)");
    }
  }
}

TEST(MalformedChecks, NodeReadingItsOwnOutputAndCyclesNameTheValue) {
  auto m = relu_model();
  add_node(m, "Add", {"x", "t"}, {"t"}, "self");
  EXPECT_CONTAINS(import_error(m, "self"),
                  "node 'self' (Add): value 't' is both an input and an output of this node");

  // a -> b -> c -> a, with a node downstream of the cycle listed first.
  auto c = make_model();
  add_io(c.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {2});
  add_io(c.mutable_graph()->add_output(), "y", ::onnx::TensorProto::FLOAT, {2});
  add_node(c, "Relu", {"c"}, {"y"}, "after");
  add_node(c, "Add", {"x", "c"}, {"a"}, "na");
  add_node(c, "Neg", {"a"}, {"b"}, "nb");
  add_node(c, "Neg", {"b"}, {"c"}, "nc");
  std::string msg = import_error(c, "cycle3");
  EXPECT_CONTAINS(msg, "the graph has a cycle through this node (input '");
  EXPECT_EQ(msg.find("'after'"), std::string::npos) << msg;  // not on the cycle
}

TEST(MalformedChecks, ConstantNodeRejectingItsInputsFailsTheBuild) {
  auto m = make_model();
  add_io(m.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {1, 4});
  add_io(m.mutable_graph()->add_output(), "y", ::onnx::TensorProto::FLOAT, {1, 4});
  add_init(m, "d", {3, 4}, std::vector<float>(12, 1.0f));
  auto* idx = m.mutable_graph()->add_initializer();
  idx->set_name("i");
  idx->set_data_type(::onnx::TensorProto::INT64);
  idx->add_dims(1);
  idx->add_int64_data(3);  // axis 0 has 3 rows
  add_node(m, "Gather", {"d", "i"}, {"g"}, "gather_oob");
  add_node(m, "Add", {"x", "g"}, {"y"}, "add");
  auto dir = temp_dir("fold_error");
  std::string path = save(m, dir / "m.onnx");
  std::string msg = error_of([&] { build::build_model(path, {}); });
  EXPECT_CONTAINS(msg, "node 'gather_oob' (Gather)");
  EXPECT_CONTAINS(msg, "index value 3 is out of range");
  fs::remove_all(dir);
}

TEST(MalformedChecks, EngineShapeThatDisagreesWithItsNodeIsRefused) {
  auto m = make_model();
  add_io(m.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {2, 3});
  add_io(m.mutable_graph()->add_output(), "y", ::onnx::TensorProto::FLOAT, {2, 3});
  add_node(m, "Relu", {"x"}, {"r"}, "relu");
  add_node(m, "Neg", {"r"}, {"y"}, "neg");
  auto dir = temp_dir("engine_types");
  std::string path = save(m, dir / "m.onnx");
  build::BuildOptions o;
  o.optimize = false;
  engine::EngineContents good = build::build_model(path, o).contents;
  fs::remove_all(dir);
  auto load = [](const engine::EngineContents& c) {
    return error_of([&] {
      engine::load_engine_bytes(std::make_shared<const std::string>(engine::serialize(c)), "e");
    });
  };
  EXPECT_EQ(load(good), "");

  engine::EngineContents grown = good;
  grown.graph = std::make_shared<ir::Graph>(*good.graph);
  ir::Value& x = grown.graph->values[static_cast<size_t>(grown.graph->find_value("x"))];
  x.type.dims = {2, 6};  // the input grew, its consumer's stored output did not
  EXPECT_CONTAINS(load(grown), "node 'relu' (Relu): output 'r' is stored as float32[2x3] but "
                               "the node makes float32[2x6]");
}
