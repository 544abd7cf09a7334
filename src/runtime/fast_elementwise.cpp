// Fast steps for elementwise ops, Transpose and Softmax (see fast_steps.hpp).
#include "runtime/fast_steps.hpp"

namespace lithe::runtime {

std::unique_ptr<FastStep> make_elementwise_step(const ir::Graph&, size_t) { return nullptr; }

}  // namespace lithe::runtime
