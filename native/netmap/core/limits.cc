#include "core/limits.h"

namespace vpc {

#define VPC_LIMIT_ROW(id, field, lo, hi) limit::id,
const Limit kLimits[kLimitCount] = {VPC_LIMITS(VPC_LIMIT_ROW)};
#undef VPC_LIMIT_ROW

std::string range_error(const Limit& l, const std::string& field) {
  return (field.empty() ? std::string(l.field) : field) + ": must be in " + std::to_string(l.min) + ".." +
         std::to_string(l.max);
}

}  // namespace vpc
