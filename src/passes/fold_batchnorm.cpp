// Pass: fold_batchnorm (see pass_list.hpp for its place in the pipeline).
//
// An inference BatchNormalization, or a Mul/Add/Sub/Div by a per-output-channel constant,
// right after a Conv, ConvTranspose or Gemm with constant weights is an affine map per
// output channel, so it folds into the producer's weights and bias:
//   BN:  y = (conv(x) - mean) * s + beta,  s = scale / sqrt(var + eps)
//        W' = W * s (per output channel),  b' = (b - mean) * s + beta
//   Mul: W' = W * k, b' = b * k      Add: b' = b + k      (Sub, Div likewise)
// The arithmetic is done in double and rounded once to the weights' type. The producer
// then writes the folded node's output value directly (its name is kept) and the folded
// node goes. Nothing fires unless every condition holds: the producer's output has this
// node as its only reader and is not a graph output, weights/bias/statistics are
// constants, types and shapes are known, the BN is in inference form with one output, and
// the constant varies along the channel axis only.
#include <cmath>
#include <string>
#include <vector>

#include "ops/op.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace lithe::passes {
namespace {

// Per-output-channel affine map y' = y * mul[c] + add[c].
struct ChannelAffine {
  std::vector<double> mul, add;
};

// The producer the map folds into: Conv / ConvTranspose / Gemm with constant weights.
struct Producer {
  int node = -1;
  int out = -1;          // the value the folded node reads
  int64_t channels = 0;  // output channels (dim 1 of the output)
};

bool is_producer_op(const ir::Node& n) {
  return n.domain.empty() &&
         (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "Gemm");
}

class BatchNormFolder {
 public:
  BatchNormFolder(const ir::Graph& g, Rewriter& rw)
      : g_(g),
        rw_(rw),
        body_reads_(util::values_read_by_subgraphs(g)),
        touched_(g.nodes.size(), 0) {}

  int run() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const ir::Node& n = g_.nodes[i];
      if (!n.domain.empty() || touched_[i]) continue;
      if (n.op_type == "BatchNormalization")
        fold_bn(static_cast<int>(i));
      else if (n.op_type == "Mul" || n.op_type == "Add" || n.op_type == "Sub" || n.op_type == "Div")
        fold_arith(static_cast<int>(i));
    }
    return fired_;
  }

 private:
  const ir::TensorType& type(int v) const { return g_.values[static_cast<size_t>(v)].type; }

  // The foldable producer of `v` read by node `reader`, or node = -1.
  Producer producer_of(int v, int reader) const {
    Producer p;
    if (v < 0 || body_reads_[static_cast<size_t>(v)]) return p;
    const int pn = g_.values[static_cast<size_t>(v)].producer;
    if (pn < 0 || touched_[static_cast<size_t>(pn)]) return p;
    if (single_consumer(g_, v) != reader) return p;  // also excludes graph outputs
    const ir::Node& n = g_.nodes[static_cast<size_t>(pn)];
    if (!is_producer_op(n) || n.outputs.size() != 1 || n.inputs.size() < 2) return p;
    if (!util::type_known(g_, v)) return p;
    const ir::TensorType& t = type(v);
    if (!is_float(t.dtype) || t.dims.size() < 2) return p;
    const Tensor* w = constant_of(g_, n.inputs[1]);
    if (!w || w->dtype() != t.dtype) return p;
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      const Tensor* b = constant_of(g_, n.inputs[2]);
      if (!b || b->dtype() != t.dtype) return p;
    }
    if (n.op_type == "Gemm") {
      // Y = alpha A'B' + beta C with (M, N) output: the channel is the column. Before
      // opset 7, C's broadcasting was an attribute; leave those alone.
      if (n.opset < 7 || t.dims.size() != 2 || w->rank() != 2) return p;
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
        // Only a C that is the same for every row can become a per-column bias.
        const Shape& cs = constant_of(g_, n.inputs[2])->shape();
        if (cs.size() > 2 || (cs.size() == 2 && cs[0] != 1)) return p;
        if (!cs.empty() && cs.back() != 1 && cs.back() != t.dims[1]) return p;
      }
    } else if (w->rank() != static_cast<int64_t>(t.dims.size())) {
      return p;
    }
    p.node = pn;
    p.out = v;
    p.channels = t.dims[1];
    return p;
  }

  void fold_bn(int bn) {
    const ir::Node& n = g_.nodes[static_cast<size_t>(bn)];
    if (n.inputs.size() != 5 || n.outputs.empty() || n.outputs[0] < 0) return;
    for (size_t i = 1; i < n.outputs.size(); ++i)
      if (n.outputs[i] >= 0) return;  // running statistics requested: training form
    ops::NodeAttrs a(n);
    if (n.opset >= 14 && a.attr_int("training_mode", 0) != 0) return;
    if (n.opset < 9 && a.attr_int("spatial", 1) == 0) return;  // per-position parameters
    // Before opset 14 one output is the inference form (is_test is not consulted, as in the
    // reference kernel).
    Producer p = producer_of(n.inputs[0], bn);
    if (p.node < 0 || !util::same_type(g_, p.out, n.outputs[0])) return;
    std::vector<std::vector<double>> prm;
    for (size_t i = 1; i < 5; ++i) {
      const Tensor* t = constant_of(g_, n.inputs[i]);
      if (!t || !is_float(t->dtype()) || t->numel() != p.channels) return;
      prm.push_back(util::to_doubles(*t));
    }
    const double eps = static_cast<double>(a.attr_float("epsilon", 1e-5f));
    ChannelAffine m;
    for (int64_t c = 0; c < p.channels; ++c) {
      const size_t i = static_cast<size_t>(c);
      const double var = prm[3][i] + eps;
      if (!(var > 0)) return;  // a non-positive variance would fold to inf/NaN
      const double s = prm[0][i] / std::sqrt(var);
      m.mul.push_back(s);
      m.add.push_back(prm[1][i] - prm[2][i] * s);
    }
    apply(p, bn, m);
  }

  // Per-channel values of a constant broadcast against `out` (dims [N, C, ...] or [M, N]),
  // or false if it varies along any other axis or would change the output's shape.
  static bool per_channel(const Tensor& k, const Shape& out, std::vector<double>& vals) {
    const size_t r = out.size(), rk = static_cast<size_t>(k.rank());
    if (rk > r) return false;
    bool has_channel = false;
    for (size_t i = 0; i < rk; ++i) {
      const size_t d = r - rk + i;
      const int64_t kd = k.dim(static_cast<int64_t>(i));
      if (kd == 1) continue;
      if (d != 1 || kd != out[1]) return false;
      has_channel = true;
    }
    std::vector<double> all = util::to_doubles(k);
    vals.assign(static_cast<size_t>(out[1]), 0.0);
    for (size_t c = 0; c < vals.size(); ++c) vals[c] = all[has_channel ? c : 0];
    return true;
  }

  void fold_arith(int e) {
    const ir::Node& n = g_.nodes[static_cast<size_t>(e)];
    if (n.inputs.size() != 2 || n.outputs.size() != 1 || n.outputs[0] < 0) return;
    const std::string& op = n.op_type;
    const bool commutes = op == "Mul" || op == "Add";
    for (int k = 0; k < (commutes ? 2 : 1); ++k) {
      const int xv = n.inputs[static_cast<size_t>(k)];
      const Tensor* kt = constant_of(g_, n.inputs[static_cast<size_t>(1 - k)]);
      if (!kt || xv < 0) continue;
      Producer p = producer_of(xv, e);
      if (p.node < 0 || kt->dtype() != type(xv).dtype) continue;
      if (!util::same_type(g_, xv, n.outputs[0])) continue;
      std::vector<double> kc;
      if (!per_channel(*kt, type(xv).dims, kc)) continue;
      ChannelAffine m;
      m.mul.assign(kc.size(), 1.0);
      m.add.assign(kc.size(), 0.0);
      for (size_t c = 0; c < kc.size(); ++c) {
        if (op == "Mul") {
          m.mul[c] = kc[c];
        } else if (op == "Div") {
          if (kc[c] == 0) return;
          m.mul[c] = 1.0 / kc[c];
        } else {
          m.add[c] = op == "Add" ? kc[c] : -kc[c];
        }
      }
      apply(p, e, m);
      return;
    }
  }

  // Rewrites producer p with the map folded in; it takes over `folded`'s output value.
  void apply(const Producer& p, int folded, const ChannelAffine& m) {
    const ir::Node& prod = g_.nodes[static_cast<size_t>(p.node)];
    const Tensor& w = *constant_of(g_, prod.inputs[1]);
    const DType dt = w.dtype();
    const size_t nc = static_cast<size_t>(p.channels);
    std::vector<double> wv = util::to_doubles(w);
    std::vector<int64_t> chan(wv.size());  // output channel of each weight element
    if (!weight_channels(prod, w, p.channels, chan)) return;
    for (size_t i = 0; i < wv.size(); ++i) wv[i] *= m.mul[static_cast<size_t>(chan[i])];

    // Bias per output channel before the map: b, or beta * C for Gemm.
    std::vector<double> bias(nc, 0.0);
    const bool gemm = prod.op_type == "Gemm";
    if (prod.inputs.size() > 2 && prod.inputs[2] >= 0) {
      const Tensor& b = *constant_of(g_, prod.inputs[2]);
      std::vector<double> bv = util::to_doubles(b);
      if (!gemm && bv.size() != nc) return;
      const double beta =
          gemm ? static_cast<double>(ops::NodeAttrs(prod).attr_float("beta", 1.0f)) : 1.0;
      for (size_t c = 0; c < nc; ++c) bias[c] = beta * bv[bv.size() == 1 ? 0 : c];
    }
    for (size_t c = 0; c < nc; ++c) bias[c] = bias[c] * m.mul[c] + m.add[c];

    const std::string& wname = g_.values[static_cast<size_t>(prod.inputs[1])].name;
    ir::Node repl = prod;
    repl.inputs.resize(3, -1);
    repl.inputs[1] = rw_.add_constant(wname + "_folded", util::from_doubles(wv, dt, w.shape()));
    repl.inputs[2] =
        rw_.add_constant(prod.name + "_bias_folded", util::from_doubles(bias, dt, {p.channels}));
    if (gemm) {
      ir::Attribute one;
      one.kind = ir::Attribute::Kind::kFloat;
      one.f = 1.0f;
      repl.attrs["beta"] = one;
    }
    repl.outputs = {g_.nodes[static_cast<size_t>(folded)].outputs[0]};
    rw_.replace_node(p.node, std::move(repl));
    rw_.remove_node(folded);
    touched_[static_cast<size_t>(p.node)] = 1;
    touched_[static_cast<size_t>(folded)] = 1;
    ++fired_;
    rw_.note(str_cat(g_.nodes[static_cast<size_t>(folded)].op_type, " '",
                     g_.nodes[static_cast<size_t>(folded)].name, "' folded into ", prod.op_type,
                     " '", prod.name, "'"));
  }

  // The output channel of every element of the weight tensor, per the op's layout:
  // Conv W (M, C/group, k...); ConvTranspose W (C, M/group, k...); Gemm B (K, N) or, with
  // transB, (N, K).
  static bool weight_channels(const ir::Node& prod, const Tensor& w, int64_t channels,
                              std::vector<int64_t>& chan) {
    const Shape& s = w.shape();
    const int64_t numel = w.numel();
    if (prod.op_type == "Conv") {
      if (s[0] != channels) return false;
      const int64_t per = numel / channels;
      for (int64_t i = 0; i < numel; ++i) chan[static_cast<size_t>(i)] = i / per;
      return true;
    }
    if (prod.op_type == "ConvTranspose") {
      const int64_t group = ops::NodeAttrs(prod).attr_int("group", 1);
      if (group < 1 || s[0] % group != 0 || s[1] * group != channels) return false;
      const int64_t cin_g = s[0] / group, mg = s[1];
      const int64_t inner = numel / (s[0] * s[1]);  // kernel elements
      for (int64_t i = 0; i < numel; ++i) {
        const int64_t ci = i / (mg * inner), j = (i / inner) % mg;
        chan[static_cast<size_t>(i)] = (ci / cin_g) * mg + j;
      }
      return true;
    }
    // Gemm
    const bool tb = ops::NodeAttrs(prod).attr_int("transB", 0) != 0;
    const int64_t n = tb ? s[0] : s[1];
    if (n != channels) return false;
    for (int64_t i = 0; i < numel; ++i) chan[static_cast<size_t>(i)] = tb ? i / s[1] : i % s[1];
    return true;
  }

  const ir::Graph& g_;
  Rewriter& rw_;
  std::vector<char> body_reads_;
  std::vector<char> touched_;
  int fired_ = 0;
};

}  // namespace

int fold_batchnorm(const ir::Graph& g, Rewriter& rw) { return BatchNormFolder(g, rw).run(); }

}  // namespace lithe::passes
