// The op families. Each src/ops/<family>.cpp appends its OpDefs to the list; registry.cpp
// calls every one of these once. This list and those files are the single source of the
// supported-op set (the docs table and the conformance report are generated from it).
#pragma once
#include <vector>

#include "ops/op.hpp"

namespace lithe::ops {

#define LITHE_OP_FAMILIES(X) \
  X(unary)                   \
  X(binary)                  \
  X(softmax)                 \
  X(conv)                    \
  X(pool)                    \
  X(norm)                    \
  X(gemm)                    \
  X(shape)                   \
  X(tensor)                  \
  X(gather)                  \
  X(resize)                  \
  X(reduce)                  \
  X(quant)                   \
  X(rnn)                     \
  X(misc)                    \
  X(control)                 \
  X(fused)                   \
  X(nhwc)                    \
  X(qnhwc)

#define LITHE_DECLARE_FAMILY(f) void add_##f##_ops(std::vector<OpDef>& ops);
LITHE_OP_FAMILIES(LITHE_DECLARE_FAMILY)
#undef LITHE_DECLARE_FAMILY

}  // namespace lithe::ops
