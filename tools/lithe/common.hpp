// Shared helpers for the lithe CLI subcommands.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "lithe/lithe.hpp"

namespace CLI {
class App;
}

namespace lithe::cli {

/// Parses the command line and runs the chosen callback: returns the exit code (0 ok, 1 runtime
/// failure, 2 bad usage or bad input, with one line on stderr, after `prog: `, saying what was
/// wrong).
int parse_and_run(CLI::App& app, int argc, char** argv, const char* prog);
/// `lithe run`'s options and callback, added to `run` (a subcommand of lithe, or lithe-run's
/// app itself); `onnx`: ONNX files accepted too (their flags: --no-optimize).
void add_run_options(CLI::App& run, bool onnx);

/// Parses "NAME=1x3x224x224" (also "NAME=1,3,224,224") into the map; fails on bad syntax.
void parse_shape_flag(const std::string& flag, std::map<std::string, Shape>& out);
/// Parses "NAME=FILE" into the pair; fails on bad syntax.
std::pair<std::string, std::string> parse_name_file(const std::string& flag, const char* opt);
/// Inputs read from --input NAME=FILE.npy flags: name -> (file, tensor).
using GivenInputs = std::map<std::string, std::pair<std::string, Tensor>>;
/// Reads the --input-shape flags into `shapes`, then the --input files: each file's shape
/// becomes its input's shape unless --input-shape gave one.
GivenInputs read_input_flags(const std::vector<std::string>& input_flags,
                             const std::vector<std::string>& shape_flags,
                             std::map<std::string, Shape>& shapes);
/// Fails unless --threads is between 1 and 256.
void check_threads(int threads);
/// Output file name for a tensor name: chars outside [A-Za-z0-9._-] become '_'.
std::string sanitize_name(const std::string& name);
/// Deterministic uniform [0,1) floats (or small ints / bools) for an input.
Tensor random_tensor(DType dtype, const Shape& shape, uint64_t seed);
/// JSON text for --json output (nlohmann::json or ordered_json), indented: names read from a
/// model file need not be UTF-8, so invalid bytes are written as U+FFFD instead of throwing.
template <class Json>
std::string json_text(const Json& j) {
  return j.dump(2, ' ', false, Json::error_handler_t::replace);
}
/// Summary statistics line for a tensor: min, max, mean, std (numeric types).
std::string tensor_summary(const Tensor& t);

/// A context's per-node profile over `runs` profiled runs (Context::set_profiling), per run.
struct Profile {
  struct Row {
    std::string node, op, kernel, precision;
    double ms = 0, share = 0, gflops = 0;  ///< per run; share of the total in [0, 1]
  };
  std::vector<Row> rows;  ///< slowest first; empty on the reference executor
  double total_ms = 0, gmacs = 0, gflops = 0;
};
Profile profile_of(const Context& ctx, int64_t runs);
/// The profile as a table on stdout (`lithe run --profile`, `lithe bench --profile`).
void print_profile(const Profile& p);

/// A progress bar on stderr, drawn only when `on` (by default: when stderr is a terminal).
class ProgressBar {
 public:
  ProgressBar();
  explicit ProgressBar(bool on) : on_(on) {}
  void show(double fraction) const;
  /// show(done / total), cleared when done == total.
  void operator()(size_t done, size_t total) const;
  void clear() const;

 private:
  bool on_;
};

}  // namespace lithe::cli
