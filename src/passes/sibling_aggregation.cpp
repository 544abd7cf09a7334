// Pass: sibling_aggregation (see pass_list.hpp for its place in the pipeline).
#include "passes/pass.hpp"

namespace lithe::passes {

int aggregate_siblings(const ir::Graph& g, Rewriter& rw) {
  (void)g;
  (void)rw;
  return 0;
}

}  // namespace lithe::passes
