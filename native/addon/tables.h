// The shared lists (ops, status codes, event types, value ranges) as one JS
// object; see tables.cc.
#pragma once

#include <napi.h>

namespace vpc::addon {

Napi::Value Tables(const Napi::CallbackInfo& info);

}  // namespace vpc::addon
