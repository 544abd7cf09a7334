// lithe C++ API: load a model (ONNX file, later an engine file), create contexts, set
// inputs, run, read outputs. Many contexts share one engine's weights.
//
//   auto e = lithe::Engine::load("model.onnx");
//   auto c = e->create_context();
//   c->set_input("x", tensor);
//   c->run();
//   const lithe::Tensor& y = c->output("y");
//
// Every call reports failure by throwing lithe::Error (kind() says bad input vs runtime).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lithe/error.hpp"
#include "lithe/tensor.hpp"

namespace lithe {

/// Name, element type and shape of a model input or output (-1: known only at run time).
struct TensorInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
  bool has_shape = false;
};

struct LoadOptions {
  /// Shapes for inputs with symbolic or unknown dims, by input name (ONNX files).
  std::map<std::string, Shape> input_shapes;
  /// ONNX files are optimized in memory as `lithe build` would; false runs the imported
  /// graph as it is (the reference path).
  bool optimize = true;
  /// Pass names not to run (ONNX files).
  std::vector<std::string> disabled_passes;
  /// Kernel level: "" picks the best this CPU runs (or the LITHE_ISA environment variable),
  /// "portable", "avx2", "avxvnni", "avx512", "avx512vnni" force one, "reference" runs the
  /// reference kernels only.
  std::string isa;
};

class Context;

/// Where an engine's bytes live (Engine::memory()).
struct EngineMemory {
  int64_t file_bytes = 0;           ///< size of the model file loaded (engine or ONNX)
  int64_t mapped_weight_bytes = 0;  ///< weights read at run time from the file mapping
  int64_t heap_weight_bytes = 0;    ///< weights copied or packed on the heap at load
};

struct ContextOptions {
  /// Threads the context's kernels use (the calling thread included), >= 1.
  int threads = 1;
};

/// A loaded, verified model. Immutable and shareable across threads.
class Engine {
 public:
  /// Loads an engine file (from `lithe build`) or an ONNX model file (built in memory).
  /// Fails with a one-line message naming the file.
  static std::shared_ptr<Engine> load(const std::string& path, const LoadOptions& opts = {});
  ~Engine();

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  /// The build report (JSON) of the engine.
  const std::string& report_json() const;
  /// Notes from loading (e.g. a symbolic dim set to 1 because no shape was given).
  const std::vector<std::string>& notes() const;
  /// A new execution context (its own intermediate buffers; shared weights).
  std::unique_ptr<Context> create_context(const ContextOptions& opts = {}) const;
  /// The kernel level the engine runs at ("reference" when it runs the reference kernels).
  std::string isa() const;
  /// The model file's size and its weight bytes: served from the engine file's mapping
  /// (mapped constants whose pages were handed back after packing are not counted) vs held
  /// on the heap (an ONNX file's constants, and whatever the fast steps packed at load).
  EngineMemory memory() const;

  struct Impl;
  explicit Engine(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

/// One stream of inference on an Engine. Not thread-safe itself; use one per thread.
class Context {
 public:
  ~Context();
  /// Binds an input by name (checked against the model's dtype and shape at run()).
  void set_input(const std::string& name, Tensor value);
  /// Runs the model; fails if an input is missing or has the wrong type or shape.
  void run();
  /// An output of the last run. It may live in this context's arena: valid until the next
  /// run() (clone() it to keep it).
  const Tensor& output(const std::string& name) const;
  const Tensor& output(size_t index) const;

  /// Intermediate values, for per-layer comparisons (`lithe compare`): after each node of
  /// run() the observer gets each output the node produced, as a dense tensor valid during
  /// the call (clone() it to keep it), in execution order. Values the build kept from the
  /// ONNX model have their ONNX names (a fused node's output keeps the name of the last node
  /// it absorbed). A value the layout pass stores channels-last (named NAME_nhwc, dims
  /// N,H,W,C) is passed as NAME, transposed back to the ONNX N,C,H,W layout; the pass's
  /// layout copies of values reported elsewhere are left out. Observing copies values;
  /// without an observer run() allocates nothing. An empty function turns it off.
  using Observer = std::function<void(const std::string& value_name, const Tensor& value)>;
  void set_observer(Observer observer);

  /// Per-node profiling: when on, run() adds each node's time; profile() lists
  /// (node name, op, kernel, total ns) for the nodes that ran.
  void set_profiling(bool on);
  struct NodeTime {
    std::string node, op, kernel;
    std::string precision;  ///< of the node's first output: "fp32", "fp16", "int8", ...
    int64_t ns = 0;
    int64_t macs = 0;
  };
  std::vector<NodeTime> profile() const;
  /// Bytes of this context's planned intermediate buffer (the arena), plus the per-thread
  /// scratch the fast steps use.
  int64_t arena_bytes() const;

  struct Impl;
  explicit Context(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

/// lithe's version string.
const char* version();

}  // namespace lithe
