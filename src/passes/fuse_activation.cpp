// Pass: fuse_activation (see pass_list.hpp for its place in the pipeline).
//
// Conv / ConvTranspose / Gemm / MatMul (ONNX, or lithe-domain without an activation yet)
// whose output feeds exactly one activation becomes one lithe-domain node that applies the
// activation in its epilogue (ops/fused.cpp). Matched:
//   op -> Relu | Clip | LeakyRelu | HardSigmoid | HardSwish | Sigmoid | Tanh
//   x = op(...); Mul(x, HardSigmoid(x; alpha 1/6, beta 1/2))  -> HardSwish
//   x = op(...); Mul(x, Sigmoid(x))                           -> SiLU
// A lithe node that already carries a residual input is accepted: y = act(op + Z) is what
// Add followed by the activation computed, so Conv + Add + Relu ends as one node.
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "ops/fused_internal.hpp"
#include "passes/pass.hpp"

namespace lithe::passes {
namespace {

using ops::fused::Activation;
using ops::fused::Epilogue;

// True for a node whose epilogue can still take an activation.
bool is_fusable_producer(const ir::Node& n) {
  if (ops::fused::residual_index(n.op_type) < 0) return false;
  if (n.domain != "" && n.domain != "lithe") return false;
  if (n.outputs.size() != 1 || n.outputs[0] < 0) return false;
  if (n.domain == "lithe") {
    auto it = n.attrs.find("activation");
    if (it != n.attrs.end() &&
        (it->second.kind != ir::Attribute::Kind::kString || !it->second.s.empty()))
      return false;
  }
  return true;
}

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
// producer's output `v`, whose only two uses are the gate and the Mul. Returns the Mul's node
// index and sets `gate` and `e`, or -1.
int match_gated(const ir::Graph& g, int v, int* gate, Epilogue* e) {
  if (is_graph_output(g, v)) return -1;
  const auto& uses = g.values[static_cast<size_t>(v)].consumers;
  if (uses.size() != 2 || uses[0] == uses[1]) return -1;
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
    if (m.op_type != "Mul" || m.domain != "" || m.inputs.size() != 2) continue;
    if (m.outputs.size() != 1 || m.outputs[0] < 0) continue;
    if (!((m.inputs[0] == v && m.inputs[1] == sv) || (m.inputs[0] == sv && m.inputs[1] == v)))
      continue;
    if (single_consumer(g, sv) != mi) continue;
    *gate = uses[static_cast<size_t>(k)];
    return mi;
  }
  return -1;
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
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const ir::Node& n = g.nodes[ni];
    if (!is_fusable_producer(n)) continue;
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
    } else {
      int gate = -1;
      const int m = match_gated(g, v, &gate, &e);
      if (m < 0) continue;
      absorbed = {gate, m};
      out = g.nodes[static_cast<size_t>(m)].outputs[0];
    }
    if (g.values[static_cast<size_t>(out)].type.dtype != vt.dtype) continue;
    // Parameters the fused op would reject (e.g. a Clip bound out of float range) stay unfused.
    if (!ops::fused::parse_epilogue(ops::fused::activation_name(e.act), params_of(e), nullptr)
             .empty())
      continue;

    ir::Node f = n;
    f.domain = "lithe";
    f.attrs["activation"].kind = ir::Attribute::Kind::kString;
    f.attrs["activation"].s = ops::fused::activation_name(e.act);
    f.attrs.erase("activation_params");
    if (std::vector<float> p = params_of(e); !p.empty()) {
      ir::Attribute a;
      a.kind = ir::Attribute::Kind::kFloats;
      a.floats = std::move(p);
      f.attrs["activation_params"] = std::move(a);
    }
    f.outputs = {out};
    rw.replace_node(static_cast<int>(ni), std::move(f));
    for (int r : absorbed) rw.remove_node(r);
    ++by_kind[ops::fused::activation_name(e.act)];
    ++fired;
  }
  if (fired) {
    std::string note = std::to_string(fired) + " activation(s) fused:";
    for (const auto& [kind, count] : by_kind) note += " " + kind + " " + std::to_string(count);
    rw.note(std::move(note));
  }
  return fired;
}

}  // namespace lithe::passes
