// Pass: noop_elimination (see pass_list.hpp for its place in the pipeline).
//
// Removes nodes that return their input unchanged (Identity, Dropout at inference, a
// Reshape/Cast/Transpose/Pad/Slice/Expand that changes nothing, Mul by 1, Add of 0, a
// one-input Concat...) by rewiring their readers to the input, and shortens chains that
// cancel or compose: Transpose∘Transpose becomes one Transpose (or nothing), a chain of
// Reshape/Flatten/Squeeze/Unsqueeze becomes one Reshape to a constant shape (or nothing).
//
// Shapes are static after import, so "changes nothing" is decided on the inferred types:
// for the view-like ops an output of the input's dtype and shape is the input. Where the
// data can move without the shape changing (a Slice with negative steps, a Pad that crops
// one side and pads the other, a Transpose of equal dims) the parameters are checked too.
#include <map>
#include <string>
#include <vector>

#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::passes {
namespace {

class NoopEliminator {
 public:
  NoopEliminator(const ir::Graph& g, Rewriter& rw)
      : g_(g),
        rw_(rw),
        body_reads_(util::values_read_by_subgraphs(g)),
        redirect_(g.values.size(), -1),
        removed_(g.nodes.size(), 0) {}

  int run() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) visit(static_cast<int>(i));
    return fired_;
  }

 private:
  // The value a (possibly rewired) value stands for after this run's rewrites.
  int resolve(int v) const {
    for (int hops = 0; v >= 0 && redirect_[static_cast<size_t>(v)] >= 0 && hops < 1 << 20; ++hops)
      v = redirect_[static_cast<size_t>(v)];
    return v;
  }
  // The node as it will be after this run (a replacement recorded earlier, or the original).
  const ir::Node& effective(int n) const {
    auto it = replaced_.find(n);
    return it == replaced_.end() ? g_.nodes[static_cast<size_t>(n)] : it->second;
  }
  const ir::TensorType& type(int v) const { return g_.values[static_cast<size_t>(v)].type; }
  bool body_read(int v) const { return v >= 0 && body_reads_[static_cast<size_t>(v)]; }
  const Tensor* constant(int v) const { return constant_of(g_, resolve(v)); }

  // Records "node n is its input `to`": readers of its first output read `to` instead.
  // Every other output of n must be unused. Fails (records nothing) when the output names
  // could not be kept or a subgraph reads the values by name.
  bool elide(int n, int to) {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    const int from = node.outputs.empty() ? -1 : node.outputs[0];
    if (from < 0 || to < 0 || from == to) return false;
    for (size_t i = 1; i < node.outputs.size(); ++i)
      if (!util::unused(g_, node.outputs[i], body_reads_)) return false;
    if (body_read(from)) return false;  // replace_uses does not reach into bodies
    // A graph output takes over `to`'s name, which a body may read by name.
    if (is_graph_output(g_, from) && body_read(to)) return false;
    if (!rw_.can_replace(from, to)) return false;
    rw_.replace_uses(from, to);
    rw_.remove_node(n);
    redirect_[static_cast<size_t>(from)] = to;
    removed_[static_cast<size_t>(n)] = 1;
    ++fired_;
    return true;
  }

  // Replaces node n by `repl` (same outputs) and removes `producer` when n was its only
  // reader, so a collapsed chain leaves nothing behind.
  void replace(int n, ir::Node repl, int producer) {
    rw_.replace_node(n, repl);
    replaced_[n] = std::move(repl);
    ++fired_;
    drop_if_only_reader(producer, n);
  }
  void drop_if_only_reader(int producer, int reader) {
    if (producer < 0 || removed_[static_cast<size_t>(producer)]) return;
    for (int v : g_.nodes[static_cast<size_t>(producer)].outputs) {
      if (v < 0) continue;
      if (body_read(v) || single_consumer(g_, v) != reader) return;
    }
    rw_.remove_node(producer);
    removed_[static_cast<size_t>(producer)] = 1;
  }

  void visit(int n) {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    if (!node.domain.empty() || node.inputs.empty() || node.outputs.empty()) return;
    const std::string& op = node.op_type;
    const int out = node.outputs[0];
    const int x = resolve(node.inputs[0]);
    if (out < 0) return;
    if (op == "Identity") {
      elide(n, x);
    } else if (op == "Dropout") {
      visit_dropout(n, x);
    } else if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
      if (x >= 0 && util::same_type(g_, out, x)) {
        if (elide(n, x)) return;
      }
      collapse_reshape_chain(n, x);
    } else if (op == "Cast" || op == "CastLike" || op == "Expand" || op == "Tile") {
      // Same dtype and shape: a Cast to the input's type, an Expand to its shape, a Tile by
      // ones (or of an empty tensor) copy the input.
      if (x >= 0 && util::same_type(g_, out, x)) elide(n, x);
    } else if (op == "Transpose") {
      visit_transpose(n, x);
    } else if (op == "Pad") {
      if (x >= 0 && util::same_type(g_, out, x) && pads_all_zero(node)) elide(n, x);
    } else if (op == "Slice") {
      // With every step 1, an output as long as the input on every axis starts at 0.
      if (x >= 0 && util::same_type(g_, out, x) && slice_steps_one(node)) elide(n, x);
    } else if (op == "Mul" || op == "Add" || op == "Sub" || op == "Div") {
      visit_arithmetic(n);
    } else if (op == "Concat" || op == "Sum" || op == "Max" || op == "Min" || op == "Mean") {
      int present = 0;
      for (int v : node.inputs) present += v >= 0 ? 1 : 0;
      if (present == 1 && x >= 0 && util::same_type(g_, out, x)) elide(n, x);
    }
  }

  void visit_dropout(int n, int x) {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    // training_mode (opset 12) absent or a known false: inference, the output is the input.
    if (node.inputs.size() > 2 && node.inputs[2] >= 0) {
      const Tensor* t = constant(node.inputs[2]);
      if (!t || !util::all_equal(*t, 0.0)) return;
    }
    elide(n, x);  // elide() checks the mask output is unused
  }

  // Perm of a Transpose node with input rank `rank` (reverse when the attribute is absent).
  static bool perm_of(const ir::Node& node, size_t rank, std::vector<int64_t>& perm) {
    auto it = node.attrs.find("perm");
    perm.clear();
    if (it == node.attrs.end()) {
      for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
      return true;
    }
    perm = it->second.ints;
    if (perm.size() != rank) return false;
    std::vector<char> seen(rank, 0);
    for (int64_t p : perm) {
      if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) return false;
      seen[static_cast<size_t>(p)] = 1;
    }
    return true;
  }
  static bool is_identity(const std::vector<int64_t>& perm) {
    for (size_t i = 0; i < perm.size(); ++i)
      if (perm[i] != static_cast<int64_t>(i)) return false;
    return true;
  }

  void visit_transpose(int n, int x) {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    if (x < 0 || !type(x).has_shape) return;
    std::vector<int64_t> p2;
    if (!perm_of(node, type(x).dims.size(), p2)) return;
    if (is_identity(p2)) {
      elide(n, x);
      return;
    }
    // Transpose of a Transpose: out[k] = src[p1[p2[k]]], one Transpose or none.
    const int pn = g_.values[static_cast<size_t>(x)].producer;
    if (pn < 0 || removed_[static_cast<size_t>(pn)]) return;
    const ir::Node& prev = effective(pn);
    if (prev.op_type != "Transpose" || !prev.domain.empty() || prev.inputs.size() != 1 ||
        prev.outputs.size() != 1 || prev.outputs[0] != x)
      return;
    const int src = resolve(prev.inputs[0]);
    if (src < 0 || !type(src).has_shape) return;
    std::vector<int64_t> p1;
    if (!perm_of(prev, type(src).dims.size(), p1) || p1.size() != p2.size()) return;
    std::vector<int64_t> composed(p2.size());
    for (size_t k = 0; k < p2.size(); ++k) composed[k] = p1[static_cast<size_t>(p2[k])];
    if (is_identity(composed)) {
      if (elide(n, src)) drop_if_only_reader(pn, n);
      return;
    }
    ir::Node repl = node;
    repl.inputs = {src};
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::kInts;
    a.ints = composed;
    repl.attrs["perm"] = a;
    replace(n, std::move(repl), pn);
  }

  static bool reshape_like(const ir::Node& node) {
    const std::string& op = node.op_type;
    return node.domain.empty() && node.outputs.size() == 1 &&
           (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze");
  }

  // A reshape-like node reading another: read the first one's input directly, with a
  // constant target shape; or nothing when the chain ends where it began.
  void collapse_reshape_chain(int n, int x) {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    const int out = node.outputs[0];
    if (x < 0 || !util::type_known(g_, out)) return;
    const int pn = g_.values[static_cast<size_t>(x)].producer;
    if (pn < 0 || removed_[static_cast<size_t>(pn)]) return;
    const ir::Node& prev = effective(pn);
    if (!reshape_like(prev) || prev.outputs[0] != x || prev.inputs.empty()) return;
    const int src = resolve(prev.inputs[0]);
    if (src < 0 || !util::type_known(g_, src) || type(src).dtype != type(out).dtype) return;
    if (util::same_type(g_, out, src)) {
      if (elide(n, src)) drop_if_only_reader(pn, n);
      return;
    }
    const Shape& dims = type(out).dims;
    for (int64_t d : dims)
      if (d == 0) return;  // 0 means "copy the input dim" in a Reshape target
    ir::Node repl;
    repl.name = node.name;
    repl.op_type = "Reshape";
    repl.opset = node.opset;
    repl.inputs = {src};
    repl.outputs = node.outputs;
    if (node.opset < 5) {  // the target was an attribute before opset 5
      ir::Attribute a;
      a.kind = ir::Attribute::Kind::kInts;
      a.ints = dims;
      repl.attrs["shape"] = a;
    } else {
      Tensor t(DType::kInt64, {static_cast<int64_t>(dims.size())});
      for (size_t i = 0; i < dims.size(); ++i) t.data<int64_t>()[i] = dims[i];
      repl.inputs.push_back(
          rw_.add_constant(g_.values[static_cast<size_t>(out)].name + "_shape", std::move(t)));
    }
    replace(n, std::move(repl), pn);
  }

  bool pads_all_zero(const ir::Node& node) const {
    ops::NodeAttrs a(node);
    std::vector<int64_t> pads;
    if (node.opset < 2) {
      if (!a.has_attr("paddings")) return false;
      pads = a.attr_ints("paddings");
    } else if (node.opset < 11) {
      if (!a.has_attr("pads")) return false;
      pads = a.attr_ints("pads");
    } else {
      const Tensor* t = node.inputs.size() > 1 ? constant(node.inputs[1]) : nullptr;
      if (!t) return false;
      pads = t->to_int64_vector();
    }
    for (int64_t p : pads)
      if (p != 0) return false;
    return true;
  }

  bool slice_steps_one(const ir::Node& node) const {
    if (node.opset < 10) return true;  // no steps before opset 10
    if (node.inputs.size() <= 4 || node.inputs[4] < 0) return true;
    const Tensor* t = constant(node.inputs[4]);
    return t && util::all_equal(*t, 1.0);
  }

  // x * 1, 1 * x, x / 1, x + 0, 0 + x, x - 0 where broadcasting keeps x's shape and dtype.
  void visit_arithmetic(int n) {
    const ir::Node& node = g_.nodes[static_cast<size_t>(n)];
    if (node.inputs.size() != 2 || node.inputs[0] < 0 || node.inputs[1] < 0) return;
    const std::string& op = node.op_type;
    const double unit = (op == "Mul" || op == "Div") ? 1.0 : 0.0;
    const bool commutes = op == "Mul" || op == "Add";
    for (int k = 0; k < (commutes ? 2 : 1); ++k) {
      const int c = node.inputs[static_cast<size_t>(1 - k)];
      const int x = resolve(node.inputs[static_cast<size_t>(k)]);
      const Tensor* t = constant(c);
      if (!t || !util::all_equal(*t, unit)) continue;
      if (util::same_type(g_, node.outputs[0], x) && elide(n, x)) return;
    }
  }

  const ir::Graph& g_;
  Rewriter& rw_;
  std::vector<char> body_reads_;
  std::vector<int> redirect_;  // value -> the value it was rewired to, or -1
  std::vector<char> removed_;  // per node
  std::map<int, ir::Node> replaced_;
  int fired_ = 0;
};

}  // namespace

int eliminate_noops(const ir::Graph& g, Rewriter& rw) {
  int fired = NoopEliminator(g, rw).run();
  if (fired) rw.note(str_cat(fired, " no-op nodes removed or chains shortened"));
  return fired;
}

}  // namespace lithe::passes
