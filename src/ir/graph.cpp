#include "ir/graph.hpp"

#include <queue>

namespace lithe::ir {

std::string TensorType::str() const {
  std::string s = dtype_name(dtype);
  s += '[';
  s += has_shape ? shape_str(dims) : std::string("?");
  s += ']';
  return s;
}

const char* attr_kind_name(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::kFloat: return "float";
    case Attribute::Kind::kInt: return "int";
    case Attribute::Kind::kString: return "string";
    case Attribute::Kind::kTensor: return "tensor";
    case Attribute::Kind::kGraph: return "graph";
    case Attribute::Kind::kFloats: return "floats";
    case Attribute::Kind::kInts: return "ints";
    case Attribute::Kind::kStrings: return "strings";
    case Attribute::Kind::kTensors: return "tensors";
    case Attribute::Kind::kGraphs: return "graphs";
  }
  return "?";
}

std::string Node::label() const { return str_cat("node '", name, "' (", op_type, ")"); }

int Graph::add_value(const std::string& vname, TensorType type) {
  if (by_name_.count(vname)) fail("duplicate value name '", vname, "'");
  int id = static_cast<int>(values.size());
  Value v;
  v.name = vname;
  v.type = std::move(type);
  values.push_back(std::move(v));
  by_name_[vname] = id;
  return id;
}

int Graph::find_value(const std::string& vname) const {
  auto it = by_name_.find(vname);
  return it == by_name_.end() ? -1 : it->second;
}

int Graph::add_node(Node node) {
  int id = static_cast<int>(nodes.size());
  for (int v : node.inputs)
    if (v >= 0) values.at(static_cast<size_t>(v)).consumers.push_back(id);
  for (int v : node.outputs) {
    if (v < 0) continue;
    Value& val = values.at(static_cast<size_t>(v));
    if (val.producer >= 0 || val.constant)
      fail(node.label(), ": output '", val.name, "' is already produced elsewhere");
    val.producer = id;
  }
  nodes.push_back(std::move(node));
  return id;
}

void Graph::relink() {
  for (auto& v : values) {
    v.producer = -1;
    v.consumers.clear();
  }
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int v : nodes[n].inputs)
      if (v >= 0) values[static_cast<size_t>(v)].consumers.push_back(static_cast<int>(n));
    for (int v : nodes[n].outputs)
      if (v >= 0) values[static_cast<size_t>(v)].producer = static_cast<int>(n);
  }
}

void Graph::topo_sort() {
  size_t n = nodes.size();
  std::vector<int> indeg(n, 0);
  std::vector<std::vector<int>> succ(n);
  for (size_t i = 0; i < n; ++i) {
    for (int v : nodes[i].inputs) {
      if (v < 0) continue;
      int p = values[static_cast<size_t>(v)].producer;
      if (p == static_cast<int>(i))
        fail(nodes[i].label(), ": value '", values[static_cast<size_t>(v)].name,
             "' is both an input and an output of this node");
      if (p >= 0) {
        succ[static_cast<size_t>(p)].push_back(static_cast<int>(i));
        ++indeg[i];
      }
    }
  }
  // Kahn's algorithm, smallest original index first so the order is stable.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (size_t i = 0; i < n; ++i)
    if (indeg[i] == 0) ready.push(static_cast<int>(i));
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int s : succ[static_cast<size_t>(i)])
      if (--indeg[static_cast<size_t>(s)] == 0) ready.push(s);
  }
  if (order.size() != n) {
    // Every node left waits on a producer that is also left; walking back along such inputs
    // from any of them must revisit a node, and that node is on a cycle.
    auto blocked_input = [&](size_t i) {
      for (int v : nodes[i].inputs) {
        int p = v >= 0 ? values[static_cast<size_t>(v)].producer : -1;
        if (p >= 0 && indeg[static_cast<size_t>(p)] > 0) return v;
      }
      return -1;
    };
    std::vector<char> seen(n, 0);
    size_t i = 0;
    while (indeg[i] == 0) ++i;
    while (!seen[i]) {
      seen[i] = 1;
      i = static_cast<size_t>(values[static_cast<size_t>(blocked_input(i))].producer);
    }
    const Value& v = values[static_cast<size_t>(blocked_input(i))];
    fail(nodes[i].label(), ": the graph has a cycle through this node (input '", v.name,
         "' from ", nodes[static_cast<size_t>(v.producer)].label(), ")");
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(nodes[static_cast<size_t>(i)]));
  nodes = std::move(sorted);
  relink();
}

void Graph::rename_value(int id, const std::string& vname) {
  if (by_name_.count(vname)) fail("cannot rename to '", vname, "': the name is taken");
  Value& v = values.at(static_cast<size_t>(id));
  by_name_.erase(v.name);
  v.name = vname;
  by_name_[vname] = id;
}

bool has_subgraph(const Node& n) {
  for (const auto& kv : n.attrs)
    if (kv.second.g || !kv.second.graphs.empty()) return true;
  return false;
}

void outer_names_read_by(const Node& n, std::vector<std::string>& out) {
  for (const auto& kv : n.attrs) {
    const Attribute& a = kv.second;
    std::vector<const Graph*> bodies;
    if (a.g) bodies.push_back(a.g.get());
    for (const auto& b : a.graphs)
      if (b) bodies.push_back(b.get());
    for (const Graph* b : bodies) {
      for (int r : b->outer_refs)
        if (r >= 0) out.push_back(b->values[static_cast<size_t>(r)].name);
      outer_names_read_by(*b, out);
    }
  }
}

void outer_names_read_by(const Graph& g, std::vector<std::string>& out) {
  for (const Node& n : g.nodes) outer_names_read_by(n, out);
}

void Graph::compact(const std::vector<char>& drop_node) {
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (i >= drop_node.size() || !drop_node[i]) kept.push_back(std::move(nodes[i]));
  nodes = std::move(kept);
  std::vector<char> used(values.size(), 0);
  auto mark = [&](int v) {
    if (v >= 0) used[static_cast<size_t>(v)] = 1;
  };
  for (const Node& n : nodes) {
    for (int v : n.inputs) mark(v);
    for (int v : n.outputs) mark(v);
  }
  for (int v : inputs) mark(v);
  for (int v : outputs) mark(v);
  for (int v : outer_refs) mark(v);
  std::vector<std::string> outer_names;
  outer_names_read_by(*this, outer_names);
  for (const auto& nm : outer_names) mark(find_value(nm));
  std::vector<int> remap(values.size(), -1);
  std::vector<Value> nv;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!used[i]) continue;
    remap[i] = static_cast<int>(nv.size());
    nv.push_back(std::move(values[i]));
  }
  values = std::move(nv);
  auto re = [&](int& v) {
    if (v >= 0) v = remap[static_cast<size_t>(v)];
  };
  for (Node& n : nodes) {
    for (int& v : n.inputs) re(v);
    for (int& v : n.outputs) re(v);
  }
  for (int& v : inputs) re(v);
  for (int& v : outputs) re(v);
  for (int& v : outer_refs) re(v);
  by_name_.clear();
  for (size_t i = 0; i < values.size(); ++i) by_name_[values[i].name] = static_cast<int>(i);
  relink();
}

}  // namespace lithe::ir
