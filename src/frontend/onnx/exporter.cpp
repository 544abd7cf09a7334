#include "frontend/onnx/exporter.hpp"

#include <algorithm>
#include <iterator>
#include <set>
#include <string_view>

#include "core/file_io.hpp"
#include "frontend/onnx/importer.hpp"
#include "onnx/onnx_pb.h"
#include "ops/fused_internal.hpp"
#include "passes/pass_util.hpp"

namespace lithe::onnx {
namespace {

using K = ir::Attribute::Kind;

void write_tensor(const Tensor& t, const std::string& name, ::onnx::TensorProto* p,
                  const std::string& what) {
  if (!dtype_supported(t.dtype()) || dtype_size(t.dtype()) == 0)
    fail(what, ": element type ", dtype_name(t.dtype()), " cannot be written to ONNX");
  p->set_name(name);
  // lithe's DType values are ONNX's TensorProto.DataType values (core/dtype.hpp).
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  // Host order is little-endian, which is what raw_data holds.
  if (t.nbytes() > 0)
    p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
  else
    p->set_raw_data(std::string());
}

void write_value_info(const ir::Value& v, ::onnx::ValueInfoProto* vi) {
  vi->set_name(v.name);
  if (v.type.dtype == DType::kUndefined) return;
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.type.dtype));
  if (!v.type.has_shape) return;
  auto* sh = tt->mutable_shape();
  for (int64_t d : v.type.dims) {
    auto* dim = sh->add_dim();
    if (d >= 0) dim->set_dim_value(d);  // -1: known only at run time, left unnamed
  }
}

void write_attr(const std::string& name, const ir::Attribute& a, ::onnx::AttributeProto* p,
                const std::string& label) {
  p->set_name(name);
  const std::string what = label + ": attribute '" + name + "'";
  switch (a.kind) {
    case K::kFloat:
      p->set_type(::onnx::AttributeProto::FLOAT);
      p->set_f(a.f);
      break;
    case K::kInt:
      p->set_type(::onnx::AttributeProto::INT);
      p->set_i(a.i);
      break;
    case K::kString:
      p->set_type(::onnx::AttributeProto::STRING);
      p->set_s(a.s);
      break;
    case K::kTensor:
      p->set_type(::onnx::AttributeProto::TENSOR);
      write_tensor(a.t, "", p->mutable_t(), what);
      break;
    case K::kFloats:
      p->set_type(::onnx::AttributeProto::FLOATS);
      for (float f : a.floats) p->add_floats(f);
      break;
    case K::kInts:
      p->set_type(::onnx::AttributeProto::INTS);
      for (int64_t i : a.ints) p->add_ints(i);
      break;
    case K::kStrings:
      p->set_type(::onnx::AttributeProto::STRINGS);
      for (const auto& s : a.strings) p->add_strings(s);
      break;
    case K::kTensors:
      p->set_type(::onnx::AttributeProto::TENSORS);
      for (const Tensor& t : a.tensors) write_tensor(t, "", p->add_tensors(), what);
      break;
    case K::kGraph:
    case K::kGraphs:
      fail(what, " holds a subgraph: graphs with If/Loop/Scan bodies cannot be exported");
  }
}

class Exporter {
 public:
  Exporter(const ir::Graph& g, ::onnx::GraphProto* gp) : g_(g), gp_(gp) {
    for (const ir::Value& v : g.values) names_.insert(v.name);
    auto it = g.opsets.find("");
    opset_ = it == g.opsets.end() ? 13 : it->second;
  }

  void run() {
    gp_->set_name(g_.name.empty() ? "lithe" : g_.name);
    std::vector<char> used(g_.values.size(), 0);
    for (const ir::Node& n : g_.nodes)
      for (int v : n.inputs)
        if (v >= 0) used[static_cast<size_t>(v)] = 1;
    for (int v : g_.outputs) used[static_cast<size_t>(v)] = 1;
    for (int v : g_.inputs) write_value_info(val(v), gp_->add_input());
    for (int v : g_.outputs) write_value_info(val(v), gp_->add_output());
    for (size_t v = 0; v < g_.values.size(); ++v)
      if (used[v] && g_.values[v].constant)
        write_tensor(*g_.values[v].constant, g_.values[v].name, gp_->add_initializer(),
                     "constant '" + g_.values[v].name + "'");
    for (const ir::Node& n : g_.nodes) {
      if (ir::has_subgraph(n))
        fail(n.label(), ": graphs with If/Loop/Scan bodies cannot be exported");
      if (n.domain == "lithe")
        write_fused(n);
      else
        write_plain(n);
    }
  }

 private:
  const ir::Value& val(int v) const { return g_.values[static_cast<size_t>(v)]; }
  std::string name_of(int v) const { return v < 0 ? std::string() : val(v).name; }

  // A value name not used yet, from `hint`.
  std::string fresh(const std::string& hint) {
    std::string n = hint;
    for (int k = 1; !names_.insert(n).second; ++k) n = hint + "__" + std::to_string(k);
    return n;
  }

  ::onnx::NodeProto* add(const std::string& op, const std::string& name,
                         const std::vector<std::string>& in, const std::vector<std::string>& out) {
    auto* p = gp_->add_node();
    p->set_op_type(op);
    p->set_name(name);
    size_t n = in.size();
    while (n > 0 && in[n - 1].empty()) --n;  // trailing omitted inputs are left off
    for (size_t i = 0; i < n; ++i) p->add_input(in[i]);
    for (const auto& o : out) p->add_output(o);
    return p;
  }

  static void set_float(::onnx::NodeProto* p, const char* name, float f) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::FLOAT);
    a->set_f(f);
  }

  // A scalar initializer (float32 unless `dtype` says otherwise).
  std::string scalar(const std::string& hint, float f, DType dtype = DType::kFloat32) {
    const std::string n = fresh(hint);
    write_tensor(passes::util::from_doubles({f}, dtype, Shape{}), n, gp_->add_initializer(),
                 "constant '" + n + "'");
    return n;
  }

  void write_plain(const ir::Node& n) {
    std::vector<std::string> in, out;
    for (int v : n.inputs) in.push_back(name_of(v));
    for (int v : n.outputs) out.push_back(name_of(v));
    auto* p = add(n.op_type, n.name, in, out);
    if (!n.domain.empty()) p->set_domain(n.domain);
    for (const auto& [an, a] : n.attrs) write_attr(an, a, p->add_attribute(), n.label());
  }

  // y = act(op(inputs) + Z) as the ONNX op, Add and the activation's op(s).
  void write_fused(const ir::Node& n) {
    const int zi = ops::fused::residual_index(n.op_type);
    if (zi < 0)
      fail(n.label(), ": lithe-domain op '", n.op_type, "' has no ONNX form (export the graph ",
           "before the layout and quantization steps)");
    if (n.outputs.size() != 1 || n.outputs[0] < 0)
      fail(n.label(), ": a fused op has exactly one output");
    ops::fused::Epilogue e;
    std::string act;
    std::vector<float> params, affine;
    if (auto it = n.attrs.find("activation"); it != n.attrs.end()) act = it->second.s;
    if (auto it = n.attrs.find("activation_params"); it != n.attrs.end())
      params = it->second.floats;
    if (auto it = n.attrs.find("activation_affine"); it != n.attrs.end())
      affine = it->second.floats;
    if (std::string err = ops::fused::parse_epilogue(act, params, affine, &e); !err.empty())
      fail(n.label(), ": ", err);
    const size_t z = static_cast<size_t>(zi);
    const bool has_z = n.inputs.size() > z && n.inputs[z] >= 0;
    const bool has_act = e.act != ops::fused::Activation::kNone;
    const std::string y = name_of(n.outputs[0]);

    std::vector<std::string> base_in;
    for (size_t i = 0; i < n.inputs.size() && i < z; ++i) base_in.push_back(name_of(n.inputs[i]));
    std::string cur = has_z || has_act ? fresh(y + "/" + n.op_type) : y;
    auto* base = add(n.op_type, n.name, base_in, {cur});
    for (const auto& [an, a] : n.attrs)
      if (std::find(std::begin(ops::fused::kEpilogueAttrs), std::end(ops::fused::kEpilogueAttrs),
                    an) == std::end(ops::fused::kEpilogueAttrs))
        write_attr(an, a, base->add_attribute(), n.label());
    if (has_z) {
      const std::string sum = has_act ? fresh(y + "/add") : y;
      add("Add", n.name + "/add", {cur, name_of(n.inputs[z])}, {sum});
      cur = sum;
    }
    if (!has_act) return;
    if (!e.affine) return write_activation(n, e, cur, y);
    // The affine map after the activation: Mul by the scale, Add of the shift.
    const std::string a = fresh(y + "/act"), m = fresh(y + "/scale");
    const DType dt = g_.values[static_cast<size_t>(n.outputs[0])].type.dtype;
    write_activation(n, e, cur, a);
    add("Mul", n.name + "/scale", {a, scalar(y + "/scale_k", e.scale, dt)}, {m});
    add("Add", n.name + "/shift", {m, scalar(y + "/shift_k", e.shift, dt)}, {y});
  }

  void write_activation(const ir::Node& n, const ops::fused::Epilogue& e, const std::string& x,
                        const std::string& y) {
    using ops::fused::Activation;
    const std::string name = n.name + "/" + ops::fused::activation_name(e.act);
    switch (e.act) {
      case Activation::kNone:
        return;
      case Activation::kRelu:
      case Activation::kSigmoid:
      case Activation::kTanh:
        add(ops::fused::activation_name(e.act), name, {x}, {y});
        return;
      case Activation::kClip:
        if (opset_ >= 11) {
          add("Clip", name, {x, scalar(y + "/clip_min", e.p0), scalar(y + "/clip_max", e.p1)}, {y});
        } else {
          auto* p = add("Clip", name, {x}, {y});
          set_float(p, "min", e.p0);
          set_float(p, "max", e.p1);
        }
        return;
      case Activation::kLeakyRelu:
        set_float(add("LeakyRelu", name, {x}, {y}), "alpha", e.p0);
        return;
      case Activation::kHardSigmoid: {
        auto* p = add("HardSigmoid", name, {x}, {y});
        set_float(p, "alpha", e.p0);
        set_float(p, "beta", e.p1);
        return;
      }
      case Activation::kHardSwish: {
        if (opset_ >= 14) {
          add("HardSwish", name, {x}, {y});
          return;
        }
        // Before opset 14: x * HardSigmoid(x; 1/6, 1/2), the form fuse_activation matches.
        const std::string hs = fresh(y + "/hardsigmoid");
        auto* p = add("HardSigmoid", name + "_gate", {x}, {hs});
        set_float(p, "alpha", 1.f / 6.f);
        set_float(p, "beta", 0.5f);
        add("Mul", name, {x, hs}, {y});
        return;
      }
      case Activation::kSiLU: {
        const std::string s = fresh(y + "/sigmoid");
        add("Sigmoid", name + "_gate", {x}, {s});
        add("Mul", name, {x, s}, {y});
        return;
      }
    }
  }

  const ir::Graph& g_;
  ::onnx::GraphProto* gp_;
  std::set<std::string> names_;
  int opset_ = 13;
};

}  // namespace

std::string export_model_bytes(const ir::Graph& g) {
  ::onnx::ModelProto m;
  int opset = 13;
  for (const auto& [domain, version] : g.opsets) {
    if (domain == "lithe") continue;  // fused ops are written as standard ONNX
    auto* o = m.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
    if (domain.empty()) opset = version;
  }
  if (!g.opsets.count("")) {
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
  }
  // The oldest IR version that carries the opset (ONNX's versioning table).
  m.set_ir_version(opset >= 21 ? 10 : opset >= 19 ? 9 : 8);
  if (m.ir_version() > kMaxIrVersion) fail("opset ", opset, " is newer than lithe writes");
  m.set_producer_name("lithe");
  m.set_producer_version("0.1.0");
  Exporter(g, m.mutable_graph()).run();
  std::string bytes;
  if (m.ByteSizeLong() > kMaxModelBytes || !m.SerializeToString(&bytes))
    fail("graph '", g.name, "': the ONNX model is over ", kMaxModelBytes, " bytes");
  return bytes;
}

void export_model(const ir::Graph& g, const std::string& path) {
  write_file_atomically(path, export_model_bytes(g));
}

}  // namespace lithe::onnx
