// Reason tables for the proto/ libraries: an X-macro list of (name, help)
// rows becomes an enum with a kCount sentinel and a table of names and help
// texts, so the engine can map each reason onto a counter without a second
// list to keep in step (as core/counters.h does for counters).
#pragma once

#include <cstdint>

namespace vpc {

struct ReasonInfo {
  const char* name;
  const char* help;
};

#define VPC_REASON_ENUM_ROW(name, help) name,
#define VPC_REASON_INFO_ROW(name, help) {#name, help},

// The row for e, or `fallback` when e is out of range.
template <typename E, uint32_t N>
inline const ReasonInfo& reason_info(const ReasonInfo (&table)[N], E e, const ReasonInfo& fallback) {
  return uint32_t(e) < N ? table[uint32_t(e)] : fallback;
}

}  // namespace vpc
