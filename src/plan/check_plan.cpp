// Memory-plan checker. Two values may share bytes while both are alive only when no write
// destroys data that is still needed: a value is written at the step that produces it
// (over its whole range, except for skipped nodes, which write nothing, and a Concat, which
// writes only the slices of inputs that are not already in place), and that write must not
// touch a value that is alive at that step, unless it is the in-place write over the node's
// input 0 at that input's last use. Views (skipped Reshape...) and aliased slices therefore
// pass, and any two live values that overlap without such a relation fail. A strided value
// (a channel slice of a channels-last Concat output) covers rows of bytes, not one range:
// the checker compares such footprints exactly when their row strides agree.
#include <algorithm>

#include "plan/liveness.hpp"
#include "plan/plan.hpp"

namespace lithe::plan {
namespace {

// Bytes [lo + i * stride, lo + i * stride + row) for i = 0 .. rows-1 (rows == 1: one range).
struct Footprint {
  int64_t lo = 0, rows = 1, row = 0, stride = 0;
  int64_t hi() const { return rows > 0 ? lo + (rows - 1) * stride + row : lo; }
};

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

bool overlap(const Footprint& a, const Footprint& b) {
  if (a.rows <= 0 || b.rows <= 0 || a.row <= 0 || b.row <= 0) return false;
  if (a.hi() <= b.lo || b.hi() <= a.lo) return false;
  if (a.rows == 1 && b.rows == 1) return true;
  if (a.rows > 1 && b.rows > 1 && a.stride == b.stride) {
    // Row i of a meets row j of b iff -a.row < (b.lo - a.lo) + (j - i) * S < b.row... written
    // with k = i - j: a row of a and a row of b, k rows apart, intersect.
    const int64_t s = a.stride, d = b.lo - a.lo;
    // a.lo + i*S < b.lo + j*S + b.row and b.lo + j*S < a.lo + i*S + a.row, k = i - j:
    // d - a.row < k*S < d + b.row.
    const int64_t kmin = floor_div(d - a.row, s) + 1, kmax = floor_div(d + b.row - 1, s);
    // k = i - j with 0 <= i < a.rows, 0 <= j < b.rows.
    return std::max(kmin, -(b.rows - 1)) <= std::min(kmax, a.rows - 1);
  }
  if (a.rows == 1 || b.rows == 1) {
    const Footprint& c = a.rows == 1 ? a : b;  // contiguous
    const Footprint& r = a.rows == 1 ? b : a;  // rows
    // The first row of r that ends past c.lo must start before c's end.
    int64_t i = std::max<int64_t>(0, floor_div(c.lo - r.lo - r.row, r.stride) + 1);
    return i < r.rows && r.lo + i * r.stride < c.hi();
  }
  return true;  // different strides: by extent
}

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
    if (p_.strided(v))
      return str_cat("rows of ", p_.row_bytes[static_cast<size_t>(v)], " bytes every ",
                     p_.row_stride[static_cast<size_t>(v)], " from byte ", off(v));
    return str_cat("bytes [", off(v), ", ", off(v) + bytes(v), ")");
  }
  Footprint foot(int v) const {
    if (!p_.strided(v)) return {off(v), 1, bytes(v), bytes(v)};
    const size_t i = static_cast<size_t>(v);
    return {off(v), bytes(v) / p_.row_bytes[i], p_.row_bytes[i], p_.row_stride[i]};
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
    if (!p_.row_stride.empty() && (p_.row_stride.size() != nv || p_.row_bytes.size() != nv))
      fail("memory plan: row tables have ", p_.row_stride.size(), "/", p_.row_bytes.size(),
           " entries, the graph has ", nv, " values");
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
    if (p_.strided(v)) {
      const int64_t rb = p_.row_bytes[vi], rs = p_.row_stride[vi];
      if (rb <= 0 || rb > rs || bytes(v) % rb != 0)
        fail("memory plan: value '", name(v), "' has rows of ", rb, " bytes every ", rs,
             " bytes, which do not make its ", bytes(v), " bytes");
      if (a < 0) fail("memory plan: strided value '", name(v), "' does not alias a value");
    }
    if (off(v) + p_.extent(v) > p_.arena_bytes)
      fail("memory plan: value '", name(v), "' at ", range_str(v), " ends past the arena (",
           p_.arena_bytes, " bytes)");
    if (a < 0) return;
    if (a >= static_cast<int>(g_.values.size()) || a == v || !in_arena(a))
      fail("memory plan: value '", name(v), "' aliases value id ", a,
           ", which is not in the arena");
    if (off(v) < off(a) || off(v) + p_.extent(v) > off(a) + p_.extent(a))
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
      std::vector<Footprint> slices = concat_slices(node);
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const int v = node.inputs[i];
        const bool ok = i < slices.size() && in_arena(v) && descends_from(v, out) &&
                        foot(v).lo == slices[i].lo && foot(v).rows == slices[i].rows &&
                        foot(v).row == slices[i].row &&
                        (slices[i].rows == 1 || foot(v).stride == slices[i].stride);
        if (!ok)
          fail("memory plan: ", node.label(), " is skipped but input '", v >= 0 ? name(v) : "",
               "' is not in its slice of the output");
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

  // Where each input of a Concat lands in its (planned, contiguous) output: one range per
  // input with outer size 1, rows at the output's row stride otherwise. Empty when the
  // shapes are not static.
  std::vector<Footprint> concat_slices(const ir::Node& node) const {
    const int out = node.outputs[0];
    const ir::TensorType& t = g_.values[static_cast<size_t>(out)].type;
    if (!in_arena(out) || !t.fully_known()) return {};
    const int64_t axis = detail::concat_axis(node, static_cast<int64_t>(t.dims.size()));
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= t.dims[static_cast<size_t>(d)];
    if (outer <= 0 || bytes(out) % outer != 0) return {};
    const int64_t row = bytes(out) / outer;
    std::vector<Footprint> s;
    int64_t at = off(out);
    for (int v : node.inputs) {
      const int64_t b = v >= 0 ? detail::static_bytes(g_.values[static_cast<size_t>(v)].type) : -1;
      if (b < 0 || b % outer != 0) return {};
      s.push_back(outer == 1 ? Footprint{at, 1, b, b} : Footprint{at, outer, b / outer, row});
      at += b / outer;
    }
    return s;
  }

  // What node n writes for its output `u`: all of u, but for a Concat only the slices of
  // the inputs that are not already in place, and nothing for a skipped node.
  std::vector<Footprint> writes(const ir::Node& node, int n, int u) const {
    if (p_.skip[static_cast<size_t>(n)]) return {};
    if (!(node.domain.empty() && node.op_type == "Concat")) return {foot(u)};
    std::vector<Footprint> slices = concat_slices(node);
    if (slices.size() != node.inputs.size()) return {foot(u)};
    std::vector<Footprint> w;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int v = node.inputs[i];
      if (in_arena(v) && descends_from(v, u) && foot(v).lo == slices[i].lo) continue;
      w.push_back(slices[i]);
    }
    return w;
  }

  void check_node(int n) const {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    check_flags(node, n);
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const int u = node.outputs[k];
      if (!in_arena(u)) continue;
      for (const Footprint& r : writes(node, n, u)) {
        for (size_t wi = 0; wi < g_.values.size(); ++wi) {
          const int w = static_cast<int>(wi);
          if (w == u || !in_arena(w) || lt_.start[wi] > n || lt_.end[wi] < n) continue;
          if (!overlap(r, foot(w))) continue;
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
