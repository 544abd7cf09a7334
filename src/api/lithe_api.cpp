#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "engine/engine.hpp"
#include "kernels/cpu.hpp"
#include "lithe/lithe.hpp"
#include "ops/op.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"
#include "runtime/ref_executor.hpp"
// The API is compiled twice (CMakeLists.txt): lithe_api with the ONNX importer and builder,
// lithe_runtime_api without them (LITHE_ENGINE_FILES_ONLY: engine files only, no protobuf),
// for the lean runner `lithe-run`.
#ifndef LITHE_ENGINE_FILES_ONLY
#include "builder/build.hpp"
#endif

namespace lithe {

struct Engine::Impl {
  std::shared_ptr<const ir::Graph> graph;
  std::unique_ptr<runtime::RefExecutor> exec;       ///< reference kernels (no program)
  std::shared_ptr<const runtime::Program> program;  ///< the fast executor, when it can run
  std::vector<TensorInfo> inputs, outputs;
  std::vector<std::string> notes;
  std::string report_json;
  EngineMemory memory;
};

struct Context::Impl {
  std::shared_ptr<const Engine::Impl> engine;
  std::unique_ptr<runtime::Session> session;  ///< fast path: arena, pool, bound inputs
  std::shared_ptr<std::byte> arena;           ///< reference path: intermediates (planned offsets)
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  Context::Observer observer;
  std::vector<std::string> observed_name;  ///< per value: the name reported ("": not reported)
  std::vector<char> observed_nhwc;         ///< per value: stored NHWC, reported as NCHW
  /// per value: the scale and zero point of an INT8 value reported dequantized (scale 0: none)
  std::vector<std::pair<float, int32_t>> observed_q;
  void observe(int v, const Tensor& t) const;
};

namespace {
TensorInfo info_of(const ir::Value& v) {
  return {v.name, v.type.dtype, v.type.dims, v.type.has_shape};
}

// The weight bytes of the loaded graph: constants inside the file mapping vs elsewhere (heap),
// then what the fast steps packed (heap) and the mapped pages they made unneeded.
EngineMemory memory_of(const std::string& path, const ir::Graph& g, const engine::EngineContents& c,
                       const runtime::Program* program) {
  EngineMemory m;
  m.file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  const auto lo = reinterpret_cast<uintptr_t>(c.mapped), hi = lo + c.mapped_bytes;
  for (const ir::Value& v : g.values) {
    if (!v.constant) continue;
    const auto b = reinterpret_cast<uintptr_t>(v.constant->raw());
    const bool mapped = c.mapped && b >= lo && b + v.constant->nbytes() <= hi;
    (mapped ? m.mapped_weight_bytes : m.heap_weight_bytes) +=
        static_cast<int64_t>(v.constant->nbytes());
  }
  if (program) {
    m.heap_weight_bytes += program->packed_bytes();
    m.mapped_weight_bytes -= program->released_bytes();
  }
  return m;
}

// "fp32", "fp16", "bf16", "fp64", else the element type's name ("int8", "int64"...).
std::string precision_of(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "fp32";
    case DType::kFloat16:
      return "fp16";
    case DType::kBFloat16:
      return "bf16";
    case DType::kFloat64:
      return "fp64";
    default:
      return dtype_name(t);
  }
}
}  // namespace

namespace {
// The ops the layout pass runs on channels-last values unchanged (the unary elementwise ops
// it takes, binary elementwise ops, Concat / Split on the channel axis, spatial Resize) and the
// quantizer's per-element ops: their outputs are NHWC when a region input is.
bool keeps_layout(const ir::Node& n) {
  static const char* kOps[] = {"Add",    "Sub",   "Mul",    "Div",           "Concat",
                               "Split",  "Resize", "QuantizeLinear", "DequantizeLinear"};
  if (n.domain == "lithe" && (n.op_type == "LookupU8" || n.op_type == "QBinaryU8")) return true;
  if (!n.domain.empty()) return false;
  if (ops::is_unary_elementwise(n.op_type)) return true;
  for (const char* o : kOps)
    if (n.op_type == o) return true;
  return false;
}

// Values the layout pass (passes/layout_nhwc.cpp) stores channels-last, found from the graph's
// structure: the outputs of the lithe *Nhwc ops and of Transposes (0,2,3,1) of NCHW values,
// and the 4-D outputs of the region's elementwise ops, Concats and Splits reading such a
// value; Transposes back to NCHW end it, and any other op's outputs are taken as they are.
std::vector<char> nhwc_values(const ir::Graph& g) {
  std::vector<char> nhwc(g.values.size(), 0);
  auto rank4 = [&](int v) {
    return v >= 0 && g.values[static_cast<size_t>(v)].type.dims.size() == 4;
  };
  for (const ir::Node& n : g.nodes) {
    bool out_nhwc = false;
    if (n.domain == "lithe" && n.op_type.size() > 4 &&
        n.op_type.compare(n.op_type.size() - 4, 4, "Nhwc") == 0) {
      out_nhwc = true;
    } else if (n.domain.empty() && n.op_type == "Transpose") {
      auto it = n.attrs.find("perm");
      const bool to_nhwc =
          it != n.attrs.end() && it->second.ints == std::vector<int64_t>{0, 2, 3, 1};
      out_nhwc = to_nhwc && !n.inputs.empty() && n.inputs[0] >= 0 &&
                 !nhwc[static_cast<size_t>(n.inputs[0])];
    } else if (keeps_layout(n)) {
      for (int v : n.inputs)
        out_nhwc = out_nhwc || (rank4(v) && nhwc[static_cast<size_t>(v)] &&
                                !g.values[static_cast<size_t>(v)].constant);
    }
    if (out_nhwc)
      for (int v : n.outputs)
        if (rank4(v)) nhwc[static_cast<size_t>(v)] = 1;
  }
  return nhwc;
}

// N,H,W,C -> N,C,H,W (any element type).
Tensor nhwc_to_nchw(const Tensor& t) {
  const Shape& s = t.shape();
  Tensor out(t.dtype(), {s[0], s[3], s[1], s[2]});
  const size_t es = dtype_size(t.dtype());
  const int64_t hw = s[1] * s[2], c = s[3];
  const auto* src = static_cast<const unsigned char*>(t.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t ch = 0; ch < c; ++ch)
        std::memcpy(dst + ((b * c + ch) * hw + p) * es, src + ((b * hw + p) * c + ch) * es, es);
  return out;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

void Context::set_observer(Observer observer) {
  Impl& c = *impl_;
  c.observer = std::move(observer);
  const ir::Graph& g = *c.engine->graph;
  c.observed_nhwc = nhwc_values(g);
  c.observed_name.assign(g.values.size(), "");
  c.observed_q.assign(g.values.size(), {0.f, 0});
  // Where a producer or an input computes `name` itself.
  auto computed = [&](const std::string& name, size_t other) {
    const int id = g.find_value(name);
    return id >= 0 && id != static_cast<int>(other) &&
           (g.values[static_cast<size_t>(id)].producer >= 0 ||
            std::find(g.inputs.begin(), g.inputs.end(), id) != g.inputs.end());
  };
  for (size_t v = 0; v < g.values.size(); ++v) {
    std::string name = g.values[v].name;
    // NAME/u8: the quantizer's uint8 form of NAME, reported as NAME dequantized with the
    // scale and zero point constants it made for NAME (unless NAME is computed too).
    if (g.values[v].type.dtype == DType::kUInt8 && ends_with(name, "/u8")) {
      const std::string f = name.substr(0, name.size() - 3);
      const int sv = g.find_value(f + "/scale"), zv = g.find_value(f + "/zero_point");
      auto constant = [&](int id) -> const Tensor* {
        return id >= 0 && g.values[static_cast<size_t>(id)].constant ? &*g.values[static_cast<size_t>(id)].constant
                                                                    : nullptr;
      };
      const Tensor* st = constant(sv);
      const Tensor* zt = constant(zv);
      if (st && zt && st->numel() == 1 && zt->numel() == 1 && st->dtype() == DType::kFloat32 &&
          zt->dtype() == DType::kUInt8 && !computed(f, v)) {
        c.observed_q[v] = {st->data<float>()[0], zt->data<uint8_t>()[0]};
        name = f;
      }
    }
    if (!c.observed_nhwc[v]) {
      c.observed_name[v] = name;
      continue;
    }
    // NAME_nhwc holds NAME; NAME_to_nhwc is the copy of NAME entering a region. Where NAME
    // itself is computed too (a Transpose back at the region's border) it is reported there.
    std::string base = name;
    for (const char* tail : {"_to_nhwc", "_nhwc"}) {
      if (ends_with(name, tail)) {
        base = name.substr(0, name.size() - std::char_traits<char>::length(tail));
        break;
      }
    }
    if (!computed(base, v)) c.observed_name[v] = base;
  }
  auto forward = [&c](int v, const Tensor& t) { c.observe(v, t); };
  if (c.session) c.session->set_observer(c.observer ? forward : runtime::Session::Observer());
}

void Context::Impl::observe(int v, const Tensor& t) const {
  const std::string& name = observed_name[static_cast<size_t>(v)];
  if (name.empty() || !t.defined()) return;
  const auto [scale, zp] = observed_q[static_cast<size_t>(v)];
  Tensor f = t;
  if (scale > 0 && t.dtype() == DType::kUInt8) {
    f = Tensor(DType::kFloat32, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i)
      f.data<float>()[i] = (static_cast<float>(t.data<uint8_t>()[i]) - static_cast<float>(zp)) * scale;
  }
  if (observed_nhwc[static_cast<size_t>(v)] && f.shape().size() == 4)
    observer(name, nhwc_to_nchw(f));
  else
    observer(name, f);
}

std::shared_ptr<Engine> Engine::load(const std::string& path, const LoadOptions& opts) {
  auto impl = std::make_shared<Impl>();
  engine::EngineContents contents;
  // A .lithe file is read as an engine even without the magic, so a damaged one is
  // reported as a damaged engine, not as a file that is not ONNX; without the importer every
  // file is read as an engine.
#ifdef LITHE_ENGINE_FILES_ONLY
  constexpr bool kEngineOnly = true;
#else
  constexpr bool kEngineOnly = false;
#endif
  if (kEngineOnly || engine::is_engine_file(path) || std::string_view(path).ends_with(".lithe")) {
    contents = engine::load_engine(path);
    // The loader checks each planned value's range; this adds that no two values alive at
    // once overlap (a hostile plan could lay a bool over another value's bytes).
    try {
      plan::check_plan(*contents.graph, contents.plan);
    } catch (const Error& e) {
      throw e.with_context(path);
    }
    // Shapes are fixed when an engine is built: given ones must agree.
    for (const auto& [name, shape] : opts.input_shapes) {
      int id = contents.graph->find_value(name);
      const ir::Value* v = id >= 0 ? &contents.graph->values[static_cast<size_t>(id)] : nullptr;
      if (!v) fail(path, ": '", name, "' is not an input of the engine");
      if (v->type.dims != shape)
        fail(path, ": input '", name, "' was built for shape ", shape_str(v->type.dims), ", not ",
             shape_str(shape), "; rebuild the engine with --input-shape ", name, "=",
             shape_str(shape));
    }
  } else {
#ifndef LITHE_ENGINE_FILES_ONLY
    build::BuildOptions bo;
    bo.input_shapes = opts.input_shapes;
    bo.optimize = opts.optimize;
    bo.disabled_passes = opts.disabled_passes;
    build::BuildResult r = build::build_model(path, bo);
    contents = std::move(r.contents);
    impl->notes = std::move(r.notes);
#endif
  }
  impl->graph = contents.graph;
  impl->report_json = std::move(contents.report_json);
  std::string isa = opts.isa;
  if (isa.empty()) {
    const char* env = std::getenv("LITHE_ISA");
    isa = env ? env : "";
  }
  if (isa != "reference" && runtime::Program::supports(*impl->graph, contents.plan)) {
    const kernels::Isa level = isa.empty() ? kernels::best_isa() : kernels::parse_isa(isa);
    if (!kernels::isa_supported(level))
      fail("this CPU cannot run ", kernels::isa_name(level), " kernels (best is ",
           kernels::isa_name(kernels::best_isa()), ")");
    impl->program = std::make_shared<runtime::Program>(impl->graph, contents.plan, level,
                                                       contents.mapped, contents.mapped_bytes);
  } else {
    impl->exec = std::make_unique<runtime::RefExecutor>(impl->graph, &contents.plan);
  }
  impl->memory = memory_of(path, *impl->graph, contents, impl->program.get());
  for (int v : impl->graph->inputs)
    impl->inputs.push_back(info_of(impl->graph->values[static_cast<size_t>(v)]));
  for (int v : impl->graph->outputs)
    impl->outputs.push_back(info_of(impl->graph->values[static_cast<size_t>(v)]));
  return std::make_shared<Engine>(std::move(impl));
}

Engine::Engine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const std::vector<TensorInfo>& Engine::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Engine::outputs() const { return impl_->outputs; }
const std::vector<std::string>& Engine::notes() const { return impl_->notes; }
const std::string& Engine::report_json() const { return impl_->report_json; }

std::string Engine::isa() const {
  return impl_->program ? kernels::isa_name(impl_->program->isa()) : "reference";
}

EngineMemory Engine::memory() const { return impl_->memory; }

std::unique_ptr<Context> Engine::create_context(const ContextOptions& opts) const {
  auto c = std::make_unique<Context::Impl>();
  c->engine = impl_;
  if (impl_->program)
    c->session = std::make_unique<runtime::Session>(impl_->program, opts.threads);
  else
    c->arena = runtime::allocate_arena(impl_->exec->plan()->arena_bytes);
  c->inputs.resize(impl_->inputs.size());
  return std::make_unique<Context>(std::move(c));
}

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

void Context::set_input(const std::string& name, Tensor value) {
  const auto& ins = impl_->engine->inputs;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (ins[i].name == name) {
      (impl_->session ? impl_->session->input(i) : impl_->inputs[i]) = std::move(value);
      return;
    }
  }
  std::string names;
  for (const auto& in : ins) names += (names.empty() ? "" : ", ") + in.name;
  fail("'", name, "' is not an input of the model (inputs: ", names, ")");
}

void Context::run() {
  if (impl_->session) {
    impl_->session->run();
    return;
  }
  const auto& ins = impl_->engine->inputs;
  for (size_t i = 0; i < ins.size(); ++i)
    if (!impl_->inputs[i].defined()) fail("input '", ins[i].name, "' was not set");
  if (impl_->observer) {
    const runtime::RefExecutor::Observer per_node = [this](const ir::Node& node,
                                                           const std::vector<Tensor>& outs) {
      for (size_t i = 0; i < node.outputs.size() && i < outs.size(); ++i)
        if (node.outputs[i] >= 0) impl_->observe(node.outputs[i], outs[i]);
    };
    impl_->outputs = impl_->engine->exec->run(impl_->inputs, impl_->arena.get(), &per_node);
    return;
  }
  impl_->outputs = impl_->engine->exec->run(impl_->inputs, impl_->arena.get());
}

void Context::set_profiling(bool on) {
  if (impl_->session) impl_->session->set_profiling(on);
}

std::vector<Context::NodeTime> Context::profile() const {
  std::vector<NodeTime> out;
  if (!impl_->session) return out;
  const runtime::Program& p = *impl_->engine->program;
  const ir::Graph& g = p.graph();
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (p.plan().skip[n] || p.absorbed(n)) continue;  // absorbed: timed with the fused step
    const ir::Node& node = g.nodes[n];
    const runtime::FastStep* f = p.fused_step(n) ? p.fused_step(n) : p.fast_step(n);
    const int y = node.outputs.empty() ? -1 : node.outputs[0];
    out.push_back(
        {node.name, (node.domain.empty() ? "" : node.domain + ".") + node.op_type,
         f ? f->kind() : "reference",
         precision_of(y >= 0 ? g.values[static_cast<size_t>(y)].type.dtype : DType::kUndefined),
         impl_->session->node_ns()[n], f ? f->macs() : 0});
  }
  return out;
}

int64_t Context::arena_bytes() const {
  return impl_->session ? impl_->session->arena_bytes() : impl_->engine->exec->plan()->arena_bytes;
}

const Tensor& Context::output(size_t index) const {
  if (impl_->session) {
    const auto& outs = impl_->session->outputs();
    if (index < outs.size() && outs[index].defined()) return outs[index];
  }
  if (index >= impl_->outputs.size())
    fail("output index ", index, " out of range (the model has ", impl_->engine->outputs.size(),
         " outputs; was run() called?)");
  return impl_->outputs[index];
}

const Tensor& Context::output(const std::string& name) const {
  const auto& outs = impl_->engine->outputs;
  for (size_t i = 0; i < outs.size(); ++i)
    if (outs[i].name == name) return output(i);
  fail("'", name, "' is not an output of the model");
}

const char* version() { return "0.1.0"; }

}  // namespace lithe
