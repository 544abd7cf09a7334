// A ConvNhwc case and its one-node graph, shared by the fast-kernel and quantization tests.
#pragma once
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "graph_test_util.hpp"

namespace lithe::test {

inline Tensor random_tensor(Shape shape, unsigned seed) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

struct ConvCase {
  int64_t n = 1, c = 4, h = 5, w = 5, m = 4, kh = 3, kw = 3;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, group = 1;
  std::vector<int64_t> pads = {0, 0, 0, 0};  // top, left, bottom, right
  bool bias = true, residual = false;
  std::string act;
  std::vector<float> params;
  std::vector<float> affine;  ///< activation_affine: [scale, shift] after the activation

  std::string str() const {
    std::ostringstream o;
    o << "ConvNhwc n" << n << " c" << c << " h" << h << " w" << w << " m" << m << " k" << kh << "x"
      << kw << " s" << sh << "x" << sw << " d" << dh << "x" << dw << " group " << group << " pads ["
      << pads[0] << "," << pads[1] << "," << pads[2] << "," << pads[3] << "] bias " << bias
      << " residual " << residual << " act '" << act << "'";
    if (!params.empty()) {
      o << " params";
      for (float p : params) o << " " << p;
    }
    if (!affine.empty()) o << " affine " << affine[0] << " " << affine[1];
    return o.str();
  }
};

inline int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
  return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1;
}

inline std::shared_ptr<ir::Graph> conv_graph(const ConvCase& k, unsigned seed) {
  GraphBuilder b;
  b.input("x", {k.n, k.h, k.w, k.c});
  b.constant_tensor("w", random_tensor({k.m, k.c / k.group, k.kh, k.kw}, seed));
  std::vector<std::string> ins = {"x", "w", ""};
  if (k.bias) {
    b.constant_tensor("b", random_tensor({k.m}, seed + 1));
    ins[2] = "b";
  }
  if (k.residual) {
    const int64_t oh = out_dim(k.h, k.kh, k.sh, k.dh, k.pads[0], k.pads[2]);
    const int64_t ow = out_dim(k.w, k.kw, k.sw, k.dw, k.pads[1], k.pads[3]);
    b.input("z", {k.n, oh, ow, k.m});
    ins.push_back("z");
  }
  if (!k.bias && !k.residual) ins.pop_back();
  ir::Node& n = b.node("ConvNhwc", ins, {"y"});
  n.domain = "lithe";
  n.opset = 1;
  n.attrs["group"] = GraphBuilder::i(k.group);
  n.attrs["strides"] = GraphBuilder::ints({k.sh, k.sw});
  n.attrs["dilations"] = GraphBuilder::ints({k.dh, k.dw});
  n.attrs["pads"] = GraphBuilder::ints(k.pads);
  if (!k.act.empty()) n.attrs["activation"] = GraphBuilder::s(k.act);
  if (!k.params.empty()) n.attrs["activation_params"] = test::attr_fs(k.params);
  if (!k.affine.empty()) n.attrs["activation_affine"] = test::attr_fs(k.affine);
  b.output("y");
  return b.build();
}

}  // namespace lithe::test
