// The INT8 linear Resize step: lithe.QResizeLinearU8 (ops/qresize.cpp) with the q8_resize
// kernels of kernels/ (body/q8_resize.hpp). 4-D uint8 tensors whose resized axes are two
// adjacent ones after the batch: channels-last (N, H, W, C: channels the vector dimension)
// or NCHW (the N*C planes as images of one channel). Every output row and column gets its
// two source indices and float weights at preparation from the reference's own mapping
// (ops::qresize_mapping, an axis of one tap padded with a second of weight 0, which the sum
// of quant/qresize.hpp leaves unchanged), so the run is table lookups and allocates nothing
// (one channel: the kernels widen the two source rows of an output row into the thread's
// scratch).
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "ops/op.hpp"
#include "ops/resize_internal.hpp"
#include "runtime/fast_step_util.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

using kernels::KernelTable;
using namespace step_util;

class QResizeStep final : public FastStep {
 public:
  const char* kind() const override { return "q8-resize-linear"; }
  int64_t owned_bytes() const override {
    return static_cast<int64_t>((iy_.size() + ix_.size()) * sizeof(int32_t) +
                                (wy_.size() + wx_.size()) * sizeof(float));
  }
  int64_t scratch_floats() const override { return args_.c == 1 ? 2 * args_.iw : 0; }

  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    // Under 16 KiB of output the pool's overhead would exceed the work.
    const int threads = rows_ * args_.ow * args_.c < 16384 ? 1 : nt;
    if (t >= threads) return;
    int64_t b, e;
    static_range(rows_, t, threads, &b, &e);
    if (e <= b) return;
    kernels::Q8ResizeArgs a = args_;
    a.x = static_cast<const uint8_t*>(vals[static_cast<size_t>(x_)]);
    a.y = static_cast<uint8_t*>(vals[static_cast<size_t>(y_)]);
    a.rows = args_.c == 1 ? scratch : nullptr;
    kt_->q8_resize(a, b, e);
  }

  const KernelTable* kt_ = nullptr;
  int x_ = -1, y_ = -1;
  int64_t rows_ = 0;  // images * output rows
  kernels::Q8ResizeArgs args_;
  std::vector<int32_t> iy_, ix_;  // [2][out]: first taps, then second taps
  std::vector<float> wy_, wx_;    // likewise
};

// One axis's taps as two (index, weight) pairs per output, the first taps at [0, n), the
// second at [n, 2n); false when an output has none (every weight zero) or more than two
// (antialias).
bool two_taps(const std::vector<std::vector<std::pair<int64_t, double>>>& m,
              std::vector<int32_t>* idx, std::vector<float>* w) {
  const size_t n = m.size();
  idx->assign(2 * n, 0);
  w->assign(2 * n, 0.0f);
  for (size_t o = 0; o < n; ++o) {
    if (m[o].empty() || m[o].size() > 2) return false;
    (*idx)[o] = (*idx)[n + o] = static_cast<int32_t>(m[o][0].first);
    (*w)[o] = static_cast<float>(m[o][0].second);
    if (m[o].size() == 2) {
      (*idx)[n + o] = static_cast<int32_t>(m[o][1].first);
      (*w)[n + o] = static_cast<float>(m[o][1].second);
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<FastStep> make_qresize_step(const ir::Graph& g, const ir::Node& node,
                                            const KernelTable& kt) {
  if (node.domain != "lithe" || node.op_type != "QResizeLinearU8" || node.inputs.size() < 3 ||
      node.inputs.size() > 4 || node.outputs.size() != 1)
    return nullptr;
  const int xv = node.inputs[0], yv = node.outputs[0];
  const Tensor* zp = constant_of(g, node.inputs[1]);
  if (!zp || zp->dtype() != DType::kUInt8 || zp->numel() != 1) return nullptr;
  // Scales or sizes: constant (an absent or empty one is null, as the reference reads it).
  const Tensor* in[2] = {nullptr, nullptr};
  for (size_t i = 2; i < node.inputs.size(); ++i) {
    if (node.inputs[i] < 0) continue;
    const Tensor* c = constant_of(g, node.inputs[i]);
    if (!c) return nullptr;
    in[i - 2] = c->numel() > 0 ? c : nullptr;
  }
  if (!is_static(g, xv, DType::kUInt8) || !is_static(g, yv, DType::kUInt8)) return nullptr;
  const Shape& xs = dims_of(g, xv);
  const Shape& ys = dims_of(g, yv);
  if (xs.size() != 4 || ys.size() != 4) return nullptr;
  for (size_t d = 0; d < 4; ++d)
    if (xs[d] <= 0 || ys[d] <= 0 || xs[d] > INT_MAX) return nullptr;  // int32 tables
  ops::ResizeMapping m;
  try {
    m = ops::qresize_mapping(node, xs, in[0], in[1]);
  } catch (const Error&) {
    return nullptr;  // the reference kernel reports it, with context, at run time
  }
  if (m.out != ys) return nullptr;
  auto pass = [&](size_t d) { return ops::resize_axis_passes(m, xs, d); };
  auto st = std::make_unique<QResizeStep>();
  kernels::Q8ResizeArgs& a = st->args_;
  size_t ay, ax;
  if (pass(0) && pass(3)) {  // channels-last (also NCHW with W kept: C, H as rows, columns)
    ay = 1;
    ax = 2;
    a.c = xs[3];
    st->rows_ = xs[0] * ys[1];
  } else if (pass(0) && pass(1)) {  // NCHW: planes of one channel
    ay = 2;
    ax = 3;
    a.c = 1;
    st->rows_ = xs[0] * xs[1] * ys[2];
  } else {
    return nullptr;
  }
  if (!two_taps(m.taps[ay], &st->iy_, &st->wy_) || !two_taps(m.taps[ax], &st->ix_, &st->wx_))
    return nullptr;
  a.ih = xs[ay];
  a.iw = xs[ax];
  a.oh = ys[ay];
  a.ow = ys[ax];
  a.iy0 = st->iy_.data();
  a.iy1 = st->iy_.data() + a.oh;
  a.wy0 = st->wy_.data();
  a.wy1 = st->wy_.data() + a.oh;
  a.ix0 = st->ix_.data();
  a.ix1 = st->ix_.data() + a.ow;
  a.wx0 = st->wx_.data();
  a.wx1 = st->wx_.data() + a.ow;
  a.zx = zp->data<uint8_t>()[0];
  st->kt_ = &kt;
  st->x_ = xv;
  st->y_ = yv;
  return st;
}

}  // namespace lithe::runtime
