// Pass: fuse_activation (see pass_list.hpp for its place in the pipeline).
//
// Conv / ConvTranspose / Gemm / MatMul (ONNX, or lithe-domain without an activation yet)
// whose output feeds exactly one activation becomes one lithe-domain node that applies the
// activation in its epilogue (ops/fused.cpp). Matched:
//   op -> Relu | Clip | LeakyRelu | HardSigmoid | HardSwish | Sigmoid | Tanh
//   x = op(...); Mul(x, HardSigmoid(x; alpha 1/6, beta 1/2))  -> HardSwish
//   x = op(...); Mul(x, Sigmoid(x))                           -> SiLU
//   x = op(...); Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)        -> HardSwish
// and then, on a fused op with an activation, a scalar Mul and / or Add (Sub) after it
// (`activation_affine`: y = act(...) * scale + shift).
// A lithe node that already carries a residual input is accepted: y = act(op + Z) is what
// Add followed by the activation computed, so Conv + Add + Relu ends as one node.
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "ops/fused_internal.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::passes {
namespace {

using ops::fused::Activation;
using ops::fused::Epilogue;

// A float attribute with its default; false when present with another kind (the op would
// reject the node, so leave it alone).
bool float_attr(const ir::Node& n, const char* name, float def, float* out) {
  auto it = n.attrs.find(name);
  if (it == n.attrs.end()) {
    *out = def;
    return true;
  }
  if (it->second.kind != ir::Attribute::Kind::kFloat) return false;
  *out = it->second.f;
  return true;
}

// A scalar constant Clip bound; false when it is not a one-element constant.
bool clip_bound(const ir::Graph& g, int v, float* out) {
  const Tensor* t = constant_of(g, v);
  if (!t || t->numel() != 1 || !is_float(t->dtype())) return false;
  *out = static_cast<float>(t->at_double(0));
  return !std::isnan(*out);
}

// A plain two-input, one-output ONNX node of type `op`.
bool is_binary(const ir::Node& n, const char* op) {
  return n.op_type == op && n.domain.empty() && n.inputs.size() == 2 && n.inputs[0] >= 0 &&
         n.inputs[1] >= 0 && n.outputs.size() == 1 && n.outputs[0] >= 0;
}

// True when binary node `n` reads exactly `a` and `b`, in either order.
bool reads_pair(const ir::Node& n, int a, int b) {
  return (n.inputs[0] == a && n.inputs[1] == b) || (n.inputs[0] == b && n.inputs[1] == a);
}

// True when `c` is a one-element float constant equal to `want` (within `tol`) whose rank
// does not exceed the other operand's (so it cannot broadcast the result to a larger rank).
bool scalar_constant_is(const ir::Graph& g, int c, const ir::TensorType& other, float want,
                        float tol) {
  const Tensor* t = constant_of(g, c);
  if (!t || t->numel() != 1 || t->dtype() != other.dtype) return false;
  if (t->rank() > static_cast<int64_t>(other.dims.size())) return false;
  return std::abs(t->at_double(0) - static_cast<double>(want)) <= static_cast<double>(tol);
}

// If `c` is an activation that reads only `v` (as its data input) with constant parameters,
// fills `e` and returns true.
bool match_activation(const ir::Graph& g, const ir::Node& c, int v, Epilogue* e) {
  if (c.domain != "" || c.inputs.empty() || c.inputs[0] != v) return false;
  if (c.outputs.size() != 1 || c.outputs[0] < 0) return false;
  for (size_t i = 1; i < c.inputs.size(); ++i)
    if (c.inputs[i] == v) return false;
  const std::string& op = c.op_type;
  if (op != "Clip" && c.inputs.size() != 1) return false;
  if (op == "Relu") {
    e->act = Activation::kRelu;
  } else if (op == "Sigmoid") {
    e->act = Activation::kSigmoid;
  } else if (op == "Tanh") {
    e->act = Activation::kTanh;
  } else if (op == "HardSwish") {
    e->act = Activation::kHardSwish;
  } else if (op == "LeakyRelu") {
    e->act = Activation::kLeakyRelu;
    if (!float_attr(c, "alpha", 0.01f, &e->p0)) return false;
  } else if (op == "HardSigmoid") {
    e->act = Activation::kHardSigmoid;
    if (!float_attr(c, "alpha", 0.2f, &e->p0) || !float_attr(c, "beta", 0.5f, &e->p1)) return false;
  } else if (op == "Clip") {
    e->act = Activation::kClip;
    const float inf = std::numeric_limits<float>::infinity();
    e->p0 = -inf;
    e->p1 = inf;
    if (c.opset < 11) {
      if (c.inputs.size() != 1) return false;
      if (!float_attr(c, "min", -inf, &e->p0) || !float_attr(c, "max", inf, &e->p1)) return false;
    } else {
      if (c.inputs.size() > 3) return false;
      if (c.inputs.size() > 1 && c.inputs[1] >= 0 && !clip_bound(g, c.inputs[1], &e->p0))
        return false;
      if (c.inputs.size() > 2 && c.inputs[2] >= 0 && !clip_bound(g, c.inputs[2], &e->p1))
        return false;
    }
  } else {
    return false;
  }
  return true;
}

// x * Gate(x), where Gate is Sigmoid (-> SiLU) or HardSigmoid(1/6, 1/2) (-> HardSwish), on the
// producer's output `v`, whose only two uses are the gate and the Mul. Sets the nodes to
// absorb, the pattern's output value and `e`.
bool match_gated(const ir::Graph& g, int v, std::vector<int>* absorbed, int* out, Epilogue* e) {
  if (is_graph_output(g, v)) return false;
  const auto& uses = g.values[static_cast<size_t>(v)].consumers;
  if (uses.size() != 2 || uses[0] == uses[1]) return false;
  for (int k = 0; k < 2; ++k) {
    const ir::Node& s = g.nodes[static_cast<size_t>(uses[static_cast<size_t>(k)])];
    const int mi = uses[static_cast<size_t>(1 - k)];
    const ir::Node& m = g.nodes[static_cast<size_t>(mi)];
    Epilogue se;
    if (!match_activation(g, s, v, &se)) continue;
    if (se.act == Activation::kSigmoid) {
      e->act = Activation::kSiLU;
    } else if (se.act == Activation::kHardSigmoid && std::abs(se.p0 - 1.0f / 6) < 1e-6f &&
               se.p1 == 0.5f) {
      e->act = Activation::kHardSwish;
    } else {
      continue;
    }
    const int sv = s.outputs[0];
    if (!is_binary(m, "Mul") || !reads_pair(m, v, sv)) continue;
    if (single_consumer(g, sv) != mi) continue;
    *absorbed = {uses[static_cast<size_t>(k)], mi};
    *out = m.outputs[0];
    return true;
  }
  return false;
}

// The decomposed HardSwish that paddle2onnx and older exporters write:
//   Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)   (or the last step as Mul by 1/6)
// on the producer's output `v`, whose only uses are the Add and the Mul.
bool match_hardswish_decomposed(const ir::Graph& g, int v, std::vector<int>* absorbed, int* out,
                                Epilogue* e) {
  if (is_graph_output(g, v)) return false;
  const ir::TensorType& vt = g.values[static_cast<size_t>(v)].type;
  const auto& uses = g.values[static_cast<size_t>(v)].consumers;
  if (!vt.fully_known() || uses.size() != 2 || uses[0] == uses[1]) return false;
  for (int k = 0; k < 2; ++k) {
    const int ai = uses[static_cast<size_t>(k)], mi = uses[static_cast<size_t>(1 - k)];
    const ir::Node& a = g.nodes[static_cast<size_t>(ai)];
    const ir::Node& m = g.nodes[static_cast<size_t>(mi)];
    if (!is_binary(a, "Add") || !is_binary(m, "Mul")) continue;
    const int three = a.inputs[0] == v ? a.inputs[1] : a.inputs[0];
    if (!scalar_constant_is(g, three, vt, 3.0f, 0)) continue;
    const int ci = single_consumer(g, a.outputs[0]);
    if (ci < 0) continue;
    const ir::Node& c = g.nodes[static_cast<size_t>(ci)];
    Epilogue ce;
    if (c.op_type != "Clip" || !match_activation(g, c, a.outputs[0], &ce)) continue;
    if (ce.p0 != 0.0f || ce.p1 != 6.0f) continue;
    if (!reads_pair(m, v, c.outputs[0]) || single_consumer(g, c.outputs[0]) != mi) continue;
    const int di = single_consumer(g, m.outputs[0]);
    if (di < 0) continue;
    const ir::Node& d = g.nodes[static_cast<size_t>(di)];
    const bool div6 = is_binary(d, "Div") && d.inputs[0] == m.outputs[0] &&
                      scalar_constant_is(g, d.inputs[1], vt, 6.0f, 0);
    const bool mul6 = is_binary(d, "Mul") &&
                      scalar_constant_is(g, d.inputs[0] == m.outputs[0] ? d.inputs[1] : d.inputs[0],
                                         vt, 1.0f / 6, 1e-6f);
    if (!div6 && !mul6) continue;
    const ir::TensorType& ot = g.values[static_cast<size_t>(d.outputs[0])].type;
    if (!ot.fully_known() || ot.dims != vt.dims) continue;  // the constants must not broadcast
    e->act = Activation::kHardSwish;
    *absorbed = {ai, ci, mi, di};
    *out = d.outputs[0];
    return true;
  }
  return false;
}

// The value of the one-element constant that binary node `n` combines with `v` (as its
// input `want_pos`, or either when -1), of v's type and a rank that cannot broadcast the result;
// false otherwise.
bool scalar_operand(const ir::Graph& g, const ir::Node& n, int v, int want_pos, float* k) {
  if (n.inputs[0] == n.inputs[1]) return false;
  const int pos = n.inputs[0] == v ? 0 : 1;
  if (n.inputs[static_cast<size_t>(pos)] != v || (want_pos >= 0 && pos != want_pos)) return false;
  const ir::TensorType& vt = g.values[static_cast<size_t>(v)].type;
  const Tensor* t = constant_of(g, n.inputs[static_cast<size_t>(1 - pos)]);
  if (!t || t->numel() != 1 || t->dtype() != vt.dtype) return false;
  if (t->rank() > static_cast<int64_t>(vt.dims.size())) return false;
  *k = static_cast<float>(t->at_double(0));
  return std::isfinite(*k) && static_cast<double>(*k) == t->at_double(0);
}

// After a fused activation on `v`: Mul by a scalar constant, then Add (or Sub) of one, or
// either alone (PP-LCNet's learnable affine block) -> y * scale + shift. A missing shift is
// -0, which adds nothing to any value, -0 included. Sets the nodes to absorb, the pattern's
// output value and e's affine map.
bool match_affine(const ir::Graph& g, int v, std::vector<int>* absorbed, int* out, Epilogue* e) {
  e->scale = 1.0f;
  e->shift = -0.0f;
  int cur = v;
  int c = single_consumer(g, cur);
  if (c >= 0 && is_binary(g.nodes[static_cast<size_t>(c)], "Mul") &&
      scalar_operand(g, g.nodes[static_cast<size_t>(c)], cur, -1, &e->scale)) {
    absorbed->push_back(c);
    cur = g.nodes[static_cast<size_t>(c)].outputs[0];
    c = single_consumer(g, cur);
  }
  if (c >= 0) {
    const ir::Node& a = g.nodes[static_cast<size_t>(c)];
    float k = 0;
    if (is_binary(a, "Add") && scalar_operand(g, a, cur, -1, &k)) {
      e->shift = k;
    } else if (is_binary(a, "Sub") && scalar_operand(g, a, cur, 0, &k)) {
      e->shift = -k;
    } else {
      c = -1;
    }
    if (c >= 0) {
      absorbed->push_back(c);
      cur = a.outputs[0];
    }
  }
  if (absorbed->empty()) return false;
  const ir::TensorType& vt = g.values[static_cast<size_t>(v)].type;
  const ir::TensorType& ot = g.values[static_cast<size_t>(cur)].type;
  if (!vt.fully_known() || !ot.fully_known() || ot.dims != vt.dims || ot.dtype != vt.dtype)
    return false;
  e->affine = true;
  *out = cur;
  return true;
}

// A lithe-domain fused op with an activation and no affine map yet.
bool takes_affine(const ir::Node& n) {
  if (n.domain != "lithe" || ops::fused::residual_index(n.op_type) < 0) return false;
  if (n.outputs.size() != 1 || n.outputs[0] < 0 || n.attrs.count("activation_affine")) return false;
  auto it = n.attrs.find("activation");
  return it != n.attrs.end() && it->second.kind == ir::Attribute::Kind::kString &&
         !it->second.s.empty();
}

std::vector<float> params_of(const Epilogue& e) {
  switch (e.act) {
    case Activation::kClip:
    case Activation::kHardSigmoid:
      return {e.p0, e.p1};
    case Activation::kLeakyRelu:
      return {e.p0};
    default:
      return {};
  }
}

}  // namespace

int fuse_activation(const ir::Graph& g, Rewriter& rw) {
  int fired = 0;
  std::map<std::string, int> by_kind;
  // Node ni becomes `f`, writing `out`; the nodes in `absorbed` go.
  auto fuse = [&](size_t ni, ir::Node f, int out, const std::vector<int>& absorbed,
                  const std::string& kind) {
    f.outputs = {out};
    rw.replace_node(static_cast<int>(ni), std::move(f));
    for (int r : absorbed) rw.remove_node(r);
    ++by_kind[kind];
    ++fired;
  };
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const ir::Node& n = g.nodes[ni];
    if (takes_affine(n) && is_float(g.values[static_cast<size_t>(n.outputs[0])].type.dtype)) {
      Epilogue e;
      int out = -1;
      std::vector<int> absorbed;
      if (!match_affine(g, n.outputs[0], &absorbed, &out, &e)) continue;
      ir::Node f = n;
      f.attrs["activation_affine"] = ir::Attribute::of_floats({e.scale, e.shift});
      fuse(ni, std::move(f), out, absorbed, "affine");
      continue;
    }
    if (!util::epilogue_free(n)) continue;
    const int v = n.outputs[0];
    const ir::TensorType& vt = g.values[static_cast<size_t>(v)].type;
    if (!is_float(vt.dtype)) continue;

    Epilogue e;
    int out = -1;
    std::vector<int> absorbed;
    const int c = single_consumer(g, v);
    if (c >= 0 && match_activation(g, g.nodes[static_cast<size_t>(c)], v, &e)) {
      absorbed = {c};
      out = g.nodes[static_cast<size_t>(c)].outputs[0];
    } else if (!match_gated(g, v, &absorbed, &out, &e) &&
               !match_hardswish_decomposed(g, v, &absorbed, &out, &e)) {
      continue;
    }
    if (g.values[static_cast<size_t>(out)].type.dtype != vt.dtype) continue;
    // Parameters the fused op would reject (e.g. a Clip bound out of float range) stay unfused.
    if (!ops::fused::parse_epilogue(ops::fused::activation_name(e.act), params_of(e), {}, nullptr)
             .empty())
      continue;

    ir::Node f = n;
    f.domain = "lithe";
    f.attrs["activation"].kind = ir::Attribute::Kind::kString;
    f.attrs["activation"].s = ops::fused::activation_name(e.act);
    f.attrs.erase("activation_params");
    if (std::vector<float> p = params_of(e); !p.empty())
      f.attrs["activation_params"] = ir::Attribute::of_floats(std::move(p));
    fuse(ni, std::move(f), out, absorbed, ops::fused::activation_name(e.act));
  }
  if (fired) {
    std::string note = std::to_string(fired) + " activation(s) fused:";
    for (const auto& [kind, count] : by_kind) note += " " + kind + " " + std::to_string(count);
    rw.note(std::move(note));
  }
  return fired;
}

}  // namespace lithe::passes
