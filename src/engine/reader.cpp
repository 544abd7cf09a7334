// Engine reader: maps a file, verifies every byte that matters before anything is returned
// (header, ranges, checksum, FlatBuffers verifier, then semantic checks), and rebuilds the
// ir::Graph with constants borrowing the mapping. Hostile files end in lithe::Error, never
// in a crash: every index, offset and size is checked before it is used.
#include <fcntl.h>
#include <flatbuffers/flatbuffers.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/half.hpp"
#include "core/memory.hpp"
#include "core/tensor_check.hpp"
#include "engine/engine.hpp"
#include "engine/engine_format.hpp"
#include "engine_generated.h"
#include "kernels/cpu.hpp"
#include "ops/infer.hpp"

namespace lithe::engine {
namespace {

namespace fb = lithe::fb;

bool valid_dtype_enum(int32_t v) { return v >= 0 && v <= static_cast<int32_t>(DType::kBFloat16); }

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

// Half -> float, exact either way: F16C's VCVTPH2PS where the CPU (and OS) has it, else the
// scalar decode.
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void decode_half_f16c(const uint16_t* src, float* dst,
                                                          int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h;
    std::memcpy(&h, src + i, sizeof h);  // the blob is 64-byte aligned, a slice of it need not be
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
}
#endif

void decode_half(const uint16_t* src, float* dst, int64_t n) {
#if defined(__x86_64__)
  if (kernels::cpu_features().f16c) return decode_half_f16c(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
}

class Loader {
 public:
  Loader(const unsigned char* base, size_t size, std::shared_ptr<const void> owner)
      : base_(base), size_(size), owner_(std::move(owner)) {}

  EngineContents load() {
    check_header();
    check_structure();
    EngineContents e;
    const fb::BuildInfo* info = root_->info();
    if (info) {
      e.info.producer = text(info->producer());
      e.info.source_sha256 = text(info->source_sha256());
      e.info.options_json = text(info->options_json());
      e.info.isa = text(info->isa());
    }
    e.report_json = text(root_->report_json());
    if (!root_->graph()) fail("the engine has no graph");
    e.graph = graph(root_->graph(), 0);
    check_types(*e.graph);
    e.plan = plan(root_->plan(), *e.graph);
    return e;
  }

 private:
  void check_header() {
    if (size_ < kHeaderSize)
      fail("file is ", size_, " bytes, too small for an engine (the header alone is ", kHeaderSize,
           " bytes)");
    if (std::memcmp(base_, kMagic, sizeof kMagic) != 0) fail("not a lithe engine file (bad magic)");
    h_ = decode_header(base_);
    if (h_.version > kFormatVersion)
      fail("engine format version ", h_.version, " is newer than this lithe supports (",
           kFormatVersion, "); rebuild the engine");
    if (h_.version == 0) fail("invalid engine format version 0");
    if (h_.header_size != kHeaderSize)
      fail("header size ", h_.header_size, " is not ", kHeaderSize);
    if (h_.file_size != size_)
      fail("file is ", size_, " bytes but its header says ", h_.file_size,
           " (truncated or damaged)");
    // Each comparison keeps both sides within the file size, so nothing can overflow.
    if (h_.fb_offset < kHeaderSize || h_.fb_offset % 8 != 0 || h_.fb_offset > size_ ||
        h_.fb_size < 8 || h_.fb_size > size_ - h_.fb_offset ||
        h_.fb_size >= FLATBUFFERS_MAX_BUFFER_SIZE)
      fail("structure section [", h_.fb_offset, ", +", h_.fb_size, ") is outside the file (", size_,
           " bytes)");
    if (h_.data_offset % kBlobAlignment != 0 || h_.data_offset < h_.fb_offset + h_.fb_size ||
        h_.data_offset > size_ || h_.data_size != size_ - h_.data_offset)
      fail("data section [", h_.data_offset, ", +", h_.data_size, ") is misplaced (file is ", size_,
           " bytes)");
    uint64_t sum = engine_checksum(base_, size_);
    if (sum != h_.checksum) fail("checksum mismatch: the file is corrupt");
  }

  void check_structure() {
    const uint8_t* fbuf = base_ + h_.fb_offset;
    flatbuffers::Verifier::Options opts;
    // Per subgraph level three tables (Graph, Node, Attribute) and up to three vectors
    // (nodes, attrs, graphs), in case a FlatBuffers version counts vectors too; plus the
    // root. The semantic walk enforces kMaxGraphDepth itself.
    opts.max_depth = 16 + 6 * kMaxGraphDepth;
    // Bounds the work on a buffer whose offsets make tables shared (an honest writer never
    // shares, so a table costs at least 8 bytes of the buffer).
    opts.max_tables = static_cast<flatbuffers::uoffset_t>(h_.fb_size / 8 + 1024);
    flatbuffers::Verifier v(fbuf, h_.fb_size, opts);
    if (!fb::VerifyEngineBuffer(v)) fail("the FlatBuffers verifier rejected the structure");
    root_ = fb::GetEngine(fbuf);
    blobs_ = root_->blobs();
    // Every element the rebuild copies counts against this budget, so shared offsets in a
    // hostile buffer cannot make the reader do more than linear work. The writer shares
    // strings and small vectors, so an honest file spends a few elements per byte at most.
    budget_ = 16 * h_.fb_size + (uint64_t{1} << 20);
    if (blobs_) {
      // An empty vector has nothing to read, and FlatBuffers does not align it.
      if (blobs_->size()) check_aligned(blobs_->Data(), alignof(uint64_t), "blob table");
      for (flatbuffers::uoffset_t i = 0; i < blobs_->size(); ++i) {
        const fb::Blob* b = blobs_->Get(i);
        if (b->offset() % kBlobAlignment != 0 || b->offset() > h_.data_size ||
            b->size() > h_.data_size - b->offset())
          fail("blob ", i, " [", b->offset(), ", +", b->size(), ") lies outside the data section (",
               h_.data_size, " bytes) or is misaligned");
      }
    }
  }

  void spend(uint64_t n) {
    if (n > budget_) fail("the structure references more data than the file holds");
    budget_ -= n;
  }
  std::string text(const flatbuffers::String* s) {
    if (s) spend(s->size() + 1);
    return str(s);
  }
  // The FlatBuffers verifier checks a vector's length field for 4-byte alignment only; the
  // elements of a vector of 8-byte scalars or structs must be 8-byte aligned to be read.
  static void check_aligned(const void* data, size_t align, const char* what) {
    if (reinterpret_cast<uintptr_t>(data) % align != 0)
      fail("misaligned ", what, " vector in the structure");
  }
  template <class T>
  std::vector<T> vec(const flatbuffers::Vector<T>* v) {
    if (!v) return {};
    if (v->size()) check_aligned(v->Data(), alignof(T), "scalar");
    spend(v->size() + 1);
    return std::vector<T>(v->begin(), v->end());
  }

  Shape dims(const flatbuffers::Vector<int32_t>* v, const std::string& what) {
    if (v && v->size() > static_cast<uint32_t>(kMaxRank))
      fail(what, ": rank ", v->size(), " exceeds the limit of ", kMaxRank);
    std::vector<int32_t> d = vec(v);
    Shape s(d.begin(), d.end());
    for (int64_t x : s)
      if (x < -1) fail(what, ": invalid dimension ", x);
    return s;
  }

  // A constant: blob `b` must hold exactly dtype[dims] (dims checked by checked_numel).
  Tensor blob_tensor(int32_t b, int32_t dt, Shape shape, const std::string& what) {
    uint32_t nblobs = blobs_ ? blobs_->size() : 0;
    if (b < 0 || static_cast<uint32_t>(b) >= nblobs)
      fail(what, ": blob index ", b, " out of range (", nblobs, " blobs)");
    if (!valid_dtype_enum(dt) || dtype_size(static_cast<DType>(dt)) == 0)
      fail(what, ": invalid element type ", dt, " for a constant");
    DType dtype = static_cast<DType>(dt);
    int64_t numel = checked_numel(shape, what);
    uint64_t nbytes = static_cast<uint64_t>(numel) * dtype_size(dtype);
    const fb::Blob* blob = blobs_->Get(static_cast<uint32_t>(b));
    if (blob->size() != nbytes)
      fail(what, ": blob ", b, " holds ", blob->size(), " bytes but ", dtype_name(dtype), "[",
           shape_str(shape), "] needs ", nbytes);
    if (static_cast<int64_t>(nbytes) > kMaxTensorBytes)
      fail(what, ": ", nbytes, " bytes is over the per-tensor limit");
    Tensor t =
        Tensor::borrow(dtype, std::move(shape), owner_, base_ + h_.data_offset + blob->offset());
    check_bool_bytes(t, what);
    return t;
  }

  // A float32 constant stored as half (format 3): blob `b` must hold exactly float16[dims];
  // decoded into an owned float32 tensor, so every kernel reads float32 as usual.
  Tensor half_tensor(int32_t b, const Shape& shape, const std::string& what) {
    if (h_.version < kFormatVersionHalfStorage)
      fail(what, ": half storage in a format-", h_.version, " file (it needs format ",
           kFormatVersionHalfStorage, ")");
    Tensor half = blob_tensor(b, static_cast<int32_t>(DType::kFloat16), shape, what);
    if (half.numel() > kMaxTensorBytes / 4)
      fail(what, ": float32[", shape_str(shape), "] is over the per-tensor limit");
    const auto* src = static_cast<const uint16_t*>(half.raw());
    const size_t bytes = static_cast<size_t>(half.numel()) * sizeof(float);
    if (bytes >= (size_t{1} << 16)) {
      if (std::shared_ptr<void> mem = zeroed_memory(bytes)) {
        decode_half(src, static_cast<float*>(mem.get()), half.numel());
        return Tensor::borrow(DType::kFloat32, shape, mem, mem.get());
      }
    }
    Tensor out(DType::kFloat32, shape);
    decode_half(src, out.data<float>(), half.numel());
    return out;
  }

  Tensor tensor(const fb::TensorRef* r, const std::string& what) {
    if (!r) fail(what, ": the tensor is missing");
    return blob_tensor(r->blob(), r->dtype(), dims(r->dims(), what), what);
  }

  ir::TensorType value_type(const fb::Value* v, const std::string& what) {
    ir::TensorType t;
    if (!valid_dtype_enum(v->dtype())) fail(what, ": invalid element type ", v->dtype());
    t.dtype = static_cast<DType>(v->dtype());
    t.has_shape = v->has_shape();
    t.dims = dims(v->dims(), what);
    if (t.fully_known()) checked_numel(t.dims, what);
    return t;
  }

  std::vector<int> ids(const flatbuffers::Vector<int32_t>* v, int nv, bool allow_omitted,
                       const std::string& what) {
    std::vector<int> out = vec(v);
    for (int id : out)
      if (id >= nv || id < (allow_omitted ? -1 : 0))
        fail(what, ": value index ", id, " out of range (", nv, " values)");
    return out;
  }

  ir::Attribute attribute(const fb::Attribute* a, int depth, const std::string& what) {
    using K = ir::Attribute::Kind;
    ir::Attribute r;
    auto need = [&](const void* p, const char* field) {
      if (!p) fail(what, ": the ", field, " is missing");
    };
    switch (a->kind()) {
      case fb::AttrKind::Float:
        r.kind = K::kFloat;
        r.f = a->f();
        break;
      case fb::AttrKind::Int:
        r.kind = K::kInt;
        r.i = a->i();
        break;
      case fb::AttrKind::String:
        r.kind = K::kString;
        r.s = text(a->s());
        break;
      case fb::AttrKind::Tensor:
        r.kind = K::kTensor;
        r.t = tensor(a->t(), what);
        break;
      case fb::AttrKind::Graph:
        r.kind = K::kGraph;
        need(a->g(), "graph");
        r.g = graph(a->g(), depth + 1);
        break;
      case fb::AttrKind::Floats:
        r.kind = K::kFloats;
        r.floats = vec(a->floats());
        break;
      case fb::AttrKind::Ints:
        r.kind = K::kInts;
        r.ints = vec(a->ints());
        break;
      case fb::AttrKind::Strings:
        r.kind = K::kStrings;
        if (a->strings()) {
          spend(a->strings()->size());
          for (const auto* s : *a->strings()) r.strings.push_back(text(s));
        }
        break;
      case fb::AttrKind::Tensors:
        r.kind = K::kTensors;
        if (a->tensors()) {
          spend(a->tensors()->size());
          for (uint32_t k = 0; k < a->tensors()->size(); ++k)
            r.tensors.push_back(tensor(a->tensors()->Get(k), str_cat(what, " tensor ", k)));
        }
        break;
      case fb::AttrKind::Graphs:
        r.kind = K::kGraphs;
        if (a->graphs()) {
          spend(a->graphs()->size());
          for (const fb::Graph* sg : *a->graphs()) {
            need(sg, "graph");
            r.graphs.push_back(graph(sg, depth + 1));
          }
        }
        break;
      default:
        fail(what, ": unknown attribute kind ", static_cast<int>(a->kind()));
    }
    return r;
  }

  std::shared_ptr<ir::Graph> graph(const fb::Graph* fg, int depth) {
    if (depth > kMaxGraphDepth) fail("subgraphs nest deeper than ", kMaxGraphDepth, " levels");
    auto g = std::make_shared<ir::Graph>();
    g->name = text(fg->name());
    try {
      const auto* values = fg->values();
      uint32_t nv32 = values ? values->size() : 0;
      if (nv32 > static_cast<uint32_t>(INT32_MAX)) fail("too many values");
      int nv = static_cast<int>(nv32);
      spend(nv32);
      for (int id = 0; id < nv; ++id) {
        const fb::Value* v = values->Get(static_cast<uint32_t>(id));
        std::string name = text(v->name());
        std::string what = str_cat("value ", id, " '", name, "'");
        ir::TensorType type = value_type(v, what);
        std::optional<Tensor> constant;
        DType storage = DType::kUndefined;
        const int32_t sd = v->storage_dtype();
        if (v->blob() != -1) {
          if (!type.has_shape) fail(what, ": a constant without a shape");
          if (sd == 0) {
            constant = blob_tensor(v->blob(), v->dtype(), type.dims, what);
          } else if (sd == static_cast<int32_t>(DType::kFloat16) && type.dtype == DType::kFloat32) {
            constant = half_tensor(v->blob(), type.dims, what);
            storage = DType::kFloat16;
          } else {
            fail(what, ": storage type ", sd, " is not supported for a constant of type ",
                 dtype_name(type.dtype), " (only float16 storage of float32)");
          }
        } else if (sd != 0) {
          fail(what, ": storage type ", sd, " without a constant");
        }
        int got = g->add_value(name, std::move(type));
        g->values[static_cast<size_t>(got)].constant = std::move(constant);
        g->values[static_cast<size_t>(got)].storage = storage;
      }
      g->inputs = ids(fg->inputs(), nv, false, "graph inputs");
      g->outputs = ids(fg->outputs(), nv, false, "graph outputs");
      g->outer_refs = ids(fg->outer_refs(), nv, false, "outer references");
      if (fg->opsets()) {
        spend(fg->opsets()->size());
        for (const fb::Opset* o : *fg->opsets()) {
          std::string domain = text(o->domain());
          if (!g->opsets.emplace(domain, o->version()).second)
            fail("opset domain '", domain, "' is listed twice");
        }
      }
      const auto* nodes = fg->nodes();
      uint32_t nn = nodes ? nodes->size() : 0;
      spend(nn);
      for (uint32_t k = 0; k < nn; ++k) {
        const fb::Node* fn = nodes->Get(k);
        ir::Node n;
        n.name = text(fn->name());
        n.op_type = text(fn->op_type());
        n.domain = text(fn->domain());
        n.opset = fn->opset();
        std::string what = str_cat("node ", k, " '", n.name, "' (", n.op_type, ")");
        if (n.op_type.empty()) fail(what, ": empty op type");
        if (n.opset == -1) {  // the graph's opset for the node's domain
          auto os = g->opsets.find(n.domain);
          if (os == g->opsets.end())
            fail(what, ": domain '", n.domain, "' has no opset in the graph");
          n.opset = os->second;
        }
        if (n.opset < 0) fail(what, ": invalid opset ", n.opset);
        n.inputs = ids(fn->inputs(), nv, true, str_cat(what, " inputs"));
        n.outputs = ids(fn->outputs(), nv, true, str_cat(what, " outputs"));
        if (fn->attrs()) {
          spend(fn->attrs()->size());
          for (const fb::Attribute* a : *fn->attrs()) {
            std::string an = text(a->name());
            std::string where = str_cat(what, ": attribute '", an, "'");
            if (an.empty()) fail(where, ": empty name");
            ir::Attribute attr = attribute(a, depth, where);
            if (!n.attrs.emplace(an, std::move(attr)).second) fail(where, ": listed twice");
          }
        }
        g->add_node(std::move(n));
      }
      g->relink();
      ir::verify(*g);
    } catch (const Error& e) {
      throw e.with_context(str_cat("graph '", g->name, "'"));
    }
    return g;
  }

  // The stored types are what the memory plan and the fast steps are sized by: each node's
  // outputs, inferred again from its stored input types, constants and attributes, must be
  // what the file says wherever both are static (an edited dim or attribute would otherwise
  // make a kernel write past its slot).
  // (An op lithe does not implement is left to the runtime, which refuses it by name.)
  static void check_types(const ir::Graph& g) {
    for (const ir::Node& n : g.nodes) {
      const ops::OpDef* op = ops::find_op(n.domain, n.op_type);
      if (!op) continue;
      std::vector<const ir::TensorType*> types;
      std::vector<const Tensor*> values;
      for (int v : n.inputs) {
        const ir::Value* val = v >= 0 ? &g.values[static_cast<size_t>(v)] : nullptr;
        types.push_back(val ? &val->type : nullptr);
        values.push_back(val && val->constant ? &*val->constant : nullptr);
      }
      std::vector<ir::TensorType> out = ops::infer_node(n, *op, types, values);
      for (size_t i = 0; i < n.outputs.size() && i < out.size(); ++i) {
        if (n.outputs[i] < 0) continue;
        const ir::Value& v = g.values[static_cast<size_t>(n.outputs[i])];
        const ir::TensorType &want = out[i], &got = v.type;
        bool differ = (want.dtype != DType::kUndefined && want.dtype != got.dtype) ||
                      (want.fully_known() && got.fully_known() && want.dims != got.dims);
        if (differ)
          fail(n.label(), ": output '", v.name, "' is stored as ", got.str(), " but the node makes ",
               want.str());
      }
    }
  }

  plan::MemoryPlan plan(const fb::MemoryPlan* fp, const ir::Graph& g) {
    plan::MemoryPlan p;
    if (!fp) return p;
    size_t nv = g.values.size(), nn = g.nodes.size();
    p.arena_bytes = fp->arena_bytes();
    p.sum_intermediate_bytes = fp->sum_intermediate_bytes();
    if (p.arena_bytes < 0 || p.sum_intermediate_bytes < 0)
      fail("memory plan: negative arena size ", p.arena_bytes, " or intermediate sum ",
           p.sum_intermediate_bytes);
    p.offset = vec(fp->offset());
    p.bytes = vec(fp->bytes());
    p.alias_of = vec(fp->alias_of());
    std::vector<uint8_t> in_place = vec(fp->in_place()), skip = vec(fp->skip());
    p.in_place.assign(in_place.begin(), in_place.end());
    p.skip.assign(skip.begin(), skip.end());
    auto sized = [](size_t n, size_t want) { return n == 0 || n == want; };
    if (!sized(p.offset.size(), nv) || !sized(p.bytes.size(), nv) ||
        !sized(p.alias_of.size(), nv) || p.offset.size() != p.bytes.size() ||
        p.offset.size() != p.alias_of.size())
      fail("memory plan: per-value vectors have sizes ", p.offset.size(), "/", p.bytes.size(), "/",
           p.alias_of.size(), ", the graph has ", nv, " values");
    p.row_stride = vec(fp->row_stride());
    p.row_bytes = vec(fp->row_bytes());
    if (p.row_stride.size() != p.row_bytes.size() ||
        (!p.row_stride.empty() && p.row_stride.size() != p.offset.size()))
      fail("memory plan: row vectors have sizes ", p.row_stride.size(), "/", p.row_bytes.size(),
           ", the graph has ", nv, " values");
    if (!sized(p.in_place.size(), nn) || !sized(p.skip.size(), nn))
      fail("memory plan: per-node vectors have sizes ", p.in_place.size(), "/", p.skip.size(),
           ", the graph has ", nn, " nodes");
    for (size_t v = 0; v < p.offset.size(); ++v) {
      int64_t off = p.offset[v], bytes = p.bytes[v];
      const std::string& name = g.values[v].name;
      if (p.strided(static_cast<int>(v))) {
        const int64_t rs = p.row_stride[v], rb = p.row_bytes[v];
        if (rb <= 0 || rb > rs || bytes < 0 || bytes % rb != 0 ||
            bytes / rb > p.arena_bytes / rs + 1)
          fail("memory plan: value '", name, "' has rows of ", rb, " bytes every ", rs,
               " bytes, which do not make its ", bytes, " bytes");
        bytes = p.extent(static_cast<int>(v));
      } else if (!p.row_stride.empty() && p.row_stride[v] < 0) {
        fail("memory plan: value '", name, "' has a negative row stride");
      }
      if (bytes < 0 || off < -1 ||
          (off >= 0 && (off > p.arena_bytes || bytes > p.arena_bytes - off)))
        fail("memory plan: value '", name, "' at [", off, ", +", bytes,
             ") is outside the arena of ", p.arena_bytes, " bytes");
      int a = p.alias_of[v];
      if (a < -1 || a >= static_cast<int>(nv))
        fail("memory plan: value '", name, "' aliases value index ", a, ", out of range");
    }
    return p;
  }

  const unsigned char* base_;
  size_t size_;
  std::shared_ptr<const void> owner_;
  FileHeader h_;
  const fb::Engine* root_ = nullptr;
  const flatbuffers::Vector<const fb::Blob*>* blobs_ = nullptr;
  uint64_t budget_ = 0;
};

EngineContents load_from(const unsigned char* base, size_t size, std::shared_ptr<const void> owner,
                         const std::string& what) {
  try {
    return Loader(base, size, std::move(owner)).load();
  } catch (const Error& e) {
    throw e.with_context(what);
  } catch (const std::bad_alloc&) {
    fail(what, ": out of memory while loading the engine");
  }
}

}  // namespace

EngineContents load_engine(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open the engine file: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, ": cannot stat the engine file: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  auto size = static_cast<size_t>(st.st_size);
  if (size < kHeaderSize) {
    ::close(fd);
    fail(path, ": file is ", size, " bytes, too small for an engine (the header alone is ",
         kHeaderSize, " bytes)");
  }
  // MAP_PRIVATE + PROT_READ: the weights are served from the page cache, never copied, and
  // nothing the process does can write back into the file.
  // MAP_POPULATE: the checksum reads every page anyway; faulting them in up front is faster.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file referenced
  if (p == MAP_FAILED) fail(path, ": cannot map the engine file: ", std::strerror(err));
  std::shared_ptr<const void> owner(
      p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  EngineContents c = load_from(static_cast<const unsigned char*>(p), size, std::move(owner), path);
  // Verification touched every page; let them go until a kernel reads them (they are clean
  // file pages, so this only lowers the resident set).
  ::madvise(p, size, MADV_DONTNEED);
  c.mapped = p;
  c.mapped_bytes = size;
  return c;
}

EngineContents load_engine_bytes(std::shared_ptr<const std::string> bytes,
                                 const std::string& what) {
  if (!bytes) fail(what, ": no bytes");
  const auto* base = reinterpret_cast<const unsigned char*>(bytes->data());
  size_t size = bytes->size();
  return load_from(base, size, std::shared_ptr<const void>(bytes, bytes.get()), what);
}

}  // namespace lithe::engine
