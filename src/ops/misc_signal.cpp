// Op family: misc, part 2: signal processing (HannWindow, HammingWindow, BlackmanWindow,
// DFT, STFT, MelWeightMatrix). Registered through add_misc_signal_ops from misc.cpp.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "ops/misc_internal.hpp"
#include "ops/util.hpp"

namespace lithe::ops {
namespace {

using namespace misc_detail;

constexpr double kPi = std::numbers::pi;

// ---- Windows ----
// w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size (periodic) or size - 1.

struct WindowCoeffs {
  double a0, a1, a2;
};

int64_t window_size(const NodeAttrs& ctx, const Tensor& t) {
  int64_t n = scalar_int(ctx, t, "size");
  if (n < 0) ctx.fail("window size must be >= 0, got ", n);
  if (n > kMaxTensorElements) ctx.fail("window size ", n, " is too large");
  return n;
}

void infer_window(InferContext& ctx) {
  ctx.expect_inputs(1, 1);
  DType t = ctx.input_dtype(0);
  if (t != DType::kInt32 && t != DType::kInt64)
    ctx.fail("input 'size' must be int32 or int64, got ", dtype_name(t));
  DType out = dtype_attr(ctx, "output_datatype", ctx.attr_int("output_datatype", 1));
  int64_t periodic = ctx.attr_int("periodic", 1);
  if (periodic != 0 && periodic != 1) ctx.fail("periodic must be 0 or 1, got ", periodic);
  ctx.set_output(0, out, {window_size(ctx, ctx.input_value(0))});
}

template <int kKind>  // 0 Hann, 1 Hamming, 2 Blackman
void compute_window(ComputeContext& ctx) {
  static constexpr WindowCoeffs kCoeffs[] = {
      {0.5, 0.5, 0.0}, {25.0 / 46.0, 21.0 / 46.0, 0.0}, {0.42, 0.5, 0.08}};
  const WindowCoeffs c = kCoeffs[kKind];
  const int64_t size = window_size(ctx, ctx.input(0));
  const bool periodic = ctx.attr_int("periodic", 1) != 0;
  const double n_div = static_cast<double>(periodic ? size : size - 1);
  with_writer(ctx.output(0), [&](auto put) {
    for (int64_t i = 0; i < size; ++i) {
      // A symmetric window of one sample has N = 0; it is 1 (as numpy.hanning(1)).
      double x = n_div > 0 ? static_cast<double>(i) / n_div : 0.0;
      put(i, n_div > 0 ? c.a0 - c.a1 * std::cos(2 * kPi * x) + c.a2 * std::cos(4 * kPi * x) : 1.0);
    }
  });
}

// ---- DFT ----

// exp(i 2 pi j / len) for j in [0, len): a table for usual lengths, computed on demand for
// huge ones so a hostile dft_length cannot make the table itself enormous.
class Twiddles {
 public:
  explicit Twiddles(int64_t len) : len_(len) {
    if (len > kMaxTable) return;
    cos_.resize(static_cast<size_t>(len));
    sin_.resize(static_cast<size_t>(len));
    for (int64_t j = 0; j < len; ++j) {
      cos_[static_cast<size_t>(j)] = std::cos(angle(j));
      sin_[static_cast<size_t>(j)] = std::sin(angle(j));
    }
  }
  int64_t len() const { return len_; }
  double cos(int64_t j) const {
    return cos_.empty() ? std::cos(angle(j)) : cos_[static_cast<size_t>(j)];
  }
  double sin(int64_t j) const {
    return sin_.empty() ? std::sin(angle(j)) : sin_[static_cast<size_t>(j)];
  }

 private:
  static constexpr int64_t kMaxTable = int64_t{1} << 20;
  double angle(int64_t j) const {
    return 2 * kPi * static_cast<double>(j) / static_cast<double>(len_);
  }
  int64_t len_;
  std::vector<double> cos_, sin_;
};

// A naive DFT of one complex signal (re, im), zero padded or truncated to tw.len():
// calls put(k, real, imag) with sum_n x[n] exp(sign 2 pi i k n / L) for k < out_len. The
// twiddle index (k n) mod L keeps the angles exact for long signals.
template <class Put>
void naive_dft(const std::vector<double>& re, const std::vector<double>& im, const Twiddles& tw,
               bool inverse, int64_t out_len, Put&& put) {
  const int64_t len = tw.len();
  const int64_t n_in = std::min(static_cast<int64_t>(re.size()), len);
  const double sign = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < out_len; ++k) {
    double sr = 0, si = 0;
    for (int64_t n = 0; n < n_in; ++n) {
      int64_t j = (k * n) % len;  // k, n < 2^31: no overflow
      double c = tw.cos(j), s = sign * tw.sin(j);
      sr += re[static_cast<size_t>(n)] * c - im[static_cast<size_t>(n)] * s;
      si += re[static_cast<size_t>(n)] * s + im[static_cast<size_t>(n)] * c;
    }
    put(k, sr, si);
  }
}

struct DftGeom {
  size_t axis = 0;
  int64_t len = 0;      // DFT length
  int64_t out_len = 0;  // along axis in the output
  Shape out;
};

template <class Ctx>
DftGeom dft_geom(const Ctx& ctx, const Shape& x, int64_t axis, bool has_len, int64_t len) {
  const int64_t r = static_cast<int64_t>(x.size());
  if (r < 2 || (x.back() != 1 && x.back() != 2))
    ctx.fail("input must have shape [..., signal dims..., 1 or 2], got ", shape_str(x));
  // Valid axes are [-r, -2] and [0, r - 2]: the last dim holds the real/imaginary parts.
  if (axis < -r || axis > r - 2 || axis == -1)
    ctx.fail("axis ", axis, " is out of range for input of rank ", r, " (expected [", -r,
             ", -2] or [0, ", r - 2, "])");
  DftGeom g;
  g.axis = static_cast<size_t>(axis < 0 ? axis + r : axis);
  g.len = has_len ? len : x[g.axis];
  if (g.len < 1) ctx.fail("dft_length must be >= 1, got ", g.len);
  if (g.len > kMaxTensorElements) ctx.fail("dft_length ", g.len, " is too large");
  int64_t onesided = ctx.attr_int("onesided", 0);
  int64_t inverse = ctx.attr_int("inverse", 0);
  if (onesided != 0 && onesided != 1) ctx.fail("onesided must be 0 or 1, got ", onesided);
  if (inverse != 0 && inverse != 1) ctx.fail("inverse must be 0 or 1, got ", inverse);
  g.out_len = onesided ? g.len / 2 + 1 : g.len;
  g.out = x;
  g.out[g.axis] = g.out_len;
  g.out.back() = 2;
  return g;
}

// Inputs: opset 17: (input, dft_length?) with the axis attribute (default 1); opset 20:
// (input, dft_length?, axis?) with axis default -2.
template <class Ctx, class ValueFn>
DftGeom dft_geom_from(const Ctx& ctx, const Shape& x, ValueFn value) {
  int64_t axis;
  if (ctx.opset() >= 20) {
    if (ctx.has_attr("axis")) ctx.fail("attribute 'axis' was replaced by an input in opset 20");
    axis = ctx.has_input(2) ? scalar_int(ctx, value(2), "axis") : -2;
  } else {
    axis = ctx.attr_int("axis", 1);
  }
  bool has_len = ctx.has_input(1);
  int64_t len = has_len ? scalar_int(ctx, value(1), "dft_length") : 0;
  return dft_geom(ctx, x, axis, has_len, len);
}

void infer_dft(InferContext& ctx) {
  ctx.expect_inputs(1, ctx.opset() >= 20 ? 3 : 2);
  DType t = ctx.input_dtype(0);
  if (!is_float(t)) ctx.fail("input must be float, got ", dtype_name(t));
  DftGeom g = dft_geom_from(ctx, ctx.input_shape(0),
                            [&](size_t i) -> const Tensor& { return ctx.input_value(i); });
  ctx.set_output(0, t, g.out);
}

void compute_dft(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  DftGeom g =
      dft_geom_from(ctx, x.shape(), [&](size_t i) -> const Tensor& { return ctx.input(i); });
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  const Shape& xs = x.shape();
  const int64_t comp = xs.back();
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < g.axis; ++d) outer *= xs[d];
  for (size_t d = g.axis + 1; d + 1 < xs.size(); ++d) inner *= xs[d];
  const int64_t in_len = xs[g.axis];
  const int64_t take = std::min(in_len, g.len);
  const Twiddles tw(g.len);
  std::vector<double> re(static_cast<size_t>(take)), im(static_cast<size_t>(take));
  const double norm = inverse ? 1.0 / static_cast<double>(g.len) : 1.0;
  with_writer(ctx.output(0), [&](auto put) {
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t in = 0; in < inner; ++in) {
        for (int64_t n = 0; n < take; ++n) {
          int64_t base = ((o * in_len + n) * inner + in) * comp;
          re[static_cast<size_t>(n)] = x.at_double(base);
          im[static_cast<size_t>(n)] = comp == 2 ? x.at_double(base + 1) : 0.0;
        }
        naive_dft(re, im, tw, inverse, g.out_len, [&](int64_t k, double yr, double yi) {
          int64_t base = ((o * g.out_len + k) * inner + in) * 2;
          put(base, yr * norm);
          put(base + 1, yi * norm);
        });
      }
    }
  });
}

// ---- STFT ----
// signal [batch, length, 1 or 2], frame_step, window? [frame_length], frame_length?;
// output [batch, frames, bins, 2].

struct StftGeom {
  int64_t batch = 0, length = 0, comp = 1, step = 0, frame_len = 0, frames = 0, bins = 0;
};

template <class Ctx, class ValueFn, class ShapeFn>
StftGeom stft_geom(const Ctx& ctx, const Shape& x, ValueFn value, ShapeFn shape) {
  if (x.size() != 3 || (x[2] != 1 && x[2] != 2))
    ctx.fail("input 'signal' must have shape [batch, length, 1 or 2], got ", shape_str(x));
  StftGeom g;
  g.batch = x[0];
  g.length = x[1];
  g.comp = x[2];
  g.step = scalar_int(ctx, value(1), "frame_step");
  if (g.step < 1) ctx.fail("frame_step must be >= 1, got ", g.step);
  int64_t win_len = -1;
  if (ctx.has_input(2)) {
    const Shape& ws = shape(2);
    if (ws.size() != 1) ctx.fail("input 'window' must be 1-D, got shape ", shape_str(ws));
    win_len = ws[0];
  }
  if (ctx.has_input(3)) {
    g.frame_len = scalar_int(ctx, value(3), "frame_length");
    if (win_len >= 0 && win_len != g.frame_len)
      ctx.fail("frame_length ", g.frame_len, " differs from the window length ", win_len);
  } else {
    g.frame_len = win_len >= 0 ? win_len : g.length;
  }
  if (g.frame_len < 1 || g.frame_len > g.length)
    ctx.fail("frame_length must be in [1, signal length ", g.length, "], got ", g.frame_len);
  int64_t onesided = ctx.attr_int("onesided", 1);
  if (onesided != 0 && onesided != 1) ctx.fail("onesided must be 0 or 1, got ", onesided);
  g.frames = (g.length - g.frame_len) / g.step + 1;
  g.bins = onesided ? g.frame_len / 2 + 1 : g.frame_len;
  return g;
}

void infer_stft(InferContext& ctx) {
  ctx.expect_inputs(2, 4);
  DType t = ctx.input_dtype(0);
  if (!is_float(t)) ctx.fail("input 'signal' must be float, got ", dtype_name(t));
  if (ctx.has_input(2) && ctx.input_dtype(2) != t)
    ctx.fail("input 'window' has type ", dtype_name(ctx.input_dtype(2)), ", expected ",
             dtype_name(t));
  StftGeom g = stft_geom(
      ctx, ctx.input_shape(0), [&](size_t i) -> const Tensor& { return ctx.input_value(i); },
      [&](size_t i) -> const Shape& { return ctx.input_shape(i); });
  ctx.set_output(0, t, {g.batch, g.frames, g.bins, 2});
}

void compute_stft(ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  StftGeom g = stft_geom(
      ctx, x.shape(), [&](size_t i) -> const Tensor& { return ctx.input(i); },
      [&](size_t i) -> const Shape& { return ctx.input(i).shape(); });
  std::vector<double> win(static_cast<size_t>(g.frame_len), 1.0);
  if (ctx.has_input(2))
    for (int64_t n = 0; n < g.frame_len; ++n)
      win[static_cast<size_t>(n)] = ctx.input(2).at_double(n);
  const Twiddles tw(g.frame_len);
  const size_t fl = static_cast<size_t>(g.frame_len);
  std::vector<double> re(fl), im(fl);
  with_writer(ctx.output(0), [&](auto put) {
    for (int64_t b = 0; b < g.batch; ++b) {
      for (int64_t f = 0; f < g.frames; ++f) {
        for (int64_t n = 0; n < g.frame_len; ++n) {
          int64_t base = (b * g.length + f * g.step + n) * g.comp;
          double w = win[static_cast<size_t>(n)];
          re[static_cast<size_t>(n)] = x.at_double(base) * w;
          im[static_cast<size_t>(n)] = g.comp == 2 ? x.at_double(base + 1) * w : 0.0;
        }
        naive_dft(re, im, tw, false, g.bins, [&](int64_t k, double yr, double yi) {
          int64_t o = ((b * g.frames + f) * g.bins + k) * 2;
          put(o, yr);
          put(o + 1, yi);
        });
      }
    }
  });
}

// ---- MelWeightMatrix ----
// Follows the ONNX reference: num_mel_bins + 2 points evenly spaced on the mel scale
// between the edges, mapped to spectrogram bins, forming triangles.

struct MelParams {
  int64_t mel_bins = 0, dft_length = 0, sample_rate = 0;
  double lower = 0, upper = 0;
};

template <class Ctx, class ValueFn>
MelParams mel_params(const Ctx& ctx, ValueFn value, bool need_all) {
  MelParams p;
  p.mel_bins = scalar_int(ctx, value(0), "num_mel_bins");
  p.dft_length = scalar_int(ctx, value(1), "dft_length");
  if (p.mel_bins < 1) ctx.fail("num_mel_bins must be >= 1, got ", p.mel_bins);
  if (p.dft_length < 1) ctx.fail("dft_length must be >= 1, got ", p.dft_length);
  if (p.dft_length > kMaxTensorElements || p.mel_bins > kMaxTensorElements)
    ctx.fail("num_mel_bins / dft_length are too large");
  if (!need_all) return p;
  p.sample_rate = scalar_int(ctx, value(2), "sample_rate");
  p.lower = scalar_double(ctx, value(3), "lower_edge_hertz");
  p.upper = scalar_double(ctx, value(4), "upper_edge_hertz");
  if (p.sample_rate < 1) ctx.fail("sample_rate must be >= 1, got ", p.sample_rate);
  if (!(p.lower >= 0) || !(p.upper >= p.lower) || !std::isfinite(p.upper))
    ctx.fail("expected 0 <= lower_edge_hertz <= upper_edge_hertz (finite), got ", p.lower, " and ",
             p.upper);
  return p;
}

void infer_mel(InferContext& ctx) {
  ctx.expect_inputs(5, 5);
  for (size_t i : {0, 1, 2})
    if (ctx.input_dtype(i) != DType::kInt32 && ctx.input_dtype(i) != DType::kInt64)
      ctx.fail("input ", i, " must be int32 or int64, got ", dtype_name(ctx.input_dtype(i)));
  for (size_t i : {3, 4})
    if (!is_float(ctx.input_dtype(i)))
      ctx.fail("input ", i, " must be float, got ", dtype_name(ctx.input_dtype(i)));
  DType out = dtype_attr(ctx, "output_datatype", ctx.attr_int("output_datatype", 1));
  MelParams p = mel_params(
      ctx, [&](size_t i) -> const Tensor& { return ctx.input_value(i); }, false);
  ctx.set_output(0, out, {p.dft_length / 2 + 1, p.mel_bins});
}

void compute_mel(ComputeContext& ctx) {
  MelParams p = mel_params(
      ctx, [&](size_t i) -> const Tensor& { return ctx.input(i); }, true);
  const int64_t spec_bins = p.dft_length / 2 + 1;
  const int64_t points = p.mel_bins + 2;
  const double low_mel = 2595 * std::log10(1 + p.lower / 700);
  const double high_mel = 2595 * std::log10(1 + p.upper / 700);
  const double step = (high_mel - low_mel) / static_cast<double>(points);
  // Spectrogram bin of mel point i; non-decreasing in i, so checking both ends bounds all
  // (computed on demand: num_mel_bins can be large).
  auto bin_at = [&](int64_t i) {
    double hz = 700 * (std::pow(10.0, (static_cast<double>(i) * step + low_mel) / 2595) - 1);
    return std::floor(static_cast<double>(p.dft_length + 1) * hz /
                      static_cast<double>(p.sample_rate));
  };
  for (int64_t i : {int64_t{0}, points - 1}) {
    double b = bin_at(i);
    if (!(b >= 0 && b < static_cast<double>(spec_bins)))
      ctx.fail("upper_edge_hertz ", p.upper, " maps beyond the ", spec_bins,
               " spectrogram bins (it must not exceed sample_rate / 2)");
  }
  auto bin = [&](int64_t i) {
    return std::clamp<int64_t>(static_cast<int64_t>(bin_at(i)), 0, spec_bins - 1);
  };
  // The output is zero-filled; only the triangles are written.
  with_writer(ctx.output(0), [&](auto put) {
    auto at = [&](int64_t j, int64_t i, double v) { put(j * p.mel_bins + i, v); };
    for (int64_t i = 0; i < p.mel_bins; ++i) {
      const int64_t lo = bin(i), mid = std::max(lo, bin(i + 1)), hi = std::max(mid, bin(i + 2));
      if (mid == lo) {
        at(mid, i, 1);
      } else {
        for (int64_t j = lo; j <= mid; ++j)
          at(j, i, static_cast<double>(j - lo) / static_cast<double>(mid - lo));
      }
      for (int64_t j = mid; j < hi; ++j)
        at(j, i, static_cast<double>(hi - j) / static_cast<double>(hi - mid));
    }
  });
}

}  // namespace

void add_misc_signal_ops(std::vector<OpDef>& ops) {
  ops.push_back({"HannWindow", "", 17, infer_window, compute_window<0>});
  ops.push_back({"HammingWindow", "", 17, infer_window, compute_window<1>});
  ops.push_back({"BlackmanWindow", "", 17, infer_window, compute_window<2>});
  ops.push_back({"DFT", "", 17, infer_dft, compute_dft});
  ops.push_back({"STFT", "", 17, infer_stft, compute_stft});
  ops.push_back({"MelWeightMatrix", "", 17, infer_mel, compute_mel});
}

}  // namespace lithe::ops
