// Engine writer: ir::Graph + plan + report -> the bytes of an engine file. Deterministic:
// attributes and opsets come from sorted maps, blobs are laid out in traversal order, and
// every padding byte is zero, so the same contents always give the same bytes.
#include <flatbuffers/flatbuffers.h>

#include <climits>
#include <cstring>
#include <deque>
#include <map>

#include "core/half.hpp"
#include "engine/engine.hpp"
#include "engine/engine_format.hpp"
#include "engine_generated.h"

namespace lithe::engine {
namespace {

namespace fb = lithe::fb;
using flatbuffers::Offset;

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

class Writer {
 public:
  // Empty strings and vectors are left out (the reader reads an absent one as empty), and
  // equal strings, dims and ints vectors are stored once: a model has thousands of values
  // and nodes, and the structure must stay small next to the weights. The caches are keyed
  // by content, so sharing is as deterministic as the traversal.
  Offset<flatbuffers::String> str(const std::string& s) {
    return s.empty() ? 0 : fbb_.CreateSharedString(s);
  }
  template <class T>
  Offset<flatbuffers::Vector<T>> vec(const std::vector<T>& v) {
    return v.empty() ? 0 : fbb_.CreateVector(v);
  }
  Offset<flatbuffers::Vector<int32_t>> dims(const Shape& shape, const std::string& what) {
    if (shape.empty()) return 0;
    std::vector<int32_t> d;
    for (int64_t x : shape) {
      if (x < -1 || x > INT32_MAX) fail(what, ": dimension ", x, " cannot be stored");
      d.push_back(static_cast<int32_t>(x));
    }
    auto [it, fresh] = dims_cache_.try_emplace(d);
    if (fresh) it->second = fbb_.CreateVector(d);
    return it->second;
  }
  Offset<flatbuffers::Vector<int64_t>> ints(const std::vector<int64_t>& v) {
    if (v.empty()) return 0;
    auto [it, fresh] = ints_cache_.try_emplace(v);
    if (fresh) it->second = fbb_.CreateVector(v);
    return it->second;
  }

  int add_blob(const Tensor& t, const std::string& what) {
    if (!t.defined()) fail(what, ": the tensor has no data");
    if (dtype_size(t.dtype()) == 0)
      fail(what, ": a ", dtype_name(t.dtype()), " tensor cannot be stored in an engine");
    int index = static_cast<int>(blobs_.size());
    uint64_t offset = align_up(data_size_, kBlobAlignment);
    blobs_.push_back(&t);
    blob_table_.emplace_back(offset, static_cast<uint64_t>(t.nbytes()));
    data_size_ = offset + t.nbytes();
    return index;
  }

  // A float32 constant stored as half: rounded to nearest even (core/half.hpp); the writer
  // keeps the converted copy until the bytes are written.
  int add_half_blob(const Tensor& t, const std::string& what) {
    if (!t.defined() || t.dtype() != DType::kFloat32)
      fail(what, ": only a float32 constant can be stored as float16");
    Tensor& h = halves_.emplace_back(DType::kFloat16, t.shape());
    const float* src = t.data<float>();
    auto* dst = static_cast<uint16_t*>(h.raw());
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = float_to_half_bits(src[i]);
    return add_blob(h, what);
  }

  Offset<fb::TensorRef> tensor_ref(const Tensor& t, const std::string& what) {
    int index = add_blob(t, what);
    return fb::CreateTensorRef(fbb_, index, static_cast<int32_t>(t.dtype()), dims(t.shape(), what));
  }

  Offset<fb::Attribute> attribute(const std::string& name, const ir::Attribute& a, int depth,
                                  const std::string& what) {
    using K = ir::Attribute::Kind;
    std::string where = str_cat(what, ": attribute '", name, "'");
    auto fname = str(name);
    Offset<flatbuffers::String> s;
    Offset<fb::TensorRef> t;
    Offset<fb::Graph> g;
    Offset<flatbuffers::Vector<float>> floats;
    Offset<flatbuffers::Vector<int64_t>> ints;
    Offset<flatbuffers::Vector<Offset<flatbuffers::String>>> strings;
    Offset<flatbuffers::Vector<Offset<fb::TensorRef>>> tensors;
    Offset<flatbuffers::Vector<Offset<fb::Graph>>> graphs;
    fb::AttrKind kind = fb::AttrKind::Int;
    switch (a.kind) {
      case K::kFloat:
        kind = fb::AttrKind::Float;
        break;
      case K::kInt:
        kind = fb::AttrKind::Int;
        break;
      case K::kString:
        kind = fb::AttrKind::String;
        s = str(a.s);
        break;
      case K::kTensor:
        kind = fb::AttrKind::Tensor;
        t = tensor_ref(a.t, where);
        break;
      case K::kGraph:
        kind = fb::AttrKind::Graph;
        if (!a.g) fail(where, ": the graph is missing");
        g = graph(*a.g, depth + 1);
        break;
      case K::kFloats:
        kind = fb::AttrKind::Floats;
        floats = vec(a.floats);
        break;
      case K::kInts:
        kind = fb::AttrKind::Ints;
        ints = this->ints(a.ints);
        break;
      case K::kStrings:
        kind = fb::AttrKind::Strings;
        if (!a.strings.empty()) strings = fbb_.CreateVectorOfStrings(a.strings);
        break;
      case K::kTensors: {
        kind = fb::AttrKind::Tensors;
        std::vector<Offset<fb::TensorRef>> v;
        for (size_t k = 0; k < a.tensors.size(); ++k)
          v.push_back(tensor_ref(a.tensors[k], str_cat(where, " tensor ", k)));
        tensors = fbb_.CreateVector(v);
        break;
      }
      case K::kGraphs: {
        kind = fb::AttrKind::Graphs;
        std::vector<Offset<fb::Graph>> v;
        for (const auto& sg : a.graphs) {
          if (!sg) fail(where, ": a graph is missing");
          v.push_back(graph(*sg, depth + 1));
        }
        graphs = fbb_.CreateVector(v);
        break;
      }
    }
    float f = a.kind == K::kFloat ? a.f : 0.f;
    int64_t i = a.kind == K::kInt ? a.i : 0;
    // A float equal to the default (0) would be left out, and -0.0f == 0: force the field
    // so the bit pattern survives.
    fbb_.ForceDefaults(a.kind == K::kFloat);
    auto out = fb::CreateAttribute(fbb_, fname, kind, f, i, s, t, g, floats, ints, strings, tensors,
                                   graphs);
    fbb_.ForceDefaults(false);
    return out;
  }

  Offset<fb::Graph> graph(const ir::Graph& g, int depth) {
    if (depth > kMaxGraphDepth)
      fail("graph '", g.name, "': subgraphs nest deeper than ", kMaxGraphDepth, " levels");
    std::string what = str_cat("graph '", g.name, "'");
    std::vector<Offset<fb::Value>> values;
    values.reserve(g.values.size());
    for (const auto& v : g.values) {
      std::string where = str_cat(what, ": value '", v.name, "'");
      auto name = str(v.name);
      auto d = dims(v.type.dims, where);
      int blob = -1;
      int32_t storage = 0;
      if (v.storage != DType::kUndefined && !v.constant)
        fail(where, ": a storage type without a constant");
      if (v.constant) {
        // The format stores a constant's type once, as its value's type.
        const Tensor& c = *v.constant;
        if (c.dtype() != v.type.dtype || !v.type.has_shape || c.shape() != v.type.dims)
          fail(where, ": constant of type ", dtype_name(c.dtype()), "[", shape_str(c.shape()),
               "] does not match the value's type ", v.type.str());
        if (v.storage == DType::kFloat16) {
          blob = add_half_blob(c, where);
          storage = static_cast<int32_t>(DType::kFloat16);
          half_storage_ = true;
        } else if (v.storage == DType::kUndefined || v.storage == c.dtype()) {
          blob = add_blob(c, where);
        } else {
          fail(where, ": a ", dtype_name(c.dtype()), " constant cannot be stored as ",
               dtype_name(v.storage));
        }
      }
      values.push_back(fb::CreateValue(fbb_, name, static_cast<int32_t>(v.type.dtype),
                                       v.type.has_shape, d, blob, storage));
    }
    std::vector<Offset<fb::Node>> nodes;
    nodes.reserve(g.nodes.size());
    for (const auto& n : g.nodes) {
      std::vector<Offset<fb::Attribute>> attrs;
      for (const auto& [an, a] : n.attrs)  // std::map: sorted by name
        attrs.push_back(attribute(an, a, depth, str_cat(what, ": ", n.label())));
      auto name = str(n.name);
      auto op = str(n.op_type);
      auto domain = str(n.domain);
      auto ins = vec(n.inputs);
      auto outs = vec(n.outputs);
      auto av = vec(attrs);
      // Nearly every node runs at its graph's opset for the domain: store only exceptions.
      auto os = g.opsets.find(n.domain);
      int opset = os != g.opsets.end() && os->second == n.opset ? -1 : n.opset;
      if (n.opset < 0) fail(what, ": ", n.label(), " has invalid opset ", n.opset);
      nodes.push_back(fb::CreateNode(fbb_, name, op, domain, opset, ins, outs, av));
    }
    std::vector<Offset<fb::Opset>> opsets;
    for (const auto& [domain, version] : g.opsets)  // std::map: sorted by domain
      opsets.push_back(fb::CreateOpset(fbb_, str(domain), version));
    auto name = str(g.name);
    auto vv = vec(values);
    auto nv = vec(nodes);
    auto ins = vec(g.inputs);
    auto outs = vec(g.outputs);
    auto refs = vec(g.outer_refs);
    auto ov = vec(opsets);
    return fb::CreateGraph(fbb_, name, vv, nv, ins, outs, refs, ov);
  }

  Offset<fb::MemoryPlan> plan(const plan::MemoryPlan& p, const ir::Graph& g) {
    auto sized = [](size_t n, size_t want) { return n == 0 || n == want; };
    size_t nv = g.values.size(), nn = g.nodes.size();
    if (!sized(p.offset.size(), nv) || !sized(p.bytes.size(), nv) ||
        !sized(p.alias_of.size(), nv) || !sized(p.in_place.size(), nn) || !sized(p.skip.size(), nn))
      fail("memory plan: its vectors do not match the graph (", nv, " values, ", nn, " nodes)");
    std::vector<uint8_t> in_place(p.in_place.begin(), p.in_place.end());
    std::vector<uint8_t> skip(p.skip.begin(), p.skip.end());
    for (auto& c : in_place) c = c != 0;
    for (auto& c : skip) c = c != 0;
    // Children are created in statement order: C++ leaves the order of evaluation of call
    // arguments open (GCC and Clang differ), and the byte layout follows creation order.
    auto offset = vec(p.offset);
    auto bytes = vec(p.bytes);
    auto alias_of = vec(p.alias_of);
    auto in_place_v = vec(in_place);
    auto skip_v = vec(skip);
    if (!sized(p.row_stride.size(), nv) || p.row_stride.size() != p.row_bytes.size())
      fail("memory plan: its row vectors do not match the graph (", nv, " values)");
    auto row_stride = vec(p.row_stride);
    auto row_bytes = vec(p.row_bytes);
    return fb::CreateMemoryPlan(fbb_, p.arena_bytes, offset, bytes, alias_of, in_place_v, skip_v,
                                p.sum_intermediate_bytes, row_stride, row_bytes);
  }

  std::string finish(const EngineContents& e) {
    if (!e.graph) fail("engine: no graph to serialize");
    auto g = graph(*e.graph, 0);
    auto p = plan(e.plan, *e.graph);
    auto producer = str(e.info.producer);  // one statement each: see plan()
    auto sha = str(e.info.source_sha256);
    auto options = str(e.info.options_json);
    auto isa = str(e.info.isa);
    auto info = fb::CreateBuildInfo(fbb_, producer, sha, options, isa);
    auto blobs = fbb_.CreateVectorOfStructs(blob_table_);
    auto report = str(e.report_json);
    fbb_.Finish(fb::CreateEngine(fbb_, info, g, blobs, p, report));

    FileHeader h;
    h.version = kFormatVersion;
    h.header_size = kHeaderSize;
    h.fb_offset = kHeaderSize;
    h.fb_size = fbb_.GetSize();
    h.data_offset = align_up(h.fb_offset + h.fb_size, kBlobAlignment);
    h.data_size = data_size_;
    h.file_size = h.data_offset + h.data_size;
    std::string out(h.file_size, '\0');
    auto* b = reinterpret_cast<unsigned char*>(out.data());
    std::memcpy(b + h.fb_offset, fbb_.GetBufferPointer(), h.fb_size);
    for (size_t k = 0; k < blobs_.size(); ++k)
      if (blobs_[k]->nbytes())
        std::memcpy(b + h.data_offset + blob_table_[k].offset(), blobs_[k]->raw(),
                    blobs_[k]->nbytes());
    encode_header(h, b);
    h.checksum = engine_checksum(b, out.size());
    encode_header(h, b);
    return out;
  }

 private:
  flatbuffers::FlatBufferBuilder fbb_{1 << 16};
  std::vector<const Tensor*> blobs_;  // point into the graph, which outlives the writer
  std::deque<Tensor> halves_;         // half copies (add_half_blob); a deque keeps them in place
  bool half_storage_ = false;
  std::vector<fb::Blob> blob_table_;
  std::map<std::vector<int32_t>, Offset<flatbuffers::Vector<int32_t>>> dims_cache_;
  std::map<std::vector<int64_t>, Offset<flatbuffers::Vector<int64_t>>> ints_cache_;
  uint64_t data_size_ = 0;
};

}  // namespace

std::string serialize(const EngineContents& e) {
  Writer w;
  return w.finish(e);
}

}  // namespace lithe::engine
