// Body of the f32 Softmax / LogSoftmax of one contiguous row (the including level defines its
// native vector VN; see vec.hpp). The reference's formula: the max, e^(x - max) summed in
// double, then e / sum (or x - max - log(sum)); e^x is vexp (a few ulp from std::exp), and
// the sum's order differs from the reference's (lanes in double, then across them), so
// values agree within a few ulp rather than bitwise. One row's values do not depend on
// anything but that row: the threads' split of the rows never changes them.
#pragma once
#include "kernels/body/vec.hpp"

namespace softmax_body {

using namespace ::lithe::kernels;
using namespace body;

// Half a native vector of floats, and as doubles (one native register of doubles).
typedef float VH __attribute__((vector_size(kVecWidth * 2)));
typedef double VD __attribute__((vector_size(kVecWidth * 4)));

// Adds the lanes of e, in double, to lo (its first half) and hi (its second).
inline void add_double(VN e, VD& lo, VD& hi) {
  VH a, b;
  std::memcpy(&a, &e, sizeof(VH));
  std::memcpy(&b, reinterpret_cast<const char*>(&e) + sizeof(VH), sizeof(VH));
  lo += __builtin_convertvector(a, VD);
  hi += __builtin_convertvector(b, VD);
}

// x and y may be the same row (every x is read before its y is written).
template <bool LOG>
inline void softmax_row(const float* x, float* y, int64_t n) {
  constexpr int64_t W = kVecWidth;
  float mx = x[0];
  int64_t k = 0;
  if (n >= W) {
    VN m = loadv<VN>(x);
    for (k = W; k + W <= n; k += W) m = vmax(m, loadv<VN>(x + k));
    for (int i = 0; i < W; ++i) mx = m[i] > mx ? m[i] : mx;
  }
  for (; k < n; ++k) mx = x[k] > mx ? x[k] : mx;
  const VN vm = splat<VN>(mx);
  VD lo{}, hi{};
  for (k = 0; k + W <= n; k += W) {
    const VN e = vexp(loadv<VN>(x + k) - vm);
    add_double(e, lo, hi);
    if (!LOG) storev(y + k, e);
  }
  double sum = 0;
  for (int i = 0; i < W / 2; ++i) sum += lo[i] + hi[i];
  if (k < n) {  // the tail through one padded vector (the lanes past the row are not used)
    float t[W] = {};
    for (int64_t i = 0; k + i < n; ++i) t[i] = x[k + i];
    const VN e = vexp(loadv<VN>(t) - vm);
    for (int64_t i = 0; k + i < n; ++i) {
      sum += static_cast<double>(e[i]);
      if (!LOG) y[k + i] = e[i];
    }
  }
  if (LOG) {
    const float ls = static_cast<float>(std::log(sum));
    for (k = 0; k < n; ++k) y[k] = x[k] - mx - ls;
    return;
  }
  // e times 1 / sum rounded to float: within an ulp of the reference's e / sum.
  const float inv = static_cast<float>(1.0 / sum);
  const VN vi = splat<VN>(inv);
  for (k = 0; k + W <= n; k += W) storev(y + k, loadv<VN>(y + k) * vi);
  for (; k < n; ++k) y[k] = y[k] * inv;
}

inline void f32_softmax(const float* x, float* y, int64_t n, bool log) {
  if (log)
    softmax_row<true>(x, y, n);
  else
    softmax_row<false>(x, y, n);
}

}  // namespace softmax_body
