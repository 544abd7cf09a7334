// Op family: control flow (If, Loop, Scan). Bodies are run by the executor through
// ComputeContext::subgraphs(); outer-scope values are resolved by name.
#include <algorithm>
#include <cstring>

#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

const ir::Graph& body_attr(const NodeAttrs& ctx, const std::string& name) {
  const ir::Attribute* a = ctx.attr(name);
  if (!a || a->kind != ir::Attribute::Kind::kGraph || !a->g)
    ctx.fail("missing graph attribute '", name, "'");
  return *a->g;
}

// Control-flow outputs are known only after running the body.
void infer_unknown_outputs(InferContext& ctx) {
  for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output_unknown(i, DType::kUndefined);
}

SubgraphRunner& runner(ComputeContext& ctx) {
  if (!ctx.subgraphs()) ctx.fail("control flow needs an executor that runs subgraphs");
  return *ctx.subgraphs();
}

bool scalar_bool(const Tensor& t, const char* what) {
  if (t.numel() != 1) fail(what, " must hold exactly one element, got shape ", shape_str(t.shape()));
  return t.at_double(0) != 0;
}

void infer_if(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  // Both branches are checked, not only the one a run happens to take.
  for (const char* name : {"then_branch", "else_branch"}) {
    const ir::Graph& g = body_attr(ctx, name);
    if (!g.inputs.empty())
      ctx.fail("'", name, "' takes ", g.inputs.size(), " inputs; If branches take none");
    if (g.outputs.size() != ctx.num_outputs())
      ctx.fail("'", name, "' has ", g.outputs.size(), " outputs, the node has ", ctx.num_outputs());
  }
  infer_unknown_outputs(ctx);
}

void compute_if(ComputeContext& ctx) {
  bool c = scalar_bool(ctx.input(0), "If condition");
  const ir::Graph& body = body_attr(ctx, c ? "then_branch" : "else_branch");
  if (!body.inputs.empty()) ctx.fail("If branches take no inputs");
  std::vector<Tensor> outs = runner(ctx).run(body, {});
  if (outs.size() != ctx.num_outputs())
    ctx.fail("branch produced ", outs.size(), " outputs, the node has ", ctx.num_outputs());
  for (size_t i = 0; i < outs.size(); ++i) ctx.set_output(i, std::move(outs[i]));
}

// Stacks per-iteration tensors along a new axis 0 (Loop scan outputs).
Tensor stack(const std::vector<Tensor>& parts, DType dtype, const Shape& elem) {
  Shape s = {static_cast<int64_t>(parts.size())};
  s.insert(s.end(), elem.begin(), elem.end());
  Tensor out(dtype, s);
  size_t bytes = shape_numel(elem) * dtype_size(dtype);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].shape() != elem || parts[i].dtype() != dtype)
      fail("scan output changes shape or type between iterations (", shape_str(elem), " vs ",
           shape_str(parts[i].shape()), ")");
    if (bytes) std::memcpy(static_cast<char*>(out.raw()) + i * bytes, parts[i].raw(), bytes);
  }
  return out;
}

// Cap on Loop iterations, so a hostile model cannot hang the process: a constant trip count
// over it is refused before anything runs, and any loop stops with an error when it gets
// there.
constexpr int64_t kMaxLoopIterations = 10'000'000;

void infer_loop(InferContext& ctx) {
  if (ctx.num_inputs() < 2) ctx.fail("Loop needs at least the M and cond inputs");
  const ir::Graph& body = body_attr(ctx, "body");
  const size_t n_carried = ctx.num_inputs() - 2;
  if (body.inputs.size() != n_carried + 2)
    ctx.fail("body takes ", body.inputs.size(), " inputs, expected ", n_carried + 2,
             " (iteration, condition and ", n_carried, " loop-carried values)");
  if (body.outputs.size() < n_carried + 1)
    ctx.fail("body has ", body.outputs.size(), " outputs, expected at least ", n_carried + 1);
  if (ctx.has_input(0) && ctx.input_value_known(0) && ctx.input_value(0).numel() == 1) {
    int64_t m = ctx.input_value(0).at_int(0);
    if (m > kMaxLoopIterations)
      ctx.fail("trip count M = ", m, " is over the limit of ", kMaxLoopIterations, " iterations");
  }
  infer_unknown_outputs(ctx);
}

void compute_loop(ComputeContext& ctx) {
  const ir::Graph& body = body_attr(ctx, "body");
  int64_t max_trips = ctx.has_input(0) ? ctx.input(0).at_int(0) : INT64_MAX;
  bool cond = ctx.has_input(1) ? scalar_bool(ctx.input(1), "Loop cond") : true;
  size_t n_carried = ctx.num_inputs() - 2;
  if (body.inputs.size() != n_carried + 2)
    ctx.fail("body takes ", body.inputs.size(), " inputs, expected ", n_carried + 2);
  if (body.outputs.size() < n_carried + 1)
    ctx.fail("body has ", body.outputs.size(), " outputs, expected at least ", n_carried + 1);
  size_t n_scan = body.outputs.size() - 1 - n_carried;
  std::vector<Tensor> carried;
  for (size_t i = 0; i < n_carried; ++i) carried.push_back(ctx.input(2 + i));
  std::vector<std::vector<Tensor>> scans(n_scan);
  int64_t it = 0;
  for (; it < max_trips && cond; ++it) {
    if (it >= kMaxLoopIterations)
      ctx.fail("Loop ran ", kMaxLoopIterations, " iterations without ending (limit)");
    std::vector<Tensor> in;
    Tensor iter(DType::kInt64, {});
    iter.data<int64_t>()[0] = it;
    Tensor c(DType::kBool, {});
    c.data<bool>()[0] = cond;
    in.push_back(iter);
    in.push_back(c);
    for (auto& t : carried) in.push_back(t);
    std::vector<Tensor> out = runner(ctx).run(body, in);
    cond = scalar_bool(out[0], "Loop body cond output");
    for (size_t i = 0; i < n_carried; ++i) carried[i] = out[1 + i];
    for (size_t i = 0; i < n_scan; ++i) scans[i].push_back(out[1 + n_carried + i]);
  }
  for (size_t i = 0; i < n_carried; ++i) ctx.set_output(i, carried[i]);
  for (size_t i = 0; i < n_scan; ++i) {
    if (scans[i].empty()) {
      // No iteration ran: an empty tensor; element type from the body's declared output.
      DType t = body.values[static_cast<size_t>(body.outputs[1 + n_carried + i])].type.dtype;
      ctx.set_output(n_carried + i, Tensor(t == DType::kUndefined ? DType::kFloat32 : t, {0}));
    } else {
      ctx.set_output(n_carried + i, stack(scans[i], scans[i][0].dtype(), scans[i][0].shape()));
    }
  }
}

void infer_scan(InferContext& ctx) {
  if (ctx.opset() < 9) ctx.fail("Scan before opset 9 (with sequence_lens) is not supported");
  body_attr(ctx, "body");
  infer_unknown_outputs(ctx);
}

// Slice `t` at index i along `axis` (drops that axis).
Tensor take(const Tensor& t, int64_t axis, int64_t i) {
  Shape s = t.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) inner *= s[d];
  int64_t len = s[static_cast<size_t>(axis)];
  s.erase(s.begin() + axis);
  Tensor out(t.dtype(), s);
  size_t es = dtype_size(t.dtype());
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(static_cast<char*>(out.raw()) + static_cast<size_t>(o * inner) * es,
                static_cast<const char*>(t.raw()) + static_cast<size_t>((o * len + i) * inner) * es,
                static_cast<size_t>(inner) * es);
  return out;
}

// Stacks parts along `axis` (inserting it).
Tensor stack_axis(const std::vector<Tensor>& parts, int64_t axis) {
  Tensor first = stack(parts, parts[0].dtype(), parts[0].shape());  // axis 0
  if (axis == 0) return first;
  // Move axis 0 to `axis` with a transpose-like copy.
  Shape in = first.shape();
  Shape out = in;
  out.erase(out.begin());
  out.insert(out.begin() + axis, in[0]);
  Tensor r(first.dtype(), out);
  auto ist = strides_of(in);
  auto ost = strides_of(out);
  size_t es = dtype_size(first.dtype());
  std::vector<int64_t> idx(in.size(), 0);
  for (int64_t n = 0; n < first.numel(); ++n) {
    int64_t rem = n, off = 0;
    for (size_t d = 0; d < in.size(); ++d) {
      idx[d] = rem / ist[d];
      rem %= ist[d];
    }
    // in index (k, rest...) -> out index with k at `axis`
    size_t od = 0;
    for (size_t d = 1; d < in.size(); ++d, ++od) {
      if (static_cast<int64_t>(od) == axis) ++od;
      off += idx[d] * ost[od];
    }
    off += idx[0] * ost[static_cast<size_t>(axis)];
    std::memcpy(static_cast<char*>(r.raw()) + static_cast<size_t>(off) * es,
                static_cast<const char*>(first.raw()) + static_cast<size_t>(n) * es, es);
  }
  return r;
}

void compute_scan(ComputeContext& ctx) {
  const ir::Graph& body = body_attr(ctx, "body");
  int64_t m = ctx.attr_int("num_scan_inputs");
  int64_t total = static_cast<int64_t>(ctx.num_inputs());
  if (m < 1 || m > total) ctx.fail("num_scan_inputs ", m, " out of range");
  size_t n_state = static_cast<size_t>(total - m);
  auto in_axes = ctx.attr_ints("scan_input_axes", std::vector<int64_t>(static_cast<size_t>(m), 0));
  auto in_dirs = ctx.attr_ints("scan_input_directions", std::vector<int64_t>(static_cast<size_t>(m), 0));
  if (in_axes.size() != static_cast<size_t>(m) || in_dirs.size() != static_cast<size_t>(m))
    ctx.fail("scan_input_axes/directions must have num_scan_inputs entries");
  if (body.inputs.size() != n_state + static_cast<size_t>(m))
    ctx.fail("body takes ", body.inputs.size(), " inputs, expected ", n_state + static_cast<size_t>(m));
  if (body.outputs.size() < n_state) ctx.fail("body has too few outputs");
  size_t k = body.outputs.size() - n_state;
  auto out_axes = ctx.attr_ints("scan_output_axes", std::vector<int64_t>(k, 0));
  auto out_dirs = ctx.attr_ints("scan_output_directions", std::vector<int64_t>(k, 0));
  if (out_axes.size() != k || out_dirs.size() != k)
    ctx.fail("scan_output_axes/directions must have one entry per scan output");
  int64_t len = -1;
  for (int64_t j = 0; j < m; ++j) {
    const Tensor& t = ctx.input(n_state + static_cast<size_t>(j));
    in_axes[static_cast<size_t>(j)] = normalize_axis(in_axes[static_cast<size_t>(j)], t.rank());
    int64_t l = t.dim(in_axes[static_cast<size_t>(j)]);
    if (len >= 0 && l != len) ctx.fail("scan inputs have different lengths (", len, " vs ", l, ")");
    len = l;
  }
  std::vector<Tensor> state;
  for (size_t i = 0; i < n_state; ++i) state.push_back(ctx.input(i));
  std::vector<std::vector<Tensor>> outs(k);
  for (int64_t it = 0; it < len; ++it) {
    std::vector<Tensor> in = state;
    for (int64_t j = 0; j < m; ++j) {
      int64_t idx = in_dirs[static_cast<size_t>(j)] ? len - 1 - it : it;
      in.push_back(take(ctx.input(n_state + static_cast<size_t>(j)), in_axes[static_cast<size_t>(j)], idx));
    }
    std::vector<Tensor> r = runner(ctx).run(body, in);
    for (size_t i = 0; i < n_state; ++i) state[i] = r[i];
    for (size_t i = 0; i < k; ++i) outs[i].push_back(r[n_state + i]);
  }
  for (size_t i = 0; i < n_state; ++i) ctx.set_output(i, state[i]);
  for (size_t i = 0; i < k; ++i) {
    if (outs[i].empty()) ctx.fail("Scan over zero iterations is not supported");
    if (out_dirs[i]) std::reverse(outs[i].begin(), outs[i].end());
    int64_t ax = normalize_axis(out_axes[i], outs[i][0].rank() + 1);
    ctx.set_output(n_state + i, stack_axis(outs[i], ax));
  }
}

}  // namespace

void add_control_ops(std::vector<OpDef>& ops) {
  ops.push_back({"If", "", 1, infer_if, compute_if});
  ops.push_back({"Loop", "", 1, infer_loop, compute_loop});
  ops.push_back({"Scan", "", 9, infer_scan, compute_scan});
}

}  // namespace lithe::ops
