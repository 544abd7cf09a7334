// `lithe eval MODEL --data DIR|FILES [--labels FILE] [preprocessing] [--reference OTHER]`:
// top-1 / top-5 accuracy and per-image latency over a labelled image (or .npy) set, and with
// a reference model its top-1 agreement and per-output cosine, max abs error and SNR.
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

struct EvalArgs {
  std::string model, reference;
  std::vector<std::string> data;
  std::string labels, class_names;
  PreprocessFlags pre;
  std::string output;
  std::vector<std::string> shapes;
  int top_k = 5;
  int threads = 1;
  std::string isa;
  bool no_optimize = false, reference_no_optimize = false;
  bool json = false;
};

double pct(int64_t hits, int64_t n) {
  return n ? 100.0 * static_cast<double>(hits) / static_cast<double>(n) : 0.0;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

// JSON numbers cannot be inf/nan: those become strings.
nlohmann::json num(double v) {
  if (std::isfinite(v)) return v;
  return format_db(v);
}

void eval_command(const EvalArgs& a) {
  EvalOptions opts;
  opts.pre = parse_preprocess(a.pre, &opts.layout_given);
  if (a.top_k < 1 || a.top_k > 1000) fail("--top-k must be between 1 and 1000, got ", a.top_k);
  check_threads(a.threads);
  opts.top_k = a.top_k;
  opts.threads = a.threads;
  opts.output = a.output;

  const Dataset data = load_dataset(a.data, a.labels, a.class_names);
  LoadOptions lo;
  for (const auto& s : a.shapes) parse_shape_flag(s, lo.input_shapes);
  lo.optimize = !a.no_optimize;
  lo.isa = a.isa;
  auto model = Engine::load(a.model, lo);
  std::shared_ptr<Engine> reference;
  if (!a.reference.empty()) {
    LoadOptions ro;
    ro.input_shapes = lo.input_shapes;
    // A reference with symbolic dims runs at the model's input shape.
    for (const TensorInfo& in : model->inputs())
      if (!ro.input_shapes.count(in.name)) ro.input_shapes[in.name] = in.shape;
    ro.optimize = !a.reference_no_optimize;
    reference = Engine::load(a.reference, ro);
  }
  ProgressBar bar;
  opts.progress = [&bar](size_t done, size_t total) { bar(done, total); };
  const EvalResult r = run_eval(*model, reference.get(), data, opts);

  const double med = median(r.latency_ms), p90 = percentile(r.latency_ms, 0.9);
  const double lo_ms = *std::min_element(r.latency_ms.begin(), r.latency_ms.end());
  const Shape& in_shape = model->inputs()[0].shape;
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["input"] = {{"name", r.input}, {"shape", in_shape}, {"layout", r.layout}};
    j["output"] = r.output;
    j["count"] = r.count;
    j["labels"] = data.label_source;
    j["classes"] = data.classes;
    if (r.labelled) {
      j["labelled"] = r.labelled;
      j["top1"] = static_cast<double>(r.top1) / static_cast<double>(r.labelled);
      // "top5", or "topK" when the model has K < 5 scores (or --top-k K).
      j["top" + std::to_string(r.top_k)] =
          static_cast<double>(r.topk) / static_cast<double>(r.labelled);
      j["top1_hits"] = r.top1;
      j["top" + std::to_string(r.top_k) + "_hits"] = r.topk;
    }
    j["latency_ms"] = {{"median", med}, {"min", lo_ms}, {"p90", p90}};
    j["threads"] = a.threads;
    j["isa"] = model->isa();
    if (r.has_reference) {
      nlohmann::json ref;
      ref["model"] = a.reference;
      ref["top1_agreement"] = static_cast<double>(r.agree_top1) / static_cast<double>(r.count);
      for (const auto& o : r.outputs)
        ref["outputs"].push_back({{"name", o.name},
                                  {"cosine_mean", num(o.stats.mean_cosine())},
                                  {"cosine_worst", num(o.stats.worst_cosine)},
                                  {"max_abs_mean", num(o.stats.mean_max_abs())},
                                  {"max_abs_worst", num(o.stats.worst_max_abs)},
                                  {"snr_db_mean", num(o.stats.mean_snr_db())},
                                  {"snr_db_worst", num(o.stats.worst_snr_db)},
                                  {"has_nan", o.stats.any_nan}});
      j["reference"] = ref;
    }
    std::cout << json_text(j) << "\n";
    return;
  }
  std::printf("model %s: input '%s' [%s] %s, scores from output '%s'\n", a.model.c_str(),
              r.input.c_str(), shape_str(in_shape).c_str(), r.layout.c_str(), r.output.c_str());
  std::printf("%lld samples, labels: %s", static_cast<long long>(r.count),
              data.label_source.c_str());
  if (!data.classes.empty()) std::printf(" (%zu classes)", data.classes.size());
  std::printf("\n");
  if (r.labelled) {
    std::printf("top-1  %6.2f%%  (%lld/%lld)\n", pct(r.top1, r.labelled),
                static_cast<long long>(r.top1), static_cast<long long>(r.labelled));
    std::printf("top-%d  %6.2f%%  (%lld/%lld)%s\n", r.top_k, pct(r.topk, r.labelled),
                static_cast<long long>(r.topk), static_cast<long long>(r.labelled),
                r.top_k < a.top_k ? "  (k = the number of scores)" : "");
  }
  std::printf(
      "latency per image: median %.3f ms, min %.3f ms, p90 %.3f ms (%d thread(s), %s kernels)\n",
      med, lo_ms, p90, a.threads, model->isa().c_str());
  if (r.has_reference) {
    std::printf("reference %s: top-1 agreement %.2f%% (%lld/%lld)\n", a.reference.c_str(),
                pct(r.agree_top1, r.count), static_cast<long long>(r.agree_top1),
                static_cast<long long>(r.count));
    std::printf("%-28s %12s %12s %12s %12s %9s %9s\n", "output", "cosine mean", "cosine worst",
                "maxabs mean", "maxabs worst", "SNR mean", "SNR worst");
    for (const auto& o : r.outputs) {
      std::printf("%-28.28s %12.8f %12.8f %12.4g %12.4g %9s %9s%s\n", o.name.c_str(),
                  o.stats.mean_cosine(), o.stats.worst_cosine, o.stats.mean_max_abs(),
                  o.stats.worst_max_abs, format_db(o.stats.mean_snr_db()).c_str(),
                  format_db(o.stats.worst_snr_db).c_str(), o.stats.any_nan ? "  (NaN seen)" : "");
    }
    std::printf("(SNR in dB: 10 log10(signal power / error power) against the reference)\n");
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval",
                                     "Accuracy (top-1/top-5) and latency over an image or .npy "
                                     "set, optionally against a reference model");
  cmd->footer(
      "Labels: DIR/<class>/image.jpg (class index = sorted folder names, or the line of the\n"
      "folder name in --class-names), or --labels FILE with one 'PATH LABEL' line per sample\n"
      "(PATH relative to DIR, LABEL a class index or a --class-names name). Without labels only\n"
      "latency (and agreement with --reference) is reported.\n"
      "Preprocessing, in order: decode (gray when the input has 1 channel), resize, center crop,\n"
      "x * scale, channel order, (x - mean) / std, layout. Without --resize/--crop images are\n"
      "resized to the input size. .npy files are fed as they are.\n"
      "Examples:\n"
      "  lithe eval resnet50.lithe --data imagenet_val/ --resize-short 256 --crop 224x224 \\\n"
      "      --scale 1/255 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225\n"
      "  lithe eval cls.lithe --data crops/ --labels labels.txt --resize 192x48 --scale 1/255 \\\n"
      "      --mean 0.5 --std 0.5 --reference cls.onnx --json");
  cmd->add_option("model", args->model, "Model: engine (.lithe) or ONNX file")->required();
  cmd->add_option("--data,-d", args->data, "A folder (searched recursively) or image/.npy files")
      ->required();
  cmd->add_option("--labels", args->labels, "Labels file: one 'PATH LABEL' per line");
  cmd->add_option("--class-names", args->class_names,
                  "Class names, one per line (line i = class index i)");
  add_preprocess_flags(cmd, &args->pre);
  cmd->add_option("--output", args->output, "The scores output (default: the first)");
  cmd->add_option("--top-k", args->top_k, "k of the top-k accuracy (default 5)");
  cmd->add_option("--input-shape", args->shapes, "Shape for an input as NAME=1x3x224x224");
  cmd->add_option("--reference", args->reference,
                  "Also run this model on every input and report agreement with it");
  cmd->add_flag("--reference-no-optimize", args->reference_no_optimize,
                "ONNX reference: run its imported graph as it is (the reference path)");
  cmd->add_option("--threads,-t", args->threads, "Threads for the kernels (default 1)");
  cmd->add_option("--isa", args->isa,
                  "Kernel level: portable, avx2, avxvnni, avx512, avx512vnni or reference");
  cmd->add_flag("--no-optimize", args->no_optimize, "ONNX model: run the imported graph as it is");
  cmd->add_flag("--json", args->json, "Print the results as JSON");
  cmd->callback([args] { eval_command(*args); });
}

}  // namespace lithe::cli
