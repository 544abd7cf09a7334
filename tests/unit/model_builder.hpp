// Builds small ONNX models in tests (valid ones and deliberately broken ones).
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"

namespace lithe::test {

inline ::onnx::ModelProto make_model(int opset = 13) {
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

inline void add_io(::onnx::ValueInfoProto* vi, const std::string& name, int elem,
                   const std::vector<int64_t>& dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* sh = tt->mutable_shape();
  for (int64_t d : dims) sh->add_dim()->set_dim_value(d);
}

inline ::onnx::NodeProto* add_node(::onnx::ModelProto& m, const std::string& op,
                                   const std::vector<std::string>& in,
                                   const std::vector<std::string>& out,
                                   const std::string& name = "") {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + std::to_string(m.graph().node_size()) : name);
  for (auto& s : in) n->add_input(s);
  for (auto& s : out) n->add_output(s);
  return n;
}

inline ::onnx::TensorProto* add_init(::onnx::ModelProto& m, const std::string& name,
                                     const std::vector<int64_t>& dims,
                                     const std::vector<float>& vals) {
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(::onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float v : vals) t->add_float_data(v);
  return t;
}

/// A fresh temporary folder for one test.
/// y = Relu(x) on 2x3 floats (node "relu1"): the smallest valid model, to break in tests.
inline ::onnx::ModelProto relu_model() {
  auto m = make_model();
  add_io(m.mutable_graph()->add_input(), "x", ::onnx::TensorProto::FLOAT, {2, 3});
  add_io(m.mutable_graph()->add_output(), "y", ::onnx::TensorProto::FLOAT, {2, 3});
  add_node(m, "Relu", {"x"}, {"y"}, "relu1");
  return m;
}

inline std::filesystem::path temp_dir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() /
           ("lithe_test_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

inline std::string save(const ::onnx::ModelProto& m, const std::filesystem::path& path) {
  std::ofstream f(path, std::ios::binary);
  m.SerializeToOstream(&f);
  return path.string();
}

}  // namespace lithe::test
