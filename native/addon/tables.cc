// tables(): the lists the engine shares with TypeScript, straight from their
// X-macros (core/command.h, core/limits.h). src/dataplane/native-tables.ts
// is generated from this export (npm run gen:tables) and checked against it
// by test/dataplane/native-tables.test.ts.
#include "tables.h"

#include "core/command.h"
#include "core/limits.h"

namespace vpc::addon {

Napi::Value Tables(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);

  Napi::Array ops = Napi::Array::New(env);
#define VPC_TABLE_OP_ROW(e, op, handler) ops.Set(ops.Length(), #op);
  VPC_COMMAND_OPS(VPC_TABLE_OP_ROW)
#undef VPC_TABLE_OP_ROW
  out.Set("ops", ops);

  Napi::Array statuses = Napi::Array::New(env);
  auto status = [&](const char* code, const char* error) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("code", code);
    o.Set("error", error);
    statuses.Set(statuses.Length(), o);
  };
#define VPC_TABLE_STATUS_ROW(e, code, error) status(#code, error);
  VPC_STATUS_CODES(VPC_TABLE_STATUS_ROW)
#undef VPC_TABLE_STATUS_ROW
  out.Set("statuses", statuses);

  Napi::Array events = Napi::Array::New(env);
#define VPC_TABLE_EVENT_ROW(e, name) events.Set(uint32_t(EventType::e), #name);
  VPC_EVENT_TYPES(VPC_TABLE_EVENT_ROW)
#undef VPC_TABLE_EVENT_ROW
  out.Set("events", events);

  Napi::Array limits = Napi::Array::New(env, kLimitCount);
  for (uint32_t i = 0; i < kLimitCount; ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", kLimits[i].id);
    o.Set("field", kLimits[i].field);
    o.Set("min", Napi::Number::New(env, double(kLimits[i].min)));
    o.Set("max", Napi::Number::New(env, double(kLimits[i].max)));
    limits.Set(i, o);
  }
  out.Set("limits", limits);
  return out;
}

}  // namespace vpc::addon
