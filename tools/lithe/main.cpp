// lithe command-line tool: one file per subcommand. Exit codes: 0 ok, 1 runtime failure,
// 2 bad usage or bad input (one line on stderr naming what was wrong).
#include <CLI/CLI.hpp>

#include "common.hpp"
#include "lithe/lithe.hpp"

namespace lithe::cli {
void add_run_command(CLI::App& app);
void add_ops_command(CLI::App& app);
void add_build_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_compare_command(CLI::App& app);
}

int main(int argc, char** argv) {
  CLI::App app{"lithe: ahead-of-time model optimizer and lean inference runtime"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("lithe ") + lithe::version());
  lithe::cli::add_build_command(app);
  lithe::cli::add_run_command(app);
  lithe::cli::add_inspect_command(app);
  lithe::cli::add_bench_command(app);
  lithe::cli::add_ops_command(app);
  lithe::cli::add_eval_command(app);
  lithe::cli::add_compare_command(app);
  return lithe::cli::parse_and_run(app, argc, argv, "lithe");
}
