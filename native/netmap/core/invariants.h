// Shared by the owners' check_invariants() (test seams): the prefix of a
// violation's description.
#pragma once

#include <cstdint>
#include <string>

namespace vpc {

inline std::string invariant_at(const char* what, uint64_t i) { return std::string(what) + " " + std::to_string(i) + ": "; }

}  // namespace vpc
