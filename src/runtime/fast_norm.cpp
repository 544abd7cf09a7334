// Fast step for LayerNormalization (opset 17) over trailing axes, float32, with Scale and B
// constants shaped like the normalized axes (or broadcasting from fewer of them): the
// transformer blocks' normalization. Rows split statically over threads. Each row is the
// reference's computation in its order (float sums in index order, the inverse deviation in
// double, then (x - mean) * inv * scale + bias), so the results are the reference's bits.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/fast_step_util.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

using namespace step_util;

class LayerNormStep final : public FastStep {
 public:
  const char* kind() const override { return "layernorm"; }
  int64_t owned_bytes() const override {
    return static_cast<int64_t>((scale_.size() + bias_.size()) * sizeof(float));
  }
  void run(const ValuePtrs& vals, int t, int nt, float*) const override {
    const float* x = static_cast<const float*>(vals[static_cast<size_t>(x_)]);
    float* y = static_cast<float*>(vals[static_cast<size_t>(y_)]);
    if (rows_ * n_ < (1 << 14) && t != 0) return;  // tiny: one thread
    int64_t b, e;
    static_range(rows_, t, rows_ * n_ < (1 << 14) ? 1 : nt, &b, &e);
    const float count = static_cast<float>(n_);
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n_;
      float* yr = y + r * n_;
      float mean = 0, var = 0;
      for (int64_t i = 0; i < n_; ++i) mean += xr[i];
      mean /= count;
      for (int64_t i = 0; i < n_; ++i) {
        const float d = xr[i] - mean;
        var += d * d;
      }
      var /= count;
      const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps_));
      for (int64_t i = 0; i < n_; ++i) {
        float v = (xr[i] - mean) * inv * scale_[static_cast<size_t>(i)];
        if (has_bias_) v += bias_[static_cast<size_t>(i)];
        yr[i] = v;
      }
    }
  }
  int x_ = -1, y_ = -1;
  int64_t rows_ = 0, n_ = 0;
  double eps_ = 1e-5;
  bool has_bias_ = false;
  std::vector<float> scale_, bias_;  // per normalized element, broadcast out
};

// `p` broadcast over the normalized dims `inner` (trailing dims of X), element by element;
// false unless p's dims are trailing dims of `inner` (or 1).
bool spread(const Tensor& p, const Shape& inner, std::vector<float>* out) {
  const Shape& ps = p.shape();
  if (ps.size() > inner.size()) {
    for (size_t i = 0; i + inner.size() < ps.size(); ++i)
      if (ps[i] != 1) return false;
  }
  const size_t r = inner.size();
  std::vector<int64_t> st(r, 0);
  int64_t s = 1;
  for (size_t k = 0; k < std::min(ps.size(), r); ++k) {
    const size_t pi = ps.size() - 1 - k, ii = r - 1 - k;
    if (ps[pi] != 1 && ps[pi] != inner[ii]) return false;
    st[ii] = ps[pi] == 1 ? 0 : s;
    s *= ps[pi];
  }
  const int64_t n = shape_numel(inner);
  out->assign(static_cast<size_t>(n), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, off = 0;
    for (size_t d = r; d-- > 0;) {
      off += (rest % inner[d]) * st[d];
      rest /= inner[d];
    }
    (*out)[static_cast<size_t>(i)] = p.data<float>()[off];
  }
  return true;
}

}  // namespace

std::unique_ptr<FastStep> make_norm_step(const ir::Graph& g, size_t n) {
  const ir::Node& node = g.nodes[n];
  if (!node.domain.empty() || node.op_type != "LayerNormalization") return nullptr;
  // Mean and InvStdDev outputs stay with the reference kernel.
  for (size_t i = 1; i < node.outputs.size(); ++i)
    if (node.outputs[i] >= 0) return nullptr;
  const int xv = input_at(node, 0), yv = node.outputs.empty() ? -1 : node.outputs[0];
  const Tensor* scale = constant_of(g, input_at(node, 1));
  const int bv = input_at(node, 2);
  const Tensor* bias = constant_of(g, bv);
  if (!is_f32_static(g, xv) || !is_f32_static(g, yv) || !scale ||
      scale->dtype() != DType::kFloat32 || (bv >= 0 && (!bias || bias->dtype() != DType::kFloat32)))
    return nullptr;
  ops::NodeAttrs a(node);
  if (a.attr_int("stash_type", 1) != 1) return nullptr;
  const Shape& xs = dims_of(g, xv);
  const int64_t rank = static_cast<int64_t>(xs.size());
  int64_t axis = a.attr_int("axis", -1);
  if (axis < -rank || axis >= rank) return nullptr;
  if (axis < 0) axis += rank;
  const Shape inner(xs.begin() + axis, xs.end());
  auto s = std::make_unique<LayerNormStep>();
  s->x_ = xv;
  s->y_ = yv;
  s->n_ = shape_numel(inner);
  s->rows_ = s->n_ > 0 ? shape_numel(xs) / s->n_ : 0;
  s->eps_ = a.attr_float("epsilon", 1e-5f);
  if (s->n_ <= 0 || !spread(*scale, inner, &s->scale_)) return nullptr;
  s->has_bias_ = bias != nullptr;
  if (bias && !spread(*bias, inner, &s->bias_)) return nullptr;
  return s;
}

}  // namespace lithe::runtime
