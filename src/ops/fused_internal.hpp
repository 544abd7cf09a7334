// The epilogue of the fused lithe-domain ops (Conv, ConvTranspose, Gemm, MatMul with an
// activation and an optional residual input): y = act(y + z), then optionally y * s + t by
// scalars (the learnable affine block PP-LCNet puts after each activation). The reference kernels
// in fused.cpp call apply_epilogue() after the base op; the optimized kernels call the same
// function on each finished output tile, so both paths round identically.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.hpp"

namespace lithe::ops::fused {

/// The activations a fused op can apply. The formulas match the reference kernels of the
/// ONNX ops (unary.cpp) expression for expression, so fusing never changes a float32 result.
enum class Activation {
  kNone,
  kRelu,
  kClip,
  kLeakyRelu,
  kHardSigmoid,
  kHardSwish,
  kSigmoid,
  kSiLU,
  kTanh
};

/// A parsed `activation` / `activation_params` / `activation_affine` triple.
struct Epilogue {
  Activation act = Activation::kNone;
  float p0 = 0, p1 = 0;  ///< Clip min/max, LeakyRelu alpha, HardSigmoid alpha/beta
  /// After the activation: y * scale + shift, rounded after each step as the Mul and the Add
  /// it replaces (`activation_affine` = [scale, shift]).
  bool affine = false;
  float scale = 1, shift = 0;
};

/// The attributes that carry a fused op's epilogue (all but the residual input).
inline constexpr const char* kEpilogueAttrs[] = {"activation", "activation_params",
                                                 "activation_affine"};

/// The attribute spelling of each activation ("" for none).
inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::kNone:
      return "";
    case Activation::kRelu:
      return "Relu";
    case Activation::kClip:
      return "Clip";
    case Activation::kLeakyRelu:
      return "LeakyRelu";
    case Activation::kHardSigmoid:
      return "HardSigmoid";
    case Activation::kHardSwish:
      return "HardSwish";
    case Activation::kSigmoid:
      return "Sigmoid";
    case Activation::kSiLU:
      return "SiLU";
    case Activation::kTanh:
      return "Tanh";
  }
  return "?";
}

/// Parses the attributes. Clip takes [min, max]; LeakyRelu [alpha] and HardSigmoid
/// [alpha, beta], or no params for the ONNX defaults; the others take none. `affine` is empty
/// or [scale, shift], finite, after an activation. Returns an empty string on success,
/// otherwise what is wrong.
inline std::string parse_epilogue(std::string_view name, const std::vector<float>& params,
                                  const std::vector<float>& affine, Epilogue* out) {
  static constexpr Activation kAll[] = {
      Activation::kNone,      Activation::kRelu,        Activation::kClip,
      Activation::kLeakyRelu, Activation::kHardSigmoid, Activation::kHardSwish,
      Activation::kSigmoid,   Activation::kSiLU,        Activation::kTanh};
  Epilogue e;
  bool found = false;
  for (Activation a : kAll)
    if (name == activation_name(a)) {
      e.act = a;
      found = true;
    }
  if (!found)
    return "activation '" + std::string(name) +
           "' is not one of Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, SiLU, Tanh";
  size_t want = 0;
  switch (e.act) {
    case Activation::kClip:
      want = 2;
      break;
    case Activation::kLeakyRelu:
      want = params.empty() ? 0 : 1;
      e.p0 = params.empty() ? 0.01f : params[0];
      break;
    case Activation::kHardSigmoid:
      want = params.empty() ? 0 : 2;
      e.p0 = params.empty() ? 0.2f : params[0];
      e.p1 = params.size() < 2 ? 0.5f : params[1];
      break;
    default:
      break;
  }
  if (params.size() != want)
    return "activation_params has " + std::to_string(params.size()) + " values, " +
           (e.act == Activation::kNone ? std::string("no activation") : activation_name(e.act)) +
           " takes " + std::to_string(want);
  if (e.act == Activation::kClip) {
    e.p0 = params[0];
    e.p1 = params[1];
    if (std::isnan(e.p0) || std::isnan(e.p1)) return "Clip bounds must not be NaN";
  }
  if (!affine.empty()) {
    if (affine.size() != 2)
      return "activation_affine has " + std::to_string(affine.size()) +
             " values, expected 2 (scale, shift)";
    if (e.act == Activation::kNone) return "activation_affine without an activation";
    if (!std::isfinite(affine[0]) || !std::isfinite(affine[1]))
      return "activation_affine values must be finite";
    e.affine = true;
    e.scale = affine[0];
    e.shift = affine[1];
  }
  if (out) *out = e;
  return {};
}

/// The activation alone in the compute type C (float for float32 and the 16-bit floats).
template <class C>
inline C activation_only(C x, const Epilogue& e) {
  switch (e.act) {
    case Activation::kNone:
      return x;
    case Activation::kRelu:
      return x > C(0) ? x : C(0);
    case Activation::kClip:
      // NaN passes through, as in Clip's reference kernel.
      if (x < C(e.p0)) x = C(e.p0);
      if (x > C(e.p1)) x = C(e.p1);
      return x;
    case Activation::kLeakyRelu:
      return x >= C(0) ? x : C(e.p0) * x;
    case Activation::kHardSigmoid:
      return std::max(C(0), std::min(C(1), C(e.p0) * x + C(e.p1)));
    case Activation::kHardSwish:
      return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
    case Activation::kSigmoid:
    case Activation::kSiLU: {
      // Both branches only ever take exp of a non-positive number.
      C s;
      if (x >= C(0)) {
        s = C(1) / (C(1) + std::exp(-x));
      } else {
        C ex = std::exp(x);
        s = ex / (C(1) + ex);
      }
      return e.act == Activation::kSiLU ? x * s : s;
    }
    case Activation::kTanh:
      return std::tanh(x);
  }
  return x;
}

/// The activation, then the affine map, in the compute type C.
template <class C>
inline C apply_activation(C x, const Epilogue& e) {
  x = activation_only(x, e);
  return e.affine ? x * C(e.scale) + C(e.shift) : x;
}

/// y[i] = act(y[i] + z[i]) for i < n; `z` may be null (no residual). T is the storage type;
/// the sum is rounded to T before the activation, as the unfused Add then activation would.
template <class T>
inline void apply_epilogue(T* y, int64_t n, const T* z, const Epilogue& e) {
  using C = compute_t<T>;
  if (!z && e.act == Activation::kNone) return;
  for (int64_t i = 0; i < n; ++i) {
    T v = z ? static_cast<T>(static_cast<C>(y[i]) + static_cast<C>(z[i])) : y[i];
    v = static_cast<T>(activation_only<C>(static_cast<C>(v), e));
    if (e.affine) {
      v = static_cast<T>(static_cast<C>(v) * C(e.scale));
      v = static_cast<T>(static_cast<C>(v) + C(e.shift));
    }
    y[i] = v;
  }
}

/// Index of the residual input Z of a fused op (after the base op's inputs), or -1 if the op
/// has no fused form.
inline int residual_index(std::string_view op) {
  if (op == "Conv" || op == "ConvTranspose" || op == "Gemm") return 3;
  if (op == "MatMul") return 2;
  return -1;
}

}  // namespace lithe::ops::fused
