// Pass: sibling_aggregation (see pass_list.hpp for its place in the pipeline).
//
// Convolutions (ONNX Conv and lithe's fused Conv), Gemms and MatMuls that read the same
// tensor with the same parameters and constant weights are merged into one wider op whose
// weights are the siblings' weights concatenated along the output-channel axis, followed by
// one Split that produces the siblings' original outputs (same value ids, so same names).
// The point is one big GEMM instead of several thin ones (the 1x1 convolutions of an
// inception module, the Q/K/V projections of attention): the input is read once and the
// kernel's tiles are fuller. The Split is later done by addressing (concat/split elision).
// A conv whose output only feeds a Concat stays out: written straight into its slice of the
// Concat it costs no copy, while as part of a merged conv its Split part would be copied.
#include <cstring>
#include <optional>

#include "ops/conv_pool_internal.hpp"
#include "passes/pass.hpp"

namespace lithe::passes {
namespace {

/// Domain of lithe's own ops (the fused Conv with `activation` and a residual input).
constexpr const char* kLitheDomain = "lithe";

bool same_attr(const ir::Attribute& a, const ir::Attribute& b) {
  using K = ir::Attribute::Kind;
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::kFloat:
      return a.f == b.f;
    case K::kInt:
      return a.i == b.i;
    case K::kString:
      return a.s == b.s;
    case K::kFloats:
      return a.floats == b.floats;
    case K::kInts:
      return a.ints == b.ints;
    case K::kStrings:
      return a.strings == b.strings;
    // Tensor and graph attributes are never expected on these ops: treat them as different
    // rather than compare payloads.
    default:
      return false;
  }
}

bool same_attrs(const std::map<std::string, ir::Attribute>& a,
                const std::map<std::string, ir::Attribute>& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
    if (ia->first != ib->first || !same_attr(ia->second, ib->second)) return false;
  return true;
}

/// What two siblings must share to be merged. Attributes whose spelling may differ for the
/// same meaning (pads vs auto_pad, absent vs default) are resolved into `ints`; every other
/// attribute (group, activation, activation_params, alpha, ...) must be identical.
struct MergeKey {
  std::string op_type, domain;
  int opset = 0;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> ints;  ///< resolved geometry / transposes
  Shape weight_rest;          ///< weight shape without the concatenated axis
  std::map<std::string, ir::Attribute> attrs;

  bool operator==(const MergeKey& o) const {
    return op_type == o.op_type && domain == o.domain && opset == o.opset && dtype == o.dtype &&
           ints == o.ints && weight_rest == o.weight_rest && same_attrs(attrs, o.attrs);
  }
};

/// One node that can take part in a merge.
struct Candidate {
  int node = -1;
  int x = -1;  ///< the shared input
  MergeKey key;
  const Tensor* weight = nullptr;
  int weight_axis = 0;         ///< axis of `weight` holding this node's outputs
  int64_t width = 0;           ///< outputs along that axis
  std::optional<Tensor> bias;  ///< 1-D of `width`, absent when the node has none
  int split_axis = 1;          ///< axis of the node's output holding the same outputs
};

/// `attrs` without the named ones (they are compared in resolved form instead).
std::map<std::string, ir::Attribute> attrs_without(const ir::Node& n,
                                                   std::initializer_list<const char*> names) {
  std::map<std::string, ir::Attribute> out = n.attrs;
  for (const char* name : names) out.erase(name);
  return out;
}

const ir::TensorType& type_of(const ir::Graph& g, int v) {
  return g.values[static_cast<size_t>(v)].type;
}

/// Common checks: one output, a non-constant float input 0 of known shape, a constant
/// weight of the same dtype and known output type.
bool basic_ok(const ir::Graph& g, const ir::Node& n) {
  if (n.outputs.size() != 1 || n.outputs[0] < 0 || n.inputs.size() < 2) return false;
  int x = n.inputs[0], w = n.inputs[1];
  if (x < 0 || w < 0 || constant_of(g, x) || !constant_of(g, w)) return false;
  const ir::TensorType& xt = type_of(g, x);
  if (!is_float(xt.dtype) || !xt.fully_known()) return false;
  if (constant_of(g, w)->dtype() != xt.dtype) return false;
  return type_of(g, n.outputs[0]).dtype == xt.dtype;
}

/// False when the node has a residual input (lithe's fused ops take it at `index`): the
/// sum is per sibling, so the node cannot be widened.
bool no_residual(const ir::Node& n, size_t index) {
  for (size_t i = index; i < n.inputs.size(); ++i)
    if (n.inputs[i] >= 0) return false;
  return true;
}

/// True when the node's output is read only by one Concat (and is not a graph output): the
/// memory planner lets it write straight into its slice of the Concat, a copy that merging
/// would bring back (the Split's part would have to be copied into the Concat).
bool feeds_only_a_concat(const ir::Graph& g, const ir::Node& n) {
  const ir::Value& out = g.values[static_cast<size_t>(n.outputs[0])];
  if (out.consumers.size() != 1) return false;
  for (int v : g.outputs)
    if (v == n.outputs[0]) return false;
  const ir::Node& c = g.nodes[static_cast<size_t>(out.consumers[0])];
  return c.domain.empty() && c.op_type == "Concat";
}

// The part of a candidate every op fills the same way: the node, its input, its weight and
// the op's identity in the key.
Candidate start_candidate(const ir::Node& n, int id, const Tensor& w) {
  Candidate c;
  c.node = id;
  c.x = n.inputs[0];
  c.key.op_type = n.op_type;
  c.key.domain = n.domain;
  c.key.opset = n.opset;
  c.key.dtype = w.dtype();
  c.weight = &w;
  return c;
}

std::optional<Candidate> conv_candidate(const ir::Graph& g, int id) {
  const ir::Node& n = g.nodes[static_cast<size_t>(id)];
  if (!basic_ok(g, n)) return std::nullopt;
  if (!no_residual(n, 3)) return std::nullopt;
  if (feeds_only_a_concat(g, n)) return std::nullopt;
  const Tensor& w = *constant_of(g, n.inputs[1]);
  const Shape& xs = type_of(g, n.inputs[0]).dims;
  if (xs.size() < 3 || w.rank() != static_cast<int64_t>(xs.size())) return std::nullopt;
  ops::NodeAttrs a(n);
  Candidate c = start_candidate(n, id, w);
  try {
    if (a.attr_int("group", 1) != 1) return std::nullopt;
    std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
    if (a.has_attr("kernel_shape") && a.attr_ints("kernel_shape") != kernel) return std::nullopt;
    // Resolving auto_pad against X's size makes "SAME_UPPER" and its explicit pads equal.
    std::vector<int64_t> in(xs.begin() + 2, xs.end());
    ops::conv_pool::Geometry geo = ops::conv_pool::forward_geometry(a, in, kernel);
    for (const auto* v : {&geo.strides, &geo.dilations, &geo.pad_begin, &geo.pad_end})
      c.key.ints.insert(c.key.ints.end(), v->begin(), v->end());
  } catch (const Error&) {
    return std::nullopt;  // bad attributes: inference would have said so; leave it alone
  }
  c.key.attrs =
      attrs_without(n, {"kernel_shape", "strides", "dilations", "pads", "auto_pad", "group"});
  c.key.weight_rest.assign(w.shape().begin() + 1, w.shape().end());
  c.weight_axis = 0;
  c.width = w.dim(0);
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Tensor* b = constant_of(g, n.inputs[2]);
    if (!b || b->dtype() != w.dtype() || b->rank() != 1 || b->dim(0) != c.width)
      return std::nullopt;
    c.bias = *b;
  }
  c.split_axis = 1;
  return c;
}

/// Gemm's C as a 1-D bias over N, when it is one (a per-row C does not split by column).
std::optional<Tensor> gemm_bias(const Tensor& cten, int64_t n_out) {
  const Shape& s = cten.shape();
  bool per_column =
      (s.size() == 1 && s[0] == n_out) || (s.size() == 2 && s[0] == 1 && s[1] == n_out);
  if (per_column) return cten.reshaped({n_out});
  if (cten.numel() != 1) return std::nullopt;
  // A broadcast scalar: spell it out per column.
  Tensor b(cten.dtype(), {n_out});
  const size_t es = dtype_size(cten.dtype());
  auto* dst = static_cast<char*>(b.raw());
  for (int64_t i = 0; i < n_out; ++i) std::memcpy(dst + i * es, cten.raw(), es);
  return b;
}

std::optional<Candidate> gemm_candidate(const ir::Graph& g, int id) {
  const ir::Node& n = g.nodes[static_cast<size_t>(id)];
  // Before Gemm-7 C was required and broadcast was an attribute: not worth the cases.
  if (n.opset < 7 || !basic_ok(g, n) || !no_residual(n, 3)) return std::nullopt;
  const Tensor& w = *constant_of(g, n.inputs[1]);
  if (w.rank() != 2 || type_of(g, n.inputs[0]).dims.size() != 2) return std::nullopt;
  ops::NodeAttrs a(n);
  Candidate c = start_candidate(n, id, w);
  int64_t trans_b = 0;
  try {
    trans_b = a.attr_int("transB", 0);
    c.key.ints = {a.attr_int("transA", 0), trans_b};
    // alpha and beta take part in their resolved form (absent == 1.0).
    ir::Attribute alpha, beta;
    alpha.kind = beta.kind = ir::Attribute::Kind::kFloat;
    alpha.f = a.attr_float("alpha", 1.f);
    beta.f = a.attr_float("beta", 1.f);
    c.key.attrs = attrs_without(n, {"transA", "transB", "alpha", "beta"});
    c.key.attrs["alpha"] = alpha;
    c.key.attrs["beta"] = beta;
  } catch (const Error&) {
    return std::nullopt;
  }
  c.weight_axis = trans_b ? 0 : 1;
  c.width = w.dim(c.weight_axis);
  c.key.weight_rest = {w.dim(1 - c.weight_axis)};
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Tensor* b = constant_of(g, n.inputs[2]);
    if (!b || b->dtype() != w.dtype()) return std::nullopt;
    c.bias = gemm_bias(*b, c.width);
    if (!c.bias) return std::nullopt;
  }
  c.split_axis = 1;
  return c;
}

std::optional<Candidate> matmul_candidate(const ir::Graph& g, int id) {
  const ir::Node& n = g.nodes[static_cast<size_t>(id)];
  if (!basic_ok(g, n) || !no_residual(n, 2)) return std::nullopt;
  const Tensor& w = *constant_of(g, n.inputs[1]);
  const Shape& xs = type_of(g, n.inputs[0]).dims;
  // A 1-D A drops its axis from the output; a batched B is not one weight matrix.
  if (w.rank() != 2 || xs.size() < 2) return std::nullopt;
  Candidate c = start_candidate(n, id, w);
  c.key.attrs = n.attrs;
  c.key.weight_rest = {w.dim(0)};
  c.weight_axis = 1;
  c.width = w.dim(1);
  c.split_axis = static_cast<int>(xs.size()) - 1;
  return c;
}

std::optional<Candidate> candidate(const ir::Graph& g, int id) {
  const ir::Node& n = g.nodes[static_cast<size_t>(id)];
  // lithe's fused forms carry their activation as attributes, compared like the others.
  if (!n.domain.empty() && n.domain != kLitheDomain) return std::nullopt;
  std::optional<Candidate> c;
  if (n.op_type == "Conv") c = conv_candidate(g, id);
  if (n.op_type == "Gemm") c = gemm_candidate(g, id);
  if (n.op_type == "MatMul") c = matmul_candidate(g, id);
  if (c && n.domain == kLitheDomain) {
    // An absent epilogue attribute means the same as an empty one.
    ir::Attribute none, no_params;
    none.kind = ir::Attribute::Kind::kString;
    no_params.kind = ir::Attribute::Kind::kFloats;
    c->key.attrs.try_emplace("activation", none);
    c->key.attrs.try_emplace("activation_params", no_params);
    c->key.attrs.try_emplace("activation_affine", no_params);
  }
  return c;
}

/// Concatenates same-dtype tensors along `axis` (their other dims agree).
Tensor concat(const std::vector<const Tensor*>& parts, int axis) {
  Shape shape = parts[0]->shape();
  shape[static_cast<size_t>(axis)] = 0;
  for (const Tensor* p : parts) shape[static_cast<size_t>(axis)] += p->dim(axis);
  Tensor out(parts[0]->dtype(), shape);
  int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(out.dtype()));
  for (int d = 0; d < axis; ++d) outer *= shape[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  auto* dst = static_cast<char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor* p : parts) {
      const size_t bytes = static_cast<size_t>(p->dim(axis) * inner);
      std::memcpy(dst, static_cast<const char*>(p->raw()) + static_cast<size_t>(o) * bytes, bytes);
      dst += bytes;
    }
  return out;
}

/// Records the merge of `group` (two or more siblings, in graph order).
void merge(const ir::Graph& g, const std::vector<Candidate>& group, Rewriter& rw) {
  const Candidate& first = group[0];
  const ir::Node& fnode = g.nodes[static_cast<size_t>(first.node)];
  int64_t total = 0;
  std::vector<const Tensor*> weights;
  bool any_bias = false;
  for (const Candidate& c : group) {
    total += c.width;
    weights.push_back(c.weight);
    any_bias |= c.bias.has_value();
  }
  // A sibling without a bias adds zeros (the new tensor starts zero-filled).
  Tensor bias;
  if (any_bias) {
    bias = Tensor(first.key.dtype, {total});
    const size_t es = dtype_size(bias.dtype());
    auto* dst = static_cast<char*>(bias.raw());
    for (const Candidate& c : group) {
      if (c.bias) std::memcpy(dst, c.bias->raw(), c.bias->nbytes());
      dst += static_cast<size_t>(c.width) * es;
    }
  }

  const std::string base = g.values[static_cast<size_t>(fnode.outputs[0])].name;
  ir::Node wide = fnode;
  wide.name = fnode.name + "_merged";
  wide.inputs = {first.x, rw.add_constant(base + "_merged_w", concat(weights, first.weight_axis))};
  if (any_bias) wide.inputs.push_back(rw.add_constant(base + "_merged_b", std::move(bias)));
  ir::TensorType yt = type_of(g, fnode.outputs[0]);
  if (yt.has_shape && static_cast<int>(yt.dims.size()) > first.split_axis)
    yt.dims[static_cast<size_t>(first.split_axis)] = total;
  else
    yt = {yt.dtype, false, {}};
  int y = rw.add_value(base + "_merged", yt);
  wide.outputs = {y};

  ir::Node split;
  split.name = fnode.name + "_split";
  split.op_type = "Split";
  split.opset = g.opsets.count("") ? g.opsets.at("") : 13;
  ir::Attribute axis;
  axis.kind = ir::Attribute::Kind::kInt;
  axis.i = first.split_axis;
  split.attrs["axis"] = axis;
  std::vector<int64_t> sizes;
  for (const Candidate& c : group) {
    sizes.push_back(c.width);
    split.outputs.push_back(g.nodes[static_cast<size_t>(c.node)].outputs[0]);
  }
  split.inputs = {y};
  if (split.opset >= 13) {
    Tensor st(DType::kInt64, {static_cast<int64_t>(sizes.size())});
    std::memcpy(st.raw(), sizes.data(), st.nbytes());
    split.inputs.push_back(rw.add_constant(base + "_split_sizes", std::move(st)));
  } else {
    ir::Attribute sa;
    sa.kind = ir::Attribute::Kind::kInts;
    sa.ints = sizes;
    split.attrs["split"] = sa;
  }

  rw.replace_node(first.node, std::move(wide));
  for (size_t i = 1; i < group.size(); ++i) rw.remove_node(group[i].node);
  rw.add_node(std::move(split));
}

}  // namespace

int aggregate_siblings(const ir::Graph& g, Rewriter& rw) {
  // Groups in the order of their first member; a node joins the first open group on its
  // input whose key matches, so the result depends only on the node order.
  std::vector<std::vector<Candidate>> groups;
  std::map<int, std::vector<size_t>> by_input;  // shared input -> indices into `groups`
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    std::optional<Candidate> c = candidate(g, static_cast<int>(i));
    if (!c) continue;
    std::vector<size_t>& open = by_input[c->x];
    bool joined = false;
    for (size_t gi : open)
      if (groups[gi][0].key == c->key) {
        groups[gi].push_back(std::move(*c));
        joined = true;
        break;
      }
    if (!joined) {
      open.push_back(groups.size());
      groups.push_back({std::move(*c)});
    }
  }
  int merged = 0;
  std::map<std::string, std::pair<int, int>> counts;  // op -> (groups, nodes)
  for (const auto& group : groups) {
    if (group.size() < 2) continue;
    merge(g, group, rw);
    ++merged;
    auto& cnt = counts[group[0].key.op_type];
    cnt.first += 1;
    cnt.second += static_cast<int>(group.size());
  }
  for (const auto& [op, cnt] : counts) {
    std::string what = op == "Conv" ? "convs" : op + "s";
    rw.note((g.name.empty() ? std::string() : g.name + ": ") + std::to_string(cnt.second) +
            " sibling " + what + " merged into " + std::to_string(cnt.first) + " (" +
            std::to_string(cnt.first) + " groups)");
  }
  return merged;
}

}  // namespace lithe::passes
