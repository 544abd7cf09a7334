#include "frontend/onnx/importer.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "frontend/onnx/tensor_proto.hpp"
#include "ops/infer.hpp"

namespace lithe::onnx {
namespace fs = std::filesystem;
namespace {

struct Importer {
  std::string what;  // the file, for messages
  std::string base_dir;
  const ImportOptions& opts;
  std::map<std::string, int> opsets;
  std::set<std::string> noted_symbols;

  // Names visible to a graph being imported: its own values plus its ancestors'.
  struct ScopeNames {
    const ScopeNames* parent;
    const ir::Graph* graph;
    bool has(const std::string& n) const {
      for (const ScopeNames* s = this; s; s = s->parent)
        if (s->graph->find_value(n) >= 0) return true;
      return false;
    }
  };

  ir::TensorType type_from_proto(const ::onnx::ValueInfoProto& vi, bool is_input) {
    ir::TensorType t;
    if (!vi.has_type() || !vi.type().has_tensor_type()) {
      if (vi.has_type() && vi.type().value_case() != ::onnx::TypeProto::kTensorType)
        fail("value '", vi.name(), "': only tensor types are supported (sequence, map and optional "
             "types are not)");
      return t;
    }
    const auto& tt = vi.type().tensor_type();
    if (tt.has_elem_type()) t.dtype = dtype_from_onnx(tt.elem_type(), "value '" + vi.name() + "'");
    if (!tt.has_shape()) return t;
    t.has_shape = true;
    auto user = opts.input_shapes.find(vi.name());
    if (is_input && user != opts.input_shapes.end()) {
      const Shape& us = user->second;
      if (us.size() != static_cast<size_t>(tt.shape().dim_size()))
        fail("input '", vi.name(), "': given shape ", shape_str(us), " has rank ", us.size(),
             ", the model declares rank ", tt.shape().dim_size());
      for (int i = 0; i < tt.shape().dim_size(); ++i) {
        const auto& d = tt.shape().dim(i);
        if (d.has_dim_value() && d.dim_value() != us[static_cast<size_t>(i)])
          fail("input '", vi.name(), "': given shape ", shape_str(us), " conflicts with the model's ",
               "dim ", i, " = ", d.dim_value());
      }
      t.dims = us;
      checked_numel(t.dims, "input '" + vi.name() + "'");
      return t;
    }
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        if (d.dim_value() < 0) fail("value '", vi.name(), "': negative dimension ", d.dim_value());
        t.dims.push_back(d.dim_value());
      } else if (is_input) {
        // Symbolic or unknown input dim with no user shape: use the default and say so.
        std::string sym = d.has_dim_param() ? d.dim_param() : "?";
        if (opts.notes && noted_symbols.insert(vi.name() + "/" + sym).second)
          opts.notes->push_back(str_cat("input '", vi.name(), "' dim '", sym, "' set to ",
                                        opts.default_symbolic_dim,
                                        " (give --input-shape to choose)"));
        t.dims.push_back(opts.default_symbolic_dim);
      } else {
        t.dims.push_back(-1);
      }
    }
    if (is_input) checked_numel(t.dims, "input '" + vi.name() + "'");
    return t;
  }

  ir::Attribute attr_from_proto(const ::onnx::AttributeProto& a, const ScopeNames& scope,
                                const std::string& ctx) {
    ir::Attribute r;
    using K = ir::Attribute::Kind;
    std::string actx = ctx + ": attribute '" + a.name() + "'";
    switch (a.type()) {
      case ::onnx::AttributeProto::FLOAT: r.kind = K::kFloat; r.f = a.f(); break;
      case ::onnx::AttributeProto::INT: r.kind = K::kInt; r.i = a.i(); break;
      case ::onnx::AttributeProto::STRING: r.kind = K::kString; r.s = a.s(); break;
      case ::onnx::AttributeProto::TENSOR:
        r.kind = K::kTensor;
        r.t = tensor_from_proto(a.t(), base_dir, actx);
        break;
      case ::onnx::AttributeProto::GRAPH:
        r.kind = K::kGraph;
        r.g = import_graph(a.g(), &scope);
        break;
      case ::onnx::AttributeProto::FLOATS:
        r.kind = K::kFloats;
        r.floats.assign(a.floats().begin(), a.floats().end());
        break;
      case ::onnx::AttributeProto::INTS:
        r.kind = K::kInts;
        r.ints.assign(a.ints().begin(), a.ints().end());
        break;
      case ::onnx::AttributeProto::STRINGS:
        r.kind = K::kStrings;
        r.strings.assign(a.strings().begin(), a.strings().end());
        break;
      case ::onnx::AttributeProto::TENSORS:
        r.kind = K::kTensors;
        for (const auto& t : a.tensors()) r.tensors.push_back(tensor_from_proto(t, base_dir, actx));
        break;
      case ::onnx::AttributeProto::GRAPHS:
        r.kind = K::kGraphs;
        for (const auto& g : a.graphs()) r.graphs.push_back(import_graph(g, &scope));
        break;
      default:
        if (!a.ref_attr_name().empty())
          fail(actx, ": attribute references (functions) are not supported");
        fail(actx, ": unsupported attribute type ", static_cast<int>(a.type()));
    }
    return r;
  }

  // Turns a Constant node into constant data.
  Tensor constant_value(const ::onnx::NodeProto& n, const std::string& label) {
    if (n.attribute_size() != 1)
      fail(label, ": Constant needs exactly one value attribute, got ", n.attribute_size());
    const auto& a = n.attribute(0);
    const std::string& an = a.name();
    if (an == "value") {
      if (a.type() != ::onnx::AttributeProto::TENSOR) fail(label, ": 'value' must be a tensor");
      return tensor_from_proto(a.t(), base_dir, label);
    }
    if (an == "value_float") {
      Tensor t(DType::kFloat32, {});
      t.data<float>()[0] = a.f();
      return t;
    }
    if (an == "value_int") {
      Tensor t(DType::kInt64, {});
      t.data<int64_t>()[0] = a.i();
      return t;
    }
    if (an == "value_floats") {
      Tensor t(DType::kFloat32, {a.floats_size()});
      for (int i = 0; i < a.floats_size(); ++i) t.data<float>()[i] = a.floats(i);
      return t;
    }
    if (an == "value_ints") {
      Tensor t(DType::kInt64, {a.ints_size()});
      for (int i = 0; i < a.ints_size(); ++i) t.data<int64_t>()[i] = a.ints(i);
      return t;
    }
    fail(label, ": Constant attribute '", an, "' is not supported (string and sparse constants)");
  }

  std::shared_ptr<ir::Graph> import_graph(const ::onnx::GraphProto& gp, const ScopeNames* parent) {
    auto g = std::make_shared<ir::Graph>();
    g->name = gp.name();
    g->opsets = opsets;
    const bool top = parent == nullptr;
    ScopeNames scope{parent, g.get()};
    if (static_cast<size_t>(gp.node_size()) > kMaxNodes)
      fail("graph '", gp.name(), "' has ", gp.node_size(), " nodes, over the limit of ", kMaxNodes);
    if (gp.sparse_initializer_size() > 0)
      fail("graph '", gp.name(), "': sparse initializers are not supported");

    std::set<std::string> init_names;
    for (const auto& init : gp.initializer()) {
      std::string w = "initializer '" + init.name() + "'";
      if (init.name().empty()) fail("graph '", gp.name(), "': an initializer has no name");
      if (!init_names.insert(init.name()).second) fail(w, ": duplicate initializer name");
      Tensor t = tensor_from_proto(init, base_dir, w);
      int id = g->add_value(init.name(), {t.dtype(), true, t.shape()});
      g->values[static_cast<size_t>(id)].constant = std::move(t);
    }
    for (const auto& vi : gp.input()) {
      if (init_names.count(vi.name())) continue;  // an initializer with a default value
      if (vi.name().empty()) fail("graph '", gp.name(), "': an input has no name");
      ir::TensorType t = type_from_proto(vi, top);
      if (top && t.dtype == DType::kUndefined)
        fail("input '", vi.name(), "': no element type declared");
      if (g->find_value(vi.name()) >= 0) fail("input '", vi.name(), "': duplicate name");
      g->inputs.push_back(g->add_value(vi.name(), t));
    }
    for (const auto& kv : opts.input_shapes) {
      if (!top || g->find_value(kv.first) >= 0) continue;
      std::string names;
      for (int id : g->inputs) names += (names.empty() ? "" : ", ") + g->values[static_cast<size_t>(id)].name;
      fail("'", kv.first, "' is not an input of the model (inputs: ", names, ")");
    }

    // Pass 1: create every node output (and turn Constant nodes into constants).
    std::vector<int> skip(static_cast<size_t>(gp.node_size()), 0);
    for (int i = 0; i < gp.node_size(); ++i) {
      const auto& n = gp.node(i);
      std::string label = "node '" + n.name() + "' (" + n.op_type() + ")";
      if (n.op_type().empty()) fail(label, ": the node has no op_type");
      for (const auto& o : n.output()) {
        if (o.empty()) continue;
        if (g->find_value(o) >= 0)
          fail(label, ": output '", o, "' is already defined by another node, input or initializer");
        g->add_value(o);
      }
      bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
      if (default_domain && n.op_type() == "Constant") {
        if (n.output_size() != 1) fail(label, ": Constant must have exactly one output");
        Tensor t = constant_value(n, label);
        ir::Value& v = g->values[static_cast<size_t>(g->find_value(n.output(0)))];
        v.type = {t.dtype(), true, t.shape()};
        v.constant = std::move(t);
        skip[static_cast<size_t>(i)] = 1;
      }
    }
    // Pass 2: nodes, with inputs resolved in this graph or (for subgraphs) an outer scope.
    for (int i = 0; i < gp.node_size(); ++i) {
      if (skip[static_cast<size_t>(i)]) continue;
      const auto& n = gp.node(i);
      ir::Node node;
      node.name = n.name().empty() ? n.op_type() + "_" + std::to_string(i) : n.name();
      node.op_type = n.op_type();
      node.domain = n.domain() == "ai.onnx" ? "" : n.domain();
      auto os = opsets.find(node.domain);
      if (os == opsets.end())
        fail(node.label(), ": domain '", n.domain(), "' is not imported by the model's opset_import");
      node.opset = os->second;
      for (const auto& in : n.input()) {
        if (in.empty()) {
          node.inputs.push_back(-1);
          continue;
        }
        int id = g->find_value(in);
        if (id < 0) {
          if (parent && parent->has(in)) {
            id = g->add_value(in);
            g->outer_refs.push_back(id);
          } else {
            fail(node.label(), ": input '", in, "' is not produced by any node, graph input or ",
                 "initializer");
          }
        }
        node.inputs.push_back(id);
      }
      for (const auto& o : n.output()) node.outputs.push_back(o.empty() ? -1 : g->find_value(o));
      std::set<std::string> seen;
      for (const auto& a : n.attribute()) {
        if (!seen.insert(a.name()).second)
          fail(node.label(), ": duplicate attribute '", a.name(), "'");
        node.attrs[a.name()] = attr_from_proto(a, scope, node.label());
      }
      // Subgraph bodies may read outer values that this graph itself takes from further out.
      for (const auto& [an, a] : node.attrs) {
        std::vector<const ir::Graph*> bodies;
        if (a.g) bodies.push_back(a.g.get());
        for (const auto& sg : a.graphs) bodies.push_back(sg.get());
        for (const ir::Graph* b : bodies)
          for (int r : b->outer_refs) {
            const std::string& rn = b->values[static_cast<size_t>(r)].name;
            if (g->find_value(rn) < 0 && parent && parent->has(rn))
              g->outer_refs.push_back(g->add_value(rn));
          }
      }
      g->add_node(std::move(node));
    }
    for (const auto& vi : gp.output()) {
      int id = g->find_value(vi.name());
      if (id < 0) {
        if (parent && parent->has(vi.name())) {
          id = g->add_value(vi.name());
          g->outer_refs.push_back(id);
        } else {
          fail("graph output '", vi.name(), "' is not produced by any node, input or initializer");
        }
      }
      g->outputs.push_back(id);
    }
    g->topo_sort();
    ir::verify(*g);
    if (top) {
      for (int id : g->inputs) {
        const auto& t = g->values[static_cast<size_t>(id)].type;
        if (!t.has_shape)
          fail("input '", g->values[static_cast<size_t>(id)].name,
               "': the model declares no shape; give --input-shape");
      }
      ops::infer_graph(*g);
    }
    return g;
  }
};

// Counts the main graph's nodes straight from the wire format (ModelProto.graph = 7,
// GraphProto.node = 1), so a graph over kMaxNodes is refused before protobuf builds a
// million NodeProtos. Stops early on bytes that do not parse; the full parse reports those.
size_t count_main_graph_nodes(const std::string& bytes) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(static_cast<int>(std::min<size_t>(bytes.size() + 1, INT32_MAX)));
  constexpr uint32_t kModelGraph = 7 << 3 | WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  constexpr uint32_t kGraphNode = 1 << 3 | WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  size_t nodes = 0;
  while (uint32_t tag = in.ReadTag()) {
    if (tag != kModelGraph) {
      if (!WireFormatLite::SkipField(&in, tag)) break;
      continue;
    }
    uint32_t len = 0;
    if (!in.ReadVarint32(&len)) break;
    auto limit = in.PushLimit(static_cast<int>(std::min<uint32_t>(len, INT32_MAX)));
    while (uint32_t t = in.ReadTag()) {
      if (t == kGraphNode) ++nodes;
      if (!WireFormatLite::SkipField(&in, t)) return nodes;
    }
    in.PopLimit(limit);
  }
  return nodes;
}

}  // namespace

std::shared_ptr<ir::Graph> import_model_bytes(const std::string& bytes, const std::string& base_dir,
                                              const std::string& what, const ImportOptions& opts) {
  if (bytes.size() > kMaxModelBytes) fail(what, ": file is larger than ", kMaxModelBytes, " bytes");
  if (size_t n = count_main_graph_nodes(bytes); n > kMaxNodes)
    fail(what, ": the main graph has ", n, " nodes, over the limit of ", kMaxNodes);
  ::onnx::ModelProto model;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(static_cast<int>(std::min<size_t>(bytes.size() + 1, INT32_MAX)));
  in.SetRecursionLimit(64);
  if (!model.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
    fail(what, ": not a valid ONNX model (protobuf parse failed: truncated or corrupt file?)");
  if (model.ir_version() < 0 || model.ir_version() > kMaxIrVersion)
    fail(what, ": IR version ", model.ir_version(), " is not supported (lithe reads 1 to ",
         kMaxIrVersion, ")");
  if (!model.has_graph()) fail(what, ": ONNX model has no graph");
  Importer imp{what, base_dir, opts, {}, {}};
  for (const auto& o : model.opset_import()) {
    std::string d = o.domain() == "ai.onnx" ? "" : o.domain();
    imp.opsets[d] = static_cast<int>(o.version());
  }
  if (model.opset_import_size() == 0) imp.opsets[""] = 1;  // IR version 1-2 models
  auto def = imp.opsets.find("");
  if (def != imp.opsets.end() && def->second > kMaxOpset)
    fail(what, ": default-domain opset ", def->second, " is newer than lithe supports (max ",
         kMaxOpset, ")");
  try {
    return imp.import_graph(model.graph(), nullptr);
  } catch (const Error& e) {
    throw e.with_context(what);
  }
}

std::shared_ptr<ir::Graph> import_model(const std::string& path, const ImportOptions& opts) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) fail(path, ": file not found");
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxModelBytes)
    fail(path, ": file is larger than ", kMaxModelBytes, " bytes");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open file");
  std::stringstream ss;
  ss << f.rdbuf();
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  return import_model_bytes(ss.str(), dir.string(), path, opts);
}

}  // namespace lithe::onnx
