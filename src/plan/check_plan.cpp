// Memory-plan checker. Two values may share bytes while both are alive only when no write
// destroys data that is still needed: a value is written at the step that produces it
// (over its whole range, except for skipped nodes, which write nothing, and a Concat, which
// writes only the slices of inputs that are not already in place), and that write must not
// touch a value that is alive at that step, unless it is the in-place write over the node's
// input 0 at that input's last use. Views (skipped Reshape...) and aliased slices therefore
// pass, and any two live values that overlap without such a relation fail.
#include <algorithm>

#include "plan/liveness.hpp"
#include "plan/plan.hpp"

namespace lithe::plan {
namespace {

struct Range {
  int64_t lo, hi;
};

class Checker {
 public:
  Checker(const ir::Graph& g, const MemoryPlan& p) : g_(g), p_(p) {}

  void run() {
    check_sizes();
    for (size_t v = 0; v < g_.values.size(); ++v) check_value(static_cast<int>(v));
    lt_ = detail::compute_lifetimes(g_);
    for (size_t n = 0; n < g_.nodes.size(); ++n) check_node(static_cast<int>(n));
  }

 private:
  const std::string& name(int v) const { return g_.values[static_cast<size_t>(v)].name; }
  int64_t off(int v) const { return p_.offset[static_cast<size_t>(v)]; }
  int64_t bytes(int v) const { return p_.bytes[static_cast<size_t>(v)]; }
  bool in_arena(int v) const { return v >= 0 && off(v) >= 0; }
  std::string range_str(int v) const {
    return str_cat("bytes [", off(v), ", ", off(v) + bytes(v), ")");
  }
  bool descends_from(int v, int ancestor) const {
    for (int a = p_.alias_of[static_cast<size_t>(v)]; a >= 0;
         a = p_.alias_of[static_cast<size_t>(a)])
      if (a == ancestor) return true;
    return false;
  }

  void check_sizes() const {
    const size_t nv = g_.values.size(), nn = g_.nodes.size();
    if (p_.offset.size() != nv || p_.bytes.size() != nv || p_.alias_of.size() != nv)
      fail("memory plan: per-value tables have ", p_.offset.size(), "/", p_.bytes.size(), "/",
           p_.alias_of.size(), " entries, the graph has ", nv, " values");
    if (p_.in_place.size() != nn || p_.skip.size() != nn)
      fail("memory plan: per-node tables have ", p_.in_place.size(), "/", p_.skip.size(),
           " entries, the graph has ", nn, " nodes");
    if (p_.arena_bytes < 0) fail("memory plan: negative arena size ", p_.arena_bytes);
  }

  void check_value(int v) const {
    const size_t vi = static_cast<size_t>(v);
    const int a = p_.alias_of[vi];
    if (off(v) < 0) {
      if (a >= 0)
        fail("memory plan: value '", name(v), "' aliases '", name(a), "' but is not in the arena");
      return;
    }
    const int64_t need = detail::plannable_bytes(g_.values[vi]);
    if (need < 0)
      fail("memory plan: value '", name(v), "' (", g_.values[vi].type.str(),
           ") cannot live in the arena (not produced by a node, or no static shape)");
    if (bytes(v) < need)
      fail("memory plan: value '", name(v), "' needs ", need, " bytes, the plan reserves ",
           bytes(v));
    if (off(v) + bytes(v) > p_.arena_bytes)
      fail("memory plan: value '", name(v), "' at ", range_str(v), " ends past the arena (",
           p_.arena_bytes, " bytes)");
    if (a < 0) return;
    if (a >= static_cast<int>(g_.values.size()) || a == v || !in_arena(a))
      fail("memory plan: value '", name(v), "' aliases value id ", a,
           ", which is not in the arena");
    if (off(v) < off(a) || off(v) + bytes(v) > off(a) + bytes(a))
      fail("memory plan: value '", name(v), "' at ", range_str(v), " lies outside '", name(a),
           "' at ", range_str(a), ", which it aliases");
    int hops = 0;
    for (int r = a; r >= 0; r = p_.alias_of[static_cast<size_t>(r)])
      if (++hops > static_cast<int>(g_.values.size()))
        fail("memory plan: the aliases of value '", name(v), "' form a cycle");
  }

  // Node flags must describe what the executor may rely on.
  void check_flags(const ir::Node& node, int n) const {
    const size_t ni = static_cast<size_t>(n);
    if (p_.in_place[ni]) {
      const int in = node.inputs.empty() ? -1 : node.inputs[0];
      const int out = node.outputs.empty() ? -1 : node.outputs[0];
      if (!in_arena(in) || !in_arena(out) || p_.alias_of[static_cast<size_t>(out)] != in ||
          off(in) != off(out))
        fail("memory plan: ", node.label(),
             " is marked in place but its output does not alias input 0");
    }
    if (!p_.skip[ni]) return;
    if (detail::is_view_op(node)) {
      const int in = node.inputs[0], out = node.outputs[0];
      if (!in_arena(in) || !in_arena(out) || !descends_from(out, in) || off(in) != off(out))
        fail("memory plan: ", node.label(),
             " is skipped but its output is not a view of its input");
      return;
    }
    if (node.domain.empty() && node.op_type == "Concat" && node.outputs.size() == 1) {
      const int out = node.outputs[0];
      int64_t at = in_arena(out) ? off(out) : -1;
      for (int v : node.inputs) {
        if (at < 0 || !in_arena(v) || !descends_from(v, out) || off(v) != at)
          fail("memory plan: ", node.label(), " is skipped but input '", v >= 0 ? name(v) : "",
               "' is not in its slice of the output");
        at += bytes(v);
      }
      return;
    }
    if (node.domain.empty() && node.op_type == "Split" && !node.inputs.empty()) {
      const int in = node.inputs[0];
      int64_t at = in_arena(in) ? off(in) : -1;
      for (int v : node.outputs) {
        if (at < 0 || !in_arena(v) || !descends_from(v, in) || off(v) != at)
          fail("memory plan: ", node.label(), " is skipped but output '", v >= 0 ? name(v) : "",
               "' is not a view of its slice of the input");
        at += bytes(v);
      }
      if (at != off(in) + bytes(in))
        fail("memory plan: ", node.label(), " is skipped but its outputs do not cover its input");
      return;
    }
    fail("memory plan: ", node.label(),
         " is marked skipped, but only views, Concat and Split can be");
  }

  // The byte ranges node n writes for its output `u`.
  std::vector<Range> writes(const ir::Node& node, int n, int u) const {
    if (p_.skip[static_cast<size_t>(n)]) return {};
    std::vector<Range> w{{off(u), off(u) + bytes(u)}};
    if (!(node.domain.empty() && node.op_type == "Concat")) return w;
    for (int v : node.inputs) {
      if (!in_arena(v) || !descends_from(v, u)) continue;
      std::vector<Range> left;
      for (const Range& r : w) {
        if (r.lo < off(v)) left.push_back({r.lo, std::min(r.hi, off(v))});
        if (r.hi > off(v) + bytes(v)) left.push_back({std::max(r.lo, off(v) + bytes(v)), r.hi});
      }
      w = std::move(left);
    }
    return w;
  }

  void check_node(int n) const {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    check_flags(node, n);
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const int u = node.outputs[k];
      if (!in_arena(u)) continue;
      for (const Range& r : writes(node, n, u)) {
        if (r.lo >= r.hi) continue;
        for (size_t wi = 0; wi < g_.values.size(); ++wi) {
          const int w = static_cast<int>(wi);
          if (w == u || !in_arena(w) || lt_.start[wi] > n || lt_.end[wi] < n) continue;
          if (off(w) >= r.hi || r.lo >= off(w) + bytes(w)) continue;
          const bool in_place_input = p_.in_place[static_cast<size_t>(n)] && k == 0 &&
                                      w == node.inputs[0] &&
                                      p_.alias_of[static_cast<size_t>(u)] == w && lt_.end[wi] == n;
          if (in_place_input) continue;
          fail("memory plan: value '", name(u), "' (", range_str(u), ") written at step ", n,
               " by ", node.label(), " overlaps value '", name(w), "' (", range_str(w),
               "), alive over steps ", lt_.start[wi], "..", lt_.end[wi]);
        }
      }
    }
  }

  const ir::Graph& g_;
  const MemoryPlan& p_;
  detail::Lifetimes lt_;
};

}  // namespace

void check_plan(const ir::Graph& g, const MemoryPlan& p) { Checker(g, p).run(); }

}  // namespace lithe::plan
