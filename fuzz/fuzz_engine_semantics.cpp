// libFuzzer target for the engine's semantic checks: a structure-aware mutator
// (LLVMFuzzerCustomMutator) parses a valid engine with the FlatBuffers object API, changes a
// few fields (shape dims, dtypes, blob indices and ranges, node input and output indices,
// graph inputs and outputs, attribute values, opsets, plan offsets and sizes, the bytes of a
// constant, node order and op types) and writes it back with a valid header and checksum, so
// every input passes the FlatBuffers verifier and the checksum and reaches the checks behind
// them (the reader's ranges, ir::verify, the plan checks, the kernels' own checks). The test
// itself is the engine target's: verify -> load -> one run when small (tests/model_probe.hpp,
// fuzz_engine_input).
// Run it with -cross_over=0: libFuzzer's byte crossover would undo what the mutator keeps.
#include <flatbuffers/flatbuffers.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/engine_format.hpp"
#include "engine_object.h"  // engine.fbs with --gen-object-api (fuzz/CMakeLists.txt)
#include "model_probe.hpp"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

namespace fb = lithe::fb;
using Rng = std::mt19937_64;

// One mutable number of the structure: what it is and, for indices, the range that matters.
struct Slot {
  enum Type { kI32, kI64, kU8, kBool, kF32, kBlobOffset, kBlobSize } type;
  void* p;            // the number (kBlob*: null)
  int64_t range = 0;  // > 0: an index into something of this size (values, blobs)
  size_t blob = 0;    // kBlob*: which entry of the blob table
};

struct Slots {
  std::vector<Slot> all;
  std::vector<fb::GraphT*> graphs;
  std::vector<fb::NodeT*> nodes;
  std::vector<std::string> op_types;

  void add(Slot::Type t, void* p, int64_t range = 0) { all.push_back({t, p, range, 0}); }
  template <class T>
  void add_all(Slot::Type t, std::vector<T>& v, int64_t range = 0) {
    for (T& x : v) add(t, &x, range);
  }

  void tensor(fb::TensorRefT& t, int64_t nblobs) {
    add(Slot::kI32, &t.blob, nblobs);
    add(Slot::kI32, &t.dtype);
    add_all(Slot::kI32, t.dims);
  }

  void graph(fb::GraphT& g, int64_t nblobs) {
    graphs.push_back(&g);
    const auto nv = static_cast<int64_t>(g.values.size());
    for (auto& v : g.values) {
      add(Slot::kI32, &v->dtype);
      add(Slot::kI32, &v->blob, nblobs);
      add(Slot::kBool, &v->has_shape);
      add_all(Slot::kI32, v->dims);
    }
    add_all(Slot::kI32, g.inputs, nv);
    add_all(Slot::kI32, g.outputs, nv);
    add_all(Slot::kI32, g.outer_refs, nv);
    for (auto& o : g.opsets) add(Slot::kI32, &o->version);
    for (auto& n : g.nodes) {
      nodes.push_back(n.get());
      op_types.push_back(n->op_type);
      add(Slot::kI32, &n->opset);
      add_all(Slot::kI32, n->inputs, nv);
      add_all(Slot::kI32, n->outputs, nv);
      for (auto& a : n->attrs) {
        add(Slot::kU8, &a->kind);
        add(Slot::kI64, &a->i);
        add(Slot::kF32, &a->f);
        add_all(Slot::kI64, a->ints);
        add_all(Slot::kF32, a->floats);
        if (a->t) tensor(*a->t, nblobs);
        for (auto& t : a->tensors) tensor(*t, nblobs);
        if (a->g) graph(*a->g, nblobs);
        for (auto& sg : a->graphs) graph(*sg, nblobs);
      }
    }
  }

  void plan(fb::MemoryPlanT& p, int64_t nv) {
    add(Slot::kI64, &p.arena_bytes);
    add_all(Slot::kI64, p.offset);
    add_all(Slot::kI64, p.bytes);
    add_all(Slot::kI32, p.alias_of, nv);
    add_all(Slot::kU8, p.in_place);
    add_all(Slot::kU8, p.skip);
    add_all(Slot::kI64, p.row_stride);
    add_all(Slot::kI64, p.row_bytes);
  }
};

// A value that often sits on a boundary: around zero, powers of two, the type's limits, or an
// index just inside or just outside `range`.
int64_t interesting(Rng& rng, int64_t range, int64_t old) {
  static const int64_t kPicks[] = {-2,
                                   -1,
                                   0,
                                   1,
                                   2,
                                   3,
                                   4,
                                   7,
                                   8,
                                   16,
                                   63,
                                   64,
                                   65,
                                   255,
                                   256,
                                   4096,
                                   65536,
                                   int64_t{1} << 31,
                                   (int64_t{1} << 31) - 1,
                                   int64_t{1} << 32,
                                   std::numeric_limits<int64_t>::max(),
                                   std::numeric_limits<int64_t>::min()};
  switch (rng() % 4) {
    case 0:
      if (range > 0) return static_cast<int64_t>(rng() % static_cast<uint64_t>(range + 2)) - 1;
      [[fallthrough]];
    case 1:
      return kPicks[rng() % std::size(kPicks)];
    case 2:
      return static_cast<int64_t>(static_cast<uint64_t>(old) + rng() % 17 - 8);  // wraps
    default:
      return old ^ (int64_t{1} << (rng() % 63));
  }
}

void mutate_slot(const Slot& s, Rng& rng, std::vector<fb::Blob>& blobs) {
  switch (s.type) {
    case Slot::kI32: {
      auto* p = static_cast<int32_t*>(s.p);
      *p = static_cast<int32_t>(interesting(rng, s.range, *p));
      break;
    }
    case Slot::kI64: {
      auto* p = static_cast<int64_t*>(s.p);
      *p = interesting(rng, s.range, *p);
      break;
    }
    case Slot::kU8: {
      auto* p = static_cast<uint8_t*>(s.p);
      *p = static_cast<uint8_t>(rng() % 3 == 0 ? rng() : *p ^ 1);
      break;
    }
    case Slot::kBool: {
      auto* p = static_cast<bool*>(s.p);
      *p = !*p;
      break;
    }
    case Slot::kF32: {
      static const float kPicks[] = {0.f,
                                     -0.f,
                                     1.f,
                                     -1.f,
                                     1e-30f,
                                     1e30f,
                                     std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::quiet_NaN()};
      auto* p = static_cast<float*>(s.p);
      *p = kPicks[rng() % std::size(kPicks)];
      break;
    }
    case Slot::kBlobOffset:
    case Slot::kBlobSize: {
      fb::Blob& b = blobs[s.blob];
      const auto old = static_cast<int64_t>(s.type == Slot::kBlobOffset ? b.offset() : b.size());
      const auto now = static_cast<uint64_t>(interesting(rng, 0, old));
      b = s.type == Slot::kBlobOffset ? fb::Blob(now, b.size()) : fb::Blob(b.offset(), now);
      break;
    }
  }
}

// Changes the structure itself: node order, a node removed or doubled, an op type swapped,
// an attribute dropped, a dim added or removed.
void mutate_structure(Slots& s, Rng& rng) {
  if (s.graphs.empty()) return;
  fb::GraphT& g = *s.graphs[rng() % s.graphs.size()];
  switch (rng() % 6) {
    case 0:
      if (g.nodes.size() >= 2)
        std::swap(g.nodes[rng() % g.nodes.size()], g.nodes[rng() % g.nodes.size()]);
      break;
    case 1:
      if (!g.nodes.empty())
        g.nodes.erase(g.nodes.begin() + static_cast<long>(rng() % g.nodes.size()));
      break;
    case 2:
      if (!g.nodes.empty()) {
        // The fields of a node already there (its attributes left out).
        const fb::NodeT& from = *g.nodes[rng() % g.nodes.size()];
        auto n = std::make_unique<fb::NodeT>();
        n->name = from.name + "_copy";
        n->op_type = from.op_type;
        n->domain = from.domain;
        n->opset = from.opset;
        n->inputs = from.inputs;
        n->outputs = from.outputs;
        g.nodes.push_back(std::move(n));
      }
      break;
    case 3:
      if (!s.nodes.empty() && !s.op_types.empty())
        s.nodes[rng() % s.nodes.size()]->op_type = s.op_types[rng() % s.op_types.size()];
      break;
    case 4:
      if (!s.nodes.empty()) {
        fb::NodeT& n = *s.nodes[rng() % s.nodes.size()];
        if (!n.attrs.empty())
          n.attrs.erase(n.attrs.begin() + static_cast<long>(rng() % n.attrs.size()));
      }
      break;
    default:
      if (!g.values.empty()) {
        auto& d = g.values[rng() % g.values.size()]->dims;
        if (!d.empty() && rng() % 2)
          d.pop_back();
        else
          d.push_back(static_cast<int32_t>(interesting(rng, 0, 1)));
      }
  }
}

// Writes `v` (little-endian) at a random element of a random non-empty blob.
void mutate_data(std::string& data, const std::vector<fb::Blob>& blobs, Rng& rng) {
  std::vector<const fb::Blob*> nonempty;
  for (const fb::Blob& b : blobs)
    if (b.size() >= 4 && b.offset() <= data.size() && b.size() <= data.size() - b.offset())
      nonempty.push_back(&b);  // (an earlier round may have changed the table)
  if (nonempty.empty()) return;
  const fb::Blob& b = *nonempty[rng() % nonempty.size()];
  const size_t width = rng() % 2 ? 8 : 4;
  if (b.size() < width) return;
  const size_t at = b.offset() + (rng() % (b.size() / width)) * width;
  const int64_t v = interesting(rng, 0, 0);
  if (width == 8) {
    std::memcpy(&data[at], &v, 8);
  } else if (rng() % 2) {
    const auto w = static_cast<int32_t>(v);
    std::memcpy(&data[at], &w, 4);
  } else {
    static const float kPicks[] = {0.f, -1.f, 1e30f, std::numeric_limits<float>::infinity(),
                                   std::numeric_limits<float>::quiet_NaN()};
    std::memcpy(&data[at], &kPicks[rng() % std::size(kPicks)], 4);
  }
}

// The structure and data section of a valid engine, or false.
bool parse(const uint8_t* data, size_t size, lithe::engine::FileHeader& h,
           std::unique_ptr<fb::EngineT>& root, std::string& section) {
  using lithe::engine::kHeaderSize;
  if (size < kHeaderSize || std::memcmp(data, lithe::engine::kMagic, 8) != 0) return false;
  h = lithe::engine::decode_header(data);
  if (h.fb_offset < kHeaderSize || h.fb_offset > size || h.fb_size > size - h.fb_offset ||
      h.data_offset > size || h.data_offset < h.fb_offset + h.fb_size)
    return false;
  flatbuffers::Verifier v(data + h.fb_offset, h.fb_size);
  if (!fb::VerifyEngineBuffer(v)) return false;
  root.reset(fb::GetEngine(data + h.fb_offset)->UnPack());
  section.assign(reinterpret_cast<const char*>(data) + h.data_offset, size - h.data_offset);
  return true;
}

// Header, structure and data section laid out as the writer does, with a fresh checksum.
std::string assemble(const lithe::engine::FileHeader& old, const fb::EngineT& root,
                     const std::string& section) {
  flatbuffers::FlatBufferBuilder fbb;
  fb::FinishEngineBuffer(fbb, fb::Engine::Pack(fbb, &root));
  lithe::engine::FileHeader h = old;
  h.header_size = lithe::engine::kHeaderSize;
  h.fb_offset = lithe::engine::kHeaderSize;
  h.fb_size = fbb.GetSize();
  const uint64_t a = lithe::engine::kBlobAlignment;
  h.data_offset = (h.fb_offset + h.fb_size + a - 1) / a * a;
  h.data_size = section.size();
  h.file_size = h.data_offset + h.data_size;
  std::string out(h.file_size, '\0');
  std::memcpy(&out[h.fb_offset], fbb.GetBufferPointer(), h.fb_size);
  std::memcpy(&out[h.data_offset], section.data(), section.size());
  lithe::engine::encode_header(h, reinterpret_cast<unsigned char*>(out.data()));
  lithe::engine::reseal(out);
  return out;
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  lithe::engine::FileHeader h;
  std::unique_ptr<fb::EngineT> root;
  std::string section;
  if (!parse(data, size, h, root, section)) {
    // Not an engine (a seed that was not one): plain byte mutations, resealed.
    size = LLVMFuzzerMutate(data, size, max_size);
    std::string b(reinterpret_cast<const char*>(data), size);
    lithe::engine::reseal(b);
    std::memcpy(data, b.data(), size);
    return size;
  }
  Rng rng(seed);
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    const uint64_t what = rng() % 10;
    Slots s;
    const auto nblobs = static_cast<int64_t>(root->blobs.size());
    if (root->graph) s.graph(*root->graph, nblobs);
    if (root->plan && root->graph)
      s.plan(*root->plan, static_cast<int64_t>(root->graph->values.size()));
    for (size_t b = 0; b < root->blobs.size(); ++b) {
      s.all.push_back({Slot::kBlobOffset, nullptr, 0, b});
      s.all.push_back({Slot::kBlobSize, nullptr, 0, b});
    }
    if (what == 0) {
      mutate_structure(s, rng);
    } else if (what == 1) {
      mutate_data(section, root->blobs, rng);
    } else if (!s.all.empty()) {
      mutate_slot(s.all[rng() % s.all.size()], rng, root->blobs);
    }
  }
  std::string out = assemble(h, *root, section);
  if (out.size() > max_size) return size;  // keep the input as it was
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lithe::test::fuzz_engine_input(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const lithe::Error&) {
  }
  return 0;
}
