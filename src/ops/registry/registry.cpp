#include <algorithm>

#include "ops/families.hpp"

namespace lithe::ops {

const std::vector<OpDef>& all_ops() {
  static const std::vector<OpDef> ops = [] {
    std::vector<OpDef> v;
#define LITHE_ADD_FAMILY(f) add_##f##_ops(v);
    LITHE_OP_FAMILIES(LITHE_ADD_FAMILY)
#undef LITHE_ADD_FAMILY
    std::sort(v.begin(), v.end(), [](const OpDef& a, const OpDef& b) {
      return a.domain != b.domain ? a.domain < b.domain : a.name < b.name;
    });
    return v;
  }();
  return ops;
}

static std::string_view canonical_domain(std::string_view d) {
  return d == "ai.onnx" ? std::string_view() : d;
}

const OpDef* find_op(std::string_view domain, std::string_view name) {
  domain = canonical_domain(domain);
  for (const OpDef& op : all_ops())
    if (op.name == name && op.domain == domain) return &op;
  return nullptr;
}

const OpDef& require_op(const ir::Node& node) {
  const OpDef* op = find_op(node.domain, node.op_type);
  std::string dom = node.domain.empty() ? "ai.onnx" : node.domain;
  if (!op)
    fail(node.label(), ": unsupported operator ", node.op_type, " (domain ", dom, ", opset ",
         node.opset, ")");
  if (node.opset < op->since)
    fail(node.label(), ": operator ", node.op_type, " at opset ", node.opset,
         " is not supported (lithe implements it from opset ", op->since, ")");
  return *op;
}

// ---- NodeAttrs ----

const ir::Attribute* NodeAttrs::attr(const std::string& name) const {
  auto it = node_.attrs.find(name);
  return it == node_.attrs.end() ? nullptr : &it->second;
}

const ir::Attribute& NodeAttrs::get(const std::string& name, ir::Attribute::Kind kind) const {
  const ir::Attribute* a = attr(name);
  if (!a) fail("missing required attribute '", name, "'");
  if (a->kind != kind)
    fail("attribute '", name, "' should be ", ir::attr_kind_name(kind), ", got ",
         ir::attr_kind_name(a->kind));
  return *a;
}

int64_t NodeAttrs::attr_int(const std::string& n) const { return get(n, ir::Attribute::Kind::kInt).i; }
int64_t NodeAttrs::attr_int(const std::string& n, int64_t def) const {
  return has_attr(n) ? attr_int(n) : def;
}
float NodeAttrs::attr_float(const std::string& n) const {
  return get(n, ir::Attribute::Kind::kFloat).f;
}
float NodeAttrs::attr_float(const std::string& n, float def) const {
  return has_attr(n) ? attr_float(n) : def;
}
std::string NodeAttrs::attr_string(const std::string& n) const {
  return get(n, ir::Attribute::Kind::kString).s;
}
std::string NodeAttrs::attr_string(const std::string& n, const std::string& def) const {
  return has_attr(n) ? attr_string(n) : def;
}
std::vector<int64_t> NodeAttrs::attr_ints(const std::string& n) const {
  return get(n, ir::Attribute::Kind::kInts).ints;
}
std::vector<int64_t> NodeAttrs::attr_ints(const std::string& n, std::vector<int64_t> def) const {
  return has_attr(n) ? attr_ints(n) : def;
}
std::vector<float> NodeAttrs::attr_floats(const std::string& n) const {
  return get(n, ir::Attribute::Kind::kFloats).floats;
}
std::vector<float> NodeAttrs::attr_floats(const std::string& n, std::vector<float> def) const {
  return has_attr(n) ? attr_floats(n) : def;
}
std::vector<std::string> NodeAttrs::attr_strings(const std::string& n) const {
  return get(n, ir::Attribute::Kind::kStrings).strings;
}
const Tensor& NodeAttrs::attr_tensor(const std::string& n) const {
  return get(n, ir::Attribute::Kind::kTensor).t;
}

// ---- InferContext ----

InferContext::InferContext(const ir::Node& node, std::vector<const ir::TensorType*> in_types,
                           std::vector<const Tensor*> in_values, size_t num_outputs)
    : NodeAttrs(node),
      in_types_(std::move(in_types)),
      in_values_(std::move(in_values)),
      out_(num_outputs),
      out_present_(num_outputs, 1) {
  for (size_t i = 0; i < num_outputs && i < node.outputs.size(); ++i)
    out_present_[i] = node.outputs[i] >= 0;
}

DType InferContext::input_dtype(size_t i) const {
  if (!has_input(i)) fail("input ", i, " is required but missing");
  return in_types_[i]->dtype;
}

const Shape& InferContext::input_shape(size_t i) const {
  if (!has_input(i)) fail("input ", i, " is required but missing");
  if (!in_types_[i]->fully_known()) throw InferUnknown{};
  return in_types_[i]->dims;
}

const Tensor& InferContext::input_value(size_t i) const {
  if (!has_input(i)) fail("input ", i, " is required but missing");
  if (!in_values_[i]) throw InferUnknown{};
  return *in_values_[i];
}

void InferContext::set_output(size_t i, DType dtype, Shape shape) {
  if (i >= out_.size()) return;  // optional output the model does not request
  checked_numel(shape, str_cat("output ", i));
  out_[i].dtype = dtype;
  out_[i].has_shape = true;
  out_[i].dims = std::move(shape);
}

void InferContext::set_output_unknown(size_t i, DType dtype) {
  if (i >= out_.size()) return;
  out_[i].dtype = dtype;
  out_[i].has_shape = false;
  out_[i].dims.clear();
}

void InferContext::expect_inputs(size_t min, size_t max) const {
  if (num_inputs() < min || num_inputs() > max) {
    if (min == max) fail("expected ", min, " inputs, got ", num_inputs());
    fail("expected ", min, " to ", max, " inputs, got ", num_inputs());
  }
  for (size_t i = 0; i < min; ++i)
    if (!has_input(i)) fail("input ", i, " is required but missing");
}

// ---- ComputeContext ----

const Tensor& ComputeContext::input(size_t i) const {
  if (!has_input(i)) fail("input ", i, " is required but missing");
  return *in_[i];
}

Tensor& ComputeContext::output(size_t i) {
  if (!has_output(i)) fail_runtime(node().label(), ": output ", i, " is not requested");
  return *out_[i];
}

void ComputeContext::set_output(size_t i, Tensor t) {
  if (has_output(i)) *out_[i] = std::move(t);
}

bool is_unary_elementwise(std::string_view op) {
  static const char* kOps[] = {"Relu",        "Sigmoid",   "Tanh", "LeakyRelu", "Clip",
                               "HardSigmoid", "HardSwish", "Elu",  "Selu",      "Softplus",
                               "Exp",         "Neg",       "Abs",  "Sqrt",      "Erf",
                               "Identity",    "Softsign",  "Celu"};
  for (const char* o : kOps)
    if (op == o) return true;
  return false;
}

}  // namespace lithe::ops
