// The INT8 MatMul of two activations: lithe.QMatMulU8 (ops/qnhwc.cpp, quant/qmatmul.hpp) on
// the q8 GEMM kernels. The kernels multiply uint8 A by packed int8 B, so B is packed per batch
// at run time as B' = B - 128 (exact in int8, zero point zb' = zb - 128) into the thread's
// scratch, and the zero points fold into addends of the raw product:
//   sum_k (a - za)(b' - zb') = sum_k a b' - za colsum(b') - zb' rowsum(a) + K za zb'
// the column terms as the kernels' per-column bias, the row term as their row_bias. All of it
// wraps modulo 2^32 like the int32 lanes; the true sum fits int32 (K <= kMaxQMatMulReduction),
// so the result is the reference's sum exactly and the requantized bytes are bitwise equal.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "quant/qmatmul.hpp"
#include "runtime/fast_step_util.hpp"
#include "runtime/fast_steps.hpp"
#include "runtime/thread_pool.hpp"

namespace lithe::runtime {
namespace {

using kernels::KernelTable;
using kernels::kPanel;
using kernels::panels_of;
using namespace step_util;

int64_t round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

class QMatMulStep final : public FastStep {
 public:
  explicit QMatMulStep(const KernelTable& kt) : kt_(kt) {}
  int64_t macs() const override { return static_cast<int64_t>(a_off_.size()) * m_ * n_ * k_; }
  int64_t owned_bytes() const override {
    return static_cast<int64_t>(mult_.size() * sizeof(quant::Multiplier) + a_off_.size() * 16);
  }
  const char* kind() const override { return "q8-matmul"; }

  // Per thread: packed B', its column bias, the A tile (when K is not a multiple of 4) and
  // the tile's row addends.
  int64_t b_bytes() const { return round64(kernels::packed_b_q8_bytes(k_, n_)); }
  int64_t bias_bytes() const { return round64(panels_of(n_) * kPanel * 4); }
  int64_t a_bytes() const { return k_ % 4 ? round64(tm_ * k4_) : 0; }
  int64_t scratch_floats() const override {
    return (b_bytes() + bias_bytes() + a_bytes() + round64(tm_ * 4)) / 4;
  }

  void run(const ValuePtrs& vals, int t, int nt, float* scratch) const override {
    const auto* a = static_cast<const uint8_t*>(vals[static_cast<size_t>(a_)]);
    const auto* b = static_cast<const uint8_t*>(vals[static_cast<size_t>(b_)]);
    auto* y = static_cast<uint8_t*>(vals[static_cast<size_t>(y_)]);
    auto* base = reinterpret_cast<uint8_t*>(scratch);
    auto* bp = reinterpret_cast<int8_t*>(base);
    auto* bias = reinterpret_cast<int32_t*>(base + b_bytes());
    uint8_t* atile = base + b_bytes() + bias_bytes();
    auto* row_bias = reinterpret_cast<int32_t*>(atile + a_bytes());
    const int64_t mt = (m_ + tm_ - 1) / tm_;
    int64_t lo, hi;
    static_range(static_cast<int64_t>(a_off_.size()) * mt, t, nt, &lo, &hi);
    int64_t packed = -1;  // the B offset whose B' the scratch holds
    for (int64_t task = lo; task < hi; ++task) {
      const size_t bi = static_cast<size_t>(task / mt);
      const int64_t m0 = task % mt * tm_, m1 = std::min(m_, m0 + tm_);
      if (packed != b_off_[bi]) {
        // colsum(b') lands in the bias, then becomes K za zb' - za colsum(b').
        kernels::pack_b_q8_u8(k_, n_, b + b_off_[bi], n_, bp, bias);
        const uint32_t kz = static_cast<uint32_t>(k_ * za_ * zb2_);
        for (int64_t j = 0; j < n_; ++j)
          bias[j] = static_cast<int32_t>(kz - static_cast<uint32_t>(za_) * static_cast<uint32_t>(bias[j]));
        packed = b_off_[bi];
      }
      const uint8_t* am = a + a_off_[bi];
      kernels::Q8GemmArgs g;
      g.m = m1;
      g.n = n_;
      g.k = k_;
      if (k_ % 4) {  // rows padded to k4 (the kernels read whole groups of 4)
        for (int64_t r = m0; r < m1; ++r) {
          uint8_t* row = atile + (r - m0) * k4_;
          std::memcpy(row, am + r * k_, static_cast<size_t>(k_));
          std::memset(row + k_, 0, static_cast<size_t>(k4_ - k_));
        }
        g.a = atile - m0 * k4_;
        g.lda = k4_;
      } else {
        g.a = am;
        g.lda = k_;
      }
      for (int64_t r = m0; r < m1; ++r) {
        const uint8_t* row = am + r * k_;
        uint32_t sum = 0;
        for (int64_t i = 0; i < k_; ++i) sum += row[i];
        row_bias[r - m0] = static_cast<int32_t>(0u - static_cast<uint32_t>(zb2_) * sum);
      }
      g.row_bias = row_bias - m0;
      g.bp = bp;
      g.bias = bias;
      g.mult = mult_.data();
      g.zy = zy_;
      g.lo = 0;
      g.hi = 255;
      // |sum of (a - za)(b - zb)| <= K * 255 * 255: the float requantization where exact.
      g.acc24 = kernels::q8_acc_fits_float(0, 255 * k_);
      g.c = y + static_cast<int64_t>(bi) * m_ * n_;
      g.ldc = n_;
      kt_.q8_gemm(g, m0, m1, 0, panels_of(n_));
    }
  }

  const KernelTable& kt_;
  int a_ = -1, b_ = -1, y_ = -1;
  int64_t m_ = 0, n_ = 0, k_ = 0, k4_ = 0, tm_ = 1;
  int32_t za_ = 0, zb2_ = 0, zy_ = 0;
  std::vector<quant::Multiplier> mult_;  // one value, padded to whole panels
  std::vector<int64_t> a_off_, b_off_;   // per output batch: byte offsets of A[b] and B[b]
};

}  // namespace

std::unique_ptr<FastStep> make_qmatmul_step(const ir::Graph& g, const ir::Node& node,
                                            const KernelTable& kt) {
  if (!kt.q8_gemm || node.domain != "lithe" || node.op_type != "QMatMulU8" ||
      node.inputs.size() != 8 || node.outputs.size() != 1)
    return nullptr;
  float scale[3];
  int32_t zp[3];
  if (!u8_operand_params(g, node, scale, zp)) return nullptr;
  const int av = node.inputs[0], bv = node.inputs[3], yv = node.outputs[0];
  if (!is_static(g, av, DType::kUInt8) || !is_static(g, bv, DType::kUInt8) ||
      !is_static(g, yv, DType::kUInt8))
    return nullptr;
  const Shape& as = dims_of(g, av);
  const Shape& bs = dims_of(g, bv);
  const Shape& ys = dims_of(g, yv);
  auto s = std::make_unique<QMatMulStep>(kt);
  if (!step_util::matmul_batches(as, bs, ys, &s->a_off_, &s->b_off_)) return nullptr;
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (k > quant::kMaxQMatMulReduction || m <= 0 || n <= 0 || k <= 0) return nullptr;
  s->a_ = av;
  s->b_ = bv;
  s->y_ = yv;
  s->m_ = m;
  s->n_ = n;
  s->k_ = k;
  s->k4_ = (k + 3) / 4 * 4;
  s->za_ = zp[0];
  s->zb2_ = zp[1] - 128;
  s->zy_ = zp[2];
  s->mult_.assign(static_cast<size_t>(panels_of(n) * kPanel),
                  quant::qmatmul_multiplier(scale[0], scale[1], scale[2]));
  // Row tiles: enough tasks for the pool's threads when the batches are few (a task packs B'
  // for its batch unless the thread's previous one did), each tile's A within about 64 KiB.
  const auto batches = static_cast<int64_t>(s->a_off_.size());
  const int64_t by_threads = (8 + batches - 1) / batches;
  const int64_t by_cache = (m * s->k4_ + 65535) / 65536;
  const int64_t tiles = std::clamp<int64_t>(std::max(by_threads, by_cache), 1, (m + 3) / 4);
  s->tm_ = (m + tiles - 1) / tiles;
  return s;
}

}  // namespace lithe::runtime
