#include "runtime/executor.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/memory.hpp"
#include "ops/infer.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {

namespace {

// Hands back the resident pages of constant v when it lies in a read-only file mapping (clean
// pages: if anything touches them again they come back from the page cache, so this is never
// a correctness matter, only a smaller resident set). True when v lies in the mapping.
bool release_pages(const ir::Value& val, const void* mapped, size_t mapped_bytes) {
  if (!mapped || !val.constant) return false;
  const auto lo = reinterpret_cast<uintptr_t>(mapped), hi = lo + mapped_bytes;
  const auto b = reinterpret_cast<uintptr_t>(val.constant->raw());
  const uintptr_t e = b + val.constant->nbytes();
  if (b < lo || e > hi) return false;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t pb = (b + page - 1) / page * page, pe = e / page * page;
  if (pe > pb) ::madvise(reinterpret_cast<void*>(pb), pe - pb, MADV_DONTNEED);
  return true;
}

}  // namespace

Program::Program(std::shared_ptr<const ir::Graph> graph, const plan::MemoryPlan& plan,
                 kernels::Isa isa, const void* mapped, size_t mapped_bytes)
    : ref_(std::move(graph), &plan), isa_(isa) {
  const ir::Graph& g = ref_.graph();
  if (!supports(g, plan)) fail("graph '", g.name, "' cannot run on the fast executor");
  const kernels::KernelTable& kt = kernels::kernel_table(isa);
  fast_.resize(g.nodes.size());
  const std::vector<char> winograd = choose_winograd(g);
  std::vector<char> released(g.values.size(), 0);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    ops_.push_back(&ops::require_op(g.nodes[n]));
    if (plan.skip[n]) continue;
    try {
      fast_[n] = make_fast_step(g, n, kt, &plan, &winograd);
    } catch (const Error& e) {
      throw e.with_context(g.nodes[n].label());
    }
    if (!fast_[n]) continue;
    scratch_floats_ = std::max(scratch_floats_, fast_[n]->scratch_floats());
    packed_bytes_ += fast_[n]->owned_bytes();
    // Weights this step packed and nothing else reads: their file pages can go now, so the
    // peak holds one layer's original weights at a time, not the whole file.
    for (int v : fast_[n]->packed_constants()) {
      if (v < 0) continue;
      const ir::Value& val = g.values[static_cast<size_t>(v)];
      bool only_here = std::find(g.outputs.begin(), g.outputs.end(), v) == g.outputs.end();
      for (int c : val.consumers) only_here = only_here && c == static_cast<int>(n);
      if (only_here && !released[static_cast<size_t>(v)] &&
          release_pages(val, mapped, mapped_bytes)) {
        released[static_cast<size_t>(v)] = 1;
        released_bytes_ += static_cast<int64_t>(val.constant->nbytes());
      }
    }
  }
  // Fused inverted-residual blocks: the projection's step also runs the two convs before it.
  fused_.resize(g.nodes.size());
  absorbed_.assign(g.nodes.size(), 0);
  std::vector<const FastStep*> steps(g.nodes.size());
  for (size_t n = 0; n < g.nodes.size(); ++n) steps[n] = fast_[n].get();
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    size_t e = 0, d = 0;
    if (!fast_[n]) continue;
    std::unique_ptr<FastStep> f = fuse_inverted_residual(g, plan, n, steps, &e, &d);
    // Not over an expansion that is itself a fused projection (pointwise -> depthwise ->
    // pointwise chains, MobileNetV1): every other block is fused there.
    if (!f || fused_[e] || absorbed_[e] || absorbed_[d]) continue;
    fused_[n] = std::move(f);
    absorbed_[e] = absorbed_[d] = 1;
    scratch_floats_ = std::max(scratch_floats_, fused_[n]->scratch_floats());
  }
}

bool Program::supports(const ir::Graph& g, const plan::MemoryPlan& p) {
  if (p.offset.size() != g.values.size()) return false;
  for (const ir::Node& n : g.nodes) {
    if (ir::has_subgraph(n)) return false;
    for (int v : n.outputs)
      if (v >= 0 && p.offset[static_cast<size_t>(v)] < 0) return false;
  }
  return true;
}

// A node run by its reference kernel: the compute context and what to zero before it.
struct Session::RefStep {
  std::vector<const Tensor*> ins;
  std::vector<Tensor*> outs;
  std::unique_ptr<ops::ComputeContext> ctx;
  std::vector<std::pair<void*, size_t>> zero;  // outputs to zero-fill before computing
};

Session::Session(std::shared_ptr<const Program> program, int threads)
    : program_(std::move(program)) {
  const Program& p = *program_;
  const ir::Graph& g = p.graph();
  const plan::MemoryPlan& plan = p.plan();
  arena_ = allocate_arena(plan.arena_bytes);
  pool_ = std::make_unique<ThreadPool>(threads);
  scratch_bytes_ = (p.scratch_floats() * threads + 16) * static_cast<int64_t>(sizeof(float));
  scratch_ = zeroed_memory(static_cast<size_t>(scratch_bytes_));
  if (!scratch_) fail_runtime("out of memory allocating ", scratch_bytes_, " bytes of scratch");
  inputs_.resize(g.inputs.size());
  const size_t nv = g.values.size();
  views_.resize(nv);
  tensor_.assign(nv, nullptr);
  vals_.assign(nv, nullptr);
  for (size_t v = 0; v < nv; ++v) {
    const ir::Value& val = g.values[v];
    if (val.constant) {
      tensor_[v] = &*val.constant;
      vals_[v] = const_cast<void*>(val.constant->raw());
    } else if (plan.strided(static_cast<int>(v))) {
      // Rows inside a Concat output: fast steps write the rows in place (vals_); a reference
      // kernel computes into a dense tensor, which run_reference scatters into the rows. Only
      // a reference producer gets one (a dense copy per concat input doubled GoogLeNet's and
      // SqueezeNet's resident memory).
      if (val.producer < 0 || !p.fast_[static_cast<size_t>(val.producer)])
        views_[v] = Tensor(val.type.dtype, val.type.dims);
      tensor_[v] = &views_[v];
      vals_[v] = arena_.get() + plan.offset[v];
    } else if (plan.offset[v] >= 0) {
      views_[v] =
          Tensor::borrow(val.type.dtype, val.type.dims, nullptr, arena_.get() + plan.offset[v]);
      tensor_[v] = &views_[v];
      vals_[v] = views_[v].raw();
    }
  }
  for (size_t i = 0; i < g.inputs.size(); ++i)
    tensor_[static_cast<size_t>(g.inputs[i])] = &inputs_[i];
  ref_steps_.resize(g.nodes.size());
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (plan.skip[n] || p.fast_[n]) continue;
    const ir::Node& node = g.nodes[n];
    auto rs = std::make_unique<RefStep>();
    for (int v : node.inputs) rs->ins.push_back(v >= 0 ? tensor_[static_cast<size_t>(v)] : nullptr);
    const bool holds_data = plan.in_place[n] || p.ref_.concat_in_place(n);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const int v = node.outputs[i];
      rs->outs.push_back(v >= 0 ? &views_[static_cast<size_t>(v)] : nullptr);
      if (v >= 0 && !(i == 0 && holds_data))
        rs->zero.emplace_back(views_[static_cast<size_t>(v)].raw(),
                              views_[static_cast<size_t>(v)].nbytes());
    }
    rs->ctx = std::make_unique<ops::ComputeContext>(node, rs->ins, rs->outs);
    ref_steps_[n] = std::move(rs);
  }
  outputs_.resize(g.outputs.size());
  node_ns_.assign(g.nodes.size(), 0);
}

Session::~Session() = default;

int64_t Session::arena_bytes() const {
  return program_->plan().arena_bytes + scratch_bytes_;
}

void Session::set_profiling(bool on) {
  profiling_ = on;
  std::fill(node_ns_.begin(), node_ns_.end(), 0);
}

void Session::run_fast(const FastStep* step) {
  const int64_t per_thread = program_->scratch_floats();
  struct Job {
    const FastStep* step;
    const ValuePtrs* vals;
    float* scratch;
    int64_t per_thread;
  } job{step, &vals_, static_cast<float*>(scratch_.get()), per_thread};
  pool_->run(
      [](void* c, int t, int nt) {
        const Job& j = *static_cast<const Job*>(c);
        j.step->run(*j.vals, t, nt, j.scratch + j.per_thread * t);
      },
      &job);
}

void Session::run_reference(size_t n) {
  const ir::Graph& g = program_->graph();
  const ir::Node& node = g.nodes[n];
  RefStep& rs = *ref_steps_[n];
  try {
    for (int v : node.inputs)
      if (v >= 0 && !tensor_[static_cast<size_t>(v)]->defined())
        fail("input '", g.values[static_cast<size_t>(v)].name, "' has no value");
    for (auto [ptr, bytes] : rs.zero) std::memset(ptr, 0, bytes);
    if (program_->ref_.concat_in_place(n)) {
      concat_into_slices(node, rs.ins, views_[static_cast<size_t>(node.outputs[0])]);
      return;
    }
    program_->ops_[n]->compute(*rs.ctx);
  } catch (const Error& e) {
    throw e.with_context(node.label());
  }
  // A kernel that replaced an output (ComputeContext::set_output) gets it copied into its
  // arena bytes, where later steps read it.
  const plan::MemoryPlan& plan = program_->plan();
  for (int v : node.outputs) {
    if (v < 0) continue;
    Tensor& view = views_[static_cast<size_t>(v)];
    void* home = arena_.get() + plan.offset[static_cast<size_t>(v)];
    if (plan.strided(v)) {
      scatter_rows(view, plan, v, arena_.get(), g, node);
      continue;
    }
    if (view.raw() == home) continue;
    const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
    if (!view.defined() || view.dtype() != t.dtype || view.shape() != t.dims)
      fail_runtime(node.label(), ": output '", g.values[static_cast<size_t>(v)].name,
                   "' does not match the memory plan's ", t.str());
    Tensor fresh = Tensor::borrow(t.dtype, t.dims, nullptr, home);
    if (fresh.nbytes()) std::memmove(home, view.raw(), fresh.nbytes());
    view = std::move(fresh);
  }
}

void Session::observe(size_t n) {
  const ir::Graph& g = program_->graph();
  const plan::MemoryPlan& plan = program_->plan();
  for (int v : g.nodes[n].outputs) {
    if (v < 0) continue;
    if (plan.strided(v))
      observer_(v, gather_rows(plan, v, arena_.get(), g));
    else
      observer_(v, views_[static_cast<size_t>(v)]);
  }
}

void Session::run() {
  const ir::Graph& g = program_->graph();
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const ir::Value& v = g.values[static_cast<size_t>(g.inputs[i])];
    if (!inputs_[i].defined()) fail("input '", v.name, "' was not set");
    check_tensor_type(inputs_[i], v.type, v.name);
    vals_[static_cast<size_t>(g.inputs[i])] = inputs_[i].raw();
  }
  const plan::MemoryPlan& plan = program_->plan();
  // An observer sees every node's output: the fused steps only run without one.
  const bool fused = !observer_;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (plan.skip[n]) {
      if (observer_) observe(n);
      continue;
    }
    if (fused && program_->absorbed_[n]) continue;
    const auto t0 =
        profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (fused && program_->fused_[n])
      run_fast(program_->fused_[n].get());
    else if (program_->fast_[n])
      run_fast(program_->fast_[n].get());
    else
      run_reference(n);
    if (profiling_)
      node_ns_[n] += std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now() - t0)
                         .count();
    if (observer_) observe(n);
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const Tensor* t = tensor_[static_cast<size_t>(g.outputs[i])];
    if (!t || !t->defined())
      fail("graph output '", g.values[static_cast<size_t>(g.outputs[i])].name,
           "' was not produced");
    if (outputs_[i].raw() != t->raw()) outputs_[i] = *t;
  }
}

}  // namespace lithe::runtime
