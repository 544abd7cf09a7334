// Op family: rnn (RNN, GRU, LSTM). See ops/op.hpp for the contract.
//
// One reference kernel serves all three: each (direction, batch row) is run as its own
// recurrence, which makes sequence_lens and the reverse direction simple to get right.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

enum class Cell { kRnn, kGru, kLstm };

int64_t num_gates(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 3 : 4; }
// Activation functions per direction: f for RNN; f, g for GRU; f, g, h for LSTM.
size_t num_acts(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 2 : 3; }

// Input and output slots.
enum : size_t { kX = 0, kW, kR, kB, kSeqLens, kInitH, kInitC, kP };

enum class ActFn {
  kRelu,
  kTanh,
  kSigmoid,
  kAffine,
  kLeakyRelu,
  kThresholdedRelu,
  kScaledTanh,
  kHardSigmoid,
  kElu,
  kSoftsign,
  kSoftplus
};

struct Act {
  ActFn fn = ActFn::kTanh;
  double alpha = 0, beta = 0;

  template <class C>
  C operator()(C x) const {
    const C a = static_cast<C>(alpha), b = static_cast<C>(beta);
    switch (fn) {
      case ActFn::kRelu:
        return x > C(0) ? x : C(0);
      case ActFn::kTanh:
        return std::tanh(x);
      case ActFn::kSigmoid:
        return C(1) / (C(1) + std::exp(-x));
      case ActFn::kAffine:
        return a * x + b;
      case ActFn::kLeakyRelu:
        return x >= C(0) ? x : a * x;
      case ActFn::kThresholdedRelu:
        return x > a ? x : C(0);
      case ActFn::kScaledTanh:
        return a * std::tanh(b * x);
      case ActFn::kHardSigmoid:
        return std::max(C(0), std::min(C(1), a * x + b));
      case ActFn::kElu:
        return x >= C(0) ? x : a * (std::exp(x) - C(1));
      case ActFn::kSoftsign:
        return x / (C(1) + std::abs(x));
      case ActFn::kSoftplus:
        return std::log1p(std::exp(-std::abs(x))) + std::max(x, C(0));
    }
    return x;
  }
};

// Parses one activation name (case-insensitively) and gives its default alpha/beta and
// whether it consumes an entry of activation_alpha / activation_beta.
Act parse_act(const NodeAttrs& ctx, const std::string& name, bool& uses_alpha, bool& uses_beta) {
  std::string n;
  for (char ch : name) n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  Act a;
  uses_alpha = uses_beta = false;
  if (n == "relu") {
    a.fn = ActFn::kRelu;
  } else if (n == "tanh") {
    a.fn = ActFn::kTanh;
  } else if (n == "sigmoid") {
    a.fn = ActFn::kSigmoid;
  } else if (n == "affine") {
    a = {ActFn::kAffine, 1.0, 0.0};
    uses_alpha = uses_beta = true;
  } else if (n == "leakyrelu") {
    a = {ActFn::kLeakyRelu, 0.01, 0.0};
    uses_alpha = true;
  } else if (n == "thresholdedrelu") {
    a = {ActFn::kThresholdedRelu, 1.0, 0.0};
    uses_alpha = true;
  } else if (n == "scaledtanh") {
    a = {ActFn::kScaledTanh, 1.0, 1.0};
    uses_alpha = uses_beta = true;
  } else if (n == "hardsigmoid") {
    a = {ActFn::kHardSigmoid, 0.2, 0.5};
    uses_alpha = uses_beta = true;
  } else if (n == "elu") {
    a = {ActFn::kElu, 1.0, 0.0};
    uses_alpha = true;
  } else if (n == "softsign") {
    a.fn = ActFn::kSoftsign;
  } else if (n == "softplus") {
    a.fn = ActFn::kSoftplus;
  } else {
    ctx.fail("unknown activation '", name, "'");
  }
  return a;
}

struct RnnSpec {
  Cell cell;
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1;
  bool layout_batch_first = false;  // layout = 1 (opset 14+)
  bool reverse_only = false;        // direction = "reverse"
  std::vector<Act> acts;            // dirs * num_acts(cell), direction-major
  bool has_clip = false;
  double clip = 0;
  bool linear_before_reset = false;  // GRU
  bool input_forget = false;         // LSTM

  Shape y_shape() const {
    return layout_batch_first ? Shape{batch, seq, dirs, hidden} : Shape{seq, dirs, batch, hidden};
  }
  Shape state_shape() const {
    return layout_batch_first ? Shape{batch, dirs, hidden} : Shape{dirs, batch, hidden};
  }
};

void expect_shape(const NodeAttrs& ctx, const Shape& got, const Shape& want, const char* what) {
  if (got != want) ctx.fail(what, " has shape ", shape_str(got), ", expected ", shape_str(want));
}

// Builds the spec from the attributes and the input shapes (nullptr for an absent input),
// validating every shape.
RnnSpec make_spec(const NodeAttrs& ctx, Cell cell, const std::vector<const Shape*>& in) {
  RnnSpec s;
  s.cell = cell;
  const std::string dir = ctx.attr_string("direction", "forward");
  if (dir == "bidirectional") {
    s.dirs = 2;
  } else if (dir == "reverse") {
    s.reverse_only = true;
  } else if (dir != "forward") {
    ctx.fail("direction must be forward, reverse or bidirectional, got '", dir, "'");
  }
  const int64_t layout = ctx.opset() >= 14 ? ctx.attr_int("layout", 0) : 0;
  if (layout != 0 && layout != 1) ctx.fail("layout must be 0 or 1, got ", layout);
  s.layout_batch_first = layout == 1;

  const Shape& x = *in[kX];
  const Shape& w = *in[kW];
  const Shape& r = *in[kR];
  if (x.size() != 3) ctx.fail("X must be 3-D, got ", shape_str(x));
  if (w.size() != 3) ctx.fail("W must be 3-D, got ", shape_str(w));
  if (r.size() != 3) ctx.fail("R must be 3-D, got ", shape_str(r));
  s.seq = s.layout_batch_first ? x[1] : x[0];
  s.batch = s.layout_batch_first ? x[0] : x[1];
  s.input = x[2];
  const int64_t g = num_gates(cell);
  s.hidden = r[2];
  if (ctx.has_attr("hidden_size")) {
    const int64_t hs = ctx.attr_int("hidden_size");
    if (hs <= 0) ctx.fail("hidden_size must be positive, got ", hs);
    if (hs != s.hidden) ctx.fail("hidden_size ", hs, " does not match R of shape ", shape_str(r));
  }
  expect_shape(ctx, w, {s.dirs, g * s.hidden, s.input}, "W");
  expect_shape(ctx, r, {s.dirs, g * s.hidden, s.hidden}, "R");
  if (in[kB]) expect_shape(ctx, *in[kB], {s.dirs, 2 * g * s.hidden}, "B");
  if (in[kSeqLens]) expect_shape(ctx, *in[kSeqLens], {s.batch}, "sequence_lens");
  if (in[kInitH]) expect_shape(ctx, *in[kInitH], s.state_shape(), "initial_h");
  if (cell == Cell::kLstm) {
    if (in.size() > kInitC && in[kInitC])
      expect_shape(ctx, *in[kInitC], s.state_shape(), "initial_c");
    if (in.size() > kP && in[kP]) expect_shape(ctx, *in[kP], {s.dirs, 3 * s.hidden}, "P");
  }

  // Activations: the per-direction list, or one list per direction when bidirectional.
  const size_t na = num_acts(cell);
  std::vector<std::string> names;
  if (ctx.has_attr("activations")) {
    names = ctx.attr_strings("activations");
  } else {
    static const char* kDefaults[] = {"Sigmoid", "Tanh", "Tanh"};
    if (cell == Cell::kRnn)
      names = {"Tanh"};
    else
      names.assign(kDefaults, kDefaults + na);
  }
  if (names.size() == na && s.dirs == 2) {
    const std::vector<std::string> once = names;
    names.insert(names.end(), once.begin(), once.end());
  }
  if (names.size() != na * static_cast<size_t>(s.dirs))
    ctx.fail("activations must list ", na * static_cast<size_t>(s.dirs), " functions, got ",
             names.size());
  const std::vector<float> alphas = ctx.attr_floats("activation_alpha", {});
  const std::vector<float> betas = ctx.attr_floats("activation_beta", {});
  size_t ai = 0, bi = 0;
  for (const std::string& n : names) {
    bool ua, ub;
    Act a = parse_act(ctx, n, ua, ub);
    // Each function that takes alpha (beta) consumes the next listed value, if any.
    if (ua && ai < alphas.size()) a.alpha = alphas[ai++];
    if (ub && bi < betas.size()) a.beta = betas[bi++];
    s.acts.push_back(a);
  }
  if (ctx.has_attr("clip")) {
    s.has_clip = true;
    s.clip = ctx.attr_float("clip");
    if (!(s.clip > 0)) ctx.fail("clip must be positive, got ", s.clip);
  }
  if (cell == Cell::kGru) s.linear_before_reset = ctx.attr_int("linear_before_reset", 0) != 0;
  if (cell == Cell::kLstm) s.input_forget = ctx.attr_int("input_forget", 0) != 0;
  return s;
}

template <Cell kCell>
void infer_rnn(InferContext& ctx) {
  const size_t max_in = kCell == Cell::kLstm ? 8 : 6;
  ctx.expect_inputs(3, max_in);
  const DType t = ctx.input_dtype(kX);
  if (!is_float(t)) ctx.fail("X must be a float type, got ", dtype_name(t));
  for (size_t i : {kW, kR, kB, kInitH, kInitC, kP}) {
    if (i < max_in && ctx.has_input(i) && ctx.input_dtype(i) != t)
      ctx.fail("input ", i, " must have X's element type ", dtype_name(t));
  }
  if (ctx.has_input(kSeqLens) && ctx.input_dtype(kSeqLens) != DType::kInt32 &&
      ctx.input_dtype(kSeqLens) != DType::kInt64)
    ctx.fail("sequence_lens must be int32");
  // Dtypes first, so they survive a shape that is only known at run time.
  for (size_t i = 0; i < ctx.num_outputs() && i < (kCell == Cell::kLstm ? 3u : 2u); ++i)
    ctx.set_output_unknown(i, t);
  std::vector<const Shape*> shapes(max_in, nullptr);
  for (size_t i = 0; i < max_in; ++i)
    if (ctx.has_input(i)) shapes[i] = &ctx.input_shape(i);
  RnnSpec s = make_spec(ctx, kCell, shapes);
  if (ctx.num_outputs() > 0) ctx.set_output(0, t, s.y_shape());
  if (ctx.num_outputs() > 1) ctx.set_output(1, t, s.state_shape());
  if (kCell == Cell::kLstm && ctx.num_outputs() > 2) ctx.set_output(2, t, s.state_shape());
}

template <class T>
void rnn_kernel(ComputeContext& ctx, const RnnSpec& s) {
  using C = compute_t<T>;
  const int64_t H = s.hidden, I = s.input, G = num_gates(s.cell), B = s.batch;
  const T* x = ctx.input(kX).data<T>();
  const T* w = ctx.input(kW).data<T>();
  const T* r = ctx.input(kR).data<T>();
  const T* bias = ctx.has_input(kB) ? ctx.input(kB).data<T>() : nullptr;
  const T* h0 = ctx.has_input(kInitH) ? ctx.input(kInitH).data<T>() : nullptr;
  const bool lstm = s.cell == Cell::kLstm;
  const T* c0 = lstm && ctx.has_input(kInitC) ? ctx.input(kInitC).data<T>() : nullptr;
  const T* peep = lstm && ctx.has_input(kP) ? ctx.input(kP).data<T>() : nullptr;
  std::vector<int64_t> lens(static_cast<size_t>(B), s.seq);
  if (ctx.has_input(kSeqLens)) {
    lens = ctx.input(kSeqLens).to_int64_vector();
    for (int64_t l : lens)
      if (l < 0 || l > s.seq) ctx.fail("sequence_lens value ", l, " is outside [0, ", s.seq, "]");
  }
  T* y = ctx.has_output(0) ? ctx.output(0).data<T>() : nullptr;
  T* yh = ctx.has_output(1) ? ctx.output(1).data<T>() : nullptr;
  T* yc = lstm && ctx.has_output(2) ? ctx.output(2).data<T>() : nullptr;

  auto x_at = [&](int64_t t, int64_t b) {
    return x + (s.layout_batch_first ? b * s.seq + t : t * B + b) * I;
  };
  auto y_at = [&](int64_t t, int64_t d, int64_t b) {
    return s.layout_batch_first ? ((b * s.seq + t) * s.dirs + d) * H
                                : ((t * s.dirs + d) * B + b) * H;
  };
  auto state_at = [&](int64_t d, int64_t b) {
    return s.layout_batch_first ? (b * s.dirs + d) * H : (d * B + b) * H;
  };
  auto clip = [&](C v) {
    if (!s.has_clip) return v;
    const C c = static_cast<C>(s.clip);
    return std::max(-c, std::min(c, v));
  };

  const size_t na = num_acts(s.cell);
  std::vector<C> h(static_cast<size_t>(H)), c(static_cast<size_t>(H)), hn(static_cast<size_t>(H));
  std::vector<C> xw(static_cast<size_t>(G * H)), hr(static_cast<size_t>(G * H)),
      rh(static_cast<size_t>(H));
  for (int64_t d = 0; d < s.dirs; ++d) {
    const bool reverse = s.reverse_only || d == 1;
    const T* wd = w + d * G * H * I;
    const T* rd = r + d * G * H * H;
    const T* wb = bias ? bias + d * 2 * G * H : nullptr;
    const T* rb = bias ? wb + G * H : nullptr;
    const T* pd = peep ? peep + d * 3 * H : nullptr;
    const Act* act = &s.acts[static_cast<size_t>(d) * na];
    for (int64_t b = 0; b < B; ++b) {
      const int64_t so = state_at(d, b);
      for (int64_t k = 0; k < H; ++k) {
        h[static_cast<size_t>(k)] = h0 ? static_cast<C>(h0[so + k]) : C(0);
        c[static_cast<size_t>(k)] = c0 ? static_cast<C>(c0[so + k]) : C(0);
      }
      const int64_t len = lens[static_cast<size_t>(b)];
      for (int64_t step = 0; step < len; ++step) {
        const int64_t t = reverse ? len - 1 - step : step;
        const T* xt = x_at(t, b);
        // xw = W x + Wb and hr = R h + Rb for every gate row.
        for (int64_t j = 0; j < G * H; ++j) {
          C acc = wb ? static_cast<C>(wb[j]) : C(0);
          for (int64_t i = 0; i < I; ++i)
            acc += static_cast<C>(xt[i]) * static_cast<C>(wd[j * I + i]);
          xw[static_cast<size_t>(j)] = acc;
          C acc2 = rb ? static_cast<C>(rb[j]) : C(0);
          for (int64_t i = 0; i < H; ++i)
            acc2 += h[static_cast<size_t>(i)] * static_cast<C>(rd[j * H + i]);
          hr[static_cast<size_t>(j)] = acc2;
        }
        auto gx = [&](int64_t gate, int64_t k) { return xw[static_cast<size_t>(gate * H + k)]; };
        auto gh = [&](int64_t gate, int64_t k) { return hr[static_cast<size_t>(gate * H + k)]; };
        if (s.cell == Cell::kRnn) {
          for (int64_t k = 0; k < H; ++k)
            hn[static_cast<size_t>(k)] = act[0](clip(gx(0, k) + gh(0, k)));
        } else if (s.cell == Cell::kGru) {
          // Gate order z, r, h.
          std::vector<C> z(static_cast<size_t>(H)), rg(static_cast<size_t>(H));
          for (int64_t k = 0; k < H; ++k) {
            z[static_cast<size_t>(k)] = act[0](clip(gx(0, k) + gh(0, k)));
            rg[static_cast<size_t>(k)] = act[0](clip(gx(1, k) + gh(1, k)));
          }
          if (!s.linear_before_reset) {
            // (r . h) R_h^T + Rb_h
            for (int64_t k = 0; k < H; ++k)
              rh[static_cast<size_t>(k)] = rg[static_cast<size_t>(k)] * h[static_cast<size_t>(k)];
            for (int64_t j = 0; j < H; ++j) {
              C acc = rb ? static_cast<C>(rb[2 * H + j]) : C(0);
              for (int64_t i = 0; i < H; ++i)
                acc += rh[static_cast<size_t>(i)] * static_cast<C>(rd[(2 * H + j) * H + i]);
              hr[static_cast<size_t>(2 * H + j)] = acc;
            }
            for (int64_t k = 0; k < H; ++k)
              rh[static_cast<size_t>(k)] = act[1](clip(gx(2, k) + gh(2, k)));
          } else {
            for (int64_t k = 0; k < H; ++k)
              rh[static_cast<size_t>(k)] =
                  act[1](clip(gx(2, k) + rg[static_cast<size_t>(k)] * gh(2, k)));
          }
          for (int64_t k = 0; k < H; ++k) {
            const size_t u = static_cast<size_t>(k);
            hn[u] = (C(1) - z[u]) * rh[u] + z[u] * h[u];
          }
        } else {
          // Gate order i, o, f, c; peepholes P are ordered i, o, f.
          for (int64_t k = 0; k < H; ++k) {
            const size_t u = static_cast<size_t>(k);
            const C pi = pd ? static_cast<C>(pd[k]) : C(0);
            const C po = pd ? static_cast<C>(pd[H + k]) : C(0);
            const C pf = pd ? static_cast<C>(pd[2 * H + k]) : C(0);
            const C ig = act[0](clip(gx(0, k) + gh(0, k) + pi * c[u]));
            C fg = act[0](clip(gx(2, k) + gh(2, k) + pf * c[u]));
            if (s.input_forget) fg = C(1) - ig;
            const C cg = act[1](clip(gx(3, k) + gh(3, k)));
            const C cn = fg * c[u] + ig * cg;
            const C og = act[0](clip(gx(1, k) + gh(1, k) + po * cn));
            c[u] = cn;
            hn[u] = og * act[2](cn);
          }
        }
        h = hn;
        if (y) {
          T* yt = y + y_at(t, d, b);
          for (int64_t k = 0; k < H; ++k) yt[k] = static_cast<T>(h[static_cast<size_t>(k)]);
        }
      }
      if (yh)
        for (int64_t k = 0; k < H; ++k) yh[so + k] = static_cast<T>(h[static_cast<size_t>(k)]);
      if (yc)
        for (int64_t k = 0; k < H; ++k) yc[so + k] = static_cast<T>(c[static_cast<size_t>(k)]);
    }
  }
}

template <Cell kCell>
void compute_rnn(ComputeContext& ctx) {
  const size_t max_in = kCell == Cell::kLstm ? 8 : 6;
  std::vector<const Shape*> shapes(max_in, nullptr);
  for (size_t i = 0; i < max_in; ++i)
    if (ctx.has_input(i)) shapes[i] = &ctx.input(i).shape();
  if (!shapes[kX] || !shapes[kW] || !shapes[kR]) ctx.fail("X, W and R are required");
  RnnSpec s = make_spec(ctx, kCell, shapes);
  visit_float_dtype(ctx.input(kX).dtype(),
                    [&](auto tag) { rnn_kernel<typename decltype(tag)::type>(ctx, s); });
}

}  // namespace

void add_rnn_ops(std::vector<OpDef>& ops) {
  ops.push_back({"RNN", "", 1, infer_rnn<Cell::kRnn>, compute_rnn<Cell::kRnn>});
  ops.push_back({"GRU", "", 1, infer_rnn<Cell::kGru>, compute_rnn<Cell::kGru>});
  ops.push_back({"LSTM", "", 1, infer_rnn<Cell::kLstm>, compute_rnn<Cell::kLstm>});
}

}  // namespace lithe::ops
