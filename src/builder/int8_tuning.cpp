#include "builder/int8_tuning.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/file_io.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "runtime/executor.hpp"

namespace lithe::build {
namespace {

// The smallest factor: a channel is magnified at most 64 times (its codes then still span
// a quarter of a code of the widest channel's step, and dead channels stay small).
constexpr float kMinScale = 1.0f / 64;

const ir::Value& val(const ir::Graph& g, int v) { return g.values[static_cast<size_t>(v)]; }

// A float constant of one element that only node `reader` reads.
bool own_scalar(const ir::Graph& g, int v) {
  const Tensor* t = v >= 0 ? passes::constant_of(g, v) : nullptr;
  return t && t->dtype() == DType::kFloat32 && t->numel() == 1 && val(g, v).consumers.size() == 1;
}

// A float weight (or bias) constant read by one node only.
const Tensor* own_constant(const ir::Graph& g, int v, int rank) {
  const Tensor* t = v >= 0 ? passes::constant_of(g, v) : nullptr;
  if (!t || t->dtype() != DType::kFloat32 || (rank > 0 && t->rank() != rank) ||
      val(g, v).consumers.size() != 1)
    return nullptr;
  for (int64_t i = 0; i < t->numel(); ++i)
    if (!std::isfinite(t->data<float>()[i])) return nullptr;
  return t;
}

// ConvNhwc, or a Conv of the graph before the layout pass (--emit-qdq-onnx replays there).
bool is_conv(const ir::Node& n) {
  return (n.domain == "lithe" && n.op_type == "ConvNhwc") ||
         ((n.domain.empty() || n.domain == "lithe") && n.op_type == "Conv");
}

// Whether conv n reading `c` channels is depthwise (one input channel per output channel).
bool depthwise(const ir::Graph& g, const ir::Node& n, int64_t c) {
  const Tensor* w = passes::constant_of(g, n.inputs[1]);
  return w && w->shape()[0] == c && w->shape()[1] == 1 && ops::NodeAttrs(n).attr_int("group", 1) == c;
}

// Conv n may read an equalized value as X: constant weights of its own, group 1 or
// depthwise, and the value read nowhere else by it.
bool equalizable_reader(const ir::Graph& g, const ir::Node& n, int v, int64_t c) {
  if (!is_conv(n) || n.inputs.size() < 2 || n.inputs[0] != v || n.attrs.count("weight_layout"))
    return false;
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (n.inputs[i] == v) return false;
  const Tensor* w = own_constant(g, n.inputs[1], 4);
  if (!w) return false;
  return depthwise(g, n, c) || (ops::NodeAttrs(n).attr_int("group", 1) == 1 && w->shape()[1] == c);
}

// Conv n's output can be divided per channel: linear or Relu (positively homogeneous), no
// residual input, weights and bias its own.
bool equalizable_conv_producer(const ir::Graph& g, const ir::Node& n, int64_t c) {
  if (!is_conv(n) || n.inputs.size() < 2 || n.inputs.size() > 3 || n.outputs.size() != 1) return false;
  const std::string act = ops::NodeAttrs(n).attr_string("activation", "");
  if ((!act.empty() && act != "Relu") || n.attrs.count("activation_affine")) return false;
  if (n.attrs.count("weight_layout")) return false;
  const Tensor* w = own_constant(g, n.inputs[1], 4);
  if (!w || w->shape()[0] != c) return false;
  return n.inputs.size() < 3 || n.inputs[2] < 0 || own_constant(g, n.inputs[2], 0);
}

// For a Mul or Add node (default domain) of a float value by a one-element constant of its
// own: the float input's id, else -1.
int scalar_operand_input(const ir::Graph& g, const ir::Node& n, const char* op) {
  if (!n.domain.empty() || n.op_type != op || n.inputs.size() != 2 || n.outputs.size() != 1) return -1;
  for (int i = 0; i < 2; ++i)
    if (own_scalar(g, n.inputs[static_cast<size_t>(i)]) &&
        !passes::constant_of(g, n.inputs[static_cast<size_t>(1 - i)]))
      return n.inputs[static_cast<size_t>(1 - i)];
  return -1;
}

int const_operand(const ir::Graph& g, const ir::Node& n) {
  return passes::constant_of(g, n.inputs[0]) ? n.inputs[0] : n.inputs[1];
}

// The site of value v, or false.
bool site_of(const ir::Graph& g, int v, ChannelScaling* s) {
  const ir::Value& vv = val(g, v);
  if (vv.type.dtype != DType::kFloat32 || !vv.type.fully_known() || vv.type.dims.size() != 4 ||
      vv.producer < 0 || vv.consumers.empty() || passes::is_graph_output(g, v))
    return false;
  const int64_t c = vv.type.dims[3];
  if (c < 2) return false;
  std::vector<int> readers = vv.consumers;
  std::sort(readers.begin(), readers.end());
  if (std::adjacent_find(readers.begin(), readers.end()) != readers.end()) return false;
  for (int r : readers)
    if (!equalizable_reader(g, g.nodes[static_cast<size_t>(r)], v, c)) return false;
  const ir::Node& p = g.nodes[static_cast<size_t>(vv.producer)];
  *s = {};
  s->value = vv.name;
  s->producer = p.name;
  if (equalizable_conv_producer(g, p, c)) {
    // Only the convs the layout pass made channels-last produce NHWC values.
    if (p.domain != "lithe") return false;
  } else if (int u = scalar_operand_input(g, p, "Add"); u >= 0) {
    const ir::Value& uv = val(g, u);
    if (uv.producer < 0 || uv.consumers.size() != 1 || passes::is_graph_output(g, u) ||
        uv.type.dims != vv.type.dims)
      return false;
    const ir::Node& m = g.nodes[static_cast<size_t>(uv.producer)];
    if (scalar_operand_input(g, m, "Mul") < 0) return false;
    s->mul = m.name;
    s->add = p.name;
  } else if (scalar_operand_input(g, p, "Mul") >= 0) {
    s->mul = p.name;
  } else {
    return false;
  }
  for (int r : readers) s->readers.push_back(g.nodes[static_cast<size_t>(r)].name);
  s->scales.assign(static_cast<size_t>(c), 1.0f);
  return true;
}

// Every channel's [lo, hi] (channels-last: the last axis).
struct ChannelRanges {
  std::vector<float> lo, hi;
  void add(const float* x, int64_t n, int64_t c) {
    if (lo.empty()) lo.assign(static_cast<size_t>(c), 0.0f), hi.assign(static_cast<size_t>(c), 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      if (!std::isfinite(v)) continue;
      const size_t k = static_cast<size_t>(i % c);
      lo[k] = std::min(lo[k], v);
      hi[k] = std::max(hi[k], v);
    }
  }
};

std::map<std::string, int> node_index(const ir::Graph& g) {
  std::map<std::string, int> idx;
  for (size_t i = 0; i < g.nodes.size(); ++i) idx[g.nodes[i].name] = static_cast<int>(i);
  return idx;
}

// A copy of constant v with element i of its first-axis rows (row length `per`) multiplied by
// f(i), stored as v's new constant.
void scale_rows(ir::Graph& g, int v, int64_t rows, int64_t per, const std::function<float(int64_t, int64_t)>& f) {
  ir::Value& cv = g.values[static_cast<size_t>(v)];
  Tensor t(DType::kFloat32, cv.constant->shape());
  const float* src = cv.constant->data<float>();
  float* dst = t.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < per; ++i) dst[r * per + i] = src[r * per + i] * f(r, i);
  cv.constant = std::move(t);
}

}  // namespace

std::vector<ChannelScaling> equalization_sites(const ir::Graph& g) {
  std::vector<ChannelScaling> sites;
  for (size_t v = 0; v < g.values.size(); ++v) {
    ChannelScaling s;
    if (site_of(g, static_cast<int>(v), &s)) sites.push_back(std::move(s));
  }
  return sites;
}

std::vector<ChannelScaling> measure_equalization(const ir::Graph& g,
                                                 const std::vector<std::vector<Tensor>>& samples,
                                                 int threads) {
  std::vector<ChannelScaling> sites = equalization_sites(g);
  if (sites.empty()) return {};
  std::map<int, size_t> site_of_value;
  for (size_t i = 0; i < sites.size(); ++i)
    for (size_t v = 0; v < g.values.size(); ++v)
      if (g.values[v].name == sites[i].value) site_of_value[static_cast<int>(v)] = i;
  std::vector<ChannelRanges> ranges(sites.size());
  {
    const std::unique_ptr<runtime::Session> run = fast_session(g, threads, "calibration");
    run->set_observer([&](int v, const Tensor& t) {
      auto it = site_of_value.find(v);
      if (it == site_of_value.end() || t.dtype() != DType::kFloat32) return;
      ranges[it->second].add(t.data<float>(), t.numel(),
                             static_cast<int64_t>(sites[it->second].scales.size()));
    });
    for (const std::vector<Tensor>& s : samples) {
      if (s.size() != g.inputs.size())
        fail("calibration sample has ", s.size(), " input(s), the model takes ", g.inputs.size());
      for (size_t i = 0; i < s.size(); ++i) run->input(i) = s[i];
      run->run();
    }
  }
  std::vector<ChannelScaling> out;
  const std::map<std::string, int> idx = node_index(g);
  for (size_t i = 0; i < sites.size(); ++i) {
    const ChannelRanges& r = ranges[i];
    if (r.lo.empty()) continue;
    const float lo = *std::min_element(r.lo.begin(), r.lo.end());
    const float hi = *std::max_element(r.hi.begin(), r.hi.end());
    // Group-1 readers pay for a factor in their weights' precision: half of it (in the log
    // domain) goes to them.
    bool dense_reader = false;
    for (const std::string& rn : sites[i].readers)
      dense_reader = dense_reader || !depthwise(g, g.nodes[static_cast<size_t>(idx.at(rn))],
                                                static_cast<int64_t>(r.lo.size()));
    bool any = false;
    for (size_t c = 0; c < r.lo.size(); ++c) {
      float f = std::max(lo < 0 ? r.lo[c] / lo : 0.0f, hi > 0 ? r.hi[c] / hi : 0.0f);
      f = std::clamp(f, kMinScale, 1.0f);
      if (dense_reader) f = std::sqrt(f);
      // Powers of two keep the FP32 result exact.
      f = std::exp2(std::round(std::log2(f)));
      sites[i].scales[c] = f;
      any = any || f != 1.0f;
    }
    if (any) out.push_back(std::move(sites[i]));
  }
  return out;
}

void apply_equalization(ir::Graph& g, const std::vector<ChannelScaling>& sites, bool nchw) {
  const std::map<std::string, int> idx = node_index(g);
  auto node = [&](const ChannelScaling& s, const std::string& name) -> ir::Node& {
    auto it = idx.find(name);
    if (it == idx.end())
      fail("channel equalization of '", s.value, "': the graph has no node '", name, "'");
    return g.nodes[static_cast<size_t>(it->second)];
  };
  for (const ChannelScaling& s : sites) {
    const int64_t c = static_cast<int64_t>(s.scales.size());
    const std::vector<float>& f = s.scales;
    auto bad = [&](const ir::Node& n, const char* why) {
      fail("channel equalization of '", s.value, "': ", n.label(), " ", why);
    };
    if (s.mul.empty()) {
      ir::Node& p = node(s, s.producer);
      if (!equalizable_conv_producer(g, p, c)) bad(p, "is not a linear or Relu conv of its own weights");
      const Tensor& w = *passes::constant_of(g, p.inputs[1]);
      scale_rows(g, p.inputs[1], c, w.numel() / c,
                 [&](int64_t r, int64_t) { return 1.0f / f[static_cast<size_t>(r)]; });
      if (p.inputs.size() > 2 && p.inputs[2] >= 0)
        scale_rows(g, p.inputs[2], c, 1, [&](int64_t r, int64_t) { return 1.0f / f[static_cast<size_t>(r)]; });
    } else {
      // The affine map's scalar constants become per-channel vectors.
      for (const std::string* name : {&s.mul, &s.add}) {
        if (name->empty()) continue;
        ir::Node& n = node(s, *name);
        if (scalar_operand_input(g, n, name == &s.mul ? "Mul" : "Add") < 0)
          bad(n, "has no one-element constant operand of its own");
        const int k = const_operand(g, n);
        const float a = passes::constant_of(g, k)->data<float>()[0];
        const Shape shape = nchw ? Shape{c, 1, 1} : Shape{c};
        Tensor t(DType::kFloat32, shape);
        for (int64_t i = 0; i < c; ++i) t.data<float>()[i] = a / f[static_cast<size_t>(i)];
        ir::Value& kv = g.values[static_cast<size_t>(k)];
        kv.constant = std::move(t);
        kv.type = {DType::kFloat32, true, shape};
      }
    }
    for (const std::string& rn : s.readers) {
      ir::Node& r = node(s, rn);
      const Tensor* w = passes::constant_of(g, r.inputs.size() > 1 ? r.inputs[1] : -1);
      if (!w || w->dtype() != DType::kFloat32 || w->rank() != 4)
        bad(r, "has no constant 4-D weights");
      const Shape ws = w->shape();
      const int64_t taps = ws[2] * ws[3];
      if (depthwise(g, r, c)) {
        scale_rows(g, r.inputs[1], c, taps, [&](int64_t row, int64_t) { return f[static_cast<size_t>(row)]; });
      } else if (ws[1] == c && ops::NodeAttrs(r).attr_int("group", 1) == 1) {
        scale_rows(g, r.inputs[1], ws[0], c * taps,
                   [&](int64_t, int64_t i) { return f[static_cast<size_t>(i / taps)]; });
      } else {
        bad(r, "reads another number of channels");
      }
    }
  }
}

std::map<std::string, quant::Histogram> tuned_calibration(ir::Graph& g,
                                                          const CalibrationOptions& opts,
                                                          const std::string& model_sha256,
                                                          Int8Summary* sum,
                                                          const std::function<std::vector<std::vector<Tensor>>()>& samples) {
  // Histograms of the equalized graph: a cache without the scales must not serve.
  const std::string key = model_sha256 + "|" + opts.key + "|channel-equalization 1";
  std::map<std::string, quant::Histogram> hist;
  std::map<std::string, std::vector<float>> cached;
  if (!opts.cache.empty() && std::ifstream(opts.cache).good() &&
      quant::read_calib_cache(opts.cache, key, &hist, &cached)) {
    sum->from_cache = true;
    std::vector<ChannelScaling> sites = equalization_sites(g);
    std::vector<ChannelScaling> used;
    for (ChannelScaling& s : sites) {
      auto it = cached.find(s.value);
      if (it == cached.end()) continue;
      if (it->second.size() != s.scales.size())
        fail(opts.cache, ": channel scales of '", s.value, "' have ", it->second.size(),
             " entries, the value has ", s.scales.size(), " channels");
      s.scales = it->second;
      used.push_back(std::move(s));
      cached.erase(it);
    }
    if (!cached.empty())
      fail(opts.cache, ": channel scales of '", cached.begin()->first,
           "', which this graph cannot equalize");
    apply_equalization(g, used);
    sum->channel_scaling = std::move(used);
    return hist;
  }
  if (!samples && !opts.load) fail("precision int8 needs calibration data (--calib DIR)");
  const std::vector<std::vector<Tensor>> data = samples ? samples() : opts.load(g);
  if (data.empty()) fail("precision int8: no calibration samples");
  sum->channel_scaling = measure_equalization(g, data, opts.threads);
  apply_equalization(g, sum->channel_scaling);
  hist = calibrate(g, data, opts.threads, opts.progress);
  sum->samples = data.size();
  if (!opts.cache.empty()) {
    std::map<std::string, std::vector<float>> scales;
    for (const ChannelScaling& s : sum->channel_scaling) scales[s.value] = s.scales;
    write_file_atomically(opts.cache, quant::calib_cache_json(hist, key, scales));
  }
  return hist;
}

}  // namespace lithe::build
