#include "builder/quantize.hpp"

#include <algorithm>
#include <cmath>

#include "builder/int8_tuning.hpp"
#include "kernels/cpu.hpp"
#include "ops/fused_internal.hpp"
#include "ops/infer.hpp"
#include "ops/op.hpp"
#include "ops/resize_internal.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"
#include "plan/plan.hpp"
#include "quant/qconv.hpp"
#include "quant/qmatmul.hpp"
#include "runtime/executor.hpp"

namespace lithe::build {

std::unique_ptr<runtime::Session> fast_session(const ir::Graph& g, int threads, const char* what) {
  auto graph = std::make_shared<ir::Graph>(g);
  const plan::MemoryPlan plan = plan::plan_memory(*graph);
  if (!runtime::Program::supports(*graph, plan))
    fail(what, " needs a graph the fast executor runs (static shapes, no control flow)");
  auto program = std::make_shared<runtime::Program>(graph, plan, kernels::active_isa());
  return std::make_unique<runtime::Session>(program, threads);
}

std::map<std::string, quant::Histogram> calibrate(
    const ir::Graph& g, const std::vector<std::vector<Tensor>>& samples, int threads,
    const std::function<void(size_t, size_t)>& progress) {
  const std::unique_ptr<runtime::Session> run = fast_session(g, threads, "calibration");
  runtime::Session& session = *run;
  const ir::Graph* graph = &g;
  std::vector<quant::Histogram> hist(graph->values.size());
  std::vector<char> seen(graph->values.size(), 0);
  session.set_observer([&](int v, const Tensor& t) {
    if (t.dtype() != DType::kFloat32) return;
    hist[static_cast<size_t>(v)].add(t.data<float>(), t.numel());
    seen[static_cast<size_t>(v)] = 1;
  });
  for (size_t s = 0; s < samples.size(); ++s) {
    if (samples[s].size() != graph->inputs.size())
      fail("calibration sample ", s, " has ", samples[s].size(), " input(s), the model takes ",
           graph->inputs.size());
    for (size_t i = 0; i < graph->inputs.size(); ++i) {
      session.input(i) = samples[s][i];
      const ir::Value& in = graph->values[static_cast<size_t>(graph->inputs[i])];
      if (in.type.dtype == DType::kFloat32 && samples[s][i].dtype() == DType::kFloat32) {
        hist[static_cast<size_t>(graph->inputs[i])].add(samples[s][i].data<float>(),
                                                        samples[s][i].numel());
        seen[static_cast<size_t>(graph->inputs[i])] = 1;
      }
    }
    session.run();
    if (progress) progress(s + 1, samples.size());
  }
  std::map<std::string, quant::Histogram> out;
  for (size_t v = 0; v < hist.size(); ++v)
    if (seen[v]) out.emplace(graph->values[v].name, std::move(hist[v]));
  return out;
}

namespace {

// A scalar constant.
template <class T>
Tensor scalar(DType dt, T v) {
  Tensor t(dt, Shape{});
  t.data<T>()[0] = v;
  return t;
}

// The node kinds the quantizer turns into INT8.
// kCopy: ops that move values without arithmetic (max pooling, nearest Resize, the pixel
// shuffle lithe.DepthToSpaceNhwc), which run on the uint8 values and keep their input's scale.
// kBinary: Add / Mul of two activations (lithe.QBinaryU8).
// kMatMul: MatMul of two activations (lithe.QMatMulU8), such as attention's Q x K^T.
// kResize: linear Resize (lithe.QResizeLinearU8), which keeps its input's scale too.
enum class QKind { kNone, kConv, kGemm, kCopy, kConcat, kBinary, kMatMul, kResize };

// Values of fewer elements are quantized at their whole calibrated range (see params_of).
constexpr int64_t kSmallTensor = 4096;

class Quantizer {
 public:
  Quantizer(ir::Graph& g, const std::map<std::string, quant::Histogram>& hist,
            const QuantizeOptions& opts, std::vector<QuantizedLayer>* record)
      : g_(g), hist_(hist), opts_(opts), record_(record), rw_(g), kind_(g.nodes.size(), QKind::kNone) {}

  std::vector<LayerPrecision> run() {
    std::vector<LayerPrecision> report;
    // In topological order: a max pool is INT8 when its input comes from an INT8 node.
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      const ir::Node& node = g_.nodes[n];
      std::string why = eligible(node, &kind_[n]);
      report.push_back({node.name, why.empty() ? "int8" : "fp32", why});
    }
    // Each INT8 node reads the uint8 form of its input: the output of an INT8 producer, or a
    // QuantizeLinear of a float value (made once per value).
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      if (kind_[n] == QKind::kConv) quantize_conv(n);
      if (kind_[n] == QKind::kGemm) quantize_gemm(n);
      if (kind_[n] == QKind::kCopy) quantize_copy(n);
      if (kind_[n] == QKind::kConcat) quantize_concat(n);
      if (kind_[n] == QKind::kBinary) quantize_binary(n);
      if (kind_[n] == QKind::kMatMul) quantize_matmul(n);
      if (kind_[n] == QKind::kResize) quantize_resize(n);
    }
    if (rw_.empty()) return report;
    rw_.apply(g_);
    return report;
  }

 private:
  const ir::Value& val(int v) const { return g_.values[static_cast<size_t>(v)]; }

  const quant::Histogram* hist_of(int v) const {
    auto it = hist_.find(val(v).name);
    return it == hist_.end() ? nullptr : &it->second;
  }

  // Whether value v has a range: fixed by the model, or calibrated.
  bool has_range(int v) const { return opts_.given.count(val(v).name) || hist_of(v); }

  bool f32_static(int v) const {
    return v >= 0 && val(v).type.dtype == DType::kFloat32 && val(v).type.fully_known();
  }

  static bool finite(const Tensor& t) {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(t.data<float>()[i])) return false;
    return true;
  }

  // The INT8 kind of node n, or kNone with why not.
  std::string eligible(const ir::Node& n, QKind* kind) const {
    if (opts_.keep_fp32.count(n.name)) return "kept in fp32 (mixed precision)";
    const bool lithe = n.domain == "lithe";
    // A producer INT8 already.
    auto int8_input = [&](int x) {
      const int p = x >= 0 ? val(x).producer : -1;
      return p >= 0 && kind_[static_cast<size_t>(p)] != QKind::kNone;
    };
    const bool pool = lithe && (n.op_type == "MaxPoolNhwc" || n.op_type == "AveragePoolNhwc" ||
                                n.op_type == "GlobalAveragePoolNhwc" || n.op_type == "DepthToSpaceNhwc");
    if (pool || nearest_resize(n)) {
      if (n.inputs.empty() || !int8_input(n.inputs[0]) || n.outputs.size() != 1)
        return "input not int8";
      *kind = QKind::kCopy;
      return {};
    }
    if (linear_resize(n)) {
      if (!int8_input(n.inputs[0])) return "input not int8";
      *kind = QKind::kResize;
      return {};
    }
    if (n.domain.empty() && n.op_type == "Concat") {
      // Worth it when some input is INT8 already; each input is requantized to the output's
      // scale by a lookup table unless they agree.
      bool any = false;
      for (int x : n.inputs) {
        if (!f32_static(x) || !has_range(x)) return "input not calibrated";
        any = any || int8_input(x);
      }
      if (!any || n.outputs.size() != 1 || !f32_static(n.outputs[0]) || !has_range(n.outputs[0]))
        return "input not int8";
      *kind = QKind::kConcat;
      return {};
    }
    if (n.domain.empty() && (n.op_type == "Add" || n.op_type == "Mul")) {
      // Two activations (a constant operand stays fp32, or joins a lookup table when it is
      // one value), one of them INT8 already; the other is quantized at its calibrated range.
      if (n.inputs.size() != 2 || n.outputs.size() != 1 || n.opset < 7) return "no int8 kernel";
      for (int x : n.inputs)
        if (passes::constant_of(g_, x)) return "constant operand";
      for (int x : {n.inputs[0], n.inputs[1], n.outputs[0]})
        if (!f32_static(x) || !has_range(x)) return "input not calibrated";
      if (!int8_input(n.inputs[0]) && !int8_input(n.inputs[1])) return "input not int8";
      *kind = QKind::kBinary;
      return {};
    }
    const bool conv = lithe && n.op_type == "ConvNhwc";
    const bool matmul = (lithe || n.domain.empty()) && n.op_type == "MatMul";
    if (matmul && n.inputs.size() == 2 && !passes::constant_of(g_, n.inputs[1])) {
      // Two activations (attention's Q x K^T, softmax x V), one of them INT8 already or a
      // layout change of an INT8 value (heads split by Reshape / Transpose); the other is
      // quantized at its calibrated range.
      const int a = n.inputs[0], b = n.inputs[1], y = n.outputs.empty() ? -1 : n.outputs[0];
      if (n.outputs.size() != 1 || n.attrs.count("activation")) return "matmul form without an int8 kernel";
      if (passes::constant_of(g_, a)) return "constant operand";
      for (int x : {a, b, y})
        if (!f32_static(x) || !has_range(x)) return "input not calibrated";
      const Shape& ad = val(a).type.dims;
      const Shape& bd = val(b).type.dims;
      if (ad.size() < 2 || bd.size() < 2 || ad.back() > quant::kMaxQMatMulReduction)
        return "matmul form without an int8 kernel";
      // A QDQ model (explicit quantization) that gives all three ranges asks for it as well.
      auto given = [&](int v) { return opts_.given.count(val(v).name) > 0; };
      if (!int8_input(a) && !int8_input(b) && !int8_through_layout(a) && !int8_through_layout(b) &&
          !(given(a) && given(b) && given(y)))
        return "input not int8";
      *kind = QKind::kMatMul;
      return {};
    }
    const bool gemm = (lithe || n.domain.empty()) && (n.op_type == "Gemm" || matmul);
    if ((!conv && !gemm) || n.inputs.size() < 2 || n.outputs.size() != 1) return "no int8 kernel";
    if (matmul && n.inputs.size() != 2) return "matmul with a residual input";
    const int x = n.inputs[0], w = n.inputs[1], y = n.outputs[0];
    const int b = n.inputs.size() > 2 ? n.inputs[2] : -1, z = n.inputs.size() > 3 ? n.inputs[3] : -1;
    const Tensor* wt = passes::constant_of(g_, w);
    const Tensor* bt = b >= 0 ? passes::constant_of(g_, b) : nullptr;
    if (!wt || wt->dtype() != DType::kFloat32 || wt->rank() != (conv ? 4 : 2))
      return "weights not constant";
    if (b >= 0 && (!bt || bt->dtype() != DType::kFloat32)) return "bias not constant";
    if (!f32_static(x) || !f32_static(y) || (z >= 0 && !f32_static(z))) return "dynamic shapes";
    if (!has_range(x) || !has_range(y) || (z >= 0 && !has_range(z))) return "not calibrated";
    if (!finite(*wt) || (bt && !finite(*bt))) return "non-finite weights";
    const Shape& ws = wt->shape();
    if (conv) {
      if (n.attrs.count("weight_layout")) return "weights already packed";
      if (ws[1] * ws[2] * ws[3] > quant::kMaxReduction) return "reduction too long for int32";
      *kind = QKind::kConv;
      return {};
    }
    // MatMul: Y = A B with A [..., K] and B constant [K, N].
    if (matmul) {
      const Shape& xd = val(x).type.dims;
      if (xd.size() < 2 || xd.back() != ws[0] || ws[0] > quant::kMaxReduction)
        return "matmul form without an int8 kernel";
      *kind = QKind::kGemm;
      return {};
    }
    // Gemm: Y = A B' + C with A [M, K], B constant, C a constant row of N (or none).
    const ops::NodeAttrs a(n);
    if (a.attr_float("alpha", 1.f) != 1.f || a.attr_float("beta", 1.f) != 1.f ||
        a.attr_int("transA", 0) != 0 || z >= 0 || val(x).type.dims.size() != 2)
      return "gemm form without an int8 kernel";
    const int64_t nout = a.attr_int("transB", 0) ? ws[0] : ws[1];
    if ((bt && bt->numel() != nout) || (a.attr_int("transB", 0) ? ws[1] : ws[0]) > quant::kMaxReduction)
      return "gemm form without an int8 kernel";
    *kind = QKind::kGemm;
    return {};
  }

  // Whether float value x is a layout change of the output of an INT8 node (Reshape,
  // Transpose, Slice...: attention splits its projections into heads so), possibly through
  // arithmetic with a constant on the way (a projection's bias Add, the queries' 1/sqrt(d)).
  bool int8_through_layout(int x) const {
    static const char* kLayout[] = {"Reshape", "Transpose", "Squeeze", "Unsqueeze",
                                    "Flatten", "Slice",     "Split"};
    for (int step = 0; step < 8 && x >= 0; ++step) {
      const int p = val(x).producer;
      if (p < 0) return false;
      if (kind_[static_cast<size_t>(p)] != QKind::kNone) return step > 0;
      const ir::Node& n = g_.nodes[static_cast<size_t>(p)];
      if (!n.domain.empty() || n.inputs.empty()) return false;
      const bool layout = std::any_of(std::begin(kLayout), std::end(kLayout),
                                      [&](const char* o) { return n.op_type == o; });
      if (!layout) {
        const bool arith = n.op_type == "Add" || n.op_type == "Sub" || n.op_type == "Mul" || n.op_type == "Div";
        if (!arith || n.inputs.size() != 2 || !passes::constant_of(g_, n.inputs[1]) ||
            n.outputs.size() != 1 || val(n.outputs[0]).type.dims != val(n.inputs[0]).type.dims)
          return false;
      }
      x = n.inputs[0];
    }
    return false;
  }

  // A Resize in mode nearest of a static 4-D float value with constant scales / sizes.
  bool nearest_resize(const ir::Node& n) const {
    if (!n.domain.empty() || n.op_type != "Resize" || n.inputs.empty() || n.outputs.size() != 1 ||
        ops::NodeAttrs(n).attr_string("mode", "nearest") != "nearest")
      return false;
    for (size_t i = 1; i < n.inputs.size(); ++i)
      if (n.inputs[i] >= 0 && !passes::constant_of(g_, n.inputs[i])) return false;
    return f32_static(n.inputs[0]) && f32_static(n.outputs[0]) &&
           val(n.inputs[0]).type.dims.size() == 4;
  }

  // A Resize in mode linear of a static 4-D float value with constant scales / sizes that
  // the float op's own mapping accepts (not tf_crop_and_resize: its extrapolation value is
  // not an interpolation).
  bool linear_resize(const ir::Node& n) const {
    if (!n.domain.empty() || n.op_type != "Resize" || n.inputs.empty() || n.outputs.size() != 1)
      return false;
    const ops::NodeAttrs a(n);
    const std::string mode = a.attr_string("mode", "nearest");
    if ((mode != "linear" && mode != "bilinear") ||
        a.attr_string("coordinate_transformation_mode", "") == "tf_crop_and_resize")
      return false;
    const int x = n.inputs[0], y = n.outputs[0];
    if (!f32_static(x) || !f32_static(y) || val(x).type.dims.size() != 4) return false;
    std::vector<const Tensor*> in(n.inputs.size(), nullptr);
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      if (n.inputs[i] < 0) continue;
      in[i] = passes::constant_of(g_, n.inputs[i]);
      if (!in[i]) return false;
    }
    try {
      const ops::ResizeMapping m = ops::resize_mapping(n, val(x).type.dims, in);
      return m.linear && m.out == val(y).type.dims;
    } catch (const Error&) {
      return false;  // the float kernel reports it
    }
  }

  // The range of value v: its own, or that of the value whose scale a max pool kept.
  quant::QParams params_of(int v) const {
    auto it = same_params_.find(v);
    if (it != same_params_.end()) return params_of(it->second);
    auto given = opts_.given.find(val(v).name);
    if (given != opts_.given.end()) return given->second;
    // A model output keeps its whole range whatever the method: clipped scores saturate at
    // the top code together, and ties make the top-1 arbitrary. So does a small tensor (a
    // squeeze-excitation gate, a pooled vector): a few values per sample are too few for a
    // histogram to tell outliers from signal (PP-OCR cls lost 19 points of top-1 with entropy
    // ranges on its SE gates).
    const bool whole = passes::is_graph_output(g_, v) || shape_numel(val(v).type.dims) < kSmallTensor;
    const quant::CalibMethod m = whole ? quant::CalibMethod::kMinMax : opts_.method;
    return quant::uint8_params(quant::choose_range(*hist_of(v), m, opts_.percentile));
  }

  // The scale and zero-point constants of float value v (made once per value).
  std::pair<int, int> param_consts(int v) {
    auto it = consts_.find(v);
    if (it != consts_.end()) return it->second;
    const quant::QParams p = params_of(v);
    const std::string& name = val(v).name;
    const int s = rw_.add_constant(name + "/scale", scalar<float>(DType::kFloat32, p.scale));
    const int z = rw_.add_constant(name + "/zero_point",
                                   scalar<uint8_t>(DType::kUInt8, static_cast<uint8_t>(p.zero_point)));
    return consts_[v] = {s, z};
  }

  int opset() const { return g_.opsets.count("") ? std::max(13, g_.opsets.at("")) : 13; }

  // The uint8 form of float value v.
  int uint8_of(int v) {
    auto it = q_of_.find(v);
    if (it != q_of_.end()) return it->second;
    ir::Node q;
    q.name = val(v).name + "/quantize";
    q.op_type = "QuantizeLinear";
    q.opset = opset();
    const int qv = rw_.add_value(val(v).name + "/u8", {DType::kUInt8, true, val(v).type.dims});
    const auto [sc, zc] = param_consts(v);
    q.inputs = {v, sc, zc};
    q.outputs = {qv};
    rw_.add_node(std::move(q));
    q_of_[v] = qv;
    return qv;
  }

  // A uint8 value of `dims` (rows of another value, same bytes) made by a Reshape of `from`.
  int reshaped(int from, const Shape& dims, const std::string& name) {
    Tensor shape(DType::kInt64, Shape{static_cast<int64_t>(dims.size())});
    for (size_t i = 0; i < dims.size(); ++i) shape.data<int64_t>()[i] = dims[i];
    ir::Node r;
    r.name = name;
    r.op_type = "Reshape";
    r.opset = opset();
    const int out = rw_.add_value(name, {DType::kUInt8, true, dims});
    r.inputs = {from, rw_.add_constant(name + "/shape", std::move(shape))};
    r.outputs = {out};
    rw_.add_node(std::move(r));
    return out;
  }

  // Float value y is now computed as uint8 value yq: INT8 readers take yq; float readers and
  // the graph outputs get a DequantizeLinear that keeps y's name.
  void produced_as_uint8(int y, int yq) {
    q_of_[y] = yq;
    bool float_use = passes::is_graph_output(g_, y);
    for (int c : val(y).consumers) {
      const ir::Node& cn = g_.nodes[static_cast<size_t>(c)];
      const QKind k = kind_[static_cast<size_t>(c)];
      // INT8 nodes read y as X (input 0), a conv also as residual Z (input 3), a Concat or
      // Add / Mul as any input.
      for (size_t i = 0; i < cn.inputs.size(); ++i)
        if (cn.inputs[i] == y && !(k != QKind::kNone && (i == 0 || (i == 3 && k == QKind::kConv) ||
                                                         k == QKind::kConcat || k == QKind::kBinary ||
                                                         k == QKind::kMatMul)))
          float_use = true;
    }
    if (!float_use) return;
    ir::Node d;
    d.name = val(y).name + "/dequantize";
    d.op_type = "DequantizeLinear";
    d.opset = opset();
    const auto [ys, yz] = param_consts(y);
    d.inputs = {yq, ys, yz};
    d.outputs = {y};
    rw_.add_node(std::move(d));
  }

  // A QConvNhwc of uint8 input xu (float value x for its scale) with weights w [M, per]
  // (shape `wshape`, float) and bias, writing uint8 value yu (float value y for its scale).
  void emit_qconv(const ir::Node& from, std::map<std::string, ir::Attribute> attrs, int xu, int x,
                  const float* w, const Shape& wshape, const std::string& wname, const float* bias,
                  int z, int y, int yu) {
    const int64_t m = wshape[0], per = shape_numel(wshape) / m;
    const quant::QParams xp = params_of(x);
    Tensor wq(DType::kInt8, wshape), wscale(DType::kFloat32, Shape{m});
    auto given = opts_.given_weight_scales.find(wname);
    if (given != opts_.given_weight_scales.end() && static_cast<int64_t>(given->second.size()) == m)
      quant::quantize_weights_with_scales(w, m, per, given->second.data(), wq.data<int8_t>(),
                                          wscale.data<float>());
    else
      quant::quantize_weights_per_channel(w, m, per, wq.data<int8_t>(), wscale.data<float>());
    ir::Node q;
    q.name = from.name;
    q.op_type = "QConvNhwc";
    q.domain = "lithe";
    q.opset = 1;
    q.attrs = std::move(attrs);
    const auto [xs, xz] = param_consts(x);
    const auto [ys, yz] = param_consts(y);
    const float* wsd = wscale.data<float>();
    if (record_) {
      const char* op = from.op_type == "Gemm" ? "gemm" : from.op_type == "MatMul" ? "matmul" : "conv";
      QuantizedLayer l{from.name, op, val(x).name, val(y).name,
                       z >= 0 ? val(z).name : "", xp, params_of(y), {}, {wsd, wsd + m}};
      if (z >= 0) l.zp = params_of(z);
      record_->push_back(std::move(l));
    }
    Tensor bq(DType::kInt32, Shape{m});
    for (int64_t c = 0; c < m; ++c)
      bq.data<int32_t>()[c] =
          bias ? quant::quantize_bias(bias[c], static_cast<double>(xp.scale) * wsd[c]) : 0;
    q.inputs = {xu, xs, xz, rw_.add_constant(from.name + "/w_q8", std::move(wq)), -1, ys, yz};
    q.inputs[4] = rw_.add_constant(from.name + "/w_scale", std::move(wscale));
    if (bias || z >= 0) q.inputs.push_back(rw_.add_constant(from.name + "/bias_i32", std::move(bq)));
    if (z >= 0) {
      const auto [zs, zz] = param_consts(z);
      q.inputs.insert(q.inputs.end(), {uint8_of(z), zs, zz});
    }
    q.outputs = {yu};
    rw_.replace_node(static_cast<int>(&from - g_.nodes.data()), std::move(q));
  }

  void quantize_conv(size_t n) {
    const ir::Node& node = g_.nodes[n];
    const int x = node.inputs[0], y = node.outputs[0];
    const int b = node.inputs.size() > 2 ? node.inputs[2] : -1;
    const int z = node.inputs.size() > 3 ? node.inputs[3] : -1;
    const Tensor& w = *passes::constant_of(g_, node.inputs[1]);
    const Tensor* bt = b >= 0 ? passes::constant_of(g_, b) : nullptr;
    const int yu = rw_.add_value(val(y).name + "/u8", {DType::kUInt8, true, val(y).type.dims});
    emit_qconv(node, node.attrs, uint8_of(x), x, w.data<float>(), w.shape(),
               val(node.inputs[1]).name, bt ? bt->data<float>() : nullptr, z, y, yu);
    produced_as_uint8(y, yu);
  }

  // Gemm A [M, K] x B (+ C), or MatMul A [..., K] x B, as a 1x1 QConvNhwc over [1, 1, M, K]
  // (M: the rows of A; Reshapes are views).
  void quantize_gemm(size_t n) {
    const ir::Node& node = g_.nodes[n];
    const int x = node.inputs[0], y = node.outputs[0];
    const int b = node.inputs.size() > 2 ? node.inputs[2] : -1;
    const Tensor& bmat = *passes::constant_of(g_, node.inputs[1]);
    const Tensor* bt = b >= 0 ? passes::constant_of(g_, b) : nullptr;
    const ops::NodeAttrs a(node);
    const bool trans = a.attr_int("transB", 0) != 0;
    const int64_t k = trans ? bmat.shape()[1] : bmat.shape()[0];
    const int64_t nout = trans ? bmat.shape()[0] : bmat.shape()[1];
    const int64_t rows = shape_numel(val(x).type.dims) / k;
    std::vector<float> w(static_cast<size_t>(nout * k));  // [N, K]
    for (int64_t o = 0; o < nout; ++o)
      for (int64_t i = 0; i < k; ++i)
        w[static_cast<size_t>(o * k + i)] = bmat.data<float>()[trans ? o * k + i : i * nout + o];
    std::map<std::string, ir::Attribute> attrs;
    for (const char* keep : ops::fused::kEpilogueAttrs)
      if (node.attrs.count(keep)) attrs[keep] = node.attrs.at(keep);
    const std::string& yn = val(y).name;
    const int xu = reshaped(uint8_of(x), {1, 1, rows, k}, val(x).name + "/u8_nhwc");
    const int y4 = rw_.add_value(yn + "/u8_nhwc", {DType::kUInt8, true, {1, 1, rows, nout}});
    emit_qconv(node, std::move(attrs), xu, x, w.data(), {nout, k, 1, 1}, val(node.inputs[1]).name,
               bt ? bt->data<float>() : nullptr, -1, y, y4);
    produced_as_uint8(y, reshaped(y4, val(y).type.dims, yn + "/u8"));
  }

  // Pooling or nearest Resize on the uint8 values: no rescaling, the output keeps the input's
  // scale (the average pools round the mean in zero-point units: they get the zero point).
  void quantize_copy(size_t n) {
    ir::Node node = g_.nodes[n];
    const int x = node.inputs[0], y = node.outputs[0];
    same_params_[y] = x;
    if (node.op_type == "AveragePoolNhwc" || node.op_type == "GlobalAveragePoolNhwc") {
      node.attrs["zero_point"] = ir::Attribute::of_int(params_of(x).zero_point);
    }
    const char* op = node.op_type == "Resize" ? "resize" : node.op_type == "MaxPoolNhwc" ? "maxpool" : "avgpool";
    if (node.op_type == "DepthToSpaceNhwc") op = "depth-to-space";  // a ConvTranspose's pixel shuffle
    if (record_) record_->push_back({node.name, op,
                                     val(x).name, val(y).name, "", params_of(x), params_of(x), {}, {}});
    const int yu = rw_.add_value(val(y).name + "/u8", {DType::kUInt8, true, val(y).type.dims});
    node.inputs[0] = uint8_of(x);
    node.outputs = {yu};
    rw_.replace_node(static_cast<int>(n), std::move(node));
    produced_as_uint8(y, yu);
  }

  // Linear Resize of a uint8 value: lithe.QResizeLinearU8, whose attributes are those of an
  // opset-19 Resize (an older node's are translated: Resize-10 is asymmetric with scales as
  // input 1; antialias, axes and keep_aspect_ratio_policy exist from opset 18). The output
  // keeps the input's scale and zero point.
  void quantize_resize(size_t n) {
    const ir::Node& node = g_.nodes[n];
    const int x = node.inputs[0], y = node.outputs[0];
    same_params_[y] = x;
    if (record_)
      record_->push_back({node.name, "resize-linear", val(x).name, val(y).name, "", params_of(x),
                          params_of(x), {}, {}});
    ir::Node q;
    q.name = node.name;
    q.op_type = "QResizeLinearU8";
    q.domain = "lithe";
    q.opset = 1;
    int scales = -1, sizes = -1;
    if (node.opset < 11) {
      scales = node.inputs.size() > 1 ? node.inputs[1] : -1;
      q.attrs["coordinate_transformation_mode"] = ir::Attribute::of_string("asymmetric");
    } else {
      scales = node.inputs.size() > 2 ? node.inputs[2] : -1;
      sizes = node.inputs.size() > 3 ? node.inputs[3] : -1;
      std::vector<const char*> keep = {"coordinate_transformation_mode", "exclude_outside"};
      if (node.opset >= 18) keep.insert(keep.end(), {"antialias", "axes", "keep_aspect_ratio_policy"});
      for (const char* k : keep)
        if (node.attrs.count(k)) q.attrs[k] = node.attrs.at(k);
    }
    const auto [xs, xz] = param_consts(x);
    (void)xs;
    q.inputs = {uint8_of(x), xz, scales};
    if (sizes >= 0) q.inputs.push_back(sizes);
    const int yu = rw_.add_value(val(y).name + "/u8", {DType::kUInt8, true, val(y).type.dims});
    q.outputs = {yu};
    rw_.replace_node(static_cast<int>(n), std::move(q));
    produced_as_uint8(y, yu);
  }

  // Concat of uint8 values at the output's scale: an input with other parameters goes through
  // a lookup table (its codes requantized: QuantizeLinear of each DequantizeLinear value).
  void quantize_concat(size_t n) {
    ir::Node node = g_.nodes[n];
    const int y = node.outputs[0];
    const quant::QParams yp = params_of(y);
    // One record per input (x: that input, y: the output).
    if (record_)
      for (int x : node.inputs)
        record_->push_back({node.name, "concat", val(x).name, val(y).name, "", params_of(x), yp, {}, {}});
    for (int& x : node.inputs) {
      const int xu = uint8_of(x);
      const quant::QParams xp = params_of(x);
      if (xp.scale == yp.scale && xp.zero_point == yp.zero_point) {
        x = xu;
        continue;
      }
      Tensor table(DType::kUInt8, Shape{256});
      for (int q = 0; q < 256; ++q)
        table.data<uint8_t>()[q] = static_cast<uint8_t>(quant::quantize_value(
            (static_cast<float>(q) - static_cast<float>(xp.zero_point)) * xp.scale, yp.scale,
            yp.zero_point, 0, 255));
      ir::Node lut;
      lut.name = node.name + "/" + val(x).name + "/requantize";
      lut.op_type = "LookupU8";
      lut.domain = "lithe";
      lut.opset = 1;
      const int out = rw_.add_value(lut.name, {DType::kUInt8, true, val(x).type.dims});
      lut.inputs = {xu, rw_.add_constant(lut.name + "/table", std::move(table))};
      lut.outputs = {out};
      rw_.add_node(std::move(lut));
      x = out;
    }
    const int yu = rw_.add_value(val(y).name + "/u8", {DType::kUInt8, true, val(y).type.dims});
    node.outputs = {yu};
    rw_.replace_node(static_cast<int>(n), std::move(node));
    produced_as_uint8(y, yu);
  }

  // Add / Mul of two uint8 values (broadcasting as the float op): lithe.QBinaryU8.
  void quantize_binary(size_t n) {
    const ir::Node& node = g_.nodes[n];
    const std::string op = node.op_type;
    two_operand_u8(n, node.op_type == "Add" ? "add" : "mul", "QBinaryU8", &op);
  }

  // MatMul of two uint8 values (batches broadcast as the float op): lithe.QMatMulU8.
  void quantize_matmul(size_t n) { two_operand_u8(n, "qmatmul", "QMatMulU8", nullptr); }

  // Node n (inputs a, b, output y) as lithe.<op_type> on the uint8 forms of its operands:
  // a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, with attribute `op` when given. One
  // record per input (x: that input, y: the output), as for Concat.
  void two_operand_u8(size_t n, const char* record_op, const char* op_type, const std::string* op) {
    const ir::Node& node = g_.nodes[n];
    const int a = node.inputs[0], b = node.inputs[1], y = node.outputs[0];
    if (record_)
      for (int x : {a, b})
        record_->push_back({node.name, record_op, val(x).name, val(y).name, "", params_of(x), params_of(y), {}, {}});
    ir::Node q;
    q.name = node.name;
    q.op_type = op_type;
    q.domain = "lithe";
    q.opset = 1;
    if (op) q.attrs["op"] = ir::Attribute::of_string(*op);
    const auto [as, az] = param_consts(a);
    const int au = uint8_of(a);
    const auto [bs, bz] = param_consts(b);
    const auto [ys, yz] = param_consts(y);
    q.inputs = {au, as, az, uint8_of(b), bs, bz, ys, yz};
    const int yu = rw_.add_value(val(y).name + "/u8", {DType::kUInt8, true, val(y).type.dims});
    q.outputs = {yu};
    rw_.replace_node(static_cast<int>(n), std::move(q));
    produced_as_uint8(y, yu);
  }

  ir::Graph& g_;
  const std::map<std::string, quant::Histogram>& hist_;
  const QuantizeOptions& opts_;
  std::vector<QuantizedLayer>* record_;
  passes::Rewriter rw_;
  std::vector<QKind> kind_;
  std::map<int, int> q_of_;                    // float value -> its uint8 form
  std::map<int, std::pair<int, int>> consts_;  // float value -> its scale, zero point
  std::map<int, int> same_params_;  // a max pool's output -> its input (same scale)
};

// A QuantizeLinear or DequantizeLinear (per `op`) with one constant float32 scale and one
// constant uint8 zero point.
bool per_tensor_u8(const ir::Graph& g, const ir::Node& n, const char* op) {
  if (!n.domain.empty() || n.op_type != op || n.inputs.size() != 3 || n.outputs.size() != 1)
    return false;
  const Tensor* s = passes::constant_of(g, n.inputs[1]);
  const Tensor* z = passes::constant_of(g, n.inputs[2]);
  return s && z && s->numel() == 1 && z->numel() == 1 && s->dtype() == DType::kFloat32 &&
         z->dtype() == DType::kUInt8;
}

// For a float node computing each output element from the same element of one input (a
// unary elementwise op, or a binary one with a constant operand of one element or of one
// per channel of the last axis, the output shaped as that input): that input's value id,
// else -1. *channels: 1, or the last axis's size for a per-channel operand.
int pointwise_input(const ir::Graph& g, const ir::Node& n, int64_t* channels) {
  static const char* kBinary[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu"};
  *channels = 1;
  if (!n.domain.empty() || n.outputs.size() != 1 || n.inputs.empty() || ir::has_subgraph(n))
    return -1;
  const bool unary = ops::is_unary_elementwise(n.op_type);
  const bool binary = n.inputs.size() == 2 && std::any_of(std::begin(kBinary), std::end(kBinary),
                                                          [&](const char* o) { return n.op_type == o; });
  if (!unary && !binary) return -1;
  int in = -1;
  const Tensor* per_channel = nullptr;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const int v = n.inputs[i];
    if (v < 0) continue;
    const Tensor* c = passes::constant_of(g, v);
    if (c && c->numel() == 1 && (i > 0 || binary)) continue;  // a scalar parameter
    if (c && binary && c->numel() > 1 && !per_channel) {        // checked below
      per_channel = c;
      continue;
    }
    if (in >= 0 || c) return -1;
    in = v;
  }
  if (in < 0 || (unary && in != n.inputs[0])) return -1;
  const ir::TensorType& it = g.values[static_cast<size_t>(in)].type;
  const ir::TensorType& ot = g.values[static_cast<size_t>(n.outputs[0])].type;
  if (it.dtype != DType::kFloat32 || ot.dtype != DType::kFloat32 || !it.fully_known() ||
      ot.dims != it.dims)
    return -1;
  if (per_channel) {
    // Broadcast along the last axis only: [C] or [1, ..., 1, C].
    const Shape& cs = per_channel->shape();
    if (it.dims.empty() || cs.empty() || cs.size() > it.dims.size() || cs.back() != it.dims.back() ||
        per_channel->numel() != cs.back())
      return -1;
    *channels = cs.back();
  }
  return in;
}

// Runs node n's reference kernel with input `var` bound to `x` and the others constants.
Tensor run_reference(const ir::Graph& g, const ir::Node& n, int var, const Tensor& x) {
  const ops::OpDef* op = ops::find_op(n.domain, n.op_type);
  if (!op) fail(n.label(), ": no kernel");
  std::vector<const Tensor*> in(n.inputs.size(), nullptr);
  std::vector<ir::TensorType> types(n.inputs.size());
  std::vector<const ir::TensorType*> type_ptrs(n.inputs.size(), nullptr);
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (n.inputs[i] < 0) continue;
    in[i] = n.inputs[i] == var ? &x : passes::constant_of(g, n.inputs[i]);
    types[i] = {in[i]->dtype(), true, in[i]->shape()};
    type_ptrs[i] = &types[i];
  }
  const std::vector<ir::TensorType> out = ops::infer_node(n, *op, type_ptrs, in);
  Tensor y(out.at(0).dtype, out.at(0).dims);
  ops::ComputeContext ctx(n, in, {&y}, nullptr);
  op->compute(ctx);
  return y;
}

}  // namespace

std::vector<std::string> fold_lookup_chains(ir::Graph& g) {
  passes::Rewriter rw(g);
  std::vector<std::string> folded;
  std::set<int> removed;
  for (size_t qi = 0; qi < g.nodes.size(); ++qi) {
    const ir::Node& q = g.nodes[qi];
    if (!per_tensor_u8(g, q, "QuantizeLinear")) continue;
    // Back from Q's input through pointwise nodes to a DequantizeLinear; each value between
    // two chain nodes has no other reader.
    std::vector<int> chain;  // node ids, last first
    int v = q.inputs[0], dq = -1;
    int64_t channels = 1;  // > 1: a per-channel table (some op has a per-channel operand)
    bool mixed = false;
    for (;;) {
      const int p = g.values[static_cast<size_t>(v)].producer;
      if (p < 0 || removed.count(p)) break;
      const ir::Node& pn = g.nodes[static_cast<size_t>(p)];
      if (v != q.inputs[0] &&
          (g.values[static_cast<size_t>(v)].consumers.size() != 1 || passes::is_graph_output(g, v)))
        break;
      if (per_tensor_u8(g, pn, "DequantizeLinear")) {
        dq = p;
        break;
      }
      int64_t ch = 1;
      const int in = pointwise_input(g, pn, &ch);
      if (in < 0) break;
      if (ch > 1) {
        mixed = mixed || (channels > 1 && ch != channels);
        channels = ch;
      }
      chain.push_back(p);
      v = in;
    }
    if (dq < 0 || chain.empty() || mixed) continue;
    // The table: every uint8 code through DQ, the chain and Q, with their reference kernels
    // (per channel: the codes as rows of `channels` equal values, the table transposed to
    // [channels, 256]).
    const ir::Node& d = g.nodes[static_cast<size_t>(dq)];
    Tensor codes(DType::kUInt8, channels > 1 ? Shape{256, channels} : Shape{256});
    for (int64_t i = 0; i < codes.numel(); ++i)
      codes.data<uint8_t>()[i] = static_cast<uint8_t>(i / channels);
    Tensor cur = run_reference(g, d, d.inputs[0], codes);
    int var = d.outputs[0];
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const ir::Node& cn = g.nodes[static_cast<size_t>(*it)];
      cur = run_reference(g, cn, var, cur);
      var = cn.outputs[0];
    }
    Tensor table = run_reference(g, q, var, cur).reshaped(Shape{256 * channels});
    Tensor index;
    if (channels > 1) {
      // The distinct tables ([T, 256], T <= 256) and each channel's (index [C]).
      std::vector<std::vector<uint8_t>> distinct;
      index = Tensor(DType::kUInt8, Shape{channels});
      for (int64_t c = 0; c < channels && distinct.size() <= 256; ++c) {
        std::vector<uint8_t> row(256);
        for (int64_t i = 0; i < 256; ++i) row[static_cast<size_t>(i)] = table.data<uint8_t>()[i * channels + c];
        auto it = std::find(distinct.begin(), distinct.end(), row);
        if (it == distinct.end()) it = distinct.insert(distinct.end(), std::move(row));
        index.data<uint8_t>()[c] = static_cast<uint8_t>(it - distinct.begin());
      }
      if (distinct.size() > 256) continue;  // more tables than an index byte names
      table = Tensor(DType::kUInt8, Shape{static_cast<int64_t>(distinct.size()), 256});
      for (size_t k = 0; k < distinct.size(); ++k)
        std::copy(distinct[k].begin(), distinct[k].end(), table.data<uint8_t>() + 256 * k);
    }
    ir::Node lut;
    lut.name = q.name + "/lookup";
    lut.op_type = "LookupU8";
    lut.domain = "lithe";
    lut.opset = 1;
    lut.inputs = {d.inputs[0], rw.add_constant(q.name + "/table", std::move(table))};
    if (channels > 1) lut.inputs.push_back(rw.add_constant(q.name + "/index", std::move(index)));
    lut.outputs = q.outputs;
    rw.replace_node(static_cast<int>(qi), std::move(lut));
    for (int c : chain) folded.push_back(g.nodes[static_cast<size_t>(c)].name);
    // The chain (and the DQ) go when Q was their only reader.
    const ir::Value& last = g.values[static_cast<size_t>(q.inputs[0])];
    if (last.consumers.size() == 1 && !passes::is_graph_output(g, q.inputs[0])) {
      for (int c : chain) {
        rw.remove_node(c);
        removed.insert(c);
      }
      const ir::Value& dv = g.values[static_cast<size_t>(d.outputs[0])];
      if (dv.consumers.size() == 1 && !passes::is_graph_output(g, d.outputs[0])) {
        rw.remove_node(dq);
        removed.insert(dq);
      }
    }
  }
  if (!rw.empty()) rw.apply(g);
  return folded;
}

std::vector<LayerPrecision> quantize_graph(ir::Graph& g,
                                           const std::map<std::string, quant::Histogram>& hist,
                                           const QuantizeOptions& opts,
                                           std::vector<QuantizedLayer>* quantized) {
  std::vector<LayerPrecision> report = Quantizer(g, hist, opts, quantized).run();
  const std::vector<std::string> lut = fold_lookup_chains(g);
  const std::set<std::string> in_lut(lut.begin(), lut.end());
  for (LayerPrecision& l : report)
    if (in_lut.count(l.node)) l = {l.node, "int8", "uint8 lookup table"};
  return report;
}

// Both ranges become sqrt(r1_c * r2_c) (Nagel et al.'s data-free equalization).
int equalize_depthwise_pairs(ir::Graph& g) {
  int pairs = 0;
  for (ir::Node& d : g.nodes) {
    if (d.domain != "lithe" || d.op_type != "ConvNhwc" || d.inputs.size() < 2 ||
        d.inputs.size() > 3 || d.outputs.size() != 1)
      continue;
    const std::string act = ops::NodeAttrs(d).attr_string("activation", "");
    if ((!act.empty() && act != "Relu") || d.attrs.count("activation_affine")) continue;
    const int y = d.outputs[0];
    ir::Value& wv = g.values[static_cast<size_t>(d.inputs[1])];
    if (!wv.constant || wv.constant->dtype() != DType::kFloat32 || wv.constant->rank() != 4 ||
        wv.consumers.size() != 1)
      continue;
    const Shape ws = wv.constant->shape();
    const int64_t ch = ws[0], taps = ws[2] * ws[3];
    if (ws[1] != 1 || ops::NodeAttrs(d).attr_int("group", 1) != ch) continue;  // depthwise
    const ir::Value& yv = g.values[static_cast<size_t>(y)];
    if (yv.consumers.size() != 1 || passes::is_graph_output(g, y)) continue;
    ir::Node& p = g.nodes[static_cast<size_t>(yv.consumers[0])];
    if (p.domain != "lithe" || p.op_type != "ConvNhwc" || p.inputs.size() < 2 || p.inputs[0] != y ||
        ops::NodeAttrs(p).attr_int("group", 1) != 1 || (p.inputs.size() > 3 && p.inputs[3] == y))
      continue;
    ir::Value& pw = g.values[static_cast<size_t>(p.inputs[1])];
    if (!pw.constant || pw.constant->dtype() != DType::kFloat32 || pw.constant->rank() != 4 ||
        pw.constant->shape()[1] != ch || pw.consumers.size() != 1)
      continue;
    ir::Value* bv = d.inputs.size() > 2 && d.inputs[2] >= 0 ? &g.values[static_cast<size_t>(d.inputs[2])] : nullptr;
    if (bv && (!bv->constant || bv->consumers.size() != 1)) continue;
    const Shape ps = pw.constant->shape();
    const int64_t ptaps = ps[2] * ps[3];
    float* wd = wv.constant->data<float>();
    float* pd = pw.constant->data<float>();
    for (int64_t c = 0; c < ch; ++c) {
      float r1 = 0, r2 = 0;
      for (int64_t t = 0; t < taps; ++t) r1 = std::max(r1, std::fabs(wd[c * taps + t]));
      for (int64_t m = 0; m < ps[0]; ++m)
        for (int64_t t = 0; t < ptaps; ++t) r2 = std::max(r2, std::fabs(pd[(m * ch + c) * ptaps + t]));
      if (!(r1 > 0) || !(r2 > 0) || !std::isfinite(r1) || !std::isfinite(r2)) continue;
      const float sc = std::sqrt(r1 / r2);
      for (int64_t t = 0; t < taps; ++t) wd[c * taps + t] /= sc;
      if (bv) bv->constant->data<float>()[c] /= sc;
      for (int64_t m = 0; m < ps[0]; ++m)
        for (int64_t t = 0; t < ptaps; ++t) pd[(m * ch + c) * ptaps + t] *= sc;
    }
    ++pairs;
  }
  return pairs;
}

QuantizeOptions quantize_options(const CalibrationOptions& opts) {
  QuantizeOptions qo;
  qo.method = quant::parse_calib_method(opts.method);
  if (!(opts.percentile > 50 && opts.percentile <= 100))
    fail("calibration percentile ", opts.percentile, " must be in (50, 100]");
  qo.percentile = opts.percentile;
  return qo;
}

Int8Summary build_int8(ir::Graph& g, const CalibrationOptions& opts, const std::string& model_sha256,
                       const std::set<std::string>& keep_fp32) {
  Int8Summary sum;
  QuantizeOptions qo = quantize_options(opts);
  qo.keep_fp32 = keep_fp32;
  sum.method = quant::calib_method_name(qo.method);
  sum.equalized = equalize_depthwise_pairs(g);
  const std::map<std::string, quant::Histogram> hist = tuned_calibration(g, opts, model_sha256, &sum);
  sum.layers = quantize_graph(g, hist, qo, &sum.quantized);
  return sum;
}

}  // namespace lithe::build
