#include <cstring>
#include <new>

#include "lithe/lithe.h"
#include "lithe/lithe.hpp"

struct lithe_engine {
  std::shared_ptr<lithe::Engine> e;
};
struct lithe_context {
  std::unique_ptr<lithe::Context> c;
};

namespace {
thread_local std::string g_last_error;

template <class F>
lithe_status guarded(F&& f) {
  try {
    f();
    g_last_error.clear();
    return LITHE_OK;
  } catch (const lithe::Error& e) {
    g_last_error = e.what();
    return e.kind() == lithe::ErrorKind::kBadInput ? LITHE_ERROR_BAD_INPUT : LITHE_ERROR_RUNTIME;
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return LITHE_ERROR_RUNTIME;
  } catch (const std::exception& e) {
    g_last_error = e.what();
    return LITHE_ERROR_RUNTIME;
  }
}
}  // namespace

extern "C" {

lithe_status lithe_engine_load(const char* path, lithe_engine** out) {
  return guarded([&] {
    if (!path || !out) lithe::fail("lithe_engine_load: null argument");
    *out = nullptr;
    auto e = lithe::Engine::load(path);
    *out = new lithe_engine{std::move(e)};
  });
}

void lithe_engine_free(lithe_engine* engine) { delete engine; }

size_t lithe_engine_num_inputs(const lithe_engine* e) { return e ? e->e->inputs().size() : 0; }
size_t lithe_engine_num_outputs(const lithe_engine* e) { return e ? e->e->outputs().size() : 0; }
const char* lithe_engine_input_name(const lithe_engine* e, size_t i) {
  return e && i < e->e->inputs().size() ? e->e->inputs()[i].name.c_str() : nullptr;
}
const char* lithe_engine_output_name(const lithe_engine* e, size_t i) {
  return e && i < e->e->outputs().size() ? e->e->outputs()[i].name.c_str() : nullptr;
}

lithe_status lithe_context_create_threads(const lithe_engine* engine, int32_t threads,
                                          lithe_context** out) {
  return guarded([&] {
    if (!engine || !out) lithe::fail("lithe_context_create: null argument");
    lithe::ContextOptions o;
    o.threads = threads;
    *out = new lithe_context{engine->e->create_context(o)};
  });
}

lithe_status lithe_context_create(const lithe_engine* engine, lithe_context** out) {
  return lithe_context_create_threads(engine, 1, out);
}

void lithe_context_free(lithe_context* ctx) { delete ctx; }

lithe_status lithe_context_set_input(lithe_context* ctx, const char* name, int32_t dtype,
                                     const int64_t* shape, size_t rank, const void* data,
                                     size_t nbytes) {
  return guarded([&] {
    if (!ctx || !name || (rank && !shape)) lithe::fail("lithe_context_set_input: null argument");
    lithe::DType t = lithe::dtype_from_onnx(dtype, std::string("input '") + name + "'");
    lithe::Shape s(shape, shape + rank);
    lithe::Tensor tensor(t, s);
    if (nbytes != tensor.nbytes())
      lithe::fail("input '", name, "': ", nbytes, " bytes given, expected ", tensor.nbytes());
    if (nbytes) {
      if (!data) lithe::fail("lithe_context_set_input: null data");
      std::memcpy(tensor.raw(), data, nbytes);
    }
    ctx->c->set_input(name, std::move(tensor));
  });
}

lithe_status lithe_context_run(lithe_context* ctx) {
  return guarded([&] {
    if (!ctx) lithe::fail("lithe_context_run: null context");
    ctx->c->run();
  });
}

lithe_status lithe_context_output(const lithe_context* ctx, const char* name, int32_t* dtype,
                                  const int64_t** shape, size_t* rank, const void** data,
                                  size_t* nbytes) {
  return guarded([&] {
    if (!ctx || !name) lithe::fail("lithe_context_output: null argument");
    const lithe::Tensor& t = ctx->c->output(std::string(name));
    if (dtype) *dtype = static_cast<int32_t>(t.dtype());
    if (shape) *shape = t.shape().data();
    if (rank) *rank = t.shape().size();
    if (data) *data = t.raw();
    if (nbytes) *nbytes = t.nbytes();
  });
}

const char* lithe_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
