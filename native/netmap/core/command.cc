// Names of the command.h tables, generated from the X-macros there.
#include "core/command.h"

namespace vpc {

namespace {

template <class E, size_t N>
const char* name_of(E e, const char* const (&names)[N], const char* fallback) {
  size_t i = size_t(e);
  return i < N ? names[i] : fallback;
}

#define VPC_STATUS_NAME_ROW(e, code, error) #code,
constexpr const char* kStatusCodes[] = {VPC_STATUS_CODES(VPC_STATUS_NAME_ROW)};
#undef VPC_STATUS_NAME_ROW

#define VPC_COMMAND_NAME_ROW(e, op, handler) #op,
constexpr const char* kCommandOps[] = {VPC_COMMAND_OPS(VPC_COMMAND_NAME_ROW)};
#undef VPC_COMMAND_NAME_ROW

#define VPC_EVENT_NAME_ROW(e, name) #name,
constexpr const char* kEventTypes[] = {VPC_EVENT_TYPES(VPC_EVENT_NAME_ROW)};
#undef VPC_EVENT_NAME_ROW

}  // namespace

const char* status_code(Status s) { return name_of(s, kStatusCodes, "INTERNAL"); }
const char* command_op_name(CmdOp op) { return name_of(op, kCommandOps, "unknown"); }
const char* event_type_name(EventType t) { return name_of(t, kEventTypes, "unknown"); }

}  // namespace vpc
