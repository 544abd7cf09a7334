// Op family: gemm (Gemm, MatMul, MatMulInteger, Einsum). See ops/op.hpp for the contract.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

// Accumulator type: float for float32 and the 16-bit floats, double for float64, and uint64
// for integers, whose modular arithmetic gives the wrap-around result of two's complement
// without the undefined behaviour of signed overflow.
template <class T>
using acc_t = std::conditional_t<std::is_integral_v<T>, uint64_t, compute_t<T>>;

template <class T>
acc_t<T> to_acc(T v) {
  return static_cast<acc_t<T>>(v);
}

template <class T>
T from_acc(acc_t<T> v) {
  return static_cast<T>(v);
}

// Converts a double to an integer type, saturating and mapping NaN to 0 (a plain cast of an
// out-of-range double is undefined behaviour).
template <class T>
T saturate_from_double(double v) {
  if (std::isnan(v)) return T(0);
  const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
  const double hi = static_cast<double>(std::numeric_limits<T>::max());
  if (v <= lo) return std::numeric_limits<T>::lowest();
  if (v >= hi) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

// Numeric types (everything but bool); fails for bool.
template <class F>
void visit_numeric(DType t, F&& f) {
  if (t == DType::kBool) fail("element type bool is not supported by this op");
  visit_dtype(t, std::forward<F>(f));
}

// ---------------------------------------------------------------------------------------
// MatMul shape logic (numpy semantics).

struct MatMulPlan {
  Shape out;                                              // final output shape
  Shape batch;                                            // broadcast batch shape
  int64_t m = 1, k = 1, n = 1;                            // per-matrix sizes
  std::vector<int64_t> a_batch_strides, b_batch_strides;  // element strides per batch dim
};

MatMulPlan plan_matmul(const Shape& a, const Shape& b) {
  if (a.empty() || b.empty())
    fail("MatMul inputs must have rank >= 1, got ", shape_str(a), " and ", shape_str(b));
  MatMulPlan p;
  // Promote 1-D operands: A (K) -> (1, K), B (K) -> (K, 1); the added dims are removed again.
  Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  Shape b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  p.m = a2[a2.size() - 2];
  p.k = a2[a2.size() - 1];
  p.n = b2[b2.size() - 1];
  const int64_t kb = b2[b2.size() - 2];
  if (p.k != kb)
    fail("inner dimensions do not match: A is ", shape_str(a), " and B is ", shape_str(b), " (K ",
         p.k, " vs ", kb, ")");
  Shape ab(a2.begin(), a2.end() - 2), bb(b2.begin(), b2.end() - 2);
  p.batch = broadcast_shapes(ab, bb);
  // Batch strides in units of whole matrices' elements.
  auto bstrides = [&](const Shape& in, int64_t mat) {
    std::vector<int64_t> st = broadcast_strides(in, p.batch);
    for (auto& s : st) s *= mat;
    return st;
  };
  p.a_batch_strides = bstrides(ab, p.m * p.k);
  p.b_batch_strides = bstrides(bb, p.k * p.n);
  p.out = p.batch;
  if (a.size() != 1) p.out.push_back(p.m);
  if (b.size() != 1) p.out.push_back(p.n);
  return p;
}

// Calls f(batch_index, a_offset, b_offset) for every batch matrix.
template <class F>
void for_each_batch(const MatMulPlan& p, F&& f) {
  for_each_broadcast<2>(p.batch, {p.a_batch_strides, p.b_batch_strides},
                        [&](int64_t i, int64_t oa, int64_t ob) { f(i, oa, ob); });
}

void infer_matmul(InferContext& ctx) {
  ctx.expect_inputs(2, 2);
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t)
    ctx.fail("A and B must have the same element type, got ", dtype_name(t), " and ",
             dtype_name(ctx.input_dtype(1)));
  if (t == DType::kBool) ctx.fail("MatMul does not support bool");
  ctx.set_output_unknown(0, t);  // keeps the dtype if a shape below is unknown
  MatMulPlan p = plan_matmul(ctx.input_shape(0), ctx.input_shape(1));
  ctx.set_output(0, t, p.out);
}

void compute_matmul(ComputeContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  MatMulPlan p = plan_matmul(a.shape(), b.shape());
  visit_numeric(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.data<T>();
    std::vector<A> row(static_cast<size_t>(p.n));
    for_each_batch(p, [&](int64_t bi, int64_t oa, int64_t ob) {
      T* yb = py + bi * p.m * p.n;
      for (int64_t i = 0; i < p.m; ++i) {
        std::fill(row.begin(), row.end(), A(0));
        // i-k-j order keeps the inner loop contiguous in B and Y.
        for (int64_t kk = 0; kk < p.k; ++kk) {
          const A av = to_acc(pa[oa + i * p.k + kk]);
          const T* brow = pb + ob + kk * p.n;
          for (int64_t j = 0; j < p.n; ++j) row[static_cast<size_t>(j)] += av * to_acc(brow[j]);
        }
        for (int64_t j = 0; j < p.n; ++j)
          yb[i * p.n + j] = from_acc<T>(row[static_cast<size_t>(j)]);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------
// MatMulInteger: int8/uint8 inputs with zero points, int32 output.

void check_int8_type(const NodeAttrs& ctx, DType t, const char* what) {
  if (t != DType::kInt8 && t != DType::kUInt8)
    ctx.fail(what, " must be int8 or uint8, got ", dtype_name(t));
}

void infer_matmul_integer(InferContext& ctx) {
  ctx.expect_inputs(2, 4);
  check_int8_type(ctx, ctx.input_dtype(0), "A");
  check_int8_type(ctx, ctx.input_dtype(1), "B");
  if (ctx.has_input(2) && ctx.input_dtype(2) != ctx.input_dtype(0))
    ctx.fail("a_zero_point must have A's element type");
  if (ctx.has_input(3) && ctx.input_dtype(3) != ctx.input_dtype(1))
    ctx.fail("b_zero_point must have B's element type");
  ctx.set_output_unknown(0, DType::kInt32);
  MatMulPlan p = plan_matmul(ctx.input_shape(0), ctx.input_shape(1));
  if (ctx.has_input(2)) {
    const int64_t n = shape_numel(ctx.input_shape(2));
    if (n != 1 && n != p.m)
      ctx.fail("a_zero_point must be a scalar or have ", p.m, " elements (rows of A), got ", n);
  }
  ctx.set_output(0, DType::kInt32, p.out);
}

int64_t int8_at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::kInt8 ? int64_t{t.data<int8_t>()[i]} : int64_t{t.data<uint8_t>()[i]};
}

void compute_matmul_integer(ComputeContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  MatMulPlan p = plan_matmul(a.shape(), b.shape());
  // Zero points: a scalar (per tensor), M values (per row of A) or N values (per column of
  // B); B's may also hold one row of N per batch matrix of B.
  const Tensor* az = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* bz = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (az && az->numel() != 1 && az->numel() != p.m)
    ctx.fail("a_zero_point must be a scalar or have ", p.m, " elements (rows of A), got ",
             shape_str(az->shape()));
  const int64_t b_mats =
      b.rank() <= 2 ? 1 : shape_numel(Shape(b.shape().begin(), b.shape().end() - 2));
  if (bz && bz->numel() != 1 && bz->numel() != p.n && bz->numel() != p.n * b_mats)
    ctx.fail("b_zero_point must be a scalar or have ", p.n, " elements (columns of B), got ",
             shape_str(bz->shape()));
  int32_t* py = y.data<int32_t>();
  std::vector<int64_t> acc(static_cast<size_t>(p.n));
  for_each_batch(p, [&](int64_t bi, int64_t oa, int64_t ob) {
    const int64_t bmat = ob / std::max<int64_t>(1, p.k * p.n);
    for (int64_t i = 0; i < p.m; ++i) {
      const int64_t za = az ? int8_at(*az, az->numel() == 1 ? 0 : i) : 0;
      std::fill(acc.begin(), acc.end(), 0);
      for (int64_t kk = 0; kk < p.k; ++kk) {
        const int64_t av = int8_at(a, oa + i * p.k + kk) - za;
        for (int64_t j = 0; j < p.n; ++j) {
          int64_t zb = 0;
          if (bz) {
            const int64_t n = bz->numel();
            zb = int8_at(*bz, n == 1 ? 0 : n == p.n ? j : bmat * p.n + j);
          }
          acc[static_cast<size_t>(j)] += av * (int8_at(b, ob + kk * p.n + j) - zb);
        }
      }
      // Sums of K products of |v| <= 255 fit int64; int32 output wraps like the spec's
      // int32 accumulation would.
      for (int64_t j = 0; j < p.n; ++j)
        py[(bi * p.m + i) * p.n + j] = static_cast<int32_t>(acc[static_cast<size_t>(j)]);
    }
  });
}

// ---------------------------------------------------------------------------------------
// Gemm: Y = alpha * A' * B' + beta * C.

struct GemmDims {
  int64_t m, k, n;
  bool ta, tb;
};

GemmDims gemm_dims(const NodeAttrs& ctx, const Shape& a, const Shape& b) {
  if (a.size() != 2 || b.size() != 2)
    ctx.fail("A and B must be 2-D, got ", shape_str(a), " and ", shape_str(b));
  GemmDims d;
  d.ta = ctx.attr_int("transA", 0) != 0;
  d.tb = ctx.attr_int("transB", 0) != 0;
  d.m = d.ta ? a[1] : a[0];
  d.k = d.ta ? a[0] : a[1];
  const int64_t kb = d.tb ? b[1] : b[0];
  d.n = d.tb ? b[0] : b[1];
  if (d.k != kb)
    ctx.fail("inner dimensions do not match: A' is ", d.m, "x", d.k, " and B' is ", kb, "x", d.n);
  return d;
}

// C must broadcast unidirectionally to (M, N).
void check_gemm_c(const NodeAttrs& ctx, const Shape& c, int64_t m, int64_t n) {
  if (c.size() > 2) ctx.fail("C must have rank <= 2, got ", shape_str(c));
  const Shape out{m, n};
  for (size_t i = 0; i < c.size(); ++i) {
    const int64_t od = out[2 - c.size() + i];
    if (c[i] != 1 && c[i] != od)
      ctx.fail("C of shape ", shape_str(c), " cannot be broadcast to ", m, "x", n);
  }
}

void infer_gemm(InferContext& ctx) {
  // C is required before opset 11.
  ctx.expect_inputs(ctx.opset() < 11 ? 3 : 2, 3);
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t || (ctx.has_input(2) && ctx.input_dtype(2) != t))
    ctx.fail("A, B and C must have the same element type");
  if (t == DType::kBool) ctx.fail("Gemm does not support bool");
  ctx.set_output_unknown(0, t);
  GemmDims d = gemm_dims(ctx, ctx.input_shape(0), ctx.input_shape(1));
  if (ctx.has_input(2)) check_gemm_c(ctx, ctx.input_shape(2), d.m, d.n);
  ctx.set_output(0, t, {d.m, d.n});
}

void compute_gemm(ComputeContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  Tensor& y = ctx.output(0);
  GemmDims d = gemm_dims(ctx, a.shape(), b.shape());
  if (c) check_gemm_c(ctx, c->shape(), d.m, d.n);
  const float alpha = ctx.attr_float("alpha", 1.0f);
  const float beta = ctx.attr_float("beta", 1.0f);
  // Strides to read C as (M, N).
  int64_t c_sm = 0, c_sn = 0;
  if (c) {
    const Shape& cs = c->shape();
    if (cs.size() == 2) {
      c_sm = cs[0] == 1 ? 0 : cs[1];
      c_sn = cs[1] == 1 ? 0 : 1;
    } else if (cs.size() == 1) {
      c_sn = cs[0] == 1 ? 0 : 1;
    }
  }
  visit_numeric(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const T* pc = c ? c->data<T>() : nullptr;
    T* py = y.data<T>();
    // Element strides of A' (m, k) and B' (k, n).
    const int64_t a_sm = d.ta ? 1 : d.k, a_sk = d.ta ? d.m : 1;
    const int64_t b_sk = d.tb ? 1 : d.n, b_sn = d.tb ? d.k : 1;
    std::vector<A> row(static_cast<size_t>(d.n));
    for (int64_t i = 0; i < d.m; ++i) {
      std::fill(row.begin(), row.end(), A(0));
      for (int64_t kk = 0; kk < d.k; ++kk) {
        const A av = to_acc(pa[i * a_sm + kk * a_sk]);
        for (int64_t j = 0; j < d.n; ++j)
          row[static_cast<size_t>(j)] += av * to_acc(pb[kk * b_sk + j * b_sn]);
      }
      for (int64_t j = 0; j < d.n; ++j) {
        const A ab = row[static_cast<size_t>(j)];
        const bool has_c = pc != nullptr && beta != 0.0f;
        if constexpr (std::is_integral_v<T>) {
          // Integral alpha/beta (the usual 1 and 0) stay in exact modular arithmetic;
          // fractional ones go through double and saturate.
          const bool exact = std::trunc(alpha) == alpha && std::abs(alpha) < 9e18f &&
                             std::trunc(beta) == beta && std::abs(beta) < 9e18f;
          if (exact) {
            A v = static_cast<A>(static_cast<int64_t>(alpha)) * ab;
            if (has_c)
              v += static_cast<A>(static_cast<int64_t>(beta)) * to_acc(pc[i * c_sm + j * c_sn]);
            py[i * d.n + j] = from_acc<T>(v);
          } else {
            const double abd = std::is_signed_v<T> ? static_cast<double>(static_cast<int64_t>(ab))
                                                   : static_cast<double>(ab);
            double v = static_cast<double>(alpha) * abd;
            if (has_c)
              v += static_cast<double>(beta) * static_cast<double>(pc[i * c_sm + j * c_sn]);
            py[i * d.n + j] = saturate_from_double<T>(v);
          }
        } else {
          A v = static_cast<A>(alpha) * ab;
          if (has_c) v += static_cast<A>(beta) * static_cast<A>(pc[i * c_sm + j * c_sn]);
          py[i * d.n + j] = static_cast<T>(v);
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Einsum: a generic loop over every label's index.

// Labels are 0..51 for a-z, A-Z; ellipsis dims get labels 52, 53, ... (right-aligned).
constexpr int kEllipsisBase = 52;

struct EinsumTerm {
  std::vector<int> labels;  // per dimension, after expanding the ellipsis
};

struct EinsumPlan {
  std::vector<int> out_labels;
  std::vector<int> sum_labels;
  std::vector<int64_t> label_size;               // indexed by label id
  std::vector<std::vector<int64_t>> in_strides;  // per input, per label id (0 if absent)
  Shape out_shape;
};

int label_id(char ch) {
  if (ch >= 'a' && ch <= 'z') return ch - 'a';
  if (ch >= 'A' && ch <= 'Z') return 26 + (ch - 'A');
  return -1;
}

// Parses one term ("ab...c") into labels; `ell` gets the position of the ellipsis (-1 if
// none). Fails on bad characters.
std::vector<int> parse_term(const std::string& s, int& ell, bool& has_ell) {
  std::vector<int> labels;
  has_ell = false;
  ell = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (ch == ' ') continue;
    if (ch == '.') {
      if (s.compare(i, 3, "...") != 0 || has_ell)
        fail("Einsum equation term '", s, "' has a malformed or repeated ellipsis");
      has_ell = true;
      ell = static_cast<int>(labels.size());
      i += 2;
      continue;
    }
    const int id = label_id(ch);
    if (id < 0) fail("Einsum equation has an invalid character '", std::string(1, ch), "'");
    labels.push_back(id);
  }
  return labels;
}

EinsumPlan plan_einsum(const std::string& eq, const std::vector<Shape>& shapes) {
  std::string lhs = eq, rhs;
  bool explicit_out = false;
  const size_t arrow = eq.find("->");
  if (arrow != std::string::npos) {
    lhs = eq.substr(0, arrow);
    rhs = eq.substr(arrow + 2);
    explicit_out = true;
  }
  std::vector<std::string> terms;
  {
    size_t start = 0;
    for (;;) {
      const size_t comma = lhs.find(',', start);
      terms.push_back(lhs.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (terms.size() != shapes.size())
    fail("Einsum equation '", eq, "' has ", terms.size(), " input terms but the node has ",
         shapes.size(), " inputs");
  EinsumPlan p;
  p.label_size.assign(kEllipsisBase + kMaxRank, -1);
  int ell_rank = 0;
  std::vector<std::vector<int>> in_labels(shapes.size());
  for (size_t t = 0; t < terms.size(); ++t) {
    int ell;
    bool has_ell;
    std::vector<int> labels = parse_term(terms[t], ell, has_ell);
    const int rank = static_cast<int>(shapes[t].size());
    const int named = static_cast<int>(labels.size());
    if (has_ell ? named > rank : named != rank)
      fail("Einsum term '", terms[t], "' does not match input ", t, " of shape ",
           shape_str(shapes[t]));
    std::vector<int> full;
    if (has_ell) {
      const int er = rank - named;
      if (er > kMaxRank) fail("Einsum ellipsis covers too many dimensions");
      ell_rank = std::max(ell_rank, er);
      full.assign(labels.begin(), labels.begin() + ell);
      // Ellipsis dims are right-aligned across inputs: the last one is label base+kMaxRank-1.
      for (int e = 0; e < er; ++e) full.push_back(kEllipsisBase + kMaxRank - er + e);
      full.insert(full.end(), labels.begin() + ell, labels.end());
    } else {
      full = labels;
    }
    for (int d = 0; d < rank; ++d) {
      const int id = full[static_cast<size_t>(d)];
      const int64_t sz = shapes[t][static_cast<size_t>(d)];
      int64_t& cur = p.label_size[static_cast<size_t>(id)];
      if (id >= kEllipsisBase) {
        // Broadcast dims: 1 stretches to the other size.
        if (cur == -1 || cur == 1) {
          cur = sz;
        } else if (sz != 1 && sz != cur) {
          fail("Einsum ellipsis dimensions of input ", t, " (", shape_str(shapes[t]),
               ") do not broadcast");
        }
      } else {
        if (cur == -1) {
          cur = sz;
        } else if (cur != sz) {
          fail("Einsum label '",
               std::string(1, static_cast<char>(id < 26 ? 'a' + id : 'A' + id - 26)),
               "' has inconsistent sizes ", cur, " and ", sz);
        }
      }
    }
    in_labels[t] = std::move(full);
  }
  std::vector<int> count(p.label_size.size(), 0);
  for (auto& ls : in_labels)
    for (int id : ls) ++count[static_cast<size_t>(id)];
  if (explicit_out) {
    int ell;
    bool has_ell;
    std::vector<int> labels = parse_term(rhs, ell, has_ell);
    std::vector<int> seen(p.label_size.size(), 0);
    for (int id : labels) {
      if (count[static_cast<size_t>(id)] == 0)
        fail("Einsum output label does not appear in any input: '", eq, "'");
      if (seen[static_cast<size_t>(id)]++) fail("Einsum output repeats a label: '", eq, "'");
    }
    if (has_ell) {
      p.out_labels.assign(labels.begin(), labels.begin() + ell);
      for (int e = 0; e < ell_rank; ++e)
        p.out_labels.push_back(kEllipsisBase + kMaxRank - ell_rank + e);
      p.out_labels.insert(p.out_labels.end(), labels.begin() + ell, labels.end());
    } else {
      // numpy allows dropping broadcast dims only when they are all 1-sized; summing them
      // is the natural generalisation.
      p.out_labels = labels;
    }
  } else {
    // Implicit: ellipsis dims first, then labels seen once, in alphabetical (ASCII) order.
    for (int e = 0; e < ell_rank; ++e)
      p.out_labels.push_back(kEllipsisBase + kMaxRank - ell_rank + e);
    std::vector<std::pair<char, int>> once;
    for (int id = 0; id < kEllipsisBase; ++id)
      if (count[static_cast<size_t>(id)] == 1)
        once.push_back({static_cast<char>(id < 26 ? 'a' + id : 'A' + id - 26), id});
    std::sort(once.begin(), once.end());
    for (auto& [ch, id] : once) p.out_labels.push_back(id);
  }
  std::vector<char> in_out(p.label_size.size(), 0);
  for (int id : p.out_labels) in_out[static_cast<size_t>(id)] = 1;
  for (size_t id = 0; id < p.label_size.size(); ++id)
    if (count[id] > 0 && !in_out[id]) p.sum_labels.push_back(static_cast<int>(id));
  for (int id : p.out_labels) p.out_shape.push_back(p.label_size[static_cast<size_t>(id)]);
  // Strides per label for each input; a repeated label adds its strides (a diagonal), and
  // a broadcast ellipsis dim of size 1 reads with stride 0.
  p.in_strides.resize(shapes.size());
  for (size_t t = 0; t < shapes.size(); ++t) {
    std::vector<int64_t> st = strides_of(shapes[t]);
    auto& ls = p.in_strides[t];
    ls.assign(p.label_size.size(), 0);
    for (size_t d = 0; d < shapes[t].size(); ++d) {
      const int id = in_labels[t][d];
      if (shapes[t][d] == 1 && p.label_size[static_cast<size_t>(id)] != 1) continue;
      ls[static_cast<size_t>(id)] += st[d];
    }
  }
  return p;
}

void infer_einsum(InferContext& ctx) {
  if (ctx.num_inputs() < 1) ctx.fail("Einsum needs at least one input");
  ctx.expect_inputs(1, ctx.num_inputs());
  DType t = ctx.input_dtype(0);
  if (t == DType::kBool) ctx.fail("Einsum does not support bool");
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.input_dtype(i) != t) ctx.fail("all Einsum inputs must have the same element type");
  ctx.set_output_unknown(0, t);
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) shapes.push_back(ctx.input_shape(i));
  EinsumPlan p = plan_einsum(ctx.attr_string("equation"), shapes);
  ctx.set_output(0, t, p.out_shape);
}

void compute_einsum(ComputeContext& ctx) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) shapes.push_back(ctx.input(i).shape());
  EinsumPlan p = plan_einsum(ctx.attr_string("equation"), shapes);
  Tensor& y = ctx.output(0);
  // Iteration space: output labels (outer) then summed labels (inner).
  std::vector<int> labels = p.out_labels;
  labels.insert(labels.end(), p.sum_labels.begin(), p.sum_labels.end());
  Shape space;
  for (int id : labels) space.push_back(p.label_size[static_cast<size_t>(id)]);
  int64_t sum_n = 1;
  for (int id : p.sum_labels) {
    sum_n *= p.label_size[static_cast<size_t>(id)];
    if (sum_n > (int64_t{1} << 32)) ctx.fail("Einsum reduction is too large");
  }
  const int64_t out_n = shape_numel(p.out_shape);
  // An empty summed label leaves the (zero-filled) output at zero.
  if (out_n == 0 || sum_n == 0) return;
  if (out_n > (int64_t{1} << 36) / sum_n)
    ctx.fail("Einsum needs more than 2^36 multiply-adds; refusing");
  const size_t k = ctx.num_inputs();
  visit_numeric(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    std::vector<const T*> in(k);
    for (size_t i = 0; i < k; ++i) in[i] = ctx.input(i).data<T>();
    T* py = y.data<T>();
    const size_t r = labels.size();
    std::vector<int64_t> idx(r, 0);
    std::vector<int64_t> off(k, 0);
    for (int64_t o = 0; o < out_n; ++o) {
      A acc = A(0);
      for (int64_t s = 0; s < sum_n; ++s) {
        A prod = to_acc(in[0][off[0]]);
        for (size_t i = 1; i < k; ++i) prod = prod * to_acc(in[i][off[i]]);
        acc += prod;
        // Advance the odometer over the whole space.
        for (size_t d = r; d-- > 0;) {
          const size_t id = static_cast<size_t>(labels[d]);
          ++idx[d];
          for (size_t i = 0; i < k; ++i) off[i] += p.in_strides[i][id];
          if (idx[d] < space[d]) break;
          for (size_t i = 0; i < k; ++i) off[i] -= p.in_strides[i][id] * space[d];
          idx[d] = 0;
        }
      }
      py[o] = from_acc<T>(acc);
    }
  });
}

}  // namespace

void add_gemm_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Gemm", "", 1, infer_gemm, compute_gemm});
  ops.push_back({"MatMul", "", 1, infer_matmul, compute_matmul});
  ops.push_back({"MatMulInteger", "", 10, infer_matmul_integer, compute_matmul_integer});
  ops.push_back({"Einsum", "", 12, infer_einsum, compute_einsum});
}

}  // namespace lithe::ops
