// The resize family (src/ops/resize*.cpp) driven directly through the op registry: hostile
// scales, sizes, grids and rois give a lithe::Error (or a defined result), never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

using Case = test::OpCase;

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
