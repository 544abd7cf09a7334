#include "builder/mixed_precision.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "builder/build.hpp"
#include "builder/int8_tuning.hpp"
#include "kernels/cpu.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"

namespace lithe::build {
namespace {

using json = nlohmann::ordered_json;

// Samples by reference (a subset of the loaded ones).
using SampleRefs = std::vector<const std::vector<Tensor>*>;

// Runs `g` with the fast executor (as the engine will) on every sample; the outputs are deep
// copies (the session's are arena views).
std::vector<std::vector<Tensor>> run_all(const ir::Graph& g, const SampleRefs& samples,
                                         int threads) {
  const std::unique_ptr<runtime::Session> run = fast_session(g, threads, "precision best");
  runtime::Session& session = *run;
  const ir::Graph* graph = &g;
  std::vector<std::vector<Tensor>> out;
  for (size_t s = 0; s < samples.size(); ++s) {
    const std::vector<Tensor>& in = *samples[s];
    if (in.size() != graph->inputs.size())
      fail("calibration sample ", s, " has ", in.size(), " input(s), the model takes ",
           graph->inputs.size());
    for (size_t i = 0; i < in.size(); ++i) session.input(i) = in[i];
    session.run();
    std::vector<Tensor> o;
    for (const Tensor& t : session.outputs()) o.push_back(t.clone());
    out.push_back(std::move(o));
  }
  return out;
}

// `count` indices evenly spread over [0, n) (all of them when count >= n).
std::vector<size_t> spread(size_t n, size_t count) {
  std::vector<size_t> idx;
  const size_t k = std::min(n, std::max<size_t>(count, 1));
  for (size_t i = 0; i < k; ++i) idx.push_back(i * n / k);
  return idx;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

int64_t arg_max(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// Output o's error over all samples.
OutputError output_error(const std::string& name, size_t o,
                         const std::vector<std::vector<Tensor>>& want,
                         const std::vector<std::vector<Tensor>>& got) {
  OutputError e;
  e.name = name;
  bool same = true, broken = false, classes = true, is_float = true;
  double ab = 0, aa = 0, bb = 0;
  int64_t rows = 0, flipped = 0, elements = 0, differ = 0;
  for (size_t s = 0; s < want.size(); ++s) {
    const Tensor& a = want[s][o];
    const Tensor& b = got[s][o];
    if (a.dtype() != b.dtype() || a.shape() != b.shape())
      fail("precision best: output '", name, "' changed type or shape in the quantized graph");
    if (same_bytes(a, b)) {
      if (a.dtype() != DType::kFloat32) {
        elements += a.numel();
        is_float = false;
        continue;
      }
    } else {
      same = false;
    }
    if (a.dtype() != DType::kFloat32) {
      // Indices, masks...: the share of elements that differ.
      is_float = false;
      for (int64_t i = 0; i < a.numel(); ++i) differ += a.at_double(i) != b.at_double(i);
      elements += a.numel();
      continue;
    }
    const float* x = a.data<float>();
    const float* y = b.data<float>();
    for (int64_t i = 0; i < a.numel(); ++i) {
      if (!std::isfinite(x[i])) continue;  // nothing to compare with
      if (!std::isfinite(y[i])) {
        broken = true;
        continue;
      }
      ab += static_cast<double>(x[i]) * y[i];
      aa += static_cast<double>(x[i]) * x[i];
      bb += static_cast<double>(y[i]) * y[i];
    }
    classes = classes && a.rank() == 2 && a.dim(1) > 1;
    if (classes)
      for (int64_t r = 0; r < a.dim(0); ++r, ++rows)
        flipped += arg_max(x + r * a.dim(1), a.dim(1)) != arg_max(y + r * a.dim(1), a.dim(1));
  }
  if (!is_float) {
    e.cosine_error =
        elements ? 100.0 * static_cast<double>(differ) / static_cast<double>(elements) : 0;
    return e;
  }
  if (same) return e;  // error 0, even where rounding would make 1 - cosine a hair above it
  double cosine = 1;
  if (aa > 0 || bb > 0) cosine = aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0;
  // Overflowing sums make the cosine NaN: counted as broken.
  e.cosine_error =
      broken || !std::isfinite(cosine) ? 100 : std::clamp(100.0 * (1 - cosine), 0.0, 200.0);
  if (classes && rows) e.top1 = 100.0 * static_cast<double>(flipped) / static_cast<double>(rows);
  return e;
}

// The largest output cosine error: the sensitivity order. Not the top-1 disagreement: one
// layer flips the top class of a few samples at most, which on the few sensitivity samples is
// noise (whether a sample sits near a tie) more than a property of the layer.
double max_cosine_error(const ModelError& m) {
  double c = 0;
  for (const OutputError& o : m.outputs) c = std::max(c, o.cosine_error);
  return c;
}

json error_json(const ModelError& m) {
  json outs = json::array();
  for (const OutputError& o : m.outputs) {
    json j = {{"name", o.name}, {"cosine_error", o.cosine_error}};
    if (o.top1 >= 0) j["top1_disagreement"] = o.top1;
    outs.push_back(j);
  }
  return {{"error", m.error}, {"outputs", outs}};
}

// "0.0123" for errors: enough digits for small ones.
std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, v != 0 && std::fabs(v) < 0.01 ? "%.2e" : "%.3f", v);
  return b;
}

}  // namespace

ModelError model_error(const std::vector<std::string>& names,
                       const std::vector<std::vector<Tensor>>& want,
                       const std::vector<std::vector<Tensor>>& got) {
  if (want.size() != got.size())
    fail("precision best: ", got.size(), " results for ", want.size(), " samples");
  for (size_t s = 0; s < want.size(); ++s)
    if (want[s].size() != names.size() || got[s].size() != names.size())
      fail("precision best: sample ", s, " does not have the graph's ", names.size(), " output(s)");
  ModelError m;
  for (size_t o = 0; o < names.size(); ++o) {
    m.outputs.push_back(output_error(names[o], o, want, got));
    m.error = std::max(m.error, m.outputs.back().error());
  }
  return m;
}

MixedSummary build_best(ir::Graph& g, const CalibrationOptions& opts,
                        const std::string& model_sha256, const MixedPrecisionOptions& mo) {
  if (!std::isfinite(mo.max_accuracy_drop) || mo.max_accuracy_drop < 0)
    fail("maximum accuracy drop ", mo.max_accuracy_drop, " must be a finite number >= 0");
  MixedSummary sum;
  sum.budget = mo.max_accuracy_drop;
  QuantizeOptions qo = quantize_options(opts);
  sum.int8.method = quant::calib_method_name(qo.method);
  // As build_int8: data-free equalization, then the data-driven one with the calibration.
  sum.int8.equalized = equalize_depthwise_pairs(g);
  if (!opts.load)
    fail("precision best needs calibration data (--calib DIR): it measures the error on it");
  const std::vector<std::vector<Tensor>> samples = opts.load(g);
  if (samples.empty()) fail("precision best: no calibration samples");
  const std::map<std::string, quant::Histogram> hist =
      tuned_calibration(g, opts, model_sha256, &sum.int8, [&samples] { return samples; });
  sum.int8.samples = samples.size();

  // The budget is checked on `eval`; sensitivities on a spread subset of it.
  const std::vector<size_t> eval_idx = spread(samples.size(), mo.eval_samples);
  const std::vector<size_t> sens_pos = spread(eval_idx.size(), mo.sensitivity_samples);
  SampleRefs eval, sens;
  for (size_t i : eval_idx) eval.push_back(&samples[i]);
  for (size_t p : sens_pos) sens.push_back(eval[p]);
  sum.eval_samples = eval.size();
  sum.sensitivity_samples = sens.size();
  std::vector<std::string> names;
  for (int v : g.outputs) names.push_back(g.values[static_cast<size_t>(v)].name);
  const std::vector<std::vector<Tensor>> want = run_all(g, eval, opts.threads);
  std::vector<std::vector<Tensor>> want_sens;
  for (size_t p : sens_pos) want_sens.push_back(want[p]);

  // The layers that can be INT8: the convs and Gemms plain int8 quantizes (max pools follow
  // their producer). Report entries are in node order.
  std::vector<size_t> cand;
  {
    ir::Graph q(g);
    const std::vector<LayerPrecision> plain = quantize_graph(q, hist, qo);
    for (size_t n = 0; n < plain.size() && n < g.nodes.size(); ++n)
      if (plain[n].precision == "int8" &&
          (g.nodes[n].op_type == "ConvNhwc" || g.nodes[n].op_type == "Gemm"))
        cand.push_back(n);
  }
  auto measure_graph = [&](const ir::Graph& q) {
    ++sum.measurements;
    return model_error(names, want, run_all(q, eval, opts.threads));
  };
  auto measure = [&](const std::set<std::string>& keep, const SampleRefs& on,
                     const std::vector<std::vector<Tensor>>& ref) {
    ir::Graph q(g);
    QuantizeOptions o = qo;
    o.keep_fp32 = keep;
    quantize_graph(q, hist, o);
    ++sum.measurements;
    return model_error(names, ref, run_all(q, on, opts.threads));
  };
  auto keep_of = [&](const std::vector<size_t>& nodes) {
    std::set<std::string> keep;
    for (size_t n : nodes) keep.insert(g.nodes[n].name);
    return keep;
  };

  // Sensitivity: only that layer INT8.
  std::set<std::string> all;
  for (size_t n : cand) all.insert(g.nodes[n].name);
  for (size_t k = 0; k < cand.size(); ++k) {
    std::set<std::string> keep = all;
    keep.erase(g.nodes[cand[k]].name);
    LayerSensitivity l;
    l.node = g.nodes[cand[k]].name;
    l.alone = measure(keep, sens, want_sens);
    sum.layers.push_back(std::move(l));
    if (mo.progress) mo.progress("sensitivity", k + 1, cand.size());
  }
  std::vector<size_t> order(cand.size());  // positions in cand, most sensitive first
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const ModelError &x = sum.layers[a].alone, &y = sum.layers[b].alone;
    const double cx = max_cosine_error(x), cy = max_cosine_error(y);
    if (cx != cy) return cx > cy;
    return x.error > y.error;
  });
  for (size_t r = 0; r < order.size(); ++r) sum.layers[order[r]].rank = static_cast<int>(r + 1);

  // The fewest of the most sensitive kept in FP32 with the error within budget: f(k) = the
  // error with the k most sensitive in FP32; f(0) is plain int8, f(N) = 0 (the FP32 graph).
  // Binary search over k, taking f as rising with fewer kept (it nearly is).
  auto prefix = [&](size_t k) {
    std::vector<size_t> nodes;
    for (size_t r = 0; r < k; ++r) nodes.push_back(cand[order[r]]);
    return nodes;
  };
  std::map<size_t, ModelError> f;
  f[0] = cand.empty() ? ModelError{} : measure({}, eval, want);
  sum.all_int8 = f[0];
  size_t lo = 0, hi = cand.size();  // f(lo) over the budget, f(hi) within it
  if (cand.empty()) {
    sum.outcome = "none";
  } else if (f[0].error <= sum.budget) {
    hi = 0;
    sum.outcome = "all-int8";
  } else {
    size_t steps = 0, total = 1;
    while ((size_t{1} << total) < cand.size()) ++total;
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      f[mid] = measure(keep_of(prefix(mid)), eval, want);
      (f[mid].error <= sum.budget ? hi : lo) = mid;
      if (mo.progress) mo.progress("search", std::min(++steps, total), total);
    }
    if (mo.progress && steps < total) mo.progress("search", total, total);
    sum.outcome = hi == cand.size() ? "unreachable" : "mixed";
  }
  // Every layer kept FP32 (budget unreachable) is measured too: nothing else may be INT8 then
  // (max pools, Concats and Resizes follow INT8 producers), and the measurement shows it.
  if (hi == cand.size() && !cand.empty() && !f.count(hi)) f[hi] = measure(all, eval, want);
  sum.final = f.count(hi) ? f.at(hi) : ModelError{};
  const std::vector<size_t> kept = prefix(hi);
  sum.kept_fp32 = kept.size();
  qo.keep_fp32 = keep_of(kept);
  sum.int8.layers = quantize_graph(g, hist, qo, &sum.int8.quantized);
  for (LayerSensitivity& l : sum.layers) l.precision = qo.keep_fp32.count(l.node) ? "fp32" : "int8";

  // The float weights left (kept layers, layers without an INT8 kernel) stored in half as
  // --precision fp16 does, when the error stays within the budget: decoded to FP32 at load,
  // so no slower, and the engine is smaller. Not with budget 0 (it would not be FP32 bit for
  // bit). mark_fp16_storage puts rounded copies in the copy's values: g is untouched.
  ir::Graph half(g);
  sum.fp16_constants = mark_fp16_storage(half);
  if (sum.fp16_constants > 0 && sum.budget > 0) {
    const ModelError e = measure_graph(half);
    sum.fp16_error = e.error;
    if (e.error <= sum.budget) {
      g = std::move(half);
      sum.final = e;
      sum.fp16_used = true;
      for (LayerSensitivity& l : sum.layers) {
        if (l.precision != "fp32") continue;
        for (const ir::Node& n : g.nodes)
          if (n.name == l.node && n.inputs.size() > 1 && n.inputs[1] >= 0 &&
              g.values[static_cast<size_t>(n.inputs[1])].storage == DType::kFloat16)
            l.precision = "fp16";
      }
    }
  }
  if (!sum.fp16_used) sum.fp16_constants = 0;
  return sum;
}

std::string mixed_report_json(const MixedSummary& s) {
  json layers = json::array();
  for (const LayerSensitivity& l : s.layers) {
    json e = error_json(l.alone);
    double top1 = -1;
    for (const OutputError& o : l.alone.outputs) top1 = std::max(top1, o.top1);
    json lj = {{"name", l.node},
               {"precision", l.precision},
               {"rank", l.rank},
               {"error", l.alone.error},
               {"cosine_error", max_cosine_error(l.alone)}};
    if (top1 >= 0) lj["top1_disagreement"] = top1;
    lj["outputs"] = e["outputs"];
    layers.push_back(lj);
  }
  json j = {{"budget", s.budget},
            {"measure",
             "max over outputs of 100 x (1 - cosine) against fp32 over all samples, and of the "
             "top-1 disagreement in % for class scores"},
            {"outcome", s.outcome},
            {"final", error_json(s.final)},
            {"all_int8", error_json(s.all_int8)},
            {"kept_fp32", s.kept_fp32},
            {"fp16_constants", s.fp16_constants},
            {"fp16_error", s.fp16_error},
            {"int8_layers", s.layers.size() - s.kept_fp32},
            {"eval_samples", s.eval_samples},
            {"sensitivity_samples", s.sensitivity_samples},
            {"measurements", s.measurements},
            {"layers", layers}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string format_mixed_report(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "(mixed precision report is not valid JSON)\n";
  std::ostringstream os;
  const std::string outcome = j.value("outcome", std::string("?"));
  const size_t kept = j.value("kept_fp32", size_t{0}), int8 = j.value("int8_layers", size_t{0});
  auto err = [](const json& e) { return e.is_object() ? e.value("error", 0.0) : 0.0; };
  os << "mixed precision: budget " << fmt(j.value("budget", 0.0)) << ", error "
     << fmt(err(j["final"])) << " on " << j.value("eval_samples", 0) << " calibration samples ("
     << "all int8: " << fmt(err(j["all_int8"])) << "); of " << int8 + kept << " conv/Gemm layers "
     << int8 << " int8, " << kept << " kept in fp32";
  if (outcome == "all-int8") os << " (every layer int8 is within the budget)";
  if (outcome == "unreachable") os << " (even one int8 layer is over the budget: every layer fp32)";
  if (outcome == "none") os << " (no layer can be int8)";
  const int fp16 = j.value("fp16_constants", 0);
  const double fp16_error = j.value("fp16_error", -1.0);
  if (fp16 > 0)
    os << "\n  float weights left stored in half precision (" << fp16
       << " constants, decoded to fp32 at load): within the budget";
  else if (fp16_error >= 0)
    os << "\n  float weights left kept in fp32: stored in half the error would be "
       << fmt(fp16_error);
  os << "\n  error = " << j.value("measure", std::string("?")) << "\n";
  if (j["final"].is_object() && j["final"].contains("outputs"))
    for (const auto& o : j["final"]["outputs"]) {
      os << "  output " << o.value("name", std::string("?")) << ": 100 x (1 - cosine) "
         << fmt(o.value("cosine_error", 0.0));
      if (o.contains("top1_disagreement"))
        os << ", top-1 disagreement " << fmt(o.value("top1_disagreement", 0.0)) << "%";
      os << "\n";
    }
  if (!j.contains("layers") || !j["layers"].is_array() || j["layers"].empty()) return os.str();
  os << "  layers (with only that layer int8, on " << j.value("sensitivity_samples", 0)
     << " samples: the error, its largest 100 x (1 - cosine) and top-1 disagreement; rank 1 = "
        "the largest cosine error):\n";
  char line[256];
  std::snprintf(line, sizeof line, "    %-4s %-40s %-5s %-9s %-9s %s\n", "rank", "name", "prec",
                "error", "cosine", "top-1 %");
  os << line;
  for (const auto& l : j["layers"]) {
    std::string name = l.value("name", std::string("?"));
    if (name.size() > 40) name = name.substr(0, 37) + "...";
    const std::string top1 =
        l.contains("top1_disagreement") ? fmt(l.value("top1_disagreement", 0.0)) : "-";
    std::snprintf(line, sizeof line, "    %-4d %-40s %-5s %-9s %-9s %s\n", l.value("rank", 0),
                  name.c_str(), l.value("precision", std::string("?")).c_str(),
                  fmt(l.value("error", 0.0)).c_str(), fmt(l.value("cosine_error", 0.0)).c_str(),
                  top1.c_str());
    os << line;
  }
  return os.str();
}

}  // namespace lithe::build
