// Shared by the fast-runtime tests: run one graph on the fast executor (runtime::Program +
// Session) and check the node producing `out` against the reference executor.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graph_test_util.hpp"
#include "kernels/cpu.hpp"
#include "plan/plan.hpp"
#include "runtime/executor.hpp"

namespace lithe::test {

/// Every kernel level this CPU runs.
inline std::vector<kernels::Isa> supported_isas() {
  std::vector<kernels::Isa> v;
  for (kernels::Isa i : kernels::kAllIsas)
    if (kernels::isa_supported(i)) v.push_back(i);
  return v;
}

/// Binds `ins`, runs, and returns copies of the outputs (they live in the session's arena).
inline std::vector<Tensor> run_session(runtime::Session& s, const std::vector<Tensor>& ins) {
  for (size_t i = 0; i < ins.size(); ++i) s.input(i) = ins[i];
  s.run();
  std::vector<Tensor> out;
  for (const Tensor& t : s.outputs()) out.push_back(t.clone());
  return out;
}

/// Compares output k of the fast run (`got`) with the reference (`want`).
using CompareFn = std::function<void(size_t k, const Tensor& want, const Tensor& got)>;

/// Runs `g` at each level of `isas` with 1 and 3 threads on two seeded input sets: the node
/// producing `out` must be a fast step (of kind `want_kind` when given), `compare` judges the
/// 1-thread outputs against the reference executor, and 3 threads must give the same bits.
/// Returns the plan the runs used.
inline plan::MemoryPlan check_fast_node(const std::shared_ptr<ir::Graph>& g, const std::string& out,
                                        const char* want_kind,
                                        const std::vector<kernels::Isa>& isas,
                                        const CompareFn& compare) {
  const plan::MemoryPlan p = plan::plan_memory(*g);
  const int ov = g->find_value(out);
  EXPECT_GE(ov, 0) << out;
  const int node = ov >= 0 ? g->values[static_cast<size_t>(ov)].producer : -1;
  EXPECT_GE(node, 0) << out << " has no producer";
  if (node < 0) return p;
  EXPECT_NO_THROW(plan::check_plan(*g, p));
  std::vector<std::vector<Tensor>> ins, want;
  for (unsigned seed : {11u, 23u}) {
    ins.push_back(seeded_inputs(*g, seed));
    want.push_back(run_graph(g, ins.back()));
  }
  for (kernels::Isa isa : isas) {
    SCOPED_TRACE(std::string("isa ") + kernels::isa_name(isa));
    auto prog = std::make_shared<runtime::Program>(g, p, isa);
    const runtime::FastStep* step = prog->fast_step(static_cast<size_t>(node));
    EXPECT_NE(step, nullptr) << "node " << g->nodes[static_cast<size_t>(node)].op_type
                             << " runs on the reference kernel, not a fast step";
    if (!step) return p;
    if (want_kind) {
      EXPECT_STREQ(step->kind(), want_kind);
    }
    runtime::Session s1(prog, 1), s3(prog, 3);
    for (size_t r = 0; r < ins.size(); ++r) {
      SCOPED_TRACE("inputs " + std::to_string(r));
      const std::vector<Tensor> got1 = run_session(s1, ins[r]);
      const std::vector<Tensor> got3 = run_session(s3, ins[r]);
      EXPECT_EQ(want[r].size(), got1.size());
      for (size_t k = 0; k < want[r].size() && k < got1.size(); ++k) {
        EXPECT_EQ(want[r][k].dtype(), got1[k].dtype()) << "output " << k;
        EXPECT_EQ(want[r][k].shape(), got1[k].shape()) << "output " << k;
        if (want[r][k].shape() != got1[k].shape() || want[r][k].dtype() != got1[k].dtype())
          return p;
        compare(k, want[r][k], got1[k]);
        if (::testing::Test::HasFatalFailure()) return p;
        EXPECT_EQ(0, std::memcmp(got1[k].raw(), got3[k].raw(), got1[k].nbytes()))
            << "output " << k << " differs between 1 and 3 threads";
      }
    }
  }
  return p;
}

}  // namespace lithe::test
