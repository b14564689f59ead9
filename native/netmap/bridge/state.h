// The bridge's tables: switches, the members that join them, and the
// per-source learning state of local ports and remote VTEPs. Owned and
// written by the engine thread only (see core/engine.h), through Bridge.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "bridge/fdb.h"
#include "core/command.h"
#include "core/counters.h"
#include "core/state.h"

namespace vpc {

// One (port, VLAN) attachment to a switch. The FDB maps a MAC to a member, so
// a single lookup yields the egress port and the tag to push (vlan 0: none).
// Member ids stay below the special destinations of bridge/forward.cc
// (0xFFFC..0xFFFF: flood kinds and drop).
constexpr uint32_t kMaxMembers = 0xFFFC;

// A remote VTEP joins a switch through a member too (port = the uplink's
// port, vtep set): remote MACs live in the same FDB, with the same learning,
// aging, limits and move detection as local ones, and forwarding to such a
// member means handing the frame to the overlay (encapsulation towards its
// VTEP). The VTEP id indexes the overlay's VTEP table and the bridge's
// BridgePeer table alike.
constexpr uint32_t kNoPeer = 0xFFFFFFFFu;

struct Member {
  PortId port = kNoId;
  SwitchId sw = kNoId;
  uint16_t vlan = 0;
  bool in_use = false;
  bool in_flood = true;  // remote members: the VTEP is in the switch's flood list
  uint32_t vtep = kNoPeer;
  bool remote() const { return vtep != kNoPeer; }
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
  TooBigBucket too_big;        // this switch's ICMP too-big answers
  SwitchCounterBlock* counters = nullptr;
};

// A local port as the bridge sees it: the members through which it joins
// switches (one per VLAN) and its learning state, with the last-source cache
// (the VALE trick): a port usually sends from one MAC, so when the source,
// member and switch generation match and the entry was refreshed recently,
// learning is skipped. Indexed by PortId, next to the core's PortState.
struct BridgePort {
  MemberId untagged = kNoMember;
  std::unique_ptr<MemberId[]> vlan_map;  // 4096 entries, trunks only
  std::vector<MemberId> members;         // every member of this port
  LearnSource learn;
  bool kpath = false;                    // the kernel fast path is hooked to it (bridge/kpath.h)
};

// A remote VTEP as the bridge sees it: one member per switch it joins, its
// learning state, and the references that keep it: switches that list it as
// a peer and static FDB entries behind it. Indexed by the overlay's VTEP id;
// the overlay releases a VTEP once the bridge holds no reference to it.
struct BridgePeer {
  uint32_t configured = 0;     // switches that list it as a peer
  uint32_t statics = 0;        // static FDB entries pointing at it
  std::vector<std::pair<SwitchId, MemberId>> members;  // one per switch it joins
  SwitchId cache_sw = kNoId;   // last (switch -> member) looked up on decap
  MemberId cache_member = kNoMember;
  LearnSource learn;
  bool referenced() const { return configured != 0 || statics != 0 || learn.learned != 0; }
};

}  // namespace vpc
