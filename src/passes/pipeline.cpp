#include "passes/pass.hpp"
#include "passes/pass_list.hpp"

namespace lithe::passes {

#define LITHE_DECLARE_PASS(fn, name, phase, why) int fn(const ir::Graph& g, Rewriter& rw);
LITHE_PASSES(LITHE_DECLARE_PASS)
#undef LITHE_DECLARE_PASS

const std::vector<Pass>& default_pipeline() {
  static const std::vector<Pass> passes = {
#define LITHE_PASS_ENTRY(fn, name, phase, why) Pass{name, why, fn, phase},
      LITHE_PASSES(LITHE_PASS_ENTRY)
#undef LITHE_PASS_ENTRY
  };
  return passes;
}

const Pass* find_pass(const std::string& name) {
  for (const Pass& p : default_pipeline())
    if (name == p.name) return &p;
  return nullptr;
}

namespace {
// Runs one pass and applies what it recorded; errors name the pass.
int apply_pass(ir::Graph& g, const Pass& p, std::vector<std::string>* notes) {
  Rewriter rw(g);
  int fired = 0;
  try {
    fired = p.run(g, rw);
    if (!rw.empty()) rw.apply(g);
  } catch (const Error& e) {
    throw e.with_context(std::string("in pass ") + p.name);
  }
  if (notes)
    for (const auto& n : rw.notes()) notes->push_back(std::string(p.name) + ": " + n);
  return fired;
}
}  // namespace

int run_pass(ir::Graph& g, const Pass& p) { return apply_pass(g, p, nullptr); }

PipelineReport run_pipeline(ir::Graph& g, const PipelineOptions& opts) {
  for (const auto& d : opts.disabled)
    if (!find_pass(d)) fail("--disable-pass '", d, "': no such pass");
  PipelineReport rep;
  rep.nodes_before = g.nodes.size();
  for (const Pass& p : default_pipeline()) rep.passes.push_back({p.name, 0});
  int total = 0;
  // Phase 1 to a fixed point, then (when a phase-2 pass exists) all passes to a fixed point.
  for (int max_phase = 1; max_phase <= 2; ++max_phase) {
    if (max_phase == 2 && opts.after_phase1) opts.after_phase1(g);
    for (int round = 0; round < opts.max_rounds; ++round) {
      int fired_round = 0;
      for (size_t i = 0; i < default_pipeline().size(); ++i) {
        const Pass& p = default_pipeline()[i];
        bool off = p.phase > max_phase;
        for (const auto& d : opts.disabled) off |= d == p.name;
        if (off) continue;
        if (opts.stop_after >= 0 && total >= opts.stop_after) break;
        int fired = apply_pass(g, p, &rep.notes);
        rep.passes[i].fired += fired;
        fired_round += fired;
        total += fired;
      }
      ++rep.rounds;
      if (fired_round == 0) break;
    }
  }
  rep.nodes_after = g.nodes.size();
  return rep;
}

}  // namespace lithe::passes
