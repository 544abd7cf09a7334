// The resize family (src/ops/resize*.cpp) driven directly through the op registry: hostile
// scales, sizes, grids and rois give a lithe::Error (or a defined result), never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op.hpp"

using namespace lithe;

namespace {

template <class T>
Tensor make(Shape shape, std::vector<T> vals) {
  Tensor t(dtype_of<T>(), std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), vals.size());
  T* d = static_cast<T*>(t.raw());  // element-wise: std::vector<bool> has no data()
  for (size_t i = 0; i < vals.size(); ++i) d[i] = vals[i];
  return t;
}
[[maybe_unused]] Tensor ints(std::vector<int64_t> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return make<int64_t>({n}, std::move(v));
}
[[maybe_unused]] Tensor floats(Shape s) {
  Tensor t(DType::kFloat32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

[[maybe_unused]] ir::Attribute attr_i(int64_t v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInt;
  a.i = v;
  return a;
}
[[maybe_unused]] ir::Attribute attr_f(float v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
[[maybe_unused]] ir::Attribute attr_is(std::vector<int64_t> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}
[[maybe_unused]] ir::Attribute attr_s(std::string v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}

// One node run straight through the registry: infer() over all-known inputs, then compute()
// into outputs allocated from the inferred shapes (as the executor does). A missing input
// is an undefined Tensor.
struct Case {
  ir::Node node;
  std::vector<Tensor> inputs;

  Case(const std::string& op, int opset, std::vector<Tensor> in, size_t outputs = 1)
      : inputs(std::move(in)) {
    node.name = "n";
    node.op_type = op;
    node.opset = opset;
    for (size_t i = 0; i < inputs.size(); ++i)
      node.inputs.push_back(inputs[i].defined() ? static_cast<int>(i) : -1);
    for (size_t i = 0; i < outputs; ++i) node.outputs.push_back(static_cast<int>(100 + i));
  }
  Case& set(const std::string& name, ir::Attribute a) {
    node.attrs[name] = std::move(a);
    return *this;
  }

  std::vector<ir::TensorType> infer() {
    types.clear();
    types.reserve(inputs.size());
    std::vector<const ir::TensorType*> tp;
    std::vector<const Tensor*> vp;
    for (const Tensor& t : inputs) {
      types.push_back({t.dtype(), true, t.shape()});
      tp.push_back(t.defined() ? &types.back() : nullptr);
      vp.push_back(t.defined() ? &t : nullptr);
    }
    ops::InferContext ctx(node, tp, vp, node.outputs.size());
    const ops::OpDef* op = ops::find_op("", node.op_type);
    if (!op) throw std::runtime_error("no op " + node.op_type);
    op->infer(ctx);
    return ctx.outputs();
  }

  std::vector<Tensor> run() {
    std::vector<ir::TensorType> out_types = infer();
    std::vector<Tensor> outs;
    for (const auto& t : out_types) outs.emplace_back(t.dtype, t.has_shape ? t.dims : Shape{});
    std::vector<const Tensor*> ip;
    for (const Tensor& t : inputs) ip.push_back(t.defined() ? &t : nullptr);
    std::vector<Tensor*> op_out;
    for (Tensor& t : outs) op_out.push_back(&t);
    ops::ComputeContext ctx(node, ip, op_out);
    ops::find_op("", node.op_type)->compute(ctx);
    return outs;
  }

  std::vector<ir::TensorType> types;
};

#define EXPECT_FAILS(expr, needle)                                                  \
  do {                                                                              \
    try {                                                                           \
      (void)(expr);                                                                 \
      ADD_FAILURE() << "expected an error containing '" << (needle) << "'";         \
    } catch (const Error& e) {                                                      \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what(); \
    }                                                                               \
  } while (0)

}  // namespace

Tensor scales(std::vector<float> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return make<float>({n}, std::move(v));
}

TEST(OpsResize, HostileScalesAndSizes) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float s : {0.f, -2.f, nan, std::numeric_limits<float>::infinity()}) {
    Case c("Resize", 13, {floats({1, 1, 2, 2}), Tensor(), scales({1, 1, s, 1})});
    EXPECT_FAILS(c.infer(), "must be > 0");
  }
  Case huge("Resize", 13, {floats({1, 1, 2, 2}), Tensor(), scales({1, 1, 3e9f, 3e9f})});
  EXPECT_FAILS(huge.infer(), "large");
  Case neg("Resize", 13, {floats({1, 1, 2, 2}), Tensor(), Tensor(), ints({1, 1, -1, 2})});
  EXPECT_FAILS(neg.infer(), ">= 0");
  Case both("Resize", 13,
            {floats({1, 1, 2, 2}), Tensor(), scales({1, 1, 2, 2}), ints({1, 1, 4, 4})});
  EXPECT_FAILS(both.infer(), "exactly one");
  Case none("Resize", 13, {floats({1, 1, 2, 2})});
  EXPECT_FAILS(none.infer(), "exactly one");
  Case rank("Resize", 13, {floats({1, 1, 2, 2}), Tensor(), scales({2, 2})});
  EXPECT_FAILS(rank.infer(), "entries");
  Case empty_in("Resize", 13, {floats({1, 0}), Tensor(), Tensor(), ints({1, 3})});
  EXPECT_FAILS(empty_in.infer(), "empty dim");
}

TEST(OpsResize, BadEnumsAndVersionedModes) {
  Case mode("Resize", 13, {floats({1, 2}), Tensor(), scales({1, 2})});
  mode.set("mode", attr_s("area"));
  EXPECT_FAILS(mode.infer(), "mode");
  Case sym("Resize", 18, {floats({1, 2}), Tensor(), scales({1, 2})});
  sym.set("coordinate_transformation_mode", attr_s("half_pixel_symmetric"));
  EXPECT_FAILS(sym.infer(), "coordinate_transformation_mode");
  sym.node.opset = 19;
  EXPECT_EQ(sym.infer()[0].dims, (Shape{1, 4}));
  Case aa("Resize", 18, {floats({1, 2}), Tensor(), scales({1, 2})});
  aa.set("antialias", attr_i(1));
  EXPECT_FAILS(aa.infer(), "antialias");
  Case cubic10("Resize", 10, {floats({1, 2}), scales({1, 2})});
  cubic10.set("mode", attr_s("cubic"));
  EXPECT_FAILS(cubic10.infer(), "mode");
  Case roi("Resize", 13, {floats({1, 2}), scales({0, 0, 1}), Tensor(), ints({1, 3})});
  roi.set("coordinate_transformation_mode", attr_s("tf_crop_and_resize"));
  EXPECT_EQ(roi.infer()[0].dims, (Shape{1, 3}));  // roi is only read at compute
  EXPECT_FAILS(roi.run(), "roi");
  Case ups("Upsample", 7, {floats({1, 2})});
  ir::Attribute one_scale;
  one_scale.kind = ir::Attribute::Kind::kFloats;
  one_scale.floats = {2.f};
  ups.set("scales", one_scale);
  EXPECT_FAILS(ups.infer(), "entries");
}

TEST(OpsResize, ExtremeRatiosStayBounded) {
  // A 1000x downsample with antialias reads each input a bounded number of times.
  Case aa("Resize", 18, {floats({1, 3000}), Tensor(), Tensor(), ints({1, 3})});
  aa.set("mode", attr_s("linear"));
  aa.set("antialias", attr_i(1));
  std::vector<Tensor> out = aa.run();
  ASSERT_EQ(out[0].shape(), (Shape{1, 3}));
  EXPECT_NEAR(out[0].data<float>()[1], 1499.5f, 1.0f);  // the mean of the middle third
  Case up("Resize", 13, {floats({1, 2}), Tensor(), Tensor(), ints({1, 100000})});
  up.set("mode", attr_s("cubic"));
  out = up.run();
  EXPECT_TRUE(std::isfinite(out[0].data<float>()[99999]));
}

TEST(OpsResize, GridSampleHostileGrid) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Case shape("GridSample", 16, {floats({1, 1, 2, 2}), floats({1, 2, 2, 3})});
  EXPECT_FAILS(shape.infer(), "grid shape");
  Case mode("GridSample", 16, {floats({1, 1, 2, 2}), floats({1, 1, 1, 2})});
  mode.set("mode", attr_s("area"));
  EXPECT_FAILS(mode.infer(), "mode");
  Case vol("GridSample", 16, {floats({1, 1, 2, 2, 2}), floats({1, 1, 1, 1, 3})});
  EXPECT_FAILS(vol.infer(), "opset 20");
  for (const char* pad : {"zeros", "border", "reflection"}) {
    for (const char* m : {"bilinear", "nearest", "bicubic"}) {
      Case c("GridSample", 16,
             {floats({1, 1, 3, 3}),
              make<float>({1, 1, 3, 2}, {nan, 0, 1e30f, -1e30f, -1e38f, 1e38f})});
      c.set("padding_mode", attr_s(pad));
      c.set("mode", attr_s(m));
      std::vector<Tensor> out = c.run();
      ASSERT_EQ(out[0].shape(), (Shape{1, 1, 1, 3}));
      for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(std::isfinite(out[0].data<float>()[i])) << pad << " " << m;
    }
  }
}

TEST(OpsResize, RoiAlignHostileRois) {
  Case bi("RoiAlign", 16, {floats({1, 1, 4, 4}), make<float>({1, 4}, {0, 0, 2, 2}), ints({1})});
  EXPECT_FAILS(bi.run(), "batch index");
  Case huge("RoiAlign", 16,
            {floats({1, 1, 4, 4}), make<float>({1, 4}, {0, 0, 1e9f, 1e9f}), ints({0})});
  EXPECT_FAILS(huge.run(), "samples");
  // A reversed roi samples nothing (no overflow converting its bin count).
  Case rev("RoiAlign", 16,
           {floats({1, 1, 4, 4}), make<float>({1, 4}, {1e30f, 0, -1e30f, 2}), ints({0})});
  EXPECT_EQ(rev.run()[0].data<float>()[0], 0.0f);
  Case nan("RoiAlign", 16,
           {floats({1, 1, 4, 4}),
            make<float>({1, 4}, {0, 0, std::numeric_limits<float>::quiet_NaN(), 1}), ints({0})});
  EXPECT_FAILS(nan.run(), "non-finite");
  Case mode("RoiAlign", 16, {floats({1, 1, 4, 4}), make<float>({1, 4}, {0, 0, 2, 2}), ints({0})});
  mode.set("mode", attr_s("sum"));
  EXPECT_FAILS(mode.infer(), "mode");
  Case oh("RoiAlign", 16, {floats({1, 1, 4, 4}), make<float>({1, 4}, {0, 0, 2, 2}), ints({0})});
  oh.set("output_height", attr_i(0));
  EXPECT_FAILS(oh.infer(), "output_height");
}
