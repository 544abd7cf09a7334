// Pass: convert_layout_nhwc (see pass_list.hpp for its place in the pipeline).
//
// Finds regions of 4-D float tensors connected through 2-D Conv (ONNX or fused lithe
// domain), ConvTranspose with stride == kernel (util::is_shuffle_deconv), MaxPool/AveragePool
// (one output), GlobalAveragePool, elementwise unary ops, elementwise binary ops (both
// operands 4-D region tensors, or one a constant that is permuted to channels-last), Resize of
// the two spatial axes (its scales / sizes permuted) and Concat on the channel axis. A region
// with at least one conv runs channels-last: its conv/pool nodes become the lithe-domain *Nhwc
// ops (ops/nhwc.cpp), such a ConvTranspose a 1x1 ConvNhwc to kh*kw*M channels followed by the
// pixel shuffle DepthToSpaceNhwc, its elementwise nodes read NHWC values, a Concat moves to
// axis 3, and Transposes sit only at the borders: perm (0,2,3,1) where an NCHW value enters,
// perm (0,3,1,2) where a region value is read outside it or is a graph output (the Transpose
// then produces the original value, so names and layouts of graph outputs are kept).
// noop-elimination later cancels the inverse pairs two neighbouring regions leave between
// them.
#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "ops/fused_internal.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::passes {
namespace {

enum class Kind {
  kNone, kConv, kDeconv, kPool, kGlobalPool, kUnary, kBinary, kConcat, kSplit, kResize, kConverted
};

// Which inputs of a candidate node carry region (4-D activation) tensors; the other present
// inputs are parameters (weights, bias, Clip bounds, binary constants).
struct Candidate {
  Kind kind = Kind::kNone;
  std::vector<size_t> region_inputs;
  int const_operand = -1;  ///< binary: the constant operand's index
};


bool is_nhwc_op(const ir::Node& n) {
  return n.domain == "lithe" &&
         (n.op_type == "ConvNhwc" || n.op_type == "MaxPoolNhwc" || n.op_type == "AveragePoolNhwc" ||
          n.op_type == "GlobalAveragePoolNhwc" || n.op_type == "DepthToSpaceNhwc");
}

// A 4-D float value with a fully known static shape.
bool region_value(const ir::Graph& g, int v) {
  if (v < 0) return false;
  const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
  return t.fully_known() && t.dims.size() == 4 && is_float(t.dtype);
}

const ir::TensorType& type_of(const ir::Graph& g, int v) {
  return g.values[static_cast<size_t>(v)].type;
}

bool single_output(const ir::Node& n) {
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0) return false;
  return !n.outputs.empty() && n.outputs[0] >= 0;
}

// The inputs of a Resize that hold per-axis scales or sizes (opset 10: scales only).
std::vector<size_t> resize_axis_inputs(const ir::Node& n) {
  return n.opset < 11 ? std::vector<size_t>{1} : std::vector<size_t>{2, 3};
}

// A Resize of the two spatial axes of an NCHW tensor (constant scales / sizes leaving N and C
// as they are; no per-axis `axes`, no crop-and-resize, whose roi is per axis too).
bool spatial_resize(const ir::Graph& g, const ir::Node& n) {
  const ops::NodeAttrs a(n);
  if (n.attrs.count("axes") || a.attr_string("coordinate_transformation_mode", "") == "tf_crop_and_resize" ||
      a.attr_string("keep_aspect_ratio_policy", "stretch") != "stretch")
    return false;
  const Shape& xd = type_of(g, n.inputs[0]).dims;
  bool any = false;
  for (size_t i : resize_axis_inputs(n)) {
    if (i >= n.inputs.size() || n.inputs[i] < 0) continue;
    const Tensor* k = constant_of(g, n.inputs[i]);
    if (!k || k->rank() != 1) return false;
    if (k->numel() == 0) continue;
    if (k->numel() != 4) return false;
    if (k->dtype() == DType::kFloat32 && (k->data<float>()[0] != 1.f || k->data<float>()[1] != 1.f))
      return false;
    if (k->dtype() == DType::kInt64 && (k->data<int64_t>()[0] != xd[0] || k->data<int64_t>()[1] != xd[1]))
      return false;
    if (k->dtype() != DType::kFloat32 && k->dtype() != DType::kInt64) return false;
    any = true;
  }
  return any;
}

// A per-axis vector of 4 (N, C, H, W) in NHWC order.
Tensor axes_to_nhwc(const Tensor& k) {
  Tensor out(k.dtype(), k.shape());
  const size_t es = dtype_size(k.dtype());
  const auto* src = static_cast<const unsigned char*>(k.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  const int from[4] = {0, 2, 3, 1};
  for (size_t i = 0; i < 4; ++i) std::memcpy(dst + i * es, src + static_cast<size_t>(from[i]) * es, es);
  return out;
}

Candidate classify(const ir::Graph& g, const ir::Node& n) {
  Candidate c;
  if (is_nhwc_op(n)) {
    c.kind = Kind::kConverted;
    return c;
  }
  if (ir::has_subgraph(n)) return c;
  // Split on the channel axis (sibling aggregation leaves one after each wider conv).
  if (n.domain.empty() && n.op_type == "Split") {
    auto it = n.attrs.find("axis");
    const int64_t axis =
        it == n.attrs.end() ? 0 : (it->second.kind == ir::Attribute::Kind::kInt ? it->second.i : 0);
    if ((axis != 1 && axis != -3) || n.inputs.empty() || !region_value(g, n.inputs[0])) return c;
    if (n.attrs.count("num_outputs")) return c;
    for (size_t i = 1; i < n.inputs.size(); ++i)
      if (n.inputs[i] >= 0 && !constant_of(g, n.inputs[i])) return c;
    if (n.outputs.empty()) return c;
    for (int o : n.outputs)
      if (!region_value(g, o)) return c;
    c.region_inputs = {0};
    c.kind = Kind::kSplit;
    return c;
  }
  if (!single_output(n)) return c;
  const int y = n.outputs[0];
  if (!region_value(g, y)) return c;
  auto in = [&](size_t i) { return i < n.inputs.size() ? n.inputs[i] : -1; };
  if (n.op_type == "Conv" && (n.domain.empty() || n.domain == "lithe")) {
    if (!region_value(g, in(0)) || in(1) < 0) return c;
    const ir::TensorType& wt = type_of(g, in(1));
    if (!wt.fully_known() || wt.dims.size() != 4) return c;
    if (n.inputs.size() > 4) return c;
    c.region_inputs = {0};
    if (in(3) >= 0) {
      if (n.domain.empty() || !region_value(g, in(3)) ||
          type_of(g, in(3)).dims != type_of(g, y).dims)
        return c;
      c.region_inputs.push_back(3);
    }
    c.kind = Kind::kConv;
  } else if (n.op_type == "ConvTranspose" && (n.domain.empty() || n.domain == "lithe")) {
    if (!region_value(g, in(0)) || !util::is_shuffle_deconv(g, n)) return c;
    c.region_inputs = {0};
    c.kind = Kind::kDeconv;
  } else if (n.domain.empty() && (n.op_type == "MaxPool" || n.op_type == "AveragePool")) {
    if (n.inputs.size() != 1 || !region_value(g, in(0))) return c;
    c.region_inputs = {0};
    c.kind = Kind::kPool;
  } else if (n.domain.empty() && n.op_type == "GlobalAveragePool") {
    if (n.inputs.size() != 1 || !region_value(g, in(0))) return c;
    c.region_inputs = {0};
    c.kind = Kind::kGlobalPool;
  } else if (n.domain.empty() && ops::is_unary_elementwise(n.op_type)) {
    if (!region_value(g, in(0)) || type_of(g, in(0)).dims != type_of(g, y).dims) return c;
    for (size_t i = 1; i < n.inputs.size(); ++i)  // Clip bounds: scalars
      if (n.inputs[i] >= 0 &&
          (!type_of(g, n.inputs[i]).fully_known() || type_of(g, n.inputs[i]).dims.size() > 1))
        return c;
    c.region_inputs = {0};
    c.kind = Kind::kUnary;
  } else if (n.domain.empty() && (n.op_type == "Add" || n.op_type == "Mul" || n.op_type == "Sub" ||
                                  n.op_type == "Div")) {
    if (n.inputs.size() != 2 || in(0) < 0 || in(1) < 0) return c;
    const Tensor* k0 = constant_of(g, in(0));
    const Tensor* k1 = constant_of(g, in(1));
    if (k0 && k1) return c;
    if (!k0 && !k1) {
      if (!region_value(g, in(0)) || !region_value(g, in(1))) return c;
      c.region_inputs = {0, 1};
    } else {
      const size_t ki = k0 ? 0 : 1;
      const Tensor& k = k0 ? *k0 : *k1;
      if (!region_value(g, in(1 - ki)) || type_of(g, in(1 - ki)).dims != type_of(g, y).dims)
        return c;
      if (k.rank() > 4 || k.dtype() != type_of(g, y).dtype) return c;
      c.region_inputs = {1 - ki};
      c.const_operand = static_cast<int>(ki);
    }
    c.kind = Kind::kBinary;
  } else if (n.domain.empty() && n.op_type == "Resize") {
    if (!region_value(g, in(0)) || !spatial_resize(g, n)) return c;
    c.region_inputs = {0};
    c.kind = Kind::kResize;
  } else if (n.domain.empty() && n.op_type == "Concat") {
    auto it = n.attrs.find("axis");
    if (it == n.attrs.end() || it->second.kind != ir::Attribute::Kind::kInt) return c;
    if (it->second.i != 1 && it->second.i != -3) return c;
    if (n.inputs.empty()) return c;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (!region_value(g, n.inputs[i])) return c;
      c.region_inputs.push_back(i);
    }
    c.kind = Kind::kConcat;
  }
  return c;
}

// True when the conv has no activation yet and its only consumer is one fuse_activation
// folds into a conv epilogue.
bool activation_pending(const ir::Graph& g, const ir::Node& conv) {
  auto it = conv.attrs.find("activation");
  if (it != conv.attrs.end() && !it->second.s.empty()) return false;
  const int u = single_consumer(g, conv.outputs[0]);
  if (u < 0) return false;
  const ir::Node& c = g.nodes[static_cast<size_t>(u)];
  if (!c.domain.empty()) return false;
  for (const char* op :
       {"Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh"})
    if (c.op_type == op) return true;
  return false;
}

int find_root(std::vector<int>& parent, int x) {
  while (parent[static_cast<size_t>(x)] != x) {
    parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
    x = parent[static_cast<size_t>(x)];
  }
  return x;
}

Shape to_nhwc(const Shape& s) { return {s[0], s[2], s[3], s[1]}; }

// A broadcast constant of an NCHW binary op as the equivalent NHWC constant: padded to rank
// 4 with leading ones, then permuted (0,2,3,1). A single element is kept as it is.
Tensor constant_to_nhwc(const Tensor& k) {
  if (k.numel() == 1) return k;
  Shape s = k.shape();
  while (s.size() < 4) s.insert(s.begin(), 1);
  Tensor out(k.dtype(), to_nhwc(s));
  const size_t es = dtype_size(k.dtype());
  const auto* src = static_cast<const unsigned char*>(k.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < s[1]; ++c)
      for (int64_t h = 0; h < s[2]; ++h)
        for (int64_t w = 0; w < s[3]; ++w) {
          const int64_t si = ((n * s[1] + c) * s[2] + h) * s[3] + w;
          const int64_t di = ((n * s[2] + h) * s[3] + w) * s[1] + c;
          std::memcpy(dst + static_cast<size_t>(di) * es, src + static_cast<size_t>(si) * es, es);
        }
  return out;
}

int onnx_opset(const ir::Graph& g) {
  auto it = g.opsets.find("");
  return it == g.opsets.end() ? 13 : it->second;
}

}  // namespace

int convert_layout_nhwc(const ir::Graph& g, Rewriter& rw) {
  const size_t nn = g.nodes.size();
  std::vector<Candidate> cand(nn);
  for (size_t i = 0; i < nn; ++i) cand[i] = classify(g, g.nodes[i]);

  // Union the candidates joined through a region input produced by another candidate.
  std::vector<int> parent(nn);
  std::iota(parent.begin(), parent.end(), 0);
  for (size_t i = 0; i < nn; ++i) {
    if (cand[i].kind == Kind::kNone) continue;
    for (size_t k : cand[i].region_inputs) {
      const int p = g.values[static_cast<size_t>(g.nodes[i].inputs[k])].producer;
      if (p < 0 || cand[static_cast<size_t>(p)].kind == Kind::kNone) continue;
      parent[static_cast<size_t>(find_root(parent, p))] = find_root(parent, static_cast<int>(i));
    }
  }
  // A converted op (from an earlier round) joins whatever elementwise nodes touch it, so a
  // region holding one is already done; a region without a conv is not worth transposing.
  // A conv that fuse_activation will still extend (its residual was fused this round, the
  // activation comes next round) holds its region back until the fusions settle.
  std::map<int, bool> has_conv, done;
  for (size_t i = 0; i < nn; ++i) {
    if (cand[i].kind == Kind::kNone) continue;
    const int r = find_root(parent, static_cast<int>(i));
    const bool conv = cand[i].kind == Kind::kConv || cand[i].kind == Kind::kDeconv;
    if (conv) has_conv[r] = true;
    if (conv && activation_pending(g, g.nodes[i])) done[r] = true;
    if (cand[i].kind == Kind::kConverted) done[r] = true;
  }
  std::vector<int> region(nn, -1);
  for (size_t i = 0; i < nn; ++i) {
    if (cand[i].kind == Kind::kNone || cand[i].kind == Kind::kConverted) continue;
    const int r = find_root(parent, static_cast<int>(i));
    if (has_conv[r] && !done[r]) region[i] = r;
  }

  const std::vector<char> body_reads = util::values_read_by_subgraphs(g);
  const int opset = onnx_opset(g);
  // NHWC value for each region-produced value, and per (value, region) Transposes in.
  std::map<int, int> nhwc_of;
  std::map<std::pair<int, int>, int> entry;
  for (size_t i = 0; i < nn; ++i) {
    if (region[i] < 0) continue;
    for (int y : g.nodes[i].outputs) {
      const ir::TensorType& t = type_of(g, y);
      nhwc_of[y] = rw.add_value(g.values[static_cast<size_t>(y)].name + "_nhwc",
                                {t.dtype, true, to_nhwc(t.dims)});
    }
  }
  auto region_input = [&](int v, int r) -> int {
    const int p = g.values[static_cast<size_t>(v)].producer;
    if (p >= 0 && region[static_cast<size_t>(p)] == r) return nhwc_of.at(v);
    auto it = entry.find({v, r});
    if (it != entry.end()) return it->second;
    const ir::TensorType& t = type_of(g, v);
    const int out = rw.add_value(g.values[static_cast<size_t>(v)].name + "_to_nhwc",
                                 {t.dtype, true, to_nhwc(t.dims)});
    ir::Node tr;
    tr.name = g.values[static_cast<size_t>(v)].name + "_to_nhwc";
    tr.op_type = "Transpose";
    tr.opset = opset;
    tr.attrs["perm"] = ir::Attribute::of_ints({0, 2, 3, 1});
    tr.inputs = {v};
    tr.outputs = {out};
    rw.add_node(std::move(tr));
    entry[{v, r}] = out;
    return out;
  };

  int converted = 0, borders_in = 0, borders_out = 0;
  std::map<int, int> regions;  // root -> count of nodes
  for (size_t i = 0; i < nn; ++i) {
    const int r = region[i];
    if (r < 0) continue;
    ++regions[r];
    const ir::Node& old = g.nodes[i];
    const Candidate& c = cand[i];
    ir::Node n = old;
    for (size_t k : c.region_inputs) n.inputs[k] = region_input(old.inputs[k], r);
    switch (c.kind) {
      case Kind::kConv:
        n.op_type = "ConvNhwc";
        n.domain = "lithe";
        break;
      case Kind::kDeconv: {
        // The 1x1 conv (under the ConvTranspose's name) writes every tap's channels; the
        // shuffle that replaces the node puts them in place.
        const Tensor& w = *constant_of(g, old.inputs[1]);
        const int64_t kh = w.shape()[2], kw = w.shape()[3];
        const ir::TensorType& xt = type_of(g, old.inputs[0]);
        ir::Node conv;
        conv.name = old.name;
        conv.op_type = "ConvNhwc";
        conv.domain = "lithe";
        conv.opset = 1;
        auto name_of = [&](int v) { return g.values[static_cast<size_t>(v)].name; };
        conv.inputs = {n.inputs[0], rw.add_constant(name_of(old.inputs[1]) + "_taps",
                                                    util::shuffle_deconv_weights(w))};
        if (old.inputs.size() > 2 && old.inputs[2] >= 0) {
          const Tensor& b = *constant_of(g, old.inputs[2]);
          conv.inputs.push_back(rw.add_constant(name_of(old.inputs[2]) + "_taps",
                                                util::shuffle_deconv_bias(b, kh * kw)));
        }
        conv.attrs["kernel_shape"] = ir::Attribute::of_ints({1, 1});
        for (const char* keep : ops::fused::kEpilogueAttrs)
          if (old.attrs.count(keep)) conv.attrs[keep] = old.attrs.at(keep);
        const int taps = rw.add_value(
            name_of(old.outputs[0]) + "_taps_nhwc",
            {xt.dtype, true, {xt.dims[0], xt.dims[2], xt.dims[3], kh * kw * w.shape()[1]}});
        conv.outputs = {taps};
        rw.add_node(std::move(conv));
        n.name = old.name + "_shuffle";
        n.op_type = "DepthToSpaceNhwc";
        n.domain = "lithe";
        n.inputs = {taps};
        n.attrs = {{"bh", ir::Attribute::of_int(kh)}, {"bw", ir::Attribute::of_int(kw)}};
        break;
      }
      case Kind::kPool:
        n.op_type = old.op_type + "Nhwc";
        n.domain = "lithe";
        n.attrs.erase("storage_order");
        break;
      case Kind::kGlobalPool:
        n.op_type = "GlobalAveragePoolNhwc";
        n.domain = "lithe";
        break;
      case Kind::kConcat:
      case Kind::kSplit:
        n.attrs["axis"] = ir::Attribute{};
        n.attrs["axis"].kind = ir::Attribute::Kind::kInt;
        n.attrs["axis"].i = 3;
        break;
      case Kind::kResize:
        for (size_t k : resize_axis_inputs(old)) {
          const int kv = k < old.inputs.size() ? old.inputs[k] : -1;
          const Tensor* t = kv >= 0 ? constant_of(g, kv) : nullptr;
          if (t && t->numel() == 4)
            n.inputs[k] = rw.add_constant(g.values[static_cast<size_t>(kv)].name + "_nhwc", axes_to_nhwc(*t));
        }
        break;
      case Kind::kBinary:
        if (c.const_operand >= 0) {
          const int kv = old.inputs[static_cast<size_t>(c.const_operand)];
          const Tensor& k = *constant_of(g, kv);
          if (k.numel() != 1)
            n.inputs[static_cast<size_t>(c.const_operand)] = rw.add_constant(
                g.values[static_cast<size_t>(kv)].name + "_nhwc", constant_to_nhwc(k));
        }
        break;
      default:
        break;
    }
    if (n.domain == "lithe") n.opset = 1;
    for (int& o : n.outputs) o = nhwc_of.at(o);
    rw.replace_node(static_cast<int>(i), std::move(n));
    ++converted;
    for (int y : old.outputs) {
      // The original NCHW value is still needed where something outside the region reads it.
      bool outside = is_graph_output(g, y) || body_reads[static_cast<size_t>(y)];
      for (int u : g.values[static_cast<size_t>(y)].consumers) {
        const size_t ui = static_cast<size_t>(u);
        bool as_region_input = false;
        if (region[ui] == r)
          for (size_t k : cand[ui].region_inputs)
            as_region_input = as_region_input || g.nodes[ui].inputs[k] == y;
        // A node reading y both ways (region input and parameter) is not expected; any
        // non-region read needs the NCHW value.
        bool other_read = false;
        for (size_t k = 0; k < g.nodes[ui].inputs.size(); ++k)
          if (g.nodes[ui].inputs[k] == y &&
              std::find(cand[ui].region_inputs.begin(), cand[ui].region_inputs.end(), k) ==
                  cand[ui].region_inputs.end())
            other_read = true;
        if (!as_region_input || other_read || region[ui] != r) outside = true;
      }
      if (outside) {
        ir::Node tr;
        tr.name = g.values[static_cast<size_t>(y)].name + "_to_nchw";
        tr.op_type = "Transpose";
        tr.opset = opset;
        tr.attrs["perm"] = ir::Attribute::of_ints({0, 3, 1, 2});
        tr.inputs = {nhwc_of.at(y)};
        tr.outputs = {y};
        rw.add_node(std::move(tr));
        ++borders_out;
      }
    }
  }
  borders_in = static_cast<int>(entry.size());
  if (!regions.empty())
    rw.note(std::to_string(regions.size()) + " region(s), " + std::to_string(converted) +
            " node(s) converted to NHWC, " + std::to_string(borders_in) + " transpose(s) in, " +
            std::to_string(borders_out) + " out");
  return static_cast<int>(regions.size());
}

}  // namespace lithe::passes
