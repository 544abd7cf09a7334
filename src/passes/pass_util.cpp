#include "passes/pass_util.hpp"

#include <algorithm>
#include <cstring>

#include "ops/fused_internal.hpp"
#include "ops/op.hpp"
#include "passes/pass.hpp"

namespace lithe::passes::util {

std::vector<char> values_read_by_subgraphs(const ir::Graph& g) {
  std::vector<char> reads(g.values.size(), 0);
  std::vector<std::string> names;
  ir::outer_names_read_by(g, names);
  for (const auto& nm : names) {
    int v = g.find_value(nm);
    if (v >= 0) reads[static_cast<size_t>(v)] = 1;
  }
  return reads;
}

bool type_known(const ir::Graph& g, int v) {
  if (v < 0) return false;
  const ir::TensorType& t = g.values[static_cast<size_t>(v)].type;
  return t.dtype != DType::kUndefined && t.fully_known();
}

bool epilogue_free(const ir::Node& n) {
  if (ops::fused::residual_index(n.op_type) < 0) return false;
  if (n.domain != "" && n.domain != "lithe") return false;
  if (n.outputs.size() != 1 || n.outputs[0] < 0) return false;
  if (n.domain == "lithe") {
    auto it = n.attrs.find("activation");
    if (it != n.attrs.end() &&
        (it->second.kind != ir::Attribute::Kind::kString || !it->second.s.empty()))
      return false;
  }
  return true;
}

bool same_type(const ir::Graph& g, int a, int b) {
  if (!type_known(g, a) || !type_known(g, b)) return false;
  const ir::TensorType& ta = g.values[static_cast<size_t>(a)].type;
  const ir::TensorType& tb = g.values[static_cast<size_t>(b)].type;
  return ta.dtype == tb.dtype && ta.dims == tb.dims;
}

bool unused(const ir::Graph& g, int v, const std::vector<char>& body_reads) {
  if (v < 0) return true;
  const ir::Value& val = g.values[static_cast<size_t>(v)];
  if (!val.consumers.empty()) return false;
  if (std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end()) return false;
  return static_cast<size_t>(v) >= body_reads.size() || !body_reads[static_cast<size_t>(v)];
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.at_double(i);
  return v;
}

Tensor from_doubles(const std::vector<double>& v, DType dtype, const Shape& shape) {
  Tensor d(DType::kFloat64, shape);
  if (static_cast<size_t>(d.numel()) != v.size())
    fail_runtime("from_doubles: ", v.size(), " values for shape ", shape_str(shape));
  std::copy(v.begin(), v.end(), d.data<double>());
  return dtype == DType::kFloat64 ? d : d.cast(dtype);
}

bool all_equal(const Tensor& t, double x) {
  if (t.numel() == 0) return false;
  if (!(is_float(t.dtype()) || is_int(t.dtype()) || t.dtype() == DType::kBool)) return false;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.at_double(i) != x) return false;
  return true;
}

bool is_shuffle_deconv(const ir::Graph& g, const ir::Node& n) {
  if (n.op_type != "ConvTranspose" || (!n.domain.empty() && n.domain != "lithe")) return false;
  if (n.inputs.size() < 2 || n.inputs.size() > 3 || n.outputs.size() != 1) return false;  // Z: 3
  if (n.inputs[0] < 0 || n.outputs[0] < 0) return false;
  const ir::TensorType& xt = g.values[static_cast<size_t>(n.inputs[0])].type;
  const ir::TensorType& yt = g.values[static_cast<size_t>(n.outputs[0])].type;
  if (!xt.fully_known() || !yt.fully_known() || xt.dims.size() != 4) return false;
  const Tensor* w = constant_of(g, n.inputs[1]);
  if (!w || w->rank() != 4 || w->dtype() != xt.dtype) return false;
  const Shape& ws = w->shape();
  const int64_t kh = ws[2], kw = ws[3], m = ws[1];
  if (ws[0] != xt.dims[1] || kh < 1 || kw < 1) return false;
  if (n.inputs.size() == 3 && n.inputs[2] >= 0) {
    const Tensor* b = constant_of(g, n.inputs[2]);
    if (!b || b->dtype() != xt.dtype || b->shape() != Shape{m}) return false;
  }
  const ops::NodeAttrs a(n);
  auto all = [&](const char* name, int64_t v) {
    for (int64_t x : a.attr_ints(name, {}))
      if (x != v) return false;
    return true;
  };
  if (a.attr_int("group", 1) != 1 || !all("dilations", 1) || !all("pads", 0) ||
      !all("output_padding", 0) || a.attr_ints("strides", {1, 1}) != std::vector<int64_t>{kh, kw})
    return false;
  if (a.has_attr("kernel_shape") && a.attr_ints("kernel_shape") != std::vector<int64_t>{kh, kw})
    return false;
  // Pads from auto_pad or output_shape are zero exactly when the output is input x stride
  // (inference computed that size from stride * (in - 1) + kernel, so the products fit).
  return yt.dims == Shape{xt.dims[0], m, xt.dims[2] * kh, xt.dims[3] * kw};
}

Tensor shuffle_deconv_weights(const Tensor& w) {
  const Shape& ws = w.shape();
  const int64_t c = ws[0], m = ws[1], kk = ws[2] * ws[3];
  Tensor out(w.dtype(), {kk * m, c, 1, 1});
  const size_t es = dtype_size(w.dtype());
  const auto* src = static_cast<const unsigned char*>(w.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t mi = 0; mi < m; ++mi)
      for (int64_t k = 0; k < kk; ++k)
        std::memcpy(dst + static_cast<size_t>((k * m + mi) * c + ci) * es,
                    src + static_cast<size_t>((ci * m + mi) * kk + k) * es, es);
  return out;
}

Tensor shuffle_deconv_bias(const Tensor& b, int64_t taps) {
  Tensor out(b.dtype(), {taps * b.numel()});
  for (int64_t k = 0; k < taps; ++k)
    std::memcpy(static_cast<unsigned char*>(out.raw()) + static_cast<size_t>(k) * b.nbytes(),
                b.raw(), b.nbytes());
  return out;
}

}  // namespace lithe::passes::util
