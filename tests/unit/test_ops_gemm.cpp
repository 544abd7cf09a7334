// Unit tests for the gemm op family's reference kernels: results the backend suite
// does not cover and hostile attributes/shapes (each must be a lithe::Error, never a crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "op_test_util.hpp"

using namespace lithe;
using namespace lithe::test;

TEST(OpsGemm, MatMulIntegerOverflowWraps) {
  auto y = OpCase("MatMul", 13)
               .run({make<int32_t>({1, 1}, {std::numeric_limits<int32_t>::max()}),
                     make<int32_t>({1, 1}, {2})});
  EXPECT_EQ(y[0].data<int32_t>()[0], -2);
}

TEST(OpsGemm, MatMulVectorsGiveScalar) {
  auto y = OpCase("MatMul", 13).run({make<float>({3}, {1, 2, 3}), make<float>({3}, {4, 5, 6})});
  EXPECT_EQ(y[0].rank(), 0);
  EXPECT_FLOAT_EQ(y[0].data<float>()[0], 32.0f);
}

TEST(OpsGemm, MatMulBatchBroadcast) {
  // (2,1,2,2) x (3,2,1) -> (2,3,2,1)
  std::vector<float> a(8), b(6);
  for (size_t k = 0; k < a.size(); ++k) a[k] = static_cast<float>(k);
  for (size_t k = 0; k < b.size(); ++k) b[k] = static_cast<float>(k);
  auto y = OpCase("MatMul", 13).run({make<float>({2, 1, 2, 2}, a), make<float>({3, 2, 1}, b)});
  EXPECT_EQ(y[0].shape(), (Shape{2, 3, 2, 1}));
  // batch (1, 2): a[1] = [[4,5],[6,7]], b[2] = [4,5] -> [41, 59]
  EXPECT_FLOAT_EQ(y[0].data<float>()[10], 41.0f);
  EXPECT_FLOAT_EQ(y[0].data<float>()[11], 59.0f);
}

TEST(OpsGemm, HostileShapesAreErrors) {
  EXPECT_CONTAINS(error_of(OpCase("MatMul", 13), {make<float>({2, 3}, std::vector<float>(6)),
                                                  make<float>({4, 2}, std::vector<float>(8))}),
                  "inner dimensions");
  EXPECT_CONTAINS(
      error_of(OpCase("Gemm", 13).i("transA", 1), {make<float>({2, 3}, std::vector<float>(6)),
                                                   make<float>({3, 2}, std::vector<float>(6))}),
      "inner dimensions");
  EXPECT_CONTAINS(error_of(OpCase("Gemm", 13), {make<float>({2, 3}, std::vector<float>(6)),
                                                make<float>({3, 2}, std::vector<float>(6)),
                                                make<float>({3}, std::vector<float>(3))}),
                  "cannot be broadcast");
  EXPECT_CONTAINS(
      error_of(OpCase("MatMulInteger", 10), {make<uint8_t>({2, 3}, std::vector<uint8_t>(6)),
                                             make<uint8_t>({3, 2}, std::vector<uint8_t>(6)),
                                             make<uint8_t>({3}, std::vector<uint8_t>(3))}),
      "a_zero_point");
}

TEST(OpsGemm, GemmTransposedWithRowBias) {
  // A' = [[1,2],[3,4]] from A = [[1,3],[2,4]]; B' = I; C = [10, 20] per column.
  auto y = OpCase("Gemm", 13)
               .i("transA", 1)
               .i("transB", 1)
               .f("alpha", 2.0f)
               .run({make<float>({2, 2}, {1, 3, 2, 4}), make<float>({2, 2}, {1, 0, 0, 1}),
                     make<float>({2}, {10, 20})});
  const float* p = y[0].data<float>();
  EXPECT_FLOAT_EQ(p[0], 12.0f);
  EXPECT_FLOAT_EQ(p[1], 24.0f);
  EXPECT_FLOAT_EQ(p[2], 16.0f);
  EXPECT_FLOAT_EQ(p[3], 28.0f);
}

TEST(OpsGemm, GemmIntegerFractionalAlphaSaturates) {
  auto y = OpCase("Gemm", 13)
               .f("alpha", 0.5f)
               .run({make<int32_t>({1, 1}, {std::numeric_limits<int32_t>::max()}),
                     make<int32_t>({1, 1}, {4})});
  EXPECT_EQ(y[0].data<int32_t>()[0], std::numeric_limits<int32_t>::max());
}

TEST(OpsGemm, MatMulIntegerZeroPoints) {
  // A - 1 = [[0, 1]], B - [2, 3] per column = [[1, 1], [2, 2]] -> [[2, 2]]
  auto y = OpCase("MatMulInteger", 10)
               .run({make<uint8_t>({1, 2}, {1, 2}), make<int8_t>({2, 2}, {3, 4, 4, 5}),
                     make<uint8_t>({}, {1}), make<int8_t>({2}, {2, 3})});
  EXPECT_EQ(y[0].dtype(), DType::kInt32);
  EXPECT_EQ(y[0].data<int32_t>()[0], 2);
  EXPECT_EQ(y[0].data<int32_t>()[1], 2);
}

TEST(OpsGemm, EinsumTraceDiagonalAndSum) {
  Tensor m = make<double>({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto tr = OpCase("Einsum", 12).s("equation", "ii").run({m});
  EXPECT_EQ(tr[0].rank(), 0);
  EXPECT_DOUBLE_EQ(tr[0].data<double>()[0], 15.0);
  auto dg = OpCase("Einsum", 12).s("equation", "ii->i").run({m});
  EXPECT_DOUBLE_EQ(dg[0].data<double>()[2], 9.0);
  auto t = OpCase("Einsum", 12).s("equation", "ij->ji").run({m});
  EXPECT_DOUBLE_EQ(t[0].data<double>()[1], 4.0);
  auto s = OpCase("Einsum", 12).s("equation", "...j->...").run({m});
  EXPECT_DOUBLE_EQ(s[0].data<double>()[1], 15.0);
}

TEST(OpsGemm, EinsumHostileEquations) {
  Tensor m = make<float>({2, 3}, std::vector<float>(6));
  for (const char* eq : {"ij,jk->ik", "i$", "ij->ii", "ij->k", "....", "i", "ii", "ij...->...."})
    error_of(OpCase("Einsum", 12).s("equation", eq), {m});
  // 2^34 multiply-adds: refused instead of hanging.
  Tensor big(DType::kFloat32, {int64_t{1} << 17});
  EXPECT_CONTAINS(error_of(OpCase("Einsum", 12).s("equation", "a,b->"), {big, big}), "too large");
}
