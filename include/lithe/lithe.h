/* lithe C API: for languages other than C++. Every call returns a status; on failure
 * lithe_last_error() gives the one-line message (per thread). Element types use the ONNX
 * TensorProto.DataType numbers (1 = float32, 7 = int64, ...). */
#ifndef LITHE_LITHE_H_
#define LITHE_LITHE_H_
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  LITHE_OK = 0,
  LITHE_ERROR_RUNTIME = 1,   /* something failed while running */
  LITHE_ERROR_BAD_INPUT = 2  /* bad model, input or argument */
} lithe_status;

typedef struct lithe_engine lithe_engine;
typedef struct lithe_context lithe_context;

/** Loads a model file. On success *out must be freed with lithe_engine_free. */
lithe_status lithe_engine_load(const char* path, lithe_engine** out);
void lithe_engine_free(lithe_engine* engine);
size_t lithe_engine_num_inputs(const lithe_engine* engine);
size_t lithe_engine_num_outputs(const lithe_engine* engine);
/** Name of input/output i, or NULL when out of range. Valid while the engine lives. */
const char* lithe_engine_input_name(const lithe_engine* engine, size_t i);
const char* lithe_engine_output_name(const lithe_engine* engine, size_t i);

lithe_status lithe_context_create(const lithe_engine* engine, lithe_context** out);
/** The same with `threads` (>= 1) threads for the kernels, the calling thread included. */
lithe_status lithe_context_create_threads(const lithe_engine* engine, int32_t threads,
                                          lithe_context** out);
void lithe_context_free(lithe_context* ctx);
/** Copies `nbytes` of `data` as input `name` with the given element type and shape. */
lithe_status lithe_context_set_input(lithe_context* ctx, const char* name, int32_t dtype,
                                     const int64_t* shape, size_t rank, const void* data,
                                     size_t nbytes);
lithe_status lithe_context_run(lithe_context* ctx);
/** Points at output `name` of the last run; valid until the next run or free. */
lithe_status lithe_context_output(const lithe_context* ctx, const char* name, int32_t* dtype,
                                  const int64_t** shape, size_t* rank, const void** data,
                                  size_t* nbytes);
/** The message of this thread's last failed call ("" if none). */
const char* lithe_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* LITHE_LITHE_H_ */
