#include "image.hpp"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

#include "lithe/error.hpp"

namespace lithe::cli {

Image load_image(const std::string& path, int channels) {
  if (channels != 1 && channels != 3)
    fail(path, ": images can feed 1 or 3 channels, the model wants ", channels);
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load(path.c_str(), &w, &h, &n, channels),
                                                 stbi_image_free);
  if (!data) fail(path, ": cannot decode image (", stbi_failure_reason(), ")");
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels;
  img.pixels.assign(data.get(), data.get() + static_cast<size_t>(w) * h * channels);
  return img;
}

FloatImage to_float(const Image& img) {
  FloatImage f{img.width, img.height, img.channels, {}};
  f.data.assign(img.pixels.begin(), img.pixels.end());
  return f;
}

FloatImage resize_bilinear(const FloatImage& img, int out_w, int out_h) {
  if (out_w <= 0 || out_h <= 0 || img.width <= 0 || img.height <= 0)
    fail("cannot resize a ", img.width, "x", img.height, " image to ", out_w, "x", out_h);
  FloatImage out{out_w, out_h, img.channels, {}};
  out.data.resize(static_cast<size_t>(out_w) * out_h * img.channels);
  // Source coordinate and the two neighbours with their weights, per output column / row.
  auto axis = [](int out_n, int in_n, std::vector<int>& i0, std::vector<int>& i1,
                 std::vector<float>& w1) {
    const double ratio = static_cast<double>(in_n) / out_n;
    for (int o = 0; o < out_n; ++o) {
      double s = (o + 0.5) * ratio - 0.5;
      s = std::clamp(s, 0.0, static_cast<double>(in_n - 1));
      const int a = static_cast<int>(std::floor(s));
      i0.push_back(a);
      i1.push_back(std::min(a + 1, in_n - 1));
      w1.push_back(static_cast<float>(s - a));
    }
  };
  std::vector<int> x0, x1, y0, y1;
  std::vector<float> wx, wy;
  axis(out_w, img.width, x0, x1, wx);
  axis(out_h, img.height, y0, y1, wy);
  size_t k = 0;
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x)
      for (int c = 0; c < img.channels; ++c) {
        const float top = img.at(x0[x], y0[y], c) * (1 - wx[x]) + img.at(x1[x], y0[y], c) * wx[x];
        const float bot = img.at(x0[x], y1[y], c) * (1 - wx[x]) + img.at(x1[x], y1[y], c) * wx[x];
        out.data[k++] = top * (1 - wy[y]) + bot * wy[y];
      }
  return out;
}

FloatImage center_crop(const FloatImage& img, int out_w, int out_h) {
  if (out_w > img.width || out_h > img.height)
    fail("cannot crop ", out_w, "x", out_h, " from a ", img.width, "x", img.height, " image");
  const int ox = (img.width - out_w) / 2, oy = (img.height - out_h) / 2;
  FloatImage out{out_w, out_h, img.channels, {}};
  out.data.reserve(static_cast<size_t>(out_w) * out_h * img.channels);
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x)
      for (int c = 0; c < img.channels; ++c) out.data.push_back(img.at(ox + x, oy + y, c));
  return out;
}

namespace {
double per_channel(const std::vector<double>& v, int c, double def) {
  if (v.empty()) return def;
  return v.size() == 1 ? v[0] : v[static_cast<size_t>(c)];
}
}  // namespace

Tensor preprocess(const Image& img, const Preprocess& p, const Shape& shape,
                  const std::string& what) {
  const bool nhwc = p.layout == "nhwc";
  if (shape.size() != 4 || shape[0] != 1)
    fail(what, ": images feed a [1, C, H, W] or [1, H, W, C] input, the model's is [",
         shape_str(shape), "]");
  const int64_t C = nhwc ? shape[3] : shape[1], H = nhwc ? shape[1] : shape[2],
                W = nhwc ? shape[2] : shape[3];
  if (C != img.channels)
    fail(what, ": the model input has ", C, " channels in ", p.layout, " layout, the image ",
         img.channels);
  for (const auto* v : {&p.mean, &p.std})
    if (v->size() > 1 && static_cast<int64_t>(v->size()) != C)
      fail("--mean/--std: ", v->size(), " values for a ", C, "-channel input");
  FloatImage f = to_float(img);
  try {
    if (p.resize_w > 0) {
      f = resize_bilinear(f, p.resize_w, p.resize_h);
    } else if (p.resize_short > 0) {
      const double s = static_cast<double>(p.resize_short) / std::min(f.width, f.height);
      f = resize_bilinear(f, std::max(1, static_cast<int>(std::lround(f.width * s))),
                          std::max(1, static_cast<int>(std::lround(f.height * s))));
    }
    if (p.crop_w > 0) f = center_crop(f, p.crop_w, p.crop_h);
    if (p.resize_w <= 0 && p.resize_short <= 0 && p.crop_w <= 0 && (f.width != W || f.height != H))
      f = resize_bilinear(f, static_cast<int>(W), static_cast<int>(H));
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
  if (f.width != W || f.height != H)
    fail(what, ": preprocessed to ", f.width, "x", f.height, ", the model input wants ", W, "x", H,
         " (check --resize/--crop)");
  Tensor t(DType::kFloat32, shape);
  float* out = t.data<float>();
  for (int c = 0; c < C; ++c) {
    const int src_c = p.bgr && C == 3 ? 2 - c : c;
    const double m = per_channel(p.mean, c, 0.0), sd = per_channel(p.std, c, 1.0);
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const double v = (f.at(static_cast<int>(x), static_cast<int>(y), src_c) * p.scale - m) / sd;
        const int64_t at = nhwc ? (y * W + x) * C + c : (c * H + y) * W + x;
        out[at] = static_cast<float>(v);
      }
  }
  return t;
}

double parse_number(const std::string& text, const std::string& flag) {
  auto one = [&](const std::string& s) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
      fail(flag, " '", text, "': expected a number like 0.5 or 1/255");
    return v;
  };
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return one(text);
  const double d = one(text.substr(slash + 1));
  if (d == 0) fail(flag, " '", text, "': division by zero");
  return one(text.substr(0, slash)) / d;
}

std::vector<double> parse_number_list(const std::string& text, const std::string& flag) {
  std::vector<double> out;
  size_t at = 0;
  while (true) {
    const size_t comma = text.find(',', at);
    out.push_back(parse_number(text.substr(at, comma - at), flag));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

std::array<int, 2> parse_size(const std::string& text, const std::string& flag) {
  const size_t x = text.find_first_of("x,");
  char* end = nullptr;
  const std::string a = text.substr(0, x), b = x == std::string::npos ? "" : text.substr(x + 1);
  const long w = std::strtol(a.c_str(), &end, 10);
  const bool ok_w = !a.empty() && *end == '\0';
  const long h = std::strtol(b.c_str(), &end, 10);
  const bool ok_h = !b.empty() && *end == '\0';
  if (!ok_w || !ok_h || w <= 0 || h <= 0 || w > 65536 || h > 65536)
    fail(flag, " '", text, "': expected WIDTHxHEIGHT, e.g. 224x224");
  return {static_cast<int>(w), static_cast<int>(h)};
}

void write_png(const std::string& path, const Image& img) {
  if (!stbi_write_png(path.c_str(), img.width, img.height, img.channels, img.pixels.data(),
                      img.width * img.channels))
    fail(path, ": cannot write PNG");
}

void write_jpg(const std::string& path, const Image& img, int quality) {
  if (!stbi_write_jpg(path.c_str(), img.width, img.height, img.channels, img.pixels.data(),
                      quality))
    fail(path, ": cannot write JPEG");
}

}  // namespace lithe::cli
