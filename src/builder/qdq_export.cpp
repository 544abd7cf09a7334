#include "builder/qdq_export.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <utility>

#include "builder/int8_tuning.hpp"
#include "ops/fused_internal.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::build {

ir::Graph clone_graph(const ir::Graph& g) {
  ir::Graph c = g;
  for (ir::Value& v : c.values)
    if (v.constant) v.constant = v.constant->clone();
  return c;
}

std::set<std::string> nhwc_conv_names(const ir::Graph& g) {
  std::set<std::string> names;
  for (const ir::Node& n : g.nodes)
    if (n.domain == "lithe" && n.op_type == "ConvNhwc") names.insert(n.name);
  return names;
}

namespace {

// A default-domain node of g's opset.
ir::Node make_node(const ir::Graph& g, const std::string& op, const std::string& name,
                   std::vector<int> in, int out) {
  ir::Node n;
  n.name = name;
  n.op_type = op;
  n.opset = g.opsets.at("");
  n.inputs = std::move(in);
  n.outputs = {out};
  return n;
}

Tensor int64_vector(const std::vector<int64_t>& v) {
  Tensor t(DType::kInt64, Shape{static_cast<int64_t>(v.size())});
  if (!v.empty()) std::memcpy(t.raw(), v.data(), t.nbytes());
  return t;
}

// A constant value named from `hint` (unique in g).
int add_constant(ir::Graph& g, const std::string& hint, Tensor t) {
  std::string name = hint;
  for (int k = 1; g.find_value(name) >= 0; ++k) name = hint + "__" + std::to_string(k);
  const int id = g.add_value(name, {t.dtype(), true, t.shape()});
  g.values[static_cast<size_t>(id)].constant = std::move(t);
  return id;
}

int add_value(ir::Graph& g, const std::string& hint, ir::TensorType type) {
  std::string name = hint;
  for (int k = 1; g.find_value(name) >= 0; ++k) name = hint + "__" + std::to_string(k);
  return g.add_value(name, std::move(type));
}

// Moves attribute `name` of n (ints) to a new int64 constant input at position `pos`
// (omitted inputs before it are filled with -1); false when n has no such attribute.
bool attr_to_input(ir::Graph& g, ir::Node& n, const char* name, size_t pos) {
  auto it = n.attrs.find(name);
  if (it == n.attrs.end()) return false;
  const std::vector<int64_t> v = it->second.ints;
  n.attrs.erase(it);
  if (n.inputs.size() < pos) n.inputs.resize(pos, -1);
  const int c = add_constant(g, n.name + "/" + name, int64_vector(v));
  if (n.inputs.size() == pos)
    n.inputs.push_back(c);
  else
    n.inputs[pos] = c;
  return true;
}

// Opset 13 is the first with per-axis DequantizeLinear. From opset 9 to 12 the ops whose
// inputs or meaning changed by 13 are rewritten (attributes -> inputs); the ones with no
// simple rewrite, and older opsets, are refused naming the node.
void upgrade_to_opset13(ir::Graph& g) {
  const int from = g.opsets.count("") ? g.opsets.at("") : 1;
  if (from >= 13) return;
  if (from < 9)
    fail("--emit-qdq-onnx: the model imports opset ", from, "; the QDQ export needs 9 or newer");
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    if (!n.domain.empty()) continue;
    n.opset = 13;
    const std::string& op = n.op_type;
    auto refuse = [&](const char* why) {
      fail("--emit-qdq-onnx: ", n.label(), " (opset ", from, "): ", why,
           "; it has no opset-13 form here");
    };
    if (op == "Split") {
      attr_to_input(g, n, "split", 1);
    } else if (op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum") {
      attr_to_input(g, n, "axes", 1);
    } else if (op == "Slice" && from < 10) {
      attr_to_input(g, n, "starts", 1);
      attr_to_input(g, n, "ends", 2);
      attr_to_input(g, n, "axes", 3);
    } else if (op == "Clip" && from < 11) {
      // min / max attributes -> optional scalar inputs of the data's type.
      const DType dt = g.values[static_cast<size_t>(n.inputs.at(0))].type.dtype;
      if (dt != DType::kFloat32) refuse("Clip bounds of a non-float32 input");
      for (const auto& [name, pos] : {std::pair<const char*, size_t>{"min", 1}, {"max", 2}}) {
        auto it = n.attrs.find(name);
        if (it == n.attrs.end()) continue;
        Tensor t(DType::kFloat32, Shape{});
        t.data<float>()[0] = it->second.f;
        n.attrs.erase(it);
        if (n.inputs.size() < pos + 1) n.inputs.resize(pos + 1, -1);
        n.inputs[pos] = add_constant(g, n.name + "/" + name, std::move(t));
      }
    } else if (op == "Pad" && from < 11) {
      const DType dt = g.values[static_cast<size_t>(n.inputs.at(0))].type.dtype;
      if (dt != DType::kFloat32) refuse("Pad of a non-float32 input");
      const float value = ops::NodeAttrs(n).attr_float("value", 0.f);
      n.attrs.erase("value");
      attr_to_input(g, n, "pads", 1);
      Tensor t(DType::kFloat32, Shape{});
      t.data<float>()[0] = value;
      g.nodes[i].inputs.push_back(add_constant(g, n.name + "/value", std::move(t)));
    } else if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
      // Before 13 these flatten to 2-D at `axis` (default 1); from 13 they work on one axis
      // (default -1): the same only when the axis is the last one.
      const ir::TensorType& t = g.values[static_cast<size_t>(n.inputs.at(0))].type;
      int64_t axis = ops::NodeAttrs(n).attr_int("axis", 1);
      const int64_t rank = t.has_shape ? static_cast<int64_t>(t.dims.size()) : -1;
      if (rank > 0 && axis < 0) axis += rank;
      if (rank < 0 || axis != rank - 1) refuse("the axis is not the last one");
      n.attrs["axis"] = ir::Attribute::of_int(axis);
    } else if ((op == "Resize" && from < 11) || op == "Upsample" || (op == "TopK" && from < 10) ||
               (op == "Dropout" && from < 12) || op == "Scatter") {
      refuse("its inputs or meaning changed");
    }
  }
  g.relink();
  g.opsets[""] = 13;
}

// The ConvTransposes the engine runs as a 1x1 conv (lithe.ConvNhwc under the ConvTranspose's
// name) and a pixel shuffle (passes/layout_nhwc.cpp), rewritten alike here in NCHW so that the
// engine's records find their nodes and values: a Conv (the fused activation kept) to
// "<Y>_taps", then DepthToSpace (mode DCR has the taps' channel order) named
// "<node>_shuffle" producing Y, or for kh != kw Reshape -> Transpose -> Reshape, the last one
// the shuffle. Before equalization, which may pair a depthwise conv with the 1x1 one.
void expand_shuffle_deconvs(ir::Graph& g, const std::set<std::string>& nhwc_convs) {
  bool any = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    if (!nhwc_convs.count(g.nodes[i].name) || !passes::util::is_shuffle_deconv(g, g.nodes[i]))
      continue;
    any = true;
    const ir::Node d = g.nodes[i];  // g.nodes and g.values grow below
    const Tensor w = *passes::constant_of(g, d.inputs[1]);
    const int64_t kh = w.shape()[2], kw = w.shape()[3], m = w.shape()[1];
    const ir::TensorType xt = g.values[static_cast<size_t>(d.inputs[0])].type;
    const int64_t nb = xt.dims[0], h = xt.dims[2], wd = xt.dims[3];
    const int y = d.outputs[0];
    const std::string yname = g.values[static_cast<size_t>(y)].name;
    auto name_of = [&](int v) { return g.values[static_cast<size_t>(v)].name; };
    ir::Node conv;
    conv.name = d.name;
    conv.op_type = "Conv";
    conv.domain = d.domain;
    conv.opset = d.opset;
    conv.inputs = {d.inputs[0], add_constant(g, name_of(d.inputs[1]) + "_taps",
                                             passes::util::shuffle_deconv_weights(w))};
    if (d.inputs.size() > 2 && d.inputs[2] >= 0) {
      const Tensor b = *passes::constant_of(g, d.inputs[2]);
      conv.inputs.push_back(add_constant(g, name_of(d.inputs[2]) + "_taps",
                                         passes::util::shuffle_deconv_bias(b, kh * kw)));
    }
    conv.attrs["kernel_shape"] = ir::Attribute::of_ints({1, 1});
    for (const char* keep : ops::fused::kEpilogueAttrs)
      if (d.attrs.count(keep)) conv.attrs[keep] = d.attrs.at(keep);
    const int taps = add_value(g, yname + "_taps", {xt.dtype, true, {nb, kh * kw * m, h, wd}});
    conv.outputs = {taps};
    g.nodes[i] = std::move(conv);
    auto node = [&](const std::string& name, const char* op, std::vector<int> in, int out) {
      g.nodes.push_back(make_node(g, op, name, std::move(in), out));
      return &g.nodes.back();
    };
    if (kh == kw) {
      ir::Node* s = node(d.name + "_shuffle", "DepthToSpace", {taps}, y);
      s->attrs["blocksize"] = ir::Attribute::of_int(kh);
      s->attrs["mode"] = ir::Attribute::of_string("DCR");
      continue;
    }
    const int blocks =
        add_value(g, yname + "_taps_blocks", {xt.dtype, true, {nb, kh, kw, m, h, wd}});
    node(d.name + "_blocks", "Reshape",
         {taps, add_constant(g, d.name + "/blocks", int64_vector({nb, kh, kw, m, h, wd}))}, blocks);
    const int moved = add_value(g, yname + "_taps_moved", {xt.dtype, true, {nb, m, h, kh, wd, kw}});
    node(d.name + "_move", "Transpose", {blocks}, moved)->attrs["perm"] =
        ir::Attribute::of_ints({0, 3, 4, 1, 5, 2});
    node(d.name + "_shuffle", "Reshape",
         {moved, add_constant(g, d.name + "/shape", int64_vector({nb, m, h * kh, wd * kw}))}, y);
  }
  if (!any) return;
  g.relink();
  g.topo_sort();
}

// The weights the engine was quantized with: equalize_depthwise_pairs matches only
// lithe.ConvNhwc, so the convs the layout pass converted take that name while it runs on
// this graph (their weights are in ONNX order in both graphs, so it finds the same pairs and
// computes the same factors), and get their own back afterwards.
void equalize_like_engine(ir::Graph& g, const std::set<std::string>& nhwc_convs, int expected) {
  std::vector<std::pair<size_t, std::pair<std::string, std::string>>> renamed;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    if (n.op_type != "Conv" || (!n.domain.empty() && n.domain != "lithe") ||
        !nhwc_convs.count(n.name))
      continue;
    renamed.push_back({i, {n.domain, n.op_type}});
    n.domain = "lithe";
    n.op_type = "ConvNhwc";
  }
  const int pairs = equalize_depthwise_pairs(g);
  for (const auto& [i, was] : renamed) {
    g.nodes[i].domain = was.first;
    g.nodes[i].op_type = was.second;
  }
  if (pairs != expected)
    fail("--emit-qdq-onnx: cross-layer equalization found ", pairs,
         " depthwise pair(s) before the "
         "layout pass and ",
         expected, " in the engine");
}

class QdqWriter {
 public:
  explicit QdqWriter(ir::Graph& g) : g_(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) node_of_[g.nodes[i].name] = static_cast<int>(i);
  }

  void run(const std::vector<QuantizedLayer>& layers) {
    // Values an INT8 layer produces: every reader sees them quantized.
    for (const QuantizedLayer& l : layers) note_params(value(l.y, l), l.yp, l, &int8_out_);
    for (const QuantizedLayer& l : layers) {
      const std::vector<int> ins = node(l).inputs;  // node(l) moves as nodes are added
      const int x = value(l.x, l);
      // X is input 0; a Concat, Add, Mul or MatMul of two activations has one record per
      // input, read at any position.
      const bool any_slot = l.op == "concat" || l.op == "add" || l.op == "mul" || l.op == "qmatmul";
      std::vector<size_t> slots;
      bool done = false;
      for (size_t i = 0; i < ins.size(); ++i) {
        if (i != 0 && !any_slot) break;
        if (same_data(ins[i], x)) slots.push_back(i);
        done = done || (dq_of_.count(x) && ins[i] == dq_of_.at(x));  // a Concat reading x twice
      }
      if (slots.empty() && !done)
        fail("--emit-qdq-onnx: layer '", l.node, "' does not read '",
             g_.values[static_cast<size_t>(x)].name, "' as its input");
      note_params(x, l.xp, l, nullptr);
      for (size_t i : slots) quantize_input(l, i, ins[i], x, l.xp);
      if (!l.z.empty()) {
        const int z = value(l.z, l);
        if (ins.size() < 4 || !same_data(ins[3], z))
          fail("--emit-qdq-onnx: layer '", l.node, "' does not read its residual '", l.z, "'");
        note_params(z, l.zp, l, nullptr);
        quantize_input(l, 3, ins[3], z, l.zp);
      }
      if (l.op == "conv") quantize_conv(l);
      if (l.op == "gemm" || l.op == "matmul") quantize_gemm(l);
    }
    for (int y : int8_out_) {
      const int dq = qdq(y);
      for (size_t i = 0; i < g_.nodes.size(); ++i) {
        if (quantize_node_of_.count(static_cast<int>(i)) &&
            quantize_node_of_[static_cast<int>(i)] == y)
          continue;
        for (int& in : g_.nodes[i].inputs)
          if (in == y) in = dq;
      }
      for (int& o : g_.outputs)
        if (o == y) {
          // The graph output keeps its name: the float value gives it to the dequantized one.
          const std::string name = g_.values[static_cast<size_t>(y)].name;
          g_.rename_value(y, add_free_name(name + "/fp32"));
          g_.rename_value(dq, name);
          o = dq;
        }
    }
    g_.relink();
    g_.compact(std::vector<char>(g_.nodes.size(), 0));  // drops the float weights
    g_.topo_sort();
    ir::verify(g_);
  }

 private:
  std::string add_free_name(const std::string& hint) {
    std::string name = hint;
    for (int k = 1; g_.find_value(name) >= 0; ++k) name = hint + "__" + std::to_string(k);
    return name;
  }

  // True when v is x, or x through layout-only ops: the layout pass and noop-elimination
  // cancel Transpose pairs, so a channels-last conv may read x where this graph's conv reads
  // a transpose of it (BlazeFace's NHWC input). Per-tensor parameters fit both.
  bool same_data(int v, int x) const {
    for (int step = 0; step < 8 && v >= 0; ++step) {
      if (v == x) return true;
      const int p = g_.values[static_cast<size_t>(v)].producer;
      if (p < 0 || static_cast<size_t>(p) >= g_.nodes.size()) return false;
      const ir::Node& n = g_.nodes[static_cast<size_t>(p)];
      static const char* kLayout[] = {"Transpose", "Reshape", "Flatten",
                                      "Identity",  "Squeeze", "Unsqueeze"};
      if (!n.domain.empty() || n.inputs.empty() ||
          std::none_of(std::begin(kLayout), std::end(kLayout),
                       [&](const char* o) { return n.op_type == o; }))
        return false;
      v = n.inputs[0];
    }
    return false;
  }

  // Input `slot` of the layer's node (value v, which is x or a layout change of it) reads
  // v through QuantizeLinear -> DequantizeLinear at x's parameters, unless v is an INT8
  // output, which all its readers see dequantized already.
  void quantize_input(const QuantizedLayer& l, size_t slot, int v, int x, const quant::QParams& p) {
    if (v == x && int8_out_.count(x)) return;
    if (v != x) note_params(v, p, l, nullptr);
    const int dq = qdq(v);
    node(l).inputs[slot] = dq;
  }

  ir::Node& node(const QuantizedLayer& l) {
    auto it = node_of_.find(l.node);
    if (it == node_of_.end())
      fail("--emit-qdq-onnx: layer '", l.node,
           "' is not a node of the graph before the layout pass");
    return g_.nodes[static_cast<size_t>(it->second)];
  }

  // The value of this graph that `name` (a value of the quantized, channels-last graph) is.
  int value(const std::string& name, const QuantizedLayer& l) const {
    if (const int v = g_.find_value(name); v >= 0) return v;
    for (const char* suffix : {"_to_nhwc", "_nhwc"}) {
      const size_t n = std::strlen(suffix);
      if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0)
        if (const int v = g_.find_value(name.substr(0, name.size() - n)); v >= 0) return v;
    }
    fail("--emit-qdq-onnx: value '", name, "' of layer '", l.node,
         "' has no counterpart before the layout pass");
  }

  // Records value v's parameters; a value quantized twice must be quantized alike.
  void note_params(int v, const quant::QParams& p, const QuantizedLayer& l, std::set<int>* into) {
    auto [it, fresh] = params_.emplace(v, p);
    if (!fresh && (it->second.scale != p.scale || it->second.zero_point != p.zero_point))
      fail("--emit-qdq-onnx: layer '", l.node, "' quantizes '",
           g_.values[static_cast<size_t>(v)].name, "' with other parameters than another layer");
    if (into) into->insert(v);
  }

  // Float value v through QuantizeLinear -> DequantizeLinear (uint8, per tensor), made once.
  int qdq(int v) {
    auto it = dq_of_.find(v);
    if (it != dq_of_.end()) return it->second;
    const quant::QParams p = params_.at(v);
    const ir::TensorType t = g_.values[static_cast<size_t>(v)].type;
    const std::string name = g_.values[static_cast<size_t>(v)].name;
    Tensor s(DType::kFloat32, Shape{}), z(DType::kUInt8, Shape{});
    s.data<float>()[0] = p.scale;
    z.data<uint8_t>()[0] = static_cast<uint8_t>(p.zero_point);
    const int sc = add_constant(g_, name + "/scale", std::move(s));
    const int zp = add_constant(g_, name + "/zero_point", std::move(z));
    const int q = add_value(g_, name + "/quantized", {DType::kUInt8, t.has_shape, t.dims});
    const int dq = add_value(g_, name + "/dequantized", t);
    quantize_node_of_[static_cast<int>(g_.nodes.size())] = v;
    g_.nodes.push_back(make_node(g_, "QuantizeLinear", name + "/QuantizeLinear", {v, sc, zp}, q));
    g_.nodes.push_back(make_node(g_, "DequantizeLinear", name + "/DequantizeLinear", {q, sc, zp}, dq));
    return dq_of_[v] = dq;
  }

  // int8 `codes` with DequantizeLinear by `scales` along `axis`, a float value of their shape.
  int dequantized_weights(const std::string& hint, Tensor codes, const float* scales, int64_t m,
                          int64_t axis) {
    Tensor s(DType::kFloat32, Shape{m});
    Tensor z(codes.dtype(), Shape{m});
    std::memcpy(s.raw(), scales, s.nbytes());
    std::memset(z.raw(), 0, z.nbytes());
    const Shape shape = codes.shape();
    std::vector<int> in = {add_constant(g_, hint + "_quantized", std::move(codes)),
                           add_constant(g_, hint + "_scale", std::move(s))};
    // int32 biases take the default zero point (0), as ONNX Runtime's QDQ form writes them.
    if (z.dtype() == DType::kInt8)
      in.push_back(add_constant(g_, hint + "_zero_point", std::move(z)));
    const int out = add_value(g_, hint + "_dequantized", {DType::kFloat32, true, shape});
    ir::Node n = make_node(g_, "DequantizeLinear", hint + "/DequantizeLinear", in, out);
    n.attrs["axis"] = ir::Attribute::of_int(axis);
    g_.nodes.push_back(std::move(n));
    return out;
  }

  // The bias as int32 at x_scale * w_scale[c], as the quantizer stores it (quantize_bias).
  int dequantized_bias(const std::string& hint, const float* b, int64_t m,
                       const QuantizedLayer& l) {
    Tensor codes(DType::kInt32, Shape{m});
    std::vector<float> scales(static_cast<size_t>(m));
    for (int64_t c = 0; c < m; ++c) {
      const double s = static_cast<double>(l.xp.scale) * l.w_scale[static_cast<size_t>(c)];
      codes.data<int32_t>()[c] = quant::quantize_bias(b[c], s);
      scales[static_cast<size_t>(c)] = static_cast<float>(s);
    }
    return dequantized_weights(hint, std::move(codes), scales.data(), m, 0);
  }

  // A copy (shared storage) of input i's constant: adding values moves g_.values.
  Tensor constant(const std::vector<int>& ins, size_t i, const QuantizedLayer& l,
                  const char* what) {
    const Tensor* t = i < ins.size() ? passes::constant_of(g_, ins[i]) : nullptr;
    if (!t || t->dtype() != DType::kFloat32)
      fail("--emit-qdq-onnx: layer '", l.node, "': the ", what, " is not a float32 constant");
    return *t;
  }

  void quantize_conv(const QuantizedLayer& l) {
    const std::vector<int> ins = node(l).inputs;
    const Tensor w = constant(ins, 1, l, "weight");
    const int64_t m = w.rank() == 4 ? w.shape()[0] : -1;
    if (m != static_cast<int64_t>(l.w_scale.size()))
      fail("--emit-qdq-onnx: layer '", l.node, "' has ", l.w_scale.size(), " weight scales for ",
           "weights of shape ", shape_str(w.shape()));
    const int64_t per = w.numel() / m;
    Tensor codes(DType::kInt8, w.shape());
    std::vector<float> scales(static_cast<size_t>(m));
    quant::quantize_weights_with_scales(w.data<float>(), m, per, l.w_scale.data(),
                                        codes.data<int8_t>(), scales.data());
    const int wv = dequantized_weights(l.node + "/weight", std::move(codes), scales.data(), m, 0);
    int bv = -1;
    if (ins.size() > 2 && ins[2] >= 0) {
      const Tensor b = constant(ins, 2, l, "bias");
      if (b.numel() != m)
        fail("--emit-qdq-onnx: layer '", l.node, "': bias of ", b.numel(), " values");
      bv = dequantized_bias(l.node + "/bias", b.data<float>(), m, l);
    }
    node(l).inputs[1] = wv;
    if (bv >= 0) node(l).inputs[2] = bv;
  }

  // Gemm Y = A B + C (B [K, N]) or A B' + C (transB, B [N, K]): B's output axis is 1 or 0.
  // MatMul by a constant B [K, N] is the first form without C.
  void quantize_gemm(const QuantizedLayer& l) {
    const std::vector<int> ins = node(l).inputs;
    const Tensor b = constant(ins, 1, l, "weight");
    const bool trans = ops::NodeAttrs(node(l)).attr_int("transB", 0) != 0;
    if (b.rank() != 2) fail("--emit-qdq-onnx: layer '", l.node, "': B is not a matrix");
    const int64_t k = trans ? b.shape()[1] : b.shape()[0],
                  nout = trans ? b.shape()[0] : b.shape()[1];
    if (nout != static_cast<int64_t>(l.w_scale.size()))
      fail("--emit-qdq-onnx: layer '", l.node, "' has ", l.w_scale.size(), " weight scales for ",
           nout, " outputs");
    // Codes computed on [N, K] rows as the quantizer does, then stored in B's layout.
    std::vector<float> rows(static_cast<size_t>(nout * k));
    for (int64_t o = 0; o < nout; ++o)
      for (int64_t i = 0; i < k; ++i)
        rows[static_cast<size_t>(o * k + i)] = b.data<float>()[trans ? o * k + i : i * nout + o];
    std::vector<int8_t> q(rows.size());
    std::vector<float> scales(static_cast<size_t>(nout));
    quant::quantize_weights_with_scales(rows.data(), nout, k, l.w_scale.data(), q.data(),
                                        scales.data());
    Tensor codes(DType::kInt8, b.shape());
    for (int64_t o = 0; o < nout; ++o)
      for (int64_t i = 0; i < k; ++i)
        codes.data<int8_t>()[trans ? o * k + i : i * nout + o] = q[static_cast<size_t>(o * k + i)];
    const int wv = dequantized_weights(l.node + "/weight", std::move(codes), scales.data(), nout,
                                       trans ? 0 : 1);
    int cv = -1;
    if (l.op == "gemm" && ins.size() > 2 && ins[2] >= 0) {  // MatMul's input 2 is Z
      const Tensor c = constant(ins, 2, l, "bias");
      if (c.numel() != nout)
        fail("--emit-qdq-onnx: layer '", l.node, "': C of ", c.numel(), " values");
      cv = dequantized_bias(l.node + "/bias", c.data<float>(), nout, l);  // [N] broadcasts as C did
    }
    node(l).inputs[1] = wv;
    if (cv >= 0) node(l).inputs[2] = cv;
  }

  ir::Graph& g_;
  std::map<std::string, int> node_of_;
  std::map<int, quant::QParams> params_;
  std::set<int> int8_out_;
  std::map<int, int> dq_of_;
  std::map<int, int> quantize_node_of_;  // QuantizeLinear node index -> the value it reads
};

}  // namespace

ir::Graph make_qdq_graph(const ir::Graph& fp32, const std::set<std::string>& nhwc_convs,
                         const Int8Summary& q) {
  ir::Graph g = clone_graph(fp32);
  for (const ir::Node& n : g.nodes)
    if (ir::has_subgraph(n))
      fail("--emit-qdq-onnx: ", n.label(),
           " has a subgraph; graphs with If/Loop/Scan cannot be exported");
  upgrade_to_opset13(g);
  expand_shuffle_deconvs(g, nhwc_convs);
  equalize_like_engine(g, nhwc_convs, q.equalized);
  // Then the data-driven equalization, by node names (the affine maps' constants as
  // [C, 1, 1] for these channels-first values).
  apply_equalization(g, q.channel_scaling, /*nchw=*/true);
  QdqWriter(g).run(q.quantized);
  return g;
}

}  // namespace lithe::build
