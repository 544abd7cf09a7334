// Memory planner (stub: nothing planned; every value is allocated at run time).
#include "plan/plan.hpp"

namespace lithe::plan {

MemoryPlan plan_memory(const ir::Graph& g, const PlanOptions& opts) {
  (void)opts;
  MemoryPlan p;
  p.offset.assign(g.values.size(), -1);
  p.bytes.assign(g.values.size(), 0);
  p.alias_of.assign(g.values.size(), -1);
  p.in_place.assign(g.nodes.size(), 0);
  p.skip.assign(g.nodes.size(), 0);
  return p;
}

void check_plan(const ir::Graph& g, const MemoryPlan& p) {
  (void)g;
  (void)p;
}

}  // namespace lithe::plan
