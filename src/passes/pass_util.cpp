#include "passes/pass_util.hpp"

#include <algorithm>

#include "ops/fused_internal.hpp"

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

bool is_unary_elementwise(const std::string& op) {
  static const char* kOps[] = {"Relu",        "Sigmoid",   "Tanh", "LeakyRelu", "Clip",
                               "HardSigmoid", "HardSwish", "Elu",  "Selu",      "Softplus",
                               "Exp",         "Neg",       "Abs",  "Sqrt",      "Erf",
                               "Identity",    "Softsign",  "Celu"};
  for (const char* o : kOps)
    if (op == o) return true;
  return false;
}

}  // namespace lithe::passes::util
