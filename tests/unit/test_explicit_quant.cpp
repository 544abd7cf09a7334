// Explicit quantization (builder/explicit_quant.cpp): QDQ models (as ONNX Runtime's quantizer
// writes them: Q -> DQ on every activation, int8 per-channel weights and int32 biases behind
// a DQ) and QLinearConv / QLinearMatMul models, built by build_model_bytes at the default
// precision, run as INT8 (QConvNhwc) from the model's own scales. Outputs are compared with
// the reference executor running the QDQ model as written (fake quantization in fp32): at
// most one quantization step apart (the INT8 conv's fixed-point requantization and the fused
// activation round once where the model rounds twice), and few elements apart at all.
// Hostile parameters are one-line errors naming the node; forms lithe does not take as INT8
// stay as ops and still compute the model's values.
#include <cmath>
#include <map>
#include <set>

#include "builder/build.hpp"
#include "builder/explicit_quant.hpp"
#include "fast_test_util.hpp"
#include "frontend/onnx/importer.hpp"
#include "model_builder.hpp"

namespace lithe {
namespace {

using test::count_any_domain;

using ::onnx::ModelProto;
using ::onnx::NodeProto;
using ::onnx::TensorProto;

void set_ints(NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void set_int(NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(v);
}

// An int8 / uint8 / int32 initializer (values in int32_data, as ONNX stores them).
void add_int_init(ModelProto& m, const std::string& name, int elem, const std::vector<int64_t>& dims,
                  const std::vector<int32_t>& vals) {
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (int64_t d : dims) t->add_dims(d);
  for (int32_t v : vals) t->add_int32_data(v);
}

std::vector<float> seeded(size_t n, unsigned seed, float amp) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

NodeProto* conv(ModelProto& m, const std::string& x, const std::string& y, const std::string& name,
                int64_t cin, int64_t cout, unsigned seed) {
  test::add_init(m, name + ".w", {cout, cin, 3, 3}, seeded(static_cast<size_t>(cout * cin * 9), seed, 0.4f));
  test::add_init(m, name + ".b", {cout}, seeded(static_cast<size_t>(cout), seed + 1, 0.2f));
  NodeProto* n = test::add_node(m, "Conv", {x, name + ".w", name + ".b"}, {y}, name);
  set_ints(n, "pads", {1, 1, 1, 1});
  set_ints(n, "kernel_shape", {3, 3});
  return n;
}

// Conv -> Relu -> MaxPool -> Conv -> Relu -> Flatten -> Gemm (the fashion-MNIST CNN's shape).
ModelProto chain_model() {
  auto m = test::make_model(13);
  test::add_io(m.mutable_graph()->add_input(), "x", TensorProto::FLOAT, {1, 3, 10, 10});
  test::add_io(m.mutable_graph()->add_output(), "y", TensorProto::FLOAT, {1, 10});
  conv(m, "x", "c1", "conv1", 3, 8, 1);
  test::add_node(m, "Relu", {"c1"}, {"r1"}, "relu1");
  NodeProto* p = test::add_node(m, "MaxPool", {"r1"}, {"p1"}, "pool1");
  set_ints(p, "kernel_shape", {2, 2});
  set_ints(p, "strides", {2, 2});
  conv(m, "p1", "c2", "conv2", 8, 12, 3);
  test::add_node(m, "Relu", {"c2"}, {"r2"}, "relu2");
  test::add_node(m, "Flatten", {"r2"}, {"f"}, "flatten");
  test::add_init(m, "fc.w", {10, 300}, seeded(3000, 5, 0.1f));
  test::add_init(m, "fc.b", {10}, seeded(10, 6, 0.1f));
  set_int(test::add_node(m, "Gemm", {"f", "fc.w", "fc.b"}, {"y"}, "fc"), "transB", 1);
  return m;
}

// Conv -> Relu -> Conv, Add of the first Relu (a residual), Relu.
ModelProto residual_model() {
  auto m = test::make_model(13);
  test::add_io(m.mutable_graph()->add_input(), "x", TensorProto::FLOAT, {1, 8, 6, 6});
  test::add_io(m.mutable_graph()->add_output(), "y", TensorProto::FLOAT, {1, 8, 6, 6});
  conv(m, "x", "c1", "conv1", 8, 8, 11);
  test::add_node(m, "Relu", {"c1"}, {"a"}, "relu1");
  conv(m, "a", "c2", "conv2", 8, 8, 13);
  test::add_node(m, "Add", {"c2", "a"}, {"s"}, "add");
  test::add_node(m, "Relu", {"s"}, {"y"}, "relu2");
  return m;
}

std::shared_ptr<ir::Graph> import(const ModelProto& m) {
  return onnx::import_model_bytes(m.SerializeAsString(), "", "test model");
}

// Every non-constant float value's [min, max] (widened to contain 0) over seeded inputs.
std::map<std::string, std::pair<float, float>> ranges(const ModelProto& m, int samples = 4) {
  auto g = import(m);
  std::vector<int> outs;
  for (size_t v = 0; v < g->values.size(); ++v)
    if (!g->values[v].constant && g->values[v].type.dtype == DType::kFloat32) outs.push_back(static_cast<int>(v));
  g->outputs = outs;
  std::map<std::string, std::pair<float, float>> r;
  for (int s = 0; s < samples; ++s) {
    const auto got = test::run_graph(g, test::seeded_inputs(*g, 100u + static_cast<unsigned>(s)));
    for (size_t k = 0; k < outs.size(); ++k) {
      auto& [lo, hi] = r[g->values[static_cast<size_t>(outs[k])].name];
      for (int64_t i = 0; i < got[k].numel(); ++i) {
        lo = std::min(lo, got[k].data<float>()[i]);
        hi = std::max(hi, got[k].data<float>()[i]);
      }
    }
  }
  return r;
}

struct Params {
  float scale;
  int zp;  // in the activation type's range
};

Params act_params(std::pair<float, float> r, bool int8) {
  const float scale = r.second > r.first ? (r.second - r.first) / 255.f : 1.f;
  const int qmin = int8 ? -128 : 0;
  const int zp = static_cast<int>(std::clamp(std::nearbyint(double(qmin) - double(r.first) / scale), double(qmin), double(qmin + 255)));
  return {scale, zp};
}

struct QdqOptions {
  bool int8_activations = false;
  std::set<std::string> skip;  // activations left without Q/DQ
  float weight_margin = 1.f;   // weight scales max|w| / 127 times this (codes within +-127)
};

// As ONNX Runtime's quantizer: a Conv / Gemm output read only by a Relu gets no Q/DQ (the
// Relu's output carries the range; the INT8 conv applies the Relu before rounding).
std::set<std::string> fused_relu_inputs(const ModelProto& m) {
  std::map<std::string, int> readers;
  std::map<std::string, std::string> producer;
  for (const auto& n : m.graph().node()) {
    for (const auto& i : n.input()) ++readers[i];
    for (const auto& o : n.output()) producer[o] = n.op_type();
  }
  std::set<std::string> out;
  for (const auto& n : m.graph().node())
    if (n.op_type() == "Relu" && readers[n.input(0)] == 1 &&
        (producer[n.input(0)] == "Conv" || producer[n.input(0)] == "Gemm"))
      out.insert(n.input(0));
  return out;
}

// The model in ONNX Runtime's QDQ format (the C++ twin of scripts/make_qdq_model.py).
// `scales` receives every activation's parameters.
ModelProto qdq_model(const ModelProto& fm, const QdqOptions& o = {},
                     std::map<std::string, Params>* scales = nullptr) {
  const auto r = ranges(fm);
  std::set<std::string> skip = fused_relu_inputs(fm);
  skip.insert(o.skip.begin(), o.skip.end());
  const int qt = o.int8_activations ? TensorProto::INT8 : TensorProto::UINT8;
  std::map<std::string, ::onnx::TensorProto> inits;
  for (const auto& t : fm.graph().initializer()) inits[t.name()] = t;
  std::set<std::string> outputs;
  for (const auto& vo : fm.graph().output()) outputs.insert(vo.name());
  ModelProto m = fm;
  m.mutable_graph()->clear_node();
  m.mutable_graph()->clear_initializer();
  std::map<std::string, Params> p;
  std::map<std::string, std::string> read_as;  // activation -> its DQ output
  auto qdq = [&](const std::string& t) {
    if (skip.count(t) || !r.count(t)) return;
    const Params a = p.count(t) ? p[t] : (p[t] = act_params(r.at(t), o.int8_activations));
    test::add_init(m, t + ".s", {}, {a.scale});
    add_int_init(m, t + ".z", qt, {}, {a.zp});
    const std::string src = outputs.count(t) ? t + ".f" : t;
    test::add_node(m, "QuantizeLinear", {src, t + ".s", t + ".z"}, {t + ".q"}, t + "_Q");
    test::add_node(m, "DequantizeLinear", {t + ".q", t + ".s", t + ".z"}, {outputs.count(t) ? t : t + ".dq"},
                   t + "_DQ");
    read_as[t] = t + ".dq";
  };
  for (const auto& in : fm.graph().input()) qdq(in.name());
  for (const auto& fn : fm.graph().node()) {
    NodeProto n = fn;
    for (int i = 0; i < n.input_size(); ++i)
      if (read_as.count(n.input(i))) n.set_input(i, read_as[n.input(i)]);
    // Weights quantize with the input's scale known (the bias's scale is x_scale * w_scale).
    const bool weighted = (n.op_type() == "Conv" || n.op_type() == "Gemm") && inits.count(fn.input(1)) &&
                          p.count(fn.input(0));
    if (weighted) {
      // Symmetric int8 weights per output channel (axis 0: Conv, Gemm with transB = 1).
      const TensorProto& wt = inits[fn.input(1)];
      const int64_t ch = wt.dims(0), per = wt.float_data_size() / ch;
      std::vector<int32_t> q;
      std::vector<float> ws(static_cast<size_t>(ch));
      for (int64_t c = 0; c < ch; ++c) {
        float mx = 0;
        for (int64_t k = 0; k < per; ++k) mx = std::max(mx, std::fabs(wt.float_data(static_cast<int>(c * per + k))));
        ws[static_cast<size_t>(c)] = mx > 0 ? mx / 127.f * o.weight_margin : 1.f;
        for (int64_t k = 0; k < per; ++k)
          q.push_back(static_cast<int32_t>(std::nearbyint(wt.float_data(static_cast<int>(c * per + k)) / ws[static_cast<size_t>(c)])));
      }
      const std::string w = fn.input(1);
      add_int_init(m, w + ".q", TensorProto::INT8, {wt.dims().begin(), wt.dims().end()}, q);
      test::add_init(m, w + ".s", {ch}, ws);
      add_int_init(m, w + ".z", TensorProto::INT8, {ch}, std::vector<int32_t>(static_cast<size_t>(ch), 0));
      set_int(test::add_node(m, "DequantizeLinear", {w + ".q", w + ".s", w + ".z"}, {w + ".dq"}, w + "_DQ"),
              "axis", 0);
      n.set_input(1, w + ".dq");
      if (n.input_size() > 2 && inits.count(fn.input(2))) {
        const TensorProto& bt = inits[fn.input(2)];
        const std::string b = fn.input(2);
        const float xs = p.at(fn.input(0)).scale;
        std::vector<float> bs(static_cast<size_t>(ch));
        std::vector<int32_t> bq;
        for (int64_t c = 0; c < ch; ++c) {
          bs[static_cast<size_t>(c)] = xs * ws[static_cast<size_t>(c)];
          bq.push_back(static_cast<int32_t>(std::nearbyint(double(bt.float_data(static_cast<int>(c))) / bs[static_cast<size_t>(c)])));
        }
        add_int_init(m, b + ".q", TensorProto::INT32, {ch}, bq);
        test::add_init(m, b + ".s", {ch}, bs);
        set_int(test::add_node(m, "DequantizeLinear", {b + ".q", b + ".s"}, {b + ".dq"}, b + "_DQ"), "axis", 0);
        n.set_input(2, b + ".dq");
      }
    }
    for (const auto& [name, t] : inits)
      if (!weighted || (name != fn.input(1) && (fn.input_size() < 3 || name != fn.input(2))))
        for (const auto& in : fn.input())
          if (in == name) {
            bool have = false;
            for (const auto& e : m.graph().initializer()) have |= e.name() == name;
            if (!have) *m.mutable_graph()->add_initializer() = t;
          }
    for (int i = 0; i < n.output_size(); ++i)
      if (outputs.count(n.output(i))) n.set_output(i, n.output(i) + ".f");
    *m.mutable_graph()->add_node() = n;
    // Max pooling and data movement keep their input's parameters (as ONNX Runtime's).
    if ((fn.op_type() == "MaxPool" || fn.op_type() == "Flatten") && p.count(fn.input(0)))
      p[fn.output(0)] = p[fn.input(0)];
    for (const auto& out : fn.output()) qdq(out);
  }
  if (scales) *scales = p;
  return m;
}

build::BuildResult build_qdq(const ModelProto& m, build::BuildOptions o = {}) {
  return build::build_model_bytes(m.SerializeAsString(), "", "qdq test model", o);
}

std::vector<Tensor> run_engine(const build::BuildResult& r, const std::vector<Tensor>& ins) {
  auto prog = std::make_shared<runtime::Program>(r.contents.graph, r.contents.plan, kernels::active_isa());
  runtime::Session s(prog, 1);
  return test::run_session(s, ins);
}

// The built engine against the reference executor on the QDQ model as written, over a few
// seeded inputs: each element within one step of `step`; returns how many differ at all.
int64_t compare_to_reference(const ModelProto& qdq, const build::BuildResult& r, float step,
                             int64_t* total = nullptr) {
  auto ref = import(qdq);
  int64_t differ = 0, n = 0;
  for (unsigned seed : {7u, 8u, 9u}) {
    const auto ins = test::seeded_inputs(*ref, seed);
    const auto want = test::run_graph(ref, ins);
    const auto got = run_engine(r, ins);
    EXPECT_EQ(want.size(), got.size());
    for (size_t k = 0; k < want.size() && k < got.size(); ++k) {
      EXPECT_EQ(want[k].shape(), got[k].shape());
      EXPECT_EQ(want[k].dtype(), got[k].dtype());
      if (want[k].shape() != got[k].shape() || want[k].dtype() != got[k].dtype()) continue;
      for (int64_t i = 0; i < want[k].numel(); ++i) {
        const double d = std::fabs(want[k].at_double(i) - got[k].at_double(i));
        // The uint8 / int8 outputs of QLinear models are in steps of 1.
        const double unit = want[k].dtype() == DType::kFloat32 ? step : 1.0;
        EXPECT_LE(d, unit * 1.0001) << "output " << k << " element " << i << " seed " << seed;
        differ += d > unit * 1e-3;
        ++n;
      }
    }
  }
  if (total) *total = n;
  std::printf("[ explicit ] %s: %lld of %lld output elements one step from the reference\n",
              ::testing::UnitTest::GetInstance()->current_test_info()->name(),
              static_cast<long long>(differ), static_cast<long long>(n));
  return differ;
}

std::string report(const build::BuildResult& r) { return r.contents.report_json; }

TEST(ExplicitQuant, ConvReluPoolGemmRunsInt8FromTheModelsScales) {
  for (bool int8_acts : {false, true}) {
    SCOPED_TRACE(int8_acts ? "int8 activations" : "uint8 activations");
    std::map<std::string, Params> p;
    QdqOptions o;
    o.int8_activations = int8_acts;
    o.weight_margin = 1.25f;  // scales the quantizer would not choose itself
    const ModelProto q = qdq_model(chain_model(), o, &p);
    const build::BuildResult r = build_qdq(q);
    const ir::Graph& g = *r.contents.graph;
    EXPECT_EQ(count_any_domain(g, "QConvNhwc"), 3);  // conv1, conv2, fc
    // Each INT8 layer computes with the model's int8 codes and weight scales.
    std::map<std::string, const TensorProto*> init;
    for (const auto& t : q.graph().initializer()) init[t.name()] = &t;
    for (const ir::Node& n : g.nodes) {
      if (n.op_type != "QConvNhwc") continue;
      SCOPED_TRACE(n.name);
      const std::string w = n.name == "fc" ? "fc.w" : n.name + ".w";
      ASSERT_TRUE(init.count(w + ".q") && init.count(w + ".s"));
      const Tensor& codes = *g.values[static_cast<size_t>(n.inputs[3])].constant;
      const Tensor& scales = *g.values[static_cast<size_t>(n.inputs[4])].constant;
      ASSERT_EQ(codes.numel(), init[w + ".q"]->int32_data_size());
      ASSERT_EQ(scales.numel(), init[w + ".s"]->float_data_size());
      for (int64_t i = 0; i < scales.numel(); ++i)
        EXPECT_EQ(scales.data<float>()[i], init[w + ".s"]->float_data(static_cast<int>(i))) << i;
      for (int64_t i = 0; i < codes.numel(); ++i)
        ASSERT_EQ(codes.data<int8_t>()[i], init[w + ".q"]->int32_data(static_cast<int>(i))) << i;
    }
    EXPECT_EQ(count_any_domain(g, "MaxPoolNhwc"), 1);
    // The first conv quantizes x with the model's own parameters.
    bool found = false;
    for (const ir::Node& n : g.nodes) {
      if (n.op_type != "QuantizeLinear" || g.values[static_cast<size_t>(n.inputs[0])].name.rfind("x", 0) != 0)
        continue;
      found = true;
      EXPECT_EQ(g.values[static_cast<size_t>(n.inputs[1])].constant->data<float>()[0], p.at("x").scale);
      EXPECT_EQ(g.values[static_cast<size_t>(n.inputs[2])].constant->data<uint8_t>()[0],
                p.at("x").zp + (int8_acts ? 128 : 0));
    }
    EXPECT_TRUE(found);
    EXPECT_NE(report(r).find("\"precision\":\"int8\""), std::string::npos) << report(r);
    int64_t total = 0;
    const int64_t differ = compare_to_reference(q, r, p.at("y").scale, &total);
    // Requantization rounds the fused Relu's output once where the model rounds the conv's
    // output and then the Relu's: a few elements one step apart.
    EXPECT_LE(differ, total / 100) << differ << " of " << total << " elements differ by one step";
  }
}

TEST(ExplicitQuant, ResidualAddFusesIntoTheInt8Conv) {
  // TensorRT's placement for a residual: Q/DQ on the residual input, none on the conv output
  // that the Add reads, nor on the Add's output that the Relu reads.
  std::map<std::string, Params> p;
  QdqOptions o;
  o.skip = {"c2", "s"};
  const ModelProto q = qdq_model(residual_model(), o, &p);
  const build::BuildResult r = build_qdq(q);
  const ir::Graph& g = *r.contents.graph;
  ASSERT_EQ(count_any_domain(g, "QConvNhwc"), 2);
  int with_residual = 0;
  for (const ir::Node& n : g.nodes)
    if (n.op_type == "QConvNhwc") with_residual += n.inputs.size() > 8;
  EXPECT_EQ(with_residual, 1);
  EXPECT_EQ(count_any_domain(g, "Add"), 0);
  int64_t total = 0;
  const int64_t differ = compare_to_reference(q, r, p.at("y").scale, &total);
  EXPECT_LE(differ, total / 100) << differ << " of " << total;
}

// x -> Q -> QLinearConv -> DQ (and the same with QLinearMatMul): the QLinear op is lowered to
// DQ -> Conv / Gemm -> Q and runs as QConvNhwc.
ModelProto qlinear_model(bool matmul, float* y_scale) {
  auto fm = test::make_model(13);
  const Shape xs = matmul ? Shape{3, 16} : Shape{1, 4, 7, 7};
  test::add_io(fm.mutable_graph()->add_input(), "x", TensorProto::FLOAT, xs);
  const int64_t out = matmul ? 5 : 6;
  const Shape ys = matmul ? Shape{3, out} : Shape{1, out, 7, 7};
  test::add_io(fm.mutable_graph()->add_output(), "y", TensorProto::FLOAT, ys);
  const std::vector<float> w = seeded(static_cast<size_t>(matmul ? 16 * out : out * 4 * 9), 21, 0.5f);
  const std::vector<float> b = seeded(static_cast<size_t>(out), 22, 0.3f);
  if (matmul) {
    test::add_init(fm, "w", {16, out}, w);
    test::add_node(fm, "MatMul", {"x", "w"}, {"y"}, "mm");
  } else {
    conv(fm, "x", "y", "qconv", 4, out, 21);
  }
  const auto r = ranges(fm);
  const Params px = act_params(r.at("x"), false), py = act_params(r.at("y"), false);
  *y_scale = py.scale;
  auto m = test::make_model(13);
  test::add_io(m.mutable_graph()->add_input(), "x", TensorProto::FLOAT, xs);
  test::add_io(m.mutable_graph()->add_output(), "y", TensorProto::FLOAT, ys);
  test::add_init(m, "xs", {}, {px.scale});
  add_int_init(m, "xz", TensorProto::UINT8, {}, {px.zp});
  test::add_init(m, "ys", {}, {py.scale});
  add_int_init(m, "yz", TensorProto::UINT8, {}, {py.zp});
  test::add_node(m, "QuantizeLinear", {"x", "xs", "xz"}, {"xq"}, "quantize_x");
  // Symmetric int8 weights per output channel: rows of the conv weights, columns of B.
  const int64_t per = matmul ? 16 : 36;
  std::vector<float> ws(static_cast<size_t>(out), 0.f);
  auto at = [&](int64_t o, int64_t k) { return matmul ? w[static_cast<size_t>(k * out + o)] : w[static_cast<size_t>(o * per + k)]; };
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t k = 0; k < per; ++k) ws[static_cast<size_t>(o)] = std::max(ws[static_cast<size_t>(o)], std::fabs(at(o, k)));
    ws[static_cast<size_t>(o)] /= 127.f;
  }
  std::vector<int32_t> wq(w.size());
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < per; ++k)
      wq[static_cast<size_t>(matmul ? k * out + o : o * per + k)] =
          static_cast<int32_t>(std::nearbyint(at(o, k) / ws[static_cast<size_t>(o)]));
  add_int_init(m, "wq", TensorProto::INT8, matmul ? std::vector<int64_t>{16, out} : std::vector<int64_t>{out, 4, 3, 3}, wq);
  test::add_init(m, "ws", {out}, ws);
  add_int_init(m, "wz", TensorProto::INT8, {out}, std::vector<int32_t>(static_cast<size_t>(out), 0));
  if (matmul) {
    test::add_node(m, "QLinearMatMul", {"xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz"}, {"yq"}, "qmm");
  } else {
    std::vector<int32_t> bq;
    for (int64_t o = 0; o < out; ++o)
      bq.push_back(static_cast<int32_t>(std::nearbyint(b[static_cast<size_t>(o)] / (px.scale * ws[static_cast<size_t>(o)]))));
    add_int_init(m, "bq", TensorProto::INT32, {out}, bq);
    NodeProto* n = test::add_node(m, "QLinearConv", {"xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz", "bq"}, {"yq"}, "qconv");
    set_ints(n, "pads", {1, 1, 1, 1});
    set_ints(n, "kernel_shape", {3, 3});
  }
  test::add_node(m, "DequantizeLinear", {"yq", "ys", "yz"}, {"y"}, "dequantize_y");
  return m;
}

TEST(ExplicitQuant, QLinearConvAndQLinearMatMulAreLoweredAndRunInt8) {
  for (bool matmul : {false, true}) {
    SCOPED_TRACE(matmul ? "QLinearMatMul" : "QLinearConv");
    float ys = 0;
    const ModelProto q = qlinear_model(matmul, &ys);
    const build::BuildResult r = build_qdq(q);
    const ir::Graph& g = *r.contents.graph;
    EXPECT_EQ(count_any_domain(g, "QConvNhwc"), 1);
    EXPECT_EQ(count_any_domain(g, "QLinearConv") + count_any_domain(g, "QLinearMatMul"), 0);
    int64_t total = 0;
    const int64_t differ = compare_to_reference(q, r, ys, &total);
    EXPECT_LE(differ, total / 100) << differ << " of " << total;
  }
}

// DQ -> MatMul over [2, 3, 8] activations with int8 weights per column (axis 1) and int8
// activations: the weights keep the model's codes and scales (a layer quantized with its own
// scales would be a step off in places).
TEST(ExplicitQuant, MatMulWithLeadingDimsUsesTheModelsWeightScales) {
  auto m = test::make_model(13);
  test::add_io(m.mutable_graph()->add_input(), "x", TensorProto::FLOAT, {2, 3, 8});
  test::add_io(m.mutable_graph()->add_output(), "y", TensorProto::FLOAT, {2, 3, 4});
  std::vector<int32_t> wq;
  for (int i = 0; i < 32; ++i) wq.push_back((i * 37) % 201 - 100);  // |code| <= 100: not max/127
  add_int_init(m, "wq", TensorProto::INT8, {8, 4}, wq);
  test::add_init(m, "ws", {4}, {0.011f, 0.007f, 0.013f, 0.009f});
  add_int_init(m, "wz", TensorProto::INT8, {4}, {0, 0, 0, 0});
  test::add_init(m, "xs", {}, {2.f / 255});
  add_int_init(m, "xz", TensorProto::INT8, {}, {0});
  test::add_init(m, "ys", {}, {0.03f});
  add_int_init(m, "yz", TensorProto::INT8, {}, {-5});
  test::add_node(m, "QuantizeLinear", {"x", "xs", "xz"}, {"xq"}, "qx");
  test::add_node(m, "DequantizeLinear", {"xq", "xs", "xz"}, {"xd"}, "dqx");
  set_int(test::add_node(m, "DequantizeLinear", {"wq", "ws", "wz"}, {"wd"}, "dqw"), "axis", 1);
  test::add_node(m, "MatMul", {"xd", "wd"}, {"mm"}, "mm");
  test::add_node(m, "QuantizeLinear", {"mm", "ys", "yz"}, {"mq"}, "qm");
  test::add_node(m, "DequantizeLinear", {"mq", "ys", "yz"}, {"y"}, "dqm");
  const build::BuildResult r = build_qdq(m);
  const ir::Graph& g = *r.contents.graph;
  ASSERT_EQ(count_any_domain(g, "QConvNhwc"), 1);
  for (const ir::Node& n : g.nodes) {
    if (n.op_type != "QConvNhwc") continue;
    const Tensor& codes = *g.values[static_cast<size_t>(n.inputs[3])].constant;  // [N, K]
    const Tensor& scales = *g.values[static_cast<size_t>(n.inputs[4])].constant;
    for (int o = 0; o < 4; ++o) {
      EXPECT_EQ(scales.data<float>()[o], std::vector<float>({0.011f, 0.007f, 0.013f, 0.009f})[static_cast<size_t>(o)]);
      for (int k = 0; k < 8; ++k) EXPECT_EQ(codes.data<int8_t>()[o * 8 + k], wq[static_cast<size_t>(k * 4 + o)]);
    }
  }
  int64_t total = 0;
  EXPECT_EQ(compare_to_reference(m, r, 0.03f, &total), 0) << total;
}

TEST(ExplicitQuant, DefaultPrecisionAndTheOptOut) {
  const ModelProto q = qdq_model(chain_model());
  // --disable-pass explicit-quantization: the Q/DQ ops stay and compute the model as written.
  build::BuildOptions o;
  o.disabled_passes = {build::kExplicitQuantStep};
  const build::BuildResult r = build_qdq(q, o);
  EXPECT_EQ(count_any_domain(*r.contents.graph, "QConvNhwc"), 0);
  EXPECT_GT(count_any_domain(*r.contents.graph, "QuantizeLinear"), 0);
  EXPECT_EQ(compare_to_reference(q, r, 1e-6f), 0);
  // --precision int8 without calibration data takes the model's scales too.
  o = {};
  o.precision = "int8";
  EXPECT_EQ(count_any_domain(*build_qdq(q, o).contents.graph, "QConvNhwc"), 3);
  // best would choose layers the model has already chosen: refused, naming why.
  o.precision = "best";
  try {
    build_qdq(q, o);
    ADD_FAILURE() << "best built a QDQ model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("carries its own quantization"), std::string::npos) << e.what();
  }
  o.precision = "int8";
  // A float model without Q/DQ still needs data for int8.
  try {
    build_qdq(chain_model(), o);
    ADD_FAILURE() << "int8 without calibration data built";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs calibration data"), std::string::npos) << e.what();
  }
}

TEST(ExplicitQuant, LayersWithoutARangeStayFp32UnlessCalibrated) {
  QdqOptions o;
  o.skip = {"c2", "r2", "f"};  // conv2's output and the Gemm's input: no Q/DQ
  const ModelProto q = qdq_model(chain_model(), o);
  const build::BuildResult r = build_qdq(q);
  EXPECT_EQ(count_any_domain(*r.contents.graph, "QConvNhwc"), 1);  // conv1 only
  EXPECT_NE(report(r).find("no range in the model"), std::string::npos) << report(r);
  // With calibration data, the histograms fill the missing ranges.
  build::BuildOptions bo;
  bo.precision = "int8";
  bo.calib.load = [](const ir::Graph& g) {
    std::vector<std::vector<Tensor>> s;
    for (unsigned i = 0; i < 4; ++i) s.push_back(test::seeded_inputs(g, 100u + i));
    return s;
  };
  const build::BuildResult rc = build_qdq(q, bo);
  EXPECT_EQ(count_any_domain(*rc.contents.graph, "QConvNhwc"), 3);
  EXPECT_NE(report(rc).find("explicit + minmax"), std::string::npos) << report(rc);
}

// Forms lithe does not take as INT8 stay as the ops they are and compute the model's values.
TEST(ExplicitQuant, UnsupportedFormsStayAsOps) {
  std::map<std::string, Params> p;
  ModelProto q = qdq_model(chain_model(), {}, &p);
  // Asymmetric weights: conv1's weight zero point 3.
  for (auto& t : *q.mutable_graph()->mutable_initializer())
    if (t.name() == "conv1.w.z")
      for (int i = 0; i < t.int32_data_size(); ++i) t.set_int32_data(i, 3);
  // A Q read by another op than its DQ: r1's codes are a second output.
  test::add_io(q.mutable_graph()->add_output(), "r1.q", TensorProto::UINT8, {1, 8, 10, 10});
  const build::BuildResult r = build_qdq(q);
  const ir::Graph& g = *r.contents.graph;
  EXPECT_EQ(count_any_domain(g, "QConvNhwc"), 2);  // conv2, fc: conv1's weights are not constant
  // conv1 stays fp32 and reads x as the model gives it: through a Q -> DQ again.
  EXPECT_NE(report(r).find("1 Q/DQ pair(s) kept before fp32 layers"), std::string::npos) << report(r);
  int64_t total = 0;
  const int64_t differ = compare_to_reference(q, r, p.at("y").scale, &total);
  EXPECT_LE(differ, total / 100) << differ << " of " << total;
}

// PyTorch QAT export: float weights behind Q -> DQ (per channel, axis 0, int8 zero point 0);
// the pair becomes the fake-quantized constant and its scales the INT8 conv's.
TEST(ExplicitQuant, FakeQuantizedFloatWeightsRunInt8) {
  std::map<std::string, Params> p;
  QdqOptions o;
  o.skip = {"c2", "s"};  // as in ResidualAddFusesIntoTheInt8Conv
  ModelProto q = qdq_model(residual_model(), o, &p);
  // conv1's int8 weights and their DQ become float weights -> Q -> DQ with the same scales.
  const TensorProto* wq = nullptr;
  const TensorProto* ws = nullptr;
  for (const auto& t : q.graph().initializer()) {
    if (t.name() == "conv1.w.q") wq = &t;
    if (t.name() == "conv1.w.s") ws = &t;
  }
  ASSERT_TRUE(wq && ws);
  std::vector<float> wf;
  for (int i = 0; i < wq->int32_data_size(); ++i)  // off-grid floats that round back to the codes
    wf.push_back((static_cast<float>(wq->int32_data(i)) + 0.3f * (i % 2 ? 1 : -1)) * ws->float_data(i / 72));
  test::add_init(q, "conv1.w.float", {8, 8, 3, 3}, wf);
  NodeProto* qn = q.mutable_graph()->add_node();
  qn->set_op_type("QuantizeLinear");
  qn->set_name("conv1.w_Q");
  *qn->add_input() = "conv1.w.float";
  *qn->add_input() = "conv1.w.s";
  *qn->add_input() = "conv1.w.z";
  *qn->add_output() = "conv1.w.fq";
  set_int(qn, "axis", 0);
  for (auto& n : *q.mutable_graph()->mutable_node())
    if (n.name() == "conv1.w_DQ") n.set_input(0, "conv1.w.fq");
  // Q first: nodes in topological order.
  auto* nodes = q.mutable_graph()->mutable_node();
  for (int i = nodes->size() - 1; i > 0; --i) nodes->SwapElements(i, i - 1);
  const build::BuildResult r = build_qdq(q);
  EXPECT_EQ(count_any_domain(*r.contents.graph, "QConvNhwc"), 2);
  for (const ir::Node& n : r.contents.graph->nodes) {
    if (n.op_type != "QConvNhwc" || n.name != "conv1") continue;
    const Tensor& codes = *r.contents.graph->values[static_cast<size_t>(n.inputs[3])].constant;
    for (int64_t i = 0; i < codes.numel(); ++i)
      ASSERT_EQ(codes.data<int8_t>()[i], wq->int32_data(static_cast<int>(i))) << i;
  }
  int64_t total = 0;
  const int64_t differ = compare_to_reference(q, r, p.at("y").scale, &total);
  EXPECT_LE(differ, total / 100) << differ << " of " << total;
}

// The QDQ model `lithe build --precision int8 --emit-qdq-onnx` writes (builder/qdq_export.cpp)
// imports back to the same engine: outputs equal bit for bit.
TEST(ExplicitQuant, EmittedQdqModelRoundTripsBitExactly) {
  const auto dir = test::temp_dir("explicit_quant_roundtrip");
  const std::string fp32 = test::save(chain_model(), dir / "chain.onnx");
  build::BuildOptions o;
  o.precision = "int8";
  o.emit_qdq_onnx = (dir / "chain_qdq.onnx").string();
  o.calib.load = [](const ir::Graph& g) {
    std::vector<std::vector<Tensor>> s;
    for (unsigned i = 0; i < 8; ++i) s.push_back(test::seeded_inputs(g, 100u + i));
    return s;
  };
  const build::BuildResult ptq = build::build_model(fp32, o);
  const build::BuildResult back = build::build_model(o.emit_qdq_onnx, {});
  EXPECT_EQ(count_any_domain(*back.contents.graph, "QConvNhwc"),
            count_any_domain(*ptq.contents.graph, "QConvNhwc"));
  EXPECT_EQ(count_any_domain(*back.contents.graph, "QConvNhwc"), 3);
  for (unsigned seed : {3u, 4u, 5u}) {
    const auto ins = test::seeded_inputs(*ptq.contents.graph, seed);
    EXPECT_TRUE(test::same_bits(run_engine(ptq, ins), run_engine(back, ins))) << "seed " << seed;
  }
  std::filesystem::remove_all(dir);
}

TensorProto* init_named(ModelProto& m, const std::string& name) {
  for (auto& t : *m.mutable_graph()->mutable_initializer())
    if (t.name() == name) return &t;
  ADD_FAILURE() << "no initializer " << name;
  return m.mutable_graph()->add_initializer();
}

NodeProto* node_named(ModelProto& m, const std::string& name) {
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.name() == name) return &n;
  ADD_FAILURE() << "no node " << name;
  return m.mutable_graph()->add_node();
}

// Per-channel activation parameters (a Q / DQ pair along axis 1) have no INT8 form here: the
// pair stays, conv2 (whose output it is) stays fp32, the rest runs INT8.
TEST(ExplicitQuant, PerAxisActivationPairsStayAsOps) {
  std::map<std::string, Params> p;
  ModelProto q = qdq_model(chain_model(), {}, &p);
  std::vector<float> s(12);
  for (int c = 0; c < 12; ++c) s[static_cast<size_t>(c)] = p.at("r2").scale * (1.f + 0.05f * static_cast<float>(c));
  TensorProto* st = init_named(q, "r2.s");
  st->clear_float_data();
  st->add_dims(12);
  for (float v : s) st->add_float_data(v);
  TensorProto* zt = init_named(q, "r2.z");
  zt->clear_int32_data();
  zt->add_dims(12);
  for (int c = 0; c < 12; ++c) zt->add_int32_data(0);
  set_int(node_named(q, "r2_Q"), "axis", 1);
  set_int(node_named(q, "r2_DQ"), "axis", 1);
  const build::BuildResult r = build_qdq(q);
  EXPECT_EQ(count_any_domain(*r.contents.graph, "QConvNhwc"), 2);  // conv1, fc
  EXPECT_NE(report(r).find("no range in the model"), std::string::npos) << report(r);
  int64_t total = 0;
  EXPECT_LE(compare_to_reference(q, r, p.at("y").scale, &total), total / 100);
}

// Hostile parameters: one-line errors naming the node and what was expected.
void expect_error(const ModelProto& m, const std::string& want) {
  try {
    build_qdq(m);
    ADD_FAILURE() << "built; expected an error containing: " << want;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ExplicitQuant, HostileParametersAreErrorsNamingTheNode) {
  const ModelProto base = qdq_model(chain_model());
  for (float bad : {0.f, -0.5f, NAN, INFINITY}) {
    ModelProto m = base;
    init_named(m, "r1.s")->set_float_data(0, bad);
    expect_error(m, "node 'r1_Q' (QuantizeLinear)");
    expect_error(m, "scale");
  }
  {  // a weight channel's scale
    ModelProto m = base;
    init_named(m, "conv2.w.s")->set_float_data(5, -1.f);
    expect_error(m, "node 'conv2.w_DQ' (DequantizeLinear)");
    expect_error(m, "-1 at index 5");
  }
  {  // zero point outside its type's range
    ModelProto m = base;
    init_named(m, "r1.z")->set_int32_data(0, 300);
    expect_error(m, "r1.z");
    expect_error(m, "does not fit uint8");
  }
  {  // zero point of another shape than the scale
    ModelProto m = base;
    init_named(m, "r1.z")->add_dims(1);
    expect_error(m, "node 'r1_");
  }
  {  // axis out of range
    ModelProto m = base;
    NodeProto* n = node_named(m, "conv1.w_DQ");
    n->mutable_attribute(0)->set_i(7);
    expect_error(m, "conv1.w_DQ");
    expect_error(m, "axis 7");
  }
  {  // per-axis scale of the wrong length
    ModelProto m = base;
    TensorProto* s = init_named(m, "conv1.w.s");
    s->set_dims(0, 7);
    s->mutable_float_data()->RemoveLast();
    TensorProto* z = init_named(m, "conv1.w.z");
    z->set_dims(0, 7);
    z->mutable_int32_data()->RemoveLast();
    expect_error(m, "conv1.w_DQ");
  }
  {  // int32 bias with a zero point
    ModelProto m = base;
    add_int_init(m, "bz", TensorProto::INT32, {8}, std::vector<int32_t>(8, 2));
    node_named(m, "conv1.b_DQ")->add_input("bz");
    expect_error(m, "conv1.b_DQ");
  }
  {  // QLinearConv: a weight scale per channel of the wrong count, a bias of the wrong shape
    float ys = 0;
    ModelProto m = qlinear_model(false, &ys);
    TensorProto* s = init_named(m, "ws");
    s->set_dims(0, 4);
    s->mutable_float_data()->RemoveLast();
    s->mutable_float_data()->RemoveLast();
    TensorProto* z = init_named(m, "wz");
    z->set_dims(0, 4);
    z->mutable_int32_data()->RemoveLast();
    z->mutable_int32_data()->RemoveLast();
    expect_error(m, "qconv");
    ModelProto m2 = qlinear_model(false, &ys);
    init_named(m2, "xs")->set_float_data(0, 0.f);
    expect_error(m2, "quantize_x");
    expect_error(m2, "scale");
  }
}

}  // namespace
}  // namespace lithe
