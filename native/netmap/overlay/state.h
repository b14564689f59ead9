// The overlay's tables: the uplink (this host's VTEP), remote VTEPs and the
// underlay neighbours they are reached through. Owned and written by the
// engine thread only (see core/engine.h), through Overlay.
#pragma once

#include <vector>

#include "bridge/state.h"  // kNoPeer, the VTEP id shared with BridgePeer
#include "core/command.h"
#include "core/counters.h"
#include "proto/inet.h"

namespace vpc {

// A next hop on the underlay, resolved by ARP (IPv4) or ND (IPv6).
struct Neighbor {
  enum State : uint8_t { kIncomplete, kReachable, kStale, kFailed };
  IpAddr ip;
  Mac mac = 0;
  State state = kIncomplete;
  uint8_t tries = 0;
  uint32_t users = 0;        // VTEPs routed through it; none: no more requests
  uint32_t updated_ms = 0;   // last time it was confirmed
  uint32_t next_try_ms = 0;  // when to send the next request
  struct Pending {
    Pkt pkt;            // encapsulated, outer destination MAC still unset
    uint32_t vtep;      // for the peer's counters once it is sent
    MemberId member;    // and its switch's (a remote member of vtep),
    uint64_t member_gen;  // while its block has this generation
    uint16_t inner_len;
  };
  std::vector<Pending> pending;  // frames waiting for the MAC (bounded)
};

struct PeerState {
  bool in_use = false;
  IpAddr ip;
  bool learned_only = false;   // created by decapsulation and never configured: counts against max_learned_vteps
  // Released once the bridge holds no reference to it (BridgePeer::
  // referenced: no switch lists it as a peer, no FDB entry points at it).
  uint32_t neighbor = 0;       // index in the neighbour table: itself or the gateway
  bool reachable = true;       // false: no route (off-link and no gateway)
  PeerCounterBlock* counters = nullptr;
  // The outer headers towards this VTEP (Ethernet, IP, UDP, VXLAN flags) as
  // a template, rebuilt only when the next hop's MAC or the uplink changes;
  // per frame only lengths, the IPv4 checksum, the UDP source port and the
  // VNI are written. outer_sum: IPv4 header sum without length and id.
  uint8_t outer[kVxlanOverhead6] = {};
  uint16_t outer_len = 0;  // 0: no template yet
  uint32_t outer_sum = 0;
  Mac outer_mac = 0;
  uint32_t outer_gen = 0;
};

struct UplinkState {
  bool active = false;
  uint32_t generation = 1;  // bumped when the uplink changes: VTEP templates rebuild
  PortId port = kNoId;
  UplinkConfig cfg;
  Mac mac = 0;
  // Created while its interface was missing (a restart before the interface
  // is back): `mac` is the configured stand-in until the interface appears,
  // then its own (Overlay::tick, which also follows later changes of the
  // interface's MAC). Nothing was sent with the stand-in, as the port was
  // down, so no peer holds it.
  bool mac_stand_in = false;
  // The interface's MAC changed and the underlay was not told yet (the link
  // was down): Overlay::tell_new_mac() once it is up.
  bool mac_untold = false;
  uint16_t ip_id = 0;  // IPv4 identification for packets without DF
  UplinkCounterBlock* counters = nullptr;
};

}  // namespace vpc
