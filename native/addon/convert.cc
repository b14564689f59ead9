#include "convert.h"

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
  e.pool.count = U32(env, o, "bufferCount");
  e.pool.buf_size = U32(env, o, "bufferSize");
  uint32_t headroom = U32(env, o, "headroom");
  if (headroom > 65535) ThrowCoded(env, "INVALID_ARGUMENT", "headroom: too large");
  e.pool.headroom = uint16_t(headroom);
  e.pool.hugepages = Bool(env, o, "hugepages");
  if (o.Has("largeBufferCount")) e.pool.large_count = U32(env, o, "largeBufferCount");
  if (o.Has("icmpTooBigPerSecond")) e.icmp_too_big_per_s = U32(env, o, "icmpTooBigPerSecond");
  e.max_ports = U32(env, o, "maxPorts");
  e.max_switches = U32(env, o, "maxSwitches");
  if (o.Has("maxVteps")) e.max_vteps = U32(env, o, "maxVteps");
  if (o.Has("maxLearnedVteps")) e.max_learned_vteps = U32(env, o, "maxLearnedVteps");
  e.busy_poll = Bool(env, o, "busyPoll");
  if (o.Has("idleSpinUs")) e.idle_spin_us = U32(env, o, "idleSpinUs");
  int64_t cpu = I64(env, o, "cpu");
  if (cpu < -1 || cpu > 4095) ThrowCoded(env, "INVALID_ARGUMENT", "cpu: must be -1 or a CPU number");
  e.cpu = int(cpu);
  e.burst = U32(env, o, "burst");
  e.event_ring = U32(env, o, "eventRing");
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
  if (k != "pipe" && k != "afpacket" && k != "tap" && k != "netmap" && k != "afxdp")
    ThrowCoded(env, "INVALID_ARGUMENT", "kind: must be 'pipe', 'afpacket', 'tap', 'netmap' or 'afxdp'");
  uint32_t ring = U32(env, o, "ringSize");
  if (ring < 64 || ring > 65536 || (ring & (ring - 1)))
    ThrowCoded(env, "INVALID_ARGUMENT", "ringSize: must be a power of two in 64..65536");
  return ring;
}

void ToCommand(Napi::Env env, const Napi::Object& o, Command* c, uint32_t* ring_size) {
  Napi::Value opv = Field(env, o, "op");
  std::string op = opv.IsString() ? opv.As<Napi::String>().Utf8Value() : "";
  if (op == "createSwitch" || op == "setSwitch") {
    c->op = op == "createSwitch" ? CmdOp::kCreateSwitch : CmdOp::kSetSwitch;
    if (c->op == CmdOp::kCreateSwitch) {
      c->switch_cfg.vni = U32(env, o, "vni");
      c->switch_cfg.fdb_capacity = U32(env, o, "fdbCapacity");
    } else {
      c->sw = Id(env, o, "switchId");
    }
    c->switch_cfg.mac_limit = U32(env, o, "macLimit");
    c->switch_cfg.aging_ms = U32(env, o, "agingMs");
    c->switch_cfg.learning = Bool(env, o, "learning");
    if (o.Has("remoteLearning")) c->switch_cfg.remote_learning = Bool(env, o, "remoteLearning");
    if (o.Has("allowUnknownPeers")) c->switch_cfg.allow_unknown_peers = Bool(env, o, "allowUnknownPeers");
  } else if (op == "deleteSwitch") {
    c->op = CmdOp::kDeleteSwitch;
    c->sw = Id(env, o, "switchId");
  } else if (op == "createPort") {
    c->op = CmdOp::kCreatePort;
    *ring_size = PortKindAndRing(env, o);
    ToPortConfig(env, o, &c->port_cfg, true);
    c->untagged = OptionalId(env, o, "untaggedSwitchId");
    Napi::Value vl = Field(env, o, "vlans");
    if (!vl.IsArray()) ThrowCoded(env, "INVALID_ARGUMENT", "vlans: must be an array");
    Napi::Array arr = vl.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value item = arr.Get(i);
      if (!item.IsObject()) ThrowCoded(env, "INVALID_ARGUMENT", "vlans[" + std::to_string(i) + "]: must be an object");
      Napi::Object m = item.As<Napi::Object>();
      uint32_t vlan = U32(env, m, "vlan");
      if (vlan > 4095) ThrowCoded(env, "INVALID_ARGUMENT", "vlans[" + std::to_string(i) + "].vlan: must be in 1..4094");
      c->vlans.push_back({uint16_t(vlan), Id(env, m, "switchId")});
    }
  } else if (op == "setPort") {
    c->op = CmdOp::kSetPort;
    c->port = Id(env, o, "portId");
    ToPortConfig(env, o, &c->port_cfg, false);
  } else if (op == "deletePort") {
    c->op = CmdOp::kDeletePort;
    c->port = Id(env, o, "portId");
  } else if (op == "addStaticMac" || op == "deleteStaticMac") {
    c->op = op == "addStaticMac" ? CmdOp::kAddStaticMac : CmdOp::kDeleteStaticMac;
    c->sw = Id(env, o, "switchId");
    c->mac = MacField(env, Field(env, o, "mac"), "mac");
    if (c->op == CmdOp::kAddStaticMac) c->port = Id(env, o, "portId");
    c->evpn = o.Has("evpn") && o.Get("evpn").ToBoolean().Value();
  } else if (op == "createUplink") {
    c->op = CmdOp::kCreateUplink;
    *ring_size = PortKindAndRing(env, o);
    c->port_cfg.mtu = U32(env, o, "mtu");
    c->port_cfg.mac = MacField(env, Field(env, o, "mac"), "mac");
    ToUplinkConfig(env, o, &c->uplink_cfg);
  } else if (op == "deleteUplink") {
    c->op = CmdOp::kDeleteUplink;
  } else if (op == "addPeer" || op == "deletePeer") {
    c->op = op == "addPeer" ? CmdOp::kAddPeer : CmdOp::kDeletePeer;
    c->sw = Id(env, o, "switchId");
    c->ip = IpField(env, o, "ip", false);
  } else if (op == "addRemoteMac") {
    c->op = CmdOp::kAddRemoteMac;
    c->sw = Id(env, o, "switchId");
    c->mac = MacField(env, Field(env, o, "mac"), "mac");
    c->ip = IpField(env, o, "vtep", false);
    c->evpn = o.Has("evpn") && o.Get("evpn").ToBoolean().Value();
  } else if (op == "dumpNeighbors") {
    c->op = CmdOp::kDumpNeighbors;
  } else if (op == "dumpFdb") {
    c->op = CmdOp::kDumpFdb;
    c->sw = Id(env, o, "switchId");
  } else if (op == "flushFdb") {
    c->op = CmdOp::kFlushFdb;
    c->sw = Id(env, o, "switchId");
    c->port = OptionalId(env, o, "portId");
  } else {
    ThrowCoded(env, "INVALID_ARGUMENT", "op: unknown command '" + op + "'");
  }
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
  req->opts.burst = U32(env, o, "portBurst");
  if (req->opts.burst > kMaxBurst) ThrowCoded(env, "INVALID_ARGUMENT", "portBurst: must be in 0..256");
  req->opts.queues = U32(env, o, "queues");
  if (req->opts.queues > 16) ThrowCoded(env, "INVALID_ARGUMENT", "queues: must be in 0..16 (0: the backend's default)");
  req->opts.offloads_off = Bool(env, o, "disableOffloads");
  req->opts.promisc = Bool(env, o, "promiscuous");
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
  req->opts.zero_copy = KernelPortOptions::ZeroCopy(choice("zeroCopy", "auto", "on", "off"));
  req->opts.io_uring = KernelPortOptions::IoUring(choice("ioUring", "auto", "on", "off"));
  if (o.Has("persistent")) req->opts.persistent = Bool(env, o, "persistent");
}

Napi::Object FromPortStatus(Napi::Env env, const PortStatus& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("backend", st.backend);
  o.Set("spec", st.spec);
  o.Set("interface", st.ifname);
  o.Set("ifindex", Napi::Number::New(env, st.ifindex.load(std::memory_order_relaxed)));
  o.Set("attached", Napi::Boolean::New(env, st.attached.load(std::memory_order_relaxed)));
  o.Set("rxRing", Napi::Number::New(env, st.rx_ring));
  o.Set("txRing", Napi::Number::New(env, st.tx_ring));
  o.Set("frameSize", Napi::Number::New(env, st.frame_size));
  o.Set("burst", Napi::Number::New(env, st.burst));
  o.Set("queues", Napi::Number::New(env, st.queues));
  o.Set("offloads", st.offloads());
  o.Set("io", st.io());
  const uint32_t nq = std::min<uint32_t>(st.queues, PortStatus::kMaxQueues);
  Napi::Array qrx = Napi::Array::New(env, nq);
  for (uint32_t q = 0; q < nq; ++q)
    qrx.Set(q, Napi::Number::New(env, double(st.queue_rx[q].load(std::memory_order_relaxed))));
  o.Set("queueRx", qrx);
  o.Set("lastError", st.error());
  o.Set("counters", BackendCounters(env, st));
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

static const char* EventName(EventType t) {
  switch (t) {
    case EventType::kLearned: return "learned";
    case EventType::kMoved: return "moved";
    case EventType::kAged: return "aged";
    case EventType::kTableFull: return "table_full";
    case EventType::kPortLimit: return "port_limit";
    case EventType::kLink: return "link";
  }
  return "unknown";
}

static Napi::Number IdOrMinus(Napi::Env env, uint32_t id) {
  return Napi::Number::New(env, id == kNoId ? -1.0 : double(id));
}

Napi::Object FromEvent(Napi::Env env, const Event& ev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", EventName(ev.type));
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
