// The real models the tests and benchmarks use (fetched into models-cache by
// scripts/fetch_models.sh), with the input shape each runs at: one list for every test.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "lithe/lithe.hpp"

namespace lithe::test {

struct RealModel {
  const char* name;   ///< file stem in models-cache/models
  const char* input;  ///< input to give a shape to ("" when the model's shapes are static)
  Shape shape;

  LoadOptions load_options() const {
    LoadOptions lo;
    if (*input) lo.input_shapes[input] = shape;
    return lo;
  }
};

// Smallest first, so a limited run meets the quick ones.
inline const std::vector<RealModel>& real_models() {
  static const std::vector<RealModel> models = {
      {"ppocr_cls", "x", {1, 3, 48, 192}},
      {"blazeface", "", {}},
      {"mobilenet_v2", "input", {1, 3, 224, 224}},
      {"squeezenet1_0", "input", {1, 3, 224, 224}},
      {"ppocr_rec", "x", {1, 3, 48, 320}},
      {"googlenet", "input", {1, 3, 224, 224}},
      {"resnet50", "input", {1, 3, 224, 224}},
      {"ppocr_det", "x", {1, 3, 640, 640}},
  };
  return models;
}

/// models-cache: $LITHE_MODELS_CACHE, else the one in the source tree.
inline std::filesystem::path models_cache() {
  if (const char* env = std::getenv("LITHE_MODELS_CACHE")) return env;
  return std::filesystem::path(LITHE_SOURCE_DIR) / "models-cache";
}

inline std::filesystem::path real_model_path(const RealModel& m) {
  return models_cache() / "models" / (std::string(m.name) + ".onnx");
}

/// False when the comma-separated list in environment variable `env_var` is set and does
/// not name `name` (a way to limit a slow test to some models).
inline bool selected(const char* name, const char* env_var) {
  const char* only = std::getenv(env_var);
  if (!only) return true;
  return (std::string(",") + only + ",").find(std::string(",") + name + ",") != std::string::npos;
}

}  // namespace lithe::test
