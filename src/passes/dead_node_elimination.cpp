// Pass: dead_node_elimination (see pass_list.hpp for its place in the pipeline).
//
// A node is live when one of its outputs reaches a graph output, directly or through live
// nodes' inputs, or is read by name inside a live node's subgraph body (If/Loop/Scan bodies
// reference enclosing values by name, not through node inputs). Everything else goes.
// ONNX inference ops have no side effects, so liveness is the only criterion; a live
// If/Loop/Scan stays like any other live node.
#include <string>
#include <vector>

#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::passes {

int eliminate_dead_nodes(const ir::Graph& g, Rewriter& rw) {
  std::vector<char> live_node(g.nodes.size(), 0);
  std::vector<char> live_value(g.values.size(), 0);
  std::vector<int> work;  // live values whose producer is not yet visited
  auto mark = [&](int v) {
    if (v < 0 || live_value[static_cast<size_t>(v)]) return;
    live_value[static_cast<size_t>(v)] = 1;
    work.push_back(v);
  };
  for (int v : g.outputs) mark(v);
  // A graph's own outer references (when this graph is a body) are roots too: they may be
  // listed without a reader, and keeping their (absent) producers costs nothing.
  for (int v : g.outer_refs) mark(v);
  // A worklist rather than one reverse sweep: a body's outer reference may name a value
  // whose producer sorts after the If/Loop node (topo_sort sees only explicit inputs).
  while (!work.empty()) {
    int v = work.back();
    work.pop_back();
    int p = g.values[static_cast<size_t>(v)].producer;
    if (p < 0 || live_node[static_cast<size_t>(p)]) continue;
    live_node[static_cast<size_t>(p)] = 1;
    const ir::Node& n = g.nodes[static_cast<size_t>(p)];
    for (int in : n.inputs) mark(in);
    std::vector<std::string> names;
    ir::outer_names_read_by(n, names);
    for (const auto& nm : names) mark(g.find_value(nm));
  }
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (live_node[i]) continue;
    rw.remove_node(static_cast<int>(i));
    ++removed;
  }
  if (removed) rw.note(str_cat(removed, " dead nodes removed"));
  return removed;
}

}  // namespace lithe::passes
