// Module entry point: registers the exported classes and nothing else.
#include <napi.h>

#include "engine_wrap.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", vpc::addon::EngineWrap::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(vpc_native, Init)
