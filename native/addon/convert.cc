#include "convert.h"

#include "core/limits.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vpc::addon {

Napi::Error MakeCoded(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

void ThrowCoded(Napi::Env env, const char* code, const std::string& message) {
  throw MakeCoded(env, code, message);
}

static Napi::Value Field(Napi::Env env, const Napi::Object& o, const char* name) {
  if (!o.Has(name)) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": is required");
  return o.Get(name);
}

static uint32_t U32(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = Field(env, o, name);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!v.IsNumber() || d < 0 || d > double(std::numeric_limits<uint32_t>::max()) || std::floor(d) != d)
    ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be a non-negative integer");
  return uint32_t(d);
}

static int64_t I64(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = Field(env, o, name);
  if (!v.IsNumber()) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::floor(d) != d || std::fabs(d) > 9e15) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be an integer");
  return int64_t(d);
}

static bool Bool(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = Field(env, o, name);
  if (!v.IsBoolean()) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

static Mac MacField(Napi::Env env, const Napi::Value& v, const std::string& name) {
  Mac m;
  if (!v.IsString() || !mac_parse(v.As<Napi::String>().Utf8Value().c_str(), &m))
    ThrowCoded(env, "INVALID_ARGUMENT", name + ": must be a MAC address like 02:00:00:00:00:01");
  return m;
}

static uint32_t Id(Napi::Env env, const Napi::Object& o, const char* name) {
  int64_t v = I64(env, o, name);
  if (v < 0 || v > 0xFFFFFFF) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": not a valid id");
  return uint32_t(v);
}

static uint32_t OptionalId(Napi::Env env, const Napi::Object& o, const char* name) {
  int64_t v = I64(env, o, name);
  if (v == -1) return kNoId;
  if (v < 0 || v > 0xFFFFFFF) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": not a valid id");
  return uint32_t(v);
}

std::shared_ptr<CaptureSession> ToCaptureSession(Napi::Env env, const Napi::Object& o) {
  CaptureFilter f;
  f.port = OptionalId(env, o, "portId");
  f.sw = OptionalId(env, o, "switchId");
  const uint32_t dir = U32(env, o, "direction");
  if (dir < kCaptureIn || dir > kCaptureBoth) ThrowCoded(env, "INVALID_ARGUMENT", "direction: must be 1 (in), 2 (out) or 3 (both)");
  f.dirs = uint8_t(dir);
  const uint32_t snaplen = U32(env, o, "snaplen"), slots = U32(env, o, "slots");
  try {
    return std::make_shared<CaptureSession>(f, slots, snaplen);
  } catch (const std::invalid_argument& e) {
    ThrowCoded(env, "INVALID_ARGUMENT", e.what());
  }
}

std::shared_ptr<TraceSession> ToTraceSession(Napi::Env env, const Napi::Object& o) {
  const uint32_t count = U32(env, o, "count");
  const PortId port = OptionalId(env, o, "portId");
  try {
    return std::make_shared<TraceSession>(count, port);
  } catch (const std::invalid_argument& e) {
    ThrowCoded(env, "INVALID_ARGUMENT", e.what());
  }
}

// An IP address field; with `optional`, an absent field or '' gives zero.
static IpAddr IpField(Napi::Env env, const Napi::Object& o, const char* name, bool optional) {
  IpAddr a;
  if (optional && (!o.Has(name) || o.Get(name).IsUndefined() || o.Get(name).IsNull())) return a;
  Napi::Value v = Field(env, o, name);
  if (!v.IsString()) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be an IP address string");
  std::string str = v.As<Napi::String>().Utf8Value();
  if (optional && str.empty()) return a;
  if (!ip_parse(str.c_str(), &a)) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": '" + str + "' is not an IP address");
  return a;
}

static uint8_t U8(Napi::Env env, const Napi::Object& o, const char* name, uint32_t max) {
  uint32_t v = U32(env, o, name);
  if (v > max) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be at most " + std::to_string(max));
  return uint8_t(v);
}

static uint16_t U16(Napi::Env env, const Napi::Object& o, const char* name) {
  uint32_t v = U32(env, o, name);
  if (v > 65535) ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be at most 65535");
  return uint16_t(v);
}

// An integer field within its row of core/limits.h.
static int64_t Ranged(Napi::Env env, const Napi::Object& o, const Limit& l, const char* name = nullptr) {
  int64_t v = I64(env, o, name ? name : l.field);
  if (!l.contains(v)) ThrowCoded(env, "INVALID_ARGUMENT", range_error(l, name ? name : ""));
  return v;
}

void ToUplinkConfig(Napi::Env env, const Napi::Object& o, UplinkConfig* u) {
  u->ip4 = IpField(env, o, "localIp4", true);
  u->prefix4 = U8(env, o, "prefix4", 32);
  u->ip6 = IpField(env, o, "localIp6", true);
  u->prefix6 = U8(env, o, "prefix6", 128);
  u->gateway4 = IpField(env, o, "gateway4", true);
  u->gateway6 = IpField(env, o, "gateway6", true);
  u->udp_port = U16(env, o, "udpPort");
  u->src_port_min = U16(env, o, "srcPortMin");
  u->src_port_max = U16(env, o, "srcPortMax");
  u->ttl = U8(env, o, "ttl", 255);
  u->df = Bool(env, o, "df");
  u->udp6_zero_checksum = Bool(env, o, "udp6ZeroChecksum");
  u->allow_unknown_peers = Bool(env, o, "allowUnknownPeers");
  u->neighbor_reachable_ms = U32(env, o, "neighborReachableMs");
  u->neighbor_retry_ms = U32(env, o, "neighborRetryMs");
}

EngineOptions ToEngineOptions(Napi::Env env, const Napi::Object& o) {
  EngineOptions e;
  // Ranges from core/limits.h; the engine and the pool check the invariants
  // that tie options together (headroom <= bufferSize/4, powers of two).
  e.pool.count = uint32_t(Ranged(env, o, limit::bufferCount));
  e.pool.buf_size = uint32_t(Ranged(env, o, limit::bufferSize));
  e.pool.headroom = uint16_t(Ranged(env, o, limit::headroom));
  e.pool.hugepages = Bool(env, o, "hugepages");
  if (o.Has("largeBufferCount")) e.pool.large_count = uint32_t(Ranged(env, o, limit::largeBufferCount));
  if (o.Has("icmpTooBigPerSecond")) e.icmp_too_big_per_s = uint32_t(Ranged(env, o, limit::icmpTooBigPerSecond));
  e.max_ports = uint32_t(Ranged(env, o, limit::maxPorts));
  e.max_switches = uint32_t(Ranged(env, o, limit::maxSwitches));
  if (o.Has("maxVteps")) e.max_vteps = uint32_t(Ranged(env, o, limit::maxVteps));
  if (o.Has("maxLearnedVteps")) e.max_learned_vteps = U32(env, o, "maxLearnedVteps");
  e.busy_poll = Bool(env, o, "busyPoll");
  if (o.Has("idleSpinUs")) e.idle_spin_us = uint32_t(Ranged(env, o, limit::idleSpinUs));
  e.cpu = int(Ranged(env, o, limit::cpu));
  e.burst = uint32_t(Ranged(env, o, limit::burst));
  e.event_ring = uint32_t(Ranged(env, o, limit::eventRing));
  e.event_mask = U32(env, o, "eventMask") & kAllEvents;
  return e;
}

static void ToPortConfig(Napi::Env env, const Napi::Object& o, PortConfig* pc, bool with_mac) {
  pc->mtu = U32(env, o, "mtu");
  if (with_mac) pc->mac = MacField(env, Field(env, o, "mac"), "mac");
  pc->learning = Bool(env, o, "learning");
  pc->flood = Bool(env, o, "flood");
  pc->mac_limit = U32(env, o, "macLimit");
  Napi::Value lm = Field(env, o, "lockedMacs");
  if (!lm.IsArray()) ThrowCoded(env, "INVALID_ARGUMENT", "lockedMacs: must be an array");
  Napi::Array arr = lm.As<Napi::Array>();
  pc->locked_macs.clear();
  for (uint32_t i = 0; i < arr.Length(); ++i)
    pc->locked_macs.push_back(MacField(env, arr.Get(i), "lockedMacs[" + std::to_string(i) + "]"));
}

// The backend kind of a createPort/createUplink command and its pipe ring
// size (the kernel backends' own settings are read by ToPortOpen).
static uint32_t PortKindAndRing(Napi::Env env, const Napi::Object& o) {
  Napi::Value kind = Field(env, o, "kind");
  std::string k = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "";
  if (k != "pipe" && k != "afpacket" && k != "tap" && k != "netmap" && k != "afxdp" && k != "vhostuser")
    ThrowCoded(env, "INVALID_ARGUMENT", "kind: must be 'pipe', 'afpacket', 'tap', 'netmap', 'afxdp' or 'vhostuser'");
  uint32_t ring = Ranged(env, o, limit::ringSize);
  if (ring & (ring - 1)) ThrowCoded(env, "INVALID_ARGUMENT", "ringSize: must be a power of two in 64..65536");
  return ring;
}

// One parser per row of VPC_COMMAND_OPS (core/command.h): each reads its op's
// fields into the Command (everything but new_port and done).
namespace {

struct ParseCtx {
  Napi::Env env;
  const Napi::Object& o;
  Command* c;
  uint32_t* ring_size;
};

void ParseSwitchSettings(const ParseCtx& x) {
  x.c->switch_cfg.mac_limit = U32(x.env, x.o, "macLimit");
  x.c->switch_cfg.aging_ms = U32(x.env, x.o, "agingMs");
  x.c->switch_cfg.learning = Bool(x.env, x.o, "learning");
  if (x.o.Has("remoteLearning")) x.c->switch_cfg.remote_learning = Bool(x.env, x.o, "remoteLearning");
  if (x.o.Has("allowUnknownPeers")) x.c->switch_cfg.allow_unknown_peers = Bool(x.env, x.o, "allowUnknownPeers");
}

void Parse_createSwitch(const ParseCtx& x) {
  x.c->switch_cfg.vni = U32(x.env, x.o, "vni");
  x.c->switch_cfg.fdb_capacity = U32(x.env, x.o, "fdbCapacity");
  ParseSwitchSettings(x);
}

void Parse_setSwitch(const ParseCtx& x) {
  x.c->sw = Id(x.env, x.o, "switchId");
  ParseSwitchSettings(x);
}

void Parse_deleteSwitch(const ParseCtx& x) { x.c->sw = Id(x.env, x.o, "switchId"); }

void Parse_createPort(const ParseCtx& x) {
  Napi::Env env = x.env;
  *x.ring_size = PortKindAndRing(env, x.o);
  ToPortConfig(env, x.o, &x.c->port_cfg, true);
  x.c->untagged = OptionalId(env, x.o, "untaggedSwitchId");
  Napi::Value vl = Field(env, x.o, "vlans");
  if (!vl.IsArray()) ThrowCoded(env, "INVALID_ARGUMENT", "vlans: must be an array");
  Napi::Array arr = vl.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string at = "vlans[" + std::to_string(i) + "]";
    Napi::Value item = arr.Get(i);
    if (!item.IsObject()) ThrowCoded(env, "INVALID_ARGUMENT", at + ": must be an object");
    Napi::Object m = item.As<Napi::Object>();
    uint32_t vlan = U32(env, m, "vlan");
    if (!limit::vlan.contains(vlan)) ThrowCoded(env, "INVALID_ARGUMENT", range_error(limit::vlan, at + ".vlan"));
    x.c->vlans.push_back({uint16_t(vlan), Id(env, m, "switchId")});
  }
}

void Parse_setPort(const ParseCtx& x) {
  x.c->port = Id(x.env, x.o, "portId");
  ToPortConfig(x.env, x.o, &x.c->port_cfg, false);
}

void Parse_deletePort(const ParseCtx& x) { x.c->port = Id(x.env, x.o, "portId"); }

void Parse_addStaticMac(const ParseCtx& x) {
  x.c->sw = Id(x.env, x.o, "switchId");
  x.c->mac = MacField(x.env, Field(x.env, x.o, "mac"), "mac");
  x.c->port = Id(x.env, x.o, "portId");
  x.c->evpn = x.o.Has("evpn") && x.o.Get("evpn").ToBoolean().Value();
}

void Parse_deleteStaticMac(const ParseCtx& x) {
  x.c->sw = Id(x.env, x.o, "switchId");
  x.c->mac = MacField(x.env, Field(x.env, x.o, "mac"), "mac");
  x.c->evpn = x.o.Has("evpn") && x.o.Get("evpn").ToBoolean().Value();
}

void Parse_dumpFdb(const ParseCtx& x) { x.c->sw = Id(x.env, x.o, "switchId"); }

void Parse_flushFdb(const ParseCtx& x) {
  x.c->sw = Id(x.env, x.o, "switchId");
  x.c->port = OptionalId(x.env, x.o, "portId");
}

void Parse_createUplink(const ParseCtx& x) {
  *x.ring_size = PortKindAndRing(x.env, x.o);
  x.c->port_cfg.mtu = U32(x.env, x.o, "mtu");
  x.c->port_cfg.mac = MacField(x.env, Field(x.env, x.o, "mac"), "mac");
  ToUplinkConfig(x.env, x.o, &x.c->uplink_cfg);
}

void Parse_deleteUplink(const ParseCtx&) {}

void ParsePeer(const ParseCtx& x) {
  x.c->sw = Id(x.env, x.o, "switchId");
  x.c->ip = IpField(x.env, x.o, "ip", false);
}
void Parse_addPeer(const ParseCtx& x) { ParsePeer(x); }
void Parse_deletePeer(const ParseCtx& x) { ParsePeer(x); }

void Parse_addRemoteMac(const ParseCtx& x) {
  x.c->sw = Id(x.env, x.o, "switchId");
  x.c->mac = MacField(x.env, Field(x.env, x.o, "mac"), "mac");
  x.c->ip = IpField(x.env, x.o, "vtep", false);
  x.c->evpn = x.o.Has("evpn") && x.o.Get("evpn").ToBoolean().Value();
}

void Parse_dumpNeighbors(const ParseCtx&) {}
void Parse_barrier(const ParseCtx&) {}

// Capture and trace carry a ring the addon itself creates
// (native/addon/observe_wrap.cc): JavaScript cannot send them as commands.
void ParseObserve(const ParseCtx& x, const char* op) {
  ThrowCoded(x.env, "INVALID_ARGUMENT", std::string("op: '") + op + "' is started through startCapture()/startTrace(), not command()");
}
void Parse_startCapture(const ParseCtx& x) { ParseObserve(x, "startCapture"); }
void Parse_stopCapture(const ParseCtx& x) { ParseObserve(x, "stopCapture"); }
void Parse_startTrace(const ParseCtx& x) { ParseObserve(x, "startTrace"); }
void Parse_stopTrace(const ParseCtx& x) { ParseObserve(x, "stopTrace"); }

struct OpParser {
  const char* name;
  CmdOp op;
  void (*parse)(const ParseCtx&);
};

#define VPC_COMMAND_PARSER_ROW(e, op, handler) {#op, CmdOp::e, &Parse_##op},
constexpr OpParser kOpParsers[] = {VPC_COMMAND_OPS(VPC_COMMAND_PARSER_ROW)};
#undef VPC_COMMAND_PARSER_ROW

}  // namespace

void ToCommand(Napi::Env env, const Napi::Object& o, Command* c, uint32_t* ring_size) {
  Napi::Value opv = Field(env, o, "op");
  std::string op = opv.IsString() ? opv.As<Napi::String>().Utf8Value() : "";
  for (const OpParser& p : kOpParsers) {
    if (op == p.name) {
      c->op = p.op;
      p.parse(ParseCtx{env, o, c, ring_size});
      return;
    }
  }
  ThrowCoded(env, "INVALID_ARGUMENT", "op: unknown command '" + op + "'");
}

void ToPortOpen(Napi::Env env, const Napi::Object& o, PortOpenRequest* req) {
  Napi::Value spec = Field(env, o, "spec");
  if (!spec.IsString()) ThrowCoded(env, "INVALID_ARGUMENT", "spec: must be a port spec string like afpacket:veth0");
  req->spec = spec.As<Napi::String>().Utf8Value();
  auto ring = [&](const char* name) {
    uint32_t v = U32(env, o, name);
    if (v != 0 && (v < 64 || v > 65536 || (v & (v - 1))))
      ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be 0 (default) or a power of two in 64..65536");
    return v;
  };
  req->opts.rx_ring = ring("rxRing");
  req->opts.tx_ring = ring("txRing");
  static_assert(limit::portBurst.max == kMaxBurst && limit::burst.max == kMaxBurst, "core/limits.h: burst is kMaxBurst");
  req->opts.burst = uint32_t(Ranged(env, o, limit::portBurst));
  req->opts.queues = uint32_t(Ranged(env, o, limit::queues));
  req->opts.offloads_off = Bool(env, o, "disableOffloads");
  req->opts.promisc = Bool(env, o, "promiscuous");
  if (!o.Get("kernelPath").IsUndefined()) req->opts.kernel_path = Bool(env, o, "kernelPath");
  auto choice = [&](const char* name, const char* a, const char* b, const char* c) -> int {
    Napi::Value v = o.Get(name);
    if (v.IsUndefined() || v.IsNull()) return 0;
    std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
    if (s == a) return 0;
    if (s == b) return 1;
    if (s == c) return 2;
    ThrowCoded(env, "INVALID_ARGUMENT", std::string(name) + ": must be '" + a + "', '" + b + "' or '" + c + "'");
  };
  req->opts.xdp_mode = KernelPortOptions::XdpMode(choice("xdpMode", "auto", "native", "generic"));
  {
    Napi::Value op = o.Get("op");
    req->opts.underlay = op.IsString() && op.As<Napi::String>().Utf8Value() == "createUplink";
  }
  req->opts.zero_copy = KernelPortOptions::ZeroCopy(choice("zeroCopy", "auto", "on", "off"));
  req->opts.xdp_decap = KernelPortOptions::XdpDecap(choice("xdpDecap", "auto", "on", "off"));
  req->opts.io_uring = KernelPortOptions::IoUring(choice("ioUring", "auto", "on", "off"));
  if (o.Has("persistent")) req->opts.persistent = Bool(env, o, "persistent");
  if (o.Has("waitForInterface")) req->opts.wait_for_interface = Bool(env, o, "waitForInterface");
  {
    Napi::Value m = o.Get("vhostMode");
    if (!m.IsUndefined() && !m.IsNull()) {
      std::string s = m.IsString() ? m.As<Napi::String>().Utf8Value() : "";
      if (s != "server" && s != "client") ThrowCoded(env, "INVALID_ARGUMENT", "vhostMode: must be 'server' or 'client'");
      req->opts.vhost_client = s == "client";
    }
  }
}

Napi::Object FromPortStatus(Napi::Env env, const PortStatus& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("backend", st.backend);
  o.Set("spec", st.spec);
  o.Set("interface", st.ifname);
  o.Set("ifindex", Napi::Number::New(env, st.ifindex.load(std::memory_order_relaxed)));
  o.Set("attached", Napi::Boolean::New(env, st.attached.load(std::memory_order_relaxed)));
  if (const Mac m = st.mac.load(std::memory_order_relaxed)) o.Set("mac", MacString(env, m));
  o.Set("rxRing", Napi::Number::New(env, st.rx_ring));
  o.Set("txRing", Napi::Number::New(env, st.tx_ring));
  o.Set("frameSize", Napi::Number::New(env, st.frame_size));
  o.Set("burst", Napi::Number::New(env, st.burst));
  o.Set("queues", Napi::Number::New(env, st.queues));
  o.Set("offloads", st.offloads());
  o.Set("io", st.io());
  o.Set("kernelPath", st.kernel_path());
  const uint32_t nq = std::min<uint32_t>(st.queues, PortStatus::kMaxQueues);
  Napi::Array qrx = Napi::Array::New(env, nq);
  for (uint32_t q = 0; q < nq; ++q)
    qrx.Set(q, Napi::Number::New(env, double(st.queue_rx[q].load(std::memory_order_relaxed))));
  o.Set("queueRx", qrx);
  o.Set("lastError", st.error());
  o.Set("counters", BackendCounters(env, st));
  AddVhostStatus(env, o, st);
  return o;
}

Napi::Object BackendCounters(Napi::Env env, const PortStatus& st) {
  Napi::Object c = Napi::Object::New(env);
  for (int i = 0; i < PortStatus::kCount; ++i)
    c.Set(PortStatus::kNames[i], Napi::Number::New(env, double(st.c[i].load(std::memory_order_relaxed))));
  return c;
}

Napi::String MacString(Napi::Env env, Mac m) {
  char b[18];
  mac_format(m, b);
  return Napi::String::New(env, b);
}

Napi::Object FromResult(Napi::Env env, const Result& r) {
  Napi::Object o = Napi::Object::New(env);
  if (r.id != kNoId) o.Set("id", Napi::Number::New(env, r.id));
  if (r.removed) o.Set("removed", Napi::Number::New(env, r.removed));
  if (r.mac) o.Set("mac", MacString(env, r.mac));
  if (!r.entries.empty()) {
    Napi::Array a = Napi::Array::New(env, r.entries.size());
    for (size_t i = 0; i < r.entries.size(); ++i) {
      const FdbDumpEntry& e = r.entries[i];
      Napi::Object x = Napi::Object::New(env);
      x.Set("mac", MacString(env, e.mac));
      x.Set("portId", Napi::Number::New(env, e.port));
      x.Set("vlan", Napi::Number::New(env, e.vlan));
      x.Set("static", Napi::Boolean::New(env, e.is_static));
      x.Set("ageMs", Napi::Number::New(env, e.age_ms));
      if (e.evpn) x.Set("evpn", Napi::Boolean::New(env, true));
      x.Set("vtep", e.remote ? Napi::String::New(env, ip_format(e.vtep)) : Napi::String::New(env, ""));
      a.Set(uint32_t(i), x);
    }
    o.Set("entries", a);
  }
  if (!r.neighbors.empty()) {
    Napi::Array a = Napi::Array::New(env, r.neighbors.size());
    for (size_t i = 0; i < r.neighbors.size(); ++i) {
      const NeighborDumpEntry& nb = r.neighbors[i];
      Napi::Object x = Napi::Object::New(env);
      x.Set("ip", ip_format(nb.ip));
      x.Set("mac", nb.mac ? MacString(env, nb.mac) : Napi::String::New(env, ""));
      x.Set("state", nb.state);
      x.Set("ageMs", Napi::Number::New(env, nb.age_ms));
      a.Set(uint32_t(i), x);
    }
    o.Set("neighbors", a);
  }
  return o;
}

static Napi::Number IdOrMinus(Napi::Env env, uint32_t id) {
  return Napi::Number::New(env, id == kNoId ? -1.0 : double(id));
}

Napi::Object FromEvent(Napi::Env env, const Event& ev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", event_type_name(ev.type));
  o.Set("switchId", IdOrMinus(env, ev.sw));
  o.Set("portId", IdOrMinus(env, ev.port));
  o.Set("oldPortId", IdOrMinus(env, ev.old_port));
  o.Set("vlan", Napi::Number::New(env, ev.vlan));
  o.Set("oldVlan", Napi::Number::New(env, ev.old_vlan));
  bool has_mac = ev.type != EventType::kLink;
  o.Set("mac", has_mac ? MacString(env, ev.mac) : Napi::String::New(env, ""));
  o.Set("up", Napi::Boolean::New(env, ev.up != 0));
  o.Set("vtep", ev.vtep.is_zero() ? std::string() : ip_format(ev.vtep));
  o.Set("oldVtep", ev.old_vtep.is_zero() ? std::string() : ip_format(ev.old_vtep));
  return o;
}

}  // namespace vpc::addon
