#include "builder/build.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "builder/explicit_quant.hpp"
#include "builder/qdq_export.hpp"
#include "core/half.hpp"
#include "frontend/onnx/exporter.hpp"
#include "frontend/onnx/importer.hpp"
#include "kernels/kernels.hpp"
#include "ops/conv_weight_layout.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "plan/plan.hpp"
#include "runtime/fast_steps.hpp"

namespace lithe::build {
namespace {

using json = nlohmann::ordered_json;

// JSON text of `j`. Names come from the model file and need not be UTF-8: invalid bytes are
// written as U+FFFD instead of throwing (nlohmann's default).
std::string json_text(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string attr_summary(const ir::Node& n) {
  auto it = n.attrs.find("activation");
  if (it == n.attrs.end() || it->second.kind != ir::Attribute::Kind::kString) return "";
  return it->second.s + (n.attrs.count("activation_affine") ? "+affine" : "");
}

json shape_json(const ir::TensorType& t) {
  if (!t.has_shape) return nullptr;
  return t.dims;
}

// Bytes a constant takes in the engine file (its storage type, else its own).
int64_t stored_bytes(const ir::Value& v) {
  if (!v.constant) return 0;
  if (v.storage == DType::kUndefined) return static_cast<int64_t>(v.constant->nbytes());
  return v.constant->numel() * static_cast<int64_t>(dtype_size(v.storage));
}

// The INT8 ops: the quantize / dequantize steps at the borders and every node computing
// uint8 values (the quantizer's convs, lookup tables, pools, Concat, Resize).
bool is_int8_op(const ir::Graph& g, const ir::Node& n) {
  if (n.domain.empty() && (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear"))
    return true;
  for (int v : n.outputs)
    if (v >= 0 && g.values[static_cast<size_t>(v)].type.dtype == DType::kUInt8) return true;
  return false;
}

json make_layers(const ir::Graph& g, const plan::MemoryPlan& mp) {
  json layers = json::array();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    json ins = json::array(), outs = json::array();
    // A layer is "fp16" when a weight it reads is stored as half (it still computes in fp32
    // on x86 after the decode at load).
    const char* precision = "fp32";
    for (int v : n.inputs) {
      if (v < 0) continue;
      const auto& val = g.values[static_cast<size_t>(v)];
      if (val.constant && val.storage == DType::kFloat16) precision = "fp16";
      if (is_int8_op(g, n)) precision = "int8";
      if (val.constant) continue;
      ins.push_back({{"name", val.name}, {"shape", shape_json(val.type)}});
    }
    for (int v : n.outputs) {
      if (v < 0) continue;
      const auto& val = g.values[static_cast<size_t>(v)];
      json o = {{"name", val.name},
                {"dtype", dtype_name(val.type.dtype)},
                {"shape", shape_json(val.type)}};
      if (static_cast<size_t>(v) < mp.offset.size())
        o["arena_offset"] = mp.offset[static_cast<size_t>(v)];
      outs.push_back(o);
    }
    json l = {{"name", n.name},
              {"op", n.domain.empty() ? n.op_type : n.domain + "." + n.op_type},
              {"activation", attr_summary(n)},
              {"precision", precision},
              {"inputs", ins},
              {"outputs", outs}};
    if (i < mp.in_place.size() && mp.in_place[i]) l["in_place"] = true;
    if (i < mp.skip.size() && mp.skip[i]) l["elided"] = true;
    layers.push_back(l);
  }
  return layers;
}

// The summary stored in the engine; the per-layer table is derived from the graph and
// plan when shown (layers_json), so the file does not hold it twice.
json make_report(const ir::Graph& g, const passes::PipelineReport& pr, const plan::MemoryPlan& mp,
                 const BuildOptions& opts) {
  json r;
  r["nodes_before"] = pr.nodes_before;
  r["nodes_after"] = g.nodes.size();
  r["rounds"] = pr.rounds;
  json passes = json::array();
  for (const auto& p : pr.passes) passes.push_back({{"name", p.name}, {"fired", p.fired}});
  r["passes"] = passes;
  r["notes"] = pr.notes;
  r["disabled_passes"] = opts.disabled_passes;
  r["precision"] = opts.precision;
  int64_t weights = 0;  // as stored in the file
  int half_constants = 0;
  for (const auto& v : g.values) {
    weights += stored_bytes(v);
    half_constants += v.constant && v.storage == DType::kFloat16;
  }
  if (opts.precision == "fp16") r["fp16_constants"] = half_constants;
  int in_place = 0, concats_elided = 0, views = 0, aliased = 0, concat_inputs = 0,
      concat_inputs_in_slice = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    in_place += i < mp.in_place.size() && mp.in_place[i];
    if (i < mp.skip.size() && mp.skip[i]) ++(n.op_type == "Concat" ? concats_elided : views);
    if (n.op_type != "Concat" || !n.domain.empty() || n.outputs.empty()) continue;
    // Inputs written straight into their slice: their alias chain reaches the output.
    for (int v : n.inputs) {
      if (v < 0) continue;
      ++concat_inputs;
      for (int a = mp.alias_of.empty() ? -1 : mp.alias_of[static_cast<size_t>(v)]; a >= 0;
           a = mp.alias_of[static_cast<size_t>(a)])
        if (a == n.outputs[0]) {
          ++concat_inputs_in_slice;
          break;
        }
    }
  }
  for (int a : mp.alias_of) aliased += a >= 0;
  r["memory"] = {{"arena_bytes", mp.arena_bytes},
                 {"sum_intermediate_bytes", mp.sum_intermediate_bytes},
                 {"weight_bytes", weights},
                 {"in_place_nodes", in_place},
                 {"concats_elided", concats_elided},
                 {"concat_inputs", concat_inputs},
                 {"concat_inputs_in_slice", concat_inputs_in_slice},
                 {"views_elided", views},
                 {"aliased_values", aliased}};
  return r;
}

}  // namespace

namespace {

// SHA-256 of what `feed` passes to its callback (data, size), in lowercase hex.
template <class Feed>
std::string sha256_hex(Feed&& feed) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1)
    fail_runtime("SHA-256 unavailable");
  feed([ctx](const void* data, size_t n) { EVP_DigestUpdate(ctx, data, n); });
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

}  // namespace

std::string sha256_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open file");
  return sha256_hex([&f](auto&& update) {
    std::vector<char> buf(1 << 20);
    while (f) {
      f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      update(buf.data(), static_cast<size_t>(f.gcount()));
    }
  });
}

std::string sha256_bytes(const std::string& bytes) {
  return sha256_hex([&bytes](auto&& update) { update(bytes.data(), bytes.size()); });
}

// Stores each channels-last conv's constant weight (used by that conv only) in the layout its
// fast kernel reads: GEMM panels of 16 output channels, or [taps][C] for depthwise. Same shape
// and element count, so the engine does not grow; the node's weight_layout attribute says so.
int pack_conv_weights(ir::Graph& g) {
  using ops::conv_layout::WeightLayout;
  int packed = 0;
  for (ir::Node& n : g.nodes) {
    if (n.domain != "lithe" || n.op_type != "ConvNhwc" || n.inputs.size() < 2 ||
        n.attrs.count("weight_layout"))
      continue;
    const int wv = n.inputs[1], xv = n.inputs[0];
    if (wv < 0 || xv < 0) continue;
    ir::Value& w = g.values[static_cast<size_t>(wv)];
    const ir::TensorType& xt = g.values[static_cast<size_t>(xv)].type;
    if (!w.constant || w.constant->dtype() != DType::kFloat32 || w.constant->rank() != 4 ||
        w.consumers.size() != 1 || !xt.fully_known() || xt.dims.size() != 4)
      continue;
    if (std::find(g.outputs.begin(), g.outputs.end(), wv) != g.outputs.end()) continue;
    const Shape ws = w.constant->shape();
    const int64_t group = ops::NodeAttrs(n).attr_int("group", 1), c = xt.dims[3];
    if (group < 1 || ws[0] % group != 0 || ws[1] * group != c) continue;
    const int64_t mg = ws[0] / group, cg = ws[1];
    const WeightLayout layout = cg == 1 && mg == 1 ? WeightLayout::kTapsC : WeightLayout::kPanels16;
    Tensor out(DType::kFloat32, ws);
    const float* src = w.constant->data<float>();
    float* dst = out.data<float>();
    ops::conv_layout::for_each_weight(layout, group, mg, cg, ws[2] * ws[3],
                                      [&](int64_t onnx, int64_t p) { dst[p] = src[onnx]; });
    w.constant = std::move(out);
    n.attrs["weight_layout"] = ir::Attribute::of_string(ops::conv_layout::layout_name(layout));
    ++packed;
  }
  return packed;
}

int store_winograd_weights(ir::Graph& g, int64_t* bytes) {
  const std::vector<char> chosen = runtime::choose_winograd(g);
  int stored = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    if (!chosen[i] || n.attrs.count("weight_layout") ||
        n.attrs.count(ops::conv_layout::kWinogradAttr))
      continue;
    const ir::Value& w = g.values[static_cast<size_t>(n.inputs[1])];
    const ir::TensorType& xt = g.values[static_cast<size_t>(n.inputs[0])].type;
    if (!w.constant || w.constant->dtype() != DType::kFloat32) continue;
    const int64_t c = xt.dims[3], m = w.constant->shape()[0];
    Tensor u(DType::kFloat32, Shape{36, ops::conv_layout::winograd_floats(c, m) / 36});
    kernels::winograd_weights_f32(w.constant->data<float>(), c, m, u.data<float>());
    if (bytes) *bytes += static_cast<int64_t>(u.nbytes());
    n.attrs[ops::conv_layout::kWinogradAttr] = ir::Attribute::of_tensor(std::move(u));
    ++stored;
  }
  return stored;
}

namespace {

bool fits_half(const Tensor& t) {
  const float* x = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!(std::fabs(x[i]) <= 65504.f)) return false;  // also false for NaN
  return true;
}

// True for a constant with at most one dimension above 1: a bias or a per-channel scale.
bool is_vector(const Tensor& t) {
  int wide = 0;
  for (int64_t d : t.shape()) wide += d > 1;
  return wide <= 1;
}

// Per node, how many layers with a matrix weight lie on the longest path from a graph input
// to it, itself included (nodes are in topological order).
std::vector<int> weighted_depth(const ir::Graph& g) {
  std::vector<int> value_depth(g.values.size(), 0), depth(g.nodes.size(), 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    int d = 0;
    bool weighted = false;
    for (int v : n.inputs) {
      if (v < 0) continue;
      const ir::Value& val = g.values[static_cast<size_t>(v)];
      if (val.constant) {
        weighted = weighted || !is_vector(*val.constant);
        continue;
      }
      d = std::max(d, value_depth[static_cast<size_t>(v)]);
    }
    depth[i] = d + weighted;
    for (int v : n.outputs)
      if (v >= 0) value_depth[static_cast<size_t>(v)] = depth[i];
  }
  return depth;
}

// True when `v` may be stored as half: a float32 constant of kFp16MinElements or more, not
// a vector, with every value a half can hold.
bool half_candidate(const ir::Value& v) {
  return v.constant && v.constant->dtype() == DType::kFloat32 &&
         v.constant->numel() >= kFp16MinElements && v.storage == DType::kUndefined &&
         !is_vector(*v.constant) && fits_half(*v.constant);
}

}  // namespace

// Small constants (scales, shapes as floats, clip bounds) are a negligible share of the file
// and are often read as exact parameters, so they keep full precision; so do constants a
// half cannot hold (|x| > 65504, inf, NaN: masks of -1e9 and the like). Two more kinds stay
// fp32 because their rounding error is amplified, for a few bytes (measured on the real
// models with a random input: ResNet-50's 1 - cosine against fp32 went from 2.5e-4 to
// 3.4e-5, GoogLeNet's from 1.4e-4 to 1.2e-5, for 0.1% of their weight bytes):
// - vectors (biases, per-channel scales): after BatchNorm folding a bias is often a large
//   number cancelling most of the conv output, so its rounding error (2^-12 of the bias)
//   is large against the result;
// - the weights of the first kFp16Fp32Layers weighted layers from the inputs, as long as
//   they hold at most kFp16Fp32Share of the candidates' elements: they read raw, uncentred
//   data whose mean the next BatchNorm cancels, and their error travels through the whole
//   network (ResNet-50's stem conv alone was over a third of its error).
int mark_fp16_storage(ir::Graph& g) {
  int64_t total = 0;
  for (const ir::Value& v : g.values)
    if (half_candidate(v)) total += v.constant->numel();
  // Early layers, a level at a time while the kept elements stay within the share.
  std::vector<char> keep(g.values.size(), 0);
  const std::vector<int> depth = weighted_depth(g);
  int64_t kept = 0;
  for (int level = 1; level <= kFp16Fp32Layers; ++level) {
    std::vector<int> ids;
    int64_t elements = 0;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (depth[i] != level) continue;
      for (int v : g.nodes[i].inputs)
        if (v >= 0 && !keep[static_cast<size_t>(v)] &&
            half_candidate(g.values[static_cast<size_t>(v)])) {
          keep[static_cast<size_t>(v)] = 1;
          ids.push_back(v);
          elements += g.values[static_cast<size_t>(v)].constant->numel();
        }
    }
    if (static_cast<double>(kept + elements) > kFp16Fp32Share * static_cast<double>(total)) {
      for (int v : ids) keep[static_cast<size_t>(v)] = 0;
      break;
    }
    kept += elements;
  }
  int marked = 0;
  for (size_t id = 0; id < g.values.size(); ++id) {
    ir::Value& v = g.values[id];
    if (keep[id] || !half_candidate(v)) continue;
    // The values in memory become what loading the engine will give (half-rounded), so a
    // build that is run without a round trip through the file computes the same outputs.
    Tensor rounded(DType::kFloat32, v.constant->shape());
    const float* src = v.constant->data<float>();
    float* dst = rounded.data<float>();
    for (int64_t i = 0; i < rounded.numel(); ++i)
      dst[i] = half_bits_to_float(float_to_half_bits(src[i]));
    v.constant = std::move(rounded);
    v.storage = DType::kFloat16;
    ++marked;
  }
  // If/Loop/Scan bodies hold constants of their own.
  for (ir::Node& n : g.nodes) {
    if (!ir::has_subgraph(n)) continue;
    for (auto& [name, a] : n.attrs) {
      if (a.g) marked += mark_fp16_storage(*a.g);
      for (auto& sg : a.graphs)
        if (sg) marked += mark_fp16_storage(*sg);
    }
  }
  return marked;
}

namespace {

// Fails before any work for a precision this build cannot make.
void check_precision(const std::string& p) {
  if (p == "fp32" || p == "fp16" || p == "int8" || p == "best") return;
  fail("unknown precision '", p, "' (expected fp32, fp16, int8 or best)");
}

// The build report's "int8" entry: calibration, and every node left in FP32 with why.
json int8_report(const Int8Summary& q, passes::PipelineReport& pr) {
  json fp32 = json::array();
  int quantized = 0;
  for (const LayerPrecision& l : q.layers) {
    if (l.precision == "int8") {
      ++quantized;
      continue;
    }
    fp32.push_back({{"name", l.node}, {"reason", l.reason}});
  }
  pr.notes.push_back(std::to_string(quantized) + " layer(s) quantized to int8 (" + q.method +
                     (q.from_cache ? ", calibration cache"
                                   : ", " + std::to_string(q.samples) + " calibration samples") +
                     "), " + std::to_string(fp32.size()) + " node(s) left in fp32");
  if (!q.channel_scaling.empty())
    pr.notes.push_back(std::to_string(q.channel_scaling.size()) +
                       " activation(s) equalized per channel from calibration ranges");
  return {{"method", q.method},
          {"equalized_pairs", q.equalized},
          {"channel_equalized", q.channel_scaling.size()},
          {"calibration_samples", q.samples},
          {"from_cache", q.from_cache},
          {"quantized", quantized},
          {"fp32_nodes", fp32}};
}

// Everything after the import: passes, weight packing, memory plan, report. `what` names the
// model in errors; `sha256` is the source's digest for the header.
void build_graph(std::shared_ptr<ir::Graph> g, const BuildOptions& opts, const std::string& what,
                 const std::string& sha256, BuildResult& res) {
  passes::PipelineReport pr;
  pr.nodes_before = pr.nodes_after = g->nodes.size();
  const bool quantized = opts.precision == "int8" || opts.precision == "best";
  if (quantized && !opts.optimize)
    fail(what, ": precision ", opts.precision,
         " needs the graph passes (the convs it quantizes are theirs)");
  if (!opts.emit_qdq_onnx.empty() && opts.precision != "int8")
    fail("--emit-qdq-onnx needs --precision int8 (it exports what the INT8 build quantized)");
  json int8 = nullptr, mixed = nullptr;
  std::optional<ir::Graph> before_layout;  // for --emit-qdq-onnx
  ExplicitQuant eq;
  if (opts.optimize) {
    passes::PipelineOptions po;
    po.disabled = opts.disabled_passes;
    // A model with Q/DQ pairs or QLinear ops builds INT8 from its own parameters at any
    // precision, as TensorRT does (--disable-pass explicit-quantization: its Q/DQ ops run).
    eq = explicit_quant_step(*g, what, &po);
    if (eq.any() && opts.precision == "best")
      fail(what, ": precision best: the model carries its own quantization (Q/DQ or QLinear "
           "nodes); build it at another precision, or with --disable-pass explicit-quantization");
    if (!opts.emit_qdq_onnx.empty())
      po.after_phase1 = [&before_layout](const ir::Graph& g1) { before_layout = clone_graph(g1); };
    try {
      pr = passes::run_pipeline(*g, po);
    } catch (const Error& e) {
      throw e.with_context(what);
    }
    // INT8 before packing: the quantizer reads the convs' weights in ONNX order.
    if (eq.any() || opts.precision == "int8") {
      const std::set<std::string> nhwc_convs = nhwc_conv_names(*g);
      const Int8Summary q = eq.any() ? build_explicit_int8(*g, eq, opts.calib, sha256)
                                     : build_int8(*g, opts.calib, sha256);
      int8 = int8_report(q, pr);
      if (eq.any()) pr.notes.push_back(explicit_quant_note(eq));
      // Not in the report: the engine stays the same as a build without the export.
      if (before_layout)
        onnx::export_model(make_qdq_graph(*before_layout, nhwc_convs, q), opts.emit_qdq_onnx);
    }
    if (opts.precision == "best") {
      const MixedSummary m = build_best(*g, opts.calib, sha256, opts.mixed);
      int8 = int8_report(m.int8, pr);
      mixed = json::parse(mixed_report_json(m));
    }
    // Half storage is asked for a small file: there the transform stays a load-time step.
    if (opts.pack_weights && opts.store_winograd && opts.precision != "fp16") {
      int64_t bytes = 0;
      const int stored = store_winograd_weights(*g, &bytes);
      if (stored) {
        char mib[32];
        std::snprintf(mib, sizeof mib, "%.2f", static_cast<double>(bytes) / (1 << 20));
        pr.notes.push_back("Winograd weights of " + std::to_string(stored) +
                           " conv(s) stored transformed (" + mib +
                           " MiB, so that loading does not compute them)");
      }
    }
    if (opts.pack_weights) {
      const int packed = pack_conv_weights(*g);
      if (packed)
        pr.notes.push_back("weights of " + std::to_string(packed) +
                           " conv(s) stored in the fast kernels' layout");
    }
  }
  // Last: the passes (BatchNorm folding, ...) and the packing above work on the full fp32
  // values, and only the final weights are rounded. Storage is not a change of type, so the
  // plan is unaffected.
  if (opts.precision == "fp16") {
    const int marked = mark_fp16_storage(*g);
    pr.notes.push_back(std::to_string(marked) + " constant(s) stored in half precision");
  }
  plan::MemoryPlan mp = plan::plan_memory(*g);
  plan::check_plan(*g, mp);
  json options = {{"optimize", opts.optimize},
                  {"disabled_passes", opts.disabled_passes},
                  {"pack_weights", opts.pack_weights},
                  {"store_winograd", opts.store_winograd},
                  {"precision", opts.precision}};
  json shapes = json::object();
  for (const auto& [k, v] : opts.input_shapes) shapes[k] = v;
  options["input_shapes"] = shapes;
  res.contents.graph = g;
  res.contents.plan = std::move(mp);
  json report = make_report(*g, pr, res.contents.plan, opts);
  // The engine is INT8 whatever was asked (fp16 only halves the float weights left).
  if (eq.any()) report["precision"] = "int8";
  if (!int8.is_null()) report["int8"] = int8;
  if (!mixed.is_null()) report["mixed_precision"] = mixed;
  res.contents.report_json = json_text(report);
  res.contents.info.producer = "lithe 0.1.0";
  res.contents.info.source_sha256 = sha256;
  res.contents.info.options_json = json_text(options);
  res.contents.info.isa = "generic";
}

onnx::ImportOptions import_options(const BuildOptions& opts, BuildResult& res) {
  onnx::ImportOptions io;
  io.input_shapes = opts.input_shapes;
  io.notes = &res.notes;
  return io;
}

}  // namespace

BuildResult build_model(const std::string& onnx_path, const BuildOptions& opts) {
  check_precision(opts.precision);
  BuildResult res;
  auto g = onnx::import_model(onnx_path, import_options(opts, res));
  build_graph(std::move(g), opts, onnx_path, sha256_file(onnx_path), res);
  return res;
}

BuildResult build_model_bytes(const std::string& bytes, const std::string& base_dir,
                              const std::string& what, const BuildOptions& opts) {
  check_precision(opts.precision);
  BuildResult res;
  auto g = onnx::import_model_bytes(bytes, base_dir, what, import_options(opts, res));
  build_graph(std::move(g), opts, what, sha256_bytes(bytes), res);
  return res;
}

std::string layers_json(const engine::EngineContents& e) {
  return json_text(make_layers(*e.graph, e.plan));
}

std::string inspect_json(const engine::EngineContents& e) {
  json options = json::parse(e.info.options_json, nullptr, false);
  json report = json::parse(e.report_json, nullptr, false);
  json out = {{"producer", e.info.producer},
              {"isa", e.info.isa},
              {"source_sha256", e.info.source_sha256},
              {"options", options.is_discarded() ? json(e.info.options_json) : options},
              {"report", report.is_discarded() ? json(e.report_json) : report},
              {"layers", make_layers(*e.graph, e.plan)}};
  return json_text(out, 2);
}

std::string format_report(const std::string& report_json, const std::string& layers_json) {
  json r = json::parse(report_json, nullptr, false);
  if (r.is_discarded()) return "(build report is not valid JSON)\n";
  std::ostringstream os;
  char line[512];
  os << "nodes: " << r.value("nodes_before", 0) << " before, " << r.value("nodes_after", 0)
     << " after (" << r.value("rounds", 0) << " pipeline rounds)\n";
  os << "passes:\n";
  for (const auto& p : r["passes"]) {
    std::snprintf(line, sizeof line, "  %-24s fired %d\n", p.value("name", "").c_str(),
                  p.value("fired", 0));
    os << line;
  }
  for (const auto& n : r["notes"]) os << "  note: " << n.get<std::string>() << "\n";
  const auto& m = r["memory"];
  auto mib = [](int64_t b) { return static_cast<double>(b) / (1 << 20); };
  std::snprintf(line, sizeof line,
                "memory: arena %.2f MiB (sum of intermediates %.2f MiB), weights %.2f MiB\n",
                mib(m.value("arena_bytes", int64_t{0})),
                mib(m.value("sum_intermediate_bytes", int64_t{0})),
                mib(m.value("weight_bytes", int64_t{0})));
  os << line;
  const std::string precision = r.value("precision", "fp32");
  if (precision == "fp16")
    os << "precision: fp16 (" << r.value("fp16_constants", 0)
       << " constants stored in half precision)\n";
  if ((precision == "int8" || precision == "best") && r.contains("int8") && r["int8"].is_object()) {
    const json& q = r["int8"];
    os << "precision: " << precision << " (" << q.value("quantized", 0) << " layers, "
       << (q.value("method", std::string("?")) == "explicit" ? std::string("the model's Q/DQ scales")
                                                              : q.value("method", std::string("?")) + " calibration")
       << ")";
    // The nodes left in fp32, counted by reason (the layer table names them).
    std::map<std::string, int> why;
    if (q.contains("fp32_nodes") && q["fp32_nodes"].is_array())
      for (const auto& n : q["fp32_nodes"]) ++why[n.value("reason", std::string("?"))];
    for (const auto& [reason, count] : why) os << "; " << count << " fp32: " << reason;
    os << "\n";
  }
  std::snprintf(line, sizeof line,
                "        %d nodes in place, %d concats elided, %d of %d concat inputs written "
                "straight into their slices, %d reshapes/splits as views\n",
                m.value("in_place_nodes", 0), m.value("concats_elided", 0),
                m.value("concat_inputs_in_slice", 0), m.value("concat_inputs", 0),
                m.value("views_elided", 0));
  os << line;
  if (precision == "best" && r.contains("mixed_precision"))
    os << format_mixed_report(json_text(r["mixed_precision"]));
  if (layers_json.empty()) return os.str();
  json layers = json::parse(layers_json, nullptr, false);
  os << "layers:\n";
  std::snprintf(line, sizeof line, "  %-4s %-30s %-18s %-10s %-5s %-20s %-20s %s\n", "#", "name",
                "op", "activation", "prec", "input shape", "output shape", "arena offset");
  os << line;
  int i = 0;
  auto shp = [](const json& s) {
    if (s.is_null()) return std::string("?");
    std::string out;
    for (size_t k = 0; k < s.size(); ++k)
      out += (k ? "x" : "") + std::to_string(s[k].get<int64_t>());
    return out.empty() ? std::string("scalar") : out;
  };
  for (const auto& l : layers) {
    std::string in = l["inputs"].empty() ? "" : shp(l["inputs"][0]["shape"]);
    std::string out = l["outputs"].empty() ? "" : shp(l["outputs"][0]["shape"]);
    std::string off = "-";
    if (!l["outputs"].empty() && l["outputs"][0].contains("arena_offset")) {
      int64_t o = l["outputs"][0]["arena_offset"].get<int64_t>();
      off = o < 0 ? "heap" : std::to_string(o);
    }
    if (l.value("elided", false)) off += " (elided)";
    if (l.value("in_place", false)) off += " (in place)";
    std::string name = l.value("name", "");
    if (name.size() > 30) name = name.substr(0, 27) + "...";
    std::snprintf(line, sizeof line, "  %-4d %-30s %-18s %-10s %-5s %-20s %-20s %s\n", i++,
                  name.c_str(), l.value("op", "").c_str(), l.value("activation", "").c_str(),
                  l.value("precision", "").c_str(), in.c_str(), out.c_str(), off.c_str());
    os << line;
  }
  return os.str();
}

}  // namespace lithe::build
