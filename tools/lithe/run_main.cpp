// lithe-run: the lean runner. `lithe run` for engine files (same options and output), linked
// against the runtime alone: no ONNX importer, builder, protobuf or OpenSSL, statically, so it
// starts fast and is the one file a device needs besides its engines.
// Exit codes as lithe: 0 ok, 1 runtime failure, 2 bad usage or bad input.
#include <CLI/CLI.hpp>

#include "common.hpp"
#include "lithe/lithe.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lithe-run: run a lithe engine on inputs and print/save its outputs"};
  app.set_version_flag("--version", std::string("lithe-run ") + lithe::version());
  app.footer(
      "Examples:\n"
      "  lithe-run model.lithe --input x=x.npy --output-dir out/\n"
      "  lithe-run model.lithe --random-input --threads 2 --warmup 3 --runs 20 --profile");
  lithe::cli::add_run_options(app, false);
  return lithe::cli::parse_and_run(app, argc, argv, "lithe-run");
}
