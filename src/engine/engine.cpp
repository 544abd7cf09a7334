// Engine file writer and reader (stub).
#include "engine/engine.hpp"

namespace lithe::engine {

bool is_engine_file(const std::string& path) {
  (void)path;
  return false;
}
std::string serialize(const EngineContents& e) {
  (void)e;
  fail("engine files are not implemented yet");
}
void write_engine(const std::string& path, const EngineContents& e) {
  (void)e;
  fail(path, ": engine files are not implemented yet");
}
EngineContents load_engine(const std::string& path) {
  fail(path, ": engine files are not implemented yet");
}
EngineContents load_engine_bytes(std::shared_ptr<const std::string> bytes, const std::string& what) {
  (void)bytes;
  fail(what, ": engine files are not implemented yet");
}

}  // namespace lithe::engine
