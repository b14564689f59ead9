// Conversions between JavaScript values and the engine's plain structs.
// Options are copied out of JS objects before any native work starts; every
// failure throws a JS Error whose `code` is INVALID_ARGUMENT and whose message
// names the field.
#pragma once

#include <napi.h>

#include <string>

#include "core/command.h"
#include "core/engine.h"
#include "ports/spec.h"

namespace vpc::addon {

// Throws a JS-visible error with a stable `code` (see src/dataplane/native.ts).
[[noreturn]] void ThrowCoded(Napi::Env env, const char* code, const std::string& message);
Napi::Error MakeCoded(Napi::Env env, const char* code, const std::string& message);

EngineOptions ToEngineOptions(Napi::Env env, const Napi::Object& o);
void ToUplinkConfig(Napi::Env env, const Napi::Object& o, UplinkConfig* u);
// Fills everything but new_port (which needs the engine) and done.
void ToCommand(Napi::Env env, const Napi::Object& o, Command* cmd, uint32_t* ring_size);
// The backend half of a createPort command whose kind is not 'pipe': the
// spec string and the per-port ring/burst/queue settings.
struct PortOpenRequest {
  std::string spec;
  KernelPortOptions opts;
};
void ToPortOpen(Napi::Env env, const Napi::Object& o, PortOpenRequest* req);
Napi::Object FromPortStatus(Napi::Env env, const PortStatus& st);
// The backend's counters (PortStatus::kNames) as {name: value}.
Napi::Object BackendCounters(Napi::Env env, const PortStatus& st);
// vhost-user ports (vhost_status.cc): portStatus().vhost, and the per-queue
// counters of stats() (an empty array for other backends).
void AddVhostStatus(Napi::Env env, Napi::Object& out, const PortStatus& st);
Napi::Array VhostQueueStats(Napi::Env env, const PortStatus& st);

// captureStart({portId, switchId (-1: none), direction: 1 in | 2 out | 3 both,
// snaplen, slots}) and traceStart({count, portId (-1: any)}).
std::shared_ptr<CaptureSession> ToCaptureSession(Napi::Env env, const Napi::Object& o);
std::shared_ptr<TraceSession> ToTraceSession(Napi::Env env, const Napi::Object& o);

Napi::Object FromResult(Napi::Env env, const Result& r);
Napi::Object FromEvent(Napi::Env env, const Event& ev);
Napi::String MacString(Napi::Env env, Mac m);

}  // namespace vpc::addon
