// Op family: gather. See ops/op.hpp for the contract.
#include "ops/families.hpp"
#include "ops/util.hpp"

namespace lithe::ops {

void add_gather_ops(std::vector<OpDef>& ops) { (void)ops; }

}  // namespace lithe::ops
