// Op family: reduce. See ops/op.hpp for the contract.
#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {

void add_reduce_ops(std::vector<OpDef>& ops) { (void)ops; }

}  // namespace lithe::ops
