#include <algorithm>

#include "frontend/onnx/importer.hpp"
#include "lithe/lithe.hpp"
#include "runtime/ref_executor.hpp"

namespace lithe {

struct Engine::Impl {
  std::shared_ptr<const ir::Graph> graph;
  std::unique_ptr<runtime::RefExecutor> exec;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<std::string> notes;
};

struct Context::Impl {
  std::shared_ptr<const Engine::Impl> engine;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
};

namespace {
TensorInfo info_of(const ir::Value& v) {
  return {v.name, v.type.dtype, v.type.dims, v.type.has_shape};
}
}  // namespace

std::shared_ptr<Engine> Engine::load(const std::string& path, const LoadOptions& opts) {
  onnx::ImportOptions io;
  io.input_shapes = opts.input_shapes;
  auto impl = std::make_shared<Impl>();
  io.notes = &impl->notes;
  impl->graph = onnx::import_model(path, io);
  impl->exec = std::make_unique<runtime::RefExecutor>(impl->graph);
  for (int v : impl->graph->inputs) impl->inputs.push_back(info_of(impl->graph->values[static_cast<size_t>(v)]));
  for (int v : impl->graph->outputs) impl->outputs.push_back(info_of(impl->graph->values[static_cast<size_t>(v)]));
  return std::make_shared<Engine>(std::move(impl));
}

Engine::Engine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const std::vector<TensorInfo>& Engine::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Engine::outputs() const { return impl_->outputs; }
const std::vector<std::string>& Engine::notes() const { return impl_->notes; }

std::unique_ptr<Context> Engine::create_context() const {
  auto c = std::make_unique<Context::Impl>();
  c->engine = impl_;
  c->inputs.resize(impl_->inputs.size());
  return std::make_unique<Context>(std::move(c));
}

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

void Context::set_input(const std::string& name, Tensor value) {
  const auto& ins = impl_->engine->inputs;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (ins[i].name == name) {
      impl_->inputs[i] = std::move(value);
      return;
    }
  }
  std::string names;
  for (const auto& in : ins) names += (names.empty() ? "" : ", ") + in.name;
  fail("'", name, "' is not an input of the model (inputs: ", names, ")");
}

void Context::run() {
  const auto& ins = impl_->engine->inputs;
  for (size_t i = 0; i < ins.size(); ++i)
    if (!impl_->inputs[i].defined()) fail("input '", ins[i].name, "' was not set");
  impl_->outputs = impl_->engine->exec->run(impl_->inputs);
}

const Tensor& Context::output(size_t index) const {
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
