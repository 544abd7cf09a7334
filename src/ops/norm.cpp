// Op family: norm. See ops/op.hpp for the contract.
#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {

void add_norm_ops(std::vector<OpDef>& ops) { (void)ops; }

}  // namespace lithe::ops
