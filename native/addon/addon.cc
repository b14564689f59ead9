// Module entry point: registers the exported classes and nothing else.
#include <napi.h>

#include <unistd.h>

#include "engine_wrap.h"
#include "tables.h"
#include "ports/afxdp.h"
#include "ports/ifutil.h"

namespace {

// setOffloadJournal(dir): kernel ports record the offloads they turn off in
// `dir` until they restore them ("" turns the journal off).
Napi::Value SetOffloadJournal(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(info.Env(), "dir: must be a string").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  vpc::offloads_journal(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

// recoverOffloads(dir): restores the offloads recorded in `dir` by a process
// that could not (kill -9) and deletes the records. Returns the interfaces.
Napi::Value RecoverOffloads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "dir: must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int ctl = vpc::ctl_socket();
  std::string err;
  std::vector<std::string> names;
  if (ctl >= 0) {
    names = vpc::offloads_recover(ctl, info[0].As<Napi::String>().Utf8Value(), &err);
    close(ctl);
  }
  Napi::Array out = Napi::Array::New(env, names.size());
  for (uint32_t i = 0; i < names.size(); ++i) out.Set(i, names[i]);
  return out;
}

// recoverXdp(dir): detaches the XDP programs recorded in `dir` by a process
// that could not (kill -9) and deletes the records. Returns the interfaces.
Napi::Value RecoverXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "dir: must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::string> names = vpc::xdp_recover(info[0].As<Napi::String>().Utf8Value());
  Napi::Array out = Napi::Array::New(env, names.size());
  for (uint32_t i = 0; i < names.size(); ++i) out.Set(i, names[i]);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", vpc::addon::EngineWrap::Init(env));
  exports.Set("setOffloadJournal", Napi::Function::New(env, SetOffloadJournal, "setOffloadJournal"));
  exports.Set("recoverOffloads", Napi::Function::New(env, RecoverOffloads, "recoverOffloads"));
  exports.Set("recoverXdp", Napi::Function::New(env, RecoverXdp, "recoverXdp"));
  exports.Set("tables", Napi::Function::New(env, vpc::addon::Tables, "tables"));
  return exports;
}

}  // namespace

NODE_API_MODULE(vpc_native, Init)
