// `lithe bench MODEL [MORE...]`: latency (min/mean/median/p90/p99/max/std), throughput (one
// stream, or K contexts on one engine driven by K threads), efficiency (CPU-seconds and, where
// powercap counters can be read, joules per inference) and memory (file, weights mapped vs on
// the heap, arena per context, peak RSS; load and first-inference time) of one or several
// models loaded into one process, as a multi-network camera pipeline holds them.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bench_stats.hpp"
#include "common.hpp"

namespace lithe::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::ordered_json;

struct BenchArgs {
  std::vector<std::string> models, inputs, shapes;
  uint64_t seed = 0;
  int warmup = 5;
  int64_t runs = 10;    // at least this many timed runs per context
  double duration = 1;  // and at least this many seconds (the command resolves which apply)
  int contexts = 1, threads = 1;
  std::string isa;
  bool profile = false, json = false, no_optimize = false;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What one model gave.
struct ModelResult {
  std::string path, isa;
  std::vector<std::pair<TensorInfo, std::string>> inputs;  // and "random" or the .npy file
  double load_ms = 0, first_ms = 0, wall_s = 0, cpu_s = 0, joules = -1;
  int64_t inferences = 0;
  LatencyStats all;
  std::vector<LatencyStats> per_context;
  EngineMemory memory;
  int64_t arena_bytes = 0;  // per context
  ResidentMemory after_warmup, after_runs;
  Profile profile;
};

// What the whole process gave: resident memory before anything was loaded, and the models.
struct BenchResult {
  ResidentMemory before_load;
  std::vector<ModelResult> models;
};

// Runs fn(i) for every context i on a thread of its own; rethrows the first failure.
template <typename Fn>
void on_threads(int contexts, Fn fn, const std::function<void()>& poll = {}) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(contexts));
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < contexts; ++i)
    threads.emplace_back([&, i] {
      try {
        fn(i);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
      finished.fetch_add(1);
    });
  while (poll && finished.load() < contexts) {
    poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Input names of a model, to route --input / --input-shape when several models are given:
// the model imported as it is (no passes, reference kernels), so symbolic dims need no shape.
std::set<std::string> input_names(const std::string& path) {
  LoadOptions o;
  o.optimize = false;
  o.isa = "reference";
  std::set<std::string> names;
  const auto engine = Engine::load(path, o);
  for (const auto& in : engine->inputs()) names.insert(in.name);
  return names;
}

class Bench {
 public:
  explicit Bench(const BenchArgs& a) : a_(a) {}

  // Loads every model first (all resident together), then times each in turn.
  BenchResult run() {
    BenchResult out;
    out.before_load = resident_memory();
    std::map<std::string, Shape> shapes;
    given_ = read_input_flags(a_.inputs, a_.shapes, shapes);
    std::vector<std::set<std::string>> names(a_.models.size());
    if (a_.models.size() > 1 && !shapes.empty()) {
      std::set<std::string> all;
      for (size_t m = 0; m < a_.models.size(); ++m) {
        names[m] = input_names(a_.models[m]);
        all.insert(names[m].begin(), names[m].end());
      }
      for (const auto& [name, shape] : shapes)
        if (!all.count(name)) {
          std::string list;
          for (const auto& n : all) list += (list.empty() ? "" : ", ") + n;
          fail("'", name, "' is not an input of any model given (inputs: ", list, ")");
        }
    }
    std::vector<ModelResult> results(a_.models.size());
    std::vector<std::shared_ptr<Engine>> engines;
    for (size_t m = 0; m < a_.models.size(); ++m) {
      LoadOptions o;
      for (const auto& [name, shape] : shapes)
        if (a_.models.size() == 1 || names[m].count(name)) o.input_shapes[name] = shape;
      o.optimize = !a_.no_optimize;
      o.isa = a_.isa;
      const auto t0 = Clock::now();
      engines.push_back(Engine::load(a_.models[m], o));
      results[m].load_ms = seconds_since(t0) * 1e3;
      results[m].path = a_.models[m];
    }
    // Notes once every model has loaded, so a failing load prints its one error line only.
    for (size_t m = 0; m < engines.size(); ++m)
      for (const auto& n : engines[m]->notes())
        std::fprintf(stderr, "lithe: note: %s: %s\n", a_.models[m].c_str(), n.c_str());
    for (size_t m = 0; m < engines.size(); ++m) time_model(*engines[m], results[m]);
    out.models = std::move(results);
    return out;
  }

 private:
  // Binds every input of the engine in `c`: the --input file, or seeded random data.
  void bind_inputs(const Engine& e, Context& c, ModelResult* r) const {
    for (size_t i = 0; i < e.inputs().size(); ++i) {
      const TensorInfo& in = e.inputs()[i];
      auto it = given_.find(in.name);
      if (it != given_.end()) {
        if (it->second.second.dtype() != in.dtype)
          fail(it->second.first, ": input '", in.name, "' expects ", dtype_name(in.dtype),
               ", the file holds ", dtype_name(it->second.second.dtype()));
        c.set_input(in.name, it->second.second);
        if (r) r->inputs.push_back({in, it->second.first});
        continue;
      }
      for (int64_t d : in.shape)
        if (d < 0)
          fail("input '", in.name, "' has dims known only at run time (", shape_str(in.shape),
               "): give --input-shape ", in.name, "=DIMS");
      c.set_input(in.name, random_tensor(in.dtype, in.shape, a_.seed + i));
      if (r) r->inputs.push_back({in, "random"});
    }
  }

  void time_model(const Engine& e, ModelResult& r) const {
    const size_t k = static_cast<size_t>(a_.contexts);
    r.isa = e.isa();
    r.memory = e.memory();
    std::vector<std::unique_ptr<Context>> ctx;
    for (size_t i = 0; i < k; ++i) {
      ctx.push_back(e.create_context({.threads = a_.threads}));
      bind_inputs(e, *ctx.back(), i == 0 ? &r : nullptr);
    }
    r.arena_bytes = ctx[0]->arena_bytes();
    auto t0 = Clock::now();
    ctx[0]->run();
    r.first_ms = seconds_since(t0) * 1e3;

    // Warm-up: every context, concurrently, as they will run.
    std::vector<double> warm_s(k, 0);
    on_threads(a_.contexts, [&](int i) {
      const auto w0 = Clock::now();
      for (int w = 0; w < a_.warmup; ++w) ctx[static_cast<size_t>(i)]->run();
      warm_s[static_cast<size_t>(i)] = seconds_since(w0);
    });
    const double per_run_s =
        a_.warmup ? *std::max_element(warm_s.begin(), warm_s.end()) / a_.warmup : r.first_ms / 1e3;
    // A progress bar only on a terminal, and only when the runs are expected to take > 2 s.
    const ProgressBar progress(std::max(a_.duration, per_run_s * static_cast<double>(a_.runs)) >
                                   2.0 &&
                               ::isatty(STDERR_FILENO));

    if (a_.profile) ctx[0]->set_profiling(true);
    std::vector<std::vector<double>> lat(k);
    for (auto& l : lat) l.reserve(static_cast<size_t>(std::min<int64_t>(a_.runs, 1 << 20)) + 1024);
    std::atomic<int64_t> done{0};
    std::atomic<int> finished{0};
    EnergyMeter energy;
    energy.start();
    r.after_warmup = resident_memory();  // latency buffers reserved: the runs add nothing
    const double cpu0 = process_cpu_seconds();
    const auto start = Clock::now();
    on_threads(
        a_.contexts,
        [&](int i) {
          Context& c = *ctx[static_cast<size_t>(i)];
          std::vector<double>& l = lat[static_cast<size_t>(i)];
          while (static_cast<int64_t>(l.size()) < a_.runs || seconds_since(start) < a_.duration) {
            const auto s = Clock::now();
            c.run();
            l.push_back(seconds_since(s) * 1e3);
            done.fetch_add(1, std::memory_order_relaxed);
          }
          // The last context to finish closes the window (wall, CPU and energy).
          if (finished.fetch_add(1) + 1 == a_.contexts) {
            r.wall_s = seconds_since(start);
            r.cpu_s = process_cpu_seconds() - cpu0;
            r.joules = energy.joules();
          }
        },
        [&] {
          const double by_runs =
              static_cast<double>(done.load()) / static_cast<double>(a_.runs * a_.contexts);
          const double by_time = a_.duration > 0 ? seconds_since(start) / a_.duration : 1.0;
          progress.show(std::min(by_runs, by_time));
        });
    progress.clear();
    r.after_runs = resident_memory();

    std::vector<double> all;
    for (const auto& l : lat) {
      r.per_context.push_back(latency_stats(l));
      all.insert(all.end(), l.begin(), l.end());
    }
    r.inferences = static_cast<int64_t>(all.size());
    r.all = latency_stats(std::move(all));
    if (a_.profile) r.profile = profile_of(*ctx[0], static_cast<int64_t>(lat[0].size()));
  }

  const BenchArgs& a_;
  GivenInputs given_;
};

// ---- reports -------------------------------------------------------------------------------

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    size_t c = line.find(':');
    return c == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", c + 1));
  }
  return "unknown";
}

int64_t model_total_bytes(const ModelResult& r, int contexts) {
  return r.memory.mapped_weight_bytes + r.memory.heap_weight_bytes + r.arena_bytes * contexts;
}

ordered_json stats_json(const LatencyStats& s) {
  return {{"count", s.count}, {"min", s.min}, {"mean", s.mean}, {"median", s.median},
          {"p90", s.p90},     {"p99", s.p99}, {"max", s.max},   {"stddev", s.stddev}};
}

ordered_json resident_json(const ResidentMemory& m) {
  return {
      {"rss_bytes", m.rss}, {"anon_bytes", m.anon}, {"file_bytes", m.file}, {"peak_bytes", m.peak}};
}

void print_json(const BenchArgs& a, const std::string& started, const BenchResult& result,
                const EnergyMeter& em) {
  const std::vector<ModelResult>& results = result.models;
  ordered_json j;
  j["lithe_version"] = version();
  j["date"] = started;
  j["host"] = {{"cpu", cpu_model()}, {"hardware_threads", std::thread::hardware_concurrency()}};
  j["settings"] = {{"warmup", a.warmup},
                   {"min_runs", a.runs},
                   {"min_seconds", a.duration},
                   {"contexts", a.contexts},
                   {"threads", a.threads},
                   {"seed", a.seed},
                   {"isa", a.isa.empty() ? "auto" : a.isa}};
  ordered_json models = ordered_json::array();
  ordered_json total = {{"file_bytes", 0},
                        {"mapped_weight_bytes", 0},
                        {"heap_weight_bytes", 0},
                        {"arena_bytes", 0},
                        {"total_bytes", 0}};
  for (const ModelResult& r : results) {
    ordered_json m;
    m["path"] = r.path;
    m["isa"] = r.isa;
    m["inputs"] = ordered_json::array();
    for (const auto& [info, source] : r.inputs)
      m["inputs"].push_back({{"name", info.name},
                             {"dtype", dtype_name(info.dtype)},
                             {"shape", info.shape},
                             {"source", source}});
    m["load_ms"] = r.load_ms;
    m["first_inference_ms"] = r.first_ms;
    m["inferences"] = r.inferences;
    m["wall_s"] = r.wall_s;
    m["latency_ms"] = stats_json(r.all);
    m["throughput_ips"] = r.wall_s > 0 ? static_cast<double>(r.inferences) / r.wall_s : 0.0;
    m["contexts"] = ordered_json::array();
    for (const LatencyStats& s : r.per_context)
      m["contexts"].push_back({{"latency_ms", stats_json(s)},
                               {"throughput_ips", static_cast<double>(s.count) / r.wall_s}});
    ordered_json eff = {{"cpu_s", r.cpu_s},
                        {"cpu_s_per_inference", r.cpu_s / static_cast<double>(r.inferences)},
                        {"cores_busy", r.cpu_s / r.wall_s}};
    if (r.joules >= 0) {
      eff["joules"] = r.joules;
      eff["joules_per_inference"] = r.joules / static_cast<double>(r.inferences);
      eff["energy_zones"] = em.zones();
    } else {
      eff["joules"] = nullptr;
      eff["joules_per_inference"] = nullptr;
      eff["energy_note"] = std::string("n/a (") + EnergyMeter::unavailable_reason() + ")";
    }
    m["efficiency"] = eff;
    m["memory"] = {{"file_bytes", r.memory.file_bytes},
                   {"mapped_weight_bytes", r.memory.mapped_weight_bytes},
                   {"heap_weight_bytes", r.memory.heap_weight_bytes},
                   {"arena_bytes_per_context", r.arena_bytes},
                   {"contexts", a.contexts},
                   {"total_bytes", model_total_bytes(r, a.contexts)}};
    m["resident"] = {{"after_warmup", resident_json(r.after_warmup)},
                     {"after_runs", resident_json(r.after_runs)}};
    for (const char* key : {"file_bytes", "mapped_weight_bytes", "heap_weight_bytes"})
      total[key] = total[key].get<int64_t>() + m["memory"][key].get<int64_t>();
    total["arena_bytes"] = total["arena_bytes"].get<int64_t>() + r.arena_bytes * a.contexts;
    total["total_bytes"] = total["total_bytes"].get<int64_t>() + model_total_bytes(r, a.contexts);
    if (a.profile) {
      ordered_json rows = ordered_json::array();
      for (const auto& n : r.profile.rows)
        rows.push_back({{"node", n.node},
                        {"op", n.op},
                        {"kernel", n.kernel},
                        {"precision", n.precision},
                        {"ms", n.ms},
                        {"share", n.share},
                        {"gflops", n.gflops}});
      m["profile"] = {{"total_ms", r.profile.total_ms},
                      {"gmacs", r.profile.gmacs},
                      {"gflops", r.profile.gflops},
                      {"nodes", rows}};
    }
    models.push_back(m);
  }
  j["models"] = models;
  j["memory_total"] = total;
  j["resident_before_load"] = resident_json(result.before_load);
  j["peak_rss_bytes"] = resident_memory().peak;
  std::printf("%s\n", json_text(j).c_str());
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

void print_table(const BenchArgs& a, const std::string& started, const BenchResult& result,
                 const EnergyMeter& em) {
  const std::vector<ModelResult>& results = result.models;
  std::printf("lithe bench  %s  lithe %s  %s, %u hardware threads\n", started.c_str(), version(),
              cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf("warm-up %d runs, then timed runs per context:", a.warmup);
  if (a.runs > 1 || a.duration <= 0) std::printf(" at least %lld", static_cast<long long>(a.runs));
  if (a.runs > 1 && a.duration > 0) std::printf(" and");
  if (a.duration > 0) std::printf(" for at least %.1f s", a.duration);
  std::printf("; %d context(s) x %d kernel thread(s)\n", a.contexts, a.threads);
  int64_t total = 0;
  for (const ModelResult& r : results) {
    std::printf("\n%s (%s kernels)\n", r.path.c_str(), r.isa.c_str());
    for (const auto& [info, source] : r.inputs)
      std::printf(
          "  input %s %s[%s] %s\n", info.name.c_str(), dtype_name(info.dtype),
          shape_str(info.shape).c_str(),
          source == "random" ? ("random, seed " + std::to_string(a.seed)).c_str() : source.c_str());
    const LatencyStats& s = r.all;
    std::printf("  load          %.2f ms, first inference %.3f ms\n", r.load_ms, r.first_ms);
    std::printf(
        "  latency ms    min %.3f  mean %.3f  median %.3f  p90 %.3f  p99 %.3f  max %.3f  "
        "std %.3f  (%lld runs)\n",
        s.min, s.mean, s.median, s.p90, s.p99, s.max, s.stddev, static_cast<long long>(s.count));
    const double ips = static_cast<double>(r.inferences) / r.wall_s;
    if (a.contexts == 1) {
      std::printf("  throughput    %.1f inferences/s (one stream)\n", ips);
    } else {
      std::printf("  throughput    %.1f inferences/s over %d contexts on one engine\n", ips,
                  a.contexts);
      for (size_t i = 0; i < r.per_context.size(); ++i) {
        const LatencyStats& c = r.per_context[i];
        std::printf(
            "    context %-3zu %6lld runs  median %.3f  p90 %.3f  p99 %.3f ms  %.1f "
            "inferences/s\n",
            i, static_cast<long long>(c.count), c.median, c.p90, c.p99,
            static_cast<double>(c.count) / r.wall_s);
      }
    }
    std::printf("  efficiency    %.4f CPU-s per inference (%.2f cores busy); ",
                r.cpu_s / static_cast<double>(r.inferences), r.cpu_s / r.wall_s);
    if (r.joules >= 0)
      std::printf("%.4f J per inference (powercap %zu zone(s), whole package)\n",
                  r.joules / static_cast<double>(r.inferences), em.zones().size());
    else
      std::printf("energy n/a (%s)\n", EnergyMeter::unavailable_reason());
    std::printf(
        "  memory        file %s; weights %s mapped + %s heap; arena %s x %d context(s); "
        "total %s\n",
        mib(r.memory.file_bytes).c_str(), mib(r.memory.mapped_weight_bytes).c_str(),
        mib(r.memory.heap_weight_bytes).c_str(), mib(r.arena_bytes).c_str(), a.contexts,
        mib(model_total_bytes(r, a.contexts)).c_str());
    std::printf("  resident      %s after warm-up, %s after the timed runs (%+.2f MiB)\n",
                mib(r.after_warmup.rss).c_str(), mib(r.after_runs.rss).c_str(),
                static_cast<double>(r.after_runs.rss - r.after_warmup.rss) / (1 << 20));
    total += model_total_bytes(r, a.contexts);
    if (a.profile) {
      std::printf("  profile (context 0, per run):\n");
      print_profile(r.profile);
    }
  }
  std::printf("\n");
  if (results.size() > 1)
    std::printf("all %zu models: weights + arenas %s\n", results.size(), mib(total).c_str());
  std::printf("process RSS %s before loading, peak %s\n", mib(result.before_load.rss).c_str(),
              mib(resident_memory().peak).c_str());
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure latency, throughput, efficiency and memory of one or more models");
  cmd->footer(
      "Timed runs: at least --runs per context and at least --duration seconds; with only one\n"
      "of them given, only that one (default: at least 10 runs and 1 s). Several models are\n"
      "all loaded first, then timed in turn; --input and --input-shape apply to every model\n"
      "with that input. Energy: joules from readable powercap package counters\n"
      "(/sys/class/powercap/intel-rapl:N), else n/a.\n"
      "Examples:\n"
      "  lithe bench mobilenet_v2.lithe\n"
      "  lithe bench model.onnx --input-shape x=1x3x640x640 --duration 10\n"
      "  lithe bench det.lithe --contexts 4 --threads 1      # one model, four cameras\n"
      "  lithe bench det.lithe cls.lithe rec.lithe --json   # a three-network pipeline\n"
      "  lithe bench resnet50.lithe --runs 50 --profile");
  cmd->add_option("models", a->models, "Model files (.lithe or .onnx)")->required();
  auto* runs = cmd->add_option("--runs,-n", a->runs, "Timed runs per context (at least)");
  auto* duration = cmd->add_option("--duration", a->duration, "Seconds of timed runs (at least)");
  cmd->add_option("--warmup", a->warmup, "Untimed runs per context first (default 5)");
  cmd->add_option("--contexts,-k", a->contexts,
                  "Contexts on each engine, each driven by its own thread (default 1)");
  cmd->add_option("--threads,-t", a->threads, "Kernel threads per context (default 1)");
  cmd->add_option("--input,-i", a->inputs, "Input as NAME=FILE.npy (default: random data)");
  cmd->add_option("--input-shape", a->shapes, "Shape for an input as NAME=1x3x224x224");
  cmd->add_option("--seed", a->seed, "Seed for the random inputs (default 0)");
  cmd->add_option("--isa", a->isa,
                  "Kernel level: portable, avx2, avxvnni, avx512, avx512vnni or reference "
                  "(default: best for this CPU)");
  cmd->add_flag("--profile", a->profile, "Per-layer time table of the timed runs (context 0)");
  cmd->add_flag("--json", a->json, "Print one JSON document instead of the table");
  cmd->add_flag("--no-optimize", a->no_optimize,
                "ONNX files: run the imported graph as it is (the reference path)");
  cmd->callback([a, runs, duration] {
    const bool runs_given = runs->count() > 0, duration_given = duration->count() > 0;
    if (runs_given && a->runs < 1) fail("--runs must be at least 1, got ", a->runs);
    if (duration_given && !(a->duration > 0 && a->duration <= 86400))
      fail("--duration must be more than 0 and at most 86400 seconds, got ", a->duration);
    if (a->warmup < 0) fail("--warmup must be at least 0, got ", a->warmup);
    check_threads(a->threads);
    if (a->contexts < 1 || a->contexts > 256)
      fail("--contexts must be between 1 and 256, got ", a->contexts);
    if (runs_given && !duration_given) a->duration = 0;
    if (duration_given && !runs_given) a->runs = 1;
    const std::string started = utc_now();
    const BenchResult result = Bench(*a).run();
    const EnergyMeter em;
    if (a->json)
      print_json(*a, started, result, em);
    else
      print_table(*a, started, result, em);
  });
}

}  // namespace lithe::cli
