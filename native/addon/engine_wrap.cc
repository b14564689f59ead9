#include "engine_wrap.h"

#include <stdexcept>
#include <type_traits>
#include <vector>
#include <system_error>

#include "convert.h"

namespace vpc::addon {

namespace {
constexpr uint32_t kEventChunk = 1024;
}

void DeliverToJs(Napi::Env env, Napi::Function, Hub* hub, void*) {
  if (env == nullptr || hub == nullptr || hub->wrap == nullptr) return;
  hub->wrap->Drain(env);
}

Napi::Function EngineWrap::Init(Napi::Env env) {
  return DefineClass(env, "Engine",
                     {
                         InstanceMethod<&EngineWrap::Start>("start"),
                         InstanceMethod<&EngineWrap::Stop>("stop"),
                         InstanceMethod<&EngineWrap::Close>("close"),
                         InstanceMethod<&EngineWrap::IsRunning>("isRunning"),
                         InstanceMethod<&EngineWrap::Command>("command"),
                         InstanceMethod<&EngineWrap::Stats>("stats"),
                         InstanceMethod<&EngineWrap::Schema>("schema"),
                         InstanceMethod<&EngineWrap::PipeSend>("pipeSend"),
                         InstanceMethod<&EngineWrap::PipeReceive>("pipeReceive"),
                         InstanceMethod<&EngineWrap::PipeSetLink>("pipeSetLink"),
                         InstanceMethod<&EngineWrap::Info>("info"),
                         InstanceMethod<&EngineWrap::PortStatusOf>("portStatus"),
                         InstanceMethod<&EngineWrap::CaptureStart>("captureStart"),
                         InstanceMethod<&EngineWrap::CaptureRead>("captureRead"),
                         InstanceMethod<&EngineWrap::CaptureStop>("captureStop"),
                         InstanceMethod<&EngineWrap::TraceStart>("traceStart"),
                         InstanceMethod<&EngineWrap::TraceRead>("traceRead"),
                         InstanceMethod<&EngineWrap::TraceStop>("traceStop"),
                     });
}

EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    ThrowCoded(env, "INVALID_ARGUMENT", "Engine(options, onEvents): options object and callback required");
  EngineOptions opts = ToEngineOptions(env, info[0].As<Napi::Object>());
  try {
    engine_ = std::make_unique<Engine>(opts);
  } catch (const std::invalid_argument& e) {
    ThrowCoded(env, "INVALID_ARGUMENT", e.what());
  } catch (const std::system_error& e) {
    ThrowCoded(env, "SYSTEM", e.what());
  }
  submitter_ = std::make_unique<Submitter>(engine_.get());
  closer_ = std::make_unique<PortCloser>();
  on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
  hub_ = new Hub();
  hub_->wrap = this;
  tsfn_ = Tsfn::New(env, "vpc-engine", 0, 1, hub_, [](Napi::Env, void*, Hub* hub) { delete hub; });
  // Unreferenced while nothing is pending: an idle dataplane must not keep
  // the process alive on its own.
  tsfn_.Unref(env);
  event_buf_.resize(kEventChunk);
  Tsfn* t = &tsfn_;
  engine_->set_notify([t] { t->NonBlockingCall(); });
}

EngineWrap::~EngineWrap() {
  // Finalizer: no JavaScript may run here. Stop the thread first so nothing
  // calls the thread-safe function any more, then let it go.
  if (engine_) {
    submitter_.reset();
    engine_.reset();
    vacate_.restore();
    closer_.reset();
    hub_->wrap = nullptr;
    tsfn_.Release();
  }
}

void EngineWrap::CheckOpen(Napi::Env env) const {
  if (!engine_) ThrowCoded(env, "CLOSED", "dataplane is closed");
}

Napi::Value EngineWrap::Start(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  if (!engine_->running() && engine_->options().cpu >= 0) vacate_.vacate(engine_->options().cpu);
  engine_->start();
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Stop(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  engine_->stop();
  vacate_.restore();
  return info.Env().Undefined();
}

Napi::Value EngineWrap::IsRunning(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), engine_ && engine_->running());
}

void EngineWrap::Shutdown(Napi::Env env) {
  if (!engine_) return;
  // The submitter finishes the command in hand and drops the queued ones
  // (rejected below). Destroying the engine joins its thread and fails the
  // commands it holds; their completions land in the hub and are settled
  // right below.
  submitter_.reset();
  engine_.reset();
  vacate_.restore();
  closer_.reset();
  SettleCompletions(env);
  for (auto& [id, d] : pending_) d.Reject(MakeCoded(env, "CLOSED", "dataplane closed").Value());
  pending_.clear();
  pending_ops_.clear();
  pending_peers_.clear();
  pending_status_.clear();
  port_status_.clear();
  pending_delete_port_.clear();
  pending_captures_.clear();
  captures_.clear();
  trace_.reset();
  peers_.clear();
  hub_->wrap = nullptr;
  tsfn_.Release();
  on_events_.Reset();
}

Napi::Value EngineWrap::Close(const Napi::CallbackInfo& info) {
  Shutdown(info.Env());
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Command(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsObject()) ThrowCoded(env, "INVALID_ARGUMENT", "command: object required");
  auto cmd = std::make_unique<vpc::Command>();
  uint32_t ring_size = 0;
  ToCommand(env, info[0].As<Napi::Object>(), cmd.get(), &ring_size);
  SubmitJob job;
  uint32_t id = next_cmd_;
  if (cmd->op == CmdOp::kCreatePort || cmd->op == CmdOp::kCreateUplink) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Get("kind").As<Napi::String>().Utf8Value() == "pipe") {
      PipePair pair = engine_->new_pipe(ring_size);
      cmd->new_port = std::move(pair.port);
      pending_peers_[id] = std::move(pair.peer);
    } else {
      job = KernelPortJob(env, o);
      pending_status_[id] = job.status;
    }
  }
  ++next_cmd_;
  if (cmd->op == CmdOp::kDeletePort) pending_delete_port_[id] = cmd->port;
  return Submit(env, std::move(cmd), id, std::move(job));
}

Napi::Promise EngineWrap::Submit(Napi::Env env, std::unique_ptr<vpc::Command> cmd, uint32_t id, SubmitJob job) {
  pending_ops_[id] = cmd->op;
  Hub* hub = hub_;
  Tsfn* t = &tsfn_;
  auto complete = [hub, t, id](Result&& r, bool open_failed) {
    {
      std::lock_guard<std::mutex> g(hub->mu);
      hub->done.push_back(Completion{id, std::move(r), open_failed});
    }
    t->NonBlockingCall();
  };
  PortCloser* closer = closer_.get();
  cmd->done = [complete, closer](Result&& r) {
    // A deleted port's backend is closed on the closer's thread, and the
    // command settles after (PortCloser).
    if (r.closed_port) {
      std::shared_ptr<Port> port = std::move(r.closed_port);
      closer->close(std::move(port), [complete, r = std::move(r)]() mutable { complete(std::move(r), false); });
      return;
    }
    complete(std::move(r), false);
  };
  job.open_failed = [complete](Status s, std::string msg) { complete(Result::error(s, std::move(msg)), true); };
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  pending_.emplace(id, d);
  if (!tsfn_ref_) {
    tsfn_.Ref(env);
    tsfn_ref_ = true;
  }
  job.cmd = std::move(cmd);
  submitter_->push(std::move(job));
  return d.Promise();
}

void EngineWrap::SettleCompletions(Napi::Env env) {
  std::vector<Completion> done;
  {
    std::lock_guard<std::mutex> g(hub_->mu);
    done.swap(hub_->done);
  }
  for (Completion& c : done) {
    const uint32_t id = c.id;
    Result& r = c.result;
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    Napi::Promise::Deferred d = it->second;
    pending_.erase(it);
    CmdOp op = pending_ops_[id];
    pending_ops_.erase(id);
    if (op == CmdOp::kCreateUplink && r.ok()) uplink_port_ = r.id;
    if (op == CmdOp::kStartCapture) {
      if (r.ok()) captures_[r.id] = pending_captures_[id];
      pending_captures_.erase(id);
    }
    if (op == CmdOp::kDeleteUplink && r.ok()) {
      peers_.erase(uplink_port_);
      port_status_.erase(uplink_port_);
      uplink_port_ = kNoId;
    }
    if (op == CmdOp::kCreatePort || op == CmdOp::kCreateUplink) {
      auto pit = pending_peers_.find(id);
      if (r.ok() && pit != pending_peers_.end()) peers_[r.id] = std::move(pit->second);
      if (pit != pending_peers_.end()) pending_peers_.erase(pit);
      auto sit = pending_status_.find(id);
      if (r.ok() && sit != pending_status_.end()) port_status_[r.id] = std::move(sit->second);
      if (sit != pending_status_.end()) pending_status_.erase(sit);
    } else if (op == CmdOp::kDeletePort) {
      if (r.ok()) {
        peers_.erase(pending_delete_port_[id]);
        port_status_.erase(pending_delete_port_[id]);
      }
      pending_delete_port_.erase(id);
    }
    if (r.ok()) {
      d.Resolve(FromResult(env, r));
    } else {
      Napi::Error e = MakeCoded(env, status_code(r.status), r.message);
      if (c.open_failed) e.Set("stage", Napi::String::New(env, "open"));
      d.Reject(e.Value());
    }
  }
  if (pending_.empty() && tsfn_ref_ && engine_) {
    tsfn_.Unref(env);
    tsfn_ref_ = false;
  }
}

void EngineWrap::DeliverEvents(Napi::Env env) {
  if (!engine_ || on_events_.IsEmpty()) return;
  for (;;) {
    uint32_t n = engine_->drain_events(event_buf_.data(), kEventChunk);
    if (n == 0) break;
    Napi::Array a = Napi::Array::New(env, n);
    for (uint32_t i = 0; i < n; ++i) a.Set(i, FromEvent(env, event_buf_[i]));
    on_events_.Call({a});
    if (!engine_) break;  // the callback closed us
  }
}

void EngineWrap::Drain(Napi::Env env) {
  Napi::HandleScope scope(env);
  SettleCompletions(env);
  try {
    DeliverEvents(env);
  } catch (const Napi::Error& e) {
    // A throwing 'events' listener is the application's bug: surface it as an
    // uncaught exception, as Node does for EventEmitter listeners.
    e.ThrowAsJavaScriptException();
  }
}

static Napi::Object CounterObject(Napi::Env env, const uint64_t* vals, const CounterInfo* names, size_t n) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < n; ++i) o.Set(names[i].name, Napi::Number::New(env, double(cnt_read(vals[i]))));
  return o;
}

// The counters of every slot in use of one kind (ports, switches) as one
// table: ids[r] is the slot of row r, counters holds row r's counters at
// [r * n, (r + 1) * n) in schema order, drops its drop reasons likewise. A
// thousand ports are three typed arrays, not 40,000 object properties: the
// JavaScript side names them (Dataplane.stats()).
template <class BlockOf>
static Napi::Object CounterTable(Napi::Env env, uint32_t slots, BlockOf block_of) {
  using Block = std::remove_cvref_t<decltype(block_of(0))>;
  constexpr size_t n = std::extent_v<decltype(Block::c)>;
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < slots; ++i)
    if (cnt_read(block_of(i).in_use)) ids.push_back(i);
  Napi::Uint32Array id_arr = Napi::Uint32Array::New(env, ids.size());
  Napi::Float64Array counters = Napi::Float64Array::New(env, ids.size() * n);
  Napi::Float64Array drops = Napi::Float64Array::New(env, ids.size() * kDrops);
  double* c = counters.Data();
  double* d = drops.Data();
  for (size_t r = 0; r < ids.size(); ++r) {
    const Block& b = block_of(ids[r]);
    id_arr[r] = ids[r];
    for (size_t i = 0; i < n; ++i) c[r * n + i] = double(cnt_read(b.c[i]));
    for (size_t i = 0; i < kDrops; ++i) d[r * kDrops + i] = double(cnt_read(b.drops[i]));
  }
  Napi::Object t = Napi::Object::New(env);
  t.Set("ids", id_arr);
  t.Set("counters", counters);
  t.Set("drops", drops);
  return t;
}

Napi::Value EngineWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const EngineOptions& o = engine_->options();
  Napi::Object out = Napi::Object::New(env);
  const EngineCounterBlock& ec = engine_->engine_counters();
  out.Set("engine", CounterObject(env, ec.c, kEngineCounterInfo, kEngineCounters));
  out.Set("eventsDropped", Napi::Number::New(env, double(cnt_read(ec.c[size_t(EngineCounter::events_dropped)]))));
  out.Set("ports", CounterTable(env, o.max_ports, [&](uint32_t p) -> const PortCounterBlock& {
    return engine_->port_counters(p);
  }));
  out.Set("switches", CounterTable(env, o.max_switches, [&](uint32_t s) -> const SwitchCounterBlock& {
    return engine_->switch_counters(s);
  }));
  // Peers: their totals over every switch (Engine::peer_snapshot).
  Napi::Array peers = Napi::Array::New(env);
  uint32_t k = 0;
  for (const PeerSnapshot& s : engine_->peer_snapshot()) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("id", Napi::Number::New(env, s.slot));
    x.Set("ip", ip_format(s.ip));
    x.Set("counters", CounterObject(env, s.c, kPeerCounterInfo, kPeerCounters));
    peers.Set(k++, x);
  }
  out.Set("peers", peers);
  // Per switch and peer: every live remote membership's block.
  Napi::Array switch_peers = Napi::Array::New(env);
  const SwitchPeerBlocks& spb = engine_->switch_peer_counters();
  for (MemberId m = 0, n = spb.size(); m < n; ++m) {
    const SwitchPeerCounterBlock& b = spb.at(m);
    if (!cnt_read(b.in_use)) continue;
    const uint64_t owner = cnt_read(b.owner);
    Napi::Object x = Napi::Object::New(env);
    x.Set("switchId", Napi::Number::New(env, double(owner >> 32)));
    x.Set("peerId", Napi::Number::New(env, double(owner & 0xFFFFFFFFu)));
    x.Set("counters", CounterObject(env, b.c, kSwitchPeerCounterInfo, kSwitchPeerCounters));
    switch_peers.Set(switch_peers.Length(), x);
  }
  out.Set("switchPeers", switch_peers);
  if (uplink_port_ != kNoId) {
    const UplinkCounterBlock& ub = engine_->uplink_counters();
    Napi::Object x = Napi::Object::New(env);
    x.Set("portId", Napi::Number::New(env, uplink_port_));
    x.Set("counters", CounterObject(env, ub.c, kUplinkCounterInfo, kUplinkCounters));
    out.Set("uplink", x);
  }
  // Every kernel-facing port's backend counters (the uplink's included).
  Napi::Array backend = Napi::Array::New(env, port_status_.size());
  uint32_t b = 0;
  for (const auto& [id, st] : port_status_) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("portId", Napi::Number::New(env, id));
    x.Set("counters", BackendCounters(env, *st));
    if (st->vhost) x.Set("queues", VhostQueueStats(env, *st));
    backend.Set(b++, x);
  }
  out.Set("backend", backend);
  return out;
}

static Napi::Array InfoArray(Napi::Env env, const CounterInfo* t, size_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t[i].name);
    o.Set("kind", counter_kind_name(t[i].kind));
    o.Set("help", t[i].help);
    a.Set(uint32_t(i), o);
  }
  return a;
}

Napi::Value EngineWrap::Schema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("engine", InfoArray(env, kEngineCounterInfo, kEngineCounters));
  o.Set("port", InfoArray(env, kPortCounterInfo, kPortCounters));
  o.Set("switch", InfoArray(env, kSwitchCounterInfo, kSwitchCounters));
  o.Set("drop", InfoArray(env, kDropInfo, kDrops));
  o.Set("peer", InfoArray(env, kPeerCounterInfo, kPeerCounters));
  o.Set("switchPeer", InfoArray(env, kSwitchPeerCounterInfo, kSwitchPeerCounters));
  o.Set("uplink", InfoArray(env, kUplinkCounterInfo, kUplinkCounters));
  Napi::Array backend = Napi::Array::New(env, PortStatus::kCount);
  for (uint32_t i = 0; i < PortStatus::kCount; ++i) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("name", PortStatus::kNames[i]);
    x.Set("kind", "counter");  // backends count events; none reports a level
    x.Set("help", PortStatus::kHelp[i]);
    backend.Set(i, x);
  }
  o.Set("backend", backend);
  o.Set("virtq", InfoArray(env, kVirtqCounterInfo, kVirtqCounters));
  o.Set("virtqDrop", InfoArray(env, kVirtqDropInfo, kVirtqDrops));
  return o;
}

PipePeer& EngineWrap::Peer(Napi::Env env, const Napi::Value& v) {
  CheckOpen(env);
  if (!v.IsNumber()) ThrowCoded(env, "INVALID_ARGUMENT", "portId: must be a number");
  auto it = peers_.find(v.As<Napi::Number>().Uint32Value());
  if (it == peers_.end()) ThrowCoded(env, "NOT_FOUND", "portId: no pipe port with this id");
  return *it->second;
}

Napi::Value EngineWrap::PipeSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipePeer& peer = Peer(env, info[0]);
  if (info.Length() < 2 || !info[1].IsArray()) ThrowCoded(env, "INVALID_ARGUMENT", "frames: must be an array of Buffers");
  Napi::Array arr = info[1].As<Napi::Array>();
  uint32_t n = arr.Length();
  std::vector<const uint8_t*> ptrs(n);
  std::vector<uint16_t> lens(n);
  uint32_t max = peer.pool().max_frame();
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsBuffer()) ThrowCoded(env, "INVALID_ARGUMENT", "frames[" + std::to_string(i) + "]: must be a Buffer");
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    if (b.Length() > max)
      ThrowCoded(env, "INVALID_ARGUMENT", "frames[" + std::to_string(i) + "]: longer than a buffer (" + std::to_string(max) + " bytes)");
    ptrs[i] = b.Data();
    lens[i] = uint16_t(b.Length());
  }
  return Napi::Number::New(env, peer.send_copy(ptrs.data(), lens.data(), n));
}

Napi::Value EngineWrap::PipeReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipePeer& peer = Peer(env, info[0]);
  uint32_t max = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : kMaxBurst;
  Napi::Array out = Napi::Array::New(env);
  Pkt pk[kMaxBurst];
  uint32_t k = 0;
  while (k < max) {
    uint32_t n = peer.recv(pk, std::min<uint32_t>(kMaxBurst, max - k));
    if (!n) break;
    for (uint32_t i = 0; i < n; ++i) {
      out.Set(k++, Napi::Buffer<uint8_t>::Copy(env, peer.pool().frame(pk[i]), pk[i].len));
      peer.cache().free(pk[i].buf);
    }
  }
  return out;
}

Napi::Value EngineWrap::PipeSetLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipePeer& peer = Peer(env, info[0]);
  if (info.Length() < 2 || !info[1].IsBoolean()) ThrowCoded(env, "INVALID_ARGUMENT", "up: must be a boolean");
  peer.set_link(info[1].As<Napi::Boolean>().Value());
  return env.Undefined();
}

Napi::Value EngineWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  BufferPool& pool = *engine_->pool();
  Napi::Object o = Napi::Object::New(env);
  o.Set("hugepages", Napi::Boolean::New(env, pool.hugepages()));
  o.Set("bufferCount", Napi::Number::New(env, pool.count()));
  o.Set("bufferSize", Napi::Number::New(env, pool.buf_size()));
  o.Set("buffersFree", Napi::Number::New(env, pool.available()));
  Napi::Object lw = Napi::Object::New(env);
  static constexpr const char* kLinkWatchModes[] = {"off", "own-namespace", "all-namespaces"};
  lw.Set("mode", Napi::String::New(env, kLinkWatchModes[std::min<uint32_t>(engine_->link_watch_mode(), 2)]));
  if (!engine_->link_watch_why().empty()) lw.Set("why", Napi::String::New(env, engine_->link_watch_why()));
  o.Set("linkWatch", lw);
  return o;
}

SubmitJob EngineWrap::KernelPortJob(Napi::Env env, const Napi::Object& o) {
  PortOpenRequest req;
  ToPortOpen(env, o, &req);
  SubmitJob job;
  std::string err;
  if (!parse_port_spec(req.spec, &job.spec, &err)) {
    Napi::Error e = MakeCoded(env, "INVALID_ARGUMENT", err);
    e.Set("stage", Napi::String::New(env, "open"));
    throw e;
  }
  job.open = true;
  job.opts = std::move(req.opts);
  job.status = std::make_shared<PortStatus>();
  return job;
}

Napi::Value EngineWrap::PortStatusOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowCoded(env, "INVALID_ARGUMENT", "portId: must be a number");
  auto it = port_status_.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == port_status_.end()) return env.Undefined();
  Napi::Object o = FromPortStatus(env, *it->second);
  // A capture or trace takes the kernel path off for every port while it
  // runs (they must see every frame): the port's own line says what it has
  // once they end.
  const EngineCounterBlock& ec = engine_->engine_counters();
  const std::string kp = it->second->kernel_path();
  if (cnt_read(ec.c[size_t(EngineCounter::kernel_path_paused)]) != 0 && kp.rfind("on", 0) == 0)
    o.Set("kernelPath", "paused: a capture or trace is running, so every frame goes through the engine until it ends; then " + kp);
  return o;
}

}  // namespace vpc::addon
