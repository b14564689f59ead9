// The bridge's part of capture and trace (core/observe.h): which switch a
// local port's frame belongs to, and the trace lines of classify (or decap),
// learn and lookup, written around pass 1 of Bridge::forward.
#include <string>

#include "bridge/bridge.h"
#include "bridge/dest.h"
#include "overlay/overlay.h"
#include "proto/ethernet.h"

namespace vpc {

bool Bridge::carries(SwitchId s, PortId port, const uint8_t* frame, uint32_t len) const {
  const BridgePort& bp = ports_[port];
  MemberId m = bp.untagged;
  if (len >= kEthHeaderLen + kVlanTagLen && load_be16(frame + 12) == kEtherTypeVlan) {
    const uint16_t vid = load_be16(frame + 14) & kVlanIdMask;
    if (vid != 0) m = bp.vlan_map ? bp.vlan_map[vid] : kNoMember;
  }
  return m != kNoMember && m < members_.size() && members_[m].sw == s;
}

// The source MAC's entry before learning, for the learn line.
void Bridge::trace_before(const Burst& b) {
  Observer& o = core_.observer();
  if (!o.trace_open()) return;
  for (uint16_t i = 0; i < b.n; ++i) {
    if (b.dest[i] == kDestDrop) continue;
    TraceRecord* r = o.traced(b.pkts[i].buf);
    if (!r) continue;
    const FdbEntry* e = switches_[members_[b.inm[i]].sw].fdb.find(b.src[i]);
    r->pre_known = e != nullptr;
    r->pre_member = e ? e->member : kNoMember;
    r->pre_static = e && (e->flags & kFdbStatic);
  }
}

static const char* mac_text(Mac m, char* buf) {
  mac_format(m, buf);
  return buf;
}

void Bridge::trace_after(const Burst& b) {
  Observer& o = core_.observer();
  if (!o.trace_open()) return;
  const uint64_t ns = Observer::mono_ns();
  char a[18], d_mac[18];
  for (uint16_t i = 0; i < b.n; ++i) {
    const uint16_t d = b.dest[i];
    TraceRecord* rp = d == kDestDrop ? nullptr : o.traced(b.pkts[i].buf);
    if (!rp) continue;
    TraceRecord& r = *rp;
    const MemberId m = b.inm[i];
    const Member& mem = members_[m];
    const SwitchState& sw = switches_[mem.sw];
    if (mem.remote()) {
      TraceSession::add(r, ns, TraceStage::decap, "vni %u from vtep %s, switch#%u, member %u, inner %u bytes",
                        sw.cfg.vni, ip_format(overlay_.peer_ip(mem.vtep)).c_str(), mem.sw, m, b.pkts[i].len);
    } else if (mem.vlan) {
      TraceSession::add(r, ns, TraceStage::classify, "switch#%u (vni %u), member %u, vlan %u (tag removed)", mem.sw,
                        sw.cfg.vni, m, mem.vlan);
    } else {
      TraceSession::add(r, ns, TraceStage::classify, "switch#%u (vni %u), member %u, untagged", mem.sw, sw.cfg.vni, m);
    }
    const FdbEntry* e = sw.fdb.find(b.src[i]);
    mac_text(b.src[i], a);
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
    mac_text(b.dst[i], d_mac);
    if (d == kDestFloodBcast || d == kDestFloodMcast || d == kDestFloodUnknown) {
      const char* kind = d == kDestFloodBcast ? "broadcast" : d == kDestFloodMcast ? "multicast" : "unknown unicast";
      const size_t others = sw.members.empty() ? 0 : sw.members.size() - 1;  // the sender's member is one of them
      TraceSession::add(r, ns, TraceStage::lookup, "%s: flood (%s) to the %zu other member%s of switch#%u", d_mac, kind,
                        others, others == 1 ? "" : "s", mem.sw);
      continue;
    }
    const Member& out = members_[d];
    if (out.remote()) {
      const std::string vtep = ip_format(overlay_.peer_ip(out.vtep));
      TraceSession::add(r, ns, TraceStage::lookup, "%s -> member %u, vtep %s", d_mac, d, vtep.c_str());
      TraceSession::add(r, ns, TraceStage::encap, "vxlan vni %u to vtep %s via the uplink port#%u", sw.cfg.vni,
                        vtep.c_str(), overlay_.uplink_port());
    } else if (out.vlan) {
      TraceSession::add(r, ns, TraceStage::lookup, "%s -> member %u, port#%u vlan %u", d_mac, d, out.port, out.vlan);
    } else {
      TraceSession::add(r, ns, TraceStage::lookup, "%s -> member %u, port#%u untagged", d_mac, d, out.port);
    }
  }
}

}  // namespace vpc
