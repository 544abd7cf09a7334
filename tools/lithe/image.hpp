// Image decoding (Debian's libstb: stb_image) and preprocessing for `lithe eval`.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "lithe/tensor.hpp"

namespace lithe::cli {

/// An 8-bit image, interleaved channels (1 = gray, 3 = RGB), row-major.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

/// Decodes a JPEG/PNG (anything stb_image reads) into `channels` channels (1 or 3: stb
/// converts, gray = (77 R + 150 G + 29 B) / 256). Fails naming the file.
Image load_image(const std::string& path, int channels);

/// Float image, interleaved channels, values as decoded (0..255).
struct FloatImage {
  int width = 0, height = 0, channels = 0;
  std::vector<float> data;
  float at(int x, int y, int c) const {
    return data[(static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) *
                    static_cast<size_t>(channels) +
                static_cast<size_t>(c)];
  }
};

FloatImage to_float(const Image& img);

/// Bilinear resize with half-pixel centers (source x = (x + 0.5) * in_w / out_w - 0.5,
/// clamped to the edge), as OpenCV's INTER_LINEAR without antialiasing.
FloatImage resize_bilinear(const FloatImage& img, int out_w, int out_h);

/// The centered out_w x out_h window (offset (in - out) / 2, rounded down); fails when the
/// image is smaller.
FloatImage center_crop(const FloatImage& img, int out_w, int out_h);

/// What `lithe eval` does to each image, in this order: resize (to resize_w x resize_h, or
/// the short side to resize_short keeping the aspect ratio, rounded to nearest), center crop,
/// multiply by `scale`, reorder channels (bgr), subtract mean[c], divide by std[c], write in
/// `layout` ("nchw" or "nhwc") as a [1, C, H, W] / [1, H, W, C] float32 tensor. Without a
/// resize or crop the image is resized to the model's input size.
struct Preprocess {
  int resize_w = 0, resize_h = 0;  ///< 0: no fixed resize
  int resize_short = 0;            ///< 0: none
  int crop_w = 0, crop_h = 0;      ///< 0: no crop
  double scale = 1.0;
  std::vector<double> mean;  ///< empty: 0; one value or one per channel
  std::vector<double> std;   ///< empty: 1; one value or one per channel
  bool bgr = false;
  std::string layout = "nchw";
};

/// Preprocesses a decoded image into a tensor of `shape` ([1, C, H, W] for nchw, [1, H, W, C]
/// for nhwc); fails naming `what` (the file) when the result does not fit the shape.
Tensor preprocess(const Image& img, const Preprocess& p, const Shape& shape,
                  const std::string& what);

/// "1/255" or "0.0039" -> double; "r,g,b" -> list. Fail naming `flag`.
double parse_number(const std::string& text, const std::string& flag);
std::vector<double> parse_number_list(const std::string& text, const std::string& flag);
/// "224x224" (also "224,224") -> {w, h}.
std::array<int, 2> parse_size(const std::string& text, const std::string& flag);

/// Writes an 8-bit PNG (stb_image_write); for tests and tools that make data sets.
void write_png(const std::string& path, const Image& img);
/// Writes a baseline JPEG (stb_image_write, quality 1-100).
void write_jpg(const std::string& path, const Image& img, int quality);

}  // namespace lithe::cli
