// `lithe run MODEL --input NAME=FILE.npy ... [--output-dir DIR]`: runs a model once (or
// --runs N times) and prints every output's name, shape, dtype and summary statistics.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "common.hpp"
#include "core/npy.hpp"

namespace lithe::cli {
namespace {

struct RunArgs {
  std::string model;
  std::vector<std::string> inputs;
  std::vector<std::string> shapes;
  std::string output_dir;
  bool random_input = false;
  uint64_t seed = 0;
  int runs = 1;
  int warmup = 0;
  int threads = 1;
  std::string isa;
  bool profile = false;
  bool no_optimize = false;
};

void run_command(const RunArgs& a) {
  LoadOptions opts;
  const GivenInputs given = read_input_flags(a.inputs, a.shapes, opts.input_shapes);
  if (a.runs < 1) fail("--runs must be at least 1, got ", a.runs);
  if (a.warmup < 0) fail("--warmup must be at least 0, got ", a.warmup);
  check_threads(a.threads);
  opts.optimize = !a.no_optimize;
  opts.isa = a.isa;
  auto t0 = std::chrono::steady_clock::now();
  auto engine = Engine::load(a.model, opts);
  auto t1 = std::chrono::steady_clock::now();
  ContextOptions copts;
  copts.threads = a.threads;
  auto ctx = engine->create_context(copts);
  // (Names given with --input are checked by the loader, through input_shapes.)
  for (size_t i = 0; i < engine->inputs().size(); ++i) {
    const TensorInfo& in = engine->inputs()[i];
    auto it = given.find(in.name);
    if (it != given.end()) {
      const Tensor& t = it->second.second;
      if (t.dtype() != in.dtype)
        fail(it->second.first, ": input '", in.name, "' expects ", dtype_name(in.dtype),
             ", the file holds ", dtype_name(t.dtype()));
      ctx->set_input(in.name, t);
    } else if (a.random_input) {
      ctx->set_input(in.name, random_tensor(in.dtype, in.shape, a.seed + i));
    } else {
      fail("input '", in.name, "' (", dtype_name(in.dtype), "[", shape_str(in.shape),
           "]) not given: use --input ", in.name, "=FILE.npy or --random-input");
    }
  }
  auto f0 = std::chrono::steady_clock::now();
  for (int r = 0; r < a.warmup; ++r) ctx->run();
  auto f1 = std::chrono::steady_clock::now();
  if (a.profile) ctx->set_profiling(true);
  std::vector<double> ms;
  for (int r = 0; r < a.runs; ++r) {
    auto s = std::chrono::steady_clock::now();
    ctx->run();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  if (!a.output_dir.empty()) std::filesystem::create_directories(a.output_dir);
  for (size_t i = 0; i < engine->outputs().size(); ++i) {
    const std::string& name = engine->outputs()[i].name;
    const Tensor& t = ctx->output(i);
    std::printf("output %-24s %-9s [%s]  %s\n", name.c_str(), dtype_name(t.dtype()),
                shape_str(t.shape()).c_str(), tensor_summary(t).c_str());
    if (!a.output_dir.empty())
      write_npy((std::filesystem::path(a.output_dir) / (sanitize_name(name) + ".npy")).string(), t);
  }
  for (const auto& n : engine->notes()) std::fprintf(stderr, "lithe: note: %s\n", n.c_str());
  if (a.profile) print_profile(profile_of(*ctx, a.runs));
  const double first =
      a.warmup ? std::chrono::duration<double, std::milli>(f1 - f0).count() / a.warmup : ms[0];
  std::sort(ms.begin(), ms.end());
  std::printf(
      "load %.2f ms, first run %.3f ms, run (median of %d) %.3f ms, min %.3f ms, %d thread(s), %s "
      "kernels\n",
      std::chrono::duration<double, std::milli>(t1 - t0).count(), first, a.runs, ms[ms.size() / 2],
      ms.front(), a.threads, engine->isa().c_str());
}

}  // namespace

void add_run_options(CLI::App& run, bool onnx) {
  auto args = std::make_shared<RunArgs>();
  run.add_option("model", args->model,
                 onnx ? "Model file (.onnx or .lithe engine)" : "Engine file (.lithe)")
      ->required();
  run.add_option("--input,-i", args->inputs, "Input as NAME=FILE.npy (repeatable)");
  run.add_option("--input-shape", args->shapes,
                 onnx ? "Shape for an input as NAME=1x3x224x224"
                      : "Shape for an input as NAME=1x3x224x224 (checked against the engine's)");
  run.add_option("--output-dir,-o", args->output_dir, "Write every output as DIR/NAME.npy");
  run.add_flag("--random-input", args->random_input, "Fill inputs not given with random data");
  run.add_option("--seed", args->seed, "Seed for --random-input");
  run.add_option("--runs", args->runs, "Run N times and report the median time");
  run.add_option("--warmup", args->warmup, "Untimed runs before the timed ones");
  run.add_option("--threads,-t", args->threads, "Threads for the kernels (default 1)");
  run.add_option("--isa", args->isa,
                 "Kernel level: portable, avx2, avxvnni, avx512, avx512vnni or reference "
                 "(default: best for this CPU)");
  run.add_flag("--profile", args->profile, "Print the time of every node over the timed runs");
  if (onnx)
    run.add_flag("--no-optimize", args->no_optimize,
                 "ONNX files: run the imported graph as it is (the reference path)");
  run.callback([args] { run_command(*args); });
}

void add_run_command(CLI::App& app) {
  CLI::App* run = app.add_subcommand("run", "Run a model on inputs and print/save its outputs");
  run->footer(
      "Examples:\n"
      "  lithe run model.onnx --input x=x.npy --output-dir out/\n"
      "  lithe run model.onnx --random-input --seed 1 --input-shape x=1x3x224x224 --runs 10");
  add_run_options(*run, true);
}

}  // namespace lithe::cli
