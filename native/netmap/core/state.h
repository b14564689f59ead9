// The engine's tables: switches, ports and the members that join them.
// Owned and written by the engine thread only (see engine.h).
#pragma once

#include <memory>
#include <vector>

#include "core/command.h"
#include "core/counters.h"
#include "proto/inet.h"
#include "bridge/fdb.h"

namespace vpc {

// One (port, VLAN) attachment to a switch. The FDB maps a MAC to a member, so
// a single lookup yields the egress port and the tag to push (vlan 0: none).
// Member ids stay below the special destinations of bridge/forward.cc
// (0xFFFC..0xFFFF: flood kinds and drop).
constexpr uint32_t kMaxMembers = 0xFFFC;

// A remote VTEP joins a switch through a member too (port = the uplink's
// port, vtep set): remote MACs live in the same FDB, with the same learning,
// aging, limits and move detection as local ones, and forwarding to such a
// member means encapsulating towards its VTEP.
constexpr uint32_t kNoVtep = 0xFFFFFFFFu;

struct Member {
  PortId port = kNoId;
  SwitchId sw = kNoId;
  uint16_t vlan = 0;
  bool in_use = false;
  bool in_flood = true;  // remote members: the VTEP is in the switch's flood list
  uint32_t vtep = kNoVtep;
  bool remote() const { return vtep != kNoVtep; }
};

// Where learned entries come from: a local port, or a remote VTEP. Holds the
// last-source cache and the per-source limit bookkeeping.
struct LearnSource {
  bool learning = true;
  uint32_t mac_limit = 0;  // 0: none
  uint32_t learned = 0;    // learned FDB entries pointing here
  bool limit_reported = false;
  Mac cache_src = 0;
  MemberId cache_member = kNoMember;
  uint32_t cache_gen = 0;
  uint32_t cache_ms = 0;
  uint64_t* learned_gauge = nullptr;  // counter cell mirroring `learned`
};

struct SwitchState {
  bool in_use = false;
  SwitchConfig cfg;
  Fdb fdb;
  std::vector<MemberId> members;  // local members and remote (VTEP) members
  uint32_t local_members = 0;
  uint32_t peers = 0;              // configured remote VTEPs (flood list)
  uint32_t static_entries = 0;
  // Bumped whenever an entry is removed or changes port, so per-port
  // last-source caches know to look again.
  uint32_t generation = 0;
  bool full_reported = false;  // one table_full event per episode
  uint32_t refresh_ms = 1000;  // learn_refresh_ms(cfg.aging_ms)
  SwitchCounterBlock* counters = nullptr;
};

constexpr uint16_t kTxQueueLen = 512;

struct PortState {
  bool in_use = false;
  std::unique_ptr<Port> port;
  PortConfig cfg;
  uint32_t max_len = 0;  // largest untagged frame accepted: mtu + 14
  MemberId untagged = kNoMember;
  std::unique_ptr<MemberId[]> vlan_map;  // 4096 entries, trunks only
  std::vector<MemberId> members;         // every member of this port
  bool up = true;
  bool is_uplink = false;
  uint32_t tx_limit = 0;  // Port::tx_frame_limit(), refreshed with the link state
  // What the backend takes as it is on transmit (ports/port.h), read once
  // when the port is attached.
  bool tx_large = true;
  uint32_t tx_offloads = 0;
  uint32_t tx_max_frame = 65535;
  // Learning state, with the last-source cache (the VALE trick): a port
  // usually sends from one MAC, so when the source, member and switch
  // generation match and the entry was refreshed recently, learning is skipped.
  LearnSource learn;

  // Frames staged for transmission, flushed once per iteration (or when full).
  uint16_t txn = 0;
  bool tx_dirty = false;
  Pkt txq[kTxQueueLen];

  PortCounterBlock* counters = nullptr;
};

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
    uint16_t inner_len;
  };
  std::vector<Pending> pending;  // frames waiting for the MAC (bounded)
};

struct VtepState {
  bool in_use = false;
  IpAddr ip;
  uint32_t configured = 0;     // switches that list it as a peer
  uint32_t statics = 0;        // static FDB entries pointing at it
  bool learned_only = false;   // created by decapsulation and never configured: counts against max_learned_vteps
  // Released once nothing refers to it: no switch lists it as a peer and no
  // FDB entry (learned or static) points at it.
  bool unreferenced() const { return configured == 0 && statics == 0 && learn.learned == 0; }
  uint32_t neighbor = 0;       // index in the neighbour table: itself or the gateway
  bool reachable = true;       // false: no route (off-link and no gateway)
  std::vector<std::pair<SwitchId, MemberId>> members;  // one per switch it joins
  SwitchId cache_sw = kNoId;  // last (switch -> member) looked up on decap
  MemberId cache_member = kNoMember;
  LearnSource learn;
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
  uint16_t ip_id = 0;  // IPv4 identification for packets without DF
  UplinkCounterBlock* counters = nullptr;
};

}  // namespace vpc
