// `lithe inspect MODEL.lithe [--json]`: the engine's header, build report, layers (op,
// fused activation, precision, shapes, arena offsets) and memory plan.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "builder/build.hpp"
#include "engine/engine.hpp"

namespace lithe::cli {

void add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("inspect", "Show an engine file's layers, fusions and memory plan");
  cmd->footer("Examples:\n  lithe inspect resnet50.lithe\n  lithe inspect resnet50.lithe --json");
  cmd->add_option("engine", *path, "Engine file (.lithe)")->required();
  cmd->add_flag("--json", *as_json, "Print the build report as JSON");
  cmd->callback([path, as_json] {
    if (!engine::is_engine_file(*path)) fail(*path, ": not a lithe engine file (bad magic)");
    engine::EngineContents e = engine::load_engine(*path);
    if (*as_json) {
      std::printf("%s\n", build::inspect_json(e).c_str());
      return;
    }
    std::printf("engine %s\n  producer %s, isa %s\n  source sha256 %s\n  options %s\n", path->c_str(),
                e.info.producer.c_str(), e.info.isa.c_str(), e.info.source_sha256.c_str(),
                e.info.options_json.c_str());
    std::printf("%s", build::format_report(e.report_json, build::layers_json(e)).c_str());
  });
}

}  // namespace lithe::cli
