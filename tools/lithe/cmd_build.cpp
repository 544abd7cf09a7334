// `lithe build MODEL.onnx -o MODEL.lithe [--input-shape NAME=DIMS] [--disable-pass NAME]
// [--precision fp32|fp16]`: optimizes the graph, plans memory and writes an engine file
// (atomically), then prints the build summary.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "builder/build.hpp"
#include "common.hpp"

namespace lithe::cli {
namespace {

struct BuildArgs {
  std::string model, output;
  std::vector<std::string> shapes, disabled;
  bool no_optimize = false;
  std::string precision = "fp32";
};

void build_command(const BuildArgs& a) {
  build::BuildOptions opts;
  for (const auto& s : a.shapes) parse_shape_flag(s, opts.input_shapes);
  opts.disabled_passes = a.disabled;
  opts.optimize = !a.no_optimize;
  opts.precision = a.precision;  // build_model refuses an unknown one before any work
  auto t0 = std::chrono::steady_clock::now();
  build::BuildResult r = build::build_model(a.model, opts);
  engine::write_engine(a.output, r.contents);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& n : r.notes) std::fprintf(stderr, "lithe: note: %s\n", n.c_str());
  std::printf("%s", build::format_report(r.contents.report_json).c_str());
  auto onnx_size = std::filesystem::file_size(a.model);
  auto eng_size = std::filesystem::file_size(a.output);
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
      "  lithe build m.onnx -o m16.lithe --precision fp16   # weights in half: ~half the file");
  cmd->add_option("model", args->model, "ONNX model file")->required();
  cmd->add_option("-o,--output", args->output, "Engine file to write")->required();
  cmd->add_option("--input-shape", args->shapes, "Shape for an input as NAME=1x3x224x224");
  cmd->add_option("--disable-pass", args->disabled, "Do not run this pass (repeatable)");
  cmd->add_flag("--no-optimize", args->no_optimize, "Skip the graph passes");
  cmd->add_option("--precision", args->precision,
                  "fp32 (default) or fp16: weights of 16+ elements stored in half precision "
                  "(decoded to fp32 at load; outputs within ~1e-4 of fp32)");
  cmd->callback([args] { build_command(*args); });
}

}  // namespace lithe::cli
