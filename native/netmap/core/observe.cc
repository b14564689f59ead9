// Capture and trace (core/capture.h, core/trace.h): their commands and the
// engine's hooks. Every hook runs only while Engine::observe_ says a capture
// or a trace is active; the hot path's only cost otherwise is the test of
// that byte, once per received and per transmitted burst.
#include <time.h>

#include "bridge/dest.h"
#include "core/engine.h"
#include "proto/ethernet.h"
#include "proto/inet.h"

namespace vpc {

static uint64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void Engine::observe_update() {
  const TraceSession* t = obs_->trace.get();
  observe_ = uint8_t((obs_->captures.empty() ? 0 : kObserveCapture) |
                     (t && (!t->full() || t->open_count()) ? kObserveTrace : 0));
}

Result Engine::do_observe(Command& c) {
  Observers& o = *obs_;
  Result r;
  auto port_ok = [&](PortId p) { return p < ports_.size() && ports_[p].in_use; };
  switch (c.op) {
    case CmdOp::kStartCapture: {
      if (!c.capture) return Result::error(Status::kInvalidArgument, "capture: missing");
      const CaptureFilter& f = c.capture->filter;
      if ((f.port == kNoId) == (f.sw == kNoId))
        return Result::error(Status::kInvalidArgument, "capture: give a port or a switch (one of them)");
      if (f.port != kNoId && !port_ok(f.port)) return Result::error(Status::kNotFound, "port: no such port");
      if (f.sw != kNoId && (f.sw >= switches_.size() || !switches_[f.sw].in_use))
        return Result::error(Status::kNotFound, "switch: no such switch");
      if (f.dirs < kCaptureIn || f.dirs > kCaptureBoth)
        return Result::error(Status::kInvalidArgument, "direction: must be in, out or both");
      if (o.captures.size() >= kMaxCaptures)
        return Result::error(Status::kLimitExceeded, "capture: at most 8 captures run at once");
      c.capture->id = o.next_capture_id++;
      o.captures.push_back(c.capture);
      r.id = c.capture->id;
      break;
    }
    case CmdOp::kStopCapture: {
      auto it = std::find(o.captures.begin(), o.captures.end(), c.capture);
      if (!c.capture || it == o.captures.end()) return Result::error(Status::kNotFound, "capture: not running");
      o.captures.erase(it);
      break;
    }
    case CmdOp::kStartTrace:
      if (!c.trace) return Result::error(Status::kInvalidArgument, "trace: missing");
      if (c.trace->port() != kNoId && !port_ok(c.trace->port()))
        return Result::error(Status::kNotFound, "port: no such port");
      o.trace = c.trace;  // replaces a running trace (commands run between iterations)
      break;
    case CmdOp::kStopTrace:
      o.trace.reset();
      break;
    default:
      return Result::error(Status::kInternal, "not a capture or trace command");
  }
  observe_update();
  return r;
}

// The VNI of a VXLAN packet on the uplink (outer IPv4 or IPv6, untagged).
static bool outer_vni(const uint8_t* f, uint32_t len, uint16_t udp_port, uint32_t* vni) {
  if (len < kEthHeaderLen) return false;
  const uint16_t et = load_be16(f + 12);
  const uint8_t* ip = f + kEthHeaderLen;
  uint32_t avail = len - kEthHeaderLen;
  const uint8_t* udp;
  if (et == kEtherTypeIpv4) {
    if (avail < kIpv4HeaderLen || (ip[0] >> 4) != 4 || ip[9] != kIpProtoUdp) return false;
    const uint32_t ihl = (ip[0] & 0x0Fu) * 4;
    if (ihl < kIpv4HeaderLen || avail < ihl) return false;
    udp = ip + ihl;
    avail -= ihl;
  } else if (et == kEtherTypeIpv6) {
    if (avail < kIpv6HeaderLen || ip[6] != kIpProtoUdp) return false;
    udp = ip + kIpv6HeaderLen;
    avail -= kIpv6HeaderLen;
  } else {
    return false;
  }
  if (avail < kUdpHeaderLen + kVxlanHeaderLen || load_be16(udp + 2) != udp_port) return false;
  *vni = load_be32(udp + kUdpHeaderLen + 4) >> 8;
  return true;
}

// A port capture takes every frame of its port. A switch capture takes, on
// a local port, the frames of the port's member of that switch (by their
// 802.1Q tag on a trunk), and on the uplink the VXLAN packets of its VNI.
bool Engine::capture_matches(const CaptureFilter& f, PortId pid, const uint8_t* frame, uint32_t len) const {
  if (f.port != kNoId) return pid == f.port;
  const PortState& ps = ports_[pid];
  if (ps.is_uplink) {
    uint32_t vni;
    return outer_vni(frame, len, uplink_.cfg.udp_port, &vni) && vni == switches_[f.sw].cfg.vni;
  }
  MemberId m = ps.untagged;
  if (len >= kEthHeaderLen + kVlanTagLen && load_be16(frame + 12) == kEtherTypeVlan) {
    const uint16_t vid = load_be16(frame + 14) & kVlanIdMask;
    if (vid != 0) m = ps.vlan_map ? ps.vlan_map[vid] : kNoMember;
  }
  return m != kNoMember && m < members_.size() && members_[m].sw == f.sw;
}

void Engine::capture_batch(PortId pid, const Pkt* pkts, uint16_t n, uint8_t dir) {
  uint64_t ts = 0;
  for (const auto& cs : obs_->captures) {
    const CaptureFilter& f = cs->filter;
    if (!(f.dirs & dir) || (f.port != kNoId && f.port != pid)) continue;
    if (!ts) ts = clock_ns(CLOCK_REALTIME);
    uint64_t got = 0, lost = 0;
    for (uint16_t i = 0; i < n; ++i) {
      const uint8_t* frame = pool_->frame(pkts[i]);
      if (!capture_matches(f, pid, frame, pkts[i].len)) continue;
      if (cs->ring.push(ts, uint16_t(pid), dir, frame, pkts[i].len)) ++got;
      else ++lost;
    }
    // The engine is the only writer of both counters.
    if (got) cs->captured.store(cs->captured.load(std::memory_order_relaxed) + got, std::memory_order_relaxed);
    if (lost) {
      cs->dropped.store(cs->dropped.load(std::memory_order_relaxed) + lost, std::memory_order_relaxed);
      engine_ctr_->add(EngineCounter::capture_ring_full, lost);
    }
  }
}

static const char* mac_text(Mac m, char* buf) {
  mac_format(m, buf);
  return buf;
}

void Engine::observe_rx(PortId pid, Pkt* pkts, uint16_t n) {
  if (observe_ & kObserveCapture) capture_batch(pid, pkts, n, kCaptureIn);
  if (!(observe_ & kObserveTrace)) return;
  TraceSession& t = *obs_->trace;
  if (t.full() || (t.port() != kNoId && t.port() != pid)) return;
  const uint64_t ns = clock_ns(CLOCK_MONOTONIC);
  for (uint16_t i = 0; i < n && !t.full(); ++i) {
    const Pkt& p = pkts[i];
    TraceRecord& r = *t.open(pid, p.buf, p.len);
    if (p.len < kEthHeaderLen) {
      TraceSession::add(r, ns, TraceStage::rx, "port#%u, %u bytes", pid, p.len);
      continue;
    }
    const uint8_t* f = pool_->frame(p);
    char a[18], b[18];
    TraceSession::add(r, ns, TraceStage::rx, "port#%u, %u bytes, %s > %s, type 0x%04x", pid, p.len,
                      mac_text(eth_src(f), a), mac_text(eth_dst(f), b), load_be16(f + 12));
  }
}

void Engine::observe_tx(PortId pid, const Pkt* pkts, uint16_t n) {
  if (observe_ & kObserveCapture) capture_batch(pid, pkts, n, kCaptureOut);
  if (!(observe_ & kObserveTrace)) return;
  TraceSession& t = *obs_->trace;
  if (!t.open_count()) return;
  const uint64_t ns = clock_ns(CLOCK_MONOTONIC);
  for (uint16_t i = 0; i < n; ++i) {
    TraceRecord* r = t.find(pkts[i].buf);
    if (!r) continue;
    TraceSession::add(*r, ns, TraceStage::tx, "port#%u, %u bytes", pid, pkts[i].len);
    r->buf = kNoTraceBuf;  // sent: the buffer is no longer this frame's
  }
}

void Engine::observe_end() {
  obs_->trace->publish();
  observe_update();
}

void Engine::trace_drop(uint32_t buf, Drop why) {
  TraceRecord* r = obs_->trace->find(buf);
  if (!r) return;
  TraceSession::add(*r, clock_ns(CLOCK_MONOTONIC), TraceStage::drop, "%s: %s", kDropInfo[size_t(why)].name,
                    kDropInfo[size_t(why)].help);
  r->buf = kNoTraceBuf;  // freed: the buffer is no longer this frame's
}

void Engine::trace_pre_switch(const Pkt* pkts, uint16_t n, const MemberId* inm, const Mac* src,
                              const uint16_t* dest) {
  TraceSession& t = *obs_->trace;
  if (!t.open_count()) return;
  for (uint16_t i = 0; i < n; ++i) {
    if (dest[i] == kDestDrop) continue;
    TraceRecord* r = t.find(pkts[i].buf);
    if (!r) continue;
    const FdbEntry* e = switches_[members_[inm[i]].sw].fdb.find(src[i]);
    r->pre_known = e != nullptr;
    r->pre_member = e ? e->member : kNoMember;
    r->pre_static = e && (e->flags & kFdbStatic);
  }
}

void Engine::trace_post_switch(const Pkt* pkts, uint16_t n, const MemberId* inm, const Mac* src, const Mac* dst,
                               const uint16_t* dest) {
  TraceSession& t = *obs_->trace;
  if (!t.open_count()) return;
  const uint64_t ns = clock_ns(CLOCK_MONOTONIC);
  char a[18], b[18];
  for (uint16_t i = 0; i < n; ++i) {
    TraceRecord* rp = dest[i] == kDestDrop ? nullptr : t.find(pkts[i].buf);
    if (!rp) continue;
    TraceRecord& r = *rp;
    const MemberId m = inm[i];
    const Member& mem = members_[m];
    const SwitchState& sw = switches_[mem.sw];
    if (mem.remote()) {
      TraceSession::add(r, ns, TraceStage::decap, "vni %u from vtep %s, switch#%u, member %u, inner %u bytes",
                        sw.cfg.vni, ip_format(vteps_[mem.vtep].ip).c_str(), mem.sw, m, pkts[i].len);
    } else if (mem.vlan) {
      TraceSession::add(r, ns, TraceStage::classify, "switch#%u (vni %u), member %u, vlan %u (tag removed)", mem.sw,
                        sw.cfg.vni, m, mem.vlan);
    } else {
      TraceSession::add(r, ns, TraceStage::classify, "switch#%u (vni %u), member %u, untagged", mem.sw, sw.cfg.vni, m);
    }
    const FdbEntry* e = sw.fdb.find(src[i]);
    mac_text(src[i], a);
    if (r.pre_static) {
      TraceSession::add(r, ns, TraceStage::learn, "%s is static (member %u): not learned", a, r.pre_member);
    } else if (!e) {
      TraceSession::add(r, ns, TraceStage::learn, "%s not learned (learning off, or a MAC limit reached)", a);
    } else if (!r.pre_known) {
      TraceSession::add(r, ns, TraceStage::learn, "%s learned on member %u", a, e->member);
    } else if (r.pre_member != e->member) {
      TraceSession::add(r, ns, TraceStage::learn, "%s moved from member %u to member %u", a, r.pre_member, e->member);
    } else {
      TraceSession::add(r, ns, TraceStage::learn, "%s known on member %u", a, e->member);
    }
    mac_text(dst[i], b);
    const uint16_t d = dest[i];
    if (d == kDestFloodBcast || d == kDestFloodMcast || d == kDestFloodUnknown) {
      const char* kind = d == kDestFloodBcast ? "broadcast" : d == kDestFloodMcast ? "multicast" : "unknown unicast";
      TraceSession::add(r, ns, TraceStage::lookup, "%s: flood (%s) to the other members of switch#%u (%zu members)",
                        b, kind, mem.sw, sw.members.size());
      continue;
    }
    const Member& out = members_[d];
    if (out.remote()) {
      const std::string vtep = ip_format(vteps_[out.vtep].ip);
      TraceSession::add(r, ns, TraceStage::lookup, "%s -> member %u, vtep %s", b, d, vtep.c_str());
      TraceSession::add(r, ns, TraceStage::encap, "vxlan vni %u to vtep %s via the uplink port#%u", sw.cfg.vni,
                        vtep.c_str(), out.port);
    } else if (out.vlan) {
      TraceSession::add(r, ns, TraceStage::lookup, "%s -> member %u, port#%u vlan %u", b, d, out.port, out.vlan);
    } else {
      TraceSession::add(r, ns, TraceStage::lookup, "%s -> member %u, port#%u untagged", b, d, out.port);
    }
  }
}

}  // namespace vpc
