// Stage 1, classify: parse the Ethernet header and the optional 802.1Q tag,
// check the frame against the ingress port, and map it to a member (the
// port's attachment to one switch). The tag is removed here: inside the
// switch every frame is untagged, and egress pushes the tag its member needs.
#pragma once

#include "core/counters.h"
#include "core/state.h"
#include "proto/ethernet.h"

namespace vpc {

// Returns true and sets *member when the frame may enter a switch; otherwise
// returns false with the drop reason in *why. May rewrite p (tag removal).
inline bool classify(const PortState& in, uint8_t* buf, Pkt& p, MemberId* member, Drop* why) {
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
  } else if (m == kNoMember) [[unlikely]] {
    *why = Drop::vlan_not_member;
    return false;
  }
  if (p.len > in.max_len) [[unlikely]] {
    *why = Drop::oversize;
    return false;
  }
  *member = m;
  return true;
}

}  // namespace vpc
