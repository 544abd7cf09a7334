// Optimized steps: the nodes the fast executor runs with the kernels of kernels/ instead of
// the reference kernels. A step is prepared once per engine (weights packed for the GEMM
// microkernels, geometry resolved) and then run by every thread of the pool on its static
// share of the work, with a per-thread scratch area sized at preparation.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "ir/graph.hpp"
#include "kernels/kernels.hpp"
#include "plan/plan.hpp"

namespace lithe::runtime {

/// Where a step finds value v's data at run time: vals[v].
using ValuePtrs = std::vector<void*>;

class FastStep {
 public:
  virtual ~FastStep() = default;
  /// Floats of scratch each thread needs (0 for none).
  virtual int64_t scratch_floats() const { return 0; }
  /// Multiply-adds of one run, for GFLOP/s figures.
  virtual int64_t macs() const { return 0; }
  /// Runs thread t's share (of nt). `scratch` holds scratch_floats() floats.
  virtual void run(const ValuePtrs& vals, int t, int nt, float* scratch) const = 0;
  /// The kernel chosen, for profiles ("conv-gemm", "conv-winograd", "dwconv"...).
  virtual const char* kind() const = 0;
  /// Constant values this step copied (packed) at preparation and never reads again.
  virtual std::vector<int> packed_constants() const { return {}; }
  /// Heap bytes of weights this step copied or packed into its own storage at preparation.
  virtual int64_t owned_bytes() const { return 0; }
};

// Families of fast steps, one file each; each returns null for a node it does not cover.
/// fast_elementwise.cpp: unary and broadcasting binary ops, Transpose, Softmax.
std::unique_ptr<FastStep> make_elementwise_step(const ir::Graph& g, size_t n,
                                                const kernels::KernelTable& kt);
/// fast_resize.cpp: Resize, ConvTranspose.
std::unique_ptr<FastStep> make_resize_step(const ir::Graph& g, size_t n,
                                           const kernels::KernelTable& kt);

/// fast_norm.cpp: LayerNormalization over trailing axes.
std::unique_ptr<FastStep> make_norm_step(const ir::Graph& g, size_t n);
/// fast_q8.cpp: lithe.QConvNhwc (INT8 conv).
std::unique_ptr<FastStep> make_qconv(const ir::Graph& g, const ir::Node& node,
                                     const kernels::KernelTable& kt, const plan::MemoryPlan* plan);
/// fast_q8.cpp: lithe.LookupU8 (a uint8 table).
std::unique_ptr<FastStep> make_lookup_step(const ir::Graph& g, const ir::Node& node,
                                           const kernels::KernelTable& kt);
/// fast_q8.cpp: lithe.QBinaryU8 (INT8 Add / Mul with broadcasting).
std::unique_ptr<FastStep> make_qbinary_step(const ir::Graph& g, const ir::Node& node,
                                            const kernels::KernelTable& kt);
/// fast_q8_resize.cpp: lithe.QResizeLinearU8 (INT8 linear Resize of two spatial axes).
std::unique_ptr<FastStep> make_qresize_step(const ir::Graph& g, const ir::Node& node,
                                            const kernels::KernelTable& kt);
/// fast_qmatmul.cpp: lithe.QMatMulU8 (INT8 MatMul of two activations).
std::unique_ptr<FastStep> make_qmatmul_step(const ir::Graph& g, const ir::Node& node,
                                            const kernels::KernelTable& kt);
/// fast_q8.cpp: QuantizeLinear / DequantizeLinear with one scale and uint8 zero point.
std::unique_ptr<FastStep> make_quant_step(const ir::Graph& g, const ir::Node& node,
                                          const kernels::KernelTable& kt);
/// fast_copy.cpp: Concat, Split (any axis), ConstantOfShape, pure data movement (index maps),
/// lithe.DepthToSpaceNhwc.
std::unique_ptr<FastStep> make_copy_step(const ir::Graph& g, size_t n);

/// The optimized step for graph node n, or null when only the reference kernel can run it
/// (an op or a case the fast kernels do not cover).
/// With a plan, a conv or pool whose output the plan stores as strided rows (a channel slice
/// of a channels-last Concat) writes at that pixel stride.
/// `winograd_ok` (per node, from choose_winograd) limits the Winograd path to the convs it
/// marks; null allows it wherever it applies.
std::unique_ptr<FastStep> make_fast_step(const ir::Graph& g, size_t n,
                                         const kernels::KernelTable& kt,
                                         const plan::MemoryPlan* plan = nullptr,
                                         const std::vector<char>* winograd_ok = nullptr);

/// A step running node n (a pointwise conv) together with the two convs before it when they
/// form an inverted residual block (1x1 expansion -> depthwise -> this 1x1 projection, each
/// output read only by the next, batch 1) whose expanded tensor exceeds L2 and whose output
/// the plan does not place over the block's input; `steps` are the nodes' own steps. Sets
/// *expand / *depthwise to the nodes it absorbs. Null otherwise, or with LITHE_FUSE_IR=0.
std::unique_ptr<FastStep> fuse_inverted_residual(const ir::Graph& g, const plan::MemoryPlan& plan,
                                                 size_t n,
                                                 const std::vector<const FastStep*>& steps,
                                                 size_t* expand, size_t* depthwise);

/// The convs that get the Winograd path: its transformed weights take 4x the 3x3 weights'
/// bytes, so they are given, largest outputs first, only within half the bytes of all of the
/// model's weights or 12 MiB, whichever is more (resident memory is a target too). None with
/// LITHE_WINOGRAD=0. The builder stores the transformed weights of these convs
/// (ops/conv_weight_layout.hpp), the executor runs them as Winograd.
std::vector<char> choose_winograd(const ir::Graph& g);

}  // namespace lithe::runtime
