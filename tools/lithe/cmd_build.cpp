// `lithe build MODEL.onnx -o MODEL.lithe [--input-shape NAME=DIMS] [--disable-pass NAME]
// [--precision fp32|fp16|int8|best [--calib DIR ...] [--max-accuracy-drop X]]`: optimizes the graph, plans memory and writes an engine file
// (atomically), then prints the build summary.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "builder/build.hpp"
#include "common.hpp"
#include "evaluate.hpp"

namespace lithe::cli {
namespace {

struct BuildArgs {
  std::string model, output;
  std::vector<std::string> shapes, disabled;
  bool no_optimize = false;
  bool no_winograd_weights = false;
  std::string precision = "fp32";
  std::string max_drop;  // --max-accuracy-drop (precision best), parsed by max_accuracy_drop
  std::string emit_qdq;  // --emit-qdq-onnx FILE (precision int8)
  // INT8 calibration
  std::vector<std::string> calib;
  std::string calib_method = "minmax", calib_cache;
  double calib_percentile = 99.99;
  int calib_samples = 100;
  int threads = 1;
  PreprocessFlags pre;
};

// --precision int8 / best: the calibration options, with the samples loaded from --calib once
// the model's input is known.
build::CalibrationOptions calibration(const BuildArgs& a, const ProgressBar& bar) {
  if (a.precision == "best" && a.calib.empty())
    fail("--precision best needs calibration data: --calib DIR (the error is measured on it; "
         "--calib-cache only saves the calibration)");
  // Without data a model with its own Q/DQ scales still builds INT8 (explicit quantization);
  // any other fails in the build, asking for --calib.
  if (a.calib.empty() && a.calib_cache.empty()) return {};
  if (a.calib_samples < 1 || a.calib_samples > 1000000)
    fail("--calib-samples must be between 1 and 1000000, got ", a.calib_samples);
  check_threads(a.threads);
  build::CalibrationOptions c;
  c.method = a.calib_method;
  c.percentile = a.calib_percentile;
  c.cache = a.calib_cache;
  c.threads = a.threads;
  bool layout_given = false;
  const Preprocess pre = parse_preprocess(a.pre, &layout_given);
  // What the histograms depend on besides the model: the data and how it is read.
  c.key = "samples " + std::to_string(a.calib_samples) + " | " + describe_preprocess(pre) +
          (layout_given ? "" : " auto") + " | data";
  for (const auto& d : a.calib) c.key += " " + d;
  c.load = [a, pre, layout_given](const ir::Graph& g) {
    if (a.calib.empty())
      fail("--calib-cache ", a.calib_cache, " does not serve this model and preprocessing, and no "
           "--calib data was given");
    if (g.inputs.size() != 1)
      fail("--calib: the model has ", g.inputs.size(),
           " inputs; calibration from files supports models with one");
    const ir::Value& v = g.values[static_cast<size_t>(g.inputs[0])];
    TensorInfo in{v.name, v.type.dtype, v.type.dims, v.type.has_shape};
    std::vector<std::vector<Tensor>> samples;
    if (a.calib.size() == 1 && a.calib[0] == "random") {
      // As trtexec without calibration data: the speed of an INT8 engine, not its accuracy.
      std::fprintf(stderr, "lithe: note: calibrating on random N(0, 1) inputs: the engine's "
                           "accuracy says nothing about real data\n");
      if (v.type.dtype != DType::kFloat32 || !v.type.fully_known())
        fail("--calib random needs a float32 input with a known shape");
      std::mt19937 rng(1);
      std::normal_distribution<float> normal;
      for (int i = 0; i < a.calib_samples; ++i) {
        Tensor t(DType::kFloat32, v.type.dims);
        for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = normal(rng);
        samples.push_back({std::move(t)});
      }
      return samples;
    }
    for (Tensor& t : load_calibration(a.calib, pre, layout_given, in, a.calib_samples))
      samples.push_back({std::move(t)});
    return samples;
  };
  c.progress = [&bar](size_t done, size_t total) { bar(done, total); };
  return c;
}

// --max-accuracy-drop: only with --precision best; a finite number >= 0 (default 1).
double max_accuracy_drop(const BuildArgs& a) {
  if (a.max_drop.empty()) return 1.0;
  if (a.precision != "best")
    fail("--max-accuracy-drop needs --precision best (got --precision ", a.precision, ")");
  char* end = nullptr;
  const double x = std::strtod(a.max_drop.c_str(), &end);
  if (end == a.max_drop.c_str() || *end != '\0' || !std::isfinite(x) || x < 0)
    fail("--max-accuracy-drop must be a finite number >= 0, got '", a.max_drop, "'");
  return x;
}

void build_command(const BuildArgs& a) {
  build::BuildOptions opts;
  for (const auto& s : a.shapes) parse_shape_flag(s, opts.input_shapes);
  opts.disabled_passes = a.disabled;
  opts.optimize = !a.no_optimize;
  opts.store_winograd = !a.no_winograd_weights;
  opts.precision = a.precision;  // build_model refuses an unknown one before any work
  if (!a.emit_qdq.empty() && a.precision != "int8")
    fail("--emit-qdq-onnx needs --precision int8 (got --precision ", a.precision, ")");
  opts.emit_qdq_onnx = a.emit_qdq;
  ProgressBar bar;
  opts.mixed.max_accuracy_drop = max_accuracy_drop(a);
  if (a.precision == "int8" || a.precision == "best") opts.calib = calibration(a, bar);
  opts.mixed.progress = [&bar](const std::string&, size_t done, size_t total) { bar(done, total); };
  auto t0 = std::chrono::steady_clock::now();
  build::BuildResult r = build::build_model(a.model, opts);
  engine::write_engine(a.output, r.contents);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& n : r.notes) std::fprintf(stderr, "lithe: note: %s\n", n.c_str());
  std::printf("%s", build::format_report(r.contents.report_json).c_str());
  auto onnx_size = std::filesystem::file_size(a.model);
  auto eng_size = std::filesystem::file_size(a.output);
  if (!a.emit_qdq.empty())
    std::printf("qdq onnx: %s, %.2f MiB (what was quantized, as QuantizeLinear/DequantizeLinear)\n",
                a.emit_qdq.c_str(),
                static_cast<double>(std::filesystem::file_size(a.emit_qdq)) / (1 << 20));
  std::printf("engine: %s, %.2f MiB (%.3fx the ONNX file), built in %.0f ms\n", a.output.c_str(),
              static_cast<double>(eng_size) / (1 << 20),
              static_cast<double>(eng_size) / static_cast<double>(onnx_size), ms);
}

}  // namespace

void add_build_command(CLI::App& app) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* cmd = app.add_subcommand("build", "Optimize an ONNX model and write an engine file");
  cmd->footer(
      "Examples:\n"
      "  lithe build resnet50.onnx -o resnet50.lithe\n"
      "  lithe build det.onnx -o det.lithe --input-shape x=1x3x640x640\n"
      "  lithe build m.onnx -o m.lithe --disable-pass sibling-aggregation\n"
      "  lithe build m.onnx -o m16.lithe --precision fp16   # weights in half: ~half the file\n"
      "  lithe build resnet50.onnx -o r50_int8.lithe --precision int8 --calib imgs/ \\\n"
      "      --resize-short 256 --crop 224x224 --scale 1/255 --mean 0.485,0.456,0.406 \\\n"
      "      --std 0.229,0.224,0.225 --calib-method entropy --calib-cache r50.calib\n"
      "  lithe build m.onnx -o m_best.lithe --precision best --max-accuracy-drop 0.5 --calib imgs/\n"
      "Calibration data is preprocessed as `lithe eval` does (same flags); .npy files are fed as\n"
      "they are.");
  cmd->add_option("model", args->model, "ONNX model file")->required();
  cmd->add_option("-o,--output", args->output, "Engine file to write")->required();
  cmd->add_option("--input-shape", args->shapes, "Shape for an input as NAME=1x3x224x224");
  cmd->add_option("--disable-pass", args->disabled, "Do not run this pass (repeatable)");
  cmd->add_flag("--no-optimize", args->no_optimize, "Skip the graph passes");
  cmd->add_flag("--no-winograd-weights", args->no_winograd_weights,
                "Do not store the Winograd-transformed 3x3 conv weights (4x those weights' "
                "bytes, at most half the model's weight bytes or 12 MiB more in the file); the "
                "runtime then computes them at load: a smaller file, a slower start");
  cmd->add_option("--precision", args->precision,
                  "fp32 (default); fp16: weights of 16+ elements stored in half precision "
                  "(decoded to fp32 at load; outputs within ~1e-4 of fp32); int8: convs "
                  "quantized after calibration on --calib data; best: int8 except the layers "
                  "kept in fp32 to stay within --max-accuracy-drop. A model with its own "
                  "Q/DQ or QLinear nodes builds INT8 from their scales at fp32, fp16 or int8 "
                  "(--calib optional; --disable-pass explicit-quantization runs them as ops)");
  cmd->add_option("--max-accuracy-drop", args->max_drop,
                  "Precision best: the error budget (default 1): max over outputs of "
                  "100 x (1 - cosine) against fp32 on the calibration samples, and of the "
                  "top-1 disagreement in % for class-score outputs (docs/precision.md)");
  cmd->add_option("--calib", args->calib,
                  "INT8 calibration data: a folder (searched recursively) or image/.npy files; "
                  "'random' for N(0, 1) inputs (speed tests only)");
  cmd->add_option("--calib-method", args->calib_method,
                  "How ranges are chosen: minmax (default), percentile, entropy or mse");
  cmd->add_option("--calib-percentile", args->calib_percentile,
                  "Percentile for --calib-method percentile (default 99.99)");
  cmd->add_option("--calib-samples", args->calib_samples,
                  "Calibrate on at most N samples, evenly spaced over the data (default 100)");
  cmd->add_option("--calib-cache", args->calib_cache,
                  "Calibration cache: reused when it matches the model, data and preprocessing "
                  "(no recalibration), else written");
  cmd->add_option("--emit-qdq-onnx", args->emit_qdq,
                  "With --precision int8: also write what was quantized as an ONNX QDQ model "
                  "(QuantizeLinear/DequantizeLinear with lithe's scales) that ONNX Runtime runs");
  cmd->add_option("--threads,-t", args->threads, "Threads for calibration (default 1)");
  add_preprocess_flags(cmd, &args->pre);
  cmd->callback([args] { build_command(*args); });
}

}  // namespace lithe::cli
