// The C API (include/lithe/lithe.h): a whole run through it, thread counts, and errors as
// status codes with a one-line message.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "lithe/lithe.h"

namespace {

const std::string kModel = std::string(LITHE_SOURCE_DIR) + "/examples/tiny_cnn.onnx";

// Runs tiny_cnn on a fixed image with `threads` threads; returns the output values.
std::vector<float> run(int32_t threads) {
  lithe_engine* e = nullptr;
  EXPECT_EQ(lithe_engine_load(kModel.c_str(), &e), LITHE_OK) << lithe_last_error();
  if (!e) return {};
  EXPECT_EQ(lithe_engine_num_inputs(e), 1u);
  lithe_context* c = nullptr;
  EXPECT_EQ(lithe_context_create_threads(e, threads, &c), LITHE_OK) << lithe_last_error();
  std::vector<float> out;
  if (c) {
    const int64_t shape[] = {1, 3, 64, 64};
    std::vector<float> img(3 * 64 * 64);
    for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(i % 97) / 97.0f - 0.5f;
    EXPECT_EQ(lithe_context_set_input(c, lithe_engine_input_name(e, 0), 1, shape, 4, img.data(),
                                      img.size() * sizeof(float)),
              LITHE_OK)
        << lithe_last_error();
    EXPECT_EQ(lithe_context_run(c), LITHE_OK) << lithe_last_error();
    int32_t dtype = 0;
    const int64_t* oshape = nullptr;
    size_t rank = 0, nbytes = 0;
    const void* data = nullptr;
    EXPECT_EQ(lithe_context_output(c, lithe_engine_output_name(e, 0), &dtype, &oshape, &rank, &data,
                                   &nbytes),
              LITHE_OK)
        << lithe_last_error();
    EXPECT_EQ(dtype, 1);
    out.resize(nbytes / sizeof(float));
    if (data) std::memcpy(out.data(), data, nbytes);
    lithe_context_free(c);
  }
  lithe_engine_free(e);
  return out;
}

TEST(CApi, RunsAndGivesTheSameBitsForAnyThreadCount) {
  const std::vector<float> one = run(1);
  ASSERT_EQ(one.size(), 10u);  // tiny_cnn's softmax over 10 classes
  float sum = 0;
  for (float v : one) sum += v;
  EXPECT_NEAR(sum, 1.0f, 1e-5f);
  for (int32_t t : {2, 3}) {
    const std::vector<float> other = run(t);
    ASSERT_EQ(other.size(), one.size());
    EXPECT_EQ(0, std::memcmp(one.data(), other.data(), one.size() * sizeof(float))) << t;
  }
}

TEST(CApi, ErrorsAreStatusesWithAMessage) {
  lithe_engine* e = nullptr;
  EXPECT_EQ(lithe_engine_load("/nonexistent/model.onnx", &e), LITHE_ERROR_BAD_INPUT);
  EXPECT_NE(std::string(lithe_last_error()).find("/nonexistent/model.onnx"), std::string::npos);
  ASSERT_EQ(lithe_engine_load(kModel.c_str(), &e), LITHE_OK) << lithe_last_error();
  lithe_context* c = nullptr;
  EXPECT_EQ(lithe_context_create_threads(e, 0, &c), LITHE_ERROR_BAD_INPUT);
  EXPECT_NE(std::string(lithe_last_error()).find("thread count 0"), std::string::npos)
      << lithe_last_error();
  EXPECT_EQ(lithe_context_create(e, nullptr), LITHE_ERROR_BAD_INPUT);
  ASSERT_EQ(lithe_context_create(e, &c), LITHE_OK);
  EXPECT_EQ(lithe_context_run(c), LITHE_ERROR_BAD_INPUT);  // input not set
  EXPECT_NE(std::string(lithe_last_error()).find("was not set"), std::string::npos)
      << lithe_last_error();
  lithe_context_free(c);
  lithe_engine_free(e);
}

}  // namespace
