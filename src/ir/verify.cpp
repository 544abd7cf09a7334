#include <set>

#include "ir/graph.hpp"

namespace lithe::ir {

void verify(const Graph& g) {
  const int nv = static_cast<int>(g.values.size());
  std::set<std::string> names;
  for (const auto& v : g.values)
    if (!names.insert(v.name).second) fail("duplicate value name '", v.name, "'");
  std::vector<int> producer(static_cast<size_t>(nv), -1);
  std::vector<char> available(static_cast<size_t>(nv), 0);
  for (int id : g.inputs) {
    if (id < 0 || id >= nv) fail("graph input id ", id, " out of range");
    available[static_cast<size_t>(id)] = 1;
  }
  for (int id : g.outer_refs)
    if (id >= 0 && id < nv) available[static_cast<size_t>(id)] = 1;
  for (int id = 0; id < nv; ++id)
    if (g.values[static_cast<size_t>(id)].constant) available[static_cast<size_t>(id)] = 1;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    for (int v : node.inputs) {
      if (v < -1 || v >= nv) fail(node.label(), ": input id ", v, " out of range");
      if (v >= 0 && !available[static_cast<size_t>(v)])
        fail(node.label(), ": input '", g.values[static_cast<size_t>(v)].name,
             "' is not produced by any earlier node, graph input or initializer");
    }
    for (int v : node.outputs) {
      if (v < -1 || v >= nv) fail(node.label(), ": output id ", v, " out of range");
      if (v < 0) continue;
      if (available[static_cast<size_t>(v)])
        fail(node.label(), ": output '", g.values[static_cast<size_t>(v)].name,
             "' is already defined by another node, a graph input or an initializer");
      if (g.values[static_cast<size_t>(v)].producer != static_cast<int>(n))
        fail(node.label(), ": producer link of '", g.values[static_cast<size_t>(v)].name,
             "' is stale");
      available[static_cast<size_t>(v)] = 1;
    }
  }
  for (int id : g.outputs) {
    if (id < 0 || id >= nv) fail("graph output id ", id, " out of range");
    if (!available[static_cast<size_t>(id)])
      fail("graph output '", g.values[static_cast<size_t>(id)].name, "' is never produced");
  }
}

}  // namespace lithe::ir
