// The JavaScript `Engine` class: one dataplane engine, its commands (as
// Promises), its events (batched through one thread-safe function), counters
// and pipe ends. The only code besides addon.cc that includes napi.h.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/engine.h"
#include "cpu_affinity.h"
#include "ports/spec.h"
#include "submitter.h"

namespace vpc::addon {

class EngineWrap;

// A command's answer, for the JS thread to settle its Promise with.
struct Completion {
  uint32_t id;
  Result result;
  bool open_failed;  // the port the command brings could not be opened (stage 'open')
};
// Shared between the thread that applies commands and appends their
// completions (the engine's; the submitter's while the engine is stopped)
// and the JS thread (which drains them). Outlives the wrap: the thread-safe
// function's finalizer deletes it.
struct Hub {
  std::mutex mu;
  std::vector<Completion> done;
  EngineWrap* wrap = nullptr;  // JS thread only; nullptr once the wrap is gone
};

void DeliverToJs(Napi::Env env, Napi::Function, Hub* hub, void*);
using Tsfn = Napi::TypedThreadSafeFunction<Hub, void, DeliverToJs>;

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

  // Called on the JS thread through the thread-safe function.
  void Drain(Napi::Env env);

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsRunning(const Napi::CallbackInfo& info);
  Napi::Value Command(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Schema(const Napi::CallbackInfo& info);
  Napi::Value PipeSend(const Napi::CallbackInfo& info);
  Napi::Value PipeReceive(const Napi::CallbackInfo& info);
  Napi::Value PipeSetLink(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value PortStatusOf(const Napi::CallbackInfo& info);
  // Capture and trace (observe_wrap.cc).
  Napi::Value CaptureStart(const Napi::CallbackInfo& info);
  Napi::Value CaptureRead(const Napi::CallbackInfo& info);
  Napi::Value CaptureStop(const Napi::CallbackInfo& info);
  Napi::Value TraceStart(const Napi::CallbackInfo& info);
  Napi::Value TraceRead(const Napi::CallbackInfo& info);
  Napi::Value TraceStop(const Napi::CallbackInfo& info);
  // Queues a command for the submitter (submitter.h); its result settles the
  // returned Promise. `open` (with `spec`): the kernel-facing port the
  // command brings, opened on the submitter first.
  Napi::Promise Submit(Napi::Env env, std::unique_ptr<vpc::Command> cmd, uint32_t id, SubmitJob job = {});
  // Checks a kernel-facing port's spec and options (kind != 'pipe') on the JS
  // thread: a bad one throws a coded JS error with `stage: 'open'`.
  SubmitJob KernelPortJob(Napi::Env env, const Napi::Object& o);

  void CheckOpen(Napi::Env env) const;
  PipePeer& Peer(Napi::Env env, const Napi::Value& id);
  void Shutdown(Napi::Env env);
  void SettleCompletions(Napi::Env env);
  void DeliverEvents(Napi::Env env);

  std::unique_ptr<Engine> engine_;
  CpuVacate vacate_;  // while a pinned engine runs, the process's other threads keep off its CPU
  std::unique_ptr<Submitter> submitter_;  // stopped before engine_ goes
  std::unique_ptr<PortCloser> closer_;    // destroyed after engine_, before completions settle
  Hub* hub_ = nullptr;
  Tsfn tsfn_;
  bool tsfn_ref_ = false;
  Napi::FunctionReference on_events_;
  uint32_t next_cmd_ = 1;
  std::unordered_map<uint32_t, Napi::Promise::Deferred> pending_;
  std::unordered_map<uint32_t, std::unique_ptr<PipePeer>> pending_peers_;  // by command
  std::unordered_map<uint32_t, std::unique_ptr<PipePeer>> peers_;          // by port id
  std::unordered_map<uint32_t, std::shared_ptr<PortStatus>> pending_status_;  // by command
  std::unordered_map<uint32_t, std::shared_ptr<PortStatus>> port_status_;     // by port id
  std::unordered_map<uint32_t, CmdOp> pending_ops_;
  std::unordered_map<uint32_t, uint32_t> pending_delete_port_;  // cmd -> port id
  std::unordered_map<uint32_t, std::shared_ptr<CaptureSession>> pending_captures_;  // by command
  std::unordered_map<uint32_t, std::shared_ptr<CaptureSession>> captures_;          // by capture id
  std::shared_ptr<TraceSession> trace_;  // the last trace started (readable after it stops)
  std::vector<Event> event_buf_;
  uint32_t uplink_port_ = kNoId;
};

}  // namespace vpc::addon
