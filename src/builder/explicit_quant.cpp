#include "builder/explicit_quant.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <set>

#include "core/file_io.hpp"
#include "ops/infer.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"

namespace lithe::build {
namespace {

bool is_onnx(const ir::Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

const Tensor* const_input(const ir::Graph& g, const ir::Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return nullptr;
  const ir::Value& v = g.values[static_cast<size_t>(n.inputs[i])];
  return v.constant ? &*v.constant : nullptr;
}

bool has_input(const ir::Node& n, size_t i) { return i < n.inputs.size() && n.inputs[i] >= 0; }

const ir::TensorType& type_of(const ir::Graph& g, int v) { return g.values[static_cast<size_t>(v)].type; }

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The default-domain opset new Q / DQ nodes get: 13 or later (per-axis DequantizeLinear).
int qdq_opset(const ir::Graph& g) { return g.opsets.count("") ? std::max(13, g.opsets.at("")) : 13; }
int onnx_opset(const ir::Graph& g) { return g.opsets.count("") ? g.opsets.at("") : 13; }

// A scale tensor's values after the check every explicit parameter gets: float32, each value
// positive and finite (a hostile one is an error naming the node).
std::vector<float> checked_scales(const ir::Node& n, const Tensor& s, const char* which) {
  std::vector<float> out(static_cast<size_t>(s.numel()));
  for (int64_t i = 0; i < s.numel(); ++i) {
    const float v = s.data<float>()[i];
    if (!(v > 0) || !std::isfinite(v))
      fail(n.label(), ": ", which, " ", v, (s.numel() > 1 ? " at index " + std::to_string(i) : ""),
           " must be positive and finite");
    out[static_cast<size_t>(i)] = v;
  }
  return out;
}

// The constant parameters of one QuantizeLinear / DequantizeLinear node.
struct QdqParams {
  DType qtype = DType::kUndefined;  // the quantized side's type
  std::vector<float> scale;
  std::vector<int32_t> zp;  // as written, one per scale
  int axis = -1;            // per tensor: -1
  bool same(const QdqParams& o) const {
    return qtype == o.qtype && scale == o.scale && zp == o.zp && axis == o.axis;
  }
  // The uint8 parameters of a per-tensor uint8 / int8 pair (int8 with zero point z holds
  // the same values as uint8 with z + 128).
  quant::QParams uint8() const {
    return {scale[0], zp[0] + (qtype == DType::kInt8 ? 128 : 0)};
  }
};

// Reads and checks node n's parameters (n is a Q or DQ). nullopt: a form lithe leaves to the
// executors (parameters computed at run time, float16 scales, blocked quantization, int16 or
// other types). Hostile constant parameters are errors naming the node.
std::optional<QdqParams> read_params(const ir::Graph& g, const ir::Node& n) {
  const bool q = is_onnx(n, "QuantizeLinear");
  if (!has_input(n, 0) || !has_input(n, 1) || n.outputs.empty() || n.outputs[0] < 0) return std::nullopt;
  const Tensor* s = const_input(g, n, 1);
  const Tensor* z = has_input(n, 2) ? const_input(g, n, 2) : nullptr;
  if (!s || (has_input(n, 2) && !z)) return std::nullopt;
  const ops::NodeAttrs a(n);
  if (s->dtype() != DType::kFloat32 || a.attr_int("block_size", 0) != 0) return std::nullopt;
  QdqParams p;
  const ir::TensorType& data = type_of(g, n.inputs[0]);
  if (q) {
    if (data.dtype != DType::kFloat32) return std::nullopt;
    p.qtype = z ? z->dtype() : DType::kUInt8;
    if (!z && n.attrs.count("output_dtype")) return std::nullopt;
  } else {
    p.qtype = data.dtype;
    if (z && data.dtype != DType::kUndefined && z->dtype() != data.dtype)
      fail(n.label(), ": zero point is ", dtype_name(z->dtype()), " but the data is ",
           dtype_name(data.dtype));
    if (z) p.qtype = z->dtype();
  }
  if (p.qtype != DType::kUInt8 && p.qtype != DType::kInt8 && !(p.qtype == DType::kInt32 && !q))
    return std::nullopt;
  if (s->rank() > 1) fail(n.label(), ": scale has shape ", shape_text(s->shape()), ", expected a scalar or a 1-D tensor");
  if (z && z->shape() != s->shape())
    fail(n.label(), ": zero point has shape ", shape_text(z->shape()), " but the scale has shape ",
         shape_text(s->shape()));
  p.scale = checked_scales(n, *s, "scale");
  if (p.scale.empty()) fail(n.label(), ": scale is empty");
  for (int64_t i = 0; i < s->numel(); ++i) p.zp.push_back(z ? static_cast<int32_t>(z->at_int(i)) : 0);
  if (p.qtype == DType::kInt32)
    for (int32_t v : p.zp)
      if (v != 0) fail(n.label(), ": zero point ", v, " of int32 data must be 0");
  if (s->rank() == 1 && s->numel() > 1) {
    if (!data.has_shape) return std::nullopt;
    const int64_t rank = static_cast<int64_t>(data.dims.size());
    const int64_t ax = a.attr_int("axis", 1);
    if (ax < -rank || ax >= rank)
      fail(n.label(), ": axis ", ax, " is out of range for data of rank ", rank);
    p.axis = static_cast<int>(ax < 0 ? ax + rank : ax);
    const int64_t d = data.dims[static_cast<size_t>(p.axis)];
    if (d >= 0 && d != s->numel())
      fail(n.label(), ": per-axis scale has ", s->numel(), " values but the data has ", d,
           " along axis ", p.axis);
  }
  return p;
}

// Checks that constant data t has as many indices along p's axis as p has scales (its
// declared type may leave that dim unknown).
void check_axis_extent(const ir::Node& n, const Tensor& t, const QdqParams& p) {
  if (p.axis < 0) return;
  if (p.axis >= t.rank() || t.shape()[static_cast<size_t>(p.axis)] != static_cast<int64_t>(p.scale.size()))
    fail(n.label(), ": per-axis scale has ", p.scale.size(), " values but the data has shape ",
         shape_text(t.shape()), " (axis ", p.axis, ")");
}

// (q - zp) * scale of constant q (DequantizeLinear), per tensor or along p.axis.
Tensor dequantize(const Tensor& q, const QdqParams& p) {
  Tensor out(DType::kFloat32, q.shape());
  int64_t inner = 1, dim = 1;
  if (p.axis >= 0) {
    dim = q.shape()[static_cast<size_t>(p.axis)];
    for (size_t d = static_cast<size_t>(p.axis) + 1; d < q.shape().size(); ++d) inner *= q.shape()[d];
  }
  for (int64_t i = 0; i < q.numel(); ++i) {
    const size_t c = p.axis >= 0 ? static_cast<size_t>((i / inner) % dim) : 0;
    out.data<float>()[i] = static_cast<float>(q.at_int(i) - p.zp[c]) * p.scale[c];
  }
  return out;
}

// DequantizeLinear(QuantizeLinear(x)) of a constant float x (fake-quantized weights as
// PyTorch QAT export writes them): round half to even, saturate.
Tensor fake_quantize(const Tensor& x, const QdqParams& p) {
  const double lo = p.qtype == DType::kInt8 ? -128 : 0, hi = p.qtype == DType::kInt8 ? 127 : 255;
  Tensor q(DType::kInt32, x.shape());
  int64_t inner = 1, dim = 1;
  if (p.axis >= 0) {
    dim = x.shape()[static_cast<size_t>(p.axis)];
    for (size_t d = static_cast<size_t>(p.axis) + 1; d < x.shape().size(); ++d) inner *= x.shape()[d];
  }
  for (int64_t i = 0; i < x.numel(); ++i) {
    const size_t c = p.axis >= 0 ? static_cast<size_t>((i / inner) % dim) : 0;
    const float v = x.data<float>()[i] / p.scale[c];
    const double r = std::isnan(v) ? 0.0 : std::nearbyint(static_cast<double>(v)) + p.zp[c];
    q.data<int32_t>()[i] = static_cast<int32_t>(std::clamp(r, lo, hi));
  }
  return dequantize(q, p);
}

// Symmetric int8 weights: what the INT8 kernels take as they are.
bool symmetric_int8(const QdqParams& p) {
  return p.qtype == DType::kInt8 &&
         std::all_of(p.zp.begin(), p.zp.end(), [](int32_t z) { return z == 0; });
}

std::string fresh_name(const ir::Graph& g, const std::string& hint) {
  std::string name = hint;
  for (int i = 1; g.find_value(name) >= 0; ++i) name = hint + "__" + std::to_string(i);
  return name;
}

int add_float_value(ir::Graph& g, const std::string& hint, const ir::TensorType& like) {
  return g.add_value(fresh_name(g, hint), {DType::kFloat32, like.has_shape, like.dims});
}

int add_const(ir::Graph& g, const std::string& hint, Tensor t) {
  const Shape dims = t.shape();
  const int v = g.add_value(fresh_name(g, hint), {t.dtype(), true, dims});
  g.values[static_cast<size_t>(v)].constant = std::move(t);
  return v;
}

ir::Node make_node(const std::string& name, const char* op, int opset, std::vector<int> in,
                   std::vector<int> out) {
  ir::Node n;
  n.name = name;
  n.op_type = op;
  n.opset = opset;
  while (!in.empty() && in.back() < 0) in.pop_back();
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// Checks a QLinear op's scale / zero-point input pair (s, z) of input `data` (-1: the
// output) and returns the scales; nullopt when they are not constants (the op stays).
std::optional<std::vector<float>> qlinear_scales(const ir::Graph& g, const ir::Node& n, size_t s,
                                                 size_t z, int data, const char* what) {
  const Tensor* st = const_input(g, n, s);
  const Tensor* zt = const_input(g, n, z);
  if (!st || !zt || st->dtype() != DType::kFloat32) return std::nullopt;
  if (st->rank() > 1 || zt->shape() != st->shape())
    fail(n.label(), ": ", what, " scale has shape ", shape_text(st->shape()), " and zero point ",
         shape_text(zt->shape()), ", expected the same scalar or 1-D shape");
  const DType dt = type_of(g, data >= 0 ? n.inputs[static_cast<size_t>(data)] : n.outputs[0]).dtype;
  if (dt != DType::kUndefined && zt->dtype() != dt)
    fail(n.label(), ": ", what, " zero point is ", dtype_name(zt->dtype()), " but ", what, " is ",
         dtype_name(dt));
  if (zt->dtype() != DType::kUInt8 && zt->dtype() != DType::kInt8) return std::nullopt;
  return checked_scales(n, *st, (std::string(what) + " scale").c_str());
}

// QLinearConv -> DQ(x), DQ(w), DQ(bias at x_scale * w_scale) -> Conv -> Q; QLinearMatMul ->
// DQ(a), DQ(b) -> Gemm (2-D) or MatMul -> Q. Returns the new nodes (empty: left as it is).
std::vector<ir::Node> lower_qlinear(ir::Graph& g, const ir::Node& n) {
  const bool conv = n.op_type == "QLinearConv";
  // QLinearConv: x, x_s, x_z, w, w_s, w_z, y_s, y_z, [B]; QLinearMatMul: a, a_s, a_z, b, b_s,
  // b_z, y_s, y_z.
  if (n.inputs.size() < 8 || n.outputs.size() != 1 || n.outputs[0] < 0) return {};
  for (size_t i = 0; i < 8; ++i)
    if (n.inputs[i] < 0) return {};
  const auto xs = qlinear_scales(g, n, 1, 2, 0, conv ? "x" : "a");
  const auto ws = qlinear_scales(g, n, 4, 5, 3, conv ? "w" : "b");
  const auto ys = qlinear_scales(g, n, 6, 7, -1, "y");
  if (!xs || !ws || !ys) return {};
  if (xs->size() != 1 || ys->size() != 1)
    fail(n.label(), ": ", conv ? "x" : "a", " and y scales must be scalars (per tensor)");
  // Copies: adding values below may move g.values.
  const ir::TensorType wt = type_of(g, n.inputs[3]);
  const ir::TensorType yt = type_of(g, n.outputs[0]);
  const ir::TensorType at = type_of(g, n.inputs[0]);
  const int op13 = qdq_opset(g);
  const std::string& name = n.name;
  // Per-channel weight scales run along the output channels: axis 0 of a conv's weights,
  // the last axis of a 2-D matmul B.
  int waxis = -1;
  if (ws->size() > 1) {
    if (!wt.has_shape || (!conv && wt.dims.size() != 2)) return {};
    waxis = conv ? 0 : 1;
    if (wt.dims[static_cast<size_t>(waxis)] >= 0 &&
        wt.dims[static_cast<size_t>(waxis)] != static_cast<int64_t>(ws->size()))
      fail(n.label(), ": ", conv ? "w" : "b", " scale has ", ws->size(), " values but ",
           conv ? "w has " : "b has ", wt.dims[static_cast<size_t>(waxis)],
           conv ? " output channels" : " columns");
  }
  std::vector<ir::Node> out;
  const int xf = add_float_value(g, name + "/x_float", at);
  out.push_back(make_node(name + "/dequantize_x", "DequantizeLinear", op13,
                          {n.inputs[0], n.inputs[1], n.inputs[2]}, {xf}));
  const int wf = add_float_value(g, name + "/w_float", wt);
  ir::Node dw = make_node(name + "/dequantize_w", "DequantizeLinear", op13,
                          {n.inputs[3], n.inputs[4], n.inputs[5]}, {wf});
  if (waxis >= 0) dw.attrs["axis"] = ir::Attribute::of_int(waxis);
  out.push_back(std::move(dw));
  std::vector<int> op_in = {xf, wf};
  if (conv && has_input(n, 8)) {
    const ir::TensorType bt = type_of(g, n.inputs[8]);
    if (bt.dtype != DType::kUndefined && bt.dtype != DType::kInt32)
      fail(n.label(), ": bias is ", dtype_name(bt.dtype), ", expected int32");
    if (bt.has_shape && (bt.dims.size() != 1 || (wt.has_shape && !wt.dims.empty() && bt.dims[0] != wt.dims[0])))
      fail(n.label(), ": bias has shape ", shape_text(bt.dims), ", expected [",
           wt.has_shape && !wt.dims.empty() ? wt.dims[0] : -1, "] (one per output channel)");
    // ONNX Runtime's and the spec's bias scale: x_scale * w_scale, in float.
    Tensor bs(DType::kFloat32, ws->size() > 1 ? Shape{static_cast<int64_t>(ws->size())} : Shape{});
    for (size_t c = 0; c < ws->size(); ++c) bs.data<float>()[c] = (*xs)[0] * (*ws)[c];
    const int bsv = add_const(g, name + "/bias_scale", std::move(bs));
    const int bf = add_float_value(g, name + "/bias_float", bt);
    ir::Node db = make_node(name + "/dequantize_bias", "DequantizeLinear", op13, {n.inputs[8], bsv}, {bf});
    if (ws->size() > 1) db.attrs["axis"] = ir::Attribute::of_int(0);
    out.push_back(std::move(db));
    op_in.push_back(bf);
  }
  const int yf = add_float_value(g, name + "/y_float", yt);
  ir::Node op;
  if (conv) {
    op = make_node(name, "Conv", onnx_opset(g), op_in, {yf});
    op.attrs = n.attrs;
  } else {
    const bool gemm = at.has_shape && at.dims.size() == 2 && wt.has_shape && wt.dims.size() == 2;
    op = make_node(name, gemm ? "Gemm" : "MatMul", onnx_opset(g), op_in, {yf});
  }
  out.push_back(std::move(op));
  out.push_back(make_node(name + "/quantize_y", "QuantizeLinear", op13, {yf, n.inputs[6], n.inputs[7]},
                          {n.outputs[0]}));
  return out;
}

// Graph surgery on top-level nodes, with the consumer lists kept true after each change.
class Importer {
 public:
  explicit Importer(ir::Graph& g) : g_(g) {}

  ExplicitQuant run() {
    lower();
    for (const std::string& nm : [&] {
           std::vector<std::string> v;
           ir::outer_names_read_by(g_, v);
           return v;
         }())
      read_by_subgraph_.insert(nm);
    // In topological order: a DQ of a constant, or a Q whose readers are all DQs.
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (dropped(i)) continue;
      const ir::Node& n = g_.nodes[i];
      const bool q = is_onnx(n, "QuantizeLinear"), dq = is_onnx(n, "DequantizeLinear");
      if (!q && !dq) continue;
      const std::optional<QdqParams> p = read_params(g_, n);  // checks even what stays
      if (!p || !(q ? remove_pair(i, *p) : fold_constant(i, *p))) {
        if (p && dq && n.inputs[0] >= 0 && !val(n.inputs[0]).constant && p->axis < 0 &&
            p->qtype != DType::kInt32)
          record(n.outputs[0], p->uint8());  // a DQ output is on its grid
        if (p && q && p->axis < 0) record(n.inputs[0], p->uint8());  // quantized as written
        ++eq_.left_as_ops;
      }
    }
    // Names now, ids change below.
    for (const auto& [v, p] : act_) eq_.activations[val(v).name] = p;
    for (int v : removed_) eq_.removed_pairs.insert(val(v).name);
    for (auto& [v, w] : weights_) eq_.weights[val(v).name] = std::move(w);
    // Every change drops a node: a graph without Q/DQ to import stays exactly as imported
    // (same node order, same engine bytes).
    if (std::find(drop_.begin(), drop_.end(), 1) == drop_.end()) return std::move(eq_);
    g_.compact(drop_);
    g_.topo_sort();
    ir::verify(g_);
    ops::infer_graph(g_);
    return std::move(eq_);
  }

 private:
  ir::Value& val(int v) { return g_.values[static_cast<size_t>(v)]; }
  bool dropped(size_t i) const { return i < drop_.size() && drop_[i]; }

  void drop(size_t i) {
    if (drop_.size() < g_.nodes.size()) drop_.resize(g_.nodes.size(), 0);
    drop_[i] = 1;
    g_.nodes[i].inputs.clear();  // so relink() no longer counts its reads
    g_.nodes[i].outputs.clear();
  }

  void lower() {
    bool any = false;
    const size_t count = g_.nodes.size();
    for (size_t i = 0; i < count; ++i) {
      const ir::Node& n = g_.nodes[i];
      if (!n.domain.empty() || (n.op_type != "QLinearConv" && n.op_type != "QLinearMatMul")) continue;
      std::vector<ir::Node> nodes = lower_qlinear(g_, n);
      if (nodes.empty()) continue;
      const int y = n.outputs[0];
      drop(i);
      val(y).producer = -1;
      for (ir::Node& m : nodes) g_.nodes.push_back(std::move(m));
      ++eq_.qlinear_lowered;
      any = true;
    }
    if (!any) return;
    drop_.resize(g_.nodes.size(), 0);
    g_.relink();
  }

  // Records the uint8 parameters of float value v; false when it already has others.
  bool record(int v, const quant::QParams& p) {
    auto it = act_.find(v);
    if (it != act_.end())
      return it->second.scale == p.scale && it->second.zero_point == p.zero_point;
    act_[v] = p;
    return true;
  }

  // A DequantizeLinear of constant data becomes a float constant with the same values:
  // symmetric int8 weights (scales recorded) and int32 biases. Other types stay as ops.
  bool fold_constant(size_t i, const QdqParams& p) {
    const ir::Node& n = g_.nodes[i];
    const int x = n.inputs[0], y = n.outputs[0];
    if (!val(x).constant || passes::is_graph_output(g_, y) || read_by_subgraph_.count(val(y).name))
      return false;
    const bool weight = symmetric_int8(p);
    if (!weight && p.qtype != DType::kInt32) return false;
    check_axis_extent(n, *val(x).constant, p);
    Tensor f = dequantize(*val(x).constant, p);
    if (weight) {
      weights_[y] = {p.scale, p.axis, f.clone()};
      ++eq_.weights_folded;
    } else {
      ++eq_.biases_folded;
    }
    drop(i);
    ir::Value& yv = val(y);
    yv.type = {DType::kFloat32, true, f.shape()};
    yv.constant = std::move(f);
    yv.producer = -1;
    g_.relink();
    return true;
  }

  // Q -> DQ (every reader of the Q a DQ with the same parameters): the DQs' readers read the
  // Q's float input instead. On an activation the parameters are recorded; on a constant
  // (fake-quantized weights) the DQs' outputs become the fake-quantized constant.
  bool remove_pair(size_t i, const QdqParams& p) {
    const ir::Node& qn = g_.nodes[i];
    const int x = qn.inputs[0], qo = qn.outputs[0];
    if (passes::is_graph_output(g_, qo) || read_by_subgraph_.count(val(qo).name)) return false;
    std::vector<int> dqs;
    for (int c : val(qo).consumers) {
      if (std::find(dqs.begin(), dqs.end(), c) != dqs.end()) continue;
      const ir::Node& d = g_.nodes[static_cast<size_t>(c)];
      if (!is_onnx(d, "DequantizeLinear") || d.inputs[0] != qo || d.outputs.empty() || d.outputs[0] < 0)
        return false;
      for (size_t k = 1; k < d.inputs.size(); ++k)
        if (d.inputs[k] == qo) return false;
      const std::optional<QdqParams> dp = read_params(g_, d);
      if (!dp || !dp->same(p) || read_by_subgraph_.count(val(d.outputs[0]).name)) return false;
      dqs.push_back(c);
    }
    if (dqs.empty()) return false;
    if (val(x).constant) {
      // Fake-quantized constant: each DQ output holds DQ(Q(x)).
      check_axis_extent(qn, *val(x).constant, p);
      const Tensor f = fake_quantize(*val(x).constant, p);
      for (int d : dqs) {
        const int y = g_.nodes[static_cast<size_t>(d)].outputs[0];
        if (passes::is_graph_output(g_, y)) return false;
      }
      for (int d : dqs) {
        const int y = g_.nodes[static_cast<size_t>(d)].outputs[0];
        if (symmetric_int8(p)) {
          weights_[y] = {p.scale, p.axis, f.clone()};
          ++eq_.weights_folded;
        }
        drop(static_cast<size_t>(d));
        ir::Value& yv = val(y);
        yv.type = {DType::kFloat32, true, f.shape()};
        yv.constant = f.clone();
        yv.producer = -1;
      }
      drop(i);
      g_.relink();
      return true;
    }
    if (p.axis >= 0 || p.qtype == DType::kInt32) return false;  // per-axis activations stay
    // A DQ output that is a graph output: x takes its name (when x is an intermediate that
    // is not itself an output); at most one such output.
    int renamed = -1;
    for (int d : dqs) {
      const int y = g_.nodes[static_cast<size_t>(d)].outputs[0];
      if (!passes::is_graph_output(g_, y)) continue;
      if (renamed >= 0 || val(x).producer < 0 || passes::is_graph_output(g_, x)) return false;
      renamed = y;
    }
    if (!record(x, p.uint8())) return false;
    if (renamed >= 0) {
      const std::string name = val(renamed).name;
      g_.rename_value(renamed, fresh_name(g_, name + "/removed"));
      g_.rename_value(x, name);
      for (int& o : g_.outputs)
        if (o == renamed) o = x;
    }
    for (int d : dqs) {
      const int y = g_.nodes[static_cast<size_t>(d)].outputs[0];
      for (ir::Node& m : g_.nodes)
        for (int& in : m.inputs)
          if (in == y) in = x;
      drop(static_cast<size_t>(d));
    }
    drop(i);
    g_.relink();
    removed_.insert(x);
    ++eq_.pairs_removed;
    return true;
  }

  ir::Graph& g_;
  ExplicitQuant eq_;
  std::vector<char> drop_;
  std::map<int, quant::QParams> act_;
  std::map<int, FoldedWeight> weights_;
  std::set<std::string> read_by_subgraph_;
  std::set<int> removed_;
};

// Ops whose output holds values of their input (so the input's scale serves): data movement,
// and max pooling (its outputs are some of its inputs).
bool keeps_values(const ir::Node& n) {
  static const std::set<std::string> kOnnx = {"Reshape", "Flatten", "Transpose", "Squeeze",
                                              "Unsqueeze", "Identity", "MaxPool"};
  if (n.domain.empty()) return kOnnx.count(n.op_type) > 0;
  return n.domain == "lithe" && n.op_type == "MaxPoolNhwc";
}
// The same, with every input value in the output too (so the output's scale serves the input).
bool moves_values(const ir::Node& n) { return keeps_values(n) && n.op_type != "MaxPool" && n.domain.empty(); }

// `name` and the names the passes derive from it: `<name>_nhwc`, `<name>_to_nhwc` and the
// Rewriter's `__N` for a taken name.
std::vector<std::string> source_names(std::string name) {
  std::vector<std::string> out = {name};
  for (bool changed = true; changed;) {
    changed = false;
    const size_t u = name.rfind("__");
    if (u != std::string::npos && u + 2 < name.size() &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(u + 2), name.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      name.resize(u);
      changed = true;
    }
    for (const char* suffix : {"_to_nhwc", "_nhwc"}) {
      const size_t n = std::strlen(suffix);
      if (!changed && name.size() > n && name.compare(name.size() - n, n, suffix) == 0) {
        name.resize(name.size() - n);
        changed = true;
      }
    }
    if (changed) out.push_back(name);
  }
  return out;
}

// The recorded parameters of an optimized graph's value: its own (by name), else those of the
// value a data-movement op or max pool read to make it, else (`forward`) those of a value a
// data-movement op made from it. `only`: names whose parameters count (all when null).
class ParamMapper {
 public:
  ParamMapper(const ir::Graph& g, const ExplicitQuant& eq, bool forward = true,
              const std::set<std::string>* only = nullptr)
      : g_(g), eq_(eq), forward_(forward), only_(only) {}

  std::optional<quant::QParams> find(int v) { return back(v, 0); }

 private:
  std::optional<quant::QParams> own(int v) const {
    for (const std::string& n : source_names(g_.values[static_cast<size_t>(v)].name)) {
      if (only_ && !only_->count(n)) continue;
      auto it = eq_.activations.find(n);
      if (it != eq_.activations.end()) return it->second;
    }
    return std::nullopt;
  }

  std::optional<quant::QParams> back(int v, int depth) {
    if (auto p = own(v)) return p;
    if (depth > 8) return std::nullopt;
    const int p = g_.values[static_cast<size_t>(v)].producer;
    if (p >= 0) {
      const ir::Node& n = g_.nodes[static_cast<size_t>(p)];
      if (keeps_values(n) && !n.inputs.empty() && n.inputs[0] >= 0)
        if (auto r = back(n.inputs[0], depth + 1)) return r;
    }
    return forward_ ? forward(v, depth) : std::nullopt;
  }

  std::optional<quant::QParams> forward(int v, int depth) {
    if (depth > 8) return std::nullopt;
    for (int c : g_.values[static_cast<size_t>(v)].consumers) {
      const ir::Node& n = g_.nodes[static_cast<size_t>(c)];
      if (!moves_values(n) || n.inputs.empty() || n.inputs[0] != v || n.outputs.empty() || n.outputs[0] < 0)
        continue;
      if (auto r = own(n.outputs[0])) return r;
      if (auto r = forward(n.outputs[0], depth + 1)) return r;
    }
    return std::nullopt;
  }

  const ir::Graph& g_;
  const ExplicitQuant& eq_;
  bool forward_;
  const std::set<std::string>* only_;
};

// True when v's values come from a DequantizeLinear through data movement (on its grid).
bool from_dequantize(const ir::Graph& g, int v) {
  for (int depth = 0; v >= 0 && depth < 16; ++depth) {
    const int p = g.values[static_cast<size_t>(v)].producer;
    if (p < 0) return false;
    const ir::Node& n = g.nodes[static_cast<size_t>(p)];
    if (is_onnx(n, "DequantizeLinear")) return true;
    if (!keeps_values(n) || n.inputs.empty()) return false;
    v = n.inputs[0];
  }
  return false;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace

ExplicitQuant import_explicit_quant(ir::Graph& g) { return Importer(g).run(); }

ExplicitQuant explicit_quant_step(ir::Graph& g, const std::string& what, passes::PipelineOptions* po) {
  auto it = std::find(po->disabled.begin(), po->disabled.end(), kExplicitQuantStep);
  if (it != po->disabled.end()) {
    po->disabled.erase(std::remove(it, po->disabled.end(), kExplicitQuantStep), po->disabled.end());
    return {};
  }
  ExplicitQuant eq;
  try {
    eq = import_explicit_quant(g);
  } catch (const Error& e) {
    throw e.with_context(what);
  }
  if (eq.any()) po->disabled.push_back("sibling-aggregation");
  return eq;
}

std::string explicit_quant_note(const ExplicitQuant& eq) {
  return "explicit quantization: " + std::to_string(eq.pairs_removed) + " Q/DQ pair(s) removed, " +
         std::to_string(eq.qlinear_lowered) + " QLinear op(s) lowered, " +
         std::to_string(eq.weights_folded) + " int8 weight(s) and " + std::to_string(eq.biases_folded) +
         " int32 bias(es) folded, " + std::to_string(eq.left_as_ops) + " Q/DQ node(s) left as ops, " +
         std::to_string(eq.fake_quant_restored) + " Q/DQ pair(s) kept before fp32 layers";
}

int restore_fake_quant(ir::Graph& g, const ExplicitQuant& eq) {
  if (eq.removed_pairs.empty()) return 0;
  ParamMapper m(g, eq, /*forward=*/false, &eq.removed_pairs);
  const int op13 = qdq_opset(g);
  int restored = 0;
  const size_t nvalues = g.values.size();
  for (size_t v = 0; v < nvalues; ++v) {
    if (g.values[v].constant || g.values[v].type.dtype != DType::kFloat32) continue;
    const int id = static_cast<int>(v);
    std::vector<int> readers;
    for (int c : g.values[v].consumers) {
      const ir::Node& n = g.nodes[static_cast<size_t>(c)];
      if (!keeps_values(n) && !is_onnx(n, "QuantizeLinear") &&
          std::find(readers.begin(), readers.end(), c) == readers.end())
        readers.push_back(c);
    }
    const bool output = passes::is_graph_output(g, id);
    if ((readers.empty() && !output) || from_dequantize(g, id)) continue;
    if (output && g.values[v].producer < 0) continue;  // an input that is an output: as it is
    const std::optional<quant::QParams> p = m.find(id);
    if (!p) continue;
    const std::string name = g.values[v].name;
    const ir::TensorType type = g.values[v].type;
    Tensor sc(DType::kFloat32, Shape{}), zp(DType::kUInt8, Shape{});
    sc.data<float>()[0] = p->scale;
    zp.data<uint8_t>()[0] = static_cast<uint8_t>(p->zero_point);
    const int s = add_const(g, name + "/fq_scale", std::move(sc));
    const int z = add_const(g, name + "/fq_zero_point", std::move(zp));
    const int q = g.add_value(fresh_name(g, name + "/fq_u8"), {DType::kUInt8, type.has_shape, type.dims});
    const int d = g.add_value(fresh_name(g, name + "/fq"), type);
    for (int c : readers)
      for (int& in : g.nodes[static_cast<size_t>(c)].inputs)
        if (in == id) in = d;
    if (output) {  // the output keeps its name, now on the grid
      g.rename_value(id, fresh_name(g, name + "/float"));
      g.rename_value(d, name);
      for (int& o : g.outputs)
        if (o == id) o = d;
    }
    g.nodes.push_back(make_node(name + "/fake_quantize", "QuantizeLinear", op13, {id, s, z}, {q}));
    g.nodes.push_back(make_node(name + "/fake_dequantize", "DequantizeLinear", op13, {q, s, z}, {d}));
    g.relink();
    ++restored;
  }
  if (!restored) return 0;
  g.topo_sort();
  ir::verify(g);
  ops::infer_graph(g);
  return restored;
}

void map_explicit_params(const ir::Graph& g, const ExplicitQuant& eq, QuantizeOptions* qo) {
  ParamMapper m(g, eq);
  for (size_t v = 0; v < g.values.size(); ++v) {
    const ir::Value& val = g.values[v];
    if (val.constant || val.type.dtype != DType::kFloat32) continue;
    if (auto p = m.find(static_cast<int>(v))) qo->given[val.name] = *p;
  }
  // Weight scales along each layer's output channels, for weights the passes left as folded.
  for (const ir::Node& n : g.nodes) {
    const bool conv = n.domain == "lithe" && n.op_type == "ConvNhwc";
    const bool gemm = (n.domain.empty() || n.domain == "lithe") && (n.op_type == "Gemm" || n.op_type == "MatMul");
    if ((!conv && !gemm) || n.inputs.size() < 2 || n.inputs[1] < 0) continue;
    const ir::Value& w = g.values[static_cast<size_t>(n.inputs[1])];
    auto it = eq.weights.find(w.name);
    if (!w.constant || it == eq.weights.end() || !same_values(*w.constant, it->second.value)) continue;
    // Output channels: axis 0 of conv weights, of B with transB; else B's columns (MatMul).
    const int axis = conv ? 0 : (ops::NodeAttrs(n).attr_int("transB", 0) ? 0 : 1);
    if (w.constant->rank() <= axis) continue;
    const int64_t m_out = w.constant->shape()[static_cast<size_t>(axis)];
    const FoldedWeight& f = it->second;
    std::vector<float> s;
    if (f.axis < 0 && f.scale.size() == 1)
      s.assign(static_cast<size_t>(m_out), f.scale[0]);
    else if (f.axis == axis && static_cast<int64_t>(f.scale.size()) == m_out)
      s = f.scale;
    else
      continue;  // scales along another axis: the quantizer chooses its own
    qo->given_weight_scales[w.name] = std::move(s);
  }
}

Int8Summary build_explicit_int8(ir::Graph& g, ExplicitQuant& eq, const CalibrationOptions& calib,
                                const std::string& model_sha256) {
  Int8Summary sum;
  QuantizeOptions qo = quantize_options(calib);
  map_explicit_params(g, eq, &qo);
  // Calibration only fills the ranges the model does not give; its graph differs from an
  // implicit build's (no Q/DQ pairs, no equalization), hence a key of its own.
  const std::string key = "explicit|" + model_sha256 + "|" + calib.key;
  std::map<std::string, quant::Histogram> hist;
  bool calibrated = false;
  if (!calib.cache.empty() && std::ifstream(calib.cache).good() &&
      quant::read_calib_cache(calib.cache, key, &hist)) {
    sum.from_cache = calibrated = true;
  } else if (calib.load) {
    const std::vector<std::vector<Tensor>> samples = calib.load(g);
    if (samples.empty()) fail("precision int8: no calibration samples");
    hist = calibrate(g, samples, calib.threads, calib.progress);
    sum.samples = samples.size();
    calibrated = true;
    if (!calib.cache.empty()) write_file_atomically(calib.cache, quant::calib_cache_json(hist, key));
  }
  sum.method = calibrated ? std::string("explicit + ") + quant::calib_method_name(qo.method) : "explicit";
  sum.layers = quantize_graph(g, hist, qo, &sum.quantized);
  if (!calibrated)
    for (LayerPrecision& l : sum.layers)
      if (l.reason == "not calibrated" || l.reason == "input not calibrated")
        l.reason = "no range in the model";
  eq.fake_quant_restored = restore_fake_quant(g, eq);
  return sum;
}

}  // namespace lithe::build
