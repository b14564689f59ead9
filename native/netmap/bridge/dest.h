// What pass 1 of the switching passes (bridge/forward.cc) decides for each
// frame: a member id, or one of these destinations above every member id.
#pragma once

#include <cstdint>

#include "bridge/state.h"

namespace vpc {

constexpr uint16_t kDestDrop = 0xFFFF;
constexpr uint16_t kDestFloodBcast = 0xFFFE;
constexpr uint16_t kDestFloodMcast = 0xFFFD;
constexpr uint16_t kDestFloodUnknown = 0xFFFC;
constexpr uint16_t kDestFirstSpecial = 0xFFFC;
static_assert(kMaxMembers <= kDestFirstSpecial, "member ids stay below the special destinations");

}  // namespace vpc
