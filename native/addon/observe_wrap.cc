// The JavaScript face of capture and trace (core/capture.h, core/trace.h):
// start and stop are engine commands (Promises); reads drain the capture's
// ring, or copy the trace's published records, on the JS thread without
// stopping the engine.
#include "convert.h"
#include "engine_wrap.h"

namespace vpc::addon {

static Napi::Object ArgObject(const Napi::CallbackInfo& info, const char* what) {
  if (info.Length() < 1 || !info[0].IsObject()) ThrowCoded(info.Env(), "INVALID_ARGUMENT", std::string(what) + ": object required");
  return info[0].As<Napi::Object>();
}

static uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowCoded(info.Env(), "INVALID_ARGUMENT", std::string(name) + ": number required");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != double(uint32_t(d)))
    ThrowCoded(info.Env(), "INVALID_ARGUMENT", std::string(name) + ": must be a non-negative integer");
  return uint32_t(d);
}

// captureStart({portId, switchId, direction, snaplen, slots}) -> Promise<{id}>
Napi::Value EngineWrap::CaptureStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  auto cmd = std::make_unique<vpc::Command>();
  cmd->op = CmdOp::kStartCapture;
  cmd->capture = ToCaptureSession(env, ArgObject(info, "captureStart"));
  uint32_t id = next_cmd_++;
  pending_captures_[id] = cmd->capture;
  return Submit(env, std::move(cmd), id);
}

// captureRead(id, maxRecords) -> {pcap: Buffer (libpcap records), ports:
// Uint16Array, dirs: Uint8Array (1 in, 2 out), captured, dropped, header:
// Buffer (the pcap file header for this capture's snaplen)}, or undefined
// when no such capture runs.
Napi::Value EngineWrap::CaptureRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  auto it = captures_.find(ArgU32(info, 0, "id"));
  if (it == captures_.end()) return env.Undefined();
  const uint32_t max = ArgU32(info, 1, "maxRecords");
  CaptureSession& cs = *it->second;
  std::vector<uint8_t> bytes;
  std::vector<uint16_t> ports;
  std::vector<uint8_t> dirs;
  cs.ring.drain(max, [&](const CaptureRecord& r, const uint8_t* data) {
    const size_t at = bytes.size();
    bytes.resize(at + kPcapRecordHeaderLen + r.cap_len);
    pcap_record_header(bytes.data() + at, r);
    std::memcpy(bytes.data() + at + kPcapRecordHeaderLen, data, r.cap_len);
    ports.push_back(r.port);
    dirs.push_back(r.dir);
  });
  Napi::Object o = Napi::Object::New(env);
  o.Set("pcap", Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
  Napi::Uint16Array pa = Napi::Uint16Array::New(env, ports.size());
  Napi::Uint8Array da = Napi::Uint8Array::New(env, dirs.size());
  for (size_t i = 0; i < ports.size(); ++i) {
    pa[i] = ports[i];
    da[i] = dirs[i];
  }
  o.Set("ports", pa);
  o.Set("dirs", da);
  o.Set("captured", Napi::Number::New(env, double(cs.captured.load(std::memory_order_relaxed))));
  o.Set("dropped", Napi::Number::New(env, double(cs.dropped.load(std::memory_order_relaxed))));
  o.Set("ended", Napi::Boolean::New(env, cs.ended.load(std::memory_order_acquire)));
  uint8_t h[kPcapFileHeaderLen];
  pcap_file_header(h, cs.ring.snaplen());
  o.Set("header", Napi::Buffer<uint8_t>::Copy(env, h, sizeof h));
  return o;
}

// captureStop(id) -> Promise; what was still in the ring is discarded.
Napi::Value EngineWrap::CaptureStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const uint32_t cid = ArgU32(info, 0, "id");
  auto it = captures_.find(cid);
  if (it == captures_.end()) ThrowCoded(env, "NOT_FOUND", "capture " + std::to_string(cid) + ": not running");
  auto cmd = std::make_unique<vpc::Command>();
  cmd->op = CmdOp::kStopCapture;
  cmd->capture = std::move(it->second);
  captures_.erase(it);
  return Submit(env, std::move(cmd), next_cmd_++);
}

// traceStart({count, portId}) -> Promise; replaces the previous trace.
Napi::Value EngineWrap::TraceStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  auto cmd = std::make_unique<vpc::Command>();
  cmd->op = CmdOp::kStartTrace;
  cmd->trace = ToTraceSession(env, ArgObject(info, "traceStart"));
  trace_ = cmd->trace;
  return Submit(env, std::move(cmd), next_cmd_++);
}

// traceRead() -> {count, portId, records: [{portId, length, truncated,
// lines: [{ns, stage, text}]}]}: the records published so far; undefined
// before any trace started.
Napi::Value EngineWrap::TraceRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (!trace_) return env.Undefined();
  const TraceSession& t = *trace_;
  const uint32_t n = t.published();
  Napi::Array recs = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; ++i) {
    const TraceRecord& r = t.record(i);
    Napi::Object o = Napi::Object::New(env);
    o.Set("portId", Napi::Number::New(env, r.port));
    o.Set("length", Napi::Number::New(env, r.len));
    o.Set("truncated", Napi::Boolean::New(env, r.truncated));
    Napi::Array lines = Napi::Array::New(env, r.nlines);
    for (uint32_t k = 0; k < r.nlines; ++k) {
      Napi::Object l = Napi::Object::New(env);
      l.Set("ns", Napi::Number::New(env, double(r.lines[k].ns)));
      l.Set("stage", Napi::String::New(env, trace_stage_name(r.lines[k].stage)));
      l.Set("text", Napi::String::New(env, r.lines[k].text));
      lines.Set(k, l);
    }
    o.Set("lines", lines);
    recs.Set(i, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", Napi::Number::New(env, t.count()));
  out.Set("portId", Napi::Number::New(env, t.port() == kNoId ? -1.0 : double(t.port())));
  out.Set("records", recs);
  return out;
}

// traceStop() -> Promise; the records stay readable until the next start.
Napi::Value EngineWrap::TraceStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  auto cmd = std::make_unique<vpc::Command>();
  cmd->op = CmdOp::kStopTrace;
  return Submit(env, std::move(cmd), next_cmd_++);
}

}  // namespace vpc::addon
