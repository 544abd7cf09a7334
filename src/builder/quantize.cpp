#include "builder/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "kernels/cpu.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"

namespace lithe::build {

std::map<std::string, quant::Histogram> calibrate(
    const ir::Graph& g, const std::vector<std::vector<Tensor>>& samples, int threads,
    const std::function<void(size_t, size_t)>& progress) {
  auto graph = std::make_shared<ir::Graph>(g);
  const plan::MemoryPlan plan = plan::plan_memory(*graph);
  if (!runtime::Program::supports(*graph, plan))
    fail("calibration needs a graph the fast executor runs (static shapes, no control flow)");
  auto program = std::make_shared<runtime::Program>(graph, plan, kernels::active_isa());
  runtime::Session session(program, threads);
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

// Writes `text` to a temporary file beside `path`, then renames it: no half-written cache.
void write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(path, ": cannot write the calibration cache");
    f << text;
    if (!f.flush()) fail(path, ": cannot write the calibration cache");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, ": cannot write the calibration cache");
  }
}

// A scalar constant.
template <class T>
Tensor scalar(DType dt, T v) {
  Tensor t(dt, Shape{});
  t.data<T>()[0] = v;
  return t;
}

// Activation values an 8-bit code can hold: the sum of K products of 255 * 127 must stay
// below 2^31 in the int32 accumulators.
constexpr int64_t kMaxReduction = (int64_t{1} << 31) / (255 * 128);

class Quantizer {
 public:
  Quantizer(ir::Graph& g, const std::map<std::string, quant::Histogram>& hist,
            const QuantizeOptions& opts)
      : g_(g), hist_(hist), opts_(opts), rw_(g) {}

  std::vector<LayerPrecision> run() {
    std::vector<LayerPrecision> report;
    std::vector<char> quantized(g_.nodes.size(), 0);
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      const ir::Node& node = g_.nodes[n];
      std::string why = eligible(node);
      if (why.empty()) quantized[n] = 1;
      report.push_back({node.name, why.empty() ? "int8" : "fp32", why});
    }
    // Quantize in topological order; a conv reads the uint8 form of its input: the output of
    // a quantized producer, or a QuantizeLinear of a float value (made once per value).
    for (size_t n = 0; n < g_.nodes.size(); ++n)
      if (quantized[n]) quantize_conv(n, quantized);
    if (rw_.empty()) return report;
    rw_.apply(g_);
    return report;
  }

 private:
  const quant::Histogram* hist_of(int v) const {
    auto it = hist_.find(g_.values[static_cast<size_t>(v)].name);
    return it == hist_.end() ? nullptr : &it->second;
  }

  bool f32_static(int v) const {
    if (v < 0) return false;
    const ir::TensorType& t = g_.values[static_cast<size_t>(v)].type;
    return t.dtype == DType::kFloat32 && t.fully_known();
  }

  // Empty when node can run as INT8, else why not.
  std::string eligible(const ir::Node& n) const {
    if (opts_.keep_fp32.count(n.name)) return "kept in fp32 (mixed precision)";
    if (n.domain != "lithe" || n.op_type != "ConvNhwc") return "no int8 kernel";
    if (n.inputs.size() < 2 || n.outputs.size() != 1) return "no int8 kernel";
    if (n.attrs.count("weight_layout")) return "weights already packed";
    const int x = n.inputs[0], w = n.inputs[1], y = n.outputs[0];
    const int b = n.inputs.size() > 2 ? n.inputs[2] : -1, z = n.inputs.size() > 3 ? n.inputs[3] : -1;
    const Tensor* wt = passes::constant_of(g_, w);
    if (!wt || wt->dtype() != DType::kFloat32 || wt->rank() != 4) return "weights not constant";
    if (b >= 0 && !passes::constant_of(g_, b)) return "bias not constant";
    if (!f32_static(x) || !f32_static(y) || (z >= 0 && !f32_static(z))) return "dynamic shapes";
    if (!hist_of(x) || !hist_of(y) || (z >= 0 && !hist_of(z))) return "not calibrated";
    const Shape& ws = wt->shape();
    if (ws[1] * ws[2] * ws[3] > kMaxReduction) return "reduction too long for int32";
    for (int64_t i = 0; i < wt->numel(); ++i)
      if (!std::isfinite(wt->data<float>()[i])) return "non-finite weights";
    return {};
  }

  quant::QParams params_of(int v) const {
    return quant::uint8_params(quant::choose_range(*hist_of(v), opts_.method, opts_.percentile));
  }

  // The uint8 form of float value v, with its quantization parameters.
  int uint8_of(int v) {
    auto it = q_of_.find(v);
    if (it != q_of_.end()) return it->second;
    const ir::Value& val = g_.values[static_cast<size_t>(v)];
    ir::Node q;
    q.name = val.name + "/quantize";
    q.op_type = "QuantizeLinear";
    q.opset = opset();
    const int qv = rw_.add_value(val.name + "/u8", {DType::kUInt8, true, val.type.dims});
    const auto [sc, zc] = param_consts(v);
    q.inputs = {v, sc, zc};
    q.outputs = {qv};
    rw_.add_node(std::move(q));
    q_of_[v] = qv;
    return qv;
  }

  int opset() const { return g_.opsets.count("") ? std::max(13, g_.opsets.at("")) : 13; }

  // The scale and zero-point constants of float value v (made once per value).
  std::pair<int, int> param_consts(int v) {
    auto it = consts_.find(v);
    if (it != consts_.end()) return it->second;
    const quant::QParams p = params_of(v);
    const std::string& name = g_.values[static_cast<size_t>(v)].name;
    const int s = rw_.add_constant(name + "/scale", scalar<float>(DType::kFloat32, p.scale));
    const int z = rw_.add_constant(name + "/zero_point",
                                   scalar<uint8_t>(DType::kUInt8, static_cast<uint8_t>(p.zero_point)));
    return consts_[v] = {s, z};
  }

  void quantize_conv(size_t n, const std::vector<char>& quantized) {
    ir::Node node = g_.nodes[n];
    const int x = node.inputs[0], w = node.inputs[1], y = node.outputs[0];
    const int b = node.inputs.size() > 2 ? node.inputs[2] : -1;
    const int z = node.inputs.size() > 3 ? node.inputs[3] : -1;
    const Tensor& wt = *passes::constant_of(g_, w);
    const Shape& ws = wt.shape();
    const int64_t m = ws[0], per = ws[1] * ws[2] * ws[3];
    const quant::QParams xp = params_of(x);
    Tensor wq(DType::kInt8, ws), wscale(DType::kFloat32, Shape{m});
    quant::quantize_weights_per_channel(wt.data<float>(), m, per, wq.data<int8_t>(),
                                        wscale.data<float>());
    const std::string& base = node.name;
    ir::Node q;
    q.name = base;
    q.op_type = "QConvNhwc";
    q.domain = "lithe";
    q.opset = 1;
    q.attrs = node.attrs;
    const auto [xs, xz] = param_consts(x);
    const auto [ys, yz] = param_consts(y);
    q.inputs = {uint8_of(x), xs, xz, rw_.add_constant(base + "/w_q8", std::move(wq)), -1, ys, yz};
    const float* wsd = wscale.data<float>();
    q.inputs[4] = rw_.add_constant(base + "/w_scale", std::move(wscale));
    if (b >= 0 || z >= 0) {
      Tensor bq(DType::kInt32, Shape{m});
      const Tensor* bt = b >= 0 ? passes::constant_of(g_, b) : nullptr;
      for (int64_t c = 0; c < m; ++c)
        bq.data<int32_t>()[c] =
            bt ? quant::quantize_bias(bt->data<float>()[c],
                                      static_cast<double>(xp.scale) * wsd[c])
               : 0;
      q.inputs.push_back(rw_.add_constant(base + "/bias_i32", std::move(bq)));
    }
    if (z >= 0) {
      const auto [zs, zz] = param_consts(z);
      q.inputs.insert(q.inputs.end(), {uint8_of(z), zs, zz});
    }
    const ir::Value& yv = g_.values[static_cast<size_t>(y)];
    const int yq = rw_.add_value(yv.name + "/u8", {DType::kUInt8, true, yv.type.dims});
    q.outputs = {yq};
    q_of_[y] = yq;
    rw_.replace_node(static_cast<int>(n), std::move(q));
    // Float readers of y (and the graph outputs) get a DequantizeLinear.
    bool float_use = passes::is_graph_output(g_, y);
    for (int c : yv.consumers) {
      const ir::Node& cn = g_.nodes[static_cast<size_t>(c)];
      if (!quantized[static_cast<size_t>(c)]) float_use = true;
      // A quantized conv reads y as X (index 0) or Z (index 3) only.
      for (size_t i = 0; i < cn.inputs.size(); ++i)
        if (cn.inputs[i] == y && i != 0 && i != 3) float_use = true;
    }
    if (float_use) {
      ir::Node d;
      d.name = yv.name + "/dequantize";
      d.op_type = "DequantizeLinear";
      d.opset = opset();
      d.inputs = {yq, ys, yz};
      d.outputs = {y};
      rw_.add_node(std::move(d));
    }
  }

  ir::Graph& g_;
  const std::map<std::string, quant::Histogram>& hist_;
  const QuantizeOptions& opts_;
  passes::Rewriter rw_;
  std::map<int, int> q_of_;  // float value -> its uint8 form
  std::map<int, std::pair<int, int>> consts_;  // float value -> its scale, zero point
};

}  // namespace

std::vector<LayerPrecision> quantize_graph(ir::Graph& g,
                                           const std::map<std::string, quant::Histogram>& hist,
                                           const QuantizeOptions& opts) {
  return Quantizer(g, hist, opts).run();
}

Int8Summary build_int8(ir::Graph& g, const CalibrationOptions& opts, const std::string& model_sha256,
                       const std::set<std::string>& keep_fp32) {
  Int8Summary sum;
  QuantizeOptions qo;
  qo.method = quant::parse_calib_method(opts.method);
  if (!(opts.percentile > 50 && opts.percentile <= 100))
    fail("calibration percentile ", opts.percentile, " must be in (50, 100]");
  qo.percentile = opts.percentile;
  qo.keep_fp32 = keep_fp32;
  sum.method = quant::calib_method_name(qo.method);
  const std::string key = model_sha256 + "|" + opts.key;
  std::map<std::string, quant::Histogram> hist;
  if (!opts.cache.empty() && std::ifstream(opts.cache).good() &&
      quant::read_calib_cache(opts.cache, key, &hist)) {
    sum.from_cache = true;
  } else {
    if (!opts.load) fail("precision int8 needs calibration data (--calib DIR)");
    const std::vector<std::vector<Tensor>> samples = opts.load(g);
    if (samples.empty()) fail("precision int8: no calibration samples");
    hist = calibrate(g, samples, opts.threads, opts.progress);
    sum.samples = samples.size();
    if (!opts.cache.empty()) write_text_file(opts.cache, quant::calib_cache_json(hist, key));
  }
  sum.layers = quantize_graph(g, hist, qo);
  return sum;
}

}  // namespace lithe::build
