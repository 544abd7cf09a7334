#include <algorithm>

#include "ops/infer.hpp"
#include "passes/pass.hpp"

namespace lithe::passes {

std::string Rewriter::unique_name(const std::string& hint) {
  std::string base = hint.empty() ? "v" : hint;
  std::string name = base;
  int& n = used_names_[base];
  while (g_.find_value(name) >= 0 ||
         std::any_of(new_values_.begin(), new_values_.end(),
                     [&](const auto& p) { return p.first == name; }))
    name = base + "__" + std::to_string(++n);
  return name;
}

int Rewriter::add_constant(const std::string& hint, Tensor t) {
  int id = static_cast<int>(g_.values.size() + new_values_.size());
  ir::TensorType type{t.dtype(), true, t.shape()};
  std::string name = unique_name(hint);
  new_values_.push_back({name, type});
  new_constants_.push_back({name, std::move(t)});
  return id;
}

int Rewriter::add_value(const std::string& hint, ir::TensorType type) {
  int id = static_cast<int>(g_.values.size() + new_values_.size());
  new_values_.push_back({unique_name(hint), std::move(type)});
  return id;
}

void Rewriter::add_node(ir::Node n) { new_nodes_.push_back(std::move(n)); }
void Rewriter::replace_node(int id, ir::Node n) { replaced_[id] = std::move(n); }
void Rewriter::remove_node(int id) { removed_.push_back(id); }
void Rewriter::replace_uses(int from, int to) { redirect_[from] = to; }

bool Rewriter::can_replace(int from, int to) const {
  if (!is_graph_output(g_, from)) return true;
  if (to >= static_cast<int>(g_.values.size())) return true;  // a new value: renamed
  const ir::Value& t = g_.values[static_cast<size_t>(to)];
  bool is_input = std::find(g_.inputs.begin(), g_.inputs.end(), to) != g_.inputs.end();
  return t.producer >= 0 && !is_input && !is_graph_output(g_, to);
}

bool Rewriter::empty() const {
  return new_values_.empty() && new_nodes_.empty() && replaced_.empty() && removed_.empty() &&
         redirect_.empty();
}

void Rewriter::apply(ir::Graph& g) {
  if (&g != &g_) fail_runtime("Rewriter applied to another graph");
  for (auto& [name, type] : new_values_) g.add_value(name, type);
  for (auto& [name, t] : new_constants_)
    g.values[static_cast<size_t>(g.find_value(name))].constant = std::move(t);
  for (auto& [id, n] : replaced_) g.nodes.at(static_cast<size_t>(id)) = std::move(n);
  std::vector<char> drop(g.nodes.size(), 0);
  for (int id : removed_) drop.at(static_cast<size_t>(id)) = 1;
  for (auto& n : new_nodes_) g.nodes.push_back(std::move(n));
  drop.resize(g.nodes.size(), 0);
  // Follow redirect chains (a -> b -> c).
  auto target = [&](int v) {
    for (int hops = 0; hops < 64; ++hops) {
      auto it = redirect_.find(v);
      if (it == redirect_.end()) return v;
      v = it->second;
    }
    fail_runtime("replace_uses chain does not end");
  };
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (int& v : g.nodes[n].inputs)
      if (v >= 0) v = target(v);
  g.relink();
  for (int& out : g.outputs) {
    int to = target(out);
    if (to == out) continue;
    ir::Value& tv = g.values[static_cast<size_t>(to)];
    bool is_input = std::find(g.inputs.begin(), g.inputs.end(), to) != g.inputs.end();
    bool is_output = std::find(g.outputs.begin(), g.outputs.end(), to) != g.outputs.end();
    if (tv.producer >= 0 && !is_input && !is_output && !tv.constant) {
      // Keep the model's output name: the replacement value takes it.
      std::string keep = g.values[static_cast<size_t>(out)].name;
      g.rename_value(out, unique_name(keep + "__replaced"));
      g.rename_value(to, keep);
      out = to;
    } else {
      // The replacement is an input, a constant or another output: an Identity keeps the
      // name. The old producer of `out` must go (it is being replaced).
      int p = g.values[static_cast<size_t>(out)].producer;
      if (p >= 0) drop[static_cast<size_t>(p)] = 1;
      ir::Node id;
      id.name = g.values[static_cast<size_t>(out)].name + "__identity";
      id.op_type = "Identity";
      id.opset = g.opsets.count("") ? g.opsets.at("") : 13;
      id.inputs = {to};
      id.outputs = {out};
      g.values[static_cast<size_t>(out)].producer = -1;
      g.nodes.push_back(std::move(id));
      drop.push_back(0);
    }
  }
  g.compact(drop);
  g.topo_sort();
  ir::verify(g);
  ops::infer_graph(g);
}

int single_consumer(const ir::Graph& g, int v) {
  if (v < 0 || is_graph_output(g, v)) return -1;
  const auto& c = g.values[static_cast<size_t>(v)].consumers;
  if (c.empty()) return -1;
  for (int n : c)
    if (n != c[0]) return -1;
  return c[0];
}

bool is_graph_output(const ir::Graph& g, int v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

const Tensor* constant_of(const ir::Graph& g, int v) {
  if (v < 0) return nullptr;
  const auto& val = g.values[static_cast<size_t>(v)];
  return val.constant ? &*val.constant : nullptr;
}

}  // namespace lithe::passes
