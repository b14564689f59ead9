// Stage 1, classify: parse the Ethernet header and the optional 802.1Q tag,
// check the frame against the ingress port, and map it to a member (the
// port's attachment to one switch). The tag is removed here: inside the
// switch every frame is untagged, and egress pushes the tag its member needs.
#pragma once

#include "core/counters.h"
#include "core/offload.h"
#include "bridge/state.h"
#include "proto/ethernet.h"

namespace vpc {

// True when a frame with offload state fits the port's MTU: a GSO
// super-frame is measured by its segments (gso_size plus headers; hdr_len is
// a hint the egress re-checks, at least an IPv4 + TCP header when missing),
// anything else by its length.
// `f` (the frame, optional): for TCP the headers are measured in it, from the
// checksum start to the end of the TCP header, not taken from hdr_len: Linux
// fills a virtio-net header's hdr_len with the skb's linear length, which may
// include payload (a VM's tap through an AF_PACKET port: 1 in 10 of its TSO
// frames was dropped as oversize).
inline bool offload_fits_mtu(const OffloadMeta& m, uint32_t len, uint32_t max_len, const uint8_t* f = nullptr) {
  if (!m.gso()) return len <= max_len;
  uint32_t hdr = kEthHeaderLen + 40;
  const uint8_t k = m.gso_kind();
  if (f != nullptr && m.needs_csum() && (k == OffloadMeta::kGsoTcpv4 || k == OffloadMeta::kGsoTcpv6) &&
      uint32_t(m.csum_start) + 20 <= len) {
    const uint32_t tcp_end = uint32_t(m.csum_start) + (uint32_t(f[m.csum_start + 12] >> 4) * 4u);
    if (tcp_end > hdr) hdr = tcp_end;
  } else if (m.hdr_len > hdr) {
    hdr = m.hdr_len;
  }
  return hdr + m.gso_size <= max_len;
}

// Returns true and sets *member when the frame may enter a switch; otherwise
// returns false with the drop reason in *why (for Drop::oversize, *member is
// the member the frame came from). May rewrite p (tag removal).
// `in`: the port's memberships; `max_len`: its largest untagged frame (the
// core's PortState::max_len).
// `meta` is the pool's offload side table (BufferPool::meta_table()), read
// only for frames with kPktMeta set.
inline bool classify(const BridgePort& in, uint32_t max_len, uint8_t* buf, Pkt& p, MemberId* member, Drop* why,
                     OffloadMeta* meta = nullptr) {
  if (p.len < kEthHeaderLen) [[unlikely]] {
    *why = Drop::runt;
    return false;
  }
  uint8_t* f = buf + pkt_off(p);
  MemberId m = in.untagged;
  if (load_be16(f + 12) == kEtherTypeVlan) [[unlikely]] {
    if (p.len < kEthHeaderLen + kVlanTagLen) {
      *why = Drop::vlan_truncated;
      return false;
    }
    uint16_t vid = load_be16(f + 14) & kVlanIdMask;
    if (vid == kVlanReserved) {
      *why = Drop::vlan_reserved;
      return false;
    }
    // VID 0 is a priority tag: the frame belongs to the untagged member.
    if (vid != 0) m = in.vlan_map ? in.vlan_map[vid] : kNoMember;
    if (m == kNoMember) {
      *why = Drop::vlan_not_member;
      return false;
    }
    vlan_pop(f, p);
    if (pkt_has_meta(p) && meta) [[unlikely]] offload_shift(meta[p.buf], -int(kVlanTagLen));
  } else if (m == kNoMember) [[unlikely]] {
    *why = Drop::vlan_not_member;
    return false;
  }
  *member = m;
  if (p.len > max_len) [[unlikely]] {
    if (!pkt_has_meta(p) || !meta || !offload_fits_mtu(meta[p.buf], p.len, max_len, buf + pkt_off(p))) {
      *why = Drop::oversize;  // *member says where an ICMP too big answer goes
      return false;
    }
  }
  return true;
}

}  // namespace vpc
