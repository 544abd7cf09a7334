// Conv and pool reference kernels: hostile attributes give a lithe::Error (never a crash),
// and the semantics the ONNX backend data of this machine does not cover (storage_order,
// ceil_mode dropping a window, dilated AveragePool, LpPool, ConvTranspose groups,
// ConvInteger per-channel zero points, MaxRoiPool, float16).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "ir/graph.hpp"
#include "op_test_util.hpp"

using namespace lithe;

namespace {

class NodeBuilder {
 public:
  NodeBuilder(const std::string& op, int opset = 21) {
    node_.op_type = op;
    node_.name = op;  // (assigning a short literal trips g++ 12's -Wrestrict false positive)
    node_.opset = opset;
  }
  NodeBuilder& ints(const std::string& name, std::vector<int64_t> v) {
    node_.attrs[name] = test::attr_is(std::move(v));
    return *this;
  }
  NodeBuilder& i(const std::string& name, int64_t v) {
    node_.attrs[name] = test::attr_i(v);
    return *this;
  }
  NodeBuilder& f(const std::string& name, float v) {
    node_.attrs[name] = test::attr_f(v);
    return *this;
  }
  NodeBuilder& s(const std::string& name, std::string v) {
    node_.attrs[name] = test::attr_s(std::move(v));
    return *this;
  }
  const ir::Node& node() const { return node_; }

 private:
  ir::Node node_;
};

template <class T>
Tensor make(Shape shape, std::vector<double> vals) {
  Tensor t(dtype_of<T>(), shape);
  T* p = t.data<T>();
  for (size_t i = 0; i < vals.size() && i < static_cast<size_t>(t.numel()); ++i) {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
      p[i] = T(static_cast<float>(vals[i]));
    else
      p[i] = static_cast<T>(vals[i]);
  }
  return t;
}

Tensor f32(Shape shape, std::vector<double> vals) { return make<float>(std::move(shape), vals); }

/// Infers and computes one node; inputs may hold undefined tensors for omitted inputs.
std::vector<Tensor> run(const ir::Node& node, const std::vector<Tensor>& inputs, size_t n_out = 1) {
  ir::Node n = node;
  n.outputs.assign(n_out, 0);
  return test::run_one(n, inputs);
}

/// The error message of running the node (a failure if it ran).
std::string run_error(const ir::Node& node, const std::vector<Tensor>& inputs, size_t n_out = 1) {
  return test::error_of([&] { run(node, inputs, n_out); });
}

std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.at_double(i));
  return v;
}

Tensor x4() { return f32({1, 2, 4, 4}, std::vector<double>(32, 1.0)); }
Tensor w3(int64_t m = 2, int64_t c = 2) {
  return f32({m, c, 3, 3}, std::vector<double>(static_cast<size_t>(m * c * 9), 1.0));
}

}  // namespace

TEST(ConvHostile, BadAttributesFail) {
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").ints("strides", {0, 1}).node(), {x4(), w3()}),
                  "strides");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").ints("dilations", {1, -2}).node(), {x4(), w3()}),
                  "dilations");
  EXPECT_CONTAINS(
      run_error(NodeBuilder("Conv").ints("dilations", {int64_t{1} << 40, 1}).node(), {x4(), w3()}),
      "dilations");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").ints("kernel_shape", {3}).node(), {x4(), w3()}),
                  "kernel_shape");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").ints("pads", {1, 1, -1, 1}).node(), {x4(), w3()}),
                  "pads");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").ints("pads", {1, 1}).node(), {x4(), w3()}), "pads");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").s("auto_pad", "SAME").node(), {x4(), w3()}),
                  "auto_pad");
  // Group 3 does not divide 2 channels; group 2 with W claiming 2 channels per group.
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").i("group", 3).node(), {x4(), w3(3)}), "group");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").i("group", 2).node(), {x4(), w3()}), "channels");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").i("group", 0).node(), {x4(), w3()}), "group");
  // W with 3 input channels for a 2-channel X; W of the wrong rank.
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").node(), {x4(), w3(2, 3)}), "channels");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").node(), {x4(), f32({2, 2, 3}, {})}), "rank");
  // A 5x5 kernel over a 4x4 input (no padding) leaves no output.
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").node(), {x4(), f32({1, 2, 5, 5}, {})}),
                  "larger than");
  EXPECT_CONTAINS(run_error(NodeBuilder("Conv").node(), {x4(), w3(), f32({3}, {})}), "bias");
}

TEST(ConvHostile, TransposeAndIntegerFail) {
  EXPECT_CONTAINS(
      run_error(NodeBuilder("ConvTranspose").ints("strides", {1, 0}).node(), {x4(), w3()}),
      "strides");
  EXPECT_CONTAINS(
      run_error(NodeBuilder("ConvTranspose").ints("pads", {9, 9, 9, 9}).node(), {x4(), w3()}),
      "output size");
  EXPECT_CONTAINS(
      run_error(NodeBuilder("ConvTranspose").ints("output_shape", {1, 2, 3}).node(), {x4(), w3()}),
      "output_shape");
  EXPECT_CONTAINS(
      run_error(NodeBuilder("ConvTranspose").node(), {x4(), w3(2, 3).reshaped({3, 2, 3, 3})}),
      "channels");
  Tensor xi = make<uint8_t>({1, 1, 3, 3}, {});
  Tensor wi = make<uint8_t>({2, 1, 2, 2}, {});
  EXPECT_CONTAINS(
      run_error(NodeBuilder("ConvInteger").node(), {xi, wi, Tensor(), make<uint8_t>({3}, {})}),
      "w_zero_point");
  EXPECT_CONTAINS(run_error(NodeBuilder("ConvInteger").node(), {f32({1, 1, 3, 3}, {}), wi}),
                  "uint8");
}

TEST(PoolHostile, BadAttributesFail) {
  Tensor x = f32({1, 1, 4, 4}, {});
  EXPECT_CONTAINS(run_error(NodeBuilder("MaxPool").node(), {x}), "kernel_shape");
  EXPECT_CONTAINS(run_error(NodeBuilder("MaxPool").ints("kernel_shape", {2}).node(), {x}),
                  "kernel_shape");
  EXPECT_CONTAINS(run_error(NodeBuilder("MaxPool").ints("kernel_shape", {2, 0}).node(), {x}),
                  "kernel");
  EXPECT_CONTAINS(
      run_error(NodeBuilder("MaxPool").ints("kernel_shape", {2, 2}).ints("strides", {0, 1}).node(),
                {x}),
      "strides");
  EXPECT_CONTAINS(run_error(NodeBuilder("AveragePool").ints("kernel_shape", {5, 5}).node(), {x}),
                  "larger");
  EXPECT_CONTAINS(
      run_error(
          NodeBuilder("AveragePool").ints("kernel_shape", {5, 5}).s("auto_pad", "VALID").node(),
          {x}),
      "larger");
  EXPECT_CONTAINS(
      run_error(NodeBuilder("LpPool").ints("kernel_shape", {2, 2}).i("p", 0).node(), {x}), "p ");
  EXPECT_CONTAINS(
      run_error(NodeBuilder("MaxPool").ints("kernel_shape", {2, 2}).i("storage_order", 2).node(),
                {x}, 2),
      "storage_order");
  // Huge kernel and pads that still fit: must not loop over the kernel (bounded by input).
  std::vector<Tensor> y =
      run(NodeBuilder("MaxPool")
              .ints("kernel_shape", {int64_t{1} << 30, int64_t{1} << 30})
              .ints("pads", {(int64_t{1} << 30) - 1, (int64_t{1} << 30) - 1, 0, 0})
              .ints("strides", {int64_t{1} << 30, int64_t{1} << 30})
              .node(),
          {f32({1, 1, 2, 2}, {1, 2, 3, 4})});
  EXPECT_EQ(y[0].shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(values(y[0]), (std::vector<double>{1}));
}

TEST(PoolHostile, UnpoolAndRoiFail) {
  Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor bad = make<int64_t>({1, 1, 2, 2}, {0, 1, 2, 16});
  EXPECT_CONTAINS(
      run_error(
          NodeBuilder("MaxUnpool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).node(),
          {x, bad}),
      "out of range");
  EXPECT_CONTAINS(
      run_error(
          NodeBuilder("MaxUnpool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).node(),
          {x, make<int64_t>({1, 1, 2, 2}, {}), make<int64_t>({4}, {1, 1, 3, 3})}),
      "output_shape");
  Tensor rois = f32({1, 5}, {3, 0, 0, 1, 1});
  EXPECT_CONTAINS(
      run_error(NodeBuilder("MaxRoiPool").ints("pooled_shape", {1, 1}).node(), {x, rois}),
      "batch index");
  EXPECT_CONTAINS(run_error(NodeBuilder("MaxRoiPool").ints("pooled_shape", {0, 1}).node(),
                            {x, f32({1, 5}, {})}),
                  "pooled_shape");
}

TEST(Pool, MaxPoolCeilModeDropsWindowStartingInPadding) {
  std::vector<Tensor> y = run(NodeBuilder("MaxPool")
                                  .ints("kernel_shape", {1, 1})
                                  .ints("strides", {2, 2})
                                  .i("ceil_mode", 1)
                                  .node(),
                              {f32({1, 1, 2, 2}, {1, 2, 3, 4})});
  EXPECT_EQ(y[0].shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(values(y[0]), (std::vector<double>{1}));
}

TEST(Pool, MaxPoolIndicesStorageOrder) {
  // Two planes (N=2) so the plane offset is checked too.
  Tensor x = f32({2, 1, 2, 3}, {1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1});
  auto node = NodeBuilder("MaxPool").ints("kernel_shape", {2, 2});
  std::vector<Tensor> y = run(node.node(), {x}, 2);
  EXPECT_EQ(values(y[0]), (std::vector<double>{5, 6, 6, 5}));
  EXPECT_EQ(values(y[1]), (std::vector<double>{4, 5, 6, 7}));
  y = run(node.i("storage_order", 1).node(), {x}, 2);
  // Column-major within the plane: index = w * H + h.
  EXPECT_EQ(values(y[1]), (std::vector<double>{3, 5, 6, 8}));
}

TEST(Pool, MaxPoolInt8AndHalf) {
  std::vector<Tensor> y = run(NodeBuilder("MaxPool", 12).ints("kernel_shape", {2}).node(),
                              {make<int8_t>({1, 1, 3}, {-5, -7, 3})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{-5, 3}));
  y = run(NodeBuilder("MaxPool").ints("kernel_shape", {2}).node(),
          {make<Half>({1, 1, 3}, {0.5, -1, 2})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{0.5, 2}));
}

TEST(Pool, AveragePoolPadsAndDilations) {
  Tensor x = f32({1, 1, 3}, {1, 2, 3});
  auto node = NodeBuilder("AveragePool").ints("kernel_shape", {2}).ints("pads", {1, 1});
  EXPECT_EQ(values(run(node.node(), {x})[0]), (std::vector<double>{1, 1.5, 2.5, 3}));
  EXPECT_EQ(values(run(node.i("count_include_pad", 1).node(), {x})[0]),
            (std::vector<double>{0.5, 1.5, 2.5, 1.5}));
  std::vector<Tensor> y =
      run(NodeBuilder("AveragePool").ints("kernel_shape", {2}).ints("dilations", {2}).node(),
          {f32({1, 1, 4}, {1, 2, 3, 4})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{2, 3}));
  // SAME_LOWER puts the odd pad at the beginning.
  y = run(NodeBuilder("AveragePool").ints("kernel_shape", {2}).s("auto_pad", "SAME_LOWER").node(),
          {f32({1, 1, 3}, {1, 2, 3})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{1, 1.5, 2.5}));
}

TEST(Pool, LpPoolAndGlobal) {
  Tensor x = f32({1, 1, 2, 2}, {3, -4, 0, 0});
  EXPECT_NEAR(
      values(run(NodeBuilder("LpPool").ints("kernel_shape", {2, 2}).i("p", 2).node(), {x})[0])[0],
      5, 1e-5);
  // Opset 1 spells p as a float.
  EXPECT_NEAR(values(run(NodeBuilder("LpPool", 1).ints("kernel_shape", {2, 2}).f("p", 1).node(),
                         {x})[0])[0],
              7, 1e-5);
  EXPECT_NEAR(values(run(NodeBuilder("GlobalLpPool").node(), {x})[0])[0], 5, 1e-5);
  EXPECT_EQ(values(run(NodeBuilder("GlobalMaxPool").node(), {x})[0]), (std::vector<double>{3}));
  std::vector<Tensor> y = run(NodeBuilder("GlobalAveragePool").node(), {x});
  EXPECT_EQ(y[0].shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(values(y[0]), (std::vector<double>{-0.25}));
}

TEST(Pool, MaxUnpoolIntoLargerShapeAndRoi) {
  Tensor x = f32({1, 1, 2, 2}, {5, 6, 7, 8});
  Tensor ind = make<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15});
  std::vector<Tensor> y =
      run(NodeBuilder("MaxUnpool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).node(),
          {x, ind, make<int64_t>({4}, {1, 1, 5, 5})});
  EXPECT_EQ(y[0].shape(), (Shape{1, 1, 5, 5}));
  std::vector<double> v = values(y[0]);
  EXPECT_EQ(v[6], 5);
  EXPECT_EQ(v[8], 6);
  EXPECT_EQ(v[16], 7);
  EXPECT_EQ(v[18], 8);

  // One ROI over the 2x2 top-left box of a 4x4 image, pooled 2x1.
  Tensor img = f32({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  y = run(NodeBuilder("MaxRoiPool").ints("pooled_shape", {2, 1}).node(),
          {img, f32({1, 5}, {0, 0, 0, 1, 1})});
  EXPECT_EQ(y[0].shape(), (Shape{1, 1, 2, 1}));
  EXPECT_EQ(values(y[0]), (std::vector<double>{2, 6}));
}

TEST(Conv, TransposeGroupsAndPads) {
  // Depthwise transpose: each channel scales by its own 1-tap kernel.
  std::vector<Tensor> y = run(NodeBuilder("ConvTranspose").i("group", 2).node(),
                              {f32({1, 2, 2}, {1, 2, 3, 4}), f32({2, 1, 1}, {10, 100})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{10, 20, 300, 400}));
  // Stride 2, kernel 2, pads [1, 0]: full result [1, 1, 2, 2] cropped by one at the start.
  y = run(NodeBuilder("ConvTranspose").ints("strides", {2}).ints("pads", {1, 0}).node(),
          {f32({1, 1, 2}, {1, 2}), f32({1, 1, 2}, {1, 1})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{1, 2, 2}));
  // Dilation 2 with output_padding 1 and a bias.
  y = run(NodeBuilder("ConvTranspose").ints("dilations", {2}).ints("output_padding", {1}).node(),
          {f32({1, 1, 2}, {1, 2}), f32({1, 1, 2}, {1, 10}), f32({1}, {0.5})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{1.5, 2.5, 10.5, 20.5, 0.5}));
}

TEST(Conv, IntegerPerChannelZeroPoint) {
  Tensor x = make<uint8_t>({1, 1, 2}, {10, 20});
  Tensor w = make<int8_t>({2, 1, 1}, {3, -2});
  std::vector<Tensor> y = run(NodeBuilder("ConvInteger").ints("pads", {1, 0}).node(),
                              {x, w, make<uint8_t>({}, {10}), make<int8_t>({2}, {1, -1})});
  EXPECT_EQ(y[0].dtype(), DType::kInt32);
  // Channel 0: (x - 10) * (3 - 1); channel 1: (x - 10) * (-2 + 1); the pad adds nothing.
  EXPECT_EQ(values(y[0]), (std::vector<double>{0, 0, 20, 0, 0, -10}));
}

TEST(Conv, HalfAndGroupedDilated) {
  std::vector<Tensor> y = run(NodeBuilder("Conv").ints("pads", {1, 1}).node(),
                              {make<Half>({1, 1, 3}, {1, 2, 3}), make<Half>({1, 1, 3}, {1, 1, 1})});
  EXPECT_EQ(values(y[0]), (std::vector<double>{3, 6, 5}));
  // Two groups, dilation 2, stride 2 on a length-5 signal.
  y = run(NodeBuilder("Conv").i("group", 2).ints("dilations", {2}).ints("strides", {2}).node(),
          {f32({1, 2, 5}, {1, 2, 3, 4, 5, 10, 20, 30, 40, 50}), f32({2, 1, 2}, {1, 1, 1, -1})});
  EXPECT_EQ(y[0].shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(values(y[0]), (std::vector<double>{4, 8, -20, -20}));
}
