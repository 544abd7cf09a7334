// `lithe compare A B --input NAME=FILE.npy ... | --random-input`: runs two versions of one
// model on the same inputs and compares every intermediate tensor both have (by ONNX value
// name, in the ONNX layout), in A's execution order, marking the first whose error jumps.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "evaluate.hpp"

namespace lithe::cli {
namespace {

struct CompareArgs {
  std::string a, b;
  std::vector<std::string> inputs, shapes;
  bool random_input = false;
  uint64_t seed = 0;
  bool no_optimize_a = false, no_optimize_b = false;
  std::string isa_a, isa_b;
  double floor_db = 40, jump_db = 20;
  int threads = 1;
  bool json = false, list = false;
};

nlohmann::json num(double v) {
  if (std::isfinite(v)) return v;
  return format_db(v);
}

void compare_command(const CompareArgs& a) {
  check_threads(a.threads);
  if (!(a.jump_db > 0)) fail("--jump-db must be positive, got ", a.jump_db);
  if (a.inputs.empty() && !a.random_input)
    fail("no inputs: give --input NAME=FILE.npy for each input, or --random-input");
  LoadOptions la, lb;
  const GivenInputs given = read_input_flags(a.inputs, a.shapes, la.input_shapes);
  lb.input_shapes = la.input_shapes;
  la.optimize = !a.no_optimize_a;
  lb.optimize = !a.no_optimize_b;
  la.isa = a.isa_a;
  lb.isa = a.isa_b;
  auto ea = Engine::load(a.a, la);
  auto eb = Engine::load(a.b, lb);
  std::map<std::string, Tensor> inputs;
  for (size_t i = 0; i < ea->inputs().size(); ++i) {
    const TensorInfo& in = ea->inputs()[i];
    auto it = given.find(in.name);
    if (it != given.end()) {
      const Tensor& t = it->second.second;
      if (t.dtype() != in.dtype)
        fail("--input ", in.name, ": '", in.name, "' expects ", dtype_name(in.dtype),
             ", the file holds ", dtype_name(t.dtype()));
      inputs[in.name] = t;
    } else if (a.random_input) {
      inputs[in.name] = random_tensor(in.dtype, in.shape, a.seed + i);
    } else {
      fail("input '", in.name, "' (", dtype_name(in.dtype), "[", shape_str(in.shape),
           "]) not given: use --input ", in.name, "=FILE.npy or --random-input");
    }
  }
  for (const auto& [name, file_tensor] : given)
    if (!inputs.count(name)) fail("--input: '", name, "' is not an input of ", a.a);
  CompareOptions opts;
  opts.floor_db = a.floor_db;
  opts.jump_db = a.jump_db;
  opts.threads = a.threads;
  const CompareResult r = compare_models(*ea, *eb, inputs, opts);
  int64_t compared = 0;
  for (const auto& row : r.rows) compared += row.skipped.empty();

  if (a.json) {
    nlohmann::json j;
    j["a"] = a.a;
    j["b"] = a.b;
    j["rule"] = {
        {"floor_db", opts.floor_db}, {"jump_db", opts.jump_db}, {"noise_db", opts.noise_db}};
    for (const auto& row : r.rows) {
      nlohmann::json t = {{"name", row.name}, {"shape", row.shape}};
      if (row.skipped.empty()) {
        t["cosine"] = num(row.agreement.cosine);
        t["max_abs"] = num(row.agreement.max_abs);
        t["snr_db"] = num(row.agreement.snr_db);
      } else {
        t["skipped"] = row.skipped;
      }
      if (row.jump) t["first_jump"] = true;
      j["tensors"].push_back(t);
    }
    j["matched"] = r.rows.size();
    j["compared"] = compared;
    j["only_a"] = r.only_a_names;
    j["only_b"] = r.only_b_names;
    j["first_jump"] = r.first_jump >= 0
                          ? nlohmann::json(r.rows[static_cast<size_t>(r.first_jump)].name)
                          : nlohmann::json(nullptr);
    std::cout << json_text(j) << "\n";
    return;
  }
  std::printf("A: %s%s\nB: %s%s\n", a.a.c_str(), a.no_optimize_a ? " (unoptimized)" : "",
              a.b.c_str(), a.no_optimize_b ? " (unoptimized)" : "");
  int w = 6;  // the tensor column: as wide as the longest name, at most 64
  for (const auto& row : r.rows) w = std::max(w, std::min(64, static_cast<int>(row.name.size())));
  std::printf("%5s  %-*s %-18s %12s %11s %8s\n", "#", w, "tensor", "shape", "cosine", "max abs",
              "SNR dB");
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const CompareRow& row = r.rows[i];
    if (!row.skipped.empty()) {
      std::printf("%5zu  %-*.*s %-18s skipped: %s\n", i + 1, w, w, row.name.c_str(),
                  shape_str(row.shape).c_str(), row.skipped.c_str());
      continue;
    }
    std::printf("%5zu  %-*.*s %-18s %12.8f %11.4g %8s%s\n", i + 1, w, w, row.name.c_str(),
                shape_str(row.shape).c_str(), row.agreement.cosine, row.agreement.max_abs,
                format_db(row.agreement.snr_db).c_str(), row.jump ? "  <-- first jump" : "");
  }
  std::printf(
      "%zu tensors in both (%lld compared, %lld skipped); %lld only in A (fused or folded away "
      "by a build), %lld only in B (made by a build)\n",
      r.rows.size(), static_cast<long long>(compared),
      static_cast<long long>(static_cast<int64_t>(r.rows.size()) - compared),
      static_cast<long long>(r.only_a), static_cast<long long>(r.only_b));
  if (a.list) {
    for (const auto& n : r.only_a_names) std::printf("only in A: %s\n", n.c_str());
    for (const auto& n : r.only_b_names) std::printf("only in B: %s\n", n.c_str());
  }
  if (r.first_jump >= 0) {
    const CompareRow& row = r.rows[static_cast<size_t>(r.first_jump)];
    std::printf("first jump: '%s' (#%d), SNR %s dB", row.name.c_str(), r.first_jump + 1,
                format_db(row.agreement.snr_db).c_str());
  } else {
    std::printf("no jump");
  }
  std::printf(
      " (a jump: SNR below %.0f dB, or below %.0f dB and more than %.0f dB under the "
      "previous tensor's)\n",
      opts.floor_db, opts.noise_db, opts.jump_db);
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Compare every intermediate tensor of two versions of one model on the same inputs");
  cmd->footer(
      "Tensors are matched by the ONNX value names the build keeps (values inside channels-last\n"
      "regions are transposed back to the ONNX layout) and listed in A's execution order with\n"
      "cosine similarity, max abs error and SNR = 10 log10(|A|^2 / |A - B|^2) dB. The first\n"
      "tensor whose error jumps is marked: SNR below --floor-db, or below 60 dB (FP32 rounding\n"
      "stays above) and more than --jump-db under the previous tensor's (inputs count as equal).\n"
      "Examples:\n"
      "  lithe compare model.onnx model.lithe --random-input --seed 1\n"
      "  lithe compare model.onnx model.onnx --no-optimize-a --input x=x.npy   # reference vs "
      "optimized\n"
      "  lithe compare fp32.lithe int8.lithe --input x=x.npy --json");
  cmd->add_option("a", args->a, "Model A, the reference (engine or ONNX file)")->required();
  cmd->add_option("b", args->b, "Model B, compared with A")->required();
  cmd->add_option("--input,-i", args->inputs, "Input as NAME=FILE.npy (repeatable)");
  cmd->add_flag("--random-input", args->random_input, "Fill inputs not given with random data");
  cmd->add_option("--seed", args->seed, "Seed for --random-input");
  cmd->add_option("--input-shape", args->shapes, "Shape for an input as NAME=1x3x224x224");
  cmd->add_flag("--no-optimize-a", args->no_optimize_a, "ONNX A: run the imported graph as it is");
  cmd->add_flag("--no-optimize-b", args->no_optimize_b, "ONNX B: run the imported graph as it is");
  cmd->add_option("--isa-a", args->isa_a,
                  "Kernel level for A (portable, avx2, avxvnni, avx512, avx512vnni, reference)");
  cmd->add_option("--isa-b", args->isa_b, "Kernel level for B");
  cmd->add_option("--floor-db", args->floor_db, "SNR under which a tensor is broken (default 40)");
  cmd->add_option("--jump-db", args->jump_db,
                  "SNR drop from the previous tensor that is a jump (default 20)");
  cmd->add_option("--threads,-t", args->threads, "Threads for the kernels (default 1)");
  cmd->add_flag("--list", args->list, "Also list the tensors only one side has");
  cmd->add_flag("--json", args->json, "Print the results as JSON");
  cmd->callback([args] { compare_command(*args); });
}

}  // namespace lithe::cli
